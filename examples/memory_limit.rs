//! The ruby-lxc example in Rust: read a running container's
//! `memory.limit_in_bytes`, set it to 10000000, save the limit in the
//! configuration, and show that it survives a restart.
//!
//! ```sh
//! cargo run --example memory_limit
//! cargo run --example memory_limit -- --lxcpath /tmp/lxc --name web --keep
//! ```

mod common;

use std::time::Duration;

use lxc::State;

fn main() -> lxc::Result<()> {
    let args = common::Args::parse("memory_limit [--lxcpath PATH] [--name NAME] [--keep]", &[]);
    let ws = common::Workspace::new(&args, "memory");
    let name = args.get("--name", "-n").unwrap_or("memlimit");
    let c = ws.busybox(name, None)?;
    common::start(&c)?;

    // cgroup v1 names it memory.limit_in_bytes, cgroup v2 memory.max.
    let v2 = lxc::cgroup_layout("memory") == lxc::CgroupLayout::V2;
    let (key, conf_key) = if v2 {
        ("memory.max", "lxc.cgroup2.memory.max")
    } else {
        ("memory.limit_in_bytes", "lxc.cgroup.memory.limit_in_bytes")
    };
    let mut checks = common::Checks::default();
    // The kernel rounds a limit down to a page.
    let holds = |v: &str| v.parse::<u64>().is_ok_and(|v| v <= 10_000_000 && v > 10_000_000 - 4096);
    println!("{key} = {}", c.cgroup_item(key)?);
    c.set_cgroup_item(key, "10000000")?;
    let now = c.cgroup_item(key)?;
    println!("set_cgroup_item({key}, 10000000) -> {key} = {now}");
    checks.check(holds(&now), "the running container's limit is 10000000, rounded down to a page");

    if !v2 && lxc::runtime_version() >= lxc::Version::new(7, 0, 0) {
        // The running limit above is all there is: liblxc 7.0 dropped the
        // cgroup v1 configuration keys.
        let r = c.set_config_item(conf_key, "10000000");
        let said = match &r {
            Err(e) => e.to_string(),
            Ok(()) => "it was accepted".to_owned(),
        };
        println!("liblxc {} cannot save a cgroup v1 limit in the configuration: {said}", lxc::version());
        checks.check(
            matches!(r, Err(lxc::Error::Unsupported { .. })),
            format!("{conf_key} is refused with a typed error (Unsupported)"),
        );
        return checks.finish();
    }
    c.set_config_item(conf_key, "10000000")?;
    c.save_config(None)?;
    let file = c.config_file_name()?;
    println!("saved {conf_key} = 10000000 in {}", file.display());
    let saved = std::fs::read_to_string(&file).unwrap_or_default();
    checks.check(
        saved.lines().any(|l| l.trim() == format!("{conf_key} = 10000000")),
        format!("the configuration file holds {conf_key} = 10000000"),
    );
    let before = c.init_pid();

    println!("restarting {}", c.name());
    c.stop()?;
    c.wait(State::Stopped, Duration::from_secs(10))?;
    common::start(&c)?;
    let after = c.cgroup_item(key)?;
    println!("after the restart {key} = {after}");
    checks.check(
        c.init_pid().is_some() && c.init_pid() != before,
        "the container really restarted (a new init)",
    );
    checks.check(holds(&after), "the limit survived the restart");
    checks.finish()
}
