//! The crate's own cost per call, beside what liblxc spends: string
//! conversion in and out, option building, error construction, a call
//! through the helper. Run with
//! `cargo bench`; no container is started (a container object in a
//! temporary lxcpath, in memory only).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use lxc::{AttachOptions, Container, CreateOptions, Namespaces, State};

fn strings(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("lxc-rs-bench.{}", std::process::id()));
    let ct = Container::with_lxcpath("bench", &dir).expect("container object");
    ct.set_config_item("lxc.uts.name", "bench").expect("set");
    ct.set_config_item("lxc.cap.drop", "sys_module mac_admin").expect("set");
    c.bench_function("config_item_str (key in, String out)", |b| {
        b.iter(|| ct.config_item_str(black_box("lxc.uts.name")).expect("get"))
    });
    c.bench_function("config_item list value", |b| {
        b.iter(|| ct.config_item(black_box("lxc.cap.drop")).expect("get"))
    });
    c.bench_function("set_config_item", |b| {
        b.iter(|| ct.set_config_item(black_box("lxc.uts.name"), black_box("bench")).expect("set"))
    });
    let long_key = format!("lxc.environment.{}", "x".repeat(300));
    c.bench_function("key longer than the stack buffer (heap CString)", |b| {
        b.iter(|| ct.config_item_str(black_box(&long_key)).ok())
    });
    c.bench_function("keys", |b| b.iter(|| ct.keys(None).expect("keys")));
}

fn options(c: &mut Criterion) {
    c.bench_function("AttachOptions builder", |b| {
        b.iter(|| {
            AttachOptions::new()
                .env(black_box("LANG"), "C")
                .cwd("/tmp")
                .uid(1000)
                .groups([27, 100])
                .namespaces(Namespaces::MOUNT | Namespaces::PID)
        })
    });
    c.bench_function("CreateOptions builder", |b| {
        b.iter(|| CreateOptions::new().template(black_box("busybox")).quiet(true).args(["--a", "--b"]))
    });
}

fn errors(c: &mut Criterion) {
    c.bench_function("refused name (error construction)", |b| {
        b.iter(|| Container::new(black_box("a/b")).expect_err("refused"))
    });
    c.bench_function("error to_string", |b| {
        let e = Container::new("a/b").expect_err("refused");
        b.iter(|| black_box(&e).to_string())
    });
    c.bench_function("State parse", |b| b.iter(|| black_box("RUNNING").parse::<State>().expect("state")));
}

/// One call through the crate's helper (`snapshot_destroy_all` of a
/// container that does not exist: the helper loads nothing and reports at
/// once), forked by the helper server: guards the server against an exec
/// per call (about 0.35 against 1.35 ms on the project's VM).
fn helper(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("lxc-rs-bench-helper.{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench directory");
    let ct = Container::with_lxcpath("absent", &dir).expect("container object");
    c.bench_function("helper call (served)", |b| b.iter(|| black_box(ct.snapshot_destroy_all().is_ok())));
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, strings, options, errors, helper);
criterion_main!(benches);
