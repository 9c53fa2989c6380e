//! The layouts of `struct lxc_container` and `lxc_attach_options_t` in
//! every liblxc release the crates support, in one table.
//!
//! The bindings describe the header the crate was compiled against; the
//! library loaded at run time may come from another release, whose structs
//! are laid out differently. The safe `lxc` crate reads a member of the
//! container struct only when both layouts put it at the same offset, and
//! sizes the attach options it hands liblxc for the largest known layout.
//!
//! Every row was derived by compiling a program that prints `sizeof` and
//! `offsetof` of every member against the headers (`src/lxc/lxccontainer.h`,
//! `src/lxc/attach_options.h`) of each tag in the row, on x86_64; tags
//! within one row give identical output. The offsets are those of LP64
//! targets (x86_64, aarch64, ppc64le, s390x, riscv64); on other targets the
//! numbers differ, but which rows agree on a member does not.
//!
//! This file is plain data and `const fn`s, with no reference to the
//! generated bindings, so that a build script can `include!` it as well.

/// A liblxc version: `(major, minor, micro)`.
pub type LxcVersion = (u32, u32, u32);

/// One range of liblxc releases that share the layout of
/// `struct lxc_container` and `lxc_attach_options_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The first release of the range.
    pub first: LxcVersion,
    /// The first release after the range (not in it).
    pub until: LxcVersion,
    /// The tags whose headers were read for this row.
    pub tags: &'static [&'static str],
    /// `(member, offset)` of the members of `struct lxc_container` after
    /// the common prefix ([`STABLE_MEMBERS`]), in declaration order.
    pub tail: &'static [(&'static str, usize)],
    /// `sizeof(struct lxc_container)`.
    pub container_size: usize,
    /// `sizeof(lxc_attach_options_t)`.
    pub attach_options_size: usize,
    /// `offsetof(lxc_attach_options_t, lsm_label)`, when it has the field.
    pub attach_lsm_label: Option<usize>,
    /// `offsetof(lxc_attach_options_t, groups)`, when it has the field.
    pub attach_groups: Option<usize>,
    /// `sizeof(struct bdev_specs)`: 6.0.6 appended `rbd.rbduser`.
    pub bdev_specs_size: usize,
}

/// The members of `struct lxc_container` at the same offset in every row
/// of [`LAYOUTS`], with that offset: everything from `name` to
/// `seccomp_notify_fd`.
///
/// Checked against the headers of every tag from lxc-4.0.0 to v7.0.0: the
/// members before offset [`STABLE_END`] have the same names, order and
/// offsets in all of them. liblxc has changed the struct only at or after
/// that point: 4.0.5 inserted `seccomp_notify_fd_active` before
/// `init_pidfd` (moving it from 544 to 552) and appended `devpts_fd`; 6.0
/// appended `rcv_timeout` and `set_timeout`. (liblxc 3.x lacks some of
/// these: 3.0 ends after `reboot2`; the crates support 4.0 and later only.)
/// The data members (`name` .. `config_path`) are listed too, because the
/// safe crate reads `name`, `error_string`, `error_num` and `daemonize`.
pub const STABLE_MEMBERS: &[(&str, usize)] = &[
    ("name", 0),
    ("configfile", 8),
    ("pidfile", 16),
    ("slock", 24),
    ("privlock", 32),
    ("numthreads", 40),
    ("lxc_conf", 48),
    ("error_string", 56),
    ("error_num", 64),
    ("daemonize", 68),
    ("config_path", 72),
    ("is_defined", 80),
    ("state", 88),
    ("is_running", 96),
    ("freeze", 104),
    ("unfreeze", 112),
    ("init_pid", 120),
    ("load_config", 128),
    ("start", 136),
    ("startl", 144),
    ("stop", 152),
    ("want_daemonize", 160),
    ("want_close_all_fds", 168),
    ("config_file_name", 176),
    ("wait", 184),
    ("set_config_item", 192),
    ("destroy", 200),
    ("save_config", 208),
    ("create", 216),
    ("createl", 224),
    ("rename", 232),
    ("reboot", 240),
    ("shutdown", 248),
    ("clear_config", 256),
    ("clear_config_item", 264),
    ("get_config_item", 272),
    ("get_running_config_item", 280),
    ("get_keys", 288),
    ("get_interfaces", 296),
    ("get_ips", 304),
    ("get_cgroup_item", 312),
    ("set_cgroup_item", 320),
    ("get_config_path", 328),
    ("set_config_path", 336),
    ("clone", 344),
    ("console_getfd", 352),
    ("console", 360),
    ("attach", 368),
    ("attach_run_wait", 376),
    ("attach_run_waitl", 384),
    ("snapshot", 392),
    ("snapshot_list", 400),
    ("snapshot_restore", 408),
    ("snapshot_destroy", 416),
    ("may_control", 424),
    ("add_device_node", 432),
    ("remove_device_node", 440),
    ("attach_interface", 448),
    ("detach_interface", 456),
    ("checkpoint", 464),
    ("restore", 472),
    ("destroy_with_snapshots", 480),
    ("snapshot_destroy_all", 488),
    ("migrate", 496),
    ("console_log", 504),
    ("reboot2", 512),
    ("mount", 520),
    ("umount", 528),
    ("seccomp_notify_fd", 536),
];

/// The data members (not function pointers) among [`STABLE_MEMBERS`] and
/// the rows' tails.
pub const DATA_MEMBERS: &[&str] = &[
    "name",
    "configfile",
    "pidfile",
    "slock",
    "privlock",
    "numthreads",
    "lxc_conf",
    "error_string",
    "error_num",
    "daemonize",
    "config_path",
    "rcv_timeout",
];

/// Where the common prefix of `struct lxc_container` ends: the first
/// offset whose member differs between rows.
pub const STABLE_END: usize = 544;

/// The tail of `struct lxc_container` from 6.0 on (both 6.0 rows).
const TAIL_6_0: &[(&str, usize)] = &[
    ("seccomp_notify_fd_active", 544),
    ("init_pidfd", 552),
    ("devpts_fd", 560),
    ("rcv_timeout", 568),
    ("set_timeout", 576),
];

/// The layouts, oldest first. The ranges are contiguous and end with the
/// newest known major series; a version outside them has no known layout.
///
/// | releases | `seccomp_notify_fd_active` | `init_pidfd` | `devpts_fd` | `rcv_timeout` | `set_timeout` | container | attach options | bdev_specs |
/// |---|---|---|---|---|---|---|---|---|
/// | 4.0.0 – 4.0.4 | – | 544 | – | – | – | 552 | 72 | 72 |
/// | 4.0.5 – 4.0.6 | 544 | 552 | 560 | – | – | 568 | 72 | 72 |
/// | 4.0.7 – 4.0.12 | 544 | 552 | 560 | – | – | 568 | 96 | 72 |
/// | 5.0.x | 544 | 552 | 560 | – | – | 568 | 96 | 72 |
/// | 6.0.0 – 6.0.5 | 544 | 552 | 560 | 568 | 576 | 584 | 96 | 72 |
/// | 6.0.6 – 7.0.x | 544 | 552 | 560 | 568 | 576 | 584 | 96 | 80 |
///
/// `lxc_attach_options_t` is the same up to `log_fd` (offset 68) in every
/// row; from 4.0.7 on it also has `lsm_label` (72) and `groups` (80).
/// `struct bdev_specs` gained `rbd.rbduser` (at 72) in 6.0.6; the other
/// structs the crates hand liblxc (`migrate_opts`, `lxc_console_log`,
/// `lxc_attach_command_t`) are the same in every row.
pub const LAYOUTS: &[Layout] = &[
    Layout {
        first: (4, 0, 0),
        until: (4, 0, 5),
        tags: &["lxc-4.0.0", "lxc-4.0.1", "lxc-4.0.2", "lxc-4.0.3", "lxc-4.0.4"],
        tail: &[("init_pidfd", 544)],
        container_size: 552,
        attach_options_size: 72,
        attach_lsm_label: None,
        attach_groups: None,
        bdev_specs_size: 72,
    },
    Layout {
        first: (4, 0, 5),
        until: (4, 0, 7),
        tags: &["lxc-4.0.5", "lxc-4.0.6"],
        tail: &[("seccomp_notify_fd_active", 544), ("init_pidfd", 552), ("devpts_fd", 560)],
        container_size: 568,
        attach_options_size: 72,
        attach_lsm_label: None,
        attach_groups: None,
        bdev_specs_size: 72,
    },
    Layout {
        first: (4, 0, 7),
        until: (5, 0, 0),
        tags: &["lxc-4.0.7", "lxc-4.0.8", "lxc-4.0.9", "lxc-4.0.10", "lxc-4.0.11", "lxc-4.0.12"],
        tail: &[("seccomp_notify_fd_active", 544), ("init_pidfd", 552), ("devpts_fd", 560)],
        container_size: 568,
        attach_options_size: 96,
        attach_lsm_label: Some(72),
        attach_groups: Some(80),
        bdev_specs_size: 72,
    },
    Layout {
        first: (5, 0, 0),
        until: (6, 0, 0),
        tags: &["lxc-5.0.0", "lxc-5.0.1", "lxc-5.0.2", "lxc-5.0.3"],
        tail: &[("seccomp_notify_fd_active", 544), ("init_pidfd", 552), ("devpts_fd", 560)],
        container_size: 568,
        attach_options_size: 96,
        attach_lsm_label: Some(72),
        attach_groups: Some(80),
        bdev_specs_size: 72,
    },
    Layout {
        first: (6, 0, 0),
        until: (6, 0, 6),
        tags: &["v6.0.0", "v6.0.1", "v6.0.2", "v6.0.3", "v6.0.4", "v6.0.5"],
        tail: TAIL_6_0,
        container_size: 584,
        attach_options_size: 96,
        attach_lsm_label: Some(72),
        attach_groups: Some(80),
        bdev_specs_size: 72,
    },
    Layout {
        first: (6, 0, 6),
        until: (8, 0, 0),
        tags: &["v6.0.6", "v7.0.0"],
        tail: TAIL_6_0,
        container_size: 584,
        attach_options_size: 96,
        attach_lsm_label: Some(72),
        attach_groups: Some(80),
        bdev_specs_size: 80,
    },
];

/// The largest `sizeof(struct bdev_specs)` of any row.
pub const LARGEST_BDEV_SPECS_SIZE: usize = largest(Sized::BdevSpecs);

/// The largest `sizeof(lxc_attach_options_t)` of any row.
pub const LARGEST_ATTACH_OPTIONS_SIZE: usize = largest(Sized::AttachOptions);

/// The structs whose size the rows give, besides the container's.
#[derive(Clone, Copy)]
enum Sized {
    AttachOptions,
    BdevSpecs,
}

const fn largest(which: Sized) -> usize {
    let mut max = 0;
    let mut i = 0;
    while i < LAYOUTS.len() {
        let size = match which {
            Sized::AttachOptions => LAYOUTS[i].attach_options_size,
            Sized::BdevSpecs => LAYOUTS[i].bdev_specs_size,
        };
        if size > max {
            max = size;
        }
        i += 1;
    }
    max
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn version_lt(a: LxcVersion, b: LxcVersion) -> bool {
    a.0 < b.0 || (a.0 == b.0 && (a.1 < b.1 || (a.1 == b.1 && a.2 < b.2)))
}

const fn find(list: &[(&str, usize)], member: &str) -> Option<usize> {
    let mut i = 0;
    while i < list.len() {
        if str_eq(list[i].0, member) {
            return Some(list[i].1);
        }
        i += 1;
    }
    None
}

/// The offset of `member` if it is one of the [`STABLE_MEMBERS`].
pub const fn stable_offset(member: &str) -> Option<usize> {
    find(STABLE_MEMBERS, member)
}

/// The row of [`LAYOUTS`] whose range holds `version`, if any.
pub const fn layout_of(version: LxcVersion) -> Option<&'static Layout> {
    let mut i = 0;
    while i < LAYOUTS.len() {
        let l = &LAYOUTS[i];
        if !version_lt(version, l.first) && version_lt(version, l.until) {
            return Some(l);
        }
        i += 1;
    }
    None
}

impl Layout {
    /// The offset of `member` of `struct lxc_container` in this layout, or
    /// `None` when these releases do not have it.
    pub const fn offset_of(&self, member: &str) -> Option<usize> {
        match stable_offset(member) {
            Some(o) => Some(o),
            None => find(self.tail, member),
        }
    }
}

/// Whether `offset`, the offset of `member` in the bindings compiled from
/// a header of version `header`, is the one the table gives: for a stable
/// member, its offset; for another, its offset in the header's row. A
/// member the table does not know is a mismatch; so is a member of the
/// tail when the header's version has no row but no row has the member.
/// Only LP64 offsets are in the table: on other targets this is `true`.
pub const fn bindings_agree(header: LxcVersion, member: &str, offset: usize) -> bool {
    if !cfg!(target_pointer_width = "64") {
        return true;
    }
    if let Some(o) = stable_offset(member) {
        return o == offset;
    }
    match layout_of(header) {
        Some(l) => match find(l.tail, member) {
            Some(o) => o == offset,
            None => false,
        },
        None => {
            let mut i = 0;
            while i < LAYOUTS.len() {
                if find(LAYOUTS[i].tail, member).is_some() {
                    return true;
                }
                i += 1;
            }
            false
        }
    }
}
