//! Devices and network interfaces moved into a running container:
//! `add_device_node`, `remove_device_node`, `attach_interface`,
//! `detach_interface`.

use std::ffi::c_char;
use std::path::Path;
use std::ptr;

use crate::cstr::{cstring, path_bytes};
use crate::error::Result;
use crate::layout::method;
use crate::{sys, Container, State};

type PairFn = unsafe extern "C" fn(*mut sys::lxc_container, *const c_char, *const c_char) -> bool;

impl Container {
    /// Calls a `(container, source, optional destination) -> bool` member
    /// of a running container.
    fn running_pair(
        &self,
        op: &'static str,
        f: PairFn,
        what: (&'static str, &[u8]),
        dest: Option<&[u8]>,
    ) -> Result<()> {
        let src = cstring(what.0, what.1)?;
        let dst = dest.map(|d| cstring(what.0, d)).transpose()?;
        if !self.is_running() {
            return Err(self.wrong_state(op, "it must be running", State::Stopped));
        }
        let guard = self.exclusive();
        crate::container::clear_errno();
        // SAFETY: the container is live; both strings are null or valid.
        let ok = unsafe { f(self.as_raw(), src.as_ptr(), dst.as_ref().map_or(ptr::null(), |d| d.as_ptr())) };
        drop(guard);
        if ok {
            Ok(())
        } else {
            Err(self.failed(op))
        }
    }

    /// Makes the host's device node `src` (such as `/dev/loop7`) available
    /// in the running container, at `dest` or the same path
    /// (`add_device_node`, `lxc-device add`): the node is created inside
    /// and allowed in the devices cgroup.
    pub fn add_device_node(&self, src: impl AsRef<Path>, dest: Option<&Path>) -> Result<()> {
        let f = method!(self.add_device_node);
        self.running_pair(
            "add_device_node",
            f,
            ("device path", path_bytes(src.as_ref())),
            dest.map(path_bytes),
        )
    }

    /// Removes a device node added with [`Container::add_device_node`]
    /// (`remove_device_node`).
    pub fn remove_device_node(&self, src: impl AsRef<Path>, dest: Option<&Path>) -> Result<()> {
        let f = method!(self.remove_device_node);
        self.running_pair(
            "remove_device_node",
            f,
            ("device path", path_bytes(src.as_ref())),
            dest.map(path_bytes),
        )
    }

    /// Moves the host's network interface `dev` into the running container,
    /// named `dst_dev` there or keeping its name (`attach_interface`,
    /// `lxc-device add IFACE`).
    pub fn attach_interface(&self, dev: &str, dst_dev: Option<&str>) -> Result<()> {
        let f = method!(self.attach_interface);
        self.running_pair("attach_interface", f, ("interface", dev.as_bytes()), dst_dev.map(str::as_bytes))
    }

    /// Moves the container's interface `dev` back to the host, named
    /// `dst_dev` there or keeping its name (`detach_interface`).
    pub fn detach_interface(&self, dev: &str, dst_dev: Option<&str>) -> Result<()> {
        let f = method!(self.detach_interface);
        self.running_pair("detach_interface", f, ("interface", dev.as_bytes()), dst_dev.map(str::as_bytes))
    }
}
