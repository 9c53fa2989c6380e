//! Repeated attaches and sessions leak no descriptors and leave no zombies.
//!
//! One test in its own binary: the descriptor count of the process is only
//! meaningful when no other test runs beside it.

mod common;

use common::TestContainer;
use lxc::AttachOptions;

#[test]
fn attaches_and_sessions_leak_nothing() {
    require_root!();
    let t = TestContainer::running("leak");
    let o = AttachOptions::new();
    // Warm up: the /dev/null descriptor is opened once for the process.
    t.c.attach_run_wait(&o, "/bin/true", &[]).unwrap();
    let fds = common::fd_count();

    for i in 0..200 {
        if i % 2 == 0 {
            assert!(t.c.attach_run_wait(&o, "/bin/true", &[]).unwrap().success());
        } else {
            let out = t.c.command("/bin/echo").arg("x").output().unwrap();
            assert_eq!(out.stdout, b"x\n");
        }
    }
    for _ in 0..20 {
        // SAFETY: the closure only returns.
        assert!(unsafe { t.c.attach_wait(&o, || 0) }.unwrap().success());
    }
    assert_eq!(common::fd_count(), fds, "attach leaked descriptors");
    assert!(common::zombies().is_empty(), "zombies after attach: {:?}", common::zombies());

    // The first session starts the crate's reaper thread, whose eventfd
    // stays for the life of the process.
    t.c.attach_session(&o).unwrap().close().unwrap();
    let fds = common::settled_fd_count();
    for _ in 0..20 {
        let mut s = t.c.attach_session(&o).unwrap();
        for _ in 0..10 {
            assert!(s.command("/bin/echo").arg("x").output().unwrap().status.success());
        }
    }
    assert_eq!(common::settled_fd_count(), fds, "sessions leaked descriptors");
    assert!(common::zombies().is_empty(), "zombies after sessions: {:?}", common::zombies());
}
