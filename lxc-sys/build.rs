//! Generates the raw bindings from the liblxc headers found by pkg-config.
//!
//! Besides the bindings, this script tells dependent crates what the header
//! offers, so that one source tree builds against liblxc 4.0 to 7.0:
//!
//! * `cargo:rustc-cfg=lxc_member="NAME"` for every function-pointer member of
//!   `struct lxc_container` found in the header (also passed on to the `lxc`
//!   crate through `DEP_LXC_MEMBERS`, because this crate declares
//!   `links = "lxc"`);
//! * `DEP_LXC_VERSION` (`major.minor.micro` of the header's `version.h`);
//! * `cargo:rustc-cfg=lxc_attach_lsm_label_and_groups` when
//!   `lxc_attach_options_t` has `lsm_label` and `groups` (liblxc 4.0.7 and
//!   later; passed on as `DEP_LXC_ATTACH_LSM_LABEL_AND_GROUPS=1`).
//!
//! When something needed is missing (pkg-config, the `lxc.pc` file, the
//! headers, libclang), the build stops with one message that says what to
//! install instead of a bindgen backtrace.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::exit;

const HELP_DEBIAN: &str = "On Debian or Ubuntu: apt-get install lxc-dev libclang-dev pkg-config";

fn fail(what: &str) -> ! {
    eprintln!();
    eprintln!("error: lxc-sys cannot be built: {what}");
    eprintln!("       {HELP_DEBIAN}");
    eprintln!("       (lxc-sys needs liblxc >= 4.0 with its headers, pkg-config, and libclang for bindgen)");
    eprintln!();
    exit(1);
}

fn main() {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=LIBCLANG_PATH");
    println!("cargo:rustc-check-cfg=cfg(lxc_member, values(any()))");
    println!("cargo:rustc-check-cfg=cfg(lxc_attach_lsm_label_and_groups)");

    let lib = match pkg_config::Config::new().atleast_version("4.0").probe("lxc") {
        Ok(lib) => lib,
        Err(pkg_config::Error::Command { command, cause }) => {
            fail(&format!("could not run `{command}` ({cause}); pkg-config is needed to find liblxc"))
        }
        Err(e) => fail(&format!(
            "pkg-config did not find liblxc >= 4.0 (`lxc.pc`): {}",
            e.to_string().lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no details")
        )),
    };

    let mut include_dirs = lib.include_paths.clone();
    include_dirs.push(PathBuf::from("/usr/include"));
    let header_dir =
        include_dirs.iter().find(|d| d.join("lxc/lxccontainer.h").is_file()).cloned().unwrap_or_else(|| {
            fail(&format!("the liblxc headers (lxc/lxccontainer.h) are not in any of {include_dirs:?}"))
        });
    let container_h = header_dir.join("lxc/lxccontainer.h");
    let version_h = header_dir.join("lxc/version.h");
    println!("cargo:rerun-if-changed={}", container_h.display());
    println!("cargo:rerun-if-changed={}", version_h.display());

    let container_src = read(&container_h);
    let version_src = read(&version_h);
    let members = container_members(&container_src)
        .unwrap_or_else(|| fail("`struct lxc_container` was not found in lxc/lxccontainer.h"));
    let version = header_version(&version_src)
        .unwrap_or_else(|| fail("LXC_VERSION_MAJOR/MINOR/MICRO were not found in lxc/version.h"));

    for m in &members {
        println!("cargo:rustc-cfg=lxc_member=\"{m}\"");
    }
    println!("cargo:members={}", members.join(","));
    // lxc_attach_options_t has lsm_label and groups from liblxc 4.0.7 on.
    let attach_h = header_dir.join("lxc/attach_options.h");
    println!("cargo:rerun-if-changed={}", attach_h.display());
    let attach_src = strip_comments(&read(&attach_h));
    let attach_fields = attach_src.contains("lsm_label;") && attach_src.contains("lxc_groups_t groups;");
    if attach_fields {
        println!("cargo:rustc-cfg=lxc_attach_lsm_label_and_groups");
    }
    println!("cargo:attach_lsm_label_and_groups={}", u8::from(attach_fields));
    println!("cargo:version={}.{}.{}", version.0, version.1, version.2);
    println!("cargo:include={}", header_dir.display());
    println!("cargo:rustc-env=LXC_SYS_INCLUDE_DIR={}", header_dir.display());

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    generate(&header_dir, &out.join("bindings.rs"));

    let mut extra = String::new();
    extra.push_str("/// Function-pointer members of `struct lxc_container` in the header these bindings were made from, in order.\n");
    extra.push_str("pub const LXC_CONTAINER_MEMBERS: &[&str] = &[");
    for m in &members {
        extra.push_str(&format!("{m:?}, "));
    }
    extra.push_str("];\n");
    extra.push_str(&format!(
        "/// `(major, minor, micro)` of the liblxc header (`version.h`) these bindings were made from.\npub const LXC_HEADER_VERSION: (u32, u32, u32) = ({}, {}, {});\n",
        version.0, version.1, version.2
    ));
    write(&out.join("members.rs"), &extra);

    // For the layout test: the offset of every member, as Rust sees it.
    let mut offsets = String::from("/// `(member, offset)` of every function-pointer member of `struct lxc_container`.\npub const CONTAINER_MEMBER_OFFSETS: &[(&str, usize)] = &[\n");
    for m in &members {
        offsets.push_str(&format!("    ({m:?}, ::core::mem::offset_of!(lxc_sys::lxc_container, {m})),\n"));
    }
    offsets.push_str("];\n");
    write(&out.join("container_offsets.rs"), &offsets);
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", p.display())))
}

fn write(p: &Path, s: &str) {
    fs::write(p, s).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", p.display())));
}

/// Removes `/* ... */` and `// ...` comments.
fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), l) if l.is_none_or(|l| b < l) => {
                out.push_str(&rest[..b]);
                match rest[b + 2..].find("*/") {
                    Some(e) => rest = &rest[b + 2 + e + 2..],
                    None => return out,
                }
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                match rest[l..].find('\n') {
                    Some(e) => rest = &rest[l + e..],
                    None => return out,
                }
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// Names of the function-pointer members of `struct lxc_container`, in order.
fn container_members(src: &str) -> Option<Vec<String>> {
    let src = strip_comments(src);
    let start = src.find("struct lxc_container {")?;
    let body = &src[start..];
    let end = body.find("\n};")?;
    let body = &body[..end];
    let mut members = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("(*") {
        let after = &rest[i + 2..];
        let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.is_empty() && after[name.len()..].trim_start().starts_with(')') {
            members.push(name);
        }
        rest = after;
    }
    Some(members)
}

fn header_version(src: &str) -> Option<(u32, u32, u32)> {
    let get = |key: &str| -> Option<u32> {
        src.lines().find_map(|l| {
            let mut words = l.split_whitespace();
            if words.next()? == "#define" && words.next()? == key {
                words.next()?.parse().ok()
            } else {
                None
            }
        })
    };
    Some((get("LXC_VERSION_MAJOR")?, get("LXC_VERSION_MINOR")?, get("LXC_VERSION_MICRO")?))
}

fn generate(header_dir: &Path, out: &Path) {
    let wrapper =
        "#include <lxc/lxccontainer.h>\n#include <lxc/attach_options.h>\n#include <lxc/version.h>\n";
    let include = format!("-I{}", header_dir.display());
    // bindgen panics when libclang cannot be loaded; turn that into the one
    // clear message instead of a backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| {
        bindgen::Builder::default()
            .header_contents("lxc_sys_wrapper.h", wrapper)
            .clang_arg(include.clone())
            .allowlist_function("lxc_.*")
            .allowlist_function("list_(defined|active|all)_containers")
            .allowlist_type("lxc_.*")
            .allowlist_type("bdev_specs")
            .allowlist_type("migrate_opts")
            .allowlist_var("LXC_.*")
            .allowlist_var("MIGRATE_.*")
            .allowlist_var("FEATURE_.*")
            // Types that belong to libc come from the libc crate.
            .blocklist_type("pid_t|uid_t|gid_t|__pid_t|__uid_t|__gid_t|sem_t")
            .raw_line("use libc::{gid_t, pid_t, uid_t};")
            .derive_default(true)
            .derive_debug(true)
            .layout_tests(true)
            .generate_comments(true)
            .prepend_enum_name(false)
            .generate()
    });
    let _ = std::panic::take_hook();
    match result {
        Ok(Ok(bindings)) => bindings
            .write_to_file(out)
            .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", out.display()))),
        Ok(Err(e)) => fail(&format!("bindgen could not parse the liblxc headers: {e}")),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("bindgen panicked");
            let first = msg.lines().next().unwrap_or(msg);
            if msg.contains("libclang") || msg.contains("clang") {
                fail(&format!("libclang could not be loaded ({first})"))
            } else {
                fail(&format!("bindgen failed: {first}"))
            }
        }
    }
}
