//! The main demonstration: create a busybox container under a temporary
//! lxcpath, start it, limit its memory through its cgroup and read the limit
//! back, run a command in it, then stop and destroy it.
//!
//! ```sh
//! cargo run --example demo                  # a temporary lxcpath, removed at the end
//! cargo run --example demo -- --lxcpath /tmp/lxc --name demo --keep
//! ```
//! Needs root (or an unprivileged setup with subordinate ids).

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use lxc::{Container, CreateOptions, State};

struct Args {
    lxcpath: Option<PathBuf>,
    name: String,
    keep: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { lxcpath: None, name: "demo".into(), keep: false };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--lxcpath" | "-P" => args.lxcpath = Some(it.next().ok_or("--lxcpath needs a path")?.into()),
            "--name" | "-n" => args.name = it.next().ok_or("--name needs a name")?,
            "--keep" => args.keep = true,
            "-h" | "--help" => {
                println!("usage: demo [--lxcpath PATH] [--name NAME] [--keep]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

/// Stops and destroys the container, and removes a temporary lxcpath, when
/// the demo ends: normally, on an error, or on a panic.
struct Cleanup<'a> {
    c: &'a Container,
    temp: Option<PathBuf>,
    keep: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if self.keep {
            println!("keeping {} (in {})", self.c.name(), self.c.config_path().unwrap_or_default().display());
            return;
        }
        if self.c.is_running() {
            println!("stopping {}", self.c.name());
            let _ = self.c.stop();
            let _ = self.c.wait(State::Stopped, Duration::from_secs(10));
        }
        if self.c.is_defined() {
            println!("destroying {}", self.c.name());
            if let Err(e) = self.c.destroy() {
                eprintln!("destroy failed: {e}");
            }
        }
        if let Some(dir) = &self.temp {
            let _ = std::fs::remove_dir_all(dir);
            let _ = std::fs::remove_dir_all(
                PathBuf::from("/run/lxc/lock").join(dir.strip_prefix("/").unwrap_or(dir)),
            );
        }
    }
}

fn run(args: Args) -> Result<(), lxc::Error> {
    println!("liblxc {} (built against {})", lxc::version(), lxc::header_version());
    let (lxcpath, temp) = match args.lxcpath {
        Some(p) => (p, None),
        None => {
            let dir = std::env::temp_dir().join(format!("lxc-demo.{}", std::process::id()));
            std::fs::create_dir_all(&dir)
                .map_err(|source| lxc::Error::Io { op: "create the lxcpath", source })?;
            (dir.clone(), Some(dir))
        }
    };
    println!("lxcpath {}", lxcpath.display());

    let c = Container::with_lxcpath(&args.name, &lxcpath)?;
    if c.is_defined() {
        println!("{} already exists; not touching it", c.name());
        return Err(lxc::Error::AlreadyDefined { op: "create", container: args.name });
    }
    let cleanup = Cleanup { c: &c, temp, keep: args.keep };

    println!("creating {} with the busybox template (no network)", c.name());
    c.set_config_item("lxc.net.0.type", "empty")?;
    c.create(&CreateOptions::new().template("busybox").quiet(true))?;

    println!("starting {}", c.name());
    c.start()?;
    c.wait(State::Running, Duration::from_secs(10))?;
    let mut checks = common::Checks::default();
    let state = c.state()?;
    let pid = c.init_pid().unwrap_or(-1);
    println!("{} is {state}, init pid {pid}", c.name());
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    checks.check(
        state == State::Running && comm.trim() == "init",
        format!("{} is RUNNING and pid {pid} is its init on the host ({:?})", c.name(), comm.trim()),
    );

    // cgroup v1 names the memory limit memory.limit_in_bytes, v2 memory.max.
    let key =
        if c.cgroup_item("memory.limit_in_bytes").is_ok() { "memory.limit_in_bytes" } else { "memory.max" };
    println!("{key} before: {}", c.cgroup_item(key)?);
    c.set_cgroup_item(key, "10000000")?;
    let after = c.cgroup_item(key)?;
    println!("{key} after setting 10000000: {after}");
    checks.check(
        after.parse::<u64>().is_ok_and(|v| v <= 10_000_000 && v > 10_000_000 - 4096),
        "the kernel holds 10000000, rounded down to a page",
    );

    println!("running a command inside:");
    let out = c
        .command("/bin/sh")
        .args(["-c", "echo \"hello from $(hostname)\"; uname -sr; grep ':memory:' /proc/self/cgroup || grep '^0::' /proc/self/cgroup"])
        .output()?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("  | {line}");
    }
    println!("command exited with {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    checks.check(out.status.success(), "the command succeeded");
    checks.check(
        text.lines().next() == Some(&format!("hello from {}", c.name())),
        format!("it ran inside: its hostname is {}", c.name()),
    );
    // In the container's cgroup namespace: its root, or on cgroup v2 the
    // leaf `.lxc` where liblxc puts attached processes.
    checks.check(
        text.lines().skip(2).any(|l| l.ends_with(":/") || l.ends_with(":/.lxc")),
        "it ran inside: its memory cgroup is the container's own (/ or /.lxc in its cgroup namespace)",
    );
    if !args.keep {
        drop(cleanup);
        checks.check(!c.is_defined() && !c.is_running(), format!("{} is stopped and destroyed", c.name()));
    }
    checks.finish()
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => {
            println!("done");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}
