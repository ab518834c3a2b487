//! The node's network: a bridge that carries only the node's address (this kernel has no
//! `dummy` module), the pod network the CNI bridge plugin makes, forwarding, and listeners
//! on the node address for the servers that listen on 127.0.0.1 only (socat), so that pods
//! reach them as in a cluster: through Services whose endpoints are the node address. MinIO,
//! which carries the volume movers' data, listens on the node address itself.

use super::super::process::ServerFiles;
use super::{NODE_IP, POD_CIDR};
use crate::command::{output, run};
use anyhow::{Context, Result};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// The bridge holding the node address.
const NODE_BRIDGE: &str = "kbnode0";
/// The bridge the CNI plugin attaches pods to.
pub const POD_BRIDGE: &str = "kbcni0";

/// Creates the node bridge and address (idempotent) and turns forwarding on.
pub fn ensure() -> Result<()> {
    if !quiet("ip", &["link", "show", NODE_BRIDGE]) {
        run("ip", &["link", "add", NODE_BRIDGE, "type", "bridge"])?;
    }
    let addresses = output("ip", &["-o", "addr", "show", "dev", NODE_BRIDGE])?;
    if !addresses.contains(&format!("inet {NODE_IP}/")) {
        run(
            "ip",
            &["addr", "add", &format!("{NODE_IP}/32"), "dev", NODE_BRIDGE],
        )?;
    }
    run("ip", &["link", "set", NODE_BRIDGE, "up"])?;
    fs::write("/proc/sys/net/ipv4/ip_forward", "1").context("turning IPv4 forwarding on")?;
    Ok(())
}

/// Deletes both bridges (the pod network's goes with its last pod, or here).
pub fn remove() {
    for bridge in [POD_BRIDGE, NODE_BRIDGE] {
        if quiet("ip", &["link", "show", bridge]) {
            let _ = run("ip", &["link", "delete", bridge]);
        }
    }
}

/// The CNI network configuration: a bridge with host-local addresses kept under `state`.
pub fn cni_config(state: &Path) -> String {
    format!(
        r#"{{
  "cniVersion": "0.4.0",
  "name": "kbackup-testenv",
  "plugins": [
    {{
      "type": "bridge",
      "bridge": "{POD_BRIDGE}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {{
        "type": "host-local",
        "ranges": [[{{"subnet": "{POD_CIDR}"}}]],
        "routes": [{{"dst": "0.0.0.0/0"}}],
        "dataDir": "{}"
      }}
    }},
    {{"type": "portmap", "capabilities": {{"portMappings": true}}}},
    {{"type": "loopback"}}
  ]
}}
"#,
        state.display()
    )
}

/// Starts a TCP listener on the node address forwarding to `port` on 127.0.0.1.
pub fn start_forward(server: &ServerFiles, port: u16) -> Result<()> {
    let mut cmd = Command::new("socat");
    cmd.arg(format!("TCP-LISTEN:{port},bind={NODE_IP},fork,reuseaddr"))
        .arg(format!("TCP:127.0.0.1:{port}"));
    server.start(cmd)
}

fn quiet(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cni_configuration_is_json_naming_the_bridge_and_the_state_directory() {
        let config: serde_json::Value =
            serde_json::from_str(&cni_config(Path::new("/state/cni"))).unwrap();
        let bridge = &config["plugins"][0];
        assert_eq!(bridge["bridge"], POD_BRIDGE);
        assert_eq!(bridge["ipam"]["dataDir"], "/state/cni");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], POD_CIDR);
    }
}
