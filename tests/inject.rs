//! Devices, interfaces, mounts, consoles, descriptors and CRIU on running
//! containers.

mod common;

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use common::TestContainer;
use lxc::{Error, State};

fn sh(c: &lxc::Container, script: &str) -> String {
    let out = c.command("/bin/sh").args(["-c", script]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_device_node_appears_inside() {
    require_root!();
    // A harmless device the host has and the container lacks: the loop
    // module's control node (loaded if need be: a fresh guest has none).
    let dev = "/dev/loop-control";
    if !std::path::Path::new(dev).exists() {
        let _ = Command::new("modprobe").arg("loop").status();
    }
    assert!(std::path::Path::new(dev).exists(), "no {dev} on this host, even after modprobe loop");
    let t = TestContainer::running("dev");
    let probe = format!("test -c {dev} && echo node; : < {dev} && echo opens");
    assert_eq!(sh(&t.c, &probe), "");
    t.c.add_device_node(dev, None).unwrap();
    // The node is there, and the device cgroup (v1 devices.allow, v2 the
    // container's BPF program) lets it be opened.
    assert_eq!(sh(&t.c, &probe), "node\nopens\n");
    t.c.remove_device_node(dev, None).unwrap();
    assert_eq!(sh(&t.c, &probe), "");
    assert!(t.c.add_device_node("/no/such/device", None).is_err());
}

#[test]
fn a_host_veth_moves_in_and_back() {
    require_root!();
    let t = TestContainer::running("veth");
    let host = format!("lxrs{}a", std::process::id() % 100000);
    let peer = format!("lxrs{}b", std::process::id() % 100000);
    let st = Command::new("ip")
        .args(["link", "add", &host, "type", "veth", "peer", "name", &peer])
        .status()
        .unwrap();
    assert!(st.success(), "ip link add failed");
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }
    let _del = Del(peer.clone());
    t.c.attach_interface(&host, Some("eth7")).unwrap();
    assert!(t.c.interfaces().unwrap().contains(&"eth7".to_owned()));
    assert!(!std::path::Path::new(&format!("/sys/class/net/{host}")).exists());
    t.c.detach_interface("eth7", Some(&host)).unwrap();
    assert!(!t.c.interfaces().unwrap().contains(&"eth7".to_owned()));
    assert!(std::path::Path::new(&format!("/sys/class/net/{host}")).exists());
    assert!(t.c.attach_interface("nosuchdev0", None).is_err());
}

#[test]
fn a_bind_mount_is_readable_inside() {
    require_root!();
    let t = TestContainer::new("mnt");
    // liblxc moves injected mounts through a shared mount point.
    let shared = t.lxcpath.join("shmounts");
    std::fs::create_dir_all(&shared).unwrap();
    let sh_host = |cmd: &str| Command::new("sh").args(["-c", cmd]).status().unwrap().success();
    assert!(sh_host(&format!("mount -t tmpfs shmounts {0} && mount --make-shared {0}", shared.display())));
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _umount = Umount(shared.clone());
    t.c.set_config_item("lxc.mount.auto", &format!("shmounts:{}:/dev/.lxc-mounts", shared.display()))
        .unwrap();
    t.c.start().unwrap();
    t.c.wait(State::Running, Duration::from_secs(10)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "from the host\n").unwrap();
    t.c.mount(Some(dir.path()), "/mnt".as_ref(), None, libc::MS_BIND, None).unwrap();
    assert_eq!(sh(&t.c, "cat /mnt/hello.txt"), "from the host\n");
    t.c.umount("/mnt".as_ref(), 0).unwrap();
    assert_eq!(sh(&t.c, "cat /mnt/hello.txt 2>/dev/null || echo gone"), "gone\n");
    let stopped = TestContainer::new("mnt2");
    let err = stopped.c.mount(Some(dir.path()), "/mnt".as_ref(), None, libc::MS_BIND, None).unwrap_err();
    assert!(matches!(err, Error::WrongState { .. }), "{err:?}");
}

#[test]
fn consoles_and_the_console_log() {
    require_root!();
    let t = TestContainer::new("cons");
    t.c.set_config_item("lxc.console.buffer.size", "131072").unwrap();
    t.c.start().unwrap();
    t.c.wait(State::Running, Duration::from_secs(10)).unwrap();
    t.wait_init_ready();
    let tty = t.c.console_getfd(None).unwrap();
    assert!(tty.ttynum >= 1, "{}", tty.ttynum);
    assert!(tty.ptx.as_raw_fd() >= 0 && tty.keep.as_raw_fd() >= 0);
    drop(tty);
    // busybox init asks on the console to press Enter.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = t.c.console_log(false, 0).unwrap();
        if !log.is_empty() || std::time::Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        String::from_utf8_lossy(&log).contains("activate this console"),
        "{:?}",
        String::from_utf8_lossy(&log)
    );
    // What was read is not read again; clearing an empty buffer is fine.
    assert!(t.c.console_log(false, 0).unwrap().is_empty());
    t.c.console_log(true, 0).unwrap();
    // What the container writes to its console is in the log ...
    let console = |text: &str| {
        let out =
            t.c.command("/bin/sh").args(["-c", &format!("echo {text} > /dev/console")]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    console("written-then-read");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut log = Vec::new();
    while !String::from_utf8_lossy(&log).contains("written-then-read") {
        assert!(std::time::Instant::now() < deadline, "{:?}", String::from_utf8_lossy(&log));
        std::thread::sleep(Duration::from_millis(50));
        log.extend(t.c.console_log(false, 0).unwrap());
    }
    // ... unless the log is cleared without being read.
    console("written-then-cleared");
    std::thread::sleep(Duration::from_millis(200));
    t.c.console_log_clear().unwrap();
    let log = t.c.console_log(false, 0).unwrap();
    assert!(
        !String::from_utf8_lossy(&log).contains("written-then-cleared"),
        "{:?}",
        String::from_utf8_lossy(&log)
    );
    t.c.console_log_clear().unwrap();
}

#[test]
fn descriptors_and_reboot2() {
    require_root!();
    let t = TestContainer::running("fd2");
    let fd = t.c.devpts_fd().unwrap();
    assert!(fd.as_raw_fd() >= 0);
    // No seccomp notifier is configured: a typed error, not a crash.
    assert!(t.c.seccomp_notify_fd().is_err());
    let before = t.c.init_pid().unwrap();
    t.c.reboot2(Duration::from_secs(20)).unwrap();
    t.c.wait(State::Running, Duration::from_secs(10)).unwrap();
    assert_ne!(t.c.init_pid().unwrap(), before);
}

#[test]
fn reboot2_of_a_frozen_container_is_refused_not_waited_out() {
    require_root!();
    let t = TestContainer::running("frozenreboot");
    t.c.freeze().unwrap();
    let e = t.c.reboot2(Duration::from_secs(600)).unwrap_err();
    assert!(matches!(e, Error::WrongState { state: State::Frozen, .. }), "{e:?}");
    t.c.unfreeze().unwrap();
    assert_eq!(t.c.state().unwrap(), State::Running);
}

#[test]
fn a_restore_from_a_directory_without_a_dump_is_an_error() {
    require_root!();
    // A restore holds the handle exclusively; it used to ask for the
    // lxcpath under that lock, and waited for itself.
    let t = TestContainer::new("norestore");
    let dir = tempfile::tempdir().unwrap();
    let e = t.c.restore(dir.path(), false).unwrap_err();
    assert!(matches!(e, Error::Failed { .. } | Error::Unsupported { .. }), "{e:?}");
    assert!(!t.c.is_running());
}

#[test]
fn checkpoint_and_restore_where_criu_allows() {
    require_root!();
    let t = TestContainer::running("criu");
    let dir = tempfile::tempdir().unwrap();
    match t.c.checkpoint(dir.path(), true, false) {
        Ok(()) => {
            t.c.wait(State::Stopped, Duration::from_secs(10)).unwrap();
            match t.c.restore(dir.path(), false) {
                Ok(()) => {
                    t.c.wait(State::Running, Duration::from_secs(10)).unwrap();
                    assert!(t.c.is_running());
                }
                Err(e) => {
                    eprintln!("restore refused here: {e}");
                    assert!(matches!(e, Error::Failed { .. } | Error::Unsupported { .. }), "{e:?}");
                }
            }
        }
        Err(e) => {
            eprintln!("checkpoint refused here: {e}");
            assert!(matches!(e, Error::Failed { .. } | Error::Unsupported { .. }), "{e:?}");
            assert!(t.c.is_running(), "a failed checkpoint must leave the container running");
        }
    }
}
