//! A caller with a SIGCHLD handler that reaps every child (a common daemon
//! idiom): a session's exit statuses stay exact. Its own test binary: the
//! handler is process-wide.

mod common;

use common::TestContainer;
use lxc::AttachOptions;

extern "C" fn reap_all(_: libc::c_int) {
    let mut status = 0;
    // SAFETY: waitpid is async-signal-safe; status is a valid out-pointer.
    while unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } > 0 {}
}

#[test]
fn session_statuses_are_exact_under_a_reaping_sigchld_handler() {
    require_root!();
    let t = TestContainer::running("reaping");
    // SAFETY: installs an async-signal-safe handler for SIGCHLD.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = reap_all as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut()), 0);
    }
    let mut s = t.c.attach_session(&AttachOptions::new()).unwrap();
    for i in 0..1000 {
        let code = i % 7;
        let st = s.command("/bin/sh").args(["-c", &format!("exit {code}")]).status().unwrap();
        assert_eq!(st.code(), Some(code), "command {i}");
    }
    s.close().unwrap();
    // SAFETY: puts the default disposition back before the rig's clean-up.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
}
