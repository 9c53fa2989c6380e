//! Security-relevant hostile input (project issue #13, items 1-4), on real
//! containers: configuration injection through line breaks, `destroy`
//! through symbolic links, container names that reach shell templates, and
//! a container started twice through a symbolic link to its lxcpath.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TestContainer;
use lxc::{BdevSpecs, CloneOptions, Container, CreateOptions, Error, NetDevice, State};

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: lxc::Result<T>, what: &str) {
    match r {
        Err(Error::InvalidArgument { reason, .. }) => assert!(!reason.is_empty()),
        other => panic!("{what}: wanted InvalidArgument, got {other:?}"),
    }
}

#[track_caller]
fn assert_unsafe_path<T: std::fmt::Debug>(r: lxc::Result<T>, what: &str) {
    match r {
        Err(Error::UnsafePath { reason, .. }) => assert!(!reason.is_empty()),
        other => panic!("{what}: wanted UnsafePath, got {other:?}"),
    }
}

/// A file that a hook injected into the configuration would create.
fn marker() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix("lxc-rs-marker.").tempdir().unwrap();
    let m = dir.path().join("hook-ran");
    (dir, m)
}

/// A directory outside every container, holding one file that must survive.
fn decoy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix("lxc-rs-decoy.").tempdir().unwrap();
    let keep = dir.path().join("keep");
    fs::write(&keep, "must survive").unwrap();
    (dir, keep)
}

fn config_text(t: &TestContainer) -> String {
    fs::read_to_string(t.lxcpath.join(&t.name).join("config")).unwrap()
}

// ----- 1. configuration injection --------------------------------------------

#[test]
fn a_line_break_in_a_config_value_cannot_inject_a_hook() {
    require_root!();
    let t = TestContainer::new("inj");
    let (_m, marker) = marker();
    let hook = format!("lxc.hook.pre-start = /bin/touch {}", marker.display());
    // The attack of the issue, exactly: refused.
    assert_invalid(t.c.set_config_item("lxc.environment", &format!("FOO=bar\n{hook}")), "lxc.environment");
    // Through every kind of value, with \n, \r and \r\n.
    let mount = format!("{} mnt none bind,optional,create=file 0 0", marker.display());
    for key in [
        "lxc.environment",
        "lxc.uts.name",
        "lxc.init.cmd",
        "lxc.mount.entry",
        "lxc.apparmor.profile",
        "lxc.rootfs.path",
    ] {
        for brk in ["\n", "\r", "\r\n"] {
            assert_invalid(t.c.set_config_item(key, &format!("x{brk}{hook}")), key);
            assert_invalid(t.c.set_config_item(key, &format!("x{brk}lxc.mount.entry = {mount}")), key);
        }
    }
    // Other control characters liblxc cannot store.
    assert_invalid(t.c.set_config_item("lxc.environment", "A=\x1b[31m"), "escape");
    assert_invalid(t.c.set_config_item("lxc.environment", "A=\x7f"), "DEL");
    // Keys: prefix keys take free text.
    for key in [
        format!("lxc.environment\n{hook}\nlxc.environment"),
        format!("lxc.sysctl.net.ipv4.ip_forward\n{hook}\nlxc.sysctl.x"),
        format!("lxc.cgroup2.memory.max\r{hook}\rlxc.cgroup2.memory.high"),
    ] {
        assert_invalid(t.c.set_config_item(&key, "1"), "key");
        assert_invalid(t.c.clear_config_item(&key), "clear key");
        assert_invalid(t.c.config_item_str(&key), "get key");
    }
    assert_invalid(t.c.set_config_item("lxc.sysctl.a=b", "c"), "'=' in a key");
    assert_invalid(lxc::global_config_item("lxc.lxcpath\nx"), "global key");
    // TAB is white space to liblxc: allowed.
    t.c.set_config_item("lxc.environment", "TABBED=a\tb").unwrap();

    t.c.save_config(None).unwrap();
    let text = config_text(&t);
    assert!(!text.contains("lxc.hook.pre-start"), "injected hook in the saved config:\n{text}");
    assert!(!text.contains(&marker.display().to_string()), "injected line in the saved config:\n{text}");
    assert!(!text.contains('\r'));

    // A fresh handle reads the saved file and starts: no hook runs.
    let fresh = Container::with_lxcpath(&t.name, &t.lxcpath).unwrap();
    assert!(fresh.config_item("lxc.hook.pre-start").unwrap().into_vec().is_empty());
    fresh.start().unwrap();
    fresh.wait(State::Running, Duration::from_secs(10)).unwrap();
    fresh.stop().unwrap();
    fresh.wait(State::Stopped, Duration::from_secs(10)).unwrap();
    assert!(!marker.exists(), "the injected hook ran on the host");
}

#[test]
fn a_network_device_with_a_line_break_is_refused_whole() {
    require_root!();
    let t = TestContainer::new("injnet");
    let inj = "\nlxc.hook.pre-start = /bin/false";
    let devs = [
        NetDevice::empty().name(&format!("eth0{inj}")),
        NetDevice::empty().link(&format!("br0{inj}")),
        NetDevice::empty().hwaddr(&format!("00:16:3e:00:00:01{inj}")),
        NetDevice::empty().ipv4(&format!("10.0.0.2/24{inj}")),
        NetDevice::empty().ipv6_gateway(&format!("auto\r{inj}")),
        NetDevice::empty().veth_pair(&format!("vp0{inj}")),
        NetDevice::new(&format!("empty{inj}")),
    ];
    for d in &devs {
        assert_invalid(t.c.set_network_device(0, d), "set_network_device");
        assert_invalid(t.c.add_network_device(d), "add_network_device");
    }
    // The device that was there is untouched.
    assert_eq!(t.c.config_item_str("lxc.net.0.type").unwrap(), "empty");
    t.c.save_config(None).unwrap();
    assert!(!config_text(&t).contains("lxc.hook.pre-start"));
}

#[test]
fn copies_with_a_line_break_or_shell_text_are_refused() {
    require_root!();
    let t = TestContainer::new("injcopy");
    let (_m, marker) = marker();
    let before = names_in(&t.lxcpath);
    let name = common::unique_name("copy");
    let inj = format!("\nlxc.hook.pre-start = /bin/touch {}", marker.display());
    let cases = [
        CloneOptions::new().bdev_data(&format!("{}{inj}", t.lxcpath.join(&name).join("rootfs").display())),
        CloneOptions::new().lxcpath(format!("{}{inj}", t.lxcpath.display())),
        CloneOptions::new().hook_args([format!("x{inj}")]),
        // liblxc runs clone hooks with `sh -c "exec HOOK NAME lxc clone ARGS"`.
        CloneOptions::new().hook_args([format!("$(/bin/touch {})", marker.display())]),
        CloneOptions::new().hook_args(["a;b"]),
    ];
    for o in &cases {
        assert_invalid(t.c.copy(&name, o), "copy");
    }
    assert_invalid(t.c.copy("bad name", &CloneOptions::new()), "copy name");
    assert_eq!(names_in(&t.lxcpath), before, "a refused copy left something in the lxcpath");
    assert!(!marker.exists());
}

#[test]
fn creates_with_a_line_break_are_refused() {
    require_root!();
    let t = TestContainer::undefined("injcreate");
    let inj = "\nlxc.hook.pre-start = /bin/false";
    t.c.set_config_item("lxc.net.0.type", "empty").unwrap();
    let busybox = || CreateOptions::new().template("busybox").quiet(true);
    // liblxc writes the template and its arguments into the header of the
    // new configuration.
    assert_invalid(t.c.create(&busybox().args([format!("--busybox-path=/bin/busybox{inj}")])), "arg");
    assert_invalid(t.c.create(&CreateOptions::new().template(&format!("busybox{inj}"))), "template");
    let dir = t.lxcpath.join("elsewhere");
    assert_invalid(
        t.c.create(&busybox().specs(BdevSpecs::new().dir(format!("{}{inj}", dir.display())))),
        "rootfs dir",
    );
    assert_invalid(t.c.create(&busybox().specs(BdevSpecs::new().fstype(&format!("ext4{inj}")))), "fstype");
    assert!(!t.c.is_defined());
    assert!(names_in(&t.lxcpath).is_empty(), "a refused create left something in the lxcpath");
    // lxcpaths: liblxc writes `lxc.rootfs.path = dir:LXCPATH/NAME/rootfs`.
    assert_invalid(Container::with_lxcpath("c", format!("{}{inj}", t.lxcpath.display())), "lxcpath");
    let mut c = Container::with_lxcpath("c", &t.lxcpath).unwrap();
    assert_invalid(c.set_config_path(format!("/tmp{inj}")), "set_config_path");
    assert_invalid(lxc::list_all_containers(Some(Path::new("/tmp\nx"))), "list lxcpath");
}

#[test]
fn cgroup_items_with_a_line_break_are_refused() {
    require_root!();
    let t = TestContainer::new("injcg");
    assert_invalid(t.c.set_cgroup_item("memory.max", "100000000\nmax"), "cgroup value");
    assert_invalid(t.c.set_cgroup_item("memory.max\npids.max", "10"), "cgroup key");
    assert_invalid(t.c.cgroup_item("memory.max\r"), "cgroup key read");
    assert_invalid(t.c.set_config_item("lxc.cgroup2.memory.max", "1\nlxc.cgroup2.pids.max = 1"), "config");
}

// ----- 2. destroy through symbolic links -------------------------------------

#[test]
fn destroy_refuses_a_rootfs_that_links_out_of_the_container() {
    require_root!();
    let t = TestContainer::new("lnkroot");
    let (decoy_dir, keep) = decoy();
    let rootfs = t.rootfs();
    fs::remove_dir_all(&rootfs).unwrap();
    symlink(decoy_dir.path(), &rootfs).unwrap();
    assert_unsafe_path(t.c.destroy(), "destroy");
    assert_unsafe_path(t.c.destroy_with_snapshots(), "destroy_with_snapshots");
    // rename destroys the original too.
    let mut r = Container::with_lxcpath(&t.name, &t.lxcpath).unwrap();
    let renamed = common::unique_name("lnkren");
    assert_unsafe_path(r.rename(&renamed), "rename");
    assert!(!t.lxcpath.join(&renamed).exists(), "the refused rename made {renamed}");
    assert!(keep.exists(), "destroy emptied the decoy the rootfs links to");
    assert!(t.c.is_defined());

    // The overlay store deletes its upper directory: the same rule.
    let c = Container::with_lxcpath(&t.name, &t.lxcpath).unwrap();
    let upper = t.lxcpath.join(&t.name).join("delta0");
    symlink(decoy_dir.path(), &upper).unwrap();
    c.set_config_item("lxc.rootfs.path", &format!("overlay:/nonexistent-lower:{}", upper.display())).unwrap();
    assert_unsafe_path(c.destroy(), "overlay upper");
    // A rootfs outside the container reached through a link on the way.
    let via = t.lxcpath.join("via");
    symlink(decoy_dir.path(), &via).unwrap();
    c.set_config_item("lxc.rootfs.path", &format!("dir:{}", via.display())).unwrap();
    assert_unsafe_path(c.destroy(), "outside through a link");
    assert!(keep.exists());

    // Put a real rootfs back: the rig destroys the container on drop.
    fs::remove_file(&rootfs).unwrap();
    fs::remove_file(&via).unwrap();
    fs::create_dir(&rootfs).unwrap();

    // A restore over a container destroys it first: a container with a
    // snapshot taken before its root filesystem became a link out.
    let s = t.sibling("lnkrest");
    assert_eq!(s.snapshot(None).unwrap(), "snap0");
    let s_rootfs = t.lxcpath.join(s.name()).join("rootfs");
    fs::remove_dir_all(&s_rootfs).unwrap();
    symlink(decoy_dir.path(), &s_rootfs).unwrap();
    assert_unsafe_path(s.snapshot_restore("snap0", None), "snapshot_restore over the container");
    assert!(keep.exists(), "the restore emptied the decoy the rootfs links to");
    fs::remove_file(&s_rootfs).unwrap();
    fs::create_dir(&s_rootfs).unwrap();
    s.snapshot_destroy_all().unwrap();
}

/// A call run by the helper gets the handle's configuration as checked;
/// an included file is read again when the helper loads it, and one that
/// changed in between to name a root filesystem the check would refuse
/// stops the call before anything is deleted.
#[test]
fn a_rename_refuses_an_included_root_filesystem_that_changed_after_the_check() {
    require_root!();
    let t = TestContainer::new("lnkinc");
    let (decoy_dir, keep) = decoy();
    let dir = t.lxcpath.join(&t.name);
    let include = dir.join("rootfs.conf");
    fs::write(&include, format!("lxc.rootfs.path = dir:{}\n", t.rootfs().display())).unwrap();
    let link = dir.join("rootfs-link");
    symlink(decoy_dir.path(), &link).unwrap();
    let mut c = Container::with_lxcpath(&t.name, &t.lxcpath).unwrap();
    c.clear_config_item("lxc.rootfs.path").unwrap();
    c.set_config_item("lxc.include", include.to_str().unwrap()).unwrap();
    assert_eq!(c.config_item_str("lxc.rootfs.path").unwrap(), t.rootfs().to_str().unwrap());
    // Changed after the handle loaded it: it now names a link out of the
    // container, which the check refuses when it sees it.
    fs::write(&include, format!("lxc.rootfs.path = dir:{}\n", link.display())).unwrap();
    let renamed = common::unique_name("lnkinc2");
    match c.rename(&renamed) {
        Err(Error::UnsafePath { path, .. }) => assert_eq!(path, dir.join("config")),
        other => panic!("wanted UnsafePath for the changed include, got {other:?}"),
    }
    assert!(keep.exists(), "the rename emptied the decoy");
    assert!(!t.lxcpath.join(&renamed).exists());
    assert!(c.is_defined());
    fs::remove_file(&link).unwrap();
}

#[test]
fn destroy_refuses_a_container_directory_that_is_a_link() {
    require_root!();
    let t = TestContainer::new("lnkdir");
    let elsewhere = tempfile::Builder::new().prefix("lxc-rs-decoy.").tempdir().unwrap();
    let dir = t.lxcpath.join(&t.name);
    let moved = elsewhere.path().join("moved");
    fs::rename(&dir, &moved).unwrap();
    fs::write(moved.join("keep"), "must survive").unwrap();
    symlink(&moved, &dir).unwrap();
    let c = Container::with_lxcpath(&t.name, &t.lxcpath).unwrap();
    assert!(c.is_defined());
    assert_unsafe_path(c.destroy(), "destroy");
    assert!(moved.join("keep").exists() && moved.join("config").exists());
    drop(c);
    fs::remove_file(&dir).unwrap();
    fs::rename(&moved, &dir).unwrap();
}

#[test]
fn links_inside_the_rootfs_do_not_stop_a_destroy() {
    require_root!();
    let t = TestContainer::new("lnkin");
    let (decoy_dir, keep) = decoy();
    symlink("/etc", t.rootfs().join("host-etc")).unwrap();
    symlink(decoy_dir.path(), t.rootfs().join("decoy")).unwrap();
    symlink(decoy_dir.path(), t.lxcpath.join(&t.name).join("decoy-beside-rootfs")).unwrap();
    t.c.destroy().unwrap();
    assert!(!t.c.is_defined());
    assert!(!t.lxcpath.join(&t.name).exists());
    assert!(keep.exists(), "destroy followed a link inside the rootfs");
    assert!(Path::new("/etc/passwd").exists());
}

// ----- 3. names --------------------------------------------------------------

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn names_outside_the_accepted_set_are_refused_before_anything_is_made() {
    require_root!();
    let t = TestContainer::new("names");
    let cwd = std::env::current_dir().unwrap();
    let cwd_before = names_in(&cwd);
    let lxcpath_before = names_in(&t.lxcpath);
    let long = "x".repeat(65);
    let bad = [
        "a b",
        "it's",
        "say\"hi\"",
        "$(touch pwned)",
        "`touch pwned`",
        "a;b",
        "a|b",
        "a*",
        "café",
        "名前",
        "-rf",
        ".hidden",
        "_x",
        "a\tb",
        "a\nb",
        "a/b",
        "..",
        "",
        &long,
    ];
    let mut c = Container::with_lxcpath(&t.name, &t.lxcpath).unwrap();
    for name in bad {
        assert_invalid(Container::with_lxcpath(name, &t.lxcpath), name);
        assert_invalid(lxc::check_container_name(name), name);
        assert_invalid(t.c.copy(name, &CloneOptions::new()), name);
        assert_invalid(c.rename(name), name);
        assert_invalid(t.c.snapshot_restore("snap0", Some(name)), name);
        assert_invalid(t.c.snapshot_destroy(name), name);
    }
    let max = "y".repeat(64);
    for good in ["a", "web-1", "db_2.prod", "0", max.as_str()] {
        lxc::check_container_name(good).unwrap();
        Container::with_lxcpath(good, &t.lxcpath).unwrap();
    }
    assert_eq!(c.name(), t.name);
    assert_eq!(names_in(&cwd), cwd_before, "something appeared in the working directory");
    assert_eq!(names_in(&t.lxcpath), lxcpath_before, "something appeared in the lxcpath");
}

// ----- 4. a symbolic link to the lxcpath --------------------------------------

#[test]
fn a_container_cannot_start_twice_through_a_linked_lxcpath() {
    require_root!();
    let t = TestContainer::new("twice");
    let links = tempfile::Builder::new().prefix("lxc-rs-link.").tempdir().unwrap();
    let link = links.path().join("lxcpath");
    symlink(&t.lxcpath, &link).unwrap();

    let through_link = Container::with_lxcpath(&t.name, &link).unwrap();
    assert_eq!(through_link.config_path().unwrap(), fs::canonicalize(&t.lxcpath).unwrap());
    let mut moved = Container::with_lxcpath(&t.name, "/nonexistent-lxcpath").unwrap();
    moved.set_config_path(&link).unwrap();
    assert_eq!(moved.config_path().unwrap(), fs::canonicalize(&t.lxcpath).unwrap());

    through_link.start().unwrap();
    through_link.wait(State::Running, Duration::from_secs(10)).unwrap();
    let real = Container::with_lxcpath(&t.name, &t.lxcpath).unwrap();
    assert_eq!(real.state().unwrap(), State::Running);
    assert_eq!(moved.state().unwrap(), State::Running);
    match real.start() {
        Err(Error::WrongState { state: State::Running, .. }) => {}
        other => panic!("a second start through the real path: {other:?}"),
    }
    assert_eq!(lxc::list_active_containers(Some(&link)).unwrap(), [t.name.as_str()]);
    assert_eq!(lxc::list_active_containers(Some(&t.lxcpath)).unwrap(), [t.name.as_str()]);
    through_link.stop().unwrap();
    through_link.wait(State::Stopped, Duration::from_secs(10)).unwrap();
    assert_eq!(real.state().unwrap(), State::Stopped);
}
