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

    /// Like [`CStrArray::new`], each item through [`check_line`] first:
    /// for arguments that liblxc also writes into a configuration file.
    pub(crate) fn lines<I, S>(what: &'static str, items: I) -> Result<CStrArray>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let items: Vec<S> = items.into_iter().collect();
        for s in &items {
            check_line(what, s.as_ref())?;
        }
        Self::new(what, items)
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

/// The longest container name: the busybox and download templates write the
/// name as `lxc.uts.name`, which liblxc refuses at 65 bytes or more (the
/// kernel's `nodename` holds 64).
pub(crate) const NAME_MAX: usize = 64;

/// [`lxcpath`] for `Some`; for `None` (liblxc's default lxcpath) the
/// default resolved when it is a symbolic link or has one on the way, so
/// that it names containers as a spelled-out path does; else `None`.
pub(crate) fn lxcpath_or_default(p: Option<&Path>) -> Result<Option<(std::path::PathBuf, CString)>> {
    match p {
        Some(p) => lxcpath(p).map(Some),
        None => crate::default_lxcpath()
            .ok()
            .filter(|d| std::fs::canonicalize(d).is_ok_and(|r| r != *d))
            .map(|d| lxcpath(&d))
            .transpose(),
    }
}

/// A container name, in the set the crate accepts: ASCII letters, digits,
/// `.`, `-` and `_`, starting with a letter or digit, at most [`NAME_MAX`]
/// bytes. liblxc itself only needs a directory name, but it puts the name
/// unquoted into the `sh -c` command line of every hook (`exec HOOK NAME lxc
/// start ...`), the templates use it as a shell word, a path component and
/// the hostname (`lxc.uts.name`), and the monitor's cgroup is named after it.
/// This set is safe in all of them; anything else is refused.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name.contains('\0') {
        "contains a NUL byte"
    } else if name.contains('/') {
        "must not contain '/'"
    } else if name.len() > NAME_MAX {
        "is longer than 64 bytes (the hostname a template makes of it cannot be longer)"
    } else if !name.as_bytes()[0].is_ascii_alphanumeric() {
        "must start with an ASCII letter or digit"
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
        "may only contain ASCII letters, digits, '.', '-' and '_' (liblxc puts it unquoted into \
         shell command lines, paths and the hostname)"
    } else {
        return Ok(());
    };
    Err(Error::invalid(what, name, reason))
}

/// The one check for text that liblxc stores as one line of a
/// configuration file: configuration keys and values, cgroup keys and
/// values, lxcpaths and backing-store paths (which liblxc writes into
/// `lxc.rootfs.path`), template names and arguments (which liblxc writes
/// into the configuration's header comment).
///
/// liblxc's configuration format has no multi-line values: its parser
/// splits the file on `\n` and `\r` and has no continuation lines, so a
/// value holding `\nlxc.hook.pre-start = ...` becomes a second key once the
/// configuration is saved and read again. NUL, `\n`, `\r` and every other
/// ASCII control character (and DEL) are refused; TAB is allowed (liblxc
/// reads it as white space).
pub(crate) fn check_line(what: &'static str, s: &[u8]) -> Result<()> {
    let reason = if s.contains(&0) {
        "contains a NUL byte"
    } else if s.iter().any(|&b| b == b'\n' || b == b'\r') {
        "contains a line break; liblxc's configuration has one key per line, so it would become \
         another configuration line"
    } else if s.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        "contains a control character, which liblxc's configuration cannot hold"
    } else {
        return Ok(());
    };
    Err(Error::invalid(what, s, reason))
}

/// Like [`cstring`], through [`check_line`] first.
pub(crate) fn line_cstring(what: &'static str, s: impl AsRef<[u8]>) -> Result<CString> {
    check_line(what, s.as_ref())?;
    cstring(what, s)
}

/// Like [`with_cstr`], through [`check_line`] first.
pub(crate) fn with_line_cstr<R>(
    what: &'static str,
    s: &[u8],
    f: impl FnOnce(*const c_char) -> R,
) -> Result<R> {
    check_line(what, s)?;
    with_cstr(what, s, f)
}

/// An argument of a clone hook. liblxc joins the arguments, unquoted, into
/// the command line it runs with `sh -c` (`exec HOOK NAME lxc clone ARGS`),
/// so on top of [`check_line`] the characters the shell treats specially
/// are refused: only ASCII letters, digits and `+,-./:=@_%` are allowed.
pub(crate) fn check_shell_word(what: &'static str, s: &str) -> Result<()> {
    check_line(what, s.as_bytes())?;
    if s.is_empty() {
        return Err(Error::invalid(what, s, "must not be empty (liblxc joins the arguments with spaces)"));
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+,-./:=@_%".contains(&b)) {
        return Err(Error::invalid(
            what,
            s,
            "may only contain ASCII letters, digits and +,-./:=@_% (liblxc passes it unquoted to sh -c)",
        ));
    }
    Ok(())
}

/// An lxcpath as the crate hands it to liblxc: not empty, one line
/// ([`check_line`]: liblxc writes it into `lxc.rootfs.path` when it
/// creates a container), and resolved with `realpath` when it exists, so
/// that every handle on a container names it by the same path (liblxc names
/// the command socket after the lxcpath string: through a symbolic link a
/// running container would look stopped). A path that does not exist yet is
/// kept as given.
pub(crate) fn lxcpath(p: &Path) -> Result<(std::path::PathBuf, CString)> {
    if p.as_os_str().is_empty() {
        return Err(Error::invalid("lxcpath", "", "must not be empty"));
    }
    check_line("lxcpath", path_bytes(p))?;
    let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let c = line_cstring("lxcpath", path_bytes(&p))?;
    Ok((p, c))
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
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "/",
            "a\0b",
            "-x",
            "a\nb",
            "a b",
            "a'b",
            "a\"b",
            "$(id)",
            "`id`",
            "a;b",
            "Ünïcode",
            ".hidden",
            "_x",
            "a\tb",
        ] {
            assert!(check_name("container name", bad).is_err(), "{bad:?}");
        }
        assert!(check_name("container name", &"x".repeat(65)).is_err());
        for good in ["a", "web-1", "x.y", "A_b.9", "0", &"x".repeat(64)] {
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

#[cfg(test)]
mod line_tests {
    use super::*;

    #[test]
    fn line_breaks_and_control_characters_are_refused() {
        for bad in ["a\nb", "a\rb", "\n", "a\0b", "a\x1bb", "a\x7fb", "x\r\nlxc.hook.pre-start = /bin/true"] {
            let e = check_line("config value", bad.as_bytes()).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument { .. }), "{bad:?}");
        }
        for good in ["", "a b", "a\tb", "Ünïcode", "FOO=bar", "/bin/sh -c 'x; y'"] {
            check_line("config value", good.as_bytes()).unwrap();
        }
    }

    #[test]
    fn shell_words() {
        for bad in ["", "a b", "$(id)", "`id`", "a;b", "a|b", "a'b", "a\nb", "*"] {
            assert!(check_shell_word("hook argument", bad).is_err(), "{bad:?}");
        }
        for good in ["a", "--opt=1", "/x/y", "user@host:1", "50%"] {
            check_shell_word("hook argument", good).unwrap();
        }
    }
}
