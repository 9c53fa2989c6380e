//! Mounts injected into a running container: `mount`, `umount`.

use std::path::Path;
use std::ptr;

use crate::cstr::{cstring, path_bytes};
use crate::error::Result;
use crate::layout::method;
use crate::Container;

impl Container {
    /// Mounts the host's `source` on `target` inside the running container
    /// (`mount`): `fstype` and `data` as for mount(2) (`None`, `None`
    /// with `libc::MS_BIND` for a bind mount). liblxc injects mounts
    /// through a shared mount point the container must have been started
    /// with: `lxc.mount.auto = shmounts:HOST_DIR:/dev/.lxc-mounts`, where
    /// `HOST_DIR` is a mount point with shared propagation (a tmpfs after
    /// `mount --make-shared`, as LXD does).
    ///
    /// ```no_run
    /// let c = lxc::Container::new("web")?;
    /// c.mount(Some("/srv/data".as_ref()), "/mnt".as_ref(), None, libc::MS_BIND, None)?;
    /// # Ok::<(), lxc::Error>(())
    /// ```
    #[cfg(lxc_member = "mount")]
    pub fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> Result<()> {
        let f = method!(self.mount);
        let src = source.map(|s| cstring("mount source", path_bytes(s))).transpose()?;
        let tgt = cstring("mount target", path_bytes(target))?;
        let fs = fstype.map(|s| cstring("filesystem type", s)).transpose()?;
        let data = data.map(|s| cstring("mount data", s)).transpose()?;
        let mut mnt = crate::sys::lxc_mount { version: crate::sys::LXC_MOUNT_API_V1 as i32 };
        let guard = self.exclusive();
        crate::container::clear_errno();
        // SAFETY: the container is live; every string is null or valid for
        // the call; mnt is the versioned struct liblxc reads.
        let r = unsafe {
            f(
                self.as_raw(),
                src.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                tgt.as_ptr(),
                fs.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                flags,
                data.as_ref().map_or(ptr::null(), |c| c.as_ptr().cast()),
                &mut mnt,
            )
        };
        drop(guard);
        self.mount_result("mount", r)
    }

    /// Unmounts `target` inside the running container (`umount`); `flags`
    /// as for umount2(2).
    #[cfg(lxc_member = "umount")]
    pub fn umount(&self, target: &Path, flags: libc::c_ulong) -> Result<()> {
        let f = method!(self.umount);
        let tgt = cstring("mount target", path_bytes(target))?;
        let mut mnt = crate::sys::lxc_mount { version: crate::sys::LXC_MOUNT_API_V1 as i32 };
        let guard = self.exclusive();
        crate::container::clear_errno();
        // SAFETY: the container is live; tgt is valid; mnt is liblxc's struct.
        let r = unsafe { f(self.as_raw(), tgt.as_ptr(), flags, &mut mnt) };
        drop(guard);
        self.mount_result("umount", r)
    }

    #[allow(dead_code)]
    fn mount_result(&self, op: &'static str, r: i32) -> Result<()> {
        if r >= 0 {
            return Ok(());
        }
        if !self.is_running() {
            return Err(self.wrong_state(op, "it must be running", crate::State::Stopped));
        }
        Err(self.failed(op))
    }
}
