//! [`Container`]: one handle on a `struct lxc_container`.

use std::ffi::{c_char, c_int};
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use crate::config::ConfigValue;
use crate::create::CreateOptions;
use crate::cstr::{
    borrowed_str, check_name, cstring, line_cstring, path_bytes, take_string, with_line_cstr, CStrArray,
};
use crate::error::{Error, Result};
use crate::layout::{method, read_stable_field, try_method};
use crate::start::StartOptions;
use crate::{monitor_cgroup, sys, State};

/// A container: one reference to a liblxc `struct lxc_container`
/// (`lxc_container_new`), released on drop (`lxc_container_put`).
///
/// The handle names a container in an lxcpath; the container need not
/// exist yet (see [`Container::is_defined`] and [`Container::create`]).
///
/// ```no_run
/// use lxc::{Container, CreateOptions};
/// use std::time::Duration;
///
/// let c = Container::new("web")?;
/// if !c.is_defined() {
///     c.set_config_item("lxc.net.0.type", "empty")?;
///     c.create(&CreateOptions::new().template("busybox").quiet(true))?;
/// }
/// c.start()?;
/// c.set_cgroup_item("memory.limit_in_bytes", "10000000")?;
/// println!("{} is {} with init pid {:?}", c.name(), c.state()?, c.init_pid());
/// c.shutdown(Duration::from_secs(10)).or_else(|_| c.stop())?;
/// # Ok::<(), lxc::Error>(())
/// ```
///
/// # Sharing between threads
///
/// `Container` is `Send` and `Sync`: share one with `Arc<Container>` and
/// call it from many threads. liblxc guards only part of its container
/// object, so the handle adds two locks of its own, reasoned member by
/// member against liblxc 4.0 to 7.0 (the table in this module's source):
///
/// * Every call reads the in-memory configuration (`lxc_conf`): liblxc's
///   entry points hand it to the log code without a lock, and `freeze`,
///   `shutdown`, the cgroup calls and `start` read it. The calls that
///   change it, or a field liblxc reads unlocked (`set_config_item`,
///   `clear_config_item`, `set_timeout`, `restore`, `migrate`, and the
///   reload after a `create` or a `snapshot_restore` over the container),
///   wait until no other call on the handle is in flight and exclude
///   every other call while they run. All other calls share the handle
///   and never wait for one another on this account, however long they
///   take (a `wait` on one thread does not block a `start` on another).
///   A writer is not starved by sharers that overlap without end: once it
///   has waited a few milliseconds, new sharers wait for it (at most
///   100 ms each) while the ones in flight finish, unless a long call
///   (`wait`, `shutdown`, `reboot2`, `stop`, `freeze`, `unfreeze`,
///   `reboot`, `console`, a foreground `start`, `checkpoint`) is in
///   flight, whose end may need one of them. A configuration write queued behind a
///   long call waits for it: to configure while another thread waits for
///   a state, use a second handle ([`Container::try_clone`]).
/// * liblxc's forked children (attach, start, create, clone, ...) take
///   the object's `privlock`; a fork while another thread holds it would
///   copy the held lock into the child, which would wait forever. The
///   calls in which liblxc forks exclude the calls that take `privlock`
///   (and each other, on the same handle); `state`, `stop`, `wait`,
///   `freeze` and the cgroup calls take neither, so a long attach or start
///   never blocks them.
/// * `clear_config`, `load_config`, `set_config_path` and `rename` free or
///   replace what every call reads; they take `&mut self`, so the borrow
///   checker rules out any other call on the handle meanwhile.
///
/// With the `valgrind` feature (off by default), every acquisition and
/// release of these locks is reported to valgrind's helgrind and DRD, which
/// cannot see futex-based locks; `./dev helgrind` and `./dev drd` check
/// eight threads on one handle with them.
///
/// The options of one [`Container::start_with`] belong to that start: a
/// daemonized start hands them to the crate's helper process (see
/// [`Container::start`]); a foreground start sets the daemonize and
/// close-all-fds settings, uses them and puts them back while every other
/// start and `want_*` call on the handle waits. For root, no lock of the
/// crate is global: calls on different containers never wait for each
/// other. A process that is not root runs `save_config` (which makes a
/// container directory) one at a time, because liblxc changes the
/// process's umask meanwhile (`create`, `copy`, `snapshot`, `rename` and
/// the destroys run in the helper process, whose umask is its own).
///
/// A `Container` is not `Clone`: each handle owns exactly one liblxc
/// reference, and a second reference to the same C object would let one
/// handle free configuration that the other is reading. Share with `Arc`,
/// or open an independent handle with [`Container::try_clone`].
pub struct Container {
    ptr: NonNull<sys::lxc_container>,
    name: Box<str>,
    locks: HandleLocks,
    /// What `want_close_all_fds` last set (liblxc's default is false), which
    /// the C object does not let us read back; a start whose options do not
    /// say otherwise uses it.
    close_all_fds: AtomicBool,
    /// Whether the in-memory configuration may differ from the container's
    /// file: set after every change (`set_config_item`, ...), cleared
    /// by `save_config` to that file (inside its lock) and by the reload
    /// after a create. The helper process (`helper.rs`) gets the
    /// in-memory configuration only when it is set.
    config_dirty: AtomicBool,
    /// The init's identity and freezer files of the container's current run,
    /// for the check before each attach (`running.rs`).
    pub(crate) run: crate::running::RunCache,
}

/// The handle's two locks (see "Sharing between threads" above and the
/// member-by-member table in this module's source, above `Access`).
struct HandleLocks {
    /// Guards `lxc_conf` and the plain fields liblxc writes without a lock
    /// (`daemonize`, `error_num`, `rcv_timeout`, `pidfile`). Every call into
    /// liblxc holds it: shared by the calls that only read them, exclusively
    /// by the calls that write them. Shared holders take it with
    /// `read_recursive`, and writers with `write_without_blocking_readers`,
    /// which never holds it against new readers while it waits: a long
    /// `wait` on one thread and a `start` on another can never deadlock
    /// behind a `set_config_item` between them; the writer waits until no
    /// call is in flight.
    conf: parking_lot::RwLock<()>,
    /// Lets a writer of `conf` that has waited a while hold new readers
    /// back, so that overlapping readers cannot starve it.
    gate: WriterGate,
    /// Guards against forking while another thread holds liblxc's
    /// `privlock`: liblxc's forked children call `lxc_container_put`,
    /// which waits for `privlock`, and a copy of a held semaphore is never
    /// released. Taken exclusively by the calls in which liblxc forks,
    /// shared by the calls that take `privlock`.
    fork: RwLock<()>,
}

impl HandleLocks {
    fn new() -> Self {
        HandleLocks { conf: parking_lot::RwLock::new(()), gate: WriterGate::default(), fork: RwLock::new(()) }
    }
}

// What each liblxc call reads and writes, from liblxc's source (4.0.0 to
// 7.0.0; `src/lxc/lxccontainer.c` and `attach.c`), and so the `Access` the
// crate holds around it. Every member goes through the `WRAP_API` macros,
// which read `c->lxc_conf` without a lock and hand it to the log code
// (`current_config`: its `loglevel` and `logfd`), so every call reads the
// configuration at least.
//
// | member(s)                                         | writes, unguarded          | takes privlock | forks | Access       |
// |---------------------------------------------------|----------------------------|----------------|-------|--------------|
// | state, is_running, init_pid, stop, wait, freeze,   | -                          | no             | no    | Read         |
// | unfreeze, reboot, reboot2, shutdown (reads         |                            |                |       |              |
// | `haltsignal`), get/set_cgroup_item (read `lxc_conf`|                            |                |       |              |
// | and `id_map` when the monitor does not answer),    |                            |                |       |              |
// | console, console_getfd, console_log, *_fd members, |                            |                |       |              |
// | config_file_name, get_config_path, may_control     |                            |                |       |              |
// | get_config_item, get_keys, is_defined, save_config,| -                          | yes            | no    | ReadPrivlock |
// | get_running_config_item (across a monitor round    |                            |                |       |              |
// | trip), snapshot_list                               |                            |                |       |              |
// | attach (and the attach_run_* wrappers), get_ips,   | -                          | some           | yes   | ReadFork     |
// | get_interfaces, mount, umount, add/remove_device_  |                            |                |       |              |
// | node, attach/detach_interface, clone, snapshot,    |                            |                |       |              |
// | checkpoint                                         |                            |                |       |              |
// | start (after the crate's own check for a `partial` | `error_num`, `pidfile`     | yes            | yes   | ReadFork     |
// | marker: liblxc's start would destroy such a        | (read only by start, which |                |       |              |
// | container, a writer's job)                         | ReadFork serializes)       |                |       |              |
// | want_daemonize, want_close_all_fds                | `daemonize`, `conf->       | yes            | no    | ReadFork     |
// |                                                   | close_all_fds`, read only  |                |       |              |
// |                                                   | by start (ReadFork too)    |                |       |              |
// | set_config_item (allocates `lxc_conf` when null),  | `lxc_conf`, its members,   | yes            | no    | Write        |
// | clear_config_item (frees items: `id_map`, ...),    | `rcv_timeout` (6.0+, read  |                |       |              |
// | set_timeout                                        | by every command)          |                |       |              |
// | restore, migrate (CRIU; liblxc's start code runs   | `lxc_conf`, `conf->logfd`  | yes            | yes   | WriteFork    |
// | in this process)                                   |                            |                |       |              |
// | (create, snapshot_restore, the destroys, rename:   | (read for the hand-over,   | no             | no    | ReadPrivlock |
// | in the helper process; the check and hand-over)    | `save_config`)             |                |       |              |
// | clear_config, load_config, set_config_path, rename | frees or replaces          | some           | some  | `&mut self`  |
// | the crate's reload after a create in the helper    | `lxc_conf` (freed and      | yes            | no    | Write        |
// | process (clear_config + load_config of the file)   | loaded again)              |                |       |              |
//
// create, clone, snapshot, snapshot_restore, rename, the destroys and a
// daemonized start run in the helper process (`helper.rs`) on an object of
// its own: around them this handle takes only ReadPrivlock (the destroy
// paths' check and `save_config` of unsaved settings for the helper) and,
// after a create or a restore over itself, Write (the reload in the row
// above).
//
// `name` and `config_path` are read by every call and changed only by the
// `&mut self` calls. `error_string` is never set by liblxc (freed only with
// the object). `numthreads` is changed under `privlock` only.

/// How a call uses the handle (see the table above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads the configuration; neither forks nor takes `privlock`.
    Read,
    /// Reads the configuration and takes `privlock`.
    ReadPrivlock,
    /// Reads the configuration and forks.
    ReadFork,
    /// Writes the configuration or an unguarded field; takes `privlock`.
    Write,
    /// Writes the configuration and forks.
    WriteFork,
}

enum ConfGuard<'a> {
    Read(#[allow(dead_code)] parking_lot::RwLockReadGuard<'a, ()>),
    Write(#[allow(dead_code)] parking_lot::RwLockWriteGuard<'a, ()>),
}

enum ForkGuard<'a> {
    Read(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
    Write(#[allow(dead_code)] RwLockWriteGuard<'a, ()>),
}

/// In debug builds (the test suite): which handles this thread holds, and
/// how, so that a call that takes a handle's locks again while it holds
/// them exclusively (a deadlock: the writer waits for itself) panics at
/// once instead of hanging.
#[cfg(debug_assertions)]
mod held_by_this_thread {
    use super::{Access, Container};
    use std::cell::RefCell;

    thread_local! {
        /// (handle address, holds the configuration lock exclusively,
        /// holds the fork lock (at all), the guard's token)
        static HELD: RefCell<Vec<(usize, bool, bool, u64)>> = const { RefCell::new(Vec::new()) };
        static NEXT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    fn key(c: &Container) -> usize {
        c as *const Container as usize
    }

    fn conf_write(access: Access) -> bool {
        matches!(access, Access::Write | Access::WriteFork)
    }

    fn takes_fork(access: Access) -> bool {
        !matches!(access, Access::Read)
    }

    /// Panics when taking `access` on `c` could wait for this very thread:
    /// a second acquisition while it holds the configuration lock
    /// exclusively, the configuration lock exclusively while it holds it
    /// at all, or the fork lock again (std's lock may queue a second read
    /// behind a waiting writer).
    pub(super) fn check(c: &Container, access: Access) {
        // try_with: calls from atexit handlers run after this thread's
        // thread-locals are gone; they are not checked.
        let _ = HELD.try_with(|h| {
            for &(k, held_conf_w, held_fork, _) in h.borrow().iter() {
                let deadlock =
                    k == key(c) && (held_conf_w || conf_write(access) || (held_fork && takes_fork(access)));
                assert!(
                    !deadlock,
                    "lxc: a call took the locks of container {:?} again ({access:?}) while it held them",
                    c.name()
                );
            }
        });
    }

    /// Notes the guard; returns its token for [`pop`].
    pub(super) fn push(c: &Container, access: Access) -> u64 {
        let token = NEXT.try_with(|n| {
            let t = n.get();
            n.set(t + 1);
            t
        });
        let Ok(token) = token else { return u64::MAX };
        // try_with: calls from atexit handlers run after this thread's
        // thread-locals are gone; they are not checked.
        let _ =
            HELD.try_with(|h| h.borrow_mut().push((key(c), conf_write(access), takes_fork(access), token)));
        token
    }

    pub(super) fn pop(token: u64) {
        // try_with: calls from atexit handlers run after this thread's
        // thread-locals are gone; they are not checked.
        let _ = HELD.try_with(|h| {
            let mut h = h.borrow_mut();
            if let Some(i) = h.iter().rposition(|e| e.3 == token) {
                h.remove(i);
            }
        });
    }
}

/// The handle's locks as one call holds them; released on drop (the fork
/// lock first).
pub(crate) struct Held<'a> {
    #[cfg(debug_assertions)]
    token: u64,
    _fork: Option<ForkGuard<'a>>,
    _conf: ConfGuard<'a>,
    /// Counts the configuration lock as this thread's while it is held.
    _reads: Option<reads_held::Token>,
    /// Holds the writer gate open while a long call runs (released after
    /// the configuration lock: the fields drop in order).
    _long: Option<LongReader<'a>>,
    /// The locks as `Held::drop` reports their release to helgrind/DRD.
    #[cfg(feature = "valgrind")]
    locks: &'a HandleLocks,
}

#[cfg(any(feature = "valgrind", debug_assertions))]
impl Drop for Held<'_> {
    /// Runs before the guards (the fields) drop: the release is reported
    /// while this thread still holds the locks, so the tool never sees
    /// another thread acquire a lock that this one holds.
    fn drop(&mut self) {
        #[cfg(feature = "valgrind")]
        {
            if let Some(f) = &self._fork {
                crate::valgrind::releasing(&self.locks.fork, matches!(f, ForkGuard::Write(_)));
            }
            crate::valgrind::releasing(&self.locks.conf, matches!(self._conf, ConfGuard::Write(_)));
        }
        #[cfg(debug_assertions)]
        held_by_this_thread::pop(self.token);
    }
}

// SAFETY: liblxc's container object is not bound to the thread that made
// it (no thread-local state outlives a call: `current_config` is set and
// reset within each call).
unsafe impl Send for Container {}
// SAFETY: every `&self` method reaches the object through `Container::hold`
// with the `Access` its liblxc call needs (the table above `Access`): the
// calls that write `lxc_conf` or the object's unguarded fields exclude every
// other call on the handle, the calls that fork exclude the calls that take
// liblxc's `privlock`, and what liblxc frees or replaces outside any lock
// (`clear_config`, `load_config`, `set_config_path`, `rename`) takes `&mut
// self`.
unsafe impl Sync for Container {}

impl Drop for Container {
    fn drop(&mut self) {
        // SAFETY: we own exactly one reference, released here once.
        unsafe { sys::lxc_container_put(self.ptr.as_ptr()) };
    }
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container").field("name", &self.name).field("lxcpath", &self.config_path()).finish()
    }
}

/// A timeout in liblxc's form: whole seconds, rounded up; `-1` (forever)
/// for durations beyond `i32::MAX` seconds, such as `Duration::MAX`.
fn timeout_secs(d: Duration) -> c_int {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    c_int::try_from(secs).unwrap_or(-1)
}

/// The largest shutdown timeout liblxc handles, in seconds: every series
/// (4.0 to 7.0) polls the init's pidfd for `timeout * 1000` milliseconds,
/// computed in an `int`, so a larger value overflows in C.
pub(crate) const SHUTDOWN_MAX_SECS: c_int = c_int::MAX / 1000;

/// The timeout of `shutdown` in liblxc's form: whole seconds, rounded up,
/// at most [`SHUTDOWN_MAX_SECS`] (about 24.8 days); `Duration::MAX` is
/// liblxc's `-1`, no timeout (a negative poll timeout and no
/// `SO_RCVTIMEO`: the wait lasts until the container stops).
fn shutdown_timeout_secs(d: Duration) -> c_int {
    if d == Duration::MAX {
        return -1;
    }
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    c_int::try_from(secs).unwrap_or(c_int::MAX).min(SHUTDOWN_MAX_SECS)
}

/// The argument of `set_timeout` in liblxc's form, checked: liblxc accepts
/// a positive number of seconds or `-1` (no timeout) and refuses the rest
/// with a bare `false`. `Duration::MAX` is `-1`; zero and other durations
/// beyond `i32::MAX` seconds are [`Error::InvalidArgument`]; the rest is
/// rounded up to whole seconds. Compiled with every header, so that it is
/// tested where the 5.0 header has no `set_timeout`.
#[cfg_attr(not(lxc_member = "set_timeout"), allow(dead_code))]
pub(crate) fn set_timeout_secs(d: Duration) -> Result<c_int> {
    if d == Duration::MAX {
        return Ok(-1);
    }
    if d.is_zero() {
        return Err(Error::invalid("timeout", "0s", "must be more than zero (liblxc refuses 0)"));
    }
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    c_int::try_from(secs).map_err(|_| {
        Error::invalid(
            "timeout",
            format!("{d:?}"),
            "must be at most i32::MAX seconds (Duration::MAX means no timeout)",
        )
    })
}

/// liblxc 4.0.6 (only) frees, when `lxc.net.<N>` is cleared and no device
/// `N` exists, the last network device it looked at while it stays in the
/// list (`lxc_remove_nic_by_idx`): a double free when the configuration is
/// freed. liblxc does nothing else for such a key (and reports success), so
/// the crate skips the call. True when `key` is such a key on 4.0.6 and
/// `nic_type` says the device does not exist.
fn missing_nic_on_4_0_6(key: &str, nic_type: impl FnOnce() -> Option<String>) -> bool {
    let is_nic_key =
        key.strip_prefix("lxc.net.").is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()));
    is_nic_key
        && crate::runtime_version() == crate::Version::new(4, 0, 6)
        && nic_type().is_none_or(|t| t.is_empty())
}

pub(crate) fn clear_errno() {
    set_errno(0);
}

/// Sets this thread's errno (to keep liblxc's through calls made before the
/// error is built).
fn set_errno(e: i32) {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    unsafe { *libc::__errno_location() = e };
}

fn last_errno() -> Option<i32> {
    // liblxc sometimes leaves a negative value in errno; it is no errno.
    std::io::Error::last_os_error().raw_os_error().filter(|e| *e > 0)
}

/// Whether this process runs as root (effective uid 0): liblxc then
/// neither maps ids nor is refused by another user's monitor.
pub(crate) fn caller_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// What [`Container::deleting_call`] checked: the root filesystem settings
/// the helper must load too.
struct DestroyChecked {
    rootfs: std::ffi::OsString,
    managed: Option<std::ffi::OsString>,
}

/// Held, in a process that is not root, around the one call in which
/// liblxc makes a container directory in this process: `save_config` (the
/// public one, and the one that writes a handle's unsaved configuration for
/// the helper process). One at a time. (create, clone, snapshot, rename and
/// the destroys run in the helper process, with a umask of its own.) It is
/// the innermost lock: taken after the handle's, and no handle's lock is
/// taken while it is held.
/// liblxc 5.0 makes the directory with
/// `umask(0002); mkdir(dir, 0770); umask(old)`, and the umask
/// belongs to the whole process: a second thread doing the same at once can
/// restore the old umask in between and leave the directory 0750. liblxc
/// then hands the directory to the container's root (a subordinate id), and
/// the caller, left with read-only group access, cannot write the
/// `partial` marker into it: the create fails with EACCES. Root writes
/// anyway, so its calls run concurrently.
pub(crate) fn container_dir_guard() -> Option<std::sync::MutexGuard<'static, ()>> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if caller_is_root() {
        return None;
    }
    Some(LOCK.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The directories liblxc's storage `destroy` may delete for the root
/// filesystem path `rootfs` as `get_config_item("lxc.rootfs.path")` gives
/// it. liblxc keeps the store type apart (`dir:PATH` is stored as type
/// `dir`, path `PATH`, split at the first `:`), so both readings are
/// checked: the path itself when it is a directory or a symbolic link
/// (`dir`, `btrfs`; liblxc's `dir_detect` takes a plain directory as
/// `dir`), and, for `overlay` (`LOWER:UPPER`), what follows the first `:`
/// (`ovl_destroy` deletes the upper directory). Relative paths (zfs
/// datasets, rbd images) and block devices (lvm, loop files are unlinked)
/// are not directory trees liblxc deletes by path: left out.
fn deleted_rootfs(rootfs: &[u8]) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let rootfs = rootfs.trim_ascii();
    let mut out = Vec::new();
    let is_tree = |p: &Path| {
        p.is_absolute()
            && (std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
                || std::fs::metadata(p).is_ok_and(|m| m.is_dir()))
    };
    let whole = Path::new(std::ffi::OsStr::from_bytes(rootfs));
    if is_tree(whole) {
        out.push(whole.to_owned());
    }
    if let Some(colon) = rootfs.iter().position(|&b| b == b':') {
        let upper = Path::new(std::ffi::OsStr::from_bytes(&rootfs[colon + 1..]));
        if is_tree(upper) {
            out.push(upper.to_owned());
        }
    }
    out
}

/// Whether another open file description holds a lock on the file `fd`
/// refers to (`F_OFD_GETLK`: only asks, takes nothing). liblxc locks its
/// container lock files and the `partial` marker with OFD locks.
fn ofd_lock_held(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: an all-zero flock is valid; filled in below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    // SAFETY: F_OFD_GETLK on a descriptor of ours with a valid flock.
    let r = unsafe { libc::fcntl(fd, libc::F_OFD_GETLK, &mut fl) };
    r == 0 && fl.l_type != libc::F_UNLCK as libc::c_short
}

/// Number of threads of this process, from `/proc/self/status`.
fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok()))
        .unwrap_or(1)
}

/// Reads the length-probing `get_*` members: a first call with no buffer
/// returns the length, a second fills a buffer of that size. A value that
/// grew in between is read again.
fn read_sized(op: &'static str, call: impl FnMut(*mut c_char, c_int) -> c_int) -> Result<Option<String>> {
    let Some(buf) = read_sized_bytes(op, call)? else { return Ok(None) };
    String::from_utf8(buf).map(Some).map_err(|e| {
        Error::bad_return(op, format!("text that is not UTF-8: {:?}", String::from_utf8_lossy(e.as_bytes())))
    })
}

/// [`read_sized`] without the UTF-8 check.
fn read_sized_bytes(
    op: &'static str,
    mut call: impl FnMut(*mut c_char, c_int) -> c_int,
) -> Result<Option<Vec<u8>>> {
    let mut len = call(ptr::null_mut(), 0);
    loop {
        let Ok(n) = usize::try_from(len) else {
            return Ok(None);
        };
        let cap = n + 1;
        let inlen = c_int::try_from(cap).map_err(|_| Error::bad_return(op, format!("length {n}")))?;
        let mut buf: Vec<u8> = Vec::with_capacity(cap);
        let got = call(buf.as_mut_ptr().cast(), inlen);
        let Ok(got_n) = usize::try_from(got) else {
            return Ok(None);
        };
        if got_n > n {
            // Changed between the two calls: liblxc truncated it; try again.
            len = got;
            continue;
        }
        // SAFETY: liblxc wrote got_n bytes (plus a NUL) into the buffer of
        // capacity n + 1 >= got_n + 1.
        unsafe { buf.set_len(got_n) };
        return Ok(Some(buf));
    }
}

/// The configuration's write lock, taken without ever holding it against
/// new readers while it waits. parking_lot's `write` marks the lock
/// writer-owned and then waits for the readers to leave, and a reader that
/// comes meanwhile waits as well, even with `read_recursive`. A reader that
/// must come for an earlier one to end then deadlocks with both: an attach
/// (a reader) into a container frozen during the call waits inside liblxc
/// for the thaw, and the `unfreeze` (a reader) that would thaw it waited
/// behind a `set_config_item` (the writer) that waited for the attach
/// (found by `threads.rs`). So the writer tries, and yields or sleeps
/// between tries; after [`WRITER_PATIENCE`] failed tries it closes the
/// handle's [`WriterGate`], which holds new readers back only where that
/// cannot deadlock.
fn write_without_blocking_readers<'a>(
    lock: &'a parking_lot::RwLock<()>,
    gate: &WriterGate,
) -> parking_lot::RwLockWriteGuard<'a, ()> {
    let mut tries = 0u32;
    let mut closed: Option<GateClosed<'_>> = None;
    loop {
        if let Some(g) = lock.try_write() {
            return g;
        }
        tries = tries.saturating_add(1);
        if tries >= WRITER_PATIENCE && closed.is_none() {
            closed = Some(gate.close());
        }
        if tries < 64 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
}

/// Failed tries (64 yields, then sleeps of 200 µs: about 3 ms in all) after
/// which a writer of the configuration closes the [`WriterGate`].
const WRITER_PATIENCE: u32 = 80;

/// The longest a reader waits at a closed [`WriterGate`].
const GATE_MAX_WAIT: Duration = Duration::from_millis(100);

/// Keeps a writer of the configuration lock from starving behind readers
/// that overlap without end (threads looping over `state`, found by a
/// review: a `set_config_item` waited more than five minutes behind six).
/// A writer that has waited [`WRITER_PATIENCE`] tries closes the gate, and
/// new readers wait at it until the writer is through, so that the readers
/// in flight drain. Three rules keep it from ever deadlocking:
/// - A thread that already holds the configuration lock of any handle
///   passes: the writer may be waiting for that very lock.
/// - While a long reader is in flight (`wait`, `shutdown`, `reboot2`,
///   `stop`, `freeze`, `unfreeze`, `reboot`, `console`, a foreground
///   `start`, `checkpoint`:
///   calls that may last until another call acts, or seconds), the gate
///   stands open for short readers. The writer cannot get in before the
///   long reader ends anyway, and that end may need a reader of this handle
///   (the `stop` a `wait` for STOPPED waits for). A new long reader still
///   waits at it, so that long readers overlapping without end cannot
///   starve the writer either (the one a long reader in flight needs is
///   let through by the next rule).
/// - A reader waits at most [`GATE_MAX_WAIT`]; then it passes and opens the
///   gate for everyone for as long again. That bounds what a dependency
///   nobody foresaw costs (an attach that liblxc holds in a container
///   frozen after the crate's check until an `unfreeze` through this
///   handle; a caller whose attached program waits for another thread that
///   reads the handle first): a delay, never a deadlock; and the writer is
///   protected again when the opening expires.
///
/// Readers wait by sleeping in short steps, as the writer itself does: the
/// gate is closed only while a writer waits, and the wait ends within one
/// step of the writer being through. Every access to the gate's state is a
/// read-modify-write (a load is `fetch_add(0)`), which helgrind and DRD
/// understand as atomic, as they do not plain loads and stores.
struct WriterGate {
    /// Writers that have waited past their patience.
    closing: std::sync::atomic::AtomicU32,
    /// Long readers in flight.
    long: std::sync::atomic::AtomicU32,
    /// Until when (nanoseconds after `epoch`) the gate stands open because
    /// a reader waited [`GATE_MAX_WAIT`] at it: that long again. An opening
    /// that expires by itself cannot outlive its writer and disarm the next
    /// one, nor leave a writer starving for good after one slow reader.
    forced_until: std::sync::atomic::AtomicU64,
    /// What `forced_until` counts from (set once, with the handle).
    epoch: std::time::Instant,
}

impl Default for WriterGate {
    fn default() -> Self {
        WriterGate {
            closing: Default::default(),
            long: Default::default(),
            forced_until: Default::default(),
            epoch: std::time::Instant::now(),
        }
    }
}

impl WriterGate {
    /// Nanoseconds since `epoch`.
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether a new reader waits: a writer is closing the gate, no forced
    /// opening is in force, and (for a reader that is not long itself) no
    /// long reader is in flight. A new long reader waits even then:
    /// otherwise long readers that overlap without end (two threads looping
    /// over `wait`) would starve the writer as short ones did.
    fn is_closed(&self, for_long: bool) -> bool {
        self.closing.fetch_add(0, Ordering::SeqCst) > 0
            && (for_long || self.long.fetch_add(0, Ordering::SeqCst) == 0)
            && self.now() >= self.forced_until.fetch_add(0, Ordering::SeqCst)
    }

    /// Waits while the gate is closed (for a long reader: `for_long`), at
    /// most [`GATE_MAX_WAIT`]; then opens it for everyone for as long.
    fn pass(&self, for_long: bool) {
        if !self.is_closed(for_long) {
            return;
        }
        let deadline = std::time::Instant::now() + GATE_MAX_WAIT;
        while self.is_closed(for_long) {
            if std::time::Instant::now() >= deadline {
                let until = self.now().saturating_add(GATE_MAX_WAIT.as_nanos() as u64);
                self.forced_until.fetch_max(until, Ordering::SeqCst);
                return;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    fn close(&self) -> GateClosed<'_> {
        self.closing.fetch_add(1, Ordering::SeqCst);
        GateClosed(self)
    }

    fn enter_long(&self) -> LongReader<'_> {
        self.long.fetch_add(1, Ordering::SeqCst);
        LongReader(self)
    }
}

/// A writer's closing of the gate, undone on drop.
struct GateClosed<'a>(&'a WriterGate);

impl Drop for GateClosed<'_> {
    fn drop(&mut self) {
        self.0.closing.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A long reader in flight, which holds the gate open.
pub(crate) struct LongReader<'a>(&'a WriterGate);

impl Drop for LongReader<'_> {
    fn drop(&mut self) {
        self.0.long.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod gate_tests {
    use super::{WriterGate, GATE_MAX_WAIT};
    use std::time::Instant;

    #[test]
    fn a_closing_writer_closes_it_and_a_long_reader_opens_it() {
        let gate = WriterGate::default();
        assert!(!gate.is_closed(false));
        let closed = gate.close();
        assert!(gate.is_closed(false));
        let long = gate.enter_long();
        assert!(!gate.is_closed(false), "a long reader in flight holds the gate open for short ones");
        assert!(gate.is_closed(true), "but not for another long reader");
        // A reader passes at once while it is open.
        gate.pass(false);
        drop(long);
        assert!(gate.is_closed(false));
        drop(closed);
        assert!(!gate.is_closed(false) && !gate.is_closed(true));
    }

    #[test]
    fn a_reader_waits_at_most_the_limit_and_the_opening_expires() {
        let gate = WriterGate::default();
        let closed = gate.close();
        let t = Instant::now();
        gate.pass(true);
        assert!(t.elapsed() >= GATE_MAX_WAIT, "the reader waited {:?}", t.elapsed());
        assert!(!gate.is_closed(false) && !gate.is_closed(true), "forced open for everyone after the wait");
        std::thread::sleep(GATE_MAX_WAIT + GATE_MAX_WAIT / 2);
        assert!(gate.is_closed(false), "the forced opening expires; the writer is protected again");
        drop(closed);
        // A forcing left by an earlier writer does not disarm the next.
        let closed = gate.close();
        assert!(gate.is_closed(false));
        drop(closed);
    }

    #[test]
    fn a_waiting_reader_goes_when_the_writer_is_through() {
        let gate = WriterGate::default();
        let closed = gate.close();
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let t = Instant::now();
                gate.pass(false);
                t.elapsed()
            });
            std::thread::sleep(GATE_MAX_WAIT / 10);
            drop(closed);
            let waited = reader.join().unwrap();
            assert!(waited < GATE_MAX_WAIT, "the reader waited {waited:?} after the writer was through");
        });
    }
}

/// How many configuration locks (of any handle) this thread holds: a thread
/// that holds one passes every gate.
mod reads_held {
    use std::cell::Cell;

    thread_local! {
        static COUNT: Cell<u32> = const { Cell::new(0) };
    }

    /// Whether this thread holds one; `true` when it cannot tell (in an
    /// atexit handler, after the thread-locals are gone), which only skips
    /// the gate.
    pub(super) fn any() -> bool {
        COUNT.try_with(|c| c.get() > 0).unwrap_or(true)
    }

    /// Counts one more until the token drops.
    pub(super) fn note() -> Token {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        Token(std::marker::PhantomData)
    }

    /// Counts a held lock; not `Send` (the count is this thread's).
    pub(crate) struct Token(std::marker::PhantomData<*const ()>);

    impl Drop for Token {
        fn drop(&mut self) {
            let _ = COUNT.try_with(|c| c.set(c.get().saturating_sub(1)));
        }
    }
}

impl Container {
    /// A handle on the container `name` in the default lxcpath
    /// (`lxc.lxcpath`, usually `/var/lib/lxc`): `lxc_container_new(name, NULL)`.
    ///
    /// ```no_run
    /// let c = lxc::Container::new("web")?;
    /// println!("web is defined: {}", c.is_defined());
    /// # Ok::<(), lxc::Error>(())
    /// ```
    ///
    /// The name must be 1 to 64 ASCII letters, digits, `.`, `-` and `_`,
    /// starting with a letter or digit; anything else is refused with
    /// [`Error::InvalidArgument`] before liblxc sees it (see
    /// [`check_container_name`](crate::check_container_name) for why).
    ///
    /// ```
    /// assert!(lxc::Container::new("a/b").is_err());
    /// assert!(lxc::Container::new("..").is_err());
    /// assert!(lxc::Container::new("my box").is_err());
    /// assert!(lxc::Container::new("$(reboot)").is_err());
    /// ```
    ///
    /// The lxcpath is resolved (`realpath`) when it exists, here and in
    /// [`Container::with_lxcpath`], [`Container::set_config_path`] and the
    /// list functions: liblxc names a running container's command socket
    /// after the lxcpath *string*, so a handle through a symbolic link to
    /// the lxcpath would see a running container as stopped and could start
    /// it a second time. A path that does not exist yet cannot be resolved
    /// and is used as given.
    pub fn new(name: &str) -> Result<Container> {
        Self::open(name, None)
    }

    /// A handle on the container `name` in the lxcpath `lxcpath`
    /// (ruby-lxc's `Container.new(name, config_path)`). An existing
    /// `lxcpath` is resolved to its real path (see [`Container::new`]); one
    /// with a line break or control character is refused (liblxc writes it
    /// into the configuration as part of `lxc.rootfs.path`).
    ///
    /// ```
    /// let dir = std::env::temp_dir();
    /// let c = lxc::Container::with_lxcpath("c1", &dir)?;
    /// assert_eq!(c.config_path()?, dir);
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn with_lxcpath(name: &str, lxcpath: impl AsRef<Path>) -> Result<Container> {
        Self::open(name, Some(lxcpath.as_ref()))
    }

    pub(crate) fn open(name: &str, lxcpath: Option<&Path>) -> Result<Container> {
        check_name("container name", name)?;
        let cname = cstring("container name", name)?;
        // The default lxcpath too is resolved, so that a handle opened with
        // `new` and one opened with the same path spelled out agree.
        let lxcpath = crate::cstr::lxcpath_or_default(lxcpath)?;
        let (lxcpath, cpath) = lxcpath.unzip();
        clear_errno();
        // SAFETY: both strings are valid and NUL-terminated for the call;
        // liblxc copies them.
        let p = unsafe {
            sys::lxc_container_new(cname.as_ptr(), cpath.as_ref().map_or(ptr::null(), |c| c.as_ptr()))
        };
        match NonNull::new(p) {
            Some(ptr) => Ok(Container {
                ptr,
                name: name.into(),
                locks: HandleLocks::new(),
                close_all_fds: AtomicBool::new(false),
                config_dirty: AtomicBool::new(false),
                run: Default::default(),
            }),
            None => {
                let errno = last_errno();
                // liblxc returns nothing when the configuration file exists
                // but does not parse; say so.
                let lxcpath = lxcpath.or_else(|| crate::default_lxcpath().ok());
                let config = lxcpath.as_ref().map(|p| p.join(name).join("config"));
                let error_string = config
                    .filter(|p| p.is_file())
                    .map(|p| format!("its configuration file {} could not be loaded", p.display()))
                    .or_else(|| {
                        let p = lxcpath.filter(|p| p.exists() && !p.is_dir())?;
                        Some(format!("its lxcpath {} is not a directory", p.display()))
                    });
                Err(Error::Failed {
                    op: "lxc_container_new",
                    container: name.to_owned(),
                    error_num: 0,
                    error_string,
                    errno,
                })
            }
        }
    }

    /// Takes ownership of one reference to a container object.
    ///
    /// # Safety
    /// `ptr` is a valid `struct lxc_container` with a reference the caller
    /// hands over. While this handle is alive, nothing else may use the
    /// object: no other `Container` made from the same pointer, and no C
    /// code. The handle's locks (see "Sharing between threads") guard the
    /// object only against calls made through this handle.
    pub unsafe fn from_raw(ptr: *mut sys::lxc_container) -> Result<Container> {
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::bad_return("from_raw", "a null pointer"))?;
        // SAFETY: valid per the caller's contract; `name` is set by liblxc
        // for every container object and is in every supported layout.
        let name = unsafe { borrowed_str("lxc_container.name", read_stable_field!(ptr.as_ptr(), name)) };
        match name {
            Ok(n) => Ok(Container {
                ptr,
                name: n.into(),
                locks: HandleLocks::new(),
                close_all_fds: AtomicBool::new(false),
                // Someone else's object: its configuration may be anything.
                config_dirty: AtomicBool::new(true),
                run: Default::default(),
            }),
            Err(e) => {
                // SAFETY: we were handed this reference; give it back.
                unsafe { sys::lxc_container_put(ptr.as_ptr()) };
                Err(e)
            }
        }
    }

    /// A new handle that shares a container object someone else holds,
    /// taking a reference of its own (`lxc_container_get`).
    ///
    /// # Safety
    /// As for [`Container::from_raw`], except that the caller keeps its own
    /// reference, which it must not use (nor give to other code) while this
    /// handle is alive.
    pub unsafe fn from_raw_borrowed(ptr: *mut sys::lxc_container) -> Result<Container> {
        if ptr.is_null() {
            return Err(Error::bad_return("lxc_container_get", "a null pointer"));
        }
        // SAFETY: valid per the caller's contract.
        if unsafe { sys::lxc_container_get(ptr) } != 1 {
            return Err(Error::bad_return("lxc_container_get", "failure (the object is being freed)"));
        }
        // SAFETY: we now own the reference taken above.
        unsafe { Self::from_raw(ptr) }
    }

    /// The raw pointer, still owned by this handle.
    pub fn as_raw(&self) -> *mut sys::lxc_container {
        self.ptr.as_ptr()
    }

    /// Gives up the handle's reference without releasing it; the caller
    /// must `lxc_container_put` it (or pass it to [`Container::from_raw`]).
    pub fn into_raw(self) -> *mut sys::lxc_container {
        let mut me = std::mem::ManuallyDrop::new(self);
        let p = me.ptr.as_ptr();
        // The reference goes to the caller; what the handle itself owns
        // (its name, the run cache's paths; the lock allocates
        // nothing) is freed here, since `Drop` does not run. A field that
        // owns memory needs the same.
        drop(std::mem::take(&mut me.name));
        drop(std::mem::take(&mut me.run));
        p
    }

    /// A second, independent handle on the same container (a new
    /// `lxc_container_new` with the same name and lxcpath). It shares the
    /// container on disk and the running container, not the in-memory
    /// configuration.
    pub fn try_clone(&self) -> Result<Container> {
        Self::open(&self.name, Some(&self.config_path()?))
    }

    /// Takes the handle's locks as a call with `access` needs them (see
    /// `Access`); they are released when the returned guard drops.
    pub(crate) fn hold(&self, access: Access) -> Held<'_> {
        self.hold_as(access, false)
    }

    /// [`Container::hold`] for a call that may last until another call
    /// acts, or seconds (`wait`, `shutdown`, `reboot2`, `stop`, `freeze`,
    /// `unfreeze`, `reboot`, `console`, a foreground `start`,
    /// `checkpoint`): it holds the handle's [`WriterGate`] open for
    /// short readers while it runs.
    pub(crate) fn hold_long(&self, access: Access) -> Held<'_> {
        self.hold_as(access, true)
    }

    fn hold_as(&self, access: Access, long: bool) -> Held<'_> {
        #[cfg(debug_assertions)]
        held_by_this_thread::check(self, access);
        // (writes the configuration, Some(forks) when the fork lock is needed)
        let (conf_write, fork_write) = match access {
            Access::Read => (false, None),
            Access::ReadPrivlock => (false, Some(false)),
            Access::ReadFork => (false, Some(true)),
            Access::Write => (true, Some(false)),
            Access::WriteFork => (true, Some(true)),
        };
        let gate = &self.locks.gate;
        let long = long && !conf_write;
        if !conf_write && !reads_held::any() {
            gate.pass(long);
        }
        let long = long.then(|| gate.enter_long());
        let conf = if conf_write {
            ConfGuard::Write(write_without_blocking_readers(&self.locks.conf, gate))
        } else {
            ConfGuard::Read(self.locks.conf.read_recursive())
        };
        let reads = (!conf_write).then(reads_held::note);
        #[cfg(feature = "valgrind")]
        crate::valgrind::acquired(&self.locks.conf, conf_write);
        let fork = fork_write.map(|w| {
            let g = if w {
                ForkGuard::Write(self.locks.fork.write().unwrap_or_else(|e| e.into_inner()))
            } else {
                ForkGuard::Read(self.locks.fork.read().unwrap_or_else(|e| e.into_inner()))
            };
            #[cfg(feature = "valgrind")]
            crate::valgrind::acquired(&self.locks.fork, w);
            g
        });
        #[cfg(debug_assertions)]
        let token = held_by_this_thread::push(self, access);
        Held {
            #[cfg(debug_assertions)]
            token,
            _fork: fork,
            _conf: conf,
            _reads: reads,
            _long: long,
            #[cfg(feature = "valgrind")]
            locks: &self.locks,
        }
    }

    /// Held around a call that takes liblxc's `privlock` and only reads the
    /// configuration.
    pub(crate) fn shared(&self) -> Held<'_> {
        self.hold(Access::ReadPrivlock)
    }

    /// Held around a call in which liblxc forks and that only reads the
    /// configuration.
    pub(crate) fn exclusive(&self) -> Held<'_> {
        self.hold(Access::ReadFork)
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Builds the error for a failed call from `errno`. liblxc's
    /// `error_num` belongs to `start` alone (see [`Container::start_with`]),
    /// and no liblxc release sets `error_string`.
    pub(crate) fn failed(&self, op: &'static str) -> Error {
        self.failed_with(op, 0)
    }

    /// [`Container::failed`] with the `error_num` a foreground start left.
    fn failed_with(&self, op: &'static str, error_num: i32) -> Error {
        let errno = last_errno();
        if let Some(denied) = self.denied(op) {
            return denied;
        }
        Error::Failed { op, container: self.name.to_string(), error_num, error_string: None, errno }
    }

    /// For a caller that is not root: the error saying the container belongs
    /// to someone else, if it does. liblxc itself cannot tell: it sees an
    /// unreadable configuration as "not defined" and a monitor that refuses
    /// our commands as "stopped".
    pub(crate) fn denied(&self, op: &'static str) -> Option<Error> {
        if caller_is_root() {
            return None;
        }
        let reason = match std::fs::File::open(self.dir()?.join("config")) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                "its configuration cannot be read by this user"
            }
            _ if !self.may_control() => "its monitor refuses this user's commands (may_control is false)",
            _ => return None,
        };
        Some(Error::PermissionDenied { op, container: self.name.to_string(), reason })
    }

    /// For a caller that is not root and a call that failed although the
    /// container is in a state it can work from: the error saying that the
    /// container's directory is someone else's, if it is.
    fn not_writable(&self, op: &'static str) -> Option<Error> {
        use std::os::unix::ffi::OsStrExt;
        if caller_is_root() {
            return None;
        }
        let dir = std::ffi::CString::new(self.dir()?.as_os_str().as_bytes()).ok()?;
        // SAFETY: dir is a valid C string.
        if unsafe { libc::access(dir.as_ptr(), libc::W_OK) } == 0 {
            return None;
        }
        let reason = "its directory belongs to another user and is not writable by this one";
        Some(Error::PermissionDenied { op, container: self.name.to_string(), reason })
    }

    /// The container's directory, `lxcpath/name`.
    fn dir(&self) -> Option<PathBuf> {
        self.config_path().ok().map(|p| p.join(&*self.name))
    }

    /// The error for a call that needs another state than the container's
    /// (or that belongs to another user: see [`Container::denied`]).
    /// `guess` stands in when the state cannot be read.
    pub(crate) fn wrong_state(&self, op: &'static str, expected: &'static str, guess: State) -> Error {
        if let Some(denied) = self.denied(op) {
            return denied;
        }
        let state = self.state().unwrap_or(guess);
        Error::WrongState { op, container: self.name.to_string(), state, expected }
    }

    /// The error for a failed lifecycle call: the container is not defined,
    /// in a state the call cannot work from, or else liblxc's own failure.
    fn explain(&self, op: &'static str, from: &[State], expected: &'static str) -> Error {
        let err = self.failed(op);
        if matches!(err, Error::PermissionDenied { .. }) {
            return err;
        }
        if !self.is_defined() {
            return self.not_defined(op);
        }
        match self.state() {
            Ok(state) if !from.contains(&state) => {
                Error::WrongState { op, container: self.name.to_string(), state, expected }
            }
            _ => self.not_writable(op).unwrap_or(err),
        }
    }

    pub(crate) fn not_defined(&self, op: &'static str) -> Error {
        if let Some(denied) = self.denied(op) {
            return denied;
        }
        Error::NotDefined {
            op,
            container: self.name.to_string(),
            lxcpath: self.config_path().map(|p| p.display().to_string()).unwrap_or_default(),
        }
    }

    fn check_bool(&self, op: &'static str, ok: bool) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(self.failed(op))
        }
    }

    // ----- lifecycle -------------------------------------------------------

    /// Whether the container exists: its configuration file is in the lxcpath
    /// (`is_defined`). False also when the caller cannot see the file (another
    /// user's container); the calls that need the container then say
    /// [`Error::PermissionDenied`].
    pub fn is_defined(&self) -> bool {
        let _g = self.hold(Access::ReadPrivlock);
        // SAFETY: ptr is live; is_defined only reads the object.
        try_method!(self.is_defined).is_ok_and(|f| unsafe { f(self.ptr.as_ptr()) })
    }

    /// The container's state (`state`).
    ///
    /// An unprivileged caller gets [`Error::PermissionDenied`] for another
    /// user's container, which liblxc would report as `STOPPED`.
    ///
    /// ```no_run
    /// let c = lxc::Container::new("web")?;
    /// if c.state()? == lxc::State::Running {
    ///     println!("running");
    /// }
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn state(&self) -> Result<State> {
        let f = method!(self.state);
        let g = self.hold(Access::Read);
        // SAFETY: ptr is live; state returns a pointer to a static string.
        let p = unsafe { f(self.ptr.as_ptr()) };
        drop(g);
        // SAFETY: the state names are static strings in liblxc.
        let s = unsafe { borrowed_str("state", p) }?;
        let state = s.parse().map_err(|_| Error::bad_return("state", format!("an unknown state {s:?}")))?;
        if state == State::Stopped {
            // liblxc says STOPPED also when the monitor refused to answer.
            if let Some(denied) = self.denied("state") {
                return Err(denied);
            }
        }
        Ok(state)
    }

    /// Whether the container is running (`is_running`): any state but
    /// `STOPPED`.
    pub fn is_running(&self) -> bool {
        let _g = self.hold(Access::Read);
        // SAFETY: ptr is live.
        try_method!(self.is_running).is_ok_and(|f| unsafe { f(self.ptr.as_ptr()) })
    }

    /// The pid of the container's init as seen from the host, or `None` when
    /// it is not running (`init_pid`).
    pub fn init_pid(&self) -> Option<libc::pid_t> {
        let f = try_method!(self.init_pid).ok()?;
        let g = self.hold(Access::Read);
        // SAFETY: ptr is live.
        let pid = unsafe { f(self.ptr.as_ptr()) };
        drop(g);
        (pid > 0).then_some(pid)
    }

    /// Creates the container: writes its configuration and builds its root
    /// filesystem with a template (`create`, `lxc-create`).
    ///
    /// Keys set on the object before (`set_config_item`) go into the new
    /// configuration; if `lxc.net.*` is among them, liblxc does not add
    /// the host's `/etc/lxc/default.conf`.
    ///
    /// A container that is defined but has no root filesystem yet, such as
    /// one whose configuration [`Container::save_config`] has just written,
    /// is created (as liblxc does). One that is defined and whose rootfs
    /// (`lxc.rootfs.path`) exists is [`Error::AlreadyDefined`], before
    /// liblxc runs: liblxc refuses the same when a template is given;
    /// without one, its create of an existing container only saves the
    /// configuration again, which is [`Container::save_config`]'s job.
    ///
    /// ```no_run
    /// use lxc::{Container, CreateOptions};
    /// let c = Container::with_lxcpath("c1", "/tmp/lxc")?;
    /// c.set_config_item("lxc.net.0.type", "empty")?;
    /// c.create(&CreateOptions::new().template("busybox").quiet(true))?;
    /// assert!(c.is_defined());
    /// # Ok::<(), lxc::Error>(())
    /// ```
    ///
    /// A missing lxcpath is made first, with its parents (mode 0755, less
    /// the umask), as `lxc-create` does; liblxc's own create only makes the
    /// container's directory in it. An lxcpath that exists and is not a
    /// directory is refused with [`Error::Io`] naming it.
    ///
    /// liblxc's create runs in the crate's helper process (see the README's
    /// "The helper process"), so it works from a process with many threads
    /// and from one that ignores `SIGCHLD`; the handle then reloads the new
    /// configuration, as liblxc's create does.
    pub fn create(&self, opts: &CreateOptions) -> Result<()> {
        let _ = method!(self.create);
        ensure_lxcpath(&self.config_path()?)?;
        // Creates and destroys of this container by any user of the crate,
        // in any process, one at a time; checked again under the lock.
        let _lifecycle = self.lifecycle_lock();
        if self.is_defined() && self.rootfs_exists() {
            return Err(Error::AlreadyDefined { op: "create", container: self.name.to_string() });
        }
        // Refuse here what an in-process call would: NUL bytes, and line
        // breaks in the template and its arguments, which liblxc writes
        // into the new configuration's header comment, one line each.
        opts.template.as_deref().map(|t| line_cstring("template", t)).transpose()?;
        // liblxc 6.0.0's `local` template substitutes nothing: it sets its
        // list of files before reading its arguments and reads `template`
        // for `templates` (both fixed in 6.0.1). A container from an image
        // would keep `LXC_PATH`, `LXC_ROOTFS` and `LXC_NAME` verbatim.
        let is_local = |t: &str| t == "local" || t.rsplit('/').next() == Some("lxc-local");
        if opts.template.as_deref().is_some_and(is_local) {
            let v = crate::runtime_version();
            if (v.major, v.minor, v.micro) == (6, 0, 0) {
                return Err(Error::Unsupported {
                    op: "create",
                    reason:
                        "liblxc 6.0.0's local template fills in no placeholder of the image (fixed in 6.0.1)",
                });
            }
        }
        opts.specs.as_ref().map(|s| s.to_raw()).transpose()?;
        CStrArray::lines("template argument", &opts.args)?;
        let mut hopts = vec![("flags", opts.flags().to_string().into())];
        if let Some(t) = &opts.template {
            hopts.push(("template", t.into()));
        }
        if let Some(b) = opts.backing_store {
            hopts.push(("bdev", b.as_str().into()));
        }
        if let Some(specs) = &opts.specs {
            hopts.extend(specs.helper_opts());
        }
        if let Some(dir) = &opts.cache_dir {
            line_cstring("download cache directory", crate::cstr::path_bytes(dir))?;
            hopts.push(("cachepath", dir.into()));
        }
        let out = self.run_helper("create", hopts, Some(opts.args.clone()))?;
        if !out.ok {
            out.restore_errno();
            return Err(self.failed("create"));
        }
        self.reload_config()
    }

    /// The configuration the helper process is to use (see `helper.rs`):
    /// the file on disk when the handle's configuration is unchanged since
    /// it was loaded or saved, else the handle's, written into a memfd.
    fn helper_config(&self, op: &'static str) -> Result<crate::helper::Config> {
        let g = self.hold(Access::ReadPrivlock);
        let config = self.helper_config_held();
        drop(g);
        // Built after the lock is released: the error asks the handle.
        config.map_err(|e| e.unwrap_or_else(|| self.failed(op)))
    }

    /// [`Container::helper_config`] for a caller that holds the handle at
    /// least as [`Access::ReadPrivlock`]. `Err(None)`: `save_config`
    /// failed, `errno` says why (a read-only lxcpath, ...).
    fn helper_config_held(&self) -> std::result::Result<crate::helper::Config, Option<Error>> {
        use crate::helper::Config;
        let save = try_method!(self.save_config).map_err(Some)?;
        // SAFETY: ptr is live; `lxc_conf` is replaced only under the
        // configuration lock, which the caller holds at least shared.
        if unsafe { read_stable_field!(self.ptr.as_ptr(), lxc_conf) }.is_null() {
            return Ok(Config::Cleared);
        }
        if !self.config_dirty.load(Ordering::SeqCst) {
            return Ok(Config::Disk);
        }
        let (fd, path) = Config::memfd().map_err(Some)?;
        // save_config makes the container's directory (liblxc's umask
        // dance): taken innermost, after the handle's locks, and nothing
        // takes a handle's lock while holding it.
        let dir = container_dir_guard();
        clear_errno();
        // SAFETY: ptr is live; path names our memfd and is valid for the call.
        let ok = unsafe { save(self.ptr.as_ptr(), path.as_ptr()) };
        drop(dir);
        if ok {
            Ok(Config::Memfd(fd))
        } else {
            Err(None)
        }
    }

    /// Runs, in the helper process as `helper_op` with `opts`, a call that
    /// deletes a root filesystem (destroy, rename, the snapshot destroys,
    /// a restore over the container). liblxc deletes in raw-`clone`d
    /// children for a caller that is not root, rename copies in one for
    /// everyone, and root's lvm destroy calls `setenv` in one: any of them
    /// can hang in a process with other threads (see `helper.rs`). liblxc's
    /// destroy also sets `LXC_*` variables in the calling process for its
    /// hooks. In the helper all of that happens to a single-threaded
    /// process of its own.
    ///
    /// With `check`, the paths the call deletes are checked first
    /// ([`Container::destroy`] says which), and the configuration is handed
    /// to the helper under the same hold of the handle (a reader, which
    /// excludes the configuration's writers): no other thread changes it
    /// in between. The helper then compares the root filesystem settings
    /// it loads with the ones checked and refuses when they differ (the
    /// configuration file or an included file changed since):
    /// [`Error::UnsafePath`], nothing deleted. A rename or a restore over
    /// the container with no `lxc.rootfs.path` is refused before liblxc
    /// sees it ([`Error::Unsupported`]): liblxc's storage setup for it
    /// would make every mount of the caller's mount namespace a slave
    /// (`MS_SLAVE | MS_REC` on `/`, for root the host's) and then fail.
    /// `check` is false for a call that deletes only what liblxc loads
    /// from disk by itself (a snapshot's root filesystem): the helper then
    /// works from the file on disk and the handle's configuration is not
    /// handed over (`save_config` would make the container's directory).
    ///
    /// Returns whether liblxc's call succeeded (`errno` is set when it
    /// did not).
    pub(crate) fn deleting_call(
        &self,
        op: &'static str,
        check: bool,
        helper_op: &'static str,
        mut opts: Vec<(&'static str, std::ffi::OsString)>,
    ) -> Result<bool> {
        let lxcpath = self.config_path()?;
        let dir = lxcpath.join(&*self.name);
        let (checked, config) = if check {
            // The hand-over (save_config) would make the directory of a
            // container that is not there.
            if !self.is_defined() {
                return Err(self.not_defined(op));
            }
            let g = self.hold(Access::ReadPrivlock);
            let checked = self.check_destroy_paths_held(op, &dir)?;
            if checked.rootfs.is_empty() && matches!(op, "rename" | "snapshot_restore") {
                return Err(Error::Unsupported {
                    op,
                    reason: "the container has no root filesystem (lxc.rootfs.path is empty): liblxc \
                             would make every mount of this mount namespace a slave, then fail",
                });
            }
            let config = self.helper_config_held();
            drop(g);
            (Some(checked), config.map_err(|e| e.unwrap_or_else(|| self.failed(op)))?)
        } else {
            (None, crate::helper::Config::Disk)
        };
        let handed_over = matches!(config, crate::helper::Config::Memfd(_));
        if let Some(checked) = checked {
            opts.push(("expect.rootfs", checked.rootfs));
            if let Some(managed) = checked.managed {
                opts.push(("expect.managed", managed));
            }
        }
        let out = crate::helper::run(crate::helper::Request {
            op: helper_op,
            name: &self.name,
            lxcpath: &lxcpath,
            config,
            opts,
            args: None,
        })?;
        match out.refused {
            None => {}
            Some(crate::helper::Refusal::Gone) => {
                // Destroyed meanwhile (another thread or process): liblxc's
                // save_config for the hand-over made its directory again.
                if handed_over {
                    let _ = std::fs::remove_dir(&dir);
                }
                return Err(self.not_defined(op));
            }
            // A configuration read while another destroy deleted it.
            Some(crate::helper::Refusal::NoLoad) if !self.is_defined() => return Err(self.not_defined(op)),
            Some(crate::helper::Refusal::NoLoad) => {
                return Err(Error::Failed {
                    op,
                    container: self.name.to_string(),
                    error_num: 0,
                    error_string: Some(format!(
                        "its configuration file {} could not be loaded",
                        dir.join("config").display()
                    )),
                    errno: (out.errno > 0).then_some(out.errno),
                });
            }
            Some(crate::helper::Refusal::Stale) => {
                return Err(Error::UnsafePath {
                    op,
                    container: self.name.to_string(),
                    path: dir.join("config"),
                    reason: "names another root filesystem (lxc.rootfs.path or lxc.rootfs.managed) when \
                             loaded again than when its paths were checked (the file or an included \
                             file changed since it was loaded, or a value has blanks or quotes around \
                             it that the file does not keep): liblxc was not called",
                });
            }
        }
        if !out.ok {
            out.restore_errno();
        }
        Ok(out.ok)
    }

    /// Runs `op` on this container in the helper process.
    pub(crate) fn run_helper(
        &self,
        op: &'static str,
        opts: Vec<(&'static str, std::ffi::OsString)>,
        args: Option<Vec<String>>,
    ) -> Result<crate::helper::Outcome> {
        let config = self.helper_config(op)?;
        let lxcpath = self.config_path()?;
        crate::helper::run(crate::helper::Request {
            op,
            name: &self.name,
            lxcpath: &lxcpath,
            config,
            opts,
            args,
        })
    }

    /// Replaces the in-memory configuration with the container's file
    /// (`clear_config`, `load_config`), as liblxc's own create does at its
    /// end. Both free or replace `lxc_conf`, which every call reads: the
    /// writer's lock excludes every other call on the handle.
    pub(crate) fn reload_config(&self) -> Result<()> {
        let clear = method!(self.clear_config);
        let load = method!(self.load_config);
        let g = self.hold(Access::Write);
        clear_errno();
        // SAFETY: ptr is live; the writer's lock excludes every other call
        // on this handle while `lxc_conf` is freed and loaded again.
        let ok = unsafe {
            clear(self.ptr.as_ptr());
            load(self.ptr.as_ptr(), ptr::null())
        };
        self.config_dirty.store(!ok, Ordering::SeqCst);
        // Released before the error is built, which asks the handle again.
        drop(g);
        self.check_bool("load_config", ok)
    }

    /// Whether the root filesystem named by `lxc.rootfs.path` exists:
    /// liblxc's own test in `create` (`access(rootfs.path, F_OK)`; liblxc
    /// keeps the path without its `TYPE:` prefix, and so does the value
    /// read back).
    fn rootfs_exists(&self) -> bool {
        match self.config_item_str("lxc.rootfs.path") {
            Ok(path) => !path.trim().is_empty() && Path::new(path.trim()).exists(),
            Err(_) => false,
        }
    }

    /// Starts the container with the default options: its own init,
    /// daemonized (`start`, `lxc-start`). Returns once the container runs.
    ///
    /// liblxc's start runs in the crate's helper process (see the README's
    /// "The helper process"): the container's monitor is a child of that
    /// single-threaded process with default signal dispositions, so it
    /// works from a process with many threads or one that ignores
    /// `SIGCHLD`, and the calling process stays in the cgroups it was in
    /// (liblxc 5.0 moves the process that calls start into the container's
    /// monitor cgroup: now the helper, which exits).
    pub fn start(&self) -> Result<()> {
        self.start_with(&StartOptions::new())
    }

    /// Starts the container with options (`want_daemonize`,
    /// `want_close_all_fds`, then `start`).
    ///
    /// A daemonized start (the default) runs in the crate's helper process,
    /// as [`Container::start`] says. A foreground start
    /// (`StartOptions::daemonize(false)`) makes this process the
    /// container's monitor and runs here: liblxc allows it only in a
    /// single-threaded process ([`Error::ForegroundStartInThreadedProcess`]),
    /// and the crate refuses it when this process ignores `SIGCHLD`
    /// ([`Error::SigchldIgnored`]: the monitor would never see init die).
    ///
    /// ```no_run
    /// use lxc::{Container, StartOptions};
    /// let c = Container::new("c1")?;
    /// c.start_with(&StartOptions::new().use_init(true).args(["/bin/sleep", "60"]))?;
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn start_with(&self, opts: &StartOptions) -> Result<()> {
        let f = method!(self.start);
        let want_daemonize = method!(self.want_daemonize);
        let want_close_all_fds = method!(self.want_close_all_fds);
        // liblxc's start destroys a container whose `partial` marker nobody
        // holds (an interrupted create), which would free the configuration
        // other threads read; say what it is instead. Checked before
        // `is_defined`: a create killed before it wrote the configuration
        // leaves the marker alone, and that container is half-made, not
        // absent.
        self.check_not_partial("start")?;
        if !self.is_defined() {
            return Err(self.not_defined("start"));
        }
        if !opts.daemonize {
            let threads = thread_count();
            if threads > 1 {
                return Err(Error::ForegroundStartInThreadedProcess {
                    container: self.name.to_string(),
                    threads,
                });
            }
        }
        let argv = CStrArray::new("start argument", &opts.args)?;
        let close_default = self.close_all_fds.load(Ordering::Relaxed);
        let close = opts.close_all_fds.unwrap_or(close_default);
        let lxcpath = self.config_path().ok();
        let owner = lxcpath.as_deref().map(|p| (p, &*self.name));
        if opts.daemonize {
            // Not while a destroy of the container (through any handle of
            // the crate, in any process) deletes it in the helper.
            let _lifecycle = self.lifecycle_lock();
            let hopts = vec![
                ("useinit", u8::from(opts.use_init).to_string().into()),
                ("closeallfds", u8::from(close).to_string().into()),
            ];
            let args = (!opts.args.is_empty()).then(|| opts.args.clone());
            let out = self.run_helper("start", hopts, args)?;
            monitor_cgroup::note_reported(owner, &out.cgroups);
            if out.ok {
                return Ok(());
            }
            out.restore_errno();
            return Err(self.explain("start", &[State::Stopped], "it must be stopped"));
        }
        // In the foreground this process becomes the container's monitor.
        if crate::helper::sigchld_ignored() {
            return Err(Error::SigchldIgnored { op: "start" });
        }
        let argv_ptr = if argv.is_empty() { ptr::null() } else { argv.as_ptr() };
        let raw = self.ptr.as_ptr();
        let (ok, error_num) = monitor_cgroup::around_start(owner, || {
            // `daemonize` and `close_all_fds` are read by `start` alone, and
            // every start and every `want_*` call holds the fork lock
            // exclusively: setting them here, starting, and putting them back
            // cannot interleave with another thread's settings.
            let _g = self.hold_long(Access::ReadFork);
            // Read again under the lock: a `want_close_all_fds` that ran
            // since must not be undone below.
            let close_default = self.close_all_fds.load(Ordering::Relaxed);
            let close = opts.close_all_fds.unwrap_or(close_default);
            // SAFETY: raw is live; `daemonize` is a plain bool written only
            // under the fork lock, which we hold.
            let daemonize_before = unsafe { read_stable_field!(raw, daemonize) };
            // SAFETY: raw is live; liblxc sets the flags under its own lock.
            let set = unsafe { want_daemonize(raw, opts.daemonize) && want_close_all_fds(raw, close) };
            if !set {
                return (false, 0);
            }
            clear_errno();
            // SAFETY: ptr is live; argv is null or a NULL-terminated array of
            // strings alive until the call returns.
            let ok = unsafe { f(raw, c_int::from(opts.use_init), argv_ptr) };
            let errno = std::io::Error::last_os_error();
            // A foreground start leaves the container's exit status in
            // `error_num`; a daemonized one leaves 1 whatever happened.
            let error_num = if opts.daemonize {
                0
            } else {
                // SAFETY: raw is live; `error_num` is written only by start,
                // which the fork lock we hold excludes on other threads.
                unsafe { read_stable_field!(raw, error_num) }
            };
            // SAFETY: as above; these calls only store the flags.
            unsafe {
                want_daemonize(raw, daemonize_before);
                want_close_all_fds(raw, close_default);
            }
            if let Some(e) = errno.raw_os_error() {
                // SAFETY: errno is this thread's; restored for `failed`.
                unsafe { *libc::__errno_location() = e };
            }
            (ok, error_num)
        });
        if ok {
            Ok(())
        } else if error_num != 0 {
            Err(self.failed_with("start", error_num))
        } else {
            Err(self.explain("start", &[State::Stopped], "it must be stopped"))
        }
    }

    /// [`Error::WrongState`] for a frozen (or freezing) container, before a
    /// call that signals its init and waits for the effect (`shutdown`,
    /// `reboot2`): a frozen init acts on the signal only at the thaw, and
    /// liblxc would wait the whole timeout for nothing.
    fn refuse_frozen(&self, op: &'static str) -> Result<()> {
        match self.state() {
            Ok(state @ (State::Frozen | State::Freezing)) => Err(Error::WrongState {
                op,
                container: self.name.to_string(),
                state,
                expected: "it must be running (unfreeze it first)",
            }),
            _ => Ok(()),
        }
    }

    /// The error for a container that liblxc's `partial` marker says is
    /// being created or was left half-made by an interrupted create or copy.
    pub(crate) fn check_not_partial(&self, op: &'static str) -> Result<()> {
        match self.dir() {
            Some(dir) if dir.join("partial").exists() => {
                Err(Error::PartiallyCreated { op, container: self.name.to_string() })
            }
            _ => Ok(()),
        }
    }

    /// Calls a member that takes only the container and answers whether it
    /// worked: `stop`, `reboot`, `freeze`, `unfreeze`. With
    /// `done_when_stopped`, a stopped container has reached the call's goal
    /// already: it is `Ok` without calling liblxc (which reports success
    /// too), unless the container is not defined or is another user's. On
    /// failure the error says which state the container is in when it is
    /// none of `from`.
    fn running_call(
        &self,
        op: &'static str,
        f: unsafe extern "C" fn(*mut sys::lxc_container) -> bool,
        done_when_stopped: bool,
        from: &[State],
        expected: &'static str,
    ) -> Result<()> {
        if done_when_stopped && !self.is_running() {
            return self.stopped_already(op);
        }
        // Long: liblxc's stop waits for the monitor to close the command
        // connection (its teardown), a v1 freeze polls once a second until
        // FROZEN.
        let g = self.hold_long(Access::Read);
        clear_errno();
        // SAFETY: ptr is live; f is a member of this container that takes
        // only the container.
        let ok = unsafe { f(self.ptr.as_ptr()) };
        drop(g);
        if ok {
            return Ok(());
        }
        // The checks below make calls of their own: liblxc's errno is put
        // back for the error.
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if done_when_stopped && self.reached_stopped(op == "stop") {
            // liblxc said no, but the goal is reached: its stop fails with
            // ECONNRESET when the monitor's end of the command connection
            // closes with data unread (the cgroup v2 guest, kernel 6.1:
            // every stop of 20 at once), after the kill went out.
            self.stopped_already(op)
        } else {
            set_errno(errno);
            Err(self.explain(op, from, expected))
        }
    }

    /// Whether the container is stopped, or stopping (or, after a `stop`
    /// whose kill may have gone out, still running) and then stopped
    /// within 5 s.
    fn reached_stopped(&self, killed: bool) -> bool {
        match self.state() {
            Ok(State::Stopped) => true,
            Ok(State::Stopping) => self.wait(State::Stopped, Duration::from_secs(5)).is_ok(),
            Ok(State::Running) if killed => self.wait(State::Stopped, Duration::from_secs(5)).is_ok(),
            _ => false,
        }
    }

    /// For a call whose goal a stopped container has reached (`stop`,
    /// `shutdown`, `unfreeze`) and a container found not running: `Ok`,
    /// as liblxc says, unless the container belongs to another user (whose
    /// monitor liblxc cannot ask, so "not running" means nothing) or is
    /// not defined at all (a mistyped name should not pass silently).
    fn stopped_already(&self, op: &'static str) -> Result<()> {
        if let Some(denied) = self.denied(op) {
            return Err(denied);
        }
        if !self.is_defined() {
            return Err(self.not_defined(op));
        }
        Ok(())
    }

    /// Kills the container at once (`stop`, `lxc-stop -k`).
    ///
    /// A container that is stopped already is `Ok` (as in liblxc: the goal
    /// is reached, and repeated calls are harmless); one that is not
    /// defined is [`Error::NotDefined`].
    pub fn stop(&self) -> Result<()> {
        let f = method!(self.stop);
        let from = [State::Starting, State::Running, State::Frozen, State::Freezing, State::Thawed];
        self.running_call("stop", f, true, &from, "it must be running")
    }

    /// Asks the container to shut down cleanly (its init gets the halt
    /// signal) and waits up to `timeout` for it to stop (`shutdown`,
    /// `lxc-stop`). A container that is still running then gives
    /// [`Error::Timeout`]; kill it with [`Container::stop`].
    ///
    /// `Duration::ZERO` sends the signal and returns at once;
    /// `Duration::MAX` waits until the container stops (liblxc's `-1`).
    /// Other timeouts count in whole seconds, rounded up, and at most
    /// 2,147,483 s (about 24.8 days): liblxc computes the timeout in
    /// milliseconds in a C `int`, and a longer one is shortened to that.
    ///
    /// A container that is stopped already is `Ok` (as in liblxc); one that
    /// is not defined is [`Error::NotDefined`]. When liblxc reports a
    /// failure (liblxc 5.0.2 also does when the container stopped during
    /// the call), a container that is stopped, or stopping and then stopped
    /// within 5 s more, is `Ok` too (with `Duration::ZERO`, only one that
    /// is stopped).
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        let f = method!(self.shutdown);
        if !self.is_running() {
            return self.stopped_already("shutdown");
        }
        self.refuse_frozen("shutdown")?;
        let g = self.hold_long(Access::Read);
        clear_errno();
        // SAFETY: ptr is live.
        let ok = unsafe { f(self.ptr.as_ptr(), shutdown_timeout_secs(timeout)) };
        drop(g);
        if ok {
            return Ok(());
        }
        // liblxc 5.0.2 also fails a shutdown whose container stopped
        // meanwhile (adding the state client or signalling the init's
        // pidfd fails): the goal is reached, as for `stop`. (Its checks
        // make calls of their own: liblxc's errno is put back for the
        // error.)
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let stopped = if timeout.is_zero() {
            // Returns at once, as it says: only a container stopped now.
            matches!(self.state(), Ok(State::Stopped))
        } else {
            self.reached_stopped(false)
        };
        if stopped {
            return self.stopped_already("shutdown");
        }
        set_errno(errno);
        match self.explain(
            "shutdown",
            &[State::Running, State::Starting, State::Stopping],
            "it must be running",
        ) {
            Error::Failed { .. } if self.is_running() => {
                Err(Error::Timeout { op: "shutdown", container: self.name.to_string(), timeout })
            }
            e => Err(e),
        }
    }

    /// Asks the container to reboot (its init gets the reboot signal), without
    /// waiting (`reboot`).
    pub fn reboot(&self) -> Result<()> {
        let f = method!(self.reboot);
        self.running_call("reboot", f, false, &[State::Running], "it must be running")
    }

    /// Freezes every process of the container (`freeze`, `lxc-freeze`).
    pub fn freeze(&self) -> Result<()> {
        let f = method!(self.freeze);
        let from = [State::Running, State::Thawed, State::Frozen];
        self.running_call("freeze", f, false, &from, "it must be running")
    }

    /// Thaws a frozen container (`unfreeze`, `lxc-unfreeze`).
    ///
    /// Its goal is a container whose processes are not suspended: a running
    /// container that is not frozen, and a stopped one, are `Ok` without
    /// change (as in liblxc); a container that is not defined is
    /// [`Error::NotDefined`].
    pub fn unfreeze(&self) -> Result<()> {
        let f = method!(self.unfreeze);
        let from = [State::Frozen, State::Freezing, State::Running, State::Thawed];
        self.running_call("unfreeze", f, true, &from, "it must be frozen")
    }

    /// Waits up to `timeout` for the container to reach `state` (`wait`,
    /// `lxc-wait`). `Duration::ZERO` checks once; `Duration::MAX` waits
    /// forever; other timeouts count in whole seconds, rounded up.
    ///
    /// liblxc answers only "reached" or "not": it also gives up at once
    /// when the container's monitor reports another state (the container
    /// stopped while `FROZEN` was awaited) or cannot be asked. So when
    /// liblxc says "not", the state is read again: reached after all is
    /// `Ok`; a wait that lasted its whole timeout (less one second, liblxc's
    /// step while no monitor answers) is [`Error::Timeout`]; one that ended
    /// earlier is [`Error::NotDefined`] when the container is gone, else
    /// [`Error::WaitInterrupted`] with the state found. A container that is
    /// not running (or not defined) is waited for until the timeout: it may
    /// be started (or created) meanwhile.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let c = lxc::Container::new("c1")?;
    /// c.start()?;
    /// c.wait(lxc::State::Running, Duration::from_secs(10))?;
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn wait(&self, state: State, timeout: Duration) -> Result<()> {
        let f = method!(self.wait);
        if let Some(denied) = self.denied("wait") {
            return Err(denied);
        }
        if timeout.is_zero() {
            // liblxc's wait blocks forever for a timeout of 0: check once.
            return if self.state()? == state {
                Ok(())
            } else {
                Err(Error::Timeout { op: "wait", container: self.name.to_string(), timeout })
            };
        }
        let secs = timeout_secs(timeout);
        let started = std::time::Instant::now();
        let g = self.hold_long(Access::Read);
        // SAFETY: ptr is live; the state name is a static C string.
        let ok = unsafe { f(self.ptr.as_ptr(), state.as_cstr().as_ptr(), secs) };
        drop(g);
        if ok {
            return Ok(());
        }
        let after = started.elapsed();
        let now = self.state()?;
        if now == state {
            return Ok(());
        }
        // liblxc's wait lasts `secs` seconds on the monitor's socket, or
        // `secs - 1` one-second sleeps while no monitor answers.
        let full = u64::try_from(secs).ok().map(Duration::from_secs);
        if full.is_some_and(|full| after + Duration::from_secs(1) >= full) {
            return Err(Error::Timeout { op: "wait", container: self.name.to_string(), timeout });
        }
        if !self.is_defined() {
            return Err(self.not_defined("wait"));
        }
        Err(Error::WaitInterrupted { container: self.name.to_string(), wanted: state, state: now, after })
    }

    /// liblxc's `wait` for any of `states` (`"A|B|C"`): true once the
    /// container is in one of them; false when the timeout passed or
    /// liblxc gave up (the monitor went away: the container stopped).
    /// `timeout` as in [`Container::wait`], but not zero.
    #[cfg(feature = "tokio")]
    pub(crate) fn wait_any(&self, states: &[State], timeout: Duration) -> Result<bool> {
        let f = method!(self.wait);
        if let Some(denied) = self.denied("wait") {
            return Err(denied);
        }
        let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
        let names = std::ffi::CString::new(names.join("|"))
            .map_err(|_| Error::bad_return("wait", "a state name holds NUL"))?;
        let g = self.hold_long(Access::Read);
        // SAFETY: ptr is live; names is a C string alive for the call.
        let ok = unsafe {
            f(self.ptr.as_ptr(), names.as_ptr(), timeout_secs(timeout.max(Duration::from_secs(1))))
        };
        drop(g);
        Ok(ok)
    }

    /// Destroys a stopped container: its root filesystem and configuration
    /// (`destroy`, `lxc-destroy`). A container with snapshots is refused by
    /// liblxc.
    ///
    /// Before liblxc runs, the paths it would delete are checked
    /// ([`Error::UnsafePath`] when one is refused): the container's
    /// directory must not be a symbolic link; the root filesystem
    /// (`lxc.rootfs.path`; a `dir:`/`btrfs:` path or a plain directory, or
    /// the upper directory of `overlay:LOWER:UPPER`) must resolve to a path
    /// inside the container's directory, or else lie outside it
    /// (`BdevSpecs::dir`) and be the very path it resolves to (no symbolic
    /// link on the way), and never be `/` or a directory above the
    /// container's. liblxc follows a symbolic link there and
    /// empties its target (so does `lxc-destroy`). Symbolic links inside
    /// the root filesystem are fine: liblxc removes them, not what they
    /// point to. Other stores (zfs, lvm, rbd, loop, nbd) are not checked;
    /// nor is anything with `lxc.rootfs.managed = 0`, whose root
    /// filesystem liblxc leaves alone. The check and the call run under one
    /// hold of the handle, so no other thread changes the configuration in
    /// between.
    ///
    /// The call runs in the crate's helper process (see the README's "The
    /// helper process"): for a caller that is not root liblxc deletes in
    /// children it starts with a raw `clone` and that then switch ids, and
    /// root's lvm destroy calls `setenv` in one; either can hang in a
    /// process with other threads.
    pub fn destroy(&self) -> Result<()> {
        let _destroy = method!(self.destroy);
        monitor_cgroup::retry_pending();
        if self.is_running() {
            return Err(self.wrong_state("destroy", "it must be stopped", State::Running));
        }
        // Creates and destroys of this container by any user of the crate,
        // in any process, one at a time: the second of two destroys finds
        // nothing to destroy.
        let lifecycle = self.lifecycle_lock();
        if !self.is_defined() {
            return Err(self.not_defined("destroy"));
        }
        // A create running in any process (the `lxc-*` tools included)
        // holds liblxc's lock on the `partial` marker: refuse rather than
        // delete a rootfs being made. An interrupted create left the marker
        // unlocked: destroying is the remedy, so go on.
        if let Some(dir) = self.dir() {
            use std::os::fd::AsRawFd;
            if let Ok(partial) = std::fs::File::open(dir.join("partial")) {
                if ofd_lock_held(partial.as_raw_fd()) {
                    return Err(Error::PartiallyCreated { op: "destroy", container: self.name.to_string() });
                }
            }
        }
        let ok = self.deleting_call("destroy", true, "destroy", Vec::new())?;
        drop(lifecycle);
        if ok {
            if let Ok(lxcpath) = self.config_path() {
                monitor_cgroup::remove_leftovers(&lxcpath, &self.name);
            }
            Ok(())
        } else {
            // Another handle or process may be destroying the container at
            // this moment (liblxc's disk lock held): once it is done, the
            // container is not defined, which is what to say.
            self.wait_disk_lock_free(Duration::from_secs(10));
            Err(self.explain("destroy", &[State::Stopped], "it must be stopped"))
        }
    }

    /// The crate's own lock on this container's creation and destruction:
    /// an exclusive `flock` on `<rundir>/lxc/lock/<lxcpath>/.<name>.lxc-rs`,
    /// beside liblxc's lock file but never liblxc's own (holding liblxc's
    /// across its call would deadlock the crate against liblxc: a second
    /// open file description). `None` (no serialization) where no such
    /// file can be made, e.g. an unprivileged caller without
    /// `XDG_RUNTIME_DIR`. The `lxc-*` tools do not take it.
    pub(crate) fn lifecycle_lock(&self) -> Option<std::fs::File> {
        use std::os::fd::AsRawFd;
        let rundir = if caller_is_root() {
            PathBuf::from("/run")
        } else {
            PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?)
        };
        let lxcpath = self.config_path().ok()?;
        let dir = rundir.join("lxc/lock").join(lxcpath.strip_prefix("/").unwrap_or(&lxcpath));
        std::fs::create_dir_all(&dir).ok()?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(format!(".{}.lxc-rs", self.name)))
            .ok()?;
        loop {
            // SAFETY: flock on our own open descriptor.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Some(file);
            }
            if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return None;
            }
        }
    }

    /// Waits, at most `max`, until no process holds liblxc's disk lock on
    /// this container (`<rundir>/lxc/lock/<lxcpath>/.<name>`, an OFD lock),
    /// without taking it: `F_OFD_GETLK` only asks. (Opening and closing the
    /// file cannot drop a lock of this process: liblxc takes OFD locks,
    /// which belong to its own open file description.)
    fn wait_disk_lock_free(&self, max: Duration) {
        use std::os::fd::AsRawFd;
        let rundir = if caller_is_root() {
            PathBuf::from("/run")
        } else {
            match std::env::var_os("XDG_RUNTIME_DIR") {
                Some(d) => PathBuf::from(d),
                None => return,
            }
        };
        let Ok(lxcpath) = self.config_path() else { return };
        let lock = rundir
            .join("lxc/lock")
            .join(lxcpath.strip_prefix("/").unwrap_or(&lxcpath))
            .join(format!(".{}", self.name));
        let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).open(&lock) else {
            return;
        };
        let deadline = std::time::Instant::now() + max;
        while std::time::Instant::now() < deadline && ofd_lock_held(file.as_raw_fd()) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Refuses ([`Error::UnsafePath`]) to let liblxc destroy the container
    /// when a path it deletes leads out of the container (see
    /// [`Container::destroy`]).
    fn check_destroy_paths_held(&self, op: &'static str, dir: &Path) -> Result<DestroyChecked> {
        use std::fs;
        use std::os::unix::ffi::OsStringExt;
        if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::UnsafePath {
                op,
                container: self.name.to_string(),
                path: dir.to_owned(),
                reason: "is a symbolic link: liblxc would delete the directory it points to",
            });
        }
        let dir_real = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
        let managed = self.config_item_unlocked("lxc.rootfs.managed");
        let rootfs = self.config_item_unlocked("lxc.rootfs.path").unwrap_or_default();
        if managed.as_deref().map(<[u8]>::trim_ascii) != Some(b"0") {
            for target in deleted_rootfs(&rootfs) {
                self.check_deleted_path(op, dir, &dir_real, &target)?;
            }
        }
        Ok(DestroyChecked {
            rootfs: std::ffi::OsString::from_vec(rootfs),
            managed: managed.map(std::ffi::OsString::from_vec),
        })
    }

    fn check_deleted_path(&self, op: &'static str, dir: &Path, dir_real: &Path, target: &Path) -> Result<()> {
        let unsafe_path = |reason: &'static str| Error::UnsafePath {
            op,
            container: self.name.to_string(),
            path: target.to_owned(),
            reason,
        };
        let Ok(real) = std::fs::canonicalize(target) else {
            // Nothing there (or a dangling link): liblxc deletes nothing.
            return Ok(());
        };
        if real == Path::new("/") || dir_real.starts_with(&real) {
            return Err(unsafe_path(
                "(the root filesystem) is / or a directory above the container's: liblxc would delete it",
            ));
        }
        if real.starts_with(dir_real) {
            // Resolves into the container's own directory.
            return Ok(());
        }
        if target.starts_with(dir) || target.starts_with(dir_real) {
            return Err(unsafe_path(
                "(the root filesystem) leads out of the container's directory through a symbolic \
                 link: liblxc would empty the directory it points to",
            ));
        }
        if real != target {
            return Err(unsafe_path(
                "(the root filesystem, outside the container's directory) is not the path it \
                 resolves to (a symbolic link or '..' on the way): liblxc would delete the directory \
                 it leads to",
            ));
        }
        Ok(())
    }

    /// Renames a stopped container (`rename`, `lxc-copy -R`); afterwards
    /// this handle names the container by its new name.
    ///
    /// `Err` means that nothing was renamed (as far as liblxc says: its
    /// rename copies the container and then destroys the original, and
    /// reports failure also when only the second step failed). Once liblxc
    /// has renamed the container the call is `Ok` and the handle names the
    /// new container, with its configuration loaded from disk; should that
    /// configuration not load (a `lxc.hook.clone` hook that broke it), the
    /// handle has none loaded and [`Container::load_config`] says why.
    ///
    /// Since liblxc destroys the original, the paths it deletes are
    /// checked as for [`Container::destroy`] ([`Error::UnsafePath`]). The
    /// call runs in the crate's helper process: liblxc copies the root
    /// filesystem in a raw-`clone`d child that switches ids, which can hang
    /// in a process with other threads.
    pub fn rename(&mut self, new_name: &str) -> Result<()> {
        let _rename = method!(self.rename);
        check_name("new container name", new_name)?;
        cstring("new container name", new_name)?;
        let lxcpath = self.config_path()?;
        // Opened first, while nothing has changed, so that a rename that
        // liblxc has done always leaves a handle on the new name: liblxc
        // leaves this object on the old (now destroyed) one.
        let fresh = Container::with_lxcpath(new_name, &lxcpath)?;
        // Always in the helper: liblxc's rename copies the root filesystem
        // with its rsync wrapper in a raw-`clone`d child (`run_command`,
        // or `userns_exec_full` when not root) that calls `setresgid`, and
        // then destroys the original (see `deleting_call`).
        let lifecycle = self.lifecycle_lock();
        let ok = self.deleting_call("rename", true, "rename", vec![("newname", new_name.into())])?;
        drop(lifecycle);
        if !ok {
            return Err(self.explain("rename", &[State::Stopped], "it must be stopped"));
        }
        // `fresh` was opened before the configuration existed: a handle
        // opened now reads it. If it cannot, `fresh` still names the new
        // container.
        *self = Container::with_lxcpath(new_name, &lxcpath).unwrap_or(fresh);
        Ok(())
    }

    /// Whether the caller may control the container (`may_control`): false
    /// for an unprivileged caller on another user's container.
    pub fn may_control(&self) -> bool {
        let _g = self.hold(Access::Read);
        // SAFETY: ptr is live.
        try_method!(self.may_control).is_ok_and(|f| unsafe { f(self.ptr.as_ptr()) })
    }

    /// Whether [`Container::start`] daemonizes (`want_daemonize`). The
    /// setting lives in the container object and holds for later starts.
    pub fn want_daemonize(&self, daemonize: bool) -> Result<()> {
        let f = method!(self.want_daemonize);
        // Read only by start, which holds the fork lock exclusively too.
        let _g = self.hold(Access::ReadFork);
        // SAFETY: ptr is live; liblxc sets the flag under its lock.
        let ok = unsafe { f(self.ptr.as_ptr(), daemonize) };
        self.check_bool("want_daemonize", ok)
    }

    /// Whether [`Container::start`] daemonizes the container: the object's
    /// `daemonize` flag, which [`Container::want_daemonize`] sets (liblxc's
    /// default is `true`).
    pub fn daemonize(&self) -> bool {
        // Written by want_daemonize and start, both under the fork lock.
        let _g = self.hold(Access::ReadFork);
        // SAFETY: ptr is live; `daemonize` is a plain bool written only
        // under the fork lock, which we hold.
        unsafe { read_stable_field!(self.ptr.as_ptr(), daemonize) }
    }

    /// Whether liblxc closes all inherited file descriptors in the
    /// container when it starts (`want_close_all_fds`).
    pub fn want_close_all_fds(&self, close: bool) -> Result<()> {
        let f = method!(self.want_close_all_fds);
        // Read only by start, which holds the fork lock exclusively too.
        let _g = self.hold(Access::ReadFork);
        // SAFETY: ptr is live; liblxc sets the flag under its lock.
        let ok = unsafe { f(self.ptr.as_ptr(), close) };
        if ok {
            self.close_all_fds.store(close, Ordering::Relaxed);
        }
        self.check_bool("want_close_all_fds", ok)
    }

    /// Calls a `(container) -> fd` member; a negative result is an error
    /// that says whether the container runs. (Unused only with a header
    /// older than every fd member.)
    #[allow(dead_code)]
    fn fd_call(
        &self,
        op: &'static str,
        f: unsafe extern "C" fn(*mut sys::lxc_container) -> c_int,
    ) -> Result<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd;
        let g = self.hold(Access::Read);
        clear_errno();
        // SAFETY: ptr is live; f is a member of this container taking only it.
        let fd = unsafe { f(self.ptr.as_ptr()) };
        drop(g);
        if fd < 0 {
            return Err(self.explain(
                op,
                &[State::Running, State::Frozen, State::Thawed],
                "it must be running",
            ));
        }
        // SAFETY: liblxc returns a new descriptor that the caller owns.
        Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    }

    /// A pidfd of the container's init (`init_pidfd`): it polls readable
    /// when init exits.
    #[cfg(lxc_member = "init_pidfd")]
    pub fn init_pidfd(&self) -> Result<std::os::fd::OwnedFd> {
        let f = method!(self.init_pidfd);
        self.fd_call("init_pidfd", f)
    }

    /// A mount descriptor of the running container's devpts instance
    /// (`devpts_fd`), to make ptys inside from the host.
    ///
    /// liblxc 4.0.5 and later: the method exists when the crate is built
    /// with such a header, and a library older than 4.0.5 loaded at run
    /// time gives [`Error::Unsupported`].
    #[cfg(lxc_member = "devpts_fd")]
    #[cfg_attr(docsrs, doc(cfg(liblxc = "4.0.5 and later")))]
    pub fn devpts_fd(&self) -> Result<std::os::fd::OwnedFd> {
        let f = method!(self.devpts_fd);
        self.fd_call("devpts_fd", f)
    }

    /// The listener descriptor of the container's seccomp notifier
    /// (`seccomp_notify_fd`); the container needs a seccomp profile with
    /// `notify` actions (`lxc.seccomp.notify.proxy`).
    #[cfg(lxc_member = "seccomp_notify_fd")]
    ///
    /// liblxc returns the descriptor its configuration keeps (and closes
    /// later), not a new one: the crate hands out a duplicate.
    pub fn seccomp_notify_fd(&self) -> Result<std::os::fd::OwnedFd> {
        use std::os::fd::{AsFd, BorrowedFd};
        let f = method!(self.seccomp_notify_fd);
        // liblxc's attach and a foreground start set and close that
        // descriptor in this process: excluded by the fork lock.
        let g = self.hold(Access::ReadFork);
        clear_errno();
        // SAFETY: ptr is live; f takes only the container.
        let fd = unsafe { f(self.ptr.as_ptr()) };
        let dup = (fd >= 0).then(|| {
            // SAFETY: fd is liblxc's open descriptor, alive while we hold
            // the fork lock exclusively (attach and start, which close it,
            // take it too; freeing the configuration needs the write lock);
            // borrowed only to duplicate it.
            unsafe { BorrowedFd::borrow_raw(fd) }.as_fd().try_clone_to_owned()
        });
        drop(g);
        match dup {
            Some(Ok(owned)) => Ok(owned),
            Some(Err(source)) => Err(Error::Io { op: "duplicate the seccomp notify descriptor", source }),
            None => Err(self.explain(
                "seccomp_notify_fd",
                &[State::Running, State::Frozen, State::Thawed],
                "it must be running",
            )),
        }
    }

    /// The seccomp notifier descriptor of the running container, asked from
    /// its monitor (`seccomp_notify_fd_active`).
    ///
    /// liblxc 4.0.5 and later: the method exists when the crate is built
    /// with such a header, and a library older than 4.0.5 loaded at run
    /// time gives [`Error::Unsupported`].
    #[cfg(lxc_member = "seccomp_notify_fd_active")]
    #[cfg_attr(docsrs, doc(cfg(liblxc = "4.0.5 and later")))]
    pub fn seccomp_notify_fd_active(&self) -> Result<std::os::fd::OwnedFd> {
        let f = method!(self.seccomp_notify_fd_active);
        self.fd_call("seccomp_notify_fd_active", f)
    }

    /// Reboots the container and waits up to `timeout` for it to come back
    /// (`reboot2`); [`Error::Timeout`] when it did not in time.
    #[cfg(lxc_member = "reboot2")]
    pub fn reboot2(&self, timeout: Duration) -> Result<()> {
        let f = method!(self.reboot2);
        if !self.is_running() {
            return Err(self.explain("reboot2", &[], "it must be running"));
        }
        self.refuse_frozen("reboot2")?;
        let g = self.hold_long(Access::Read);
        clear_errno();
        // SAFETY: ptr is live.
        let ok = unsafe { f(self.ptr.as_ptr(), timeout_secs(timeout)) };
        drop(g);
        if ok {
            Ok(())
        } else if self.is_running() {
            Err(Error::Timeout { op: "reboot2", container: self.name.to_string(), timeout })
        } else {
            Err(self.failed("reboot2"))
        }
    }

    /// Sets the timeout of the container's command-socket requests
    /// (`set_timeout`; liblxc 6.0 and later), rounded up to whole seconds.
    /// `Duration::MAX` means no timeout (liblxc's `-1`). liblxc refuses
    /// zero, and cannot take more than `i32::MAX` seconds: both are
    /// [`Error::InvalidArgument`], before liblxc is called.
    ///
    /// liblxc 6.0 and later: the method exists when the crate is built
    /// with such a header, and a library older than 6.0 loaded at run time
    /// gives [`Error::Unsupported`].
    #[cfg(lxc_member = "set_timeout")]
    #[cfg_attr(docsrs, doc(cfg(liblxc = "6.0 and later")))]
    pub fn set_timeout(&self, timeout: Duration) -> Result<()> {
        let f = method!(self.set_timeout);
        let secs = set_timeout_secs(timeout)?;
        let g = self.hold(Access::Write);
        clear_errno();
        // SAFETY: ptr is live; the timeout is passed in whole seconds.
        let ok = unsafe { f(self.ptr.as_ptr(), secs as _) };
        // Released before the error is built, which asks the handle again.
        drop(g);
        self.check_bool("set_timeout", ok)
    }

    // ----- configuration --------------------------------------------------

    /// The value of a configuration key (`get_config_item`); multi-valued
    /// keys give a [`ConfigValue::List`].
    ///
    /// ```
    /// let c = lxc::Container::with_lxcpath("c1", std::env::temp_dir())?;
    /// c.set_config_item("lxc.uts.name", "web1")?;
    /// assert_eq!(c.config_item("lxc.uts.name")?, "web1");
    /// c.set_config_item("lxc.cap.drop", "sys_module mac_admin")?;
    /// assert_eq!(c.config_item("lxc.cap.drop")?.into_vec(), ["sys_module", "mac_admin"]);
    /// assert!(matches!(c.config_item("lxc.bogus"), Err(lxc::Error::UnknownConfigKey { .. })));
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn config_item(&self, key: &str) -> Result<ConfigValue> {
        self.config_item_str(key).map(|s| ConfigValue::from_raw(key, s))
    }

    /// The value of a configuration key as liblxc prints it: list values
    /// one per line.
    pub fn config_item_str(&self, key: &str) -> Result<String> {
        let f = method!(self.get_config_item);
        let raw = self.ptr.as_ptr();
        let r = with_line_cstr("config key", key.as_bytes(), |k| {
            let _g = self.shared();
            // SAFETY: raw is live; k is valid for the closure; the buffer
            // pointer and its length come from read_sized and match.
            read_sized("get_config_item", |buf, len| unsafe { f(raw, k, buf, len) })
        })??;
        r.ok_or_else(|| self.config_key_error("get_config_item", key))
    }

    /// `lxc.net.<N>.type` of the key `lxc.net.<N>`, read without taking
    /// the handle's locks (the caller holds the configuration lock).
    fn nic_type_unlocked(&self, nic_key: &str) -> Option<String> {
        self.config_item_unlocked(&format!("{nic_key}.type")).and_then(|v| String::from_utf8(v).ok())
    }

    /// A configuration item's bytes, read without taking the handle's
    /// locks (the caller holds the configuration lock); `None` when liblxc
    /// has no value for it.
    fn config_item_unlocked(&self, key: &str) -> Option<Vec<u8>> {
        let f = try_method!(self.get_config_item).ok()?;
        let k = std::ffi::CString::new(key).ok()?;
        let raw = self.ptr.as_ptr();
        // SAFETY: raw is live; k is valid for the call; the buffer pointer
        // and its length come from read_sized_bytes and match.
        read_sized_bytes("get_config_item", |buf, len| unsafe { f(raw, k.as_ptr(), buf, len) }).ok().flatten()
    }

    fn config_key_error(&self, op: &'static str, key: &str) -> Error {
        if crate::config::is_cgroup_v1_key(key) && crate::runtime_version() >= crate::Version::new(7, 0, 0) {
            return Error::Unsupported {
                op,
                reason: "liblxc 7.0 dropped the cgroup v1 configuration keys (lxc.cgroup.<controller>.*): \
                         use lxc.cgroup2.* (on a cgroup v2 host), or set_cgroup_item on a running container",
            };
        }
        if crate::config::key_is_known(key) {
            self.failed(op)
        } else {
            Error::UnknownConfigKey { key: key.to_owned() }
        }
    }

    /// Calls a `(container, key, value) -> bool` member (`set_config_item`,
    /// `set_cgroup_item`), refusing line breaks, control characters and NUL
    /// bytes in either string (`check_line`).
    fn set_pair(
        &self,
        access: Access,
        f: unsafe extern "C" fn(*mut sys::lxc_container, *const c_char, *const c_char) -> bool,
        (key_what, key): (&'static str, &str),
        (value_what, value): (&'static str, &str),
    ) -> Result<bool> {
        let k = line_cstring(key_what, key)?;
        with_line_cstr(value_what, value.as_bytes(), |v| {
            let _g = self.hold(access);
            clear_errno();
            // SAFETY: ptr is live; both strings are valid for the call.
            unsafe { f(self.ptr.as_ptr(), k.as_ptr(), v) }
        })
    }

    /// Sets a configuration key in memory (`set_config_item`); save it
    /// with [`Container::save_config`]. For list keys each call adds a value;
    /// an empty value clears the list.
    ///
    /// Keys and values are single lines of liblxc's configuration file:
    /// a line break (`\n`, `\r`), NUL or another control character (TAB
    /// is fine) in either, and `=` in the key, are refused with
    /// [`Error::InvalidArgument`]. Saved and read again, they would make
    /// another key (`lxc.hook.pre-start`, `lxc.mount.entry`, ...) of what
    /// was meant as a value.
    ///
    /// ```
    /// let c = lxc::Container::with_lxcpath("c1", std::env::temp_dir())?;
    /// let e = c.set_config_item("lxc.environment", "A=1\nlxc.hook.pre-start = /bin/sh").unwrap_err();
    /// assert!(matches!(e, lxc::Error::InvalidArgument { .. }));
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn set_config_item(&self, key: &str, value: &str) -> Result<()> {
        let f = method!(self.set_config_item);
        if key.contains('=') {
            return Err(Error::invalid(
                "config key",
                key,
                "must not contain '=' (liblxc's configuration file would split the line there)",
            ));
        }
        let set = self.set_pair(Access::Write, f, ("config key", key), ("config value", value));
        // After the change, never before it: see `config_dirty`.
        self.config_dirty.store(true, Ordering::SeqCst);
        if set? {
            Ok(())
        } else {
            Err(self.config_key_error("set_config_item", key))
        }
    }

    /// Adds a value to a list key in memory, such as `lxc.environment` or
    /// `lxc.mount.entry` (python3-lxc's `append_config_item`). It is
    /// liblxc's `set_config_item`, which appends for list keys; for a key
    /// with one value it replaces that value.
    ///
    /// ```
    /// let c = lxc::Container::with_lxcpath("c1", std::env::temp_dir())?;
    /// c.append_config_item("lxc.environment", "A=1")?;
    /// c.append_config_item("lxc.environment", "B=2")?;
    /// assert_eq!(c.config_item("lxc.environment")?.into_vec(), ["A=1", "B=2"]);
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn append_config_item(&self, key: &str, value: &str) -> Result<()> {
        self.set_config_item(key, value)
    }

    /// Sets a list key to exactly `values`, in memory: clears it, then adds
    /// each value (ruby-lxc's `set_config_item(key, Array)`, python3-lxc's
    /// `set_config_item(key, list)`). No values leaves the key empty. If
    /// liblxc refuses a value, the key gets its old values back (as far as
    /// liblxc takes them again) and the error is returned.
    ///
    /// ```
    /// let c = lxc::Container::with_lxcpath("c1", std::env::temp_dir())?;
    /// c.set_config_item("lxc.environment", "OLD=1")?;
    /// c.set_config_list("lxc.environment", ["A=1", "B=2"])?;
    /// assert_eq!(c.config_item("lxc.environment")?.into_vec(), ["A=1", "B=2"]);
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn set_config_list<'a>(&self, key: &str, values: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let old = self.config_item_str(key).ok();
        self.clear_config_item(key)?;
        for v in values {
            if let Err(e) = self.set_config_item(key, v) {
                let _ = self.clear_config_item(key);
                for line in old.iter().flat_map(|o| o.lines()).filter(|l| !l.is_empty()) {
                    let _ = self.set_config_item(key, line);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Clears a configuration key in memory (`clear_config_item`).
    pub fn clear_config_item(&self, key: &str) -> Result<()> {
        let f = method!(self.clear_config_item);
        let ok = with_line_cstr("config key", key.as_bytes(), |k| {
            let _g = self.hold(Access::Write);
            if missing_nic_on_4_0_6(key, || self.nic_type_unlocked(key)) {
                return true;
            }
            clear_errno();
            // SAFETY: ptr is live; k is valid for the call.
            unsafe { f(self.ptr.as_ptr(), k) }
        })?;
        self.config_dirty.store(true, Ordering::SeqCst);
        if ok {
            Ok(())
        } else {
            Err(self.config_key_error("clear_config_item", key))
        }
    }

    /// Drops the whole in-memory configuration (`clear_config`).
    pub fn clear_config(&mut self) -> Result<()> {
        let f = method!(self.clear_config);
        // SAFETY: ptr is live; &mut self means no other call on this handle
        // reads the configuration meanwhile.
        unsafe { f(self.ptr.as_ptr()) };
        *self.config_dirty.get_mut() = true;
        Ok(())
    }

    /// The configuration keys, all or under a prefix such as `lxc.net.0`
    /// (`get_keys`).
    ///
    /// ```
    /// let c = lxc::Container::with_lxcpath("c1", std::env::temp_dir())?;
    /// c.set_config_item("lxc.net.0.type", "veth")?;
    /// assert!(c.keys(Some("lxc.net.0"))?.iter().any(|k| k == "link"));
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn keys(&self, prefix: Option<&str>) -> Result<Vec<String>> {
        let f = method!(self.get_keys);
        let raw = self.ptr.as_ptr();
        let r = with_line_cstr("config key prefix", prefix.unwrap_or("").as_bytes(), |k| {
            let _g = self.shared();
            let k = if prefix.is_some() { k } else { ptr::null() };
            // SAFETY: raw is live; k is null or valid for the closure.
            read_sized("get_keys", |buf, len| unsafe { f(raw, k, buf, len) })
        })??;
        match r {
            Some(s) => Ok(s.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()),
            None => Err(match prefix {
                Some(p) => self.config_key_error("get_keys", p),
                None => self.failed("get_keys"),
            }),
        }
    }

    /// The value of a key in the running container's configuration, asked
    /// from its monitor (`get_running_config_item`).
    pub fn running_config_item(&self, key: &str) -> Result<String> {
        let f = method!(self.get_running_config_item);
        let p = with_line_cstr("config key", key.as_bytes(), |k| {
            // liblxc holds `privlock` across the round trip to the monitor.
            let _g = self.hold(Access::ReadPrivlock);
            clear_errno();
            // SAFETY: ptr is live; k is valid for the call.
            unsafe { f(self.ptr.as_ptr(), k) }
        })?;
        if p.is_null() {
            if !self.is_running() {
                return Err(self.wrong_state(
                    "get_running_config_item",
                    "it must be running",
                    State::Stopped,
                ));
            }
            return Err(self.config_key_error("get_running_config_item", key));
        }
        // SAFETY: liblxc returns a malloc'ed string the caller owns.
        unsafe { take_string("get_running_config_item", p) }
    }

    /// Loads the configuration from a file, by default the container's own
    /// (`load_config`).
    pub fn load_config(&mut self, file: Option<&Path>) -> Result<()> {
        let f = method!(self.load_config);
        let file = file.map(|p| cstring("config file", path_bytes(p))).transpose()?;
        clear_errno();
        // SAFETY: ptr is live; &mut self excludes concurrent readers of the
        // configuration that liblxc replaces; the path is valid for the call.
        let ok = unsafe { f(self.ptr.as_ptr(), file.as_ref().map_or(ptr::null(), |c| c.as_ptr())) };
        // liblxc adds what it reads to the configuration in memory.
        *self.config_dirty.get_mut() = true;
        self.check_bool("load_config", ok)
    }

    /// Writes the in-memory configuration to a file, by default the
    /// container's own (`save_config`).
    pub fn save_config(&self, file: Option<&Path>) -> Result<()> {
        let f = method!(self.save_config);
        let file = file.map(|p| cstring("config file", path_bytes(p))).transpose()?;
        let _g = self.shared();
        // liblxc makes the container's directory here, under a umask it
        // changes for the moment (see container_dir_guard): innermost.
        let dir = container_dir_guard();
        clear_errno();
        // SAFETY: ptr is live; the path is valid for the call.
        let ok = unsafe { f(self.ptr.as_ptr(), file.as_ref().map_or(ptr::null(), |c| c.as_ptr())) };
        drop(dir);
        if ok && file.is_none() {
            // Inside the lock, so no change can slip in between: see
            // `config_dirty`.
            self.config_dirty.store(false, Ordering::SeqCst);
        }
        match self.check_bool("save_config", ok) {
            Err(e) if file.is_none() => Err(self.not_writable("save_config").unwrap_or(e)),
            r => r,
        }
    }

    /// The path of the container's configuration file (`config_file_name`).
    pub fn config_file_name(&self) -> Result<PathBuf> {
        let f = method!(self.config_file_name);
        let g = self.hold(Access::Read);
        // SAFETY: ptr is live.
        let p = unsafe { f(self.ptr.as_ptr()) };
        drop(g);
        if p.is_null() {
            return Err(self.failed("config_file_name"));
        }
        // SAFETY: liblxc returns a malloc'ed string the caller owns.
        unsafe { take_string("config_file_name", p) }.map(PathBuf::from)
    }

    /// The lxcpath the container lives in (`get_config_path`).
    pub fn config_path(&self) -> Result<PathBuf> {
        let f = method!(self.get_config_path);
        let _g = self.hold(Access::Read);
        // SAFETY: ptr is live; the returned string belongs to the object and
        // only `set_config_path(&mut self)` frees it.
        let p = unsafe { f(self.ptr.as_ptr()) };
        // SAFETY: as above; copied at once.
        unsafe { borrowed_str("get_config_path", p) }.map(PathBuf::from)
    }

    /// Moves the handle to another lxcpath (`set_config_path`); the
    /// container on disk does not move. An existing path is resolved to
    /// its real path, as in [`Container::with_lxcpath`].
    pub fn set_config_path(&mut self, lxcpath: impl AsRef<Path>) -> Result<()> {
        let f = method!(self.set_config_path);
        let (_, p) = crate::cstr::lxcpath(lxcpath.as_ref())?;
        // The cached run was the old container's: an attach must not take
        // it for the new one's.
        self.run.forget();
        clear_errno();
        // SAFETY: ptr is live; &mut self excludes concurrent readers of the
        // path liblxc frees; the new path is copied by liblxc.
        let ok = unsafe { f(self.ptr.as_ptr(), p.as_ptr()) };
        *self.config_dirty.get_mut() = true;
        self.check_bool("set_config_path", ok)
    }

    // ----- cgroups ---------------------------------------------------------

    /// Reads a cgroup file of the running container, such as
    /// `memory.limit_in_bytes` (cgroup v1) or `memory.max` (v2)
    /// (`get_cgroup_item`). A trailing newline is removed.
    pub fn cgroup_item(&self, key: &str) -> Result<String> {
        let f = method!(self.get_cgroup_item);
        crate::cstr::check_cgroup_key(key)?;
        let raw = self.ptr.as_ptr();
        let r = with_line_cstr("cgroup key", key.as_bytes(), |k| {
            let _g = self.hold(Access::Read);
            clear_errno();
            // SAFETY: raw is live; k is valid for the closure.
            read_sized("get_cgroup_item", |buf, len| unsafe { f(raw, k, buf, len) })
        })??;
        match r {
            Some(mut s) => {
                while s.ends_with('\n') {
                    s.pop();
                }
                Ok(s)
            }
            None => Err(self.cgroup_error("get_cgroup_item")),
        }
    }

    /// Writes a cgroup file of the running container (`set_cgroup_item`);
    /// it lasts until the container stops (use `lxc.cgroup.*` /
    /// `lxc.cgroup2.*` config keys for a lasting limit).
    ///
    /// ```no_run
    /// let c = lxc::Container::new("web")?;
    /// c.set_cgroup_item("memory.limit_in_bytes", "10000000")?;
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn set_cgroup_item(&self, key: &str, value: &str) -> Result<()> {
        let f = method!(self.set_cgroup_item);
        crate::cstr::check_cgroup_key(key)?;
        if self.set_pair(Access::Read, f, ("cgroup key", key), ("cgroup value", value))? {
            Ok(())
        } else {
            Err(self.cgroup_error("set_cgroup_item"))
        }
    }

    fn cgroup_error(&self, op: &'static str) -> Error {
        let err = self.failed(op);
        if self.is_running() || matches!(err, Error::PermissionDenied { .. }) {
            err
        } else {
            self.wrong_state(op, "it must be running", State::Stopped)
        }
    }
}

/// Makes the lxcpath `path` (and its parents, mode 0755 less the umask)
/// when it does not exist, as `lxc-create` and `lxc-copy` do
/// (`lxc_mkdir_p(lxcpath, 0755)`); liblxc's create and clone make only the
/// container's directory and fail with `ENOENT` without it. A path that
/// exists must be a directory, or a link to one. Errors name the path.
pub(crate) fn ensure_lxcpath(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let named = |e: std::io::Error, what: &str| {
        let source = std::io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()));
        Error::Io { op: "prepare the lxcpath", source }
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(named(std::io::Error::from(std::io::ErrorKind::NotADirectory), "the lxcpath")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .map_err(|e| named(e, "cannot create the lxcpath")),
        Err(e) => Err(named(e, "cannot read the lxcpath")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(timeout_secs(Duration::ZERO), 0);
        assert_eq!(timeout_secs(Duration::from_millis(1)), 1);
        assert_eq!(timeout_secs(Duration::from_secs(5)), 5);
        assert_eq!(timeout_secs(Duration::MAX), -1);
        assert_eq!(timeout_secs(Duration::from_secs(u64::from(u32::MAX))), -1);
    }

    #[test]
    fn rootfs_paths_liblxc_deletes() {
        use std::os::unix::ffi::OsStrExt;
        let tmp = std::env::temp_dir();
        assert_eq!(deleted_rootfs(b"/"), [PathBuf::from("/")]);
        assert_eq!(
            deleted_rootfs(format!("/nonexistent-lower:{}", tmp.display()).as_bytes()),
            [tmp.as_path()]
        );
        assert_eq!(deleted_rootfs(format!(" {} ", tmp.display()).as_bytes()), [tmp.as_path()]);
        assert!(deleted_rootfs(b"").is_empty());
        assert!(deleted_rootfs(b"lxc/c1").is_empty()); // a zfs dataset
        assert!(deleted_rootfs(b"/nonexistent/rootfs").is_empty());
        assert!(deleted_rootfs(b"/dev/null").is_empty()); // not a tree
                                                          // A path that is not UTF-8 is checked as it is.
        let mut odd_name = format!("lxc-rs-{}-", std::process::id()).into_bytes();
        odd_name.push(0xff);
        let odd = tmp.join(std::ffi::OsStr::from_bytes(&odd_name));
        std::fs::create_dir_all(&odd).unwrap();
        let found = deleted_rootfs(odd.as_os_str().as_bytes());
        std::fs::remove_dir(&odd).unwrap();
        assert_eq!(found, [odd]);
    }

    #[test]
    fn shutdown_timeouts() {
        assert_eq!(shutdown_timeout_secs(Duration::ZERO), 0);
        assert_eq!(shutdown_timeout_secs(Duration::from_millis(1)), 1);
        assert_eq!(shutdown_timeout_secs(Duration::from_secs(30)), 30);
        assert_eq!(SHUTDOWN_MAX_SECS, 2_147_483);
        // The largest value whose `* 1000` still fits in an int.
        assert!(i64::from(SHUTDOWN_MAX_SECS) * 1000 <= i64::from(c_int::MAX));
        assert!((i64::from(SHUTDOWN_MAX_SECS) + 1) * 1000 > i64::from(c_int::MAX));
        assert_eq!(shutdown_timeout_secs(Duration::from_secs(2_147_483)), 2_147_483);
        assert_eq!(shutdown_timeout_secs(Duration::from_secs(2_147_484)), SHUTDOWN_MAX_SECS);
        assert_eq!(shutdown_timeout_secs(Duration::from_secs(u64::from(u32::MAX))), SHUTDOWN_MAX_SECS);
        assert_eq!(shutdown_timeout_secs(Duration::from_secs(u64::MAX)), SHUTDOWN_MAX_SECS);
        assert_eq!(shutdown_timeout_secs(Duration::MAX), -1);
    }

    #[test]
    fn set_timeout_arguments() {
        assert!(matches!(
            set_timeout_secs(Duration::ZERO),
            Err(Error::InvalidArgument { what: "timeout", .. })
        ));
        assert_eq!(set_timeout_secs(Duration::from_nanos(1)).unwrap(), 1);
        assert_eq!(set_timeout_secs(Duration::from_millis(1500)).unwrap(), 2);
        assert_eq!(set_timeout_secs(Duration::from_secs(5)).unwrap(), 5);
        assert_eq!(set_timeout_secs(Duration::from_secs(i32::MAX as u64)).unwrap(), i32::MAX);
        assert!(matches!(
            set_timeout_secs(Duration::from_secs(i32::MAX as u64 + 1)),
            Err(Error::InvalidArgument { what: "timeout", .. })
        ));
        assert!(matches!(
            set_timeout_secs(Duration::from_secs(u64::MAX)),
            Err(Error::InvalidArgument { what: "timeout", .. })
        ));
        assert_eq!(set_timeout_secs(Duration::MAX).unwrap(), -1);
    }

    #[test]
    fn container_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Container>();
    }
}
