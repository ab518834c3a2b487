//! What stopping the node's servers leaves behind and `env down` removes: processes of
//! containers (they outlive containerd, in their shims), mounts under the node directory
//! (container root file systems, secret volumes), and the kubelet's iptables chains.

use super::CGROUP_ROOT;
use anyhow::Result;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Kills every process of this node's pod cgroups (under [`CGROUP_ROOT`] in each of
/// `hierarchies`), and the shims of this containerd.
pub fn kill_containers(hierarchies: &[PathBuf], socket: &Path) {
    let mut pids = Vec::new();
    for hierarchy in hierarchies {
        collect_cgroup_pids(&hierarchy.join(CGROUP_ROOT), &mut pids);
    }
    let socket = socket.display().to_string();
    if let Ok(processes) = fs::read_dir("/proc") {
        for process in processes.flatten() {
            let cmdline = fs::read(process.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            let pid = process.file_name().to_str().and_then(|p| p.parse().ok());
            if let Some(pid) =
                pid.filter(|_| cmdline.contains("containerd-shim") && cmdline.contains(&socket))
            {
                pids.push(pid);
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    for pid in pids {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .output();
    }
}

/// Removes this node's cgroups, deepest first (a cgroup goes once its processes have; one
/// still busy stays, harmlessly, until the next `env down`).
pub fn remove_cgroups(hierarchies: &[PathBuf]) {
    fn remove(dir: &Path) {
        if let Ok(children) = fs::read_dir(dir) {
            for child in children.flatten() {
                if child.file_type().is_ok_and(|t| t.is_dir()) {
                    remove(&child.path());
                }
            }
        }
        let _ = fs::remove_dir(dir);
    }
    for hierarchy in hierarchies {
        remove(&hierarchy.join(CGROUP_ROOT));
    }
}

fn collect_cgroup_pids(dir: &Path, pids: &mut Vec<u32>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if let Ok(children) = fs::read_dir(dir) {
        for child in children.flatten() {
            if child.file_type().is_ok_and(|t| t.is_dir()) {
                collect_cgroup_pids(&child.path(), pids);
            }
        }
    }
}

/// Removes the chains the kubelet makes (kube-proxy's go with `kube-proxy --cleanup`).
pub fn remove_kubelet_rules() {
    for program in ["iptables", "ip6tables"] {
        let iptables = |args: &[&str]| {
            let _ = Command::new(program).args(args).output();
        };
        for table in ["filter", "nat", "mangle"] {
            for hook in ["INPUT", "OUTPUT"] {
                iptables(&["-t", table, "-D", hook, "-j", "KUBE-FIREWALL"]);
            }
            for chain in ["KUBE-FIREWALL", "KUBE-KUBELET-CANARY"] {
                iptables(&["-t", table, "-F", chain]);
                iptables(&["-t", table, "-X", chain]);
            }
        }
    }
}

/// Unmounts everything mounted under `root`, deepest first.
pub fn unmount_under(root: &Path) -> Result<()> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    let mut points = mount_points_under(&mountinfo, root);
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for point in points {
        let done = Command::new("umount")
            .arg(&point)
            .output()
            .is_ok_and(|o| o.status.success());
        if !done {
            // Busy: detach it; it goes when its last user does.
            let _ = Command::new("umount").arg("-l").arg(&point).output();
        }
    }
    Ok(())
}

/// Mount points (field 5 of mountinfo, octal escapes decoded) at or below `root`.
fn mount_points_under(mountinfo: &str, root: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .filter(|point| point.starts_with(root))
        .collect()
}

fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4).unwrap_or_default();
        match u8::from_str_radix(code, 8) {
            Ok(byte) if code.len() == 3 => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            _ => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mounts_under_the_root_are_found_with_escapes_decoded() {
        let mountinfo = "\
22 1 254:0 / / rw - ext4 /dev/vda rw
90 22 0:50 / /env/.testenv/node/kubelet/pods/a/volumes/x rw - tmpfs tmpfs rw
91 22 0:51 / /env/.testenv/node/containerd/state/with\\040space rw - overlay overlay rw
92 22 0:52 / /env/.testenv/nodeother rw - tmpfs tmpfs rw
";
        let found = mount_points_under(mountinfo, Path::new("/env/.testenv/node"));
        assert_eq!(
            found,
            [
                PathBuf::from("/env/.testenv/node/kubelet/pods/a/volumes/x"),
                PathBuf::from("/env/.testenv/node/containerd/state/with space"),
            ]
        );
    }
}
