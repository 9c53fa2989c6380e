//! Network interfaces and addresses of a running container:
//! `get_interfaces` and `get_ips`.

use std::net::IpAddr;
use std::ptr;

use crate::cstr::{cstring, take_string_array};
use crate::error::{Error, Result};
use crate::layout::method;
use crate::{Container, State};

/// An address family for [`Container::ip_addresses`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4 (`"inet"`).
    Inet,
    /// IPv6 (`"inet6"`).
    Inet6,
}

impl AddressFamily {
    fn as_str(self) -> &'static str {
        match self {
            AddressFamily::Inet => "inet",
            AddressFamily::Inet6 => "inet6",
        }
    }
}

impl Container {
    fn not_running(&self, op: &'static str) -> Error {
        self.wrong_state(op, "it must be running", State::Stopped)
    }

    /// The names of the network interfaces inside the running container,
    /// `lo` included (`get_interfaces`).
    pub fn interfaces(&self) -> Result<Vec<String>> {
        let f = method!(self.get_interfaces);
        crate::container::clear_errno();
        // liblxc forks a child that enters the container's network namespace.
        let g = self.exclusive();
        // SAFETY: the container is live; liblxc returns a malloc'ed
        // NULL-terminated array of malloc'ed strings, or null.
        let arr = unsafe { f(self.as_raw()) };
        drop(g);
        if arr.is_null() {
            if !self.is_running() {
                return Err(self.not_running("get_interfaces"));
            }
            return Err(self.failed("get_interfaces"));
        }
        // SAFETY: as above; we own the array and its strings.
        unsafe { take_string_array("get_interfaces", arr) }
    }

    /// The IP addresses of the running container (`get_ips`), of one
    /// interface or all, of one family or both, with the given scope
    /// (0 is global, 253 link-local, 254 host). An interface without
    /// addresses gives an empty list.
    ///
    /// ```no_run
    /// let c = lxc::Container::new("web")?;
    /// for ip in c.ip_addresses(Some("eth0"), Some(lxc::AddressFamily::Inet), 0)? {
    ///     println!("{ip}");
    /// }
    /// # Ok::<(), lxc::Error>(())
    /// ```
    pub fn ip_addresses(
        &self,
        interface: Option<&str>,
        family: Option<AddressFamily>,
        scope: i32,
    ) -> Result<Vec<IpAddr>> {
        let f = method!(self.get_ips);
        if !self.is_running() {
            return Err(self.not_running("get_ips"));
        }
        let iface = interface.map(|i| cstring("interface", i)).transpose()?;
        let fam = family.map(|f| cstring("family", f.as_str())).transpose()?;
        // liblxc forks a child that enters the container's network namespace.
        let g = self.exclusive();
        // SAFETY: the container is live; both strings are null or valid for
        // the call; liblxc returns a malloc'ed NULL-terminated array of
        // malloc'ed strings, or null.
        let arr = unsafe {
            f(
                self.as_raw(),
                iface.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                fam.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                scope,
            )
        };
        drop(g);
        // SAFETY: as above; we own the array and its strings.
        let texts = unsafe { take_string_array("get_ips", arr) }?;
        texts
            .iter()
            .map(|t| {
                // IPv6 link-local addresses may carry a zone ("fe80::1%eth0").
                let addr = t.split('%').next().unwrap_or(t);
                addr.parse::<IpAddr>().map_err(|_| {
                    Error::bad_return("get_ips", format!("an address that does not parse: {t:?}"))
                })
            })
            .collect()
    }
}
