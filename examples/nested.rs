//! Nested containers for grouping: an outer container runs, inside itself,
//! this same program built on the crate, which creates, starts, uses,
//! stops and destroys inner containers, all within the outer one's
//! namespaces and cgroup.
//!
//! ```sh
//! cargo run --example nested -- --inner-count 2
//! ```
//! The outer container gets `lxc.mount.auto = proc:rw sys:rw cgroup:rw` (so
//! liblxc inside can make cgroups), the directory of this binary bound at
//! `/opt/lxc-rs`, and a copy of the busybox rootfs per inner container; the
//! host's `/lib` and `/usr/lib` (liblxc included) are bound read-only by the
//! busybox template already.

mod common;

use std::path::Path;
use std::time::Duration;

use lxc::{Container, CreateOptions, State};

const INNER_LXCPATH: &str = "/var/lib/lxc";

/// Inside the outer container: create, start, use, stop and destroy the
/// inner containers `inner1`..`innerN` whose rootfs the host prepared.
fn inner(count: usize) -> lxc::Result<()> {
    for d in ["/run/lxc", INNER_LXCPATH] {
        std::fs::create_dir_all(d).map_err(|source| lxc::Error::Io { op: "mkdir", source })?;
    }
    let log = "/tmp/nested-inner.log";
    // SAFETY: the inner program has a single thread here; nothing else
    // reaches liblxc while the log is set up.
    unsafe { lxc::Log::new().file(log).level(lxc::LogLevel::Info).quiet(true).init() }?;
    let mut made = Vec::new();
    let mut checks = common::Checks::default();
    let result = (|| -> lxc::Result<()> {
        for i in 1..=count {
            let name = format!("inner{i}");
            let c = Container::with_lxcpath(&name, INNER_LXCPATH)?;
            for (k, v) in [
                ("lxc.net.0.type", "empty".to_owned()),
                ("lxc.rootfs.path", format!("dir:/srv/{name}")),
                ("lxc.uts.name", name.clone()),
                ("lxc.signal.halt", "SIGUSR1".into()),
                ("lxc.autodev", "1".into()),
                ("lxc.tty.max", "0".into()),
                ("lxc.console.path", "none".into()),
                ("lxc.mount.auto", "proc:mixed sys:ro cgroup:mixed".into()),
                ("lxc.mount.entry", "/lib lib none ro,bind 0 0".into()),
                ("lxc.mount.entry", "/usr/lib usr/lib none ro,bind 0 0".into()),
                ("lxc.mount.entry", "/lib64 lib64 none ro,bind,optional 0 0".into()),
            ] {
                c.set_config_item(k, &v)?;
            }
            c.create(&CreateOptions::new())?;
            made.push(name.clone());
            c.start()?;
            c.wait(State::Running, Duration::from_secs(10))?;
            let out =
                c.command("/bin/sh").args(["-c", "echo $(hostname) pid1=$(cat /proc/1/comm)"]).output()?;
            let state = c.state()?;
            let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            println!("  [inside outer] {name} is {state}: {said}");
            checks.check(
                state == State::Running && said == format!("{name} pid1=init"),
                format!("[inside outer] {name} runs its own init, with its own hostname"),
            );
        }
        let running = lxc::list_active_containers(Some(Path::new(INNER_LXCPATH)))?;
        println!("  [inside outer] running: {running:?}");
        checks.check(running == made, "[inside outer] exactly the inner containers made run");
        Ok(())
    })();
    for name in made.iter().rev() {
        let c = Container::with_lxcpath(name, INNER_LXCPATH)?;
        if c.is_running() {
            c.stop()?;
            c.wait(State::Stopped, Duration::from_secs(10))?;
        }
        // The rootfs was prepared by the host; only the config goes.
        c.clear_config_item("lxc.rootfs.path").ok();
        let _ = std::fs::remove_dir_all(Path::new(INNER_LXCPATH).join(name));
        println!("  [inside outer] {name} stopped and removed");
        checks.check(!c.is_running() && !c.is_defined(), format!("[inside outer] {name} is gone"));
    }
    if result.is_err() {
        for l in std::fs::read_to_string(log).unwrap_or_default().lines().filter(|l| l.contains("ERROR")) {
            eprintln!("  [liblxc inside outer] {l}");
        }
    }
    result.and(checks.finish())
}

fn main() -> lxc::Result<()> {
    let args = common::Args::parse("nested [--inner-count N] [--lxcpath PATH] [--keep]", &[]);
    if let Some(n) = args.get("--inner", "") {
        let n: usize = n.parse().unwrap_or_else(|_| common::die("--inner N"));
        return inner(n);
    }
    let count: usize = args
        .get("--inner-count", "-N")
        .map_or(2, |v| v.parse().unwrap_or_else(|_| common::die("--inner-count N")));
    let me = std::env::current_exe().map_err(|source| lxc::Error::Io { op: "current_exe", source })?;
    let bin_dir = me.parent().unwrap_or(Path::new("/")).to_owned();
    let bin_name = me.file_name().and_then(|n| n.to_str()).unwrap_or("nested").to_owned();

    let ws = common::Workspace::new(&args, "nested");
    let outer = ws.busybox("outer", None)?;
    let rootfs = ws.lxcpath.join("outer/rootfs");
    outer.clear_config_item("lxc.mount.auto")?;
    outer.set_config_item("lxc.mount.auto", "proc:rw sys:rw cgroup:rw")?;
    outer.set_config_item(
        "lxc.mount.entry",
        &format!("{} opt/lxc-rs none ro,bind,create=dir 0 0", bin_dir.display()),
    )?;
    outer.save_config(None)?;
    let mut staged = Vec::new();
    for i in 1..=count {
        let tmp = ws.lxcpath.join(format!("inner{i}-rootfs"));
        let ok = std::process::Command::new("cp")
            .arg("-a")
            .arg(&rootfs)
            .arg(&tmp)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(common::failure("copying the busybox rootfs failed"));
        }
        staged.push((tmp, rootfs.join(format!("srv/inner{i}"))));
    }
    std::fs::create_dir_all(rootfs.join("srv")).map_err(|source| lxc::Error::Io { op: "mkdir", source })?;
    for (tmp, dst) in staged {
        std::fs::rename(tmp, dst).map_err(|source| lxc::Error::Io { op: "move an inner rootfs", source })?;
    }
    common::start(&outer)?;
    println!("outer is {}; running {bin_name} --inner {count} inside it", outer.state()?);
    let out = outer
        .command(format!("/opt/lxc-rs/{bin_name}"))
        .args(["--inner", &count.to_string()])
        .env("RUST_BACKTRACE", "1")
        .output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(common::failure(format!(
            "the program inside the outer container failed: {}",
            out.status
        )));
    }
    let state = outer.state()?;
    println!("outer still {state}; inner containers all gone");
    let mut checks = common::Checks::default();
    checks.check(state == State::Running, "the outer container still runs");
    let inner_dir = rootfs.join(INNER_LXCPATH.trim_start_matches('/'));
    let left: Vec<_> = std::fs::read_dir(&inner_dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    checks.check(
        left.is_empty(),
        format!("no inner container is left in the outer's {INNER_LXCPATH} ({left:?})"),
    );
    checks.finish()
}
