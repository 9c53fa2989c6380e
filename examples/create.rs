//! `lxc-create -n NAME -t TEMPLATE -- ARGS`: create a container with a
//! template; `download` arguments pass through (offline, liblxc's own
//! error says why it fails).
//!
//! ```sh
//! cargo run --example create -- -n web -t busybox              # temporary lxcpath, removed at the end
//! cargo run --example create -- -n web -t busybox --lxcpath /tmp/lxc --keep
//! cargo run --example create -- -n u1 -t download -- -d ubuntu -r jammy -a amd64
//! ```

mod common;

use lxc::{BackingStore, CreateOptions};

fn main() -> lxc::Result<()> {
    let args = common::Args::parse(
        "create -n NAME -t TEMPLATE [-B BACKINGSTORE] [--lxcpath PATH] [--keep] [-- TEMPLATE ARGS]",
        &[],
    );
    let name = args.get("--name", "-n").unwrap_or_else(|| common::die("-n NAME is needed")).to_owned();
    let template = args.get("--template", "-t").unwrap_or("busybox").to_owned();
    let bdev = args
        .get("--bdev", "-B")
        .map(|b| b.parse::<BackingStore>().unwrap_or_else(|e| common::die(&e.to_string())));
    let ws = common::Workspace::new(&args, "create");
    let c = lxc::Container::with_lxcpath(&name, &ws.lxcpath)?;
    if c.is_defined() {
        return Err(lxc::Error::AlreadyDefined { op: "create", container: name });
    }
    let mut opts = CreateOptions::new().template(&template).args(args.free.iter().cloned());
    if let Some(b) = bdev {
        opts = opts.backing_store(b);
    }
    // No bridge here: a container without network unless the template's
    // arguments say otherwise.
    c.set_config_item("lxc.net.0.type", "empty")?;
    println!("creating {name} with template {template} {:?}", args.free);
    ws.made(&name);
    c.create(&opts)?;
    let config = c.config_file_name()?;
    println!("created {name}: config {}", config.display());
    let rootfs = c.config_item_str("lxc.rootfs.path")?;
    println!("rootfs {rootfs}");
    let mut checks = common::Checks::default();
    checks.check(
        c.is_defined() && config.is_file(),
        format!("{name} is defined: its configuration file exists"),
    );
    // `dir:` and other stores name their path after a `TYPE:` prefix.
    let dir = rootfs.trim().rsplit(':').next().unwrap_or_default();
    let populated = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    checks.check(populated, format!("its root filesystem {dir} is populated"));
    checks.finish()
}
