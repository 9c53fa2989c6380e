//! Eight threads on one `Arc<Container>`, checked by a race detector.
//!
//! valgrind 3.19 (Debian 12) does not know the `openat2` system call, with
//! which liblxc 5.0 creates and starts containers. So this program, the
//! driver, makes and starts the container outside valgrind (the rig in
//! `common`), runs itself again as the worker, in a child process under
//! the tool named by `LXC_RS_VALGRIND_TOOL` (`helgrind` or `drd`;
//! `./dev helgrind`, `./dev drd`), and then stops and destroys the
//! container (also when the worker fails: `TestContainer`'s drop). Without
//! `LXC_RS_VALGRIND_TOOL` (as in `./dev test`) the driver runs the workload
//! in its own process, without valgrind.
//!
//! It has its own `main` (`harness = false`): the measured process runs
//! only the workload's threads, none of the test harness's.
//!
//! Knobs: `LXC_RS_VALGRIND_ROUNDS` (rounds per thread under valgrind, 20),
//! `LXC_RS_VALGRIND_LOG` (keep the tool's log there), `LXC_RS_VALGRIND_ARGS`
//! (more valgrind options, such as `--gen-suppressions=all`).
//!
//! The program must be built with the crate's `valgrind` feature for the
//! tool to see the handle's locks (see `lxc/src/valgrind.rs`);
//! `./dev helgrind` does so.
//!
//! Attaching cannot run under valgrind 3.19: liblxc 5.0.2 checks the
//! container's init with `pidfd_send_signal` (`get_attach_context` in
//! `attach.c`), a system call that valgrind 3.19 does not know (424), and
//! fails the attach on its `ENOSYS`; `interfaces` (whose forked child
//! enters the container's network namespace) fails under valgrind too.
//! Under valgrind the attaching thread therefore runs only
//! `want_daemonize`, which holds the fork lock exclusively as attach does;
//! attach and interfaces run in the workload without valgrind.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::TestContainer;
use lxc::{Container, State};

const ENV_TOOL: &str = "LXC_RS_VALGRIND_TOOL";
const ENV_LXCPATH: &str = "LXC_RS_VALGRIND_LXCPATH";
const ENV_NAME: &str = "LXC_RS_VALGRIND_CONTAINER";
const ENV_ROUNDS: &str = "LXC_RS_VALGRIND_ROUNDS";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // What a test runner asks of a libtest binary: one test, never ignored.
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("eight_threads_on_one_handle: test");
        }
        return;
    }
    if args.iter().any(|a| a == "--ignored") {
        return;
    }
    if let (Some(lxcpath), Ok(name)) = (std::env::var_os(ENV_LXCPATH), std::env::var(ENV_NAME)) {
        worker(Path::new(&lxcpath), &name);
        return;
    }
    if !common::is_root() {
        eprintln!("SKIPPED: this test needs root to make containers");
        return;
    }
    let t = TestContainer::running("vg");
    match std::env::var(ENV_TOOL) {
        Ok(tool) => under_valgrind(&tool, &t),
        Err(_) => workload(Arc::new(t.c.try_clone().unwrap()), 40, true),
    }
    eprintln!("eight threads on one handle: ok");
}

/// Runs this program as the worker under `valgrind --tool=<tool>` on `t`'s
/// container; panics when the tool reports an error or the workload fails.
fn under_valgrind(tool: &str, t: &TestContainer) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // memcheck's suppressions are the crate's one list of liblxc's leaks.
    let supp = manifest.join(if tool == "memcheck" {
        "valgrind.supp".to_owned()
    } else {
        format!("valgrind-{tool}.supp")
    });
    assert!(supp.is_file(), "no suppression file {}", supp.display());
    // A log asked for with LXC_RS_VALGRIND_LOG is kept; a temporary one
    // is removed (a failure prints it first).
    let asked = std::env::var_os("LXC_RS_VALGRIND_LOG").map(PathBuf::from);
    let log = asked
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("lxc-rs-{tool}.{}.log", std::process::id())));
    let mut cmd = Command::new("valgrind");
    cmd.arg(format!("--tool={tool}"))
        .arg("--error-exitcode=99")
        // What liblxc forks either execs or _exits; what runs in the
        // container is not ours to check.
        .arg("--trace-children=no")
        .arg("--child-silent-after-fork=yes")
        .arg(format!("--suppressions={}", supp.display()))
        .arg(format!("--log-file={}", log.display()));
    if tool == "memcheck" {
        cmd.args(["--leak-check=full", "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite"]);
    }
    if let Ok(extra) = std::env::var("LXC_RS_VALGRIND_ARGS") {
        cmd.args(extra.split_whitespace());
    }
    let started = std::time::Instant::now();
    let status = cmd
        .arg(std::env::current_exe().expect("the test binary"))
        .env(ENV_LXCPATH, &t.lxcpath)
        .env(ENV_NAME, &t.name)
        .env_remove(ENV_TOOL)
        .status()
        .expect("run valgrind (is it installed?)");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if asked.is_none() {
        let _ = std::fs::remove_file(&log);
    }
    let summary = text.lines().filter(|l| l.contains("ERROR SUMMARY")).collect::<Vec<_>>().join("\n");
    eprintln!("{tool}: {summary} in {:.0?}", started.elapsed());
    if !status.success() {
        // valgrind's word on each openat2 that liblxc tries before falling
        // back to openat is no finding.
        let noise = [
            "unhandled amd64-linux syscall: 437",
            "README_MISSING_SYSCALL",
            "write your own handler",
            "Nevertheless we consider",
            "bug_reports",
        ];
        let shown: String =
            text.lines().filter(|l| !noise.iter().any(|n| l.contains(n))).map(|l| format!("{l}\n")).collect();
        panic!("{tool} failed ({status}):\n{shown}");
    }
}

/// The worker: the workload on the driver's running container.
fn worker(lxcpath: &Path, name: &str) {
    let rounds = std::env::var(ENV_ROUNDS).ok().and_then(|r| r.parse().ok()).unwrap_or(20);
    let c = Container::with_lxcpath(name, lxcpath).expect("open the driver's container");
    assert!(c.is_running(), "the driver's container is not running");
    workload(Arc::new(c), rounds, false);
}

/// Eight threads on one handle, each for `rounds` rounds: state and
/// is_running; configuration reads and keys; set_config_item writes;
/// set and clear_config_item writes; cgroup reads; freeze and unfreeze;
/// attach (`command("/bin/true").status()`, when `attach`), interfaces and
/// want_daemonize; running_config_item.
fn workload(c: Arc<Container>, rounds: usize, attach: bool) {
    let key = common::memory_limit_key();
    let name = c.name().to_owned();
    // The crate's process-wide, initialize-once values are made on this
    // thread before any other exists (thread creation orders them before
    // every use): the version string and the /dev/null descriptor that
    // attached programs get as stdin.
    assert!(!lxc::version().is_empty());
    if attach {
        assert!(c.command("/bin/true").status().unwrap().success());
    }
    let before = c.config_item("lxc.environment").map(|v| v.into_vec().len()).unwrap_or(0);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let c = Arc::clone(&c);
            let name = name.clone();
            std::thread::spawn(move || {
                for round in 0..rounds {
                    match i {
                        0 => {
                            assert!(matches!(
                                c.state().unwrap(),
                                State::Running | State::Frozen | State::Freezing | State::Thawed
                            ));
                            assert!(c.is_running());
                        }
                        1 => {
                            assert_eq!(c.config_item("lxc.uts.name").unwrap(), name.as_str());
                            assert!(c.keys(Some("lxc.net.0")).unwrap().iter().any(|k| k.ends_with("type")));
                        }
                        2 => c.set_config_item("lxc.environment", &format!("VG{round}=1")).unwrap(),
                        3 => {
                            // Every liblxc call reads the log level of
                            // the configuration (the log macros read
                            // `current_config->loglevel`), also the calls
                            // that take no lock of liblxc's (state,
                            // freeze, cgroup reads): only the handle's
                            // configuration lock orders this write.
                            c.set_config_item("lxc.log.level", ["ERROR", "WARN"][round % 2]).unwrap();
                            c.set_config_item("lxc.cap.drop", "sys_module").unwrap();
                            c.clear_config_item("lxc.cap.drop").unwrap();
                            c.clear_config_item("lxc.log.level").unwrap();
                        }
                        4 => assert!(!c.cgroup_item(key).unwrap().is_empty()),
                        5 => {
                            // Races the forks of thread 6: both must come
                            // back.
                            let _ = c.freeze();
                            c.unfreeze().unwrap();
                        }
                        6 => {
                            if attach {
                                // Refused while thread 5 has the container
                                // frozen (an attach would freeze with it).
                                match c.command("/bin/true").status() {
                                    Ok(st) => assert!(st.success()),
                                    Err(lxc::Error::WrongState {
                                        state: lxc::State::Frozen | lxc::State::Freezing,
                                        ..
                                    }) => {}
                                    Err(e) => panic!("attach: {e}"),
                                }
                                assert!(c.interfaces().unwrap().iter().any(|n| n == "lo"));
                            }
                            c.want_daemonize(true).unwrap();
                        }
                        _ => assert_eq!(c.running_config_item("lxc.uts.name").unwrap(), name),
                    }
                }
                // Handed back and dropped by the joining thread: the
                // reference count is never decremented by two threads at
                // once.
                c
            })
        })
        .collect();
    let clones: Vec<Arc<Container>> =
        threads.into_iter().map(|h| h.join().expect("a thread failed")).collect();
    drop(clones);
    let after = c.config_item("lxc.environment").unwrap().into_vec().len();
    assert_eq!(after, before + rounds, "every set_config_item is kept");
    c.unfreeze().unwrap();
    assert_eq!(c.state().unwrap(), State::Running);
}
