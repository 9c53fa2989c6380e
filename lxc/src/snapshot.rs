//! Copies of a container: `clone`, and snapshots (`snapshot`,
//! `snapshot_list`, `snapshot_restore`, `snapshot_destroy`,
//! `snapshot_destroy_all`, `destroy_with_snapshots`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::ptr;

use bitflags::bitflags;

use crate::create::BackingStore;
use crate::cstr::{borrowed_str, check_name, check_shell_word, cstring, line_cstring, path_bytes, CStrArray};
use crate::error::{Error, Result};
use crate::layout::method;
use crate::{sys, Container, State};

bitflags! {
    /// How to clone (`LXC_CLONE_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct CloneFlags: i32 {
        /// Keep the hostname in the copy's rootfs.
        const KEEP_NAME = sys::LXC_CLONE_KEEPNAME as i32;
        /// Keep the MAC addresses of the network interfaces.
        const KEEP_MACADDR = sys::LXC_CLONE_KEEPMACADDR as i32;
        /// Snapshot the rootfs instead of copying it (overlay, btrfs, zfs, lvm).
        const SNAPSHOT = sys::LXC_CLONE_SNAPSHOT as i32;
        /// Use the backing store type of the original.
        const KEEP_BDEV_TYPE = sys::LXC_CLONE_KEEPBDEVTYPE as i32;
        /// Snapshot if the backing store can, else copy.
        const MAYBE_SNAPSHOT = sys::LXC_CLONE_MAYBE_SNAPSHOT as i32;
        /// Allow cloning a running container.
        const ALLOW_RUNNING = sys::LXC_CLONE_ALLOW_RUNNING as i32;
    }
}

/// Options of [`Container::copy`] (`lxc-copy`).
///
/// ```
/// use lxc::{BackingStore, CloneFlags, CloneOptions};
/// let opts = CloneOptions::new()
///     .lxcpath("/tmp/other")
///     .flags(CloneFlags::KEEP_MACADDR)
///     .backing_store(BackingStore::Dir);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloneOptions {
    lxcpath: Option<PathBuf>,
    flags: CloneFlags,
    backing_store: Option<BackingStore>,
    bdev_data: Option<String>,
    new_size: u64,
    hook_args: Vec<String>,
}

impl CloneOptions {
    /// A full copy into the same lxcpath, liblxc's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// The lxcpath of the copy (default: the original's). Resolved to its
    /// real path when it exists, as in
    /// [`Container::with_lxcpath`](crate::Container::with_lxcpath); made,
    /// with its parents, when it does not (as `lxc-copy` does).
    pub fn lxcpath(mut self, p: impl AsRef<Path>) -> Self {
        self.lxcpath = Some(p.as_ref().to_owned());
        self
    }
    /// Clone flags.
    pub fn flags(mut self, flags: CloneFlags) -> Self {
        self.flags = flags;
        self
    }
    /// The backing store of the copy.
    pub fn backing_store(mut self, b: BackingStore) -> Self {
        self.backing_store = Some(b);
        self
    }
    /// Where the copy's rootfs goes, for the backing store (`bdevdata`).
    /// It becomes the copy's `lxc.rootfs.path`: one with a line break or
    /// another control character is refused.
    pub fn bdev_data(mut self, data: &str) -> Self {
        self.bdev_data = Some(data.to_owned());
        self
    }
    /// Size of the copy's block device in bytes (0: the original's).
    pub fn new_size(mut self, bytes: u64) -> Self {
        self.new_size = bytes;
        self
    }
    /// Arguments for the `lxc.hook.clone` hooks. liblxc joins them unquoted
    /// into a `sh -c` command line, so [`Container::copy`] refuses any
    /// argument that is empty or holds anything but ASCII letters, digits
    /// and `+,-./:=@_%`.
    pub fn hook_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.hook_args.extend(args.into_iter().map(Into::into));
        self
    }
}

/// A snapshot of a container (`struct lxc_snapshot`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Snapshot {
    /// Its name, `snap0`, `snap1`, ...
    pub name: String,
    /// The file with its comment (`<lxcpath>/<snapshot>/comment`), if the
    /// snapshot has one: liblxc names the file for every snapshot, and it
    /// exists only when a comment was given.
    pub comment_path: Option<PathBuf>,
    /// When it was taken, as liblxc writes it (`YYYY:MM:DD HH:MM:SS`);
    /// `None` when the snapshot's `ts` file is missing or empty (liblxc
    /// then lists the snapshot without one).
    pub timestamp: Option<String>,
    /// The lxcpath that holds it (`<lxcpath>/<container>/snaps`).
    pub lxcpath: PathBuf,
}

impl Snapshot {
    /// The comment, read from [`Snapshot::comment_path`].
    pub fn comment(&self) -> Option<String> {
        self.comment_path.as_ref().and_then(|p| std::fs::read_to_string(p).ok())
    }
}

impl Container {
    /// Copies this (stopped) container to `new_name` and returns a handle
    /// on the copy (liblxc's `clone`, ruby-lxc's `clone`, `lxc-copy -N`).
    ///
    /// It is named `copy`, not `clone`, so that it can be called on the
    /// `Arc<Container>` the crate recommends for sharing: there,
    /// `arc.clone(..)` would be `Arc::clone`.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// let base = Arc::new(lxc::Container::new("base")?);
    /// let web = base.copy("web1", &lxc::CloneOptions::new())?;
    /// web.start()?;
    /// # Ok::<(), lxc::Error>(())
    /// ```
    #[doc(alias = "clone")]
    #[doc(alias = "lxc-copy")]
    pub fn copy(&self, new_name: &str, opts: &CloneOptions) -> Result<Container> {
        let _clone = method!(self.clone);
        check_name("new container name", new_name)?;
        // Refuse here what an in-process call would: NUL bytes; line
        // breaks in what becomes a configuration line (the copy's
        // lxcpath and rootfs path); hook arguments that are not plain
        // shell words (liblxc joins them unquoted into `sh -c`).
        cstring("new container name", new_name)?;
        let lxcpath = opts.lxcpath.as_deref().map(crate::cstr::lxcpath).transpose()?;
        opts.bdev_data.as_deref().map(|d| line_cstring("bdev data", d)).transpose()?;
        for a in &opts.hook_args {
            check_shell_word("hook argument", a)?;
        }
        CStrArray::lines("hook argument", &opts.hook_args)?;
        let mut hopts: Vec<(&'static str, OsString)> = vec![
            ("newname", new_name.into()),
            ("flags", opts.flags.bits().to_string().into()),
            ("newsize", opts.new_size.to_string().into()),
        ];
        if let Some((p, _)) = &lxcpath {
            crate::container::ensure_lxcpath(p)?;
            hopts.push(("newpath", p.as_os_str().to_owned()));
        }
        if let Some(b) = opts.backing_store {
            hopts.push(("bdev", b.as_str().into()));
        }
        if let Some(d) = &opts.bdev_data {
            hopts.push(("bdevdata", d.into()));
        }
        let hooks = (!opts.hook_args.is_empty()).then(|| opts.hook_args.clone());
        // liblxc's clone runs in the helper process (`helper.rs`): its
        // rsync child is made with a raw clone() that hangs in a threaded
        // process.
        let out = self.run_helper("clone", hopts, hooks)?;
        if !out.ok {
            out.restore_errno();
            if self.is_running() && !opts.flags.contains(CloneFlags::ALLOW_RUNNING) {
                return Err(Error::WrongState {
                    op: "clone",
                    container: self.name().to_owned(),
                    state: State::Running,
                    expected: "it must be stopped (or CloneFlags::ALLOW_RUNNING given)",
                });
            }
            return Err(self.failed("clone"));
        }
        let lxcpath = match lxcpath {
            Some((p, _)) => p,
            None => self.config_path()?,
        };
        Container::with_lxcpath(new_name, lxcpath)
    }

    /// Takes a snapshot of the (stopped) container, with an optional
    /// comment file, and returns its name (`snapshot`, `lxc-snapshot`).
    ///
    /// liblxc's snapshot runs in the crate's helper process (see the
    /// README's "The helper process"), so it works from a process with many
    /// threads.
    pub fn snapshot(&self, comment_file: Option<&Path>) -> Result<String> {
        let _snapshot = method!(self.snapshot);
        let mut hopts: Vec<(&'static str, OsString)> = Vec::new();
        if let Some(p) = comment_file {
            cstring("comment file", path_bytes(p))?;
            hopts.push(("comment", p.as_os_str().to_owned()));
        }
        let out = self.run_helper("snapshot", hopts, None)?;
        match out.value {
            Some(n) if out.ok && n >= 0 => Ok(format!("snap{n}")),
            Some(_) | None if out.ok => Err(Error::bad_return("snapshot", "no snapshot number")),
            _ => {
                out.restore_errno();
                Err(self.failed("snapshot"))
            }
        }
    }

    /// The container's snapshots (`snapshot_list`, `lxc-snapshot -L`).
    pub fn snapshot_list(&self) -> Result<Vec<Snapshot>> {
        let f = method!(self.snapshot_list);
        let mut arr: *mut sys::lxc_snapshot = ptr::null_mut();
        let n = {
            let _g = self.shared();
            // SAFETY: the container is live; arr is a valid out-pointer.
            unsafe { f(self.as_raw(), &mut arr) }
        };
        if n < 0 {
            return Err(self.failed("snapshot_list"));
        }
        let mut out = Ok(Vec::with_capacity(n as usize));
        for i in 0..n as usize {
            // SAFETY: liblxc returned an array of n snapshots.
            let s = unsafe { &mut *arr.add(i) };
            let read = || -> Result<Snapshot> {
                // SAFETY: the strings belong to the snapshot, alive until
                // its free below; they are copied here.
                unsafe {
                    Ok(Snapshot {
                        name: borrowed_str("snapshot_list", s.name)?.to_owned(),
                        comment_path: if s.comment_pathname.is_null() {
                            None
                        } else {
                            Some(PathBuf::from(borrowed_str("snapshot_list", s.comment_pathname)?))
                                .filter(|p| p.exists())
                        },
                        timestamp: if s.timestamp.is_null() {
                            None
                        } else {
                            Some(borrowed_str("snapshot_list", s.timestamp)?.to_owned())
                        },
                        lxcpath: PathBuf::from(borrowed_str("snapshot_list", s.lxcpath)?),
                    })
                }
            };
            let r = read();
            if let Some(free) = s.free {
                // SAFETY: each snapshot's own free releases its strings,
                // exactly once.
                unsafe { free(s) };
            }
            match (&mut out, r) {
                (Ok(v), Ok(snap)) => v.push(snap),
                (Ok(_), Err(e)) => out = Err(e),
                _ => {}
            }
        }
        if !arr.is_null() {
            // SAFETY: the array itself was malloc'ed by liblxc and is ours.
            unsafe { libc::free(arr.cast()) };
        }
        out
    }

    /// Restores the snapshot `snap_name` as the container `new_name`, or
    /// over this container when `new_name` is `None` or its own name
    /// (`snapshot_restore`, `lxc-snapshot -r`).
    ///
    /// liblxc's restore copies the snapshot back with the same helper as
    /// [`Container::copy`], so it runs in the crate's helper process too;
    /// a restore over this container then reloads the handle's
    /// configuration from the restored file. liblxc destroys the container
    /// before a restore over it: the paths it deletes are checked first,
    /// as for [`Container::destroy`].
    pub fn snapshot_restore(&self, snap_name: &str, new_name: Option<&str>) -> Result<()> {
        let _restore = method!(self.snapshot_restore);
        check_name("snapshot name", snap_name)?;
        cstring("snapshot name", snap_name)?;
        let new_name = new_name.unwrap_or(self.name());
        check_name("new container name", new_name)?;
        cstring("new container name", new_name)?;
        let hopts = vec![("snapname", snap_name.into()), ("newname", new_name.into())];
        let ok = if new_name == self.name() {
            // liblxc destroys this container before it copies the
            // snapshot back: its paths are checked as for destroy.
            let _lifecycle = self.lifecycle_lock();
            self.deleting_call("snapshot_restore", true, "restore", hopts)?
        } else {
            let out = self.run_helper("restore", hopts, None)?;
            if !out.ok {
                out.restore_errno();
            }
            out.ok
        };
        if !ok {
            return Err(self.failed("snapshot_restore"));
        }
        if new_name == self.name() {
            self.reload_config()?;
        }
        Ok(())
    }

    /// Destroys the snapshot `snap_name` (`snapshot_destroy`). Runs in the
    /// crate's helper process, as [`Container::destroy`] does.
    pub fn snapshot_destroy(&self, snap_name: &str) -> Result<()> {
        let _destroy = method!(self.snapshot_destroy);
        check_name("snapshot name", snap_name)?;
        cstring("snapshot name", snap_name)?;
        let opts = vec![("snapname", snap_name.into())];
        self.snapshot_deleting_call("snapshot_destroy", false, opts)
    }

    /// Destroys every snapshot of the container (`snapshot_destroy_all`).
    /// Runs in the crate's helper process, as [`Container::destroy`] does.
    pub fn snapshot_destroy_all(&self) -> Result<()> {
        let _destroy = method!(self.snapshot_destroy_all);
        self.snapshot_deleting_call("snapshot_destroy_all", false, Vec::new())
    }

    /// Destroys the container and all its snapshots
    /// (`destroy_with_snapshots`, `lxc-destroy -s`). Its own paths are
    /// checked as for [`Container::destroy`]; it runs in the crate's helper
    /// process.
    pub fn destroy_with_snapshots(&self) -> Result<()> {
        let _destroy = method!(self.destroy_with_snapshots);
        if self.is_running() {
            return Err(self.wrong_state("destroy_with_snapshots", "it must be stopped", State::Running));
        }
        let lifecycle = self.lifecycle_lock();
        self.snapshot_deleting_call("destroy_with_snapshots", true, Vec::new())?;
        drop(lifecycle);
        if let Ok(lxcpath) = self.config_path() {
            crate::monitor_cgroup::remove_leftovers(&lxcpath, self.name());
        }
        Ok(())
    }

    fn snapshot_deleting_call(
        &self,
        op: &'static str,
        check: bool,
        opts: Vec<(&'static str, OsString)>,
    ) -> Result<()> {
        if self.deleting_call(op, check, op, opts)? {
            Ok(())
        } else {
            Err(self.failed(op))
        }
    }
}
