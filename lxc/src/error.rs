//! The crate's one error type.

use std::fmt;
use std::time::Duration;

use crate::State;

/// What went wrong, with the operation, the container and what liblxc knows.
///
/// Every fallible call of the crate returns this type. Input that liblxc
/// must never see (NUL bytes; line breaks and other control characters in
/// anything that reaches a configuration file; names outside the accepted
/// set, see [`check_container_name`](crate::check_container_name)) is
/// refused with [`Error::InvalidArgument`] before any C code runs.
///
/// ```
/// let err = lxc::Container::with_lxcpath("../etc", "/tmp").unwrap_err();
/// assert!(matches!(err, lxc::Error::InvalidArgument { .. }));
/// assert_eq!(
///     err.to_string(),
///     "invalid container name \"../etc\": must not contain '/'"
/// );
/// ```
///
/// Its `Debug` form is the message in words, as its `Display` (that is
/// what `fn main() -> Result<(), lxc::Error>` prints when it fails), with
/// the variant's name; `{:#?}` adds the `errno` and the source chain. Match
/// on the variants, not on either text.
///
/// ```
/// let err = lxc::Container::with_lxcpath("../etc", "/tmp").unwrap_err();
/// assert_eq!(
///     format!("{err:?}"),
///     "InvalidArgument: invalid container name \"../etc\": must not contain '/'"
/// );
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument was refused before liblxc saw it.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidArgument {
        /// What the argument is ("container name", "config key", ...).
        what: &'static str,
        /// The argument, lossily as text.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// liblxc reported failure.
    #[error("{op} failed for container {container:?}{}", Detail(*error_num, error_string, *errno))]
    Failed {
        /// The liblxc call, by its C name (`start`, `set_config_item`, ...).
        op: &'static str,
        /// The container's name (empty for global calls).
        container: String,
        /// `lxc_container.error_num` after the call (0 when liblxc set none).
        error_num: i32,
        /// `lxc_container.error_string` after the call, if liblxc set one.
        error_string: Option<String>,
        /// `errno` after the call, if it was set by the failing call.
        errno: Option<i32>,
    },

    /// The configuration key is not known to the liblxc in use.
    #[error("unknown config key {key:?} (not supported by liblxc {})", crate::version())]
    UnknownConfigKey {
        /// The key.
        key: String,
    },

    /// The container is in a state in which the operation cannot be done.
    #[error("cannot {op} container {container:?}: it is {state}, {expected}")]
    WrongState {
        /// The operation.
        op: &'static str,
        /// The container's name.
        container: String,
        /// The state it was found in.
        state: State,
        /// What the operation needs, in words ("it must be running").
        expected: &'static str,
    },

    /// The container is being created, or a create or copy of it was
    /// interrupted and left it half-made (liblxc's `partial` marker is in
    /// its directory): destroy it and create it again.
    #[error("cannot {op} container {container:?}: it is only partly created (a create or copy is running or was interrupted); destroy it and create it again")]
    PartiallyCreated {
        /// The operation.
        op: &'static str,
        /// The container's name.
        container: String,
    },

    /// The container is not defined (no configuration file in its lxcpath).
    #[error("cannot {op} container {container:?}: it is not defined in {lxcpath:?}")]
    NotDefined {
        /// The operation.
        op: &'static str,
        /// The container's name.
        container: String,
        /// The lxcpath that was searched.
        lxcpath: String,
    },

    /// The caller may not use the container: it belongs to another user.
    /// An unprivileged caller gets this for root's containers (and other
    /// users'): their directory or configuration cannot be read, or the
    /// running container's monitor refuses the caller's commands
    /// ([`Container::may_control`](crate::Container::may_control) is false).
    #[error("cannot {op} container {container:?}: permission denied, {reason}")]
    PermissionDenied {
        /// The operation.
        op: &'static str,
        /// The container's name.
        container: String,
        /// Why, in words.
        reason: &'static str,
    },

    /// The container is defined already, so it cannot be created again.
    #[error("cannot {op} container {container:?}: it is already defined")]
    AlreadyDefined {
        /// The operation.
        op: &'static str,
        /// The container's name.
        container: String,
    },

    /// The crate refused to let liblxc delete a path, because what liblxc
    /// would delete is not what the container owns: its directory or its
    /// root filesystem (`lxc.rootfs.path`, for the `dir` and `btrfs`
    /// stores and the upper directory of `overlay`) is, or passes through,
    /// a symbolic link leading out of the container's directory, or is `/`
    /// or a directory above the container's own. liblxc (and
    /// `lxc-destroy`) follow such a link and empty its target.
    #[error("cannot {op} container {container:?}: {path:?} {reason}")]
    UnsafePath {
        /// The operation (`destroy`, `destroy_with_snapshots`).
        op: &'static str,
        /// The container's name.
        container: String,
        /// The path liblxc would have deleted.
        path: std::path::PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },

    /// The operation did not finish within its timeout.
    #[error("{op} of container {container:?} timed out after {timeout:?}")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// The container's name.
        container: String,
        /// The timeout that ran out.
        timeout: Duration,
    },

    /// [`Container::wait`](crate::Container::wait) returned well before its
    /// timeout without the container reaching the state waited for. liblxc
    /// ends a wait at once when the container's monitor reports another
    /// state (the container stopped while `FROZEN` was awaited: its monitor
    /// went away) or cannot be asked (the command socket failed). This is
    /// not a [`Error::Timeout`]: waiting longer would not have helped.
    #[error("wait of container {container:?} for {wanted} ended after {after:?} without reaching it: it is {state}")]
    WaitInterrupted {
        /// The container's name.
        container: String,
        /// The state waited for.
        wanted: State,
        /// The state the container was found in when the wait ended.
        state: State,
        /// How long the wait lasted.
        after: Duration,
    },

    /// The operation is not available with the liblxc this program runs
    /// against (an older library than the header, or a missing API extension).
    #[error("{op} is not supported by liblxc {}: {reason}", crate::version())]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// Why.
        reason: &'static str,
    },

    /// liblxc refuses to start a container in the foreground (not
    /// daemonized) from a process that has more than one thread; the crate
    /// checks this first so the reason is clear.
    #[error(
        "cannot start container {container:?} in the foreground: this process has {threads} threads \
         and liblxc only starts non-daemonized containers from a single-threaded process; \
         start it daemonized (the default)"
    )]
    ForegroundStartInThreadedProcess {
        /// The container's name.
        container: String,
        /// Threads counted in `/proc/self/status`.
        threads: usize,
    },

    /// This process ignores `SIGCHLD` (`signal(SIGCHLD, SIG_IGN)`) or set
    /// `SA_NOCLDWAIT`, so the kernel reaps its children by itself and
    /// `waitpid` fails with `ECHILD`. liblxc's attach waits for its
    /// intermediate child that way, and a foreground start makes this
    /// process the container's monitor, which must see its init die.
    /// Changing the disposition for the call would race other threads'
    /// children, so the crate refuses. Restore the default
    /// (`signal(SIGCHLD, SIG_DFL)`) and reap children, or run the work in a
    /// process that does. (Daemonized starts, creates, clones and
    /// snapshots run in the crate's helper process and work.)
    #[error(
        "cannot {op}: this process ignores SIGCHLD (or set SA_NOCLDWAIT), so its children are reaped \
         by the kernel and liblxc cannot wait for them; restore SIGCHLD's default disposition"
    )]
    SigchldIgnored {
        /// The operation.
        op: &'static str,
    },

    /// liblxc returned something that is not valid: a null pointer, text that
    /// is not UTF-8, or a value out of range.
    #[error("{op}: liblxc returned {what}")]
    BadReturn {
        /// The liblxc call.
        op: &'static str,
        /// What was wrong with it.
        what: String,
    },

    /// The program to run in the container could not be started: not found
    /// in the container's `PATH`, not executable, ... (`source` carries the
    /// errno of `execvp`).
    #[error("cannot run {program:?} in container {container:?}: {source}")]
    ProgramNotStarted {
        /// The container's name.
        container: String,
        /// The program.
        program: String,
        /// Why `execvp` failed.
        #[source]
        source: std::io::Error,
    },

    /// liblxc could not attach to the container: the attached child died
    /// before it could run anything (entering a namespace, the cgroup, the
    /// LSM profile or the user failed; liblxc's log says which).
    #[error("liblxc could not attach to container {container:?}{}", .status.map(|s| format!(" (its helper ended with {s})")).unwrap_or_default())]
    AttachFailed {
        /// The container's name.
        container: String,
        /// How liblxc's attached child ended.
        status: Option<std::process::ExitStatus>,
    },

    /// An [`AttachSession`](crate::AttachSession) cannot run commands any
    /// more: its helper died (the container stopped, or it was killed).
    #[error("the attach session of container {container:?} is closed: {reason}")]
    SessionClosed {
        /// The container's name.
        container: String,
        /// What happened.
        reason: &'static str,
    },

    /// An operating system call made by the crate itself failed.
    #[error("{op}: {source}")]
    Io {
        /// What the crate was doing.
        op: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The variant's name, for `Debug`.
    fn kind(&self) -> &'static str {
        match self {
            Error::InvalidArgument { .. } => "InvalidArgument",
            Error::Failed { .. } => "Failed",
            Error::UnknownConfigKey { .. } => "UnknownConfigKey",
            Error::WrongState { .. } => "WrongState",
            Error::PartiallyCreated { .. } => "PartiallyCreated",
            Error::NotDefined { .. } => "NotDefined",
            Error::PermissionDenied { .. } => "PermissionDenied",
            Error::AlreadyDefined { .. } => "AlreadyDefined",
            Error::UnsafePath { .. } => "UnsafePath",
            Error::Timeout { .. } => "Timeout",
            Error::WaitInterrupted { .. } => "WaitInterrupted",
            Error::Unsupported { .. } => "Unsupported",
            Error::ForegroundStartInThreadedProcess { .. } => "ForegroundStartInThreadedProcess",
            Error::SigchldIgnored { .. } => "SigchldIgnored",
            Error::BadReturn { .. } => "BadReturn",
            Error::ProgramNotStarted { .. } => "ProgramNotStarted",
            Error::AttachFailed { .. } => "AttachFailed",
            Error::SessionClosed { .. } => "SessionClosed",
            Error::Io { .. } => "Io",
        }
    }
}

/// In words: a `main` that returns the error prints this form.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {self}", self.kind())?;
        if f.alternate() {
            if let Some(e) = self.errno() {
                write!(f, "\n  errno: {e} ({:?})", std::io::Error::from_raw_os_error(e).kind())?;
            }
            let mut source = std::error::Error::source(self);
            while let Some(s) = source {
                write!(f, "\n  caused by: {s}")?;
                source = s.source();
            }
        }
        Ok(())
    }
}

/// The result type of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

struct Detail<'a>(i32, &'a Option<String>, Option<i32>);

impl fmt::Display for Detail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.1 {
            write!(f, ": {s}")?;
        }
        if self.0 != 0 {
            write!(f, " (error_num {})", self.0)?;
        }
        if let Some(e) = self.2 {
            write!(f, " (errno {e}: {})", std::io::Error::from_raw_os_error(e))?;
        }
        if self.1.is_none() && self.0 == 0 && self.2.is_none() {
            f.write_str(" (liblxc gave no reason; its log has the details, see lxc::Log)")?;
        }
        Ok(())
    }
}

impl Error {
    /// The `errno` value carried by this error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Failed { errno, .. } => *errno,
            Error::Io { source, .. } | Error::ProgramNotStarted { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    pub(crate) fn invalid(what: &'static str, value: impl AsRef<[u8]>, reason: &'static str) -> Self {
        Error::InvalidArgument { what, value: String::from_utf8_lossy(value.as_ref()).into_owned(), reason }
    }

    pub(crate) fn bad_return(op: &'static str, what: impl Into<String>) -> Self {
        Error::BadReturn { op, what: what.into() }
    }
}
