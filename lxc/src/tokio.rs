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
//! (SIGKILL) and has it reaped: no zombie and no descriptor is left, nor
//! the program in the container (processes the program itself started
//! live on, as after std's `Child::kill`). A command whose attach had not
//! begun is not started; an attach already under way finishes on its
//! thread first, and its child is killed as it arrives. A dropped
//! [`SessionCommand`] future kills its command (or does not send it). A dropped lifecycle future
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
/// through [`Container::blocking`] (or `Deref`): its quick calls (names,
/// paths, reading the configuration) are fine on a runtime's worker. Calls
/// that write the configuration wait for the handle's calls in flight,
/// among them this front's liblxc waits (up to a [`WAIT_STEP`]): run them
/// with `spawn_blocking`, or on a handle of their own.
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

/// Runs `f` on `c` in tokio's blocking pool.
async fn pool_on<T, F>(c: &Arc<crate::Container>, op: &'static str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&crate::Container) -> Result<T> + Send + 'static,
{
    let c = Arc::clone(c);
    joined(::tokio::task::spawn_blocking(move || f(&c)).await, op)?
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
        pool_on(&self.inner, op, f).await
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
    /// [`crate::Container::wait`] does: `Ok` once reached;
    /// [`Error::Timeout`] when the timeout (rounded up to whole seconds)
    /// passed; [`Error::WaitInterrupted`] when the container's monitor went
    /// away meanwhile (it stopped while another state was awaited), or
    /// [`Error::NotDefined`] when the container is gone then. A container
    /// that is not running is waited for until the timeout (it may be
    /// started meanwhile).
    ///
    /// For [`State::Stopped`] of a running container, the future first
    /// waits on the readiness of its init's pidfd, which comes as init
    /// exits (before liblxc's teardown), holding no thread; then liblxc's
    /// `wait` confirms STOPPED (the teardown, a few milliseconds). A reboot
    /// passes through STOPPED to a new init: a new init found after the old
    /// one exited counts as STOPPED reached. Otherwise liblxc's `wait` runs
    /// on the blocking pool in steps of at most [`WAIT_STEP`], each after a
    /// read of the state (which says whether a monitor answers): a dropped
    /// future lets its pool thread go within a step, and a runtime can
    /// shut down.
    pub async fn wait(&self, state: State, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let timed_out = || Error::Timeout { op: "wait", container: self.name().to_owned(), timeout };
        let mut old_init = None;
        if state == State::Stopped {
            if let Some(init) = self.init_pidfd_async().await {
                old_init = crate::attach::pidfd_pid(&init).filter(|p| *p > 0);
                let ready = readiness(init, "register the init's pidfd")?;
                if ::tokio::time::timeout(timeout, ready.readable()).await.is_err() {
                    return Err(timed_out());
                }
            }
        }
        if timeout.is_zero() {
            return self.pool("wait", move |c| c.wait(state, Duration::ZERO)).await;
        }
        // liblxc counts whole seconds.
        let whole =
            Duration::from_secs(timeout.as_secs().saturating_add(u64::from(timeout.subsec_nanos() > 0)));
        loop {
            let before = self.state().await?;
            if before == state {
                return Ok(());
            }
            let step = whole.saturating_sub(started.elapsed()).clamp(Duration::from_secs(1), WAIT_STEP);
            let step_started = Instant::now();
            if self.pool("wait", move |c| c.wait_any(&[state], step)).await? {
                return Ok(());
            }
            let took = step_started.elapsed();
            let now = self.state().await?;
            if now == state {
                return Ok(());
            }
            if let Some(old) = old_init {
                if self.pool("init_pid", |c| Ok(c.init_pid())).await?.is_some_and(|p| p != old) {
                    return Ok(());
                }
            }
            // A monitor answered before the step, and liblxc gave up before
            // the step's end: the monitor went away (liblxc reads STOPPED
            // from its closed socket).
            if before != State::Stopped && took + Duration::from_millis(200) < step {
                if !self.is_defined() {
                    return Err(self.inner.not_defined("wait"));
                }
                return Err(Error::WaitInterrupted {
                    container: self.name().to_owned(),
                    wanted: state,
                    state: now,
                    after: started.elapsed(),
                });
            }
            if started.elapsed() >= whole {
                return Err(timed_out());
            }
            // No monitor: liblxc's wait of one second gives up at once, not
            // a loop that spins.
            if took < Duration::from_millis(500) {
                ::tokio::time::sleep(whole.saturating_sub(started.elapsed()).min(Duration::from_secs(1)))
                    .await;
            }
        }
    }

    /// The container's states as they change: the state now, then each
    /// change liblxc reports; see [`StateChanges`].
    pub fn state_changes(&self) -> StateChanges {
        StateChanges { c: Arc::clone(&self.inner), last: None, done: false }
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
        if !(1..=MAX_HELPERS).contains(&max_helpers) {
            return Err(Error::invalid(
                "max_helpers",
                max_helpers.to_string(),
                "a session has from 1 to 1024 helpers",
            ));
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

    /// Attaches on the attach threads; the child is killed should it arrive
    /// after this future was dropped. The standard streams set on the
    /// builder are used up (as the blocking [`crate::Command`] does); the
    /// rest stays for the next spawn.
    async fn spawn_with(&mut self, out_default: fn() -> Stdio, confirm: bool) -> Result<Child> {
        // liblxc's TERMINAL attach returns only once the program has ended
        // (it runs the terminal's loop inside the call): nothing a future
        // could hand back, nor cancel.
        if self.opts.is_terminal() {
            return Err(Error::invalid(
                "attach options",
                "AttachFlags::TERMINAL",
                "the async front cannot run a TERMINAL attach (liblxc returns only when the program ends); \
                 use the blocking API on a thread of its own",
            ));
        }
        let c = Arc::clone(&self.container);
        let (program, args, opts) = (self.program.clone(), self.args.clone(), self.opts.clone());
        let (stdin, stdout, stderr) = (self.stdin.take(), self.stdout.take(), self.stderr.take());
        let child = on_attach_thread("attach", move || {
            let mut cmd = crate::Command { container: &c, program, args, opts, stdin, stdout, stderr };
            let mut child = cmd.spawn_with(out_default, confirm)?;
            child.kill_on_drop = true;
            // Waited for through its pidfd alone: without one (Linux
            // before 5.3) the child is killed and handed to the reaper.
            if child.pidfd_dup().is_none() {
                return Err(Error::Unsupported {
                    op: "the async front's commands",
                    reason: "they need pidfds (Linux 5.3 and later)",
                });
            }
            Ok(child)
        })
        .await?;
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

/// The attaches of the async front run on threads of their own, as many as
/// there are CPUs (`available_parallelism`, at least 2), started on first
/// use and kept for the life of the process; jobs wait in one queue.
///
/// Each attach forks the caller twice (liblxc's intermediate process and
/// the attached child), and while a fork shares the caller's pages every
/// first write to one, by any thread, copies it and flushes the other
/// CPUs' TLBs: sixteen attaches at once on 2 CPUs took 1.35 times the wall
/// time of C's sixteen threads for the same 128 attaches, two or three at
/// once 1.07 to 1.10 times, with less CPU in all. A thread that finishes
/// one attach takes the next from the queue without a wake-up.
///
/// An attach can also last: liblxc waits inside the call for a container
/// frozen after the crate's check, for a foreground start holding the same
/// handle, for an exec on a hung filesystem. A job running for [`STALL`]
/// counts as stuck: while jobs wait and no thread is idle, the pool keeps
/// `base` threads that are not stuck (up to [`MAX_ATTACH_THREADS`] in all),
/// and a thread ends after its job when there are more than that; one
/// beyond `base` also ends after 10 s without work.
struct AttachThreads {
    state: std::sync::Mutex<PoolState>,
    work: std::sync::Condvar,
    base: usize,
}

#[derive(Default)]
struct PoolState {
    queue: std::collections::VecDeque<Box<dyn FnOnce() + Send>>,
    threads: usize,
    idle: usize,
    /// When each running job started, by its number.
    running: std::collections::BTreeMap<u64, Instant>,
    jobs: u64,
}

impl PoolState {
    /// The threads whose job has run for [`STALL`] or more.
    fn stuck(&self) -> usize {
        self.running.values().filter(|t| t.elapsed() >= STALL).count()
    }
}

/// How long a job runs before it counts as stuck.
const STALL: Duration = Duration::from_secs(1);

/// The most attach threads, stuck ones included.
const MAX_ATTACH_THREADS: usize = 64;

impl AttachThreads {
    fn get() -> &'static AttachThreads {
        static POOL: std::sync::OnceLock<AttachThreads> = std::sync::OnceLock::new();
        POOL.get_or_init(|| AttachThreads {
            state: std::sync::Mutex::new(PoolState::default()),
            work: std::sync::Condvar::new(),
            base: std::thread::available_parallelism().map_or(2, usize::from).max(2),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job`: an idle thread takes it, or a new one while jobs
    /// outnumber idle threads and fewer than `base` threads are not stuck.
    /// False when no thread exists nor could be started.
    fn submit(&'static self, job: Box<dyn FnOnce() + Send>) -> bool {
        let mut s = self.lock();
        s.queue.push_back(job);
        if s.idle > 0 {
            self.work.notify_one();
        }
        self.grow(&mut s);
        if s.threads == 0 {
            s.queue.pop_back();
            return false;
        }
        true
    }

    /// Called by a waiting job every [`STALL`]: the ones running may have
    /// become stuck since.
    fn grow_if_stalled(&'static self) {
        let mut s = self.lock();
        self.grow(&mut s);
    }

    fn grow(&'static self, s: &mut PoolState) {
        if s.queue.len() > s.idle && s.threads - s.stuck() < self.base && s.threads < MAX_ATTACH_THREADS {
            let name = format!("lxc-attach-{}", s.threads);
            if std::thread::Builder::new().name(name).spawn(move || self.run()).is_ok() {
                s.threads += 1;
                // It counts as idle until it takes a job, so that the next
                // submit does not start another for the same job.
                s.idle += 1;
            }
        }
    }

    fn run(&'static self) {
        let mut s = self.lock();
        // Started as idle (see `grow`).
        s.idle -= 1;
        loop {
            if let Some(job) = s.queue.pop_front() {
                s.jobs += 1;
                let n = s.jobs;
                s.running.insert(n, Instant::now());
                drop(s);
                // A job catches its own panic (see `on_attach_thread`).
                job();
                s = self.lock();
                s.running.remove(&n);
                // More threads than needed now that stuck ones came back.
                if s.threads - s.stuck() > self.base {
                    s.threads -= 1;
                    return;
                }
                continue;
            }
            s.idle += 1;
            let (guard, waited) =
                self.work.wait_timeout(s, Duration::from_secs(10)).unwrap_or_else(|e| e.into_inner());
            s = guard;
            s.idle -= 1;
            if waited.timed_out() && s.queue.is_empty() && s.threads > self.base {
                s.threads -= 1;
                return;
            }
        }
    }
}

/// Runs `f` on the attach threads. A future dropped before its job starts
/// skips `f` (what it owns is dropped there); one dropped later drops the
/// result where it is made. A panic of `f` is passed on to the caller.
async fn on_attach_thread<T, F>(op: &'static str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, mut rx) = ::tokio::sync::oneshot::channel();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        // A future dropped while its job waited: nothing to do it for.
        if !tx.is_closed() {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
        }
    });
    let pool = AttachThreads::get();
    if !pool.submit(job) {
        return Err(Error::Io { op, source: io::Error::other("no attach thread could be started") });
    }
    let r = loop {
        match ::tokio::time::timeout(STALL, &mut rx).await {
            Ok(r) => break r,
            Err(_) => pool.grow_if_stalled(),
        }
    };
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => Err(Error::Io { op, source: io::Error::other("an attach thread ended without a result") }),
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
    ready: AsyncFd<OwnedFd>,
    child: AttachChild,
    /// The program's stdin, when it was [`Stdio::Piped`].
    pub stdin: Option<pipe::Sender>,
    /// The program's stdout, when it was [`Stdio::Piped`].
    pub stdout: Option<pipe::Receiver>,
    /// The program's stderr, when it was [`Stdio::Piped`].
    pub stderr: Option<pipe::Receiver>,
}

/// A pipe read to its end (nothing without a pipe).
async fn read_all(p: Option<pipe::Receiver>) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(mut p) = p {
        p.read_to_end(&mut out).await?;
    }
    Ok(out)
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
        let fd = match child.pidfd_dup() {
            Some(fd) => fd.map_err(io_err("dup the child's pidfd"))?,
            None => return Err(Error::bad_return("attach", "a child without a pidfd")),
        };
        let ready = readiness(fd, "register the child's pidfd")?;
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
            let mut guard = self.ready.readable().await.map_err(io_err("wait for the child's pidfd"))?;
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
        let (stdout, stderr) = ::tokio::try_join!(read_all(self.stdout.take()), read_all(self.stderr.take()))
            .map_err(io_err("read output"))?;
        let status = self.wait().await?;
        Ok(Output { status, stdout, stderr })
    }
}

/// The longest single liblxc `wait` of [`Container::wait`] (liblxc counts
/// whole seconds; with 2, a container that has no monitor yet is asked
/// twice a step).
pub const WAIT_STEP: Duration = Duration::from_secs(2);

/// The most helpers of one [`Session`].
pub const MAX_HELPERS: usize = 1024;

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
/// pool thread per command in flight, at most `max_helpers`; its captured
/// output is read by the future. Dropping its future kills the command
/// (SIGKILL through the pidfd the helper sent, once checked to be the
/// helper's child), or, before it was sent, keeps it from being sent; the
/// helper reaps it and the session goes on. A helper that does not answer
/// within a second after that (stopped or taken over inside the container)
/// is ended, and its command left to the container's init. Dropping the last clone of the
/// session ends its idle helpers on the blocking pool. A helper whose command
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

/// The last clone of a session is gone: its idle helpers end on a thread
/// of their own (ending them waits up to 2 s in a frozen container), or
/// here when no thread can be had.
impl Drop for Pool {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        if idle.is_empty() {
            return;
        }
        let slot = Arc::new(std::sync::Mutex::new(Some(idle)));
        let theirs = Arc::clone(&slot);
        let spawned = std::thread::Builder::new().name("lxc-session-end".into()).spawn(move || {
            if let Some(idle) = theirs.lock().unwrap_or_else(|e| e.into_inner()).take() {
                crate::AttachSession::end_all(idle);
            }
        });
        if spawned.is_err() {
            if let Some(idle) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                crate::AttachSession::end_all(idle);
            }
        }
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
        let _ = ::tokio::task::spawn_blocking(move || crate::AttachSession::end_all(idle)).await;
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
        // Captured output goes through pipes read here: a dropped future
        // closes them, so that the command's blocking side never waits on
        // a pipe a background process of the command keeps open.
        // Both made before the builder is changed: a failure leaves it as
        // it was.
        let capture_pipe = |slot: &Option<Stdio>| -> Result<Option<(pipe::Receiver, OwnedFd)>> {
            let piped = match slot {
                None => capture,
                Some(Stdio::Piped) => true,
                Some(_) => false,
            };
            if !piped {
                return Ok(None);
            }
            let (r, w) = io::pipe().map_err(io_err("pipe"))?;
            let r = pipe::Receiver::from_owned_fd(r.into()).map_err(io_err("register a pipe"))?;
            Ok(Some((r, w.into())))
        };
        let (out, err) = (capture_pipe(&self.stdout)?, capture_pipe(&self.stderr)?);
        let ours = |slot: &mut Option<Stdio>, made: Option<(pipe::Receiver, OwnedFd)>| {
            made.map(|(r, w)| {
                *slot = Some(Stdio::Fd(w));
                r
            })
        };
        let out_r = ours(&mut self.stdout, out);
        let err_r = ours(&mut self.stderr, err);
        let slot = Arc::new(crate::session::CancelSlot::default());
        let mut cancel = CancelOnDrop(Some(Arc::clone(&slot)));
        let (program, args, env, clear_env, cwd) =
            (self.program.clone(), self.args.clone(), self.env.clone(), self.clear_env, self.cwd.clone());
        let (stdin, stdout, stderr) = (self.stdin.take(), self.stdout.take(), self.stderr.take());
        let (c, opts) = (Arc::clone(&pool.container), pool.opts.clone());
        let task = ::tokio::task::spawn_blocking(move || {
            // The permit goes with the helper: it is released only once the
            // helper is back among the idle ones, or gone.
            // An idle helper that died meanwhile (the container restarted,
            // it was killed inside) is ended here, not given the command.
            let idle = loop {
                let h = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
                match h {
                    Some(h) if !h.is_alive() => drop(h),
                    h => break h,
                }
            };
            let mut helper = match idle {
                Some(h) => h,
                None => c.attach_session_shared(&opts)?,
            };
            let mut cmd = helper.command(program);
            (cmd.args, cmd.env, cmd.clear_env, cmd.cwd) = (args, env, clear_env, cwd);
            (cmd.stdin, cmd.stdout, cmd.stderr) = (stdin, stdout, stderr);
            cmd.cancel = Some(Arc::clone(&slot));
            let r = cmd.status();
            slot.finished();
            // Back to the pool while it can serve; else it drops here
            // (its helper ends and is reaped).
            if helper.is_open() {
                pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(helper);
            } else {
                drop(helper);
            }
            drop(permit);
            r
        });
        // The output to its end, and the status; a failure of the blocking
        // side (the helper gone, the container frozen) is returned at
        // once, without waiting for the end of pipes that an orphaned
        // command may keep open.
        let reads = async { ::tokio::try_join!(read_all(out_r), read_all(err_r)) };
        let (mut reads, mut task) = (std::pin::pin!(reads), std::pin::pin!(task));
        let (mut output, mut status) = (None, None);
        while output.is_none() || status.is_none() {
            ::tokio::select! {
                r = &mut reads, if output.is_none() => output = Some(r.map_err(io_err("read command output"))),
                r = &mut task, if status.is_none() => {
                    cancel.0 = None;
                    status = Some(joined(r, "run a session command")??);
                }
            }
        }
        let (stdout, stderr) = output.expect("read")?;
        Ok(Output { status: status.expect("waited"), stdout, stderr })
    }
}

/// The states of a container as they change; see
/// [`Container::state_changes`]. The first item is the state now; each
/// next one a state different from the one before. An error (liblxc
/// failed) is the last item; otherwise the stream does not end.
///
/// Only liblxc's public API is used. While the container runs, `next`
/// waits with liblxc's `wait` for every state but the current one, on
/// tokio's blocking pool in steps of at most [`WAIT_STEP`] (a pool thread
/// while `next` waits, given back within a step when the future is
/// dropped); liblxc's monitor reports to such a waiter each state it
/// enters. A stopped container has no monitor to report its start: `next`
/// reads its state every [`StateChanges::STOPPED_POLL`] (a timer, no
/// thread). What is reported is the state liblxc's `state` reads after the
/// wait: a state that passes before that read is not seen (STARTING is
/// seen only when the read falls in it); RUNNING read after FROZEN or
/// FREEZING comes as THAWED, then RUNNING (liblxc reports the thaw as
/// THAWED and records it as RUNNING); a freeze made by writing the freezer
/// file directly is not reported by the monitor (it is seen at the next
/// read); and a destroyed container reads STOPPED.
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
    c: Arc<crate::Container>,
    last: Option<State>,
    done: bool,
}

impl StateChanges {
    /// How often the state of a stopped container is read (liblxc's
    /// `state`: a failed connect to its absent monitor, some 20 µs).
    pub const STOPPED_POLL: Duration = Duration::from_millis(100);

    /// The next state: the state now at first, then the next change.
    pub async fn next(&mut self) -> Option<Result<State>> {
        if self.done {
            return None;
        }
        loop {
            let Some(last) = self.last else {
                return self.report(pool_on(&self.c, "state", |c| c.state()).await);
            };
            let step_started = Instant::now();
            if last == State::Stopped {
                ::tokio::time::sleep(Self::STOPPED_POLL).await;
            } else {
                let others: Vec<State> = State::ALL.into_iter().filter(|s| *s != last).collect();
                if let Err(e) = pool_on(&self.c, "wait", move |c| c.wait_any(&others, WAIT_STEP)).await {
                    return self.report(Err(e));
                }
            }
            match pool_on(&self.c, "state", |c| c.state()).await {
                Ok(now) if now == last => {}
                // liblxc reports a thaw as THAWED and records it as
                // RUNNING: THAWED first, then RUNNING, as `lxc-monitor`
                // shows them.
                Ok(State::Running) if matches!(last, State::Frozen | State::Freezing) => {
                    return self.report(Ok(State::Thawed));
                }
                r => return self.report(r),
            }
            // liblxc's wait gave up at once with nothing changed: not a
            // loop that spins.
            if last != State::Stopped && step_started.elapsed() < Duration::from_millis(100) {
                ::tokio::time::sleep(Self::STOPPED_POLL).await;
            }
        }
    }

    fn report(&mut self, r: Result<State>) -> Option<Result<State>> {
        match &r {
            Ok(s) => self.last = Some(*s),
            Err(_) => self.done = true,
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backlog of ordinary jobs keeps `base` threads; jobs stuck on every
    /// attach thread do not hold the queue up for much more than
    /// [`STALL`]: the pool grows, and shrinks back once they are done.
    #[test]
    fn a_stalled_pool_grows() {
        let rt =
            ::tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let pool = AttachThreads::get();
            let base = pool.base;
            // 3 s of 20 ms jobs on `base` threads: waits beyond STALL, but
            // nothing is stuck.
            let backlog: Vec<_> = (0..150 * base)
                .map(|_| {
                    ::tokio::spawn(on_attach_thread("test", || std::thread::sleep(Duration::from_millis(20))))
                })
                .collect();
            for b in backlog {
                b.await.unwrap().unwrap();
            }
            assert!(pool.lock().threads <= base, "a backlog grew the pool to {}", pool.lock().threads);

            let stuck: Vec<_> = (0..base)
                .map(|_| {
                    ::tokio::spawn(on_attach_thread("test", || std::thread::sleep(Duration::from_secs(4))))
                })
                .collect();
            ::tokio::time::sleep(Duration::from_millis(100)).await;
            let t0 = Instant::now();
            on_attach_thread("test", || ()).await.unwrap();
            let took = t0.elapsed();
            assert!(took >= STALL / 2 && took < Duration::from_secs(3), "{took:?}");
            for s in stuck {
                s.await.unwrap().unwrap();
            }
            on_attach_thread("test", || ()).await.unwrap();
            assert!(pool.lock().threads <= base + 1, "the pool kept {} threads", pool.lock().threads);
            // A panic on an attach thread reaches the caller; the thread
            // goes on.
            let r = ::tokio::spawn(on_attach_thread("test", || panic!("boom"))).await;
            assert!(r.unwrap_err().is_panic());
            assert_eq!(on_attach_thread("test", || 7).await.unwrap(), 7);
        });
    }
}
