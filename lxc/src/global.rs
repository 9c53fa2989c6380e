//! liblxc's global functions: version, global configuration, supported keys
//! and API extensions, wait states.

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::cstr::{borrowed_str, with_cstr};
use crate::error::{Error, Result};
use crate::{sys, State};

/// A liblxc version, comparable: `Version::new(5, 0, 0) < Version::new(6, 0, 0)`.
///
/// ```
/// let v = lxc::runtime_version();
/// assert!(v >= lxc::Version::new(4, 0, 0));
/// assert!(lxc::Version::new(5, 0, 2) < lxc::Version::new(5, 0, 10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Micro (patch) number.
    pub micro: u32,
}

impl Version {
    /// A version from its three numbers.
    pub const fn new(major: u32, minor: u32, micro: u32) -> Self {
        Version { major, minor, micro }
    }

    /// Parses `"5.0.2"` (a suffix such as `"-devel"` is ignored; missing
    /// parts are 0).
    pub fn parse(s: &str) -> Result<Self> {
        let mut nums = s.split(['.', '-', '~', '+']).map(|p| p.parse::<u32>());
        let major = match nums.next() {
            Some(Ok(n)) => n,
            _ => return Err(Error::invalid("version", s, "does not start with a number")),
        };
        let minor = nums.next().and_then(|r| r.ok()).unwrap_or(0);
        let micro = nums.next().and_then(|r| r.ok()).unwrap_or(0);
        Ok(Version::new(major, minor, micro))
    }
}

impl std::str::FromStr for Version {
    type Err = Error;
    /// As [`Version::parse`].
    fn from_str(s: &str) -> Result<Self> {
        Version::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// The version string of the liblxc this program runs against
/// (`lxc_get_version`), `"5.0.2"` for example.
///
/// ```
/// assert!(!lxc::version().is_empty());
/// ```
pub fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        // SAFETY: lxc_get_version takes no arguments and returns a pointer to
        // a static string (or, defensively, null, which borrowed_str refuses).
        let p = unsafe { sys::lxc_get_version() };
        // SAFETY: the string is static in liblxc.
        unsafe { borrowed_str("lxc_get_version", p) }.map(str::to_owned).unwrap_or_default()
    })
}

/// The version of the liblxc this program runs against, parsed.
pub fn runtime_version() -> Version {
    static V: OnceLock<Version> = OnceLock::new();
    *V.get_or_init(|| Version::parse(version()).unwrap_or(Version::new(0, 0, 0)))
}

/// The version of the liblxc header the crate was compiled against.
///
/// ```
/// // The library loaded at run time is usually the one whose header we built with.
/// println!("built with {}, running {}", lxc::header_version(), lxc::runtime_version());
/// ```
pub fn header_version() -> Version {
    let (major, minor, micro) = sys::LXC_HEADER_VERSION;
    Version::new(major, minor, micro)
}

/// Whether the member `member` of `struct lxc_container` (`"set_timeout"`,
/// `"init_pidfd"`, ...) can be used: the header the crate was built with
/// declares it, and the liblxc loaded at run time has it at the same place.
/// When this is `false`, the method that wraps the member returns
/// [`Error::Unsupported`](crate::Error::Unsupported) (or, when the header
/// lacks it, does not exist).
///
/// ```
/// // Every liblxc from 4.0 on has `get_config_item`; only 6.0 and later
/// // have `set_timeout`.
/// assert!(lxc::has_container_member("get_config_item"));
/// if lxc::runtime_version() < lxc::Version::new(6, 0, 0) {
///     assert!(!lxc::has_container_member("set_timeout"));
/// }
/// assert!(!lxc::has_container_member("no_such_member"));
/// ```
pub fn has_container_member(member: &str) -> bool {
    sys::LXC_CONTAINER_MEMBERS.contains(&member)
        && crate::layout::member_refusal(header_version(), runtime_version(), member).is_none()
}

/// The keys of liblxc's global configuration (`lxc.conf`), from the
/// `options` table of `lxc_global_config_value` (`src/lxc/initutils.c`),
/// with the first liblxc version that knows each.
const GLOBAL_KEYS: &[(&str, Version)] = &[
    ("lxc.bdev.lvm.vg", Version::new(4, 0, 0)),
    ("lxc.bdev.lvm.thin_pool", Version::new(4, 0, 0)),
    ("lxc.bdev.zfs.root", Version::new(4, 0, 0)),
    ("lxc.bdev.rbd.rbdpool", Version::new(4, 0, 0)),
    ("lxc.bdev.rbd.rbduser", Version::new(7, 0, 0)),
    ("lxc.lxcpath", Version::new(4, 0, 0)),
    ("lxc.default_config", Version::new(4, 0, 0)),
    ("lxc.cgroup.pattern", Version::new(4, 0, 0)),
    ("lxc.cgroup.use", Version::new(4, 0, 0)),
];

/// Whether the liblxc in use knows the global key `key`: from the table,
/// or, for a key the table does not know (a newer liblxc), from liblxc's
/// answer (`errno` `EINVAL` for an unknown key).
fn global_key_is_known(key: &str, errno: Option<i32>) -> bool {
    match GLOBAL_KEYS.iter().find(|(k, _)| *k == key) {
        Some((_, since)) => runtime_version() >= *since,
        None => errno != Some(libc::EINVAL) && runtime_version() >= Version::new(7, 1, 0),
    }
}

/// A value of liblxc's global configuration (`lxc_get_global_config_item`),
/// such as `lxc.lxcpath`, `lxc.default_config`, `lxc.bdev.lvm.vg`,
/// `lxc.cgroup.pattern`: `Ok(None)` for a key that liblxc knows but that
/// has no value (`lxc.cgroup.use` unless `lxc.conf` sets it; for an
/// unprivileged caller also `lxc.cgroup.pattern`), and
/// [`Error::UnknownConfigKey`] for a key that is not one of liblxc's global
/// keys (`lxc.bdev.lvm.vg`, `lxc.bdev.lvm.thin_pool`, `lxc.bdev.zfs.root`,
/// `lxc.bdev.rbd.rbdpool`, `lxc.bdev.rbd.rbduser` (7.0 and later),
/// `lxc.lxcpath`, `lxc.default_config`, `lxc.cgroup.pattern`,
/// `lxc.cgroup.use`).
///
/// ```
/// let lxcpath = lxc::global_config_item("lxc.lxcpath")?.expect("liblxc always has an lxcpath");
/// assert!(lxcpath.starts_with('/'));
/// // Known, set or not:
/// assert!(lxc::global_config_item("lxc.cgroup.use").is_ok());
/// assert!(matches!(
///     lxc::global_config_item("lxc.no.such.key"),
///     Err(lxc::Error::UnknownConfigKey { .. })
/// ));
/// # Ok::<(), lxc::Error>(())
/// ```
pub fn global_config_item(key: &str) -> Result<Option<String>> {
    // liblxc returns a fresh copy for some keys (`lxc.lxcpath`: 13 bytes
    // per call with liblxc 5.0.2, which the caller cannot free: the return
    // type is `const char *`). Each key is asked once per process.
    type Cache = Vec<(String, Option<String>)>;
    static CACHE: std::sync::Mutex<Cache> = std::sync::Mutex::new(Vec::new());
    if let Some((_, v)) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(k, _)| k == key) {
        return Ok(v.clone());
    }
    let (p, errno) = crate::cstr::with_line_cstr("global config key", key.as_bytes(), |k| {
        crate::container::clear_errno();
        // SAFETY: k is a valid NUL-terminated string for the duration of the call.
        let p = unsafe { sys::lxc_get_global_config_item(k) };
        (p, std::io::Error::last_os_error().raw_os_error())
    })?;
    let v = if p.is_null() {
        if !global_key_is_known(key, errno) {
            return Err(Error::UnknownConfigKey { key: key.to_owned() });
        }
        None
    } else {
        // SAFETY: liblxc returns a string that stays valid (cached or
        // leaked by liblxc) and that we must not free; we copy it at once.
        Some(unsafe { borrowed_str("lxc_get_global_config_item", p) }?.to_owned())
    };
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() < 64 {
        cache.push((key.to_owned(), v.clone()));
    }
    Ok(v)
}

/// The default lxcpath (`lxc.lxcpath`), usually `/var/lib/lxc` for root.
pub fn default_lxcpath() -> Result<PathBuf> {
    global_config_item("lxc.lxcpath")?
        .map(PathBuf::from)
        .ok_or_else(|| Error::bad_return("lxc_get_global_config_item", "no value for lxc.lxcpath"))
}

/// Whether the liblxc in use knows the container configuration key `key`
/// (`lxc_config_item_is_supported`).
///
/// ```
/// assert!(lxc::config_item_is_supported("lxc.uts.name"));
/// assert!(!lxc::config_item_is_supported("lxc.utsname.bogus"));
/// ```
pub fn config_item_is_supported(key: &str) -> bool {
    with_cstr("config key", key.as_bytes(), |k| {
        // SAFETY: k is a valid NUL-terminated string for the duration of the call.
        unsafe { sys::lxc_config_item_is_supported(k) }
    })
    .unwrap_or(false)
}

/// Checks a container name the way the crate does before liblxc sees it
/// (in [`Container::new`](crate::Container::new), `with_lxcpath`, `copy`,
/// `rename`, snapshot names): 1 to 64 bytes of ASCII letters, digits, `.`,
/// `-` and `_`, the first a letter or digit.
///
/// liblxc itself only needs a name that is a directory name, but it also
/// puts the name unquoted into the `sh -c` command line of every hook
/// (`exec HOOK NAME lxc start`), the templates use it as a shell word and
/// in paths (the busybox template makes directories named after it in the
/// working directory when it holds spaces or quotes, before failing), and
/// they write it as the hostname, `lxc.uts.name`, which liblxc refuses
/// beyond 64 bytes. The set above is safe in all of these places; a name
/// beginning with `.`, `-` or `_` would be a hidden file, an option, or
/// not a hostname.
///
/// ```
/// assert!(lxc::check_container_name("web-1").is_ok());
/// assert!(lxc::check_container_name("db_2.prod").is_ok());
/// assert!(lxc::check_container_name("../etc").is_err());
/// assert!(lxc::check_container_name("a b").is_err());
/// assert!(lxc::check_container_name("café").is_err());
/// assert!(lxc::check_container_name(&"x".repeat(65)).is_err());
/// ```
pub fn check_container_name(name: &str) -> Result<()> {
    crate::cstr::check_name("container name", name)
}

/// Whether liblxc knows the configuration key `key`, including the keys it
/// matches by prefix (`lxc.net.0.ipv4.address`, `lxc.cgroup.memory.max`,
/// `lxc.sysctl.*`, ...), which [`config_item_is_supported`] does not.
///
/// ```
/// assert!(lxc::config_key_is_known("lxc.net.3.link"));
/// assert!(!lxc::config_key_is_known("lxc.net.x.link"));
/// ```
pub fn config_key_is_known(key: &str) -> bool {
    crate::config::key_is_known(key)
}

/// Whether the liblxc in use has the API extension `name`
/// (`lxc_has_api_extension`), e.g. `"pidfd"`, `"devpts_fd"`, `"mount_injection"`.
///
/// ```
/// assert!(lxc::has_api_extension("lxc_log"));
/// assert!(!lxc::has_api_extension("no_such_extension"));
/// ```
pub fn has_api_extension(name: &str) -> bool {
    with_cstr("API extension", name.as_bytes(), |k| {
        // SAFETY: k is a valid NUL-terminated string for the duration of the call.
        unsafe { sys::lxc_has_api_extension(k) }
    })
    .unwrap_or(false)
}

/// The states a container can be waited for (`lxc_get_wait_states`).
///
/// ```
/// assert!(lxc::wait_states().unwrap().contains(&lxc::State::Running));
/// ```
pub fn wait_states() -> Result<Vec<State>> {
    // SAFETY: with a null array, lxc_get_wait_states only returns the count.
    let n = unsafe { sys::lxc_get_wait_states(std::ptr::null_mut()) };
    let n = usize::try_from(n).map_err(|_| Error::bad_return("lxc_get_wait_states", format!("count {n}")))?;
    let mut ptrs: Vec<*const std::ffi::c_char> = vec![std::ptr::null(); n];
    // SAFETY: the array has room for the n entries liblxc said it writes.
    unsafe { sys::lxc_get_wait_states(ptrs.as_mut_ptr()) };
    ptrs.into_iter()
        .map(|p| {
            // SAFETY: the entries point to liblxc's static state names.
            let s = unsafe { borrowed_str("lxc_get_wait_states", p) }?;
            s.parse()
        })
        .collect()
}

/// Turns the crate's helper server on (the default) or off for the rest
/// of the process.
///
/// The calls that run in the crate's helper process (create, copy,
/// snapshot, restore, rename, the destroys, a daemonized start) are forked
/// by a helper server started at the first of them, which saves an exec of
/// the helper per call (about 1 ms; README, "The helper server"). The
/// crate compares what a helper inherits from the calling thread with the
/// server's before each call, but some restrictions cannot be read back
/// from the kernel: a program that confines itself after its first helper
/// call with a Landlock ruleset (as root, without `no_new_privs`; a thread
/// with `no_new_privs` set always gets a helper of its own), a session
/// keyring, a memory policy or a timer slack of its own should turn the
/// server off, so that every call execs a helper from the calling thread.
/// Servers already running end when idle (5 s). The environment variable
/// `LXC_RS_HELPER_SERVER=0` turns it off too.
///
/// ```
/// lxc::set_helper_server(false);
/// # lxc::set_helper_server(true);
/// ```
pub fn set_helper_server(enabled: bool) {
    crate::helper::server::set_enabled(enabled);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parsing() {
        assert_eq!(Version::parse("5.0.2").unwrap(), Version::new(5, 0, 2));
        assert_eq!(Version::parse("6.0.0-devel").unwrap(), Version::new(6, 0, 0));
        assert_eq!(Version::parse("7").unwrap(), Version::new(7, 0, 0));
        assert!(Version::parse("x.y").is_err());
        assert!(Version::new(4, 0, 12) < Version::new(5, 0, 0));
        assert_eq!(Version::new(5, 0, 2).to_string(), "5.0.2");
    }

    #[test]
    fn the_running_version() {
        assert_eq!(runtime_version(), Version::parse(version()).unwrap());
    }
}
