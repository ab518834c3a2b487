//! Cluster DNS: CoreDNS with its `kubernetes` plugin, run beside the node on its address
//! (port 53), and the kubelet's `clusterDNS`. Pods resolve Services by name
//! (`minio.kbackup-testenv`, `kubernetes.default.svc.cluster.local`) as in any cluster; other
//! names go to this machine's resolver.

use super::super::process::{ServerFiles, wait_until};
use super::NODE_IP;
use anyhow::Result;
use std::fs;
use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The cluster's DNS domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// The Corefile: the cluster zone (and reverse zones) from the API server, the rest
/// forwarded to the resolvers of `/etc/resolv.conf`.
fn corefile(kubeconfig: &Path) -> String {
    format!(
        "{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {NODE_IP}
    errors
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
.:53 {{
    bind {NODE_IP}
    errors
    forward . /etc/resolv.conf
}}
",
        kubeconfig = kubeconfig.display()
    )
}

/// Starts CoreDNS and waits until it answers for the `kubernetes` Service.
pub fn start(server: &ServerFiles, binary: &Path, dir: &Path, kubeconfig: &Path) -> Result<()> {
    fs::create_dir_all(dir)?;
    let file = dir.join("Corefile");
    fs::write(&file, corefile(kubeconfig))?;
    let mut cmd = Command::new(binary);
    cmd.arg("-conf").arg(&file);
    server.start(cmd)?;
    wait_until(
        server,
        "an answer for kubernetes.default.svc",
        Duration::from_secs(30),
        || resolves(&format!("kubernetes.default.svc.{CLUSTER_DOMAIN}")),
    )
}

/// Whether the DNS server on the node address answers an A query for `name` with an
/// address.
fn resolves(name: &str) -> bool {
    let Ok(socket) = UdpSocket::bind("0.0.0.0:0") else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(500)));
    if socket.send_to(&query(name), (NODE_IP, 53)).is_err() {
        return false;
    }
    let mut answer = [0u8; 512];
    match socket.recv(&mut answer) {
        // Same id, a response, no error, at least one answer.
        Ok(len) => {
            len >= 12
                && answer[..2] == [0x6b, 0x62]
                && answer[2] & 0x80 != 0
                && answer[3] & 0x0f == 0
                && u16::from_be_bytes([answer[6], answer[7]]) > 0
        }
        Err(_) => false,
    }
}

/// A DNS query (RFC 1035) for the A record of `name`, id `kb`, recursion desired.
fn query(name: &str) -> Vec<u8> {
    let mut packet = vec![0x6b, 0x62, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, 0, 1, 0, 1]);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_holds_each_label_with_its_length() {
        let packet = query("kubernetes.default");
        assert_eq!(&packet[..4], &[0x6b, 0x62, 0x01, 0x00]);
        assert_eq!(
            &packet[12..],
            b"\x0akubernetes\x07default\x00\x00\x01\x00\x01"
        );
    }

    #[test]
    fn the_corefile_binds_the_node_address_and_reads_the_cluster_with_the_kubeconfig() {
        let text = corefile(Path::new("/env/.testenv/kubeconfig"));
        assert_eq!(text.matches(&format!("bind {NODE_IP}")).count(), 2);
        assert!(text.contains("kubeconfig /env/.testenv/kubeconfig"));
    }
}
