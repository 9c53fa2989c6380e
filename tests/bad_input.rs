//! Hostile input across the API, table-driven: every case gets a clear
//! typed error (or, where liblxc's behaviour is the right one, a defined
//! outcome); none panics, none reaches a wrong file.

mod common;

use std::time::Duration;

use common::TestContainer;
use lxc::{AttachOptions, ByteSize, Container, Error, Log, State};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Invalid,
    UnknownKey,
    WrongState,
    NotDefined,
    Failed,
    Timeout,
    BadReturn,
    AnyError,
}

fn kind(e: &Error) -> Want {
    match e {
        Error::InvalidArgument { .. } => Want::Invalid,
        Error::UnknownConfigKey { .. } => Want::UnknownKey,
        Error::WrongState { .. } => Want::WrongState,
        Error::NotDefined { .. } => Want::NotDefined,
        Error::Failed { .. } | Error::AttachFailed { .. } => Want::Failed,
        Error::Timeout { .. } => Want::Timeout,
        Error::BadReturn { .. } => Want::BadReturn,
        _ => Want::AnyError,
    }
}

type Case<'a> = (&'static str, Want, Box<dyn Fn() -> lxc::Result<()> + 'a>);

fn check(cases: Vec<Case<'_>>) -> usize {
    let mut wrong = Vec::new();
    for (what, want, f) in &cases {
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        match got {
            Err(_) => wrong.push(format!("{what}: PANICKED")),
            Ok(Ok(())) => wrong.push(format!("{what}: succeeded, wanted {want:?}")),
            Ok(Err(e)) => {
                let k = kind(&e);
                if *want != Want::AnyError && k != *want {
                    wrong.push(format!("{what}: {e:?}, wanted {want:?}"));
                }
                assert!(!e.to_string().is_empty());
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases wrong:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
    cases.len()
}

fn open(name: &str) -> lxc::Result<()> {
    Container::with_lxcpath(name, "/tmp").map(drop)
}

#[test]
fn hostile_inputs_get_typed_errors() {
    require_root!();
    let stopped = TestContainer::new("bad");
    let running = TestContainer::running("badrun");
    let s = &stopped.c;
    let r = &running.c;
    let long = "x".repeat(256);
    let o = AttachOptions::new();
    // A value that is not UTF-8, written straight into a config file.
    let raw = stopped.sibling("rawcfg");
    let cfg = stopped.lxcpath.join(raw.name()).join("config");
    let mut bytes = std::fs::read(&cfg).unwrap();
    bytes.extend_from_slice(b"\nlxc.mount.entry = /tmp/caf\xe9 mnt none bind,optional 0 0\n");
    std::fs::write(&cfg, bytes).unwrap();
    let raw = Container::with_lxcpath(raw.name(), &stopped.lxcpath).unwrap();

    let cases: Vec<Case> = vec![
        // names
        ("empty name", Want::Invalid, Box::new(|| open(""))),
        ("name .", Want::Invalid, Box::new(|| open("."))),
        ("name ..", Want::Invalid, Box::new(|| open(".."))),
        ("name with /", Want::Invalid, Box::new(|| open("a/b"))),
        ("name ../etc", Want::Invalid, Box::new(|| open("../etc"))),
        ("absolute name", Want::Invalid, Box::new(|| open("/etc"))),
        ("name with NUL", Want::Invalid, Box::new(|| open("a\0b"))),
        ("name like an option", Want::Invalid, Box::new(|| open("-rf"))),
        ("name of 256 bytes", Want::Invalid, Box::new(|| open(&long))),
        ("name with newline", Want::Invalid, Box::new(|| open("a\nb"))),
        ("empty lxcpath", Want::Invalid, Box::new(|| Container::with_lxcpath("ok", "").map(drop))),
        ("lxcpath with NUL", Want::Invalid, Box::new(|| Container::with_lxcpath("ok", "/tmp/\0x").map(drop))),
        // configuration keys and values
        ("unknown key", Want::UnknownKey, Box::new(|| s.config_item("lxc.bogus").map(drop))),
        ("empty key", Want::UnknownKey, Box::new(|| s.config_item("").map(drop))),
        ("non-numeric net index", Want::UnknownKey, Box::new(|| s.config_item("lxc.net.x.type").map(drop))),
        ("unknown net sub-key", Want::UnknownKey, Box::new(|| s.config_item("lxc.net.0.bogus").map(drop))),
        ("double dot key", Want::UnknownKey, Box::new(|| s.config_item("lxc..uts").map(drop))),
        ("upper-case key", Want::UnknownKey, Box::new(|| s.config_item("LXC.UTS.NAME").map(drop))),
        ("key with NUL", Want::Invalid, Box::new(|| s.config_item("lxc.uts.name\0").map(drop))),
        ("set unknown key", Want::UnknownKey, Box::new(|| s.set_config_item("lxc.nope", "1"))),
        ("value with NUL", Want::Invalid, Box::new(|| s.set_config_item("lxc.uts.name", "a\0b"))),
        ("bad net type", Want::Failed, Box::new(|| s.set_config_item("lxc.net.0.type", "warp-drive"))),
        ("bad boolean", Want::Failed, Box::new(|| s.set_config_item("lxc.start.auto", "maybe"))),
        ("clear unknown key", Want::UnknownKey, Box::new(|| s.clear_config_item("lxc.nope"))),
        ("keys of unknown prefix", Want::UnknownKey, Box::new(|| s.keys(Some("lxc.nope")).map(drop))),
        (
            "value not UTF-8 from C",
            Want::BadReturn,
            Box::new(|| raw.config_item("lxc.mount.entry").map(drop)),
        ),
        ("unknown global key", Want::UnknownKey, Box::new(|| lxc::global_config_item("lxc.nope").map(drop))),
        // wrong states
        ("freeze stopped", Want::WrongState, Box::new(|| s.freeze())),
        ("console log clear stopped", Want::WrongState, Box::new(|| s.console_log_clear())),
        ("reboot stopped", Want::WrongState, Box::new(|| s.reboot())),
        ("attach stopped", Want::WrongState, Box::new(|| s.attach_run_wait(&o, "/bin/true", &[]).map(drop))),
        ("cgroup item stopped", Want::WrongState, Box::new(|| s.cgroup_item("pids.max").map(drop))),
        (
            "running config stopped",
            Want::WrongState,
            Box::new(|| s.running_config_item("lxc.uts.name").map(drop)),
        ),
        ("interfaces stopped", Want::WrongState, Box::new(|| s.interfaces().map(drop))),
        ("device node stopped", Want::WrongState, Box::new(|| s.add_device_node("/dev/null", None))),
        ("start running", Want::WrongState, Box::new(|| r.start())),
        ("destroy running", Want::WrongState, Box::new(|| r.destroy())),
        ("create defined", Want::AnyError, Box::new(|| r.create(&lxc::CreateOptions::new()))),
        (
            "start undefined",
            Want::NotDefined,
            Box::new(|| Container::with_lxcpath("nobody-here", &stopped.lxcpath)?.start()),
        ),
        (
            "stop undefined",
            Want::NotDefined,
            Box::new(|| Container::with_lxcpath("nobody-here", &stopped.lxcpath)?.stop()),
        ),
        (
            "shutdown undefined",
            Want::NotDefined,
            Box::new(|| Container::with_lxcpath("nobody-here", &stopped.lxcpath)?.shutdown(Duration::MAX)),
        ),
        // timeouts
        ("wait zero", Want::Timeout, Box::new(|| r.wait(State::Frozen, Duration::ZERO))),
        (
            "wait 1 s for a state that never comes",
            Want::Timeout,
            Box::new(|| r.wait(State::Frozen, Duration::from_millis(1))),
        ),
        // cgroup keys
        ("cgroup key with ..", Want::Invalid, Box::new(|| r.cgroup_item("../../../etc/hostname").map(drop))),
        ("cgroup key with /", Want::Invalid, Box::new(|| r.set_cgroup_item("memory/limit", "1"))),
        ("empty cgroup key", Want::Invalid, Box::new(|| r.cgroup_item("").map(drop))),
        ("unknown cgroup file", Want::Failed, Box::new(|| r.cgroup_item("no.such.file").map(drop))),
        ("bad cgroup value", Want::Failed, Box::new(|| r.set_cgroup_item("pids.max", "lots"))),
        // attach input
        ("empty program", Want::Invalid, Box::new(|| r.attach_run_wait(&o, "", &[]).map(drop))),
        (
            "argument with NUL",
            Want::Invalid,
            Box::new(|| r.attach_run_wait(&o, "/bin/echo", &["a\0b"]).map(drop)),
        ),
        (
            "env without a name",
            Want::Invalid,
            Box::new(|| r.command("/bin/true").env("", "x").status().map(drop)),
        ),
        (
            "cwd with NUL",
            Want::Invalid,
            Box::new(|| r.command("/bin/true").current_dir("/tmp\0").status().map(drop)),
        ),
        // other input
        ("snapshot name ../", Want::Invalid, Box::new(|| s.snapshot_destroy("../x"))),
        (
            "clone to a bad name",
            Want::Invalid,
            Box::new(|| s.copy("a/b", &lxc::CloneOptions::new()).map(drop)),
        ),
        ("byte size junk", Want::Invalid, Box::new(|| "12 parsecs".parse::<ByteSize>().map(drop))),
        ("negative byte size", Want::Invalid, Box::new(|| "-1G".parse::<ByteSize>().map(drop))),
        ("state junk", Want::Invalid, Box::new(|| "SLEEPING".parse::<State>().map(drop))),
        (
            "log file with NUL",
            Want::Invalid,
            Box::new(|| {
                // SAFETY: refused before liblxc is called (NUL in the file name).
                unsafe { Log::new().file("/tmp/\0").init() }
            }),
        ),
        ("unknown architecture", Want::Invalid, Box::new(|| lxc::Personality::from_arch("pdp11").map(drop))),
        (
            "console escape not a letter",
            Want::Invalid,
            Box::new(|| {
                let fd = std::os::fd::AsFd::as_fd(&std::io::stdin()).try_clone_to_owned().unwrap();
                r.console(
                    None,
                    std::os::fd::AsFd::as_fd(&fd),
                    std::os::fd::AsFd::as_fd(&fd),
                    std::os::fd::AsFd::as_fd(&fd),
                    '!',
                )
            }),
        ),
    ];
    let n = check(cases);
    assert!(n >= 40, "only {n} cases");
    // Nothing above touched the running container.
    assert_eq!(r.state().unwrap(), State::Running);
}
