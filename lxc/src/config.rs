//! Values of container configuration keys.

use std::fmt;

/// The value of a configuration key, as [`Container::config_item`]
/// returns it: one value, or a list for keys that may be given many times
/// (`lxc.cap.drop`, `lxc.mount.entry`, `lxc.environment`, `lxc.idmap`,
/// `lxc.hook.*`, ...), as ruby-lxc's `config_item` does.
///
/// ```
/// use lxc::ConfigValue;
/// let v = ConfigValue::Value("busybox".into());
/// assert_eq!(v, "busybox");
/// assert_eq!(v.as_str(), Some("busybox"));
/// let l = ConfigValue::List(vec!["sys_module".into(), "mac_admin".into()]);
/// assert_eq!(l.to_string(), "sys_module\nmac_admin");
/// assert_eq!(l.into_vec(), ["sys_module", "mac_admin"]);
/// ```
///
/// [`Container::config_item`]: crate::Container::config_item
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConfigValue {
    /// A key with one value.
    Value(String),
    /// A key that takes many values, in the order liblxc keeps them (empty
    /// when none is set).
    List(Vec<String>),
}

impl ConfigValue {
    /// The single value, or `None` for a list.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ConfigValue::Value(s) => Some(s),
            ConfigValue::List(_) => None,
        }
    }

    /// The values as a list: a single value becomes a list of one (none if
    /// it is empty).
    pub fn into_vec(self) -> Vec<String> {
        match self {
            ConfigValue::Value(s) if s.is_empty() => Vec::new(),
            ConfigValue::Value(s) => vec![s],
            ConfigValue::List(v) => v,
        }
    }

    /// The text: the value, or the list's values joined by newlines.
    pub fn into_string(self) -> String {
        match self {
            ConfigValue::Value(s) => s,
            ConfigValue::List(v) => v.join("\n"),
        }
    }

    /// Whether there is no value (an empty value or an empty list).
    pub fn is_empty(&self) -> bool {
        match self {
            ConfigValue::Value(s) => s.is_empty(),
            ConfigValue::List(v) => v.is_empty(),
        }
    }

    /// Builds the value of `key` from the text liblxc returned.
    pub(crate) fn from_raw(key: &str, text: String) -> Self {
        if is_list_key(key) || text.contains('\n') {
            ConfigValue::List(text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect())
        } else {
            ConfigValue::Value(text)
        }
    }
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Value(s) => f.write_str(s),
            ConfigValue::List(v) => {
                for (i, s) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    f.write_str(s)?;
                }
                Ok(())
            }
        }
    }
}

impl PartialEq<str> for ConfigValue {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for ConfigValue {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl<S: AsRef<str>> PartialEq<[S]> for ConfigValue {
    fn eq(&self, other: &[S]) -> bool {
        match self {
            ConfigValue::List(v) => {
                v.len() == other.len() && v.iter().zip(other).all(|(a, b)| a == b.as_ref())
            }
            ConfigValue::Value(_) => false,
        }
    }
}

impl From<ConfigValue> for String {
    fn from(v: ConfigValue) -> String {
        v.into_string()
    }
}

/// Keys that liblxc lets a configuration give many times, so that their
/// value is a list even when it has one entry or none.
const LIST_KEYS: &[&str] = &[
    "lxc.cap.drop",
    "lxc.cap.keep",
    "lxc.mount.entry",
    "lxc.environment",
    "lxc.idmap",
    "lxc.group",
    "lxc.apparmor.raw",
    "lxc.keyring.session",
    "lxc.sysctl",
    "lxc.proc",
    "lxc.hook",
    "lxc.net",
    "lxc.prlimit",
    "lxc.limit",
];

/// Prefixes of list keys that name a member (`lxc.hook.pre-start`,
/// `lxc.net.0.ipv4.address`, ...).
const LIST_KEY_SUFFIXES: &[&str] =
    &[".ipv4.address", ".ipv6.address", ".veth.ipv4.route", ".veth.ipv6.route"];

/// Sub-keys of `lxc.net.N.` that liblxc knows (liblxc 4.0 to 7.0).
const NET_SUBKEYS: &[&str] = &[
    "type",
    "flags",
    "link",
    "l2proxy",
    "name",
    "script.up",
    "script.down",
    "hwaddr",
    "mtu",
    "vlan.id",
    "ipv4.address",
    "ipv4.gateway",
    "ipv6.address",
    "ipv6.gateway",
    "veth.pair",
    "veth.ipv4.route",
    "veth.ipv6.route",
    "veth.mode",
    "veth.vlan.id",
    "veth.vlan.tagged.id",
    "veth.n_rxqueues",
    "veth.n_txqueues",
    "macvlan.mode",
    "ipvlan.mode",
    "ipvlan.isolation",
];

/// Families of keys whose last part is free (`lxc.cgroup.memory.max`,
/// `lxc.sysctl.net.ipv4.ip_forward`, ...).
const OPEN_PREFIXES: &[&str] =
    &["lxc.cgroup.", "lxc.cgroup2.", "lxc.sysctl.", "lxc.proc.", "lxc.prlimit.", "lxc.limit."];

/// Whether liblxc knows `key`. `lxc_config_item_is_supported` only matches
/// whole keys of its table; this also accepts the keys liblxc matches by
/// prefix: the open families and the indexed `lxc.net.N.*` keys.
/// A cgroup v1 controller key (`lxc.cgroup.memory.limit_in_bytes`), not one
/// of liblxc's own `lxc.cgroup.*` settings (`lxc.cgroup.dir`,
/// `lxc.cgroup.relative`, ...), which liblxc 7.0 kept when it dropped the
/// controller keys.
pub(crate) fn is_cgroup_v1_key(key: &str) -> bool {
    key.strip_prefix("lxc.cgroup.")
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with("dir") && rest != "relative")
}

pub(crate) fn key_is_known(key: &str) -> bool {
    if crate::config_item_is_supported(key) {
        return true;
    }
    if let Some(rest) = OPEN_PREFIXES.iter().find_map(|p| key.strip_prefix(p)) {
        return !rest.is_empty();
    }
    if let Some(rest) = key.strip_prefix("lxc.net.") {
        let (index, sub) = rest.split_once('.').unwrap_or((rest, ""));
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        return sub.is_empty() || NET_SUBKEYS.contains(&sub);
    }
    false
}

fn is_list_key(key: &str) -> bool {
    LIST_KEYS.contains(&key)
        || key.starts_with("lxc.hook.")
        || (key.starts_with("lxc.net.") && LIST_KEY_SUFFIXES.iter().any(|s| key.ends_with(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_v1_keys() {
        assert!(is_cgroup_v1_key("lxc.cgroup.memory.limit_in_bytes"));
        assert!(is_cgroup_v1_key("lxc.cgroup.devices.allow"));
        for k in [
            "lxc.cgroup.dir",
            "lxc.cgroup.dir.monitor",
            "lxc.cgroup.relative",
            "lxc.cgroup2.memory.max",
            "lxc.cgroup.",
        ] {
            assert!(!is_cgroup_v1_key(k), "{k}");
        }
    }

    #[test]
    fn lists_and_values() {
        assert_eq!(ConfigValue::from_raw("lxc.uts.name", "c1".into()), "c1");
        assert_eq!(ConfigValue::from_raw("lxc.cap.drop", "".into()), ConfigValue::List(vec![]));
        assert_eq!(
            ConfigValue::from_raw("lxc.cap.drop", "sys_module\nmac_admin\n".into()),
            ConfigValue::List(vec!["sys_module".into(), "mac_admin".into()])
        );
        assert_eq!(
            ConfigValue::from_raw("lxc.net.0.ipv4.address", "10.0.0.2/24\n".into()),
            ConfigValue::List(vec!["10.0.0.2/24".into()])
        );
        assert!(matches!(ConfigValue::from_raw("lxc.hook.pre-start", "/bin/x".into()), ConfigValue::List(_)));
        assert_eq!(ConfigValue::Value(String::new()).into_vec(), Vec::<String>::new());
    }

    #[test]
    fn known_keys() {
        for k in [
            "lxc.uts.name",
            "lxc.net.0.type",
            "lxc.net.12.ipv4.address",
            "lxc.net.0",
            "lxc.cgroup.memory.limit_in_bytes",
            "lxc.cgroup2.memory.max",
            "lxc.sysctl.net.ipv4.ip_forward",
            "lxc.hook.pre-start",
        ] {
            assert!(key_is_known(k), "{k}");
        }
        for k in ["", "lxc.bogus", "lxc.net.x.type", "lxc.net.0.bogus", "lxc.cgroup.", "nonsense"] {
            assert!(!key_is_known(k), "{k}");
        }
    }
}
