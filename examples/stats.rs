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
    }
    // Reap the attached loop before its container stops: a dying container
    // init waits for every process of its namespace to be reaped.
    if let Some(mut child) = busy_loop {
        child.kill()?;
        child.wait()?;
    }
    Ok(())
}
