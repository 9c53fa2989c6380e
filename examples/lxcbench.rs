//! `impl=rust` of the shared liblxc bindings benchmark: the same operations
//! as the C, Go and Python programs, through the crate's public API as a
//! user would call it, speaking the benchmark's line protocol.
//!
//! ```sh
//! cargo build --release --example lxcbench
//! ./target/release/examples/lxcbench <op> <lxcpath> <n>
//! ./bench/compare                   # the whole comparison (see README)
//! ```
//!
//! Ops: `attach_true`, `attach_echo_pipe`, `state`, `get_config_item`,
//! `list_all`, `lifecycle`, `concurrent_start`, `attach_fanout` (n rounds of
//! 16 threads x 8 attaches of `/bin/true`; `LXCBENCH_FANOUT_SHARED=1` shares
//! one handle between the threads instead of one handle each), and, beyond
//! the C API, `session_true` and `session_echo_pipe` (one attach, then N
//! commands), `attach_fanout_async` (the fanout as 16 tasks of the async
//! front) and `attach_fanout_session` (the same 128 commands per round
//! through one async session of 4 helpers), and `fleet_from_image`,
//! `fleet_full_copy`, `fleet_busybox` (bench/fleet: 50 running containers
//! from an image, as overlay snapshots or full copies, or from the busybox
//! template); built with `--features tokio`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use lxc::{AttachOptions, Container, CreateOptions, State, Stdio};

const IMPL: &str = "rust";
const RUN_NAME: &str = "run0";
const CS_COUNT: usize = 16;
const CS_WORKERS: usize = 4;
const FAN_WORKERS: usize = 16;
const FAN_EACH: usize = 8;
const TEN_SECONDS: Duration = Duration::from_secs(10);

type OpResult = Result<Vec<f64>, String>;

fn micros(t0: Instant) -> f64 {
    t0.elapsed().as_nanos() as f64 / 1000.0
}

fn warmup_for(op: &str, n: usize) -> usize {
    if op == "lifecycle" || op == "concurrent_start" {
        0
    } else {
        n / 20
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Prints the protocol line: median, nearest-rank p95, operations per second.
fn report(op: &str, samples: &mut [f64], extra: &str) {
    let n = samples.len();
    let sum: f64 = samples.iter().sum();
    let med = median(samples);
    let k = (95 * n).div_ceil(100).saturating_sub(1);
    let p95 = samples[k];
    let ops = if sum > 0.0 { n as f64 / (sum / 1e6) } else { 0.0 };
    println!("op={op} impl={IMPL} n={n} median_us={med:.3} p95_us={p95:.3} ops_s={ops:.2}{extra}");
}

fn open_running(path: &Path) -> Result<Container, String> {
    let c = Container::with_lxcpath(RUN_NAME, path).map_err(|e| e.to_string())?;
    if !c.is_running() {
        return Err("run0 not running".into());
    }
    Ok(c)
}

/// Times `n` calls of `one` after the warm-up; `one` checks its own result.
fn timed(op: &str, n: usize, mut one: impl FnMut() -> Result<(), String>) -> OpResult {
    for _ in 0..warmup_for(op, n) {
        one().map_err(|e| format!("{e} (warmup)"))?;
    }
    let mut s = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let r = one();
        s.push(micros(t0));
        r?;
    }
    Ok(s)
}

fn op_attach(op: &str, path: &Path, n: usize, pipe_out: bool) -> OpResult {
    let c = open_running(path)?;
    let opts = AttachOptions::new();
    timed(op, n, || {
        if pipe_out {
            echo_output(
                c.command("echo").arg("hello").stdout(Stdio::piped()).stderr(Stdio::inherit()).output(),
            )?;
        } else {
            let st = c.attach_run_wait(&opts, "/bin/true", &[]).map_err(|e| e.to_string())?;
            if !st.success() {
                return Err(format!("/bin/true exited with {st}"));
            }
        }
        Ok(())
    })
}

/// Checks what `echo hello` with its stdout captured gave.
fn echo_output(out: lxc::Result<std::process::Output>) -> Result<(), String> {
    let out = out.map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("echo exited with {}", out.status));
    }
    if out.stdout != b"hello\n" {
        return Err("unexpected output".into());
    }
    Ok(())
}

fn op_session(op: &str, path: &Path, n: usize, pipe_out: bool) -> OpResult {
    let c = open_running(path)?;
    let mut s = c.attach_session(&AttachOptions::new()).map_err(|e| e.to_string())?;
    let r = timed(op, n, || {
        if pipe_out {
            echo_output(
                s.command("echo").arg("hello").stdout(Stdio::piped()).stderr(Stdio::inherit()).output(),
            )?;
        } else {
            let st = s.run("/bin/true", &[]).map_err(|e| e.to_string())?;
            if !st.success() {
                return Err(format!("/bin/true exited with {st}"));
            }
        }
        Ok(())
    });
    s.close().map_err(|e| e.to_string())?;
    r
}

fn op_state(op: &str, path: &Path, n: usize) -> OpResult {
    let c = open_running(path)?;
    timed(op, n, || match c.state() {
        Ok(State::Running) => Ok(()),
        other => Err(format!("state != RUNNING: {other:?}")),
    })
}

fn op_get_config_item(op: &str, path: &Path, n: usize) -> OpResult {
    let c = open_running(path)?;
    timed(op, n, || {
        // An owned String, like the other bindings return.
        let v = c.config_item_str("lxc.uts.name").map_err(|e| e.to_string())?;
        if v == RUN_NAME {
            Ok(())
        } else {
            Err(format!("lxc.uts.name != run0: {v:?}"))
        }
    })
}

fn op_list_all(op: &str, path: &Path, n: usize) -> OpResult {
    let expect: usize = std::env::var("LXCBENCH_LIST_COUNT").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    timed(op, n, || {
        let names = lxc::list_all_containers(Some(path)).map_err(|e| e.to_string())?;
        if names.len() == expect {
            Ok(())
        } else {
            Err(format!("wrong container count {}", names.len()))
        }
    })
}

/// Stops and destroys what the lifecycle op made, on any way out.
struct LifecycleGuard<'a> {
    path: &'a Path,
}

impl Drop for LifecycleGuard<'_> {
    fn drop(&mut self) {
        force_remove(self.path);
    }
}

fn force_remove(path: &Path) {
    if let Ok(c) = Container::with_lxcpath("lc-rust", path) {
        if c.is_running() {
            let _ = c.stop();
            let _ = c.wait(State::Stopped, TEN_SECONDS);
        }
        if c.is_defined() {
            let _ = c.destroy();
        }
    }
}

fn op_lifecycle(path: &Path, n: usize) -> Result<(Vec<f64>, String), String> {
    let _guard = LifecycleGuard { path };
    let mut s = Vec::with_capacity(n);
    let mut ph: [Vec<f64>; 4] = Default::default();
    for _ in 0..n {
        let t0 = Instant::now();
        let c = Container::with_lxcpath("lc-rust", path).map_err(|e| e.to_string())?;
        if c.is_defined() {
            return Err("lc-rust already exists".into());
        }
        c.set_config_item("lxc.net.0.type", "empty").map_err(|e| e.to_string())?;
        c.create(&CreateOptions::new().template("busybox").quiet(true))
            .map_err(|e| format!("create: {e}"))?;
        let t1 = Instant::now();
        c.start().map_err(|e| format!("start: {e}"))?;
        c.wait(State::Running, TEN_SECONDS).map_err(|e| format!("wait RUNNING: {e}"))?;
        let t2 = Instant::now();
        c.stop().map_err(|e| format!("stop: {e}"))?;
        c.wait(State::Stopped, TEN_SECONDS).map_err(|e| format!("wait STOPPED: {e}"))?;
        let t3 = Instant::now();
        c.destroy().map_err(|e| format!("destroy: {e}"))?;
        drop(c);
        let total = micros(t0);
        s.push(total);
        let us = |a: Instant, b: Instant| b.duration_since(a).as_nanos() as f64 / 1000.0;
        ph[0].push(us(t0, t1));
        ph[1].push(us(t1, t2));
        ph[2].push(us(t2, t3));
        ph[3].push(total - us(t0, t3));
    }
    let extra = format!(
        " create_med_us={:.0} start_med_us={:.0} stop_med_us={:.0} destroy_med_us={:.0}",
        median(&mut ph[0]),
        median(&mut ph[1]),
        median(&mut ph[2]),
        median(&mut ph[3])
    );
    Ok((s, extra))
}

/// Stops every csNN container that runs (not timed), also on the way out.
struct StopAll<'a>(&'a [Container]);

impl StopAll<'_> {
    fn stop(&self) {
        for c in self.0 {
            if c.is_running() {
                let _ = c.stop();
                let _ = c.wait(State::Stopped, TEN_SECONDS);
            }
        }
    }
}

impl Drop for StopAll<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}

fn op_concurrent_start(path: &Path, n: usize) -> OpResult {
    let mut cs = Vec::with_capacity(CS_COUNT);
    for j in 0..CS_COUNT {
        let c = Container::with_lxcpath(&format!("cs{j:02}"), path).map_err(|e| e.to_string())?;
        if !c.is_defined() {
            return Err("csNN container missing".into());
        }
        if c.is_running() {
            return Err("csNN container already running".into());
        }
        cs.push(c);
    }
    let all = StopAll(&cs);
    let mut s = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let ok = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..CS_WORKERS)
                .map(|w| {
                    let cs = &cs;
                    scope.spawn(move || {
                        cs.iter()
                            .skip(w)
                            .step_by(CS_WORKERS)
                            .all(|c| c.start().is_ok() && c.wait(State::Running, TEN_SECONDS).is_ok())
                    })
                })
                .collect();
            workers.into_iter().all(|h| h.join().unwrap_or(false))
        });
        s.push(micros(t0));
        all.stop();
        if !ok {
            return Err("a start failed".into());
        }
    }
    Ok(s)
}

/// One fan-out worker's share of a round: `FAN_EACH` attaches of `/bin/true`,
/// each checked for exit status 0.
fn fan_attaches(c: &Container) -> Result<(), String> {
    let opts = AttachOptions::new();
    for _ in 0..FAN_EACH {
        let st = c.attach_run_wait(&opts, "/bin/true", &[]).map_err(|e| e.to_string())?;
        if !st.success() {
            return Err(format!("/bin/true exited with {st}"));
        }
    }
    Ok(())
}

/// `attach_fanout`, as C's `op_attach_fanout`: every round starts
/// `FAN_WORKERS` threads, each running `FAN_EACH` attaches; one sample is
/// the round, from before the threads are created until all have joined.
/// No warm-up. Shape `per_worker` (the default, as C): each worker opens its
/// own handle on run0 and drops it, inside the round (C calls
/// `lxc_container_new` and `lxc_container_put` in the thread). Shape
/// `shared` (`LXCBENCH_FANOUT_SHARED=1`): one `Arc<Container>`, opened
/// before the rounds, for all workers. A barrier lets the workers' attaches
/// start together, once every worker has its handle.
fn op_attach_fanout(path: &Path, n: usize) -> Result<(Vec<f64>, String), String> {
    let shared = std::env::var("LXCBENCH_FANOUT_SHARED").is_ok_and(|v| v == "1");
    // Like C: run0 must run; C frees this handle before the rounds.
    let c = open_running(path)?;
    let shared = if shared {
        Some(Arc::new(c))
    } else {
        drop(c);
        None
    };
    let path: Arc<Path> = Arc::from(path);
    let mut s = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Arc::new(Barrier::new(FAN_WORKERS));
        let t0 = Instant::now();
        let workers: Vec<_> = (0..FAN_WORKERS)
            .map(|_| {
                let (shared, path, start) = (shared.clone(), Arc::clone(&path), Arc::clone(&start));
                std::thread::spawn(move || {
                    // A worker whose open failed still meets the others at
                    // the barrier, so that none waits forever.
                    let own = match shared {
                        Some(c) => Ok(c),
                        None => Container::with_lxcpath(RUN_NAME, &*path)
                            .map(Arc::new)
                            .map_err(|e| format!("open run0: {e}")),
                    };
                    start.wait();
                    let c: Arc<Container> = own?;
                    fan_attaches(&c)
                })
            })
            .collect();
        let results: Vec<_> =
            workers.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("worker panicked".into()))).collect();
        s.push(micros(t0));
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err(format!("an attach failed: {e}"));
        }
    }
    let shape = if shared.is_some() { "shared" } else { "per_worker" };
    Ok((s, format!(" shape={shape}")))
}

/// The most threads this process had at any sample of the returned
/// sampler (every 2 ms, from a runtime task: no thread of its own).
fn thread_sampler(
    rt: &tokio::runtime::Runtime,
) -> (Arc<std::sync::atomic::AtomicUsize>, tokio::task::JoinHandle<()>) {
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let p = Arc::clone(&peak);
    let h = rt.spawn(async move {
        loop {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let threads = status
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            p.fetch_max(threads, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    (peak, h)
}

/// Rounds of `FAN_WORKERS` tasks made by `task` on `rt`; one sample is the
/// wall time of a round, from spawning the tasks until all have ended.
fn fan_rounds<F, Fut>(rt: &tokio::runtime::Runtime, n: usize, what: &str, task: F) -> Result<Vec<f64>, String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let mut s = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let r: Result<(), String> = rt.block_on(async {
            let tasks: Vec<_> = (0..FAN_WORKERS).map(|_| tokio::spawn(task())).collect();
            for t in tasks {
                t.await.map_err(|e| e.to_string())??;
            }
            Ok(())
        });
        s.push(micros(t0));
        r.map_err(|e| format!("{what} failed: {e}"))?;
    }
    Ok(s)
}

/// `/bin/true`'s status: success, or the error to report.
fn true_ran(st: lxc::Result<std::process::ExitStatus>) -> Result<(), String> {
    let st = st.map_err(|e| e.to_string())?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("/bin/true exited with {st}"))
    }
}

/// `attach_fanout_async`: the same rounds as `attach_fanout` (16 workers x
/// 8 attaches of `/bin/true`), as 16 tasks of one multi-thread runtime
/// (its default workers: one per CPU) through the async front, each task
/// opening its own handle (`open_in`) as C's threads do; the opens and
/// attaches run on the crate's attach threads, the waits on the children's
/// pidfds. Extra fields: the runtime's workers and the peak thread count
/// of the process.
fn op_attach_fanout_async(path: &Path, n: usize) -> Result<(Vec<f64>, String), String> {
    drop(open_running(path)?);
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(k) = std::env::var("LXCBENCH_BLOCKING").ok().and_then(|v| v.parse().ok()) {
        b.max_blocking_threads(k);
    }
    let rt = b.enable_all().build().map_err(|e| e.to_string())?;
    let workers = rt.metrics().num_workers();
    let (peak, sampler) = thread_sampler(&rt);
    let path: Arc<Path> = Arc::from(path);
    let s = fan_rounds(&rt, n, "an attach", || {
        let path = Arc::clone(&path);
        async move {
            let c = lxc::tokio::Container::open_in(RUN_NAME, &*path)
                .await
                .map_err(|e| format!("open run0: {e}"))?;
            for _ in 0..FAN_EACH {
                true_ran(c.command("/bin/true").status().await)?;
            }
            Ok(())
        }
    })?;
    sampler.abort();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    Ok((s, format!(" workers={workers} threads_peak={peak}")))
}

/// Helpers of the session in `attach_fanout_session`.
const FAN_SESSION_HELPERS: usize = 4;

/// `attach_fanout_session`: the same 128 commands per round, from 16 tasks
/// sharing one async session of `FAN_SESSION_HELPERS` helpers, attached
/// (and all four started) before the rounds.
fn op_attach_fanout_session(path: &Path, n: usize) -> Result<(Vec<f64>, String), String> {
    let c: lxc::tokio::Container = open_running(path)?.into();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let workers = rt.metrics().num_workers();
    let session = rt
        .block_on(async {
            let s = c.attach_session(AttachOptions::new(), FAN_SESSION_HELPERS).await?;
            // All helpers up: as many overlapping commands.
            let warm: Vec<_> = (0..FAN_SESSION_HELPERS)
                .map(|_| {
                    let s = s.clone();
                    tokio::spawn(async move { s.command("/bin/sleep").arg("0.2").status().await })
                })
                .collect();
            for w in warm {
                w.await.map_err(|e| lxc::Error::Io {
                    op: "join",
                    source: std::io::Error::other(e.to_string()),
                })??;
            }
            Ok::<_, lxc::Error>(s)
        })
        .map_err(|e| format!("attach the session: {e}"))?;
    let (peak, sampler) = thread_sampler(&rt);
    let s = fan_rounds(&rt, n, "a session command", || {
        let session = session.clone();
        async move {
            for _ in 0..FAN_EACH {
                true_ran(session.command("/bin/true").status().await)?;
            }
            Ok(())
        }
    })?;
    sampler.abort();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    rt.block_on(session.close());
    Ok((s, format!(" workers={workers} helpers={FAN_SESSION_HELPERS} threads_peak={peak}")))
}

/// The containers of a fleet sample (`fb-rust`, `fb-rust-NN`): stopped
/// and destroyed after each sample and on any way out, copies first.
struct FleetGuard<'a> {
    path: &'a Path,
    count: usize,
}

impl FleetGuard<'_> {
    fn clean(&self) {
        let names = (0..self.count).rev().map(|i| format!("fb-{IMPL}-{i:02}")).chain([format!("fb-{IMPL}")]);
        for name in names {
            if let Ok(c) = Container::with_lxcpath(&name, self.path) {
                if c.is_running() {
                    let _ = c.stop();
                    let _ = c.wait(State::Stopped, TEN_SECONDS);
                }
                if c.is_defined() {
                    let _ = c.destroy();
                }
            }
        }
    }
}

impl Drop for FleetGuard<'_> {
    fn drop(&mut self) {
        self.clean();
    }
}

/// `fleet_from_image`, `fleet_full_copy`, `fleet_busybox` (bench/fleet):
/// from nothing to `LXCBENCH_FLEET` (50) running containers, one after
/// another: a base from the image `LXCBENCH_IMAGE` (the local template),
/// then overlay snapshots of it or full copies; or each by the busybox
/// template.
fn op_fleet(op: &str, path: &Path, n: usize) -> Result<(Vec<f64>, String), String> {
    let fleet: usize = std::env::var("LXCBENCH_FLEET").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let guard = FleetGuard { path, count: fleet };
    let image = match op {
        "fleet_busybox" => None,
        _ => {
            let dir = std::env::var_os("LXCBENCH_IMAGE").ok_or("LXCBENCH_IMAGE not set")?;
            Some(lxc::Image::open(dir).map_err(|e| e.to_string())?)
        }
    };
    let fresh = |name: &str| -> Result<Container, String> {
        let c = Container::with_lxcpath(name, path).map_err(|e| e.to_string())?;
        if c.is_defined() {
            return Err(format!("{name} exists already"));
        }
        c.set_config_item("lxc.net.0.type", "empty").map_err(|e| e.to_string())?;
        Ok(c)
    };
    let up = |c: &Container| -> Result<(), String> {
        c.start().map_err(|e| format!("start: {e}"))?;
        c.wait(State::Running, TEN_SECONDS).map_err(|e| format!("wait RUNNING: {e}"))
    };
    let mut s = Vec::with_capacity(n);
    // Per container: making it (copy or create), starting it (to RUNNING).
    let (mut make, mut run) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t0 = Instant::now();
        let base = match &image {
            Some(image) => {
                let b = fresh(&format!("fb-{IMPL}"))?;
                b.create(&CreateOptions::image(image).quiet(true)).map_err(|e| format!("create: {e}"))?;
                Some(b)
            }
            None => None,
        };
        let snapshot = lxc::CloneOptions::new()
            .flags(lxc::CloneFlags::SNAPSHOT)
            .backing_store(lxc::BackingStore::Overlay);
        for i in 0..fleet {
            let name = format!("fb-{IMPL}-{i:02}");
            let tm = Instant::now();
            let c = match (&base, op) {
                (None, _) => {
                    let c = fresh(&name)?;
                    c.create(&CreateOptions::new().template("busybox").quiet(true))
                        .map_err(|e| format!("create: {e}"))?;
                    c
                }
                (Some(b), "fleet_from_image") => {
                    b.copy(&name, &snapshot).map_err(|e| format!("copy: {e}"))?
                }
                (Some(b), _) => b.copy(&name, &lxc::CloneOptions::new()).map_err(|e| format!("copy: {e}"))?,
            };
            let tr = Instant::now();
            make.push(tr.duration_since(tm).as_nanos() as f64 / 1000.0);
            up(&c)?;
            run.push(micros(tr));
        }
        s.push(micros(t0));
        guard.clean();
    }
    let per = median(&mut s.clone()) / fleet as f64;
    let (make, run) = (median(&mut make), median(&mut run));
    Ok((s, format!(" fleet={fleet} per_container_us={per:.0} make_med_us={make:.0} start_med_us={run:.0}")))
}

/// Not an op: writes the image of the stopped container `base` of
/// `path` into `dir` (`lxcbench export_image LXCPATH DIR`), for bench/fleet.
fn export_image(path: &Path, dir: &str) -> Result<(), String> {
    let c = Container::with_lxcpath("base", path).map_err(|e| e.to_string())?;
    c.export_image(dir, lxc::ExportOptions::new()).map_err(|e| e.to_string())?;
    Ok(())
}

fn run(op: &str, path: &Path, n: usize) -> Result<(), String> {
    let (mut samples, extra) = match op {
        "attach_true" => (op_attach(op, path, n, false)?, String::new()),
        "attach_echo_pipe" => (op_attach(op, path, n, true)?, String::new()),
        "session_true" => (op_session(op, path, n, false)?, String::new()),
        "session_echo_pipe" => (op_session(op, path, n, true)?, String::new()),
        "state" => (op_state(op, path, n)?, String::new()),
        "get_config_item" => (op_get_config_item(op, path, n)?, String::new()),
        "list_all" => (op_list_all(op, path, n)?, String::new()),
        "lifecycle" => op_lifecycle(path, n)?,
        "concurrent_start" => (op_concurrent_start(path, n)?, String::new()),
        "attach_fanout" => op_attach_fanout(path, n)?,
        "attach_fanout_async" => op_attach_fanout_async(path, n)?,
        "attach_fanout_session" => op_attach_fanout_session(path, n)?,
        "fleet_from_image" | "fleet_full_copy" | "fleet_busybox" => op_fleet(op, path, n)?,
        _ => {
            println!("op={op} impl={IMPL} unsupported=\"unknown op\"");
            return Ok(());
        }
    };
    report(op, &mut samples, &extra);
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "export_image" {
        return match export_image(Path::new(&args[2]), &args[3]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("export_image: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.len() != 4 {
        eprintln!("usage: {} <op> <lxcpath> <n>", args[0]);
        return ExitCode::from(2);
    }
    let op = args[1].clone();
    let path = PathBuf::from(&args[2]);
    let n: usize = match args[3].parse() {
        Ok(n) if n > 0 => n,
        _ => {
            eprintln!("n must be > 0");
            return ExitCode::from(2);
        }
    };
    // A panic anywhere still stops what this program started: the guards
    // above run while the panic unwinds, and this hook reports the error.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("[{IMPL}] panic: {info}");
    }));
    let r = std::panic::catch_unwind(|| run(&op, &path, n)).unwrap_or_else(|_| Err("panic".into()));
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = e.replace('"', "'");
            println!("op={op} impl={IMPL} error=\"{e}\"");
            eprintln!("[{IMPL}] {op}: {e}");
            ExitCode::FAILURE
        }
    }
}
