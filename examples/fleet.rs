//! A fleet from one tokio runtime: makes N busybox containers (default
//! 20), starts them all at once, provisions each with ten commands while
//! every container's output streams in prefixed by its name, kills one
//! container's init from outside halfway (its state stream says STOPPED,
//! the others go on), and cleans up. Needs the `tokio` feature.
//!
//! ```sh
//! cargo run --features tokio --example fleet -- --count 20
//! ```

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lxc::tokio::Container;
use lxc::{State, Stdio};
use tokio::io::AsyncBufReadExt;

/// The provisioning step of every container: ten commands, the fifth
/// lasting a second (the victim is killed during it).
fn steps(name: &str) -> Vec<Vec<String>> {
    let sh = |s: &str| vec!["/bin/sh".to_owned(), "-c".to_owned(), s.to_owned()];
    vec![
        sh("mkdir -p /srv/app && echo made /srv/app"),
        sh(&format!("echo {name} > /srv/app/owner && echo owner set")),
        sh("echo v1 > /srv/app/version && echo version v1"),
        sh("hostname"),
        sh("sleep 1 && echo slept"),
        sh("printf 'port=8080\\n' > /srv/app/config && echo config written"),
        sh("ls /srv/app | tr '\\n' ' ' && echo"),
        sh("cat /srv/app/owner"),
        sh("wc -c < /srv/app/config"),
        sh("cat /srv/app/version"),
    ]
}

/// Runs the steps in `c`, printing each output line as `[name] line`; the
/// number of steps that succeeded, and the last line of the last step.
async fn provision(
    c: Container,
    step_done: tokio::sync::mpsc::UnboundedSender<(String, usize)>,
) -> (usize, String) {
    let name = c.name().to_owned();
    let mut done = 0;
    let mut last = String::new();
    for (i, argv) in steps(&name).into_iter().enumerate() {
        let mut child = match c.command(&argv[0]).args(&argv[1..]).stdout(Stdio::piped()).spawn().await {
            Ok(child) => child,
            Err(e) => {
                println!("[{name}] step {} could not start: {e}", i + 1);
                break;
            }
        };
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            println!("[{name}] {line}");
            last = line;
        }
        match child.wait().await {
            Ok(s) if s.success() => done += 1,
            Ok(s) => {
                println!("[{name}] step {} ended: {s}", i + 1);
                break;
            }
            Err(e) => {
                println!("[{name}] step {} failed: {e}", i + 1);
                break;
            }
        }
        let _ = step_done.send((name.clone(), done));
    }
    (done, last)
}

#[tokio::main]
async fn main() -> lxc::Result<()> {
    let args = common::Args::parse("fleet [--count N] [--lxcpath PATH] [--keep]", &[]);
    let count: usize =
        args.get("--count", "-n").map_or(20, |v| v.parse().unwrap_or_else(|_| common::die("--count N")));
    if count < 2 {
        common::die("--count must be at least 2 (one container is killed)");
    }
    let ws = common::Workspace::new(&args, "fleet");
    let t0 = Instant::now();

    // One base from the busybox template, copied N times at once.
    let base: Container = ws.busybox("fleet-base", None)?.into();
    let names: Vec<String> = (0..count).map(|i| format!("fleet-{i:02}")).collect();
    for n in &names {
        ws.made(n);
    }
    let copies = names.iter().map(|n| {
        let base = base.clone();
        let n = n.clone();
        tokio::spawn(async move { base.copy(&n, lxc::CloneOptions::new()).await })
    });
    let mut fleet = Vec::new();
    for h in copies.collect::<Vec<_>>() {
        fleet.push(h.await.map_err(|e| common::failure(e.to_string()))??);
    }
    println!("{count} containers made in {:.1} s", t0.elapsed().as_secs_f64());

    // A state stream per container, printed as it comes.
    let (state_tx, mut state_rx) = tokio::sync::mpsc::unbounded_channel::<(String, State)>();
    let watchers: Vec<_> = fleet
        .iter()
        .map(|c| {
            let (c, tx) = (c.clone(), state_tx.clone());
            tokio::spawn(async move {
                let mut states = c.state_changes();
                while let Some(Ok(s)) = states.next().await {
                    println!("[{}] state {s}", c.name());
                    if tx.send((c.name().to_owned(), s)).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(state_tx);

    // All started at once.
    let t1 = Instant::now();
    let starts: Vec<_> = fleet
        .iter()
        .map(|c| {
            let c = c.clone();
            tokio::spawn(async move {
                c.start().await?;
                c.wait(State::Running, Duration::from_secs(20)).await
            })
        })
        .collect();
    for s in starts {
        s.await.map_err(|e| common::failure(e.to_string()))??;
    }
    println!("{count} containers running {:.1} s after the starts", t1.elapsed().as_secs_f64());

    // Provisioning, all at once; the victim is killed from outside (SIGKILL
    // to its init, not through liblxc) once it has done four steps.
    let victim = fleet[count / 2].clone();
    let (step_tx, mut step_rx) = tokio::sync::mpsc::unbounded_channel();
    let t2 = Instant::now();
    let work: Vec<_> = fleet.iter().map(|c| tokio::spawn(provision(c.clone(), step_tx.clone()))).collect();
    drop(step_tx);
    let victim_pid = victim.init_pid().ok_or_else(|| common::failure("the victim has no init"))?;
    while let Some((name, done)) = step_rx.recv().await {
        if name == victim.name() && done == 4 {
            println!("killing {}'s init (pid {victim_pid}) from outside", victim.name());
            // SAFETY: kill(2) of the init of the container this example started.
            unsafe { libc::kill(victim_pid, libc::SIGKILL) };
            break;
        }
    }
    let mut results = BTreeMap::new();
    for (c, w) in fleet.iter().zip(work) {
        results.insert(c.name().to_owned(), w.await.map_err(|e| common::failure(e.to_string()))?);
    }
    println!("provisioning done in {:.1} s", t2.elapsed().as_secs_f64());

    // The victim's stream reports RUNNING, then STOPPED.
    let saw_stopped = tokio::time::timeout(Duration::from_secs(20), async {
        let mut ran = false;
        while let Some((name, s)) = state_rx.recv().await {
            if name == victim.name() {
                ran |= s == State::Running;
                if ran && s == State::Stopped {
                    return true;
                }
            }
        }
        false
    })
    .await
    .unwrap_or(false);

    let mut checks = common::Checks::default();
    let complete =
        results.iter().filter(|(n, (done, last))| *n != victim.name() && *done == 10 && last == "v1").count();
    checks.check(complete == count - 1, format!("{complete} of the {} others did all 10 steps", count - 1));
    let (victim_done, _) = results[victim.name()];
    checks.check(
        (4..10).contains(&victim_done),
        format!("the killed container stopped after step {victim_done} of 10"),
    );
    checks.check(saw_stopped, format!("{}'s state stream said RUNNING, then STOPPED", victim.name()));
    let mut running = 0;
    for c in &fleet {
        if c.name() != victim.name() && c.state().await? == State::Running {
            running += 1;
        }
    }
    checks.check(running == count - 1, format!("{running} of the others still run"));

    // Clean-up: every container stopped at once, then the workspace
    // destroys them.
    let stops: Vec<_> = fleet
        .iter()
        .map(|c| {
            let c = c.clone();
            tokio::spawn(async move {
                c.stop().await?;
                c.wait(State::Stopped, Duration::from_secs(20)).await
            })
        })
        .collect();
    for s in stops {
        s.await.map_err(|e| common::failure(e.to_string()))??;
    }
    for w in watchers {
        w.abort();
    }
    println!("all stopped; {} s in all", t0.elapsed().as_secs());
    drop(fleet);
    drop(base);
    checks.finish()
}
