//! The handle's locks made visible to helgrind and DRD (feature `valgrind`).
//!
//! Both tools learn about locks by intercepting pthread's functions.
//! `parking_lot`'s lock and std's `RwLock` are built on futexes, which
//! neither tool follows: without help, every access that one of the
//! handle's locks orders would be reported as a race. With this feature,
//! [`Container::hold`](crate::Container) reports each acquisition after it
//! happened and each release before it happens, with the client requests
//! behind `ANNOTATE_RWLOCK_ACQUIRED` and `ANNOTATE_RWLOCK_RELEASED` of
//! `valgrind/helgrind.h` (issued through the `crabgrind` crate). DRD
//! serves the same request numbers (`valgrind/drd.h`), so one build
//! serves both tools; the tools then treat the two locks as pthread
//! read-write locks (readers of a lock run together, a writer excludes
//! everyone, a release orders everything before it with the next
//! acquisition).
//!
//! A lock is named by its address. A handle is not pinned (it can be moved
//! while no call borrows it), so there is no address at which it could be
//! announced once with `ANNOTATE_RWLOCK_CREATE` and retired with
//! `ANNOTATE_RWLOCK_DESTROY`: both tools create a lock at its first
//! acquisition instead. DRD forgets the locks of freed memory; helgrind
//! keeps them, which can only order a dropped handle's calls before those
//! of a later handle at the same address (never a false report, and the
//! dropped handle's calls were over anyway).
//!
//! Outside valgrind a client request is a short sequence of instructions
//! with no effect; without the feature nothing of this is compiled.

use core::ffi::c_void;

use crabgrind::helgrind;

fn tag<T>(lock: &T) -> *const c_void {
    (lock as *const T).cast()
}

/// This thread now holds `lock`, exclusively when `write`.
#[inline]
pub(crate) fn acquired<T>(lock: &T, write: bool) {
    helgrind::annotate_rwlock_acquired(tag(lock), write);
}

/// This thread is about to release `lock`, held exclusively when `write`.
#[inline]
pub(crate) fn releasing<T>(lock: &T, write: bool) {
    helgrind::annotate_rwlock_released(tag(lock), write);
}
