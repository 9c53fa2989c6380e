//! Passes on what lxc-sys found in the liblxc header, so that the safe crate
//! compiles a wrapper only where the header has the member it calls.
//!
//! lxc-sys declares `links = "lxc"`; its build script prints
//! `cargo:members=...` and `cargo:version=...`, which Cargo hands to this
//! script as `DEP_LXC_MEMBERS` and `DEP_LXC_VERSION`.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(lxc_member, values(any()))");
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
}
