//! Running Debian's keepalived as a VRRP peer in a [`Lab`]: a configuration written
//! from the same [`Node`] settings redha takes, started in the foreground with its own
//! pid files, logging to stderr.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::process::{all_pids, stat};
use crate::redha::Node;
use crate::{Lab, Proc, is_alive};

/// Log lines by which keepalived complains about a received packet (see
/// `netns-tests/KEEPALIVED.md`). A wrong VRID is dropped silently and cannot be seen.
pub const COMPLAINTS: [&str; 12] = [
    "invalid TTL",
    "Invalid VRRPv2 checksum",
    "Invalid VRRPv3 checksum",
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
        "global_defs {{\n    router_id lab_h{i}\n    enable_script_security\n    script_user root\n    vrrp_version {}\n}}",
        node.version
    );
    let _ = writeln!(s, "vrrp_instance VI_{} {{", node.vrid);
    let _ = writeln!(s, "    state BACKUP\n    interface eth0");
    let _ = writeln!(s, "    virtual_router_id {}", node.vrid);
    let _ = writeln!(s, "    priority {}", node.priority);
    let _ = writeln!(s, "    advert_int {}", node.keepalived_advert_int());
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
/// its own in the lab directory; its configuration is `keepalived-h{i}.conf`, written
/// from `node` ([`config`]), its log `keepalived-h{i}.log`.
///
/// # Panics
/// When keepalived is not installed.
pub fn start(lab: &Lab, i: usize, node: &Node) -> Proc {
    start_with_config(lab, i, &format!("keepalived-h{i}.conf"), &config(i, node))
}

/// Writes `conf_text` to the file `conf_name` in the lab directory and starts
/// keepalived with it on host `i` in the foreground (`-n -l -D -G`), logging to stderr
/// (`keepalived-h{i}.log`), with pid files of its own in the lab directory:
/// `keepalived-h{i}.pid` (the parent), `keepalived-h{i}-vrrp.pid` (the VRRP child,
/// see [`vrrp_child_pid`]) and `keepalived-h{i}-checkers.pid`.
///
/// # Panics
/// When keepalived is not installed or the file cannot be written.
pub fn start_with_config(lab: &Lab, i: usize, conf_name: &str, conf_text: &str) -> Proc {
    let bin = binary().expect("keepalived is not installed (apt-get install keepalived)");
    let dir = lab.dir();
    let conf = dir.join(conf_name);
    fs::write(&conf, conf_text).expect("write keepalived.conf");
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

/// Pid of host `i`'s keepalived VRRP child, from its pid file (see
/// [`start_with_config`]).
pub fn vrrp_child_pid(lab: &Lab, i: usize) -> Option<u32> {
    fs::read_to_string(lab.dir().join(format!("keepalived-h{i}-vrrp.pid")))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Every live process of host `i`'s keepalived, started as `proc`: the parent first,
/// then its VRRP child (from the pid file), then any other child of the parent that
/// is keepalived (notify scripts are children too, but not keepalived), by pid.
pub fn pids(lab: &Lab, i: usize, proc: &Proc) -> Vec<u32> {
    let parent = proc.pid();
    let mut pids = vec![parent];
    if let Some(child) = vrrp_child_pid(lab, i)
        && child != parent
        && is_alive(child)
    {
        pids.push(child);
    }
    let mut others: Vec<u32> = all_pids()
        .into_iter()
        .filter(|&pid| {
            matches!(stat(pid), Some((s, ppid)) if ppid == parent && s != 'Z')
                && !pids.contains(&pid)
                && fs::read(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with(b"keepalived"))
        })
        .collect();
    others.sort_unstable();
    pids.extend(others);
    pids
}

/// A crash of host `i`'s keepalived, started as `proc`: SIGKILL of its VRRP child and
/// every other keepalived child ([`pids`]), then of the parent, so that no process
/// can notice a death and send a priority-0 advert; then reaps the parent. The VIP
/// stays where it is.
pub fn crash(lab: &Lab, i: usize, proc: &Proc) {
    for pid in pids(lab, i, proc).into_iter().skip(1) {
        // SAFETY: kill(2) on a pid read from keepalived's pid file or /proc; at worst
        // ESRCH.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    proc.kill();
}

/// The complaint lines in a keepalived log.
pub fn complaints(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| COMPLAINTS.iter().any(|c| l.contains(c)))
        .map(str::to_string)
        .collect()
}
