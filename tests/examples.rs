//! Every example runs as a user would run it, so none can rot: each makes
//! its containers in a temporary lxcpath and removes them.
//!
//! Each example checks what it claims as it prints it (`[ok]` or
//! `[FAILED]`, then `all claims held`, or a non-zero exit), and each test
//! below asserts the figures again from the output. The claims, and the
//! assertion that checks each:
//!
//! | example | claim it prints | checked by |
//! |---|---|---|
//! | demo | liblxc version (runtime, header) | `demo`: equals `lxc::version()` here |
//! | demo | RUNNING, init pid N | example: state, `/proc/N/comm` is `init`; `demo`: `[ok]` line |
//! | demo | limit after setting 10000000 | example and `demo`: within a page below 10000000 |
//! | demo | the command ran inside | example: hostname, `:/` cgroup line; `demo`: `hello from demo`, exit status 0 |
//! | demo | stopped and destroyed | example: not defined, not running after clean-up |
//! | ls | the `lxc-ls -f` table | `ls_matches_lxc_ls_fancy`: same rows as the real `lxc-ls -f` |
//! | create | created, config, rootfs | example: defined, config file, rootfs populated; test: handle sees it, `--keep` keeps it, else gone |
//! | memory_limit | limit now, saved, survives a restart | example: readback, config line, new init, readback after restart; test: each `[ok]` line (liblxc 7.0 on v1: the typed refusal) |
//! | clone_snapshot | copies' hostnames, base untouched, snapshot listed, broken, restored, runs again | example: each; test: the lines and `[ok]`s |
//! | provision | 6 changes, then none; the service answers | example: counts against the recipe, second run 0, HTTP 200 and the recipe's body; test: the same from the output |
//! | netlab | addresses, round trips, both transfers complete, shaped rate, netem delay or a reason, partition and heal, CPU quota, disk write limit | example: each; `netlab_measures_every_effect_it_announces`: the figures parsed from the output |
//! | nested | inner containers run their own init, are listed, are removed; outer still runs | example (inside and outside): each; test: the lines and `[ok]`s |
//! | stats | CPU%, memory per container | example: busy >= 50% and within 15 points of its loop's `/proc` CPU time, idle <= 5%, memory > 0; test: the figures parsed |
//! | quickstart (README) | memory limit 64MiB, `uname` inside | `readme_quick_start_runs_verbatim`: the README block is the file; both lines |
//! | blue_green | blue and green healthy, green's CPU quota, the canary's share, blue drained, >= 1000 requests, 0 failed, only green after blue is gone | example: each; `blue_green_*`: the figures parsed from the output |
//! | fleet (`tokio`) | the others did all 10 steps, the killed one stopped mid-way, its stream said RUNNING then STOPPED, the others still run | example: each; `fleet_goes_on_without_a_killed_member`: the lines, every container's prefixed output |

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

/// Runs an example that checks its claims: it must end with every claim
/// held and none failed; its output.
fn run_checked(cmd: &mut Command) -> String {
    let (_, text) = run(cmd);
    assert!(text.contains("all claims held") && !text.contains("[FAILED]"), "{text}");
    text
}

/// The number right after `after` in `text` (the first occurrence).
fn figure(text: &str, after: &str) -> f64 {
    let at = text.find(after).unwrap_or_else(|| panic!("{after:?} not in:\n{text}")) + after.len();
    let num: String =
        text[at..].trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    num.parse().unwrap_or_else(|_| panic!("no number after {after:?} in:\n{text}"))
}

#[test]
fn demo() {
    require_root!();
    let text = run_checked(&mut example("demo"));
    assert!(text.starts_with(&format!("liblxc {} (built against ", lxc::version())), "{text}");
    let after = figure(&text, "after setting 10000000:");
    assert!(after <= 10_000_000.0 && after > 10_000_000.0 - 4096.0, "{text}");
    assert!(
        text.contains("is RUNNING and pid") && text.contains("command exited with exit status: 0"),
        "{text}"
    );
    assert!(
        text.contains("  | hello from demo") && text.contains("[ok] demo is stopped and destroyed"),
        "{text}"
    );
    assert!(text.ends_with("done\n"), "{text}");
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
    let text =
        run_checked(example("create").args(["-n", "made", "-t", "busybox", "--lxcpath"]).arg(dir.path()));
    assert!(text.contains("created made") && text.contains("[ok] its root filesystem"), "{text}");
    // Not kept: the example destroyed it again.
    assert!(!dir.path().join("made").exists(), "{text}");
    let text = run_checked(
        example("create").args(["-n", "kept", "-t", "busybox", "--keep", "--lxcpath"]).arg(dir.path()),
    );
    assert!(text.contains("keeping"), "{text}");
    let kept = lxc::Container::with_lxcpath("kept", dir.path()).unwrap();
    assert!(kept.is_defined());
    assert!(dir.path().join("kept/rootfs/bin/busybox").is_file());
    kept.destroy().unwrap();
    common::forget_lxcpath(dir.path());
}

#[test]
fn memory_limit_survives_a_restart() {
    require_root!();
    let text = run_checked(&mut example("memory_limit"));
    let v1 = lxc::cgroup_layout("memory") != lxc::CgroupLayout::V2;
    let key = if v1 { "memory.limit_in_bytes" } else { "memory.max" };
    let now = figure(&text, &format!("-> {key} ="));
    assert!(now <= 10_000_000.0 && now > 10_000_000.0 - 4096.0, "{text}");
    if v1 && lxc::runtime_version() >= lxc::Version::new(7, 0, 0) {
        // liblxc 7.0 has no cgroup v1 configuration keys: said, typed.
        assert!(
            text.contains("cannot save a cgroup v1 limit")
                && text.contains("dropped the cgroup v1")
                && text.contains("[ok] lxc.cgroup.memory.limit_in_bytes is refused with a typed error"),
            "{text}"
        );
    } else {
        let after = figure(&text, &format!("after the restart {key} ="));
        assert!(after <= 10_000_000.0 && after > 10_000_000.0 - 4096.0, "{text}");
        assert!(text.contains("[ok] the container really restarted"), "{text}");
        assert!(text.contains("[ok] the configuration file holds"), "{text}");
        assert!(text.contains("[ok] the limit survived the restart"), "{text}");
    }
}

#[test]
fn clone_snapshot_restores() {
    require_root!();
    let text = run_checked(example("clone_snapshot").args(["--copies", "2"]));
    assert!(text.contains("web1 says hostname web1") && text.contains("web2 says hostname web2"), "{text}");
    assert!(text.contains("snapshot snap0 of web1: [\"snap0\"]"), "{text}");
    assert!(text.contains("/bin/busybox present: false"), "{text}");
    assert!(text.contains("/etc/release is \"release 1\", /bin/busybox present: true"), "{text}");
    assert!(
        text.contains("web1 is RUNNING again") && text.contains("[ok] web1 runs again and reads release 1"),
        "{text}"
    );
    assert!(text.contains("[ok] writing into web1 leaves base untouched"), "{text}");
}

#[test]
fn provision_is_idempotent_and_the_service_answers() {
    require_root!();
    let text = run_checked(&mut example("provision"));
    assert!(
        text.contains("6 change(s)") && text.contains("[ok] a new container needed all 6 items"),
        "{text}"
    );
    assert!(text.contains("nothing to do") && text.contains("[ok] the second run changed nothing"), "{text}");
    assert_eq!(text.matches("  ok        ").count(), 6, "{text}");
    // busybox's httpd answers HTTP/1.1 from 1.32 on (Debian 12), HTTP/1.0 before (Debian 11).
    assert!(
        ["HTTP/1.1", "HTTP/1.0"]
            .iter()
            .any(|v| text.contains(&format!("{v} 200 OK: <h1>hello from a provisioned container</h1>"))),
        "{text}"
    );
}

#[test]
fn netlab_measures_every_effect_it_announces() {
    require_root!();
    let text = run_checked(&mut example("netlab"));
    // Both transfers arrived whole, as the receiver counted.
    let free = figure(&text, "transfer of 32 MiB node1 -> node2:");
    let shaped = figure(&text, "transfer of 1 MiB node1 -> node2:");
    assert!(
        text.contains("(33554432 bytes received in") && text.contains("(1048576 bytes received in"),
        "{text}"
    );
    assert!((2.0..=6.0).contains(&shaped), "shaped to 4 Mbit/s, measured {shaped}:\n{text}");
    assert!(free >= 12.0, "unshaped {free} Mbit/s:\n{text}");
    // netem: measured where the kernel has it, else skipped with the reason.
    let netem = std::path::Path::new("/sys/module/sch_netem").exists()
        || Command::new("modinfo").arg("sch_netem").output().is_ok_and(|o| o.status.success());
    if netem {
        assert!(text.contains("[ok] the round trip with netem is"), "{text}");
    } else {
        assert!(text.contains("skipped: this kernel has no netem qdisc (sch_netem)"), "{text}");
    }
    assert!(text.contains("node1 -> node3: cut, node2 -> node3: up"), "{text}");
    assert!(text.contains("healed: node1 -> node3 up again"), "{text}");
    let limited = figure(&text, "with the quota:");
    let unlimited = figure(&text, "without it:");
    assert!((22.5..=27.5).contains(&limited), "a 25% quota, measured {limited}%:\n{text}");
    assert!(unlimited >= 50.0, "{text}");
    // The disk limit: measured where the host's cgroups and disk allow it
    // (v1 blkio here, the lxcpath on a real disk), else said why not.
    if text.contains("skipped: no block I/O limit here") {
        assert!(lxc::cgroup_layout("blkio") == lxc::CgroupLayout::V2 || !on_a_disk(), "{text}");
    } else {
        let rate = figure(&text, "the cgroup counted 8388608 bytes written:");
        assert!((2.0..=4.4).contains(&rate), "a 4 MiB/s limit, measured {rate} MiB/s:\n{text}");
    }
    assert!(text.contains("removing bridge"), "{text}");
}

/// Whether the temporary directory, where netlab puts its lxcpath, is on
/// a block device.
fn on_a_disk() -> bool {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(std::env::temp_dir()).map(|m| m.dev()).unwrap_or(0);
    std::path::Path::new(&format!("/sys/dev/block/{}:{}", libc::major(dev), libc::minor(dev))).exists()
}

#[test]
fn stats_shows_a_busy_container() {
    require_root!();
    let text = run_checked(example("stats").args(["--seconds", "3"]));
    let row = |name: &str| -> Vec<String> {
        let line = text.lines().rfind(|l| l.starts_with(name)).unwrap_or_default();
        line.split_whitespace().map(str::to_owned).collect()
    };
    let cpu =
        |r: &[String]| -> f64 { r.get(1).map_or(-1.0, |c| c.trim_end_matches('%').parse().unwrap_or(-1.0)) };
    let (busy, idle) = (row("busy"), row("idle"));
    assert!(cpu(&busy) >= 50.0 && (0.0..=5.0).contains(&cpu(&idle)), "{text}");
    let by_proc = figure(&text, "by its cgroup,");
    assert!((cpu(&busy) - by_proc).abs() <= 15.0, "{text}");
    for r in [&busy, &idle] {
        let mem: lxc::ByteSize = r.get(2).map_or("0", String::as_str).parse().unwrap();
        assert!(mem.bytes().is_some_and(|b| b > 0), "{text}");
    }
}

/// The async front's fleet (feature `tokio`): 20 containers provisioned at
/// once from one runtime, one killed from outside halfway.
#[cfg(feature = "tokio")]
#[test]
fn fleet_goes_on_without_a_killed_member() {
    require_root!();
    let text = run_checked(example("fleet").args(["--count", "20"]));
    assert!(text.contains("[ok] 19 of the 19 others did all 10 steps"), "{text}");
    assert!(text.contains("[ok] 19 of the others still run"), "{text}");
    assert!(text.contains("fleet-10's state stream said RUNNING, then STOPPED"), "{text}");
    // Every container's output came in, prefixed by its name.
    for i in 0..20 {
        let name = format!("fleet-{i:02}");
        assert!(text.contains(&format!("[{name}] {name}")), "no hostname line of {name}: {text}");
        if i != 10 {
            assert!(text.contains(&format!("[{name}] v1")), "{name} did not finish: {text}");
        }
    }
    let stop = figure(&text, "the killed container stopped after step");
    assert!((4.0..10.0).contains(&stop), "{text}");
}

#[test]
fn nested_containers_inside_an_outer_one() {
    require_root!();
    let text = run_checked(example("nested").args(["--inner-count", "2"]));
    assert_eq!(text.matches("all claims held").count(), 2, "inside and outside: {text}");
    assert!(text.contains("[ok] no inner container is left"), "{text}");
    assert!(text.contains("[inside outer] inner1 is RUNNING: inner1 pid1=init"), "{text}");
    assert!(text.contains("[inside outer] running: [\"inner1\", \"inner2\"]"), "{text}");
    assert!(text.contains("outer still RUNNING; inner containers all gone"), "{text}");
}

/// The first ```rust block of README.md.
fn readme_block() -> String {
    let readme = include_str!("../README.md");
    let start = readme.find("```rust\n").expect("README has a rust block") + "```rust\n".len();
    let len = readme[start..].find("```\n").expect("the block ends");
    readme[start..start + len].to_owned()
}

/// README's quick start, verbatim: the block is `examples/quickstart.rs`,
/// and the program runs as it stands, with its `/tmp/lxc` missing: in a
/// private mount namespace whose `/tmp` is an empty tmpfs (the test's own,
/// gone with the namespace), so the container and its lxcpath are the
/// test's alone. Whatever the program leaves is stopped and destroyed in
/// that namespace before it ends.
#[test]
fn readme_quick_start_runs_verbatim() {
    require_root!();
    assert_eq!(
        readme_block(),
        include_str!("../examples/quickstart.rs"),
        "README and examples/quickstart.rs differ"
    );
    // A container of that name and lxcpath running on the host would
    // answer on the same command socket (abstract: per network namespace).
    let host = lxc::Container::with_lxcpath("web", "/tmp/lxc").unwrap();
    if host.is_running() {
        eprintln!("skipped: a container web runs in the host's /tmp/lxc; the quick start would reach it");
        return;
    }
    let exe = example("quickstart").get_program().to_owned();
    // The example may sit below /tmp (a checkout there): its directory is
    // bound at /mnt, in the namespace only, before the tmpfs hides it.
    assert!(std::path::Path::new("/mnt").is_dir(), "the test binds the example's directory at /mnt");
    let script = r#"mount --bind "$(dirname "$0")" /mnt || exit 89
mount -t tmpfs -o size=512m,mode=1777 lxc-rs-readme /tmp || exit 90
test ! -e /tmp/lxc || exit 91
/mnt/"$(basename "$0")"; rc=$?
lxc-stop -k -n web -P /tmp/lxc >/dev/null 2>&1
lxc-destroy -n web -P /tmp/lxc >/dev/null 2>&1
exit $rc"#;
    let (_, text) = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .arg(exe));
    common::forget_lxcpath(std::path::Path::new("/tmp/lxc"));
    assert!(text.contains("memory limit: 64MiB"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("web runs: Linux web ")), "{text}");
}

/// The client's line: `client: N requests, F failed (blue B, green G), slowest MS ms`.
#[cfg(feature = "image")]
fn blue_green_client(text: &str) -> (f64, f64, f64, f64) {
    let line =
        text.lines().find(|l| l.starts_with("client: ")).unwrap_or_else(|| panic!("no client line:\n{text}"));
    (figure(line, "client: "), figure(line, "requests, "), figure(line, "(blue "), figure(line, "green "))
}

#[cfg(feature = "image")]
#[test]
fn blue_green_switches_releases_without_a_failed_request() {
    require_root!();
    let text = run_checked(&mut example("blue_green"));
    let (total, failed, blue, green) = blue_green_client(&text);
    assert!(total >= 1000.0, "{text}");
    assert_eq!(failed, 0.0, "{text}");
    assert_eq!(blue + green, total, "{text}");
    assert!(blue > 0.0 && green >= 200.0, "{text}");
    assert!(text.contains("blue stopped and destroyed"), "{text}");
    assert!(!text.contains("canary"), "{text}");
}

#[cfg(feature = "image")]
#[test]
fn blue_green_canary_sends_its_share_to_green_first() {
    require_root!();
    let text = run_checked(example("blue_green").args(["--canary", "25"]));
    let (total, failed, ..) = blue_green_client(&text);
    assert!(total >= 1000.0, "{text}");
    assert_eq!(failed, 0.0, "{text}");
    let share = figure(&text, "answers from green (");
    assert!((share - 25.0).abs() <= 10.0, "{text}");
    for color in ["blue ", "green"] {
        assert!(text.lines().any(|l| l.starts_with(&format!("  {color} during the canary: CPU "))), "{text}");
    }
}
