//! What the examples share: argument parsing, a temporary lxcpath that is
//! removed at the end, and a ready busybox container.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use lxc::{Container, CreateOptions, State};

pub mod recipe;

/// Command-line arguments: `--lxcpath PATH`, `--keep`, `--name NAME`,
/// other `--flag VALUE` pairs, and free arguments (after `--` too).
pub struct Args {
    pub lxcpath: Option<PathBuf>,
    pub keep: bool,
    pub flags: Vec<(String, String)>,
    pub free: Vec<String>,
}

impl Args {
    /// Parses the process's arguments; `switches` are flags without a value.
    pub fn parse(usage: &str, switches: &[&str]) -> Args {
        let mut a = Args { lxcpath: None, keep: false, flags: Vec::new(), free: Vec::new() };
        let mut it = std::env::args().skip(1);
        while let Some(x) = it.next() {
            match x.as_str() {
                "-h" | "--help" => {
                    println!("usage: {usage}");
                    std::process::exit(0);
                }
                "--" => a.free.extend(it.by_ref()),
                "--keep" => a.keep = true,
                "--lxcpath" | "-P" => {
                    a.lxcpath = Some(it.next().unwrap_or_else(|| die("--lxcpath needs a path")).into())
                }
                f if f.starts_with("--") && switches.contains(&f) => {
                    a.flags.push((f.to_owned(), String::new()))
                }
                f if f.starts_with('-') && f.len() > 1 => {
                    let v = it.next().unwrap_or_else(|| die(&format!("{f} needs a value")));
                    a.flags.push((f.to_owned(), v));
                }
                _ => a.free.push(x),
            }
        }
        a
    }

    /// The value of `--flag` (or its short form), if given.
    pub fn get(&self, long: &str, short: &str) -> Option<&str> {
        self.flags.iter().rev().find(|(f, _)| f == long || f == short).map(|(_, v)| v.as_str())
    }

    /// Whether the switch `--flag` was given.
    pub fn has(&self, long: &str) -> bool {
        self.flags.iter().any(|(f, _)| f == long)
    }
}

/// An error for a step of an example that did not go as expected; return
/// it (rather than exit) so that the workspace still cleans up.
pub fn failure(msg: impl Into<String>) -> lxc::Error {
    lxc::Error::Io { op: "example", source: std::io::Error::other(msg.into()) }
}

/// Prints the message and exits with status 2 (only before anything was
/// created: it skips clean-up).
pub fn die(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

/// The lxcpath an example works in: the one given, or a new temporary one.
/// On drop (also after an error or a panic) it stops and destroys every
/// container the example made, unless `--keep`, and removes a temporary
/// lxcpath.
pub struct Workspace {
    pub lxcpath: PathBuf,
    temp: bool,
    keep: bool,
    made: std::cell::RefCell<Vec<String>>,
}

impl Workspace {
    pub fn new(args: &Args, tag: &str) -> Workspace {
        let (lxcpath, temp) = match &args.lxcpath {
            Some(p) => (p.clone(), false),
            None => {
                let p = std::env::temp_dir().join(format!("lxc-example-{tag}.{}", std::process::id()));
                (p, true)
            }
        };
        std::fs::create_dir_all(&lxcpath)
            .unwrap_or_else(|e| die(&format!("cannot create {}: {e}", lxcpath.display())));
        println!("lxcpath {}{}", lxcpath.display(), if temp { " (temporary)" } else { "" });
        Workspace { lxcpath, temp, keep: args.keep, made: Default::default() }
    }

    /// Notes that the example made `name`, so that it is cleaned up.
    pub fn made(&self, name: &str) {
        self.made.borrow_mut().push(name.to_owned());
    }

    /// A new busybox container `name` with no network (`lxc.net.0.type =
    /// empty`), or with the network device given.
    pub fn busybox(&self, name: &str, net: Option<&lxc::NetDevice>) -> lxc::Result<Container> {
        let c = Container::with_lxcpath(name, &self.lxcpath)?;
        if c.is_defined() {
            die(&format!("{name} already exists in {}", self.lxcpath.display()));
        }
        match net {
            Some(dev) => c.set_network_device(0, dev)?,
            None => c.set_config_item("lxc.net.0.type", "empty")?,
        }
        println!("creating {name} (busybox template)");
        self.made(name);
        c.create(&CreateOptions::new().template("busybox").quiet(true))?;
        Ok(c)
    }
}

/// Starts `c` and waits until busybox init runs its main loop.
pub fn start(c: &Container) -> lxc::Result<()> {
    println!("starting {}", c.name());
    c.start()?;
    c.wait(State::Running, Duration::from_secs(10))
}

/// Removes the rootfs's `udhcpc` call: without a DHCP server it flushes the
/// static addresses liblxc configured.
pub fn no_dhcp(lxcpath: &Path, name: &str) {
    let rcs = lxcpath.join(name).join("rootfs/etc/init.d/rcS");
    if let Ok(t) = std::fs::read_to_string(&rcs) {
        let kept: String = t.lines().filter(|l| !l.contains("udhcpc")).map(|l| format!("{l}\n")).collect();
        let _ = std::fs::write(&rcs, kept);
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if self.keep {
            println!("keeping {:?} in {}", self.made.borrow(), self.lxcpath.display());
            return;
        }
        // Newest first: a copy goes before the container it was made from.
        for name in self.made.borrow().iter().rev() {
            let Ok(c) = Container::with_lxcpath(name, &self.lxcpath) else { continue };
            if c.is_running() {
                println!("stopping {name}");
                let _ = c.stop();
                let _ = c.wait(State::Stopped, Duration::from_secs(10));
            }
            if c.is_defined() {
                println!("destroying {name}");
                if c.destroy_with_snapshots().is_err() {
                    let _ = c.destroy();
                }
            }
        }
        if self.temp {
            let _ = std::fs::remove_dir_all(&self.lxcpath);
            let lock =
                Path::new("/run/lxc/lock").join(self.lxcpath.strip_prefix("/").unwrap_or(&self.lxcpath));
            let _ = std::fs::remove_dir_all(lock);
        }
    }
}

/// A bridge with no uplink for the example's own containers, removed on drop.
pub struct Bridge {
    pub name: String,
}

impl Bridge {
    pub fn new(name: &str, host_address: Option<&str>) -> Bridge {
        let run = |args: &[&str]| {
            let ok =
                std::process::Command::new("ip").args(args).status().map(|s| s.success()).unwrap_or(false);
            if !ok {
                die(&format!("ip {} failed", args.join(" ")));
            }
        };
        // A fixed address: a bridge without one takes the lowest of its
        // ports' and changes it whenever that port leaves (a container
        // stops), under the feet of the containers' ARP entries for the
        // host.
        let pid = std::process::id();
        let mac = format!("02:6c:78:{:02x}:{:02x}:{:02x}", (pid >> 16) & 0xff, (pid >> 8) & 0xff, pid & 0xff);
        run(&["link", "add", name, "address", &mac, "type", "bridge"]);
        let b = Bridge { name: name.to_owned() };
        // `die` exits without running destructors: the bridge goes first.
        let run_or_remove = |args: &[&str]| {
            let ok =
                std::process::Command::new("ip").args(args).status().map(|s| s.success()).unwrap_or(false);
            if !ok {
                let _ = std::process::Command::new("ip").args(["link", "del", name]).status();
                die(&format!("ip {} failed", args.join(" ")));
            }
        };
        if let Some(a) = host_address {
            run_or_remove(&["addr", "add", a, "dev", name]);
        }
        run_or_remove(&["link", "set", name, "up"]);
        println!(
            "bridge {name} (no uplink){}",
            host_address.map(|a| format!(", host address {a}")).unwrap_or_default()
        );
        b
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        println!("removing bridge {}", self.name);
        let _ = std::process::Command::new("ip").args(["link", "del", &self.name]).status();
    }
}

/// The claims an example makes, each checked as it is printed: `[ok]` or
/// `[FAILED]` in front; [`Checks::finish`] fails the example when one did
/// not hold, so that it exits non-zero.
#[derive(Default)]
pub struct Checks {
    failed: Vec<String>,
}

impl Checks {
    /// Prints `claim` with its verdict and remembers a failure.
    pub fn check(&mut self, ok: bool, claim: impl Into<String>) -> bool {
        let claim = claim.into();
        println!("  [{}] {claim}", if ok { "ok" } else { "FAILED" });
        if !ok {
            self.failed.push(claim);
        }
        ok
    }

    /// An error naming every claim that did not hold, if one did not.
    pub fn finish(self) -> lxc::Result<()> {
        if self.failed.is_empty() {
            println!("all claims held");
            Ok(())
        } else {
            Err(failure(format!("claims that did not hold: {}", self.failed.join("; "))))
        }
    }
}
