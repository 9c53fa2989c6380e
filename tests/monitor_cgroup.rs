//! The process that starts containers stays in its own cgroups, and no
//! cgroup of a destroyed container is left behind (liblxc 5.0 moves the
//! caller of start() into the container's monitor cgroup).
//!
//! One test in its own binary: concurrent starts from other tests would
//! move this process while it checks.

mod common;

use std::time::{Duration, Instant};

use common::TestContainer;
use lxc::State;

fn my_cgroups() -> String {
    std::fs::read_to_string("/proc/self/cgroup").unwrap()
}

fn assert_no_leftovers(names: &[String]) {
    // The monitor removes the cgroups as it exits, just after the stop.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<_> = names.iter().flat_map(|n| common::leftover_cgroups(n)).collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "cgroups left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn start_leaves_the_caller_in_its_cgroups() {
    require_root!();
    let before = my_cgroups();

    // One container, started and stopped twice.
    let name;
    {
        let t = TestContainer::new("mon");
        name = t.name.clone();
        for _ in 0..2 {
            t.c.start().unwrap();
            assert_eq!(my_cgroups(), before, "moved by start()");
            t.c.wait(State::Running, Duration::from_secs(10)).unwrap();
            t.c.stop().unwrap();
            t.c.wait(State::Stopped, Duration::from_secs(10)).unwrap();
        }
        // Checked before the rig's own clean-up runs.
        t.c.destroy().unwrap();
        assert_no_leftovers(std::slice::from_ref(&name));
    }

    // Eight containers started from four threads at once.
    let t = TestContainer::new("monp0");
    let mut names = vec![t.name.clone()];
    for i in 1..8 {
        names.push(t.sibling(&format!("monp{i}")).name().to_owned());
    }
    common::start_from_threads(&t.lxcpath, &names, 4);
    assert_eq!(my_cgroups(), before, "moved by concurrent starts");
    for n in &names {
        let c = lxc::Container::with_lxcpath(n, &t.lxcpath).unwrap();
        c.stop().unwrap();
        c.wait(State::Stopped, Duration::from_secs(10)).unwrap();
        c.destroy().unwrap();
    }
    assert_no_leftovers(&names);
    drop(t);
    assert_eq!(my_cgroups(), before);
}
