//! Unprivileged containers: the crate used by an ordinary user with
//! subordinate id ranges, and that user's reach over root's containers.
//!
//! `unprivileged_suite` runs as root. It needs the user `lxc-rs-test` (or
//! the one named by `LXC_RS_TEST_USER`) with ranges in `/etc/subuid` and
//! `/etc/subgid`; `./dev unprivileged-setup` makes them and `./dev test`
//! runs it first. The test then:
//!
//! - makes root's containers for the user to fail on: a running one in a
//!   readable lxcpath, a stopped one beside it, and one in a private lxcpath;
//! - delegates a cgroup to the user on every hierarchy (a directory below
//!   the test's own cgroup, owned by the user), as systemd's `Delegate=`
//!   does: on a cgroup v1 host an unprivileged liblxc can only make its
//!   containers' cgroups where the caller may write; on a pure cgroup v2
//!   host, a cgroup beside the test's own with the controllers enabled
//!   and the user's run in its `init.scope` (`delegate_v2`);
//! - runs the `as_user_*` tests of this binary (ignored otherwise) as the
//!   user, in those cgroups, with a private `HOME` and `TMPDIR`, and checks
//!   that all of them passed;
//! - checks that root's containers are untouched, then kills whatever the
//!   user's run left in its cgroups, removes them and the user's files.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{is_root, memory_limit_key, subordinate_range, subordinate_range_of, TestContainer};
use lxc::{AttachOptions, Container, Error, State};

/// The `as_user_*` tests, which `unprivileged_suite` runs as the user.
const USER_TESTS: usize = 6;

/// Where `unprivileged_suite` tells the user's run about root's containers:
/// `LXCPATH:NAME` of the running one, the stopped one, and the private one.
const ROOT_RUNNING: &str = "LXC_RS_ROOT_RUNNING";
const ROOT_STOPPED: &str = "LXC_RS_ROOT_STOPPED";
const ROOT_PRIVATE: &str = "LXC_RS_ROOT_PRIVATE";

struct User {
    name: String,
    uid: u32,
    gid: u32,
}

fn lookup_user(name: &str) -> Option<User> {
    let c = CString::new(name).ok()?;
    // SAFETY: c is a valid C string; getpwnam returns null or a pointer to a
    // static record, read at once.
    unsafe {
        let pw = libc::getpwnam(c.as_ptr());
        if pw.is_null() {
            return None;
        }
        Some(User { name: name.to_owned(), uid: (*pw).pw_uid, gid: (*pw).pw_gid })
    }
}

/// The directory of each of this process's cgroups (one per line of
/// `/proc/self/cgroup`), found through the cgroup mounts in mountinfo.
fn own_cgroup_dirs() -> Vec<PathBuf> {
    let cgroup = fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mut dirs = Vec::new();
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let found = mountinfo.lines().find_map(|m| {
            let (left, right) = m.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let tail: Vec<&str> = right.split(' ').collect();
            let (root, mountpoint, fstype, opts) =
                (fields.get(3)?, fields.get(4)?, tail.first()?, tail.get(2)?);
            let ok = if controllers.is_empty() {
                *fstype == "cgroup2"
            } else {
                *fstype == "cgroup" && controllers.split(',').all(|c| opts.split(',').any(|o| o == c))
            };
            let rel = if *root == "/" { path } else { path.strip_prefix(root)? };
            ok.then(|| Path::new(mountpoint).join(rel.trim_start_matches('/')))
        });
        dirs.extend(found);
    }
    dirs
}

/// Gives `user` a cgroup below this process's own on every hierarchy, and
/// returns their `cgroup.procs` opened by root: the kernel checks a
/// migration against the opener's credentials, so the child can move itself
/// in after it has become the user. Each directory goes into `made` as soon
/// as it exists, so that a failure halfway leaves nothing behind.
fn delegate(user: &User, tag: &str, made: &mut Vec<PathBuf>) -> Vec<OwnedFd> {
    if lxc::cgroup_layout("memory") == lxc::CgroupLayout::V2 {
        return vec![delegate_v2(user, tag, made)];
    }
    let mut out = Vec::new();
    for parent in own_cgroup_dirs() {
        let dir = parent.join(tag);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        made.push(dir.clone());
        // A cpuset cgroup v1 starts with no cpus and no memory nodes.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if dir.join(f).exists() {
                let v = fs::read_to_string(parent.join(f)).expect("parent cpuset");
                fs::write(dir.join(f), v.trim()).expect("copy the parent's cpuset");
            }
        }
        let entries = fs::read_dir(&dir).expect("list the new cgroup").flatten().map(|e| e.path());
        for p in std::iter::once(dir.clone()).chain(entries) {
            std::os::unix::fs::chown(&p, Some(user.uid), Some(user.gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
        }
        let procs =
            fs::OpenOptions::new().write(true).open(dir.join("cgroup.procs")).expect("open cgroup.procs");
        out.push(OwnedFd::from(procs));
    }
    out
}

/// On a pure cgroup v2 host, what systemd's `Delegate=yes` gives a user's
/// service: a cgroup `tag` beside this process's own (cgroup v2 hands
/// controllers down only from a cgroup without processes of its own: the
/// parent of a leaf), with every controller it has enabled for its
/// children, owned by the user (the directory and the files the kernel
/// lists in `/sys/kernel/cgroup/delegate`, which liblxc checks before it
/// uses a cgroup); the user's run goes into its leaf `init.scope`, which
/// liblxc leaves out of the cgroup it builds on (`prune_init_scope`), so
/// that it makes its containers' cgroups in the delegated one. Returns the
/// leaf's `cgroup.procs`, opened by root.
fn delegate_v2(user: &User, tag: &str, made: &mut Vec<PathBuf>) -> OwnedFd {
    let own = own_cgroup_dirs().into_iter().next().expect("this process's cgroup v2 directory");
    let root = Path::new("/sys/fs/cgroup");
    let parent = if own == root { own.clone() } else { own.parent().expect("parent").to_owned() };
    let dir = parent.join(tag);
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    made.push(dir.clone());
    let controllers = fs::read_to_string(dir.join("cgroup.controllers")).expect("cgroup.controllers");
    assert!(controllers.contains("memory"), "no memory controller below {}: {controllers}", parent.display());
    let enable: Vec<String> = controllers.split_whitespace().map(|c| format!("+{c}")).collect();
    fs::write(dir.join("cgroup.subtree_control"), enable.join(" ")).expect("enable the controllers");
    let leaf = dir.join("init.scope");
    fs::create_dir(&leaf).expect("mkdir init.scope");
    let listed = fs::read_to_string("/sys/kernel/cgroup/delegate")
        .unwrap_or_else(|_| "cgroup.procs\ncgroup.subtree_control\ncgroup.threads\n".into());
    for d in [&dir, &leaf] {
        let files = listed.lines().map(|f| d.join(f.trim())).filter(|p| p.exists());
        for p in std::iter::once(d.clone()).chain(files) {
            std::os::unix::fs::chown(&p, Some(user.uid), Some(user.gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
        }
    }
    let procs =
        fs::OpenOptions::new().write(true).open(leaf.join("cgroup.procs")).expect("open cgroup.procs");
    OwnedFd::from(procs)
}

/// Kills every process left in a cgroup tree (started by the user's run,
/// which this test started) and removes the tree.
fn remove_delegated(dir: &Path) {
    for _ in 0..50 {
        let mut pids = Vec::new();
        collect_pids(dir, &mut pids);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    common::remove_cgroup(dir);
}

/// Each process's pid, command line and kernel wait channel.
fn describe(pids: &[libc::pid_t]) -> Vec<String> {
    pids.iter()
        .map(|pid| {
            let read = |f: &str| fs::read_to_string(format!("/proc/{pid}/{f}")).unwrap_or_default();
            format!("{pid} {:?} ({})", read("cmdline").replace('\0', " ").trim(), read("wchan"))
        })
        .collect()
}

fn collect_pids(dir: &Path, pids: &mut Vec<libc::pid_t>) {
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    pids.extend(procs.lines().filter_map(|l| l.parse::<libc::pid_t>().ok()));
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&e.path(), pids);
        }
    }
}

/// Undoes the delegation and the user's files, also when the test fails.
struct Cleanup {
    cgroups: Vec<PathBuf>,
    home: Option<tempfile::TempDir>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for d in &self.cgroups {
            remove_delegated(d);
        }
        // The user's lxcpaths hold rootfs files of subordinate ids: root
        // removes them all with the directory.
        if let Some(home) = self.home.take() {
            let _ = fs::remove_dir_all(home.path());
        }
    }
}

fn spec(t: &TestContainer) -> String {
    format!("{}:{}", t.lxcpath.display(), t.name)
}

#[test]
fn unprivileged_suite() {
    require_root!();
    let name = std::env::var("LXC_RS_TEST_USER").unwrap_or_else(|_| "lxc-rs-test".into());
    let setup = "run `./dev unprivileged-setup` as root (./dev test does)";
    let user = lookup_user(&name).unwrap_or_else(|| panic!("no user {name:?}: {setup}"));
    for file in ["/etc/subuid", "/etc/subgid"] {
        let range = subordinate_range_of(file, &user.name, user.uid);
        assert!(range.is_some(), "{name} has no range in {file}: {setup}");
    }

    // Root's containers, for the user to be refused on.
    let running = TestContainer::running("rootrun");
    let stopped = running.sibling("rootstop");
    let private = TestContainer::new("rootpriv");
    for p in [running.lxcpath.as_path(), &running.lxcpath.join(&running.name)] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).expect("make root's lxcpath readable");
    }
    fs::set_permissions(&private.lxcpath, fs::Permissions::from_mode(0o700))
        .expect("make an lxcpath private");

    // The user's private HOME and TMPDIR, and the test binary where the
    // user can run it (the checkout may sit in root's home).
    let home = tempfile::Builder::new().prefix("lxc-rs-test.home.").tempdir().expect("home");
    std::os::unix::fs::chown(home.path(), Some(user.uid), Some(user.gid)).expect("chown home");
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o711)).expect("chmod home");
    let exe = home.path().join("unprivileged-tests");
    fs::copy(std::env::current_exe().expect("current_exe"), &exe).expect("copy the test binary");
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).expect("chmod the test binary");
    let tmp = home.path().join("tmp");
    fs::create_dir(&tmp).expect("mkdir tmp");
    std::os::unix::fs::chown(&tmp, Some(user.uid), Some(user.gid)).expect("chown tmp");

    let tag = format!("lxc-rs-unpriv.{}", std::process::id());
    let mut cleanup = Cleanup { cgroups: Vec::new(), home: Some(home) };
    let delegated = delegate(&user, &tag, &mut cleanup.cgroups);
    let procs: Vec<libc::c_int> = delegated.iter().map(|d| d.as_raw_fd()).collect();

    let mut cmd = Command::new(&exe);
    cmd.args(["--ignored", "--test-threads", "3", "as_user_"])
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", cleanup.home.as_ref().map(|h| h.path()).expect("home"))
        .env("USER", &user.name)
        .env("LOGNAME", &user.name)
        .env("TMPDIR", &tmp)
        // The user's run ends (stopping its containers, saying where its
        // threads wait) before this binary's own watchdog would end both
        // without a word of the run's output.
        .env("LXC_RS_TEST_WATCHDOG_SECS", "240")
        .env(ROOT_RUNNING, spec(&running))
        .env(ROOT_STOPPED, format!("{}:{}", running.lxcpath.display(), stopped.name()))
        .env(ROOT_PRIVATE, spec(&private))
        .uid(user.uid)
        .gid(user.gid)
        .current_dir(&tmp);
    if let Ok(v) = std::env::var("RUST_BACKTRACE") {
        cmd.env("RUST_BACKTRACE", v);
    }
    // SAFETY: the closure only calls write(2) on descriptors opened above,
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            for fd in &procs {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    // The run's output goes to files, and this test waits for the run's
    // process, not for the end of its output: a process the run left
    // behind (holding a copy of its stdout) cannot keep this test waiting,
    // and is reported below.
    let out_dir = tempfile::tempdir().expect("a directory for the run's output");
    let out_file = |n: &str| fs::File::create(out_dir.path().join(n)).expect("create an output file");
    cmd.stdout(out_file("stdout")).stderr(out_file("stderr"));
    let mut child = cmd.spawn().expect("run the tests as the user");
    // The run's own watchdog ends it after 240 s; this one is a backstop.
    let deadline = std::time::Instant::now() + Duration::from_secs(260);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for the user's run") {
            break Some(st);
        }
        if std::time::Instant::now() > deadline {
            let mut pids = Vec::new();
            for d in &cleanup.cgroups {
                collect_pids(d, &mut pids);
            }
            eprintln!("--- the user's run hangs; its processes: {:?}", describe(&pids));
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(delegated);
    let read_out = |n: &str| fs::read_to_string(out_dir.path().join(n)).unwrap_or_default();
    let (stdout, stderr) = (read_out("stdout"), read_out("stderr"));
    eprintln!("--- the user's run\n{stdout}\n{stderr}");
    let Some(status) = status else { panic!("the tests run as {name} did not end in 260 s (killed)") };
    assert!(status.success(), "the tests run as {name} failed: {status}");
    let passed = format!("test result: ok. {USER_TESTS} passed");
    assert!(stdout.contains(&passed), "expected {USER_TESTS} tests to pass as {name}");

    // Root's containers are as they were.
    assert_eq!(running.c.state().unwrap(), State::Running);
    assert!(stopped.is_defined() && !stopped.is_running());
    assert!(private.c.is_defined());
    assert!(running.c.attach_run_wait(&AttachOptions::new(), "true", &[]).unwrap().success());

    // Nothing of the user's run is left in its cgroups.
    let mut left = Vec::new();
    for d in &cleanup.cgroups {
        collect_pids(d, &mut left);
    }
    assert!(left.is_empty(), "the user's run left processes behind: {:?}", describe(&left));
    let dirs = std::mem::take(&mut cleanup.cgroups);
    drop(cleanup);
    for d in &dirs {
        remove_delegated(d);
        assert!(!d.exists(), "could not remove the delegated cgroup {}", d.display());
    }
    drop(stopped);
}

/// Skips (with a note) when not run as the unprivileged user.
macro_rules! require_user {
    () => {
        if is_root() {
            eprintln!("SKIPPED: run as an unprivileged user by unprivileged_suite");
            return;
        }
    };
}

/// `LXCPATH:NAME` from the environment, opened.
fn root_container(var: &str) -> Container {
    let v = std::env::var(var).unwrap_or_else(|_| panic!("{var} not set: run by unprivileged_suite"));
    let (path, name) = v.rsplit_once(':').expect("LXCPATH:NAME");
    Container::with_lxcpath(name, path).expect("open root's container")
}

fn host_uid(pid: libc::pid_t) -> u32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status of init");
    let line = status.lines().find(|l| l.starts_with("Uid:")).expect("Uid line");
    line.split_whitespace().nth(1).and_then(|u| u.parse().ok()).expect("uid")
}

#[test]
#[ignore = "run as an unprivileged user by unprivileged_suite"]
fn as_user_lifecycle_attach_and_limits() {
    require_user!();
    let (first_uid, count) = subordinate_range("/etc/subuid").expect("a subuid range");
    let t = TestContainer::new("unpriv");
    assert_eq!(t.c.config_item("lxc.idmap").unwrap().to_string().lines().count(), 2);
    // The rootfs belongs to the mapped root.
    let busybox = fs::symlink_metadata(t.rootfs().join("bin/busybox")).expect("bin/busybox");
    assert_eq!(busybox.uid(), first_uid);
    assert!(t.c.may_control());
    assert_eq!(t.c.state().unwrap(), State::Stopped);

    t.c.start().expect("start as the user");
    t.c.wait(State::Running, Duration::from_secs(10)).expect("running");
    t.wait_init_ready();
    let pid = t.c.init_pid().expect("init pid");
    assert_eq!(host_uid(pid), first_uid, "init runs as the mapped root on the host");

    let out = t.c.command("sh").args(["-c", "id -u; cat /proc/self/uid_map"]).output().expect("attach");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("0"), "root inside");
    let map: Vec<&str> = lines.next().expect("uid_map").split_whitespace().collect();
    assert_eq!(map, ["0", &first_uid.to_string(), &count.to_string()]);

    // The user's cgroups take limits.
    t.c.set_cgroup_item(memory_limit_key(), "67108864").expect("set the memory limit");
    assert_eq!(t.c.cgroup_item(memory_limit_key()).unwrap().trim(), "67108864");
    t.c.freeze().expect("freeze");
    assert_eq!(t.c.state().unwrap(), State::Frozen);
    t.c.unfreeze().expect("unfreeze");

    t.c.shutdown(Duration::from_secs(10)).expect("clean shutdown");
    assert_eq!(t.c.state().unwrap(), State::Stopped);
    t.c.destroy().expect("destroy as the user");
    assert!(!t.c.is_defined());
    assert!(!t.lxcpath.join(&t.name).exists());
}

#[test]
#[ignore = "run as an unprivileged user by unprivileged_suite"]
fn as_user_session_and_config() {
    require_user!();
    let t = TestContainer::running("unpsess");
    let mut s = t.c.attach_session(&AttachOptions::new()).expect("session");
    for i in 0..5 {
        let out = s.command("sh").args(["-c", &format!("echo {i} > /tmp/n; cat /tmp/n")]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), i.to_string());
    }
    drop(s);
    assert_eq!(t.c.running_config_item("lxc.uts.name").unwrap(), t.name);
    t.c.set_config_item("lxc.environment", "WHO=unprivileged").unwrap();
    t.c.save_config(None).expect("save the config as the user");
    let saved = fs::read_to_string(t.lxcpath.join(&t.name).join("config")).unwrap();
    assert!(saved.contains("lxc.environment = WHO=unprivileged"));
    t.c.stop().expect("stop");
    assert_eq!(t.c.state().unwrap(), State::Stopped);
}

fn assert_denied<T: std::fmt::Debug>(what: &str, r: lxc::Result<T>) {
    match r {
        Err(Error::PermissionDenied { .. }) => {}
        other => panic!("{what}: expected PermissionDenied, got {other:?}"),
    }
}

#[test]
#[ignore = "run as an unprivileged user by unprivileged_suite"]
fn as_user_root_containers_are_out_of_reach() {
    require_user!();
    // Running, in a readable lxcpath: the monitor refuses the user.
    let c = root_container(ROOT_RUNNING);
    assert!(c.is_defined());
    assert!(!c.may_control());
    assert_denied("state", c.state());
    assert!(!c.is_running() && c.init_pid().is_none(), "nothing of the container reaches the user");
    assert_denied("stop", c.stop());
    assert_denied("freeze", c.freeze());
    assert_denied("shutdown", c.shutdown(Duration::from_secs(1)));
    assert_denied("wait", c.wait(State::Stopped, Duration::from_secs(1)));
    assert_denied("attach", c.attach_run_wait(&AttachOptions::new(), "true", &[]));
    assert_denied("command", c.command("true").status());
    assert_denied("cgroup_item", c.cgroup_item("pids.current"));
    assert_denied("set_cgroup_item", c.set_cgroup_item("pids.max", "1"));
    assert_denied("running_config_item", c.running_config_item("lxc.uts.name"));
    assert_denied("interfaces", c.interfaces());
    assert_denied("destroy", c.destroy());
    let err = c.stop().unwrap_err().to_string();
    assert!(err.contains("permission denied") && err.contains("may_control"), "{err}");

    // Stopped, beside it: readable, but not the user's to start or destroy.
    let c = root_container(ROOT_STOPPED);
    assert_eq!(c.state().unwrap(), State::Stopped);
    assert_denied("start", c.start());
    assert_denied("destroy", c.destroy());
    assert_denied("save_config", c.save_config(None));
    assert!(c.is_defined());

    // In root's private lxcpath: nothing can be read.
    let c = root_container(ROOT_PRIVATE);
    assert!(!c.is_defined());
    assert_denied("state", c.state());
    assert_denied("config_item", c.config_item("lxc.uts.name"));
    assert_denied("start", c.start());
    assert_denied("destroy", c.destroy());
}

#[test]
#[ignore = "run as an unprivileged user by unprivileged_suite"]
fn as_user_deletions_beside_threads_that_come_and_go() {
    require_user!();
    // For a caller that is not root, liblxc deletes a container's files in
    // children it starts with a raw `clone` that then call `setresgid`:
    // beside threads that come and go, such a child hung (a destroy here
    // in CI). The crate runs these calls in its helper process. Each kind
    // runs while another thread starts threads without pause.
    let t = TestContainer::undefined("unpdel");
    let names: Vec<String> = (0..2).map(|i| common::unique_name(&format!("unpdel{i}"))).collect();
    for n in &names {
        common::create_unprivileged(&t.lxcpath, n);
    }
    let mut a = Container::with_lxcpath(&names[0], &t.lxcpath).unwrap();
    let b = Container::with_lxcpath(&names[1], &t.lxcpath).unwrap();
    a.snapshot(None).unwrap();
    a.snapshot(None).unwrap();
    b.snapshot(None).unwrap();
    let busy = common::Busy::start("deletions as a user");
    a.snapshot_destroy("snap0").unwrap();
    assert_eq!(a.snapshot_list().unwrap().len(), 1, "one snapshot left");
    a.snapshot_destroy_all().unwrap();
    assert!(a.snapshot_list().unwrap().is_empty(), "no snapshot left");
    // (liblxc renames no container that has snapshots)
    let renamed = format!("{}-r", names[0]);
    a.rename(&renamed).unwrap();
    assert!(a.is_defined() && !t.lxcpath.join(&names[0]).exists(), "renamed");
    a.destroy().unwrap();
    b.destroy_with_snapshots().unwrap();
    drop(busy);
    assert!(lxc::list_all_containers(Some(&t.lxcpath)).unwrap().is_empty(), "all destroyed");
    assert!(!t.lxcpath.join(&renamed).exists() && !t.lxcpath.join(&names[1]).exists());
}

#[test]
#[ignore = "run as an unprivileged user by unprivileged_suite"]
fn as_user_containers_from_threads() {
    require_user!();
    // Four unprivileged containers created, started, attached to, stopped
    // and destroyed from four threads at once. (liblxc makes a container's
    // directory under a process-wide umask it changes for the moment:
    // unserialized, two creates here failed with EACCES.)
    let t = TestContainer::undefined("unpthr");
    std::thread::scope(|s| {
        for w in 0..4 {
            let lxcpath = &t.lxcpath;
            s.spawn(move || {
                let name = common::unique_name(&format!("unpthr{w}"));
                common::create_unprivileged(lxcpath, &name);
                let c = Container::with_lxcpath(&name, lxcpath).unwrap();
                c.start().unwrap_or_else(|e| panic!("start {name}: {e}"));
                c.wait(State::Running, Duration::from_secs(10)).unwrap();
                let out = c.command("hostname").output().unwrap();
                assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), name);
                c.stop().unwrap();
                c.wait(State::Stopped, Duration::from_secs(10)).unwrap();
                c.destroy().unwrap_or_else(|e| panic!("destroy {name}: {e}"));
            });
        }
    });
    assert!(lxc::list_all_containers(Some(&t.lxcpath)).unwrap().is_empty());
}

/// An unprivileged user's container exported to an image holds the owners
/// the container sees (its files belong to the user's subordinate ids on
/// the host, some unreadable to the user), and a container the user
/// creates from the image gets them mapped again.
#[cfg(feature = "image")]
#[test]
#[ignore = "run as an unprivileged user by unprivileged_suite"]
fn as_user_export_and_create_from_an_image() {
    require_user!();
    let (first_uid, _) = subordinate_range("/etc/subuid").expect("a subuid range");
    let (first_gid, _) = subordinate_range("/etc/subgid").expect("a subgid range");
    let t = TestContainer::new("uimg");
    t.c.start().expect("start");
    t.c.wait(State::Running, Duration::from_secs(10)).expect("running");
    let script = "echo secret > /root/s && chmod 600 /root/s && chmod 700 /root && \
                  echo hi > /home/f && chown 1000:1001 /home/f";
    let st = t.c.command("sh").args(["-c", script]).status().expect("attach");
    assert!(st.success());
    t.c.stop().expect("stop");
    t.c.wait(State::Stopped, Duration::from_secs(10)).expect("stopped");
    // The user cannot read what the container's root keeps to itself.
    assert!(fs::read(t.rootfs().join("root/s")).is_err());

    // In the lxcpath (searchable by the subordinate ids that run the
    // template of the create below).
    let dir = t.lxcpath.join("image");
    let image =
        t.c.export_image(&dir, lxc::ExportOptions::new().compression_level(0)).expect("export as the user");
    let out =
        Command::new("tar").arg("--numeric-owner").arg("-tvJf").arg(image.rootfs_path()).output().unwrap();
    let listing = String::from_utf8(out.stdout).unwrap();
    let line = |m: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" {m}")))
            .unwrap_or_else(|| panic!("{m} not in:\n{listing}"))
    };
    assert!(line("./root/s").starts_with("-rw------- 0/0 "), "{listing}");
    assert!(line("./root").starts_with("drwx------ 0/0 "), "{listing}");
    assert!(line("./home/f").starts_with("-rw-r--r-- 1000/1001 "), "{listing}");
    assert!(line("./bin/busybox").contains(" 0/0 "), "{listing}");

    let name = common::unique_name("uimg2");
    let c = Container::with_lxcpath(&name, &t.lxcpath).unwrap();
    c.set_config_item("lxc.net.0.type", "empty").unwrap();
    for line in t.c.config_item("lxc.idmap").unwrap().into_vec() {
        c.set_config_item("lxc.idmap", &line).unwrap();
    }
    c.create(&lxc::CreateOptions::image(&image).quiet(true)).expect("create from the image as the user");
    let f = fs::symlink_metadata(t.lxcpath.join(&name).join("rootfs/home/f")).unwrap();
    assert_eq!((f.uid(), f.gid()), (first_uid + 1000, first_gid + 1001));
    c.start().expect("start the copy");
    c.wait(State::Running, Duration::from_secs(10)).expect("running");
    let out = c.command("cat").arg("/root/s").output().expect("attach");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "secret\n");
    c.stop().expect("stop the copy");
    c.wait(State::Stopped, Duration::from_secs(10)).expect("stopped");
    c.destroy().expect("destroy the copy");

    // The user's own image store, and a create through `download` from the
    // cache primed from it, with no server to reach.
    let store = lxc::ImageStore::open(t.lxcpath.join("store")).expect("a store of the user's");
    let key = lxc::ImageKey::new("busybox", "user-1", "amd64").unwrap();
    store.import(&key, &image).expect("import as the user");
    let cache = t.lxcpath.join("cache");
    store.prime_download_cache(&key, &cache).expect("prime the cache as the user");
    let validates =
        fs::read_to_string("/usr/share/lxc/templates/lxc-download").unwrap().contains("--no-validate");
    let opts = lxc::DownloadOptions::new("busybox", "user-1")
        .arch("amd64")
        .server("127.0.0.1:9")
        .cache_dir(&cache)
        .no_validate(validates);
    let name = common::unique_name("uimg3");
    let c = Container::with_lxcpath(&name, &t.lxcpath).unwrap();
    c.set_config_item("lxc.net.0.type", "empty").unwrap();
    for line in t.c.config_item("lxc.idmap").unwrap().into_vec() {
        c.set_config_item("lxc.idmap", &line).unwrap();
    }
    c.create(&lxc::CreateOptions::download(&opts).unwrap().quiet(true))
        .expect("download from the cache as the user");
    let f = fs::symlink_metadata(t.lxcpath.join(&name).join("rootfs/home/f")).unwrap();
    assert_eq!((f.uid(), f.gid()), (first_uid + 1000, first_gid + 1001));
    c.destroy().expect("destroy the download's container");
}
