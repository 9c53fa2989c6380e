//! Conversions between Rust and C strings: the one place that checks what
//! goes to liblxc (no NUL bytes) and what comes back (null pointers, UTF-8),
//! and frees what liblxc allocated.

use std::ffi::{c_char, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, Result};

/// Strings up to this length are passed to C from a stack buffer, without
/// an allocation.
const STACK_LEN: usize = 256;

/// Calls `f` with a NUL-terminated copy of `s`, refusing interior NUL bytes.
#[inline]
pub(crate) fn with_cstr<R>(what: &'static str, s: &[u8], f: impl FnOnce(*const c_char) -> R) -> Result<R> {
    if s.contains(&0) {
        return Err(Error::invalid(what, s, "contains a NUL byte"));
    }
    if s.len() < STACK_LEN {
        let mut buf = std::mem::MaybeUninit::<[u8; STACK_LEN]>::uninit();
        let p = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: s.len() + 1 <= STACK_LEN bytes are written into the
        // buffer, and C reads only up to the NUL written last.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
            p.add(s.len()).write(0);
        }
        Ok(f(p.cast_const().cast()))
    } else {
        let c = CString::new(s).map_err(|_| Error::invalid(what, s, "contains a NUL byte"))?;
        Ok(f(c.as_ptr()))
    }
}

/// An owned C string, refusing interior NUL bytes.
pub(crate) fn cstring(what: &'static str, s: impl AsRef<[u8]>) -> Result<CString> {
    let s = s.as_ref();
    CString::new(s).map_err(|_| Error::invalid(what, s, "contains a NUL byte"))
}

/// A NULL-terminated array of C strings (`char *const argv[]`), owning
/// the strings it points to.
pub(crate) struct CStrArray {
    ptrs: Vec<*mut c_char>,
    _strings: Vec<CString>,
}

impl CStrArray {
    /// Converts every item, refusing NUL bytes.
    pub(crate) fn new<I, S>(what: &'static str, items: I) -> Result<CStrArray>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let strings = items.into_iter().map(|s| cstring(what, s)).collect::<Result<Vec<_>>>()?;
        let mut ptrs: Vec<*mut c_char> = strings.iter().map(|s| s.as_ptr().cast_mut()).collect();
        ptrs.push(std::ptr::null_mut());
        Ok(CStrArray { ptrs, _strings: strings })
    }

    /// Whether it holds no string.
    pub(crate) fn is_empty(&self) -> bool {
        self.ptrs.len() == 1
    }

    /// The array, valid while `self` lives.
    pub(crate) fn as_ptr(&self) -> *const *mut c_char {
        self.ptrs.as_ptr()
    }

    /// The array for C members typed `char **`, or null when empty; valid
    /// while `self` lives. C only reads it.
    pub(crate) fn as_mut_ptr_or_null(&mut self) -> *mut *mut c_char {
        if self.is_empty() {
            std::ptr::null_mut()
        } else {
            self.ptrs.as_mut_ptr()
        }
    }
}

/// The bytes of a path, as C wants them.
pub(crate) fn path_bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// A container name liblxc can use as a directory name: not empty, not `.`
/// or `..`, no `/`, no NUL byte, at most 255 bytes.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name == "." || name == ".." {
        "must not be \".\" or \"..\""
    } else if name.contains('/') {
        "must not contain '/'"
    } else if name.contains('\0') {
        "contains a NUL byte"
    } else if name.len() > 255 {
        "is longer than 255 bytes"
    } else if name.starts_with('-') {
        "must not start with '-'"
    } else if name.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(Error::invalid(what, name, reason))
}

/// A cgroup file name such as `memory.max`: not empty, no `/` (liblxc
/// would join it to the container's cgroup path), not starting with `.`.
pub(crate) fn check_cgroup_key(key: &str) -> Result<()> {
    let reason = if key.is_empty() {
        "must not be empty"
    } else if key.contains('/') {
        "must be a file name, without '/'"
    } else if key.starts_with('.') {
        "must not start with '.'"
    } else {
        return Ok(());
    };
    Err(Error::invalid("cgroup key", key, reason))
}

/// A string liblxc owns (not to be freed), as `&str`.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string that lives at least as
/// long as `'a`.
pub(crate) unsafe fn borrowed_str<'a>(op: &'static str, p: *const c_char) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::bad_return(op, "a null pointer"));
    }
    // SAFETY: not null, and NUL-terminated and alive per the caller's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|_| Error::bad_return(op, format!("text that is not UTF-8: {:?}", c)))
}

/// Takes a `malloc`ed C string: copies it out and frees it exactly once,
/// also when it is not UTF-8.
///
/// # Safety
/// `p` is null or a NUL-terminated string allocated with `malloc` that the
/// caller owns and does not use again.
pub(crate) unsafe fn take_string(op: &'static str, p: *mut c_char) -> Result<String> {
    // SAFETY: the caller's contract.
    let r = unsafe { borrowed_str(op, p) }.map(str::to_owned);
    if !p.is_null() {
        // SAFETY: p was allocated with malloc and is owned by us.
        unsafe { libc::free(p.cast()) };
    }
    r
}

/// Takes a `malloc`ed NULL-terminated array of `malloc`ed C strings, freeing
/// every string and the array exactly once. A null array is an empty list.
///
/// # Safety
/// `arr` is null, or a NULL-terminated array allocated with `malloc` whose
/// entries are `malloc`ed C strings, all owned by the caller.
pub(crate) unsafe fn take_string_array(op: &'static str, arr: *mut *mut c_char) -> Result<Vec<String>> {
    if arr.is_null() {
        return Ok(Vec::new());
    }
    let mut out = Ok(Vec::new());
    let mut i = 0;
    loop {
        // SAFETY: the array is NULL-terminated, so every index up to the
        // terminator is in bounds.
        let p = unsafe { *arr.add(i) };
        if p.is_null() {
            break;
        }
        // SAFETY: each entry is a malloc'ed string that we own; take_string frees it.
        let s = unsafe { take_string(op, p) };
        match (&mut out, s) {
            (Ok(v), Ok(s)) => v.push(s),
            (Ok(_), Err(e)) => out = Err(e),
            (Err(_), _) => {}
        }
        i += 1;
    }
    // SAFETY: the array itself was malloc'ed and is owned by us.
    unsafe { libc::free(arr.cast()) };
    out
}

/// Takes a `malloc`ed array of `n` `malloc`ed C strings (not NULL-terminated),
/// freeing each string and the array exactly once.
///
/// # Safety
/// `arr` is null (then `n` must be 0) or an array of at least `n` entries
/// allocated with `malloc`, each a `malloc`ed C string, all owned by the caller.
pub(crate) unsafe fn take_counted_strings(
    op: &'static str,
    arr: *mut *mut c_char,
    n: usize,
) -> Result<Vec<String>> {
    if arr.is_null() {
        return Ok(Vec::new());
    }
    let mut out = Ok(Vec::with_capacity(n));
    for i in 0..n {
        // SAFETY: i < n, the array's length.
        let p = unsafe { *arr.add(i) };
        // SAFETY: each entry is a malloc'ed string (or null) that we own.
        let s = unsafe { take_string(op, p) };
        match (&mut out, s) {
            (Ok(v), Ok(s)) => v.push(s),
            (Ok(_), Err(e)) => out = Err(e),
            (Err(_), _) => {}
        }
    }
    // SAFETY: the array itself was malloc'ed and is owned by us.
    unsafe { libc::free(arr.cast()) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for bad in ["", ".", "..", "a/b", "/", "a\0b", "-x", "a\nb"] {
            assert!(check_name("container name", bad).is_err(), "{bad:?}");
        }
        assert!(check_name("container name", &"x".repeat(256)).is_err());
        for good in ["a", "web-1", "x.y", "Ünïcode", &"x".repeat(255)] {
            assert!(check_name("container name", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn nul_bytes_are_refused_short_and_long() {
        assert!(with_cstr("key", b"a\0b", |_| ()).is_err());
        let long = [b'a'; 1000];
        let mut with_nul = long;
        with_nul[900] = 0;
        assert!(with_cstr("key", &with_nul, |_| ()).is_err());
        // SAFETY: the pointer is a NUL-terminated copy alive during the closure.
        let n = with_cstr("key", &long, |p| unsafe { CStr::from_ptr(p) }.to_bytes().len()).unwrap();
        assert_eq!(n, 1000);
        // SAFETY: as above.
        let s = with_cstr("key", b"lxc.uts.name", |p| unsafe { CStr::from_ptr(p) }.to_owned()).unwrap();
        assert_eq!(s.as_bytes(), b"lxc.uts.name");
    }
}
