//! The recipe format of `examples/provision.rs` (TOML: `[limits]`,
//! `[[file]]`, `[[command]]`, `[service]`), applied through one attach
//! session, idempotently; shared with `examples/blue_green.rs`, which bakes
//! images with it.

use std::io::Write;

use lxc::{AttachOptions, AttachSession, ByteSize, Container, Stdio};
use toml::{Table, Value};

/// The string value of `key` in `t`, if it has one.
pub fn text<'a>(t: &'a Table, key: &str) -> Option<&'a str> {
    t.get(key).and_then(Value::as_str)
}

/// Runs a shell script through the session; its success and stdout.
fn sh(s: &mut AttachSession<'_>, script: &str) -> lxc::Result<(bool, String)> {
    let out = s.command("/bin/sh").args(["-c", script]).output()?;
    Ok((out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// Applies the recipe once; the number of changes made.
pub fn apply(c: &Container, recipe: &Table) -> lxc::Result<usize> {
    let mut changed = 0;
    let mut report = |what: String, did: bool| {
        println!("  {:<9} {what}", if did { "changed" } else { "ok" });
        changed += usize::from(did);
    };

    if let Some(limits) = recipe.get("limits").and_then(Value::as_table) {
        if let Some(mem) = text(limits, "memory") {
            let want: ByteSize = mem.parse()?;
            let have = c.memory_limit()?;
            // The kernel rounds limits to pages.
            let same = matches!((have.bytes(), want.bytes()), (Some(h), Some(w)) if h <= w && w - h < 4096);
            if !same {
                c.set_memory_limit(want)?;
            }
            report(format!("memory limit {want}"), !same);
        }
        if let Some(pids) = text(limits, "pids") {
            let same = c.cgroup_item("pids.max")? == pids;
            if !same {
                c.set_cgroup_item("pids.max", pids)?;
            }
            report(format!("pids.max {pids}"), !same);
        }
    }

    let mut s = c.attach_session(&AttachOptions::new().env_policy(lxc::EnvPolicy::Clear))?;
    for f in recipe.get("file").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_table) {
        let (Some(path), Some(content)) = (text(f, "path"), text(f, "content")) else { continue };
        let (_, current) = sh(&mut s, &format!("cat '{path}' 2>/dev/null"))?;
        let same = current == content;
        if !same {
            let (r, mut w) = std::io::pipe().map_err(|source| lxc::Error::Io { op: "pipe", source })?;
            w.write_all(content.as_bytes()).map_err(|source| lxc::Error::Io { op: "write", source })?;
            drop(w);
            let dir = path.rsplit_once('/').map_or("/", |d| if d.0.is_empty() { "/" } else { d.0 });
            let st = s
                .command("/bin/sh")
                .args(["-c", &format!("mkdir -p '{dir}' && cat > '{path}'")])
                .stdin(Stdio::from(std::os::fd::OwnedFd::from(r)))
                .status()?;
            if !st.success() {
                return Err(super::failure(format!("could not write {path}")));
            }
        }
        report(format!("file {path}"), !same);
    }
    for cmd in
        recipe.get("command").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_table)
    {
        let Some(run) = text(cmd, "run") else { continue };
        let needed = match text(cmd, "creates") {
            Some(p) => !sh(&mut s, &format!("test -e '{p}'"))?.0,
            None => true,
        };
        if needed && !sh(&mut s, run)?.0 {
            return Err(super::failure(format!("command failed: {run}")));
        }
        report(format!("command {run:?}"), needed);
    }
    if let Some(svc) = recipe.get("service").and_then(Value::as_table) {
        let (Some(name), Some(start)) = (text(svc, "name"), text(svc, "start")) else { return Ok(changed) };
        let running = sh(&mut s, &format!("pidof {name}"))?.0;
        if !running && !sh(&mut s, start)?.0 {
            return Err(super::failure(format!("service {name} did not start")));
        }
        report(format!("service {name}"), !running);
    }
    s.close()?;
    Ok(changed)
}
