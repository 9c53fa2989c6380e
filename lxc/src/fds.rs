//! Descriptors the crate opens for one attach and that no other child may
//! keep open.
//!
//! A pipe's reader sees end-of-file only when every copy of the write end
//! is closed. Children forked by other threads inherit copies; a child that
//! execs drops them at once (they are close-on-exec), but a child that runs
//! a Rust closure, or a session helper, lives on without exec and would make
//! another thread's attach wait for it. Every such descriptor is therefore
//! listed in a lock-free table, and the crate's closure children close
//! whatever the table listed at the moment of their fork (reading atomics is
//! safe after fork, taking a lock is not).

use std::ffi::c_int;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

const SLOTS: usize = 256;
static TABLE: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];

/// An owned descriptor listed in the table while it is open.
#[derive(Debug)]
pub(crate) struct Guarded {
    fd: OwnedFd,
    slot: Option<usize>,
}

impl Guarded {
    /// Lists `fd`; when the table is full it is only owned (children may
    /// then keep a copy: a delay, never a fault).
    pub(crate) fn new(fd: impl Into<OwnedFd>) -> Guarded {
        let fd = fd.into();
        let raw = fd.as_raw_fd();
        let slot = TABLE
            .iter()
            .position(|s| s.compare_exchange(-1, raw, Ordering::AcqRel, Ordering::Relaxed).is_ok());
        Guarded { fd, slot }
    }

    /// Makes this descriptor's number refer to what `fd` refers to
    /// (`dup3`, close-on-exec), keeping the number and its listing.
    pub(crate) fn replace(&mut self, fd: impl std::os::fd::AsFd) -> std::io::Result<()> {
        Ok(rustix::io::dup3(fd, &mut self.fd, rustix::io::DupFlags::CLOEXEC)?)
    }

    fn unlist(&mut self) {
        if let Some(s) = self.slot.take() {
            TABLE[s].store(-1, Ordering::Release);
        }
    }
}

impl AsRawFd for Guarded {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl std::os::fd::AsFd for Guarded {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // Unlisted before it is closed (the field drops after this), so
        // that its number, once reused, is never closed by a child by
        // mistake.
        self.unlist();
    }
}

/// In a child forked by liblxc for a closure: closes every listed
/// descriptor but those in `keep`. Only atomics and close(2):
/// async-signal-safe.
pub(crate) fn close_listed_in_child(keep: &[RawFd]) {
    for s in &TABLE {
        let fd = s.load(Ordering::Acquire);
        if fd >= 0 && !keep.contains(&fd) {
            // SAFETY: closes a descriptor this child inherited; the parent's
            // copy is untouched.
            unsafe { libc::close(fd) };
        }
    }
}

/// What [`fds_from_3_in_child`] does to each descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdAction {
    /// Mark it close-on-exec (`close_range(CLOSE_RANGE_CLOEXEC)`, Linux 5.11).
    Cloexec,
    /// Close it (`close_range(0)`, Linux 5.9).
    Close,
}

/// How [`fds_from_3_in_child`] finds the descriptors, chosen in the caller
/// before the fork.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FdSweep {
    /// The soft `RLIMIT_NOFILE` of the caller: the last resort loops up to it.
    limit: c_int,
    /// Which method to start with (a test forces the fallbacks).
    start: SweepMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SweepMethod {
    CloseRange,
    ProcSelfFd,
    Rlimit,
}

/// The variable that makes the sweep skip `close_range` (`proc`) or also
/// `/proc/self/fd` (`rlimit`): the tests use it to reach the fallbacks on a
/// kernel that has `close_range`. Read once per process, in the caller.
pub(crate) const FALLBACK_ENV: &str = "LXC_RS_TEST_FD_FALLBACK";

impl FdSweep {
    /// Reads, before a fork, what the child will need: the descriptor
    /// limit, and the forced method if any.
    pub(crate) fn prepare() -> FdSweep {
        static START: std::sync::OnceLock<SweepMethod> = std::sync::OnceLock::new();
        let start = *START.get_or_init(|| match std::env::var(FALLBACK_ENV).as_deref() {
            Ok("proc") => SweepMethod::ProcSelfFd,
            Ok("rlimit") => SweepMethod::Rlimit,
            _ => SweepMethod::CloseRange,
        });
        let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: rl is a valid out-pointer.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0;
        // An unlimited or unreadable limit: the kernel's default ceiling
        // on descriptor numbers (fs.nr_open).
        let limit = if ok && rl.rlim_cur != libc::RLIM_INFINITY {
            c_int::try_from(rl.rlim_cur).unwrap_or(c_int::MAX)
        } else {
            1 << 20
        };
        FdSweep { limit, start }
    }
}

/// In a forked child: applies `action` to every open descriptor above 2
/// but `keep` (`-1` for none).
///
/// `close_range` first; when it fails (`ENOSYS` before Linux 5.9, `EINVAL`
/// for `CLOSE_RANGE_CLOEXEC` before 5.11, or anything else), every entry of
/// `/proc/self/fd`, read with `getdents64` into a stack buffer; when `/proc`
/// is not there (or not this process's), every number below the caller's
/// soft `RLIMIT_NOFILE`. No allocation, no lock: raw system calls only,
/// async-signal-safe.
pub(crate) fn fds_from_3_in_child(action: FdAction, keep: RawFd, sweep: &FdSweep) {
    if sweep.start == SweepMethod::CloseRange && close_range_from_3(action, keep) {
        return;
    }
    if sweep.start != SweepMethod::Rlimit && sweep_proc_self_fd(action, keep) {
        return;
    }
    for fd in 3..sweep.limit {
        if fd != keep {
            apply(action, fd);
        }
    }
}

fn close_range_from_3(action: FdAction, keep: RawFd) -> bool {
    let flags = match action {
        FdAction::Cloexec => libc::CLOSE_RANGE_CLOEXEC,
        FdAction::Close => 0,
    };
    let range = |first: RawFd, last: u32| {
        // SAFETY: close_range on this process's own descriptors.
        unsafe { libc::syscall(libc::SYS_close_range, first as u32, last, flags) == 0 }
    };
    if keep >= 3 {
        (keep == 3 || range(3, (keep - 1) as u32)) && range(keep + 1, u32::MAX)
    } else {
        range(3, u32::MAX)
    }
}

/// Applies `action` to one descriptor; a number that is not open is left.
fn apply(action: FdAction, fd: RawFd) {
    // SAFETY: fcntl and close on a descriptor number of this process; an
    // unused number only gives EBADF.
    unsafe {
        match action {
            FdAction::Cloexec => {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
            FdAction::Close => {
                libc::close(fd);
            }
        }
    }
}

/// Walks `/proc/self/fd`; false when it cannot be opened or read.
fn sweep_proc_self_fd(action: FdAction, keep: RawFd) -> bool {
    // SAFETY: open with a static NUL-terminated path.
    let dir = unsafe {
        libc::open(c"/proc/self/fd".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC)
    };
    if dir < 0 {
        return false;
    }
    // u64 elements: linux_dirent64 records are 8-byte aligned.
    let mut buf = [0u64; 512];
    let mut ok = true;
    loop {
        // SAFETY: getdents64 writes at most the buffer's size into it.
        let n = unsafe {
            libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), std::mem::size_of_val(&buf))
        };
        if n < 0 {
            ok = false;
            break;
        }
        if n == 0 {
            break;
        }
        let n = n as usize;
        let bytes = buf.as_ptr().cast::<u8>();
        let mut off = 0;
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen;
        // u8 d_type; char d_name[]; }
        while off + 19 < n {
            // SAFETY: off + 19 < n <= the buffer's size: the record's header
            // and the first name byte are inside what the kernel wrote.
            let reclen = unsafe { bytes.add(off + 16).cast::<u16>().read_unaligned() } as usize;
            if reclen == 0 {
                break;
            }
            let mut fd: RawFd = 0;
            let mut digits = 0;
            let mut i = off + 19;
            while i < off + reclen && i < n {
                // SAFETY: i < n: inside what the kernel wrote.
                let b = unsafe { *bytes.add(i) };
                if !b.is_ascii_digit() {
                    break;
                }
                fd = fd.saturating_mul(10).saturating_add(RawFd::from(b - b'0'));
                digits += 1;
                i += 1;
            }
            // "." and ".." have no digits.
            if digits > 0 && fd > 2 && fd != keep && fd != dir {
                apply(action, fd);
            }
            off += reclen;
        }
    }
    // SAFETY: closes the directory descriptor opened above.
    unsafe { libc::close(dir) };
    ok
}

/// Sends one message with up to eight descriptors (rustix's typed
/// `sendmsg`; `MSG_NOSIGNAL` keeps a dead peer from raising SIGPIPE).
/// Used by the caller's side only: it allocates.
pub(crate) fn send_with_fds(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> std::io::Result<()> {
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(8))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::from_raw_os_error(libc::E2BIG));
    }
    loop {
        match sendmsg(sock, &[std::io::IoSlice::new(data)], &mut control, SendFlags::NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether this process has a single thread (`/proc/self/task` has one
/// entry: its link count is the number of threads plus 2). One `stat`.
pub(crate) fn single_threaded() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/task").is_ok_and(|m| m.nlink() == 3)
}

/// The descriptor numbers that were free before a liblxc `attach` in a
/// single-threaded process: new descriptors can only appear there, and
/// nothing but liblxc (on this, the only thread) opens one meanwhile.
///
/// liblxc 5.0 to 7.0 leak in the caller, per attach: the container init's
/// pidfd when the process is single-threaded (`get_attach_context` keeps
/// it after `setns(pidfd, CLONE_NEWTIME)` succeeds, which the kernel allows
/// only to a single-threaded caller, and `put_attach_context` never closes
/// it), and its `/proc/self` handle when the attach fails early (a stopped
/// container). After the call, [`LeakProbe::close_leaked`] closes what
/// appeared in those slots and is one of these two kinds.
pub(crate) struct LeakProbe {
    slots: [RawFd; 8],
}

impl LeakProbe {
    /// Notes the 8 lowest free descriptor numbers, in a single-threaded
    /// process only (elsewhere another thread may open descriptors at any
    /// time, and the pidfd is not leaked).
    pub(crate) fn take() -> Option<LeakProbe> {
        if !single_threaded() {
            return None;
        }
        let mut slots = [-1; 8];
        let mut found = 0;
        let mut fd: RawFd = 0;
        while found < slots.len() && fd < (1 << 20) {
            if !fd_is_open(fd) {
                slots[found] = fd;
                found += 1;
            }
            fd += 1;
        }
        Some(LeakProbe { slots })
    }

    /// Closes the descriptors liblxc left in the noted slots: pidfds and
    /// `/proc/<pid>` handles, which liblxc never keeps across calls. Any
    /// other new descriptor (liblxc opening its log file on first use) is
    /// left alone.
    pub(crate) fn close_leaked(&self) {
        for &fd in self.slots.iter().filter(|fd| **fd >= 0) {
            if fd_is_open(fd) && is_attach_leak(fd) {
                // SAFETY: the descriptor appeared during liblxc's attach in
                // this single-threaded process and is one liblxc leaks:
                // nothing refers to it, so closing it frees nobody's.
                unsafe { libc::close(fd) };
            }
        }
    }
}

fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    flags != -1
}

/// Whether `fd` is what liblxc's attach leaks: a pidfd, or an `O_PATH`
/// handle on `/proc/<pid>`.
fn is_attach_leak(fd: RawFd) -> bool {
    let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{fd}")) else {
        return false;
    };
    let t = target.as_os_str().as_encoded_bytes();
    t == b"anon_inode:[pidfd]"
        || t.strip_prefix(b"/proc/").is_some_and(|pid| !pid.is_empty() && pid.iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_while_open() {
        let (r, w) = std::io::pipe().unwrap();
        let raw = w.as_raw_fd();
        let g = Guarded::new(w);
        assert!(TABLE.iter().any(|s| s.load(Ordering::Relaxed) == raw));
        drop(g);
        assert!(!TABLE.iter().any(|s| s.load(Ordering::Relaxed) == raw));
        drop(r);
    }

    fn cloexec(fd: RawFd) -> bool {
        // SAFETY: F_GETFD on a descriptor this test owns.
        unsafe { libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC != 0 }
    }

    /// Each method marks an inheritable descriptor close-on-exec (or
    /// closes it) and leaves 0-2 and the kept one alone. Run in a forked
    /// child, as in the crate, so that the test process's own descriptors
    /// are not changed.
    #[test]
    fn every_sweep_reaches_every_descriptor() {
        for start in [SweepMethod::CloseRange, SweepMethod::ProcSelfFd, SweepMethod::Rlimit] {
            for action in [FdAction::Cloexec, FdAction::Close] {
                let sweep = FdSweep { start, ..FdSweep::prepare() };
                // SAFETY: F_DUPFD of stdin gives new descriptors, without
                // close-on-exec, that this test owns.
                let (a, b) =
                    unsafe { (libc::fcntl(0, libc::F_DUPFD, 10), libc::fcntl(0, libc::F_DUPFD, 10)) };
                assert!(a > 2 && b > 2 && !cloexec(a) && !cloexec(b));
                // SAFETY: the child only calls the async-signal-safe sweep,
                // fcntl and _exit.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // Each method on its own must succeed (no silent fall
                    // through to the next).
                    let swept = match start {
                        SweepMethod::CloseRange => close_range_from_3(action, b),
                        SweepMethod::ProcSelfFd => sweep_proc_self_fd(action, b),
                        SweepMethod::Rlimit => {
                            fds_from_3_in_child(action, b, &sweep);
                            true
                        }
                    };
                    // SAFETY: F_GETFD on descriptor numbers of this child.
                    let a_open = unsafe { libc::fcntl(a, libc::F_GETFD) } >= 0;
                    let a_done = match action {
                        FdAction::Cloexec => a_open && cloexec(a),
                        FdAction::Close => !a_open,
                    };
                    let code = if swept && a_done && !cloexec(b) && !cloexec(0) { 0 } else { 1 };
                    // SAFETY: ends the forked child at once.
                    unsafe { libc::_exit(code) };
                }
                let mut status = 0;
                // SAFETY: waits for our own child.
                assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
                let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
                assert!(ok, "{start:?} {action:?}: status {status:#x}");
                assert!(!cloexec(a), "the parent's descriptor was changed");
                // SAFETY: closing the two descriptors made above.
                unsafe {
                    libc::close(a);
                    libc::close(b);
                }
            }
        }
    }
}
