//! No descriptor of the caller reaches the attached program (or a session's
//! commands) when `close_range` cannot be used, as on a kernel before 5.11
//! (`CLOSE_RANGE_CLOEXEC`) or 5.9 (`close_range`). The crate reads
//! `LXC_RS_TEST_FD_FALLBACK` once per process to skip `close_range`
//! (`proc`: sweep `/proc/self/fd`) or also `/proc` (`rlimit`: every number
//! below `RLIMIT_NOFILE`); this binary re-runs its own ignored test with
//! each value.

mod common;

use std::os::fd::RawFd;
use std::process::Command;

use common::TestContainer;
use lxc::AttachOptions;

/// A descriptor number the probe uses: high, so that no descriptor of the
/// attached `ls` itself can be mistaken for it.
const PROBE_MIN: RawFd = 200;

#[test]
fn each_fallback_keeps_the_callers_descriptors_out() {
    require_root!();
    let exe = std::env::current_exe().unwrap();
    for mode in ["proc", "rlimit"] {
        let out = Command::new(&exe)
            .args(["--exact", "with_the_forced_fallback", "--ignored", "--nocapture", "--test-threads=1"])
            .env("LXC_RS_TEST_FD_FALLBACK", mode)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "with the {mode} fallback:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("checked with {mode}")), "the inner test did not run: {stdout}");
    }
}

/// The descriptor numbers an `ls /proc/self/fd` output lists.
fn listed(out: &[u8]) -> Vec<RawFd> {
    String::from_utf8_lossy(out).split_whitespace().filter_map(|s| s.parse().ok()).collect()
}

#[test]
#[ignore = "run by each_fallback_keeps_the_callers_descriptors_out with the fallback forced"]
fn with_the_forced_fallback() {
    let Ok(mode) = std::env::var("LXC_RS_TEST_FD_FALLBACK") else {
        eprintln!("SKIPPED: only meaningful with LXC_RS_TEST_FD_FALLBACK set");
        return;
    };
    require_root!();
    let t = TestContainer::running("fdfallback");
    // A descriptor the caller opened without close-on-exec.
    // SAFETY: F_DUPFD of stdin makes a new descriptor this test owns, and
    // F_DUPFD (unlike F_DUPFD_CLOEXEC) leaves close-on-exec off.
    let probe = unsafe { libc::fcntl(0, libc::F_DUPFD, PROBE_MIN) };
    assert!(probe >= PROBE_MIN, "F_DUPFD failed");
    // SAFETY: F_GETFD on our descriptor.
    assert_eq!(unsafe { libc::fcntl(probe, libc::F_GETFD) } & libc::FD_CLOEXEC, 0);

    // The probe is visible when descriptors are left open: the check below
    // can see it.
    let out =
        t.c.command("/bin/ls")
            .arg("/proc/self/fd")
            .options(AttachOptions::new().close_fds(false))
            .output()
            .unwrap();
    assert!(listed(&out.stdout).contains(&probe), "control: {:?}", listed(&out.stdout));

    // The default: closed at exec, with the fallback sweep.
    let out = t.c.command("/bin/ls").arg("/proc/self/fd").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let fds = listed(&out.stdout);
    assert!(!fds.contains(&probe), "the caller's descriptor {probe} leaked in: {fds:?}");
    assert!(fds.iter().all(|fd| *fd <= 3), "{fds:?}");

    // A session's helper closes it (close_range(0) or the sweep), so its
    // commands do not get it either.
    let mut s = t.c.attach_session(&AttachOptions::new()).unwrap();
    let out = s.command("/bin/ls").arg("/proc/self/fd").output().unwrap();
    let fds = listed(&out.stdout);
    assert!(!fds.contains(&probe), "the caller's descriptor {probe} reached a session command: {fds:?}");
    s.close().unwrap();

    // SAFETY: closing the probe made above.
    unsafe { libc::close(probe) };
    drop(t);
    println!("checked with {mode}");
}
