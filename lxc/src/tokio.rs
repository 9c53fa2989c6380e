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
//! liblxc's calls block. `start`, `stop`, `shutdown`, `create`, `destroy`,
//! `copy`, `snapshot`, `freeze`, `unfreeze`, `state` and liblxc's `wait`
//! run on tokio's blocking pool
//! ([`spawn_blocking`](::tokio::task::spawn_blocking)), one pool thread per
//! call in flight. [`Container::open`] and the attach that starts a
//! [`Command`] run on the crate's attach threads (one per CPU, see the
//! README's "Async"): each attach forks the caller, and more at once than
//! there are CPUs only adds page copies. What waits holds no thread: an
//! attached program's end is the readiness of its pidfd ([`AsyncFd`]), its
//! pipes are tokio pipes, and [`Container::wait`] for [`State::Stopped`]
//! wakes on the readiness of the init's pidfd, then confirms with liblxc.
//! No SIGCHLD handler is installed: the crate never reaps a child it did
//! not start, and works beside
//! [`tokio::process`](https://docs.rs/tokio/latest/tokio/process/index.html).
//! [`Session`] commands and [`StateChanges`] take a pool thread each while
//! they run (see each).
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
//! left in the container. An attach already under way finishes on its
//! thread first, and its child is killed as it arrives. A dropped
//! [`SessionCommand`] future kills its command. A dropped lifecycle future
//! cannot stop liblxc's call: it runs to its end in the pool, as a dropped
//! `tokio::fs` future does; its result is dropped.
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

    /// Opens a handle on `name` in the default lxcpath
    /// ([`crate::Container::new`]: liblxc reads its configuration) on the
    /// crate's attach threads, without taking a thread of tokio's blocking
    /// pool.
    pub async fn open(name: &str) -> Result<Container> {
        let name = name.to_owned();
        on_attach_thread("open", move || crate::Container::new(&name)).await?.map(Container::new)
    }

    /// [`Container::open`] in `lxcpath` ([`crate::Container::with_lxcpath`]).
    pub async fn open_in(name: &str, lxcpath: impl Into<PathBuf>) -> Result<Container> {
        let (name, lxcpath) = (name.to_owned(), lxcpath.into());
        on_attach_thread("open", move || crate::Container::with_lxcpath(&name, lxcpath))
            .await?
            .map(Container::new)
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

    /// The container's states as they change: the state now, then each
    /// state liblxc's monitor reports (STARTING, RUNNING, FREEZING,
    /// FROZEN, THAWED, STOPPING, ABORTING), and STOPPED when the container
    /// stopped; again STARTING and on if it is started again. See
    /// [`StateChanges`].
    pub fn state_changes(&self) -> StateChanges {
        let (tx, rx) = ::tokio::sync::mpsc::channel(16);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, flag) = (Arc::clone(&self.inner), Arc::clone(&stop));
        drop(::tokio::task::spawn_blocking(move || watch_states(&c, &tx, &flag)));
        StateChanges { rx, stop }
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

    /// A session for many tasks: commands through up to `max_helpers`
    /// helpers attached with `opts`, each helper running one command at a
    /// time; see [`Session`]. The first helper is attached before this
    /// returns (so that a container that cannot be attached to says so
    /// here); the others as commands need them.
    pub async fn attach_session(
        &self,
        opts: crate::AttachOptions<'static>,
        max_helpers: usize,
    ) -> Result<Session> {
        if max_helpers == 0 {
            return Err(Error::invalid("max_helpers", "0", "a session needs at least one helper"));
        }
        let pool = Arc::new(Pool {
            container: Arc::clone(&self.inner),
            opts,
            idle: std::sync::Mutex::new(Vec::new()),
            permits: Arc::new(::tokio::sync::Semaphore::new(max_helpers)),
            max_helpers,
        });
        let first = pool.attach().await?;
        pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(first);
        Ok(Session { pool })
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
        // A TERMINAL attach can last as long as its program: on the
        // blocking pool, so that it never holds the attach threads up.
        let terminal = opts.is_terminal();
        let attach = move || {
            let mut cmd = crate::Command { container: &c, program, args, opts, stdin, stdout, stderr };
            cmd.spawn_with(out_default, confirm).map(|mut child| {
                child.kill_on_drop = true;
                child
            })
        };
        let child = if terminal {
            joined(::tokio::task::spawn_blocking(attach).await, "attach")?
        } else {
            on_attach_thread("attach", attach).await?
        };
        Child::new(child?)
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

/// The attaches of the async front run on threads of their own, one per
/// CPU (`available_parallelism`, at least 2), started on first use and
/// kept for the life of the process; jobs wait in one queue.
///
/// Each attach forks the caller twice (liblxc's intermediate process and
/// the attached child), and while a fork shares the caller's pages every
/// first write to one, by any thread, copies it and flushes the other
/// CPUs' TLBs: sixteen attaches at once on 2 CPUs took 1.35 times the wall
/// time of C's sixteen threads for the same 128 attaches, two or three at
/// once 1.07 to 1.10 times, with less CPU in all. A thread that finishes
/// one attach takes the next from the queue without a wake-up.
struct AttachThreads {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>>,
}

fn attach_threads() -> Option<&'static AttachThreads> {
    static POOL: std::sync::OnceLock<Option<AttachThreads>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let cpus = std::thread::available_parallelism().map_or(2, usize::from).max(2);
        let mut started = 0;
        for i in 0..cpus {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new().name(format!("lxc-attach-{i}")).spawn(move || loop {
                // One thread at a time waits for the next job.
                let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            });
            started += usize::from(spawned.is_ok());
        }
        (started > 0).then(|| AttachThreads { jobs: std::sync::Mutex::new(tx) })
    })
    .as_ref()
}

/// Runs `f` on the attach threads (on tokio's blocking pool when none could
/// be started). A future dropped before its job starts skips `f` (what it
/// owns is dropped); one dropped later drops the result where it is made.
async fn on_attach_thread<T, F>(op: &'static str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let Some(pool) = attach_threads() else {
        return joined(::tokio::task::spawn_blocking(f).await, op);
    };
    let (tx, rx) = ::tokio::sync::oneshot::channel();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        // A future dropped while its job waited: nothing to attach for.
        if !tx.is_closed() {
            let _ = tx.send(f());
        }
    });
    if pool.jobs.lock().unwrap_or_else(|e| e.into_inner()).send(job).is_err() {
        return Err(Error::Io { op, source: io::Error::other("the attach threads are gone") });
    }
    rx.await
        .map_err(|_| Error::Io { op, source: io::Error::other("an attach thread ended without a result") })
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

/// Commands through attach sessions, for many tasks at once: a pool of up
/// to `max_helpers` session helpers ([`crate::AttachSession`]) attached
/// with the same options; see [`Container::attach_session`]. Cloning it
/// shares the pool.
///
/// A helper runs one command at a time (its protocol is one request, one
/// command, its status); commands of one `Session` run concurrently on
/// different helpers, and a command waits for a free helper when all are
/// busy. That keeps each helper what makes a session fast and safe (it
/// allocates nothing and takes no lock in the forked child, and its
/// commands are its own children, waited for by it alone), and a
/// program sets the concurrency it wants with `max_helpers`.
///
/// A command runs on tokio's blocking pool while it runs (its helper's
/// protocol blocks on the helper's socket and the command's pidfd): one
/// pool thread per command in flight, at most `max_helpers`. Dropping its
/// future kills the command (SIGKILL through the pidfd the helper sent);
/// the helper reaps it and the session goes on. A helper whose command
/// failed to be served (the container stopped, the helper was killed) is
/// dropped from the pool and a new one attached when needed.
///
/// ```no_run
/// # async fn f(c: lxc::tokio::Container) -> lxc::Result<()> {
/// let s = c.attach_session(lxc::AttachOptions::new(), 4).await?;
/// let tasks: Vec<_> = (0..16)
///     .map(|i| {
///         let s = s.clone();
///         tokio::spawn(async move { s.command("echo").arg(i.to_string()).output().await })
///     })
///     .collect();
/// for t in tasks {
///     assert!(t.await.unwrap()?.status.success());
/// }
/// s.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Session {
    pool: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    container: Arc<crate::Container>,
    opts: crate::AttachOptions<'static>,
    /// Helpers not running a command now.
    idle: std::sync::Mutex<Vec<crate::AttachSession<'static>>>,
    /// One per helper that may exist: held while a command runs, until
    /// its helper is back among the idle ones (or dropped).
    permits: Arc<::tokio::sync::Semaphore>,
    max_helpers: usize,
}

impl Pool {
    /// Attaches a new helper, in the blocking pool.
    async fn attach(&self) -> Result<crate::AttachSession<'static>> {
        let (c, opts) = (Arc::clone(&self.container), self.opts.clone());
        joined(::tokio::task::spawn_blocking(move || c.attach_session_shared(&opts)).await, "attach_session")?
    }
}

impl Session {
    /// A command to run through one of the session's helpers.
    pub fn command(&self, program: impl Into<String>) -> SessionCommand {
        SessionCommand {
            pool: Arc::clone(&self.pool),
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

    /// The most helpers the session attaches.
    pub fn max_helpers(&self) -> usize {
        self.pool.max_helpers
    }

    /// The helpers attached and idle now.
    pub fn idle_helpers(&self) -> usize {
        self.pool.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Ends the idle helpers now (in the blocking pool); a helper running a
    /// command ends when its command is done and the last clone of the
    /// session is dropped. Dropping every clone ends them all as well.
    pub async fn close(self) {
        let idle = std::mem::take(&mut *self.pool.idle.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = ::tokio::task::spawn_blocking(move || drop(idle)).await;
    }
}

/// One command of a [`Session`], built like [`crate::SessionCommand`].
#[derive(Debug)]
pub struct SessionCommand {
    pool: Arc<Pool>,
    program: String,
    args: Vec<String>,
    env: Vec<String>,
    clear_env: bool,
    cwd: Option<PathBuf>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
}

/// Kills the command of a dropped future (see `session::CancelSlot`)
/// unless disarmed.
struct CancelOnDrop(Option<Arc<crate::session::CancelSlot>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            slot.cancel();
        }
    }
}

impl SessionCommand {
    builder_args!(&mut "the command");
    session_command_setters!();
    stdio_setters!(
        "The command's stdin (default: the helper's).",
        "The command's stdout (default: the helper's; piped for `output`).",
        "The command's stderr (default: the helper's; piped for `output`)."
    );

    /// Runs the command and waits for it.
    pub async fn status(&mut self) -> Result<ExitStatus> {
        self.run(false).await.map(|o| o.status)
    }

    /// Runs the command with stdout and stderr captured (unless set) and
    /// waits for it.
    pub async fn output(&mut self) -> Result<Output> {
        self.run(true).await
    }

    async fn run(&mut self, capture: bool) -> Result<Output> {
        let pool = Arc::clone(&self.pool);
        let permit = Arc::clone(&pool.permits).acquire_owned().await.map_err(|_| Error::Io {
            op: "run a session command",
            source: io::Error::other("the session's pool is closed"),
        })?;
        let idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut helper = match idle {
            Some(h) => h,
            None => pool.attach().await?,
        };
        let slot = Arc::new(crate::session::CancelSlot::default());
        let mut cancel = CancelOnDrop(Some(Arc::clone(&slot)));
        let (program, args, env, clear_env, cwd) =
            (self.program.clone(), self.args.clone(), self.env.clone(), self.clear_env, self.cwd.clone());
        let (stdin, stdout, stderr) = (self.stdin.take(), self.stdout.take(), self.stderr.take());
        let back = Arc::clone(&pool);
        let task = ::tokio::task::spawn_blocking(move || {
            let mut cmd = helper.command(program);
            (cmd.args, cmd.env, cmd.clear_env, cmd.cwd) = (args, env, clear_env, cwd);
            (cmd.stdin, cmd.stdout, cmd.stderr) = (stdin, stdout, stderr);
            cmd.cancel = Some(Arc::clone(&slot));
            let r = if capture {
                cmd.output()
            } else {
                cmd.status().map(|status| Output { status, stdout: Vec::new(), stderr: Vec::new() })
            };
            slot.finished();
            // Back to the pool while it can serve; else it drops here
            // (its helper ends and is reaped).
            if helper.is_open() {
                back.idle.lock().unwrap_or_else(|e| e.into_inner()).push(helper);
            } else {
                drop(helper);
            }
            drop(permit);
            r
        });
        let r = joined(task.await, "run a session command");
        cancel.0 = None;
        r?
    }
}

/// The states of a container as they change; see
/// [`Container::state_changes`]. `next` ends (`None`) only when the
/// watching ends; an error (the container was destroyed, liblxc failed) is
/// the last item.
///
/// Only liblxc's public API is used: liblxc's `wait` for every state but the
/// current one, on tokio's blocking pool (one pool thread per stream while
/// it lives; each wait lasts at most [`StateChanges::STEP`], so a dropped
/// stream lets its thread go within that). liblxc's monitor reports the
/// states it passes through to such a waiter. A stopped container has no
/// monitor to report its start: its state is read every
/// [`StateChanges::STOPPED_POLL`] instead (liblxc's own wait would try
/// once a second). What liblxc does not report is not seen: a freeze
/// made by writing the cgroup's freezer file directly, or a state that
/// passes between two waits (the next wait starts from the state read
/// then).
///
/// ```no_run
/// # async fn f(c: lxc::tokio::Container) -> lxc::Result<()> {
/// let mut states = c.state_changes();
/// while let Some(state) = states.next().await {
///     println!("{}: {}", c.name(), state?);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct StateChanges {
    rx: ::tokio::sync::mpsc::Receiver<Result<State>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl StateChanges {
    /// The longest single liblxc wait of the watching thread.
    pub const STEP: Duration = Duration::from_secs(2);

    /// How often the state of a stopped container is read (liblxc's
    /// `state`: a failed connect to its absent monitor, some 20 µs).
    pub const STOPPED_POLL: Duration = Duration::from_millis(100);

    /// The next state, waiting for it without holding a worker.
    pub async fn next(&mut self) -> Option<Result<State>> {
        self.rx.recv().await
    }
}

impl Drop for StateChanges {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The watching thread of [`StateChanges`].
fn watch_states(
    c: &crate::Container,
    tx: &::tokio::sync::mpsc::Sender<Result<State>>,
    stop: &std::sync::atomic::AtomicBool,
) {
    let gone = || stop.load(std::sync::atomic::Ordering::Relaxed) || tx.is_closed();
    let mut last = match c.state() {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    if tx.blocking_send(Ok(last)).is_err() {
        return;
    }
    while !gone() {
        if last == State::Stopped {
            // No monitor to ask: liblxc's wait would try once a second, and
            // miss a container that starts and stops in between.
            std::thread::sleep(StateChanges::STOPPED_POLL);
        } else {
            let others: Vec<State> = State::ALL.into_iter().filter(|s| *s != last).collect();
            if let Err(e) = c.wait_any(&others, StateChanges::STEP) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
        // Whether the wait saw a change or ended (timeout, monitor gone):
        // the state now says.
        let now = match c.state() {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        if now != last {
            if tx.blocking_send(Ok(now)).is_err() {
                return;
            }
            last = now;
        }
    }
}
