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

    let mut checks = common::Checks::default();
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
        let hostname = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        println!("  {} says hostname {hostname}", c.name());
        checks.check(hostname == c.name(), format!("the copy {} has its own name as hostname", c.name()));
        c.stop()?;
    }

    let canary = &copies[0];
    let marker = ws.lxcpath.join(canary.name()).join("rootfs/etc/release");
    std::fs::write(&marker, "release 1\n").map_err(|source| lxc::Error::Io { op: "write", source })?;
    let base_release = ws.lxcpath.join("base/rootfs/etc/release");
    checks.check(!base_release.exists(), format!("writing into {} leaves base untouched", canary.name()));
    let snap = canary.snapshot(None)?;
    let listed: Vec<String> = canary.snapshot_list()?.into_iter().map(|s| s.name).collect();
    println!("snapshot {snap} of {}: {listed:?}", canary.name());
    checks.check(listed == [snap.clone()], format!("{snap} is the one snapshot listed"));

    println!("breaking {}: /etc/release rewritten, /bin/busybox removed", canary.name());
    std::fs::write(&marker, "release 2 (broken)\n")
        .map_err(|source| lxc::Error::Io { op: "write", source })?;
    let _ = std::fs::remove_file(ws.lxcpath.join(canary.name()).join("rootfs/bin/busybox"));
    let busybox = ws.lxcpath.join(canary.name()).join("rootfs/bin/busybox");
    println!("  /bin/busybox present: {}", busybox.exists());
    checks.check(!busybox.exists(), format!("{} is broken", canary.name()));

    println!("restoring {} from {snap}", canary.name());
    canary.snapshot_restore(&snap, None)?;
    let release = std::fs::read_to_string(&marker).unwrap_or_default();
    println!("  /etc/release is {:?}, /bin/busybox present: {}", release.trim(), busybox.exists());
    checks.check(
        release == "release 1\n" && busybox.exists(),
        "the restore brought the snapshot's content back",
    );
    common::start(canary)?;
    let state = canary.state()?;
    println!("  {} is {state} again", canary.name());
    let out = canary.command("/bin/cat").arg("/etc/release").output()?;
    checks.check(
        state == lxc::State::Running && out.stdout == b"release 1\n",
        format!("{} runs again and reads release 1 inside", canary.name()),
    );
    canary.stop()?;
    checks.finish()
}
