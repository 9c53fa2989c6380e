//! Clones and snapshots of real containers.

mod common;

use std::time::Duration;

use common::TestContainer;
use lxc::{CloneOptions, Container, Error, State};

#[test]
fn a_clone_starts_under_its_new_name() {
    require_root!();
    let t = TestContainer::new("orig");
    let name = common::unique_name("clone");
    let copy = t.c.copy(&name, &CloneOptions::new()).unwrap();
    assert_eq!(copy.name(), name);
    assert!(copy.is_defined());
    assert_eq!(copy.config_item("lxc.uts.name").unwrap(), name.as_str());
    assert!(t.lxcpath.join(&name).join("rootfs/bin/busybox").exists());
    copy.start().unwrap();
    copy.wait(State::Running, Duration::from_secs(10)).unwrap();
    let out = copy.command("/bin/hostname").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), name);
    // Cloning onto an existing name or a bad name fails cleanly.
    assert!(t.c.copy(&name, &CloneOptions::new()).is_err());
    assert!(matches!(t.c.copy("../x", &CloneOptions::new()), Err(Error::InvalidArgument { .. })));
    // A running container is not cloned without ALLOW_RUNNING.
    let err = copy.copy(&common::unique_name("c2"), &CloneOptions::new()).unwrap_err();
    assert!(matches!(err, Error::WrongState { .. }), "{err:?}");
    copy.stop().unwrap();
}

#[test]
fn snapshot_change_restore() {
    require_root!();
    let t = TestContainer::new("snap");
    let file = t.rootfs().join("etc/version");
    std::fs::write(&file, "v1\n").unwrap();
    let comment = t.lxcpath.join("comment.txt");
    std::fs::write(&comment, "before the change\n").unwrap();
    assert!(t.c.snapshot_list().unwrap().is_empty());
    let snap = t.c.snapshot(Some(&comment)).unwrap();
    assert_eq!(snap, "snap0");
    let list = t.c.snapshot_list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "snap0");
    assert_eq!(list[0].comment().as_deref(), Some("before the change\n"));
    assert!(list[0].timestamp.as_ref().is_some_and(|ts| !ts.is_empty()), "{:?}", list[0]);
    assert_eq!(list[0].comment_path.as_deref(), Some(&*t.lxcpath.join(&t.name).join("snaps/snap0/comment")));

    std::fs::write(&file, "v2\n").unwrap();
    t.c.snapshot_restore("snap0", None).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "v1\n");

    // Restore into a new container, then drop the snapshot.
    let other = common::unique_name("restored");
    t.c.snapshot_restore("snap0", Some(&other)).unwrap();
    let restored = Container::with_lxcpath(&other, &t.lxcpath).unwrap();
    assert!(restored.is_defined());
    restored.destroy().unwrap();
    t.c.snapshot_destroy("snap0").unwrap();
    assert!(t.c.snapshot_list().unwrap().is_empty());
    assert!(t.c.snapshot_destroy("snap0").is_err());
    assert!(t.c.snapshot_destroy("../etc").is_err());
}

#[test]
fn destroy_with_snapshots_leaves_nothing() {
    require_root!();
    let t = TestContainer::new("snapall");
    t.c.snapshot(None).unwrap();
    t.c.snapshot(None).unwrap();
    assert_eq!(t.c.snapshot_list().unwrap().len(), 2);
    // liblxc refuses a plain destroy of a container with snapshots.
    assert!(t.c.destroy().is_err());
    t.c.snapshot_destroy_all().unwrap();
    assert!(t.c.snapshot_list().unwrap().is_empty());
    t.c.snapshot(None).unwrap();
    t.c.destroy_with_snapshots().unwrap();
    assert!(!t.c.is_defined());
    assert!(!t.lxcpath.join(&t.name).exists(), "container directory left behind");
}

/// A snapshot without a comment has no comment path, and one whose
/// timestamp file is gone is still listed, without a timestamp.
#[test]
fn snapshots_without_comment_or_timestamp_are_listed() {
    require_root!();
    let t = TestContainer::new("snapts");
    assert_eq!(t.c.snapshot(None).unwrap(), "snap0");
    assert_eq!(t.c.snapshot(None).unwrap(), "snap1");
    let snaps = t.lxcpath.join(&t.name).join("snaps");
    assert!(!snaps.join("snap0/comment").exists());
    let list = t.c.snapshot_list().unwrap();
    assert_eq!(list.len(), 2);
    for s in &list {
        assert_eq!(s.comment_path, None, "{s:?}");
        assert_eq!(s.comment(), None);
        assert!(s.timestamp.is_some(), "{s:?}");
    }
    std::fs::remove_file(snaps.join("snap0/ts")).unwrap();
    let mut list = t.c.snapshot_list().unwrap();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(list.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["snap0", "snap1"]);
    assert_eq!(list[0].timestamp, None);
    assert!(list[1].timestamp.is_some());
    t.c.snapshot_destroy_all().unwrap();
}
