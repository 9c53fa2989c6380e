//! Running programs and Rust code inside a running container: liblxc's
//! `attach`, with [`AttachOptions`] over every field of
//! `lxc_attach_options_t`.
//!
//! Every attach here goes through `lxc_container.attach` with an exec
//! function of the crate's own. In the attached child it sends, over a
//! close-on-exec socket, that it was reached with a pidfd of itself (so
//! liblxc's own failure to attach is told apart from the program's exit
//! status, and the caller's handle names this process whoever reaps it),
//! waits for the caller's go (sent only once liblxc's attach succeeded and
//! the caller holds the pidfd), marks every descriptor above 2 close-on-exec
//! (so none of the caller's leaks into the container), and on a failed
//! `execvp` reports the errno (so "not found" is told apart from a program
//! that exits 127).

use std::ffi::{c_int, c_void, CString};
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::ptr;
use std::sync::OnceLock;

use bitflags::bitflags;

use crate::cstr::{cstring, path_bytes, CStrArray};
use crate::error::{Error, Result};
use crate::fds::{fds_from_3_in_child, FdAction, FdSweep, Guarded, LeakProbe};
use crate::layout::method;
use crate::{sys, AttachChild, Container, State};

bitflags! {
    /// What liblxc does to the attached process (`LXC_ATTACH_*`).
    ///
    /// The default, [`AttachFlags::DEFAULT`], moves it into the container's
    /// cgroup, drops the capabilities the container drops, sets the
    /// personality and applies the container's LSM profile.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct AttachFlags: c_int {
        /// Move into the container's cgroup.
        const MOVE_TO_CGROUP = sys::LXC_ATTACH_MOVE_TO_CGROUP as c_int;
        /// Drop the capabilities the container drops.
        const DROP_CAPABILITIES = sys::LXC_ATTACH_DROP_CAPABILITIES as c_int;
        /// Set the personality (architecture).
        const SET_PERSONALITY = sys::LXC_ATTACH_SET_PERSONALITY as c_int;
        /// Run under the container's LSM profile from exec on.
        const LSM_EXEC = sys::LXC_ATTACH_LSM_EXEC as c_int;
        /// Remount /proc and /sys for the container's view (off by default).
        const REMOUNT_PROC_SYS = sys::LXC_ATTACH_REMOUNT_PROC_SYS as c_int;
        /// Apply the LSM profile at once (unused by liblxc).
        const LSM_NOW = sys::LXC_ATTACH_LSM_NOW as c_int;
        /// Set `PR_SET_NO_NEW_PRIVS`.
        const NO_NEW_PRIVS = sys::LXC_ATTACH_NO_NEW_PRIVS as c_int;
        /// Give the process a new pseudo-terminal.
        const TERMINAL = sys::LXC_ATTACH_TERMINAL as c_int;
        /// Use the LSM label of [`AttachOptions::lsm_label`] (liblxc 4.0.7
        /// and later, header and running library: `Error::Unsupported`
        /// otherwise).
        const LSM_LABEL = 0x0010_0000;
        /// Set the supplementary groups of [`AttachOptions::groups`]
        /// (liblxc 4.0.7 and later, as `LSM_LABEL`).
        const SETGROUPS = 0x0020_0000;
        /// liblxc's defaults: the four above that are on by default.
        const DEFAULT = sys::LXC_ATTACH_DEFAULT as c_int;
    }
}

// LSM_LABEL and SETGROUPS are written out so that the crate builds with a
// header before 4.0.7, which lacks them; they are liblxc's values.
#[cfg(lxc_attach_lsm_label_and_groups)]
const _: () = assert!(
    AttachFlags::LSM_LABEL.bits() == sys::LXC_ATTACH_LSM_LABEL as c_int
        && AttachFlags::SETGROUPS.bits() == sys::LXC_ATTACH_SETGROUPS as c_int
);

bitflags! {
    /// Namespaces to enter (`CLONE_NEW*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Namespaces: c_int {
        /// Mount namespace.
        const MOUNT = libc::CLONE_NEWNS;
        /// Hostname and domain name.
        const UTS = libc::CLONE_NEWUTS;
        /// System V IPC and POSIX message queues.
        const IPC = libc::CLONE_NEWIPC;
        /// User namespace.
        const USER = libc::CLONE_NEWUSER;
        /// Pid namespace.
        const PID = libc::CLONE_NEWPID;
        /// Network namespace.
        const NET = libc::CLONE_NEWNET;
        /// Cgroup namespace.
        const CGROUP = libc::CLONE_NEWCGROUP;
        /// Time namespace.
        const TIME = 0x0000_0080;
    }
}

/// What happens to the caller's environment in the attached process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EnvPolicy {
    /// Keep it (liblxc's default), then add the extra variables.
    #[default]
    Keep,
    /// Start from an empty environment (liblxc sets `PATH` and `container`),
    /// keep only the named variables, then add the extra ones.
    Clear,
}

/// The personality (execution domain) of the attached process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Personality {
    /// 64-bit Linux (`PER_LINUX`).
    Linux,
    /// 32-bit Linux on a 64-bit kernel (`PER_LINUX32`).
    Linux32,
    /// Any value of `personality(2)`.
    Raw(libc::c_ulong),
}

impl Personality {
    /// The personality for a container architecture name, as ruby-lxc's
    /// `arch_to_personality`: `x86_64`, `amd64`, `aarch64`, `arm64`,
    /// `ppc64le`, `s390x`, `riscv64` give [`Personality::Linux`]; `i386`,
    /// `i686`, `x86`, `armhf`, `armel`, `armv7l`, `arm`, `powerpc` give
    /// [`Personality::Linux32`].
    ///
    /// ```
    /// use lxc::Personality;
    /// assert_eq!(Personality::from_arch("i686").unwrap(), Personality::Linux32);
    /// assert_eq!(Personality::from_arch("amd64").unwrap(), Personality::Linux);
    /// assert!(Personality::from_arch("pdp11").is_err());
    /// ```
    pub fn from_arch(arch: &str) -> Result<Personality> {
        match arch {
            "x86_64" | "amd64" | "aarch64" | "arm64" | "ppc64le" | "ppc64el" | "ppc64" | "s390x"
            | "riscv64" | "mips64" | "loongarch64" => Ok(Personality::Linux),
            "i386" | "i486" | "i586" | "i686" | "x86" | "armhf" | "armel" | "armv7l" | "armv7" | "arm"
            | "powerpc" | "ppc" | "mips" | "mipsel" => Ok(Personality::Linux32),
            _ => Err(Error::invalid("architecture", arch, "is not an architecture liblxc knows")),
        }
    }

    fn raw(self) -> libc::c_long {
        match self {
            Personality::Linux => 0x0000,
            Personality::Linux32 => 0x0008,
            Personality::Raw(v) => v as libc::c_long,
        }
    }
}

/// How to attach (`lxc_attach_options_t`), as a builder. The defaults are
/// liblxc's `LXC_ATTACH_OPTIONS_DEFAULT`, but for stdin, which is
/// `/dev/null` rather than the caller's stdin. When the attached program
/// does read the caller's fd 0, liblxc sets the caller's SIGINT and SIGQUIT
/// to ignored and never restores them; the crate puts back what they were
/// as soon as the attach returns (for [`Container::attach_run_shell`] and
/// [`Container::run_shell`], when the shell exits).
///
/// ```
/// use lxc::{AttachOptions, EnvPolicy, Namespaces};
/// let opts = AttachOptions::new()
///     .env_policy(EnvPolicy::Clear)
///     .env("LANG", "C.UTF-8")
///     .keep_env("TERM")
///     .cwd("/tmp")
///     .uid(1000)
///     .gid(1000)
///     .groups([27, 100])        // adds SETGROUPS to the default flags
///     .namespaces(Namespaces::MOUNT | Namespaces::PID);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone)]
pub struct AttachOptions<'fd> {
    flags: AttachFlags,
    namespaces: Option<Namespaces>,
    personality: Option<Personality>,
    cwd: Option<PathBuf>,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<Vec<u32>>,
    env_policy: EnvPolicy,
    extra_env: Vec<String>,
    keep_env: Vec<String>,
    stdin: Option<RawFd>,
    stdout: RawFd,
    stderr: RawFd,
    log_fd: Option<RawFd>,
    lsm_label: Option<String>,
    close_fds: bool,
    _fds: PhantomData<BorrowedFd<'fd>>,
}

impl Default for AttachOptions<'_> {
    fn default() -> Self {
        AttachOptions {
            flags: AttachFlags::DEFAULT,
            namespaces: None,
            personality: None,
            cwd: None,
            uid: None,
            gid: None,
            groups: None,
            env_policy: EnvPolicy::Keep,
            extra_env: Vec::new(),
            keep_env: Vec::new(),
            stdin: None,
            stdout: 1,
            stderr: 2,
            log_fd: None,
            lsm_label: None,
            close_fds: true,
            _fds: PhantomData,
        }
    }
}

impl<'fd> AttachOptions<'fd> {
    /// liblxc's defaults (stdin from `/dev/null`).
    pub fn new() -> Self {
        Self::default()
    }
    /// Replaces the attach flags. [`AttachOptions::groups`] and
    /// [`AttachOptions::lsm_label`] add their flag to whatever is set here.
    pub fn flags(mut self, flags: AttachFlags) -> Self {
        self.flags = flags;
        self
    }
    /// Adds attach flags to the current ones.
    pub fn add_flags(mut self, flags: AttachFlags) -> Self {
        self.flags |= flags;
        self
    }
    /// The namespaces to enter (default: all of the container's).
    pub fn namespaces(mut self, ns: Namespaces) -> Self {
        self.namespaces = Some(ns);
        self
    }
    /// The personality (default: detected from the container).
    pub fn personality(mut self, p: Personality) -> Self {
        self.personality = Some(p);
        self
    }
    /// The initial working directory inside the container (default: the
    /// caller's, if it exists there, else `/`).
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }
    /// The user id inside the container (default: root of the container).
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }
    /// The group id inside the container.
    pub fn gid(mut self, gid: u32) -> Self {
        self.gid = Some(gid);
        self
    }
    /// Supplementary groups; sets [`AttachFlags::SETGROUPS`] in addition to
    /// the other flags.
    pub fn groups(mut self, groups: impl IntoIterator<Item = u32>) -> Self {
        self.groups = Some(groups.into_iter().collect());
        self
    }
    /// Keep or clear the caller's environment.
    pub fn env_policy(mut self, policy: EnvPolicy) -> Self {
        self.env_policy = policy;
        self
    }
    /// Sets an environment variable in the attached process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.extra_env.push(format!("{key}={value}"));
        self
    }
    /// Keeps the caller's variable `name` when the environment is cleared.
    pub fn keep_env(mut self, name: &str) -> Self {
        self.keep_env.push(name.to_owned());
        self
    }
    /// The attached process's stdin (default `/dev/null`).
    pub fn stdin(mut self, fd: BorrowedFd<'fd>) -> Self {
        self.stdin = Some(fd.as_raw_fd());
        self
    }
    /// The attached process's stdout (default: the caller's).
    pub fn stdout(mut self, fd: BorrowedFd<'fd>) -> Self {
        self.stdout = fd.as_raw_fd();
        self
    }
    /// The attached process's stderr (default: the caller's).
    pub fn stderr(mut self, fd: BorrowedFd<'fd>) -> Self {
        self.stderr = fd.as_raw_fd();
        self
    }
    /// Where liblxc's attach code logs. With [`AttachFlags::TERMINAL`],
    /// liblxc closes the log descriptor it is given when the terminal is
    /// torn down: the crate gives it a duplicate of `fd` then, so the
    /// caller's descriptor stays open.
    pub fn log_fd(mut self, fd: BorrowedFd<'fd>) -> Self {
        self.log_fd = Some(fd.as_raw_fd());
        self
    }
    /// The LSM label (AppArmor profile, SELinux context) to run under; sets
    /// [`AttachFlags::LSM_LABEL`] in addition to the other flags. The
    /// attach is [`Error::Unsupported`] where neither AppArmor nor SELinux
    /// is active on the host (liblxc's no-op LSM would close the caller's
    /// descriptor 0).
    pub fn lsm_label(mut self, label: &str) -> Self {
        self.lsm_label = Some(label.to_owned());
        self
    }
    /// Whether the caller's descriptors other than 0, 1 and 2 are closed
    /// in the attached program (default `true`). Only programs run by the
    /// crate's exec function honour this; closures see the caller's
    /// descriptors.
    pub fn close_fds(mut self, close: bool) -> Self {
        self.close_fds = close;
        self
    }

    pub(crate) fn stdin_is_set(&self) -> bool {
        self.stdin.is_some()
    }

    /// Whether [`AttachOptions::groups`], [`AttachOptions::lsm_label`] and
    /// the flags `SETGROUPS` and `LSM_LABEL` can be used: both the header
    /// the crate was built with and the liblxc loaded at run time are 4.0.7
    /// or later. Otherwise an attach with any of them is
    /// [`Error::Unsupported`].
    ///
    /// ```
    /// let opts = lxc::AttachOptions::new();
    /// let opts = if lxc::AttachOptions::supports_groups_and_lsm_label() { opts.groups([27]) } else { opts };
    /// # let _ = opts;
    /// ```
    pub fn supports_groups_and_lsm_label() -> bool {
        cfg!(lxc_attach_lsm_label_and_groups)
            && crate::layout::attach_has_lsm_label_and_groups(crate::runtime_version())
    }

    /// Whether liblxc gives the program a terminal of its own.
    pub(crate) fn is_terminal(&self) -> bool {
        self.flags.contains(AttachFlags::TERMINAL)
    }

    /// Whether the program reads the caller's fd 0.
    fn stdin_fd_is_0(&self) -> bool {
        self.stdin == Some(0)
    }

    pub(crate) fn raw_stdin(mut self, fd: RawFd) -> Self {
        self.stdin = Some(fd);
        self
    }
    pub(crate) fn raw_stdout(mut self, fd: RawFd) -> Self {
        self.stdout = fd;
        self
    }
    pub(crate) fn raw_stderr(mut self, fd: RawFd) -> Self {
        self.stderr = fd;
        self
    }

    /// The C struct and the memory it points into.
    pub(crate) fn to_raw(&self) -> Result<RawAttachOptions> {
        let cwd = self.cwd.as_deref().map(|p| cstring("working directory", path_bytes(p))).transpose()?;
        let lsm = self.lsm_label.as_deref().map(|l| cstring("LSM label", l)).transpose()?;
        for kv in &self.extra_env {
            if kv.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
                return Err(Error::invalid("environment variable", kv, "needs a name"));
            }
        }
        let mut env = CStrArray::new("environment variable", &self.extra_env)?;
        let mut keep = CStrArray::new("environment variable name", &self.keep_env)?;
        #[cfg_attr(not(lxc_attach_lsm_label_and_groups), allow(unused_mut))]
        let mut groups: Vec<libc::gid_t> = self.groups.clone().unwrap_or_default();
        let mut flags = self.flags;
        if self.groups.is_some() {
            flags |= AttachFlags::SETGROUPS;
        }
        if self.lsm_label.is_some() {
            flags |= AttachFlags::LSM_LABEL;
        }
        if flags.intersects(AttachFlags::LSM_LABEL | AttachFlags::SETGROUPS)
            && !cfg!(lxc_attach_lsm_label_and_groups)
        {
            return Err(Error::Unsupported {
                op: "attach",
                reason: "the liblxc header the crate was built with has no lsm_label and groups in \
                         lxc_attach_options_t (they came with 4.0.7): LSM_LABEL and SETGROUPS, \
                         an LSM label and supplementary groups cannot be used",
            });
        }
        if flags.intersects(AttachFlags::LSM_LABEL | AttachFlags::SETGROUPS)
            && !crate::layout::attach_has_lsm_label_and_groups(crate::runtime_version())
        {
            return Err(Error::Unsupported {
                op: "attach",
                reason: "the liblxc loaded at run time has no lsm_label and groups in \
                         lxc_attach_options_t (they came with 4.0.7): LSM_LABEL and SETGROUPS, \
                         an LSM label and supplementary groups cannot be used",
            });
        }
        if self.lsm_label.is_some() && !liblxc_has_an_lsm() {
            return Err(Error::Unsupported {
                op: "attach",
                reason: "an LSM label needs AppArmor or SELinux active on this host: with \
                         neither, liblxc's no-op LSM hands back descriptor 0 as the label's and \
                         closes it, the caller's stdin",
            });
        }
        let stdin = match self.stdin {
            Some(fd) => fd,
            None => dev_null()?,
        };
        // liblxc's terminal code (`lxc_terminal_delete`) closes the log
        // descriptor in the caller: hand it a duplicate that is liblxc's to
        // close (it leaks on liblxc's early failure paths, which never
        // reach the terminal; a leak, never a double close).
        let (log_fd, log_dup) = match self.log_fd {
            Some(fd) if flags.contains(AttachFlags::TERMINAL) => {
                // SAFETY: the descriptor is borrowed for the options' life
                // ('fd) and open; it is only duplicated here.
                let dup = unsafe { BorrowedFd::borrow_raw(fd) }
                    .try_clone_to_owned()
                    .map_err(|source| Error::Io { op: "duplicate the attach log descriptor", source })?;
                (dup.as_raw_fd(), Some(dup))
            }
            Some(fd) => (fd, None),
            None => (-libc::EBADF, None),
        };
        let raw = sys::lxc_attach_options_t {
            attach_flags: flags.bits(),
            namespaces: self.namespaces.map_or(-1, |n| n.bits()),
            personality: self.personality.map_or(-1, Personality::raw),
            initial_cwd: cwd.as_ref().map_or(ptr::null_mut(), |c| c.as_ptr().cast_mut()),
            uid: self.uid.unwrap_or(u32::MAX),
            gid: self.gid.unwrap_or(u32::MAX),
            env_policy: match self.env_policy {
                EnvPolicy::Keep => sys::LXC_ATTACH_KEEP_ENV,
                EnvPolicy::Clear => sys::LXC_ATTACH_CLEAR_ENV,
            },
            extra_env_vars: env.as_mut_ptr_or_null(),
            extra_keep_env: keep.as_mut_ptr_or_null(),
            stdin_fd: stdin,
            stdout_fd: self.stdout,
            stderr_fd: self.stderr,
            log_fd,
            #[cfg(lxc_attach_lsm_label_and_groups)]
            lsm_label: lsm.as_ref().map_or(ptr::null_mut(), |c| c.as_ptr().cast_mut()),
            #[cfg(lxc_attach_lsm_label_and_groups)]
            groups: sys::lxc_groups_t {
                size: groups.len(),
                list: if groups.is_empty() { ptr::null_mut() } else { groups.as_mut_ptr() },
            },
        };
        let padded = PaddedAttachOptions { raw, tail: [0; ATTACH_OPTIONS_TAIL] };
        Ok(RawAttachOptions { padded, log_dup, _keep: (cwd, lsm, env, keep, groups) })
    }
}

/// Whether an LSM liblxc drives is active on the host: AppArmor (its
/// module says `Y`) or SELinux (selinuxfs is mounted). `lsm_init_static`
/// takes the first of them that liblxc was built with and that is enabled,
/// else its no-op LSM. Whether liblxc was built with it is not checked:
/// liblxc's AppArmor driver uses no library that would show it, and the
/// distributions' builds have both.
fn liblxc_has_an_lsm() -> bool {
    std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y"))
        || std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// The size of the buffer that holds the attach options handed to
/// liblxc: at least `sizeof(lxc_attach_options_t)` of every known release
/// (`lxc_sys::layouts`), whatever the header the crate was built with.
/// A crate built with a header whose struct is 72 bytes (liblxc before
/// 4.0.7) may run with a library that reads 96; the bytes past the
/// header's struct are zero (`lsm_label` null, no `groups`), and so are
/// those past the largest known layout, up to this size, for a future
/// release that appends fields.
const ATTACH_OPTIONS_BUFFER: usize = 256;
const ATTACH_OPTIONS_TAIL: usize = ATTACH_OPTIONS_BUFFER - std::mem::size_of::<sys::lxc_attach_options_t>();
const _: () = assert!(ATTACH_OPTIONS_BUFFER >= sys::layouts::LARGEST_ATTACH_OPTIONS_SIZE);

/// `lxc_attach_options_t` followed by zeroed bytes up to
/// [`ATTACH_OPTIONS_BUFFER`].
#[repr(C)]
struct PaddedAttachOptions {
    raw: sys::lxc_attach_options_t,
    tail: [u8; ATTACH_OPTIONS_TAIL],
}
const _: () = assert!(std::mem::size_of::<PaddedAttachOptions>() >= ATTACH_OPTIONS_BUFFER);

type KeepAlive = (Option<CString>, Option<CString>, CStrArray, CStrArray, Vec<libc::gid_t>);

/// `lxc_attach_options_t`, padded to [`ATTACH_OPTIONS_BUFFER`] bytes,
/// with the heap memory its pointers point into.
pub(crate) struct RawAttachOptions {
    /// The duplicate of the log descriptor made for liblxc's terminal code,
    /// owned here until [`RawAttachOptions::give_log_dup_to_liblxc`]: an
    /// attach refused before liblxc is called closes it on drop.
    log_dup: Option<OwnedFd>,
    padded: PaddedAttachOptions,
    _keep: KeepAlive,
}

impl RawAttachOptions {
    /// The pointer to hand liblxc: valid for [`ATTACH_OPTIONS_BUFFER`]
    /// bytes (it is taken from the whole padded buffer, not its first
    /// field), alive as long as `self`.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut sys::lxc_attach_options_t {
        ptr::addr_of_mut!(self.padded).cast()
    }

    /// Hands the log descriptor's duplicate to liblxc, which closes it: to
    /// be called right before liblxc's attach.
    pub(crate) fn give_log_dup_to_liblxc(&mut self) {
        if let Some(fd) = self.log_dup.take() {
            let _ = std::os::fd::IntoRawFd::into_raw_fd(fd);
        }
    }

    /// The attached program's stdin.
    pub(crate) fn stdin_fd(&self) -> c_int {
        self.padded.raw.stdin_fd
    }
}

/// A `/dev/null` descriptor kept open for the life of the process. A
/// failure to open it (no descriptor free at that moment) is not
/// remembered: the next attach tries again.
fn dev_null() -> Result<RawFd> {
    static NULL: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = NULL.get() {
        return Ok(fd.as_raw_fd());
    }
    let fd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|source| Error::Io { op: "open /dev/null", source })?;
    let fd = above_stdio(OwnedFd::from(fd))?;
    // Another thread may have set it first: then this one is closed.
    Ok(NULL.get_or_init(|| fd).as_raw_fd())
}

/// A program and its arguments, prepared in the caller so that the attached
/// child only calls async-signal-safe functions.
struct ExecPayload {
    hs: Handshake,
    program: CString,
    argv: CStrArray,
    close_fds: bool,
    /// Read before the fork, for the child's descriptor sweep.
    sweep: FdSweep,
}

impl ExecPayload {
    fn new(program: &str, args: &[&str], close_fds: bool) -> Result<ExecPayload> {
        if program.is_empty() {
            return Err(Error::invalid("program", program, "must not be empty"));
        }
        let prog = cstring("program", program)?;
        let argv = CStrArray::new("argument", std::iter::once(program).chain(args.iter().copied()))?;
        Ok(ExecPayload { hs: Handshake::none(), program: prog, argv, close_fds, sweep: FdSweep::prepare() })
    }
}

/// Gives the calling (child) process default signal dispositions and an
/// empty signal mask, as a freshly started program expects: the caller's
/// handlers (a reaping SIGCHLD handler would take the exit statuses of the
/// child's own children), its ignored signals (`SIG_IGN` survives `exec`;
/// Rust programs ignore SIGPIPE) and its mask are not the attached
/// program's. Async-signal-safe: only `sigaction` and `sigprocmask`.
pub(crate) fn reset_signals_in_child() {
    // SAFETY: sigaction and sigprocmask on this process's own signal state,
    // with structures initialised here; SIGKILL and SIGSTOP are skipped and
    // numbers the kernel or libc refuses (glibc's internal real-time
    // signals) fail harmlessly.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut dfl.sa_mask);
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, &dfl, ptr::null_mut());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
    }
}

/// The caller's SIGINT and SIGQUIT dispositions, noted before an attach
/// whose program reads the caller's stdin (fd 0) and put back when the last
/// such attach in flight ends: liblxc (4.0 to 7.0, `lxc_attach`) then sets
/// both to `SIG_IGN` in the caller and never restores them.
pub(crate) struct CallerSignals(());

/// (attaches in flight that read fd 0, the dispositions noted by the first)
static CALLER_SIGNALS: std::sync::Mutex<(usize, Option<[libc::sigaction; 2]>)> =
    std::sync::Mutex::new((0, None));

impl CallerSignals {
    fn note() -> CallerSignals {
        let mut g = CALLER_SIGNALS.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 == 0 {
            // SAFETY: all-zero sigaction structs are valid out-buffers;
            // sigaction with a null new action only reads the disposition.
            g.1 = unsafe {
                let mut old: [libc::sigaction; 2] = std::mem::zeroed();
                let ok = libc::sigaction(libc::SIGINT, ptr::null(), &mut old[0]) == 0
                    && libc::sigaction(libc::SIGQUIT, ptr::null(), &mut old[1]) == 0;
                ok.then_some(old)
            };
        }
        g.0 += 1;
        CallerSignals(())
    }
}

impl Drop for CallerSignals {
    fn drop(&mut self) {
        let mut g = CALLER_SIGNALS.lock().unwrap_or_else(|e| e.into_inner());
        g.0 -= 1;
        if g.0 == 0 {
            if let Some(old) = g.1.take() {
                // SAFETY: puts back dispositions sigaction itself reported.
                unsafe {
                    libc::sigaction(libc::SIGINT, &old[0], ptr::null_mut());
                    libc::sigaction(libc::SIGQUIT, &old[1], ptr::null_mut());
                }
            }
        }
    }
}

/// The first message of the child on the status socket: it was reached
/// (with a pidfd of itself, where the kernel and the container's seccomp
/// policy allow one).
const REACHED: u8 = b'S';
/// A later message: `execvp` failed, with its errno (4 bytes) after it.
const EXEC_FAILED: u8 = b'E';
/// A later message: the child got no go and ended without running anything.
const ABORTED: u8 = b'A';

/// How long a child waits for the caller's go. liblxc may itself wait for
/// the child before it returns to the caller (a seccomp notifier it fails to
/// set up), and the caller sends the go only after liblxc returned: the
/// child then gives up, runs nothing, and the attach fails. Long enough for
/// a caller slowed down by valgrind or a loaded machine.
const GO_TIMEOUT_MS: c_int = 30_000;

/// The descriptors of the handshake between the caller and the attached
/// child, as the child sees them (see [`Pipes`]).
#[derive(Clone, Copy)]
struct Handshake {
    /// The child's end of the status socket.
    status_w: RawFd,
    /// The child's end of the go socket; -1: no go (a terminal attach,
    /// where liblxc returns only once the child has ended).
    go_r: RawFd,
    /// The caller's end of the go socket, which the child inherited and
    /// closes.
    go_w: RawFd,
    /// A listed descriptor the child itself needs (a session's socket).
    keep: RawFd,
    /// Whether the caller reads the child's later reports while the child
    /// runs (`spawn`, closures, terminal attaches): then the child sends a
    /// private socket for them with its marker, over which the end of file
    /// at exec comes from this child alone. A caller that only waits for
    /// the child's end reads them once the child has ended, never blocking
    /// on the status socket (see `attach_raw`), and needs no such socket.
    early: bool,
    /// The calling thread's name, which the child takes back once it has
    /// its go (until then it bears the attach's [`AttachName`]); all zero:
    /// left as it is.
    name: [u8; 16],
}

impl Handshake {
    fn none() -> Handshake {
        Handshake { status_w: -1, go_r: -1, go_w: -1, keep: -1, early: true, name: [0; 16] }
    }

    fn of(pipes: &Pipes, terminal: bool, early: bool) -> Handshake {
        Handshake {
            status_w: pipes.status_w.as_raw_fd(),
            go_r: if terminal { -1 } else { pipes.go_r.as_raw_fd() },
            go_w: pipes.go_w.as_raw_fd(),
            keep: -1,
            early: early || terminal,
            name: thread_name().unwrap_or([0; 16]),
        }
    }

    /// In the attached child, first thing: default signal state, the other
    /// attaches' listed descriptors closed (a child holding another
    /// child's go socket while it waits for its own would deadlock with
    /// it), the report, then the go. The report is the marker with, as
    /// `SCM_RIGHTS`, a pidfd of this process and, when the caller reads
    /// the later reports while this child runs ([`Handshake::early`]), one
    /// end of a socket pair made here, which no other process can hold:
    /// the later messages (an exec errno, or that the child gave up) and
    /// the end of file at exec go over it, so that the caller's wait for
    /// them depends on this process alone. A child that could not open a
    /// pidfd of itself (seccomp) sends the socket pair's end in any case:
    /// the caller takes a pidfd of it while it waits for the go, and that
    /// socket, not hung up after that, proves the pidfd this child's. Ends
    /// the child, running nothing, when the go does not come. Returns the
    /// descriptor for the later messages.
    /// Async-signal-safe: only syscalls, on memory prepared before the fork.
    fn run_in_child(&self) -> RawFd {
        reset_signals_in_child();
        crate::fds::close_listed_in_child(&[self.status_w, self.keep, 0, 1, 2]);
        // SAFETY: closes this child's copy of the caller's end.
        unsafe { libc::close(self.go_w) };
        // The process's own pidfd, in its own pid namespace (the pid from
        // the kernel: glibc's cache is stale in liblxc's raw clone).
        // SAFETY: getpid and pidfd_open take no pointers.
        let me = unsafe { libc::syscall(libc::SYS_getpid) } as libc::pid_t;
        // SAFETY: as above.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, me, 0) } as RawFd;
        let mut pair = [-1 as RawFd; 2];
        // The private socket: for the reports of a child whose caller reads
        // them while it runs, and, for a child without a pidfd of its own,
        // as the proof that it is still alive when the caller has taken one
        // (only this process holds the other end).
        let private = (self.early || pidfd < 0) && {
            // SAFETY: pair is a valid array of two ints.
            let r = unsafe {
                libc::socketpair(
                    libc::AF_UNIX,
                    libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                    0,
                    pair.as_mut_ptr(),
                )
            };
            r == 0
        };
        let mut fds = [-1 as RawFd; 2];
        let mut n = 0;
        let mut what = 0u8;
        if pidfd >= 0 {
            fds[n] = pidfd;
            n += 1;
            what |= HAS_PIDFD;
        }
        if private {
            fds[n] = pair[1];
            n += 1;
            what |= HAS_PRIVATE;
        }
        let mut report = self.status_w;
        if send_with_fds(self.status_w, &[REACHED, what], &fds[..n]) {
            if private {
                report = pair[0];
            }
        } else {
            // Passing descriptors can be refused (too many in flight for
            // this user, an LSM rule): the marker alone then, which the
            // caller refuses (no go) unless this is a terminal attach.
            if !send_with_fds(self.status_w, &[REACHED, 0], &[]) {
                // Nothing can reach the caller: end now rather than wait.
                // SAFETY: ends the child without running anything.
                unsafe { libc::_exit(127) }
            }
        }
        // SAFETY: closes descriptors this child opened or no longer needs;
        // `report` stays open.
        unsafe {
            if pidfd >= 0 {
                libc::close(pidfd);
            }
            if private {
                libc::close(pair[1]);
                if report == pair[0] {
                    libc::close(self.status_w);
                } else {
                    libc::close(pair[0]);
                }
            }
        }
        if self.go_r >= 0 {
            let go = wait_for_go(self.go_r);
            // SAFETY: this child's own end of the go socket.
            unsafe { libc::close(self.go_r) };
            if !go {
                send_with_fds(report, &[ABORTED], &[]);
                // SAFETY: ends the child without running anything.
                unsafe { libc::_exit(127) }
            }
        }
        // The caller's name back (a closure child keeps it; an exec
        // replaces it). Until now the child bore the attach's name, by
        // which a caller whose attach failed finds it.
        if self.name[0] != 0 {
            // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most
            // 16 bytes: `name` is 16 bytes and came from PR_GET_NAME.
            unsafe { libc::prctl(libc::PR_SET_NAME, self.name.as_ptr()) };
        }
        report
    }
}

/// In the "reached" message: a pidfd of the child is attached.
const HAS_PIDFD: u8 = 1;
/// In the "reached" message: the child's private report socket is attached
/// (after the pidfd when both are).
const HAS_PRIVATE: u8 = 2;

/// Sends `msg`, with `fds` (at most 2) as `SCM_RIGHTS`, on the socket
/// `sock`; whether it was sent. Runs in the attached child before its exec,
/// so it stays on `libc` (the caller's side uses rustix): async-signal-safe,
/// the control buffer is on the stack.
pub(crate) fn send_with_fds(sock: RawFd, msg: &[u8], fds: &[RawFd]) -> bool {
    #[repr(C)]
    union Cmsg {
        buf: [u8; 64],
        _align: libc::cmsghdr,
    }
    let fds = &fds[..fds.len().min(2)];
    // SAFETY: all-zero is a valid msghdr and control buffer; the iovec and
    // the control buffer live on this stack frame for the call; CMSG_* only
    // compute offsets within the buffer, whose 64 bytes hold an SCM_RIGHTS
    // message of two ints.
    unsafe {
        let mut iov = libc::iovec { iov_base: msg.as_ptr() as *mut c_void, iov_len: msg.len() };
        let mut cmsg = Cmsg { buf: [0; 64] };
        let mut hdr: libc::msghdr = std::mem::zeroed();
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        if !fds.is_empty() {
            let bytes = std::mem::size_of_val(fds) as u32;
            hdr.msg_control = cmsg.buf.as_mut_ptr().cast();
            hdr.msg_controllen = libc::CMSG_SPACE(bytes) as _;
            let c = libc::CMSG_FIRSTHDR(&hdr);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes) as _;
            ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(c), bytes as usize);
        }
        loop {
            if libc::sendmsg(sock, &hdr, libc::MSG_NOSIGNAL) >= 0 {
                return true;
            }
            if *libc::__errno_location() != libc::EINTR {
                return false;
            }
        }
    }
}

/// One message from a status socket, with the descriptors it carried (the
/// first two, in order; close-on-exec; any more are closed); `Ok(None)` at
/// end of file. (The caller's side: rustix's typed `recvmsg`, whose control
/// buffer hands each descriptor over as an `OwnedFd` and closes those not
/// taken.)
pub(crate) fn recv_with_fds(
    sock: impl std::os::fd::AsFd,
    buf: &mut [u8],
) -> io::Result<Option<(usize, [Option<OwnedFd>; 2])>> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(8))];
    loop {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [io::IoSliceMut::new(buf)];
        let msg = match recvmsg(sock.as_fd(), &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(msg) => msg,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut fds: [Option<OwnedFd>; 2] = [None, None];
        let mut got = 0;
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = m {
                for fd in rights {
                    if got < 2 {
                        // Above 0-2 (a caller whose stdio is closed would
                        // otherwise hand them on as stdio).
                        fds[got] = above_stdio(fd).ok();
                        got += 1;
                    }
                }
            }
        }
        return Ok((msg.bytes > 0).then_some((msg.bytes, fds)));
    }
}

/// What a pidfd the attached child sent of itself names.
enum SentPidfd {
    /// The child `pid` (the pid liblxc returned, in this process's pid
    /// namespace): its fdinfo's `Pid:` (in the namespace of the `/proc`
    /// mounted here) or one of its `NSpid:` numbers (one per namespace from
    /// that one down: a `/proc` of an ancestor namespace) is `pid`; or that
    /// cannot be told (no `/proc`, or `Pid: 0`: the child is not visible in
    /// the namespace of the `/proc` mounted here), and the descriptor,
    /// which came over the child's own socket, is taken as the child's.
    Child(OwnedFd),
    /// A process that has ended and been reaped (`Pid: -1`): the child,
    /// reaped by a SIGCHLD handler of the caller. Signalling it reaches
    /// nobody; waiting through it fails.
    Reaped(OwnedFd),
    /// Another process, or an fdinfo that could not be read for another
    /// reason than a missing `/proc`.
    Other,
}

fn classify_sent_pidfd(fd: OwnedFd, pid: libc::pid_t) -> SentPidfd {
    let mut buf = [0u8; 512];
    let info = match fdinfo(&fd, &mut buf) {
        Ok(info) => info,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return SentPidfd::Child(fd),
        Err(_) => return SentPidfd::Other,
    };
    let wanted = pid.to_string();
    // The child's number at this process's own level of the namespaces
    // below the one of the `/proc` mounted here.
    let at_our_level = || {
        let line = info.split(|b| *b == b'\n').find_map(|l| l.strip_prefix(b"NSpid:"))?;
        let level = own_nspid_level()?;
        line.split(|b| b.is_ascii_whitespace())
            .filter(|n| !n.is_empty())
            .nth(level)
            .map(|n| n == wanted.as_bytes())
    };
    match fdinfo_pid(info) {
        Some(-1) => SentPidfd::Reaped(fd),
        Some(0) => SentPidfd::Child(fd),
        // `Pid:` is in the namespace of the `/proc` mounted here: ours
        // when this process is at its level (or the level is unknown).
        Some(p) if p == pid && matches!(own_nspid_level(), Some(0) | None) => SentPidfd::Child(fd),
        _ if at_our_level() == Some(true) => SentPidfd::Child(fd),
        _ => SentPidfd::Other,
    }
}

/// What the caller could take as a handle on an attached child that sent
/// no usable pidfd of itself (see `take_pidfd`).
enum Handle {
    /// A pidfd that names the child for sure.
    Proven(OwnedFd),
    /// The child has ended (a pidfd of it when one could be had).
    Dead(Option<OwnedFd>),
    /// The kernel has no pidfds (before Linux 5.3), or (a terminal attach,
    /// Linux before 6.5) none can be proven: the child is addressed by pid.
    PidOnly,
    /// A pidfd, if any, could not be proven the child's.
    Unproven,
    /// `pidfd_open` failed otherwise.
    Failed(io::Error),
}

impl Handle {
    /// Hands a child that gets no go (or has ended) to the reaper: through
    /// a pidfd proven its, else by pid as `reap_unproven` does.
    fn reap(self, pid: libc::pid_t) {
        match self {
            Handle::Proven(fd) | Handle::Dead(Some(fd)) => {
                crate::reaper::reap_spawned(Spawned { pid, pidfd: Some(fd) })
            }
            _ => reap_unproven(pid),
        }
    }
}

/// How long a failed attach waits for its child's marker or for the end of
/// file on the status socket (see [`reap_abandoned`]).
const ABANDONED_WAIT_MS: i32 = 1000;

/// After liblxc's attach failed: hands the child it may still have made to
/// the reaper. liblxc 4.0.7 to 7.0 read an end of file on their sync socket
/// as the go (`sync_wait`), so when the caller's part fails before it lets
/// the intermediate process go on (moving it into the cgroups, the
/// container's resource limits), the intermediate still clones the attached
/// process, a child of this process. That child reaches the handshake, gets
/// no go, and ends without running anything; unreaped, it would stay a
/// zombie that keeps the container from stopping (a dying init waits until
/// every process of its pid namespace is reaped). Its marker, which only it
/// can send (other children close the crate's listed sockets first), brings
/// its pidfd. The socket gives the marker or an end of file at once in
/// practice (liblxc has reaped its intermediate before it returns); a
/// process that inherited the socket from another thread's fork can hold
/// the end of file back, hence the bound.
///
/// A child that ends inside liblxc before the crate's code runs sends no
/// marker: on a host with an LSM it first waits for the label's descriptor
/// from the caller (`sync_wait_fd`), gets the end of file and exits. It
/// bears the name the calling thread had during liblxc's call (`name`: a
/// name of this attach's own, see [`AttachName`]), which it inherited
/// through liblxc's forks and keeps until it has the crate's go: such a
/// child among the calling thread's children (`/proc/thread-self/children`,
/// where liblxc's `CLONE_PARENT` puts it) is handed to the reaper. The
/// name, not the list's change, says which child is the attach's: children
/// of another thread that ended meanwhile join the list too.
fn reap_abandoned(status_r: OwnedFd, name: &[u8]) {
    if crate::session::wait_readable(&status_r, ABANDONED_WAIT_MS) {
        let mut buf = [0u8; 8];
        if let Ok(Some((2, [fd0, fd1]))) = recv_with_fds(&status_r, &mut buf) {
            let pidfd = match (buf[0] == REACHED, buf[1] & HAS_PIDFD != 0, buf[1] & HAS_PRIVATE != 0) {
                (true, true, _) => fd0,
                // No pidfd of its own: its private socket names it (Linux 6.5).
                (true, false, true) => fd0.and_then(|private| peer_pidfd(&private).ok()),
                _ => None,
            };
            drop(fd1);
            if let Some(fd) = pidfd {
                if let Some(pid) = pidfd_pid(&fd).filter(|pid| *pid > 0) {
                    crate::reaper::reap_spawned(Spawned { pid, pidfd: Some(fd) });
                    return;
                }
            }
        }
    }
    // No name of its own (a terminal attach), or the pids of `/proc` not
    // this process's own (they are only at its level).
    if name.is_empty() || own_nspid_level() != Some(0) {
        return;
    }
    let Ok(children) = std::fs::read_to_string("/proc/thread-self/children") else { return };
    for pid in children.split_ascii_whitespace().filter_map(|p| p.parse::<libc::pid_t>().ok()) {
        let named = || process_name(pid).is_some_and(|n| n == name);
        match pidfd_open(pid) {
            // Named after the pidfd was opened, and still unreaped after
            // that (the pidfd still names `pid`): the pidfd is the child's,
            // whatever a SIGCHLD handler of the caller reaps meanwhile.
            Ok(fd) => {
                if named() {
                    if let SentPidfd::Child(fd) = classify_sent_pidfd(fd, pid) {
                        crate::reaper::reap_spawned(Spawned { pid, pidfd: Some(fd) });
                    }
                }
            }
            // Gone: reaped by someone else.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            // No pidfd to be had (no pidfds before Linux 5.3, a seccomp
            // profile refusing them, no descriptor left): by pid, only
            // while no handler of the caller can reap it first (the pid
            // then stays this child's until it is waited for).
            Err(_) => {
                if crate::helper::sigchld_default() && named() {
                    crate::reaper::reap_spawned(Spawned { pid, pidfd: None });
                }
            }
        }
    }
}

/// The name (`comm`) of the process `pid`, from `/proc/<pid>/stat` (kept
/// by a zombie), without its NUL padding.
fn process_name(pid: libc::pid_t) -> Option<Vec<u8>> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.iter().position(|b| *b == b'(')?;
    let close = stat.iter().rposition(|b| *b == b')')?;
    stat.get(open + 1..close).map(<[u8]>::to_vec)
}

/// The calling thread's name (`PR_GET_NAME`), NUL-padded to 16 bytes.
fn thread_name() -> Option<[u8; 16]> {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL-terminated, into
    // the buffer, which has 16.
    let r = unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    (r == 0).then_some(name)
}

/// A name of one attach's own, which the calling thread bears during
/// liblxc's attach and so passes to the processes liblxc forks for it (see
/// [`reap_abandoned`]); the thread's own name comes back on drop.
struct AttachName {
    before: Option<[u8; 16]>,
    /// `lxc-rs:` and 32 random bits in hex (15 bytes, the most a name
    /// holds): not a name another program could bear by design (a counter
    /// could be guessed, and a program file named after it would bear it).
    token: [u8; 16],
}

impl AttachName {
    fn set() -> AttachName {
        use std::hash::{BuildHasher, Hasher};
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        // A counter hashed with std's randomly keyed SipHash: random bits,
        // distinct from the last attach's.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let n = h.finish() as u32;
        let mut token = [0u8; 16];
        token[..15].copy_from_slice(format!("lxc-rs:{n:08x}").as_bytes());
        let before = thread_name();
        if before.is_some() {
            // SAFETY: PR_SET_NAME reads a NUL-terminated string: `token`
            // has 15 bytes and a NUL.
            unsafe { libc::prctl(libc::PR_SET_NAME, token.as_ptr()) };
        }
        AttachName { before, token }
    }

    /// The token, without its NUL; empty when the thread could not be
    /// renamed.
    fn token(&self) -> &[u8] {
        if self.before.is_some() {
            &self.token[..15]
        } else {
            &[]
        }
    }
}

impl Drop for AttachName {
    fn drop(&mut self) {
        // Unless the thread was renamed meanwhile (from another thread,
        // through `/proc/self/task/TID/comm`): that name stays.
        if let (Some(name), Some(now)) = (&self.before, thread_name()) {
            if now == self.token {
                // SAFETY: as in `set`: `name` came from PR_GET_NAME.
                unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
            }
        }
    }
}

/// A child of this process that nothing names for sure (no proven pidfd):
/// waited for by pid, so that it never stays a zombie that would keep its
/// container from stopping, but only while `SIGCHLD` has its default
/// disposition. A caller with a handler of its own reaps its children
/// itself, and a wait by pid could then take another child's status
/// after the pid was reused.
fn reap_unproven(pid: libc::pid_t) {
    if crate::helper::sigchld_default() {
        crate::reaper::reap_spawned(Spawned { pid, pidfd: None });
    }
}

/// A pidfd of an attached child that sent none of itself, proven its.
/// With its private socket (only the child holds the other end): first
/// `SO_PEERPIDFD` on it (Linux 6.5), which names the child exactly
/// whatever happened to it; else `pidfd_open(pid)` while the child waits
/// for the go, proven by the socket not being hung up after it. A terminal
/// attach's child does not wait (liblxc returned once its session ended):
/// without `SO_PEERPIDFD` it is addressed by pid.
fn take_pidfd(pid: libc::pid_t, private: Option<&OwnedFd>, terminal: bool) -> Handle {
    let Some(private) = private else {
        return if terminal { Handle::PidOnly } else { Handle::Unproven };
    };
    match peer_pidfd(private).map(|fd| classify_sent_pidfd(fd, pid)) {
        Ok(SentPidfd::Child(fd)) if terminal || !crate::session::wait_readable(&fd, 0) => {
            return Handle::Proven(fd)
        }
        Ok(SentPidfd::Child(fd) | SentPidfd::Reaped(fd)) => return Handle::Dead(Some(fd)),
        Ok(SentPidfd::Other) => return Handle::Unproven,
        // Before Linux 6.5.
        Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {}
        // A terminal attach's child reaped already (EINVAL: by a SIGCHLD
        // handler of the caller; its program ran): addressed by pid, which
        // `child_pid` then refuses.
        Err(_) if terminal => return Handle::PidOnly,
        // The child was reaped already (EINVAL), or another failure.
        Err(_) => return Handle::Dead(None),
    }
    if terminal {
        return Handle::PidOnly;
    }
    match pidfd_open(pid) {
        Ok(fd) if !hung_up(private) => Handle::Proven(fd),
        Ok(_) => Handle::Dead(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Handle::PidOnly,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Handle::Dead(None),
        Err(e) => Handle::Failed(e),
    }
}

/// This process's level below the pid namespace of the `/proc` mounted
/// here (the number of its `NSpid:` entries less one); read once (a
/// process's own pid namespace never changes).
fn own_nspid_level() -> Option<usize> {
    static LEVEL: OnceLock<Option<usize>> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
        line.split_whitespace().count().checked_sub(1)
    })
}

/// A pidfd of the process that made the socket pair `sock` belongs to
/// (`SO_PEERPIDFD`, Linux 6.5): on the child's private socket, the child,
/// whatever happened to it since.
fn peer_pidfd(sock: &OwnedFd) -> io::Result<OwnedFd> {
    let mut fd: c_int = -1;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: getsockopt on our socket with a c_int out-buffer of `len`
    // bytes; on success the kernel installed a new descriptor, ours.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERPIDFD,
            (&mut fd as *mut c_int).cast(),
            &mut len,
        )
    };
    if r != 0 || fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just opened fd for us; nothing else owns it.
    let fd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
    above_stdio(fd).map_err(|e| io::Error::other(e.to_string()))
}

/// Whether the other end of the child's private socket has closed (the
/// child has ended) or it sent something, or the poll failed: polled
/// without waiting. Only "nothing happened" proves the child alive.
fn hung_up(sock: &OwnedFd) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(sock, PollFlags::IN)];
    let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
    !matches!(poll(&mut fds, Some(&zero)), Ok(0))
}

/// The pid a pidfd refers to, in this process's pid namespace (the `Pid:`
/// line of its fdinfo); `None` for another kind of descriptor.
pub(crate) fn pidfd_pid(fd: &OwnedFd) -> Option<libc::pid_t> {
    let mut buf = [0u8; 512];
    fdinfo_pid(fdinfo(fd, &mut buf).ok()?)
}

/// The fdinfo of `fd` (`/proc/self/fdinfo/N`), read into `buf`: one read
/// holds the whole of a pidfd's (one record of a few hundred bytes).
fn fdinfo<'b>(fd: &OwnedFd, buf: &'b mut [u8]) -> io::Result<&'b [u8]> {
    use std::io::Read;
    let n = std::fs::File::open(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?.read(buf)?;
    Ok(&buf[..n])
}

/// The `Pid:` line of a pidfd's fdinfo.
fn fdinfo_pid(info: &[u8]) -> Option<libc::pid_t> {
    let line = info.split(|b| *b == b'\n').find_map(|l| l.strip_prefix(b"Pid:"))?;
    std::str::from_utf8(line).ok()?.trim().parse().ok()
}

/// Runs in the attached child (forked by liblxc): the handshake, then the
/// program.
extern "C" fn exec_program(payload: *mut c_void) -> c_int {
    // SAFETY: payload is the ExecPayload the caller passed to attach; the
    // child has its own copy of the caller's memory, where it is still alive.
    let p = unsafe { &*(payload as *const ExecPayload) };
    let report = p.hs.run_in_child();
    if p.close_fds {
        // Every descriptor above 2 closes at exec; the status socket too,
        // which tells the caller that exec succeeded. close_range, or on a
        // kernel without CLOSE_RANGE_CLOEXEC (before 5.11) a sweep of
        // /proc/self/fd or of every number below RLIMIT_NOFILE, all without
        // allocating.
        fds_from_3_in_child(FdAction::Cloexec, -1, &p.sweep);
    }
    // SAFETY: only async-signal-safe calls (execvp, sendmsg, _exit) on
    // memory prepared before the fork.
    unsafe {
        libc::execvp(p.program.as_ptr(), p.argv.as_ptr().cast());
        let e = (*libc::__errno_location()).to_ne_bytes();
        send_with_fds(report, &[EXEC_FAILED, e[0], e[1], e[2], e[3]], &[]);
        libc::_exit(127)
    }
}

struct ClosurePayload<F> {
    hs: Handshake,
    /// Called through `&mut` in the child, never moved or dropped there:
    /// its captures belong to the caller, which drops them once, after
    /// the attach.
    f: F,
}

/// Runs a Rust closure in the attached child; a panic becomes exit status
/// 101 and never unwinds into liblxc. The closure is called by reference
/// and the child ends with `_exit`: nothing the closure captured is dropped
/// in the child.
extern "C" fn run_closure<F: FnMut() -> i32>(payload: *mut c_void) -> c_int {
    // SAFETY: payload is the ClosurePayload<F> the caller passed to attach,
    // alive in the child's copy of the caller's memory.
    let p = unsafe { &mut *(payload as *mut ClosurePayload<F>) };
    let report = p.hs.run_in_child();
    // SAFETY: the report socket this child holds: closing it tells the
    // caller the closure runs.
    unsafe { libc::close(report) };
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (p.f)())).unwrap_or(101);
    // SAFETY: _exit ends the child without running the caller's atexit
    // handlers or destructors, which belong to the parent.
    unsafe { libc::_exit(code) }
}

/// What liblxc's own exec functions get, behind the crate's handshake.
struct LiblxcPayload {
    hs: Handshake,
    /// `lxc_attach_run_command`'s argument; `None`: `lxc_attach_run_shell`.
    cmd: Option<sys::lxc_attach_command_t>,
}

/// The handshake, then liblxc's `lxc_attach_run_command` or
/// `lxc_attach_run_shell`.
extern "C" fn run_liblxc(payload: *mut c_void) -> c_int {
    // SAFETY: payload is the LiblxcPayload the caller passed to attach,
    // alive in the child's copy of the caller's memory.
    let p = unsafe { &mut *(payload as *mut LiblxcPayload) };
    // The report socket is close-on-exec: it closes when liblxc's function
    // executes the program.
    let _report = p.hs.run_in_child();
    // SAFETY: liblxc's exec functions, with the argument each expects
    // (the command points into the caller's payload, copied into the
    // child); the status socket is close-on-exec.
    unsafe {
        match p.cmd.as_mut() {
            Some(cmd) => sys::lxc_attach_run_command((cmd as *mut sys::lxc_attach_command_t).cast()),
            None => sys::lxc_attach_run_shell(ptr::null_mut()),
        }
    }
}

/// In the attached child: waits for the caller's go byte. End of file (the
/// caller gave up: liblxc's attach failed, or no pidfd could be had), an
/// error or [`GO_TIMEOUT_MS`] without it: false. Async-signal-safe: only
/// `poll` and `read`.
fn wait_for_go(go_r: RawFd) -> bool {
    let mut p = libc::pollfd { fd: go_r, events: libc::POLLIN, revents: 0 };
    loop {
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, GO_TIMEOUT_MS) };
        if n > 0 {
            let mut b = 0u8;
            // SAFETY: reads one byte into b.
            let r = unsafe { libc::read(go_r, (&mut b as *mut u8).cast(), 1) };
            return r == 1 && b == GO;
        }
        // SAFETY: errno of this thread.
        if n == 0 || unsafe { *libc::__errno_location() } != libc::EINTR {
            return false;
        }
    }
}

/// The caller's go: liblxc's attach returned success, and the caller holds
/// a pidfd of the child (or cannot have one: see [`Spawned`]).
const GO: u8 = b'G';

/// `pid` as one process to wait for or signal by number: a positive number
/// (0 and negative numbers name process groups, or every process, to
/// `waitpid` and `kill`; rustix's `None` waits for any child of the group),
/// else ECHILD. Also ECHILD where the kernel has pidfds but this child has
/// none (a `TERMINAL` attach whose child could not open its own, before
/// Linux 6.5) while `SIGCHLD` is not at its default disposition: a handler
/// of the caller's (or `SA_NOCLDWAIT`) may have reaped it, and the number
/// may name another process by now.
pub(crate) fn child_pid(pid: libc::pid_t) -> io::Result<rustix::process::Pid> {
    let echild = || io::Error::from_raw_os_error(libc::ECHILD);
    if kernel_has_pidfds() && !crate::helper::sigchld_default() {
        return Err(echild());
    }
    // Checked first: rustix debug-asserts a non-negative number.
    (pid > 0).then(|| rustix::process::Pid::from_raw(pid)).flatten().ok_or_else(echild)
}

/// Whether the kernel has pidfds (`pidfd_open`, Linux 5.3); asked once.
fn kernel_has_pidfds() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| pidfd_open(std::process::id() as libc::pid_t).is_ok())
}

/// Waits for the child `pid` and returns its status.
pub(crate) fn wait_pid(pid: libc::pid_t) -> io::Result<ExitStatus> {
    loop {
        match rustix::process::waitpid(Some(child_pid(pid)?), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, status))) => return Ok(ExitStatus::from_raw(status.as_raw() as c_int)),
            Ok(None) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Non-blocking wait for the child `pid`.
pub(crate) fn try_wait_pid(pid: libc::pid_t) -> io::Result<Option<ExitStatus>> {
    match rustix::process::waitpid(Some(child_pid(pid)?), rustix::process::WaitOptions::NOHANG) {
        Ok(Some((_, status))) => Ok(Some(ExitStatus::from_raw(status.as_raw() as c_int))),
        Ok(None) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The sockets of one attach made with the crate's exec functions: the
/// status socket (the child reports that it was reached, with a pidfd of
/// itself when the caller reads that report first, and later an `execvp`
/// errno) and the go socket (the caller sends the go once liblxc's attach
/// succeeded and it holds a pidfd of the child; without it the child runs
/// nothing). Sequenced-packet sockets: messages
/// keep their bounds, and the caller's send cannot raise SIGPIPE.
/// The ends the caller keeps are listed (`fds.rs`), so that other closure
/// children never keep them; the child's ends are its own.
pub(crate) struct Pipes {
    status_r: OwnedFd,
    status_w: Guarded,
    go_r: OwnedFd,
    go_w: Guarded,
}

/// A close-on-exec `SOCK_SEQPACKET` pair, both above 2: a caller whose
/// stdio descriptors are closed would otherwise get them, and liblxc puts
/// the program's stdio over 0-2 in the child.
pub(crate) fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd)> {
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    let (a, b) = socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
        .map_err(|e| Error::Io { op: "socketpair", source: e.into() })?;
    Ok((above_stdio(a)?, above_stdio(b)?))
}

/// `fd`, moved to a number above 2 when it is one of 0-2.
pub(crate) fn above_stdio(fd: OwnedFd) -> Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    rustix::io::fcntl_dupfd_cloexec(&fd, 3)
        .map_err(|e| Error::Io { op: "fcntl(F_DUPFD_CLOEXEC)", source: e.into() })
}

fn pipes() -> Result<Pipes> {
    let (status_r, status_w) = seqpacket_pair()?;
    let (go_r, go_w) = seqpacket_pair()?;
    Ok(Pipes { status_r, status_w: Guarded::new(status_w), go_r, go_w: Guarded::new(go_w) })
}

/// A process started by an attach: its pid, and a pidfd of it (sent by the
/// process itself, or taken by the caller and proven the child's: see
/// `attach_raw`), so that waiting for it and signalling it can never reach
/// another process that reused the pid. `None` only where the kernel has
/// no pidfds (before Linux 5.3), and for a `TERMINAL` attach whose child
/// could not open its own on a kernel before 6.5.
pub(crate) struct Spawned {
    pub(crate) pid: libc::pid_t,
    pub(crate) pidfd: Option<OwnedFd>,
}

/// A pidfd of `pid` (`pidfd_open`).
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    above_stdio(fd).map_err(|e| match e {
        Error::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    })
}

/// Sends SIGKILL to the process `pidfd` refers to (`pidfd_send_signal`):
/// that process, or ESRCH once it is gone, never another one that reused
/// its pid. Through glibc's `syscall()`, not rustix's raw system call:
/// valgrind does not implement this call, and `./dev memcheck --containers`
/// emulates it with a preloaded `syscall()` (tests/valgrind/).
pub(crate) fn pidfd_kill(pidfd: &OwnedFd) -> io::Result<()> {
    // SAFETY: pidfd_send_signal on our pidfd with no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The report socket of an attached child whose exec this process did not
/// wait for (`attach_raw` without `confirm`, for a caller that only waits
/// for the child's end): read once the child has ended, when whatever it
/// sent is there.
#[derive(Debug)]
pub(crate) struct PendingExec {
    report: OwnedFd,
    container: String,
    program: String,
}

impl PendingExec {
    /// After the child ended with `status`: [`Error::ProgramNotStarted`]
    /// when it reported that `execvp` failed, [`Error::AttachFailed`] when
    /// it got no go in time; else `status`. Never blocks (another process
    /// may hold the status socket when the child made no private one).
    pub(crate) fn check(self, status: ExitStatus) -> Result<ExitStatus> {
        let mut buf = [0u8; 8];
        match rustix::net::recv(&self.report, &mut buf, rustix::net::RecvFlags::DONTWAIT) {
            Ok((5, _)) if buf[0] == EXEC_FAILED => Err(exec_failed(&self.container, &self.program, &buf)),
            Ok((n, _)) if n > 0 && buf[0] == ABORTED => {
                Err(Error::AttachFailed { container: self.container, status: Some(status) })
            }
            // End of file, or nothing: exec succeeded.
            _ => Ok(status),
        }
    }
}

/// [`Error::ProgramNotStarted`] from the child's `EXEC_FAILED` message.
fn exec_failed(container: &str, program: &str, msg: &[u8; 8]) -> Error {
    let errno = i32::from_ne_bytes([msg[1], msg[2], msg[3], msg[4]]);
    Error::ProgramNotStarted {
        container: container.to_owned(),
        program: program.to_owned(),
        source: io::Error::from_raw_os_error(errno),
    }
}

/// Sends SIGKILL to a spawned process: through its pidfd, or, without one
/// (a kernel before 5.3), by pid, which is this process's unreaped child.
fn kill_spawned(s: &Spawned) {
    match &s.pidfd {
        Some(fd) => {
            let _ = pidfd_kill(fd);
        }
        None => {
            if let Ok(p) = child_pid(s.pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
    }
}

/// The exit status a `waitid` reported, as `waitpid` encodes it.
fn status_from_waitid(st: &rustix::process::WaitIdStatus) -> ExitStatus {
    if let Some(code) = st.exit_status() {
        ExitStatus::from_raw((code & 0xff) << 8)
    } else {
        // Killed or dumped; anything else (a ptrace stop reported to a
        // tracer) by its signal, never as a clean exit.
        let sig = st
            .terminating_signal()
            .or(st.trapping_signal())
            .or(st.stopping_signal())
            .unwrap_or(libc::SIGKILL)
            & 0x7f;
        ExitStatus::from_raw(if st.dumped() { sig | 0x80 } else { sig })
    }
}

/// Waits for (`block`) or polls the child `pidfd` refers to, through the
/// pidfd (`waitid(P_PIDFD)`): never another process that reused its pid.
pub(crate) fn wait_pidfd(pidfd: &OwnedFd, block: bool) -> io::Result<Option<ExitStatus>> {
    use rustix::process::{waitid, WaitId, WaitIdOptions};
    let flags = WaitIdOptions::EXITED | if block { WaitIdOptions::empty() } else { WaitIdOptions::NOHANG };
    loop {
        match waitid(WaitId::PidFd(std::os::fd::AsFd::as_fd(pidfd)), flags) {
            Ok(st) => return Ok(st.map(|st| status_from_waitid(&st))),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Waits for a spawned process, through its pidfd where there is one.
pub(crate) fn wait_spawned(s: &Spawned) -> io::Result<ExitStatus> {
    match s.pidfd.as_ref().map(|fd| wait_pidfd(fd, true)) {
        Some(Ok(st)) => Ok(st.unwrap_or(ExitStatus::from_raw(0))),
        // Linux 5.3 has pidfds but not waitid(P_PIDFD): by pid, still ours.
        Some(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => wait_pid(s.pid),
        Some(Err(e)) => Err(e),
        None => wait_pid(s.pid),
    }
}

impl Container {
    /// Calls `lxc_container.attach` under the fork lock, and closes what
    /// liblxc leaks in the caller (see [`LeakProbe`]). A container that is
    /// stopped (liblxc would leak its `/proc/self` handle, which a process
    /// with more threads cannot tell from other threads' descriptors) or
    /// frozen (the attach would wait for the thaw) is refused first. When the
    /// program reads the caller's fd 0, the caller's SIGINT and SIGQUIT
    /// dispositions come back when the returned guard drops. Also returns
    /// the name the calling thread bore during the call, for
    /// [`reap_abandoned`].
    ///
    /// # Safety
    /// `exec` must be safe to call with `payload` in the attached child.
    unsafe fn call_attach(
        &self,
        exec: unsafe extern "C" fn(*mut c_void) -> c_int,
        payload: *mut c_void,
        raw: &mut RawAttachOptions,
        pid: &mut libc::pid_t,
        terminal: bool,
    ) -> Result<(c_int, Option<CallerSignals>, Vec<u8>)> {
        let f = method!(self.attach);
        // liblxc's attach waits for its intermediate child with waitpid,
        // which fails with ECHILD when the kernel reaps children by itself.
        if crate::helper::sigchld_ignored() {
            return Err(Error::SigchldIgnored { op: "attach" });
        }
        // An attached process joins the container's cgroup: in a frozen
        // container it would freeze before it could report, and the attach
        // would wait for the thaw with no way out. (From the init's /proc
        // and freezer files of the container's current run when the handle
        // has them: no round trip to the monitor.)
        self.run.check_attachable(self)?;
        // After the check, which opens descriptors of its own (init's pidfd
        // while it makes its cache): only liblxc's attach runs between the
        // probe and its clean-up.
        let probe = LeakProbe::take();
        let signals = (raw.stdin_fd() == 0).then(CallerSignals::note);
        crate::container::clear_errno();
        let guard = self.exclusive();
        // The attach's own name, which liblxc's children inherit, for
        // `reap_abandoned`; this thread's back right after the call. Not for
        // a terminal attach: liblxc runs the whole terminal session inside
        // the call, and the thread (a command-line tool's main thread: the
        // process's name in `ps`, `pgrep`, the journal) would bear it as
        // long.
        let name = (!terminal).then(AttachName::set);
        raw.give_log_dup_to_liblxc();
        // SAFETY: the container is live; raw's buffer, as large as any known
        // liblxc's options, and what it points to are owned by `raw`, alive
        // for the call; exec and payload are the caller's matching pair; pid
        // is a valid out-pointer.
        let ret = unsafe { f(self.as_raw(), Some(exec), payload, raw.as_mut_ptr(), pid) };
        let errno = io::Error::last_os_error().raw_os_error();
        let token = name.as_ref().map(|n| n.token().to_vec()).unwrap_or_default();
        drop(name);
        drop(guard);
        if let Some(p) = probe {
            p.close_leaked();
        }
        // SAFETY: restores this thread's errno for the caller's error.
        unsafe { *libc::__errno_location() = errno.unwrap_or(0) };
        Ok((ret, signals, token))
    }

    /// Calls `lxc_container.attach` with an exec function and its payload;
    /// then reads the status socket: nothing means liblxc failed before the
    /// exec function ran; the marker (with the child's pidfd) means it ran,
    /// and the caller sends the go; after it, end of file means exec
    /// succeeded (or the closure runs), an errno that exec failed. Without
    /// `confirm` (a caller that only waits for the child: `attach_run_wait`,
    /// `Command::status` and `output`), the child's report socket comes
    /// back as a [`PendingExec`], read once the child has ended: the caller
    /// sleeps twice (the marker, the exit), not three times, and the child
    /// makes no private socket.
    fn attach_raw(
        &self,
        opts: &AttachOptions<'_>,
        exec: unsafe extern "C" fn(*mut c_void) -> c_int,
        payload: *mut c_void,
        pipes: Pipes,
        program: Option<&str>,
        confirm: bool,
    ) -> Result<(Spawned, Option<PendingExec>)> {
        let Pipes { status_r, status_w, go_r, go_w } = pipes;
        let mut raw = opts.to_raw()?;
        let mut pid: libc::pid_t = -1;
        // SAFETY: raw.raw points into memory owned by `raw`, alive for the
        // call; exec and payload match (the caller passes the trampoline
        // for the payload's type).
        let (ret, signals, name) =
            unsafe { self.call_attach(exec, payload, &mut raw, &mut pid, opts.is_terminal()) }?;
        drop(signals);
        drop(status_w);
        drop(go_r);
        if ret < 0 || pid <= 0 {
            // A child that was reached gets no go (go_w closes here) and
            // ends without running anything.
            drop(go_w);
            let err = self.failed("attach");
            reap_abandoned(status_r, &name);
            if !self.is_running() {
                return Err(self.wrong_state("attach", "it must be running", State::Stopped));
            }
            return Err(err);
        }
        let terminal = opts.is_terminal();
        let read_err = |source| Error::Io { op: "read the attach status", source };
        let mut buf = [0u8; 8];
        let first = match recv_with_fds(&status_r, &mut buf) {
            Ok(first) => first,
            Err(source) => {
                // The child, if it was reached, gets no go and ends; nothing
                // proves a pidfd its.
                drop(go_w);
                reap_unproven(pid);
                return Err(read_err(source));
            }
        };
        let (reached, what, [fd0, fd1]) = match first {
            Some((2, fds)) if buf[0] == REACHED => (true, buf[1], fds),
            _ => (false, 0, [None, None]),
        };
        // In the order the child attached them.
        let (sent_pidfd, private) = match (what & HAS_PIDFD != 0, what & HAS_PRIVATE != 0) {
            (true, true) => (fd0, fd1),
            (true, false) => (fd0, None),
            (false, true) => (None, fd0),
            (false, false) => (None, None),
        };
        // Fewer descriptors than the child attached (this process's table
        // was full, or an LSM refused one), or none at all where the child
        // needs the caller to take its pidfd and had no socket to prove
        // itself alive after that (its descriptors could not be passed):
        // the child gets no go and ends. A pidfd of it is taken before the
        // go socket closes (while it waits, it is still this process's).
        let truncated =
            what & HAS_PIDFD != 0 && sent_pidfd.is_none() || what & HAS_PRIVATE != 0 && private.is_none();
        let sent = sent_pidfd.map(|fd| classify_sent_pidfd(fd, pid));
        if reached && (truncated || what == 0 && !terminal) {
            let handle = match sent {
                Some(SentPidfd::Child(fd)) => Handle::Proven(fd),
                // Not this process's child under SIGCHLD's default
                // disposition (see the main path below).
                Some(SentPidfd::Reaped(_)) => Handle::Unproven,
                _ => take_pidfd(pid, private.as_ref(), terminal),
            };
            drop(go_w);
            handle.reap(pid);
            let source = if truncated {
                io::Error::from_raw_os_error(libc::EMFILE)
            } else {
                io::Error::other("the attached child could not pass them")
            };
            return Err(Error::Io { op: "receive the attached child's descriptors", source });
        }
        let pidfd = match sent {
            _ if !reached => None,
            Some(SentPidfd::Child(fd)) => Some(fd),
            // Reaped by a SIGCHLD handler of the caller: the child of a
            // terminal attach ran its program and ended; any other ended
            // while it waited for the go, having run nothing.
            Some(SentPidfd::Reaped(fd)) if terminal => Some(fd),
            Some(SentPidfd::Reaped(_)) => {
                drop(go_w);
                // Under SIGCHLD's default disposition this process's own
                // child cannot read as reaped: the real one may then be
                // waiting still, and ends without the go.
                reap_unproven(pid);
                return Err(Error::AttachFailed { container: self.name().to_owned(), status: None });
            }
            // No pidfd from the child (seccomp refused it), or one that
            // names another process: taken here, while the child waits for
            // the go, and proven the child's by its private socket.
            Some(SentPidfd::Other) | None => match take_pidfd(pid, private.as_ref(), terminal) {
                Handle::Proven(fd) => Some(fd),
                Handle::PidOnly => None,
                handle @ (Handle::Dead(_) | Handle::Unproven) => {
                    // Dead before the go (killed from outside), or nothing
                    // names it for sure: no go, nothing signalled.
                    drop(go_w);
                    handle.reap(pid);
                    return Err(Error::AttachFailed { container: self.name().to_owned(), status: None });
                }
                Handle::Failed(source) => {
                    // The child gets no go and ends.
                    drop(go_w);
                    Handle::Unproven.reap(pid);
                    return Err(Error::Io { op: "pidfd_open", source });
                }
            },
        };
        if reached && !terminal {
            // MSG_NOSIGNAL: no SIGPIPE if the child has gone.
            let _ = rustix::net::send(&go_w, &[GO], rustix::net::SendFlags::NOSIGNAL);
        }
        drop(go_w);
        let spawned = Spawned { pid, pidfd };
        // Later messages come over the child's private socket when it sent
        // one (no other process holds its other end).
        let report = private.unwrap_or(status_r);
        if reached && !confirm {
            let pending = PendingExec {
                report,
                container: self.name().to_owned(),
                program: program.unwrap_or_default().to_owned(),
            };
            return Ok((spawned, Some(pending)));
        }
        let second = if reached { recv_with_fds(&report, &mut buf) } else { Ok(None) };
        drop(report);
        match second {
            Ok(None) if reached => Ok((spawned, None)),
            Ok(Some((5, _))) if buf[0] == EXEC_FAILED => {
                if spawned.pidfd.is_some() || crate::helper::sigchld_default() {
                    let _ = wait_spawned(&spawned);
                }
                Err(exec_failed(self.name(), program.unwrap_or_default(), &buf))
            }
            Err(source) => {
                // Whatever runs, nobody owns it: it ends now (by pid only
                // while no SIGCHLD handler of the caller may have reaped it).
                if spawned.pidfd.is_some() || crate::helper::sigchld_default() {
                    kill_spawned(&spawned);
                    crate::reaper::reap_spawned(spawned);
                }
                Err(read_err(source))
            }
            // Not reached (liblxc failed in the child), or no go in time.
            // Without a pidfd (not reached), waited for by pid only while
            // SIGCHLD has its default disposition (see `reap_unproven`).
            _ => {
                let status = if spawned.pidfd.is_some() || crate::helper::sigchld_default() {
                    wait_spawned(&spawned).ok()
                } else {
                    None
                };
                Err(Error::AttachFailed { container: self.name().to_owned(), status })
            }
        }
    }

    /// Starts `program` with `args` in the container and returns its pid
    /// (a child of the caller) without waiting.
    pub(crate) fn attach_spawn(
        &self,
        opts: &AttachOptions<'_>,
        program: &str,
        args: &[&str],
        confirm: bool,
    ) -> Result<(Spawned, Option<PendingExec>)> {
        let mut payload = ExecPayload::new(program, args, opts.close_fds)?;
        let pipes = pipes()?;
        payload.hs = Handshake::of(&pipes, opts.is_terminal(), confirm);
        self.attach_raw(
            opts,
            exec_program,
            &payload as *const ExecPayload as *mut c_void,
            pipes,
            Some(program),
            confirm,
        )
    }

    /// Runs `program` with `args` in the running container and waits for
    /// it (`attach_run_wait`, `lxc-attach -- program args`). The program is
    /// looked up in the container's `PATH`.
    ///
    /// The status tells an exit code from a death by signal
    /// ([`ExitStatusExt::signal`](std::os::unix::process::ExitStatusExt::signal)).
    /// A program that cannot be started (not found, not executable) is
    /// [`Error::ProgramNotStarted`], and liblxc's own failure to attach is
    /// [`Error::AttachFailed`]: neither is confused with a program that
    /// exits 126, 127 or 255. A process attached to a frozen container is
    /// frozen with it: the call returns after [`Container::unfreeze`].
    ///
    /// ```no_run
    /// let c = lxc::Container::new("web")?;
    /// let status = c.attach_run_wait(&lxc::AttachOptions::new(), "ls", &["-l", "/"])?;
    /// assert!(status.success());
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn attach_run_wait(
        &self,
        opts: &AttachOptions<'_>,
        program: &str,
        args: &[&str],
    ) -> Result<ExitStatus> {
        let (spawned, pending) = self.attach_spawn(opts, program, args, false)?;
        let status = wait_spawned(&spawned).map_err(|source| Error::Io { op: "waitpid", source })?;
        match pending {
            Some(p) => p.check(status),
            None => Ok(status),
        }
    }

    /// Runs a Rust closure inside the running container, in a child process
    /// that liblxc forks and attaches (ruby-lxc's `attach { ... }`,
    /// python3-lxc's `attach`), and returns the child without waiting. The
    /// closure's return value is the child's exit code. Wait for the child
    /// before the container stops: the container's dying init waits until
    /// every process of its pid namespace is reaped, and this child is the
    /// caller's to reap.
    ///
    /// To run a program, [`Container::command`] and
    /// [`Container::attach_run_wait`] are safe: they only `exec` in the
    /// child.
    ///
    /// # Safety
    ///
    /// The closure runs in a copy of the calling process made by `fork`, in
    /// which only the calling thread exists; as with std's
    /// [`CommandExt::pre_exec`](std::os::unix::process::CommandExt::pre_exec),
    /// the caller must make sure that what the closure does is sound there:
    ///
    /// * It must not wait for anything another thread of the caller may
    ///   have held or been doing at the moment of the fork: a `Mutex` or
    ///   `RwLock` (those threads do not exist in the child, so the lock is
    ///   never released), std's stdout and stderr locks (`println!`,
    ///   `eprintln!`, and the default panic hook, which prints), a
    ///   channel's other end, a thread pool, a `OnceLock` being initialised.
    /// * It must not rely on data that another thread was changing at the
    ///   fork (it sees it half-changed), nor start threads or an async
    ///   runtime.
    /// * Allocation is fine with glibc's allocator (liblxc forks with
    ///   glibc's `fork`, which leaves `malloc` usable in the child); not
    ///   with an allocator that is not fork-safe.
    ///
    /// * It must not call this crate on any [`Container`] (nor liblxc):
    ///   the attach holds the handle's fork lock while liblxc forks, so the
    ///   child starts with it held, and liblxc's own per-object lock may be
    ///   held by another thread's call.
    /// * A panic runs the panic hook (std's default one prints, under
    ///   stderr's lock; a custom one runs as it is); `std::process::exit`
    ///   runs `atexit` handlers and flushes stdout under its lock: return
    ///   from the closure instead.
    ///
    /// In a process with a single thread, the first two hold by themselves.
    ///
    /// What the crate guarantees: the closure is called by reference and the
    /// child ends with `_exit` after it returns, so nothing it captured is
    /// dropped in the child (a `BufWriter` is not flushed twice, a
    /// `TempDir` is not removed from inside the container) and no `atexit`
    /// handler runs there; the captures are dropped once, in the caller,
    /// when this call returns. A panic is caught and becomes exit status
    /// 101; it never unwinds into liblxc. Descriptors of the crate's other
    /// attaches in flight are closed in the child.
    ///
    /// A safe call does not compile:
    ///
    /// ```compile_fail,E0133
    /// let c = lxc::Container::new("web").unwrap();
    /// let child = c.attach_fn(&lxc::AttachOptions::new(), || 0);
    /// ```
    pub unsafe fn attach_fn<F>(&self, opts: &AttachOptions<'_>, f: F) -> Result<AttachChild>
    where
        F: FnMut() -> i32,
    {
        self.attach_fn_keeping(opts, f, -1).map(AttachChild::from_spawned)
    }

    /// [`Container::attach_fn`], keeping the listed descriptor `keep` open
    /// in the child.
    pub(crate) fn attach_fn_keeping<F>(&self, opts: &AttachOptions<'_>, f: F, keep: RawFd) -> Result<Spawned>
    where
        F: FnMut() -> i32,
    {
        let pipes = pipes()?;
        let mut payload =
            ClosurePayload { hs: Handshake { keep, ..Handshake::of(&pipes, opts.is_terminal(), true) }, f };
        self.attach_raw(
            opts,
            run_closure::<F>,
            &mut payload as *mut ClosurePayload<F> as *mut c_void,
            pipes,
            None,
            true,
        )
        .map(|(spawned, _)| spawned)
    }

    /// Runs a Rust closure inside the container (see
    /// [`Container::attach_fn`]) and waits for it.
    ///
    /// ```no_run
    /// let c = lxc::Container::new("web")?;
    /// // SAFETY: the closure takes no lock and starts no thread; it only
    /// // writes a file (see `attach_fn`'s contract).
    /// let status = unsafe {
    ///     c.attach_wait(&lxc::AttachOptions::new(), || match std::fs::write("/tmp/from-rust", b"hello") {
    ///         Ok(()) => 0,
    ///         Err(_) => 1,
    ///     })
    /// }?;
    /// assert!(status.success());
    /// # Ok::<(), lxc::Error>(())
    /// ```
    ///
    /// # Safety
    ///
    /// As for [`Container::attach_fn`].
    ///
    /// ```compile_fail,E0133
    /// let c = lxc::Container::new("web").unwrap();
    /// let status = c.attach_wait(&lxc::AttachOptions::new(), || 0);
    /// ```
    pub unsafe fn attach_wait<F>(&self, opts: &AttachOptions<'_>, f: F) -> Result<ExitStatus>
    where
        F: FnMut() -> i32,
    {
        // SAFETY: the caller keeps attach_fn's contract, which is ours.
        unsafe { self.attach_fn(opts, f) }?.wait()
    }

    /// Runs the user's login shell in the container with liblxc's own exec
    /// function (`lxc_attach_run_shell`, behind the crate's handshake), on
    /// the caller's terminal (stdin too, unless the options set another), and
    /// waits for it (`lxc-attach` with no command).
    pub fn attach_run_shell(&self, opts: &AttachOptions<'_>) -> Result<ExitStatus> {
        let opts = if opts.stdin_is_set() { opts.clone() } else { opts.clone().raw_stdin(0) };
        // While the shell runs on the caller's terminal, Ctrl-C and Ctrl-\
        // are its own; the caller's dispositions come back after.
        let signals = (opts.stdin_fd_is_0()).then(CallerSignals::note);
        let spawned = self.attach_liblxc(&opts, None)?;
        let status = wait_spawned(&spawned).map_err(|source| Error::Io { op: "waitid", source });
        drop(signals);
        status
    }

    /// Attaches with liblxc's `lxc_attach_run_command` (`cmd`) or
    /// `lxc_attach_run_shell` (`None`) as the exec function, behind the
    /// crate's handshake.
    fn attach_liblxc(
        &self,
        opts: &AttachOptions<'_>,
        cmd: Option<sys::lxc_attach_command_t>,
    ) -> Result<Spawned> {
        let pipes = pipes()?;
        let mut payload = LiblxcPayload { hs: Handshake::of(&pipes, opts.is_terminal(), true), cmd };
        self.attach_raw(
            opts,
            run_liblxc,
            &mut payload as *mut LiblxcPayload as *mut c_void,
            pipes,
            None,
            true,
        )
        .map(|(spawned, _)| spawned)
    }

    /// An interactive login shell in the container on the caller's terminal
    /// (ruby-lxc's `run_shell`, `lxc-attach` with no command): stdin,
    /// stdout and stderr are the caller's; returns when the shell exits.
    pub fn run_shell(&self) -> Result<ExitStatus> {
        self.attach_run_shell(&AttachOptions::new().raw_stdin(0))
    }

    /// Starts `program` in the container with liblxc's own exec function
    /// (`lxc_attach_run_command`, behind the crate's handshake) and returns
    /// the child without waiting. Prefer [`Container::attach_run_wait`] or
    /// [`Container::command`]: with liblxc's function, a program that cannot
    /// be executed exits 127, like a program that exits 127 by itself.
    pub fn attach_run_command(
        &self,
        opts: &AttachOptions<'_>,
        program: &str,
        args: &[&str],
    ) -> Result<AttachChild> {
        let payload = ExecPayload::new(program, args, false)?;
        // The command points into `payload`, alive until after the call
        // (the child has its own copy).
        let cmd = sys::lxc_attach_command_t {
            program: payload.program.as_ptr().cast_mut(),
            argv: payload.argv.as_ptr().cast_mut(),
        };
        self.attach_liblxc(opts, Some(cmd)).map(AttachChild::from_spawned)
    }
}
