//! Configuration of real containers: items, lists, keys, save and load,
//! config path, running config, cgroup items.

mod common;

use std::path::Path;

use common::TestContainer;
use lxc::{ConfigValue, Container, Error};

#[test]
fn items_are_read_and_written() {
    require_root!();
    let t = TestContainer::new("cfg");
    assert_eq!(t.c.config_item("lxc.uts.name").unwrap(), t.name.as_str());
    assert_eq!(t.c.config_item("lxc.net.0.type").unwrap(), "empty");
    assert_eq!(t.c.config_item("lxc.rootfs.path").unwrap().into_string(), t.rootfs().display().to_string());
    t.c.set_config_item("lxc.uts.name", "other").unwrap();
    assert_eq!(t.c.config_item("lxc.uts.name").unwrap(), "other");
    t.c.clear_config_item("lxc.uts.name").unwrap();
    assert_eq!(t.c.config_item("lxc.uts.name").unwrap(), "");
}

#[test]
fn multi_valued_keys_are_lists() {
    require_root!();
    let t = TestContainer::new("list");
    // The busybox template drops these capabilities.
    let drop = t.c.config_item("lxc.cap.drop").unwrap();
    assert_eq!(drop, ["sys_module", "mac_admin", "mac_override", "sys_time"][..]);
    let mounts = t.c.config_item("lxc.mount.entry").unwrap().into_vec();
    assert!(mounts.iter().any(|m| m.starts_with("shm dev/shm tmpfs")), "{mounts:?}");
    t.c.set_config_item("lxc.environment", "A=1").unwrap();
    t.c.set_config_item("lxc.environment", "B=2").unwrap();
    assert_eq!(t.c.config_item("lxc.environment").unwrap(), ["A=1", "B=2"][..]);
    t.c.clear_config_item("lxc.environment").unwrap();
    assert_eq!(t.c.config_item("lxc.environment").unwrap(), ConfigValue::List(vec![]));
}

/// ruby-lxc's `set_config_item(key, Array)` and python3-lxc's
/// `append_config_item`.
#[test]
fn lists_set_whole_and_appended() {
    require_root!();
    let t = TestContainer::new("setlist");
    t.c.set_config_list("lxc.cap.drop", ["sys_admin", "sys_time"]).unwrap();
    assert_eq!(t.c.config_item("lxc.cap.drop").unwrap(), ["sys_admin", "sys_time"][..]);
    t.c.append_config_item("lxc.cap.drop", "mknod").unwrap();
    assert_eq!(t.c.config_item("lxc.cap.drop").unwrap(), ["sys_admin", "sys_time", "mknod"][..]);
    t.c.set_config_list("lxc.environment", ["A=1", "B=2"]).unwrap();
    t.c.set_config_list("lxc.environment", ["C=3"]).unwrap();
    assert_eq!(t.c.config_item("lxc.environment").unwrap(), ["C=3"][..]);
    t.c.set_config_list("lxc.environment", []).unwrap();
    assert_eq!(t.c.config_item("lxc.environment").unwrap(), ConfigValue::List(vec![]));
    // A value liblxc refuses: the old values come back.
    t.c.set_config_list("lxc.idmap", ["u 0 100000 65536", "g 0 100000 65536"]).unwrap();
    let err = t.c.set_config_list("lxc.idmap", ["u 0 200000 65536", "not an idmap"]).unwrap_err();
    assert!(matches!(err, lxc::Error::Failed { op: "set_config_item", .. }), "{err:?}");
    assert_eq!(t.c.config_item("lxc.idmap").unwrap(), ["u 0 100000 65536", "g 0 100000 65536"][..]);
    assert!(matches!(t.c.set_config_list("lxc.nope", ["x"]), Err(lxc::Error::UnknownConfigKey { .. })));
    // Saved and read back, as a list.
    t.c.set_config_list("lxc.environment", ["X=1", "Y=2"]).unwrap();
    t.c.save_config(None).unwrap();
    let text = std::fs::read_to_string(t.c.config_file_name().unwrap()).unwrap();
    assert!(text.contains("lxc.environment = X=1\nlxc.environment = Y=2\n"), "{text}");
}

#[test]
fn keys_with_and_without_prefix() {
    require_root!();
    let t = TestContainer::new("keys");
    let all = t.c.keys(None).unwrap();
    assert!(all.iter().any(|k| k == "lxc.uts.name"), "{all:?}");
    assert!(all.iter().any(|k| k == "lxc.rootfs.path"), "{all:?}");
    let net = t.c.keys(Some("lxc.net.0")).unwrap();
    assert!(net.iter().any(|k| k == "type"), "{net:?}");
    assert!(t.c.keys(Some("lxc.net.7")).is_err());
}

#[test]
fn unknown_and_malformed_keys_are_typed_errors() {
    require_root!();
    let t = TestContainer::new("badkey");
    for key in ["lxc.bogus", "lxc.net.x.type", "", "nonsense"] {
        let err = t.c.config_item(key).unwrap_err();
        assert!(matches!(err, Error::UnknownConfigKey { .. }), "{key:?}: {err:?}");
        let err = t.c.set_config_item(key, "1").unwrap_err();
        assert!(matches!(err, Error::UnknownConfigKey { .. }), "{key:?}: {err:?}");
    }
    let err = t.c.set_config_item("lxc.uts.name", "a\0b").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    let err = t.c.config_item("lxc.uts\0.name").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    // A known key with a value liblxc refuses.
    let err = t.c.set_config_item("lxc.net.0.type", "warp-drive").unwrap_err();
    assert!(matches!(err, Error::Failed { op: "set_config_item", .. }), "{err:?}");
}

#[test]
fn save_and_load() {
    require_root!();
    let mut t = TestContainer::new("save");
    t.c.set_config_item("lxc.environment", "SAVED=yes").unwrap();
    t.c.save_config(None).unwrap();
    let text = std::fs::read_to_string(t.c.config_file_name().unwrap()).unwrap();
    assert!(text.contains("lxc.environment = SAVED=yes"), "{text}");

    // A fresh handle reads it from disk.
    let other = Container::with_lxcpath(&t.name, &t.lxcpath).unwrap();
    assert_eq!(other.config_item("lxc.environment").unwrap(), ["SAVED=yes"][..]);

    // Save to another file, change memory, load the file back.
    let alt = t.lxcpath.join("alt.conf");
    t.c.save_config(Some(&alt)).unwrap();
    t.c.set_config_item("lxc.uts.name", "changed").unwrap();
    t.c.clear_config().unwrap();
    t.c.load_config(Some(&alt)).unwrap();
    assert_eq!(t.c.config_item("lxc.uts.name").unwrap(), t.name.as_str());
    assert!(t.c.load_config(Some(Path::new("/nonexistent/config"))).is_err());
}

#[test]
fn config_file_and_path() {
    require_root!();
    let mut t = TestContainer::new("path");
    assert_eq!(t.c.config_path().unwrap(), t.lxcpath);
    assert_eq!(t.c.config_file_name().unwrap(), t.lxcpath.join(&t.name).join("config"));
    let elsewhere = tempfile::tempdir().unwrap();
    t.c.set_config_path(elsewhere.path()).unwrap();
    assert_eq!(t.c.config_path().unwrap(), elsewhere.path());
    assert!(!t.c.is_defined());
    t.c.set_config_path(t.lxcpath.clone()).unwrap();
    assert!(t.c.is_defined());
    assert!(t.c.set_config_path("").is_err());
    common::forget_lxcpath(elsewhere.path());
}

#[test]
fn running_config_and_cgroup_items() {
    require_root!();
    let t = TestContainer::running("rcfg");
    assert_eq!(t.c.running_config_item("lxc.uts.name").unwrap(), t.name);
    let key = common::memory_limit_key();
    t.c.set_cgroup_item(key, "10000000").unwrap();
    let v: u64 = t.c.cgroup_item(key).unwrap().parse().unwrap();
    // The kernel rounds the limit down to whole pages.
    assert!(v <= 10_000_000 && v > 10_000_000 - 4096, "{v}");
    // The host's cgroup file says the same.
    let dir = common::memory_cgroup_dir(t.c.init_pid().unwrap());
    let host = std::fs::read_to_string(dir.join(key)).unwrap();
    assert_eq!(host.trim(), v.to_string());

    t.c.set_cgroup_item("pids.max", "77").unwrap();
    assert_eq!(t.c.cgroup_item("pids.max").unwrap(), "77");
    assert!(matches!(t.c.cgroup_item("no.such.file"), Err(Error::Failed { .. })));
    assert!(matches!(t.c.set_cgroup_item("pids.max", "not-a-number"), Err(Error::Failed { .. })));
}

#[test]
fn try_clone_is_independent_in_memory() {
    require_root!();
    let t = TestContainer::new("tc");
    let other = t.c.try_clone().unwrap();
    assert_eq!(other.name(), t.c.name());
    other.set_config_item("lxc.uts.name", "in-other").unwrap();
    assert_eq!(t.c.config_item("lxc.uts.name").unwrap(), t.name.as_str());
}

/// Clearing `lxc.net.<N>` for a device that does not exist is a no-op, also
/// beside other devices (liblxc 4.0.6 then frees another device it keeps,
/// and the handle's configuration is freed twice when it is dropped).
#[test]
fn clearing_a_missing_network_device_leaves_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let c = Container::with_lxcpath("nics", dir.path()).unwrap();
    c.set_config_item("lxc.net.0.type", "empty").unwrap();
    c.set_config_item("lxc.net.1.type", "veth").unwrap();
    c.set_config_item("lxc.net.1.link", "br-none").unwrap();
    c.clear_config_item("lxc.net.7").unwrap();
    c.clear_config_item("lxc.net.2").unwrap();
    assert_eq!(c.config_item_str("lxc.net.0.type").unwrap(), "empty");
    assert_eq!(c.config_item_str("lxc.net.1.link").unwrap(), "br-none");
    c.clear_config_item("lxc.net.1").unwrap();
    assert_eq!(c.config_item_str("lxc.net.1.type").unwrap_or_default(), "");
    assert_eq!(c.config_item_str("lxc.net.0.type").unwrap(), "empty");
    // Dropping the handle frees its configuration once.
    drop(c);
}
