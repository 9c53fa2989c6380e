//! liblxc's log lines as `log` records (feature `log`).
//!
//! liblxc writes its log to a descriptor of its own (`lxc_log_fd`, or a
//! container's `lxc.log.file`), from this process, from the crate's helper
//! process, and from each container's monitor, which keeps that descriptor
//! open for the container's life. A pipe read by this process would block
//! the monitor when full and hand it EPIPE once this process is gone, so
//! the forwarder never replaces liblxc's descriptor: liblxc keeps writing
//! to a file, and a thread of the forwarder follows the file, as `tail -F`
//! does, and hands each complete line to the `log` crate. It needs no
//! process-global setup of its own ([`crate::Log::init`] stays the only
//! one, with its contract).

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};

/// The longest line kept waiting for its line break (liblxc's own are at
/// most 4 KiB).
const MAX_LINE: usize = 64 * 1024;

/// How often the forwarder looks for new lines.
const POLL: Duration = Duration::from_millis(50);

/// Follows a liblxc log file and hands each line liblxc appends to it to
/// the [`log`] crate: a record at the line's level (TRACE and DEBUG as
/// such, INFO and NOTICE as `Info`, WARN as `Warn`, ERROR and worse as
/// `Error`), with the target `lxc::CATEGORY` (liblxc's log category:
/// `lxc::start`, `lxc::cgfsng`, ...), liblxc's source file and line, and
/// the message after the container's name (`web: ...`) when the line has
/// one. Lines that do not have liblxc's form go as `Info` records of the
/// target `lxc`.
///
/// The file is the one of [`crate::Log::init`] or a container's own
/// ([`crate::Container::set_log_file`]). Following starts at the file's
/// current end; it survives the file being truncated or replaced (log
/// rotation), and waits for a file that does not exist yet. Dropping the
/// forwarder forwards what was written until then, and stops its thread.
///
/// ```no_run
/// # fn main() -> Result<(), lxc::Error> {
/// // Any `log` implementation: env_logger, tracing's log bridge, ...
/// let c = lxc::Container::new("web")?;
/// c.set_log_file("/var/log/lxc/web.log")?;
/// c.set_log_level(lxc::LogLevel::Info)?;
/// let _forward = lxc::LogForwarder::follow("/var/log/lxc/web.log")?;
/// c.start()?; // liblxc's lines about the start reach the program's logger
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LogForwarder {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LogForwarder {
    /// Starts following `path` from its current end.
    pub fn follow(path: impl AsRef<Path>) -> Result<LogForwarder> {
        let path = path.as_ref().to_path_buf();
        let start = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Some((m.dev(), m.ino(), m.len())),
            Ok(_) => {
                return Err(Error::invalid(
                    "log file",
                    crate::cstr::path_bytes(&path),
                    "is not a regular file",
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(Error::Io { op: "look at the log file", source }),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (path, stop) = (path.clone(), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("lxc-log-forward".into())
                .spawn(move || follow(&path, start, &stop))
                .map_err(|source| Error::Io { op: "start the log forwarder's thread", source })?
        };
        Ok(LogForwarder { path, stop, thread: Some(thread) })
    }

    /// The file followed.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LogForwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The forwarder's thread: reads what is new every [`POLL`], forwards whole
/// lines, and after `stop` reads once more and ends.
fn follow(path: &Path, start: Option<(u64, u64, u64)>, stop: &AtomicBool) {
    // (the open file, its device and inode, the offset read up to)
    let mut file: Option<(std::fs::File, (u64, u64), u64)> = None;
    let mut first = start;
    let mut partial: Vec<u8> = Vec::new();
    // Once stopped: the offset to read up to (the length then), so that a
    // log that grows faster than the logger takes it cannot hold the drop.
    let mut end_at: Option<u64> = None;
    loop {
        let last_round = stop.load(Ordering::SeqCst);
        if last_round && end_at.is_none() {
            end_at = Some(file.as_ref().and_then(|(f, _, _)| f.metadata().ok()).map_or(0, |m| m.len()));
        }
        // (Re)open when there is no file yet, or the path names another one.
        let now = std::fs::metadata(path).ok().map(|m| ((m.dev(), m.ino()), m.len()));
        let replaced = matches!((&file, now), (Some((_, id, _)), Some((nid, _))) if *id != nid);
        if file.is_none() || replaced {
            if let (Some((nid, _)), Ok(f)) = (now, std::fs::File::open(path)) {
                // The file as it was when following began: from its end.
                // Any other (new, or replacing it): from its start.
                let offset = match first.take() {
                    Some((dev, ino, len)) if (dev, ino) == nid => len,
                    _ => 0,
                };
                if replaced {
                    forward_rest(&mut partial);
                }
                file = Some((f, nid, offset));
            }
        }
        // Whether everything written so far has been read.
        let mut caught_up = true;
        if let Some((f, _, offset)) = file.as_mut() {
            let len = f.metadata().map(|m| m.len()).unwrap_or(*offset);
            if len < *offset {
                // Truncated: start again from its beginning.
                *offset = 0;
                partial.clear();
            }
            if len > *offset && f.seek(SeekFrom::Start(*offset)).is_ok() {
                // At most 1 MiB a round: a huge backlog is read in steps.
                let want = (len - *offset).min(1 << 20);

                let mut buf = Vec::new();
                if let Ok(n) = f.by_ref().take(want).read_to_end(&mut buf) {
                    // More than this round's step is waiting: go on at once.
                    // (A short read or an error waits for the next round.)
                    caught_up = !(n as u64 == want && want < len - *offset);
                    *offset += n as u64;
                    partial.extend_from_slice(&buf);
                    while let Some(i) = partial.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = partial.drain(..=i).collect();
                        forward_line(&String::from_utf8_lossy(&line[..i]));
                    }
                    // A file that never breaks its lines (not liblxc's)
                    // cannot make the forwarder hold it all.
                    if partial.len() > MAX_LINE {
                        forward_rest(&mut partial);
                    }
                }
            }
        }
        let past_end = matches!((end_at, &file), (Some(end), Some((_, _, offset))) if *offset >= end);
        if !caught_up && !past_end {
            continue;
        }
        if last_round {
            forward_rest(&mut partial);
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// Forwards a last line that has no line break yet.
fn forward_rest(partial: &mut Vec<u8>) {
    if !partial.is_empty() {
        forward_line(&String::from_utf8_lossy(partial));
        partial.clear();
    }
}

fn forward_line(line: &str) {
    if line.is_empty() {
        return;
    }
    let p = parse(line);
    if p.level > ::log::max_level() {
        return;
    }
    let target = match p.category {
        Some(c) => format!("lxc::{c}"),
        None => "lxc".to_string(),
    };
    let record = |args: std::fmt::Arguments<'_>| {
        ::log::logger().log(
            &::log::Record::builder()
                .args(args)
                .level(p.level)
                .target(&target)
                .file(p.file)
                .line(p.line)
                .build(),
        );
    };
    match p.container {
        Some(name) => record(format_args!("{name}: {}", p.message)),
        None => record(format_args!("{}", p.message)),
    }
}

/// One log line of liblxc, taken apart.
#[derive(Debug, PartialEq, Eq)]
struct Parsed<'a> {
    level: ::log::Level,
    container: Option<&'a str>,
    category: Option<&'a str>,
    file: Option<&'a str>,
    line: Option<u32>,
    message: &'a str,
}

/// Takes apart `PREFIX [NAME] YYYYmmddHHMMSS.mmm LEVEL CATEGORY - FILE:FUNC:LINE - MESSAGE`
/// (liblxc's `log_append_logfile`, 4.0 to 7.0).
fn parse(line: &str) -> Parsed<'_> {
    let unparsed = Parsed {
        level: ::log::Level::Info,
        container: None,
        category: None,
        file: None,
        line: None,
        message: line,
    };
    let Some((head, rest)) = line.split_once(" - ") else { return unparsed };
    let words: Vec<&str> = head.split_whitespace().collect();
    let n = words.len();
    if n < 4 {
        return unparsed;
    }
    let (time, level, category) = (words[n - 3], words[n - 2], words[n - 1]);
    if !time.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return unparsed;
    }
    let level = match level {
        "TRACE" => ::log::Level::Trace,
        "DEBUG" => ::log::Level::Debug,
        "INFO" | "NOTICE" => ::log::Level::Info,
        "WARN" => ::log::Level::Warn,
        "ERROR" | "CRIT" | "ALERT" | "FATAL" => ::log::Level::Error,
        _ => return unparsed,
    };
    // The container's name is the one word between the prefix and the time
    // (liblxc's names have no spaces); more words belong to the prefix.
    let container = (n >= 5).then(|| words[n - 4]);
    let (location, message) = rest.split_once(" - ").unwrap_or((rest, ""));
    let mut loc = location.rsplitn(3, ':');
    let line_no = loc.next().and_then(|l| l.parse().ok());
    let _func = loc.next();
    let file = loc.next();
    Parsed { level, container, category: Some(category), file, line: line_no, message }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use log::Level;

    #[test]
    fn liblxc_lines_come_apart() {
        let p = parse("lxc web 20261128025800.123 DEBUG    start - ../src/lxc/start.c:lxc_start:2206 - Started \"/sbin/init\" with pid \"42\"");
        assert_eq!(p.level, Level::Debug);
        assert_eq!(p.container, Some("web"));
        assert_eq!(p.category, Some("start"));
        assert_eq!(p.file, Some("../src/lxc/start.c"));
        assert_eq!(p.line, Some(2206));
        assert_eq!(p.message, "Started \"/sbin/init\" with pid \"42\"");
        let p = parse("lxc 20261128025800.123 NOTICE   utils - utils.c:f:1 - a - b");
        assert_eq!((p.level, p.container, p.message), (Level::Info, None, "a - b"));
        let p = parse("lxc-start web 20261128025800.123 ERROR    cgfsng - x.c:g:7 - Failed");
        assert_eq!((p.level, p.container, p.category), (Level::Error, Some("web"), Some("cgfsng")));
        let p = parse("not a liblxc line - at all");
        assert_eq!((p.level, p.category, p.message), (Level::Info, None, "not a liblxc line - at all"));
    }
}
