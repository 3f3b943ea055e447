//! Injecting each fault of the schedule, and healing it.
//!
//! The kernel of the lab machines has no `netem`, so packet loss is an nftables
//! table in the host's namespace (`numgen random` drops on `eth0`, both ways) and
//! delay is a token-bucket filter (`tbf`, 200 ms of queue) on both ends of the
//! host's link, a slow link that delays what it queues under load.

use std::ffi::OsStr;
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::schedule::{Fault, Kind, Target};
use crate::pair::{CATCH_UP_TIMEOUT, other};
use crate::redha::{MARGIN, VIP};
use crate::{HOST_IF, wait_until};

/// The nftables table of the loss fault.
const NFT_TABLE: &str = "redha_soak";
/// The tbf queue of the delay fault: what it holds is delayed up to this long.
const TBF_LATENCY: &str = "200ms";
/// The tbf bucket: a few full-size frames.
const TBF_BURST: &str = "4kb";
/// How long a reload may take to show in the agent's log.
const RELOAD_SEEN: Duration = Duration::from_secs(3);
/// The agent's log line of a reload applied in place.
pub const RELOAD_MESSAGE: &str = "SIGHUP: applying the new configuration";

/// A fault while it is active.
#[derive(Debug)]
pub struct Active {
    /// The schedule's fault.
    pub fault: Fault,
    /// The host it hit.
    pub host: usize,
    /// The master when it was injected.
    pub master: usize,
    /// When it was injected.
    pub injected: Instant,
    /// When the master's Redis was SIGKILLed (from the writer's start), if this
    /// fault did that: writes acknowledged just before may be missing.
    pub master_kill: Option<Duration>,
    /// What went wrong while injecting or healing (an agent that did not exit 0
    /// on SIGTERM, a reload not applied): violations.
    pub problems: Vec<String>,
}

fn nft_script(percent: u32) -> String {
    format!(
        "table inet {NFT_TABLE} {{\n\
         \x20 chain soak_in {{ type filter hook input priority 0; policy accept; \
         iifname \"{HOST_IF}\" numgen random mod 100 < {percent} drop; }}\n\
         \x20 chain soak_out {{ type filter hook output priority 0; policy accept; \
         oifname \"{HOST_IF}\" numgen random mod 100 < {percent} drop; }}\n\
         }}\n"
    )
}

/// Runs a command (`what` names it in errors); its failure is a fault of the
/// harness: panic with its output.
fn must(what: &str, out: std::process::Output) {
    if !out.status.success() {
        panic!(
            "soak: {what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn tc_bridge(c: &Cluster<'_>, args: &[&str]) -> std::process::Output {
    Command::new("tc")
        .arg("-n")
        .arg(c.lab.bridge_ns())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("soak: running tc: {e}"))
}

/// The priority a reload gives `host`: 150 <-> 140 on host 1, 100 <-> 90 on
/// host 2, so that host 1 stays above host 2.
fn toggled_priority(host: usize, now: u8) -> u8 {
    let base = if host == 1 { 150 } else { 100 };
    if now == base { base - 10 } else { base }
}

/// The `[redis]` line a reload toggles.
const CHECK_TIMEOUT_LINE: &str = "check_timeout = \"400ms\"\n";

/// Injects `fault` into a pair settled with `master`. `writer_started` is the
/// writer's start, the clock of [`Active::master_kill`].
pub fn inject(
    c: &mut Cluster<'_>,
    fault: &Fault,
    master: usize,
    writer_started: Instant,
) -> Active {
    let host = match (fault.kind, fault.target) {
        (Kind::VipDelete, _) | (_, Target::Master) => master,
        (_, Target::Replica) => other(master),
    };
    let mut a = Active {
        fault: fault.clone(),
        host,
        master,
        injected: Instant::now(),
        master_kill: None,
        problems: Vec::new(),
    };
    let lab = c.lab;
    match fault.kind {
        Kind::RedisKillEmpty | Kind::RedisKillFiles => {
            c.redis(host).kill();
            // After the kill: a write acknowledged before it returned may be
            // part of the tail; one acknowledged after is not.
            if host == master {
                a.master_kill = Some(writer_started.elapsed());
            }
        }
        Kind::RedisStop => {
            c.redis(host).proc().signal(libc::SIGSTOP);
        }
        Kind::AgentStop => {
            c.agent(host).signal(libc::SIGSTOP);
        }
        Kind::AgentKill => {
            c.agent(host).kill();
        }
        Kind::AgentTerm => {
            let agent = c.agent(host);
            agent.signal(libc::SIGTERM);
            // A master hands over first: it pauses writes until the replica has
            // caught up (catch_up_timeout at most).
            let within = CATCH_UP_TIMEOUT + MARGIN;
            match agent.wait_exit(within) {
                Some(s) if s.success() => {}
                Some(s) => a
                    .problems
                    .push(format!("host {host}'s agent exited with {s} on SIGTERM")),
                None => {
                    a.problems.push(format!(
                        "host {host}'s agent did not exit within {within:?} of SIGTERM"
                    ));
                    agent.kill();
                }
            }
        }
        Kind::Partition => lab.split(&[host]),
        Kind::Loss => {
            let path = lab.dir().join(format!("soak-loss-h{host}.nft"));
            fs::write(&path, nft_script(fault.param))
                .unwrap_or_else(|e| panic!("soak: writing {}: {e}", path.display()));
            must(
                "nft -f (loss)",
                lab.try_run(host, "nft", [OsStr::new("-f"), path.as_os_str()]),
            );
        }
        Kind::Delay => {
            let rate = format!("{}kbit", fault.param);
            let tbf = [
                "rate",
                rate.as_str(),
                "burst",
                TBF_BURST,
                "latency",
                TBF_LATENCY,
            ];
            let mut host_args = vec!["qdisc", "replace", "dev", HOST_IF, "root", "tbf"];
            host_args.extend(tbf);
            must("tc tbf (host)", lab.try_run(host, "tc", &host_args));
            let port = format!("p{host}");
            let mut bridge_args = vec!["qdisc", "replace", "dev", port.as_str(), "root", "tbf"];
            bridge_args.extend(tbf);
            must("tc tbf (bridge port)", tc_bridge(c, &bridge_args));
        }
        Kind::LinkDown => {
            lab.ip(host, ["link", "set", "dev", HOST_IF, "down"]);
        }
        Kind::VipDelete => {
            let vip = format!("{VIP}/24");
            let out = lab.try_run(host, "ip", ["addr", "del", vip.as_str(), "dev", HOST_IF]);
            if !out.status.success() {
                a.problems.push(format!(
                    "the VIP was not on host {host}, the master, to delete: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Kind::Reload => {
            let before = c.agent(host).log().matches(RELOAD_MESSAGE).count();
            if fault.param == 0 {
                let node = c.node_mut(host);
                node.priority = toggled_priority(host, node.priority);
            } else if let Some(r) = c.node_mut(host).redis.as_mut() {
                if r.redis_extra.contains(CHECK_TIMEOUT_LINE) {
                    r.redis_extra = r.redis_extra.replace(CHECK_TIMEOUT_LINE, "");
                } else {
                    r.redis_extra.push_str(CHECK_TIMEOUT_LINE);
                }
            }
            c.write_config(host);
            c.agent(host).signal(libc::SIGHUP);
            let agent = c.agent(host);
            let seen = wait_until(RELOAD_SEEN, Duration::from_millis(50), || {
                agent.log().matches(RELOAD_MESSAGE).count() > before || !agent.is_running()
            });
            if seen.is_none() || !agent.is_running() {
                a.problems.push(format!(
                    "host {host}'s agent did not log `{RELOAD_MESSAGE}` within {RELOAD_SEEN:?} \
                     of SIGHUP (running: {})",
                    agent.is_running()
                ));
            }
        }
    }
    a
}

/// Heals an [`Active`] fault: the process continued or started again, the
/// switch whole, the link clean and up.
pub fn heal(c: &mut Cluster<'_>, a: &mut Active) {
    let host = a.host;
    let lab = c.lab;
    match a.fault.kind {
        Kind::RedisKillEmpty => c.redis_mut(host).restart_empty(),
        Kind::RedisKillFiles => c.redis_mut(host).start_again(),
        Kind::RedisStop => {
            c.redis(host).proc().signal(libc::SIGCONT);
        }
        Kind::AgentStop => {
            c.agent(host).signal(libc::SIGCONT);
        }
        Kind::AgentKill | Kind::AgentTerm => c.start_agent(host),
        Kind::Partition => {
            lab.heal_split();
        }
        Kind::Loss => must(
            "nft delete table (loss)",
            lab.try_run(host, "nft", ["delete", "table", "inet", NFT_TABLE]),
        ),
        Kind::Delay => {
            must(
                "tc qdisc del (host)",
                lab.try_run(host, "tc", ["qdisc", "del", "dev", HOST_IF, "root"]),
            );
            let port = format!("p{host}");
            must(
                "tc qdisc del (bridge port)",
                tc_bridge(c, &["qdisc", "del", "dev", &port, "root"]),
            );
        }
        Kind::LinkDown => {
            lab.ip(host, ["link", "set", "dev", HOST_IF, "up"]);
            if wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
                lab.has_carrier(host)
            })
            .is_none()
            {
                panic!("soak: host {host}'s {HOST_IF} has no carrier 10 s after link up");
            }
        }
        Kind::VipDelete | Kind::Reload => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_toggle_on_their_side() {
        assert_eq!(toggled_priority(1, 150), 140);
        assert_eq!(toggled_priority(1, 140), 150);
        assert_eq!(toggled_priority(2, 100), 90);
        assert_eq!(toggled_priority(2, 90), 100);
    }

    #[test]
    fn the_loss_table_drops_on_eth0_only() {
        let s = nft_script(30);
        assert!(
            s.contains("iifname \"eth0\" numgen random mod 100 < 30 drop"),
            "{s}"
        );
        assert!(
            s.contains("oifname \"eth0\" numgen random mod 100 < 30 drop"),
            "{s}"
        );
    }
}
