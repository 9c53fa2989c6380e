//! Reaps, in the background, the attached children their owner dropped
//! without waiting for them.
//!
//! A child that nobody waits for stays a zombie of the caller, and the init
//! of a dying container waits until every process of its pid namespace is
//! reaped: one dropped child would keep its container's `stop` from ever
//! finishing. One thread (started on first use) polls a pidfd per dropped
//! child and reaps each, by pid, the moment it ends; it never waits for any
//! other child of the program (no `waitpid(-1)`, no SIGCHLD handler).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};

struct Reaper {
    /// Children handed over and not yet seen by the thread.
    incoming: Mutex<Vec<(libc::pid_t, OwnedFd)>>,
    /// An eventfd, written to wake the thread when `incoming` grows: the
    /// one descriptor the reaper keeps for the life of the process.
    wake: std::sync::Arc<OwnedFd>,
}

fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open on a pid; a non-negative result is a new
    // descriptor that we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: as above.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn reaper() -> Option<&'static Reaper> {
    static REAPER: OnceLock<Option<Reaper>> = OnceLock::new();
    REAPER
        .get_or_init(|| {
            // SAFETY: eventfd with valid flags; a non-negative result is a
            // new descriptor that we own.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            if fd < 0 {
                return None;
            }
            // SAFETY: as above.
            let wake = std::sync::Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
            let thread_wake = std::sync::Arc::clone(&wake);
            std::thread::Builder::new().name("lxc-reaper".into()).spawn(move || run(&thread_wake)).ok()?;
            Some(Reaper { incoming: Mutex::new(Vec::new()), wake })
        })
        .as_ref()
}

/// Reaps `pid`, a child of this process that its owner will not wait for,
/// when it ends. Returns false (and leaves it alone) when no pidfd or
/// thread can be had.
pub(crate) fn reap_later(pid: libc::pid_t) -> bool {
    match pidfd_open(pid) {
        Some(fd) => reap_later_fd(pid, fd).is_ok(),
        None => false,
    }
}

/// Reaps the child `fd` (a pidfd of `pid`, taken while it was unreaped)
/// refers to when it ends; hands the pidfd back when no thread can be had.
pub(crate) fn reap_later_fd(pid: libc::pid_t, fd: OwnedFd) -> Result<(), OwnedFd> {
    let Some(r) = reaper() else {
        return Err(fd);
    };
    r.incoming.lock().unwrap_or_else(|e| e.into_inner()).push((pid, fd));
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a valid buffer to our eventfd.
    unsafe { libc::write(r.wake.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    Ok(())
}

fn run(wake: &OwnedFd) {
    let mut children: Vec<(libc::pid_t, OwnedFd)> = Vec::new();
    loop {
        let mut polls: Vec<libc::pollfd> = std::iter::once(wake.as_raw_fd())
            .chain(children.iter().map(|(_, fd)| fd.as_raw_fd()))
            .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
            .collect();
        // SAFETY: polls is a valid array of polls.len() entries.
        let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, -1) };
        if n < 0 {
            // EINTR: at once; anything else (EINVAL once the caller lowered
            // RLIMIT_NOFILE below the number of polled descriptors, ENOMEM):
            // back off instead of spinning.
            if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            continue;
        }
        if polls[0].revents != 0 {
            let mut buf = [0u8; 8];
            // SAFETY: reads 8 bytes into a valid buffer from our eventfd.
            unsafe { libc::read(wake.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let reaper = reaper().expect("the reaper thread runs only once the reaper exists");
            children.append(&mut reaper.incoming.lock().unwrap_or_else(|e| e.into_inner()));
        }
        let ended: Vec<usize> =
            polls.iter().skip(1).enumerate().filter(|(_, p)| p.revents != 0).map(|(i, _)| i).collect();
        for i in ended.into_iter().rev() {
            let (_pid, fd) = children.swap_remove(i);
            reap_pidfd(&fd);
        }
    }
}

/// Reaps the child `pidfd` refers to if it has ended (`waitid(P_PIDFD)`,
/// `WNOHANG`): through the pidfd, so never another process that reused its
/// pid; ECHILD when someone else reaped it first.
pub(crate) fn reap_pidfd(pidfd: &OwnedFd) {
    // SAFETY: an all-zero siginfo_t is a valid out-buffer.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our pidfd with a valid out-buffer.
    unsafe {
        libc::waitid(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG)
    };
}
