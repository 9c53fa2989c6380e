//! Images in LXC's own format: what the image server publishes and the
//! `download` and `local` templates unpack (feature `image`).
//!
//! An image is two xz-compressed tar archives:
//! - `meta.tar.xz`: `config` (the distribution's configuration, with the
//!   `LXC_NAME`, `LXC_PATH`, `LXC_ROOTFS` and `LXC_TEMPLATE_CONFIG`
//!   placeholders the templates substitute), `templates` (files of the root
//!   filesystem in which the templates substitute them), `excludes-user`
//!   (members an unprivileged create leaves out: device nodes it cannot
//!   make), `create-message` and `expiry` (seconds since the epoch), and
//!   `fstab` when the container had one;
//! - `rootfs.tar.xz`: the root filesystem, members named `./...`, numeric
//!   owners as the container sees them.
//!
//! [`Container::export_image`] writes one from a stopped container,
//! [`CreateOptions::image`] creates a container from one (the `local`
//! template), and [`ImageStore`] keeps images in the image server's layout
//! and primes the `download` template's cache from them, so that
//! [`CreateOptions::download`] works with no network.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{FileType, Mode, OFlags};

use crate::container::Container;
use crate::create::CreateOptions;
use crate::error::{Error, Result};
use crate::state::State;

/// The name of the metadata archive in an image's directory.
pub const META_FILE: &str = "meta.tar.xz";
/// The name of the root filesystem archive in an image's directory.
pub const ROOTFS_FILE: &str = "rootfs.tar.xz";

/// How long an exported image stays fresh by default: the `download`
/// template uses a cached image without asking the server until then
/// (distrobuilder's default, too).
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(30 * 24 * 3600);

/// How far an export has come, handed to [`ExportOptions::progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportProgress {
    /// Bytes of file content archived so far.
    pub bytes_done: u64,
    /// Bytes of file content to archive in all (the regular files that are
    /// not excluded, as the first pass over the root filesystem found them).
    pub bytes_total: u64,
}

/// How to export a container to an image ([`Container::export_image`]).
///
/// ```
/// use std::time::Duration;
/// use lxc::ExportOptions;
/// let opts = ExportOptions::new()
///     .exclude("./var/cache/*")
///     .template_file("/etc/hostname")
///     .create_message("A web server; see /srv/README.")
///     .expires_in(Duration::from_secs(7 * 24 * 3600))
///     .progress(|p| eprint!("\r{} / {} bytes", p.bytes_done, p.bytes_total));
/// # let _ = opts;
/// ```
pub struct ExportOptions<'cb> {
    excludes: Vec<String>,
    excludes_user: Vec<String>,
    templates: Vec<String>,
    create_message: Option<String>,
    expiry: Option<SystemTime>,
    level: u32,
    threads: Option<u32>,
    mode: u32,
    progress: Option<Box<dyn FnMut(ExportProgress) + 'cb>>,
}

impl std::fmt::Debug for ExportOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportOptions")
            .field("excludes", &self.excludes)
            .field("excludes_user", &self.excludes_user)
            .field("templates", &self.templates)
            .field("create_message", &self.create_message)
            .field("expiry", &self.expiry)
            .field("level", &self.level)
            .field("threads", &self.threads)
            .field("mode", &self.mode)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Default for ExportOptions<'_> {
    fn default() -> Self {
        ExportOptions {
            excludes: Vec::new(),
            excludes_user: Vec::new(),
            templates: Vec::new(),
            create_message: None,
            expiry: SystemTime::now().checked_add(DEFAULT_EXPIRY),
            level: 6,
            threads: None,
            mode: 0o600,
            progress: None,
        }
    }
}

impl<'cb> ExportOptions<'cb> {
    /// The defaults: nothing excluded but what an unprivileged create
    /// cannot make, no template files, no message, expiry in
    /// [`DEFAULT_EXPIRY`], xz level 6 on every CPU.
    pub fn new() -> Self {
        Self::default()
    }
    /// Leaves out of the image the members matching `pattern`, a tar-style
    /// pattern anchored at the root (`./var/cache/*`; `*` also matches `/`,
    /// and a directory that matches is left out with all it holds). A
    /// pattern without a leading `./` gets one (`var/log/*`, `/var/log/*`).
    pub fn exclude(mut self, pattern: &str) -> Self {
        self.excludes.push(anchored(pattern));
        self
    }
    /// Adds `pattern` to the image's `excludes-user`: members that a
    /// create by an unprivileged user leaves out (device nodes are listed
    /// there without asking).
    pub fn exclude_for_unprivileged(mut self, pattern: &str) -> Self {
        self.excludes_user.push(anchored(pattern));
        self
    }
    /// Lists `path` (in the root filesystem, e.g. `/etc/hostname`) in the
    /// image's `templates`: a create substitutes `LXC_NAME`, `LXC_PATH`,
    /// `LXC_ROOTFS` in it. In the exported copy, the container's name where
    /// it stands as a word becomes `LXC_NAME`. The export refuses a path
    /// that is not absolute, has other characters than
    /// `A-Z a-z 0-9 . _ + @ % = , : / -`, or is not a regular file of the
    /// root filesystem under real directories (the templates follow links).
    pub fn template_file(mut self, path: &str) -> Self {
        self.templates.push(path.to_owned());
        self
    }
    /// The message a create prints after unpacking (`create-message`).
    pub fn create_message(mut self, message: &str) -> Self {
        self.create_message = Some(message.to_owned());
        self
    }
    /// The image's expiry: `download` fetches a cached image again after it.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expiry = Some(at);
        self
    }
    /// The image's expiry, `after` from now.
    pub fn expires_in(mut self, after: Duration) -> Self {
        self.expiry = SystemTime::now().checked_add(after);
        self
    }
    /// No `expiry` file: a cached copy never expires.
    pub fn never_expires(mut self) -> Self {
        self.expiry = None;
        self
    }
    /// The xz preset, 0 (fastest) to 9 (smallest); default 6.
    pub fn compression_level(mut self, level: u32) -> Self {
        self.level = level;
        self
    }
    /// The archives' permission bits (default 0600; an unprivileged user's
    /// creates from the image read them as a mapped id of the user).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }
    /// How many threads compress (default: one per CPU).
    pub fn threads(mut self, threads: u32) -> Self {
        self.threads = Some(threads.max(1));
        self
    }
    /// Called as the root filesystem is archived (about every 256 KiB and
    /// at the end), on the exporting thread.
    pub fn progress(mut self, f: impl FnMut(ExportProgress) + 'cb) -> Self {
        self.progress = Some(Box::new(f));
        self
    }
}

/// `pattern` anchored at the archive's root: `./` in front.
fn anchored(pattern: &str) -> String {
    if pattern.starts_with("./") || pattern == "." {
        pattern.to_owned()
    } else {
        format!("./{}", pattern.trim_start_matches('/'))
    }
}

/// An image in LXC's format: its metadata and root filesystem archives.
///
/// ```no_run
/// use lxc::{Container, CreateOptions, Image};
/// # fn main() -> Result<(), lxc::Error> {
/// let image = Image::open("/srv/images/web")?; // meta.tar.xz, rootfs.tar.xz
/// let c = Container::new("web1")?;
/// c.create(&CreateOptions::image(&image))?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    meta: PathBuf,
    rootfs: PathBuf,
}

impl Image {
    /// The image in directory `dir` ([`META_FILE`] and [`ROOTFS_FILE`]).
    pub fn open(dir: impl AsRef<Path>) -> Result<Image> {
        let dir = dir.as_ref();
        Image::from_files(dir.join(META_FILE), dir.join(ROOTFS_FILE))
    }

    /// The image made of these two archives. Both must be regular files
    /// (not symbolic links) with UTF-8 paths (the `local` template takes
    /// them as arguments).
    pub fn from_files(meta: impl AsRef<Path>, rootfs: impl AsRef<Path>) -> Result<Image> {
        let check = |what: &'static str, p: &Path| -> Result<PathBuf> {
            let m = fs::symlink_metadata(p).map_err(|source| Error::Io { op: what, source })?;
            if !m.file_type().is_file() {
                return Err(Error::invalid(what, p.as_os_str().as_bytes(), "is not a regular file"));
            }
            let p = fs::canonicalize(p).map_err(|source| Error::Io { op: what, source })?;
            if p.to_str().is_none_or(|s| s.chars().any(char::is_control)) {
                return Err(Error::invalid(
                    what,
                    p.as_os_str().as_bytes(),
                    "is not a path in UTF-8 without control characters",
                ));
            }
            Ok(p)
        };
        Ok(Image {
            meta: check("image metadata", meta.as_ref())?,
            rootfs: check("image rootfs", rootfs.as_ref())?,
        })
    }

    /// The metadata archive.
    pub fn meta_path(&self) -> &Path {
        &self.meta
    }

    /// The root filesystem archive.
    pub fn rootfs_path(&self) -> &Path {
        &self.rootfs
    }

    /// What the metadata archive holds.
    pub fn metadata(&self) -> Result<ImageMetadata> {
        let files = read_meta(&self.meta)?;
        Ok(ImageMetadata::from_files(&files))
    }
}

/// The files of an image's metadata archive ([`Image::metadata`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageMetadata {
    /// `config`: the distribution's configuration.
    pub config: String,
    /// `templates`: files of the root filesystem the templates fill in.
    pub templates: Vec<String>,
    /// `excludes-user`: members an unprivileged create leaves out.
    pub excludes_user: Vec<String>,
    /// `create-message`.
    pub create_message: Option<String>,
    /// `expiry`.
    pub expiry: Option<SystemTime>,
}

impl ImageMetadata {
    fn from_files(files: &[(String, Vec<u8>)]) -> Self {
        let text = |name: &str| {
            files.iter().find(|(n, _)| n == name).map(|(_, d)| String::from_utf8_lossy(d).into_owned())
        };
        let lines = |name: &str| -> Vec<String> {
            text(name)
                .map(|t| t.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        ImageMetadata {
            config: text("config").unwrap_or_default(),
            templates: lines("templates"),
            excludes_user: lines("excludes-user"),
            create_message: text("create-message"),
            expiry: text("expiry")
                .and_then(|t| t.trim().parse::<u64>().ok())
                .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s))),
        }
    }
}

/// The most a metadata archive may unpack to: it holds a few small files.
const MAX_META: u64 = 16 << 20;

/// The regular files at the top of a metadata archive (`config` or
/// `./config`), with their contents. Anything else (directories, links,
/// nested paths) is skipped.
pub(crate) fn read_meta(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let io_err = |source| Error::Io { op: "read image metadata", source };
    let file = File::open(path).map_err(io_err)?;
    let xz = liblzma::read::XzDecoder::new_multi_decoder(io::BufReader::new(file));
    let mut archive = tar::Archive::new(xz.take(MAX_META));
    let mut files = Vec::new();
    for entry in archive.entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let name = raw.strip_prefix(b"./").unwrap_or(&raw);
        if name.is_empty() || name.contains(&b'/') || name.starts_with(b".") {
            continue;
        }
        let Ok(name) = String::from_utf8(name.to_vec()) else {
            continue;
        };
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(io_err)?;
        files.push((name, data));
    }
    Ok(files)
}

impl CreateOptions {
    /// Creates from a local image: the `local` template with `--metadata`
    /// and `--fstree` (liblxc 4.0 and later ship it).
    pub fn image(image: &Image) -> CreateOptions {
        // Both paths were checked as UTF-8 by `Image`.
        CreateOptions::new().template("local").args([
            "--metadata",
            &image.meta.to_string_lossy(),
            "--fstree",
            &image.rootfs.to_string_lossy(),
        ])
    }
}

// ----- export ---------------------------------------------------------------

/// One `lxc.idmap` line: kind (`u` or `g`), first id in the container,
/// first id on the host, count.
type IdRange = (u32, u32, u32);

/// The container's id mappings, host ids to the ids the container sees.
#[derive(Debug, Default)]
struct IdMap {
    uids: Vec<IdRange>,
    gids: Vec<IdRange>,
    overflow: (u32, u32),
}

impl IdMap {
    fn parse(lines: &[String]) -> Result<IdMap> {
        let mut map = IdMap { overflow: overflow_ids(), ..IdMap::default() };
        for line in lines {
            let f: Vec<&str> = line.split_whitespace().collect();
            let parsed = match f.as_slice() {
                [kind @ ("u" | "g" | "b"), ns, host, count] => {
                    match (ns.parse::<u32>(), host.parse::<u32>(), count.parse::<u32>()) {
                        (Ok(ns), Ok(host), Ok(count)) => Some((*kind, (ns, host, count))),
                        _ => None,
                    }
                }
                _ => None,
            };
            let Some((kind, range)) = parsed else {
                return Err(Error::invalid("lxc.idmap entry", line, "is not \"u|g|b NSID HOSTID COUNT\""));
            };
            if kind != "g" {
                map.uids.push(range);
            }
            if kind != "u" {
                map.gids.push(range);
            }
        }
        Ok(map)
    }

    fn is_empty(&self) -> bool {
        self.uids.is_empty() && self.gids.is_empty()
    }

    fn lookup(ranges: &[IdRange], host: u32, overflow: u32) -> u32 {
        if ranges.is_empty() {
            return host;
        }
        ranges
            .iter()
            .find(|&&(_, h, n)| host >= h && u64::from(host) < u64::from(h) + u64::from(n))
            .map_or(overflow, |&(ns, h, _)| ns.checked_add(host - h).unwrap_or(overflow))
    }

    /// The ids the container sees for host ids `uid`, `gid` (the overflow
    /// ids for ids it has no mapping of, as the kernel shows them).
    fn to_container(&self, uid: u32, gid: u32) -> (u32, u32) {
        (Self::lookup(&self.uids, uid, self.overflow.0), Self::lookup(&self.gids, gid, self.overflow.1))
    }
}

/// The kernel's overflow uid and gid (65534 unless changed).
fn overflow_ids() -> (u32, u32) {
    let read = |f: &str| fs::read_to_string(f).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(65534);
    (read("/proc/sys/kernel/overflowuid"), read("/proc/sys/kernel/overflowgid"))
}

/// The directory of a root filesystem the crate can read in place: the
/// `dir` and `btrfs` backing stores (`dir:/p`, `btrfs:/p` or a plain path).
fn rootfs_dir(value: &str) -> Result<PathBuf> {
    let path = match value.split_once(':') {
        Some(("dir" | "btrfs", p)) => p,
        Some((store, _)) if !value.starts_with('/') => {
            return Err(Error::Unsupported {
                op: "export_image",
                reason: match store {
                    "overlay" | "overlayfs" => "the root filesystem is an overlay: export the container it was copied from, or a full copy",
                    _ => "only the dir and btrfs backing stores are read in place",
                },
            })
        }
        _ => value,
    };
    if !path.starts_with('/') {
        return Err(Error::invalid("lxc.rootfs.path", value, "is not an absolute path"));
    }
    Ok(PathBuf::from(path))
}

/// The configuration for the image, from the container's file: without
/// what belongs to one container (root filesystem, name, network, id
/// mapping, log, the `fstab` file that travels as its own member), the
/// container's paths turned into the templates' placeholders.
fn image_config(config: &str, lxcpath_dir: &str, rootfs: &str) -> String {
    const DROPPED: [&str; 6] =
        ["lxc.rootfs.path", "lxc.uts.name", "lxc.idmap", "lxc.mount.fstab", "lxc.net.", "lxc.log."];
    let mut out = String::new();
    for line in config.lines() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let key = t.split('=').next().unwrap_or_default().trim();
        if DROPPED.iter().any(|d| if d.ends_with('.') { key.starts_with(d) } else { key == *d }) {
            continue;
        }
        let line = replace_path(&replace_path(t, rootfs, "LXC_ROOTFS"), lxcpath_dir, "LXC_PATH");
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `text` with `path` replaced by `placeholder` where it stands as a whole
/// path or a path's leading directories (followed by `/`, a blank, `:`, a
/// quote or the end): `/l/web` in `/l/web/rootfs`, not in `/l/web2`.
fn replace_path(text: &str, path: &str, placeholder: &str) -> String {
    if path.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(path) {
        let after = &rest[i + path.len()..];
        let before_ok = out.is_empty() && i == 0
            || rest[..i]
                .chars()
                .next_back()
                .or_else(|| out.chars().next_back())
                .is_some_and(|c| " \t=:,\"'".contains(c));
        let whole =
            before_ok && (after.is_empty() || after.starts_with(['/', ' ', '\t', ':', '"', '\'', ',']));
        out.push_str(&rest[..i]);
        out.push_str(if whole { placeholder } else { path });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A member name as a line of `excludes-user`: the templates expand each
/// line unquoted into `--exclude=LINE` (every series 4.0 to 7.0), so a
/// blank would split it into more tar options. Blanks, control and
/// non-ASCII bytes become `?` (any one character), and tar's wildcards
/// are escaped with `\\` (the shell keeps backslashes of an expansion).
fn exclude_line(member: &[u8]) -> String {
    let mut out = String::with_capacity(member.len());
    for &b in member {
        match b {
            b'*' | b'?' | b'[' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x21..=0x7e => out.push(b as char),
            _ => out.push('?'),
        }
    }
    out
}

/// `text` with each standalone occurrence of `name` (not inside a longer
/// word of letters, digits, `-`, `_`, `.`) replaced by `LXC_NAME`.
fn name_to_placeholder(text: &[u8], name: &[u8]) -> Vec<u8> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.';
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if !name.is_empty()
            && text[i..].starts_with(name)
            && (i == 0 || !word(text[i - 1]))
            && text.get(i + name.len()).is_none_or(|&b| !word(b))
        {
            out.extend_from_slice(b"LXC_NAME");
            i += name.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

/// Temporary files of an export (those this call made), removed unless the
/// export succeeds.
struct Partial(Vec<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

/// A new file at `path` that nothing else has (`O_EXCL`), with `mode`,
/// noted in `partial` once made.
fn create_new(path: &Path, mode: u32, partial: &mut Partial) -> io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    partial.0.push(path.to_owned());
    // Exactly `mode`, whatever the umask.
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(f)
}

/// Members the templates write to in every new root filesystem
/// (`mkdir -p "$LXC_ROOTFS/dev/pts/"`; `sed -i` on `etc/init/tty.conf`
/// where it is a file), following links: each, where the root filesystem
/// has it, must be of this kind, or the export is refused.
const GUARDED: [(&[u8], FileType); 5] = [
    (b"./dev", FileType::Directory),
    (b"./dev/pts", FileType::Directory),
    (b"./etc", FileType::Directory),
    (b"./etc/init", FileType::Directory),
    (b"./etc/init/tty.conf", FileType::RegularFile),
];

/// A number for this process's temporary names, new at each call.
fn unique_tag() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(".{}-{n}.partial", std::process::id())
}

/// The contents of the regular file `path`, opened without following a
/// link at its end and without blocking on a FIFO.
fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::RegularFile {
        return Err(io::Error::other("not a regular file"));
    }
    let mut data = Vec::new();
    File::from(fd).take(MAX_META).read_to_end(&mut data)?;
    Ok(data)
}

/// Checks a `template_file` path: absolute, of plain characters only, no
/// `.`, `..` or empty component; its member name (`./etc/hostname`).
fn template_member(path: &str) -> Result<String> {
    // The templates join the paths with `;` and split them again
    // unquoted, with pathname expansion: only plain characters.
    let ok = path.starts_with('/')
        && path.len() > 1
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+@%=,:/-".contains(&b))
        && path[1..].split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(format!(".{path}"))
    } else {
        Err(Error::invalid(
            "template file",
            path,
            "must be an absolute path of A-Z a-z 0-9 . _ + @ % = , : / - without ., .. or empty components",
        ))
    }
}

impl Container {
    /// Exports this stopped container to an image in LXC's format in
    /// directory `dir` (made if missing): [`META_FILE`] and
    /// [`ROOTFS_FILE`], each written beside its final name and renamed over
    /// it, both under a lock on the directory (of exports into the same
    /// directory at once, the last one's pair stays), with mode
    /// [`ExportOptions::mode`]
    /// (0600 by default: the archive holds every file of the container,
    /// including those only its root may read).
    ///
    /// The root filesystem is read in place (`dir` and `btrfs` backing
    /// stores), symbolic links not followed. Owners are stored as numbers,
    /// as the container sees them: through its `lxc.idmap` when it has one
    /// (host ids it does not map become the overflow id), so that an image
    /// of an unprivileged container unpacks anywhere. Device nodes are
    /// listed in `excludes-user`; hard links stay links. Extended
    /// attributes and ACLs are not kept (the templates unpack without
    /// them).
    ///
    /// The configuration in the image is the container's file without
    /// `lxc.rootfs.path`, `lxc.uts.name`, `lxc.net.*`, `lxc.idmap`,
    /// `lxc.log.*` and `lxc.mount.fstab` (the file it names travels as the
    /// image's `fstab`), and with the container's directory and root
    /// filesystem paths turned into `LXC_PATH` and `LXC_ROOTFS`.
    ///
    /// ```no_run
    /// use lxc::{Container, ExportOptions};
    /// # fn main() -> Result<(), lxc::Error> {
    /// let c = Container::new("web")?;
    /// let image = c.export_image("/srv/images/web", ExportOptions::new().template_file("/etc/hostname"))?;
    /// println!("{}", image.rootfs_path().display());
    /// # Ok(()) }
    /// ```
    ///
    /// The container must be stopped ([`Error::WrongState`]); the crate's
    /// starts and destroys of it wait for the export (so a progress
    /// callback that starts or destroys this container, through any handle,
    /// waits for itself: it must not). Creates from the image honour its
    /// `excludes-user` only when unprivileged. An unprivileged caller that
    /// ignores `SIGCHLD` gets [`Error::SigchldIgnored`] for an id-mapped
    /// container (`lxc-usernsexec` could not wait for its own children).
    pub fn export_image(&self, dir: impl AsRef<Path>, mut opts: ExportOptions<'_>) -> Result<Image> {
        let dir = dir.as_ref();
        let _lifecycle = self.lifecycle_lock();
        if !self.is_defined() {
            return Err(self.not_defined("export_image"));
        }
        let state = self.state()?;
        if state != State::Stopped {
            return Err(Error::WrongState {
                op: "export_image",
                container: self.name().to_owned(),
                state,
                expected: "it must be stopped",
            });
        }
        let rootfs_value = self.config_item("lxc.rootfs.path")?.into_string();
        let rootfs = rootfs_dir(&rootfs_value)?;
        let idmap_lines = self.config_item("lxc.idmap")?.into_vec();
        let idmap = IdMap::parse(&idmap_lines)?;
        let config_file = self.config_file_name()?;
        let config_text = fs::read_to_string(&config_file)
            .map_err(|source| Error::Io { op: "read the configuration", source })?;
        let container_dir = config_file.parent().map(Path::to_path_buf).unwrap_or_default();
        let fstab = match self.config_item("lxc.mount.fstab")?.into_string() {
            f if f.is_empty() => None,
            f => Some(
                read_regular(Path::new(&f))
                    .map_err(|source| Error::Io { op: "read lxc.mount.fstab", source })?,
            ),
        };

        if dir.as_os_str().is_empty() || dir.to_str().is_none() {
            return Err(Error::invalid(
                "image directory",
                dir.as_os_str().as_bytes(),
                "must be a non-empty UTF-8 path",
            ));
        }
        crate::image_store::real_dir("image directory", dir)?;
        let excludes = Patterns::new(&opts.excludes)?;
        let templates = opts.templates.iter().map(|t| template_member(t)).collect::<Result<Vec<String>>>()?;
        for p in &opts.excludes_user {
            if p.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(Error::invalid(
                    "exclude pattern for unprivileged creates",
                    p,
                    "has a blank or control character (the templates split their lines on blanks)",
                ));
            }
        }
        let mode = opts.mode;

        let tag = unique_tag();
        let tmp_rootfs = dir.join(format!("{ROOTFS_FILE}{tag}"));
        let tmp_meta = dir.join(format!("{META_FILE}{tag}"));
        let mut partial = Partial(Vec::new());
        let io_err = |op| move |source| Error::Io { op, source };

        // An unprivileged caller cannot read every file of its container
        // (they belong to its subordinate ids): the walk then runs as root
        // of a user namespace with the container's mapping, where the
        // owners read as the container sees them.
        let userns = !crate::container::caller_is_root() && !idmap.is_empty();
        // lxc-usernsexec inherits the disposition, and its wait for
        // newuidmap fails under an ignored SIGCHLD.
        if userns && crate::helper::sigchld_ignored() {
            return Err(Error::SigchldIgnored { op: "export_image" });
        }
        let idmap = if userns { IdMap::default() } else { idmap };
        let walker =
            Walker { rootfs: &rootfs, excludes: &excludes, userns: userns.then_some(&idmap_lines[..]) };
        let mut total = 0u64;
        let mut seen = std::collections::HashSet::new();
        walker
            .walk(false, &mut |e| {
                // A hard link's content is archived once.
                if e.kind == FileType::RegularFile && (e.nlink < 2 || seen.insert((e.dev, e.ino))) {
                    total += e.size;
                }
                Ok(())
            })
            .map_err(io_err("read the root filesystem"))?;

        let out = create_new(&tmp_rootfs, mode, &mut partial).map_err(io_err("create the rootfs archive"))?;
        let mut archive = Archive::new(BufWriter::with_capacity(1 << 20, out), opts.level, opts.threads)?;
        let mut devices = Vec::new();
        let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
        let mut templated: Vec<String> = Vec::new();
        let mut done = 0u64;
        let mut last_report = 0u64;
        let mut progress = opts.progress.take();
        let name = self.name().as_bytes().to_vec();
        let mut guarded: Vec<(&[u8], FileType)> = Vec::new();
        let archived = walker.walk(true, &mut |e| {
            if let Some((m, _)) = GUARDED.iter().find(|(m, _)| *m == e.member.as_slice()) {
                guarded.push((m, e.kind));
            }
            let (uid, gid) = idmap.to_container(e.uid, e.gid);
            let mut h = tar::Header::new_gnu();
            h.set_mode(e.mode & 0o7777);
            h.set_uid(u64::from(uid));
            h.set_gid(u64::from(gid));
            h.set_mtime(e.mtime.max(0) as u64);
            h.set_size(0);
            // Links only between regular files: a device's other names are
            // devices of their own (an unprivileged create leaves each out).
            if e.nlink > 1 && e.kind == FileType::RegularFile {
                if let Some(first) = links.get(&(e.dev, e.ino)) {
                    h.set_entry_type(tar::EntryType::Link);
                    return archive.append(h, &e.member, Some(first), io::empty());
                }
                links.insert((e.dev, e.ino), e.member.clone());
            }
            match e.kind {
                FileType::Directory => {
                    h.set_entry_type(tar::EntryType::Directory);
                    archive.append(h, &e.member, None, io::empty())
                }
                FileType::Symlink => {
                    let target = e.link()?;
                    h.set_entry_type(tar::EntryType::Symlink);
                    archive.append(h, &e.member, Some(&target), io::empty())
                }
                FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                    h.set_entry_type(match e.kind {
                        FileType::CharacterDevice => tar::EntryType::Char,
                        FileType::BlockDevice => tar::EntryType::Block,
                        _ => tar::EntryType::Fifo,
                    });
                    if e.kind != FileType::Fifo {
                        h.set_device_major(rustix::fs::major(e.rdev))?;
                        h.set_device_minor(rustix::fs::minor(e.rdev))?;
                        devices.push(exclude_line(&e.member));
                    }
                    archive.append(h, &e.member, None, io::empty())
                }
                FileType::RegularFile => {
                    h.set_entry_type(tar::EntryType::Regular);
                    let file = e.open()?;
                    if let Some(t) = templates.iter().find(|t| t.as_bytes() == e.member.as_slice()) {
                        // Listed in `templates` only as a regular file
                        // archived under real directories: the templates
                        // follow links there (`sed -i`).
                        templated.push(t.clone());
                        let mut data = Vec::new();
                        file.take(e.size).read_to_end(&mut data)?;
                        let data = name_to_placeholder(&data, &name);
                        h.set_size(data.len() as u64);
                        archive.append(h, &e.member, None, &data[..])?;
                    } else {
                        // Exactly the size in the header, whatever the file
                        // does meanwhile: cut, or padded with zeros.
                        h.set_size(e.size);
                        let data = file.take(e.size).chain(io::repeat(0)).take(e.size);
                        archive.append(h, &e.member, None, data)?;
                    }
                    done += e.size;
                    if let Some(cb) = progress.as_mut() {
                        if done - last_report >= 256 << 10 {
                            last_report = done;
                            cb(ExportProgress { bytes_done: done, bytes_total: total.max(done) });
                        }
                    }
                    Ok(())
                }
                // Sockets are not archived (tar skips them too).
                _ => Ok(()),
            }
        });
        archived.map_err(io_err("archive the root filesystem"))?;
        for (m, kind) in &guarded {
            let want = GUARDED.iter().find(|(g, _)| g == m).map(|(_, k)| *k);
            if want != Some(*kind) {
                return Err(Error::invalid(
                    "root filesystem member",
                    &m[2..],
                    "is not what the templates expect there (a real directory, or a regular file): they write through it on the host",
                ));
            }
        }
        if let Some(missing) = templates.iter().find(|t| !templated.contains(t)) {
            return Err(Error::invalid(
                "template file",
                &missing[1..],
                "is not a regular file of the root filesystem (missing, excluded, a link, or below one)",
            ));
        }
        archive.finish().map_err(io_err("write the rootfs archive"))?;
        if let Some(cb) = progress.as_mut() {
            cb(ExportProgress { bytes_done: done, bytes_total: total.max(done) });
        }

        let mut excludes_user = devices;
        excludes_user.extend(opts.excludes_user.iter().cloned());
        let mut meta: Vec<(&str, Vec<u8>)> = vec![
            (
                "config",
                image_config(&config_text, &container_dir.to_string_lossy(), &rootfs.to_string_lossy())
                    .into_bytes(),
            ),
            ("templates", lines(&opts.templates)),
            ("excludes-user", lines(&excludes_user)),
        ];
        if let Some(m) = &opts.create_message {
            meta.push(("create-message", format!("{}\n", m.trim_end_matches('\n')).into_bytes()));
        }
        if let Some(at) = opts.expiry {
            let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            meta.push(("expiry", format!("{secs}\n").into_bytes()));
        }
        if let Some(f) = fstab {
            meta.push(("fstab", f));
        }
        let out = create_new(&tmp_meta, mode, &mut partial).map_err(io_err("create the metadata archive"))?;
        let mut archive = Archive::new(BufWriter::new(out), opts.level, Some(1))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        for (name, data) in &meta {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_mtime(now);
            h.set_size(data.len() as u64);
            archive
                .append(h, name.as_bytes(), None, &data[..])
                .map_err(io_err("write the metadata archive"))?;
        }
        archive.finish().map_err(io_err("write the metadata archive"))?;

        let (meta_path, rootfs_path) = (dir.join(META_FILE), dir.join(ROOTFS_FILE));
        // Both renames under a lock on the directory: exports into it at
        // once leave one export's pair, not one's rootfs beside another's
        // metadata.
        let dir_fd =
            rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| io_err("open the image directory")(e.into()))?;
        rustix::fs::flock(&dir_fd, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err("lock the image directory")(e.into()))?;
        fs::rename(&tmp_rootfs, &rootfs_path).map_err(io_err("put the rootfs archive in place"))?;
        fs::rename(&tmp_meta, &meta_path).map_err(io_err("put the metadata archive in place"))?;
        drop(dir_fd);
        partial.0.clear();
        Image::from_files(meta_path, rootfs_path)
    }
}

/// `items` one per line.
fn lines(items: &[String]) -> Vec<u8> {
    items.iter().flat_map(|l| [l.as_bytes(), b"\n"]).flatten().copied().collect()
}

/// A tar archive being written through xz.
struct Archive {
    tar: tar::Builder<liblzma::write::XzEncoder<BufWriter<File>>>,
}

impl Archive {
    fn new(out: BufWriter<File>, level: u32, threads: Option<u32>) -> Result<Archive> {
        let threads =
            threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
        let stream = liblzma::stream::MtStreamBuilder::new()
            .preset(level.min(9))
            .check(liblzma::stream::Check::Crc64)
            .threads(threads.max(1))
            .encoder()
            .map_err(|e| Error::Io { op: "start the xz compressor", source: e.into() })?;
        let mut tar = tar::Builder::new(liblzma::write::XzEncoder::new_stream(out, stream));
        tar.mode(tar::HeaderMode::Complete);
        Ok(Archive { tar })
    }

    /// Appends one member named `name` (bytes as they are, `./` kept), with
    /// GNU long-name records for a name or link target over 100 bytes.
    fn append(
        &mut self,
        mut h: tar::Header,
        name: &[u8],
        link: Option<&[u8]>,
        data: impl Read,
    ) -> io::Result<()> {
        fn long(tar: &mut tar::Builder<impl Write>, kind: tar::EntryType, value: &[u8]) -> io::Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            set_bytes(&mut h.as_old_mut().name, b"././@LongLink");
            h.set_mode(0o644);
            h.set_size(value.len() as u64 + 1);
            h.set_cksum();
            tar.append(&h, value.chain(&[0u8][..]))
        }
        if name.len() > 100 {
            long(&mut self.tar, tar::EntryType::GNULongName, name)?;
        }
        if let Some(link) = link {
            if link.len() > 100 {
                long(&mut self.tar, tar::EntryType::GNULongLink, link)?;
            }
            set_bytes(&mut h.as_old_mut().linkname, &link[..link.len().min(100)]);
        }
        set_bytes(&mut h.as_old_mut().name, &name[..name.len().min(100)]);
        h.set_cksum();
        self.tar.append(&h, data)
    }

    fn finish(self) -> io::Result<()> {
        let xz = self.tar.into_inner()?;
        let out = xz.finish()?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

/// Copies `value` into a NUL-padded header field.
fn set_bytes(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    field[..value.len()].copy_from_slice(value);
}

/// Exclusion patterns, matched as tar matches `--anchored --exclude`:
/// `fnmatch(3)` without flags (`*` also matches `/`).
struct Patterns(Vec<std::ffi::CString>);

impl Patterns {
    fn new(patterns: &[String]) -> Result<Patterns> {
        patterns
            .iter()
            .map(|p| crate::cstr::line_cstring("exclude pattern", p.as_bytes()))
            .collect::<Result<Vec<_>>>()
            .map(Patterns)
    }

    fn matches(&self, member: &[u8]) -> bool {
        if self.0.is_empty() {
            return false;
        }
        let Ok(member) = std::ffi::CString::new(member) else {
            return false;
        };
        self.0.iter().any(|p| {
            // SAFETY: both are NUL-terminated strings alive for the call;
            // fnmatch only reads them (glibc: MT-safe).
            unsafe { libc::fnmatch(p.as_ptr(), member.as_ptr(), 0) == 0 }
        })
    }

    /// The patterns as arguments of the helper's walk.
    fn args(&self) -> impl Iterator<Item = &OsStr> {
        self.0.iter().map(|p| OsStr::from_bytes(p.as_bytes()))
    }
}

/// How to reach a member's content.
enum Source<'a> {
    /// In this process: the directory holding it and its name there.
    Local { dir: &'a OwnedFd, name: &'a OsStr },
    /// From the helper's walk: the descriptor it sent (regular files) and
    /// the link's target (symbolic links).
    Sent { fd: Option<OwnedFd>, link: Option<Vec<u8>> },
}

/// One member of the walk.
struct WalkEntry<'a> {
    src: Source<'a>,
    /// Its name in the archive (`./a/b`).
    member: Vec<u8>,
    kind: FileType,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: i64,
    nlink: u64,
    dev: u64,
    ino: u64,
    rdev: u64,
}

impl WalkEntry<'_> {
    /// A regular file's content, opened without following a link.
    fn open(&mut self) -> io::Result<File> {
        let fd = match &mut self.src {
            Source::Local { dir, name } => rustix::fs::openat(
                *dir,
                *name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
                Mode::empty(),
            )?,
            Source::Sent { fd, .. } => {
                fd.take().ok_or_else(|| io::Error::other("the walk sent no descriptor"))?
            }
        };
        // Still the file that was looked at (not replaced meanwhile).
        let st = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
            || (st.st_dev, st.st_ino) != (self.dev, self.ino)
        {
            return Err(io::Error::other(format!(
                "{} changed during the export",
                String::from_utf8_lossy(&self.member)
            )));
        }
        Ok(File::from(fd))
    }

    /// A symbolic link's target.
    fn link(&self) -> io::Result<Vec<u8>> {
        match &self.src {
            Source::Local { dir, name } => Ok(rustix::fs::readlinkat(*dir, *name, Vec::new())?.into_bytes()),
            Source::Sent { link, .. } => {
                link.clone().ok_or_else(|| io::Error::other("the walk sent no link target"))
            }
        }
    }
}

/// A visit of every member of a root filesystem, in this process or (for
/// an unprivileged caller's id-mapped container) in the crate's helper
/// run as root of a user namespace with the container's mapping.
struct Walker<'a> {
    rootfs: &'a Path,
    excludes: &'a Patterns,
    /// The container's `lxc.idmap` lines, to walk in a user namespace.
    userns: Option<&'a [String]>,
}

type Visit<'v> = dyn FnMut(&mut WalkEntry<'_>) -> io::Result<()> + 'v;

impl Walker<'_> {
    /// Visits every member that is not excluded, a directory before what it
    /// holds, names in byte order. `content`: regular files and links are
    /// to be read.
    fn walk(&self, content: bool, visit: &mut Visit<'_>) -> io::Result<()> {
        match self.userns {
            None => {
                let root = rustix::fs::open(
                    self.rootfs,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                walk_local(root, self.excludes, visit)
            }
            Some(idmap) => self.walk_in_userns(idmap, content, visit),
        }
    }

    /// The walk in the helper (`lxc-rs-helper walk`), started through
    /// `lxc-usernsexec` with the container's mapping; members come one per
    /// message.
    fn walk_in_userns(&self, idmap: &[String], content: bool, visit: &mut Visit<'_>) -> io::Result<()> {
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        use std::os::fd::AsRawFd;
        let exe = crate::helper::helper_fd().map_err(io::Error::other)?;
        let (ours, theirs) =
            socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)?;
        // Above 0 to 2: a caller with closed stdio would have the child's
        // stdio set up over it.
        let theirs = crate::attach::above_stdio(theirs).map_err(io::Error::other)?;
        // Listed while it is open here: a closure child forked meanwhile
        // closes it, and cannot hold back the end of the walk's socket.
        let theirs = crate::fds::Guarded::new(theirs);
        let mut cmd = crate::helper::command_keeping(usernsexec(), vec![exe, theirs.as_raw_fd()]);
        for line in idmap {
            let f: Vec<&str> = line.split_whitespace().collect();
            cmd.arg("-m").arg(f.join(":"));
        }
        cmd.arg("--")
            .arg(format!("/proc/self/fd/{exe}"))
            .arg("walk")
            .arg(theirs.as_raw_fd().to_string())
            .arg(self.rootfs)
            .arg(if content { "1" } else { "0" })
            .args(self.excludes.args())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let child = cmd.spawn()?;
        drop(theirs);
        // However the walk ends here: our end of the socket is closed first
        // (the helper ends at its next message), then the child is waited
        // for. Not killed: a caller's SIGCHLD handler may have reaped it and
        // its pid be another process's by then.
        struct Reap {
            ours: Option<OwnedFd>,
            child: std::process::Child,
        }
        impl Reap {
            /// The child's status, unless the kernel or a handler of the
            /// caller's reaps it (`waitpid` would then block until every
            /// child has ended, or fail).
            fn wait(&mut self) -> Option<std::process::ExitStatus> {
                self.ours = None;
                // A handler of the caller's that reaps any child may have
                // taken it, and its pid be another child's by then.
                if !crate::helper::sigchld_default() {
                    return None;
                }
                self.child.wait().ok()
            }
        }
        impl Drop for Reap {
            fn drop(&mut self) {
                let _ = self.wait();
            }
        }
        let mut walk = Reap { ours: Some(ours), child };
        let mut buf = vec![0u8; MSG_HEAD + 2 * 4097 + 65536];
        loop {
            // Closed only as the walk ends.
            let Some(ours) = walk.ours.as_ref() else {
                return Err(io::Error::other("the walk's socket is closed"));
            };
            let Some((n, [fd, _])) = crate::attach::recv_with_fds(ours, &mut buf)? else {
                // What it wrote so far, without waiting for more (another
                // process may hold the pipe).
                let mut err = Vec::new();
                if let Some(e) = walk.child.stderr.as_mut() {
                    let _ = rustix::fs::fcntl_setfl(&*e, OFlags::NONBLOCK);
                    let _ = e.take(4096).read_to_end(&mut err);
                }
                let err = String::from_utf8_lossy(&err);
                let status = walk.wait().map_or("status unknown".to_owned(), |s| s.to_string());
                return Err(io::Error::other(format!(
                    "the walk in the container's user namespace ended ({status}): {}",
                    err.trim()
                )));
            };
            let msg = parse_walk_msg(&buf[..n])?;
            match msg.kind {
                b'Z' => return Ok(()),
                b'X' => {
                    let err = io::Error::from_raw_os_error(msg.err);
                    return Err(io::Error::new(
                        err.kind(),
                        format!("{}: {err}", String::from_utf8_lossy(&msg.name)),
                    ));
                }
                _ => {}
            }
            let st = msg.stat;
            let mut e = WalkEntry {
                src: Source::Sent { fd, link: msg.link },
                member: msg.name,
                kind: FileType::from_raw_mode(st.mode),
                mode: st.mode,
                uid: st.uid,
                gid: st.gid,
                size: st.size,
                mtime: st.mtime,
                nlink: st.nlink,
                dev: st.dev,
                ino: st.ino,
                rdev: st.rdev,
            };
            visit(&mut e)?;
        }
    }
}

/// `lxc-usernsexec`, from `PATH` or `/usr/bin`.
fn usernsexec() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("lxc-usernsexec"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/bin/lxc-usernsexec"))
}

/// The fixed part of a message of the helper's walk (`struct walk_msg`).
const MSG_HEAD: usize = 80;

/// The numbers of a member the helper's walk sent.
#[derive(Debug, Clone, Copy, Default)]
struct SentStat {
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    nlink: u64,
    dev: u64,
    ino: u64,
    rdev: u64,
    mtime: i64,
}

/// One message of the helper's walk.
#[derive(Debug)]
struct WalkMsg {
    kind: u8,
    err: i32,
    stat: SentStat,
    name: Vec<u8>,
    link: Option<Vec<u8>>,
}

/// Reads one message of the helper's walk, checking what it says: a
/// member's name is `./` or `./` and names without `.`, `..` or NUL.
fn parse_walk_msg(b: &[u8]) -> io::Result<WalkMsg> {
    let bad = |why: &str| io::Error::other(format!("a bad message from the walk: {why}"));
    if b.len() < MSG_HEAD {
        return Err(bad("too short"));
    }
    let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or_default());
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or_default());
    let kind = u32_at(0);
    let (name_len, link_len) = (u32_at(20) as usize, u32_at(24) as usize);
    if MSG_HEAD + name_len + link_len != b.len() {
        return Err(bad("lengths"));
    }
    let name = b[MSG_HEAD..MSG_HEAD + name_len].to_vec();
    let link = (link_len > 0).then(|| b[MSG_HEAD + name_len..].to_vec());
    let kind = match kind {
        0x45 => b'E',
        0x5a => b'Z',
        0x58 => b'X',
        _ => return Err(bad("kind")),
    };
    if kind == b'E' {
        let ok = name == b"./"
            || name.strip_prefix(b"./").is_some_and(|rest| {
                !rest.is_empty()
                    && rest.split(|&c| c == b'/').all(|c| !c.is_empty() && c != b"." && c != b"..")
            });
        if !ok || name.contains(&0) || link.as_ref().is_some_and(|l| l.contains(&0)) {
            return Err(bad("member name"));
        }
    }
    Ok(WalkMsg {
        kind,
        err: u32_at(16) as i32,
        stat: SentStat {
            mode: u32_at(4),
            uid: u32_at(8),
            gid: u32_at(12),
            size: u64_at(32),
            nlink: u64_at(40),
            dev: u64_at(48),
            ino: u64_at(56),
            rdev: u64_at(64),
            mtime: u64_at(72) as i64,
        },
        name,
        link,
    })
}

/// How deep a walk goes at most: a directory per level stays open, so also
/// at most a quarter of the soft limit of open files (256 levels under the
/// common 1024), to leave the rest of the process its descriptors.
const MAX_DEPTH: usize = 4096;

fn max_depth() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX);
    MAX_DEPTH.min(usize::try_from(soft / 4).unwrap_or(usize::MAX)).max(16)
}

/// The numbers of `name` in `dir` (not following a link) and its mount's
/// id (`None` where the kernel, before 5.8, does not say).
fn stat_entry(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<(rustix::fs::Statx, Option<u64>)> {
    use rustix::fs::{AtFlags, StatxFlags};
    let st = rustix::fs::statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::EMPTY_PATH,
        StatxFlags::BASIC_STATS | StatxFlags::MNT_ID,
    )?;
    let mnt = (st.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id);
    Ok((st, mnt))
}

/// Visits the directory `root` and all below it, in name order, a
/// directory before what it holds, through directory descriptors and
/// without following links (a directory replaced by a link meanwhile is
/// not entered), with an explicit stack (no recursion: a deep tree cannot
/// exhaust the caller's stack), at most [`MAX_DEPTH`] levels. Members
/// matching one of `excludes` are skipped with all below them, and so is
/// what is mounted below the root (as `tar --one-file-system`: another
/// filesystem, such as a FUSE mount that could block the walk, is not the
/// container's).
fn walk_local(root: OwnedFd, excludes: &Patterns, visit: &mut Visit<'_>) -> io::Result<()> {
    struct Frame {
        dir: OwnedFd,
        member: Vec<u8>,
        names: std::vec::IntoIter<Vec<u8>>,
    }
    fn frame(dir: OwnedFd, member: Vec<u8>) -> io::Result<Frame> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for ent in rustix::fs::Dir::read_from(&dir)? {
            let ent = ent?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(n.to_vec());
            }
        }
        names.sort();
        Ok(Frame { dir, member, names: names.into_iter() })
    }
    let max_depth = max_depth();
    let (st, root_mnt) = stat_entry(&root, OsStr::new(""))?;
    visit(&mut entry_of(&root, OsStr::new("."), b"./", &st))?;
    let mut stack = vec![frame(root, b".".to_vec())?];
    loop {
        let depth = stack.len();
        let Some(top) = stack.last_mut() else { break };
        let Some(n) = top.names.next() else {
            stack.pop();
            continue;
        };
        let top = &*top;
        let name = OsStr::from_bytes(&n);
        let mut child = top.member.clone();
        child.push(b'/');
        child.extend_from_slice(&n);
        if excludes.matches(&child) {
            continue;
        }
        let (st, mnt) = match stat_entry(&top.dir, name) {
            Ok(v) => v,
            // Removed meanwhile.
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let other_mount = mnt.is_some() && root_mnt.is_some() && mnt != root_mnt;
        let is_dir = FileType::from_raw_mode(u32::from(st.stx_mode)) == FileType::Directory;
        if other_mount {
            // A mount point stays, empty (its own directory's numbers are
            // those of the mounted root; good enough for a placeholder).
            if is_dir {
                visit(&mut entry_of(&top.dir, name, &child, &st))?;
            }
            continue;
        }
        if is_dir {
            if depth >= max_depth {
                return Err(io::Error::other(format!(
                    "{} is more than {max_depth} directories deep",
                    String::from_utf8_lossy(&child)
                )));
            }
            let sub = rustix::fs::openat(
                &top.dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            visit(&mut entry_of(&sub, OsStr::new("."), &child, &st))?;
            stack.push(frame(sub, child)?);
        } else {
            visit(&mut entry_of(&top.dir, name, &child, &st))?;
        }
    }
    Ok(())
}

fn entry_of<'a>(dir: &'a OwnedFd, name: &'a OsStr, member: &[u8], st: &rustix::fs::Statx) -> WalkEntry<'a> {
    let mode = u32::from(st.stx_mode);
    WalkEntry {
        src: Source::Local { dir, name },
        member: member.to_vec(),
        kind: FileType::from_raw_mode(mode),
        mode,
        uid: st.stx_uid,
        gid: st.stx_gid,
        size: st.stx_size,
        mtime: st.stx_mtime.tv_sec,
        nlink: u64::from(st.stx_nlink),
        dev: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
        ino: st.stx_ino,
        rdev: rustix::fs::makedev(st.stx_rdev_major, st.stx_rdev_minor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_host_ids_to_the_container_s() {
        let m = IdMap::parse(&["u 0 100000 65536".into(), "g 0 200000 1000".into()]).unwrap();
        assert_eq!(m.to_container(100000, 200000), (0, 0));
        assert_eq!(m.to_container(100033, 200999), (33, 999));
        assert_eq!(m.to_container(0, 201000), (m.overflow.0, m.overflow.1));
        let none = IdMap::parse(&[]).unwrap();
        assert_eq!(none.to_container(7, 8), (7, 8));
        assert!(IdMap::parse(&["x 0 1 2".into()]).is_err());
        assert!(IdMap::parse(&["u 0 1".into()]).is_err());
    }

    #[test]
    fn the_image_config_leaves_out_what_is_one_container_s() {
        let config =
            "# comment\nlxc.net.0.type = empty\nlxc.rootfs.path = dir:/l/web/rootfs\nlxc.uts.name = web\n\
                      lxc.signal.halt = SIGUSR1\nlxc.mount.entry = /l/web/rootfs/x y none bind 0 0\n\
                      lxc.hook.pre-start = /l/web/hook\nlxc.idmap = u 0 1 2\nlxc.log.file = /x\n";
        assert_eq!(
            image_config(config, "/l/web", "/l/web/rootfs"),
            "lxc.signal.halt = SIGUSR1\nlxc.mount.entry = LXC_ROOTFS/x y none bind 0 0\nlxc.hook.pre-start = LXC_PATH/hook\n"
        );
    }

    #[test]
    fn paths_become_placeholders_only_as_whole_paths() {
        assert_eq!(replace_path("a = /l/web/rootfs/x", "/l/web/rootfs", "R"), "a = R/x");
        assert_eq!(replace_path("a = /l/web2/x", "/l/web", "P"), "a = /l/web2/x");
        assert_eq!(replace_path("a = /backup/l/web/x", "/l/web", "P"), "a = /backup/l/web/x");
        assert_eq!(replace_path("/l/web", "/l/web", "P"), "P");
        assert_eq!(replace_path("a=/l/web:b", "/l/web", "P"), "a=P:b");
    }

    #[test]
    fn device_names_become_safe_exclude_lines() {
        assert_eq!(exclude_line(b"./dev/x --to-command=sh"), "./dev/x?--to-command=sh");
        assert_eq!(exclude_line(b"./dev/a*b?[c]\\"), "./dev/a\\*b\\?\\[c]\\\\");
        assert_eq!(exclude_line(b"./dev/\t\n\xff"), "./dev/???");
    }

    #[test]
    fn the_name_becomes_a_placeholder_where_it_is_a_word() {
        assert_eq!(name_to_placeholder(b"web\n", b"web"), b"LXC_NAME\n");
        assert_eq!(
            name_to_placeholder(b"127.0.1.1 web web-2 webby\n", b"web"),
            b"127.0.1.1 LXC_NAME web-2 webby\n"
        );
        assert_eq!(name_to_placeholder(b"x", b""), b"x");
    }

    #[test]
    fn rootfs_paths_by_backing_store() {
        assert_eq!(rootfs_dir("dir:/a/b").unwrap(), PathBuf::from("/a/b"));
        assert_eq!(rootfs_dir("/a/b").unwrap(), PathBuf::from("/a/b"));
        assert_eq!(rootfs_dir("btrfs:/a/b").unwrap(), PathBuf::from("/a/b"));
        assert!(matches!(rootfs_dir("overlay:/a:/b"), Err(Error::Unsupported { .. })));
        assert!(matches!(rootfs_dir("lvm:/dev/vg/x"), Err(Error::Unsupported { .. })));
        assert!(rootfs_dir("dir:rel").is_err());
    }

    #[test]
    fn patterns_are_anchored() {
        assert_eq!(anchored("var/log/*"), "./var/log/*");
        assert_eq!(anchored("/var/log/*"), "./var/log/*");
        assert_eq!(anchored("./dev/*"), "./dev/*");
    }
}
