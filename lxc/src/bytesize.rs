//! [`ByteSize`]: memory limits as people write them.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A number of bytes, or no limit (`max`), parsed from and printed as
/// `512M`, `1G`, `1.5GiB`, `1024`, `max`. Units are binary (`K` = `KB` =
/// `KiB` = 1024), as in cgroup files and go-lxc's `ParseBytes`.
///
/// ```
/// use lxc::ByteSize;
/// assert_eq!("512M".parse::<ByteSize>().unwrap().bytes(), Some(512 << 20));
/// assert_eq!("1.5GiB".parse::<ByteSize>().unwrap().bytes(), Some(3 << 29));
/// assert_eq!("max".parse::<ByteSize>().unwrap(), ByteSize::UNLIMITED);
/// assert_eq!(ByteSize::from(10_000_000u64).to_string(), "10000000");
/// assert_eq!(ByteSize::mib(512).to_string(), "512MiB");
/// assert!("12 parsecs".parse::<ByteSize>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(Option<u64>);

const UNITS: [(&str, u32); 6] = [("", 0), ("K", 10), ("M", 20), ("G", 30), ("T", 40), ("P", 50)];

impl ByteSize {
    /// No limit (`max` in cgroup v2, the largest value in v1).
    pub const UNLIMITED: ByteSize = ByteSize(None);

    /// `n` bytes.
    pub const fn new(n: u64) -> Self {
        ByteSize(Some(n))
    }
    /// `n` KiB.
    pub const fn kib(n: u64) -> Self {
        ByteSize(Some(n << 10))
    }
    /// `n` MiB.
    pub const fn mib(n: u64) -> Self {
        ByteSize(Some(n << 20))
    }
    /// `n` GiB.
    pub const fn gib(n: u64) -> Self {
        ByteSize(Some(n << 30))
    }
    /// The number of bytes, `None` for no limit.
    pub const fn bytes(self) -> Option<u64> {
        self.0
    }
    /// Whether this is no limit.
    pub const fn is_unlimited(self) -> bool {
        self.0.is_none()
    }

    /// The value as a cgroup file takes it: bytes, or `max` (v2) /
    /// `-1` (v1) for no limit.
    pub(crate) fn cgroup_value(self, v2: bool) -> String {
        match (self.0, v2) {
            (Some(n), _) => n.to_string(),
            (None, true) => "max".into(),
            (None, false) => "-1".into(),
        }
    }

    /// Reads a cgroup file's value: `max`, or a number, where v1's huge
    /// "no limit" values (at least 2^62) also mean no limit.
    pub(crate) fn from_cgroup(text: &str) -> Option<ByteSize> {
        let t = text.trim();
        if t == "max" {
            return Some(ByteSize::UNLIMITED);
        }
        let n: u64 = t.parse().ok()?;
        Some(if n >= 1 << 62 { ByteSize::UNLIMITED } else { ByteSize::new(n) })
    }
}

impl From<u64> for ByteSize {
    fn from(n: u64) -> Self {
        ByteSize::new(n)
    }
}

impl FromStr for ByteSize {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        let bad = |reason| Error::invalid("byte size", s, reason);
        if t.eq_ignore_ascii_case("max") || t == "-1" || t.eq_ignore_ascii_case("unlimited") {
            return Ok(ByteSize::UNLIMITED);
        }
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() || num.matches('.').count() > 1 || num.starts_with('.') || num.ends_with('.') {
            return Err(bad("needs a number, like 512M, 1.5GiB or max"));
        }
        let unit = unit.trim();
        let letter = unit.chars().next().map(|c| c.to_ascii_uppercase().to_string()).unwrap_or_default();
        let rest = unit.get(letter.len()..).unwrap_or("");
        let shift = match UNITS.iter().find(|(u, _)| *u == letter) {
            Some((_, sh)) if letter.is_empty() || ["", "B", "iB", "ib", "b"].contains(&rest) => *sh,
            _ if unit.eq_ignore_ascii_case("b") => 0,
            _ => return Err(bad("has an unknown unit (use B, K, M, G, T, P, optionally with iB or B)")),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let int: u64 = int.parse().map_err(|_| bad("is too large"))?;
        let whole = int.checked_mul(1u64 << shift).ok_or_else(|| bad("is too large"))?;
        let frac_bytes = if frac.is_empty() {
            0
        } else {
            let digits = frac.len().min(18) as u32;
            let f: u128 = frac[..digits as usize].parse().map_err(|_| bad("has a bad fraction"))?;
            ((f << shift) / 10u128.pow(digits)) as u64
        };
        whole.checked_add(frac_bytes).map(ByteSize::new).ok_or_else(|| bad("is too large"))
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the value exactly (`512MiB`),
    /// else the plain number of bytes; `max` for no limit.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(n) = self.0 else { return f.write_str("max") };
        if n == 0 {
            return f.write_str("0");
        }
        for (u, sh) in UNITS.iter().rev() {
            if *sh > 0 && n % (1 << sh) == 0 {
                return write!(f, "{}{u}iB", n >> sh);
            }
        }
        write!(f, "{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let ok = [
            ("0", 0),
            ("1024", 1024),
            ("10k", 10 << 10),
            ("10K", 10 << 10),
            ("10KB", 10 << 10),
            ("10KiB", 10 << 10),
            ("512M", 512 << 20),
            ("1G", 1 << 30),
            ("1.5GiB", 3 << 29),
            ("2T", 2 << 40),
            (" 7 MiB ", 7 << 20),
            ("100B", 100),
            ("0.5K", 512),
        ];
        for (s, n) in ok {
            assert_eq!(s.parse::<ByteSize>().unwrap().bytes(), Some(n), "{s}");
        }
        for s in ["", "M", "1.2.3G", "12 parsecs", "-5", "1e9", ".5G", "5.G", "99999999999P", "1GG", "1Gx"] {
            assert!(s.parse::<ByteSize>().is_err(), "{s:?}");
        }
        assert_eq!("max".parse::<ByteSize>().unwrap(), ByteSize::UNLIMITED);
        assert_eq!(ByteSize::mib(512).to_string(), "512MiB");
        assert_eq!(ByteSize::new(1536 << 20).to_string(), "1536MiB");
        assert_eq!(ByteSize::new(1000).to_string(), "1000");
        assert_eq!(ByteSize::UNLIMITED.to_string(), "max");
        for b in [ByteSize::mib(3), ByteSize::new(12345), ByteSize::UNLIMITED, ByteSize::gib(2)] {
            assert_eq!(b.to_string().parse::<ByteSize>().unwrap(), b);
        }
        assert_eq!(ByteSize::from_cgroup("9223372036854771712\n"), Some(ByteSize::UNLIMITED));
        assert_eq!(ByteSize::from_cgroup("max"), Some(ByteSize::UNLIMITED));
        assert_eq!(ByteSize::from_cgroup("9998336"), Some(ByteSize::new(9998336)));
    }
}
