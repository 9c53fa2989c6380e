//! A `std::process::Command`-shaped front over attach:
//! `container.command("ls").arg("-l").output()?`.

use std::io::{self, PipeReader, PipeWriter};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::{ExitStatus, Output};

use crate::attach::{try_wait_pid, wait_pid, AttachOptions};
use crate::error::{Error, Result};
use crate::fds::Guarded;
use crate::Container;

/// Where a standard stream of the attached program goes.
#[derive(Debug)]
pub enum Stdio {
    /// The caller's own stream.
    Inherit,
    /// `/dev/null`.
    Null,
    /// A new pipe, reachable through [`AttachChild`].
    Piped,
    /// A descriptor the caller hands over (a file, a socket, a pipe end).
    Fd(OwnedFd),
}

impl Stdio {
    /// The caller's own stream.
    pub fn inherit() -> Self {
        Stdio::Inherit
    }
    /// `/dev/null`.
    pub fn null() -> Self {
        Stdio::Null
    }
    /// A new pipe.
    pub fn piped() -> Self {
        Stdio::Piped
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Self {
        Stdio::Fd(fd)
    }
}

impl From<std::fs::File> for Stdio {
    fn from(f: std::fs::File) -> Self {
        Stdio::Fd(f.into())
    }
}

/// A program to run inside a running container, built like
/// [`std::process::Command`]; see [`Container::command`].
///
/// ```no_run
/// let c = lxc::Container::new("web")?;
/// let out = c
///     .command("ls")
///     .arg("-l")
///     .env("LANG", "C")
///     .current_dir("/etc")
///     .uid(0)
///     .output()?;
/// assert!(out.status.success());
/// println!("{}", String::from_utf8_lossy(&out.stdout));
/// # Ok::<(), lxc::Error>(())
/// ```
#[derive(Debug)]
pub struct Command<'c> {
    pub(crate) container: &'c Container,
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) opts: AttachOptions<'static>,
    pub(crate) stdin: Option<Stdio>,
    pub(crate) stdout: Option<Stdio>,
    pub(crate) stderr: Option<Stdio>,
}

/// A program running inside a container, started by [`Command::spawn`]:
/// its pid (a child of the caller), its pipes, and its status.
///
/// As with [`std::process::Child`], dropping it does not wait for the
/// program; call [`AttachChild::wait`] so that no zombie is left. Wait
/// before the container stops: its dying init waits until every process of
/// its pid namespace is reaped, and this one is the caller's to reap.
#[derive(Debug)]
pub struct AttachChild {
    pid: libc::pid_t,
    /// A pidfd taken while the child was certainly alive (see
    /// `attach::Spawned`): kill and wait go through it, never through a pid
    /// that a caller's reaping SIGCHLD handler may have freed for reuse.
    pidfd: Option<std::os::fd::OwnedFd>,
    status: Option<ExitStatus>,
    /// For a child of `status()` or `output()`, whose exec was not waited
    /// for: what it reported, read once it has ended.
    pending: Option<crate::attach::PendingExec>,
    /// Killed (SIGKILL) when dropped unwaited: a child of the async front,
    /// whose future or handle was dropped (cancelled).
    pub(crate) kill_on_drop: bool,
    /// The program's stdin, when it was [`Stdio::Piped`].
    pub stdin: Option<PipeWriter>,
    /// The program's stdout, when it was [`Stdio::Piped`].
    pub stdout: Option<PipeReader>,
    /// The program's stderr, when it was [`Stdio::Piped`].
    pub stderr: Option<PipeReader>,
}

impl Container {
    /// A program to run inside this (running) container, with liblxc's
    /// attach; see [`Command`].
    pub fn command(&self, program: impl Into<String>) -> Command<'_> {
        Command {
            container: self,
            program: program.into(),
            args: Vec::new(),
            opts: AttachOptions::new(),
            stdin: None,
            stdout: None,
            stderr: None,
        }
    }
}

/// One end for the child and, for a pipe, the other end for us.
enum End {
    Read(PipeReader),
    Write(PipeWriter),
}

fn pipe_err(source: io::Error) -> Error {
    Error::Io { op: "pipe", source }
}

impl<'c> Command<'c> {
    builder_args!(&mut "the program");
    command_setters!();

    fn setup(
        s: Option<&mut Option<Stdio>>,
        default: Stdio,
        fd: RawFd,
    ) -> Result<(RawFd, Option<End>, Option<Guarded>)> {
        let s = s.and_then(Option::take).unwrap_or(default);
        Ok(match s {
            Stdio::Inherit => (fd, None, None),
            Stdio::Null => (-1, None, None),
            Stdio::Piped => {
                let (r, w) = io::pipe().map_err(pipe_err)?;
                if fd == 0 {
                    let child = Guarded::new(r);
                    (child.as_raw_fd(), Some(End::Write(w)), Some(child))
                } else {
                    let child = Guarded::new(w);
                    (child.as_raw_fd(), Some(End::Read(r)), Some(child))
                }
            }
            Stdio::Fd(owned) => {
                let child = Guarded::new(owned);
                (child.as_raw_fd(), None, Some(child))
            }
        })
    }

    /// Starts the program. With `confirm`, returns once it is known to run
    /// (its exec succeeded); without, as soon as it was started, and an
    /// exec failure comes from waiting for the child.
    pub(crate) fn spawn_with(&mut self, out_default: fn() -> Stdio, confirm: bool) -> Result<AttachChild> {
        let (in_fd, in_end, in_keep) = Self::setup(Some(&mut self.stdin), Stdio::Null, 0)?;
        let (out_fd, out_end, out_keep) = Self::setup(Some(&mut self.stdout), out_default(), 1)?;
        let (err_fd, err_end, err_keep) = Self::setup(Some(&mut self.stderr), out_default(), 2)?;
        let mut opts = self.opts.clone().raw_stdout(out_fd).raw_stderr(err_fd);
        // -1 means /dev/null, which the options supply for stdin; for the
        // outputs, a /dev/null of our own.
        let null;
        if in_fd >= 0 {
            opts = opts.raw_stdin(in_fd);
        }
        if out_fd < 0 || err_fd < 0 {
            null = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .map_err(|source| Error::Io { op: "open /dev/null", source })?;
            if out_fd < 0 {
                opts = opts.raw_stdout(null.as_raw_fd());
            }
            if err_fd < 0 {
                opts = opts.raw_stderr(null.as_raw_fd());
            }
        }
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let (spawned, pending) = self.container.attach_spawn(&opts, &self.program, &args, confirm)?;
        // The child has its copies; ours must close so that EOF arrives.
        drop((in_keep, out_keep, err_keep));
        let mut child = AttachChild::from_spawned(spawned);
        child.pending = pending;
        if let Some(End::Write(w)) = in_end {
            child.stdin = Some(w);
        }
        if let Some(End::Read(r)) = out_end {
            child.stdout = Some(r);
        }
        if let Some(End::Read(r)) = err_end {
            child.stderr = Some(r);
        }
        Ok(child)
    }

    /// Starts the program and returns at once.
    pub fn spawn(&mut self) -> Result<AttachChild> {
        self.spawn_with(Stdio::inherit, true)
    }

    /// Runs the program and waits for it; stdout and stderr are inherited
    /// unless set.
    pub fn status(&mut self) -> Result<ExitStatus> {
        self.spawn_with(Stdio::inherit, false)?.wait()
    }

    /// Runs the program and collects its stdout and stderr (both piped
    /// unless set), reading both at once so that neither can fill up and
    /// block the program.
    pub fn output(&mut self) -> Result<Output> {
        self.spawn_with(Stdio::piped, false)?.wait_with_output()
    }
}

/// Dropping a child that has not been waited for leaves it running (as
/// std's `Child` does; a child of the async front is killed first) and hands it to the crate's reaper thread, which
/// reaps it by pid when it ends: it never stays a zombie that would keep
/// its container from stopping. Its exit status is then lost; wait for it
/// to have it.
impl Drop for AttachChild {
    fn drop(&mut self) {
        if self.status.is_some() || matches!(self.try_wait(), Ok(Some(_)) | Err(_)) {
            return;
        }
        if self.kill_on_drop {
            let _ = self.kill();
        }
        crate::reaper::reap_spawned(crate::attach::Spawned { pid: self.pid, pidfd: self.pidfd.take() });
    }
}

impl AttachChild {
    pub(crate) fn from_spawned(s: crate::attach::Spawned) -> AttachChild {
        AttachChild {
            pid: s.pid,
            pidfd: s.pidfd,
            status: None,
            pending: None,
            kill_on_drop: false,
            stdin: None,
            stdout: None,
            stderr: None,
        }
    }

    /// A second descriptor of the pidfd, for the async front's readiness.
    #[cfg(feature = "tokio")]
    pub(crate) fn pidfd_dup(&self) -> Option<io::Result<OwnedFd>> {
        self.pidfd.as_ref().map(|fd| fd.try_clone())
    }

    /// The program's pid, as seen from the host.
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Kills the program with SIGKILL.
    pub fn kill(&mut self) -> Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        let r = match &self.pidfd {
            Some(fd) => crate::attach::pidfd_kill(fd),
            // Without a pidfd (a kernel before 5.3): pid is our child,
            // unreaped unless a SIGCHLD handler of the caller reaps every
            // child.
            None => crate::attach::child_pid(self.pid).and_then(|pid| {
                rustix::process::kill_process(pid, rustix::process::Signal::KILL).map_err(io::Error::from)
            }),
        };
        match r {
            // Already gone (reaped by a SIGCHLD handler of the caller, say):
            // nothing to kill, as std's `Child::kill` says of an exited child.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) && self.pidfd.is_some() => Ok(()),
            Err(source) => Err(Error::Io { op: "kill", source }),
            Ok(()) => Ok(()),
        }
    }

    /// Waits for the program to end (closing its stdin first).
    pub fn wait(&mut self) -> Result<ExitStatus> {
        drop(self.stdin.take());
        if let Some(s) = self.status {
            return Ok(s);
        }
        let s = match &self.pidfd {
            Some(fd) => match crate::attach::wait_pidfd(fd, true) {
                Ok(s) => Ok(s.unwrap_or(std::os::unix::process::ExitStatusExt::from_raw(0))),
                // Linux 5.3: pidfds but no waitid(P_PIDFD); by pid.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => wait_pid(self.pid),
                Err(e) => Err(e),
            },
            None => wait_pid(self.pid),
        }
        .map_err(|source| Error::Io { op: "waitpid", source })?;
        self.status = Some(s);
        self.checked(s)
    }

    /// `status`, or the error the child reported before it ended when its
    /// exec was not waited for (once; later calls return the status).
    fn checked(&mut self, status: ExitStatus) -> Result<ExitStatus> {
        match self.pending.take() {
            Some(p) => p.check(status),
            None => Ok(status),
        }
    }

    /// The status if the program has ended, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let s = match &self.pidfd {
            Some(fd) => match crate::attach::wait_pidfd(fd, false) {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => try_wait_pid(self.pid),
                r => r,
            },
            None => try_wait_pid(self.pid),
        }
        .map_err(|source| Error::Io { op: "waitpid", source })?;
        self.status = s;
        s.map(|s| self.checked(s)).transpose()
    }

    /// Waits for the program and collects what is left of its piped stdout
    /// and stderr.
    pub fn wait_with_output(mut self) -> Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = read2(self.stdout.take(), self.stderr.take())
            .map_err(|source| Error::Io { op: "read output", source })?;
        let status = self.wait()?;
        Ok(Output { status, stdout, stderr })
    }
}

/// Reads into the spare capacity of `out`; the count, 0 at end of file.
fn read_some(fd: BorrowedFd<'_>, out: &mut Vec<u8>) -> io::Result<usize> {
    out.reserve(16 * 1024);
    loop {
        // Into the spare capacity; rustix sets the length to what was read.
        match rustix::io::read(fd, rustix::buffer::spare_capacity(out)) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads two pipes to their ends at once, with poll(2) (one pipe alone is
/// simply read to its end).
pub(crate) fn read2(a: Option<PipeReader>, b: Option<PipeReader>) -> io::Result<(Vec<u8>, Vec<u8>)> {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut out = [Vec::new(), Vec::new()];
    let (a, b) = match (&a, &b) {
        (None, None) => return Ok((Vec::new(), Vec::new())),
        (Some(p), None) | (None, Some(p)) => {
            let i = usize::from(a.is_none());
            while read_some(p.as_fd(), &mut out[i])? > 0 {}
            let [x, y] = out;
            return Ok((x, y));
        }
        (Some(a), Some(b)) => (a, b),
    };
    let pipes = [a.as_fd(), b.as_fd()];
    let mut open = [true, true];
    while open[0] || open[1] {
        // The pipes still open, with their index.
        let live: Vec<usize> = (0..2).filter(|&i| open[i]).collect();
        let mut fds: Vec<PollFd<'_>> = live.iter().map(|&i| PollFd::new(&pipes[i], PollFlags::IN)).collect();
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<usize> =
            live.iter().zip(&fds).filter(|(_, f)| !f.revents().is_empty()).map(|(&i, _)| i).collect();
        drop(fds);
        for i in ready {
            if read_some(pipes[i], &mut out[i])? == 0 {
                open[i] = false;
            }
        }
    }
    let [x, y] = out;
    Ok((x, y))
}
