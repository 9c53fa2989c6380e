//! The per-command cost of running a program in a running container: one
//! attach per command (`attach_run_wait`) and one command through an attach
//! session. Guards what the performance work fixed: no round trip to the
//! monitor before an attach (the handle's cached init and freezer files say
//! whether the container runs, `running.rs`), a caller that only waits
//! (`attach_run_wait`, `Command::status` and `output`) reading the child's
//! exec report after the exit instead of waiting for it first, and session
//! commands waited for through their pidfd rather than a reply of the
//! helper's. Needs root, the busybox
//! template and liblxc: a busybox container in a temporary lxcpath, started
//! for the run and destroyed after it.

use criterion::{criterion_group, criterion_main, Criterion};
use lxc::AttachOptions;

#[path = "../tests/common/mod.rs"]
mod common;

fn attach(c: &mut Criterion) {
    if !common::is_root() {
        eprintln!("attach benchmarks skipped: they need root (a container is started)");
        return;
    }
    let t = common::TestContainer::running("bench-attach");
    let opts = AttachOptions::new();
    let mut g = c.benchmark_group("per command");
    g.sample_size(50);
    g.bench_function("attach_run_wait /bin/true", |b| {
        b.iter(|| assert!(t.c.attach_run_wait(&opts, "/bin/true", &[]).expect("attach").success()))
    });
    g.bench_function("command echo, output captured", |b| {
        b.iter(|| {
            let out = t.c.command("echo").arg("hello").output().expect("attach");
            assert_eq!(out.stdout, b"hello\n");
        })
    });
    let mut s = t.c.attach_session(&opts).expect("session");
    g.bench_function("session /bin/true", |b| {
        b.iter(|| assert!(s.run("/bin/true", &[]).expect("session command").success()))
    });
    g.bench_function("session echo, output captured", |b| {
        b.iter(|| {
            let out = s.command("echo").arg("hello").output().expect("session command");
            assert_eq!(out.stdout, b"hello\n");
        })
    });
    g.finish();
    s.close().expect("close the session");
}

criterion_group!(benches, attach);
criterion_main!(benches);
