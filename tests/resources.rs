//! Resource accounting, limits and typed network configuration on real
//! containers; traffic only between the test's own containers on a bridge
//! the test makes (no uplink, no route out).

mod common;

use std::process::Command;
use std::time::Duration;

use common::TestContainer;
use lxc::{AddressFamily, ByteSize, NetDevice, State};

fn sh(c: &lxc::Container, script: &str) -> std::process::Output {
    c.command("/bin/sh").args(["-c", script]).output().unwrap()
}

#[test]
fn memory_usage_grows_and_the_limit_is_the_cgroup_files() {
    require_root!();
    let t = TestContainer::running("mem");
    let before = t.c.memory_usage().unwrap();
    assert!(sh(&t.c, "dd if=/dev/zero of=/dev/shm/fill bs=1M count=32 2>/dev/null").status.success());
    let after = t.c.memory_usage().unwrap();
    assert!(after >= before + (24 << 20), "usage {before} -> {after}");

    t.c.set_memory_limit("256M".parse::<ByteSize>().unwrap()).unwrap();
    assert_eq!(t.c.memory_limit().unwrap(), ByteSize::mib(256));
    let key = common::memory_limit_key();
    assert_eq!(t.c.cgroup_item(key).unwrap(), (256u64 << 20).to_string());
    t.c.set_memory_soft_limit(ByteSize::mib(128)).unwrap();
    let m = t.c.memory_stats().unwrap();
    assert_eq!(m.limit, Some(ByteSize::mib(256)));
    assert_eq!(m.soft_limit, Some(ByteSize::mib(128)));
    assert!(m.usage >= 24 << 20);
    t.c.set_memory_limit(ByteSize::UNLIMITED).unwrap();
    assert!(t.c.memory_limit().unwrap().is_unlimited());
}

#[test]
fn cpu_time_grows_after_a_busy_loop() {
    require_root!();
    let t = TestContainer::running("cpu");
    let before = t.c.cpu_stats().unwrap();
    assert!(sh(&t.c, "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done").status.success());
    let after = t.c.cpu_stats().unwrap();
    assert!(
        after.total >= before.total + Duration::from_millis(50),
        "{:?} -> {:?}",
        before.total,
        after.total
    );
    assert!(after.user + after.system > before.user + before.system);
    if !after.per_cpu.is_empty() {
        let sum: Duration = after.per_cpu.iter().sum();
        assert!(sum >= after.total / 2, "per-CPU times {:?} against {:?}", after.per_cpu, after.total);
    }
    t.c.set_cpu_shares(512).unwrap();
    t.c.set_cpu_quota(Some(Duration::from_millis(50)), Duration::from_millis(100)).unwrap();
    match lxc::cgroup_layout("cpu") {
        lxc::CgroupLayout::V1 => {
            assert_eq!(t.c.cgroup_item("cpu.shares").unwrap(), "512");
            assert_eq!(t.c.cgroup_item("cpu.cfs_quota_us").unwrap(), "50000");
        }
        lxc::CgroupLayout::V2 => assert_eq!(t.c.cgroup_item("cpu.max").unwrap(), "50000 100000"),
    }
    t.c.set_cpu_quota(None, Duration::from_millis(100)).unwrap();
    let s = t.c.stats().unwrap();
    assert!(s.interfaces.iter().any(|i| i.name == "lo"));
}

/// An I/O limit lands in the cgroup files of the disk under the rootfs,
/// throttles direct writes and is counted, and is removed again; a path
/// on no disk is refused by name.
#[test]
fn io_limit_throttles_direct_writes_on_the_rootfs_disk() {
    require_root!();
    use std::os::unix::fs::MetadataExt;
    let t = TestContainer::running("io");
    let dev = std::fs::metadata(t.rootfs()).unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let sys = std::path::PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if !sys.exists() {
        eprintln!("skipped: the test's lxcpath is not on a block device ({major}:{minor})");
        return;
    }
    let disk = if sys.join("partition").exists() {
        std::fs::read_to_string(sys.join("../dev")).unwrap().trim().to_owned()
    } else {
        format!("{major}:{minor}")
    };
    t.c.set_io_limit(t.rootfs(), &lxc::IoLimit::new().write_bps(2 << 20).read_iops(1000)).unwrap();
    match lxc::cgroup_layout("blkio") {
        lxc::CgroupLayout::V1 => {
            let w = t.c.cgroup_item("blkio.throttle.write_bps_device").unwrap();
            assert!(w.lines().any(|l| l == format!("{disk} 2097152")), "{w}");
            let r = t.c.cgroup_item("blkio.throttle.read_iops_device").unwrap();
            assert!(r.lines().any(|l| l == format!("{disk} 1000")), "{r}");
        }
        lxc::CgroupLayout::V2 => {
            let m = t.c.cgroup_item("io.max").unwrap();
            assert!(
                m.lines()
                    .any(|l| l.starts_with(&disk) && l.contains("wbps=2097152") && l.contains("riops=1000")),
                "{m}"
            );
        }
    }
    let w0 = t.c.blkio_stats().unwrap().write_bytes;
    let t0 = std::time::Instant::now();
    let out = sh(&t.c, "dd if=/dev/zero of=/io.test bs=64k count=64 oflag=direct 2>&1; rm -f /io.test");
    let secs = t0.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let written = t.c.blkio_stats().unwrap().write_bytes - w0;
    assert!(written >= 4 << 20, "{written} bytes counted");
    // 4 MiB at 2 MiB/s: about two seconds (the first slice may run ahead).
    assert!(secs >= 1.5, "4 MiB written in {secs:.2} s under a 2 MiB/s limit");
    t.c.set_io_limit(t.rootfs(), &lxc::IoLimit::new()).unwrap();
    if lxc::cgroup_layout("blkio") == lxc::CgroupLayout::V1 {
        let w = t.c.cgroup_item("blkio.throttle.write_bps_device").unwrap();
        assert!(!w.lines().any(|l| l.starts_with(&format!("{disk} "))), "{w}");
    }
    let err = t.c.set_io_limit("/proc/self", &lxc::IoLimit::new().write_bps(1)).unwrap_err();
    assert!(
        matches!(err, lxc::Error::Io { .. })
            && err.to_string().contains("/proc/self is not on a block device"),
        "{err}"
    );
}

#[test]
fn network_config_is_typed() {
    require_root!();
    let t = TestContainer::new("netcfg");
    let net = t.c.network().unwrap();
    assert_eq!(net.len(), 1);
    assert_eq!(net[0].kind, "empty");
    let dev = NetDevice::veth("br-none")
        .name("eth1")
        .ipv4("169.254.214.2/24")
        .ipv4("169.254.215.2/24")
        .mtu(1400)
        .hwaddr("00:16:3e:aa:bb:cc");
    let i = t.c.add_network_device(&dev).unwrap();
    assert_eq!(i, 1);
    assert_eq!(t.c.network_device(1).unwrap(), dev);
    assert_eq!(
        t.c.config_item("lxc.net.1.ipv4.address").unwrap().into_vec(),
        ["169.254.214.2/24", "169.254.215.2/24"]
    );
    let edited = dev.clone().mtu(1300).name("eth9");
    t.c.set_network_device(1, &edited).unwrap();
    assert_eq!(t.c.network_device(1).unwrap(), edited);
    t.c.remove_network_device(1).unwrap();
    assert_eq!(t.c.network().unwrap().len(), 1);
    assert!(t.c.remove_network_device(5).is_err());
    assert!(t.c.set_network_device(0, &NetDevice::new("")).is_err());
}

struct Bridge(String);

impl Bridge {
    fn new() -> Bridge {
        let name = format!("lxrsbr{}", std::process::id() % 100000);
        let ok = |args: &[&str]| Command::new("ip").args(args).status().unwrap().success();
        assert!(ok(&["link", "add", &name, "type", "bridge"]), "ip link add bridge failed");
        assert!(ok(&["link", "set", &name, "up"]));
        Bridge(name)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

#[test]
fn two_containers_on_a_test_bridge() {
    require_root!();
    let br = Bridge::new();
    let t = TestContainer::new("neta");
    let b = t.sibling("netb");
    let a_ip = "169.254.213.2";
    let b_ip = "169.254.213.3";
    common::disable_dhcp(&t.lxcpath, &t.name);
    common::disable_dhcp(&t.lxcpath, b.name());
    t.c.set_network_device(0, &NetDevice::veth(&br.0).name("eth0").ipv4(&format!("{a_ip}/24"))).unwrap();
    b.set_network_device(0, &NetDevice::veth(&br.0).name("eth0").ipv4(&format!("{b_ip}/24"))).unwrap();
    t.c.start().unwrap();
    b.start().unwrap();
    t.c.wait(State::Running, Duration::from_secs(10)).unwrap();
    b.wait(State::Running, Duration::from_secs(10)).unwrap();

    let ips =
        t.c.wait_ip_addresses(Some("eth0"), Some(AddressFamily::Inet), Duration::from_secs(10)).unwrap();
    assert_eq!(ips, [a_ip.parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(
        b.ip_addresses(None, Some(AddressFamily::Inet), 0).unwrap(),
        [b_ip.parse::<std::net::IpAddr>().unwrap()]
    );

    let eth0 =
        |c: &lxc::Container| c.interface_stats().unwrap().into_iter().find(|i| i.name == "eth0").unwrap();
    let before = eth0(&t.c);
    // Three pings, one second at most each, between the two containers.
    let out = sh(&t.c, &format!("ping -c 3 -W 1 {b_ip}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let after = eth0(&t.c);
    assert!(after.tx_packets >= before.tx_packets + 3, "{before:?} -> {after:?}");
    assert!(after.rx_packets >= before.rx_packets + 3, "{before:?} -> {after:?}");
    assert!(after.rx_bytes > before.rx_bytes && after.tx_bytes > before.tx_bytes);
    b.stop().unwrap();
    t.c.stop().unwrap();
}
