//! (internal) The helper process: `create`, `clone`, `snapshot`,
//! `snapshot_restore`, `rename`, `destroy`, `destroy_with_snapshots`,
//! `snapshot_destroy`, `snapshot_destroy_all` and a daemonized `start` run
//! in a fresh single-threaded process.
//!
//! # Why
//!
//! liblxc runs the helpers of these calls in children of the calling
//! process, and two things of the caller's leak into them:
//!
//! * **Its threads.** `run_command_internal` (`src/lxc/utils.c`; the rsync
//!   of `clone` and `snapshot`, and `create`'s storage helpers) starts its
//!   child with a raw `clone()` system call (`lxc_raw_clone`; restore copies
//!   the snapshot back through clone), which skips
//!   glibc's fork handlers. The child's glibc still believes that the
//!   parent's other threads exist, and the rsync wrapper then calls
//!   `lxc_switch_uid_gid` → `setresgid`: glibc's set-id broadcast signals
//!   every thread it knows of and waits for each to answer, forever.
//!   `rename` copies with the same wrapper; for a caller that is not root
//!   (`am_guest_unpriv()`), the destroys delete in children of
//!   `userns_exec_1`/`userns_exec_full` (raw `clone` again) that switch
//!   ids first, and root's lvm destroy calls `setenv` in one. (liblxc's
//!   destroy also `setenv`s its hooks' `LXC_*` variables in the process
//!   that calls it.) A
//!   plain C program with one thread calling `snapshot()` and another
//!   creating threads hangs this way; every tokio program is
//!   multithreaded. `start`'s monitor is a `fork()` of the caller that runs
//!   liblxc for the container's whole life: a child of a multithreaded
//!   fork may only call async-signal-safe functions until it execs, and
//!   a lock another thread held at the fork (in any library) stays held
//!   in the monitor forever.
//! * **Its signal dispositions.** A daemon that ignores `SIGCHLD` (a common
//!   idiom) hands that to the monitor (`exec` keeps ignored signals, `fork`
//!   keeps everything): the kernel then reaps the container's init by
//!   itself and sends no signal, so the monitor never notices init dying,
//!   the state stays `RUNNING` with a dead pid, and `stop` blocks for
//!   minutes. liblxc's own `waitpid`s in the caller fail with `ECHILD`.
//!
//! A process started with fork+exec has neither: it is single-threaded
//! from its first instruction, and the helper's `main` resets every signal
//! to its default action and unblocks all. So these calls run in
//! `lxc-rs-helper` (`lxc/helper/lxc-rs-helper.c`), a small C program built
//! by the build script against the same liblxc and embedded in the crate.
//! At the first use it is written into a sealed `memfd` (close-on-exec),
//! and each call runs it with `std::process::Command` on
//! `/proc/self/fd/N` (std forks and execs at once; exec of an ELF through
//! that path works although the descriptor is close-on-exec). The child
//! between std's fork and exec only clears close-on-exec on the result
//! pipe (and the configuration memfd): no Rust or liblxc code runs in a
//! forked copy of the threaded caller.
//!
//! # Always, not only when threaded
//!
//! These calls always go through the helper (a foreground start, which
//! makes the caller the monitor, cannot, and stays in the process: liblxc
//! allows it only single-threaded anyway). One path is simpler and tested
//! on every run, and the cost is small next to the calls themselves
//! (measured on the project's VM: see the README's Performance section): a
//! daemonized start through the helper costs about what the in-process
//! start cost, because the caller is no longer moved into the monitor
//! cgroup and back (liblxc moves the process that calls `start`: now the
//! helper, which exits; see `monitor_cgroup.rs`), and create, clone and
//! snapshot take tens to hundreds of milliseconds against the helper's
//! few. Also, the umask that liblxc changes while it makes a container
//! directory is now the helper's, not the caller's.
//!
//! # The handle around the call
//!
//! The helper opens its own object on the container (`lxc_container_new`
//! with the handle's name and lxcpath), which loads the configuration from
//! disk. When the handle's in-memory configuration may differ from the
//! file (a `set_config_item` since the last load or save: the handle's
//! `config_dirty` flag), the caller writes it with `save_config` into a
//! memfd and the helper replaces its configuration with that
//! (`clear_config`, `load_config`); a handle whose configuration liblxc
//! has not allocated makes the helper clear its own. So the helper works
//! from what an in-process call would have seen. After a create, the
//! handle reloads the new configuration from disk (`clear_config`,
//! `load_config`, under the writer's lock), as liblxc's create does to its
//! own object. The caller's liblxc log settings ([`crate::Log::init`]) are
//! passed on. Errors stay typed: the helper reports success, `errno` and
//! `error_num`, and the caller sets `errno` and explains the failure as
//! before (`NotDefined`, `WrongState`, ... are decided in Rust).
//!
//! The result comes back as one line on a pipe, not as the exit status: a
//! caller that ignores `SIGCHLD` cannot wait for its children (the kernel
//! reaps them), so then the helper is not waited for.

use std::ffi::{CString, OsString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The helper program, built by the build script.
static HELPER: &[u8] = include_bytes!(env!("LXC_RS_HELPER"));

/// The sealed memfd holding [`HELPER`], made once per process.
fn helper_fd() -> Result<RawFd> {
    static FD: OnceLock<std::result::Result<OwnedFd, i32>> = OnceLock::new();
    match FD.get_or_init(|| make_helper_fd().map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))) {
        Ok(fd) => Ok(fd.as_raw_fd()),
        Err(e) => Err(Error::Io { op: "memfd for lxc-rs-helper", source: io::Error::from_raw_os_error(*e) }),
    }
}

fn memfd(name: &std::ffi::CStr, flags: rustix::fs::MemfdFlags) -> io::Result<OwnedFd> {
    Ok(rustix::fs::memfd_create(name, flags)?)
}

fn make_helper_fd() -> io::Result<OwnedFd> {
    use rustix::fs::{fcntl_add_seals, MemfdFlags, SealFlags};
    let base = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    // Kernels since 6.3 want the memfd marked executable (and warn when it
    // is not said); older ones refuse the flag.
    let fd = match memfd(c"lxc-rs-helper", base | MemfdFlags::EXEC) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => memfd(c"lxc-rs-helper", base)?,
        r => r?,
    };
    let mut file = std::fs::File::from(fd);
    io::Write::write_all(&mut file, HELPER)?;
    fcntl_add_seals(&file, SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE)?;
    Ok(OwnedFd::from(file))
}

/// This process's `SIGCHLD` action, read without changing it.
fn sigchld_action() -> Option<libc::sigaction> {
    // SAFETY: a zeroed sigaction is a valid out-parameter.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `old`.
    (unsafe { libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old) } == 0).then_some(old)
}

/// Whether this process ignores `SIGCHLD` or has `SA_NOCLDWAIT` set: then
/// the kernel reaps its children, and `waitpid` on one fails with `ECHILD`
/// (after blocking until every child has ended).
pub(crate) fn sigchld_ignored() -> bool {
    sigchld_action().is_some_and(|a| a.sa_sigaction == libc::SIG_IGN || a.sa_flags & libc::SA_NOCLDWAIT != 0)
}

/// Whether `SIGCHLD` has its default disposition (and no `SA_NOCLDWAIT`):
/// neither a handler of the caller's nor the kernel reaps this process's
/// children.
pub(crate) fn sigchld_default() -> bool {
    sigchld_action().is_some_and(|a| a.sa_sigaction == libc::SIG_DFL && a.sa_flags & libc::SA_NOCLDWAIT == 0)
}

/// The liblxc log settings of the [`crate::Log::init`] in force, as
/// helper options; `None` when the log is not initialized.
type LogOpts = Option<Vec<(&'static str, OsString)>>;
static LOG_OPTS: std::sync::Mutex<LogOpts> = std::sync::Mutex::new(None);

/// Records the settings of a successful `lxc_log_init` for the helpers;
/// like liblxc, keeps the first until `log_close`.
pub(crate) fn note_log_init(opts: Vec<(&'static str, OsString)>) {
    LOG_OPTS.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(opts);
}

/// Forgets the log settings (`lxc_log_close`).
pub(crate) fn note_log_close() {
    *LOG_OPTS.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Where the helper's configuration comes from.
pub(crate) enum Config {
    /// The file on disk, as `lxc_container_new` loads it.
    Disk,
    /// None: the handle's configuration is not allocated.
    Cleared,
    /// This memfd, which `save_config` filled.
    Memfd(OwnedFd),
}

impl Config {
    /// A new memfd for `save_config`, and the path to write it through.
    pub(crate) fn memfd() -> Result<(OwnedFd, CString)> {
        let fd = memfd(c"lxc-rs-config", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|source| Error::Io { op: "memfd for the configuration", source })?;
        let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL in a number");
        Ok((fd, path))
    }
}

/// One call for the helper.
pub(crate) struct Request<'a> {
    /// `create`, `clone`, `snapshot`, `restore`, `start`, `destroy`,
    /// `destroy_with_snapshots`, `snapshot_destroy`,
    /// `snapshot_destroy_all` or `rename`.
    pub op: &'static str,
    /// The container's name.
    pub name: &'a str,
    /// Its lxcpath.
    pub lxcpath: &'a std::path::Path,
    /// Where its configuration comes from.
    pub config: Config,
    /// The call's options (see the helper's source).
    pub opts: Vec<(&'static str, OsString)>,
    /// The call's argument list (template arguments, hook arguments,
    /// init's argv); `None` for liblxc's NULL.
    pub args: Option<Vec<String>>,
}

/// What the helper reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Whether liblxc's call succeeded.
    pub ok: bool,
    /// `errno` after the call (0: none).
    pub errno: i32,
    /// `lxc_container.error_num` after the call.
    pub error_num: i32,
    /// The snapshot's number, for a snapshot.
    pub value: Option<i64>,
    /// The helper refused before liblxc's call.
    pub refused: Option<Refusal>,
}

/// Why the helper did not make liblxc's call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The configuration it loaded has other root filesystem settings than
    /// the caller's `expect.*` options.
    Stale,
    /// The call needs an existing container and there is none.
    Gone,
    /// `lxc_container_new` failed (`errno` says why): mostly a
    /// configuration file that does not parse.
    NoLoad,
}

impl Outcome {
    /// Sets this thread's `errno` to the helper's, so that the caller's
    /// error reporting (`Container::failed`) reads it as after an
    /// in-process call.
    pub(crate) fn restore_errno(&self) {
        // SAFETY: __errno_location returns this thread's errno, always valid.
        unsafe { *libc::__errno_location() = self.errno };
    }
}

fn parse(line: &str) -> Option<Outcome> {
    let mut w = line.split_ascii_whitespace();
    let (ok, refused) = match w.next()? {
        "ok" => (true, None),
        "fail" => (false, None),
        "stale" => (false, Some(Refusal::Stale)),
        "gone" => (false, Some(Refusal::Gone)),
        "noload" => (false, Some(Refusal::NoLoad)),
        _ => return None,
    };
    let errno = w.next()?.parse().ok()?;
    let error_num = w.next()?.parse().ok()?;
    let value = match w.next()? {
        "-" => None,
        v => Some(v.parse().ok()?),
    };
    Some(Outcome { ok, errno, error_num, value, refused })
}

/// Runs one call in the helper and returns what it reported.
pub(crate) fn run(req: Request<'_>) -> Result<Outcome> {
    let exe = helper_fd()?;
    let io_err = |op: &'static str| move |source: io::Error| Error::Io { op, source };
    let (r, w) = io::pipe().map_err(io_err("pipe for lxc-rs-helper"))?;
    // Listed for the crate's closure children, which close it at their fork:
    // a copy they kept would delay the end of the pipe if the helper died
    // before its result line.
    let w = crate::fds::Guarded::new(w);
    let w_fd = w.as_raw_fd();
    let mut cmd = std::process::Command::new(format!("/proc/self/fd/{exe}"));
    cmd.arg(w_fd.to_string()).arg(req.op).arg(req.name).arg(req.lxcpath);
    let mut keep = vec![w_fd];
    match &req.config {
        Config::Disk => {}
        Config::Cleared => {
            cmd.args(["noconfig", "1"]);
        }
        Config::Memfd(fd) => {
            cmd.arg("config").arg(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            keep.push(fd.as_raw_fd());
        }
    }
    for (k, v) in LOG_OPTS.lock().unwrap_or_else(|e| e.into_inner()).iter().flatten() {
        cmd.arg(k).arg(v);
    }
    for (k, v) in &req.opts {
        cmd.arg(k).arg(v);
    }
    if let Some(args) = &req.args {
        cmd.arg("--").args(args);
    }
    // SAFETY: the closure runs in the forked child before exec and calls
    // only fcntl, which is async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(io_err("start lxc-rs-helper"))?;
    drop(w);
    drop(cmd);
    drop(req.config);
    // One line, then the helper exits. The line is read up to its newline,
    // not to the end of the pipe: a start's monitor holds a copy of the
    // write end until it closes its inherited descriptors.
    let mut line = Vec::new();
    let mut r = std::fs::File::from(OwnedFd::from(r));
    let mut buf = [0u8; 128];
    let read = loop {
        match r.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                line.extend_from_slice(&buf[..n]);
                if line.contains(&b'\n') || line.len() > 4096 {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    // A caller that ignores SIGCHLD has its children reaped by the kernel;
    // waitpid would block until every child of the process has ended.
    let status = if sigchld_ignored() {
        None
    } else {
        match child.wait() {
            Ok(s) => Some(s),
            // Reaped by someone else (a SIGCHLD handler that waits for any
            // child): the result line is all we need.
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => None,
            Err(e) => return Err(Error::Io { op: "wait for lxc-rs-helper", source: e }),
        }
    };
    read.map_err(io_err("read the result of lxc-rs-helper"))?;
    let text = String::from_utf8_lossy(&line);
    parse(text.lines().next().unwrap_or("")).ok_or_else(|| Error::Io {
        op: "lxc-rs-helper",
        source: io::Error::other(match status {
            Some(s) => format!("the helper ended ({s}) without a result"),
            None => "the helper ended without a result".to_owned(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_results() {
        assert_eq!(
            parse("ok 0 0 3\n"),
            Some(Outcome { ok: true, errno: 0, error_num: 0, value: Some(3), refused: None })
        );
        assert_eq!(
            parse("fail 2 1 -\n"),
            Some(Outcome { ok: false, errno: 2, error_num: 1, value: None, refused: None })
        );
        assert_eq!(
            parse("stale 0 0 -\n"),
            Some(Outcome { ok: false, errno: 0, error_num: 0, value: None, refused: Some(Refusal::Stale) })
        );
        assert_eq!(
            parse("noload 22 0 -\n"),
            Some(Outcome { ok: false, errno: 22, error_num: 0, value: None, refused: Some(Refusal::NoLoad) })
        );
        assert_eq!(parse("gone 0 0 -\n").unwrap().refused, Some(Refusal::Gone));
        assert_eq!(parse("ok 0 0"), None);
        assert_eq!(parse("maybe 0 0 -"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn the_helper_runs_and_refuses_bad_usage() {
        let exe = helper_fd().unwrap();
        let out = std::process::Command::new(format!("/proc/self/fd/{exe}")).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("lxc-rs-helper"));
    }

    #[test]
    fn an_unknown_container_fails_cleanly() {
        let dir = std::env::temp_dir().join(format!("lxc-rs-helper-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = run(Request {
            op: "snapshot",
            name: "nope",
            lxcpath: &dir,
            config: Config::Disk,
            opts: Vec::new(),
            args: None,
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!out.ok);
    }
}
