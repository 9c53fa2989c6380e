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
