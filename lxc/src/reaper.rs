//! Reaps, in the background, the attached children their owner dropped
//! without waiting for them.
//!
//! A child that nobody waits for stays a zombie of the caller, and the init
//! of a dying container waits until every process of its pid namespace is
//! reaped: one dropped child would keep its container's `stop` from ever
//! finishing. One thread (started on first use) polls a pidfd per dropped
//! child and reaps each, by pid, the moment it ends; it never waits for any
//! other child of the program (no `waitpid(-1)`, no SIGCHLD handler).

use std::os::fd::OwnedFd;
use std::sync::{Mutex, OnceLock};

struct Reaper {
    /// Children handed over and not yet seen by the thread.
    incoming: Mutex<Vec<(libc::pid_t, OwnedFd)>>,
    /// An eventfd, written to wake the thread when `incoming` grows: the
    /// one descriptor the reaper keeps for the life of the process.
    wake: std::sync::Arc<OwnedFd>,
}

/// The reaper, started on first use. A failure to start it (no descriptor
/// or thread to be had at that moment) is not remembered: the next hand-over
/// tries again.
static REAPER: OnceLock<Reaper> = OnceLock::new();

fn reaper() -> Option<&'static Reaper> {
    static STARTING: Mutex<()> = Mutex::new(());
    if let Some(r) = REAPER.get() {
        return Some(r);
    }
    let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = REAPER.get() {
        return Some(r);
    }
    use rustix::event::{eventfd, EventfdFlags};
    // Above 0 to 2: a caller whose stdio is closed and later reopened
    // (`dup2` onto 0) would otherwise replace the reaper's wake-up.
    let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).ok()?;
    let wake = std::sync::Arc::new(crate::attach::above_stdio(wake).ok()?);
    let thread_wake = std::sync::Arc::clone(&wake);
    // The thread reads REAPER only once woken, which happens only after a
    // hand-over, which needs REAPER set.
    std::thread::Builder::new().name("lxc-reaper".into()).spawn(move || run(&thread_wake)).ok()?;
    Some(REAPER.get_or_init(|| Reaper { incoming: Mutex::new(Vec::new()), wake }))
}

/// Reaps the child `fd` (a pidfd of `pid`, taken while it was unreaped)
/// refers to when it ends; hands the pidfd back when no thread can be had.
pub(crate) fn reap_later_fd(pid: libc::pid_t, fd: OwnedFd) -> Result<(), OwnedFd> {
    let Some(r) = reaper() else {
        return Err(fd);
    };
    r.incoming.lock().unwrap_or_else(|e| e.into_inner()).push((pid, fd));
    let _ = rustix::io::write(&*r.wake, &1u64.to_ne_bytes());
    Ok(())
}

/// Reaps a spawned child nobody will wait for, when it ends: through its
/// pidfd, by the reaper thread; without a pidfd (a kernel before 5.3) by a
/// thread of its own that waits for its pid.
pub(crate) fn reap_spawned(s: crate::attach::Spawned) {
    let pid = s.pid;
    let leftover = match s.pidfd {
        Some(fd) => match reap_later_fd(pid, fd) {
            Ok(()) => return,
            Err(fd) => Some(fd),
        },
        None => None,
    };
    let _ = std::thread::Builder::new().name("lxc-reap-one".into()).spawn(move || match leftover {
        Some(fd) => {
            let _ = crate::attach::wait_pidfd(&fd, true);
        }
        None => {
            let _ = crate::attach::wait_pid(pid);
        }
    });
}

fn run(wake: &OwnedFd) {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut children: Vec<(libc::pid_t, OwnedFd)> = Vec::new();
    loop {
        let mut polls: Vec<PollFd<'_>> = std::iter::once(wake)
            .chain(children.iter().map(|(_, fd)| fd))
            .map(|fd| PollFd::new(fd, PollFlags::IN))
            .collect();
        match poll(&mut polls, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => {
                // EINVAL once the caller lowered RLIMIT_NOFILE below the
                // number of polled descriptors, ENOMEM: every child is asked
                // directly (WNOHANG, through its pidfd), then the thread
                // backs off instead of spinning.
                drop(polls);
                if let Some(reaper) = REAPER.get() {
                    children.append(&mut reaper.incoming.lock().unwrap_or_else(|e| e.into_inner()));
                }
                children.retain(|(pid, fd)| !reap(*pid, fd));
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        }
        let woken = !polls[0].revents().is_empty();
        let ended: Vec<usize> = polls
            .iter()
            .skip(1)
            .enumerate()
            .filter(|(_, p)| !p.revents().is_empty())
            .map(|(i, _)| i)
            .collect();
        drop(polls);
        if woken {
            let mut buf = [0u8; 8];
            let _ = rustix::io::read(wake, &mut buf);
            if let Some(reaper) = REAPER.get() {
                children.append(&mut reaper.incoming.lock().unwrap_or_else(|e| e.into_inner()));
            }
        }
        for i in ended.into_iter().rev() {
            let (pid, fd) = children.swap_remove(i);
            reap(pid, &fd);
        }
    }
}

/// Reaps the child `pidfd` refers to if it has ended (`waitid(P_PIDFD)`,
/// `WNOHANG`): through the pidfd, so never another process that reused its
/// pid. True when it is gone (reaped now, or by someone else before:
/// ECHILD) or cannot be waited for through a pidfd (Linux 5.3: EINVAL).
pub(crate) fn reap_pidfd(pidfd: &OwnedFd) -> bool {
    !matches!(crate::attach::wait_pidfd(pidfd, false), Ok(None))
}

/// [`reap_pidfd`], and on Linux 5.3 (no `waitid(P_PIDFD)`: EINVAL) by its
/// pid (`WNOHANG`): nobody else waits for a child handed to the reaper,
/// unless the caller reaps every child itself (then, on 5.3 only, another
/// child that reused the pid could lose its status to this).
fn reap(pid: libc::pid_t, pidfd: &OwnedFd) -> bool {
    match crate::attach::wait_pidfd(pidfd, false) {
        Ok(None) => false,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            crate::attach::try_wait_pid(pid).map_or(true, |s| s.is_some())
        }
        _ => true,
    }
}
