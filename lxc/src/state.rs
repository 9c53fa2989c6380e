//! The states a container can be in.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A container's state, as liblxc names it (`lxc_container.state`,
/// `lxc-info -s`).
///
/// ```
/// use lxc::State;
/// let s: State = "RUNNING".parse().unwrap();
/// assert_eq!(s, State::Running);
/// assert_eq!(s.to_string(), "RUNNING");
/// assert!("running".parse::<State>().is_ok()); // case does not matter
/// assert!("BOGUS".parse::<State>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Not running.
    Stopped,
    /// Being started.
    Starting,
    /// Running.
    Running,
    /// Being stopped.
    Stopping,
    /// Start or stop is being aborted.
    Aborting,
    /// Being frozen.
    Freezing,
    /// Frozen: every process is suspended.
    Frozen,
    /// Unfrozen again.
    Thawed,
}

impl State {
    /// Every state, in liblxc's order (`lxc_get_wait_states`).
    pub const ALL: [State; 8] = [
        State::Stopped,
        State::Starting,
        State::Running,
        State::Stopping,
        State::Aborting,
        State::Freezing,
        State::Frozen,
        State::Thawed,
    ];

    /// The name liblxc uses, `"RUNNING"` for example.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Stopped => "STOPPED",
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Stopping => "STOPPING",
            State::Aborting => "ABORTING",
            State::Freezing => "FREEZING",
            State::Frozen => "FROZEN",
            State::Thawed => "THAWED",
        }
    }

    /// The same as `as_str`, NUL-terminated for C.
    pub(crate) const fn as_cstr(self) -> &'static std::ffi::CStr {
        match self {
            State::Stopped => c"STOPPED",
            State::Starting => c"STARTING",
            State::Running => c"RUNNING",
            State::Stopping => c"STOPPING",
            State::Aborting => c"ABORTING",
            State::Freezing => c"FREEZING",
            State::Frozen => c"FROZEN",
            State::Thawed => c"THAWED",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        State::ALL.into_iter().find(|st| st.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            Error::invalid(
                "state",
                s,
                "is not one of STOPPED, STARTING, RUNNING, STOPPING, ABORTING, FREEZING, FROZEN, THAWED",
            )
        })
    }
}
