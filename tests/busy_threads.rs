//! create, copy (liblxc's clone), snapshot and start from a process whose
//! other threads keep spawning threads and allocating (issue 12 item 8).
//!
//! liblxc starts the helpers of clone and snapshot (rsync) with a raw
//! `clone()`; in a multithreaded caller glibc's set-id broadcast in that
//! child waits forever for threads that are not there. The crate runs
//! these calls in its helper process; each test here must finish well
//! within its watchdog (120 s), which otherwise stops the containers and
//! aborts the binary, so that a hang fails instead of stalling CI.

mod common;

use std::time::Duration;

use common::{Busy, TestContainer};
use lxc::{CloneOptions, CreateOptions, State};

#[test]
fn snapshot_beside_busy_threads() {
    require_root!();
    let t = TestContainer::new("bsnap");
    let busy = Busy::start("snapshot");
    let snap = t.c.snapshot(None).unwrap();
    let snap2 = t.c.snapshot(None).unwrap();
    drop(busy);
    assert_eq!((snap.as_str(), snap2.as_str()), ("snap0", "snap1"));
    assert_eq!(t.c.snapshot_list().unwrap().len(), 2);
    t.c.snapshot_destroy_all().unwrap();
}

#[test]
fn copy_beside_busy_threads() {
    require_root!();
    let t = TestContainer::new("bcopy");
    let name = common::unique_name("bcopy2");
    let busy = Busy::start("copy");
    let copy = t.c.copy(&name, &CloneOptions::new()).unwrap();
    drop(busy);
    assert!(copy.is_defined());
    assert_eq!(copy.config_item_str("lxc.uts.name").unwrap(), name);
    copy.destroy().unwrap();
}

#[test]
fn create_beside_busy_threads() {
    require_root!();
    let t = TestContainer::undefined("bcreate");
    t.c.set_config_item("lxc.net.0.type", "empty").unwrap();
    let busy = Busy::start("create");
    t.c.create(&CreateOptions::new().template("busybox").quiet(true)).unwrap();
    drop(busy);
    assert!(t.c.is_defined());
    // The handle reloaded the configuration the template wrote.
    assert!(t.c.config_item_str("lxc.rootfs.path").unwrap().contains(&t.name));
    assert_eq!(t.c.config_item_str("lxc.net.0.type").unwrap(), "empty");
}

#[test]
fn start_beside_busy_threads() {
    require_root!();
    let t = TestContainer::new("bstart");
    let busy = Busy::start("start");
    t.c.start().unwrap();
    t.c.wait(State::Running, Duration::from_secs(10)).unwrap();
    t.c.stop().unwrap();
    t.c.wait(State::Stopped, Duration::from_secs(10)).unwrap();
    drop(busy);
}

/// A setting made on the handle and not saved reaches the helper.
#[test]
fn unsaved_settings_reach_the_helper() {
    require_root!();
    let t = TestContainer::new("bunsaved");
    t.c.set_config_item("lxc.environment", "LXC_RS_UNSAVED=yes").unwrap();
    t.c.start().unwrap();
    t.c.wait(State::Running, Duration::from_secs(10)).unwrap();
    let pid = t.c.init_pid().unwrap();
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        env.split(|&b| b == 0).any(|v| v == b"LXC_RS_UNSAVED=yes"),
        "init's environment lacks the setting"
    );
    t.c.stop().unwrap();
    t.c.wait(State::Stopped, Duration::from_secs(10)).unwrap();
    // On disk, nothing changed.
    let config = std::fs::read_to_string(t.lxcpath.join(&t.name).join("config")).unwrap();
    assert!(!config.contains("LXC_RS_UNSAVED"));
}

#[test]
fn snapshot_restore_beside_busy_threads() {
    require_root!();
    let t = TestContainer::new("brest");
    let snap = t.c.snapshot(None).unwrap();
    let marker = t.rootfs().join("after-snapshot");
    std::fs::write(&marker, "x").unwrap();
    let other = common::unique_name("brest2");
    let busy = Busy::start("snapshot_restore");
    t.c.snapshot_restore(&snap, None).unwrap();
    t.c.snapshot_restore(&snap, Some(&other)).unwrap();
    drop(busy);
    assert!(!marker.exists(), "the restore over the container did not bring back the snapshot's rootfs");
    assert_eq!(t.c.config_item_str("lxc.uts.name").unwrap(), t.name);
    let o = lxc::Container::with_lxcpath(&other, &t.lxcpath).unwrap();
    assert!(o.is_defined());
    o.destroy().unwrap();
    t.c.snapshot_destroy_all().unwrap();
}

/// liblxc's rename copies the root filesystem in a child it starts with a
/// raw `clone` (its `run_command`), which skips glibc's fork handlers, and
/// that child calls `setresgid`: glibc's set-id broadcast then waits for
/// threads of the parent that were being started or were holding glibc's
/// thread-list lock at the clone, forever (this test hung so). The crate
/// runs rename and the destroys in its helper process.
#[test]
fn rename_and_destroy_beside_busy_threads() {
    require_root!();
    let mut t = TestContainer::new("churn");
    let extra: Vec<_> = (0..3).map(|i| t.sibling(&format!("churn{i}"))).collect();
    let busy = Busy::start("rename and destroy");
    let original = t.name.clone();
    for round in 0..6 {
        let new_name = format!("{original}-r{round}");
        t.c.rename(&new_name).unwrap();
        assert_eq!(t.c.name(), new_name);
        assert!(t.c.is_defined(), "the renamed container is defined");
        assert!(t.lxcpath.join(&new_name).join("rootfs/bin/busybox").exists(), "the rootfs moved with it");
    }
    // liblxc's destroy sets LXC_NAME (and more) for its hooks in the process
    // that runs it, racing other threads' getenv: the helper's, now.
    extra[0].set_config_item("lxc.hook.destroy", "/bin/true").unwrap();
    for c in &extra {
        c.destroy().unwrap();
        assert!(!c.is_defined());
    }
    assert_eq!(std::env::var_os("LXC_NAME"), None, "destroy's hook variables were set in this process");
    drop(busy);
    let last = t.c.name().to_owned();
    t.c.rename(&original).unwrap();
    assert!(!t.lxcpath.join(last).exists());
}
