//! Keeps the calling process out of a container's monitor cgroup.
//!
//! liblxc (every series 4.0 to 7.0, `cgfsng_monitor_enter`) writes the pid
//! of the process that calls `start()` (daemonized)
//! into the new container's `lxc.monitor.<name>` cgroup on every hierarchy and
//! leaves it there. A long-lived program would then be accounted inside the
//! container's monitor, and when the container stops liblxc cannot remove
//! that cgroup (it is not empty), so one directory per hierarchy leaks per
//! start. [`around_start`] notes the caller's cgroups before the first of any
//! concurrent starts and moves the process back after each of them. It also
//! notes the cgroups each start made, so that [`remove_leftovers`] removes
//! after a destroy only those, never a same-named container's.
//!
//! A daemonized [`Container::start`](crate::Container::start) runs in the
//! crate's helper process (`helper.rs`): liblxc moves the helper, which
//! exits at once, and the calling process never enters the monitor cgroup.
//! The helper reports its own cgroups after the start (the new monitor's)
//! and the new init's (the payload's), and [`note_reported`] notes those.
//! [`around_start`] remains for the calls that run liblxc's start code in
//! this process: a foreground start (this process becomes the monitor) and
//! CRIU's `restore` (`migrate.rs`).

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

struct Tracker {
    in_flight: usize,
    origin: Option<Arc<Vec<(String, PathBuf)>>>,
}

static TRACKER: Mutex<Tracker> = Mutex::new(Tracker { in_flight: 0, origin: None });

fn tracker() -> std::sync::MutexGuard<'static, Tracker> {
    TRACKER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Ends one start: moves the process back, and forgets the origin after the
/// last concurrent start. A guard, so that it also runs on unwinding.
struct Leave(Option<Arc<Vec<(String, PathBuf)>>>);

impl Drop for Leave {
    fn drop(&mut self) {
        let mut t = tracker();
        if let Some(origin) = &self.0 {
            // Best effort: a start must not fail because the caller could not
            // be moved back (an unprivileged caller may lack the right).
            let _ = move_back(origin);
        }
        t.in_flight -= 1;
        if t.in_flight == 0 {
            t.origin = None;
            drop(t);
            retry_pending();
        }
    }
}

/// Runs `start` and then moves the process back into the cgroups it was in
/// before the first of the starts that overlap this one. With `owner`
/// (the container's lxcpath and name), notes the `lxc.monitor.NAME` and
/// `lxc.payload.NAME` cgroups that appeared during the start as that
/// container's, for [`remove_leftovers`].
pub(crate) fn around_start<T>(owner: Option<(&Path, &str)>, start: impl FnOnce() -> T) -> T {
    let origin = {
        let mut t = tracker();
        if t.in_flight == 0 {
            t.origin = current().ok().map(Arc::new);
        }
        t.in_flight += 1;
        t.origin.clone()
    };
    let _leave = Leave(origin);
    noting_cgroups(owner, start)
}

/// Runs `start` (in this process) and notes, as `owner`'s, the
/// `lxc.monitor.NAME` and `lxc.payload.NAME` cgroups that appeared during
/// it, for [`remove_leftovers`].
fn noting_cgroups<T>(owner: Option<(&Path, &str)>, start: impl FnOnce() -> T) -> T {
    let roots = owner.map(|_| hierarchy_roots()).unwrap_or_default();
    let roots = &roots[..];
    let before = owner.map(|(_, name)| named_cgroups(name, roots, None));
    let r = start();
    if let (Some((lxcpath, name)), Some((before, upto))) = (owner, before) {
        // Only the indexes looked at before: liblxc took the first one free
        // on every hierarchy, among them; past them a directory may be
        // another container's that the first look did not reach.
        let (after, _) = named_cgroups(name, roots, Some(upto));
        let new: Vec<Owned> = after.into_iter().filter(|c| !before.contains(c)).collect();
        note_owned(lxcpath, name, new);
    }
    r
}

/// A cgroup directory and the inode it had when it was noted: a directory
/// of the same name made later (by a same-named container of another
/// lxcpath) has another inode and is not ours.
type Owned = (PathBuf, u64);

/// The cgroups that starts in this process made, by container (lxcpath and
/// name), until the container is destroyed.
type OwnedMap = Vec<((PathBuf, String), Vec<Owned>)>;
static OWNED: Mutex<OwnedMap> = Mutex::new(Vec::new());

fn owner_key(lxcpath: &Path, name: &str) -> (PathBuf, String) {
    (fs::canonicalize(lxcpath).unwrap_or_else(|_| lxcpath.to_path_buf()), name.to_owned())
}

fn note_owned(lxcpath: &Path, name: &str, new: Vec<Owned>) {
    if new.is_empty() {
        return;
    }
    let key = owner_key(lxcpath, name);
    let mut owned = OWNED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, dirs)) = owned.iter_mut().find(|(k, _)| *k == key) {
        for d in new {
            if !dirs.contains(&d) && dirs.len() < 1024 {
                dirs.push(d);
            }
        }
    } else if owned.len() < 4096 {
        owned.push((key, new));
    }
}

/// Whether `dir` is still the directory noted with inode `ino`.
fn same_dir(dir: &Path, ino: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(dir).is_ok_and(|m| m.ino() == ino)
}

/// The cgroup mounts (`cgroup` and `cgroup2` lines) of
/// `/proc/thread-self/mountinfo`, in the calling thread's mount namespace.
/// Kept per mount namespace: reading mountinfo costs 50 to 100 µs, more
/// than the lookups it serves (hierarchies are mounted at boot; one mounted
/// later in the same namespace is not looked at). A read that fails or
/// finds none is not kept.
fn cgroup_mounts() -> Arc<str> {
    use std::os::unix::fs::MetadataExt;
    /// (the mount namespace's device and inode, its cgroup mount lines)
    type Cached = ((u64, u64), Arc<str>);
    static CACHE: Mutex<Option<Cached>> = Mutex::new(None);
    let ns = fs::metadata("/proc/thread-self/ns/mnt").ok().map(|m| (m.dev(), m.ino()));
    if let (Some(ns), Some((key, mounts))) = (ns, &*CACHE.lock().unwrap_or_else(|e| e.into_inner())) {
        if ns == *key {
            return Arc::clone(mounts);
        }
    }
    let all = fs::read_to_string("/proc/thread-self/mountinfo").unwrap_or_default();
    let mounts: Arc<str> = all
        .lines()
        .filter(|line| {
            line.split_once(" - ").is_some_and(|(_, r)| r.starts_with("cgroup ") || r.starts_with("cgroup2 "))
        })
        .flat_map(|line| [line, "\n"])
        .collect::<String>()
        .into();
    if let (Some(ns), false) = (ns, mounts.is_empty()) {
        *CACHE.lock().unwrap_or_else(|e| e.into_inner()) = Some((ns, Arc::clone(&mounts)));
    }
    mounts
}

/// The mount points of the cgroup hierarchies ([`cgroup_mounts`]).
fn hierarchy_roots() -> Vec<PathBuf> {
    cgroup_mounts().lines().filter_map(|line| line.split(' ').nth(4).map(PathBuf::from)).collect()
}

/// Notes, as the cgroups a start of `owner` (lxcpath, name) made, those of
/// `lines` (of a `/proc/<pid>/cgroup`: the helper's after liblxc moved it
/// into the new monitor cgroups, and the new init's) that sit at the top of
/// their hierarchy under liblxc's names for the container
/// (`lxc.monitor.NAME`, `lxc.payload.NAME`, or their `-N` variants): the
/// same cgroups [`noting_cgroups`] finds by searching, without the search,
/// which `stat`s every index on every hierarchy, twice, and grows with the
/// leftovers of other programs' starts of the same name.
pub(crate) fn note_reported(owner: Option<(&Path, &str)>, lines: &[String]) {
    use std::os::unix::fs::MetadataExt;
    let Some((lxcpath, name)) = owner else {
        return;
    };
    if lines.is_empty() {
        return;
    }
    let mounts = cgroup_mounts();
    let mut new: Vec<Owned> = Vec::new();
    for line in lines {
        let Some((mount, dir)) = cgroup_dir(line, &mounts) else {
            continue;
        };
        let Some(Component::Normal(top)) =
            dir.strip_prefix(&mount).ok().and_then(|rel| rel.components().next())
        else {
            continue;
        };
        if !is_named_for(&top.to_string_lossy(), name) {
            continue;
        }
        let top = mount.join(top);
        if let Ok(m) = fs::symlink_metadata(&top) {
            if m.is_dir() && !new.iter().any(|(d, _)| *d == top) {
                new.push((top, m.ino()));
            }
        }
    }
    note_owned(lxcpath, name, new);
}

/// Whether `dir` is one of liblxc's names for the cgroups of the container
/// `name`: `lxc.monitor.NAME`, `lxc.payload.NAME`, or either with `-N`
/// (N from 1 to 999, without leading zeros).
fn is_named_for(dir: &str, name: &str) -> bool {
    let Some(rest) = dir.strip_prefix("lxc.monitor.").or_else(|| dir.strip_prefix("lxc.payload.")) else {
        return false;
    };
    let Some(suffix) = rest.strip_prefix(name) else {
        return false;
    };
    suffix.is_empty()
        || suffix.strip_prefix('-').is_some_and(|n| {
            !n.is_empty() && n.len() <= 3 && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())
        })
}

/// How many indexes in a row that no hierarchy has end the first search for
/// a container's cgroups (a gap left by a removed one is still looked past).
const NAMED_MISSES: usize = 2;

/// The cgroups at the top of each hierarchy (`roots`) named after the
/// container `name`, with their inodes: `lxc.monitor.NAME`,
/// `lxc.payload.NAME` and liblxc's `-1`, `-2`, ... variants for names that
/// clash (cgfsng.c takes the first index free on every hierarchy). Looked
/// up by name, index after index: with `upto` `None`, until
/// [`NAMED_MISSES`] indexes in a row exist nowhere; with `Some(limits)`,
/// exactly the indexes up to those limits (monitor, payload). Returns the
/// last index looked at of each. A few `stat`s per hierarchy, where
/// listing every root cost a millisecond per start with many containers.
fn named_cgroups(name: &str, roots: &[PathBuf], upto: Option<[usize; 2]>) -> (Vec<Owned>, [usize; 2]) {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    let mut last = [0; 2];
    for (k, prefix) in ["lxc.monitor.", "lxc.payload."].into_iter().enumerate() {
        let mut misses = 0;
        // liblxc gives up after index 999.
        for idx in 0..1000 {
            let file = if idx == 0 { format!("{prefix}{name}") } else { format!("{prefix}{name}-{idx}") };
            let mut any = false;
            for root in roots {
                let dir = root.join(&file);
                if let Ok(m) = fs::symlink_metadata(&dir) {
                    if m.is_dir() {
                        found.push((dir, m.ino()));
                        any = true;
                    }
                }
            }
            last[k] = idx;
            misses = if any { 0 } else { misses + 1 };
            let done = match upto {
                Some(limits) => idx >= limits[k],
                None => misses == NAMED_MISSES,
            };
            if done {
                break;
            }
        }
    }
    (found, last)
}

/// The lines of `/proc/self/cgroup` with the `cgroup.procs` file of each.
fn current() -> io::Result<Vec<(String, PathBuf)>> {
    let cgroup = fs::read_to_string("/proc/self/cgroup")?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(cgroup.lines().filter_map(|line| Some((line.to_owned(), procs_file(line, &mountinfo)?))).collect())
}

/// The `cgroup.procs` file of one line of `/proc/self/cgroup`
/// (`ID:CONTROLLERS:PATH`).
fn procs_file(line: &str, mountinfo: &str) -> Option<PathBuf> {
    cgroup_dir(line, mountinfo).map(|(_, dir)| dir.join("cgroup.procs"))
}

/// The mount point of the hierarchy of one line of a `/proc/<pid>/cgroup`
/// (`ID:CONTROLLERS:PATH`) and the cgroup's directory under it, found
/// through the cgroup mounts in mountinfo.
pub(crate) fn cgroup_dir(line: &str, mountinfo: &str) -> Option<(PathBuf, PathBuf)> {
    let mut parts = line.splitn(3, ':');
    let id = parts.next()?;
    let controllers = parts.next()?;
    let path = parts.next()?;
    let unified = id == "0" && controllers.is_empty();
    let wanted: Vec<&str> = controllers.split(',').filter(|c| !c.is_empty()).collect();
    for m in mountinfo.lines() {
        let Some((left, right)) = m.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let tail: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(mountpoint), Some(fstype), Some(superopts)) =
            (fields.get(3), fields.get(4), tail.first(), tail.get(2))
        else {
            continue;
        };
        let matches = if unified {
            *fstype == "cgroup2"
        } else {
            *fstype == "cgroup" && {
                let opts: Vec<&str> = superopts.split(',').collect();
                !wanted.is_empty() && wanted.iter().all(|w| opts.contains(w))
            }
        };
        if !matches {
            continue;
        }
        let rel = if *root == "/" { path } else { path.strip_prefix(root)? };
        let mount = PathBuf::from(mountpoint);
        let dir = mount.join(rel.trim_start_matches('/'));
        return Some((mount, dir));
    }
    None
}

/// Moves the process back to `origin`, then removes the cgroups it was
/// moved into if they are empty: after a failed start, liblxc's monitor
/// gave up removing its cgroup while the caller was still inside it. A
/// cgroup that holds a process (a running container's monitor) refuses the
/// rmdir and stays.
fn move_back(origin: &[(String, PathBuf)]) -> io::Result<()> {
    let now = fs::read_to_string("/proc/self/cgroup")?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let pid = std::process::id().to_string();
    let mut result = Ok(());
    let mut left = Vec::new();
    for (line, procs) in origin {
        if now.lines().any(|l| l == line) {
            continue;
        }
        let hierarchy = line.split(':').next().unwrap_or_default();
        if let Some(cur) = now.lines().find(|l| l.split(':').next() == Some(hierarchy)) {
            left.extend(procs_file(cur, &mountinfo).and_then(|p| p.parent().map(PathBuf::from)));
        }
        if let Err(e) = fs::write(procs, &pid) {
            result = Err(e);
        }
    }
    for dir in left {
        let is_monitor = dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with("lxc.monitor."));
        if is_monitor {
            let _ = fs::remove_dir(&dir);
        }
    }
    result
}

/// Leftover cgroups that were still in use when their container was
/// destroyed.
static PENDING: Mutex<Vec<Owned>> = Mutex::new(Vec::new());

/// Removes the pending leftovers that have become empty (and forgets those
/// that are gone or were replaced by a directory of another container).
pub(crate) fn retry_pending() {
    let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    if !p.is_empty() {
        p.retain(|(d, ino)| same_dir(d, *ino) && remove_cgroup(d).is_err());
    }
}

/// Removes a cgroup directory and the cgroups below it (liblxc makes a
/// `.lxc` child for attached processes on cgroup v2), deepest first; fails
/// on any that still holds a process.
fn remove_cgroup(dir: &Path) -> io::Result<()> {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = remove_cgroup(&e.path());
            }
        }
    }
    fs::remove_dir(dir)
}

/// After a container is destroyed: removes the empty cgroups that its
/// starts in this process made (`lxc.monitor.<name>`, `lxc.payload.<name>`
/// and liblxc's `-N` variants, noted by [`around_start`]) and that liblxc
/// left at the top of a hierarchy, for instance after a start that failed
/// while another thread of this process forked. Nothing else is touched:
/// liblxc names cgroups after the container alone, so a container of the
/// same name in another lxcpath has cgroups of the same names (or the
/// same names again, after ours were removed: those have other inodes).
/// `rmdir` only removes empty cgroups, so nothing in use is removed.
pub(crate) fn remove_leftovers(lxcpath: &Path, name: &str) {
    retry_pending();
    let key = owner_key(lxcpath, name);
    let dirs = {
        let mut owned = OWNED.lock().unwrap_or_else(|e| e.into_inner());
        match owned.iter().position(|(k, _)| *k == key) {
            Some(i) => owned.swap_remove(i).1,
            None => return,
        }
    };
    for (dir, ino) in dirs {
        if same_dir(&dir, ino) && remove_cgroup(&dir).is_err() {
            // Still in use: a process forked by this one while it sat
            // in that cgroup (a template, another start's helper) may
            // outlive the container. Try again on later calls.
            let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
            if p.len() < 4096 {
                p.push((dir, ino));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 /sub /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_the_procs_file_of_each_hierarchy() {
        assert_eq!(
            procs_file("4:memory:/a/b", MOUNTINFO).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/a/b/cgroup.procs")
        );
        assert_eq!(
            procs_file("2:cpu,cpuacct:/", MOUNTINFO).unwrap(),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/cgroup.procs")
        );
        assert_eq!(
            procs_file("9:name=systemd:/x", MOUNTINFO).unwrap(),
            PathBuf::from("/sys/fs/cgroup/systemd/x/cgroup.procs")
        );
        assert_eq!(
            procs_file("0::/sub/y", MOUNTINFO).unwrap(),
            PathBuf::from("/sys/fs/cgroup/unified/y/cgroup.procs")
        );
        assert!(procs_file("7:blkio:/", MOUNTINFO).is_none());
    }

    /// The look after a start covers the indexes of the look before and no
    /// more: a same-named container's `-2`, past a gap the first look
    /// stopped at, is not noted when the start takes index 0.
    #[test]
    fn a_start_notes_only_what_appeared_where_it_looked() {
        let root = std::env::temp_dir().join(format!("lxc-rs-named-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("lxc.payload.web-2")).unwrap();
        fs::create_dir_all(root.join("lxc.monitor.web-2")).unwrap();
        fs::create_dir_all(root.join("lxc.monitor.webby")).unwrap();
        let roots = [root.clone()];
        let (before, upto) = named_cgroups("web", &roots, None);
        assert!(before.is_empty(), "{before:?}");
        assert_eq!(upto, [1, 1]);
        fs::create_dir(root.join("lxc.monitor.web")).unwrap();
        fs::create_dir(root.join("lxc.payload.web")).unwrap();
        let (after, _) = named_cgroups("web", &roots, Some(upto));
        let mut names: Vec<_> = after.iter().map(|(d, _)| d.file_name().unwrap().to_owned()).collect();
        names.sort();
        assert_eq!(names, ["lxc.monitor.web", "lxc.payload.web"]);
        // The first look goes past one gap: -2 is seen, then two misses.
        let (seen, upto) = named_cgroups("web", &roots, None);
        assert_eq!(seen.len(), 4);
        assert_eq!(upto, [4, 4]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn knows_liblxc_names_for_a_container() {
        for yes in ["lxc.monitor.web", "lxc.payload.web", "lxc.monitor.web-1", "lxc.payload.web-999"] {
            assert!(is_named_for(yes, "web"), "{yes}");
        }
        for no in [
            "lxc.monitor.webby",
            "lxc.payload.web-",
            "lxc.payload.web-01",
            "lxc.payload.web-1000",
            "lxc.payload.web-1x",
            "lxc.pivot",
            "web",
            "lxc.payload.we",
        ] {
            assert!(!is_named_for(no, "web"), "{no}");
        }
        // A name that itself ends in -N: its own cgroups, not web's.
        assert!(is_named_for("lxc.payload.web-2", "web-2"));
    }

    #[test]
    fn this_process_has_cgroups() {
        assert!(!current().unwrap().is_empty());
    }
}
