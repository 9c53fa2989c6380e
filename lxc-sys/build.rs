//! Picks (or, with the feature `buildtime_bindgen`, generates) the raw
//! bindings for the liblxc that pkg-config finds.
//!
//! By default no libclang is needed: `src/bindings/` holds bindings made by
//! bindgen from the headers of each layout row of [`layouts::LAYOUTS`]
//! (`./dev bindings`), and this script copies the file of the row that holds
//! the version of the host's headers (`lxc/version.h`, else pkg-config's).
//! A version outside every row (a liblxc newer than the crate) stops the
//! build with a message, unless `buildtime_bindgen` is on: that feature
//! runs bindgen on the host's headers, as every build did before 0.2.
//!
//! Besides the bindings, this script tells dependent crates what the header
//! offers, so that one source tree builds against liblxc 4.0 to 7.0:
//!
//! * `cargo:rustc-cfg=lxc_member="NAME"` for every function-pointer member of
//!   `struct lxc_container` of the row (with `buildtime_bindgen`: of the
//!   header), also passed on to the `lxc` crate through `DEP_LXC_MEMBERS`,
//!   because this crate declares `links = "lxc"`;
//! * `DEP_LXC_VERSION` (`major.minor.micro` of the header);
//! * `cargo:rustc-cfg=lxc_attach_lsm_label_and_groups` when
//!   `lxc_attach_options_t` has `lsm_label` and `groups` (liblxc 4.0.7 and
//!   later; passed on as `DEP_LXC_ATTACH_LSM_LABEL_AND_GROUPS=1`).
//!
//! On docs.rs (`DOCS_RS` set), where there is no liblxc, the newest row's
//! bindings are used and nothing is linked.
//!
//! When something needed is missing (pkg-config, the `lxc.pc` file, the
//! headers; libclang with `buildtime_bindgen`), the build stops with one
//! message that says what to install.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::exit;

#[allow(dead_code)]
#[path = "src/layouts.rs"]
mod layouts;

#[cfg(feature = "buildtime_bindgen")]
#[path = "build/bindings.rs"]
mod bindings;

const HELP_DEBIAN: &str = "On Debian or Ubuntu: apt-get install lxc-dev pkg-config";

fn fail(what: &str) -> ! {
    eprintln!();
    eprintln!("error: liblxc-sys cannot be built: {what}");
    eprintln!("       {HELP_DEBIAN}");
    eprintln!("       (liblxc-sys needs liblxc >= 4.0 with its headers and pkg-config; libclang too with the feature buildtime_bindgen)");
    eprintln!();
    exit(1);
}

fn main() {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=LIBCLANG_PATH");
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    println!("cargo:rerun-if-changed=src/bindings");
    println!("cargo:rustc-check-cfg=cfg(lxc_member, values(any()))");
    println!("cargo:rustc-check-cfg=cfg(lxc_attach_lsm_label_and_groups)");
    println!("cargo:rustc-check-cfg=cfg(docsrs)");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let buildtime = cfg!(feature = "buildtime_bindgen");

    // The header's version, and the header directory when there is one.
    let (version, header_dir) = if env::var_os("DOCS_RS").is_some() {
        let newest = layouts::LAYOUTS.last().expect("the table has rows");
        (tag_version(newest.tags.last().expect("every row names its tags")), None)
    } else {
        let (version, dir) = probe();
        (version, Some(dir))
    };
    let row = layouts::layout_of(version);
    let header_src = header_dir.as_ref().map(|d| read(&d.join("lxc/lxccontainer.h")));
    let attach_src = header_dir.as_ref().map(|d| strip_comments(&read(&d.join("lxc/attach_options.h"))));
    let header_members = header_src.as_deref().map(|src| {
        container_members(src)
            .unwrap_or_else(|| fail("`struct lxc_container` was not found in lxc/lxccontainer.h"))
    });
    let header_attach_fields =
        attach_src.as_deref().map(|s| s.contains("lsm_label;") && s.contains("lxc_groups_t groups;"));

    let (members, attach_fields) = match (buildtime, row) {
        // The bindings come from the header: so do the members.
        (true, _) => (
            header_members.clone().unwrap_or_else(|| fail("buildtime_bindgen needs the liblxc headers")),
            header_attach_fields.unwrap_or(false),
        ),
        (false, Some(row)) => {
            let members = row_members(row);
            let fields = row.attach_lsm_label.is_some() && row.attach_groups.is_some();
            // A header that differs from its row (patched, or a release
            // after the table was made) would have the crate call members
            // at the table's offsets, which may hold others: no build.
            if header_members.as_ref().is_some_and(|h| *h != members) || header_attach_fields.is_some_and(|h| h != fields) {
                fail(&format!(
                    "the liblxc header of version {}.{}.{} declares other members of struct lxc_container or lxc_attach_options_t than liblxc's own {}.{}.{} to {}.{}.{} (patched, or newer than this crate); the feature buildtime_bindgen makes the bindings from this header (and needs libclang)",
                    version.0, version.1, version.2, row.first.0, row.first.1, row.first.2, row.until.0, row.until.1, row.until.2
                ));
            }
            (members, fields)
        }
        (false, None) if version < (4, 0, 0) => fail(&format!(
            "liblxc {}.{}.{} is older than 4.0, the oldest release this crate supports",
            version.0, version.1, version.2
        )),
        (false, None) => fail(&format!(
            "liblxc {}.{}.{} is newer than the releases whose bindings this crate ships (4.0.0 up to 8.0.0); the feature buildtime_bindgen makes bindings from its headers (and needs libclang)",
            version.0, version.1, version.2
        )),
    };

    for m in &members {
        println!("cargo:rustc-cfg=lxc_member=\"{m}\"");
    }
    println!("cargo:members={}", members.join(","));
    if attach_fields {
        println!("cargo:rustc-cfg=lxc_attach_lsm_label_and_groups");
    }
    println!("cargo:attach_lsm_label_and_groups={}", u8::from(attach_fields));
    println!("cargo:version={}.{}.{}", version.0, version.1, version.2);
    let include = header_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default();
    println!("cargo:include={include}");
    println!("cargo:rustc-env=LXC_SYS_INCLUDE_DIR={include}");

    let target = out.join("bindings.rs");
    if buildtime {
        #[cfg(feature = "buildtime_bindgen")]
        generate(header_dir.as_deref().expect("checked above"), &target);
    } else {
        let row = row.expect("checked above");
        let (f, _) = (row.first, row.until);
        let file = Path::new("src/bindings").join(format!("lxc_{}_{}_{}.rs", f.0, f.1, f.2));
        write(&target, &read(&file));
    }

    let mut extra = String::new();
    extra.push_str("/// Function-pointer members of `struct lxc_container` in the header these bindings were made from, in order.\n");
    extra.push_str("pub const LXC_CONTAINER_MEMBERS: &[&str] = &[");
    for m in &members {
        extra.push_str(&format!("{m:?}, "));
    }
    extra.push_str("];\n");
    extra.push_str(&format!(
        "/// `(major, minor, micro)` of the liblxc header (`version.h`) these bindings were made for.\npub const LXC_HEADER_VERSION: (u32, u32, u32) = ({}, {}, {});\n",
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

/// Finds liblxc with pkg-config (which also tells Cargo to link it): the
/// version of its header (`version.h`, else pkg-config's) and the header
/// directory.
fn probe() -> (layouts::LxcVersion, PathBuf) {
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
    for f in ["lxccontainer.h", "attach_options.h", "version.h"] {
        // (Only files that exist: Cargo reruns the script on every build
        // for one that does not.)
        let path = header_dir.join("lxc").join(f);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let version = fs::read_to_string(header_dir.join("lxc/version.h"))
        .ok()
        .and_then(|src| header_version(&src))
        .or_else(|| tag_version_opt(&lib.version))
        .unwrap_or_else(|| {
            fail(&format!("neither lxc/version.h nor pkg-config ({:?}) gives liblxc's version", lib.version))
        });
    (version, header_dir)
}

/// The function-pointer members of `struct lxc_container` in a row, in order.
fn row_members(row: &layouts::Layout) -> Vec<String> {
    layouts::STABLE_MEMBERS
        .iter()
        .chain(row.tail)
        .map(|(m, _)| *m)
        .filter(|m| !layouts::DATA_MEMBERS.contains(m))
        .map(String::from)
        .collect()
}

/// `4.0.12` of `lxc-4.0.12`, `v7.0.0` or `5.0.2`.
fn tag_version_opt(tag: &str) -> Option<layouts::LxcVersion> {
    let v = tag.trim_start_matches("lxc-").trim_start_matches('v');
    let mut parts =
        v.split('.').map(|p| p.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok());
    Some((parts.next()??, parts.next()??, parts.next().flatten().unwrap_or(0)))
}

fn tag_version(tag: &str) -> layouts::LxcVersion {
    tag_version_opt(tag).unwrap_or_else(|| fail(&format!("{tag:?} is not a version")))
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

#[cfg(feature = "buildtime_bindgen")]
fn generate(header_dir: &Path, out: &Path) {
    // bindgen panics when libclang cannot be loaded; turn that into the one
    // clear message instead of a backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| bindings::builder(header_dir, true).generate());
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
