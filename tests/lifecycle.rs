//! Lifecycle of real containers: create, start, freeze, stop, shutdown,
//! reboot, rename, destroy, and the errors of calls in the wrong state.

mod common;

use std::time::Duration;

use common::TestContainer;
use lxc::{Container, CreateOptions, Error, StartOptions, State};

const T: Duration = Duration::from_secs(10);

#[test]
fn create_with_the_busybox_template() {
    require_root!();
    let t = TestContainer::undefined("create");
    assert!(!t.c.is_defined());
    assert_eq!(t.c.state().unwrap(), State::Stopped);
    t.c.set_config_item("lxc.net.0.type", "empty").unwrap();
    t.c.create(&CreateOptions::new().template("busybox").quiet(true)).unwrap();
    assert!(t.c.is_defined());
    assert!(t.rootfs().join("bin/busybox").is_file());
    let config = std::fs::read_to_string(t.c.config_file_name().unwrap()).unwrap();
    assert!(config.contains("lxc.net.0.type = empty"), "{config}");
    assert!(!config.contains("lxcbr0"), "default.conf must not be used: {config}");
    // A second create is refused before liblxc runs the template again.
    let err = t.c.create(&CreateOptions::new().template("busybox").quiet(true)).unwrap_err();
    assert!(matches!(err, Error::AlreadyDefined { .. }), "{err}");
}

/// liblxc's own tests (clonetest.c, snapshot.c) save the configuration
/// first and create afterwards: a defined container without a rootfs is
/// created.
#[test]
fn save_config_then_create_then_start() {
    require_root!();
    let t = TestContainer::undefined("savefirst");
    t.c.set_config_item("lxc.net.0.type", "empty").unwrap();
    t.c.set_config_item("lxc.environment", "SAVED=1").unwrap();
    t.c.save_config(None).unwrap();
    assert!(t.c.is_defined());
    assert!(!t.rootfs().exists());
    t.c.create(&CreateOptions::new().template("busybox").quiet(true)).unwrap();
    assert!(t.rootfs().join("bin/busybox").is_file());
    let config = std::fs::read_to_string(t.c.config_file_name().unwrap()).unwrap();
    assert!(config.contains("SAVED=1"), "{config}");
    t.c.start().unwrap();
    t.c.wait(State::Running, T).unwrap();
    t.c.stop().unwrap();
    t.c.wait(State::Stopped, T).unwrap();
    // Now the rootfs exists: a second create is refused, and the
    // container is untouched.
    let err = t.c.create(&CreateOptions::new().template("busybox").quiet(true)).unwrap_err();
    assert!(matches!(err, Error::AlreadyDefined { .. }), "{err}");
    assert!(t.c.is_defined());
    assert!(t.rootfs().join("bin/busybox").is_file());
}

#[test]
fn create_with_a_missing_template_fails_cleanly() {
    require_root!();
    let t = TestContainer::undefined("badtpl");
    t.c.set_config_item("lxc.net.0.type", "empty").unwrap();
    let err = t.c.create(&CreateOptions::new().template("no-such-template").quiet(true)).unwrap_err();
    assert!(matches!(err, Error::Failed { op: "create", .. }), "{err}");
    assert!(!t.c.is_defined());
}

#[test]
fn start_freeze_stop_destroy() {
    require_root!();
    let t = TestContainer::new("life");
    assert!(!t.c.is_running());
    assert_eq!(t.c.init_pid(), None);
    t.c.start().unwrap();
    t.c.wait(State::Running, T).unwrap();
    assert!(t.c.is_running());
    assert_eq!(t.c.state().unwrap(), State::Running);
    let pid = t.c.init_pid().expect("init pid of a running container");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    // Not while busybox's rcS runs: a cgroup v1 freeze of a parent waiting
    // in vfork for a child that froze first stays FREEZING for good
    // (seen in the sid matrix), and liblxc's freeze waits for FROZEN.
    t.wait_init_ready();
    t.c.freeze().unwrap();
    t.c.wait(State::Frozen, T).unwrap();
    assert_eq!(t.c.state().unwrap(), State::Frozen);
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(st.lines().any(|l| l.starts_with("State:")), "{st}");
    // A frozen init cannot act on the halt signal: refused at once, not
    // after the whole timeout.
    let before = std::time::Instant::now();
    match t.c.shutdown(Duration::from_secs(60)) {
        Err(lxc::Error::WrongState { state: State::Frozen, .. }) => {}
        other => panic!("shutdown of a frozen container: {other:?}"),
    }
    assert!(before.elapsed() < Duration::from_secs(10));
    t.c.unfreeze().unwrap();
    t.c.wait(State::Running, T).unwrap();

    t.c.stop().unwrap();
    t.c.wait(State::Stopped, T).unwrap();
    assert!(!t.c.is_running());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());

    t.c.destroy().unwrap();
    assert!(!t.c.is_defined());
    assert!(!t.lxcpath.join(&t.name).exists());
}

#[test]
fn shutdown_stops_cleanly() {
    require_root!();
    let t = TestContainer::running("shut");
    t.c.shutdown(Duration::from_secs(20)).unwrap();
    assert_eq!(t.c.state().unwrap(), State::Stopped);
}

#[test]
fn shutdown_times_out_when_init_ignores_the_signal() {
    require_root!();
    let t = TestContainer::new("shuttime");
    // SIGCONT: busybox init will not stop for it.
    t.c.set_config_item("lxc.signal.halt", "SIGCONT").unwrap();
    t.c.start().unwrap();
    t.c.wait(State::Running, T).unwrap();
    t.wait_init_ready();
    let err = t.c.shutdown(Duration::from_secs(1)).unwrap_err();
    assert!(matches!(err, Error::Timeout { op: "shutdown", .. }), "{err}");
    assert!(t.c.is_running());
    t.c.stop().unwrap();
}

#[test]
fn reboot_gives_a_new_init() {
    require_root!();
    let t = TestContainer::running("reboot");
    let before = t.c.init_pid().unwrap();
    t.c.reboot().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(p) = t.c.init_pid() {
            if p != before && t.c.state().unwrap() == State::Running {
                break;
            }
        }
        assert!(std::time::Instant::now() < deadline, "container did not come back after reboot");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn start_with_a_command_under_lxc_init() {
    require_root!();
    let t = TestContainer::new("exec");
    t.c.start_with(&StartOptions::new().use_init(true).args(["/bin/sleep", "30"])).unwrap();
    t.c.wait(State::Running, T).unwrap();
    let pid = t.c.init_pid().unwrap();
    // init is lxc-init (or init.lxc) and its child is our sleep, once
    // lxc-init has forked it (RUNNING can come first).
    let deadline = std::time::Instant::now() + T;
    loop {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        let cmd = children.split_whitespace().next().map(|c| {
            String::from_utf8_lossy(&std::fs::read(format!("/proc/{c}/cmdline")).unwrap_or_default())
                .into_owned()
        });
        if cmd.as_deref().is_some_and(|c| c.contains("sleep")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "lxc init's child is not our sleep: {cmd:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn rename_moves_the_container() {
    require_root!();
    let mut t = TestContainer::new("ren");
    let new_name = common::unique_name("renamed");
    t.c.rename(&new_name).unwrap();
    assert_eq!(t.c.name(), new_name);
    assert!(t.c.is_defined());
    assert!(!Container::with_lxcpath(&t.name, &t.lxcpath).unwrap().is_defined());
    assert!(t.lxcpath.join(&new_name).join("config").is_file());
    assert!(t.c.rename("bad/name").is_err());
}

/// A container whose configuration names no root filesystem (liblxc then
/// reads `lxc.rootfs.path` as empty, and writes nothing into the buffer):
/// destroy works on it and leaves nothing. A rename is refused before
/// liblxc sees it: liblxc's storage setup would make every mount of the
/// mount namespace a slave, then fail.
#[test]
fn a_container_without_a_root_filesystem_is_destroyed() {
    require_root!();
    let t = TestContainer::undefined("norootfs");
    let dir = t.lxcpath.join(&t.name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("config"), format!("lxc.uts.name = {}\nlxc.net.0.type = empty\n", t.name))
        .unwrap();
    let mut c = Container::with_lxcpath(&t.name, &t.lxcpath).unwrap();
    assert!(c.is_defined());
    assert_eq!(c.config_item_str("lxc.rootfs.path").unwrap(), "");
    let new_name = common::unique_name("norootfs2");
    let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(matches!(c.rename(&new_name), Err(lxc::Error::Unsupported { op: "rename", .. })));
    assert_eq!(std::fs::read_to_string("/proc/self/mountinfo").unwrap(), before, "mounts changed");
    assert!(c.is_defined() && !t.lxcpath.join(&new_name).exists());
    // A configuration file that no longer parses: said so, nothing done.
    std::fs::write(dir.join("config"), "lxc.no.such.key = 1\n").unwrap();
    match c.destroy() {
        Err(lxc::Error::Failed { error_string: Some(s), .. }) => {
            assert!(s.contains("could not be loaded"), "{s}")
        }
        other => panic!("wanted Failed for a configuration that does not load, got {other:?}"),
    }
    assert!(dir.join("config").exists());
    std::fs::write(dir.join("config"), format!("lxc.uts.name = {}\n", t.name)).unwrap();
    c.destroy().unwrap();
    assert!(!c.is_defined());
    assert!(!dir.exists());
}

/// A rename that liblxc did is `Ok`, and the handle names the new
/// container, even when the renamed configuration does not load: here a
/// clone hook (liblxc's rename is a clone) writes an unknown key into it.
#[test]
fn a_rename_that_happened_is_ok_even_if_the_new_config_is_broken() {
    require_root!();
    let mut t = TestContainer::new("renhook");
    let hook = t.lxcpath.join("break-config.sh");
    std::fs::write(&hook, "#!/bin/sh\necho 'lxc.no.such.key = 1' >> \"$LXC_CONFIG_FILE\"\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    t.c.set_config_item("lxc.hook.clone", hook.to_str().unwrap()).unwrap();
    t.c.save_config(None).unwrap();
    let new_name = common::unique_name("renamed");
    t.c.rename(&new_name).unwrap();
    assert_eq!(t.c.name(), new_name);
    assert!(t.c.is_defined());
    assert!(!Container::with_lxcpath(&t.name, &t.lxcpath).unwrap().is_defined());
    let config = t.lxcpath.join(&new_name).join("config");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("lxc.no.such.key"), "the hook did not run: {text}");
    assert!(t.c.load_config(None).is_err());
    // Mended, the same handle loads it and works.
    let mended: String = text
        .lines()
        .filter(|l| !l.contains("no.such.key") && !l.contains("hook.clone"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&config, mended).unwrap();
    // liblxc adds what it reads to the configuration in memory, the part of
    // the broken file it read included: start again from nothing.
    t.c.clear_config().unwrap();
    t.c.load_config(None).unwrap();
    assert_eq!(t.c.config_item("lxc.uts.name").unwrap(), new_name.as_str());
    t.c.start().unwrap();
    t.c.wait(State::Running, T).unwrap();
    t.c.stop().unwrap();
}

#[test]
fn calls_in_the_wrong_state_say_so() {
    require_root!();
    let t = TestContainer::new("wrong");
    for (op, r) in [
        ("freeze", t.c.freeze()),
        ("reboot", t.c.reboot()),
        ("set_cgroup_item", t.c.set_cgroup_item("pids.max", "10")),
    ] {
        match r {
            Err(Error::WrongState { state: State::Stopped, .. }) => {}
            other => panic!("{op} on a stopped container: {other:?}"),
        }
    }
    assert!(matches!(t.c.cgroup_item("pids.max"), Err(Error::WrongState { .. })));
    assert!(matches!(t.c.running_config_item("lxc.uts.name"), Err(Error::WrongState { .. })));

    t.c.start().unwrap();
    t.c.wait(State::Running, T).unwrap();
    let err = t.c.start().unwrap_err();
    assert!(matches!(err, Error::WrongState { op: "start", state: State::Running, .. }), "{err}");
    let err = t.c.destroy().unwrap_err();
    assert!(matches!(err, Error::WrongState { op: "destroy", .. }), "{err}");
    assert!(t.c.is_defined());
    let err = t.c.wait(State::Frozen, Duration::ZERO).unwrap_err();
    assert!(matches!(err, Error::Timeout { op: "wait", .. }), "{err}");
}

#[test]
fn calls_on_an_undefined_container_say_so() {
    require_root!();
    let t = TestContainer::undefined("undef");
    let err = t.c.start().unwrap_err();
    assert!(matches!(err, Error::NotDefined { op: "start", .. }), "{err}");
    let err = t.c.destroy().unwrap_err();
    assert!(matches!(err, Error::NotDefined { .. } | Error::Failed { .. }), "{err}");
}

#[test]
fn foreground_start_from_a_threaded_process_is_refused_with_the_reason() {
    require_root!();
    let t = TestContainer::new("fg");
    // The test harness runs tests on threads, so this process has several.
    let _other = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(500)));
    let err = t.c.start_with(&StartOptions::new().daemonize(false)).unwrap_err();
    assert!(matches!(err, Error::ForegroundStartInThreadedProcess { .. }), "{err}");
    assert!(err.to_string().contains("daemonized"), "{err}");
    assert!(!t.c.is_running());
}

#[test]
fn may_control_as_root() {
    require_root!();
    let t = TestContainer::new("ctl");
    assert!(t.c.may_control());
}

#[test]
fn init_pidfd_polls_readable_after_stop() {
    require_root!();
    if !lxc::has_api_extension("pidfd") {
        eprintln!("SKIPPED: liblxc without the pidfd extension");
        return;
    }
    let t = TestContainer::running("pidfd");
    if !lxc::has_container_member("init_pidfd") {
        // A 4.0.0-4.0.4 header (init_pidfd at 544) with a 4.0.5+ library
        // (at 552), or the reverse: never called.
        let err = t.c.init_pidfd().unwrap_err();
        assert!(matches!(err, Error::Unsupported { op: "init_pidfd", .. }), "{err}");
        eprintln!("init_pidfd not tested: header {}, liblxc {}", lxc::header_version(), lxc::version());
        t.c.stop().unwrap();
        return;
    }
    let fd = t.c.init_pidfd().unwrap();
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: p is one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut p, 1, 0) }, 0, "readable while running");
    t.c.stop().unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::poll(&mut p, 1, 5000) }, 1, "not readable after stop");
}

#[test]
fn start_options_set_the_objects_flags() {
    require_root!();
    let t = TestContainer::new("flags");
    assert!(t.c.daemonize(), "liblxc daemonizes by default");
    t.c.want_daemonize(false).unwrap();
    assert!(!t.c.daemonize());
    t.c.want_close_all_fds(true).unwrap();
    t.c.want_daemonize(true).unwrap();
    assert!(t.c.daemonize());
    t.c.start_with(&StartOptions::new().close_all_fds(true)).unwrap();
    t.c.wait(State::Running, T).unwrap();
    // The daemonized start returned while the container runs on.
    assert!(t.c.is_running());
    // SAFETY: reading the public `daemonize` field of the live object.
    assert!(unsafe { (*t.c.as_raw()).daemonize });
    assert!(t.c.daemonize());
}

#[test]
fn raw_handles_round_trip() {
    require_root!();
    let t = TestContainer::new("raw");
    let raw = t.c.as_raw();
    // SAFETY: raw is a live container object; the new handle takes its own
    // reference, and nothing calls the &mut methods meanwhile.
    let second = unsafe { Container::from_raw_borrowed(raw) }.unwrap();
    assert_eq!(second.name(), t.name);
    assert_eq!(second.as_raw(), raw);
    let p = second.into_raw();
    // SAFETY: p carries the reference into_raw gave up.
    let third = unsafe { Container::from_raw(p) }.unwrap();
    assert!(third.is_defined());
    drop(third);
    // The first handle still holds its own reference.
    assert_eq!(t.c.config_item("lxc.uts.name").unwrap(), t.name.as_str());
    // SAFETY: a null pointer is refused before use.
    assert!(unsafe { Container::from_raw(std::ptr::null_mut()) }.is_err());
}

/// `stop`, `shutdown` and `unfreeze` of a container that has reached their
/// goal already succeed, as in liblxc; a container that does not exist is
/// still an error.
#[test]
fn stopping_what_is_stopped_is_ok() {
    require_root!();
    let t = TestContainer::new("idem");
    assert_eq!(t.c.state().unwrap(), State::Stopped);
    t.c.stop().unwrap();
    t.c.stop().unwrap();
    t.c.shutdown(Duration::from_secs(1)).unwrap();
    t.c.shutdown(Duration::MAX).unwrap();
    t.c.shutdown(Duration::ZERO).unwrap();
    t.c.unfreeze().unwrap();
    assert_eq!(t.c.state().unwrap(), State::Stopped);

    let ghost = Container::with_lxcpath(&common::unique_name("ghost"), &t.lxcpath).unwrap();
    for (op, r) in [("stop", ghost.stop()), ("shutdown", ghost.shutdown(T)), ("unfreeze", ghost.unfreeze())] {
        match r {
            Err(Error::NotDefined { .. }) => {}
            other => panic!("{op} of an undefined container: {other:?}"),
        }
    }

    t.c.start().unwrap();
    t.c.wait(State::Running, T).unwrap();
    // Running and not frozen: unfreeze has nothing to do.
    t.c.unfreeze().unwrap();
    assert_eq!(t.c.state().unwrap(), State::Running);
    t.c.stop().unwrap();
    t.c.wait(State::Stopped, T).unwrap();
    t.c.stop().unwrap();
}

/// liblxc's wait gives up at once when the container stops while another
/// state is awaited: that is no timeout.
#[test]
fn a_wait_ended_by_a_stop_is_not_a_timeout() {
    require_root!();
    let t = TestContainer::running("waitstop");
    let long = Duration::from_secs(60);
    let started = std::time::Instant::now();
    let err = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(1500));
            t.c.stop().unwrap();
        });
        t.c.wait(State::Frozen, long).unwrap_err()
    });
    assert!(started.elapsed() < Duration::from_secs(30), "waited {:?}", started.elapsed());
    match err {
        Error::WaitInterrupted { wanted: State::Frozen, state: State::Stopped, after, .. } => {
            assert!(after < long, "{after:?}")
        }
        other => panic!("a wait ended by a stop: {other:?}"),
    }
    // Waiting for what has come is still fine, and a state that never
    // comes still times out.
    t.c.wait(State::Stopped, Duration::from_secs(5)).unwrap();
    let err = t.c.wait(State::Frozen, Duration::from_secs(1)).unwrap_err();
    assert!(matches!(err, Error::Timeout { op: "wait", .. }), "{err:?}");
}

/// liblxc names cgroups after the container alone (`lxc.payload.NAME`),
/// whatever its lxcpath. Destroying a container removes only the cgroups
/// its own starts left, never those of a running container of the same
/// name in another lxcpath, even when they have the very same names (the
/// destroyed one ran first and its cgroups are gone).
#[test]
fn destroy_spares_the_cgroups_of_a_same_named_container_elsewhere() {
    require_root!();
    let a = TestContainer::new("twin");
    let home = TestContainer::new("twinhome");
    common::copy_base(&home.lxcpath, &a.name);
    let b = Container::with_lxcpath(&a.name, &home.lxcpath).unwrap();

    b.start().unwrap();
    b.wait(State::Running, T).unwrap();
    b.stop().unwrap();
    b.wait(State::Stopped, T).unwrap();
    let deadline = std::time::Instant::now() + T;
    while !common::leftover_cgroups(&a.name).is_empty() {
        assert!(std::time::Instant::now() < deadline, "{:?}", common::leftover_cgroups(&a.name));
        std::thread::sleep(Duration::from_millis(50));
    }

    a.c.start().unwrap();
    a.c.wait(State::Running, T).unwrap();
    let dirs = common::leftover_cgroups(&a.name);
    let payload = dirs
        .iter()
        .find(|d| d.file_name().is_some_and(|f| f.to_string_lossy().starts_with("lxc.payload.")))
        .expect("the running container's payload cgroup");
    // An empty child, like those a container's own init makes.
    let probe = payload.join("lxc-rs-probe");
    std::fs::create_dir(&probe).unwrap();

    b.destroy().unwrap();
    let kept = probe.is_dir();
    let _ = std::fs::remove_dir(&probe);
    assert!(kept, "destroying {} in {} removed {}", a.name, home.lxcpath.display(), probe.display());
    for d in &dirs {
        assert!(d.is_dir(), "{} removed", d.display());
    }
    assert_eq!(a.c.state().unwrap(), State::Running);
    a.c.stop().unwrap();
    a.c.wait(State::Stopped, T).unwrap();
}

/// The cgroups a start made that were still in use when the container
/// stopped (here a process of the caller's moved into them, as a program
/// forked into them would be) are removed by the destroy once they are
/// empty: the crate notes, at the start, the monitor cgroups liblxc moved
/// its helper into and init's payload cgroups.
#[test]
fn destroy_removes_the_cgroups_its_start_left_in_use() {
    require_root!();
    // Whatever this test leaves (it fails when the crate does not remove
    // them) is removed after the container's clean-up, also on a failure.
    struct Sweep(String);
    impl Drop for Sweep {
        fn drop(&mut self) {
            for d in common::leftover_cgroups(&self.0) {
                common::remove_cgroup(&d);
            }
        }
    }
    /// The sleepers, killed and reaped however the test ends.
    struct Sleepers(Vec<std::process::Child>);
    impl Drop for Sleepers {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let _sweep;
    let t = TestContainer::new("inuse");
    _sweep = Sweep(t.name.clone());
    t.c.start().unwrap();
    t.c.wait(State::Running, T).unwrap();
    let dirs = common::leftover_cgroups(&t.name);
    let named = |p: &str| -> Vec<std::path::PathBuf> {
        dirs.iter()
            .filter(|d| d.file_name().is_some_and(|f| f.to_string_lossy().starts_with(p)))
            .cloned()
            .collect()
    };
    let (monitor, payload) = (named("lxc.monitor."), named("lxc.payload."));
    assert!(!monitor.is_empty() && !payload.is_empty(), "{dirs:?}");
    // One sleeper in every monitor cgroup, one in every payload cgroup.
    let mut sleepers = Sleepers(Vec::new());
    for set in [&monitor, &payload] {
        let child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let pid = child.id().to_string();
        sleepers.0.push(child);
        for d in set {
            std::fs::write(d.join("cgroup.procs"), &pid).unwrap();
        }
    }
    t.c.stop().unwrap();
    t.c.wait(State::Stopped, T).unwrap();
    let kept: Vec<_> = dirs.iter().filter(|d| d.is_dir()).collect();
    drop(sleepers);
    assert!(!kept.is_empty(), "liblxc removed every cgroup in use: nothing to check");
    t.c.destroy().unwrap();
    // A cgroup whose last process just ended may refuse the rmdir for a
    // moment: later calls of the crate retry (the destroy of a container
    // that does not exist is one).
    let probe = Container::with_lxcpath("probe", &t.lxcpath).unwrap();
    let deadline = std::time::Instant::now() + T;
    while !common::leftover_cgroups(&t.name).is_empty() {
        assert!(std::time::Instant::now() < deadline, "left behind: {:?}", common::leftover_cgroups(&t.name));
        let _ = probe.destroy();
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pid of the `[lxc monitor]` of a container this test started.
#[cfg(lxc_member = "set_timeout")]
fn monitor_pid(lxcpath: &std::path::Path, name: &str) -> i32 {
    let want = format!("[lxc monitor] {} {name}", lxcpath.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).trim_end_matches('\0').trim_end() == want)
        })
        .unwrap_or_else(|| panic!("no process is {want:?}"))
}

/// With the monitor stopped, `state()` fails after the timeout instead of
/// hanging.
#[cfg(lxc_member = "set_timeout")]
fn stuck_monitor_times_out(t: &TestContainer) {
    let err = t.c.set_timeout(Duration::ZERO).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    t.c.set_timeout(Duration::from_millis(300)).unwrap();
    assert_eq!(t.c.state().unwrap(), State::Running);
    let monitor = monitor_pid(&t.lxcpath, &t.name);
    // SAFETY: kill(2) on the monitor of the container this test started.
    assert_eq!(unsafe { libc::kill(monitor, libc::SIGSTOP) }, 0);
    let answer = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let c = &t.c;
        s.spawn(move || {
            let _ = tx.send(c.state());
        });
        let answer = rx.recv_timeout(Duration::from_secs(20));
        // The monitor goes on either way, so that the thread ends.
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(monitor, libc::SIGCONT) }, 0);
        answer
    });
    let answer = answer.expect("state() hung on a stopped monitor despite set_timeout(300 ms)");
    assert!(answer.is_err(), "state() of a container whose monitor is stopped: {answer:?}");
    t.c.set_timeout(Duration::MAX).unwrap();
    assert_eq!(t.c.state().unwrap(), State::Running);
}

/// `set_timeout` (liblxc 6.0 and later) bounds liblxc's wait for the
/// container's monitor. Where the header or the running library lacks the
/// member, the call is `Unsupported` (or does not exist).
#[test]
fn set_timeout_bounds_a_request_to_a_stuck_monitor() {
    require_root!();
    let t = TestContainer::running("timeout");
    if lxc::has_container_member("set_timeout") {
        #[cfg(lxc_member = "set_timeout")]
        stuck_monitor_times_out(&t);
    } else {
        #[cfg(lxc_member = "set_timeout")]
        {
            let err = t.c.set_timeout(Duration::from_secs(1)).unwrap_err();
            assert!(matches!(err, Error::Unsupported { op: "set_timeout", .. }), "{err}");
        }
        eprintln!(
            "set_timeout not tested: liblxc {} (header {}) lacks it",
            lxc::version(),
            lxc::header_version()
        );
    }
    t.c.stop().unwrap();
}

/// An lxcpath under a test's temporary directory that does not exist yet:
/// its containers are destroyed and its lock directory removed on drop.
struct MissingLxcpath(std::path::PathBuf);

impl Drop for MissingLxcpath {
    fn drop(&mut self) {
        common::clean_lxcpath(&self.0);
        common::forget_lxcpath(&self.0);
    }
}

/// README's quick start on a fresh machine: `create` into an lxcpath that
/// does not exist makes it, as `lxc-create` does; so does a copy into a new
/// lxcpath (`lxc-copy -p`). A path that is not a directory is refused, by
/// name.
#[test]
fn create_and_copy_make_a_missing_lxcpath() {
    require_root!();
    use std::os::unix::fs::PermissionsExt;
    let dir = common::temp_lxcpath();
    let first = MissingLxcpath(dir.path().join("new/lxcpath"));
    let second = MissingLxcpath(dir.path().join("other/lxcpath"));
    let name = common::unique_name("mkpath");
    let c = Container::with_lxcpath(&name, &first.0).unwrap();
    c.set_config_item("lxc.net.0.type", "empty").unwrap();
    c.create(&CreateOptions::new().template("busybox").quiet(true)).unwrap();
    assert!(c.is_defined());
    let mode = std::fs::metadata(&first.0).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o700, 0o700, "{mode:o}");
    assert_eq!(mode & 0o022, 0, "{mode:o}: at most 0755");
    let copy = c.copy(&name, &lxc::CloneOptions::new().lxcpath(&second.0)).unwrap();
    assert!(copy.is_defined());
    assert!(second.0.join(&name).join("rootfs/bin/busybox").exists());

    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let err = Container::with_lxcpath(&name, &file).unwrap_err();
    assert!(matches!(err, Error::Failed { errno: Some(libc::ENOTDIR), .. }), "{err:?}");
    assert!(
        format!("{err:?}").contains(&format!("its lxcpath {} is not a directory", file.display())),
        "{err:?}"
    );
    // One that became a file after the handle was opened.
    let later = dir.path().join("later");
    let c = Container::with_lxcpath(&name, &later).unwrap();
    std::fs::write(&later, "").unwrap();
    let err = c.create(&CreateOptions::new().template("busybox").quiet(true)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(format!("{err:?}").contains(&format!("the lxcpath {}", later.display())), "{err:?}");
}

/// What `fn main() -> Result<(), lxc::Error>` prints when it fails (the
/// Debug form) says in words what failed and why.
#[test]
fn errors_in_debug_form_say_what_and_why() {
    require_root!();
    let t = TestContainer::undefined("words");
    let mut seen = Vec::new();
    seen.push(t.c.start().unwrap_err());
    t.c.set_config_item("lxc.net.0.type", "empty").unwrap();
    seen.push(t.c.create(&CreateOptions::new().template("no-such-template").quiet(true)).unwrap_err());
    seen.push(Container::with_lxcpath("../etc", &t.lxcpath).unwrap_err());
    seen.push(t.c.set_config_item("lxc.no.such.key", "1").unwrap_err());
    seen.push(t.c.freeze().unwrap_err());
    let expected = [
        ("NotDefined: cannot start container", "is not defined in", true),
        ("Failed: create failed for container", "", true),
        ("InvalidArgument: invalid container name \"../etc\"", "must not contain '/'", false),
        ("UnknownConfigKey: unknown config key \"lxc.no.such.key\"", "not supported by liblxc", false),
        ("NotDefined: cannot freeze container", "is not defined in", true),
    ];
    assert_eq!(seen.len(), expected.len());
    for (err, (start, why, named)) in seen.iter().zip(expected) {
        let text = format!("{err:?}");
        assert!(text.starts_with(start) && text.contains(why), "{text}");
        assert!(!text.contains("error_num: ") && !text.contains("{ "), "not in words: {text}");
        assert!(text.contains(&t.name) || !named, "names the container: {text}");
    }
}

/// A caller whose standard descriptors are closed (a daemon that closed
/// them) starts a container as any other, through the helper server and
/// through an exec'd helper: the helper puts /dev/null in their place, or
/// liblxc's own descriptors would land on 0 to 2 and its daemonized start
/// (`null_stdfds`) would overwrite them. Run in a process of its own.
#[test]
fn a_caller_with_its_stdio_closed_starts_a_container() {
    require_root!();
    let exe = std::env::current_exe().unwrap();
    for server in ["1", "0"] {
        let out = std::process::Command::new(&exe)
            .args(["--exact", "start_with_the_stdio_closed", "--ignored", "--nocapture", "--test-threads=1"])
            .env("LXC_RS_TEST_CLOSED_STDIO", "1")
            .env("LXC_RS_HELPER_SERVER", server)
            .output()
            .unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "helper server {server}:\n{text}");
        assert!(text.contains("started with 0, 1 and 2 closed: Ok(())"), "helper server {server}:\n{text}");
    }
}

#[test]
#[ignore = "run by a_caller_with_its_stdio_closed_starts_a_container in a process of its own"]
fn start_with_the_stdio_closed() {
    if std::env::var_os("LXC_RS_TEST_CLOSED_STDIO").is_none() {
        return;
    }
    let t = TestContainer::new("nostdio");
    // SAFETY: fcntl, close and dup2 on this process's standard descriptors,
    // put back before anything else prints.
    let saved: Vec<i32> = (0..3).map(|fd| unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) }).collect();
    for fd in 0..3 {
        // SAFETY: see above.
        unsafe { libc::close(fd) };
    }
    let r = t.c.start().and_then(|()| t.c.wait(State::Running, Duration::from_secs(10)));
    for (fd, copy) in saved.iter().enumerate() {
        // SAFETY: see above.
        unsafe {
            libc::dup2(*copy, fd as i32);
            libc::close(*copy);
        }
    }
    println!("started with 0, 1 and 2 closed: {r:?}");
    let _ = t.c.stop();
}
