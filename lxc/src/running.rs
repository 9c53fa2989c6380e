//! The check before each attach: is the container running, and not frozen?
//!
//! liblxc's attach must not be called on a stopped container (it leaks its
//! `/proc/self` handle in the caller, which a process with more threads
//! cannot tell from its other descriptors) nor on a frozen one (the attached
//! process freezes before it reports, and liblxc waits inside the call for
//! the thaw). Asking liblxc (`state`) costs a round trip to the container's
//! monitor on every attach: 50 to 150 µs, 2 to 5 % of an attach.
//!
//! A handle keeps instead, for the current run of the container, a pidfd of
//! its init (readable once init has exited) and open descriptors on the
//! freezer files of init's cgroups: the check is then one `poll` and a
//! `pread` per file, a few µs, and it sees a freeze made by anyone (liblxc's
//! `state` knows only of freezes made through liblxc). The freezer files
//! are those the kernel answers for init's cgroups: cgroup v1's
//! `freezer.state` (FREEZING or FROZEN when the cgroup or an ancestor is),
//! and cgroup v2's `cgroup.freeze` of init's cgroup and of each ancestor up
//! to the mount's root (v2 freezes a subtree from the top). When a freezer
//! file cannot be had (its hierarchy is not mounted in the caller's mount
//! namespace, a kernel before 5.2 has no `cgroup.freeze`, the file cannot
//! be opened), each attach of that run asks liblxc's `state`, as before;
//! without an init pidfd, or once it shows init has exited (the container
//! stopped, or restarted since), the check asks liblxc and starts over.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::{Container, State};

/// What a handle knows of the container's current run (see the module).
#[derive(Debug, Default)]
pub(crate) struct RunCache(Mutex<Option<Run>>);

#[derive(Debug)]
struct Run {
    init: OwnedFd,
    /// `None` when the freezer files could not all be had: then each attach
    /// of this run asks liblxc's `state`, as it would without the cache,
    /// but not for the init pidfd again.
    freezer: Option<Vec<Freezer>>,
}

#[derive(Debug)]
enum Freezer {
    /// cgroup v1 `freezer.state`: `THAWED`, `FREEZING` or `FROZEN`.
    V1(File),
    /// cgroup v2 `cgroup.freeze`: `0` or `1`.
    V2(File),
}

impl Freezer {
    /// The container's state as this file shows it; `None` when it cannot
    /// be read (the cgroup is gone: the container stopped).
    fn state(&self) -> Option<State> {
        let mut buf = [0u8; 16];
        let (f, v1) = match self {
            Freezer::V1(f) => (f, true),
            Freezer::V2(f) => (f, false),
        };
        let n = f.read_at(&mut buf, 0).ok()?;
        let text = buf.get(..n)?;
        Some(match (v1, text) {
            (true, t) if t.starts_with(b"THAWED") => State::Running,
            (true, t) if t.starts_with(b"FROZEN") => State::Frozen,
            (true, t) if t.starts_with(b"FREEZING") => State::Freezing,
            (false, t) if t.starts_with(b"0") => State::Running,
            (false, t) if t.starts_with(b"1") => State::Frozen,
            _ => return None,
        })
    }
}

impl RunCache {
    /// `Ok` when the container is running and not frozen; else the error an
    /// attach reports.
    pub(crate) fn check_attachable(&self, c: &Container) -> Result<()> {
        let mut run = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = run.as_ref() {
            if !crate::session::wait_readable(r.init.as_raw_fd(), 0) {
                let Some(freezer) = &r.freezer else {
                    return check_state(c);
                };
                let mut state = Some(State::Running);
                for f in freezer {
                    match f.state() {
                        Some(State::Running) => {}
                        other => {
                            state = other;
                            break;
                        }
                    }
                }
                match state {
                    Some(State::Running) => return Ok(()),
                    Some(state) => return Err(frozen(c, state)),
                    // A file could not be read: asked below.
                    None => {}
                }
            }
            *run = None;
        }
        check_state(c)?;
        *run = Run::of(c);
        Ok(())
    }
}

/// The check through liblxc's `state` (a round trip to the monitor).
fn check_state(c: &Container) -> Result<()> {
    match c.state()? {
        state @ (State::Frozen | State::Freezing) => Err(frozen(c, state)),
        State::Stopped => Err(c.wrong_state("attach", "it must be running", State::Stopped)),
        _ => Ok(()),
    }
}

fn frozen(c: &Container, state: State) -> Error {
    Error::WrongState {
        op: "attach",
        container: c.name().to_owned(),
        state,
        expected: "it must be running (unfreeze it first)",
    }
}

impl Run {
    /// The init's pidfd and freezer files of the running container `c`;
    /// `None` without a pidfd of a live init.
    fn of(c: &Container) -> Option<Run> {
        let init = c.init_pidfd().ok()?;
        let freezer = crate::attach::pidfd_pid(&init)
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok())
            .and_then(|cgroups| freezer_files(&cgroups));
        // Read while the pidfd was held and before it shows init's exit:
        // the pid was init's all along, never a process that reused it.
        if crate::session::wait_readable(init.as_raw_fd(), 0) {
            return None;
        }
        Some(Run { init, freezer })
    }
}

/// The freezer files of the cgroups of a `/proc/<pid>/cgroup`; `None` when
/// one cannot be found or opened (its hierarchy is not mounted here, it
/// cannot be read, a kernel before 5.2 has no `cgroup.freeze`): a freeze
/// there would go unseen.
fn freezer_files(cgroups: &str) -> Option<Vec<Freezer>> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut freezer = Vec::new();
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (id, controllers) = (parts.next()?, parts.next()?);
        let unified = id == "0" && controllers.is_empty();
        if !unified && !controllers.split(',').any(|c| c == "freezer") {
            continue;
        }
        let (mountpoint, dir) = crate::monitor_cgroup::cgroup_dir(line, &mountinfo)?;
        if unified {
            // Every ancestor below the mount's root has a cgroup.freeze
            // (the root has none and cannot be frozen).
            for d in dir.ancestors().take_while(|d| *d != mountpoint && d.starts_with(&mountpoint)) {
                freezer.push(Freezer::V2(open(&d.join("cgroup.freeze"))?));
            }
        } else {
            freezer.push(Freezer::V1(open(&dir.join("freezer.state"))?));
        }
    }
    Some(freezer)
}

fn open(path: &Path) -> Option<File> {
    File::open(path).ok()
}
