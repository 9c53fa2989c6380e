//! The crate's input validation and parsing, fed arbitrary bytes: names,
//! configuration keys, byte sizes, states, versions, architectures. None
//! may panic; byte sizes must print back to the same value.
//!
//! `cargo fuzz run inputs --sanitizer none -- -max_total_time=60`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = lxc::check_container_name(&s);
    let _ = lxc::config_key_is_known(&s);
    let _ = s.parse::<lxc::State>();
    let _ = lxc::Version::parse(&s);
    let _ = lxc::Personality::from_arch(&s);
    let _ = s.parse::<lxc::BackingStore>();
    if let Ok(b) = s.parse::<lxc::ByteSize>() {
        let again: lxc::ByteSize = b.to_string().parse().expect("a printed byte size parses");
        assert_eq!(again, b, "{s:?} -> {b} -> {again}");
    }
});
