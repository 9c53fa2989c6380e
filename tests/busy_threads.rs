//! create, copy (liblxc's clone), snapshot and start from a process whose
//! other threads keep spawning threads and allocating (issue 12 item 8).
//!
//! liblxc starts the helpers of clone and snapshot (rsync) with a raw
//! `clone()`; in a multithreaded caller glibc's set-id broadcast in that
//! child waits forever for threads that are not there. The crate runs
//! these calls in its helper process; each test here must finish well
//! within its watchdog (120 s), which otherwise stops the containers and
//! aborts the binary, so that a hang fails instead of stalling CI.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestContainer;
use lxc::{CloneOptions, CreateOptions, State};

/// 8 threads that, until dropped, keep spawning short-lived threads that
/// allocate, and allocate themselves; plus a watchdog.
struct Busy {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

impl Busy {
    fn start(what: &'static str) -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::clone(&stop);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            common::stop_containers_and_abort(&format!("{what} beside busy threads did not finish in 120 s"));
        });
        let threads = (0..8)
            .map(|i| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut spawned = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let t = std::thread::spawn(move || {
                            let v: Vec<u8> = vec![i as u8; 4096 + (spawned as usize % 64) * 1024];
                            v.iter().map(|&b| u64::from(b)).sum::<u64>()
                        });
                        let mut keep = Vec::with_capacity(16);
                        for k in 0..16 {
                            keep.push(vec![k as u8; 1 << (k % 12)]);
                        }
                        drop(keep);
                        let _ = t.join();
                        spawned += 1;
                    }
                    spawned
                })
            })
            .collect();
        // Let them get going.
        std::thread::sleep(Duration::from_millis(50));
        Busy { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let spawned: u64 = self.threads.drain(..).map(|t| t.join().unwrap_or(0)).sum();
        eprintln!("busy threads spawned {spawned} threads meanwhile");
        assert!(spawned > 0 || std::thread::panicking());
    }
}

#[test]
fn snapshot_beside_busy_threads() {
    require_root!();
    let t = TestContainer::new("bsnap");
    let busy = Busy::start("snapshot");
    let snap = t.c.snapshot(None).unwrap();
    let snap2 = t.c.snapshot(None).unwrap();
    drop(busy);
    assert_eq!((snap.as_str(), snap2.as_str()), ("snap0", "snap1"));
    assert_eq!(t.c.snapshot_list().unwrap().len(), 2);
    t.c.snapshot_destroy_all().unwrap();
}

#[test]
fn copy_beside_busy_threads() {
    require_root!();
    let t = TestContainer::new("bcopy");
    let name = common::unique_name("bcopy2");
    let busy = Busy::start("copy");
    let copy = t.c.copy(&name, &CloneOptions::new()).unwrap();
    drop(busy);
    assert!(copy.is_defined());
    assert_eq!(copy.config_item_str("lxc.uts.name").unwrap(), name);
    copy.destroy().unwrap();
}

#[test]
fn create_beside_busy_threads() {
    require_root!();
    let t = TestContainer::undefined("bcreate");
    t.c.set_config_item("lxc.net.0.type", "empty").unwrap();
    let busy = Busy::start("create");
    t.c.create(&CreateOptions::new().template("busybox").quiet(true)).unwrap();
    drop(busy);
    assert!(t.c.is_defined());
    // The handle reloaded the configuration the template wrote.
    assert!(t.c.config_item_str("lxc.rootfs.path").unwrap().contains(&t.name));
    assert_eq!(t.c.config_item_str("lxc.net.0.type").unwrap(), "empty");
}

#[test]
fn start_beside_busy_threads() {
    require_root!();
    let t = TestContainer::new("bstart");
    let busy = Busy::start("start");
    t.c.start().unwrap();
    t.c.wait(State::Running, Duration::from_secs(10)).unwrap();
    t.c.stop().unwrap();
    t.c.wait(State::Stopped, Duration::from_secs(10)).unwrap();
    drop(busy);
}

/// A setting made on the handle and not saved reaches the helper.
#[test]
fn unsaved_settings_reach_the_helper() {
    require_root!();
    let t = TestContainer::new("bunsaved");
    t.c.set_config_item("lxc.environment", "LXC_RS_UNSAVED=yes").unwrap();
    t.c.start().unwrap();
    t.c.wait(State::Running, Duration::from_secs(10)).unwrap();
    let pid = t.c.init_pid().unwrap();
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        env.split(|&b| b == 0).any(|v| v == b"LXC_RS_UNSAVED=yes"),
        "init's environment lacks the setting"
    );
    t.c.stop().unwrap();
    t.c.wait(State::Stopped, Duration::from_secs(10)).unwrap();
    // On disk, nothing changed.
    let config = std::fs::read_to_string(t.lxcpath.join(&t.name).join("config")).unwrap();
    assert!(!config.contains("LXC_RS_UNSAVED"));
}

#[test]
fn snapshot_restore_beside_busy_threads() {
    require_root!();
    let t = TestContainer::new("brest");
    let snap = t.c.snapshot(None).unwrap();
    let marker = t.rootfs().join("after-snapshot");
    std::fs::write(&marker, "x").unwrap();
    let other = common::unique_name("brest2");
    let busy = Busy::start("snapshot_restore");
    t.c.snapshot_restore(&snap, None).unwrap();
    t.c.snapshot_restore(&snap, Some(&other)).unwrap();
    drop(busy);
    assert!(!marker.exists(), "the restore over the container did not bring back the snapshot's rootfs");
    assert_eq!(t.c.config_item_str("lxc.uts.name").unwrap(), t.name);
    let o = lxc::Container::with_lxcpath(&other, &t.lxcpath).unwrap();
    assert!(o.is_defined());
    o.destroy().unwrap();
    t.c.snapshot_destroy_all().unwrap();
}
