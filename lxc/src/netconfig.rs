//! Typed access to a container's network configuration (`lxc.net.N.*`),
//! like python3-lxc's `container.network[0].type = "veth"`, without
//! building keys by hand.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::network::AddressFamily;
use crate::Container;

/// One network device of a container's configuration (`lxc.net.N`).
/// Fields left `None` (or empty) are not written.
///
/// ```
/// use lxc::NetDevice;
/// let eth0 = NetDevice::veth("lxcbr0")
///     .name("eth0")
///     .ipv4("10.0.3.10/24")
///     .ipv4_gateway("10.0.3.1")
///     .mtu(1400);
/// assert_eq!(eth0.kind, "veth");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NetDevice {
    /// `lxc.net.N.type`: `empty`, `veth`, `macvlan`, `ipvlan`, `phys`, `vlan`, `none`.
    pub kind: String,
    /// `lxc.net.N.link`: the host bridge or device.
    pub link: Option<String>,
    /// `lxc.net.N.name`: the name inside the container.
    pub name: Option<String>,
    /// `lxc.net.N.flags`: `up` when true.
    pub up: bool,
    /// `lxc.net.N.hwaddr`.
    pub hwaddr: Option<String>,
    /// `lxc.net.N.mtu`.
    pub mtu: Option<u32>,
    /// `lxc.net.N.ipv4.address`, as `ADDR/PREFIX`.
    pub ipv4: Vec<String>,
    /// `lxc.net.N.ipv4.gateway`.
    pub ipv4_gateway: Option<String>,
    /// `lxc.net.N.ipv6.address`.
    pub ipv6: Vec<String>,
    /// `lxc.net.N.ipv6.gateway`.
    pub ipv6_gateway: Option<String>,
    /// `lxc.net.N.veth.pair`: the host side's name.
    pub veth_pair: Option<String>,
}

impl NetDevice {
    /// A device of type `kind`.
    pub fn new(kind: &str) -> Self {
        NetDevice { kind: kind.to_owned(), ..Default::default() }
    }
    /// A veth pair whose host side joins the bridge `bridge`, up.
    pub fn veth(bridge: &str) -> Self {
        NetDevice { kind: "veth".into(), link: Some(bridge.to_owned()), up: true, ..Default::default() }
    }
    /// No network but loopback (`empty`).
    pub fn empty() -> Self {
        NetDevice::new("empty")
    }
    /// The name inside the container.
    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.to_owned());
        self
    }
    /// The host bridge or device.
    pub fn link(mut self, l: &str) -> Self {
        self.link = Some(l.to_owned());
        self
    }
    /// Brings the device up when the container starts.
    pub fn up(mut self, up: bool) -> Self {
        self.up = up;
        self
    }
    /// The MAC address.
    pub fn hwaddr(mut self, mac: &str) -> Self {
        self.hwaddr = Some(mac.to_owned());
        self
    }
    /// The MTU.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }
    /// Adds an IPv4 address, `ADDR/PREFIX`.
    pub fn ipv4(mut self, cidr: &str) -> Self {
        self.ipv4.push(cidr.to_owned());
        self
    }
    /// The IPv4 gateway (`auto` or an address).
    pub fn ipv4_gateway(mut self, gw: &str) -> Self {
        self.ipv4_gateway = Some(gw.to_owned());
        self
    }
    /// Adds an IPv6 address, `ADDR/PREFIX`.
    pub fn ipv6(mut self, cidr: &str) -> Self {
        self.ipv6.push(cidr.to_owned());
        self
    }
    /// The IPv6 gateway.
    pub fn ipv6_gateway(mut self, gw: &str) -> Self {
        self.ipv6_gateway = Some(gw.to_owned());
        self
    }
    /// The host side's name of a veth pair.
    pub fn veth_pair(mut self, name: &str) -> Self {
        self.veth_pair = Some(name.to_owned());
        self
    }

    /// `(sub-key, value)` pairs to write, in an order liblxc accepts
    /// (`type` first).
    fn entries(&self) -> Vec<(&'static str, String)> {
        let mut e = vec![("type", self.kind.clone())];
        let mut opt = |k: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                e.push((k, v.clone()));
            }
        };
        opt("link", &self.link);
        opt("name", &self.name);
        opt("hwaddr", &self.hwaddr);
        opt("veth.pair", &self.veth_pair);
        opt("ipv4.gateway", &self.ipv4_gateway);
        opt("ipv6.gateway", &self.ipv6_gateway);
        if self.up {
            e.push(("flags", "up".into()));
        }
        if let Some(m) = self.mtu {
            e.push(("mtu", m.to_string()));
        }
        e.extend(self.ipv4.iter().map(|a| ("ipv4.address", a.clone())));
        e.extend(self.ipv6.iter().map(|a| ("ipv6.address", a.clone())));
        e
    }
}

impl Container {
    /// The indexes of the configured network devices (`lxc.net.N`):
    /// liblxc has no call that lists them, so indexes are probed until 16
    /// in a row are free (removing a device leaves a gap).
    fn net_indexes(&self) -> Result<Vec<usize>> {
        let mut found = Vec::new();
        let mut misses = 0;
        let mut i = 0;
        while misses < 16 {
            match self.config_item_str(&format!("lxc.net.{i}.type")) {
                Ok(t) if !t.is_empty() => {
                    found.push(i);
                    misses = 0;
                }
                _ => misses += 1,
            }
            i += 1;
        }
        Ok(found)
    }

    /// The container's network devices, in index order.
    ///
    /// ```no_run
    /// let c = lxc::Container::new("web")?;
    /// for (i, dev) in c.network()?.iter().enumerate() {
    ///     println!("lxc.net.{i}: {} on {:?} {:?}", dev.kind, dev.link, dev.ipv4);
    /// }
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn network(&self) -> Result<Vec<NetDevice>> {
        self.net_indexes()?.into_iter().map(|i| self.network_device(i)).collect()
    }

    /// The network device `lxc.net.<index>`.
    pub fn network_device(&self, index: usize) -> Result<NetDevice> {
        let get = |sub: &str| -> Option<String> {
            self.config_item_str(&format!("lxc.net.{index}.{sub}")).ok().filter(|v| !v.is_empty())
        };
        let list = |sub: &str| -> Vec<String> {
            self.config_item(&format!("lxc.net.{index}.{sub}")).map(|v| v.into_vec()).unwrap_or_default()
        };
        let kind =
            get("type").ok_or_else(|| Error::invalid("network index", index.to_string(), "has no device"))?;
        Ok(NetDevice {
            kind,
            link: get("link"),
            name: get("name"),
            up: get("flags").is_some_and(|f| f.contains("up")),
            hwaddr: get("hwaddr"),
            mtu: get("mtu").and_then(|m| m.parse().ok()),
            ipv4: list("ipv4.address"),
            ipv4_gateway: get("ipv4.gateway"),
            ipv6: list("ipv6.address"),
            ipv6_gateway: get("ipv6.gateway"),
            veth_pair: get("veth.pair"),
        })
    }

    /// Writes `dev` as `lxc.net.<index>`, replacing what was there.
    ///
    /// Every field is checked before anything is changed: a field with a
    /// line break or another control character (which would become a
    /// configuration line of its own once saved) is refused with
    /// [`Error::InvalidArgument`], and the device already there is kept.
    pub fn set_network_device(&self, index: usize, dev: &NetDevice) -> Result<()> {
        if dev.kind.is_empty() {
            return Err(Error::invalid("network device type", "", "must not be empty"));
        }
        let entries = dev.entries();
        for (_, value) in &entries {
            crate::cstr::check_line("network device field", value.as_bytes())?;
        }
        // The keys are made here from an index and fixed names: no line break.
        let _ = self.clear_config_item(&format!("lxc.net.{index}"));
        for (sub, value) in entries {
            self.set_config_item(&format!("lxc.net.{index}.{sub}"), &value)?;
        }
        Ok(())
    }

    /// Adds `dev` after the last network device; returns its index.
    pub fn add_network_device(&self, dev: &NetDevice) -> Result<usize> {
        let next = self.net_indexes()?.last().map_or(0, |i| i + 1);
        self.set_network_device(next, dev)?;
        Ok(next)
    }

    /// Removes the network device `lxc.net.<index>`.
    pub fn remove_network_device(&self, index: usize) -> Result<()> {
        if !self.net_indexes()?.contains(&index) {
            return Err(Error::invalid("network index", index.to_string(), "has no device"));
        }
        self.clear_config_item(&format!("lxc.net.{index}"))
    }

    /// Waits up to `timeout` until the running container has an address of
    /// `family` (or any) on `interface` (or any but loopback), and returns
    /// them (go-lxc's `WaitIPAddresses`).
    pub fn wait_ip_addresses(
        &self,
        interface: Option<&str>,
        family: Option<AddressFamily>,
        timeout: Duration,
    ) -> Result<Vec<std::net::IpAddr>> {
        let deadline = Instant::now() + timeout;
        loop {
            let ips = self.ip_addresses(interface, family, 0)?;
            if !ips.is_empty() {
                return Ok(ips);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    op: "wait_ip_addresses",
                    container: self.name().to_owned(),
                    timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
