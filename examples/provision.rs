//! What chef-lxc does, with no tool installed inside: create a container,
//! then apply a declarative recipe (files to write, commands to run, a
//! service to start, cgroup limits) through one attach session,
//! idempotently: the second run changes nothing and says so. Then the
//! service answers on the container's address from the host, over a
//! bridge the example makes (no uplink).
//!
//! ```sh
//! cargo run --example provision                               # examples/provision.toml, applied twice
//! cargo run --example provision -- --recipe my.toml --lxcpath /tmp/lxc --keep
//! ```

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::recipe::{apply, text};
use lxc::{Container, NetDevice};
use toml::{Table, Value};

fn main() -> lxc::Result<()> {
    let args =
        common::Args::parse("provision [--recipe FILE] [--once] [--lxcpath PATH] [--keep]", &["--once"]);
    let path = args.get("--recipe", "-r").map_or_else(
        || concat!(env!("CARGO_MANIFEST_DIR"), "/examples/provision.toml").to_owned(),
        str::to_owned,
    );
    let recipe: Table = std::fs::read_to_string(&path)
        .map_err(|source| lxc::Error::Io { op: "read the recipe", source })?
        .parse()
        .unwrap_or_else(|e| common::die(&format!("{path}: {e}")));
    let ct = recipe.get("container").and_then(Value::as_table).cloned().unwrap_or_default();
    let name = text(&ct, "name").unwrap_or("web").to_owned();
    let address = text(&ct, "address").unwrap_or("169.254.78.2/24").to_owned();
    let ip = address.split('/').next().unwrap_or_default().to_owned();
    let host_ip = {
        let mut o: Vec<&str> = ip.split('.').collect();
        o.pop();
        format!("{}.1/24", o.join("."))
    };

    let bridge = common::Bridge::new(&format!("lxprov{}", std::process::id() % 100000), Some(&host_ip));
    let ws = common::Workspace::new(&args, "provision");
    let existing = Container::with_lxcpath(&name, &ws.lxcpath)?;
    let fresh = !existing.is_defined();
    let c = if existing.is_defined() {
        ws.made(&name);
        // The bridge is new for every run: point the container at it.
        existing.set_network_device(0, &NetDevice::veth(&bridge.name).name("eth0").ipv4(&address))?;
        existing
    } else {
        let c = ws.busybox(&name, Some(&NetDevice::veth(&bridge.name).name("eth0").ipv4(&address)))?;
        common::no_dhcp(&ws.lxcpath, &name);
        c
    };
    if !c.is_running() {
        common::start(&c)?;
    }
    c.wait_ip_addresses(Some("eth0"), None, Duration::from_secs(10))?;

    let mut checks = common::Checks::default();
    println!("applying {path} to {name}");
    let first = apply(&c, &recipe)?;
    println!("{first} change(s)");
    if fresh {
        let items = ["file", "command"]
            .iter()
            .map(|k| recipe.get(*k).and_then(Value::as_array).map_or(0, Vec::len))
            .sum::<usize>()
            + recipe
                .get("limits")
                .and_then(Value::as_table)
                .map_or(0, |l| ["memory", "pids"].iter().filter(|k| l.contains_key(**k)).count())
            + usize::from(recipe.contains_key("service"));
        checks.check(first == items, format!("a new container needed all {items} items of the recipe"));
    }
    if !args.has("--once") {
        println!("applying it again");
        let second = apply(&c, &recipe)?;
        if second == 0 {
            println!("nothing to do: the container already matches the recipe");
        }
        checks.check(second == 0, format!("the second run changed nothing ({second} change(s))"));
    }

    let addr: SocketAddr = format!("{ip}:80").parse().unwrap_or_else(|_| common::die("bad address"));
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|source| lxc::Error::Io { op: "connect", source })?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok();
    tcp.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
        .map_err(|source| lxc::Error::Io { op: "send", source })?;
    let mut resp = String::new();
    let _ = tcp.read_to_string(&mut resp);
    let status = resp.lines().next().unwrap_or_default().to_owned();
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default().trim().to_owned();
    println!("GET http://{ip}/ from the host: {status}: {body}");
    drop(tcp);
    let index = recipe
        .get("file")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_table)
        .find(|f| text(f, "path").is_some_and(|p| p.ends_with("/index.html")))
        .and_then(|f| text(f, "content"));
    checks.check(status.contains(" 200 "), "the service answers the host with 200");
    if let Some(index) = index {
        checks.check(body == index.trim(), "it serves the recipe's index.html");
    }
    drop(ws);
    drop(bridge);
    checks.finish()
}
