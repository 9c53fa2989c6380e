//! Every member of `struct lxc_container` in the host's header has a
//! wrapper: a future liblxc that adds a member makes this test fail until
//! the crate wraps it.

use lxc::Container;

/// Header member -> the crate's wrapper. Each wrapper is named as a path,
/// so this file only compiles while the wrapper exists.
macro_rules! wrappers {
    ($($member:literal => $($item:expr),+;)*) => {
        &[$(($member, { $(let _ = $item;)+ concat!($(stringify!($item), " ",)+) })),*]
    };
}

fn table() -> Vec<(&'static str, &'static str)> {
    #[allow(unused_mut)]
    let mut t = wrappers! {
        "is_defined" => Container::is_defined;
        "state" => Container::state;
        "is_running" => Container::is_running;
        "freeze" => Container::freeze;
        "unfreeze" => Container::unfreeze;
        "init_pid" => Container::init_pid;
        "load_config" => Container::load_config;
        "start" => Container::start, Container::start_with;
        "startl" => Container::start_with;
        "stop" => Container::stop;
        "want_daemonize" => Container::want_daemonize, Container::daemonize;
        "want_close_all_fds" => Container::want_close_all_fds;
        "config_file_name" => Container::config_file_name;
        "wait" => Container::wait;
        "set_config_item" => Container::set_config_item, Container::append_config_item,
            |c: &Container| c.set_config_list("", [""]);
        "destroy" => Container::destroy;
        "save_config" => Container::save_config;
        "create" => Container::create;
        "createl" => Container::create;
        "rename" => Container::rename;
        "reboot" => Container::reboot;
        "shutdown" => Container::shutdown;
        "clear_config" => Container::clear_config;
        "clear_config_item" => Container::clear_config_item;
        "get_config_item" => Container::config_item, Container::config_item_str;
        "get_running_config_item" => Container::running_config_item;
        "get_keys" => Container::keys;
        "get_interfaces" => Container::interfaces;
        "get_ips" => Container::ip_addresses;
        "get_cgroup_item" => Container::cgroup_item;
        "set_cgroup_item" => Container::set_cgroup_item;
        "get_config_path" => Container::config_path;
        "set_config_path" => |c: &mut Container| c.set_config_path("/tmp");
        "clone" => Container::copy;
        "console_getfd" => Container::console_getfd;
        "console" => Container::console;
        "attach" => Container::attach_wait::<fn() -> i32>, |c: &Container| { let _ = c.command("true"); }, Container::attach_session;
        "attach_run_wait" => Container::attach_run_wait;
        "attach_run_waitl" => Container::attach_run_wait;
        "snapshot" => Container::snapshot;
        "snapshot_list" => Container::snapshot_list;
        "snapshot_restore" => Container::snapshot_restore;
        "snapshot_destroy" => Container::snapshot_destroy;
        "may_control" => Container::may_control;
        "add_device_node" => |c: &Container| c.add_device_node("/dev/null", None);
        "remove_device_node" => |c: &Container| c.remove_device_node("/dev/null", None);
        "attach_interface" => Container::attach_interface;
        "detach_interface" => Container::detach_interface;
        "checkpoint" => |c: &Container| c.checkpoint("/tmp/x", false, false);
        "restore" => |c: &Container| c.restore("/tmp/x", false);
        "destroy_with_snapshots" => Container::destroy_with_snapshots;
        "snapshot_destroy_all" => Container::snapshot_destroy_all;
        "migrate" => Container::migrate;
        "console_log" => Container::console_log, Container::console_log_clear;
        "reboot2" => Container::reboot2;
        "mount" => Container::mount;
        "umount" => Container::umount;
        "seccomp_notify_fd" => Container::seccomp_notify_fd;
        "init_pidfd" => Container::init_pidfd;
    }
    .to_vec();
    // liblxc 4.0.5 and later.
    #[cfg(lxc_member = "seccomp_notify_fd_active")]
    t.push(("seccomp_notify_fd_active", {
        let _ = Container::seccomp_notify_fd_active;
        "Container::seccomp_notify_fd_active"
    }));
    #[cfg(lxc_member = "devpts_fd")]
    t.push(("devpts_fd", {
        let _ = Container::devpts_fd;
        "Container::devpts_fd"
    }));
    // liblxc 6.0 and later.
    #[cfg(lxc_member = "set_timeout")]
    t.push(("set_timeout", {
        let _ = Container::set_timeout;
        "Container::set_timeout"
    }));
    t
}

#[test]
fn every_member_of_the_header_has_a_wrapper() {
    let table = table();
    let missing: Vec<&str> = lxc::sys::LXC_CONTAINER_MEMBERS
        .iter()
        .copied()
        .filter(|m| !table.iter().any(|(t, _)| t == m))
        .collect();
    assert!(
        missing.is_empty(),
        "members of struct lxc_container in the liblxc {} header without a wrapper: {missing:?}",
        lxc::header_version()
    );
    // Every member listed here is in the header (set_timeout is listed
    // only where the header has it).
    for (member, _) in &table {
        assert!(lxc::sys::LXC_CONTAINER_MEMBERS.contains(member), "{member}");
    }
}
