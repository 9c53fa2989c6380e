//! Blue/green and canary start here: clone a base container into N copies,
//! snapshot one, break it, and restore it from the snapshot.
//!
//! ```sh
//! cargo run --example clone_snapshot -- --copies 3
//! ```

mod common;

use lxc::CloneOptions;

fn main() -> lxc::Result<()> {
    let args = common::Args::parse("clone_snapshot [--copies N] [--lxcpath PATH] [--keep]", &[]);
    let n: usize =
        args.get("--copies", "-N").map_or(3, |v| v.parse().unwrap_or_else(|_| common::die("--copies N")));
    let ws = common::Workspace::new(&args, "clone");
    let base = ws.busybox("base", None)?;

    let mut copies = Vec::new();
    for i in 1..=n {
        let name = format!("web{i}");
        println!("cloning base -> {name}");
        ws.made(&name);
        copies.push(base.copy(&name, &CloneOptions::new())?);
    }
    for c in &copies {
        common::start(c)?;
        let out = c.command("/bin/hostname").output()?;
        println!("  {} says hostname {}", c.name(), String::from_utf8_lossy(&out.stdout).trim());
        c.stop()?;
    }

    let canary = &copies[0];
    let marker = ws.lxcpath.join(canary.name()).join("rootfs/etc/release");
    std::fs::write(&marker, "release 1\n").map_err(|source| lxc::Error::Io { op: "write", source })?;
    let snap = canary.snapshot(None)?;
    println!(
        "snapshot {snap} of {}: {:?}",
        canary.name(),
        canary.snapshot_list()?.iter().map(|s| &s.name).collect::<Vec<_>>()
    );

    println!("breaking {}: /etc/release rewritten, /bin/busybox removed", canary.name());
    std::fs::write(&marker, "release 2 (broken)\n")
        .map_err(|source| lxc::Error::Io { op: "write", source })?;
    let _ = std::fs::remove_file(ws.lxcpath.join(canary.name()).join("rootfs/bin/busybox"));
    let busybox = ws.lxcpath.join(canary.name()).join("rootfs/bin/busybox");
    println!("  /bin/busybox present: {}", busybox.exists());

    println!("restoring {} from {snap}", canary.name());
    canary.snapshot_restore(&snap, None)?;
    let release = std::fs::read_to_string(&marker).unwrap_or_default();
    println!("  /etc/release is {:?}, /bin/busybox present: {}", release.trim(), busybox.exists());
    common::start(canary)?;
    println!("  {} is {} again", canary.name(), canary.state()?);
    canary.stop()?;
    if release != "release 1\n" {
        return Err(common::failure("the restore did not bring the old content back"));
    }
    Ok(())
}
