//! Checkpoint and restore with CRIU: `checkpoint`, `restore`, `migrate`.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::ptr;

use crate::container::Access;
use crate::cstr::{cstring, path_bytes};
use crate::error::{Error, Result};
use crate::layout::method;
use crate::{sys, Container};

/// The operation of [`Container::migrate`] (`MIGRATE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MigrateCommand {
    /// Dump the memory ahead of the final dump (`MIGRATE_PRE_DUMP`).
    PreDump,
    /// Dump the container (`MIGRATE_DUMP`).
    Dump,
    /// Restore a dump (`MIGRATE_RESTORE`).
    Restore,
    /// Ask CRIU whether it has the features of
    /// [`MigrateOptions::features_to_check`] (`MIGRATE_FEATURE_CHECK`).
    FeatureCheck,
}

impl MigrateCommand {
    fn raw(self) -> u32 {
        match self {
            MigrateCommand::PreDump => sys::MIGRATE_PRE_DUMP,
            MigrateCommand::Dump => sys::MIGRATE_DUMP,
            MigrateCommand::Restore => sys::MIGRATE_RESTORE,
            MigrateCommand::FeatureCheck => sys::MIGRATE_FEATURE_CHECK,
        }
    }
}

/// Options of [`Container::migrate`] (`struct migrate_opts`), as a builder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateOptions {
    directory: PathBuf,
    verbose: bool,
    stop: bool,
    predump_dir: Option<PathBuf>,
    pageserver_address: Option<String>,
    pageserver_port: Option<String>,
    preserves_inodes: bool,
    action_script: Option<PathBuf>,
    disable_skip_in_flight: bool,
    ghost_limit: u64,
    features_to_check: u64,
}

impl MigrateOptions {
    /// Options for a dump to or a restore from `directory`.
    pub fn new(directory: impl AsRef<Path>) -> Self {
        MigrateOptions { directory: directory.as_ref().to_owned(), ..Default::default() }
    }
    /// CRIU's verbose logs.
    pub fn verbose(mut self, v: bool) -> Self {
        self.verbose = v;
        self
    }
    /// Stop the container after the dump.
    pub fn stop(mut self, v: bool) -> Self {
        self.stop = v;
        self
    }
    /// The pre-dump directory, relative to the directory.
    pub fn predump_dir(mut self, p: impl AsRef<Path>) -> Self {
        self.predump_dir = Some(p.as_ref().to_owned());
        self
    }
    /// Where memory pages go (a CRIU page server).
    pub fn pageserver(mut self, address: &str, port: u16) -> Self {
        self.pageserver_address = Some(address.to_owned());
        self.pageserver_port = Some(port.to_string());
        self
    }
    /// The rootfs keeps its inodes across the migration.
    pub fn preserves_inodes(mut self, v: bool) -> Self {
        self.preserves_inodes = v;
        self
    }
    /// A CRIU action script.
    pub fn action_script(mut self, p: impl AsRef<Path>) -> Self {
        self.action_script = Some(p.as_ref().to_owned());
        self
    }
    /// Do not skip in-flight TCP connections.
    pub fn disable_skip_in_flight(mut self, v: bool) -> Self {
        self.disable_skip_in_flight = v;
        self
    }
    /// The largest deleted file CRIU dumps (bytes; 0 is CRIU's default).
    pub fn ghost_limit(mut self, bytes: u64) -> Self {
        self.ghost_limit = bytes;
        self
    }
    /// Features to ask about with [`MigrateCommand::FeatureCheck`]
    /// (`FEATURE_MEM_TRACK` = 1, `FEATURE_LAZY_PAGES` = 2).
    pub fn features_to_check(mut self, bits: u64) -> Self {
        self.features_to_check = bits;
        self
    }
}

impl Container {
    /// Runs a CRIU operation (`migrate`).
    pub fn migrate(&self, cmd: MigrateCommand, opts: &MigrateOptions) -> Result<()> {
        let f = method!(self.migrate);
        let dir = cstring("directory", path_bytes(&opts.directory))?;
        let opt = |v: Option<&[u8]>, what| v.map(|v| cstring(what, v)).transpose();
        let predump = opt(opts.predump_dir.as_deref().map(path_bytes), "pre-dump directory")?;
        let addr = opt(opts.pageserver_address.as_deref().map(str::as_bytes), "page server address")?;
        let port = opt(opts.pageserver_port.as_deref().map(str::as_bytes), "page server port")?;
        let script = opt(opts.action_script.as_deref().map(path_bytes), "action script")?;
        let p = |c: &Option<CString>| c.as_ref().map_or(ptr::null_mut(), |c| c.as_ptr().cast_mut());
        let mut raw = sys::migrate_opts {
            directory: dir.as_ptr().cast_mut(),
            verbose: opts.verbose,
            stop: opts.stop,
            predump_dir: p(&predump),
            pageserver_address: p(&addr),
            pageserver_port: p(&port),
            preserves_inodes: opts.preserves_inodes,
            action_script: p(&script),
            disable_skip_in_flight: opts.disable_skip_in_flight,
            ghost_limit: opts.ghost_limit,
            features_to_check: opts.features_to_check,
        };
        // A restore makes the container run from this object: a writer.
        let guard = self.hold(Access::WriteFork);
        crate::container::clear_errno();
        // SAFETY: the container is live; raw points to strings alive for the
        // call; the size is the struct's, as liblxc asks.
        let r =
            unsafe { f(self.as_raw(), cmd.raw(), &mut raw, std::mem::size_of::<sys::migrate_opts>() as u32) };
        drop(guard);
        if r == 0 {
            Ok(())
        } else {
            Err(self.failed("migrate"))
        }
    }

    /// Dumps the running container to `directory` with CRIU, and stops it
    /// if `stop` (`checkpoint`, `lxc-checkpoint`).
    pub fn checkpoint(&self, directory: impl AsRef<Path>, stop: bool, verbose: bool) -> Result<()> {
        let f = method!(self.checkpoint);
        let dir = cstring("directory", path_bytes(directory.as_ref()))?;
        self.criu_call("checkpoint", Access::ReadFork, || {
            // SAFETY: the container is live; dir is valid for the call and
            // only read by liblxc.
            unsafe { f(self.as_raw(), dir.as_ptr().cast_mut(), stop, verbose) }
        })
    }

    /// Restores the container from a dump in `directory`
    /// (`restore`, `lxc-checkpoint -r`).
    pub fn restore(&self, directory: impl AsRef<Path>, verbose: bool) -> Result<()> {
        let f = method!(self.restore);
        let dir = cstring("directory", path_bytes(directory.as_ref()))?;
        self.criu_call("restore", Access::WriteFork, || {
            // SAFETY: the container is live; dir is valid for the call and
            // only read by liblxc.
            unsafe { f(self.as_raw(), dir.as_ptr().cast_mut(), verbose) }
        })
    }

    fn criu_call(&self, op: &'static str, access: Access, call: impl FnOnce() -> bool) -> Result<()> {
        // Before the locks: `config_path` takes them too, and a restore
        // holds them exclusively (it waited for itself).
        let lxcpath = self.config_path().ok();
        // Long (for a reader): a CRIU dump takes seconds.
        let guard = self.hold_long(access);
        crate::container::clear_errno();
        let ok = crate::monitor_cgroup::around_start(lxcpath.as_deref().map(|p| (p, self.name())), call);
        drop(guard);
        if ok {
            Ok(())
        } else if !Path::new("/usr/sbin/criu").exists() && !Path::new("/usr/bin/criu").exists() {
            Err(Error::Unsupported { op, reason: "CRIU is not installed" })
        } else {
            Err(self.failed(op))
        }
    }
}
