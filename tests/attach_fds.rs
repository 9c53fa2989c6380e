//! Descriptors across thousands of attaches, from a single-threaded process
//! and from a multithreaded one.
//!
//! liblxc 5.0 to 7.0 leak the container init's pidfd in the caller on every
//! attach from a single-threaded process (the kernel lets only such a
//! process `setns` into a time namespace, and on that path liblxc never
//! closes the pidfd). libtest always runs tests beside a thread of its own,
//! so this binary has no harness: as the driver it makes a running
//! container with the test rig, runs the attaches itself (multithreaded:
//! the rig has a watchdog thread), then runs itself again as a worker, a
//! plain single-threaded process that does the same.

mod common;

use std::process::Command;

use lxc::{AttachOptions, Container};

/// Attaches of each kind (`LXC_RS_ATTACH_FDS_ROUNDS` overrides, for a quick
/// run by hand).
fn rounds() -> usize {
    std::env::var("LXC_RS_ATTACH_FDS_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(2000)
}
const WORKER_ENV: &str = "LXC_RS_ATTACH_FDS_WORKER";

fn threads() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/task").map(|m| m.nlink() - 2).unwrap_or(0)
}

/// Runs `ROUNDS` attaches of each kind and returns a failure message per
/// kind whose descriptor count changed.
fn attaches(c: &Container) -> Vec<String> {
    let o = AttachOptions::new();
    let kinds: [(&str, &dyn Fn()); 4] = [
        ("command().output()", &|| {
            let out = c.command("/bin/echo").arg("x").output().unwrap();
            assert_eq!(out.stdout, b"x\n");
        }),
        ("attach_run_wait", &|| assert!(c.attach_run_wait(&o, "/bin/true", &[]).unwrap().success())),
        ("attach_wait (closure)", &|| {
            // SAFETY: the closure only returns a number.
            assert!(unsafe { c.attach_wait(&o, || 0) }.unwrap().success())
        }),
        ("attach_session", &|| {
            let mut s = c.attach_session(&o).unwrap();
            assert!(s.run("/bin/true", &[]).unwrap().success());
            s.close().unwrap();
        }),
    ];
    // The first attach opens the `/dev/null` the crate keeps for the life
    // of the process (the default stdin).
    kinds[0].1();
    let mut failures = Vec::new();
    for (kind, attach) in kinds {
        if kind == "attach_session" {
            // The first session starts the crate's reaper thread (and its
            // eventfd), for the life of the process: the single-threaded
            // worker stays single-threaded until here.
            attach();
        }
        let before = common::settled_fd_count();
        for _ in 0..rounds() {
            attach();
        }
        let after = common::settled_fd_count();
        println!(
            "{} x {kind} with {} thread(s): {before} descriptors before, {after} after",
            rounds(),
            threads()
        );
        if after != before {
            let open: Vec<String> = std::fs::read_dir("/proc/self/fd")
                .map(|d| {
                    d.flatten()
                        .map(|e| {
                            format!(
                                "{}->{}",
                                e.file_name().to_string_lossy(),
                                std::fs::read_link(e.path())
                                    .map(|p| p.display().to_string())
                                    .unwrap_or_default()
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            failures.push(format!(
                "{kind} ({} threads): {before} descriptors became {after}: {open:?}",
                threads()
            ));
        }
    }
    failures
}

fn worker(spec: &str) -> i32 {
    let (lxcpath, name) = spec.split_once(':').expect("lxcpath:name");
    if threads() != 1 {
        eprintln!("the worker must be single-threaded, it has {} threads", threads());
        return 2;
    }
    let c = Container::with_lxcpath(name, lxcpath).unwrap();
    let failures = attaches(&c);
    for f in &failures {
        eprintln!("FAILED: {f}");
    }
    i32::from(!failures.is_empty())
}

fn main() {
    if let Ok(spec) = std::env::var(WORKER_ENV) {
        std::process::exit(worker(&spec));
    }
    if !common::is_root() {
        eprintln!("SKIPPED: this test needs root to make containers");
        return;
    }
    let t = common::TestContainer::running("fds");
    let mut failures = attaches(&t.c);
    let status = Command::new(std::env::current_exe().unwrap())
        .env(WORKER_ENV, format!("{}:{}", t.lxcpath.display(), t.name))
        .status()
        .unwrap();
    if !status.success() {
        failures.push(format!("the single-threaded worker failed: {status}"));
    }
    drop(t);
    let (passed, failed) = (if failures.is_empty() { 1 } else { 0 }, failures.len());
    for f in &failures {
        eprintln!("FAILED: {f}");
    }
    println!("attach_fds: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
