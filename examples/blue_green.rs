//! Containers as the unit of release: blue/green (and canary) deployment of
//! a small HTTP service behind a switch on the host, with no failed request.
//!
//! 1. Bakes an image of the service, version "blue": a busybox container
//!    provisioned with a recipe in `examples/provision.rs`'s format (busybox
//!    `httpd` serving `/version`), exported in LXC's image format and kept
//!    in a local image store.
//! 2. Deploys blue: a base container from the image, two overlay snapshots
//!    of it on a test bridge (no uplink), started.
//! 3. The switch: an nftables DNAT on the host from one address (the VIP) to
//!    the active color's containers, replaced atomically. A client on the
//!    host requests `/version` through it all along, counting failures.
//! 4. Bakes "green", deploys it with a CPU quota, health-checks each of its
//!    containers directly, then moves the traffic: with `--canary PERCENT`,
//!    that share goes to green first; then all of it.
//! 5. Drains blue (waits until no answer comes from it any more), stops and
//!    destroys it; the client goes on until it has made at least 1000
//!    requests, and must have seen no failure.
//!
//! Each color's CPU time and memory come from its containers' cgroups as it
//! goes. Traffic stays on the example's bridge, bounded in count and time.
//!
//! ```sh
//! cargo run --example blue_green                 # straight switch
//! cargo run --example blue_green -- --canary 20  # 20% to green first
//! ```

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{failure, recipe, Checks, Workspace};
use lxc::{
    BackingStore, CloneFlags, CloneOptions, Container, CreateOptions, ExportOptions, Image, ImageKey,
    ImageStore, NetDevice, State,
};

/// The least number of requests the client makes.
const REQUESTS_MIN: usize = 1000;
/// The most it makes, and for how long at most: traffic stays bounded.
const REQUESTS_MAX: usize = 20_000;
const CLIENT_LIMIT: Duration = Duration::from_secs(180);
/// A pause between requests (about 300 a second at most).
const PACE: Duration = Duration::from_millis(3);
/// How long a request may take before it counts as failed. Green runs on
/// half a CPU, and the host may be busy with other work (the test suite
/// runs examples side by side): a slow answer is not a failed one. The
/// slowest answer is printed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The recipe of the service at `version`, in the provision example's format.
fn recipe_for(version: &str) -> toml::Table {
    format!(
        r##"
[[file]]
path = "/www/version"
content = "{version}\n"

[[file]]
path = "/etc/init.d/rcS"
content = "#!/bin/sh\n/bin/mount -a\n/bin/httpd -p 80 -h /www\n"

[[command]]
run = "chmod 755 /etc/init.d/rcS"
"##
    )
    .parse()
    .unwrap_or_else(|e| common::die(&format!("the recipe: {e}")))
}

/// Bakes the image of `version`: a busybox container provisioned with its
/// recipe, exported, imported into `store`.
fn bake(ws: &Workspace, store: &ImageStore, version: &str) -> lxc::Result<Image> {
    let name = format!("bake-{version}");
    println!("baking {version}");
    let c = ws.busybox(&name, None)?;
    common::start(&c)?;
    let changes = recipe::apply(&c, &recipe_for(version))?;
    c.stop()?;
    c.wait(State::Stopped, Duration::from_secs(10))?;
    let mut last = 0;
    let image = c.export_image(
        ws.lxcpath.join(format!("image-{version}")),
        ExportOptions::new().create_message(&format!("the web service, version {version}")).progress(|p| {
            last = p.bytes_done;
        }),
    )?;
    let key = ImageKey::new("busybox", &format!("web-{version}"), &lxc::host_image_arch())?;
    let stored = store.import(&key, &image)?;
    c.destroy()?;
    println!("  image {key} build {} ({changes} recipe changes, {last} bytes of files)", stored.build);
    Ok(stored.image)
}

/// Deploys `color` from `image`: a base container, then one overlay
/// snapshot of it per address, on the bridge, started (with `quota`, a CPU
/// quota per container).
fn deploy(
    ws: &Workspace,
    bridge: &str,
    image: &Image,
    color: &str,
    ips: &[String],
    quota: Option<Duration>,
) -> lxc::Result<Vec<Container>> {
    let base = Container::with_lxcpath(&format!("{color}-base"), &ws.lxcpath)?;
    base.set_config_item("lxc.net.0.type", "empty")?;
    ws.made(base.name());
    base.create(&CreateOptions::image(image).quiet(true))?;
    let snapshot = CloneOptions::new().flags(CloneFlags::SNAPSHOT).backing_store(BackingStore::Overlay);
    let mut out = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let name = format!("{color}-{}", i + 1);
        ws.made(&name);
        let c = base.copy(&name, &snapshot)?;
        c.set_network_device(0, &NetDevice::veth(bridge).name("eth0").ipv4(&format!("{ip}/24")))?;
        common::start(&c)?;
        if let Some(q) = quota {
            c.set_cpu_quota(Some(q), Duration::from_millis(100))?;
        }
        out.push(c);
    }
    Ok(out)
}

/// `GET /version` from `ip`: the body, trimmed. With `from`, from that
/// local port (the client never reuses one: see [`client`]).
fn get_version(ip: &str, from: Option<u16>) -> std::io::Result<String> {
    // Which step failed, in the error.
    let at =
        |step: &'static str| move |e: std::io::Error| std::io::Error::new(e.kind(), format!("{step}: {e}"));
    let addr: SocketAddr = format!("{ip}:80").parse().map_err(std::io::Error::other)?;
    let mut tcp = match from {
        None => TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT).map_err(at("connect"))?,
        Some(port) => {
            use rustix::net::{bind, connect, socket, sockopt, AddressFamily, SocketType};
            let fd = socket(AddressFamily::INET, SocketType::STREAM, None)?;
            // Bounds the connect, as connect_timeout does.
            sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(REQUEST_TIMEOUT))?;
            bind(&fd, &SocketAddr::from(([0, 0, 0, 0], port)))?;
            connect(&fd, &addr).map_err(|e| at("connect")(e.into()))?;
            TcpStream::from(fd)
        }
    };
    tcp.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    tcp.write_all(b"GET /version HTTP/1.0\r\n\r\n").map_err(at("send"))?;
    let mut resp = String::new();
    tcp.read_to_string(&mut resp).map_err(at("read the answer"))?;
    let status = resp.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        return Err(std::io::Error::other(format!("status {status:?}")));
    }
    Ok(resp.split("\r\n\r\n").nth(1).unwrap_or_default().trim().to_owned())
}

/// Waits until `ip` answers `want` (at most 10 s).
fn healthy(ip: &str, want: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if get_version(ip, None).is_ok_and(|v| v == want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The switch: a DNAT from the VIP to the active containers, in a table of
/// its own on the host, removed on drop.
struct Switch {
    table: String,
    vip: String,
}

impl Switch {
    fn new(vip: &str) -> lxc::Result<Switch> {
        let s = Switch { table: format!("lxrs_bluegreen_{}", std::process::id()), vip: vip.to_owned() };
        s.nft(&format!(
            "table ip {t} {{\n  chain switch {{\n    type nat hook output priority -100; policy accept;\n  }}\n}}\n",
            t = s.table
        ))?;
        Ok(s)
    }

    /// Sends the traffic to `targets` (address, share in percent; the
    /// shares add up to 100), in one transaction.
    fn route(&self, targets: &[(&str, u32)]) -> lxc::Result<()> {
        let mut from = 0;
        let mut map = Vec::new();
        for (ip, share) in targets.iter().filter(|(_, s)| *s > 0) {
            map.push(format!("{from}-{} : {ip}", from + share - 1));
            from += share;
        }
        if from != 100 {
            return Err(failure(format!("the shares add up to {from}, not 100")));
        }
        self.nft(&format!(
            "flush chain ip {t} switch\nadd rule ip {t} switch ip daddr {vip} tcp dport 80 dnat to numgen random mod 100 map {{ {m} }}\n",
            t = self.table,
            vip = self.vip,
            m = map.join(", ")
        ))
    }

    fn nft(&self, script: &str) -> lxc::Result<()> {
        let mut child = std::process::Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .map_err(|source| lxc::Error::Io { op: "run nft", source })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .map_err(|source| lxc::Error::Io { op: "write to nft", source })?;
        }
        let st = child.wait().map_err(|source| lxc::Error::Io { op: "wait for nft", source })?;
        if st.success() {
            Ok(())
        } else {
            Err(failure(format!("nft refused:\n{script}")))
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        println!("removing the switch (nft table {})", self.table);
        let _ = std::process::Command::new("nft").args(["delete", "table", "ip", &self.table]).status();
    }
}

/// What the client saw.
#[derive(Default)]
struct Tally {
    total: usize,
    failed: usize,
    by_version: BTreeMap<String, usize>,
    /// Each answer in order (the version, or "FAILED").
    log: Vec<String>,
    first_errors: Vec<String>,
    /// The longest a request took, answered or not.
    slowest: Duration,
}

impl Tally {
    /// The answers from request `from` on.
    fn since(&self, from: usize) -> &[String] {
        &self.log[from.min(self.log.len())..]
    }
}

/// The client: requests through the VIP until told to stop and it has made
/// `REQUESTS_MIN`, or until its bounds. Each request from a local port of
/// its own, from `first_port` on: connection tracking keeps a closed
/// connection's address translation for minutes (TIME_WAIT), and a new
/// connection that reused its ports would reopen it and go to the old
/// color, switch or not (or to a backend of an earlier run of this
/// example that had the same VIP: the run's random subnet and first port
/// make that unlikely).
fn client(vip: String, first_port: u16, stop: Arc<AtomicBool>, tally: Arc<Mutex<Tally>>) {
    let t0 = Instant::now();
    let last_port = first_port + REQUESTS_MAX as u16;
    let mut port = first_port - 1;
    loop {
        let n = tally.lock().unwrap_or_else(|e| e.into_inner()).total;
        let done = stop.load(Ordering::SeqCst) && n >= REQUESTS_MIN;
        if done || n >= REQUESTS_MAX || t0.elapsed() > CLIENT_LIMIT {
            return;
        }
        // The next free port (another program may hold some).
        let started = Instant::now();
        let r = loop {
            // `REQUESTS_MAX` ports and a few more: none is reused.
            port = if port >= last_port { first_port } else { port + 1 };
            match get_version(&vip, Some(port)) {
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                r => break r,
            }
        };
        let took = started.elapsed();
        let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
        t.total += 1;
        t.slowest = t.slowest.max(took);
        match r {
            Ok(v) => {
                *t.by_version.entry(v.clone()).or_default() += 1;
                t.log.push(v);
            }
            Err(e) => {
                t.failed += 1;
                t.log.push("FAILED".into());
                if t.first_errors.len() < 5 {
                    t.first_errors.push(format!("{e} (after {} ms)", took.as_millis()));
                }
            }
        }
        drop(t);
        std::thread::sleep(PACE);
    }
}

/// Waits until the client has made `n` more requests than `from` (or ends).
fn wait_requests(tally: &Mutex<Tally>, from: usize, n: usize) -> usize {
    let deadline = Instant::now() + CLIENT_LIMIT;
    loop {
        let total = tally.lock().unwrap_or_else(|e| e.into_inner()).total;
        if total >= from + n || Instant::now() > deadline {
            return total;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The CPU time and memory of a color, summed over its containers, from
/// their cgroups; printed.
fn account(color: &str, cs: &[Container], when: &str) {
    let cpu: Duration = cs.iter().filter_map(|c| c.cpu_time().ok()).sum();
    let mem: u64 = cs.iter().filter_map(|c| c.memory_usage().ok()).sum();
    println!("  {color:<5} {when}: CPU {:.3} s, memory {:.1} MiB", cpu.as_secs_f64(), mem as f64 / 1048576.0);
}

fn main() -> lxc::Result<()> {
    let args = common::Args::parse("blue_green [--canary PERCENT] [--lxcpath PATH] [--keep]", &[]);
    let canary: Option<u32> = args.get("--canary", "-c").map(|p| match p.parse() {
        Ok(p) if (1..100).contains(&p) => p,
        _ => common::die("--canary takes a percentage from 1 to 99"),
    });
    // A subnet of this run's own (169.254.20 to .219, random: runs at the
    // same time, or one after the other within conntrack's TIME_WAIT, do
    // not share addresses or the VIP), and the client's first local port.
    let seed = {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish()
    };
    let net = format!("169.254.{}", 20 + seed % 200);
    let first_port = 20000 + ((seed >> 8) % 20000) as u16;
    let vip = format!("{net}.100");
    let bridge =
        common::Bridge::new(&format!("lxbg{}", std::process::id() % 100000), Some(&format!("{net}.1/24")));
    let ws = Workspace::new(&args, "blue_green");
    let store = ImageStore::open(ws.lxcpath.join("images"))?;
    let mut checks = Checks::default();

    let blue_image = bake(&ws, &store, "blue")?;
    let blue_ips = [format!("{net}.11"), format!("{net}.12")];
    let blue = deploy(&ws, &bridge.name, &blue_image, "blue", &blue_ips, None)?;
    for ip in &blue_ips {
        checks.check(healthy(ip, "blue"), format!("blue at {ip} answers \"blue\""));
    }
    let switch = Switch::new(&vip)?;
    switch.route(&[(&blue_ips[0], 50), (&blue_ips[1], 50)])?;
    println!("switch: {vip}:80 -> blue ({} and {})", blue_ips[0], blue_ips[1]);

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let worker = {
        let (vip, stop, tally) = (vip.clone(), Arc::clone(&stop), Arc::clone(&tally));
        std::thread::spawn(move || client(vip, first_port, stop, tally))
    };
    // Whatever happens below, the client stops.
    struct StopClient(Arc<AtomicBool>);
    impl Drop for StopClient {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let _stop_client = StopClient(Arc::clone(&stop));
    wait_requests(&tally, 0, 100);
    account("blue", &blue, "serving all traffic");

    let green_image = bake(&ws, &store, "green")?;
    let green_ips = [format!("{net}.21"), format!("{net}.22")];
    // Half a CPU each while it proves itself.
    let green =
        deploy(&ws, &bridge.name, &green_image, "green", &green_ips, Some(Duration::from_millis(50)))?;
    for (c, ip) in green.iter().zip(&green_ips) {
        let quota = match lxc::cgroup_layout("cpu") {
            lxc::CgroupLayout::V1 => c.cgroup_item("cpu.cfs_quota_us").unwrap_or_default(),
            _ => c.cgroup_item("cpu.max").unwrap_or_default(),
        };
        checks.check(
            quota.trim() == "50000" || quota.trim() == "50000 100000",
            format!("{} runs with a CPU quota of half a CPU ({})", c.name(), quota.trim()),
        );
        checks.check(healthy(ip, "green"), format!("green at {ip} answers \"green\" (health check)"));
    }
    account("green", &green, "deployed, idle");

    if let Some(p) = canary {
        let b = 100 - p;
        switch.route(&[
            (&blue_ips[0], b / 2),
            (&blue_ips[1], b - b / 2),
            (&green_ips[0], p / 2),
            (&green_ips[1], p - p / 2),
        ])?;
        println!("switch: canary, {p}% to green");
        let from = tally.lock().unwrap_or_else(|e| e.into_inner()).total;
        // The first answers may still be in flight to the old route.
        let from = wait_requests(&tally, from, 20);
        let to = wait_requests(&tally, from, 400);
        let (greens, seen) = {
            let t = tally.lock().unwrap_or_else(|e| e.into_inner());
            let window = &t.log[from..to.min(t.log.len())];
            (window.iter().filter(|v| *v == "green").count(), window.len())
        };
        let share = 100.0 * greens as f64 / seen.max(1) as f64;
        println!("  canary: {greens} of {seen} answers from green ({share:.1}%)");
        // 400 draws at p: a standard deviation of at most 2.5 points.
        checks.check(
            (share - f64::from(p)).abs() <= 10.0,
            format!("green got {share:.1}% of the traffic, about the {p}% asked"),
        );
        account("blue", &blue, "during the canary");
        account("green", &green, "during the canary");
    }

    switch.route(&[(&green_ips[0], 50), (&green_ips[1], 50)])?;
    println!("switch: {vip}:80 -> green ({} and {})", green_ips[0], green_ips[1]);
    // Drained: the last 100 answers all from green.
    let deadline = Instant::now() + Duration::from_secs(30);
    let drained = loop {
        let t = tally.lock().unwrap_or_else(|e| e.into_inner());
        let n = t.log.len();
        if n >= 100 && t.log[n - 100..].iter().all(|v| v == "green") {
            break true;
        }
        drop(t);
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    checks.check(drained, "blue drained: the last 100 answers came from green");
    account("blue", &blue, "drained");
    account("green", &green, "serving all traffic");
    for c in &blue {
        c.stop()?;
        c.wait(State::Stopped, Duration::from_secs(10))?;
        c.destroy()?;
    }
    Container::with_lxcpath("blue-base", &ws.lxcpath)?.destroy()?;
    println!("blue stopped and destroyed");
    let after = tally.lock().unwrap_or_else(|e| e.into_inner()).total;
    wait_requests(&tally, after, 100);
    stop.store(true, Ordering::SeqCst);
    worker.join().map_err(|_| failure("the client panicked"))?;
    account("green", &green, "after blue is gone");

    let t = tally.lock().unwrap_or_else(|e| e.into_inner());
    let by: Vec<String> = t.by_version.iter().map(|(v, n)| format!("{v} {n}")).collect();
    println!(
        "client: {} requests, {} failed ({}), slowest {} ms",
        t.total,
        t.failed,
        by.join(", "),
        t.slowest.as_millis()
    );
    for e in &t.first_errors {
        println!("  error: {e}");
    }
    checks.check(
        t.total >= REQUESTS_MIN,
        format!("the client made at least {REQUESTS_MIN} requests ({})", t.total),
    );
    checks.check(t.failed == 0, format!("no request failed ({} failed)", t.failed));
    checks.check(
        t.since(after).iter().all(|v| v == "green"),
        format!("after blue was destroyed, every answer came from green ({})", t.since(after).len()),
    );
    checks.check(
        t.by_version.contains_key("blue") && t.by_version.contains_key("green"),
        "both versions answered",
    );
    drop(t);
    drop(switch);
    drop(green);
    drop(ws);
    drop(bridge);
    checks.finish()
}
