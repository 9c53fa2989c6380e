//! Attach sessions: one attach, many commands.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::TestContainer;
use lxc::{AttachOptions, Error, State, Stdio};

#[test]
fn many_commands_through_one_attach() {
    require_root!();
    let t = TestContainer::running("sess");
    let mut s = t.c.attach_session(&AttachOptions::new()).unwrap();
    for i in 0..50 {
        let out = s
            .command("/bin/sh")
            .args(["-c", &format!("echo out{i}; echo err{i} >&2; exit {}", i % 3)])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(i % 3));
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("out{i}\n"));
        assert_eq!(String::from_utf8_lossy(&out.stderr), format!("err{i}\n"));
    }
    assert!(s.run("/bin/true", &[]).unwrap().success());
    let st = s.command("/bin/sh").args(["-c", "kill -KILL $$"]).status().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    s.close().unwrap();
}

#[test]
fn commands_inherit_what_the_session_attached_with() {
    require_root!();
    let t = TestContainer::running("sessids");
    let opts = AttachOptions::new().uid(1000).gid(1000).env("FROM_SESSION", "yes").cwd("/tmp");
    let mut s = t.c.attach_session(&opts).unwrap();
    let out = s
        .command("/bin/sh")
        .args(["-c", "id -u; id -g; echo $FROM_SESSION; pwd; hostname"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("1000\n1000\nyes\n/tmp\n{}\n", t.name));
    // The session's helper sits in the container's cgroup; so do its commands.
    let out = s.command("/bin/cat").arg("/proc/self/cgroup").output().unwrap();
    let host = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let inside = String::from_utf8_lossy(&out.stdout);
    assert!(!common::memory_cgroup_line(&inside).is_empty(), "{inside}");
    assert_ne!(common::memory_cgroup_line(&inside), common::memory_cgroup_line(&host));
    // Per command: environment, cleared environment, working directory.
    let out = s
        .command("/bin/sh")
        .args(["-c", "echo $A $FROM_SESSION; pwd"])
        .env("A", "1")
        .current_dir("/etc")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 yes\n/etc\n");
    let out = s.command("/bin/env").env_clear().env("ONLY", "this").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ONLY=this\n");
}

#[test]
fn stdin_and_missing_programs() {
    require_root!();
    let t = TestContainer::running("sessio");
    let mut s = t.c.attach_session(&AttachOptions::new()).unwrap();
    let (r, mut w) = std::io::pipe().unwrap();
    std::io::Write::write_all(&mut w, b"through the session\n").unwrap();
    drop(w);
    let out = s.command("/bin/cat").stdin(Stdio::from(std::os::fd::OwnedFd::from(r))).output().unwrap();
    assert_eq!(out.stdout, b"through the session\n");
    let err = s.command("/no/such/program").status().unwrap_err();
    assert!(
        matches!(&err, Error::ProgramNotStarted { source, .. } if source.raw_os_error() == Some(libc::ENOENT)),
        "{err:?}"
    );
    // The session goes on after a failed command.
    assert!(s.run("/bin/true", &[]).unwrap().success());
    let out = s.command("/bin/ls").arg("/proc/self/fd").output().unwrap();
    let n = String::from_utf8_lossy(&out.stdout).split_whitespace().count();
    assert_eq!(n, 4, "descriptors leaked into a session command: {:?}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_dead_helper_or_stopped_container_is_an_error_not_a_hang() {
    require_root!();
    let t = TestContainer::running("sessdead");
    let mut s = t.c.attach_session(&AttachOptions::new()).unwrap();
    assert!(s.run("/bin/true", &[]).unwrap().success());
    // SAFETY: the helper is a child of this process, started by the session.
    unsafe { libc::kill(s.helper_pid() as i32, libc::SIGKILL) };
    let err = s.run("/bin/true", &[]).unwrap_err();
    assert!(matches!(err, Error::SessionClosed { .. }), "{err:?}");
    assert!(matches!(s.run("/bin/true", &[]), Err(Error::SessionClosed { .. })));

    let mut s = t.c.attach_session(&AttachOptions::new()).unwrap();
    t.c.stop().unwrap();
    t.c.wait(State::Stopped, Duration::from_secs(10)).unwrap();
    let err = s.run("/bin/true", &[]).unwrap_err();
    assert!(matches!(err, Error::SessionClosed { .. }), "{err:?}");
}

#[test]
fn a_frozen_container_refuses_attaches_and_sessions_end_without_hanging() {
    require_root!();
    let t = TestContainer::running("frozen");
    let mut s = t.c.attach_session(&AttachOptions::new()).unwrap();
    assert!(s.run("/bin/true", &[]).unwrap().success());
    let mut piped = t.c.attach_session(&AttachOptions::new()).unwrap();
    t.c.freeze().unwrap();
    t.c.wait(lxc::State::Frozen, std::time::Duration::from_secs(10)).unwrap();
    let before = std::time::Instant::now();
    // A command whose output is captured: the blocking API reads the pipes
    // first, and must still see the freeze (a thaw after 20 s turns a miss
    // into a failure, not a hang).
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (name, lxcpath) = (t.name.clone(), t.lxcpath.clone());
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(std::time::Duration::from_secs(20)).is_err() {
            let _ = lxc::Container::with_lxcpath(&name, &lxcpath).and_then(|c| c.unfreeze());
        }
    });
    let out = piped.command("echo").arg("hi").stdout(lxc::Stdio::piped()).output();
    let _ = done_tx.send(());
    watchdog.join().unwrap();
    match out {
        Err(lxc::Error::WrongState { state: lxc::State::Frozen, .. }) => {}
        other => panic!("captured session command in a frozen container: {other:?}"),
    }
    drop(piped);
    // A new attach would freeze before it could report.
    match t.c.command("/bin/true").status() {
        Err(lxc::Error::WrongState { state: lxc::State::Frozen, .. }) => {}
        other => panic!("attach to a frozen container: {other:?}"),
    }
    // The session's helper cannot answer: the command ends the session.
    match s.run("/bin/true", &[]) {
        Err(lxc::Error::WrongState { state: lxc::State::Frozen, .. }) => {}
        other => panic!("session command in a frozen container: {other:?}"),
    }
    // A second session on the frozen container is refused too, and closing
    // the first never hangs.
    assert!(matches!(t.c.attach_session(&AttachOptions::new()), Err(lxc::Error::WrongState { .. })));
    drop(s);
    assert!(before.elapsed() < std::time::Duration::from_secs(20), "took {:?}", before.elapsed());
    t.c.unfreeze().unwrap();
    let mut s = t.c.attach_session(&AttachOptions::new()).unwrap();
    assert!(s.run("/bin/true", &[]).unwrap().success());
    s.close().unwrap();
}

/// A session with a terminal of its own would hang in liblxc's attach (it
/// returns only once every copy of the terminal is closed, and the helper
/// keeps it as its stdio): refused before liblxc is called, and the
/// container is still usable after.
#[test]
fn a_session_with_a_terminal_is_refused_not_a_hang() {
    require_root!();
    let t = TestContainer::running("sesstty");
    let opts = AttachOptions::new().add_flags(lxc::AttachFlags::TERMINAL);
    let err = t.c.attach_session(&opts).map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    let mut s = t.c.attach_session(&AttachOptions::new()).unwrap();
    assert!(s.command("/bin/true").status().unwrap().success());
    s.close().unwrap();
    t.c.stop().unwrap();
}
