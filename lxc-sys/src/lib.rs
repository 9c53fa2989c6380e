//! Raw FFI bindings to liblxc, the library behind Linux containers.
//!
//! The bindings come from bindgen, run on liblxc's own headers
//! (`lxc/lxccontainer.h`, `lxc/attach_options.h`). By default they are the
//! checked-in ones of this crate's `src/bindings/`, one file per layout row
//! of [`layouts::LAYOUTS`] (4.0.0-4.0.4, 4.0.5-4.0.6, 4.0.7-4.0.12, 5.0,
//! 6.0.0-6.0.5, 6.0.6-7.0), each made from the headers of the newest
//! release of its row by `./dev bindings` (which CI runs with `--check`);
//! the build script picks the row of the version of the host's headers, so
//! a build needs pkg-config and liblxc's headers, not libclang. The feature
//! `buildtime_bindgen` runs bindgen on the host's headers instead (needs
//! libclang; the way to build against a liblxc newer than this crate).
//! Nothing else is hand-written except this page, the [`layouts`] table
//! (the struct layouts of every supported liblxc release) and the two
//! constants below the bindings, which describe the header the build saw:
//!
//! * [`LXC_CONTAINER_MEMBERS`]: the function-pointer members of
//!   `struct lxc_container`, in order;
//! * [`LXC_HEADER_VERSION`]: the header's `(major, minor, micro)`
//!   (`version.h`, or pkg-config's version).
//!
//! The build script also sets `cfg(lxc_member = "NAME")` for each member,
//! and passes the same facts to dependent crates as `DEP_LXC_MEMBERS` and
//! `DEP_LXC_VERSION`. `version.h`'s own macros (`LXC_VERSION_MAJOR`, ...)
//! are not in the bindings: they belong to one release, and the files serve
//! a range.
//!
//! Supported: the headers and libraries of liblxc 4.0.0 and later, up to
//! 7.0. Built and tested (the project's `./dev matrix`) against 4.0.6, 5.0.2,
//! 6.0.4 and 7.0.0, and with the headers of 4.0.0, 4.0.12, 5.0.2 and 7.0.0
//! over a library of another series. A header whose members differ from
//! its row's (patched, or newer than the crate) stops a default build. After the headers change (another liblxc
//! series installed), rebuild this crate (`cargo clean -p liblxc-sys`):
//! Cargo reruns the build script on a newer modification time only, and
//! distribution packages keep the upstream times, which can be older.
//!
//! Use the safe `liblxc` crate unless you need the raw calls. A struct
//! member that the header has may still be missing from an older liblxc
//! loaded at run time, or lie at another offset there (liblxc 4.0.5 inserted
//! a member before `init_pidfd`): reading it reads past the end of the C
//! allocation, or another member. The safe crate checks the member against
//! [`layouts`] before every such read.
#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case)]
#![allow(clippy::all)]
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags, rustdoc::bare_urls)]

pub mod layouts;

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
include!(concat!(env!("OUT_DIR"), "/members.rs"));
