//! Attach once, run many commands: [`AttachSession`].
//!
//! liblxc's attach costs about 2 ms per command (a fork, setns into every
//! namespace, the cgroup move, the LSM and capability setup). A session pays
//! it once: it attaches a small helper with the given options, and each
//! command is then spawned *by the helper* (`posix_spawn`, a vfork and an
//! exec), so it inherits the helper's namespaces, cgroup, capabilities, LSM
//! label, uid/gid and environment, without another attach.
//!
//! The caller and the helper talk over a `SOCK_SEQPACKET` socket pair: one
//! message per request (arguments, extra environment, working directory,
//! and up to three descriptors passed with `SCM_RIGHTS` for stdin, stdout and
//! stderr), and short replies (started with pid / could not start with errno /
//! exited with wait status). When the caller closes the socket the helper
//! exits; when the helper dies (the container stopped, someone killed it)
//! the caller reads end-of-file and gets [`Error::SessionClosed`], never a
//! hang.

use std::ffi::{c_char, c_int};
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Output};
use std::ptr;

use crate::attach::{wait_pid, AttachOptions};
use crate::command::{read2, Stdio};
use crate::cstr::path_bytes;
use crate::error::{Error, Result};
use crate::fds::{fds_from_3_in_child, FdAction, FdSweep, Guarded};
use crate::{Container, State};

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
    container: &'c Container,
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
}

/// One command of an [`AttachSession`], built like
/// [`std::process::Command`].
#[derive(Debug)]
pub struct SessionCommand<'s, 'c> {
    session: &'s mut AttachSession<'c>,
    program: String,
    args: Vec<String>,
    env: Vec<String>,
    clear_env: bool,
    cwd: Option<std::path::PathBuf>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
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
            container: self,
            helper: pid,
            pidfd,
            sock: Some(ours),
            open: true,
            fallback_reaper,
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
        }
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
                let _ = crate::attach::pidfd_kill(pidfd, libc::SIGKILL);
            }
            // A helper in a frozen container does not die of SIGKILL until
            // the container is thawed: wait a bounded time, then leave the
            // reaper to reap it whenever it ends.
            if !self.pidfd.as_ref().is_none_or(|fd| wait_readable(fd.as_raw_fd(), CLOSE_WAIT_MS)) {
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

    fn sock(&mut self) -> Result<RawFd> {
        match &self.sock {
            Some(s) => Ok(s.as_raw_fd()),
            None => Err(Error::SessionClosed {
                container: self.container.name().to_owned(),
                reason: "the session was closed after an earlier failure",
            }),
        }
    }

    /// Reads one reply: a tag and a number. While none comes, the container
    /// is checked every second: a frozen container's helper cannot answer
    /// until it is thawed, so the session ends with
    /// [`Error::WrongState`] instead of waiting with no way out.
    fn reply(&mut self) -> Result<(u8, i32)> {
        let sock = self.sock()?;
        while !wait_readable(sock, 1000) {
            if let Ok(state @ (State::Frozen | State::Freezing)) = self.container.state() {
                let _ = self.shutdown();
                return Err(Error::WrongState {
                    op: "run a session command",
                    container: self.container.name().to_owned(),
                    state,
                    expected: "it must be running; the session is closed and its helper ends when the container is thawed",
                });
            }
        }
        let mut buf = [0u8; 5];
        let n = loop {
            // SAFETY: buf is valid for 5 bytes.
            let n = unsafe { libc::recv(sock, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n >= 0 {
                break n as usize;
            }
            if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break 0;
            }
        };
        if n != 5 {
            return Err(self.closed("the helper is gone (did the container stop?)"));
        }
        Ok((buf[0], i32::from_ne_bytes([buf[1], buf[2], buf[3], buf[4]])))
    }
}

/// How long closing a session waits for its killed helper to end (it does
/// not while its container is frozen).
const CLOSE_WAIT_MS: i32 = 2000;

/// Whether `fd` polls readable within `ms` milliseconds (a pidfd: the
/// process ended).
fn wait_readable(fd: RawFd, ms: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ms as u64);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now()).as_millis() as i32;
        // SAFETY: p is one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, left) };
        if n > 0 {
            return true;
        }
        if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return false;
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
    /// Sets an environment variable for this command.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.push(format!("{key}={value}"));
        self
    }
    /// Starts this command from an empty environment (plus its
    /// [`SessionCommand::env`] variables).
    pub fn env_clear(&mut self) -> &mut Self {
        self.clear_env = true;
        self
    }
    /// The working directory inside the container.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }
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

        let sock = self.session.sock()?;
        if let Err(e) = send_with_fds(sock, &req, &send) {
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

        match self.session.reply()? {
            (REPLY_STARTED, _) => {}
            (REPLY_NOT_STARTED, errno) => {
                return Err(Error::ProgramNotStarted {
                    container: self.session.container.name().to_owned(),
                    program: self.program.clone(),
                    source: io::Error::from_raw_os_error(errno),
                })
            }
            _ => return Err(self.session.closed("the helper sent a reply out of order")),
        }
        let (stdout, stderr) =
            read2(out_r, err_r).map_err(|source| Error::Io { op: "read command output", source })?;
        match self.session.reply()? {
            (REPLY_EXITED, status) => Ok(Output { status: ExitStatus::from_raw(status), stdout, stderr }),
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

fn cmsg_space(n: usize) -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE((n * mem::size_of::<c_int>()) as u32) as usize }
}

/// Sends one message with up to three descriptors.
fn send_with_fds(sock: RawFd, data: &[u8], fds: &[Guarded]) -> io::Result<()> {
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut _, iov_len: data.len() };
    let mut cbuf = [0u64; 8];
    // SAFETY: an all-zero msghdr is a valid empty one.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = cmsg_space(fds.len()) as _;
        // SAFETY: msg_control points to a buffer large enough for one header
        // with fds.len() descriptors (at most 3 ints in 64 bytes).
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN((fds.len() * mem::size_of::<c_int>()) as u32) as _;
            let p = libc::CMSG_DATA(c).cast::<c_int>();
            for (i, fd) in fds.iter().enumerate() {
                p.add(i).write_unaligned(fd.as_raw_fd());
            }
        }
    }
    loop {
        // SAFETY: msg describes valid buffers; MSG_NOSIGNAL keeps a dead
        // peer from raising SIGPIPE.
        let r = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

// ----- the helper, in the attached child ----------------------------------

/// Sends a reply from the helper; false if the caller is gone.
fn helper_reply(sock: RawFd, tag: u8, n: i32) -> bool {
    let b = n.to_ne_bytes();
    let msg = [tag, b[0], b[1], b[2], b[3]];
    // SAFETY: msg is 5 valid bytes.
    unsafe { libc::send(sock, msg.as_ptr().cast(), msg.len(), libc::MSG_NOSIGNAL) == 5 }
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
/// indexing that can fail, no `unwrap`), allocates only through glibc's
/// `malloc`, which glibc's `fork` leaves usable, and calls only `recvmsg`,
/// `send`, `waitpid`, `close_range` (or its fallback sweep) and
/// `posix_spawnp`. It allocates nothing of its own: its buffer and pointer
/// arrays (`HelperMem`) were allocated by the caller before the fork, and
/// only glibc allocates inside `posix_spawn_file_actions_*` (glibc's
/// `malloc`, whatever the program's Rust global allocator is).
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
    loop {
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
                            *slot = Some(fd);
                            nfds += 1;
                        }
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        let len = (n as usize).min(mem.buf.len());
        let r = spawn_request(len, &mut fds, mem);
        let ok = match r {
            Err(errno) => helper_reply(sock, REPLY_NOT_STARTED, errno),
            Ok(pid) => {
                helper_reply(sock, REPLY_STARTED, pid) && {
                    let mut status = 0;
                    // SAFETY: pid is the helper's child.
                    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
                        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
                    {
                    }
                    helper_reply(sock, REPLY_EXITED, status)
                }
            }
        };
        if !ok {
            return 0;
        }
    }
}

/// Spawns the command of the request in `mem.buf[..len]`; the pid, or the
/// errno of the failure. Allocates nothing (see `serve`).
fn spawn_request(
    len: usize,
    fds: &mut [Option<OwnedFd>; MAX_FDS],
    mem: &mut HelperMem,
) -> std::result::Result<libc::pid_t, i32> {
    let HelperMem { buf, argv, extra_env, envp, cwd } = mem;
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

    // SAFETY: all-zero is the state posix_spawn_file_actions_init sets up.
    let mut actions: libc::posix_spawn_file_actions_t = unsafe { mem::zeroed() };
    // SAFETY: actions is a valid object to initialise.
    unsafe { libc::posix_spawn_file_actions_init(&mut actions) };
    let mut next = fds.iter();
    for (target, flag) in [(0, FLAG_STDIN), (1, FLAG_STDOUT), (2, FLAG_STDERR)] {
        if flags & flag != 0 {
            let Some(Some(fd)) = next.next() else {
                // SAFETY: destroying the object initialised above.
                unsafe { libc::posix_spawn_file_actions_destroy(&mut actions) };
                return Err(libc::EBADF);
            };
            // SAFETY: actions is initialised; fd stays open until spawn.
            unsafe { libc::posix_spawn_file_actions_adddup2(&mut actions, fd.as_raw_fd(), target) };
        }
    }
    // SAFETY: cwd's entries point to NUL-terminated strings of the request.
    if let Some(&dir) = cwd.first().filter(|d| !unsafe { c_bytes(**d) }.is_empty()) {
        // SAFETY: actions is initialised; dir lives until spawn.
        unsafe { libc::posix_spawn_file_actions_addchdir_np(&mut actions, dir) };
    }
    let mut pid = 0;
    // SAFETY: every pointer is valid and NULL-terminated where required;
    // posix_spawnp searches PATH of the helper's environment.
    let r =
        unsafe { libc::posix_spawnp(&mut pid, argv[0], &actions, ptr::null(), argv.as_ptr(), envp.as_ptr()) };
    // SAFETY: destroying the object initialised above.
    unsafe { libc::posix_spawn_file_actions_destroy(&mut actions) };
    for fd in fds.iter_mut() {
        drop(fd.take());
    }
    if r == 0 {
        Ok(pid)
    } else {
        Err(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
