//! The container's consoles: `console_getfd`, `console`, `console_log`.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::container::Access;
use crate::error::{Error, Result};
use crate::layout::method;
use crate::{sys, Container};

/// A tty of the container allocated by [`Container::console_getfd`].
#[derive(Debug)]
pub struct Console {
    /// The tty's number in the container (`/dev/tty<N>`).
    pub ttynum: i32,
    /// The host side of the pty: read the container's output, write its input.
    pub ptx: OwnedFd,
    /// Keeps the tty allocated to us; dropping it frees the tty.
    pub keep: OwnedFd,
}

impl Container {
    /// Allocates a tty of the running container, the next free one or
    /// `ttynum` (`console_getfd`); the container needs `lxc.tty.max` > 0.
    pub fn console_getfd(&self, ttynum: Option<i32>) -> Result<Console> {
        let f = method!(self.console_getfd);
        let mut tty = ttynum.unwrap_or(-1);
        let mut ptx = -1;
        crate::container::clear_errno();
        let g = self.hold(Access::Read);
        // SAFETY: the container is live; both out-pointers are valid.
        let fd = unsafe { f(self.as_raw(), &mut tty, &mut ptx) };
        drop(g);
        if fd < 0 || ptx < 0 {
            return Err(self.failed("console_getfd"));
        }
        // SAFETY: liblxc hands over both new descriptors; each is owned once.
        let (ptx, keep) = unsafe { (OwnedFd::from_raw_fd(ptx), OwnedFd::from_raw_fd(fd)) };
        Ok(Console { ttynum: tty, ptx, keep })
    }

    /// Connects the given descriptors to a console of the running container
    /// until the user types the escape sequence (`Ctrl+<escape> q`)
    /// (`console`, `lxc-console`): `ttynum` `None` for the next free tty,
    /// `Some(0)` for the console itself.
    pub fn console(
        &self,
        ttynum: Option<i32>,
        stdin: BorrowedFd<'_>,
        stdout: BorrowedFd<'_>,
        stderr: BorrowedFd<'_>,
        escape: char,
    ) -> Result<()> {
        let f = method!(self.console);
        if !escape.is_ascii_lowercase() {
            return Err(Error::invalid("escape character", escape.to_string(), "must be a letter a to z"));
        }
        let esc = (escape as u8 - b'a' + 1) as i32;
        crate::container::clear_errno();
        let g = self.hold_long(Access::Read);
        // SAFETY: the container is live; the descriptors are borrowed for
        // the call.
        let r = unsafe {
            f(
                self.as_raw(),
                ttynum.unwrap_or(-1),
                stdin.as_raw_fd(),
                stdout.as_raw_fd(),
                stderr.as_raw_fd(),
                esc,
            )
        };
        drop(g);
        if r < 0 {
            Err(self.failed("console"))
        } else {
            Ok(())
        }
    }

    /// Empties the running container's console ring buffer without
    /// reading it (`console_log` with `clear` and not `read`); the
    /// container needs `lxc.console.buffer.size`.
    pub fn console_log_clear(&self) -> Result<()> {
        let f = method!(self.console_log);
        let mut read_max = 0u64;
        // liblxc before 4.0.12 sends the monitor an uninitialized
        // `write_logfile` (`lxc_cmd_console_log`); when it happens to be
        // non-zero, the monitor answers a clear without read with a data
        // length and no data, and the caller waits for that data forever
        // (seen with 4.0.6). There the buffer is read (and dropped) as it is
        // cleared: the answer then carries the data it announces.
        let read = crate::runtime_version() < crate::Version::new(4, 0, 12);
        let mut log =
            sys::lxc_console_log { clear: true, read, read_max: &mut read_max, data: std::ptr::null_mut() };
        let g = self.hold(Access::Read);
        crate::container::clear_errno();
        // SAFETY: the container is live; log and read_max are valid for the
        // call; liblxc hands back no data when nothing is read.
        let r = unsafe { f(self.as_raw(), &mut log) };
        drop(g);
        if !log.data.is_null() {
            // SAFETY: a buffer from liblxc is ours to free, once.
            unsafe { libc::free(log.data.cast()) };
        }
        // Reading an empty buffer is ENODATA: nothing to clear.
        if r < 0 && !(read && r == -libc::ENODATA) {
            if !self.is_running() {
                return Err(self.wrong_state("console_log", "it must be running", crate::State::Stopped));
            }
            return Err(self.failed("console_log"));
        }
        Ok(())
    }

    /// Reads what the container wrote to its console since the last read
    /// (and with `clear`, empties the ring buffer) (`console_log`); the
    /// container needs `lxc.console.buffer.size` (in bytes, at least 4096).
    /// `max` bounds how much is read (0: all). An empty buffer reads as
    /// empty.
    pub fn console_log(&self, clear: bool, max: u64) -> Result<Vec<u8>> {
        let f = method!(self.console_log);
        let mut read_max = max;
        let mut log =
            sys::lxc_console_log { clear, read: true, read_max: &mut read_max, data: std::ptr::null_mut() };
        crate::container::clear_errno();
        let g = self.hold(Access::Read);
        // SAFETY: the container is live; log and read_max are valid for the
        // call; liblxc sets data to a malloc'ed buffer of read_max bytes.
        let r = unsafe { f(self.as_raw(), &mut log) };
        drop(g);
        if r < 0 {
            // liblxc answers an empty ring buffer with an error.
            let errno = std::io::Error::last_os_error().raw_os_error();
            if self.is_running() && matches!(errno, Some(libc::ENODATA) | Some(libc::EMSGSIZE)) {
                return Ok(Vec::new());
            }
            return Err(self.failed("console_log"));
        }
        if log.data.is_null() || read_max == 0 {
            if !log.data.is_null() {
                // SAFETY: the buffer is ours to free.
                unsafe { libc::free(log.data.cast()) };
            }
            return Ok(Vec::new());
        }
        // SAFETY: liblxc wrote read_max bytes at data.
        let v = unsafe { std::slice::from_raw_parts(log.data.cast::<u8>(), read_max as usize) }.to_vec();
        // SAFETY: the buffer is ours to free, once.
        unsafe { libc::free(log.data.cast()) };
        Ok(v)
    }
}
