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
pub(crate) fn helper_fd() -> Result<RawFd> {
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
    // Above 0 to 2: a child's stdio set up over it would lose the program.
    crate::attach::above_stdio(OwnedFd::from(file)).map_err(io::Error::other)
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// For a start, the lines of the helper's `/proc/self/cgroup` after the
    /// call (liblxc moved it into the new monitor cgroups) and of the new
    /// init's (its payload cgroups), as `ID:CONTROLLERS:PATH`.
    pub cgroups: Vec<String>,
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
    Some(Outcome { ok, errno, error_num, value, refused, cgroups: Vec::new() })
}

/// The most the crate reads of a report (a start's cgroup lines are a few
/// hundred bytes per hierarchy).
const MAX_REPORT: usize = 256 * 1024;

/// Whether `report` holds a whole line that is not a `cgroup` line: the
/// result line, which ends the report.
fn has_result_line(report: &[u8]) -> bool {
    report
        .split_inclusive(|&b| b == b'\n')
        .any(|l| l.ends_with(b"\n") && !l.starts_with(b"cgroup ") && l != TAKEN_LINE)
}

/// The helper's report: its `cgroup LINE` lines, then the result line
/// ([`parse`]). `None` without a result line.
fn parse_report(text: &str) -> Option<Outcome> {
    let mut cgroups = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("cgroup ") {
            Some(cg) => cgroups.push(cg.to_owned()),
            None => return parse(line).map(|o| Outcome { cgroups, ..o }),
        }
    }
    None
}

/// The helper's arguments after its result descriptor, with `config_path`
/// naming the configuration memfd.
fn helper_args(req: &Request<'_>, config_path: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![req.op.into(), req.name.into(), req.lxcpath.into()];
    match &req.config {
        Config::Disk => {}
        Config::Cleared => args.extend(["noconfig".into(), "1".into()]),
        Config::Memfd(_) => args.extend(["config".into(), config_path.into()]),
    }
    for (k, v) in LOG_OPTS.lock().unwrap_or_else(|e| e.into_inner()).iter().flatten() {
        args.extend([OsString::from(k), v.clone()]);
    }
    for (k, v) in &req.opts {
        args.extend([OsString::from(k), v.clone()]);
    }
    if let Some(a) = &req.args {
        args.push("--".into());
        args.extend(a.iter().map(OsString::from));
    }
    args
}

/// Runs one call in the helper and returns what it reported: through the
/// helper server when it can take it (see [`server`]), else in a helper of
/// its own.
pub(crate) fn run(req: Request<'_>) -> Result<Outcome> {
    run_via(req, true)
}

/// [`run`], through the server only when `serve`. A served call that got
/// nothing back, not even the line the server's spare writes first when it
/// takes a call, ran nowhere: the server died before a spare took it (a
/// killed server's spare dies a moment after it, and a send in between
/// still succeeds). It is sent once more, to a new server.
fn run_via(req: Request<'_>, serve: bool) -> Result<Outcome> {
    let exe = helper_fd()?;
    let report = match run_once(exe, &req, serve)? {
        Attempt::Report(report) => report,
        Attempt::NotTaken(sent) => {
            let again = server::retire(&sent, exe);
            run_once(exe, &req, serve && again)?.into_report()
        }
    };
    drop(req.config);
    let text = String::from_utf8_lossy(&report.text);
    parse_report(&text).ok_or_else(|| Error::Io {
        op: "lxc-rs-helper",
        source: io::Error::other(match report.status {
            Some(s) => format!("the helper ended ({s}) without a result"),
            None => "the helper ended without a result".to_owned(),
        }),
    })
}

/// What a helper wrote on its result pipe, and its exit status when it
/// was this process's child (an exec'd helper).
struct Report {
    text: Vec<u8>,
    status: Option<std::process::ExitStatus>,
}

/// One try of a call: what its helper reported, or a served call that no
/// spare took.
enum Attempt {
    Report(Report),
    NotTaken(server::Sent),
}

impl Attempt {
    fn into_report(self) -> Report {
        match self {
            Attempt::Report(r) => r,
            Attempt::NotTaken(_) => Report { text: Vec::new(), status: None },
        }
    }
}

/// The line a served helper writes first, when the server's spare takes
/// the call (`TAKEN_LINE` in the C program).
const TAKEN_LINE: &[u8] = b"taken\n";

/// One try of a call (see [`run_via`]).
fn run_once(exe: RawFd, req: &Request<'_>, serve: bool) -> Result<Attempt> {
    let io_err = |op: &'static str| move |source: io::Error| Error::Io { op, source };
    let (r, w) = io::pipe().map_err(io_err("pipe for lxc-rs-helper"))?;
    // Above 0 to 2 (a caller with closed stdio): the helper takes a result
    // descriptor there for bad usage, and its child's stdio would be set up
    // over it.
    let above = |fd: OwnedFd| crate::attach::above_stdio(fd);
    let (r, w) = (above(r.into())?, above(w.into())?);
    // Listed for the crate's closure children, which close it at their fork:
    // a copy they kept would delay the end of the pipe if the helper died
    // before its result line.
    let w = crate::fds::Guarded::new(w);
    let config_fd = match &req.config {
        Config::Memfd(fd) => Some(std::os::fd::AsFd::as_fd(fd)),
        _ => None,
    };
    let sent = if serve {
        server::submit(exe, &helper_args(req, server::CONFIG_ARG), std::os::fd::AsFd::as_fd(&w), config_fd)
    } else {
        None
    };
    let child = match sent {
        Some(_) => None,
        None => Some(spawn_one(exe, req, &w).map_err(io_err("start lxc-rs-helper"))?),
    };
    drop(w);
    // The report, then the helper exits. It is read up to the end of its
    // result line, not to the end of the pipe: a start's monitor holds a
    // copy of the write end until it closes its inherited descriptors.
    let mut line = Vec::new();
    let mut r = std::fs::File::from(r);
    let mut buf = [0u8; 4096];
    let read = loop {
        match r.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                line.extend_from_slice(&buf[..n]);
                if has_result_line(&line) || line.len() > MAX_REPORT {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    // Closed before the wait: a helper still writing (past the most read)
    // gets EPIPE rather than blocking its own end.
    drop(r);
    // A caller that ignores SIGCHLD has its children reaped by the kernel;
    // waitpid would block until every child of the process has ended. (A
    // served call's helper is the server's child, not this process's.)
    let status = match child {
        Some(mut child) if !sigchld_ignored() => match child.wait() {
            Ok(s) => Some(s),
            // Reaped by someone else (a SIGCHLD handler that waits for any
            // child): the result line is all we need.
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => None,
            Err(e) => return Err(Error::Io { op: "wait for lxc-rs-helper", source: e }),
        },
        _ => None,
    };
    read.map_err(io_err("read the result of lxc-rs-helper"))?;
    Ok(match sent {
        Some(sent) if line.is_empty() => Attempt::NotTaken(sent),
        Some(_) => {
            let text = line.strip_prefix(TAKEN_LINE).map(<[u8]>::to_vec).unwrap_or(line);
            Attempt::Report(Report { text, status })
        }
        None => Attempt::Report(Report { text: line, status }),
    })
}

/// Starts a helper of the call's own (fork and exec of the embedded
/// program), writing its result to `w`.
fn spawn_one(exe: RawFd, req: &Request<'_>, w: &crate::fds::Guarded) -> io::Result<std::process::Child> {
    let w_fd = w.as_raw_fd();
    let mut keep = vec![w_fd];
    let config_path = match &req.config {
        Config::Memfd(fd) => {
            keep.push(fd.as_raw_fd());
            format!("/proc/self/fd/{}", fd.as_raw_fd())
        }
        _ => String::new(),
    };
    let mut cmd = helper_command(exe, keep);
    cmd.arg(w_fd.to_string()).args(helper_args(req, &config_path));
    cmd.spawn()
}

/// A command running the helper program, in which the descriptors `keep`
/// (close-on-exec here) stay open across the exec.
fn helper_command(exe: RawFd, keep: Vec<RawFd>) -> std::process::Command {
    command_keeping(format!("/proc/self/fd/{exe}"), keep)
}

/// A command running `program`, in which the descriptors `keep`
/// (close-on-exec here) stay open across the exec.
pub(crate) fn command_keeping(
    program: impl AsRef<std::ffi::OsStr>,
    keep: Vec<RawFd>,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
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
    cmd
}

pub(crate) mod server {
    //! The helper server: one `lxc-rs-helper serve` per process, started at
    //! the first helper call, which forks a helper per call instead of an
    //! exec of the program each time. A helper call that fails at once
    //! (`snapshot_destroy_all` of a container that does not exist) took
    //! about 1.35 ms with an exec of the helper on the project's VM (the
    //! dynamic loading of liblxc and its libraries, mostly) and about
    //! 0.35 ms through the server, against a daemonized start of 3.5 ms in
    //! C (the README's "The helper server").
    //!
    //! The server is single-threaded and calls nothing of liblxc's, so each
    //! forked helper is what an exec'd one is, as far as liblxc can tell,
    //! with what a request brings: the caller's environment, working
    //! directory, umask and the standard descriptors that are not
    //! close-on-exec, of the moment. What a request cannot carry
    //! (credentials and capabilities, namespaces, cgroups, LSM labels,
    //! resource limits, scheduling, the session and process group, the root
    //! directory, `no_new_privs`, the variables read at load time, ...) the
    //! server kept from the thread that started it; each call compares the
    //! calling thread's with it (see [`context`]), and a thread where any of
    //! it differs gets a server of its own. Up to [`MAX_SERVERS`] are kept,
    //! the least recently used giving way unless it served within [`BUSY`];
    //! a server process idle for 5 s ends, and the next call starts another
    //! behind the same descriptor number. A thread with `no_new_privs` or
    //! seccomp filters (Landlock domains and filters cannot be compared), a
    //! subreaper or the first process of a pid namespace (which would adopt
    //! the server), a thread whose children go to another pid namespace
    //! than its own (the server would be that namespace's init, or live in
    //! it), requests the server
    //! cannot take (more than [`MAX_ARGS`] arguments, [`MAX_REQUEST`]
    //! bytes) and [`crate::set_helper_server`]`(false)` run a helper of
    //! their own.
    //! Descriptors that the caller left inheritable do not reach a served
    //! helper: the server closes all but its socket at its start.
    //!
    //! The server is nobody's child (the program forks and its first
    //! process exits: it goes to init or the nearest subreaper), so a
    //! caller that waits for all its children does not wait for it. It
    //! ignores the terminal's signals, and serves only the process that
    //! started it with the ids it had then (it checks each request's
    //! `SCM_CREDENTIALS`): a closure child that kept a copy of the socket,
    //! or this process after it dropped its privileges, is refused (a
    //! `fork()`ed copy of this process starts servers of its own). It
    //! ends when the crate's end of its socket pair is closed: at the
    //! caller's exit. A server that died is replaced at the next call; a
    //! call whose request reached a server that then died gets "the helper
    //! ended without a result". `LXC_RS_HELPER_SERVER=0` in the
    //! environment turns the server off (each call then execs the helper).

    use std::ffi::OsString;
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, RwLock};
    use std::time::{Duration, Instant};

    use crate::fds::Guarded;

    /// The argument the server replaces with the path of the request's
    /// configuration descriptor.
    pub(crate) const CONFIG_ARG: &str = "@config";

    /// Larger requests (a huge environment) go to a helper of their own.
    const MAX_REQUEST: usize = 128 * 1024;

    /// The server of one context: its entry lasts while the context is
    /// kept, the process behind it is replaced when it ends (idle, killed).
    struct Server {
        /// The process that started it, the only one it serves (a
        /// `fork()`ed child of that process starts its own).
        owner: rustix::process::Pid,
        context: Vec<u8>,
        /// When it was last handed a call.
        used: Mutex<Instant>,
        /// The process now serving: calls send under the read lock, a
        /// replacement takes the write lock.
        live: RwLock<Live>,
    }

    /// A server process and the crate's end of its socket.
    struct Live {
        /// Keeps its number across replacements (`dup3` onto it), so that
        /// a program counting its descriptors sees the same ones.
        sock: Guarded,
        #[cfg_attr(not(test), allow(dead_code))]
        pid: libc::pid_t,
        /// Counts the replacements: a call that saw the process end
        /// replaces it only if nobody did meanwhile.
        generation: u64,
    }

    /// The servers: one per context, at most [`MAX_SERVERS`]. When all are
    /// taken, the least recently used one gives way, unless it was used
    /// within [`BUSY`]: then the call runs a helper of its own, rather than
    /// threads of more contexts than that (workers pinned to different
    /// CPUs, say) starting servers in turn.
    static SERVERS: Mutex<Vec<Arc<Server>>> = Mutex::new(Vec::new());
    const MAX_SERVERS: usize = 4;
    const BUSY: Duration = Duration::from_secs(1);

    /// [`crate::set_helper_server`].
    static ENABLED: AtomicBool = AtomicBool::new(true);

    pub(crate) fn set_enabled(enabled: bool) {
        ENABLED.store(enabled, Ordering::Relaxed);
    }

    /// The helper's argument count the server takes (`MAX_REQUEST_ARGS`
    /// in the C program); more go to a helper of their own.
    const MAX_ARGS: usize = 256;

    /// A call handed to a server: the server and the generation of its
    /// process that took the message.
    pub(crate) struct Sent {
        server: Arc<Server>,
        generation: u64,
    }

    /// Replaces the server process that `sent` went to, unless a call did
    /// since: its spare never took the call (see [`super::run_via`]).
    /// `false` when no new one could be started.
    pub(crate) fn retire(sent: &Sent, exe: RawFd) -> bool {
        replace(&sent.server, exe, sent.generation)
    }

    /// Hands the call to the server started from the calling thread's
    /// context, starting one when there is none (or it has ended); `None`
    /// when it could not be sent, and nothing was run: the caller runs a
    /// helper of its own.
    pub(crate) fn submit(
        exe: RawFd,
        args: &[OsString],
        result: BorrowedFd<'_>,
        config: Option<BorrowedFd<'_>>,
    ) -> Option<Sent> {
        if !ENABLED.load(Ordering::Relaxed)
            || std::env::var_os("LXC_RS_HELPER_SERVER").is_some_and(|v| v == "0")
        {
            return None;
        }
        if args.len() > MAX_ARGS || args.iter().any(|a| a.as_bytes().contains(&0)) || under_valgrind() {
            return None;
        }
        // A subreaper, or the first process of a pid namespace, would
        // adopt the server as its child, which it may wait for.
        if !matches!(rustix::process::child_subreaper(), Ok(None)) || rustix::process::getpid().is_init() {
            return None;
        }
        let (context, umask) = context()?;
        let Ok(cwd) = rustix::fs::open(
            ".",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) else {
            return None;
        };
        // Copies of the standard descriptors an exec'd helper would get:
        // open now and not close-on-exec (another thread may close or
        // replace one meanwhile: the copy is what was there).
        let (stdin, stdout, stderr) = (io::stdin(), io::stdout(), io::stderr());
        let mut stdio: Vec<(u8, OwnedFd)> = Vec::with_capacity(3);
        for (n, fd) in (0u8..).zip([stdin.as_fd(), stdout.as_fd(), stderr.as_fd()]) {
            // Not open (EBADF), or close-on-exec: not passed on.
            if !rustix::io::fcntl_getfd(fd).is_ok_and(|f| f.is_empty()) {
                continue;
            }
            // A copy that cannot be made (EMFILE): a helper of its own.
            let Ok(dup) = rustix::io::fcntl_dupfd_cloexec(fd, 3) else {
                return None;
            };
            stdio.push((b'0' + n, dup));
        }
        let mut msg = Vec::with_capacity(4096);
        let mut push = |s: &[u8]| {
            msg.extend_from_slice(s);
            msg.push(0);
        };
        push(format!("{umask:o}").as_bytes());
        push(&stdio.iter().map(|(n, _)| *n).collect::<Vec<u8>>());
        push(args.len().to_string().as_bytes());
        for a in args {
            push(a.as_bytes());
        }
        for (k, v) in std::env::vars_os() {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            push(&kv);
        }
        if msg.len() > MAX_REQUEST {
            return None;
        }
        let mut fds = vec![result, cwd.as_fd()];
        fds.extend(stdio.iter().map(|(_, fd)| fd.as_fd()));
        fds.extend(config);
        let server = server_for(exe, &context)?;
        for _ in 0..2 {
            let (sent, generation) = {
                let live = server.live.read().unwrap_or_else(|e| e.into_inner());
                (crate::fds::send_with_fds(live.sock.as_fd(), &msg, &fds), live.generation)
            };
            match sent {
                Ok(()) => return Some(Sent { server, generation }),
                // Ended (idle, killed): the next try goes to another,
                // started on the same descriptor number. (ECONNREFUSED:
                // kernels before 6.1 and its stable backports.)
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN | libc::ECONNREFUSED)
                    ) =>
                {
                    if !replace(&server, exe, generation) {
                        return None;
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// The server of `context`: a kept one, or a new one started from
    /// this thread (in place of the least recently used one when there are
    /// [`MAX_SERVERS`]; that one's end of the socket closes when no call is
    /// sending to it any more, and it ends); `None` when it cannot be had.
    fn server_for(exe: RawFd, context: &[u8]) -> Option<Arc<Server>> {
        let mut servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
        let me = rustix::process::getpid();
        servers.retain(|s| s.owner == me);
        let used = |s: &Server| *s.used.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = servers.iter().find(|s| s.context == context) {
            *s.used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            return Some(Arc::clone(s));
        }
        if servers.len() >= MAX_SERVERS {
            let (i, oldest) = servers.iter().enumerate().min_by_key(|(_, s)| used(s))?;
            if used(oldest).elapsed() < BUSY {
                return None;
            }
            servers.remove(i);
        }
        let (sock, pid) = start(exe)?;
        let s = Arc::new(Server {
            owner: me,
            context: context.to_vec(),
            used: Mutex::new(Instant::now()),
            live: RwLock::new(Live { sock, pid, generation: 0 }),
        });
        servers.push(Arc::clone(&s));
        Some(s)
    }

    /// Replaces the process of `server` that ended, unless a call did
    /// since it was seen at `generation`: a new one is started from this
    /// thread (of the server's context), and the crate's end of its socket
    /// takes the old one's number. `false` when it could not be started.
    fn replace(server: &Server, exe: RawFd, generation: u64) -> bool {
        let mut live = server.live.write().unwrap_or_else(|e| e.into_inner());
        if live.generation != generation {
            return true;
        }
        let Some((sock, pid)) = start(exe) else {
            return false;
        };
        if live.sock.replace(&sock).is_err() {
            return false;
        }
        live.pid = pid;
        live.generation += 1;
        true
    }

    /// Starts a server process: `lxc-rs-helper serve FD`, whose first
    /// process forks the server, sends its pid and exits. Returns the
    /// crate's end of its socket and the server's pid.
    fn start(exe: RawFd) -> Option<(Guarded, libc::pid_t)> {
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        let (ours, theirs) =
            socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None).ok()?;
        // Never on 0 to 2 (a caller whose standard descriptors are closed):
        // a write to "standard output" would reach the server.
        let high = |fd: OwnedFd| -> Option<OwnedFd> {
            if fd.as_raw_fd() > 2 {
                Some(fd)
            } else {
                rustix::io::fcntl_dupfd_cloexec(&fd, 3).ok()
            }
        };
        // Listed while they exist, so that the crate's closure children
        // forked meanwhile close them.
        let (ours, theirs) = (Guarded::new(high(ours)?), Guarded::new(high(theirs)?));
        let fd = theirs.as_raw_fd();
        let mut cmd = super::helper_command(exe, vec![fd]);
        cmd.arg("serve").arg(fd.to_string());
        let mut child = cmd.spawn().ok()?;
        drop(cmd);
        drop(theirs);
        if !super::sigchld_ignored() {
            match child.wait() {
                Ok(s) if s.success() => {}
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {}
                _ => return None,
            }
        }
        // The server's pid, sent by the first process before it exited
        // (waited for above, unless the kernel reaps this process's
        // children: then at most 5 s). No answer: no server.
        let mut pollfd = [rustix::event::PollFd::new(&ours, rustix::event::PollFlags::IN)];
        let timeout = rustix::event::Timespec { tv_sec: 5, tv_nsec: 0 };
        loop {
            match rustix::event::poll(&mut pollfd, Some(&timeout)) {
                Ok(1) => break,
                Err(rustix::io::Errno::INTR) => {}
                _ => return None,
            }
        }
        let mut pid = [0u8; 4];
        match rustix::net::recv(&ours, &mut pid, rustix::net::RecvFlags::DONTWAIT) {
            Ok((4, _)) => {}
            _ => return None,
        }
        Some((ours, libc::pid_t::from_ne_bytes(pid)))
    }

    /// The pid of the server of the calling thread's context, if any
    /// (tests).
    #[cfg(test)]
    pub(crate) fn current_pid() -> Option<libc::pid_t> {
        current().map(|(pid, _)| pid)
    }

    /// The pid of the server of the calling thread's context and the
    /// crate's end of its socket (tests).
    #[cfg(test)]
    pub(crate) fn current() -> Option<(libc::pid_t, RawFd)> {
        let (context, _) = context()?;
        let servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
        let live =
            servers.iter().find(|s| s.context == context)?.live.read().unwrap_or_else(|e| e.into_inner());
        Some((live.pid, live.sock.as_raw_fd()))
    }

    /// Whether this process runs under valgrind, which rewrites the
    /// environment of the programs it execs (its preloaded libraries are
    /// taken out of `LD_PRELOAD`): a request could not carry that, so
    /// every call execs a helper.
    pub(crate) fn under_valgrind() -> bool {
        std::env::var_os("LD_PRELOAD").is_some_and(|v| v.as_bytes().windows(9).any(|w| w == b"vgpreload"))
    }

    /// The lines of `/proc/thread-self/status` a helper inherits.
    const STATUS_KEPT: [&str; 15] = [
        "Uid:",
        "Gid:",
        "Groups:",
        "CapInh:",
        "CapPrm:",
        "CapEff:",
        "CapBnd:",
        "CapAmb:",
        "NoNewPrivs:",
        "Seccomp:",
        "Seccomp_filters:",
        "Speculation_Store_Bypass:",
        "SpeculationIndirectBranch:",
        "Cpus_allowed_list:",
        "Mems_allowed_list:",
    ];

    /// The namespaces a helper is made in.
    const NAMESPACES: [&str; 8] =
        ["cgroup", "ipc", "mnt", "net", "pid_for_children", "time_for_children", "user", "uts"];

    /// What a helper forked or exec'd from the calling thread inherits and
    /// a request cannot carry, as bytes to compare, and the umask (which
    /// the request carries). `None` when it cannot be read (a kernel
    /// before 4.7 shows no umask): the call then runs a helper of its own.
    fn context() -> Option<(Vec<u8>, u32)> {
        let mut ctx = Vec::with_capacity(2048);
        let mut status = Vec::with_capacity(2048);
        read_proc("/proc/thread-self/status", &mut status).ok()?;
        let status = std::str::from_utf8(&status).ok()?;
        let mut umask = None;
        for line in status.lines() {
            if let Some(v) = line.strip_prefix("Umask:") {
                umask = u32::from_str_radix(v.trim(), 8).ok();
            } else if (line.starts_with("Seccomp:") || line.starts_with("NoNewPrivs:"))
                && line.split_ascii_whitespace().nth(1) != Some("0")
            {
                // Seccomp filters cannot be compared (only counted), nor
                // Landlock domains (not shown at all), which go with
                // `no_new_privs` but for a privileged caller: a thread
                // under either gets a helper of its own.
                return None;
            } else if STATUS_KEPT.iter().any(|k| line.starts_with(k)) {
                ctx.extend_from_slice(line.as_bytes());
                ctx.push(b'\n');
            }
        }
        // A thread whose children go to another pid namespace (after
        // `unshare(CLONE_NEWPID)` or a `setns`): the server's first process
        // would be that namespace's init, whose exit ends the server, or the
        // server would live in the container's namespace.
        if std::fs::read_link("/proc/thread-self/ns/pid").ok()?
            != std::fs::read_link("/proc/thread-self/ns/pid_for_children").ok()?
        {
            return None;
        }
        for ns in NAMESPACES {
            match std::fs::read_link(format!("/proc/thread-self/ns/{ns}")) {
                Ok(l) => ctx.extend_from_slice(l.as_os_str().as_bytes()),
                Err(_) => ctx.push(b'-'),
            }
            ctx.push(b'\n');
        }
        for file in [
            "/proc/thread-self/cgroup",
            "/proc/thread-self/attr/current",
            "/proc/thread-self/attr/exec",
            "/proc/self/oom_score_adj",
            "/proc/thread-self/loginuid",
        ] {
            let at = ctx.len();
            if read_proc(file, &mut ctx).is_err() {
                ctx.truncate(at);
                ctx.push(b'-');
            }
            ctx.push(b'\n');
        }
        // The dynamic loader's and the allocator's settings, read at the
        // server's exec.
        for (k, v) in std::env::vars_os() {
            let k = k.as_bytes();
            if k.starts_with(b"LD_")
                || k.starts_with(b"MALLOC_")
                || k == b"GLIBC_TUNABLES"
                || k == b"LXC_MEMFD_REXEC"
            {
                ctx.extend_from_slice(k);
                ctx.push(b'=');
                ctx.extend_from_slice(v.as_bytes());
                ctx.push(b'\n');
            }
        }
        // The process group, session, controlling terminal, nice value,
        // real-time priority and scheduling policy of this thread (fields 5,
        // 6, 7, 19, 40 and 41 of its stat, counted after the name).
        let mut stat = Vec::with_capacity(512);
        read_proc("/proc/thread-self/stat", &mut stat).ok()?;
        let stat = std::str::from_utf8(&stat).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_ascii_whitespace().collect();
        for i in [2, 3, 4, 16, 37, 38] {
            ctx.extend_from_slice(fields.get(i)?.as_bytes());
            ctx.push(b' ');
        }
        let at = ctx.len();
        if read_proc("/proc/thread-self/personality", &mut ctx).is_err() {
            ctx.truncate(at);
            ctx.push(b'-');
        }
        let mut num = |v: i64| ctx.extend_from_slice(&v.to_ne_bytes());
        // The root directory (chroot), with its mount.
        let root = rustix::fs::statx(
            rustix::fs::CWD,
            "/",
            rustix::fs::AtFlags::empty(),
            rustix::fs::StatxFlags::INO | rustix::fs::StatxFlags::MNT_ID,
        )
        .ok()?;
        num(root.stx_dev_major as i64);
        num(root.stx_dev_minor as i64);
        num(root.stx_ino as i64);
        num(root.stx_mnt_id as i64);
        use rustix::process::Resource as R;
        for res in [
            R::Cpu,
            R::Fsize,
            R::Data,
            R::Stack,
            R::Core,
            R::Rss,
            R::Nproc,
            R::Nofile,
            R::Memlock,
            R::As,
            R::Locks,
            R::Sigpending,
            R::Msgqueue,
            R::Nice,
            R::Rtprio,
            R::Rttime,
        ] {
            let lim = rustix::process::getrlimit(res);
            num(lim.current.map_or(-1, |v| v as i64));
            num(lim.maximum.map_or(-1, |v| v as i64));
        }
        num(rustix::thread::capabilities_secure_bits().map_or(-1, |b| b.bits() as i64));
        num(rustix::process::child_subreaper()
            .map_or(-1, |p| p.map_or(0, |p| p.as_raw_nonzero().get() as i64)));
        // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, 0) only reads the calling
        // thread's I/O priority (rustix has no wrapper).
        num(unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) });
        Some((ctx, umask?))
    }

    /// Appends the file `path` (a small `/proc` file) to `out`: chunks of
    /// 4 KiB until the end, with no `fstat` and no probing reads (procfs
    /// sizes read as 0, and `std::fs::read` then grows its buffer from 32
    /// bytes: nine reads for a thread's `status`, two here).
    fn read_proc(path: &str, out: &mut Vec<u8>) -> io::Result<()> {
        let fd = rustix::fs::open(
            path,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let mut chunk = [0u8; 4096];
        loop {
            match rustix::io::read(&fd, &mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_results() {
        assert_eq!(
            parse("ok 0 0 3\n"),
            Some(Outcome {
                ok: true,
                errno: 0,
                error_num: 0,
                value: Some(3),
                refused: None,
                cgroups: vec![]
            })
        );
        assert_eq!(
            parse("fail 2 1 -\n"),
            Some(Outcome { ok: false, errno: 2, error_num: 1, value: None, refused: None, cgroups: vec![] })
        );
        assert_eq!(
            parse("stale 0 0 -\n"),
            Some(Outcome {
                ok: false,
                errno: 0,
                error_num: 0,
                value: None,
                refused: Some(Refusal::Stale),
                cgroups: vec![]
            })
        );
        assert_eq!(
            parse("noload 22 0 -\n"),
            Some(Outcome {
                ok: false,
                errno: 22,
                error_num: 0,
                value: None,
                refused: Some(Refusal::NoLoad),
                cgroups: vec![]
            })
        );
        assert_eq!(parse("gone 0 0 -\n").unwrap().refused, Some(Refusal::Gone));
        assert_eq!(parse("ok 0 0"), None);
        assert_eq!(parse("maybe 0 0 -"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn reads_a_start_report_with_its_cgroups() {
        let report = "cgroup 4:memory:/lxc.monitor.web\ncgroup 0::/lxc.payload.web/init.scope\nok 0 0 -\n";
        assert!(has_result_line(report.as_bytes()));
        assert!(!has_result_line(b"cgroup 0::/a\n"));
        assert!(!has_result_line(b"cgroup 0::/a\nok 0 0 -"));
        let out = parse_report(report).unwrap();
        assert!(out.ok);
        assert_eq!(out.cgroups, ["4:memory:/lxc.monitor.web", "0::/lxc.payload.web/init.scope"]);
        assert_eq!(parse_report("cgroup 0::/a\n"), None);
        assert_eq!(parse_report("fail 1 0 -\n").unwrap().cgroups, Vec::<String>::new());
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
        let _g = SERVER_TESTS.lock().unwrap_or_else(|e| e.into_inner());
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

    /// Serializes the tests that start, replace or kill the server.
    static SERVER_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A temporary lxcpath with a template that writes what its process
    /// inherited (environment, directory, umask, standard output, nice
    /// value, credentials, cgroups, limits) and its helper's namespaces
    /// (liblxc runs a template in a mount namespace of its own) to the file
    /// named by its last argument, and fails.
    struct Probe {
        dir: std::path::PathBuf,
    }

    impl Probe {
        fn new(tag: &str) -> Probe {
            use std::os::unix::fs::PermissionsExt;
            let dir = std::env::temp_dir().join(format!("lxc-rs-server-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let script = dir.join("template");
            std::fs::write(
                &script,
                "#!/bin/sh\nfor last; do :; done\nout=$(readlink /proc/$$/fd/1)\n{\n  sed 's/.*) //' /proc/$PPID/stat | cut -d' ' -f2\n  env | grep -v '^_=' | sort\n  pwd; umask; echo \"$out\"\n  \
                 grep -E '^(Uid|Gid|Groups|Cap...|NoNewPrivs|Seccomp|Cpus_allowed_list):' /proc/self/status\n  \
                 ls -l /proc/$PPID/ns | sed 's/.*-> //'; cat /proc/self/cgroup; ulimit -a; nice\n} > \"$last\" 2>&1\nexit 1\n",
            )
            .unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            Probe { dir }
        }

        /// What the template saw, run through the server or not: the pid
        /// of its helper's parent, and the rest.
        fn run(&self, serve: bool, name: &str) -> (libc::pid_t, String) {
            let out = self.dir.join(format!("{name}.out"));
            let template = self.dir.join("template");
            let outcome = run_via(
                Request {
                    op: "create",
                    name,
                    lxcpath: &self.dir,
                    config: Config::Cleared,
                    opts: vec![("template", template.into_os_string())],
                    args: Some(vec![out.to_str().unwrap().to_owned()]),
                },
                serve,
            )
            .unwrap();
            assert!(!outcome.ok, "the template fails");
            let text = std::fs::read_to_string(&out).unwrap();
            let (parent, rest) = text.split_once('\n').unwrap();
            (parent.parse().unwrap(), rest.to_owned())
        }
    }

    /// The lock of the server tests and a probe, or `None` under valgrind
    /// (no server there).
    fn server_test(tag: &str) -> Option<(std::sync::MutexGuard<'static, ()>, Probe)> {
        if server::under_valgrind() {
            eprintln!("no helper server under valgrind: skipped");
            return None;
        }
        Some((SERVER_TESTS.lock().unwrap_or_else(|e| e.into_inner()), Probe::new(tag)))
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_served_helper_inherits_what_an_execd_one_does() {
        let Some((_g, probe)) = server_test("same") else {
            return;
        };
        let (parent, execd) = probe.run(false, "a");
        assert_eq!(parent, std::process::id() as libc::pid_t, "an exec'd helper is ours");
        let (parent, served) = probe.run(true, "b");
        assert_eq!(Some(parent), server::current_pid(), "the call was served");
        assert!(execd.contains("PATH="), "{execd}");
        assert_eq!(served, execd);

        // A thread with another nice value (per thread on Linux) gets a
        // server of its own, and its helper has that nice value.
        let before = server::current_pid();
        let ((parent, niced), pid) = std::thread::scope(|s| {
            s.spawn(|| {
                // This thread's nice value (PRIO_PROCESS of 0 is the
                // calling thread on Linux).
                rustix::process::setpriority_process(None, 7).unwrap();
                (probe.run(true, "c"), server::current_pid())
            })
            .join()
            .unwrap()
        });
        assert_eq!(Some(parent), pid, "served");
        assert_ne!(pid, before, "a new server for the new context");
        assert_eq!(niced.lines().last(), Some("7"), "{niced}");
        assert_eq!(probe.run(false, "d").1, execd);
    }

    /// The one child of the server `pid`, its spare, once the helpers it
    /// served (also its children) have ended; at most 5 s.
    fn spare_of(pid: i32) -> i32 {
        let t0 = std::time::Instant::now();
        loop {
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
            let spares: Vec<i32> = children.split_whitespace().map(|p| p.parse().unwrap()).collect();
            if let [spare] = spares[..] {
                return spare;
            }
            assert!(t0.elapsed() < std::time::Duration::from_secs(5), "children: {children:?}");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Whether the process `pid` has ended (a zombie, or reaped).
    fn gone(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    }

    #[test]
    fn a_killed_server_is_replaced() {
        let Some((_g, probe)) = server_test("kill") else {
            return;
        };
        let (_, first) = probe.run(true, "a");
        let pid = server::current_pid().expect("served");
        // It keeps only its socket, /dev/null and its spare's pipe open.
        let mut open: Vec<(String, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                let link = std::fs::read_link(e.path()).unwrap().display().to_string();
                (e.file_name().into_string().unwrap(), link)
            })
            .collect();
        open.sort();
        let kinds: Vec<(&str, &str)> =
            open.iter().map(|(n, l)| (n.as_str(), l.split(':').next().unwrap_or(""))).collect();
        assert_eq!(
            kinds,
            [("0", "/dev/null"), ("1", "/dev/null"), ("2", "/dev/null"), ("3", "socket"), ("4", "pipe")],
            "{open:?}"
        );
        // Its one spare, which waits for the next request, with the socket
        // and its end of the pipe (once the helper that served the call,
        // also its child, has ended).
        let spare = spare_of(pid);
        // The server is not this process's child.
        let pid = rustix::process::Pid::from_raw(pid).unwrap();
        let r = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
        assert_eq!(r.unwrap_err(), rustix::io::Errno::CHILD, "not a child");
        // The server this test's process started.
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
        let pid = pid.as_raw_nonzero().get();
        // The server and its spare, which dies with it (a spare left alone
        // would hold the socket with nobody to read past one request).
        let t0 = std::time::Instant::now();
        for p in [pid, spare] {
            while !gone(p) {
                assert!(t0.elapsed() < std::time::Duration::from_secs(10), "{p} still runs");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        let (parent, again) = probe.run(true, "b");
        assert_eq!(again, first);
        assert_ne!(parent, pid, "another server");
        assert_eq!(Some(parent), server::current_pid());
    }

    /// A call sent just after the server was killed, while its spare
    /// still holds the socket (it dies a moment later), is lost with the
    /// socket: nothing comes back, not even the taken line, and the call
    /// is sent again to a new server instead of failing.
    #[test]
    fn a_call_lost_with_a_killed_server_is_sent_again() {
        let Some((_g, _probe)) = server_test("lost") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let call = || {
            run(Request {
                op: "snapshot_destroy_all",
                name: "nope",
                lxcpath: dir.path(),
                config: Config::Disk,
                opts: Vec::new(),
                args: None,
            })
        };
        let mut spare_alive = 0;
        for i in 0..200 {
            call().unwrap_or_else(|e| panic!("call {i} before the kill: {e}"));
            let pid = server::current_pid().expect("served");
            let spare = spare_of(pid);
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid).unwrap(),
                rustix::process::Signal::KILL,
            )
            .unwrap();
            while !gone(pid) {
                std::thread::yield_now();
            }
            spare_alive += usize::from(!gone(spare));
            call().unwrap_or_else(|e| panic!("call {i} after the kill: {e}"));
        }
        eprintln!("the spare was still alive after its server in {spare_alive} of 200 kills");
    }

    #[test]
    fn an_idle_server_ends_and_a_subreaper_execs() {
        let Some((_g, probe)) = server_test("idle") else {
            return;
        };
        let (_, first) = probe.run(true, "a");
        let (pid, sock) = server::current().expect("served");
        // Idle for 5 s, it ends (a zombie of init's until reaped, or gone).
        let t0 = std::time::Instant::now();
        let stat = format!("/proc/{pid}/stat");
        while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z ")) {
            assert!(t0.elapsed() < std::time::Duration::from_secs(15), "the idle server still runs");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(t0.elapsed() >= std::time::Duration::from_secs(4), "it ended before its idle time");
        let (parent, again) = probe.run(true, "b");
        assert_eq!(again, first);
        assert_eq!(Some((parent, sock)), server::current(), "the new server's socket has the old number");
        assert_ne!(parent, pid);

        // Four calls at once after the next idle end: one replaces the
        // process, on the same number again.
        let (pid, _) = server::current().expect("served");
        let stat = format!("/proc/{pid}/stat");
        while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z ")) {
            assert!(t0.elapsed() < std::time::Duration::from_secs(40), "the idle server still runs");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::thread::scope(|s| {
            for i in 0..4 {
                let (probe, first) = (&probe, &first);
                s.spawn(move || assert_eq!(&probe.run(true, &format!("m{i}")).1, first));
            }
        });
        let (again, number) = server::current().expect("served");
        assert_ne!(again, pid);
        assert_eq!(number, sock, "the same number after concurrent calls");

        // A subreaper would adopt the server: its calls exec a helper each.
        struct Subreaper;
        impl Drop for Subreaper {
            fn drop(&mut self) {
                let _ = rustix::process::set_child_subreaper(None);
            }
        }
        let me = rustix::process::getpid();
        rustix::process::set_child_subreaper(Some(me)).unwrap();
        let guard = Subreaper;
        let (parent, _) = probe.run(true, "c");
        drop(guard);
        assert_eq!(parent, me.as_raw_nonzero().get(), "an exec'd helper");
    }
}
