//! A test bed: three containers on a bridge the example makes (no uplink,
//! no NAT, no route out). It measures the round trip and a bounded
//! transfer, shapes one container's bandwidth with `tc` and measures the
//! shaped transfer, adds delay with netem where the kernel has it, cuts a
//! partition with nftables inside one container's network namespace
//! (attach entering only that namespace, so the host's `tc` and `nft` run
//! there) and heals it, then throttles one container's CPU (a quota) and
//! disk writes (a block I/O limit) and measures both from its cgroup's
//! accounting. Every effect it announces is measured and checked (`[ok]` /
//! `[FAILED]`); it exits non-zero when one is not there. All traffic stays
//! between the example's containers; every ping and transfer is bounded in
//! count and time.
//!
//! ```sh
//! cargo run --example netlab
//! cargo run --example netlab -- --rate 2   # shape to 2 Mbit/s (default 4)
//! ```

mod common;

use std::time::{Duration, Instant};

use lxc::{Container, IoLimit, Namespaces, NetDevice, Stdio};

const NET: &str = "169.254.77";
const PORT: u16 = 5001;

fn sh(c: &Container, script: &str) -> lxc::Result<(bool, String)> {
    let out = c.command("/bin/sh").args(["-c", script]).output()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// Runs a host program in the container's network namespace only; its
/// success and what it printed on stderr.
fn in_netns(c: &Container, program: &str, args: &[&str]) -> lxc::Result<(bool, String)> {
    let out = c.command(program).args(args.iter().copied()).namespaces(Namespaces::NET).output()?;
    Ok((out.status.success(), String::from_utf8_lossy(&out.stderr).trim().to_owned()))
}

/// What a tool said, as a suffix of a claim.
fn why(err: &str) -> String {
    if err.is_empty() {
        String::new()
    } else {
        format!(" ({err})")
    }
}

/// Pings twice; the average round trip in milliseconds, `None` without a reply.
fn ping(from: &Container, to_ip: &str) -> lxc::Result<Option<f64>> {
    let (ok, out) = sh(from, &format!("ping -c 2 -W 1 {to_ip}"))?;
    let line = out.lines().find(|l| l.contains("min/avg/max"));
    println!("  {} -> {to_ip}: {}", from.name(), line.unwrap_or("no reply").trim());
    // "round-trip min/avg/max = 0.117/0.122/0.128 ms"
    let avg = line
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse().ok());
    Ok(if ok { avg } else { None })
}

/// Whether something listens on TCP `port` in the running container's
/// network namespace (`/proc/<init>/net/tcp`, state 0A).
fn listening(c: &Container, port: u16) -> bool {
    let Some(pid) = c.init_pid() else { return false };
    let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    let local = format!(":{port:04X}");
    tcp.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && f[1].ends_with(&local) && f[3] == "0A"
    })
}

/// A transfer: bytes sent, bytes the receiver counted, seconds.
struct Transfer {
    sent: u64,
    received: u64,
    secs: f64,
}

impl Transfer {
    /// Throughput in Mbit/s (10^6 bits per second, as `tc` counts).
    fn mbit(&self) -> f64 {
        self.received as f64 * 8.0 / self.secs / 1e6
    }
}

/// Sends `mib` MiB from `from` to `to` with busybox nc; the receiver counts
/// what arrived. The clock runs from the sender's start to its end, which
/// comes after the receiver read the last byte: busybox nc half-closes
/// after its input and exits when the other side closes, and the receiver
/// closes only at the end of the stream.
fn transfer(from: &Container, to: &Container, to_ip: &str, mib: u64) -> lxc::Result<Transfer> {
    // The receiver's stdin is a pipe held open here until the end: busybox
    // nc half-closes the connection when its stdin ends, and the sender
    // then stops at once.
    let receiver = to
        .command("/bin/sh")
        .args(["-c", &format!("timeout 60 nc -l -p {PORT} | wc -c")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let t = Instant::now();
    while !listening(to, PORT) && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = mib << 20;
    let t0 = Instant::now();
    let (ok, out) = sh(
        from,
        &format!("dd if=/dev/zero bs=64k count={} 2>/dev/null | timeout 60 nc {to_ip} {PORT}", mib * 16),
    )?;
    let secs = t0.elapsed().as_secs_f64();
    if !ok {
        eprintln!("  the sender failed: {}", out.trim());
    }
    let counted = receiver.wait_with_output()?;
    let received = String::from_utf8_lossy(&counted.stdout).trim().parse().unwrap_or(0);
    Ok(Transfer { sent, received, secs })
}

/// The container's CPU use, as a share of one CPU, over `window`
/// (`cpuacct.usage` / `cpu.stat` deltas).
fn cpu_share(c: &Container, window: Duration) -> lxc::Result<f64> {
    let (c0, t0) = (c.cpu_time()?, Instant::now());
    std::thread::sleep(window);
    let (c1, t1) = (c.cpu_time()?, Instant::now());
    Ok(c1.saturating_sub(c0).as_secs_f64() / t1.duration_since(t0).as_secs_f64())
}

fn main() -> lxc::Result<()> {
    let args = common::Args::parse("netlab [--rate MBIT] [--lxcpath PATH] [--keep]", &[]);
    let rate: f64 =
        args.get("--rate", "-r").map_or(4.0, |v| v.parse().unwrap_or_else(|_| common::die("--rate MBIT")));
    let ws = common::Workspace::new(&args, "netlab");
    let bridge = common::Bridge::new(&format!("lxlab{}", std::process::id() % 100000), None);
    let mut checks = common::Checks::default();
    let mut nodes = Vec::new();
    for (i, name) in ["node1", "node2", "node3"].iter().enumerate() {
        let ip = format!("{NET}.{}", i + 2);
        let dev = NetDevice::veth(&bridge.name).name("eth0").ipv4(&format!("{ip}/24"));
        let c = ws.busybox(name, Some(&dev))?;
        common::no_dhcp(&ws.lxcpath, name);
        common::start(&c)?;
        nodes.push((c, ip));
    }
    let (a, a_ip) = &nodes[0];
    let (b, b_ip) = &nodes[1];
    let (c, c_ip) = &nodes[2];
    for (n, ip) in &nodes {
        let got = n.wait_ip_addresses(Some("eth0"), None, Duration::from_secs(10))?;
        let ok = got.iter().any(|a| a.to_string() == *ip);
        checks.check(ok, format!("{} has {ip} on eth0 ({got:?})", n.name()));
    }

    println!("round trips:");
    let rtt = ping(a, b_ip)?;
    checks.check(rtt.is_some(), format!("{} reaches {}", a.name(), b.name()));
    let rtt_c = ping(a, c_ip)?;
    checks.check(rtt_c.is_some(), format!("{} reaches {}", a.name(), c.name()));

    let free = transfer(a, b, b_ip, 32)?;
    println!(
        "transfer of {} MiB {} -> {}: {:.1} Mbit/s ({} bytes received in {:.3} s)",
        free.sent >> 20,
        a.name(),
        b.name(),
        free.mbit(),
        free.received,
        free.secs
    );
    checks.check(free.received == free.sent, format!("the receiver counted all {} bytes", free.sent));

    println!(
        "shaping {}'s egress to {rate} Mbit/s (tbf, run by the host's tc in its network namespace)",
        a.name()
    );
    let (shaped_ok, err) = in_netns(
        a,
        "tc",
        &[
            "qdisc",
            "add",
            "dev",
            "eth0",
            "root",
            "tbf",
            "rate",
            &format!("{rate}mbit"),
            "burst",
            "32kbit",
            "latency",
            "400ms",
        ],
    )?;
    checks.check(shaped_ok, format!("tc accepted the tbf qdisc{}", why(&err)));
    let shaped = transfer(a, b, b_ip, 1)?;
    println!(
        "transfer of {} MiB {} -> {}: {:.2} Mbit/s ({} bytes received in {:.3} s)",
        shaped.sent >> 20,
        a.name(),
        b.name(),
        shaped.mbit(),
        shaped.received,
        shaped.secs
    );
    checks.check(shaped.received == shaped.sent, format!("the receiver counted all {} bytes", shaped.sent));
    checks.check(
        shaped.mbit() <= rate * 1.5 && shaped.mbit() >= rate * 0.5,
        format!(
            "the shaped transfer ran at {:.2} Mbit/s: within 0.5x-1.5x of the {rate} Mbit/s limit",
            shaped.mbit()
        ),
    );
    // (About 400 Mbit/s on this host, 20 in its QEMU guest without KVM.)
    checks.check(
        free.mbit() >= rate * 3.0,
        format!("the unshaped transfer ran at {:.1} Mbit/s: at least 3x the limit", free.mbit()),
    );

    println!("delay: 50 ms on {}'s egress with netem", a.name());
    let (netem, err) =
        in_netns(a, "tc", &["qdisc", "replace", "dev", "eth0", "root", "netem", "delay", "50ms"])?;
    if netem {
        let delayed = ping(a, b_ip)?;
        checks.check(
            delayed.is_some_and(|ms| ms >= 50.0),
            format!("the round trip with netem is {delayed:?} ms: at least 50 ms"),
        );
    } else {
        println!("  skipped: this kernel has no netem qdisc (sch_netem), so no delay ({err})");
    }
    let (removed, err) = in_netns(a, "tc", &["qdisc", "del", "dev", "eth0", "root"])?;
    checks.check(removed, format!("shaping removed{}", why(&err)));

    println!(
        "partition: {} drops everything from {} (nftables in its network namespace)",
        c.name(),
        a.name()
    );
    let rule = format!("add table inet netlab\nadd chain inet netlab netlab_in {{ type filter hook input priority 0; policy accept; }}\nadd rule inet netlab netlab_in ip saddr {a_ip} drop\n");
    let rules = ws.lxcpath.join("partition.nft");
    std::fs::write(&rules, rule).map_err(|source| lxc::Error::Io { op: "write rules", source })?;
    // (`in` is a keyword of nftables before 1.0: not a chain name.)
    let (cut_ok, err) = in_netns(c, "nft", &["-f", rules.to_str().unwrap_or_default()])?;
    checks.check(cut_ok, format!("nft accepted the rules{}", why(&err)));
    let cut = ping(a, c_ip)?.is_none();
    let other = ping(b, c_ip)?.is_some();
    println!(
        "  {} -> {}: {}, {} -> {}: {}",
        a.name(),
        c.name(),
        if cut { "cut" } else { "STILL UP" },
        b.name(),
        c.name(),
        if other { "up" } else { "DOWN" }
    );
    checks.check(cut && other, format!("only {} -> {} is cut", a.name(), c.name()));
    let (_, err) = in_netns(c, "nft", &["delete", "table", "inet", "netlab"])?;
    let healed = ping(a, c_ip)?.is_some();
    println!("healed: {} -> {} {}", a.name(), c.name(), if healed { "up again" } else { "STILL DOWN" });
    checks.check(healed, format!("the partition healed{}", why(&err)));

    // CPU: a quota, and a busy loop that would take a whole CPU without it.
    let (quota, period) = (Duration::from_millis(25), Duration::from_millis(100));
    let want = quota.as_secs_f64() / period.as_secs_f64();
    println!(
        "CPU: {} limited to {quota:?} per {period:?} (a quota of {:.0}% of one CPU), running a busy loop",
        b.name(),
        want * 100.0
    );
    b.set_cpu_quota(Some(quota), period)?;
    let mut spin = b.command("/bin/sh").args(["-c", "while :; do :; done"]).spawn()?;
    std::thread::sleep(Duration::from_millis(500));
    let limited = cpu_share(b, Duration::from_secs(3));
    b.set_cpu_quota(None, period)?;
    std::thread::sleep(Duration::from_millis(500));
    let free_cpu = cpu_share(b, Duration::from_secs(2));
    spin.kill()?;
    spin.wait()?;
    let (limited, free_cpu) = (limited?, free_cpu?);
    println!("  with the quota: {:.1}% of one CPU; without it: {:.1}%", limited * 100.0, free_cpu * 100.0);
    checks.check(
        (limited - want).abs() <= want * 0.10,
        format!(
            "CPU use under the quota, {:.1}%, is within 10% of the quota ({:.0}%)",
            limited * 100.0,
            want * 100.0
        ),
    );
    checks.check(
        free_cpu >= want * 2.0,
        format!("without the quota the loop took {:.1}%, at least twice the quota", free_cpu * 100.0),
    );

    // Disk: a write limit on the disk under the rootfs, and direct writes
    // (cgroup v1 does not charge buffered writeback to the writer).
    let bps = 4u64 << 20;
    let rootfs = b.config_item_str("lxc.rootfs.path")?;
    let rootfs = rootfs.trim().rsplit(':').next().unwrap_or_default().to_owned();
    println!("disk: {} limited to {} MiB/s of writes on the disk under {rootfs}", b.name(), bps >> 20);
    match b.set_io_limit(&rootfs, &IoLimit::new().write_bps(bps)) {
        Ok(()) => {
            let mib = 8;
            let w0 = b.blkio_stats()?.write_bytes;
            let t0 = Instant::now();
            let (ok, out) = sh(
                b,
                &format!("dd if=/dev/zero of=/root/netlab.io bs=64k count={} oflag=direct 2>&1; rm -f /root/netlab.io", mib * 16),
            )?;
            let secs = t0.elapsed().as_secs_f64();
            let written = b.blkio_stats()?.write_bytes.saturating_sub(w0);
            let got = written as f64 / secs;
            println!(
                "  wrote {mib} MiB in {secs:.2} s; the cgroup counted {written} bytes written: {:.2} MiB/s",
                got / f64::from(1u32 << 20)
            );
            checks
                .check(ok, format!("dd wrote {mib} MiB{}", if ok { String::new() } else { why(out.trim()) }));
            checks.check(written >= mib << 20, format!("the cgroup counted at least {mib} MiB written"));
            checks.check(
                got <= bps as f64 * 1.10,
                format!(
                    "the write rate, {:.2} MiB/s, is at most the limit ({} MiB/s) + 10%",
                    got / f64::from(1u32 << 20),
                    bps >> 20
                ),
            );
            checks.check(
                got >= bps as f64 * 0.5,
                "the write rate is at least half the limit (the writes were throttled, not stalled)",
            );
            b.set_io_limit(&rootfs, &IoLimit::new())?;
        }
        Err(e) => println!("  skipped: no block I/O limit here: {e}"),
    }

    drop(nodes);
    drop(ws);
    drop(bridge);
    checks.finish()
}
