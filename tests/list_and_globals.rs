//! Listing containers and liblxc's global functions.

mod common;

use std::time::Duration;

use common::TestContainer;
use lxc::{ListKind, State};

#[test]
fn defined_active_and_all() {
    require_root!();
    let t = TestContainer::new("ls-a");
    let b = t.sibling("ls-b");
    let mut names = vec![t.name.clone(), b.name().to_owned()];
    names.sort();
    assert_eq!(lxc::list_defined_containers(Some(&t.lxcpath)).unwrap(), names);
    assert_eq!(lxc::list_active_containers(Some(&t.lxcpath)).unwrap(), Vec::<String>::new());
    b.start().unwrap();
    b.wait(State::Running, Duration::from_secs(10)).unwrap();
    assert_eq!(lxc::list_active_containers(Some(&t.lxcpath)).unwrap(), [b.name()]);
    assert_eq!(lxc::list_all_containers(Some(&t.lxcpath)).unwrap(), names);

    let handles = lxc::containers(ListKind::Active, Some(&t.lxcpath)).unwrap();
    assert_eq!(handles.len(), 1);
    assert_eq!(handles[0].name(), b.name());
    assert_eq!(handles[0].state().unwrap(), State::Running);
    let all = lxc::containers(ListKind::All, Some(&t.lxcpath)).unwrap();
    let mut got: Vec<_> = all.iter().map(|c| c.name().to_owned()).collect();
    got.sort();
    assert_eq!(got, names);
    b.stop().unwrap();
}

#[test]
fn an_empty_or_missing_lxcpath_lists_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert!(lxc::list_all_containers(Some(dir.path())).unwrap().is_empty());
    assert!(lxc::containers(ListKind::Defined, Some(dir.path())).unwrap().is_empty());
    let missing = dir.path().join("missing");
    assert!(lxc::list_defined_containers(Some(&missing)).unwrap_or_default().is_empty());
    common::forget_lxcpath(dir.path());
}

#[test]
fn globals() {
    let v = lxc::runtime_version();
    assert_eq!(v.to_string(), lxc::version().split('-').next().unwrap());
    assert!(v >= lxc::Version::new(4, 0, 0));
    assert!(lxc::header_version() >= lxc::Version::new(4, 0, 0));
    let lxcpath = lxc::default_lxcpath().unwrap();
    assert!(lxcpath.is_absolute());
    assert_eq!(lxc::global_config_item("lxc.lxcpath").unwrap().as_deref(), lxcpath.to_str());
    assert!(matches!(lxc::global_config_item("lxc.nope"), Err(lxc::Error::UnknownConfigKey { .. })));
    // Every key of liblxc's table is known, set or not.
    for key in [
        "lxc.bdev.lvm.vg",
        "lxc.bdev.lvm.thin_pool",
        "lxc.bdev.zfs.root",
        "lxc.bdev.rbd.rbdpool",
        "lxc.lxcpath",
        "lxc.default_config",
        "lxc.cgroup.pattern",
        "lxc.cgroup.use",
    ] {
        lxc::global_config_item(key).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    // lxc.cgroup.use has no default: unset unless lxc.conf sets it.
    let conf = if common::is_root() {
        "/etc/lxc/lxc.conf".into()
    } else {
        format!("{}/.config/lxc/lxc.conf", std::env::var("HOME").unwrap_or_default())
    };
    if !std::fs::read_to_string(conf).unwrap_or_default().contains("lxc.cgroup.use") {
        assert_eq!(lxc::global_config_item("lxc.cgroup.use").unwrap(), None);
    }
    let rbduser = lxc::global_config_item("lxc.bdev.rbd.rbduser");
    if lxc::runtime_version() < lxc::Version::new(7, 0, 0) {
        assert!(matches!(rbduser, Err(lxc::Error::UnknownConfigKey { .. })), "{rbduser:?}");
    } else {
        assert!(rbduser.is_ok(), "{rbduser:?}");
    }
    assert!(lxc::global_config_item("lxc.lxc\0path").is_err());
    let states = lxc::wait_states().unwrap();
    assert_eq!(states, State::ALL);
    assert!(lxc::has_api_extension("lxc_log"));
    assert!(!lxc::has_api_extension(""));
    assert!(lxc::config_item_is_supported("lxc.rootfs.path"));
    assert!(!lxc::config_item_is_supported("lxc.rootfs.nope"));
}
