//! A test bed: three containers on a bridge the example makes (no uplink,
//! no NAT, no route out). It shows the round trip and a bounded transfer,
//! shapes one container's bandwidth with `tc`, cuts a partition with
//! nftables inside one container's network namespace (attach entering only
//! that namespace, so the host's `tc` and `nft` run there), heals it, and
//! removes everything. All traffic stays between the example's containers;
//! every ping and transfer is bounded in count and time.
//!
//! ```sh
//! cargo run --example netlab
//! ```

mod common;

use std::time::Instant;

use lxc::{Container, Namespaces, NetDevice};

const NET: &str = "169.254.77";

fn sh(c: &Container, script: &str) -> lxc::Result<(bool, String)> {
    let out = c.command("/bin/sh").args(["-c", script]).output()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// Runs a host program in the container's network namespace only.
fn in_netns(c: &Container, program: &str, args: &[&str]) -> lxc::Result<bool> {
    let out = c.command(program).args(args.iter().copied()).namespaces(Namespaces::NET).output()?;
    if !out.status.success() {
        eprintln!("  {program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out.status.success())
}

fn ping(from: &Container, to_ip: &str) -> lxc::Result<bool> {
    let (ok, out) = sh(from, &format!("ping -c 2 -W 1 {to_ip}"))?;
    let rtt = out.lines().find(|l| l.contains("min/avg/max")).unwrap_or("no reply");
    println!("  {} -> {to_ip}: {}", from.name(), rtt.trim());
    Ok(ok)
}

/// Sends `mib` MiB from `from` to `to` with busybox nc; the throughput.
fn transfer(from: &Container, to: &Container, to_ip: &str, mib: u32) -> lxc::Result<f64> {
    let mut server = to.command("/bin/sh").args(["-c", "timeout 20 nc -l -p 5001 > /dev/null"]).spawn()?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    let t0 = Instant::now();
    let (ok, out) = sh(
        from,
        &format!("dd if=/dev/zero bs=64k count={} 2>/dev/null | timeout 20 nc -w 2 {to_ip} 5001", mib * 16),
    )?;
    // The receiver ends when the last byte arrived; the sender may end
    // earlier, with data still in its socket buffer.
    let _ = server.wait();
    let secs = t0.elapsed().as_secs_f64();
    if !ok {
        eprintln!("  transfer failed: {out}");
    }
    Ok(f64::from(mib) * 8.0 / secs)
}

fn main() -> lxc::Result<()> {
    let args = common::Args::parse("netlab [--lxcpath PATH] [--keep]", &[]);
    let ws = common::Workspace::new(&args, "netlab");
    let bridge = common::Bridge::new(&format!("lxlab{}", std::process::id() % 100000), None);
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
        println!(
            "{} has {:?}",
            n.name(),
            n.wait_ip_addresses(Some("eth0"), None, std::time::Duration::from_secs(10))?
        );
        let _ = ip;
    }

    println!("round trips:");
    ping(a, b_ip)?;
    ping(a, c_ip)?;

    println!("transfer of 4 MiB {} -> {}: {:.0} Mbit/s", a.name(), b.name(), transfer(a, b, b_ip, 4)?);

    println!(
        "shaping {}'s egress to 8 Mbit/s (tbf, run by the host's tc in its network namespace)",
        a.name()
    );
    in_netns(
        a,
        "tc",
        &[
            "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "8mbit", "burst", "32kbit", "latency",
            "400ms",
        ],
    )?;
    println!("transfer of 2 MiB {} -> {}: {:.1} Mbit/s", a.name(), b.name(), transfer(a, b, b_ip, 2)?);
    let netem = in_netns(a, "tc", &["qdisc", "replace", "dev", "eth0", "root", "netem", "delay", "50ms"])
        .unwrap_or(false);
    if netem {
        println!("added 50 ms of delay with netem");
        ping(a, b_ip)?;
    } else {
        println!("this kernel has no netem; no delay added");
    }
    in_netns(a, "tc", &["qdisc", "del", "dev", "eth0", "root"])?;
    println!("shaping removed");

    println!(
        "partition: {} drops everything from {} (nftables in its network namespace)",
        c.name(),
        a.name()
    );
    let rule = format!("add table inet netlab\nadd chain inet netlab netlab_in {{ type filter hook input priority 0; policy accept; }}\nadd rule inet netlab netlab_in ip saddr {a_ip} drop\n");
    let rules = ws.lxcpath.join("partition.nft");
    std::fs::write(&rules, rule).map_err(|source| lxc::Error::Io { op: "write rules", source })?;
    // (`in` is a keyword of nftables before 1.0: not a chain name.)
    if !in_netns(c, "nft", &["-f", rules.to_str().unwrap_or_default()])? {
        return Err(lxc::Error::Io {
            op: "nft -f (the partition's rules)",
            source: std::io::Error::other("nft refused the rules"),
        });
    }
    let cut = !ping(a, c_ip)?;
    let other = ping(b, c_ip)?;
    println!(
        "  {} -> {}: {}, {} -> {}: {}",
        a.name(),
        c.name(),
        if cut { "cut" } else { "STILL UP" },
        b.name(),
        c.name(),
        if other { "up" } else { "DOWN" }
    );
    in_netns(c, "nft", &["delete", "table", "inet", "netlab"])?;
    let healed = ping(a, c_ip)?;
    println!("healed: {} -> {} {}", a.name(), c.name(), if healed { "up again" } else { "STILL DOWN" });
    if !(cut && other && healed) {
        return Err(common::failure("the partition did not behave as expected"));
    }
    drop(nodes);
    drop(ws);
    drop(bridge);
    Ok(())
}
