//! Free cgroup accounting as metrics: a live table of CPU, memory and I/O
//! of every running container of an lxcpath, refreshed each second for a
//! bounded time. Without `--lxcpath`, it starts two busybox containers of
//! its own (one busy) in a temporary lxcpath, shows them and removes them.
//!
//! ```sh
//! cargo run --example stats -- --seconds 5
//! cargo run --example stats -- --lxcpath /var/lib/lxc --seconds 30
//! ```

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lxc::ListKind;

fn main() -> lxc::Result<()> {
    let args = common::Args::parse("stats [--seconds N] [--lxcpath PATH] [--keep]", &[]);
    let seconds: u64 =
        args.get("--seconds", "-s").map_or(5, |v| v.parse().unwrap_or_else(|_| common::die("--seconds N")));
    let own = args.lxcpath.is_none();
    let ws = common::Workspace::new(&args, "stats");
    let mut busy_loop = None;
    if own {
        for name in ["idle", "busy"] {
            let c = ws.busybox(name, None)?;
            common::start(&c)?;
        }
        let busy = lxc::Container::with_lxcpath("busy", &ws.lxcpath)?;
        // A bounded busy loop inside, while the table runs.
        let loop_for = seconds + 1;
        busy_loop = Some(
            busy.command("/bin/sh")
                .args([
                    "-c",
                    &format!("end=$(($(date +%s)+{loop_for})); while [ $(date +%s) -lt $end ]; do :; done"),
                ])
                .spawn()?,
        );
    }
    let mut last: HashMap<String, (Duration, Instant)> = HashMap::new();
    // The last tick's figures, to check against what the kernel says of
    // the loop's own process.
    let mut seen: HashMap<String, (f64, u64)> = HashMap::new();
    let mut loop_cpu = None;
    let mut loop_last = busy_loop.as_ref().and_then(|c| process_cpu(c.id())).map(|t| (t, Instant::now()));
    for tick in 0..seconds {
        std::thread::sleep(Duration::from_secs(1));
        println!(
            "\n{:<12} {:>7} {:>12} {:>12} {:>10} {:>10}",
            "NAME", "CPU%", "MEMORY", "LIMIT", "READ", "WRITTEN"
        );
        for c in lxc::containers(ListKind::Active, Some(&ws.lxcpath))? {
            let Ok(s) = c.stats() else { continue };
            let now = Instant::now();
            let cpu = match last.insert(c.name().to_owned(), (s.cpu.total, now)) {
                Some((prev, at)) => {
                    100.0 * (s.cpu.total.saturating_sub(prev)).as_secs_f64()
                        / now.duration_since(at).as_secs_f64()
                }
                None => 0.0,
            };
            seen.insert(c.name().to_owned(), (cpu, s.memory.usage));
            let limit = s.memory.limit.map_or("-".to_owned(), |l| l.to_string());
            println!(
                "{:<12} {:>6.1}% {:>12} {:>12} {:>10} {:>10}",
                c.name(),
                cpu,
                lxc::ByteSize::new(s.memory.usage).to_string(),
                limit,
                s.blkio.read_bytes,
                s.blkio.write_bytes
            );
        }
        let _ = tick;
        if let (Some(child), Some((t0, at))) = (&busy_loop, loop_last) {
            if let Some(t1) = process_cpu(child.id()) {
                let now = Instant::now();
                loop_cpu =
                    Some(100.0 * t1.saturating_sub(t0).as_secs_f64() / now.duration_since(at).as_secs_f64());
                loop_last = Some((t1, now));
            }
        }
    }
    let mut checks = common::Checks::default();
    if own {
        let (busy, idle) = (seen.get("busy").copied(), seen.get("idle").copied());
        let (busy_cpu, idle_cpu) = (busy.map_or(0.0, |b| b.0), idle.map_or(100.0, |i| i.0));
        let loop_cpu = loop_cpu.unwrap_or(-100.0);
        println!(
            "\nlast second: busy {busy_cpu:.1}% by its cgroup, {loop_cpu:.1}% by its loop's process (/proc/<pid>/stat), idle {idle_cpu:.1}%"
        );
        checks.check(busy_cpu >= 50.0, format!("busy used at least half a CPU ({busy_cpu:.1}%)"));
        checks.check(
            (busy_cpu - loop_cpu).abs() <= 15.0,
            format!("its cgroup's figure matches its loop process's within 15 points ({busy_cpu:.1}% / {loop_cpu:.1}%)"),
        );
        checks.check(idle_cpu <= 5.0, format!("idle used almost nothing ({idle_cpu:.1}%)"));
        checks.check(
            busy.is_some_and(|b| b.1 > 0) && idle.is_some_and(|i| i.1 > 0),
            "both containers show the memory they use",
        );
    }
    // Reap the attached loop before its container stops: a dying container
    // init waits for every process of its namespace to be reaped.
    if let Some(mut child) = busy_loop {
        child.kill()?;
        child.wait()?;
    }
    checks.finish()
}

/// CPU time of process `pid` and of its children it reaped (the loop's
/// `date` calls): `utime + stime + cutime + cstime` of `/proc/<pid>/stat`.
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which ends with the last ')'.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = rest.get(11..15)?.iter().filter_map(|t| t.parse::<u64>().ok()).sum();
    // In USER_HZ (sysconf(_SC_CLK_TCK)), 100 on the architectures liblxc
    // is built for.
    Some(Duration::from_millis(ticks * 10))
}
