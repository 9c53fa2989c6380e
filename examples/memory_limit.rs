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
    println!("{key} = {}", c.cgroup_item(key)?);
    c.set_cgroup_item(key, "10000000")?;
    println!("set_cgroup_item({key}, 10000000) -> {key} = {}", c.cgroup_item(key)?);

    if !v2 && lxc::runtime_version() >= lxc::Version::new(7, 0, 0) {
        // The running limit above is all there is: liblxc 7.0 dropped the
        // cgroup v1 configuration keys.
        let err = c.set_config_item(conf_key, "10000000").map(|_| ()).unwrap_err();
        println!("liblxc {} cannot save a cgroup v1 limit in the configuration: {err}", lxc::version());
        return Ok(());
    }
    c.set_config_item(conf_key, "10000000")?;
    c.save_config(None)?;
    println!("saved {conf_key} = 10000000 in {}", c.config_file_name()?.display());

    println!("restarting {}", c.name());
    c.stop()?;
    c.wait(State::Stopped, Duration::from_secs(10))?;
    common::start(&c)?;
    let after = c.cgroup_item(key)?;
    println!("after the restart {key} = {after}");
    let kept = after.parse::<u64>().is_ok_and(|v| v <= 10_000_000 && v > 10_000_000 - 4096);
    println!(
        "{}",
        if kept { "the limit survived the restart" } else { "the limit did NOT survive the restart" }
    );
    if !kept {
        return Err(common::failure("the limit did not survive the restart"));
    }
    Ok(())
}
