//! liblxc's process-wide log (its own test binary: the log is global).

mod common;

use common::TestContainer;
use lxc::{Log, LogLevel};

#[test]
fn log_to_a_file_at_debug_level() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lxc.log");
    // SAFETY: this binary's only test; no other thread reaches liblxc while
    // the log is set up or closed (the rig's watchdog acts only after 5
    // minutes).
    unsafe { Log::new().file(&file).level(LogLevel::Debug).prefix("lxc-rs-test").quiet(true).init() }
        .unwrap();
    let t = TestContainer::running("log");
    t.c.stop().unwrap();
    // SAFETY: as above.
    unsafe { lxc::log_close() };
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("lxc-rs-test"), "prefix missing");
    assert!(text.contains("DEBUG"), "no debug lines");
    assert!(text.contains(&t.name), "container name missing");
    // SAFETY: as above; refused before liblxc is called.
    assert!(unsafe { Log::new().file("bad\0file").init() }.is_err());
}
