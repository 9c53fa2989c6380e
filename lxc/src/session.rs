//! Attach once, run many commands: [`AttachSession`].
//!
//! liblxc's attach costs about 2 ms per command (a fork, setns into every
//! namespace, the cgroup move, the LSM and capability setup). A session pays
//! it once: it attaches a small helper with the given options, and each
//! command is then started *by the helper* (a vfork-style `clone` and an
//! exec), so it inherits the helper's namespaces, cgroup, capabilities, LSM
//! label, uid/gid and environment, without another attach.
//!
//! The caller and the helper talk over a `SOCK_SEQPACKET` socket pair: one
//! message per request (arguments, extra environment, working directory,
//! and up to three descriptors passed with `SCM_RIGHTS` for stdin, stdout and
//! stderr), and replies: started, with the command's pidfd (Linux 5.2), or
//! could not start, with the errno; then exited, with the wait status. The
//! command is the helper's child, which waits for it; the caller only polls
//! the pidfd, and once it shows the command has exited it polls the socket
//! without sleeping for the status, which the helper, woken by the same
//! exit, sends within microseconds. When the caller closes the socket the
//! helper exits; when the helper dies (the container stopped, someone
//! killed it) the caller reads end-of-file and gets
//! [`Error::SessionClosed`], never a hang.

use std::ffi::{c_char, c_int};
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::process::{ExitStatus, Output};
use std::ptr;

use crate::attach::{wait_pid, AttachOptions};
use crate::command::{read2, Stdio};
use crate::cstr::path_bytes;
use crate::error::{Error, Result};
use crate::fds::{fds_from_3_in_child, FdAction, FdSweep, Guarded};
use crate::{Container, State};
use std::os::unix::process::ExitStatusExt;

/// Largest request: arguments, environment and working directory together.
/// (A SOCK_SEQPACKET message must fit the socket's send buffer, about 208 KiB by
/// default.)
const MAX_REQUEST: usize = 1 << 17;

const FLAG_CLEAR_ENV: u8 = 1;
const FLAG_STDIN: u8 = 2;
const FLAG_STDOUT: u8 = 4;
const FLAG_STDERR: u8 = 8;

const REPLY_STARTED: u8 = b'P';
const REPLY_NOT_STARTED: u8 = b'E';
const REPLY_EXITED: u8 = b'X';

extern "C" {
    static environ: *const *const c_char;
}

/// Commands run through one attach; see [`Container::attach_session`].
///
/// ```no_run
/// let c = lxc::Container::new("web")?;
/// let mut s = c.attach_session(&lxc::AttachOptions::new())?;
/// for pkg in ["a", "b", "c"] {
///     let out = s.command("/bin/sh").args(["-c", &format!("echo installing {pkg}")]).output()?;
///     assert!(out.status.success());
/// }
/// s.close()?;
/// # Ok::<(), lxc::Error>(())
/// ```
#[derive(Debug)]
pub struct AttachSession<'c> {
    container: Owner<'c>,
    helper: libc::pid_t,
    /// A pidfd of the helper: signals reach it, never a process that
    /// reused its pid after it was reaped.
    pidfd: Option<OwnedFd>,
    sock: Option<Guarded>,
    /// Whether the helper has not been ended yet.
    open: bool,
    /// The helper must be reaped as soon as it ends: if the container
    /// stops, its dying init waits until every process of its pid
    /// namespace is reaped, the helper (our child) included, and a helper
    /// left a zombie until the next call would make `stop()` hang. The
    /// crate's reaper thread (`reaper.rs`) does it; this thread of the
    /// session's own does only when no pidfd could be had.
    fallback_reaper: Option<std::thread::JoinHandle<io::Result<ExitStatus>>>,
    /// How long `shutdown` waits for the killed helper to end.
    close_wait_ms: i32,
}

/// The container of a session: borrowed by a blocking session, shared by
/// one of the async front's pool.
#[derive(Debug)]
enum Owner<'c> {
    Borrowed(&'c Container),
    #[cfg(feature = "tokio")]
    Shared(std::sync::Arc<Container>),
}

impl std::ops::Deref for Owner<'_> {
    type Target = Container;
    fn deref(&self) -> &Container {
        match self {
            Owner::Borrowed(c) => c,
            #[cfg(feature = "tokio")]
            Owner::Shared(c) => c,
        }
    }
}

/// Where the async front learns a session command's pidfd, to kill the
/// command when its future is dropped (see `tokio::SessionCommand`).
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) struct CancelSlot(std::sync::Mutex<(bool, Option<OwnedFd>)>);

#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
impl CancelSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, (bool, Option<OwnedFd>)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the future is gone (its command is not to be sent).
    fn cancelled(&self) -> bool {
        self.lock().0
    }

    /// The command started: its pidfd is kept to be killed, or it is
    /// killed now if the future is gone already. Only a pidfd of a child
    /// of the session's helper is ever signalled: the helper runs inside
    /// the container, and one taken over there could send a pidfd of any
    /// process it sees (the container's init, another user's process) for
    /// the caller to kill.
    fn started(&self, pidfd: &OwnedFd, helper: libc::pid_t) {
        if !is_child_of(pidfd, helper) {
            return;
        }
        let mut s = self.lock();
        if s.0 {
            let _ = crate::attach::pidfd_kill(pidfd);
        } else {
            s.1 = pidfd.try_clone().ok();
        }
    }

    /// The future was dropped: the command, if it started, is killed
    /// (SIGKILL through its pidfd, so never a process that reused its pid;
    /// the helper reaps it and the session goes on).
    pub(crate) fn cancel(&self) {
        let mut s = self.lock();
        s.0 = true;
        if let Some(fd) = s.1.take() {
            let _ = crate::attach::pidfd_kill(&fd);
        }
    }

    /// The command ended: nothing is left to kill.
    pub(crate) fn finished(&self) {
        self.lock().1 = None;
    }
}

/// Whether the process of `pidfd` is a child of `parent` (pids as the
/// caller sees them): its `/proc` entry's parent, read between two reads of
/// the pidfd's fdinfo that name the same pid (Linux 5.10 and later show -1
/// there once it is reaped; before, a kill through the pidfd of a reaped
/// process fails with ESRCH all the same, never reaching another).
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
fn is_child_of(pidfd: &OwnedFd, parent: libc::pid_t) -> bool {
    let Some(pid) = crate::attach::pidfd_pid(pidfd).filter(|p| *p > 0) else { return false };
    let mut buf = [0u8; 1024];
    let stat = crate::running::read_small(std::path::Path::new(&format!("/proc/{pid}/stat")), &mut buf);
    // The fields after the name's last ')': state, then the parent's pid.
    let ppid = stat.and_then(|t| {
        let close = t.iter().rposition(|b| *b == b')')?;
        let mut f = t.get(close + 2..)?.split(|b| *b == b' ');
        std::str::from_utf8(f.nth(1)?).ok()?.parse::<libc::pid_t>().ok()
    });
    ppid == Some(parent) && crate::attach::pidfd_pid(pidfd) == Some(pid)
}

/// One command of an [`AttachSession`], built like
/// [`std::process::Command`].
#[derive(Debug)]
pub struct SessionCommand<'s, 'c> {
    session: &'s mut AttachSession<'c>,
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<String>,
    pub(crate) clear_env: bool,
    pub(crate) cwd: Option<std::path::PathBuf>,
    pub(crate) stdin: Option<Stdio>,
    pub(crate) stdout: Option<Stdio>,
    pub(crate) stderr: Option<Stdio>,
    #[cfg(feature = "tokio")]
    pub(crate) cancel: Option<std::sync::Arc<CancelSlot>>,
}

impl Container {
    /// Attaches a helper to the running container with `opts` and returns a
    /// session that runs commands through it (each one spawned by the
    /// helper, so it enters nothing again). The helper's stdin, stdout and
    /// stderr, which commands inherit unless they set their own, are those of
    /// `opts`.
    ///
    /// [`AttachFlags::TERMINAL`](crate::AttachFlags::TERMINAL) is refused
    /// ([`Error::InvalidArgument`]): liblxc's attach would return only once
    /// every copy of the new terminal is closed, and the helper keeps it as
    /// its stdio for the life of the session.
    pub fn attach_session(&self, opts: &AttachOptions<'_>) -> Result<AttachSession<'_>> {
        self.open_session(opts, Owner::Borrowed(self))
    }

    /// A session that holds its container through an `Arc` (the async
    /// front's pool).
    #[cfg(feature = "tokio")]
    pub(crate) fn attach_session_shared(
        self: &std::sync::Arc<Self>,
        opts: &AttachOptions<'_>,
    ) -> Result<AttachSession<'static>> {
        self.open_session(opts, Owner::Shared(std::sync::Arc::clone(self)))
    }

    /// `owner` is `self`, borrowed or shared.
    fn open_session<'c>(&self, opts: &AttachOptions<'_>, owner: Owner<'c>) -> Result<AttachSession<'c>> {
        if opts.is_terminal() {
            return Err(Error::invalid(
                "attach options",
                "AttachFlags::TERMINAL",
                "a session cannot have a terminal of its own (liblxc's attach would return only \
                 when the session's helper ends); give the session the caller's terminal instead",
            ));
        }
        // Both above 2: liblxc puts the helper's stdio over 0-2 in the child.
        let (ours, theirs) = crate::attach::seqpacket_pair()?;
        let (ours, theirs) = (Guarded::new(ours), Guarded::new(theirs));
        let helper_sock = theirs.as_raw_fd();
        // In the attached child, every listed descriptor but the helper's
        // socket is closed (the caller's end among them).
        let sweep = FdSweep::prepare();
        // Everything the helper needs is allocated here, before the fork:
        // the helper itself never allocates (the program's global allocator
        // may be one whose lock another thread held at the fork).
        let mut mem = HelperMem::new();
        let spawned =
            self.attach_fn_keeping(opts, move || serve(helper_sock, &sweep, &mut mem), helper_sock)?;
        drop(theirs);
        let pid = spawned.pid;
        // Taken while the helper was certainly alive (it waited for it).
        let pidfd = spawned.pidfd;
        // No thread per session: a thread that ends at the moment of a
        // later attach would make liblxc think a process single-threaded
        // after the crate saw it threaded (see `LeakProbe`).
        let handed = pidfd
            .as_ref()
            .and_then(|fd| fd.try_clone().ok())
            .is_some_and(|dup| crate::reaper::reap_later_fd(pid, dup).is_ok());
        let fallback_reaper = if handed {
            None
        } else {
            Some(
                std::thread::Builder::new()
                    .name("lxc-session-reaper".into())
                    .spawn(move || wait_pid(pid))
                    .map_err(|source| Error::Io { op: "spawn the session reaper thread", source })?,
            )
        };
        Ok(AttachSession {
            container: owner,
            helper: pid,
            pidfd,
            sock: Some(ours),
            open: true,
            fallback_reaper,
            close_wait_ms: CLOSE_WAIT_MS,
        })
    }
}

impl<'c> AttachSession<'c> {
    /// The helper's pid, as seen from the host.
    pub fn helper_pid(&self) -> u32 {
        self.helper as u32
    }

    /// A command to run through the session.
    pub fn command(&mut self, program: impl Into<String>) -> SessionCommand<'_, 'c> {
        SessionCommand {
            session: self,
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            clear_env: false,
            cwd: None,
            stdin: None,
            stdout: None,
            stderr: None,
            #[cfg(feature = "tokio")]
            cancel: None,
        }
    }

    /// Ends idle sessions together: every helper is killed first, then all
    /// get one shared wait of up to 2 s (not 2 s each, in a frozen
    /// container), then each is closed as `close` does.
    #[cfg(feature = "tokio")]
    pub(crate) fn end_all(sessions: Vec<AttachSession<'_>>) {
        for s in &sessions {
            if let (true, Some(fd)) = (s.open, &s.pidfd) {
                let _ = crate::attach::pidfd_kill(fd);
            }
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(CLOSE_WAIT_MS as u64);
        for mut s in sessions {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            s.close_wait_ms = i32::try_from(left.as_millis()).unwrap_or(CLOSE_WAIT_MS);
            drop(s);
        }
    }

    /// Whether the helper can take commands and has not ended (its pidfd
    /// does not poll readable).
    #[cfg(feature = "tokio")]
    pub(crate) fn is_alive(&self) -> bool {
        self.is_open() && self.pidfd.as_ref().is_none_or(|fd| !wait_readable(fd, 0))
    }

    /// Whether the helper can still take commands (no earlier failure
    /// closed the session).
    #[cfg(feature = "tokio")]
    pub(crate) fn is_open(&self) -> bool {
        self.open && self.sock.is_some()
    }

    /// Runs `program` with `args` with the helper's stdio and waits for it.
    pub fn run(&mut self, program: &str, args: &[&str]) -> Result<ExitStatus> {
        self.command(program).args(args.iter().copied()).status()
    }

    /// Ends the session: the helper exits and is reaped.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        drop(self.sock.take());
        if std::mem::take(&mut self.open) {
            // The helper is idle (commands run one at a time through
            // `&mut self`); ending it outright means closing never hangs.
            if let Some(pidfd) = &self.pidfd {
                // ESRCH once the helper is gone, never another process.
                let _ = crate::attach::pidfd_kill(pidfd);
            }
            // A helper in a frozen container does not die of SIGKILL until
            // the container is thawed: wait a bounded time, then leave the
            // reaper to reap it whenever it ends.
            if !self.pidfd.as_ref().is_none_or(|fd| wait_readable(fd, self.close_wait_ms)) {
                return Err(Error::WrongState {
                    op: "close the attach session",
                    container: self.container.name().to_owned(),
                    state: self.container.state().unwrap_or(State::Frozen),
                    expected: "its helper could not end: it ends and is reaped when the container is thawed or stopped",
                });
            }
            match (self.fallback_reaper.take(), &self.pidfd) {
                // Without a pidfd the helper was neither killed nor waited
                // for a bounded time: it ends when it sees its socket closed
                // (or the container thawed or stopped), and the thread
                // reaps it then; joining could wait with no way out.
                (Some(reaper), None) => drop(reaper),
                (Some(reaper), Some(_)) => match reaper.join() {
                    Ok(r) => {
                        r.map_err(|source| Error::Io { op: "waitpid", source })?;
                    }
                    Err(_) => return Err(Error::bad_return("waitpid", "the session reaper thread panicked")),
                },
                // Reaped here at once unless the reaper thread was first
                // (then ECHILD): through the pidfd, never a reused pid.
                (None, Some(fd)) => {
                    crate::reaper::reap_pidfd(fd);
                }
                (None, None) => {}
            }
        }
        Ok(())
    }

    fn closed(&mut self, reason: &'static str) -> Error {
        // The helper is gone or unusable: reap it so that no zombie stays.
        let _ = self.shutdown();
        Error::SessionClosed { container: self.container.name().to_owned(), reason }
    }

    fn sock(&self) -> Result<BorrowedFd<'_>> {
        match &self.sock {
            Some(s) => Ok(s.as_fd()),
            None => Err(Error::SessionClosed {
                container: self.container.name().to_owned(),
                reason: "the session was closed after an earlier failure",
            }),
        }
    }

    /// When the container is frozen (its helper cannot answer until it is
    /// thawed): ends the session, and the error to report.
    fn frozen_end(&mut self) -> Option<Error> {
        let state @ (State::Frozen | State::Freezing) = self.container.state().ok()? else {
            return None;
        };
        let _ = self.shutdown();
        Some(Error::WrongState {
            op: "run a session command",
            container: self.container.name().to_owned(),
            state,
            expected:
                "it must be running; the session is closed and its helper ends when the container is thawed",
        })
    }

    /// Reads one reply: a tag, two numbers and the pidfd it carries. While
    /// none comes, the container
    /// is checked every second: a frozen container's helper cannot answer
    /// until it is thawed, so the session ends with
    /// [`Error::WrongState`] instead of waiting with no way out.
    ///
    /// `exit` is the running command's pidfd: once it shows the command has
    /// exited, the helper's reply is imminent (the helper is woken by the
    /// same exit), and the socket is polled without sleeping for up to
    /// `SPIN_US`, which spares the wake-up of a sleeping caller.
    ///
    /// `cancel`: the async front's slot of this command. Once its future is
    /// gone, the helper has [`CANCEL_GRACE_MS`] to reply (its command was
    /// killed, when its pidfd could be had and checked); then the session
    /// is ended (the helper killed, its command left to the container's
    /// init), so that no thread waits on a helper that does not answer.
    fn reply(
        &mut self,
        exit: Option<BorrowedFd<'_>>,
        cancel: Option<&CancelSlot>,
    ) -> Result<(u8, i32, i32, Option<OwnedFd>)> {
        let mut exit = exit;
        let mut cancelled_at: Option<std::time::Instant> = None;
        loop {
            let ms = if cancelled_at.is_some() { 100 } else { 1000 };
            let sock = self.sock()?;
            let ready = match exit {
                Some(fd) => match wait_either(sock, fd, ms) {
                    Either::Second => {
                        exit = None;
                        spin_until_readable(sock, SPIN_US);
                        continue;
                    }
                    other => other == Either::First,
                },
                None => wait_readable(sock, ms),
            };
            if ready {
                break;
            }
            if let Some(at) = cancelled_at {
                if at.elapsed() >= std::time::Duration::from_millis(CANCEL_GRACE_MS) {
                    return Err(self.closed("the command's future was dropped and the helper did not answer"));
                }
                continue;
            }
            if cancel.is_some_and(CancelSlot::cancelled) {
                cancelled_at = Some(std::time::Instant::now());
                continue;
            }
            if let Some(e) = self.frozen_end() {
                return Err(e);
            }
        }
        let mut buf = [0u8; 9];
        let got = crate::attach::recv_with_fds(self.sock()?, &mut buf);
        match got {
            Ok(Some((9, [fd, _]))) => {
                let num = |at: usize| i32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
                Ok((buf[0], num(1), num(5), fd))
            }
            _ => Err(self.closed("the helper is gone (did the container stop?)")),
        }
    }
}

/// Closes a descriptor a helper sent that is not what the crate expects,
/// on a thread of its own: closing a FUSE file waits for its daemon, which a
/// helper taken over inside the container may be.
fn close_elsewhere(fd: OwnedFd) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    /// The closing threads at most at once: a helper that sends a blocking
    /// descriptor with every reply cannot pile up threads without end.
    const MAX_CLOSERS: usize = 16;
    static CLOSERS: AtomicUsize = AtomicUsize::new(0);
    if CLOSERS.fetch_add(1, Ordering::AcqRel) >= MAX_CLOSERS {
        CLOSERS.fetch_sub(1, Ordering::AcqRel);
        // Closed here, as before.
        drop(fd);
        return;
    }
    let spawned = std::thread::Builder::new().name("lxc-close".into()).spawn(move || {
        drop(fd);
        CLOSERS.fetch_sub(1, Ordering::AcqRel);
    });
    if let Err(e) = spawned {
        CLOSERS.fetch_sub(1, Ordering::AcqRel);
        // No thread to be had: the descriptor went with the closure, closed
        // as the spawn failed.
        drop(e);
    }
}

/// Which of two descriptors polled readable first.
#[derive(PartialEq, Eq)]
enum Either {
    First,
    Second,
    Neither,
}

/// Polls `a` and `b` for up to `ms` milliseconds (in all: a signal that
/// interrupts the poll does not start the time over).
fn wait_either(a: BorrowedFd<'_>, b: BorrowedFd<'_>, ms: i32) -> Either {
    use rustix::event::{poll, PollFd, PollFlags};
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ms.max(0) as u64);
    let mut p = [PollFd::new(&a, PollFlags::IN), PollFd::new(&b, PollFlags::IN)];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now()).as_millis() as i32;
        match poll(&mut p, Some(&timespec_ms(left))) {
            Ok(n) if n > 0 => {
                return if p[0].revents().is_empty() { Either::Second } else { Either::First };
            }
            Err(rustix::io::Errno::INTR) => continue,
            _ => return Either::Neither,
        }
    }
}

/// `ms` milliseconds as poll's timeout.
fn timespec_ms(ms: i32) -> rustix::event::Timespec {
    let d = std::time::Duration::from_millis(u64::from(ms.max(0).unsigned_abs()));
    // At most i32::MAX ms: fits every target's time_t.
    rustix::event::Timespec::try_from(d).unwrap_or(rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 })
}

/// How long a caller polls for the helper's status once the command has
/// exited, before it sleeps (the helper needs one wake-up and a `waitpid`).
const SPIN_US: u64 = 200;

/// How long the helper polls for the next request after a reply before it
/// sleeps (see `serve`).
const SPIN_HELPER_US: u64 = 200;

/// Polls `fd` without sleeping, yielding the CPU between polls (the helper
/// may be waiting for this CPU), until it is readable or `us` microseconds
/// have passed.
fn spin_until_readable(fd: BorrowedFd<'_>, us: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_micros(us);
    while !wait_readable(fd, 0) && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
}

/// [`spin_until_readable`] in the helper, a forked child: only
/// `clock_gettime` (vDSO), `poll` and `sched_yield`, no allocation, no lock.
fn spin_in_helper(sock: RawFd, us: u64) {
    // None when the clock cannot be read: then no spin at all.
    let now = || {
        let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: t is a valid out-pointer.
        let ok = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) } == 0;
        ok.then(|| (t.tv_sec as u64).saturating_mul(1_000_000).saturating_add(t.tv_nsec as u64 / 1000))
    };
    let Some(deadline) = now().map(|t| t.saturating_add(us)) else { return };
    loop {
        let mut p = libc::pollfd { fd: sock, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, no wait.
        if unsafe { libc::poll(&mut p, 1, 0) } != 0 || now().is_none_or(|t| t >= deadline) {
            return;
        }
        // SAFETY: no arguments.
        unsafe { libc::sched_yield() };
    }
}

/// How long closing a session waits for its killed helper to end (it does
/// not while its container is frozen).
const CLOSE_WAIT_MS: i32 = 2000;

/// How long a helper has to answer once the future of its command was
/// dropped (see `AttachSession::reply`).
const CANCEL_GRACE_MS: u64 = 1000;

/// Whether `fd` polls readable within `ms` milliseconds (a pidfd: the
/// process ended).
pub(crate) fn wait_readable(fd: impl AsFd, ms: i32) -> bool {
    use rustix::event::{poll, PollFd, PollFlags};
    let fd = fd.as_fd();
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ms.max(0) as u64);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now()).as_millis() as i32;
        let mut p = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut p, Some(&timespec_ms(left))) {
            Ok(n) => return n > 0,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

impl Drop for AttachSession<'_> {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl<'s, 'c> SessionCommand<'s, 'c> {
    builder_args!(&mut "the program");
    session_command_setters!();
    stdio_setters!(
        "The command's stdin (default: the helper's).",
        "The command's stdout (default: the helper's; piped for `output`).",
        "The command's stderr (default: the helper's; piped for `output`)."
    );

    /// Runs the command and waits for it.
    pub fn status(&mut self) -> Result<ExitStatus> {
        self.run(false).map(|o| o.status)
    }

    /// Runs the command with stdout and stderr captured (unless set) and
    /// waits for it.
    pub fn output(&mut self) -> Result<Output> {
        self.run(true)
    }

    /// The async front's cancel slot of this command, if any.
    fn cancel_slot(&self) -> Option<std::sync::Arc<CancelSlot>> {
        #[cfg(feature = "tokio")]
        return self.cancel.clone();
        #[cfg(not(feature = "tokio"))]
        None
    }

    fn run(&mut self, capture: bool) -> Result<Output> {
        if self.program.is_empty() {
            return Err(Error::invalid("program", "", "must not be empty"));
        }
        for kv in &self.env {
            if kv.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
                return Err(Error::invalid("environment variable", kv, "needs a name"));
            }
        }
        let mut flags = if self.clear_env { FLAG_CLEAR_ENV } else { 0 };
        let mut req = Vec::with_capacity(256);
        req.push(0);
        push_strings(
            &mut req,
            std::iter::once(self.program.as_bytes()).chain(self.args.iter().map(|a| a.as_bytes())),
        )?;
        push_strings(&mut req, self.env.iter().map(|e| e.as_bytes()))?;
        let cwd = self.cwd.as_deref().map(path_bytes).unwrap_or(b"");
        push_strings(&mut req, std::iter::once(cwd))?;
        if req.len() > MAX_REQUEST {
            return Err(Error::invalid("command", &self.program, "arguments and environment exceed 128 KiB"));
        }
        if 1 + self.args.len() > MAX_STRINGS || self.env.len() > MAX_STRINGS {
            return Err(Error::invalid(
                "command",
                &self.program,
                "more than 16384 arguments or environment variables",
            ));
        }

        // Descriptors for the command; for pipes, our ends.
        let mut send: Vec<Guarded> = Vec::new();
        let mut out_r = None;
        let mut err_r = None;
        let mut in_w = None;
        for (i, (slot, flag)) in
            [(&mut self.stdin, FLAG_STDIN), (&mut self.stdout, FLAG_STDOUT), (&mut self.stderr, FLAG_STDERR)]
                .into_iter()
                .enumerate()
        {
            let default = if capture && i > 0 { Some(Stdio::Piped) } else { None };
            match slot.take().or(default) {
                None | Some(Stdio::Inherit) => {}
                Some(Stdio::Null) => {
                    let f = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open("/dev/null")
                        .map_err(|source| Error::Io { op: "open /dev/null", source })?;
                    send.push(Guarded::new(f));
                    flags |= flag;
                }
                Some(Stdio::Piped) => {
                    let (r, w) = io::pipe().map_err(|source| Error::Io { op: "pipe", source })?;
                    if i == 0 {
                        send.push(Guarded::new(r));
                        in_w = Some(w);
                    } else {
                        send.push(Guarded::new(w));
                        if i == 1 {
                            out_r = Some(r);
                        } else {
                            err_r = Some(r);
                        }
                    }
                    flags |= flag;
                }
                Some(Stdio::Fd(fd)) => {
                    send.push(Guarded::new(fd));
                    flags |= flag;
                }
            }
        }
        req[0] = flags;

        // A future of the async front dropped before its command was sent:
        // nothing is sent.
        #[cfg(feature = "tokio")]
        if self.cancel.as_ref().is_some_and(|c| c.cancelled()) {
            return Err(Error::Io { op: "run a session command", source: io::Error::other("cancelled") });
        }
        let sock = self.session.sock()?;
        let borrowed: Vec<BorrowedFd<'_>> = send.iter().map(AsFd::as_fd).collect();
        if let Err(e) = crate::fds::send_with_fds(sock, &req, &borrowed) {
            return Err(match e.raw_os_error() {
                Some(libc::EPIPE) | Some(libc::ECONNRESET) | Some(libc::ENOTCONN) => {
                    self.session.closed("the helper is gone (did the container stop?)")
                }
                _ => Error::Io { op: "send to the session helper", source: e },
            });
        }
        drop(send);
        // Our stdin end: nothing is written through output()/status().
        drop(in_w);

        let cancel = self.cancel_slot();
        let (tag, n, _, pidfd) = self.session.reply(None, cancel.as_deref())?;
        // Only a pidfd is polled (a descriptor of another kind, which a
        // helper taken over inside the container could send, might block
        // in poll: a FUSE file): its fdinfo has a `Pid:` line. Another
        // kind is closed on a thread of its own (closing a FUSE file waits
        // for its daemon).
        let pidfd = pidfd.and_then(|fd| match crate::attach::pidfd_pid(&fd) {
            Some(_) => Some(fd),
            None => {
                close_elsewhere(fd);
                None
            }
        });
        match tag {
            REPLY_STARTED => {}
            REPLY_NOT_STARTED => {
                return Err(Error::ProgramNotStarted {
                    container: self.session.container.name().to_owned(),
                    program: self.program.clone(),
                    source: io::Error::from_raw_os_error(n),
                })
            }
            _ => return Err(self.session.closed("the helper sent a reply out of order")),
        }
        #[cfg(feature = "tokio")]
        if let (Some(slot), Some(fd)) = (&self.cancel, &pidfd) {
            slot.started(fd, self.session.helper);
        }
        let (stdout, stderr) = match read2(out_r, err_r) {
            Ok(out) => out,
            Err(source) => {
                // Its status reply would answer the next request: the
                // session ends (the helper is killed; the command, its
                // child, is left to the container's init).
                let _ = self.session.shutdown();
                return Err(Error::Io { op: "read command output", source });
            }
        };
        // The command's pidfd (the helper's child: only polled, never
        // waited for or signalled here) says when it exits, the moment the
        // helper learns it too: its status follows within microseconds.
        match self.session.reply(pidfd.as_ref().map(AsFd::as_fd), cancel.as_deref())? {
            (REPLY_EXITED, status, _, _) => {
                Ok(Output { status: ExitStatus::from_raw(status), stdout, stderr })
            }
            _ => Err(self.session.closed("the helper sent a reply out of order")),
        }
    }
}

fn push_strings<'a>(req: &mut Vec<u8>, items: impl Iterator<Item = &'a [u8]>) -> Result<()> {
    let at = req.len();
    req.extend_from_slice(&0u32.to_ne_bytes());
    let mut n = 0u32;
    for s in items {
        if s.contains(&0) {
            return Err(Error::invalid("command argument", s, "contains a NUL byte"));
        }
        req.extend_from_slice(s);
        req.push(0);
        n += 1;
    }
    req[at..at + 4].copy_from_slice(&n.to_ne_bytes());
    Ok(())
}

// ----- the helper, in the attached child ----------------------------------
//
// Everything below runs in the child liblxc forked from a process that may
// have other threads: until it execs, only async-signal-safe calls on
// memory prepared before the fork. It stays on `libc` (raw calls, stack
// buffers), where the caller's side above uses rustix.

/// Sends a reply from the helper (a tag, two numbers and, for a command
/// that was made, its pidfd); false if the caller is gone.
fn helper_reply(sock: RawFd, tag: u8, a: i32, b: i32, pidfd: RawFd) -> bool {
    let (a, b) = (a.to_ne_bytes(), b.to_ne_bytes());
    let msg = [tag, a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]];
    let fds = [pidfd];
    crate::attach::send_with_fds(sock, &msg, if pidfd >= 0 { &fds } else { &[] })
}

/// Most arguments (or environment variables) of one session command.
const MAX_STRINGS: usize = 16384;

/// Room for descriptors received with one request.
const MAX_FDS: usize = 8;

/// The helper's memory, allocated by the caller before the fork and used by
/// the helper through `&mut`, never grown: the request buffer and the
/// pointer arrays that point into it (and into the helper's environment).
struct HelperMem {
    buf: Vec<u8>,
    argv: Vec<*mut c_char>,
    extra_env: Vec<*mut c_char>,
    envp: Vec<*mut c_char>,
    cwd: Vec<*mut c_char>,
    /// The stack of the vfork child that execs a command.
    stack: Vec<u8>,
    /// Where the child builds each `dir/program` of its PATH search.
    path: Vec<u8>,
}

impl HelperMem {
    fn new() -> HelperMem {
        // liblxc may add the attach options' variables to the helper's
        // environment; the margin is for them.
        // Counted under std's environment lock (another thread may be
        // changing it).
        let environ_len = std::env::vars_os().count();
        HelperMem {
            buf: vec![0u8; MAX_REQUEST + 1024],
            argv: Vec::with_capacity(MAX_STRINGS + 1),
            extra_env: Vec::with_capacity(MAX_STRINGS),
            envp: Vec::with_capacity(MAX_STRINGS + environ_len + 4096 + 1),
            cwd: Vec::with_capacity(1),
            stack: vec![0u8; CHILD_STACK],
            path: vec![0u8; libc::PATH_MAX as usize * 2],
        }
    }
}

/// Pushes without growing (which would allocate): false when full.
fn push_within(v: &mut Vec<*mut c_char>, p: *mut c_char) -> bool {
    if v.len() == v.capacity() {
        return false;
    }
    v.push(p);
    true
}

/// Splits `n` NUL-terminated strings off the front of `buf` into `out`, as
/// pointers into `buf`, without allocating; None when the request is
/// malformed or has more strings than `out` has room for.
fn take_strings<'b>(buf: &'b [u8], out: &mut Vec<*mut c_char>) -> Option<&'b [u8]> {
    out.clear();
    let n = u32::from_ne_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let mut rest = buf.get(4..)?;
    for _ in 0..n {
        let end = rest.iter().position(|b| *b == 0)?;
        if !push_within(out, rest.as_ptr().cast_mut().cast()) {
            return None;
        }
        rest = rest.get(end + 1..)?;
    }
    Some(rest)
}

/// The bytes of a C string, without its NUL.
///
/// # Safety
/// `p` is a valid NUL-terminated string.
unsafe fn c_bytes<'a>(p: *const c_char) -> &'a [u8] {
    // SAFETY: as the caller promises.
    unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes()
}

/// The helper's loop: one request, one spawned command, replies; ends when
/// the caller closes its end. Returns the helper's exit code.
///
/// Soundness: this runs in the attached child, a copy of the caller made by
/// glibc's `fork` (liblxc's), in which only this thread exists. It takes no
/// lock of std or of the caller's (no printing, no `std::env`, no panic: no
/// indexing that can fail, no `unwrap`), allocates nothing (its buffers,
/// pointer arrays and the commands' stack, `HelperMem`, were allocated by
/// the caller before the fork, so the program's global allocator is never
/// entered), and calls only `recvmsg`, `sendmsg`, `waitpid`, `close`,
/// `pidfd_open`, `sigprocmask`, `close_range` (or its fallback sweep) and
/// `clone`; the vfork child, `dup2`, `chdir`, `sigprocmask`, `execve` and
/// `_exit`.
fn serve(sock: RawFd, sweep: &FdSweep, mem: &mut HelperMem) -> i32 {
    // The caller's signal handlers, ignored signals and mask are not the
    // helper's: a caller's reaping SIGCHLD handler would take the exit
    // status of the commands it spawns.
    crate::attach::reset_signals_in_child();
    // The helper needs nothing of the caller's but the socket and stdio:
    // closing the rest also drops copies of other threads' pipes that this
    // fork inherited, which would otherwise keep them from seeing EOF, and
    // keeps the caller's descriptors out of the commands it spawns.
    // close_range, or before Linux 5.9 a sweep of /proc/self/fd or of
    // every number below RLIMIT_NOFILE.
    fds_from_3_in_child(FdAction::Close, sock, sweep);
    // Each command's pidfd goes to the caller (CLONE_PIDFD, Linux 5.2)
    // where the kernel has pidfds: a pidfd_open that works (Linux 5.3) says
    // so.
    // SAFETY: getpid and pidfd_open take no pointers; the pidfd is closed.
    let pidfds = unsafe {
        let me = libc::syscall(libc::SYS_getpid) as libc::pid_t;
        let fd = libc::syscall(libc::SYS_pidfd_open, me, 0) as RawFd;
        fd >= 0 && libc::close(fd) == 0
    };
    loop {
        // A caller running commands one after another sends the next
        // request within microseconds of the last reply: polled without
        // sleeping for a while, it is read without the wake-up of a
        // sleeping helper.
        spin_in_helper(sock, SPIN_HELPER_US);
        let mut cbuf = [0u64; 8];
        let mut iov = libc::iovec { iov_base: mem.buf.as_mut_ptr().cast(), iov_len: mem.buf.len() };
        // SAFETY: an all-zero msghdr is a valid empty one.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = mem::size_of_val(&cbuf) as _;
        // SAFETY: msg describes valid buffers; received descriptors are
        // close-on-exec.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return 0;
        }
        let mut fds: [Option<OwnedFd>; MAX_FDS] = Default::default();
        let mut nfds = 0;
        // Received descriptors land on the lowest free numbers: 0 to 2 when
        // the helper's stdio is closed. Each is moved above 2, so that no
        // dup2 onto a stdio number overwrites another's source or is a
        // no-op that leaves it close-on-exec.
        let above_2 = |fd: OwnedFd| -> OwnedFd {
            if fd.as_raw_fd() > 2 {
                return fd;
            }
            // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own; a
            // non-negative result is a new descriptor that we own.
            let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
            if new < 0 {
                fd
            } else {
                // SAFETY: as above.
                unsafe { OwnedFd::from_raw_fd(new) }
            }
        };
        // SAFETY: walking the control messages recvmsg filled in.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let count =
                        ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / mem::size_of::<c_int>();
                    let p = libc::CMSG_DATA(c).cast::<c_int>();
                    for i in 0..count {
                        let fd = OwnedFd::from_raw_fd(p.add(i).read_unaligned());
                        // More than a request sends: closed at once.
                        if let Some(slot) = fds.get_mut(nfds) {
                            *slot = Some(above_2(fd));
                            nfds += 1;
                        }
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        let len = (n as usize).min(mem.buf.len());
        let ok = match spawn_request(len, &mut fds, mem, pidfds) {
            Err(errno) => helper_reply(sock, REPLY_NOT_STARTED, errno, 0, -1),
            Ok(made) => {
                let ok = if made.errno != 0 {
                    wait_child(made.pid);
                    helper_reply(sock, REPLY_NOT_STARTED, made.errno, 0, -1)
                } else {
                    // With the command's pidfd, which the caller polls to
                    // know the moment it exits.
                    helper_reply(sock, REPLY_STARTED, 0, made.pid, made.pidfd)
                };
                if made.pidfd >= 0 {
                    // SAFETY: the pidfd clone made for us, sent (the caller
                    // has its own copy) or not: closed once.
                    unsafe { libc::close(made.pidfd) };
                }
                ok && (made.errno != 0 || helper_reply(sock, REPLY_EXITED, wait_child(made.pid), 0, -1))
            }
        };
        if !ok {
            return 0;
        }
    }
}

/// `waitpid` of the helper's own child; its wait status.
fn wait_child(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: pid is the helper's child; status a valid out-pointer.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
    status
}

/// Spawns the command of the request in `mem.buf[..len]`; the pid, or the
/// errno of the failure. Allocates nothing (see `serve`).
fn spawn_request(
    len: usize,
    fds: &mut [Option<OwnedFd>; MAX_FDS],
    mem: &mut HelperMem,
    pidfds: bool,
) -> std::result::Result<Made, i32> {
    let HelperMem { buf, argv, extra_env, envp, cwd, stack, path } = mem;
    let req = buf.get(..len).ok_or(libc::EINVAL)?;
    let flags = *req.first().ok_or(libc::EINVAL)?;
    let rest = take_strings(req.get(1..).ok_or(libc::EINVAL)?, argv).ok_or(libc::E2BIG)?;
    let rest = take_strings(rest, extra_env).ok_or(libc::E2BIG)?;
    take_strings(rest, cwd).ok_or(libc::EINVAL)?;
    if argv.is_empty() || !push_within(argv, ptr::null_mut()) {
        return Err(libc::EINVAL);
    }
    // The environment: the helper's (unless cleared), then the extra
    // variables, a later one replacing an earlier one of the same name.
    envp.clear();
    if flags & FLAG_CLEAR_ENV == 0 {
        // SAFETY: environ is a NULL-terminated array of C strings; this
        // single-threaded helper does not change it while we read.
        unsafe {
            let mut p = environ;
            while !p.is_null() && !(*p).is_null() {
                if !push_within(envp, (*p).cast_mut()) {
                    return Err(libc::E2BIG);
                }
                p = p.add(1);
            }
        }
    }
    for &kv in extra_env.iter() {
        // SAFETY: kv points to a NUL-terminated string of the request.
        let kv_bytes = unsafe { c_bytes(kv) };
        let name_len = kv_bytes.iter().position(|b| *b == b'=').unwrap_or(0);
        let name = kv_bytes.get(..=name_len);
        // SAFETY: every entry is a NUL-terminated string (environ's or
        // the request's).
        envp.retain(|&e| unsafe { c_bytes(e) }.get(..=name_len) != name);
        if !push_within(envp, kv) {
            return Err(libc::E2BIG);
        }
    }
    if !push_within(envp, ptr::null_mut()) {
        return Err(libc::E2BIG);
    }

    let mut child = ChildArgs {
        argv: argv.as_ptr().cast(),
        envp: envp.as_ptr().cast(),
        path: path_of_helper(),
        dups: [(-1, -1); 3],
        ndups: 0,
        cwd: ptr::null(),
        scratch: path.as_mut_ptr(),
        scratch_len: path.len(),
        // SAFETY: all-zero is a valid sigset_t (sigprocmask fills it).
        mask: unsafe { mem::zeroed() },
        err: 0,
    };
    let mut next = fds.iter();
    for (target, flag) in [(0, FLAG_STDIN), (1, FLAG_STDOUT), (2, FLAG_STDERR)] {
        if flags & flag != 0 {
            let Some(Some(fd)) = next.next() else {
                return Err(libc::EBADF);
            };
            if let Some(slot) = child.dups.get_mut(child.ndups) {
                *slot = (fd.as_raw_fd(), target);
                child.ndups += 1;
            }
        }
    }
    // SAFETY: cwd's entries point to NUL-terminated strings of the request.
    if let Some(&dir) = cwd.first().filter(|d| !unsafe { c_bytes(**d) }.is_empty()) {
        child.cwd = dir;
    }
    let made = vfork_exec(&mut child, stack, pidfds);
    // The command has its own copies (or never started): ours close.
    for fd in fds.iter_mut() {
        drop(fd.take());
    }
    made
}

/// A command process the helper made: its pid, a pidfd of it (-1 when the
/// kernel has no `CLONE_PIDFD`), and the errno of its failed exec (0 when
/// it runs the program; otherwise it has exited, unreaped).
struct Made {
    pid: libc::pid_t,
    pidfd: RawFd,
    errno: i32,
}

/// Stack of the vfork child: it calls only `dup2`, `chdir`,
/// `sigprocmask`, `execve` and `_exit`, with a few words of its own.
const CHILD_STACK: usize = 64 * 1024;

/// What the vfork child needs, prepared by the helper. The child shares
/// the helper's memory (`CLONE_VM`; the helper is suspended until the child
/// execs or exits) and writes `err` when it cannot exec.
struct ChildArgs {
    argv: *const *const c_char,
    envp: *const *const c_char,
    /// The helper's `PATH` (what `posix_spawnp` searches), or null.
    path: *const c_char,
    /// (descriptor, stdio number) pairs to `dup2`.
    dups: [(RawFd, RawFd); 3],
    ndups: usize,
    cwd: *const c_char,
    scratch: *mut u8,
    scratch_len: usize,
    /// The helper's signal mask, for the program.
    mask: libc::sigset_t,
    err: c_int,
}

/// The value of `PATH` in the helper's environment, or null.
fn path_of_helper() -> *const c_char {
    // SAFETY: environ is a NULL-terminated array of C strings, not changed
    // by this single-threaded helper while we read.
    unsafe {
        let mut p = environ;
        while !p.is_null() && !(*p).is_null() {
            if c_bytes(*p).starts_with(b"PATH=") {
                return (*p).add(5);
            }
            p = p.add(1);
        }
    }
    ptr::null()
}

/// Makes the command process, a child of the helper, as `posix_spawn`
/// makes one: a `clone` with `CLONE_VM | CLONE_VFORK` (no copy of the
/// helper's memory; the helper resumes once the child has exec'd or
/// failed to), and with `pidfds`, `CLONE_PIDFD` for a pidfd of it. The
/// crate's own code rather than `posix_spawn` for that pidfd, which the
/// caller polls, and for an exec failure reported through the shared
/// memory without glibc's file-action allocations.
fn vfork_exec(child: &mut ChildArgs, stack: &mut [u8], pidfds: bool) -> std::result::Result<Made, i32> {
    // The top of the stack, 16-byte aligned (the stack grows down).
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    // SAFETY: sigprocmask on the helper's own mask (all signals blocked
    // while the child shares our memory, as glibc's posix_spawn does; the
    // helper's dispositions are all SIG_DFL anyway, so no handler could run
    // there); clone with a stack that the helper owns and does not touch
    // until the child has exec'd or exited (CLONE_VFORK), a child function
    // that only reads `child` and writes its `err`, and an int for the
    // pidfd.
    unsafe {
        let mut all: libc::sigset_t = mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_BLOCK, &all, &mut child.mask);
        let arg = (child as *mut ChildArgs).cast::<std::ffi::c_void>();
        let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
        let flags = if pidfds { flags | libc::CLONE_PIDFD } else { flags };
        let mut pidfd: c_int = -1;
        let mut pid = libc::clone(exec_child, top as *mut _, flags, arg, &mut pidfd);
        if pid < 0 && pidfds {
            // A seccomp policy may refuse CLONE_PIDFD where pidfd_open
            // works: the command is made without (the caller then waits
            // for the status alone).
            pidfd = -1;
            pid = libc::clone(exec_child, top as *mut _, flags & !libc::CLONE_PIDFD, arg, &mut pidfd);
        }
        let errno = *libc::__errno_location();
        libc::sigprocmask(libc::SIG_SETMASK, &child.mask, ptr::null_mut());
        if pid < 0 {
            return Err(errno);
        }
        Ok(Made { pid, pidfd, errno: ptr::read_volatile(&child.err) })
    }
}

/// The vfork child: stdio, working directory, signal mask, then `execve`
/// of the program, searched in `PATH` as `execvp` does when it has no `/`.
/// Runs on its own stack in the helper's memory: no allocation, no lock, no
/// panic (no indexing that can fail), only async-signal-safe calls.
extern "C" fn exec_child(arg: *mut std::ffi::c_void) -> c_int {
    // SAFETY: arg is the helper's ChildArgs, alive while the helper waits
    // for this child (CLONE_VFORK).
    let a = unsafe { &mut *arg.cast::<ChildArgs>() };
    // SAFETY: as above; exec_in_child only makes the calls it lists.
    let err = unsafe { exec_in_child(a) };
    // SAFETY: err is a field of the ChildArgs above, read by the helper
    // once this child has exited; _exit ends the child without running
    // anything of the helper's.
    unsafe {
        ptr::write_volatile(&mut a.err, if err == 0 { libc::ENOEXEC } else { err });
        libc::_exit(127)
    }
}

/// The errno of the step that failed (returns only on failure).
///
/// # Safety
/// In the vfork child of `vfork_exec`, with the helper's `ChildArgs`.
unsafe fn exec_in_child(a: &ChildArgs) -> c_int {
    // SAFETY: reads this thread's errno (the helper's, shared with this
    // child, which is the only one running).
    let errno = || unsafe { *libc::__errno_location() };
    // SAFETY: the calls below take descriptors, NUL-terminated strings and
    // NULL-terminated arrays that the helper prepared, and buffers of the
    // lengths given.
    unsafe {
        for &(fd, target) in a.dups.get(..a.ndups).unwrap_or(&[]) {
            if libc::dup2(fd, target) < 0 {
                return errno();
            }
        }
        if !a.cwd.is_null() && libc::chdir(a.cwd) < 0 {
            return errno();
        }
        libc::sigprocmask(libc::SIG_SETMASK, &a.mask, ptr::null_mut());
        let file_ptr = *a.argv;
        let file = c_bytes(file_ptr);
        if file.contains(&b'/') {
            libc::execve(file_ptr, a.argv, a.envp);
            return errno();
        }
        let path: &[u8] = if a.path.is_null() { b"/bin:/usr/bin" } else { c_bytes(a.path) };
        let buf = std::slice::from_raw_parts_mut(a.scratch, a.scratch_len);
        let mut eacces = false;
        let mut last = libc::ENOENT;
        for dir in path.split(|b| *b == b':') {
            let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
            let Some(full) = join_in(buf, dir, file) else {
                last = libc::ENAMETOOLONG;
                continue;
            };
            libc::execve(full, a.argv, a.envp);
            match errno() {
                libc::EACCES => eacces = true,
                e @ (libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT) => {
                    last = e
                }
                e => return e,
            }
        }
        if eacces {
            libc::EACCES
        } else {
            last
        }
    }
}

/// `dir/file` and a NUL in `buf`, or `None` when it does not fit.
fn join_in(buf: &mut [u8], dir: &[u8], file: &[u8]) -> Option<*const c_char> {
    let (d, rest) = buf.split_at_mut_checked(dir.len())?;
    d.copy_from_slice(dir);
    let (slash, rest) = rest.split_first_mut()?;
    *slash = b'/';
    let (f, rest) = rest.split_at_mut_checked(file.len())?;
    f.copy_from_slice(file);
    *rest.first_mut()? = 0;
    Some(buf.as_ptr().cast())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a child of the given parent passes: the check the async front
    /// makes before it signals a pidfd a session helper sent.
    #[cfg(feature = "tokio")]
    #[test]
    fn is_child_of_reads_the_parent() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        let fd = crate::attach::pidfd_open(pid).unwrap();
        let me = libc::pid_t::try_from(std::process::id()).unwrap();
        assert!(is_child_of(&fd, me));
        assert!(!is_child_of(&fd, 1));
        assert!(!is_child_of(&fd, pid));
        child.kill().unwrap();
        child.wait().unwrap();
        // Reaped: its pidfd names no process, so no parent either.
        assert!(!is_child_of(&fd, me));
    }

    #[test]
    fn requests_round_trip() {
        let mut req = vec![FLAG_CLEAR_ENV];
        push_strings(&mut req, ["/bin/echo", "a b", ""].iter().map(|s| s.as_bytes())).unwrap();
        push_strings(&mut req, ["K=V"].iter().map(|s| s.as_bytes())).unwrap();
        push_strings(&mut req, std::iter::once(&b"/tmp"[..])).unwrap();
        let texts = |v: &Vec<*mut c_char>| -> Vec<Vec<u8>> {
            // SAFETY: the entries point into `req`, NUL-terminated.
            v.iter().map(|p| unsafe { c_bytes(*p) }.to_vec()).collect()
        };
        let mut out = Vec::with_capacity(8);
        let rest = take_strings(&req[1..], &mut out).unwrap();
        assert_eq!(texts(&out), [b"/bin/echo".to_vec(), b"a b".to_vec(), b"".to_vec()]);
        let rest = take_strings(rest, &mut out).unwrap();
        assert_eq!(texts(&out), [b"K=V".to_vec()]);
        let rest = take_strings(rest, &mut out).unwrap();
        assert_eq!(texts(&out), [b"/tmp".to_vec()]);
        assert!(rest.is_empty());
        // Truncated, or more strings than there is room for: refused, never
        // grown.
        assert!(take_strings(&req[1..3], &mut out).is_none());
        let mut small = Vec::with_capacity(2);
        assert!(take_strings(&req[1..], &mut small).is_none());
        assert_eq!(small.capacity(), 2);
        assert!(push_strings(&mut req, std::iter::once(&b"a\0b"[..])).is_err());
    }
}
