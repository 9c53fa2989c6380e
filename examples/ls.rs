//! `lxc-ls --fancy` in Rust: every container of an lxcpath with its state,
//! autostart, groups, addresses and whether it is unprivileged.
//!
//! ```sh
//! cargo run --example ls                       # the default lxcpath
//! cargo run --example ls -- --lxcpath /tmp/lxc
//! ```

mod common;

use lxc::{AddressFamily, Container, ListKind};

fn row(c: &Container) -> [String; 7] {
    let running = c.is_running();
    // Like lxc-ls: a running container answers from its running
    // configuration, a stopped one from its file.
    let item = |k: &str| -> Vec<String> {
        if running {
            c.running_config_item(k)
                .map(|v| v.split(['\n', ' ']).filter(|s| !s.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default()
        } else {
            c.config_item(k).map(|v| v.into_vec()).unwrap_or_default()
        }
    };
    let ips = |fam| {
        let v: Vec<String> = if running {
            c.ip_addresses(None, Some(fam), 0).unwrap_or_default().iter().map(|ip| ip.to_string()).collect()
        } else {
            Vec::new()
        };
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.join(", ")
        }
    };
    let groups = item("lxc.group");
    let autostart = item("lxc.start.auto").first().cloned().unwrap_or_else(|| "0".into());
    let unprivileged = !item("lxc.idmap").is_empty();
    [
        c.name().to_owned(),
        c.state().map(|s| s.to_string()).unwrap_or_else(|_| "UNKNOWN".into()),
        autostart,
        if groups.is_empty() { "-".into() } else { groups.join(", ") },
        ips(AddressFamily::Inet),
        ips(AddressFamily::Inet6),
        unprivileged.to_string(),
    ]
}

fn main() {
    let args = common::Args::parse("ls [--lxcpath PATH]", &[]);
    let containers = match lxc::containers(ListKind::All, args.lxcpath.as_deref()) {
        Ok(c) => c,
        Err(e) => common::die(&e.to_string()),
    };
    let header = ["NAME", "STATE", "AUTOSTART", "GROUPS", "IPV4", "IPV6", "UNPRIVILEGED"].map(String::from);
    let mut rows = vec![header];
    rows.extend(containers.iter().map(row));
    let widths: Vec<usize> = (0..7).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    for r in &rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
        println!("{}", line.join(" ").trim_end());
    }
}
