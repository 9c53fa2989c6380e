//! The async front, for programs on a [tokio](https://docs.rs/tokio)
//! runtime (feature `tokio`): a [`Container`] whose lifecycle calls are
//! futures, and a [`Command`] whose [`Child`] is waited for through its
//! pidfd, with async pipes, as [`tokio::process`](https://docs.rs/tokio/latest/tokio/process/index.html) does
//! for host programs.
//!
//! ```no_run
//! # async fn f() -> lxc::Result<()> {
//! use lxc::tokio::Container;
//! let c = Container::new(lxc::Container::new("web")?);
//! c.start().await?;
//! c.wait(lxc::State::Running, std::time::Duration::from_secs(10)).await?;
//! let out = c.command("uname").arg("-a").output().await?;
//! println!("{}", String::from_utf8_lossy(&out.stdout));
//! c.stop().await?;
//! # Ok(()) }
//! ```
//!
//! # Where the work runs
//!
//! liblxc's calls block: `start`, `stop`, `shutdown`, `create`, `destroy`,
//! `copy`, `snapshot`, `freeze`, `unfreeze`, `state` and the attach that
//! starts a [`Command`] (a few milliseconds: two forks, the container's
//! namespaces and cgroups) run on tokio's blocking pool
//! ([`spawn_blocking`](::tokio::task::spawn_blocking)), one pool thread per
//! call in flight. What waits does not: an attached program's end is the
//! readiness of its pidfd ([`AsyncFd`]), its pipes are tokio pipes, and
//! [`Container::wait`] for [`State::Stopped`] wakes on the readiness of the
//! init's pidfd, then confirms with liblxc. No thread is started per child
//! and no SIGCHLD handler is installed: the crate never reaps a child it did
//! not start, and works beside [`tokio::process`](https://docs.rs/tokio/latest/tokio/process/index.html).
//!
//! The runtime needs its IO and time drivers (`#[tokio::main]` and
//! `Builder::enable_all` have them), on a `current_thread` runtime as on a
//! multi-thread one; every future is `Send`.
//!
//! # Cancellation
//!
//! Dropping a [`Child`] that has not ended, or a future of [`Command`]
//! (`spawn`, `status`, `output`) before it is done, kills the program
//! (SIGKILL) and has it reaped: no zombie, no descriptor and no process
//! left in the container. An attach already under way in the blocking pool
//! finishes there first, and its child is killed as it arrives. A dropped
//! lifecycle future cannot stop liblxc's call: it runs to its end in the
//! pool, as a dropped `tokio::fs` future does; its result is dropped.
//!
//! Reaping after the kill: the child is asked at once; one that has not
//! ended yet is handed to the crate's reaper thread (one for the whole
//! program, started on first use), which waits on the pidfds it is given.

use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{ExitStatus, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::tokio::io::unix::AsyncFd;
use ::tokio::io::{AsyncReadExt, Interest};
use ::tokio::net::unix::pipe;

use crate::error::{Error, Result};
use crate::{AttachChild, CloneOptions, CreateOptions, StartOptions, State, Stdio};

/// A container handle for async code: an [`Arc`] of a [`crate::Container`],
/// cheap to clone and to move into tasks. The blocking handle stays at hand
/// through [`Container::blocking`] (or `Deref`) for the calls that do not
/// block (configuration, names, paths).
#[derive(Debug, Clone)]
pub struct Container {
    inner: Arc<crate::Container>,
}

impl From<crate::Container> for Container {
    fn from(c: crate::Container) -> Self {
        Container::new(c)
    }
}

impl From<Arc<crate::Container>> for Container {
    fn from(inner: Arc<crate::Container>) -> Self {
        Container { inner }
    }
}

impl std::ops::Deref for Container {
    type Target = crate::Container;
    fn deref(&self) -> &crate::Container {
        &self.inner
    }
}

/// A failed `spawn_blocking`: a panic is passed on to the caller, a task
/// the runtime dropped (it is shutting down) is an error.
fn joined<T>(r: std::result::Result<T, ::tokio::task::JoinError>, op: &'static str) -> Result<T> {
    match r {
        Ok(v) => Ok(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::Io { op, source: io::Error::other("the tokio runtime is shutting down") }),
    }
}

impl Container {
    /// Wraps a handle.
    pub fn new(c: crate::Container) -> Self {
        Container { inner: Arc::new(c) }
    }

    /// The blocking handle this one shares.
    pub fn blocking(&self) -> &Arc<crate::Container> {
        &self.inner
    }

    /// Runs `f` on the handle in tokio's blocking pool.
    async fn pool<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&crate::Container) -> Result<T> + Send + 'static,
    {
        let c = Arc::clone(&self.inner);
        joined(::tokio::task::spawn_blocking(move || f(&c)).await, op)?
    }

    /// [`crate::Container::start`], in the blocking pool.
    pub async fn start(&self) -> Result<()> {
        self.pool("start", |c| c.start()).await
    }

    /// [`crate::Container::start_with`], in the blocking pool.
    pub async fn start_with(&self, opts: StartOptions) -> Result<()> {
        self.pool("start", move |c| c.start_with(&opts)).await
    }

    /// [`crate::Container::stop`], in the blocking pool.
    pub async fn stop(&self) -> Result<()> {
        self.pool("stop", |c| c.stop()).await
    }

    /// [`crate::Container::shutdown`], in the blocking pool (a pool thread
    /// for up to `timeout`).
    pub async fn shutdown(&self, timeout: Duration) -> Result<()> {
        self.pool("shutdown", move |c| c.shutdown(timeout)).await
    }

    /// [`crate::Container::freeze`], in the blocking pool.
    pub async fn freeze(&self) -> Result<()> {
        self.pool("freeze", |c| c.freeze()).await
    }

    /// [`crate::Container::unfreeze`], in the blocking pool.
    pub async fn unfreeze(&self) -> Result<()> {
        self.pool("unfreeze", |c| c.unfreeze()).await
    }

    /// [`crate::Container::state`], in the blocking pool (a round trip to
    /// the container's monitor).
    pub async fn state(&self) -> Result<State> {
        self.pool("state", |c| c.state()).await
    }

    /// [`crate::Container::create`], in the blocking pool.
    pub async fn create(&self, opts: CreateOptions) -> Result<()> {
        self.pool("create", move |c| c.create(&opts)).await
    }

    /// [`crate::Container::destroy`], in the blocking pool.
    pub async fn destroy(&self) -> Result<()> {
        self.pool("destroy", |c| c.destroy()).await
    }

    /// [`crate::Container::copy`] (liblxc's `clone`), in the blocking pool.
    pub async fn copy(&self, new_name: &str, opts: CloneOptions) -> Result<Container> {
        let name = new_name.to_owned();
        self.pool("copy", move |c| c.copy(&name, &opts)).await.map(Container::new)
    }

    /// [`crate::Container::snapshot`], in the blocking pool.
    pub async fn snapshot(&self, comment_file: Option<PathBuf>) -> Result<String> {
        self.pool("snapshot", move |c| c.snapshot(comment_file.as_deref())).await
    }

    /// Waits up to `timeout` for the container to reach `state`, as
    /// [`crate::Container::wait`] does (same errors, same rounding of the
    /// timeout).
    ///
    /// For [`State::Stopped`] of a running container, the future first
    /// waits on the readiness of its init's pidfd, which comes as init
    /// exits (before liblxc's teardown), holding no thread; then liblxc's
    /// `wait` in the blocking pool confirms STOPPED (the teardown, a few
    /// milliseconds). Other states, and STOPPED where no init pidfd can be
    /// had (a container not running, a liblxc or kernel without it), are
    /// liblxc's `wait` in the blocking pool, which holds a pool thread for
    /// as long as it waits, also after the future is dropped.
    pub async fn wait(&self, state: State, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        if state == State::Stopped {
            if let Some(init) = self.init_pidfd_async().await {
                let ready = readiness(init, "register the init's pidfd")?;
                if ::tokio::time::timeout(timeout, ready.readable()).await.is_err() {
                    return Err(Error::Timeout { op: "wait", container: self.name().to_owned(), timeout });
                }
            }
        }
        // What is left of the timeout; liblxc's wait rounds it up to whole
        // seconds, and a zero checks once.
        let left = timeout.saturating_sub(started.elapsed());
        let left = if left.is_zero() && !timeout.is_zero() { Duration::from_secs(1) } else { left };
        self.pool("wait", move |c| c.wait(state, left)).await
    }

    /// The init's pidfd, when the container runs and liblxc gives one.
    async fn init_pidfd_async(&self) -> Option<OwnedFd> {
        #[cfg(lxc_member = "init_pidfd")]
        {
            self.pool("init_pidfd", |c| c.init_pidfd()).await.ok()
        }
        #[cfg(not(lxc_member = "init_pidfd"))]
        {
            None
        }
    }

    /// A program to run inside this (running) container; see [`Command`].
    pub fn command(&self, program: impl Into<String>) -> Command {
        Command {
            container: Arc::clone(&self.inner),
            program: program.into(),
            args: Vec::new(),
            opts: crate::AttachOptions::new(),
            stdin: None,
            stdout: None,
            stderr: None,
        }
    }
}

/// A program to run inside a running container, built like
/// [`crate::Command`] and run like [`tokio::process::Command`](https://docs.rs/tokio/latest/tokio/process/struct.Command.html):
/// `spawn`, `status` and `output` are futures.
///
/// ```no_run
/// # async fn f(c: lxc::tokio::Container) -> lxc::Result<()> {
/// use tokio::io::AsyncBufReadExt;
/// let mut child = c.command("ping").args(["-c", "3", "10.0.3.1"]).stdout(lxc::Stdio::piped()).spawn().await?;
/// let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
/// while let Some(line) = lines.next_line().await.map_err(|source| lxc::Error::Io { op: "read", source })? {
///     println!("{line}");
/// }
/// assert!(child.wait().await?.success());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Command {
    container: Arc<crate::Container>,
    program: String,
    args: Vec<String>,
    opts: crate::AttachOptions<'static>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
}

impl Command {
    builder_args!(&mut "the program");
    command_setters!();
    stdio_setters!(
        "The program's stdin (default [`Stdio::Null`]).",
        "The program's stdout (default: inherited; piped for [`Command::output`]).",
        "The program's stderr (default: inherited; piped for [`Command::output`])."
    );

    /// Attaches in the blocking pool; the child is killed should it arrive
    /// after this future was dropped. The standard streams set on the
    /// builder are used up (as the blocking [`crate::Command`] does); the
    /// rest stays for the next spawn.
    async fn spawn_with(&mut self, out_default: fn() -> Stdio, confirm: bool) -> Result<Child> {
        let c = Arc::clone(&self.container);
        let (program, args, opts) = (self.program.clone(), self.args.clone(), self.opts.clone());
        let (stdin, stdout, stderr) = (self.stdin.take(), self.stdout.take(), self.stderr.take());
        let spawned = ::tokio::task::spawn_blocking(move || {
            let mut cmd = crate::Command { container: &c, program, args, opts, stdin, stdout, stderr };
            cmd.spawn_with(out_default, confirm).map(|mut child| {
                child.kill_on_drop = true;
                child
            })
        });
        Child::new(joined(spawned.await, "attach")??)
    }

    /// Starts the program; the future ends once its exec succeeded (or
    /// with [`Error::ProgramNotStarted`]).
    pub async fn spawn(&mut self) -> Result<Child> {
        self.spawn_with(Stdio::inherit, true).await
    }

    /// Runs the program and waits for it; stdout and stderr are inherited
    /// unless set.
    pub async fn status(&mut self) -> Result<ExitStatus> {
        self.spawn_with(Stdio::inherit, false).await?.wait().await
    }

    /// Runs the program and collects its stdout and stderr (both piped
    /// unless set), read at once.
    pub async fn output(&mut self) -> Result<Output> {
        self.spawn_with(Stdio::piped, false).await?.wait_with_output().await
    }
}

/// Registers a descriptor with the runtime's reactor, for readability.
fn readiness(fd: OwnedFd, op: &'static str) -> Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns `fd`, which stays open, the same descriptor,
    // until the AsyncFd drops (and deregisters it first).
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
        .map_err(|e| Error::Io { op, source: e.into() })
}

/// A program running inside a container, started by [`Command::spawn`],
/// as [`tokio::process::Child`](https://docs.rs/tokio/latest/tokio/process/struct.Child.html) is one on the
/// host.
///
/// Dropping it before the program ended kills the program (SIGKILL) and
/// has it reaped (see the module's "Cancellation").
#[derive(Debug)]
pub struct Child {
    /// A second descriptor of the child's pidfd, registered for its
    /// readiness (the program's end).
    ready: Option<AsyncFd<OwnedFd>>,
    child: AttachChild,
    /// The program's stdin, when it was [`Stdio::Piped`].
    pub stdin: Option<pipe::Sender>,
    /// The program's stdout, when it was [`Stdio::Piped`].
    pub stdout: Option<pipe::Receiver>,
    /// The program's stderr, when it was [`Stdio::Piped`].
    pub stderr: Option<pipe::Receiver>,
}

fn io_err(op: &'static str) -> impl Fn(io::Error) -> Error {
    move |source| Error::Io { op, source }
}

impl Child {
    fn new(mut child: AttachChild) -> Result<Child> {
        // The pipes first: should one fail, `child` (kill_on_drop) ends
        // the program as it drops.
        let stdin = child.stdin.take().map(|w| pipe::Sender::from_owned_fd(OwnedFd::from(w))).transpose();
        let stdout = child.stdout.take().map(|r| pipe::Receiver::from_owned_fd(OwnedFd::from(r))).transpose();
        let stderr = child.stderr.take().map(|r| pipe::Receiver::from_owned_fd(OwnedFd::from(r))).transpose();
        let register = io_err("register the child's pipes");
        let (stdin, stdout, stderr) =
            (stdin.map_err(&register)?, stdout.map_err(&register)?, stderr.map_err(&register)?);
        let ready = match child.pidfd_dup() {
            Some(fd) => {
                Some(readiness(fd.map_err(io_err("dup the child's pidfd"))?, "register the child's pidfd")?)
            }
            None => None,
        };
        Ok(Child { ready, child, stdin, stdout, stderr })
    }

    /// The program's pid, as seen from the host.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGKILL without waiting (tokio's `start_kill`); wait for the
    /// status, or drop the child, which reaps it.
    pub fn start_kill(&mut self) -> Result<()> {
        self.child.kill()
    }

    /// Kills the program (SIGKILL) and waits for it to end.
    pub async fn kill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.wait().await.map(drop)
    }

    /// The status if the program has ended, without waiting.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits for the program to end (closing its stdin first). Holds no
    /// thread: the future wakes when the pidfd says the program ended.
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        drop(self.stdin.take());
        loop {
            let Some(ready) = &self.ready else {
                // No pidfd (a kernel before 5.3): its pid, in the pool.
                let pid = self.child.id() as libc::pid_t;
                let s = joined(
                    ::tokio::task::spawn_blocking(move || crate::attach::wait_pid(pid)).await,
                    "waitpid",
                )?
                .map_err(io_err("waitpid"))?;
                return self.child.settle(s);
            };
            let mut guard = ready.readable().await.map_err(io_err("wait for the child's pidfd"))?;
            if let Some(s) = self.child.try_wait()? {
                return Ok(s);
            }
            guard.clear_ready();
        }
    }

    /// Waits for the program and collects what is left of its piped stdout
    /// and stderr, read at once.
    pub async fn wait_with_output(mut self) -> Result<Output> {
        drop(self.stdin.take());
        async fn all(p: Option<pipe::Receiver>) -> io::Result<Vec<u8>> {
            let mut out = Vec::new();
            if let Some(mut p) = p {
                p.read_to_end(&mut out).await?;
            }
            Ok(out)
        }
        let (stdout, stderr) = ::tokio::try_join!(all(self.stdout.take()), all(self.stderr.take()))
            .map_err(io_err("read output"))?;
        let status = self.wait().await?;
        Ok(Output { status, stdout, stderr })
    }
}
