use lxc::{ByteSize, Container, CreateOptions, State};
use std::time::Duration;

fn main() -> Result<(), lxc::Error> {
    // create() makes the lxcpath when it is missing, as lxc-create does.
    let c = Container::with_lxcpath("web", "/tmp/lxc")?;
    c.set_config_item("lxc.net.0.type", "empty")?;
    c.create(&CreateOptions::new().template("busybox").quiet(true))?;
    c.start()?;
    c.wait(State::Running, Duration::from_secs(10))?;
    // memory.limit_in_bytes on cgroup v1, memory.max on v2
    // (set_cgroup_item("memory.limit_in_bytes", "67108864") sets the key itself).
    c.set_memory_limit(ByteSize::mib(64))?;
    println!("memory limit: {}", c.memory_limit()?);
    let out = c.command("uname").arg("-a").output()?;
    print!("web runs: {}", String::from_utf8_lossy(&out.stdout));
    c.stop()?;
    c.destroy()?;
    Ok(())
}
