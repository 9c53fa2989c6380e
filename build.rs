//! The `lxc` crate's build script.
//!
//! * Passes on what lxc-sys found in the liblxc header, so that the safe
//!   crate compiles a wrapper only where the header has the member it calls.
//!   lxc-sys declares `links = "lxc"`; its build script prints
//!   `cargo:members=...` and `cargo:version=...`, which Cargo hands to this
//!   script as `DEP_LXC_MEMBERS` and `DEP_LXC_VERSION`.
//! * Builds the helper program (`lxc/helper/lxc-rs-helper.c`) with the
//!   system C compiler against liblxc (pkg-config's flags); the crate embeds
//!   it (`LXC_RS_HELPER`, see `lxc/src/helper.rs`).

use std::path::PathBuf;
use std::process::exit;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(lxc_member, values(any()))");
    println!("cargo:rustc-check-cfg=cfg(docsrs)");
    // Named only in `doc(cfg(liblxc = "6.0 and later"))`: how the
    // documentation says which liblxc a method needs.
    println!("cargo:rustc-check-cfg=cfg(liblxc, values(any()))");
    println!("cargo:rustc-check-cfg=cfg(lxc_attach_lsm_label_and_groups)");
    println!("cargo:rerun-if-env-changed=DEP_LXC_ATTACH_LSM_LABEL_AND_GROUPS");
    if std::env::var("DEP_LXC_ATTACH_LSM_LABEL_AND_GROUPS").as_deref() == Ok("1") {
        println!("cargo:rustc-cfg=lxc_attach_lsm_label_and_groups");
    }
    println!("cargo:rerun-if-env-changed=DEP_LXC_MEMBERS");
    let members = std::env::var("DEP_LXC_MEMBERS").unwrap_or_default();
    for m in members.split(',').filter(|m| !m.is_empty()) {
        println!("cargo:rustc-cfg=lxc_member=\"{m}\"");
    }
    if let Ok(v) = std::env::var("DEP_LXC_VERSION") {
        println!("cargo:rustc-env=LXC_RS_HEADER_VERSION={v}");
    }
    build_helper();
}

fn fail(what: &str) -> ! {
    eprintln!();
    eprintln!("error: the lxc crate's helper program cannot be built: {what}");
    eprintln!("       On Debian or Ubuntu: apt-get install gcc lxc-dev pkg-config");
    eprintln!();
    exit(1);
}

fn build_helper() {
    let src = PathBuf::from("lxc/helper/lxc-rs-helper.c");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("lxc-rs-helper");
    if std::env::var_os("DOCS_RS").is_some() {
        // docs.rs has no liblxc: the documentation needs no helper.
        std::fs::write(&out, b"").unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", out.display())));
        println!("cargo:rustc-env=LXC_RS_HELPER={}", out.display());
        return;
    }
    let lib = pkg_config::Config::new()
        .atleast_version("4.0")
        .cargo_metadata(false)
        .probe("lxc")
        .unwrap_or_else(|e| fail(&format!("pkg-config did not find liblxc: {e}")));
    let compiler = cc::Build::new().opt_level(2).get_compiler();
    let mut cmd = compiler.to_command();
    cmd.arg("-std=gnu11").arg("-Wall").arg("-o").arg(&out).arg(&src);
    for dir in &lib.include_paths {
        cmd.arg(format!("-I{}", dir.display()));
    }
    for dir in &lib.link_paths {
        cmd.arg(format!("-L{}", dir.display()));
        cmd.arg(format!("-Wl,-rpath,{}", dir.display()));
    }
    for l in &lib.libs {
        cmd.arg(format!("-l{l}"));
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!("{cmd:?} exited with {s}")),
        Err(e) => fail(&format!("cannot run the C compiler ({cmd:?}): {e}")),
    }
    println!("cargo:rustc-env=LXC_RS_HELPER={}", out.display());
}
