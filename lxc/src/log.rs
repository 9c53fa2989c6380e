//! liblxc's log: `lxc_log_init` and `lxc_log_close`.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::cstr::{check_name, cstring, path_bytes};
use crate::error::{Error, Result};
use crate::sys;

/// Priority of liblxc's log, from the most to the least verbose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Informational.
    Info,
    /// Normal but significant.
    Notice,
    /// Warnings.
    Warn,
    /// Errors (liblxc's default).
    Error,
    /// Critical.
    Crit,
    /// Action must be taken.
    Alert,
    /// Fatal.
    Fatal,
}

impl std::str::FromStr for LogLevel {
    type Err = Error;

    /// liblxc's name of a level, in any case (`"debug"`, `"WARN"`).
    fn from_str(s: &str) -> Result<Self> {
        const ALL: [LogLevel; 9] = [
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Notice,
            LogLevel::Warn,
            LogLevel::Error,
            LogLevel::Crit,
            LogLevel::Alert,
            LogLevel::Fatal,
        ];
        ALL.into_iter().find(|l| l.as_str().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
            Error::invalid(
                "log level",
                s,
                "must be one of TRACE DEBUG INFO NOTICE WARN ERROR CRIT ALERT FATAL",
            )
        })
    }
}

impl LogLevel {
    /// liblxc's name of the level (`"DEBUG"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Notice => "NOTICE",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
            LogLevel::Crit => "CRIT",
            LogLevel::Alert => "ALERT",
            LogLevel::Fatal => "FATAL",
        }
    }
}

/// Serializes `lxc_log_init` and `lxc_log_close`, which change process-wide
/// state in liblxc without a lock.
static LOG_LOCK: Mutex<()> = Mutex::new(());

/// Sets up liblxc's log for this process (`lxc_log_init`), like the
/// `--logfile`, `--logpriority` and `--quiet` options of the `lxc-*` tools.
///
/// liblxc keeps one log per process and ignores a second `init` until
/// [`log_close`]. Its level, once set, stays for the life of the process.
///
/// ```no_run
/// fn main() -> Result<(), lxc::Error> {
///     // SAFETY: first thing in main, before any thread uses liblxc.
///     unsafe { lxc::Log::new().file("/tmp/lxc.log").level(lxc::LogLevel::Debug).quiet(true).init() }?;
///     // ... the rest of the program, threads included
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Log {
    name: Option<String>,
    lxcpath: Option<PathBuf>,
    file: Option<PathBuf>,
    level: Option<LogLevel>,
    prefix: Option<String>,
    quiet: bool,
}

impl Log {
    /// Options with liblxc's defaults: no file, level `ERROR`, messages
    /// also on stderr.
    pub fn new() -> Self {
        Self::default()
    }

    /// The container name the log is for; without [`Log::file`], liblxc
    /// logs to `<lxcpath>/<name>/<name>.log`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// The lxcpath used with [`Log::name`].
    pub fn lxcpath(mut self, lxcpath: impl AsRef<Path>) -> Self {
        self.lxcpath = Some(lxcpath.as_ref().to_owned());
        self
    }

    /// The log file (`"none"` for no file).
    pub fn file(mut self, file: impl AsRef<Path>) -> Self {
        self.file = Some(file.as_ref().to_owned());
        self
    }

    /// The lowest priority that is logged.
    pub fn level(mut self, level: LogLevel) -> Self {
        self.level = Some(level);
        self
    }

    /// The prefix of every line (liblxc truncates it to 31 bytes).
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = Some(prefix.to_owned());
        self
    }

    /// Whether to keep messages off stderr.
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Initializes the log (`lxc_log_init`).
    ///
    /// # Safety
    ///
    /// liblxc's log is process-global state that every liblxc call reads
    /// without a lock (its descriptor, its level, the container name in
    /// its lines), and that `lxc_log_init` and [`log_close`] change. No
    /// other thread may be inside liblxc (any call of this crate that
    /// reaches it, or liblxc used directly) while this runs. Call it at the
    /// start of `main`, before other threads use the crate. Calls on one
    /// thread before and after it are fine.
    ///
    /// ```compile_fail,E0133
    /// lxc::Log::new().level(lxc::LogLevel::Debug).init().unwrap();
    /// ```
    pub unsafe fn init(&self) -> Result<()> {
        if let Some(n) = &self.name {
            check_name("container name", n)?;
        }
        let name = self.name.as_deref().map(|n| cstring("container name", n)).transpose()?;
        let lxcpath = self.lxcpath.as_deref().map(|p| cstring("lxcpath", path_bytes(p))).transpose()?;
        let file = self.file.as_deref().map(|p| cstring("log file", path_bytes(p))).transpose()?;
        let prefix = self.prefix.as_deref().map(|p| cstring("log prefix", p)).transpose()?;
        let level = self.level.map(|l| cstring("log level", l.as_str())).transpose()?;
        let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        let mut log = sys::lxc_log {
            name: ptr(&name),
            lxcpath: ptr(&lxcpath),
            file: ptr(&file),
            level: ptr(&level),
            prefix: ptr(&prefix),
            quiet: self.quiet,
        };
        let _guard = LOG_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: every pointer in `log` is null or a NUL-terminated string
        // alive until the end of this function; liblxc copies what it keeps
        // (strdup of the name and file, a copy of the prefix).
        let ret = unsafe { sys::lxc_log_init(&mut log) };
        if ret < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error();
            return Err(Error::Failed {
                op: "lxc_log_init",
                container: self.name.clone().unwrap_or_default(),
                error_num: ret,
                error_string: None,
                errno,
            });
        }
        // The helper process (`helper.rs`) logs with the same settings.
        let mut opts = vec![("log.quiet", std::ffi::OsString::from(if self.quiet { "1" } else { "0" }))];
        let mut add = |key: &'static str, v: Option<&std::ffi::OsStr>| {
            if let Some(v) = v {
                opts.push((key, v.to_owned()));
            }
        };
        add("log.name", self.name.as_deref().map(std::ffi::OsStr::new));
        add("log.lxcpath", self.lxcpath.as_deref().map(Path::as_os_str));
        add("log.file", self.file.as_deref().map(Path::as_os_str));
        add("log.prefix", self.prefix.as_deref().map(std::ffi::OsStr::new));
        add("log.level", self.level.map(|l| std::ffi::OsStr::new(l.as_str())));
        crate::helper::note_log_init(opts);
        Ok(())
    }
}

/// Closes liblxc's log file (`lxc_log_close`); a later [`Log::init`] opens a
/// new one.
///
/// # Safety
///
/// As for [`Log::init`]: `lxc_log_close` frees and closes what every other
/// liblxc call logs through, so no other thread may be inside liblxc while
/// it runs.
pub unsafe fn log_close() {
    let _guard = LOG_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: lxc_log_close takes no arguments and only closes liblxc's own fd.
    unsafe { sys::lxc_log_close() };
    crate::helper::note_log_close();
}

impl crate::Container {
    /// The container's own log file (`lxc.log.file`), `None` when it has
    /// none (go-lxc's `LogFile`).
    pub fn log_file(&self) -> Result<Option<PathBuf>> {
        let v = self.config_item_str("lxc.log.file")?;
        Ok((!v.is_empty()).then(|| PathBuf::from(v)))
    }

    /// Sets the container's own log file (`lxc.log.file`; go-lxc's
    /// `SetLogFile`): liblxc makes its directory, opens it (appending) at
    /// once and keeps it open in this handle until the handle is dropped or
    /// another file is set; what liblxc logs about this container from
    /// then on goes there: in this process while a call on this handle
    /// runs, in the helper process, and in the container's monitor after a
    /// start. Save the configuration to keep it. The path must be absolute
    /// and UTF-8.
    ///
    /// ```no_run
    /// let c = lxc::Container::new("web")?;
    /// c.set_log_file("/var/log/lxc/web.log")?;
    /// c.set_log_level(lxc::LogLevel::Info)?;
    /// assert_eq!(c.log_level()?, Some(lxc::LogLevel::Info));
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn set_log_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let Some(text) = path.to_str() else {
            return Err(Error::invalid("log file", path_bytes(path), "must be UTF-8"));
        };
        if !path.is_absolute() {
            return Err(Error::invalid("log file", text, "must be an absolute path"));
        }
        self.set_config_item("lxc.log.file", text)
    }

    /// The level of the container's own log (`lxc.log.level`), `None` when
    /// it is not set (the process's level applies; go-lxc's `LogLevel`).
    pub fn log_level(&self) -> Result<Option<LogLevel>> {
        let v = self.config_item_str("lxc.log.level")?;
        if v.is_empty() || v == "NOTSET" {
            return Ok(None);
        }
        v.parse().map(Some).map_err(|_| Error::bad_return("get_config_item", format!("log level {v:?}")))
    }

    /// Sets the level of the container's own log (`lxc.log.level`; go-lxc's
    /// `SetLogLevel`).
    pub fn set_log_level(&self, level: LogLevel) -> Result<()> {
        self.set_config_item("lxc.log.level", level.as_str())
    }
}
