//! Every example runs as a user would run it, so none can rot: each makes
//! its containers in a temporary lxcpath and removes them.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The example binary `name`, built by `cargo test` beside this test.
fn example(name: &str) -> Command {
    let exe = std::env::current_exe().expect("test binary path");
    let dir: PathBuf = exe.parent().and_then(|d| d.parent()).expect("target dir").join("examples");
    Command::new(dir.join(name))
}

fn run(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().expect("run the example");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "example failed ({}):\n{text}", out.status);
    (out, text)
}

#[test]
fn demo() {
    require_root!();
    let (_, text) = run(&mut example("demo"));
    assert!(
        text.contains("after setting 10000000: 9998336") || text.contains("after setting 10000000: 10000000"),
        "{text}"
    );
    assert!(text.contains("hello from demo") && text.ends_with("done\n"), "{text}");
}

#[test]
fn ls_matches_lxc_ls_fancy() {
    require_root!();
    let t = common::TestContainer::new("lsa");
    let b = t.sibling("lsb");
    t.c.set_config_item("lxc.group", "web").unwrap();
    t.c.set_config_item("lxc.start.auto", "1").unwrap();
    t.c.save_config(None).unwrap();
    b.set_config_item("lxc.group", "db").unwrap();
    b.set_config_item("lxc.group", "backup").unwrap();
    b.save_config(None).unwrap();
    t.c.start().unwrap();
    t.c.wait(lxc::State::Running, std::time::Duration::from_secs(10)).unwrap();
    let (out, _) = run(example("ls").arg("--lxcpath").arg(&t.lxcpath));
    let real = Command::new("lxc-ls").arg("-f").arg("-P").arg(&t.lxcpath).output().unwrap();
    let rows = |b: &[u8]| -> Vec<Vec<String>> {
        String::from_utf8_lossy(b)
            .lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect()
    };
    assert_eq!(
        rows(&out.stdout),
        rows(&real.stdout),
        "ours:\n{}\nlxc-ls -f:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&real.stdout)
    );
    assert_eq!(rows(&out.stdout).len(), 3);
}

#[test]
fn create_busybox_in_a_temporary_lxcpath() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = run(example("create").args(["-n", "made", "-t", "busybox", "--lxcpath"]).arg(dir.path()));
    assert!(text.contains("created made"), "{text}");
    // Not kept: the example destroyed it again.
    assert!(!dir.path().join("made").exists(), "{text}");
    let (_, text) =
        run(example("create").args(["-n", "kept", "-t", "busybox", "--keep", "--lxcpath"]).arg(dir.path()));
    assert!(text.contains("keeping"), "{text}");
    let kept = lxc::Container::with_lxcpath("kept", dir.path()).unwrap();
    assert!(kept.is_defined());
    kept.destroy().unwrap();
    common::forget_lxcpath(dir.path());
}

#[test]
fn memory_limit_survives_a_restart() {
    require_root!();
    let (_, text) = run(&mut example("memory_limit"));
    assert!(text.contains("-> memory"), "{text}");
    let v1 = lxc::cgroup_layout("memory") != lxc::CgroupLayout::V2;
    if v1 && lxc::runtime_version() >= lxc::Version::new(7, 0, 0) {
        // liblxc 7.0 has no cgroup v1 configuration keys: said, typed.
        assert!(
            text.contains("cannot save a cgroup v1 limit") && text.contains("dropped the cgroup v1"),
            "{text}"
        );
    } else {
        assert!(text.contains("the limit survived the restart"), "{text}");
    }
}

#[test]
fn clone_snapshot_restores() {
    require_root!();
    let (_, text) = run(example("clone_snapshot").args(["--copies", "2"]));
    assert!(text.contains("web2 says hostname web2"), "{text}");
    assert!(text.contains("/etc/release is \"release 1\""), "{text}");
}

#[test]
fn provision_is_idempotent_and_the_service_answers() {
    require_root!();
    let (_, text) = run(&mut example("provision"));
    assert!(text.contains("6 change(s)"), "{text}");
    assert!(text.contains("nothing to do"), "{text}");
    // busybox's httpd answers HTTP/1.1 from 1.32 on (Debian 12), HTTP/1.0 before (Debian 11).
    assert!(
        ["HTTP/1.1", "HTTP/1.0"]
            .iter()
            .any(|v| text.contains(&format!("{v} 200 OK: <h1>hello from a provisioned container</h1>"))),
        "{text}"
    );
}

#[test]
fn netlab_partitions_and_heals() {
    require_root!();
    let (_, text) = run(&mut example("netlab"));
    assert!(text.contains("node1 -> node3: cut, node2 -> node3: up"), "{text}");
    assert!(text.contains("healed: node1 -> node3 up again"), "{text}");
    assert!(text.contains("removing bridge"), "{text}");
}

#[test]
fn stats_shows_a_busy_container() {
    require_root!();
    let (_, text) = run(example("stats").args(["--seconds", "2"]));
    let busy = text.lines().rfind(|l| l.starts_with("busy")).unwrap_or_default().to_owned();
    let cpu: f64 =
        busy.split_whitespace().nth(1).unwrap_or("0%").trim_end_matches('%').parse().unwrap_or(0.0);
    assert!(cpu > 20.0, "{text}");
}

#[test]
fn nested_containers_inside_an_outer_one() {
    require_root!();
    let (_, text) = run(example("nested").args(["--inner-count", "2"]));
    assert!(text.contains("[inside outer] inner1 is RUNNING: inner1 pid1=init"), "{text}");
    assert!(text.contains("[inside outer] running: [\"inner1\", \"inner2\"]"), "{text}");
    assert!(text.contains("outer still RUNNING; inner containers all gone"), "{text}");
}
