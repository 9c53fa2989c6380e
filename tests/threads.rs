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
