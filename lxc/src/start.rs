//! Options of [`Container::start_with`](crate::Container::start_with).

/// How to start a container (the arguments of `lxc_container.start` and the
/// `want_daemonize` / `want_close_all_fds` settings, `lxc-start`).
///
/// The default starts the container's own init, daemonized: `start` returns
/// once the container is running and the program goes on. A start in the
/// foreground (`daemonize(false)`) blocks until the container stops, and
/// liblxc allows it only in a single-threaded process.
///
/// ```
/// use lxc::StartOptions;
/// // Run /bin/sh as the container's command under liblxc's minimal init
/// // (lxc-execute style).
/// let opts = StartOptions::new().use_init(true).args(["/bin/sh", "-c", "sleep 5"]);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StartOptions {
    pub(crate) args: Vec<String>,
    pub(crate) use_init: bool,
    pub(crate) daemonize: bool,
    pub(crate) close_all_fds: Option<bool>,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions { args: Vec::new(), use_init: false, daemonize: true, close_all_fds: None }
    }
}

impl StartOptions {
    /// The defaults: the container's init, daemonized.
    pub fn new() -> Self {
        Self::default()
    }
    /// Runs the command under liblxc's minimal init (`lxc-init`), like
    /// `lxc-execute` (the `useinit` argument of `start`).
    pub fn use_init(mut self, use_init: bool) -> Self {
        self.use_init = use_init;
        self
    }
    builder_args!(
        "the command to run instead of the configured init (`lxc.init.cmd`); the first one is the \
         program. liblxc passes them as an argv (`execvp`), never through a configuration file or \
         a shell, so any text but NUL is accepted"
    );
    /// Whether to daemonize (default `true`; `want_daemonize`).
    pub fn daemonize(mut self, daemonize: bool) -> Self {
        self.daemonize = daemonize;
        self
    }
    /// Whether liblxc closes every inherited file descriptor in the
    /// container (`want_close_all_fds`, `lxc-start -C`); unset keeps the
    /// container object's setting.
    pub fn close_all_fds(mut self, close: bool) -> Self {
        self.close_all_fds = Some(close);
        self
    }
}
