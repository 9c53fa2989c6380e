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

fn list(kind: ListKind, lxcpath: Option<&Path>) -> Result<Vec<String>> {
    let (op, f) = kind.raw();
    // Resolved like a handle's lxcpath (see `Container::new`): liblxc finds
    // running containers by socket names made of the lxcpath string.
    let path = crate::cstr::lxcpath_or_default(lxcpath)?.map(|(_, c)| c);
    let mut names: *mut *mut c_char = ptr::null_mut();
    // Never liblxc's container objects (the third argument): before 4.0.11,
    // liblxc frees a pointer into the middle of its names array when a
    // container it lists that way cannot be loaded or is not defined (heap
    // corruption; `remove_from_array`). `containers` opens each name itself.
    // SAFETY: the path is null or valid for the call; liblxc fills the
    // names out-pointer with a malloc'ed array of n entries that we then own.
    let n = unsafe { f(path.as_ref().map_or(ptr::null(), |p| p.as_ptr()), &mut names, ptr::null_mut()) };
    if n < 0 {
        return Err(Error::Failed {
            op,
            container: String::new(),
            error_num: n,
            error_string: None,
            errno: std::io::Error::last_os_error().raw_os_error(),
        });
    }
    // SAFETY: names is null or a malloc'ed array of n malloc'ed strings.
    unsafe { take_counted_strings(op, names, n as usize) }
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
    list(ListKind::Defined, lxcpath)
}

/// Names of the running containers of `lxcpath` (`list_active_containers`,
/// `lxc-ls --active`).
pub fn list_active_containers(lxcpath: Option<&Path>) -> Result<Vec<String>> {
    list(ListKind::Active, lxcpath)
}

/// Names of the defined or running containers of `lxcpath`
/// (`list_all_containers`, `lxc-ls`).
pub fn list_all_containers(lxcpath: Option<&Path>) -> Result<Vec<String>> {
    list(ListKind::All, lxcpath)
}

/// The containers of `lxcpath` as handles: each container [`ListKind`]
/// lists, opened with [`Container::with_lxcpath`]. A listed container that
/// cannot be opened (a configuration that does not parse, a name outside the
/// set the crate accepts) is left out, and so is, for
/// [`ListKind::Defined`], one that is not defined.
///
/// ```no_run
/// for c in lxc::containers(lxc::ListKind::All, None)? {
///     println!("{} {}", c.name(), c.state()?);
/// }
/// # Ok::<(), lxc::Error>(())
/// ```
pub fn containers(kind: ListKind, lxcpath: Option<&Path>) -> Result<Vec<Container>> {
    Ok(list(kind, lxcpath)?
        .iter()
        .filter_map(|name| Container::open(name, lxcpath).ok())
        .filter(|c| kind != ListKind::Defined || c.is_defined())
        .collect())
}
