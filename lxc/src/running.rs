//! The check before each attach: is the container running, and not frozen?
//!
//! liblxc's attach must not be called on a stopped container (it leaks its
//! `/proc/self` handle in the caller, which a process with more threads
//! cannot tell from its other descriptors) nor on a frozen one (the attached
//! process freezes before it reports, and liblxc waits inside the call for
//! the thaw). Asking liblxc (`state`) costs a round trip to the container's
//! monitor on every attach: 50 to 150 µs, 2 to 5 % of an attach.
//!
//! A handle keeps instead, for the current run of the container, its init's
//! pid and start time and the paths of the freezer files of init's cgroups:
//! the check reads `/proc/<init>/stat` (the same process, not a zombie: the
//! pid and the start time in clock ticks since boot, which a process that
//! reused the pid cannot share) and each freezer file (30 to 70 µs in all, the opens), and it sees
//! a freeze made by anyone (liblxc's `state` knows only of freezes made
//! through liblxc). No descriptor is kept between calls: a program may hold
//! a handle on each of hundreds of containers. The freezer files are those
//! the kernel answers for init's cgroups: cgroup v1's `freezer.state`
//! (FREEZING or FROZEN when the cgroup or an ancestor is), and cgroup v2's
//! `cgroup.freeze` of init's cgroup and of each ancestor up to the mount's
//! root (v2 freezes a subtree from the top). The cache is made right after
//! liblxc's `state` said the container runs, from init's pidfd (liblxc's
//! `init_pidfd`): the pid comes from its fdinfo, and the pidfd, still
//! showing init alive after `/proc/<pid>/stat` and `/proc/<pid>/cgroup`
//! were read, proves they were init's. Without `init_pidfd` (a library
//! whose layout differs from the header's there, a kernel without pidfds),
//! from `init_pid`, asked again after the files were read, with init's
//! start time unchanged. When a freezer file cannot be had
//! (its hierarchy is not mounted in the caller's mount namespace, a kernel
//! before 5.2 has no `cgroup.freeze`, the file cannot be read), each attach
//! of that run asks liblxc's `state`, as before; once init has gone (the
//! container stopped, or restarted since), the check asks liblxc and starts
//! over.
//!
//! A run made by one handle serves every handle of the same container (the
//! same lxcpath, as `config_path` gives it, and name) in the process: a
//! program that opens a handle per task or per thread pays liblxc's `state`
//! and `init_pidfd` and the search of init's freezer files once per run of
//! the container, not once per handle. A shared run is checked like a
//! handle's own (init alive, freezer files thawed) before each attach.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::{Container, State};

/// What a handle knows of the container's current run (see the module).
#[derive(Debug, Default)]
pub(crate) struct RunCache(Mutex<Option<Arc<Run>>>);

/// The runs made by any handle, by lxcpath and name (see the module); at
/// most [`SHARED_MAX`], the oldest dropped first. The lxcpath is compared
/// byte for byte, as liblxc names the container's command socket after it
/// (`a//b` is not `a/b` there).
static SHARED: Mutex<Vec<SharedRun>> = Mutex::new(Vec::new());
/// A container's lxcpath and name, and its run.
type SharedRun = (PathBuf, Box<str>, Arc<Run>);
const SHARED_MAX: usize = 64;

/// The shared run of the container at `key`.
fn shared_get(key: &(PathBuf, Box<str>)) -> Option<Arc<Run>> {
    let shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    shared
        .iter()
        .find(|(p, n, _)| p.as_os_str() == key.0.as_os_str() && *n == key.1)
        .map(|(_, _, r)| Arc::clone(r))
}

/// Makes `run` the shared run of the container at `key` (`None`: forgets
/// it, when it is still `old`).
fn shared_set(key: (PathBuf, Box<str>), run: Option<Arc<Run>>, old: Option<&Arc<Run>>) {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    let at = shared.iter().position(|(p, n, _)| p.as_os_str() == key.0.as_os_str() && *n == key.1);
    match (at, run) {
        (Some(i), None) => {
            if old.is_some_and(|o| Arc::ptr_eq(o, &shared[i].2)) {
                shared.remove(i);
            }
        }
        (Some(i), Some(run)) => shared[i].2 = run,
        (None, Some(run)) => {
            if shared.len() >= SHARED_MAX {
                shared.remove(0);
            }
            shared.push((key.0, key.1, run));
        }
        (None, None) => {}
    }
}

#[derive(Debug)]
struct Run {
    /// `/proc/<init pid>/stat`.
    stat: PathBuf,
    /// Init's start time, clock ticks since boot (field 22 of `stat`).
    start: u64,
    /// `None` when the freezer files could not all be had: then each attach
    /// of this run asks liblxc's `state`, as it would without the cache.
    freezer: Option<Vec<Freezer>>,
}

#[derive(Debug)]
enum Freezer {
    /// cgroup v1 `freezer.state`: `THAWED`, `FREEZING` or `FROZEN`.
    V1(PathBuf),
    /// cgroup v2 `cgroup.freeze`: `0` or `1`.
    V2(PathBuf),
}

/// Reads a small file of the kernel's (procfs, cgroupfs) into `buf` (at
/// most its length); the bytes read. No allocation and no `statx`: open,
/// read, close. The reading stops at end of file or after a read that ends
/// with a newline: these files hand over their text in one read (one
/// record), whose last byte is a newline, so one `read` usually does.
pub(crate) fn read_small<'b>(path: &Path, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(buf.get_mut(n..)?) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if buf.get(n - 1) == Some(&b'\n') {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    buf.get(..n)
}

impl Freezer {
    /// The container's state as this file shows it; `None` when it cannot
    /// be read (the cgroup is gone: the container stopped).
    fn state(&self) -> Option<State> {
        let mut buf = [0u8; 16];
        let (path, v1) = match self {
            Freezer::V1(p) => (p, true),
            Freezer::V2(p) => (p, false),
        };
        let text = read_small(path, &mut buf)?;
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

/// The state letter and start time of a `/proc/<pid>/stat`.
fn parse_stat(text: &[u8]) -> Option<(u8, u64)> {
    // The command name (field 2) is in parentheses and may hold anything:
    // the fields after its last ')' are split on spaces.
    let close = text.iter().rposition(|b| *b == b')')?;
    let mut fields = text.get(close + 2..)?.split(|b| *b == b' ');
    let state = *fields.next()?.first()?;
    // Field 22 (start time) is the 20th after the name.
    let start = fields.nth(18)?;
    Some((state, std::str::from_utf8(start).ok()?.trim().parse().ok()?))
}

impl Run {
    /// Whether the init of this run is still alive (the same process, not
    /// a zombie).
    fn init_alive(&self) -> bool {
        let mut buf = [0u8; 1024];
        read_small(&self.stat, &mut buf)
            .and_then(parse_stat)
            .is_some_and(|(state, start)| start == self.start && !matches!(state, b'Z' | b'X' | b'x'))
    }
}

/// What a cached run says of an attach now.
enum Verdict {
    /// Init lives and every freezer file says thawed.
    Attachable,
    /// A freezer file says frozen (or freezing).
    Frozen(State),
    /// Init lives but its freezer cannot be read from here: ask liblxc.
    AskLiblxc,
    /// Init has gone, or a freezer file could not be read: the run is
    /// forgotten and liblxc asked.
    Stale,
}

impl Run {
    fn verdict(&self) -> Verdict {
        if !self.init_alive() {
            return Verdict::Stale;
        }
        let Some(freezer) = &self.freezer else { return Verdict::AskLiblxc };
        for f in freezer {
            match f.state() {
                Some(State::Running) => {}
                Some(state) => return Verdict::Frozen(state),
                None => return Verdict::Stale,
            }
        }
        Verdict::Attachable
    }
}

impl RunCache {
    /// `Ok` when the container is running and not frozen; else the error an
    /// attach reports.
    pub(crate) fn check_attachable(&self, c: &Container) -> Result<()> {
        let mut run = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match run.as_deref().map(Run::verdict) {
            Some(Verdict::Stale) | None => *run = None,
            Some(verdict) => {
                drop(run);
                return verdict.into_result(c);
            }
        }
        // liblxc is asked without the cache's lock: a slow monitor stalls
        // this attach only, not every attach through the handle.
        drop(run);
        let key = c.config_path().ok().map(|p| (p, Box::<str>::from(c.name())));
        // Another handle's run of the same container.
        if let Some((key, shared)) = key.as_ref().and_then(|k| Some((k, shared_get(k)?))) {
            match shared.verdict() {
                Verdict::Stale => shared_set(key.clone(), None, Some(&shared)),
                verdict => {
                    *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(shared);
                    return verdict.into_result(c);
                }
            }
        }
        check_state(c)?;
        let made = Run::of(c).map(Arc::new);
        // liblxc's state does not see a freeze made outside liblxc: the new
        // run's freezer files are read before this attach as well.
        let verdict = made.as_deref().map(Run::verdict);
        if let (Some(key), Some(made)) = (key, &made) {
            shared_set(key, Some(Arc::clone(made)), None);
        }
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = made;
        match verdict {
            Some(Verdict::Frozen(state)) => Err(frozen(c, state)),
            _ => Ok(()),
        }
    }

    /// Forgets the run: the handle names another container now
    /// (`set_config_path`).
    pub(crate) fn forget(&mut self) {
        *self.0.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Verdict {
    /// What an attach is told: go on, refused (frozen), or as liblxc's
    /// `state` says. Not for [`Verdict::Stale`], which the caller handles.
    fn into_result(self, c: &Container) -> Result<()> {
        match self {
            Verdict::Frozen(state) => Err(frozen(c, state)),
            Verdict::AskLiblxc | Verdict::Stale => check_state(c),
            Verdict::Attachable => Ok(()),
        }
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
    /// The init's identity and freezer files of the running container `c`;
    /// `None` when init cannot be named for sure.
    fn of(c: &Container) -> Option<Run> {
        match c.init_pidfd() {
            Ok(init) => {
                let run = Run::of_pid(crate::attach::pidfd_pid(&init)?)?;
                // Read while the pidfd was held and before it shows init's
                // exit: the pid was init's all along, never a process that
                // reused it.
                (!crate::session::wait_readable(&init, 0)).then_some(run)
            }
            // No init_pidfd (a library whose layout puts it elsewhere than
            // the header, a kernel without pidfds): init's pid, asked again
            // after the files were read, and its start time unchanged.
            Err(_) => {
                let pid = c.init_pid()?;
                let run = Run::of_pid(pid)?;
                (c.init_pid() == Some(pid) && run.init_alive()).then_some(run)
            }
        }
    }

    fn of_pid(pid: libc::pid_t) -> Option<Run> {
        let stat = PathBuf::from(format!("/proc/{pid}/stat"));
        let mut buf = [0u8; 1024];
        let (_, start) = read_small(&stat, &mut buf).and_then(parse_stat)?;
        let freezer = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .ok()
            .and_then(|cgroups| freezer_files(&cgroups));
        Some(Run { stat, start, freezer })
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
                freezer.push(Freezer::V2(readable(d.join("cgroup.freeze"))?));
            }
        } else {
            freezer.push(Freezer::V1(readable(dir.join("freezer.state"))?));
        }
    }
    Some(freezer)
}

/// `path`, when it can be read now.
fn readable(path: PathBuf) -> Option<PathBuf> {
    let mut buf = [0u8; 16];
    read_small(&path, &mut buf)?;
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::parse_stat;

    #[test]
    fn stat_fields_after_a_hostile_name() {
        let line = b"1234 (a) b) c (d) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615\n";
        assert_eq!(parse_stat(line), Some((b'S', 987654)));
        assert_eq!(parse_stat(b"1 (init) Z 0"), None);
        let this = std::fs::read("/proc/self/stat").unwrap();
        assert!(matches!(parse_stat(&this), Some((_, t)) if t > 0));
    }
}
