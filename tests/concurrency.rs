//! go-lxc's concurrent examples as tests: many containers from many
//! threads, and a stress mix of lifecycle calls and attach on shared
//! handles, bounded in rounds. No failure that is not a race's honest
//! answer, no deadlock (the rig's watchdog ends a hung binary), nothing left.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::TestContainer;
use lxc::{AttachOptions, Container, CreateOptions, Error, State};

#[test]
fn sixteen_containers_from_eight_threads() {
    require_root!();
    let t = TestContainer::undefined("conc");
    let path = t.lxcpath.clone();
    let names = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|w| {
                let path = &path;
                let names = &names;
                s.spawn(move || {
                    for k in 0..2 {
                        let name = common::unique_name(&format!("c{w}x{k}"));
                        names.lock().unwrap().push(name.clone());
                        let c = Container::with_lxcpath(&name, path).unwrap();
                        c.set_config_item("lxc.net.0.type", "empty").unwrap();
                        c.create(&CreateOptions::new().template("busybox").quiet(true)).unwrap();
                        c.start().unwrap();
                        c.wait(State::Running, Duration::from_secs(20)).unwrap();
                        assert!(c
                            .attach_run_wait(&AttachOptions::new(), "/bin/true", &[])
                            .unwrap()
                            .success());
                        if k == 0 {
                            c.stop().unwrap();
                        } else {
                            // A clean shutdown needs busybox init in its main loop.
                            let _ = c.shutdown(Duration::from_secs(5));
                            if c.is_running() {
                                c.stop().unwrap();
                            }
                        }
                        c.wait(State::Stopped, Duration::from_secs(20)).unwrap();
                        c.destroy().unwrap();
                        assert!(!c.is_defined());
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a worker failed");
        }
    });
    assert!(lxc::list_all_containers(Some(&path)).unwrap().is_empty());
    // liblxc moves this whole process into each starting container's
    // monitor cgroup for the length of the start; a template process forked
    // by another thread meanwhile lives in that cgroup and keeps it from
    // being removed at the stop. The crate removes such leftovers once they
    // are empty, on later starts and destroys; here they must all be gone.
    let c = Container::with_lxcpath("probe", &path).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let _ = c.destroy(); // not defined: only triggers the retry
        let left: Vec<_> = names.lock().unwrap().iter().flat_map(|n| common::leftover_cgroups(n)).collect();
        if left.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "cgroups left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A tiny deterministic generator, so a failing round can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn stress_mix_on_shared_handles() {
    require_root!();
    let mut t = TestContainer::new("st0");
    t.allow_leaked_fds(
        "liblxc 5.0's attach leaks its /proc/<pid> handle and the init's pidfd when the container \
         stops during the call",
        |p| {
            p == Path::new("/proc").join(std::process::id().to_string())
                || p == Path::new("anon_inode:[pidfd]")
        },
    );
    let mut cs = vec![Arc::new(t.c.try_clone().unwrap())];
    for i in 1..4 {
        cs.push(Arc::new(t.sibling(&format!("st{i}"))));
    }
    let rounds = 30;
    std::thread::scope(|s| {
        for w in 0..8u64 {
            let cs = cs.clone();
            s.spawn(move || {
                let mut rng = Lcg(w + 1);
                for _ in 0..rounds {
                    let c = &cs[rng.next(cs.len() as u64) as usize];
                    // No freeze in the mix: a process attached to a frozen
                    // container is frozen with it, so its attach waits for
                    // the thaw (as lxc-attach does).
                    let r: lxc::Result<()> = match rng.next(9) {
                        0 => c.start(),
                        1 => c.stop(),
                        2 => c.shutdown(Duration::from_secs(1)),
                        3 => c.reboot(),
                        4 => c.state().map(drop),
                        5 => c.attach_run_wait(&AttachOptions::new(), "/bin/true", &[]).map(drop),
                        6 => c.command("/bin/echo").arg("x").output().map(drop),
                        7 => c.config_item("lxc.uts.name").map(drop),
                        _ => c.cgroup_item("pids.current").map(drop),
                    };
                    match r {
                        Ok(()) => {}
                        // Another thread changed the state first: an honest answer.
                        Err(Error::WrongState { .. } | Error::Timeout { .. } | Error::Failed { .. }) => {}
                        Err(Error::AttachFailed { .. } | Error::SessionClosed { .. }) => {}
                        Err(e) => panic!("unexpected error: {e:?}"),
                    }
                }
            });
        }
    });
    for c in &cs {
        if c.is_running() {
            c.stop().unwrap();
        }
        c.wait(State::Stopped, Duration::from_secs(20)).unwrap();
    }
    assert!(lxc::list_active_containers(Some(&t.lxcpath)).unwrap().is_empty());
}

#[test]
fn lifecycle_and_attach_inside_a_tokio_runtime() {
    require_root!();
    // tokio keeps a socket pair for its SIGCHLD handling for the rest of
    // the process: set it up before the test's descriptors are noted.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    rt.block_on(async { tokio::process::Command::new("/bin/true").status().await.unwrap() });
    let t = TestContainer::new("tokio");
    let c = Arc::new(t.c.try_clone().unwrap());
    rt.block_on(async {
        // tokio reaps its own children (and installs a SIGCHLD handler)
        // while the crate waits for its own.
        let spawner = tokio::spawn(async {
            for _ in 0..20 {
                let st = tokio::process::Command::new("/bin/true").status().await.unwrap();
                assert!(st.success());
            }
        });
        let c2 = Arc::clone(&c);
        tokio::task::spawn_blocking(move || {
            c2.start().unwrap();
            c2.wait(State::Running, Duration::from_secs(10)).unwrap();
            for i in 0..20 {
                let out = c2.command("/bin/echo").arg(i.to_string()).output().unwrap();
                assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{i}\n"));
            }
            let mut s = c2.attach_session(&AttachOptions::new()).unwrap();
            assert!(s.run("/bin/true", &[]).unwrap().success());
            s.close().unwrap();
            c2.stop().unwrap();
            c2.wait(State::Stopped, Duration::from_secs(10)).unwrap();
        })
        .await
        .unwrap();
        spawner.await.unwrap();
    });
    assert!(!c.is_running());
}
