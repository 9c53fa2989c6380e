//! The async front (feature `tokio`) on real containers: commands on both
//! kinds of runtime, cancellation at random points, the STOPPED wait on the
//! init's pidfd, the lifecycle as futures.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::TestContainer;
use lxc::{Error, State, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtimes() -> Vec<(&'static str, tokio::runtime::Runtime)> {
    vec![
        ("current_thread", tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()),
        (
            "multi_thread",
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap(),
        ),
    ]
}

fn async_handle(t: &TestContainer) -> lxc::tokio::Container {
    lxc::Container::with_lxcpath(&t.name, &t.lxcpath).unwrap().into()
}

/// The pids of the processes in the pid namespace of `init`, as the host
/// sees them, with their command lines; zombies (no command line) left
/// out: the caller's own are `common::zombies()`, the others the container's init
/// reaps.
fn container_processes(init: i32) -> Vec<(String, String)> {
    let ns = std::fs::read_link(format!("/proc/{init}/ns/pid")).unwrap();
    let mut v: Vec<(String, String)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter(|e| std::fs::read_link(e.path().join("ns/pid")).is_ok_and(|l| l == ns))
        .map(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), String::from_utf8_lossy(&cmd).replace('\0', " "))
        })
        .filter(|(_, cmd)| !cmd.is_empty())
        .collect();
    v.sort();
    v
}

#[test]
fn commands_on_both_runtimes() {
    require_root!();
    // Before the container (and its check of descriptors): the runtimes'
    // first build opens tokio's process-wide signal socket pair.
    let rts = runtimes();
    let t = TestContainer::running("tokio-cmd");
    let c = async_handle(&t);
    for (kind, rt) in rts {
        rt.block_on(async {
            let out = c.command("echo").arg(kind).output().await.unwrap();
            assert!(out.status.success(), "{kind}: {out:?}");
            assert_eq!(out.stdout, format!("{kind}\n").as_bytes());

            let s = c.command("sh").args(["-c", "exit 3"]).status().await.unwrap();
            assert_eq!(s.code(), Some(3), "{kind}");

            let out = c.command("sh").args(["-c", "echo err >&2; exit 127"]).output().await.unwrap();
            assert_eq!((out.status.code(), &out.stderr[..]), (Some(127), &b"err\n"[..]), "{kind}");

            let err = c.command("/no/such/program").output().await.unwrap_err();
            assert!(matches!(err, Error::ProgramNotStarted { .. }), "{kind}: {err:?}");
            let err = c.command("/no/such/program").spawn().await.unwrap_err();
            assert!(matches!(err, Error::ProgramNotStarted { .. }), "{kind}: {err:?}");

            // A TERMINAL attach returns only when its program ends: refused.
            let opts = lxc::AttachOptions::new().flags(lxc::AttachFlags::TERMINAL);
            let err = c.command("true").options(opts).status().await.unwrap_err();
            assert!(matches!(err, Error::InvalidArgument { .. }), "{kind}: {err:?}");

            // Both pipes of one child, driven from the runtime.
            let mut child =
                c.command("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().await.unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut stdout = child.stdout.take().unwrap();
            let mut echoed = Vec::new();
            for i in 0..20 {
                let line = format!("line {i}\n");
                stdin.write_all(line.as_bytes()).await.unwrap();
                let mut buf = vec![0; line.len()];
                stdout.read_exact(&mut buf).await.unwrap();
                echoed.extend(buf);
            }
            drop(stdin);
            assert_eq!(echoed.len(), (0..20).map(|i| format!("line {i}\n").len()).sum::<usize>());
            let mut rest = Vec::new();
            stdout.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
            assert!(child.wait().await.unwrap().success(), "{kind}");

            // A kill, and a status that says so.
            let mut child = c.command("sleep").arg("100").spawn().await.unwrap();
            assert!(child.try_wait().unwrap().is_none());
            child.kill().await.unwrap();
            assert_eq!(child.wait().await.unwrap().signal(), Some(libc::SIGKILL), "{kind}");

            // Many at once on one runtime: each waits on its own pidfd.
            let many: Vec<_> = (0..8)
                .map(|i| {
                    let c = c.clone();
                    tokio::spawn(async move { c.command("echo").arg(i.to_string()).output().await })
                })
                .collect();
            for (i, h) in many.into_iter().enumerate() {
                assert_eq!(h.await.unwrap().unwrap().stdout, format!("{i}\n").as_bytes());
            }
        });
    }
    assert!(common::zombies().is_empty(), "zombies: {:?}", common::zombies());
}

/// The futures are `Send`: they can be spawned on a multi-thread runtime.
#[test]
fn futures_are_send() {
    fn send<T: Send>(_: &T) {}
    fn check(c: lxc::tokio::Container) {
        send(&c.start());
        send(&c.stop());
        send(&c.wait(State::Running, Duration::ZERO));
        send(&c.copy("x", lxc::CloneOptions::new()));
        let mut cmd = c.command("true");
        send(&cmd.output());
        send(&cmd.status());
        send(&cmd.spawn());
    }
    let _ = check;
}

/// A small deterministic generator (xorshift): the drop points.
struct Points(u64);
impl Points {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[test]
fn dropped_futures_and_children_leave_nothing() {
    require_root!();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let t = TestContainer::running("tokio-cancel");
    let c = async_handle(&t);
    let init = t.c.init_pid().unwrap();
    // Warm up: the crate's /dev/null and the reaper thread's eventfd stay
    // for the life of the process; the runtime's own descriptors too.
    rt.block_on(async {
        c.command("true").status().await.unwrap();
        drop(c.command("sleep").arg("10").spawn().await.unwrap());
    });
    let settled = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ok() {
            assert!(Instant::now() < deadline, "{what} did not settle");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    settled("the warm-up", &|| common::zombies().is_empty());
    // The warm-up's dropped `sleep` is killed by the reaper thread, which
    // may not have got to it yet.
    settled("the warm-up's sleep", &|| {
        !container_processes(init).iter().any(|(_, cmd)| cmd.starts_with("sleep"))
    });
    let procs = container_processes(init);
    let fds = common::settled_fd_count();

    let seed = std::env::var("LXC_RS_CANCEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    eprintln!("drop points from seed {seed} (LXC_RS_CANCEL_SEED)");
    let mut p = Points(seed);
    let mut finished = 0;
    let session = rt.block_on(c.attach_session(lxc::AttachOptions::new(), 2)).unwrap();
    for i in 0..200 {
        let kind = p.next(5);
        // 0 to 12 ms: before the attach is done (it takes about 3), while
        // the program runs, and after.
        let after = Duration::from_micros(p.next(12_000));
        let (c, session) = (c.clone(), session.clone());
        let done = rt.block_on(async move {
            let work = async {
                match kind {
                    4 => session.command("sleep").arg("60").status().await.map(drop),
                    0 => c.command("sh").args(["-c", "sleep 0.005; echo x"]).output().await.map(drop),
                    1 => c.command("sleep").arg("60").status().await.map(drop),
                    2 => {
                        let mut child = c.command("sleep").arg("60").stdout(Stdio::piped()).spawn().await?;
                        child.wait().await.map(drop)
                    }
                    _ => {
                        // A child dropped with its pipes open.
                        let child =
                            c.command("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().await?;
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        drop(child);
                        Ok(())
                    }
                }
            };
            tokio::time::timeout(after, work).await.is_ok()
        });
        finished += usize::from(done);
        if i % 50 == 49 {
            eprintln!("{} drops, {finished} futures finished first", i + 1);
        }
    }
    // The session still serves, then ends its helpers.
    assert_eq!(rt.block_on(session.command("echo").arg("on").output()).unwrap().stdout, b"on\n");
    assert!(session.idle_helpers() <= 2);
    rt.block_on(session.close());
    // Attaches still under way in the blocking pool end there, and the
    // reaper takes what was killed.
    settled("zombies", &|| common::zombies().is_empty());
    settled("the container's processes", &|| {
        let now = container_processes(init);
        if now != procs {
            eprintln!("in the container: {now:?}, before: {procs:?}");
        }
        now == procs
    });
    // Attaches dropped while under way end on their thread (the last ones
    // a moment later on a slow machine).
    settled("the descriptors", &|| common::fd_count() == fds);
    assert_eq!(common::settled_fd_count(), fds, "descriptors left open");
    assert!(finished < 200, "no future was dropped before its end");
    drop(rt);
}

/// The parent pid of `pid`, as text.
fn parent(pid: &str) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ").and_then(|x| x.1.split_whitespace().nth(1)).unwrap_or("").to_owned()
}

#[test]
fn a_session_serves_many_tasks() {
    require_root!();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let t = TestContainer::running("tokio-session");
    let c = async_handle(&t);
    let init = t.c.init_pid().unwrap();
    rt.block_on(async {
        let err = c.attach_session(lxc::AttachOptions::new(), 0).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        let s = c.attach_session(lxc::AttachOptions::new(), 4).await.unwrap();
        assert_eq!((s.max_helpers(), s.idle_helpers()), (4, 1));
        // 32 commands from 16 tasks, each sleeping a little so that they
        // overlap: at most 4 helpers, each command's own output.
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    let mut outs = Vec::new();
                    for j in 0..2 {
                        let out = s
                            .command("sh")
                            .args(["-c", &format!("sleep 0.05; echo {i}-{j}; exit {j}")])
                            .output()
                            .await
                            .unwrap();
                        assert_eq!(out.status.code(), Some(j));
                        outs.push(String::from_utf8(out.stdout).unwrap());
                    }
                    outs
                })
            })
            .collect();
        let started = Instant::now();
        let helpers_seen = {
            let mut most = 0;
            while tasks.iter().any(|t| !t.is_finished()) {
                // busybox runs `sleep` in a fork of its `sh`: only the
                // shells the helpers started count.
                let procs = container_processes(init);
                let shell =
                    |pid: &str| procs.iter().any(|(p, cmd)| p == pid && cmd.starts_with("sh -c sleep"));
                let helpers = procs.iter().filter(|(pid, _)| shell(pid) && !shell(&parent(pid))).count();
                most = most.max(helpers);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            most
        };
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), vec![format!("{i}-0\n"), format!("{i}-1\n")]);
        }
        // 32 commands of 50 ms on 4 helpers: about 0.4 s, not 1.6.
        assert!(started.elapsed() < Duration::from_millis(1400), "{:?}", started.elapsed());
        assert!((2..=4).contains(&helpers_seen), "commands running at once: {helpers_seen}");
        assert!(s.idle_helpers() <= 4);

        // A dropped command is killed; the session goes on.
        let before = container_processes(init).len();
        let r = tokio::time::timeout(Duration::from_millis(300), s.command("sleep").arg("60").status()).await;
        assert!(r.is_err());
        let deadline = Instant::now() + Duration::from_secs(10);
        while container_processes(init).iter().any(|(_, cmd)| cmd.starts_with("sleep 60")) {
            assert!(Instant::now() < deadline, "the dropped command still runs");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(container_processes(init).len() <= before);
        assert_eq!(s.command("echo").arg("after").output().await.unwrap().stdout, b"after\n");
        s.close().await;

        // One helper; a command whose background process keeps its stdout
        // open: its dropped future does not hold the helper.
        let one = c.attach_session(lxc::AttachOptions::new(), 1).await.unwrap();
        let mut held = one.command("sh");
        held.args(["-c", "sleep 30 & echo started"]);
        assert!(tokio::time::timeout(Duration::from_millis(500), held.output()).await.is_err());
        let mut next = one.command("echo");
        next.arg("free");
        let out = tokio::time::timeout(Duration::from_secs(5), next.output())
            .await
            .expect("the helper is free")
            .unwrap();
        assert_eq!(out.stdout, b"free\n");
        one.close().await;
        for (pid, cmd) in container_processes(init) {
            if cmd.starts_with("sleep 30") {
                // SAFETY: plain kill(2) of the test's own leftover sleep.
                unsafe { libc::kill(pid.parse().unwrap(), libc::SIGKILL) };
            }
        }
        let err = c.attach_session(lxc::AttachOptions::new(), 5000).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");

        // Stdout piped on purpose, with output(): captured the same.
        let s = c.attach_session(lxc::AttachOptions::new(), 1).await.unwrap();
        let mut cmd = s.command("echo");
        cmd.arg("piped").stdout(Stdio::piped());
        assert_eq!(cmd.output().await.unwrap().stdout, b"piped\n");

        // A helper that no longer answers (stopped from inside the
        // container): the dropped command's helper is ended after a grace
        // period, and a new one serves the next command.
        // The helper is this process's child (liblxc attaches with
        // CLONE_PARENT), in the container.
        let me = std::process::id().to_string();
        let helper: Vec<i32> = container_processes(init)
            .into_iter()
            .filter(|(pid, _)| parent(pid) == me)
            .map(|(pid, _)| pid.parse().unwrap())
            .collect();
        assert_eq!(helper.len(), 1, "{:?}", container_processes(init));
        // SAFETY: plain kill(2) of the session's helper.
        assert_eq!(unsafe { libc::kill(helper[0], libc::SIGSTOP) }, 0);
        let mut stuck = s.command("true");
        assert!(tokio::time::timeout(Duration::from_millis(300), stuck.status()).await.is_err());
        let t0 = Instant::now();
        let mut next = s.command("echo");
        next.arg("new helper");
        let out =
            tokio::time::timeout(Duration::from_secs(10), next.output()).await.expect("served").unwrap();
        assert_eq!(out.stdout, b"new helper\n");
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        // An idle helper killed inside the container: the next command
        // gets a new one, not an error.
        for (pid, _) in container_processes(init).into_iter().filter(|(pid, _)| parent(pid) == me) {
            // SAFETY: plain kill(2) of the session's idle helper.
            unsafe { libc::kill(pid.parse().unwrap(), libc::SIGKILL) };
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut after = s.command("echo");
        after.arg("after a kill");
        assert_eq!(after.output().await.unwrap().stdout, b"after a kill\n");
        s.close().await;
    });
    assert!(
        common::zombies().is_empty() || {
            std::thread::sleep(Duration::from_millis(500));
            common::zombies().is_empty()
        }
    );
}

#[test]
fn wait_for_stopped_wakes_on_the_init_exit() {
    require_root!();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let t = TestContainer::running("tokio-wait");
    let c = async_handle(&t);
    rt.block_on(async {
        // Running: a short wait for STOPPED times out.
        let err = c.wait(State::Stopped, Duration::from_millis(300)).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");

        let waiter = {
            let c = c.clone();
            tokio::spawn(async move {
                let t0 = Instant::now();
                c.wait(State::Stopped, Duration::from_secs(30)).await.map(|()| t0.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiter.is_finished());
        // Killed from outside: SIGKILL to its init.
        let init = c.init_pid().unwrap();
        // SAFETY: plain kill(2) of the container's init.
        assert_eq!(unsafe { libc::kill(init, libc::SIGKILL) }, 0);
        let took = waiter.await.unwrap().unwrap();
        assert!(took < Duration::from_secs(10), "{took:?}");
        assert_eq!(c.state().await.unwrap(), State::Stopped);
        // And a stopped container's STOPPED is there at once.
        c.wait(State::Stopped, Duration::from_secs(5)).await.unwrap();

        // Another state awaited while the container stops: interrupted at
        // once, not a timeout.
        c.start().await.unwrap();
        c.wait(State::Running, Duration::from_secs(10)).await.unwrap();
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.wait(State::Frozen, Duration::from_secs(60)).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.stop().await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(10), waiter).await.expect("the wait ended").unwrap();
        assert!(matches!(r, Err(Error::WaitInterrupted { state: State::Stopped, .. })), "{r:?}");

        // A reboot passes through STOPPED to a new init: the wait ends.
        c.start().await.unwrap();
        c.wait(State::Running, Duration::from_secs(10)).await.unwrap();
        t.wait_init_ready();
        let before = c.init_pid().unwrap();
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.wait(State::Stopped, Duration::from_secs(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let b = c.blocking().clone();
        tokio::task::spawn_blocking(move || b.reboot()).await.unwrap().unwrap();
        tokio::time::timeout(Duration::from_secs(20), waiter)
            .await
            .expect("the wait ended")
            .unwrap()
            .unwrap();
        c.wait(State::Running, Duration::from_secs(10)).await.unwrap();
        assert_ne!(c.init_pid(), Some(before));
    });
}

#[test]
fn state_changes_follow_the_lifecycle() {
    require_root!();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let t = TestContainer::new("tokio-states");
    let c = async_handle(&t);
    rt.block_on(async {
        let mut states = c.state_changes();
        let mut next = async || {
            tokio::time::timeout(Duration::from_secs(15), states.next())
                .await
                .expect("a state within 15 s")
                .expect("the stream goes on")
                .unwrap()
        };
        assert_eq!(next().await, State::Stopped);
        c.start().await.unwrap();
        // STARTING may pass before the watcher's wait is registered.
        let mut s = next().await;
        if s == State::Starting {
            s = next().await;
        }
        assert_eq!(s, State::Running);
        c.freeze().await.unwrap();
        let mut s = next().await;
        if s == State::Freezing {
            s = next().await;
        }
        assert_eq!(s, State::Frozen);
        c.unfreeze().await.unwrap();
        assert_eq!(next().await, State::Thawed);
        assert_eq!(next().await, State::Running);
        // Killed from outside: the stream says STOPPED (after STOPPING,
        // when it was seen).
        let init = c.init_pid().unwrap();
        // SAFETY: plain kill(2) of the container's init.
        assert_eq!(unsafe { libc::kill(init, libc::SIGKILL) }, 0);
        let mut s = next().await;
        while matches!(s, State::Stopping | State::Aborting | State::Running | State::Thawed) {
            s = next().await;
        }
        assert_eq!(s, State::Stopped);
    });
}

/// liblxc's waits run in steps: a wait on a container that never gets
/// there times out on time, and a dropped one does not keep the runtime
/// from shutting down.
#[test]
fn waits_in_steps() {
    require_root!();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let t = TestContainer::new("tokio-steps");
    let c = async_handle(&t);
    rt.block_on(async {
        let t0 = Instant::now();
        let err = c.wait(State::Running, Duration::from_secs(3)).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
        let took = t0.elapsed();
        assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(6), "{took:?}");
        let forever = c.wait(State::Running, Duration::MAX);
        assert!(tokio::time::timeout(Duration::from_millis(300), forever).await.is_err());
    });
    let t0 = Instant::now();
    drop(rt);
    assert!(t0.elapsed() < Duration::from_secs(4), "the runtime's drop waited {:?}", t0.elapsed());
}

#[test]
fn lifecycle_as_futures() {
    require_root!();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let t = TestContainer::new("tokio-life");
    let c = async_handle(&t);
    rt.block_on(async {
        let made = lxc::tokio::Container::from(lxc::Container::with_lxcpath("made", &t.lxcpath).unwrap());
        made.create(lxc::CreateOptions::new().template("busybox").quiet(true)).await.unwrap();
        assert!(made.is_defined());
        made.destroy().await.unwrap();
        assert!(!made.is_defined());

        c.start().await.unwrap();
        c.wait(State::Running, Duration::from_secs(10)).await.unwrap();
        c.freeze().await.unwrap();
        assert_eq!(c.state().await.unwrap(), State::Frozen);
        c.unfreeze().await.unwrap();
        assert_eq!(c.state().await.unwrap(), State::Running);
        assert!(c.command("true").status().await.unwrap().success());
        c.stop().await.unwrap();
        c.wait(State::Stopped, Duration::from_secs(10)).await.unwrap();

        let snap = c.snapshot(None::<PathBuf>).await.unwrap();
        assert_eq!(snap, "snap0");
        let copy = c.copy(&format!("{}-copy", t.name), lxc::CloneOptions::new()).await.unwrap();
        assert!(copy.is_defined());
        copy.destroy().await.unwrap();
        c.blocking().destroy_with_snapshots().unwrap();
        assert!(!c.is_defined());
    });
}
