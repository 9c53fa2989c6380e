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
    /// `LXC_CACHE_PATH` for the template (the `download` template's cache).
    pub(crate) cache_dir: Option<PathBuf>,
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

    /// The create of a [`DownloadOptions`] image: the `download` template
    /// with its arguments, and its cache directory for the template's
    /// environment (`LXC_CACHE_PATH`).
    ///
    /// Refused with [`Error::Unsupported`] before anything runs: a
    /// keyserver or `no_validate` where the installed template has neither
    /// (liblxc 4.0.12 and later validate no signature), a template that
    /// validates (4.0.0 to 4.0.11) without `gpg` and without `no_validate`,
    /// and a machine without `wget`: the template requires these even to
    /// use its cache.
    ///
    /// ```no_run
    /// use lxc::{Container, CreateOptions, DownloadOptions};
    /// # fn main() -> Result<(), lxc::Error> {
    /// let opts = DownloadOptions::new("debian", "bookworm").variant("default");
    /// Container::new("deb1")?.create(&CreateOptions::download(&opts)?)?;
    /// # Ok(()) }
    /// ```
    pub fn download(opts: &DownloadOptions) -> Result<CreateOptions> {
        image_word("distribution", &opts.dist)?;
        image_word("release", &opts.release)?;
        image_word("architecture", &opts.arch)?;
        opts.variant.as_deref().map(|v| image_word("variant", v)).transpose()?;
        // Both become words of the template's command line.
        let plain = |what: &'static str, v: &str, also: &[u8], reason: &'static str| {
            let ok = !v.is_empty()
                && !v.starts_with('-')
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b) || also.contains(&b));
            if ok {
                Ok(())
            } else {
                Err(Error::invalid(what, v, reason))
            }
        };
        if let Some(s) = &opts.server {
            plain("image server", s, b"", "is not a host name or address with an optional port")?;
        }
        if let Some(k) = &opts.keyserver {
            plain("keyserver", k, b"/", "is not a host name or URL")?;
        }
        // liblxc 4.0.0 to 4.0.11's template validates a fetched image
        // with GPG (and requires gpg even to use its cache); 4.0.12 and
        // later rely on HTTPS alone and take neither option.
        let validates = download_template().is_some_and(|t| t.contains("no-validate"));
        if (opts.keyserver.is_some() || opts.no_validate) && !validates {
            return Err(Error::Unsupported {
                op: "create",
                reason:
                    "this liblxc's download template (4.0.12 and later) validates no signature and has no \
                         --keyserver or --no-validate",
            });
        }
        if validates && !opts.no_validate && !on_template_path("gpg") {
            return Err(Error::Unsupported {
                op: "create",
                reason: "this liblxc's download template (before 4.0.12) needs gpg to validate images, even \
                         for one in its cache: install gpg, or set no_validate",
            });
        }
        if !on_template_path("wget") {
            return Err(Error::Unsupported {
                op: "create",
                reason: "the download template needs wget on PATH, even for an image in its cache",
            });
        }
        let mut args = vec![
            "--dist".to_owned(),
            opts.dist.clone(),
            "--release".to_owned(),
            opts.release.clone(),
            "--arch".to_owned(),
            opts.arch.clone(),
        ];
        if let Some(v) = &opts.variant {
            args.extend(["--variant".to_owned(), v.clone()]);
        }
        if let Some(s) = &opts.server {
            args.extend(["--server".to_owned(), s.clone()]);
        }
        if let Some(k) = &opts.keyserver {
            args.extend(["--keyserver".to_owned(), k.clone()]);
        }
        if opts.no_validate {
            args.push("--no-validate".to_owned());
        }
        if opts.force_cache {
            args.push("--force-cache".to_owned());
        }
        if opts.flush_cache {
            args.push("--flush-cache".to_owned());
        }
        let mut c = CreateOptions::new().template("download").args(args);
        // The template runs elsewhere than the caller (another working
        // directory): an absolute path.
        c.cache_dir = match &opts.cache_dir {
            Some(d) => Some(
                std::path::absolute(d)
                    .map_err(|source| Error::Io { op: "the download cache directory", source })?,
            ),
            None => None,
        };
        Ok(c)
    }

    pub(crate) fn flags(&self) -> i32 {
        if self.quiet {
            sys::LXC_CREATE_QUIET as i32
        } else {
            0
        }
    }
}

/// Checks one part of an image's name (also the `download` template's
/// `--dist`, `--release`, `--arch`, `--variant`): it becomes a directory
/// name and a shell word of the template.
pub(crate) fn image_word(what: &'static str, s: &str) -> Result<String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && !s.starts_with(['.', '-'])
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Error::invalid(what, s, "must be 1 to 64 of A-Z a-z 0-9 . _ + -, not starting with . or -"))
    }
}

/// The text of the `download` template liblxc runs (`lxc-download` in its
/// template directory: `DATADIR/lxc/templates`, the data directory beside
/// the library this process loaded, else `/usr` or `/usr/local`'s).
fn download_template() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let lib = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.rsplit('/').next().is_some_and(|f| f.starts_with("liblxc.so")));
    // `PREFIX/lib/...liblxc.so.1` (or lib64, lib/x86_64-linux-gnu).
    let prefix = lib.and_then(|p| p.rfind("/lib/").or_else(|| p.rfind("/lib64/")).map(|i| &p[..i]));
    let dirs = prefix.into_iter().map(str::to_owned).chain(["/usr".to_owned(), "/usr/local".to_owned()]);
    dirs.map(|d| format!("{d}/share/lxc/templates/lxc-download"))
        .find_map(|f| std::fs::read_to_string(f).ok())
}

/// Whether `program` is an executable file in a directory of `PATH` or of
/// what the templates append to it (`/usr/sbin:/usr/bin:/sbin:/bin`).
fn on_template_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from)).any(
        |d| {
            std::fs::metadata(d.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        },
    )
}

/// What the `download` template is to fetch, and from where
/// ([`CreateOptions::download`]); go-lxc's `TemplateOptions`.
///
/// ```
/// use lxc::DownloadOptions;
/// let opts = DownloadOptions::new("alpine", "3.20").arch("amd64").force_cache(true);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DownloadOptions {
    dist: String,
    release: String,
    arch: String,
    variant: Option<String>,
    server: Option<String>,
    keyserver: Option<String>,
    no_validate: bool,
    force_cache: bool,
    flush_cache: bool,
    cache_dir: Option<PathBuf>,
}

impl DownloadOptions {
    /// Distribution `dist`, release `release`, for this machine's
    /// architecture in the image server's names (`amd64`, `arm64`, ...).
    pub fn new(dist: &str, release: &str) -> DownloadOptions {
        DownloadOptions {
            dist: dist.to_owned(),
            release: release.to_owned(),
            arch: host_image_arch(),
            variant: None,
            server: None,
            keyserver: None,
            no_validate: false,
            force_cache: false,
            flush_cache: false,
            cache_dir: None,
        }
    }
    /// The architecture (`--arch`).
    pub fn arch(mut self, arch: &str) -> Self {
        self.arch = arch.to_owned();
        self
    }
    /// The variant (`--variant`; the template's default is `default`).
    pub fn variant(mut self, variant: &str) -> Self {
        self.variant = Some(variant.to_owned());
        self
    }
    /// The image server (`--server`; default `images.linuxcontainers.org`).
    pub fn server(mut self, server: &str) -> Self {
        self.server = Some(server.to_owned());
        self
    }
    /// A GPG keyserver (`--keyserver`): liblxc 4.0.0 to 4.0.11's template
    /// only; [`CreateOptions::download`] refuses it with later ones.
    pub fn keyserver(mut self, keyserver: &str) -> Self {
        self.keyserver = Some(keyserver.to_owned());
        self
    }
    /// Skip GPG validation (`--no-validate`): liblxc 4.0.0 to 4.0.11's
    /// template only, which otherwise needs `gpg` even for a cached image;
    /// [`CreateOptions::download`] refuses it with later ones.
    pub fn no_validate(mut self, no_validate: bool) -> Self {
        self.no_validate = no_validate;
        self
    }
    /// Use the cached image even if it has expired (`--force-cache`).
    pub fn force_cache(mut self, force: bool) -> Self {
        self.force_cache = force;
        self
    }
    /// Drop the cached image first (`--flush-cache`).
    pub fn flush_cache(mut self, flush: bool) -> Self {
        self.flush_cache = flush;
        self
    }
    /// The template's cache directory (`LXC_CACHE_PATH`, set for the
    /// template alone; default `/var/cache/lxc`, or `~/.cache/lxc` for an
    /// unprivileged user).
    pub fn cache_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cache_dir = Some(dir.as_ref().to_owned());
        self
    }
}

/// The image architecture name of this machine, as the image server uses
/// it (`amd64`, `arm64`, `i386`, `armhf`, `ppc64el`; the kernel's name for
/// others, such as `s390x` and `riscv64`).
pub fn host_image_arch() -> String {
    let machine = rustix::system::uname().machine().to_string_lossy().into_owned();
    match machine.as_str() {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i486" | "i586" | "i686" => "i386",
        "armv7l" | "armv8l" => "armhf",
        "ppc64le" => "ppc64el",
        other => other,
    }
    .to_owned()
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
