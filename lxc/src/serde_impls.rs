//! (feature `serde`) Serialize and Deserialize for the types that are
//! written as text: [`State`] as liblxc names it (`"RUNNING"`; any case
//! when read), [`ByteSize`] as people write it (`"512MiB"`, `"max"`; a
//! plain number of bytes is read too), [`Version`] as `"5.0.2"`. The plain
//! data types (`Stats` and its parts, `NetDevice`, `Snapshot`,
//! `CreateOptions`, `StartOptions`, `CgroupLayout`) derive theirs.
//! `AttachOptions`, which borrows descriptors, has none.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{ByteSize, State, Version};

/// Serializes as the `Display` text and deserializes with `FromStr`.
macro_rules! as_text {
    ($t:ty, $what:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(TextVisitor::<$t>(std::marker::PhantomData, $what))
            }
        }
    };
}

struct TextVisitor<T>(std::marker::PhantomData<T>, &'static str);

impl<T: FromStr> Visitor<'_> for TextVisitor<T>
where
    T::Err: fmt::Display,
{
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
}

as_text!(State, "a container state such as \"RUNNING\"");
as_text!(Version, "a liblxc version such as \"5.0.2\"");

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"512M\", \"1.5GiB\" or \"max\", or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize::new(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize::new).map_err(|_| E::custom("a size cannot be negative"))
            }
        }
        // Formats that do not describe their data (bincode) cannot
        // `deserialize_any`: they get the text that `serialize` wrote.
        if d.is_human_readable() {
            d.deserialize_any(V)
        } else {
            d.deserialize_str(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{ByteSize, CreateOptions, NetDevice, StartOptions, State, Stats, Version};

    fn round_trip<T>(v: &T) -> String
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let text = serde_json::to_string(v).unwrap();
        let back: T = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, v, "{text}");
        text
    }

    #[test]
    fn text_types() {
        assert_eq!(round_trip(&State::Running), "\"RUNNING\"");
        assert_eq!(serde_json::from_str::<State>("\"frozen\"").unwrap(), State::Frozen);
        assert!(serde_json::from_str::<State>("\"BOGUS\"").is_err());
        assert_eq!(round_trip(&ByteSize::mib(512)), "\"512MiB\"");
        assert_eq!(round_trip(&ByteSize::UNLIMITED), "\"max\"");
        assert_eq!(serde_json::from_str::<ByteSize>("\"1.5GiB\"").unwrap(), ByteSize::new(3 << 29));
        assert_eq!(serde_json::from_str::<ByteSize>("10000000").unwrap(), ByteSize::new(10_000_000));
        assert!(serde_json::from_str::<ByteSize>("-1").is_err());
        assert!(serde_json::from_str::<ByteSize>("\"12 parsecs\"").is_err());
        assert_eq!(round_trip(&Version::new(5, 0, 2)), "\"5.0.2\"");
    }

    #[test]
    fn plain_data() {
        let mut stats = Stats::default();
        stats.memory.usage = 1 << 20;
        stats.memory.limit = Some(ByteSize::mib(64));
        stats.cpu.per_cpu = vec![std::time::Duration::from_millis(15); 2];
        stats.interfaces.push(crate::InterfaceStats {
            name: "eth0".into(),
            rx_bytes: 10,
            ..Default::default()
        });
        let text = round_trip(&stats);
        assert!(text.contains("\"limit\":\"64MiB\""), "{text}");
        round_trip(&NetDevice::veth("br0").name("eth0").ipv4("10.0.3.10/24").mtu(1400));
        round_trip(&CreateOptions::new().template("busybox").quiet(true).arg("--flag"));
        round_trip(&StartOptions::new().use_init(true).args(["/bin/sh", "-c", "true"]));
    }
}
