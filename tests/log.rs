//! liblxc's process-wide log (its own test binary: the log is global).

mod common;

use common::TestContainer;
use lxc::{Log, LogLevel};

#[test]
fn log_to_a_file_at_debug_level() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lxc.log");
    Log::new().file(&file).level(LogLevel::Debug).prefix("lxc-rs-test").quiet(true).init().unwrap();
    let t = TestContainer::running("log");
    t.c.stop().unwrap();
    lxc::log_close();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("lxc-rs-test"), "prefix missing");
    assert!(text.contains("DEBUG"), "no debug lines");
    assert!(text.contains(&t.name), "container name missing");
    assert!(Log::new().file("bad\0file").init().is_err());
}
