//! The calls in which liblxc hands memory to the crate and that need no
//! running container (strings, string arrays, container arrays, the
//! snapshot list, key lists, the handle given up by `into_raw`), many times over, on containers whose
//! configuration this test writes itself, without a template and without
//! starting anything. (Interfaces, addresses and snapshot records of real
//! snapshots need running or created containers: only their error paths
//! are here.)
//!
//! It runs in the normal suite, and under valgrind memcheck in CI
//! (`./dev memcheck`): valgrind 3.19 does not know `openat2`, which
//! liblxc 5.0 uses to create and start containers, so memcheck runs on the
//! tests that reach liblxc without them. Every block liblxc allocates for
//! these calls must be freed exactly once: memcheck fails the run on a
//! definitely-lost block or an invalid free (liblxc's own leaks are named
//! in `valgrind.supp`).

use std::fs;
use std::path::Path;

use lxc::{Container, Error, ListKind};

/// Writes `lxcpath/name/config` by hand: a defined, stopped container.
fn define(lxcpath: &Path, name: &str) {
    let dir = lxcpath.join(name);
    fs::create_dir_all(dir.join("rootfs")).unwrap();
    let config = format!(
        "lxc.uts.name = {name}\n\
         lxc.rootfs.path = dir:{}\n\
         lxc.net.0.type = empty\n\
         lxc.environment = A=1\n\
         lxc.environment = B=2\n\
         lxc.cap.drop = sys_module mac_admin\n",
        dir.join("rootfs").display()
    );
    fs::write(dir.join("config"), config).unwrap();
}

#[test]
fn memory_from_liblxc_is_freed_once() {
    let dir = tempfile::Builder::new().prefix("lxc-rs-test.").tempdir().unwrap();
    let lxcpath = dir.path();
    for i in 0..3 {
        define(lxcpath, &format!("m{i}"));
    }
    for round in 0..20 {
        let mut c = Container::with_lxcpath("m0", lxcpath).unwrap();
        assert!(c.is_defined());
        assert_eq!(c.config_item("lxc.uts.name").unwrap().to_string(), "m0");
        assert_eq!(c.config_item_str("lxc.environment").unwrap(), "A=1\nB=2\n");
        assert!(c.keys(Some("lxc.net.0")).unwrap().iter().any(|k| k == "type"));
        assert!(c.keys(None).unwrap().len() > 50);
        assert_eq!(c.config_file_name().unwrap(), lxcpath.join("m0/config"));
        assert_eq!(c.config_path().unwrap(), lxcpath);
        c.set_config_item("lxc.environment", &format!("R={round}")).unwrap();
        c.clear_config_item("lxc.cap.drop").unwrap();
        let other = lxcpath.join(format!("saved-{round}.conf"));
        c.save_config(Some(&other)).unwrap();
        assert!(fs::read_to_string(&other).unwrap().contains(&format!("R={round}")));
        let copy = c.try_clone().unwrap();
        assert_eq!(copy.name(), "m0");
        // The raw pointer round trip: the handle's name must not leak.
        let raw = copy.into_raw();
        // SAFETY: raw carries the one reference into_raw gave up.
        let copy = unsafe { Container::from_raw(raw) }.unwrap();
        assert_eq!(copy.name(), "m0");
        drop(copy);
        assert!(c.snapshot_list().unwrap().is_empty());
        assert!(matches!(c.running_config_item("lxc.uts.name"), Err(Error::WrongState { .. })));
        assert!(matches!(c.interfaces(), Err(Error::WrongState { .. })));
        assert!(matches!(c.config_item("lxc.no.such.key"), Err(Error::UnknownConfigKey { .. })));
        assert!(matches!(c.set_config_item("lxc.uts.name", "a\0b"), Err(Error::InvalidArgument { .. })));
        c.clear_config().unwrap();
        c.load_config(None).unwrap();
        assert_eq!(c.config_item("lxc.uts.name").unwrap().to_string(), "m0");
        c.set_config_path(lxcpath).unwrap();

        let mut names = lxc::list_all_containers(Some(lxcpath)).unwrap();
        names.sort();
        assert_eq!(names, ["m0", "m1", "m2"]);
        assert_eq!(lxc::list_defined_containers(Some(lxcpath)).unwrap().len(), 3);
        assert!(lxc::containers(ListKind::Active, Some(lxcpath)).unwrap().is_empty());
        assert_eq!(lxc::containers(ListKind::Defined, Some(lxcpath)).unwrap().len(), 3);
        assert!(lxc::global_config_item("lxc.lxcpath").is_ok());
        assert!(lxc::check_container_name("../x").is_err());
        assert!(Container::with_lxcpath("", lxcpath).is_err());
    }
}
