//! One container handle used from many threads at once.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::TestContainer;
use lxc::State;

#[test]
fn one_handle_from_eight_threads() {
    require_root!();
    let t = TestContainer::running("mt");
    let c = Arc::new(t.c.try_clone().unwrap());
    let key = common::memory_limit_key();
    let name = t.name.clone();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let c = Arc::clone(&c);
            let barrier = Arc::clone(&barrier);
            let name = name.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for round in 0..40 {
                    match i % 4 {
                        0 => assert!(matches!(
                            c.state().unwrap(),
                            State::Running | State::Frozen | State::Freezing | State::Thawed
                        )),
                        1 => assert_eq!(c.config_item("lxc.uts.name").unwrap(), name.as_str()),
                        2 => {
                            c.set_config_item("lxc.environment", &format!("T{i}R{round}=1")).unwrap();
                            assert!(c.keys(None).unwrap().iter().any(|k| k == "lxc.environment"));
                        }
                        _ => {
                            let v = 20_000_000 + round * 4096;
                            c.set_cgroup_item(key, &v.to_string()).unwrap();
                            assert!(c.cgroup_item(key).unwrap().parse::<u64>().is_ok());
                            assert!(c.init_pid().is_some());
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a thread failed");
    }
    let env = c.config_item("lxc.environment").unwrap().into_vec();
    assert_eq!(env.len(), 2 * 40, "every set_config_item from two threads is kept");
    assert_eq!(c.state().unwrap(), State::Running);
}

#[test]
fn a_long_wait_does_not_block_state_on_another_thread() {
    require_root!();
    let t = TestContainer::running("nb");
    let c = Arc::new(t.c.try_clone().unwrap());
    let waiting = Arc::new(Barrier::new(2));
    let done = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (c, waiting, done) = (Arc::clone(&c), Arc::clone(&waiting), Arc::clone(&done));
        std::thread::spawn(move || {
            waiting.wait();
            // Never reached: the container is not frozen. Times out after 5 s.
            let r = c.wait(State::Frozen, Duration::from_secs(5));
            done.store(true, Ordering::SeqCst);
            r
        })
    };
    waiting.wait();
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..50 {
        assert_eq!(c.state().unwrap(), State::Running);
        assert!(c.is_running());
    }
    assert!(!done.load(Ordering::SeqCst), "state() waited for the other thread's wait()");
    assert!(matches!(waiter.join().unwrap(), Err(lxc::Error::Timeout { .. })));
}

#[test]
fn containers_start_and_stop_from_four_threads() {
    require_root!();
    let t = TestContainer::new("par0");
    let mut names = vec![t.name.clone()];
    for i in 1..8 {
        names.push(t.sibling(&format!("par{i}")).name().to_owned());
    }
    common::start_from_threads(&t.lxcpath, &names, 4);
    let mut active = lxc::list_active_containers(Some(&t.lxcpath)).unwrap();
    active.sort();
    let mut want = names.clone();
    want.sort();
    assert_eq!(active, want);
}

#[test]
fn configuration_writers_exclude_every_reader_of_the_same_handle() {
    require_root!();
    let t = TestContainer::running("cfgrw");
    let c = Arc::new(t.c.try_clone().unwrap());
    let key = common::memory_limit_key();
    let stop = Arc::new(AtomicBool::new(false));
    // Writers: set and clear list keys (clear_config_item frees what the
    // readers' liblxc calls walk); readers: state, cgroup reads (which fall
    // back to the configuration), freeze/unfreeze, config reads, attach.
    let writers: Vec<_> = (0..2)
        .map(|i| {
            let c = Arc::clone(&c);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    c.set_config_item("lxc.environment", &format!("W{i}N{n}=1")).unwrap();
                    c.set_config_item("lxc.cap.drop", "sys_module").unwrap();
                    c.clear_config_item("lxc.cap.drop").unwrap();
                    if n % 10 == 9 {
                        c.clear_config_item("lxc.environment").unwrap();
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let readers: Vec<_> = (0..6)
        .map(|i| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                for _ in 0..25 {
                    match i % 6 {
                        0 => assert!(c.state().is_ok()),
                        1 => assert!(!c.cgroup_item(key).unwrap().is_empty()),
                        2 => {
                            // Freezing and thawing races the other threads'
                            // attaches; both must come back.
                            let _ = c.freeze();
                            c.unfreeze().unwrap();
                        }
                        3 => assert!(c.config_item("lxc.uts.name").is_ok()),
                        4 => assert!(c.keys(Some("lxc.net.0")).is_ok()),
                        // Refused while another thread has it frozen.
                        _ => match c.command("/bin/true").output() {
                            Ok(out) => assert!(out.status.success()),
                            Err(lxc::Error::WrongState {
                                state: State::Frozen | State::Freezing, ..
                            }) => {}
                            Err(e) => panic!("attach: {e}"),
                        },
                    }
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        assert!(w.join().unwrap() > 0, "a writer never got the handle");
    }
    c.unfreeze().unwrap();
    assert_eq!(c.state().unwrap(), State::Running);
}

#[test]
fn a_writer_gets_through_readers_that_overlap_without_end() {
    require_root!();
    // Six threads reading a running container's state back to back keep
    // the handle's configuration lock shared nearly all the time (each
    // state is a round trip to the monitor); a writer that only waited
    // for a moment with no reader in flight waited here for minutes.
    let t = TestContainer::running("starve");
    let c = Arc::new(t.c.try_clone().unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..6)
        .map(|i| {
            let (c, done) = (Arc::clone(&c), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !done.load(Ordering::SeqCst) {
                    if i % 2 == 0 {
                        assert_eq!(c.state().unwrap(), State::Running);
                    } else {
                        assert!(c.config_item("lxc.uts.name").is_ok());
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = {
        let c = Arc::clone(&c);
        std::thread::spawn(move || {
            for n in 0..20 {
                c.set_config_item("lxc.environment", &format!("STARVE{n}=1")).unwrap();
                tx.send(n).unwrap();
            }
        })
    };
    // Not a speed goal: a bound far above the milliseconds a write takes,
    // to tell a starved writer from a slow machine without hanging.
    let mut got = 0;
    while got < 20 {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(_) => got += 1,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                done.store(true, Ordering::SeqCst);
                panic!("write {got} of 20 waited more than 60 s behind readers that never stopped");
            }
            // The writer failed: its join below says how.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                done.store(true, Ordering::SeqCst);
                break;
            }
        }
    }
    writer.join().unwrap();
    done.store(true, Ordering::SeqCst);
    for r in readers {
        assert!(r.join().unwrap() > 0, "a reader never ran");
    }
    let env = c.config_item("lxc.environment").unwrap().into_vec();
    assert!(env.iter().any(|e| e == "STARVE19=1"), "{env:?}");
}

#[test]
fn a_waiting_writer_does_not_hold_back_the_call_a_long_wait_needs() {
    require_root!();
    // A wait for STOPPED is in flight; a set_config_item queues behind it
    // (and, having waited, closes the gate); the stop that ends the wait
    // must still get through, or all three wait for one another. (Here the
    // long wait holds the gate open; were it not, the stop would pass after
    // the gate's 100 ms limit: this guards against a deadlock, and the
    // gate's rules themselves have unit tests in container.rs.)
    let t = TestContainer::running("gatelong");
    let c = Arc::new(t.c.try_clone().unwrap());
    let in_wait = Arc::new(Barrier::new(2));
    let waiter = {
        let (c, in_wait) = (Arc::clone(&c), Arc::clone(&in_wait));
        std::thread::spawn(move || {
            in_wait.wait();
            c.wait(State::Stopped, Duration::from_secs(60))
        })
    };
    in_wait.wait();
    std::thread::sleep(Duration::from_millis(200));
    let writer = {
        let c = Arc::clone(&c);
        std::thread::spawn(move || c.set_config_item("lxc.environment", "GATE=1"))
    };
    // Long enough for the writer to run out of patience.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.state().unwrap(), State::Running);
    c.stop().unwrap();
    waiter.join().unwrap().expect("the wait for STOPPED saw the stop");
    writer.join().unwrap().unwrap();
    assert!(c.config_item("lxc.environment").unwrap().into_vec().iter().any(|e| e == "GATE=1"));
}

#[test]
fn running_config_reads_and_attaches_on_one_handle_never_hang() {
    require_root!();
    let t = TestContainer::running("runcfg");
    let c = Arc::new(t.c.try_clone().unwrap());
    let name = t.name.clone();
    let reader = {
        let c = Arc::clone(&c);
        std::thread::spawn(move || {
            for _ in 0..200 {
                assert_eq!(c.running_config_item("lxc.uts.name").unwrap(), name);
            }
        })
    };
    for _ in 0..40 {
        assert!(c.command("/bin/true").status().unwrap().success());
    }
    reader.join().unwrap();
}

#[test]
fn the_options_of_one_start_belong_to_that_start() {
    require_root!();
    let t = TestContainer::new("startopts");
    let c = Arc::new(t.c.try_clone().unwrap());
    let raw_daemonize = |c: &lxc::Container| {
        // SAFETY: the handle is live; `daemonize` is a plain bool of the
        // object, read while no other thread changes it.
        unsafe { std::ptr::addr_of!((*c.as_raw()).daemonize).read() }
    };
    c.want_daemonize(false).unwrap();
    // A daemonized start leaves the object's setting as it was.
    c.start_with(&lxc::StartOptions::new()).unwrap();
    assert!(!raw_daemonize(&c));
    c.stop().unwrap();
    c.want_daemonize(true).unwrap();
    // Another thread flips the persistent setting all the time; every
    // start still runs with its own options (a foreground start would be
    // refused by liblxc in this threaded process).
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let c = Arc::clone(&c);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut on = false;
            while !stop.load(Ordering::Relaxed) {
                c.want_daemonize(on).unwrap();
                on = !on;
            }
        })
    };
    for _ in 0..8 {
        c.start_with(&lxc::StartOptions::new().daemonize(true)).unwrap();
        c.wait(State::Running, Duration::from_secs(10)).unwrap();
        c.stop().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
}

#[test]
fn error_num_is_reported_for_start_alone() {
    require_root!();
    let t = TestContainer::running("errnum");
    // liblxc leaves error_num 1 after every daemonized start; a later
    // failure of another call must not carry it.
    match t.c.set_cgroup_item("memory.no_such_file", "1") {
        Err(lxc::Error::Failed { error_num, .. }) => assert_eq!(error_num, 0),
        other => panic!("expected Failed, got {other:?}"),
    }
}
