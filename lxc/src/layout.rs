//! Which members of `struct lxc_container` and `lxc_attach_options_t` may
//! be used with the liblxc loaded at run time, from the table of layouts
//! in `lxc_sys::layouts`.
//!
//! The crate reads a member at the offset of the header it was compiled
//! against. The library loaded at run time may be another release: an
//! older one whose struct ends before the member, or one whose struct has
//! the member elsewhere (liblxc 4.0.5 inserted `seccomp_notify_fd_active`
//! before `init_pidfd`, which moved from 544 to 552). A member is used
//! only when the layout of the header's version and the layout of the
//! running version (`lxc_get_version`) both have it at the same offset.
//!
//! The members before `lxc_sys::layouts::STABLE_END` (`name` to
//! `seccomp_notify_fd`) have the same offsets in every release from 4.0.0
//! to 7.0 (checked against the headers of every tag), so they are used
//! with any running library from 4.0.0 on, also one newer than the newest
//! known major. A running library older than 4.0.0 has no known layout and
//! nothing of it is used; a header or running library without a row in the
//! table gets no member past the common prefix.

use crate::error::{Error, Result};
use crate::global::{header_version, runtime_version, Version};
use crate::sys::layouts::{self, Layout};

/// Why a member may not be used; `None` when it may.
pub(crate) fn member_refusal(header: Version, runtime: Version, member: &str) -> Option<&'static str> {
    if runtime < Version::new(4, 0, 0) {
        return Some(
            "the liblxc loaded at run time is older than 4.0.0, whose struct layout the crate does not know",
        );
    }
    if layouts::stable_offset(member).is_some() {
        return None;
    }
    let (Some(h), Some(r)) = (row(header), row(runtime)) else {
        return Some(
            "the member is past the part of the struct that all known releases share, and the \
             layout of the header the crate was built with or of the liblxc loaded at run time is \
             not known",
        );
    };
    match (h.offset_of(member), r.offset_of(member)) {
        (Some(a), Some(b)) if a == b => None,
        (Some(_), Some(_)) => Some(
            "the liblxc loaded at run time has this member at another offset than the header \
             the crate was built with",
        ),
        (_, None) => Some("the liblxc loaded at run time does not have this member"),
        (None, _) => Some("the header the crate was built with does not have this member"),
    }
}

/// Whether the member may be used with this header and running library.
#[cfg(test)]
pub(crate) fn member_available_in(header: Version, runtime: Version, member: &str) -> bool {
    member_refusal(header, runtime, member).is_none()
}

/// `Ok` when the member `member` of `struct lxc_container` may be read
/// with the liblxc loaded at run time; `Error::Unsupported` otherwise.
pub(crate) fn check_member(member: &'static str) -> Result<()> {
    match member_refusal(header_version(), runtime_version(), member) {
        None => Ok(()),
        Some(reason) => Err(Error::Unsupported { op: member, reason }),
    }
}

fn row(v: Version) -> Option<&'static Layout> {
    layouts::layout_of((v.major, v.minor, v.micro))
}

/// [`check_member`] with the common-prefix test done at compile time (by
/// `try_method!`): the check on the path of every call.
pub(crate) fn check_member_fast(member: &'static str, in_common_prefix: bool) -> Result<()> {
    if in_common_prefix && runtime_version() >= Version::new(4, 0, 0) {
        return Ok(());
    }
    check_member(member)
}

/// Whether the running library's `lxc_attach_options_t` has `lsm_label`
/// and `groups` (liblxc 4.0.7 and later). A running library without a
/// row in the table is not trusted with them.
pub(crate) fn attach_has_lsm_label_and_groups(runtime: Version) -> bool {
    row(runtime).is_some_and(|r| r.attach_lsm_label.is_some() && r.attach_groups.is_some())
}

/// Asserts at compile time that the bindings put the member `$m` of
/// `struct lxc_container` where the table says the header's release has
/// it (and that the table knows the member at all).
macro_rules! assert_member_in_table {
    ($m:ident) => {
        const _: () = assert!(
            $crate::sys::layouts::bindings_agree(
                $crate::sys::LXC_HEADER_VERSION,
                stringify!($m),
                ::core::mem::offset_of!($crate::sys::lxc_container, $m),
            ),
            concat!(
                "lxc_container.",
                stringify!($m),
                " is not where lxc_sys::layouts says the header has it"
            )
        );
    };
}
pub(crate) use assert_member_in_table;

/// Reads the function-pointer member `$m` of a container handle's struct:
/// `Ok(f)`, or `Error::Unsupported` when the member may not be used with
/// the library loaded at run time ([`check_member`]) or liblxc left it
/// null (the check of a member of the common prefix is one comparison of
/// versions). The address is computed only after the check (it may lie past an
/// older library's allocation), with `addr_of!` on the raw pointer, and only
/// the member itself is read: no reference to the whole struct is made,
/// whose other fields (`numthreads`, `error_num`, `lxc_conf`) liblxc calls
/// on other threads write.
macro_rules! try_method {
    ($self:ident . $m:ident) => {{
        $crate::layout::assert_member_in_table!($m);
        const IN_COMMON_PREFIX: bool = $crate::sys::layouts::stable_offset(stringify!($m)).is_some();
        match $crate::layout::check_member_fast(stringify!($m), IN_COMMON_PREFIX) {
            Err(e) => Err(e),
            Ok(()) => {
                let p: *mut $crate::sys::lxc_container = $self.as_raw();
                // SAFETY: `p` points to the live `lxc_container` this handle
                // holds a reference to; check_member established that the
                // running library has this member at the offset the bindings
                // use, so the address is inside liblxc's allocation. The
                // function pointers are set once by `lxc_container_new` and
                // never written again: reading one races with nothing.
                match unsafe { ::std::ptr::addr_of!((*p).$m).read() } {
                    Some(f) => Ok(f),
                    None => Err($crate::error::Error::Unsupported {
                        op: stringify!($m),
                        reason: "liblxc left this function pointer null",
                    }),
                }
            }
        }
    }};
}
pub(crate) use try_method;

/// `try_method!` in a function returning `Result`: returns the error.
macro_rules! method {
    ($self:ident . $m:ident) => {
        $crate::layout::try_method!($self.$m)?
    };
}
pub(crate) use method;

/// Reads a data member of the container struct that every supported
/// liblxc has at the same offset (`name`, `error_num`, `error_string`,
/// `daemonize`), volatile, through `addr_of!` on the raw pointer.
///
/// # Safety
/// `$p` points to a live `lxc_container`.
macro_rules! read_stable_field {
    ($p:expr, $f:ident) => {{
        $crate::layout::assert_member_in_table!($f);
        const _: () = assert!(
            $crate::sys::layouts::stable_offset(stringify!($f)).is_some(),
            concat!("lxc_container.", stringify!($f), " is not in the common prefix")
        );
        let p: *mut $crate::sys::lxc_container = $p;
        ::std::ptr::addr_of!((*p).$f).read_volatile()
    }};
}
pub(crate) use read_stable_field;

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn init_pidfd_moved_in_4_0_5() {
        let built_5 = v("5.0.2");
        // 4.0.0-4.0.4 have init_pidfd at 544, 5.0 at 552.
        for old in ["4.0.0", "4.0.3", "4.0.4"] {
            assert!(!member_available_in(built_5, v(old), "init_pidfd"), "{old}");
            assert!(!member_available_in(v(old), built_5, "init_pidfd"), "{old}");
            assert!(!member_available_in(v(old), v("4.0.5"), "init_pidfd"), "{old}");
            // Same row: fine.
            assert!(member_available_in(v(old), v("4.0.1"), "init_pidfd"), "{old}");
        }
        for same in
            ["4.0.5", "4.0.6", "4.0.7", "4.0.12", "5.0.0", "5.0.3", "6.0.0", "6.0.6", "7.0.0", "7.0.9"]
        {
            assert!(member_available_in(built_5, v(same), "init_pidfd"), "{same}");
            assert!(member_available_in(v(same), built_5, "init_pidfd"), "{same}");
        }
        // A 4.0.3 header with a 4.0.5+ library would have read
        // seccomp_notify_fd_active in place of init_pidfd.
        assert_eq!(layouts::layout_of((5, 0, 2)).unwrap().offset_of("seccomp_notify_fd_active"), Some(544));
        assert_eq!(layouts::layout_of((4, 0, 3)).unwrap().offset_of("init_pidfd"), Some(544));
    }

    #[test]
    fn members_added_later() {
        for m in ["seccomp_notify_fd_active", "devpts_fd"] {
            assert!(!member_available_in(v("5.0.2"), v("4.0.4"), m));
            assert!(member_available_in(v("5.0.2"), v("4.0.5"), m));
            assert!(member_available_in(v("4.0.5"), v("6.0.1"), m));
            assert!(!member_available_in(v("4.0.0"), v("6.0.1"), m), "the header lacks it");
        }
        assert!(member_available_in(v("6.0.0"), v("7.0.0"), "set_timeout"));
        assert!(!member_available_in(v("6.0.0"), v("5.0.2"), "set_timeout"));
        assert!(!member_available_in(v("6.0.0"), v("4.0.12"), "set_timeout"));
    }

    #[test]
    fn outside_the_table() {
        // Older than 4.0.0: nothing.
        for m in ["start", "name", "init_pidfd"] {
            assert!(!member_available_in(v("5.0.2"), v("3.2.1"), m), "{m}");
            assert!(!member_available_in(v("5.0.2"), v("0.0.0"), m), "{m}");
        }
        // Newer than the newest known major: the common prefix only.
        assert!(member_available_in(v("5.0.2"), v("8.0.0"), "start"));
        assert!(member_available_in(v("5.0.2"), v("8.0.0"), "seccomp_notify_fd"));
        assert!(!member_available_in(v("5.0.2"), v("8.0.0"), "init_pidfd"));
        assert!(!member_available_in(v("8.0.0"), v("5.0.2"), "init_pidfd"));
        assert!(member_available_in(v("8.0.0"), v("5.0.2"), "get_ips"));
    }

    #[test]
    fn unknown_members() {
        assert!(!member_available_in(v("5.0.2"), v("5.0.2"), "no_such_member"));
    }

    #[test]
    fn the_common_prefix_is_common() {
        assert_eq!(layouts::STABLE_MEMBERS.last().map(|m| m.1 + 8), Some(layouts::STABLE_END));
        for l in layouts::LAYOUTS {
            assert!(l.tail.iter().all(|(_, o)| *o >= layouts::STABLE_END));
            assert!(l.tail.windows(2).all(|w| w[0].1 < w[1].1));
            assert!(l.container_size > l.tail.last().unwrap().1);
            assert!(layouts::LARGEST_ATTACH_OPTIONS_SIZE >= l.attach_options_size);
        }
        // Contiguous ranges.
        assert!(layouts::LAYOUTS.windows(2).all(|w| w[0].until == w[1].first));
    }

    #[test]
    fn attach_fields() {
        assert!(!attach_has_lsm_label_and_groups(v("4.0.6")));
        assert!(attach_has_lsm_label_and_groups(v("4.0.7")));
        assert!(attach_has_lsm_label_and_groups(v("5.0.2")));
        assert!(!attach_has_lsm_label_and_groups(v("8.0.0")));
        assert!(!attach_has_lsm_label_and_groups(v("3.2.1")));
    }

    #[test]
    fn the_running_library_and_the_header() {
        // The host's own pair: everything the header has is usable.
        if row(runtime_version()).is_some() && runtime_version() == header_version() {
            for m in crate::sys::LXC_CONTAINER_MEMBERS {
                assert!(check_member(m).is_ok(), "{m}");
            }
        }
        assert!(check_member("no_such_member").is_err());
        for m in crate::sys::LXC_CONTAINER_MEMBERS {
            let prefix = layouts::stable_offset(m).is_some();
            assert_eq!(check_member_fast(m, prefix).is_ok(), check_member(m).is_ok(), "{m}");
        }
    }
}
