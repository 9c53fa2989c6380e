//! Listing the containers of an lxcpath: `list_defined_containers`,
//! `list_active_containers`, `list_all_containers`. An existing lxcpath is
//! resolved to its real path first, as for a [`Container`] handle.

use std::ffi::c_char;
use std::path::Path;
use std::ptr;

use crate::cstr::take_counted_strings;
use crate::error::{Error, Result};
use crate::{sys, Container};

/// Which containers to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// Containers with a configuration in the lxcpath (`list_defined_containers`).
    Defined,
    /// Running containers of the lxcpath (`list_active_containers`).
    Active,
    /// Both (`list_all_containers`).
    All,
}

type ListFn =
    unsafe extern "C" fn(*const c_char, *mut *mut *mut c_char, *mut *mut *mut sys::lxc_container) -> i32;

impl ListKind {
    fn raw(self) -> (&'static str, ListFn) {
        match self {
            ListKind::Defined => ("list_defined_containers", sys::list_defined_containers),
            ListKind::Active => ("list_active_containers", sys::list_active_containers),
            ListKind::All => ("list_all_containers", sys::list_all_containers),
        }
    }
}

fn list(kind: ListKind, lxcpath: Option<&Path>, want_objects: bool) -> Result<(Vec<String>, Vec<Container>)> {
    let (op, f) = kind.raw();
    // Resolved like a handle's lxcpath (see `Container::new`): liblxc finds
    // running containers by socket names made of the lxcpath string.
    let path = crate::cstr::lxcpath_or_default(lxcpath)?.map(|(_, c)| c);
    let mut names: *mut *mut c_char = ptr::null_mut();
    let mut objs: *mut *mut sys::lxc_container = ptr::null_mut();
    // SAFETY: the path is null or valid for the call; liblxc fills the two
    // out-pointers with malloc'ed arrays of n entries that we then own.
    let n = unsafe {
        f(
            path.as_ref().map_or(ptr::null(), |p| p.as_ptr()),
            &mut names,
            if want_objects { &mut objs } else { ptr::null_mut() },
        )
    };
    if n < 0 {
        return Err(Error::Failed {
            op,
            container: String::new(),
            error_num: n,
            error_string: None,
            errno: std::io::Error::last_os_error().raw_os_error(),
        });
    }
    let n = n as usize;
    let mut containers = Vec::new();
    let mut first_err = None;
    if !objs.is_null() {
        containers.reserve(n);
        for i in 0..n {
            // SAFETY: i < n, the array's length.
            let p = unsafe { *objs.add(i) };
            // SAFETY: each entry is a container reference handed to us;
            // from_raw takes it over (and releases it on error).
            match unsafe { Container::from_raw(p) } {
                Ok(c) => containers.push(c),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        // SAFETY: the array itself was malloc'ed by liblxc and is ours.
        unsafe { libc::free(objs.cast()) };
    }
    // SAFETY: names is null or a malloc'ed array of n malloc'ed strings.
    let names = unsafe { take_counted_strings(op, names, n) }?;
    match first_err {
        Some(e) => Err(e),
        None => Ok((names, containers)),
    }
}

/// Names of the containers defined in `lxcpath` (default lxcpath if `None`),
/// sorted (`list_defined_containers`, `lxc-ls --defined`).
///
/// ```
/// let names = lxc::list_defined_containers(Some(&std::env::temp_dir()))?;
/// # let _ = names;
/// # Ok::<(), lxc::Error>(())
/// ```
pub fn list_defined_containers(lxcpath: Option<&Path>) -> Result<Vec<String>> {
    list(ListKind::Defined, lxcpath, false).map(|r| r.0)
}

/// Names of the running containers of `lxcpath` (`list_active_containers`,
/// `lxc-ls --active`).
pub fn list_active_containers(lxcpath: Option<&Path>) -> Result<Vec<String>> {
    list(ListKind::Active, lxcpath, false).map(|r| r.0)
}

/// Names of the defined or running containers of `lxcpath`
/// (`list_all_containers`, `lxc-ls`).
pub fn list_all_containers(lxcpath: Option<&Path>) -> Result<Vec<String>> {
    list(ListKind::All, lxcpath, false).map(|r| r.0)
}

/// The containers of `lxcpath` as handles, opened by liblxc while it lists
/// them.
///
/// ```no_run
/// for c in lxc::containers(lxc::ListKind::All, None)? {
///     println!("{} {}", c.name(), c.state()?);
/// }
/// # Ok::<(), lxc::Error>(())
/// ```
pub fn containers(kind: ListKind, lxcpath: Option<&Path>) -> Result<Vec<Container>> {
    list(kind, lxcpath, true).map(|r| r.1)
}
