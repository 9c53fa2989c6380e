// The bindgen configuration, shared by the build script (feature
// `buildtime_bindgen`) and the generator of the checked-in bindings
// (`lxc-sys/regen`, `./dev bindings`): both make the same items from the
// same headers.
//
// `version.h` is left out: its numbers belong to one release, and the
// checked-in bindings serve a range of them (`LXC_HEADER_VERSION`, written
// by the build script, says which header the build saw).

/// The bindgen builder for the headers under `header_dir` (a directory
/// holding `lxc/lxccontainer.h` and `lxc/attach_options.h`). `layout_tests`:
/// bindgen's compile-time size and offset checks, which hold for the target
/// that made them only (the checked-in files leave them out; the layout test
/// checks every target against its C compiler).
pub fn builder(header_dir: &std::path::Path, layout_tests: bool) -> bindgen::Builder {
    bindgen::Builder::default()
        .header_contents(
            "lxc_sys_wrapper.h",
            "#include <lxc/lxccontainer.h>\n#include <lxc/attach_options.h>\n",
        )
        .clang_arg(format!("-I{}", header_dir.display()))
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
        .layout_tests(layout_tests)
        .generate_comments(true)
        .prepend_enum_name(false)
}
