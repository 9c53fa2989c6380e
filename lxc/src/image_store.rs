//! A local image store in the image server's layout, and the `download`
//! template's cache primed from it (feature `image`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::create::image_word;
use crate::error::{Error, Result};
use crate::image::{Image, META_FILE, ROOTFS_FILE};

/// Which image: distribution, release, architecture and variant, as the
/// image server and the `download` template name them
/// (`busybox/1.36/amd64/default`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageKey {
    dist: String,
    release: String,
    arch: String,
    variant: String,
}

impl ImageKey {
    /// The key of `dist` `release` for `arch`, variant `default`. Each part
    /// is 1 to 64 of `A-Z a-z 0-9 . _ + -`, not starting with `.` or `-`.
    pub fn new(dist: &str, release: &str, arch: &str) -> Result<ImageKey> {
        ImageKey::with_variant(dist, release, arch, "default")
    }

    /// [`ImageKey::new`] with another variant.
    pub fn with_variant(dist: &str, release: &str, arch: &str, variant: &str) -> Result<ImageKey> {
        Ok(ImageKey {
            dist: image_word("distribution", dist)?,
            release: image_word("release", release)?,
            arch: image_word("architecture", arch)?,
            variant: image_word("variant", variant)?,
        })
    }

    /// The distribution.
    pub fn dist(&self) -> &str {
        &self.dist
    }
    /// The release.
    pub fn release(&self) -> &str {
        &self.release
    }
    /// The architecture.
    pub fn arch(&self) -> &str {
        &self.arch
    }
    /// The variant.
    pub fn variant(&self) -> &str {
        &self.variant
    }

    /// `dist/release/arch/variant`.
    fn rel(&self) -> PathBuf {
        [&self.dist, &self.release, &self.arch, &self.variant].iter().collect()
    }
}

impl std::fmt::Display for ImageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}/{}", self.dist, self.release, self.arch, self.variant)
    }
}

/// One image in an [`ImageStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// Which image.
    pub key: ImageKey,
    /// Its build (when it was imported, `YYYYMMDD_HHMMSS` in UTC).
    pub build: String,
    /// Its archives.
    pub image: Image,
}

/// A directory of images laid out as the image server's:
/// `images/DIST/RELEASE/ARCH/VARIANT/BUILD/{meta,rootfs}.tar.xz` and the
/// index `meta/1.0/index-system` (`dist;release;arch;variant;build;path`),
/// so that the `download` template can also fetch from it when it is
/// served over HTTP (`--server`). One build per image: an import replaces
/// the older one. Changes take a lock on the store (`flock` of `.lock`).
///
/// ```no_run
/// use lxc::{Container, CreateOptions, DownloadOptions, ExportOptions, ImageKey, ImageStore};
/// # fn main() -> Result<(), lxc::Error> {
/// let store = ImageStore::open("/srv/images")?;
/// let key = ImageKey::new("busybox", "web-1.0", "amd64")?;
/// let image = Container::new("base")?.export_image("/tmp/base-image", ExportOptions::new())?;
/// store.import(&key, &image)?;
/// // Offline: the download template takes the image from its cache.
/// store.prime_download_cache(&key, "/var/cache/lxc")?;
/// let opts = DownloadOptions::new("busybox", "web-1.0").arch("amd64").cache_dir("/var/cache/lxc");
/// Container::new("web1")?.create(&CreateOptions::download(&opts)?)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    /// The store in `root`, made if missing (not through a symbolic link).
    pub fn open(root: impl AsRef<Path>) -> Result<ImageStore> {
        let root = root.as_ref();
        real_dir("image store", root)?;
        let root =
            fs::canonicalize(root).map_err(|source| Error::Io { op: "open the image store", source })?;
        Ok(ImageStore { root })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Copies `image` into the store as `key`, replacing the build there.
    pub fn import(&self, key: &ImageKey, image: &Image) -> Result<StoredImage> {
        let io_err = |op| move |source| Error::Io { op, source };
        let _lock = self.lock()?;
        let dir = self.root.join("images").join(key.rel());
        // Each level a real directory: a link planted in the store must not
        // lead the clean-up below elsewhere.
        real_dirs(&self.root, &dir)?;
        let mut build = build_id(SystemTime::now());
        let mut n = 1;
        while dir.join(&build).exists() {
            n += 1;
            build = format!("{}-{n}", build.split('-').next().unwrap_or_default());
        }
        let stage = dir.join(format!(".{build}.partial"));
        let _ = fs::remove_dir_all(&stage);
        fs::create_dir(&stage).map_err(io_err("make the image's directory"))?;
        let copied = fs::copy(image.meta_path(), stage.join(META_FILE))
            .and_then(|_| fs::copy(image.rootfs_path(), stage.join(ROOTFS_FILE)))
            .and_then(|_| fs::rename(&stage, dir.join(&build)));
        if let Err(e) = copied {
            let _ = fs::remove_dir_all(&stage);
            return Err(io_err("copy the image into the store")(e));
        }
        // The older builds go.
        for e in fs::read_dir(&dir).map_err(io_err("read the image's directory"))?.flatten() {
            if e.file_name() != *build.as_str() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        self.write_index()?;
        Ok(StoredImage { key: key.clone(), image: Image::open(dir.join(&build))?, build })
    }

    /// The images in the store, sorted by key.
    pub fn list(&self) -> Result<Vec<StoredImage>> {
        let mut out = Vec::new();
        let images = self.root.join("images");
        let sub = |p: &Path| -> Vec<(String, PathBuf)> {
            let mut v: Vec<(String, PathBuf)> = fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
                .filter(|(n, _)| !n.starts_with('.'))
                .collect();
            v.sort();
            v
        };
        for (dist, p1) in sub(&images) {
            for (release, p2) in sub(&p1) {
                for (arch, p3) in sub(&p2) {
                    for (variant, p4) in sub(&p3) {
                        let Ok(key) = ImageKey::with_variant(&dist, &release, &arch, &variant) else {
                            continue;
                        };
                        if let Some((build, p5)) = sub(&p4).pop() {
                            if let Ok(image) = Image::open(&p5) {
                                out.push(StoredImage { key, build, image });
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The image `key`, if the store has it.
    pub fn get(&self, key: &ImageKey) -> Result<Option<StoredImage>> {
        Ok(self.list()?.into_iter().find(|s| s.key == *key))
    }

    /// Removes the image `key`; whether there was one.
    pub fn remove(&self, key: &ImageKey) -> Result<bool> {
        let _lock = self.lock()?;
        let dir = self.root.join("images").join(key.rel());
        let existed = fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir());
        if existed {
            real_dirs(&self.root, &dir)?;
            fs::remove_dir_all(&dir).map_err(|source| Error::Io { op: "remove the image", source })?;
            // Empty parents up to `images` go too.
            let mut p = dir.parent();
            while let Some(d) = p {
                if d == self.root.join("images") || fs::remove_dir(d).is_err() {
                    break;
                }
                p = d.parent();
            }
        }
        self.write_index()?;
        Ok(existed)
    }

    /// Puts the image `key` into the `download` template's cache under
    /// `cache_root` (its `LXC_CACHE_PATH`; `/var/cache/lxc` for root by
    /// default): `download/DIST/RELEASE/ARCH/VARIANT/` with `rootfs.tar.xz`,
    /// the metadata unpacked and `build_id`, replacing what was there. A
    /// create with [`CreateOptions::download`](crate::CreateOptions::download)
    /// then uses it without the network while the image's `expiry` is in
    /// the future (or it has none), or always with
    /// [`DownloadOptions::force_cache`](crate::DownloadOptions::force_cache).
    /// Returns the cache directory of the image.
    pub fn prime_download_cache(&self, key: &ImageKey, cache_root: impl AsRef<Path>) -> Result<PathBuf> {
        let io_err = |op| move |source| Error::Io { op, source };
        let stored =
            self.get(key)?.ok_or_else(|| Error::invalid("image", key.to_string(), "is not in the store"))?;
        let cache_root = cache_root.as_ref();
        if cache_root.as_os_str().is_empty() {
            return Err(Error::invalid("download cache", "", "must be a non-empty path"));
        }
        real_dir("download cache", cache_root)?;
        let parent = cache_root.join("download").join(&key.dist).join(&key.release).join(&key.arch);
        real_dirs(cache_root, &parent)?;
        let dest = parent.join(&key.variant);
        // One priming of this image's cache at a time (threads and
        // processes): a lock on the directory above it.
        let lock = fs::File::open(&parent).map_err(io_err("open the cache directory"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err("lock the cache directory")(e.into()))?;
        let pid = std::process::id();
        let stage = parent.join(format!(".{}.partial-{pid}", key.variant));
        let _ = fs::remove_dir_all(&stage);
        fs::create_dir(&stage).map_err(io_err("make the cache directory"))?;
        let filled = (|| -> Result<()> {
            fs::copy(stored.image.rootfs_path(), stage.join(ROOTFS_FILE))
                .map_err(io_err("copy the rootfs archive"))?;
            for (name, data) in crate::image::read_meta(stored.image.meta_path())? {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                // As private as the archives.
                fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(stage.join(name))
                    .and_then(|mut f| f.write_all(&data))
                    .map_err(io_err("unpack the metadata"))?;
            }
            fs::write(stage.join("build_id"), format!("{}\n", stored.build)).map_err(io_err("write build_id"))
        })();
        if let Err(e) = filled {
            let _ = fs::remove_dir_all(&stage);
            return Err(e);
        }
        let old = parent.join(format!(".{}.old-{pid}", key.variant));
        let _ = fs::remove_dir_all(&old);
        let had = fs::rename(&dest, &old).is_ok();
        if let Err(e) = fs::rename(&stage, &dest) {
            // The cache as it was.
            let _ = fs::remove_dir_all(&stage);
            if had {
                let _ = fs::rename(&old, &dest);
            }
            return Err(io_err("put the cache directory in place")(e));
        }
        if had {
            let _ = fs::remove_dir_all(&old);
        }
        Ok(dest)
    }

    /// An exclusive lock on the store, held until dropped.
    fn lock(&self) -> Result<fs::File> {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(".lock"))
            .map_err(|source| Error::Io { op: "lock the image store", source })?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::Io { op: "lock the image store", source: e.into() })?;
        Ok(f)
    }

    /// Rewrites `meta/1.0/index-system` from the images present.
    fn write_index(&self) -> Result<()> {
        let mut index = String::new();
        for s in self.list()? {
            let k = &s.key;
            index.push_str(&format!(
                "{};{};{};{};{};/images/{}/{}/{}/{}/{}/\n",
                k.dist, k.release, k.arch, k.variant, s.build, k.dist, k.release, k.arch, k.variant, s.build
            ));
        }
        let dir = self.root.join("meta/1.0");
        let io_err = |source| Error::Io { op: "write the store's index", source };
        fs::create_dir_all(&dir).map_err(io_err)?;
        let tmp = dir.join(format!(".index-system.{}", std::process::id()));
        fs::write(&tmp, index).map_err(io_err)?;
        fs::rename(&tmp, dir.join("index-system")).map_err(io_err)
    }
}

/// `path` is a directory, made if missing, and not a symbolic link.
pub(crate) fn real_dir(what: &'static str, path: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            Err(Error::invalid(what, path.as_os_str().as_bytes(), "is a symbolic link"))
        }
        Ok(m) if !m.is_dir() => Err(Error::invalid(what, path.as_os_str().as_bytes(), "is not a directory")),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(path).map_err(|source| Error::Io { op: "make a directory", source })
        }
        Err(source) => Err(Error::Io { op: "look at a directory", source }),
    }
}

/// Every directory from `base` (excluded) down to `path` is a real
/// directory, made if missing.
pub(crate) fn real_dirs(base: &Path, path: &Path) -> Result<()> {
    let rel = path.strip_prefix(base).unwrap_or(path);
    let mut p = base.to_path_buf();
    for c in rel.components() {
        p.push(c);
        real_dir("download cache", &p)?;
    }
    Ok(())
}

/// `YYYYMMDD_HHMMSS` (UTC) of `t`.
fn build_id(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}_{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn build_ids_are_utc_dates() {
        assert_eq!(build_id(UNIX_EPOCH), "19700101_000000");
        assert_eq!(build_id(UNIX_EPOCH + Duration::from_secs(1_795_996_800 + 3723)), "20261130_010203");
        assert_eq!(build_id(UNIX_EPOCH + Duration::from_secs(951_782_400)), "20000229_000000");
    }

    #[test]
    fn image_words_are_checked() {
        assert!(ImageKey::new("busybox", "1.36", "amd64").is_ok());
        for bad in ["", "a/b", "..", ".x", "-x", "a b", "a\nb", &"x".repeat(65)] {
            assert!(ImageKey::new(bad, "1", "amd64").is_err(), "{bad:?}");
        }
        assert_eq!(ImageKey::with_variant("d", "r", "a", "v").unwrap().to_string(), "d/r/a/v");
    }
}
