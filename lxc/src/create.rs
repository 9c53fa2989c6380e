//! Options of [`Container::create`](crate::Container::create).

use std::ffi::CString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::cstr::{line_cstring, path_bytes};
use crate::error::{Error, Result};
use crate::sys;

/// The backing store of a container's root filesystem (`lxc-create -B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum BackingStore {
    /// A plain directory (the default).
    Dir,
    /// A btrfs subvolume.
    Btrfs,
    /// A ZFS dataset.
    Zfs,
    /// An LVM logical volume.
    Lvm,
    /// An overlay filesystem.
    Overlay,
    /// A loop-mounted image file.
    Loop,
    /// A Ceph RBD image.
    Rbd,
    /// The best one available: btrfs, zfs, lvm, then dir.
    Best,
}

impl BackingStore {
    /// liblxc's name (`"dir"`, `"btrfs"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            BackingStore::Dir => "dir",
            BackingStore::Btrfs => "btrfs",
            BackingStore::Zfs => "zfs",
            BackingStore::Lvm => "lvm",
            BackingStore::Overlay => "overlay",
            BackingStore::Loop => "loop",
            BackingStore::Rbd => "rbd",
            BackingStore::Best => "best",
        }
    }
}

impl fmt::Display for BackingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackingStore {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "dir" => BackingStore::Dir,
            "btrfs" => BackingStore::Btrfs,
            "zfs" => BackingStore::Zfs,
            "lvm" => BackingStore::Lvm,
            "overlay" | "overlayfs" => BackingStore::Overlay,
            "loop" => BackingStore::Loop,
            "rbd" => BackingStore::Rbd,
            "best" => BackingStore::Best,
            _ => {
                return Err(Error::invalid(
                    "backing store",
                    s,
                    "is not one of dir, btrfs, zfs, lvm, overlay, loop, rbd, best",
                ))
            }
        })
    }
}

/// The least size of the zeroed buffer in which the helper process
/// (`lxc/helper/lxc-rs-helper.c`) hands `struct bdev_specs` to liblxc's
/// create: the header's struct and 128 zero bytes after it. liblxc 6.0.6
/// appended `rbd.rbduser`, which it reads for the rbd backing store; a
/// crate built with an older header and run with that library must not let
/// it read past the struct.
const BDEV_SPECS_BUFFER: usize = 128;
const _: () = assert!(sys::layouts::LARGEST_BDEV_SPECS_SIZE <= BDEV_SPECS_BUFFER);

/// Parameters of the backing store (`struct bdev_specs`): what
/// `lxc-create --fstype --fssize --dir --vgname ...` set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BdevSpecs {
    fstype: Option<String>,
    fssize: u64,
    zfs_root: Option<String>,
    lvm_vg: Option<String>,
    lvm_lv: Option<String>,
    lvm_thinpool: Option<String>,
    dir: Option<PathBuf>,
    rbd_name: Option<String>,
    rbd_pool: Option<String>,
}

impl BdevSpecs {
    /// No parameters: liblxc's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Filesystem type for block-device stores (`ext4`, ...).
    pub fn fstype(mut self, fstype: &str) -> Self {
        self.fstype = Some(fstype.to_owned());
        self
    }
    /// Filesystem size in bytes for block-device stores.
    pub fn fssize(mut self, bytes: u64) -> Self {
        self.fssize = bytes;
        self
    }
    /// ZFS root dataset.
    pub fn zfs_root(mut self, root: &str) -> Self {
        self.zfs_root = Some(root.to_owned());
        self
    }
    /// LVM volume group.
    pub fn lvm_vg(mut self, vg: &str) -> Self {
        self.lvm_vg = Some(vg.to_owned());
        self
    }
    /// LVM logical volume name.
    pub fn lvm_lv(mut self, lv: &str) -> Self {
        self.lvm_lv = Some(lv.to_owned());
        self
    }
    /// LVM thin pool.
    pub fn lvm_thinpool(mut self, pool: &str) -> Self {
        self.lvm_thinpool = Some(pool.to_owned());
        self
    }
    /// The directory of the root filesystem for the `dir` store
    /// (`lxc-create --dir`).
    pub fn dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }
    /// Ceph RBD image name.
    pub fn rbd_name(mut self, name: &str) -> Self {
        self.rbd_name = Some(name.to_owned());
        self
    }
    /// Ceph pool.
    pub fn rbd_pool(mut self, pool: &str) -> Self {
        self.rbd_pool = Some(pool.to_owned());
        self
    }

    /// The parameters as options of the helper process (`helper.rs`).
    pub(crate) fn helper_opts(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        let mut v: Vec<(&'static str, std::ffi::OsString)> = vec![("specs", "1".into())];
        let mut add = |k: &'static str, s: Option<&str>| {
            if let Some(s) = s {
                v.push((k, s.into()));
            }
        };
        add("fstype", self.fstype.as_deref());
        add("zfsroot", self.zfs_root.as_deref());
        add("lvm.vg", self.lvm_vg.as_deref());
        add("lvm.lv", self.lvm_lv.as_deref());
        add("lvm.thinpool", self.lvm_thinpool.as_deref());
        add("rbd.name", self.rbd_name.as_deref());
        add("rbd.pool", self.rbd_pool.as_deref());
        if let Some(d) = &self.dir {
            v.push(("dir", d.as_os_str().to_owned()));
        }
        if self.fssize != 0 {
            v.push(("fssize", self.fssize.to_string().into()));
        }
        v
    }

    /// The C struct and the strings it points into; the strings must outlive
    /// every use of the struct. (Only to check the values here: the helper
    /// process builds the struct liblxc reads, in a zeroed buffer of at
    /// least [`BDEV_SPECS_BUFFER`] bytes.)
    pub(crate) fn to_raw(&self) -> Result<(sys::bdev_specs, Vec<CString>)> {
        let mut keep = Vec::new();
        let mut c = |what: &'static str, v: Option<&[u8]>| -> Result<*mut std::ffi::c_char> {
            match v {
                None => Ok(std::ptr::null_mut()),
                Some(v) => {
                    // Each ends up in the configuration (`lxc.rootfs.path`).
                    let s = line_cstring(what, v)?;
                    let p = s.as_ptr().cast_mut();
                    keep.push(s);
                    Ok(p)
                }
            }
        };
        let mut raw = sys::bdev_specs {
            fstype: c("fstype", self.fstype.as_deref().map(str::as_bytes))?,
            fssize: self.fssize,
            ..Default::default()
        };
        raw.zfs.zfsroot = c("zfs root", self.zfs_root.as_deref().map(str::as_bytes))?;
        raw.lvm.vg = c("lvm vg", self.lvm_vg.as_deref().map(str::as_bytes))?;
        raw.lvm.lv = c("lvm lv", self.lvm_lv.as_deref().map(str::as_bytes))?;
        raw.lvm.thinpool = c("lvm thinpool", self.lvm_thinpool.as_deref().map(str::as_bytes))?;
        raw.dir = c("rootfs dir", self.dir.as_deref().map(path_bytes))?;
        raw.rbd.rbdname = c("rbd name", self.rbd_name.as_deref().map(str::as_bytes))?;
        raw.rbd.rbdpool = c("rbd pool", self.rbd_pool.as_deref().map(str::as_bytes))?;
        Ok((raw, keep))
    }
}

/// How to create a container: template, its arguments, backing store and
/// flags (the arguments of `lxc_container.create`, `lxc-create`).
///
/// ```
/// use lxc::{BackingStore, CreateOptions};
/// let opts = CreateOptions::new()
///     .template("busybox")
///     .backing_store(BackingStore::Dir)
///     .quiet(true)
///     .args(["--some-template-option"]);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CreateOptions {
    pub(crate) template: Option<String>,
    pub(crate) backing_store: Option<BackingStore>,
    pub(crate) specs: Option<BdevSpecs>,
    pub(crate) quiet: bool,
    pub(crate) args: Vec<String>,
}

impl CreateOptions {
    /// No template: liblxc only writes the configuration (and makes the
    /// rootfs directory).
    pub fn new() -> Self {
        Self::default()
    }
    /// The template: a name such as `"busybox"` or `"download"`, or the
    /// path of a template script.
    pub fn template(mut self, template: &str) -> Self {
        self.template = Some(template.to_owned());
        self
    }
    /// The backing store (default: `dir`).
    pub fn backing_store(mut self, store: BackingStore) -> Self {
        self.backing_store = Some(store);
        self
    }
    /// Parameters of the backing store.
    pub fn specs(mut self, specs: BdevSpecs) -> Self {
        self.specs = Some(specs);
        self
    }
    /// Sends the template's stdin to `/dev/zero` and its output to
    /// `/dev/null` (`LXC_CREATE_QUIET`).
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }
    builder_args!(
        "the template (what follows `--` in `lxc-create`); liblxc also writes them into the new \
         configuration's header comment, so `create` refuses one with a line break or another \
         control character"
    );

    pub(crate) fn flags(&self) -> i32 {
        if self.quiet {
            sys::LXC_CREATE_QUIET as i32
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backing_store_names() {
        for b in [
            BackingStore::Dir,
            BackingStore::Btrfs,
            BackingStore::Zfs,
            BackingStore::Lvm,
            BackingStore::Overlay,
            BackingStore::Loop,
            BackingStore::Rbd,
            BackingStore::Best,
        ] {
            assert_eq!(b.as_str().parse::<BackingStore>().unwrap(), b);
        }
        // liblxc's other spelling, in configurations and `lxc-create -B`.
        assert_eq!("overlayfs".parse::<BackingStore>().unwrap(), BackingStore::Overlay);
        assert!("ext4".parse::<BackingStore>().is_err());
    }
}
