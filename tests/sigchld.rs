//! A caller that ignores SIGCHLD (`signal(SIGCHLD, SIG_IGN)`, a common
//! daemon idiom; issue 13 item 6). The disposition belongs to the whole
//! process, so this binary has one test that runs every step in order.
//!
//! The kernel reaps such a process's children by itself and sends no
//! SIGCHLD. A monitor that inherited that never noticed its init dying:
//! the state stayed RUNNING with a dead pid and `stop` blocked for
//! minutes. Starts run in the crate's helper process, which resets every
//! signal to its default, so the monitor does notice. liblxc's attach
//! cannot wait for its own child then: the crate refuses it with a typed
//! error.

mod common;

use std::time::{Duration, Instant};

use common::TestContainer;
use lxc::{AttachOptions, CloneOptions, CreateOptions, Error, State};

fn set_sigchld(handler: libc::sighandler_t) {
    // SAFETY: SIG_IGN and SIG_DFL are valid dispositions for SIGCHLD.
    let old = unsafe { libc::signal(libc::SIGCHLD, handler) };
    assert_ne!(old, libc::SIG_ERR);
}

#[test]
fn a_caller_that_ignores_sigchld() {
    require_root!();
    // Made first: the rig copies the base with `cp`, and std's
    // `Command::status` cannot wait for it while SIGCHLD is ignored.
    let t = TestContainer::new("sigign");
    let u = TestContainer::undefined("sigcreate");
    set_sigchld(libc::SIG_IGN);
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            set_sigchld(libc::SIG_DFL);
        }
    }
    let _restore = Restore;

    // create, snapshot and copy run in the helper, which this process does
    // not need to wait for.
    u.c.set_config_item("lxc.net.0.type", "empty").unwrap();
    u.c.create(&CreateOptions::new().template("busybox").quiet(true)).unwrap();
    assert!(u.c.is_defined());
    u.c.destroy().unwrap();
    assert_eq!(t.c.snapshot(None).unwrap(), "snap0");
    t.c.snapshot_destroy("snap0").unwrap();
    let copy = t.c.copy(&common::unique_name("sigcopy"), &CloneOptions::new()).unwrap();
    assert!(copy.is_defined());
    copy.destroy().unwrap();

    // A started container whose init is killed from outside is seen to stop.
    t.c.start().unwrap();
    t.c.wait(State::Running, Duration::from_secs(10)).unwrap();
    let pid = t.c.init_pid().unwrap();
    // SAFETY: kill has no memory preconditions; pid is the container's init.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let t0 = Instant::now();
    t.c.wait(State::Stopped, Duration::from_secs(10)).expect("the state becomes STOPPED within seconds");
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(t.c.state().unwrap(), State::Stopped);
    assert!(t.c.init_pid().is_none());
    let t0 = Instant::now();
    // Stopping what is stopped is Ok, as in liblxc, and returns at once.
    t.c.stop().unwrap();
    t.c.wait(State::Stopped, Duration::from_secs(5)).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2), "stop and wait blocked: {:?}", t0.elapsed());

    // It starts again, and attach says why it cannot work.
    t.c.start().unwrap();
    t.c.wait(State::Running, Duration::from_secs(10)).unwrap();
    let err = t.c.command("true").status().unwrap_err();
    assert!(matches!(err, Error::SigchldIgnored { op: "attach" }), "{err:?}");
    assert!(err.to_string().contains("SIGCHLD"));
    let err = t.c.attach_run_wait(&AttachOptions::new(), "true", &[]).unwrap_err();
    assert!(matches!(err, Error::SigchldIgnored { .. }), "{err:?}");
    assert!(matches!(t.c.attach_session(&AttachOptions::new()), Err(Error::SigchldIgnored { .. })));

    // A session attached before SIGCHLD was ignored keeps working, with
    // exact statuses: its commands then stay the helper's children, and the
    // helper sends their statuses.
    set_sigchld(libc::SIG_DFL);
    let mut s = t.c.attach_session(&AttachOptions::new()).unwrap();
    set_sigchld(libc::SIG_IGN);
    for code in 0..5 {
        let st = s.command("/bin/sh").args(["-c", &format!("exit {code}")]).status().unwrap();
        assert_eq!(st.code(), Some(code));
    }
    let out = s.command("echo").arg("relayed").output().unwrap();
    assert_eq!(out.stdout, b"relayed\n");
    assert!(matches!(s.command("/no/such/program").status(), Err(Error::ProgramNotStarted { .. })));
    s.close().unwrap();

    // SA_NOCLDWAIT with the default action has the same effect on waitpid.
    // SAFETY: a zeroed sigaction with SIG_DFL and SA_NOCLDWAIT is valid.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        sa.sa_flags = libc::SA_NOCLDWAIT;
        assert_eq!(libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut()), 0);
    }
    let err = t.c.command("true").status().unwrap_err();
    assert!(matches!(err, Error::SigchldIgnored { op: "attach" }), "{err:?}");
    set_sigchld(libc::SIG_IGN);

    // stop works and does not block.
    let t0 = Instant::now();
    t.c.stop().unwrap();
    t.c.wait(State::Stopped, Duration::from_secs(10)).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(10));
}
