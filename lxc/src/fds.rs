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

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

const SLOTS: usize = 256;
static TABLE: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];

/// An owned descriptor listed in the table while it is open.
#[derive(Debug)]
pub(crate) struct Guarded {
    fd: Option<OwnedFd>,
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
        Guarded { fd: Some(fd), slot }
    }

    fn unlist(&mut self) {
        if let Some(s) = self.slot.take() {
            TABLE[s].store(-1, Ordering::Release);
        }
    }
}

impl AsRawFd for Guarded {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // Unlisted before it is closed, so that its number, once reused,
        // is never closed by a child by mistake.
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
}
