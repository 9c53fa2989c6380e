//! Resource accounting and limits of a running container, on cgroup v1
//! and cgroup v2 hosts (go-lxc's `MemoryUsage`, `CPUTime`, `BlkioUsage`,
//! `InterfaceStats`, ...).
//!
//! Each controller is read where the host mounts it: a cgroup v1 hierarchy
//! of its own, or the unified (v2) hierarchy. The files differ (`memory.usage_in_bytes`
//! against `memory.current`, `cpuacct.usage` against `cpu.stat`, ...); the
//! parsers of both are pure functions tested on captured files.

use std::sync::OnceLock;
use std::time::Duration;

use crate::bytesize::ByteSize;
use crate::error::{Error, Result};
use crate::Container;

/// Where the host mounts a controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CgroupLayout {
    /// A cgroup v1 hierarchy.
    V1,
    /// The unified cgroup v2 hierarchy.
    V2,
}

/// The layout of `controller` on this host, from `/proc/self/mountinfo`:
/// v1 when a v1 hierarchy carries it, else v2.
pub fn cgroup_layout(controller: &str) -> CgroupLayout {
    static V1: OnceLock<Vec<String>> = OnceLock::new();
    let v1 = V1.get_or_init(|| {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        info.lines()
            .filter_map(|l| l.split_once(" - ").map(|x| x.1))
            .filter(|r| r.starts_with("cgroup "))
            .flat_map(|r| r.split(' ').nth(2).unwrap_or("").split(',').map(str::to_owned).collect::<Vec<_>>())
            .collect()
    });
    if v1.iter().any(|c| c == controller) {
        CgroupLayout::V1
    } else {
        CgroupLayout::V2
    }
}

/// Memory accounting of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MemoryStats {
    /// Memory in use, bytes (page cache included).
    pub usage: u64,
    /// Hard limit (`memory.limit_in_bytes` / `memory.max`).
    pub limit: Option<ByteSize>,
    /// Soft limit (`memory.soft_limit_in_bytes` / `memory.high`).
    pub soft_limit: Option<ByteSize>,
    /// Swap in use, bytes, where the host accounts swap.
    pub swap_usage: Option<u64>,
    /// Swap limit (v1: `memsw` minus the memory limit; v2: `memory.swap.max`).
    pub swap_limit: Option<ByteSize>,
    /// Kernel memory in use, where the host accounts it.
    pub kernel_usage: Option<u64>,
}

/// CPU accounting of a container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CpuStats {
    /// CPU time used, all CPUs.
    pub total: Duration,
    /// CPU time used per CPU (cgroup v1 only; empty on v2).
    pub per_cpu: Vec<Duration>,
    /// Time in user mode.
    pub user: Duration,
    /// Time in kernel mode.
    pub system: Duration,
}

/// Block I/O of a container, all devices together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BlkioStats {
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub write_bytes: u64,
}

/// A block I/O limit on one device, for [`Container::set_io_limit`]:
/// bytes and operations per second, each `None` for no limit.
///
/// ```
/// let l = lxc::IoLimit::new().write_bps(4 << 20).read_iops(500);
/// assert_eq!(l.write_bps, Some(4 << 20));
/// assert_eq!(l.read_bps, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct IoLimit {
    /// Bytes read per second.
    pub read_bps: Option<u64>,
    /// Bytes written per second.
    pub write_bps: Option<u64>,
    /// Read operations per second.
    pub read_iops: Option<u64>,
    /// Write operations per second.
    pub write_iops: Option<u64>,
}

impl IoLimit {
    /// No limit at all (what setting it removes).
    pub fn new() -> Self {
        Self::default()
    }
    /// Limits reads to `n` bytes per second.
    pub fn read_bps(mut self, n: u64) -> Self {
        self.read_bps = Some(n);
        self
    }
    /// Limits writes to `n` bytes per second.
    pub fn write_bps(mut self, n: u64) -> Self {
        self.write_bps = Some(n);
        self
    }
    /// Limits reads to `n` operations per second.
    pub fn read_iops(mut self, n: u64) -> Self {
        self.read_iops = Some(n);
        self
    }
    /// Limits writes to `n` operations per second.
    pub fn write_iops(mut self, n: u64) -> Self {
        self.write_iops = Some(n);
        self
    }

    /// The cgroup items that set this limit on device `dev` (`major:minor`),
    /// for the host's layout: v1 one `blkio.throttle.*_device` item per
    /// field (0 removes a limit), v2 one `io.max` line (`max` removes one).
    pub(crate) fn cgroup_items(&self, dev: &str, layout: CgroupLayout) -> Vec<(&'static str, String)> {
        let fields = [
            (self.read_bps, "blkio.throttle.read_bps_device", "rbps"),
            (self.write_bps, "blkio.throttle.write_bps_device", "wbps"),
            (self.read_iops, "blkio.throttle.read_iops_device", "riops"),
            (self.write_iops, "blkio.throttle.write_iops_device", "wiops"),
        ];
        match layout {
            CgroupLayout::V1 => {
                fields.iter().map(|(v, key, _)| (*key, format!("{dev} {}", v.unwrap_or(0)))).collect()
            }
            CgroupLayout::V2 => {
                let line = fields.iter().fold(dev.to_owned(), |mut l, (v, _, k)| {
                    l.push_str(&format!(" {k}={}", v.map_or("max".to_owned(), |n| n.to_string())));
                    l
                });
                vec![("io.max", line)]
            }
        }
    }
}

/// The whole disk that holds `path` as `major:minor`: the device itself
/// for a block device node, else the device of the filesystem `path` is
/// on; a partition gives its disk (the kernel throttles whole disks).
pub(crate) fn block_device_of(path: &std::path::Path) -> Result<String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let io = |source| Error::Io { op: "find the block device for an I/O limit", source };
    let md = std::fs::metadata(path)
        .map_err(|e| io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))))?;
    let dev = if md.file_type().is_block_device() { md.rdev() } else { md.dev() };
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let sys = std::path::PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if major == 0 || !sys.exists() {
        return Err(io(std::io::Error::other(format!(
            "{} is not on a block device (its filesystem's device is {major}:{minor}: tmpfs, overlay, btrfs and other virtual devices cannot be throttled; name the disk itself)",
            path.display()
        ))));
    }
    if sys.join("partition").exists() {
        let disk = std::fs::read_to_string(sys.join("../dev")).map_err(io)?;
        return Ok(disk.trim().to_owned());
    }
    Ok(format!("{major}:{minor}"))
}

/// Traffic of one network interface inside a container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InterfaceStats {
    /// Interface name inside the container.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
}

/// Everything [`Container::stats`] reads at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Stats {
    /// Memory.
    pub memory: MemoryStats,
    /// CPU.
    pub cpu: CpuStats,
    /// Block I/O.
    pub blkio: BlkioStats,
    /// Network interfaces (loopback included).
    pub interfaces: Vec<InterfaceStats>,
}

fn num(op: &'static str, text: &str) -> Result<u64> {
    text.trim().parse().map_err(|_| Error::bad_return(op, format!("a value that is not a number: {text:?}")))
}

/// The value of `key` in a flat-keyed file (`key value` lines: `memory.stat`, `cpu.stat`).
pub(crate) fn flat_key(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// cgroup v1 `cpuacct.stat`: user and system time in clock ticks.
pub(crate) fn parse_cpuacct_stat(text: &str) -> (Duration, Duration) {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let t = |k| Duration::from_nanos(flat_key(text, k).unwrap_or(0).saturating_mul(1_000_000_000 / hz));
    (t("user"), t("system"))
}

/// cgroup v2 `cpu.stat`: total, user and system time.
pub(crate) fn parse_cpu_stat_v2(text: &str) -> CpuStats {
    let us = |k| Duration::from_micros(flat_key(text, k).unwrap_or(0));
    CpuStats {
        total: us("usage_usec"),
        per_cpu: Vec::new(),
        user: us("user_usec"),
        system: us("system_usec"),
    }
}

/// cgroup v1 `blkio.throttle.io_service_bytes`: `MAJ:MIN Read N` lines.
pub(crate) fn parse_blkio_v1(text: &str) -> BlkioStats {
    let mut s = BlkioStats::default();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let [dev, op, n] = f[..] {
            if dev.contains(':') {
                let n: u64 = n.parse().unwrap_or(0);
                match op {
                    "Read" => s.read_bytes += n,
                    "Write" => s.write_bytes += n,
                    _ => {}
                }
            }
        }
    }
    s
}

/// cgroup v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N ...` lines.
pub(crate) fn parse_io_stat_v2(text: &str) -> BlkioStats {
    let mut s = BlkioStats::default();
    for l in text.lines() {
        for kv in l.split_whitespace().skip(1) {
            match kv.split_once('=') {
                Some(("rbytes", n)) => s.read_bytes += n.parse().unwrap_or(0),
                Some(("wbytes", n)) => s.write_bytes += n.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    s
}

/// `/proc/<pid>/net/dev`: per-interface counters.
pub(crate) fn parse_net_dev(text: &str) -> Vec<InterfaceStats> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            if f.len() < 10 {
                return None;
            }
            Some(InterfaceStats {
                name: name.trim().to_owned(),
                rx_bytes: f[0],
                rx_packets: f[1],
                tx_bytes: f[8],
                tx_packets: f[9],
            })
        })
        .collect()
}

impl Container {
    fn cg(&self, key: &str) -> Result<String> {
        self.cgroup_item(key)
    }

    fn cg_opt(&self, key: &str) -> Option<String> {
        self.cgroup_item(key).ok()
    }

    /// Memory in use by the container, in bytes.
    pub fn memory_usage(&self) -> Result<u64> {
        match cgroup_layout("memory") {
            CgroupLayout::V1 => num("memory_usage", &self.cg("memory.usage_in_bytes")?),
            CgroupLayout::V2 => num("memory_usage", &self.cg("memory.current")?),
        }
    }

    /// The container's memory limit; [`ByteSize::UNLIMITED`] when none.
    pub fn memory_limit(&self) -> Result<ByteSize> {
        let key = match cgroup_layout("memory") {
            CgroupLayout::V1 => "memory.limit_in_bytes",
            CgroupLayout::V2 => "memory.max",
        };
        let t = self.cg(key)?;
        ByteSize::from_cgroup(&t).ok_or_else(|| Error::bad_return("memory_limit", t))
    }

    /// All of the container's memory accounting at once.
    pub fn memory_stats(&self) -> Result<MemoryStats> {
        let usage = self.memory_usage()?;
        let limit = Some(self.memory_limit()?);
        let parse = |t: Option<String>| t.and_then(|t| ByteSize::from_cgroup(&t));
        Ok(match cgroup_layout("memory") {
            CgroupLayout::V1 => {
                let memsw_usage =
                    self.cg_opt("memory.memsw.usage_in_bytes").and_then(|t| t.trim().parse::<u64>().ok());
                let memsw_limit = parse(self.cg_opt("memory.memsw.limit_in_bytes"));
                MemoryStats {
                    usage,
                    limit,
                    soft_limit: parse(self.cg_opt("memory.soft_limit_in_bytes")),
                    swap_usage: memsw_usage.map(|m| m.saturating_sub(usage)),
                    swap_limit: match (memsw_limit.and_then(ByteSize::bytes), limit.and_then(ByteSize::bytes))
                    {
                        (Some(sw), Some(m)) => Some(ByteSize::new(sw.saturating_sub(m))),
                        _ => memsw_limit,
                    },
                    kernel_usage: self
                        .cg_opt("memory.kmem.usage_in_bytes")
                        .and_then(|t| t.trim().parse().ok()),
                }
            }
            CgroupLayout::V2 => MemoryStats {
                usage,
                limit,
                soft_limit: parse(self.cg_opt("memory.high")),
                swap_usage: self.cg_opt("memory.swap.current").and_then(|t| t.trim().parse().ok()),
                swap_limit: parse(self.cg_opt("memory.swap.max")),
                kernel_usage: self.cg_opt("memory.stat").and_then(|t| flat_key(&t, "kernel")),
            },
        })
    }

    /// Sets the container's memory limit (hard), now; use the
    /// `lxc.cgroup.memory.limit_in_bytes` / `lxc.cgroup2.memory.max` config
    /// keys for a limit that survives a restart.
    ///
    /// ```no_run
    /// let c = lxc::Container::new("web")?;
    /// c.set_memory_limit("512M".parse::<lxc::ByteSize>()?)?;
    /// c.set_memory_limit(10_000_000u64)?;
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn set_memory_limit(&self, limit: impl Into<ByteSize>) -> Result<()> {
        let b = limit.into();
        match cgroup_layout("memory") {
            CgroupLayout::V1 => self.set_cgroup_item("memory.limit_in_bytes", &b.cgroup_value(false)),
            CgroupLayout::V2 => self.set_cgroup_item("memory.max", &b.cgroup_value(true)),
        }
    }

    /// Sets the soft memory limit (v1 `memory.soft_limit_in_bytes`, v2
    /// `memory.high`).
    pub fn set_memory_soft_limit(&self, limit: impl Into<ByteSize>) -> Result<()> {
        let b = limit.into();
        match cgroup_layout("memory") {
            CgroupLayout::V1 => self.set_cgroup_item("memory.soft_limit_in_bytes", &b.cgroup_value(false)),
            CgroupLayout::V2 => self.set_cgroup_item("memory.high", &b.cgroup_value(true)),
        }
    }

    /// Sets how much swap the container may use on top of its memory (v1:
    /// `memory.memsw.limit_in_bytes` = memory limit + swap; v2:
    /// `memory.swap.max`). Needs a host that accounts swap.
    pub fn set_swap_limit(&self, swap: impl Into<ByteSize>) -> Result<()> {
        let b = swap.into();
        match cgroup_layout("memory") {
            CgroupLayout::V1 => {
                let total = match (self.memory_limit()?.bytes(), b.bytes()) {
                    (Some(m), Some(s)) => ByteSize::new(m.saturating_add(s)),
                    _ => ByteSize::UNLIMITED,
                };
                self.set_cgroup_item("memory.memsw.limit_in_bytes", &total.cgroup_value(false))
            }
            CgroupLayout::V2 => self.set_cgroup_item("memory.swap.max", &b.cgroup_value(true)),
        }
    }

    /// CPU time the container used.
    pub fn cpu_stats(&self) -> Result<CpuStats> {
        match cgroup_layout("cpuacct") {
            CgroupLayout::V1 => {
                let total = Duration::from_nanos(num("cpu_stats", &self.cg("cpuacct.usage")?)?);
                let per_cpu = self
                    .cg_opt("cpuacct.usage_percpu")
                    .map(|t| {
                        t.split_whitespace()
                            .filter_map(|n| n.parse().ok())
                            .map(Duration::from_nanos)
                            .collect()
                    })
                    .unwrap_or_default();
                let (user, system) =
                    self.cg_opt("cpuacct.stat").map(|t| parse_cpuacct_stat(&t)).unwrap_or_default();
                Ok(CpuStats { total, per_cpu, user, system })
            }
            CgroupLayout::V2 => Ok(parse_cpu_stat_v2(&self.cg("cpu.stat")?)),
        }
    }

    /// Total CPU time the container used.
    pub fn cpu_time(&self) -> Result<Duration> {
        self.cpu_stats().map(|s| s.total)
    }

    /// Sets the container's CPU weight relative to others: v1 `cpu.shares`
    /// (default 1024), mapped to v2 `cpu.weight` (default 100).
    pub fn set_cpu_shares(&self, shares: u64) -> Result<()> {
        match cgroup_layout("cpu") {
            CgroupLayout::V1 => self.set_cgroup_item("cpu.shares", &shares.to_string()),
            CgroupLayout::V2 => {
                let weight = 1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142;
                self.set_cgroup_item("cpu.weight", &weight.to_string())
            }
        }
    }

    /// Limits the container to `quota` of CPU time per `period` (`None`:
    /// no limit): v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, v2 `cpu.max`.
    /// `quota` = 2 × `period` allows two CPUs.
    pub fn set_cpu_quota(&self, quota: Option<Duration>, period: Duration) -> Result<()> {
        let period_us = period.as_micros().clamp(1000, 1_000_000) as u64;
        match cgroup_layout("cpu") {
            CgroupLayout::V1 => {
                self.set_cgroup_item("cpu.cfs_period_us", &period_us.to_string())?;
                let q = quota.map_or("-1".to_owned(), |q| (q.as_micros().max(1000) as u64).to_string());
                self.set_cgroup_item("cpu.cfs_quota_us", &q)
            }
            CgroupLayout::V2 => {
                let q = quota.map_or("max".to_owned(), |q| (q.as_micros().max(1000) as u64).to_string());
                self.set_cgroup_item("cpu.max", &format!("{q} {period_us}"))
            }
        }
    }

    /// Limits the container's block I/O on the disk that holds `device`
    /// (a block device node such as `/dev/vda`, or any path on a disk's
    /// filesystem, such as the container's rootfs; a partition gives its
    /// disk): v1 `blkio.throttle.{read,write}_{bps,iops}_device`, v2
    /// `io.max`. Every field of `limit` is set; `None` removes that limit.
    ///
    /// The kernel throttles I/O that reaches the disk on behalf of the
    /// container's cgroup: direct I/O and reads always, buffered writes
    /// only on cgroup v2 (v1 writeback is not charged to the writer).
    ///
    /// ```no_run
    /// let c = lxc::Container::new("web")?;
    /// let rootfs = c.config_item_str("lxc.rootfs.path")?;
    /// c.set_io_limit(rootfs.trim(), &lxc::IoLimit::new().write_bps(4 << 20))?;
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn set_io_limit(&self, device: impl AsRef<std::path::Path>, limit: &IoLimit) -> Result<()> {
        let dev = block_device_of(device.as_ref())?;
        for (key, value) in limit.cgroup_items(&dev, cgroup_layout("blkio")) {
            self.set_cgroup_item(key, &value)?;
        }
        Ok(())
    }

    /// Bytes the container read and wrote on block devices.
    pub fn blkio_stats(&self) -> Result<BlkioStats> {
        match cgroup_layout("blkio") {
            CgroupLayout::V1 => Ok(parse_blkio_v1(&self.cg("blkio.throttle.io_service_bytes")?)),
            CgroupLayout::V2 => Ok(parse_io_stat_v2(&self.cg("io.stat")?)),
        }
    }

    /// Traffic counters of the container's network interfaces, read in its
    /// network namespace (`/proc/<init>/net/dev`).
    pub fn interface_stats(&self) -> Result<Vec<InterfaceStats>> {
        let pid = self.init_pid().ok_or_else(|| {
            self.wrong_state("interface_stats", "it must be running", crate::State::Stopped)
        })?;
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
            .map_err(|source| Error::Io { op: "read /proc/<init>/net/dev", source })?;
        Ok(parse_net_dev(&text))
    }

    /// Memory, CPU, block I/O and interface counters of the running
    /// container in one call.
    ///
    /// ```no_run
    /// let c = lxc::Container::new("web")?;
    /// let s = c.stats()?;
    /// println!("{} bytes, {:?} CPU", s.memory.usage, s.cpu.total);
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn stats(&self) -> Result<Stats> {
        Ok(Stats {
            memory: self.memory_stats()?,
            cpu: self.cpu_stats()?,
            blkio: self.blkio_stats().unwrap_or_default(),
            interfaces: self.interface_stats()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from cgroup v2 hosts (Debian 12 / systemd, kernel 6.1).
    const CPU_STAT_V2: &str = "usage_usec 2413567\nuser_usec 1701345\nsystem_usec 712222\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n";
    const IO_STAT_V2: &str = "259:0 rbytes=1048576 wbytes=4096 rios=12 wios=1 dbytes=0 dios=0\n8:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n";
    const MEMORY_STAT_V2: &str = "anon 1236992\nfile 4096\nkernel 733184\nkernel_stack 32768\n";
    const BLKIO_V1: &str =
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\n8:16 Read 1\nTotal 12289\n";
    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     840      10    0    0    0     0          0         0      840      10    0    0    0     0       0          0
  eth0:  123456     789    0    0    0     0          0         0    65432     321    0    0    0     0       0          0
";

    #[test]
    fn v2_files() {
        let c = parse_cpu_stat_v2(CPU_STAT_V2);
        assert_eq!(c.total, Duration::from_micros(2413567));
        assert_eq!(c.user, Duration::from_micros(1701345));
        assert_eq!(c.system, Duration::from_micros(712222));
        assert!(c.per_cpu.is_empty());
        assert_eq!(parse_io_stat_v2(IO_STAT_V2), BlkioStats { read_bytes: 1049088, write_bytes: 4096 });
        assert_eq!(flat_key(MEMORY_STAT_V2, "kernel"), Some(733184));
        assert_eq!(flat_key(MEMORY_STAT_V2, "kernel_stack"), Some(32768));
        assert_eq!(flat_key(MEMORY_STAT_V2, "nope"), None);
    }

    #[test]
    fn v1_files_and_net_dev() {
        assert_eq!(parse_blkio_v1(BLKIO_V1), BlkioStats { read_bytes: 4097, write_bytes: 8192 });
    }

    #[test]
    fn io_limit_items() {
        let l = IoLimit::new().write_bps(4194304).read_iops(100);
        assert_eq!(
            l.cgroup_items("254:0", CgroupLayout::V1),
            vec![
                ("blkio.throttle.read_bps_device", "254:0 0".to_owned()),
                ("blkio.throttle.write_bps_device", "254:0 4194304".to_owned()),
                ("blkio.throttle.read_iops_device", "254:0 100".to_owned()),
                ("blkio.throttle.write_iops_device", "254:0 0".to_owned()),
            ]
        );
        assert_eq!(
            l.cgroup_items("8:16", CgroupLayout::V2),
            vec![("io.max", "8:16 rbps=max wbps=4194304 riops=100 wiops=max".to_owned())]
        );
        let (user, _) = parse_cpuacct_stat("user 100\nsystem 50\n");
        assert!(user > Duration::ZERO);
        let n = parse_net_dev(NET_DEV);
        assert_eq!(n.len(), 2);
        assert_eq!(
            n[1],
            InterfaceStats {
                name: "eth0".into(),
                rx_bytes: 123456,
                rx_packets: 789,
                tx_bytes: 65432,
                tx_packets: 321
            }
        );
    }

    #[test]
    fn this_host() {
        let _ = cgroup_layout("memory");
        assert_eq!(cgroup_layout("no-such-controller"), CgroupLayout::V2);
    }
}
