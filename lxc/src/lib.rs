//! Safe, complete and fast bindings to liblxc, the C library behind Linux
//! containers (LXC).
//!
//! The API follows ruby-lxc's names where Rust allows: [`Container::config_item`],
//! [`Container::set_config_item`], [`Container::cgroup_item`],
//! [`Container::save_config`], [`Container::running_config_item`],
//! [`Container::keys`], ... Options are builders ([`CreateOptions`],
//! [`StartOptions`], [`Log`]), states are typed ([`State`]), and every
//! failure is an [`Error`] that names the operation and the container.
//!
//! ```no_run
//! use lxc::{Container, CreateOptions, State};
//! use std::time::Duration;
//!
//! let c = Container::with_lxcpath("demo", "/tmp/lxc-demo")?;
//! c.set_config_item("lxc.net.0.type", "empty")?;
//! c.create(&CreateOptions::new().template("busybox").quiet(true))?;
//! c.start()?;
//! c.wait(State::Running, Duration::from_secs(10))?;
//! c.set_cgroup_item("memory.limit_in_bytes", "10000000")?;
//! assert_eq!(c.cgroup_item("memory.limit_in_bytes")?, "9998336"); // page-rounded
//! c.stop()?;
//! c.destroy()?;
//! # Ok::<(), lxc::Error>(())
//! ```
//!
//! Where to find the wrapper of a liblxc function: a member of
//! `struct lxc_container` is a method of [`Container`] with the same name
//! (`get_` dropped: `get_config_item` is [`Container::config_item`]); a
//! global function is a function of this crate with the `lxc_` prefix
//! dropped ([`version`], [`global_config_item`], [`has_api_extension`],
//! [`list_defined_containers`], ...). The raw bindings are [`sys`].
//!
//! The crate builds against the liblxc headers on the host (4.0 to 7.0);
//! members a header lacks are left out at build time, and members that the
//! library loaded at run time lacks give [`Error::Unsupported`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

/// The `arg` and `args` methods of a builder with an `args: Vec<String>`
/// field: by value for option builders, by `&mut` for command builders.
macro_rules! builder_args {
    ($what:literal) => {
        #[doc = concat!("Adds one argument of ", $what, ".")]
        pub fn arg(mut self, arg: impl Into<String>) -> Self {
            self.args.push(arg.into());
            self
        }
        #[doc = concat!("Adds arguments of ", $what, ".")]
        pub fn args<I, S>(mut self, args: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self.args.extend(args.into_iter().map(Into::into));
            self
        }
    };
    (&mut $what:literal) => {
        #[doc = concat!("Adds one argument of ", $what, ".")]
        pub fn arg(&mut self, arg: impl Into<String>) -> &mut Self {
            self.args.push(arg.into());
            self
        }
        #[doc = concat!("Adds arguments of ", $what, ".")]
        pub fn args<I, S>(&mut self, args: I) -> &mut Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self.args.extend(args.into_iter().map(Into::into));
            self
        }
    };
}

/// The attach settings of a command builder (`self.opts`), shared by
/// [`Command`] and, with the `tokio` feature, `tokio::Command`.
macro_rules! command_setters {
    () => {
        stdio_setters!(
            "The program's stdin (default [`Stdio::Null`]).",
            "The program's stdout (default: inherited; piped for `output`).",
            "The program's stderr (default: inherited; piped for `output`)."
        );
        /// Sets an environment variable.
        pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
            self.opts = std::mem::take(&mut self.opts).env(key, value);
            self
        }
        /// Sets environment variables.
        pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
        where
            I: IntoIterator<Item = (K, V)>,
            K: AsRef<str>,
            V: AsRef<str>,
        {
            for (k, v) in vars {
                self.env(k.as_ref(), v.as_ref());
            }
            self
        }
        /// Starts from an empty environment (liblxc still sets `PATH` and
        /// `container`); variables set with [`Self::env`] are added.
        pub fn env_clear(&mut self) -> &mut Self {
            self.opts = std::mem::take(&mut self.opts).env_policy($crate::EnvPolicy::Clear);
            self
        }
        /// The working directory inside the container.
        pub fn current_dir(&mut self, dir: impl AsRef<std::path::Path>) -> &mut Self {
            self.opts = std::mem::take(&mut self.opts).cwd(dir);
            self
        }
        /// The user id inside the container.
        pub fn uid(&mut self, uid: u32) -> &mut Self {
            self.opts = std::mem::take(&mut self.opts).uid(uid);
            self
        }
        /// The group id inside the container.
        pub fn gid(&mut self, gid: u32) -> &mut Self {
            self.opts = std::mem::take(&mut self.opts).gid(gid);
            self
        }
        /// Supplementary groups.
        pub fn groups(&mut self, groups: impl IntoIterator<Item = u32>) -> &mut Self {
            self.opts = std::mem::take(&mut self.opts).groups(groups);
            self
        }
        /// Only these namespaces of the container are entered.
        pub fn namespaces(&mut self, ns: $crate::Namespaces) -> &mut Self {
            self.opts = std::mem::take(&mut self.opts).namespaces(ns);
            self
        }
        /// Replaces all attach options at once (their stdio settings are
        /// overridden by [`Self::stdin`], [`Self::stdout`],
        /// [`Self::stderr`]).
        pub fn options(&mut self, opts: $crate::AttachOptions<'static>) -> &mut Self {
            self.opts = opts;
            self
        }
    };
}

/// The environment and directory setters of a session command (`env`,
/// `clear_env` and `cwd` fields), shared by [`SessionCommand`] and, with the
/// `tokio` feature, `tokio::SessionCommand`.
macro_rules! session_command_setters {
    () => {
        /// Sets an environment variable for this command.
        pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
            self.env.push(format!("{key}={value}"));
            self
        }
        /// Starts this command from an empty environment (plus its
        /// [`Self::env`] variables).
        pub fn env_clear(&mut self) -> &mut Self {
            self.clear_env = true;
            self
        }
        /// The working directory inside the container.
        pub fn current_dir(&mut self, dir: impl AsRef<std::path::Path>) -> &mut Self {
            self.cwd = Some(dir.as_ref().to_owned());
            self
        }
    };
}

/// The `stdin`, `stdout` and `stderr` setters of a command builder with
/// `Option<Stdio>` fields of those names.
macro_rules! stdio_setters {
    ($in_doc:literal, $out_doc:literal, $err_doc:literal) => {
        #[doc = $in_doc]
        pub fn stdin(&mut self, s: Stdio) -> &mut Self {
            self.stdin = Some(s);
            self
        }
        #[doc = $out_doc]
        pub fn stdout(&mut self, s: Stdio) -> &mut Self {
            self.stdout = Some(s);
            self
        }
        #[doc = $err_doc]
        pub fn stderr(&mut self, s: Stdio) -> &mut Self {
            self.stderr = Some(s);
            self
        }
    };
}

mod attach;
mod bytesize;
mod command;
mod config;
mod console;
mod container;
mod create;
mod cstr;
mod devices;
mod error;
mod fds;
mod global;
mod helper;
#[cfg(feature = "image")]
mod image;
#[cfg(feature = "image")]
mod image_store;
mod layout;
mod list;
mod log;
#[cfg(feature = "log")]
mod log_forward;
mod migrate;
mod monitor_cgroup;
mod mount;
mod netconfig;
mod network;
mod reaper;
mod running;
#[cfg(feature = "serde")]
mod serde_impls;
mod session;
mod snapshot;
mod start;
mod state;
mod stats;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
#[cfg(feature = "valgrind")]
mod valgrind;

pub use lxc_sys as sys;

pub use attach::{AttachFlags, AttachOptions, EnvPolicy, Namespaces, Personality};
pub use bytesize::ByteSize;
pub use command::{AttachChild, Command, Stdio};
pub use config::ConfigValue;
pub use console::Console;
pub use container::Container;
pub use create::{host_image_arch, BackingStore, BdevSpecs, CreateOptions, DownloadOptions};
pub use error::{Error, Result};
pub use global::{
    check_container_name, config_item_is_supported, config_key_is_known, default_lxcpath, global_config_item,
    has_api_extension, has_container_member, header_version, runtime_version, set_helper_server, version,
    wait_states, Version,
};
#[cfg(feature = "image")]
pub use image::{
    ExportOptions, ExportProgress, Image, ImageMetadata, DEFAULT_EXPIRY, META_FILE, ROOTFS_FILE,
};
#[cfg(feature = "image")]
pub use image_store::{ImageKey, ImageStore, StoredImage};
pub use list::{containers, list_active_containers, list_all_containers, list_defined_containers, ListKind};
pub use log::{log_close, Log, LogLevel};
#[cfg(feature = "log")]
#[cfg_attr(docsrs, doc(cfg(feature = "log")))]
pub use log_forward::LogForwarder;
pub use migrate::{MigrateCommand, MigrateOptions};
pub use netconfig::NetDevice;
pub use network::AddressFamily;
pub use session::{AttachSession, SessionCommand};
pub use snapshot::{CloneFlags, CloneOptions, Snapshot};
pub use start::StartOptions;
pub use state::State;
pub use stats::{
    cgroup_layout, BlkioStats, CgroupLayout, CpuStats, InterfaceStats, IoLimit, MemoryStats, Stats,
};
