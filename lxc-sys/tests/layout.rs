//! Checks the Rust layout of the C structs against the C compiler's.
//!
//! bindgen computes layouts with libclang; this test asks the system C
//! compiler instead: it compiles a small program against the same liblxc
//! headers that prints `sizeof`, `_Alignof` and `offsetof` of every struct
//! and member the safe crate fills in or reads, and compares them with
//! `size_of`, `align_of` and `offset_of!` on the generated bindings.

use std::collections::HashMap;
use std::mem::{align_of, offset_of, size_of};
use std::process::Command;

use lxc_sys::*;

include!(concat!(env!("OUT_DIR"), "/container_offsets.rs"));

/// `(C type, [member])`: the structs checked, with the members whose
/// offsets are compared.
const STRUCTS: &[(&str, &[&str])] = &[
    (
        "lxc_attach_options_t",
        &[
            "attach_flags",
            "namespaces",
            "personality",
            "initial_cwd",
            "uid",
            "gid",
            "env_policy",
            "extra_env_vars",
            "extra_keep_env",
            "stdin_fd",
            "stdout_fd",
            "stderr_fd",
            "log_fd",
            #[cfg(lxc_attach_lsm_label_and_groups)]
            "lsm_label",
            #[cfg(lxc_attach_lsm_label_and_groups)]
            "groups",
        ],
    ),
    #[cfg(lxc_attach_lsm_label_and_groups)]
    ("lxc_groups_t", &["size", "list"]),
    ("lxc_attach_command_t", &["program", "argv"]),
    (
        "struct bdev_specs",
        &[
            "fstype",
            "fssize",
            "zfs.zfsroot",
            "lvm.vg",
            "lvm.lv",
            "lvm.thinpool",
            "dir",
            "rbd.rbdname",
            "rbd.rbdpool",
        ],
    ),
    (
        "struct migrate_opts",
        &[
            "directory",
            "verbose",
            "stop",
            "predump_dir",
            "pageserver_address",
            "pageserver_port",
            "preserves_inodes",
            "action_script",
            "disable_skip_in_flight",
            "ghost_limit",
            "features_to_check",
        ],
    ),
    ("struct lxc_console_log", &["clear", "read", "read_max", "data"]),
    ("struct lxc_mount", &["version"]),
    ("struct lxc_log", &["name", "lxcpath", "file", "level", "prefix", "quiet"]),
    ("struct lxc_snapshot", &["name", "comment_pathname", "timestamp", "lxcpath", "free"]),
    ("struct lxc_container", &["name", "error_string", "error_num", "daemonize", "config_path"]),
];

fn c_layout() -> HashMap<String, usize> {
    let dir = std::env::temp_dir().join(format!("lxc-sys-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = String::from("#include <stdio.h>\n#include <stddef.h>\n#include <lxc/lxccontainer.h>\n#include <lxc/attach_options.h>\nint main(void) {\n");
    for (ty, members) in STRUCTS {
        c.push_str(&format!("printf(\"{ty} size %zu\\n\", sizeof({ty}));\n"));
        c.push_str(&format!("printf(\"{ty} align %zu\\n\", _Alignof({ty}));\n"));
        for m in *members {
            c.push_str(&format!("printf(\"{ty} .{m} %zu\\n\", offsetof({ty}, {m}));\n"));
        }
    }
    for (m, _) in CONTAINER_MEMBER_OFFSETS {
        c.push_str(&format!(
            "printf(\"struct lxc_container .{m} %zu\\n\", offsetof(struct lxc_container, {m}));\n"
        ));
    }
    c.push_str("return 0;\n}\n");
    let src = dir.join("layout.c");
    let bin = dir.join("layout");
    std::fs::write(&src, c).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(&cc)
        .arg(format!("-I{}", env!("LXC_SYS_INCLUDE_DIR")))
        .arg(&src)
        .arg("-o")
        .arg(&bin)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc}: {e}"));
    assert!(st.success(), "the layout program did not compile");
    let out = Command::new(&bin).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect()
}

macro_rules! rust_layout {
    ($map:ident, $cname:literal, $ty:ty, [$($f:ident $(. $g:ident)?),*]) => {{
        $map.insert(concat!($cname, " size").to_owned(), size_of::<$ty>());
        $map.insert(concat!($cname, " align").to_owned(), align_of::<$ty>());
        $(
            $map.insert(
                concat!($cname, " .", stringify!($f) $(, ".", stringify!($g))?).to_owned(),
                offset_of!($ty, $f $(. $g)?),
            );
        )*
    }};
}

#[test]
fn rust_layout_matches_the_c_compiler() {
    let c = c_layout();
    let mut r = HashMap::new();
    rust_layout!(
        r,
        "lxc_attach_options_t",
        lxc_attach_options_t,
        [
            attach_flags,
            namespaces,
            personality,
            initial_cwd,
            uid,
            gid,
            env_policy,
            extra_env_vars,
            extra_keep_env,
            stdin_fd,
            stdout_fd,
            stderr_fd,
            log_fd
        ]
    );
    // liblxc 4.0.7 added these.
    #[cfg(lxc_attach_lsm_label_and_groups)]
    {
        rust_layout!(r, "lxc_attach_options_t", lxc_attach_options_t, [lsm_label, groups]);
        rust_layout!(r, "lxc_groups_t", lxc_groups_t, [size, list]);
    }
    rust_layout!(r, "lxc_attach_command_t", lxc_attach_command_t, [program, argv]);
    rust_layout!(
        r,
        "struct bdev_specs",
        bdev_specs,
        [fstype, fssize, zfs.zfsroot, lvm.vg, lvm.lv, lvm.thinpool, dir, rbd.rbdname, rbd.rbdpool]
    );
    rust_layout!(
        r,
        "struct migrate_opts",
        migrate_opts,
        [
            directory,
            verbose,
            stop,
            predump_dir,
            pageserver_address,
            pageserver_port,
            preserves_inodes,
            action_script,
            disable_skip_in_flight,
            ghost_limit,
            features_to_check
        ]
    );
    rust_layout!(r, "struct lxc_console_log", lxc_console_log, [clear, read, read_max, data]);
    rust_layout!(r, "struct lxc_mount", lxc_mount, [version]);
    rust_layout!(r, "struct lxc_log", lxc_log, [name, lxcpath, file, level, prefix, quiet]);
    rust_layout!(r, "struct lxc_snapshot", lxc_snapshot, [name, comment_pathname, timestamp, lxcpath, free]);
    rust_layout!(
        r,
        "struct lxc_container",
        lxc_container,
        [name, error_string, error_num, daemonize, config_path]
    );
    for (m, off) in CONTAINER_MEMBER_OFFSETS {
        r.insert(format!("struct lxc_container .{m}"), *off);
    }
    let mut mismatches = Vec::new();
    for (k, v) in &c {
        match r.get(k) {
            Some(rv) if rv == v => {}
            other => mismatches.push(format!("{k}: C {v}, Rust {other:?}")),
        }
    }
    assert_eq!(c.len(), r.len(), "checked different sets of items");
    assert!(mismatches.is_empty(), "layout differs:\n{}", mismatches.join("\n"));
    assert!(c.len() > 100, "too few items checked: {}", c.len());
}

#[test]
fn the_member_list_matches_the_header() {
    assert_eq!(LXC_CONTAINER_MEMBERS.len(), CONTAINER_MEMBER_OFFSETS.len());
    assert!(LXC_CONTAINER_MEMBERS.contains(&"get_config_item"));
    let (major, _, _) = LXC_HEADER_VERSION;
    assert!(major >= 4);
    // Offsets grow in declaration order.
    assert!(CONTAINER_MEMBER_OFFSETS.windows(2).all(|w| w[0].1 < w[1].1));
}

/// The bindings agree with `lxc_sys::layouts`: every function-pointer member
/// of the header's `struct lxc_container` is in the table at the offset the
/// bindings give, and the row of the header's version has the header's
/// struct sizes. A header that changed the layout in a way the table does
/// not say fails here (and the `lxc` crate's compile-time checks fail for
/// the members it reads).
#[test]
fn the_bindings_match_the_layout_table() {
    use lxc_sys::layouts::{bindings_agree, layout_of, stable_offset, STABLE_END};
    for (m, off) in CONTAINER_MEMBER_OFFSETS {
        assert!(bindings_agree(LXC_HEADER_VERSION, m, *off), "{m} at {off}");
        assert_eq!(stable_offset(m).is_some(), *off < STABLE_END, "{m} at {off}");
    }
    for (m, off) in [
        ("name", offset_of!(lxc_container, name)),
        ("error_string", offset_of!(lxc_container, error_string)),
        ("error_num", offset_of!(lxc_container, error_num)),
        ("daemonize", offset_of!(lxc_container, daemonize)),
        ("config_path", offset_of!(lxc_container, config_path)),
        ("numthreads", offset_of!(lxc_container, numthreads)),
        ("lxc_conf", offset_of!(lxc_container, lxc_conf)),
    ] {
        assert_eq!(stable_offset(m), Some(off), "{m}");
    }
    let row = layout_of(LXC_HEADER_VERSION).expect("the host's header has a row in the table");
    assert_eq!(row.container_size, size_of::<lxc_container>());
    assert_eq!(row.attach_options_size, size_of::<lxc_attach_options_t>());
    assert_eq!(row.bdev_specs_size, size_of::<bdev_specs>());
    for (m, off) in row.tail {
        let found = CONTAINER_MEMBER_OFFSETS.iter().find(|(n, _)| n == m).map(|(_, o)| *o);
        // Data members of the tail (rcv_timeout) are not in the list.
        if let Some(o) = found {
            assert_eq!(o, *off, "{m}");
        }
    }
    #[cfg(lxc_attach_lsm_label_and_groups)]
    {
        assert_eq!(row.attach_lsm_label, Some(offset_of!(lxc_attach_options_t, lsm_label)));
        assert_eq!(row.attach_groups, Some(offset_of!(lxc_attach_options_t, groups)));
    }
    #[cfg(not(lxc_attach_lsm_label_and_groups))]
    assert_eq!((row.attach_lsm_label, row.attach_groups), (None, None));
}
