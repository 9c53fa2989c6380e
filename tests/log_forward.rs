//! Feature `log`: a container's own log (`set_log_file`, `set_log_level`)
//! and its lines as records of the `log` crate (`LogForwarder`).

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::TestContainer;
use lxc::{LogForwarder, LogLevel, State};

/// Every record the program's logger got: (level, target, message).
static RECORDS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Collect;

impl log::Log for Collect {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        RECORDS.lock().unwrap().push((r.level(), r.target().to_string(), r.args().to_string()));
    }
    fn flush(&self) {}
}

#[test]
fn a_container_s_log_lines_reach_the_program_s_logger() {
    require_root!();
    log::set_logger(&Collect).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let t = TestContainer::new("logfwd");
    // A handle of its own: liblxc keeps the log file open in the handle
    // that set it until the handle is dropped (below, before the rig
    // counts this test's descriptors).
    let c = t.c.try_clone().unwrap();
    let file = t.lxcpath.join("logfwd.log");
    assert!(c.set_log_file("relative.log").is_err(), "a relative path is refused");
    assert_eq!(c.log_file().unwrap(), None);
    assert_eq!(c.log_level().unwrap(), None);
    c.set_log_file(&file).unwrap();
    c.set_log_level(LogLevel::Debug).unwrap();
    assert_eq!(c.log_file().unwrap().as_deref(), Some(file.as_path()));
    assert_eq!(c.log_level().unwrap(), Some(LogLevel::Debug));
    let before = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let forward = LogForwarder::follow(&file).unwrap();
    c.start().unwrap();
    c.wait(State::Running, Duration::from_secs(10)).unwrap();
    c.stop().unwrap();
    drop(forward);
    drop(c);
    // What liblxc appended since the forwarder began, line by line, against
    // what the logger got: none lost, none made up, levels kept.
    let text = std::fs::read(&file).unwrap();
    let lines: Vec<String> =
        String::from_utf8_lossy(&text[before as usize..]).lines().map(String::from).collect();
    let records = RECORDS.lock().unwrap().clone();
    assert!(lines.len() > 5, "liblxc logged {} lines about a start at DEBUG", lines.len());
    assert_eq!(records.len(), lines.len(), "one record per line");
    for ((level, target, message), line) in records.iter().zip(&lines) {
        assert!(target.starts_with("lxc::"), "{target} for {line}");
        let word = match level {
            log::Level::Trace => "TRACE",
            log::Level::Debug => "DEBUG",
            log::Level::Info => "INFO",
            log::Level::Warn => "WARN",
            log::Level::Error => "ERROR",
        };
        // NOTICE goes as Info, CRIT and worse as Error.
        assert!(
            line.contains(&format!(" {word} "))
                || (word == "INFO" && line.contains(" NOTICE "))
                || word == "ERROR",
            "{level} for {line}"
        );
        let msg = message.split_once(": ").map_or(message.as_str(), |(_, m)| m);
        assert!(line.ends_with(msg), "{message:?} is not the end of {line:?}");
    }
    assert!(records
        .iter()
        .any(|(l, _, m)| *l == log::Level::Debug && m.starts_with(&format!("{}: ", t.name))));
}
