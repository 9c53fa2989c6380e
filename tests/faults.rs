//! Faults from outside: a killed init, a garbage config, a read-only
//! lxcpath, a container directory deleted under a live handle. Each gives
//! a typed error or the right state; nothing panics or hangs, and other
//! containers are untouched.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::TestContainer;
use lxc::{Container, CreateOptions, Error, State};

#[test]
fn init_killed_from_outside() {
    require_root!();
    let t = TestContainer::running("kill9");
    let other = TestContainer::running("bystander");
    let pid = t.c.init_pid().unwrap();
    // SAFETY: pid is the init of our own test container.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    t.c.wait(State::Stopped, Duration::from_secs(10)).unwrap();
    assert_eq!(t.c.state().unwrap(), State::Stopped);
    assert!(!t.c.is_running());
    assert_eq!(t.c.init_pid(), None);
    // Stopped already: stop has nothing to do (as in liblxc).
    t.c.stop().unwrap();
    assert!(matches!(
        t.c.attach_run_wait(&lxc::AttachOptions::new(), "/bin/true", &[]),
        Err(Error::WrongState { .. })
    ));
    // It starts again, and the other container never noticed.
    t.c.start().unwrap();
    t.c.wait(State::Running, Duration::from_secs(10)).unwrap();
    assert_eq!(other.c.state().unwrap(), State::Running);
}

#[test]
fn a_garbage_config_file() {
    require_root!();
    let t = TestContainer::new("garbage");
    std::fs::write(
        t.lxcpath.join(&t.name).join("config"),
        b"\xff\xfe this is = not a config\nlxc.bogus.key = 1\n[[[\n",
    )
    .unwrap();
    // liblxc refuses to open a container whose configuration does not parse.
    let err = Container::with_lxcpath(&t.name, &t.lxcpath).unwrap_err();
    match &err {
        Error::Failed { op: "lxc_container_new", error_string: Some(s), .. } => {
            assert!(s.contains("configuration"), "{s}")
        }
        other => panic!("{other:?}"),
    }
    // The handle opened before the file went bad still works on its memory.
    assert_eq!(t.c.config_item("lxc.uts.name").unwrap(), t.name.as_str());
    // A second handle cannot be opened on it either, with the same error.
    assert!(matches!(t.c.try_clone(), Err(Error::Failed { op: "lxc_container_new", .. })));
}

#[test]
fn a_read_only_lxcpath() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    // A read-only bind mount: root ignores mode bits, not a read-only mount.
    let ok = std::process::Command::new("mount")
        .args(["--bind", "-o", "ro"])
        .arg(&ro)
        .arg(&ro)
        .status()
        .unwrap()
        .success()
        || std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("mount --bind {0} {0} && mount -o remount,ro,bind {0}", ro.display()))
            .status()
            .unwrap()
            .success();
    assert!(ok, "could not make a read-only mount");
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Umount(ro.clone());
    let c = Container::with_lxcpath("rofs", &ro).unwrap();
    c.set_config_item("lxc.net.0.type", "empty").unwrap();
    let err = c.create(&CreateOptions::new().template("busybox").quiet(true)).unwrap_err();
    assert!(matches!(err, Error::Failed { op: "create", .. }), "{err:?}");
    assert!(!c.is_defined());
    assert!(c.save_config(None).is_err());
    let _ = std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755));
    common::forget_lxcpath(&ro);
}

#[test]
fn the_directory_deleted_under_a_live_handle() {
    require_root!();
    let t = TestContainer::new("vanish");
    let other = TestContainer::new("stays");
    std::fs::remove_dir_all(t.lxcpath.join(&t.name)).unwrap();
    assert!(!t.c.is_defined());
    assert!(matches!(t.c.start(), Err(Error::NotDefined { .. })));
    assert!(t.c.destroy().is_err());
    assert!(t.c.snapshot(None).is_err());
    assert!(t.c.copy(&common::unique_name("c"), &lxc::CloneOptions::new()).is_err());
    // The in-memory configuration is still there to read.
    assert_eq!(t.c.config_item("lxc.uts.name").unwrap(), t.name.as_str());
    // Saving writes the in-memory configuration back: the container is
    // defined again (its rootfs is gone, so it would not start).
    t.c.save_config(None).unwrap();
    assert!(t.c.is_defined());
    assert!(other.c.is_defined());
    other.c.start().unwrap();
    other.c.wait(State::Running, Duration::from_secs(10)).unwrap();
}

#[test]
fn a_template_that_fails() {
    require_root!();
    let t = TestContainer::undefined("badtpl2");
    let script = t.lxcpath.join("failing-template");
    std::fs::write(&script, "#!/bin/sh\necho 'template: giving up' >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    t.c.set_config_item("lxc.net.0.type", "empty").unwrap();
    let err = t.c.create(&CreateOptions::new().template(script.to_str().unwrap()).quiet(true)).unwrap_err();
    assert!(matches!(err, Error::Failed { op: "create", .. }), "{err:?}");
    assert!(!t.c.is_defined(), "a failed template must not leave a defined container");
}

#[test]
fn a_create_killed_at_random_points_is_reported_as_partly_created() {
    require_root!();
    use std::os::unix::process::CommandExt;
    let dir = common::temp_lxcpath();
    let lxcpath = dir.path();
    // A small LCG seeded from the pid: different points in each run, and
    // printed so that a failure can be replayed.
    let mut seed = u64::from(std::process::id());
    eprintln!("seed {seed}");
    let mut partial = 0;
    for round in 0..6 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(20 + (seed >> 33) % 400);
        let name = common::unique_name(&format!("killed{round}"));
        // lxc-create runs liblxc's create; it and the template it runs are
        // killed together (their own process group).
        let mut child = std::process::Command::new("lxc-create")
            .args(["-P", &lxcpath.display().to_string(), "-n", &name, "-t", "busybox"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        // SAFETY: the process group of the child we just spawned.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        child.wait().unwrap();
        let c = Container::with_lxcpath(&name, lxcpath).unwrap();
        if lxcpath.join(&name).join("partial").exists() {
            partial += 1;
            match c.start() {
                Err(Error::PartiallyCreated { .. }) => {}
                other => panic!("start of a half-made container after {delay:?}: {other:?}"),
            }
            assert!(!c.is_running());
        } else if c.is_defined() {
            // Killed after the create finished: a whole container.
            c.start().unwrap();
            c.stop().unwrap();
        }
        if c.is_defined() {
            c.destroy().unwrap();
        }
        let _ = std::fs::remove_dir_all(lxcpath.join(&name));
    }
    eprintln!("{partial} of 6 creates were killed half-way");
    common::forget_lxcpath(lxcpath);
}
