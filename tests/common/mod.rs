//! The real-host test rig.
//!
//! Each test binary makes one busybox container (the *base*) the first time a
//! test asks for one, with the crate's own `create`, under a temporary
//! lxcpath. Every test then gets its own temporary lxcpath with a copy of the
//! base (the rootfs copied, `lxc.rootfs.path` and `lxc.uts.name` rewritten):
//! about 10 ms instead of the template's 400 ms. [`TestContainer`] stops and
//! destroys its container and removes its lxcpath on drop, also when the test
//! fails or panics; the base is removed when the test binary exits.
//!
//! Containers use `lxc.net.0.type = empty`: no network, nothing on the host's
//! bridges. Names carry the test binary's pid, so parallel tests and
//! binaries never share a container name (cgroup names are host-wide).
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use lxc::{Container, CreateOptions, State};

/// Whether the tests run as root; the container tests need it.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Returns from the test, with a printed reason, when not running as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::is_root() {
            eprintln!("SKIPPED: this test needs root to make containers");
            return;
        }
    };
}

struct Base {
    lxcpath: PathBuf,
    pid: u32,
}

static BASE: OnceLock<Result<Base, String>> = OnceLock::new();

extern "C" fn remove_base() {
    // Runs at exit of the test binary. liblxc's forked helpers share the
    // atexit list, so only the process that made the base removes it.
    let _ = std::panic::catch_unwind(|| {
        if let Some(Ok(b)) = BASE.get() {
            if b.pid == std::process::id() {
                let _ = Container::with_lxcpath("base", &b.lxcpath).and_then(|c| c.destroy());
                let _ = fs::remove_dir_all(&b.lxcpath);
                forget_lxcpath(&b.lxcpath);
            }
        }
    });
}

fn base() -> &'static Base {
    let b = BASE.get_or_init(|| {
        let dir =
            tempfile::Builder::new().prefix("lxc-rs-base.").tempdir().map_err(|e| e.to_string())?.keep();
        // SAFETY: remove_base is an extern "C" fn that never unwinds.
        unsafe { libc::atexit(remove_base) };
        let c = Container::with_lxcpath("base", &dir).map_err(|e| e.to_string())?;
        c.set_config_item("lxc.net.0.type", "empty").map_err(|e| e.to_string())?;
        c.create(&CreateOptions::new().template("busybox").quiet(true))
            .map_err(|e| format!("creating the busybox base failed: {e}"))?;
        Ok(Base { lxcpath: dir, pid: std::process::id() })
    });
    match b {
        Ok(b) => b,
        Err(e) => panic!("test rig: {e}"),
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Every lxcpath the rig made, for the watchdog.
static LXCPATHS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// How long one test binary may run before the watchdog ends it (300 s;
/// `LXC_RS_TEST_WATCHDOG_SECS` sets another, as the unprivileged suite
/// does for the run it starts, so that the run ends and reports first).
fn watchdog() -> Duration {
    let secs = std::env::var("LXC_RS_TEST_WATCHDOG_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    Duration::from_secs(secs)
}

/// A hung test must not hang CI nor leave containers running: after
/// [`watchdog`], stop every container of the rig's lxcpaths with the
/// command-line tools (not through the crate, which may be what hangs)
/// and abort the test binary.
fn start_watchdog() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        std::thread::spawn(|| {
            let limit = watchdog();
            std::thread::sleep(limit);
            stop_containers_and_abort(&format!("the tests ran longer than {limit:?}"));
        });
    });
}

/// Writes to the process's stderr itself: `eprintln!` in a thread that a
/// test started is captured by the test harness, and lost at an abort.
fn say(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// What each thread of this process waits in (its name, kernel wait
/// channel and system call, from /proc), for a hang's report.
fn thread_report() -> String {
    let mut out = String::new();
    let Ok(tasks) = fs::read_dir("/proc/self/task") else { return out };
    for t in tasks.flatten() {
        let p = t.path();
        let read = |f: &str| fs::read_to_string(p.join(f)).unwrap_or_default().trim().to_string();
        out += &format!(
            "  thread {} {:?}: wchan {}, syscall {}\n",
            t.file_name().to_string_lossy(),
            read("comm"),
            read("wchan"),
            read("syscall")
        );
    }
    out
}

/// Stops every container of the rig's lxcpaths with the command-line tools
/// (not through the crate, which may be what hangs) and aborts the test
/// binary, saying `why` and where each thread waits: for a test's own,
/// shorter watchdog.
pub fn stop_containers_and_abort(why: &str) -> ! {
    say(&format!("test rig: {why}; stopping their containers and aborting\n{}", thread_report()));
    let paths = LXCPATHS.lock().map(|p| p.clone()).unwrap_or_default();
    for p in paths {
        let names = Command::new("lxc-ls").arg("-P").arg(&p).arg("--active").arg("-1").output();
        for n in names.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default().lines() {
            let _ = Command::new("lxc-stop").arg("-P").arg(&p).arg("-n").arg(n).arg("-k").status();
        }
    }
    std::process::abort();
}

fn register(lxcpath: &Path) {
    start_watchdog();
    if let Ok(mut p) = LXCPATHS.lock() {
        p.push(lxcpath.to_owned());
    }
}

/// A unique container name for this test binary: `<tag>-<pid>-<n>`.
pub fn unique_name(tag: &str) -> String {
    format!("{tag}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Removes what liblxc leaves behind for an lxcpath: its lock directory.
pub fn forget_lxcpath(lxcpath: &Path) {
    let lock = Path::new("/run/lxc/lock").join(lxcpath.strip_prefix("/").unwrap_or(lxcpath));
    let _ = fs::remove_dir_all(lock);
}

/// The cgroup directories named after a container (`lxc.monitor.NAME`,
/// `lxc.payload.NAME`, with liblxc's `-N` suffixes) on every hierarchy.
pub fn leftover_cgroups(name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        roots.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for root in roots {
        let Ok(rd) = fs::read_dir(&root) else { continue };
        for e in rd.flatten() {
            let f = e.file_name();
            let f = f.to_string_lossy();
            for prefix in ["lxc.monitor.", "lxc.payload."] {
                if let Some(rest) = f.strip_prefix(prefix) {
                    let base = rest
                        .rsplit_once('-')
                        .filter(|(_, n)| n.parse::<u32>().is_ok())
                        .map_or(rest, |(b, _)| b);
                    if base == name || rest == name {
                        found.push(e.path());
                    }
                }
            }
        }
    }
    found
}

/// Removes a cgroup and the cgroups below it, deepest first (best effort).
pub fn remove_cgroup(dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// A new temporary lxcpath. For an unprivileged caller it is made
/// searchable (0711): the container's root, a subordinate id, must reach
/// the rootfs inside it.
pub fn temp_lxcpath() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("lxc-rs-test.").tempdir().expect("tempdir");
    if !is_root() {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).expect("chmod the lxcpath");
    }
    dir
}

/// The first subordinate id range of the calling user in `/etc/subuid` or
/// `/etc/subgid`: `(first, count)`.
pub fn subordinate_range(file: &str) -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    // SAFETY: getpwuid returns null or a pointer to a static record that
    // stays valid until the next getpw* call; the name is checked for null
    // and copied at once.
    let name = unsafe {
        let pw = libc::getpwuid(uid);
        if pw.is_null() || (*pw).pw_name.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned()
    };
    subordinate_range_of(file, &name, uid)
}

/// The first range of the user `name` (or `uid`) in `/etc/subuid` or
/// `/etc/subgid` (`USER:FIRST:COUNT` lines): `(first, count)`.
pub fn subordinate_range_of(file: &str, name: &str, uid: u32) -> Option<(u32, u32)> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let (who, first, count) = (f.next()?, f.next()?, f.next()?);
        (who == name || who == uid.to_string()).then_some((first.parse().ok()?, count.parse().ok()?))
    })
}

/// A user-namespaced busybox container made by the template as the calling
/// (unprivileged) user, root mapped to the user's subordinate ids. Copying
/// the base does not work here: its files belong to subordinate ids that
/// the user cannot create outside the namespace.
pub fn create_unprivileged(lxcpath: &Path, name: &str) {
    let uids = subordinate_range("/etc/subuid").expect("no /etc/subuid range for this user");
    let gids = subordinate_range("/etc/subgid").expect("no /etc/subgid range for this user");
    let c = Container::with_lxcpath(name, lxcpath).expect("open the container");
    c.set_config_item("lxc.net.0.type", "empty").expect("set the network");
    c.set_config_item("lxc.idmap", &format!("u 0 {} {}", uids.0, uids.1)).expect("set the uid map");
    c.set_config_item("lxc.idmap", &format!("g 0 {} {}", gids.0, gids.1)).expect("set the gid map");
    c.create(&CreateOptions::new().template("busybox").quiet(true))
        .unwrap_or_else(|e| panic!("creating the unprivileged busybox container failed: {e}"));
}

/// A busybox container `name` in `lxcpath`: a copy of the base for root,
/// made by the template for an unprivileged user.
fn make_container(lxcpath: &Path, name: &str) {
    if is_root() {
        copy_base(lxcpath, name);
    } else {
        create_unprivileged(lxcpath, name);
    }
}

/// One test's container: its own lxcpath (a temporary directory) holding a
/// copy of the busybox base (for an unprivileged user: a container the
/// template made), stopped. Dropping it stops and destroys the
/// container and removes the lxcpath.
pub struct TestContainer {
    pub lxcpath: PathBuf,
    pub name: String,
    pub c: Container,
    _dir: tempfile::TempDir,
    fds: Option<FdSnapshot>,
    allowed_fds: Option<fn(&Path) -> bool>,
}

impl TestContainer {
    /// A defined, stopped busybox container.
    pub fn new(tag: &str) -> TestContainer {
        let fds = FdSnapshot::take();
        let dir = temp_lxcpath();
        let lxcpath = dir.path().to_owned();
        register(&lxcpath);
        let name = unique_name(tag);
        make_container(&lxcpath, &name);
        let c = Container::with_lxcpath(&name, &lxcpath).expect("open the test container");
        assert!(c.is_defined(), "copied container {name} is not defined");
        TestContainer { lxcpath, name, c, _dir: dir, fds, allowed_fds: None }
    }

    /// A running busybox container.
    pub fn running(tag: &str) -> TestContainer {
        let t = Self::new(tag);
        t.c.start().expect("start the test container");
        t.c.wait(State::Running, Duration::from_secs(10)).expect("container running");
        t.wait_init_ready();
        t
    }

    /// Waits until busybox init has finished `sysinit` and entered its main
    /// loop (it has spawned the `respawn` getty): a halt or reboot signal
    /// sent earlier is dropped by the kernel, since the init of a pid
    /// namespace only gets the signals it is waiting for.
    pub fn wait_init_ready(&self) {
        let pid = self.c.init_pid().expect("init pid");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            let spawned = children.split_whitespace().any(|c| {
                fs::read(format!("/proc/{c}/cmdline")).is_ok_and(|cmd| cmd.starts_with(b"/bin/getty"))
            });
            if spawned {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "busybox init never reached its main loop");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lets descriptors that `allowed` accepts (by what they point to) stay
    /// open after the test: for a known leak of liblxc's, named in `why`.
    pub fn allow_leaked_fds(&mut self, why: &str, allowed: fn(&Path) -> bool) {
        eprintln!("descriptors allowed to leak in this test: {why}");
        self.allowed_fds = Some(allowed);
    }

    /// An lxcpath with no container in it yet, and a handle on the name.
    pub fn undefined(tag: &str) -> TestContainer {
        let fds = FdSnapshot::take();
        let dir = temp_lxcpath();
        let lxcpath = dir.path().to_owned();
        register(&lxcpath);
        let name = unique_name(tag);
        let c = Container::with_lxcpath(&name, &lxcpath).expect("open the test container");
        TestContainer { lxcpath, name, c, _dir: dir, fds, allowed_fds: None }
    }

    /// Another container in the same lxcpath, copied from the base.
    pub fn sibling(&self, tag: &str) -> Container {
        let name = unique_name(tag);
        make_container(&self.lxcpath, &name);
        Container::with_lxcpath(&name, &self.lxcpath).expect("open the sibling")
    }

    /// The container's rootfs on the host.
    pub fn rootfs(&self) -> PathBuf {
        self.lxcpath.join(&self.name).join("rootfs")
    }
}

/// Stops every container of an lxcpath, then destroys them all.
pub fn clean_lxcpath(lxcpath: &Path) {
    if let Ok(all) = lxc::containers(lxc::ListKind::All, Some(lxcpath)) {
        for c in &all {
            if c.is_running() {
                let _ = c.stop();
                let _ = c.wait(State::Stopped, Duration::from_secs(10));
            }
        }
        for c in &all {
            // A test that failed before it removed its snapshots: liblxc's
            // destroy refuses a container that has some.
            if c.destroy().is_err() {
                let _ = c.destroy_with_snapshots();
            }
        }
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        let names = lxc::list_all_containers(Some(&self.lxcpath)).unwrap_or_default();
        clean_lxcpath(&self.lxcpath);
        if self.c.is_running() {
            let _ = self.c.stop();
            let _ = self.c.wait(State::Stopped, Duration::from_secs(10));
        }
        let _ = self.c.destroy();
        forget_lxcpath(&self.lxcpath);
        // liblxc removes a container's cgroups as its monitor exits, just
        // after the stop; some (a monitor whose CRIU dump failed) leave
        // them empty. Remove what is empty, as the shared benchmark does.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            let left: Vec<PathBuf> =
                names.iter().chain([&self.name]).flat_map(|n| leftover_cgroups(n)).collect();
            for d in &left {
                remove_cgroup(d);
            }
            if left.is_empty() || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(before) = self.fds.take() {
            before.assert_unchanged(&self.name, self.allowed_fds);
        }
    }
}

/// The descriptors open in this process, by number, with what they point to.
///
/// When the tests of a binary run one at a time (`RUST_TEST_THREADS=1`, as
/// `./dev test` runs them), each [`TestContainer`] notes the open
/// descriptors when it is made and checks, after it has stopped and
/// destroyed its container, that exactly those are open again: a test that
/// leaks a descriptor (or a crate call that does) fails. With tests in
/// parallel, another test's descriptors would be counted, so no check is
/// made.
pub struct FdSnapshot(Vec<(i32, PathBuf)>);

impl FdSnapshot {
    /// The open descriptors, or `None` when tests run in parallel.
    pub fn take() -> Option<FdSnapshot> {
        if std::env::var("RUST_TEST_THREADS").ok().as_deref() != Some("1") {
            return None;
        }
        // What the rig opens once per binary is open before the first look.
        start_watchdog();
        if is_root() {
            base();
        }
        Some(Self::now())
    }

    fn now() -> FdSnapshot {
        // Leaves out the descriptor of the listing itself.
        let listing = Path::new("/proc").join(std::process::id().to_string()).join("fd");
        let mut fds: Vec<(i32, PathBuf)> = fs::read_dir("/proc/self/fd")
            .expect("list /proc/self/fd")
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_str()?.parse().ok()?;
                Some((n, fs::read_link(e.path()).ok()?))
            })
            .filter(|(_, p)| *p != listing)
            .collect();
        fds.sort();
        FdSnapshot(fds)
    }

    /// Panics (unless the test already fails) if descriptors were opened
    /// and not closed since the snapshot.
    pub fn assert_unchanged(&self, what: &str, allowed: Option<fn(&Path) -> bool>) {
        let now = Self::now();
        let mut new: Vec<_> = now.0.iter().filter(|fd| !self.0.contains(fd)).collect();
        // The crate keeps one `/dev/null` open for the life of the process
        // (the stdin of attached programs), opened by its first attach.
        static KEPT_NULL: OnceLock<i32> = OnceLock::new();
        let nulls: Vec<i32> = new.iter().filter(|fd| fd.1 == Path::new("/dev/null")).map(|fd| fd.0).collect();
        if let [fd] = nulls[..] {
            let kept = *KEPT_NULL.get_or_init(|| fd);
            new.retain(|f| f.0 != kept || f.1 != Path::new("/dev/null"));
        }
        // And one eventfd for the life of the process: the reaper thread's
        // (dropped attach children), started by the first drop.
        static KEPT_EVENTFD: OnceLock<i32> = OnceLock::new();
        let eventfds: Vec<i32> =
            new.iter().filter(|fd| fd.1 == Path::new("anon_inode:[eventfd]")).map(|fd| fd.0).collect();
        if let [fd] = eventfds[..] {
            let kept = *KEPT_EVENTFD.get_or_init(|| fd);
            new.retain(|f| f.0 != kept || f.1 != Path::new("anon_inode:[eventfd]"));
        }
        // And the crate's end of its helper server's socket, made by the
        // first helper call: a server idle for 5 s ends, and the one that
        // replaces it gets the same number (a socket of another inode).
        static KEPT_SERVER: OnceLock<i32> = OnceLock::new();
        // (The old socket is closed by now: only its link says it was one.)
        let was_socket = |p: &Path| p.to_str().is_some_and(|p| p.starts_with("socket:["));
        let is_socket = |p: &Path| is_seqpacket_socket(p);
        let replaced: Vec<i32> = new
            .iter()
            .filter(|fd| is_socket(&fd.1) && self.0.iter().any(|old| old.0 == fd.0 && was_socket(&old.1)))
            .map(|fd| fd.0)
            .collect();
        if let [fd] = replaced[..] {
            let kept = *KEPT_SERVER.get_or_init(|| fd);
            new.retain(|f| f.0 != kept || !is_socket(&f.1));
        }
        if let Some(allowed) = allowed {
            new.retain(|f| !allowed(&f.1));
        }
        if !new.is_empty() && !std::thread::panicking() {
            panic!("descriptors left open by the test of {what}: {new:?}");
        }
    }
}

/// Whether `link` (a `/proc/self/fd` target) is a unix socket of type
/// `SOCK_SEQPACKET` (type 0005 in `/proc/net/unix`), as the crate's end of
/// its helper server's socket is.
fn is_seqpacket_socket(link: &Path) -> bool {
    let Some(inode) = link.to_str().and_then(|l| l.strip_prefix("socket:[")?.strip_suffix(']')) else {
        return false;
    };
    let table = fs::read_to_string("/proc/net/unix").unwrap_or_default();
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.get(4) == Some(&"0005") && f.get(6) == Some(&inode)
    })
}

/// The busybox base copied to `lxcpath/name` without liblxc (like
/// `bench_clone` in the shared benchmark).
pub fn copy_base(lxcpath: &Path, name: &str) {
    let b = base();
    let src = b.lxcpath.join("base");
    let dst = lxcpath.join(name);
    fs::create_dir_all(&dst).expect("container dir");
    let st = Command::new("cp")
        .arg("-a")
        .arg(src.join("rootfs"))
        .arg(dst.join("rootfs"))
        .status()
        .expect("run cp");
    assert!(st.success(), "cp -a of the base rootfs failed");
    let config = fs::read_to_string(src.join("config")).expect("base config");
    let rewritten: String = config
        .lines()
        .map(|l| {
            if l.starts_with("lxc.rootfs.path") {
                format!("lxc.rootfs.path = dir:{}\n", dst.join("rootfs").display())
            } else if l.starts_with("lxc.uts.name") {
                format!("lxc.uts.name = {name}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fs::write(dst.join("config"), rewritten).expect("write config");
}

/// Starts the containers `names` of `lxcpath` from `workers` threads at
/// once (worker w starts names w, w + workers, ...) and waits for each to
/// run; panics if any fails.
pub fn start_from_threads(lxcpath: &Path, names: &[String], workers: usize) {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || {
                    for n in names.iter().skip(w).step_by(workers) {
                        let c = Container::with_lxcpath(n, lxcpath).unwrap();
                        c.start().unwrap();
                        c.wait(State::Running, Duration::from_secs(10)).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a starter thread failed");
        }
    });
}

/// Stops the busybox rootfs's boot script from running `udhcpc`, whose
/// failure (no DHCP server on a test bridge) flushes the static addresses
/// liblxc set from `lxc.net.N.ipv4.address`.
pub fn disable_dhcp(lxcpath: &Path, name: &str) {
    let rcs = lxcpath.join(name).join("rootfs/etc/init.d/rcS");
    let text = fs::read_to_string(&rcs).expect("rcS");
    let kept: String = text.lines().filter(|l| !l.contains("udhcpc")).map(|l| format!("{l}\n")).collect();
    fs::write(&rcs, kept).expect("write rcS");
}

/// The memory limit key of this host's layout: `memory.limit_in_bytes` on a
/// cgroup v1 memory controller, `memory.max` on cgroup v2.
pub fn memory_limit_key() -> &'static str {
    if Path::new("/sys/fs/cgroup/memory").is_dir() {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    }
}

/// The line of a `/proc/<pid>/cgroup` text that places the process for
/// the memory controller: its cgroup v1 hierarchy's (`N:memory:/path`), or
/// on a pure cgroup v2 host the unified one (`0::/path`).
pub fn memory_cgroup_line(text: &str) -> String {
    let v1 = text.lines().find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|c| c == "memory")));
    v1.or_else(|| text.lines().find(|l| l.starts_with("0::"))).unwrap_or_default().to_owned()
}

/// The host's directory of the memory cgroup that `/proc/<pid>/cgroup`
/// (read from the host) gives for `pid`.
pub fn memory_cgroup_dir(pid: libc::pid_t) -> PathBuf {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/<pid>/cgroup");
    let line = memory_cgroup_line(&text);
    let path = line.splitn(3, ':').nth(2).expect("a cgroup path").trim_start_matches('/');
    match lxc::cgroup_layout("memory") {
        lxc::CgroupLayout::V1 => Path::new("/sys/fs/cgroup/memory").join(path),
        lxc::CgroupLayout::V2 => Path::new("/sys/fs/cgroup").join(path),
    }
}

/// Number of open file descriptors of this process.
pub fn fd_count() -> usize {
    fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// The number of open descriptors once it stops changing: the crate's
/// reaper thread closes its pidfd of a session's helper a moment after the
/// helper ends.
pub fn settled_fd_count() -> usize {
    let mut last = fd_count();
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(50));
        let now = fd_count();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// 8 threads that, until dropped, keep spawning short-lived threads that
/// allocate, and allocate themselves; plus a watchdog that stops the
/// containers and aborts after 120 s. Beside them, a child that liblxc
/// starts with a raw `clone` (no fork handlers) and that then calls
/// `setresgid` or `malloc` hangs within a few calls.
#[allow(dead_code)]
pub struct Busy {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

impl Busy {
    pub fn start(what: &'static str) -> Busy {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while std::time::Instant::now() < deadline {
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            stop_containers_and_abort(&format!("{what} beside busy threads did not finish in 120 s"));
        });
        let threads = (0..8)
            .map(|i| {
                let stop = std::sync::Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut spawned = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let t = std::thread::spawn(move || {
                            let v: Vec<u8> = vec![i as u8; 4096 + (spawned as usize % 64) * 1024];
                            v.iter().map(|&b| u64::from(b)).sum::<u64>()
                        });
                        let mut keep = Vec::with_capacity(16);
                        for k in 0..16 {
                            keep.push(vec![k as u8; 1 << (k % 12)]);
                        }
                        drop(keep);
                        let _ = t.join();
                        spawned += 1;
                    }
                    spawned
                })
            })
            .collect();
        // Let them get going.
        std::thread::sleep(std::time::Duration::from_millis(50));
        Busy { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let spawned: u64 = self.threads.drain(..).map(|t| t.join().unwrap_or(0)).sum();
        eprintln!("busy threads spawned {spawned} threads meanwhile");
        assert!(spawned > 0 || std::thread::panicking());
    }
}

/// Zombie children of this process.
pub fn zombies() -> Vec<String> {
    let me = std::process::id();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        .filter(|s| {
            let mut f = s.rsplit_once(") ").map_or("", |x| x.1).split_whitespace();
            let state = f.next();
            let ppid = f.next().and_then(|p| p.parse::<u32>().ok());
            state == Some("Z") && ppid == Some(me)
        })
        .collect()
}
