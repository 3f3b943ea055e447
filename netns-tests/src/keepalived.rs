//! Running Debian's keepalived as a VRRP peer in a [`Lab`]: a configuration written
//! from the same [`Node`] settings redha takes, started in the foreground with its own
//! pid files, logging to stderr.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use crate::redha::Node;
use crate::{Lab, Proc};

/// Log lines by which keepalived complains about a received packet (see
/// `netns-tests/KEEPALIVED.md`). A wrong VRID is dropped silently and cannot be seen.
pub const COMPLAINTS: [&str; 11] = [
    "invalid TTL",
    "Invalid VRRPv2 checksum",
    "wrong version",
    "packet too long",
    "packet too short",
    "Invalid packet type",
    "interval mismatch",
    "not present in MASTER advert",
    "unexpected ip number count",
    "invalid passwd",
    "auth, expecting",
];

/// The path of keepalived, or None when it is not installed.
pub fn binary() -> Option<PathBuf> {
    [
        "/usr/sbin/keepalived",
        "/usr/bin/keepalived",
        "/usr/local/sbin/keepalived",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// keepalived.conf text for host `i` with `node`'s settings (instance `VI_<vrid>`).
pub fn config(i: usize, node: &Node) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "global_defs {{\n    router_id lab_h{i}\n    enable_script_security\n    script_user root\n    vrrp_version 2\n}}"
    );
    let _ = writeln!(s, "vrrp_instance VI_{} {{", node.vrid);
    let _ = writeln!(s, "    state BACKUP\n    interface eth0");
    let _ = writeln!(s, "    virtual_router_id {}", node.vrid);
    let _ = writeln!(s, "    priority {}", node.priority);
    let _ = writeln!(s, "    advert_int {}", node.advert_int);
    if !node.preempt {
        let _ = writeln!(s, "    nopreempt");
    }
    if let Some(pass) = &node.auth_pass {
        let _ = writeln!(
            s,
            "    authentication {{\n        auth_type PASS\n        auth_pass {pass}\n    }}"
        );
    }
    if !node.unicast_peers.is_empty() {
        let _ = writeln!(s, "    unicast_peer {{");
        for peer in &node.unicast_peers {
            let _ = writeln!(s, "        {peer}");
        }
        let _ = writeln!(s, "    }}");
    }
    let _ = writeln!(s, "    virtual_ipaddress {{");
    for vip in &node.vips {
        let _ = writeln!(s, "        {vip}");
    }
    let _ = writeln!(s, "    }}\n}}");
    s
}

/// Starts keepalived on host `i` in the foreground (`-n -l -D -G`), with pid files of
/// its own in the lab directory; its log is `keepalived-h{i}.log`.
///
/// # Panics
/// When keepalived is not installed.
pub fn start(lab: &Lab, i: usize, node: &Node) -> Proc {
    let bin = binary().expect("keepalived is not installed (apt-get install keepalived)");
    let dir = lab.dir();
    let conf = dir.join(format!("keepalived-h{i}.conf"));
    std::fs::write(&conf, config(i, node)).expect("write keepalived.conf");
    let mut command = Command::new(bin);
    command
        .args(["-n", "-l", "-D", "-G", "-f"])
        .arg(&conf)
        .arg("-p")
        .arg(dir.join(format!("keepalived-h{i}.pid")))
        .arg("-r")
        .arg(dir.join(format!("keepalived-h{i}-vrrp.pid")))
        .arg("-c")
        .arg(dir.join(format!("keepalived-h{i}-checkers.pid")));
    lab.spawn_command(i, &format!("keepalived-h{i}"), &command)
}

/// The complaint lines in a keepalived log.
pub fn complaints(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| COMPLAINTS.iter().any(|c| l.contains(c)))
        .map(str::to_string)
        .collect()
}
