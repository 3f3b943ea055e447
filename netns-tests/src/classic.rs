//! The classic setup redha replaces (`DESIGN.md`, "The problem, as the classic setup
//! solves it"): keepalived on each Redis host, both `state BACKUP` with `nopreempt`, a
//! `chk_redis` script (`redis-cli PING`) tracked by the instance, and notify scripts that
//! move replication by hand with fixed sleeps:
//!
//! - entering BACKUP: sleep ([`BACKUP_SLEEP`]: 2 s on host 1, 15 s on host 2), then
//!   `SLAVEOF <peer> 6379`;
//! - entering MASTER: `SLAVEOF <peer> 6379`, sleep [`MASTER_SLEEP`] (10 s), then
//!   `SLAVEOF NO ONE`.
//!
//! The scripts are written into the lab directory (root-owned, mode 0755, as
//! keepalived's `enable_script_security` demands) and log what they do to
//! `classic-state-h<i>.log` there, like the classic `redis-state.log`.

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use crate::process::{all_pids, stat};
use crate::redha::Node;
use crate::{Lab, Proc, keepalived};

/// Seconds the BACKUP notify script sleeps before `SLAVEOF <peer>`: host 1, host 2.
pub const BACKUP_SLEEP: [u64; 2] = [2, 15];

/// Seconds the MASTER notify script sleeps between `SLAVEOF <peer>` and
/// `SLAVEOF NO ONE`.
pub const MASTER_SLEEP: u64 = 10;

/// Marker in the file names of the notify scripts, used to find running ones.
const SCRIPT_PREFIX: &str = "classic-notify-";

/// Path of host `i`'s notify script for `state` (`"master"` or `"backup"`).
pub fn script_path(lab: &Lab, i: usize, state: &str) -> PathBuf {
    lab.dir().join(format!("{SCRIPT_PREFIX}{state}-h{i}.sh"))
}

/// Path of the log the notify scripts of host `i` append to.
pub fn state_log_path(lab: &Lab, i: usize) -> PathBuf {
    lab.dir().join(format!("classic-state-h{i}.log"))
}

fn write_script(path: &PathBuf, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Writes host `i`'s two notify scripts (peer `peer`, BACKUP sleep `backup_sleep` s).
pub fn write_scripts(lab: &Lab, i: usize, peer: Ipv4Addr, backup_sleep: u64) {
    let log = state_log_path(lab, i);
    let log = log.display();
    let stamp = "$(date +%H:%M:%S.%N | cut -c1-12)";
    let master = format!(
        "#!/bin/sh\n\
         # classic notify_master: pull the peer's newest data, wait, then promote\n\
         echo \"{stamp} MASTER: SLAVEOF {peer} 6379\" >>{log}\n\
         redis-cli SLAVEOF {peer} 6379 >>{log} 2>&1\n\
         sleep {MASTER_SLEEP}\n\
         echo \"{stamp} MASTER: SLAVEOF NO ONE\" >>{log}\n\
         redis-cli SLAVEOF NO ONE >>{log} 2>&1\n"
    );
    let backup = format!(
        "#!/bin/sh\n\
         # classic notify_backup: wait, then follow the peer\n\
         echo \"{stamp} BACKUP: sleep {backup_sleep}\" >>{log}\n\
         sleep {backup_sleep}\n\
         echo \"{stamp} BACKUP: SLAVEOF {peer} 6379\" >>{log}\n\
         redis-cli SLAVEOF {peer} 6379 >>{log} 2>&1\n"
    );
    write_script(&script_path(lab, i, "master"), &master);
    write_script(&script_path(lab, i, "backup"), &backup);
}

/// keepalived.conf text of the classic setup for host `i`: `node`'s VRRP settings
/// (priority, advert_int, VIPs), always `state BACKUP` and `nopreempt`, the tracked
/// `chk_redis` script and the notify scripts.
pub fn config(lab: &Lab, i: usize, node: &Node) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "global_defs {{\n    router_id classic_h{i}\n    enable_script_security\n    \
         script_user root\n    vrrp_version 2\n}}"
    );
    let _ = writeln!(
        s,
        "vrrp_script chk_redis {{\n    script \"redis-cli -h 127.0.0.1 PING\"\n    \
         interval 1\n    fall 2\n    rise 2\n}}"
    );
    let _ = writeln!(s, "vrrp_instance VI_{} {{", node.vrid);
    let _ = writeln!(s, "    state BACKUP\n    interface eth0\n    nopreempt");
    let _ = writeln!(s, "    virtual_router_id {}", node.vrid);
    let _ = writeln!(s, "    priority {}", node.priority);
    let _ = writeln!(s, "    advert_int {}", node.keepalived_advert_int());
    let _ = writeln!(s, "    track_script {{\n        chk_redis\n    }}");
    let _ = writeln!(
        s,
        "    notify_master \"{}\"",
        script_path(lab, i, "master").display()
    );
    let _ = writeln!(
        s,
        "    notify_backup \"{}\"",
        script_path(lab, i, "backup").display()
    );
    let _ = writeln!(s, "    virtual_ipaddress {{");
    for vip in &node.vips {
        let _ = writeln!(s, "        {vip}");
    }
    let _ = writeln!(s, "    }}\n}}");
    s
}

/// Writes host `i`'s scripts and configuration (peer `peer`;
/// `classic-keepalived-h<i>.conf`) and starts keepalived in the foreground with
/// [`keepalived::start_with_config`]: the pid files of [`keepalived::start`]
/// (`keepalived-h<i>.pid`, `keepalived-h<i>-vrrp.pid`), log `keepalived-h<i>.log`. A
/// crash of it is [`keepalived::crash`].
///
/// # Panics
/// When keepalived is not installed.
pub fn start(lab: &Lab, i: usize, node: &Node, peer: Ipv4Addr) -> Proc {
    write_scripts(lab, i, peer, BACKUP_SLEEP[(i - 1).min(1)]);
    keepalived::start_with_config(
        lab,
        i,
        &format!("classic-keepalived-h{i}.conf"),
        &config(lab, i, node),
    )
}

/// Notify scripts of this lab that are still running (sleeping or issuing `SLAVEOF`),
/// as `(pid, script file name)`.
pub fn running_scripts(lab: &Lab) -> Vec<(u32, String)> {
    let dir = lab.dir().display().to_string();
    let mut found = Vec::new();
    for pid in all_pids() {
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if matches!(stat(pid), Some((s, _)) if s == 'Z') {
            continue;
        }
        for arg in cmdline.split(|&b| b == 0) {
            let arg = String::from_utf8_lossy(arg);
            if arg.starts_with(&dir) && arg.contains(SCRIPT_PREFIX) {
                let name = arg.rsplit('/').next().unwrap_or_default().to_owned();
                found.push((pid, name));
                break;
            }
        }
    }
    found
}
