//! Several instances in one agent (named instances, issue 9): each has its own
//! router, health check, planner and VIP; one Redis down moves only its own VIP and
//! replication; a reload that adds an instance leaves the others untouched; many
//! VRRP-only instances elect and fail over together.
//!
//! Bounds come from protocol math: Master_Down_Interval (3 x advert_int +
//! Skew_Time), `fall` x `check_interval` for a Redis that stops answering (a killed
//! one counts at once), `rise` x `check_interval` to join, plus [`MARGIN`].

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use netns_tests::holder_watch::HolderWatch;
use netns_tests::pair::{replication, require};
use netns_tests::procstat::cpu_seconds;
use netns_tests::redha::{MARGIN, Node, control_socket, start_file};
use netns_tests::redis::{RedisNode, RedisOpts};
use netns_tests::{Lab, Proc, redha_bin, require_netns, wait_until};

const POLL: Duration = Duration::from_millis(50);

/// One instance of a host's file.
#[derive(Clone)]
struct Instance {
    name: &'static str,
    vrid: u8,
    vip: String,
    priority: u8,
    /// With `[redis]` and `[replication]` on this port (the peer's Redis on the same
    /// port of the other host).
    redis_port: Option<u16>,
    preempt: bool,
}

impl Instance {
    fn vrrp(name: &'static str, vrid: u8, vip: &str, priority: u8) -> Instance {
        Instance {
            name,
            vrid,
            vip: vip.to_string(),
            priority,
            redis_port: None,
            preempt: true,
        }
    }

    fn nopreempt(mut self) -> Instance {
        self.preempt = false;
        self
    }

    fn redis(mut self, port: u16) -> Instance {
        self.redis_port = Some(port);
        self
    }
}

/// Host `i`'s file of named instances, its peer the other of hosts 1 and 2.
fn write_file(lab: &Lab, i: usize, instances: &[Instance]) -> PathBuf {
    write_file_with(lab, i, instances, "")
}

/// [`write_file`] with `more` appended (`[sync_groups]`).
fn write_file_with(lab: &Lab, i: usize, instances: &[Instance], more: &str) -> PathBuf {
    let peer = lab.addr(3 - i);
    let dir = lab.dir().display().to_string();
    let mut s = format!(
        "[control]\nsocket = {:?}\n",
        control_socket(lab, i).display().to_string()
    );
    for x in instances {
        let name = x.name;
        let _ = write!(
            s,
            "\n[instances.{name}.vrrp]\ninterface = \"eth0\"\nvirtual_router_id = {}\npriority = {}\nadvert_int = \"1s\"\npreempt = {}\nvirtual_ipaddresses = [\"{}/24\"]\n",
            x.vrid, x.priority, x.preempt, x.vip
        );
        if let Some(port) = x.redis_port {
            let _ = write!(
                s,
                "[instances.{name}.redis]\naddress = \"127.0.0.1:{port}\"\n\
                 [instances.{name}.replication]\npeer = \"{peer}:{port}\"\nstate_dir = \"{dir}/state-h{i}-{name}.d\"\n\
                 [instances.{name}.state_log]\npath = \"{dir}/state-h{i}-{name}.log\"\n"
            );
        }
    }
    s.push_str(more);
    let path = lab.dir().join(format!("redha-h{i}.toml"));
    std::fs::write(&path, s).expect("write the file");
    path
}

/// Starts redha on host `i` with its file of named instances.
fn start(lab: &Lab, i: usize, instances: &[Instance]) -> Proc {
    start_file(lab, i, &write_file(lab, i, instances), &[])
}

/// Transitions of instance `name` in an agent's log.
fn transitions(agent: &Proc, name: &str) -> usize {
    agent
        .log()
        .matches(&format!("VRRP transition instance={name} "))
        .count()
}

/// `redha status --json [NAME]` against host `i`'s agent.
fn status(lab: &Lab, i: usize, name: Option<&str>) -> serde_json::Value {
    let socket = control_socket(lab, i);
    let mut command = Command::new(redha_bin());
    command.args(["status", "--json", "--socket"]).arg(&socket);
    command.args(name);
    let out = command.output().expect("run redha status");
    assert!(
        out.status.success(),
        "redha status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON status")
}

/// The host whose Redis on `port` is master, the other's its replica with the link
/// up, and the only holder of `vip`; else what is missing.
fn settled(lab: &Lab, redis: &[&RedisNode<'_>; 2], vip: &str) -> Result<usize, String> {
    let holders = lab.holders(vip);
    let &[master] = holders.as_slice() else {
        return Err(format!("{vip} holders {holders:?}"));
    };
    let m = replication(redis[master - 1])?;
    if m.get("role").map(String::as_str) != Some("master") {
        return Err(format!("host {master} holds {vip}, its Redis is {m:?}"));
    }
    let r = replication(redis[2 - master])?;
    let want = lab.addr(master).to_string();
    if r.get("master_host") != Some(&want)
        || r.get("master_link_status").map(String::as_str) != Some("up")
    {
        return Err(format!("the other Redis of {vip} is {r:?}"));
    }
    Ok(master)
}

#[test]
fn two_redis_instances_per_host_fail_over_on_their_own() {
    let test = "two_redis_instances_per_host_fail_over_on_their_own";
    if !require(test) {
        return;
    }
    let lab = Arc::new(Lab::new("twoinst", 2));
    let opts = |port| RedisOpts::default().port(port);
    let mut a1 = RedisNode::start(&lab, 1, opts(6379));
    let a2 = RedisNode::start(&lab, 2, opts(6379));
    let b1 = RedisNode::start(&lab, 1, opts(6380));
    let b2 = RedisNode::start(&lab, 2, opts(6380));
    let (vip_a, vip_b) = ("192.0.2.100", "192.0.2.101");
    // Host 1 prefers instance "a", host 2 instance "b".
    let file = |i: usize| {
        let (pa, pb) = if i == 1 { (150, 100) } else { (100, 150) };
        [
            Instance::vrrp("a", 51, vip_a, pa).redis(6379),
            Instance::vrrp("b", 52, vip_b, pb).redis(6380),
        ]
    };
    let h1 = start(&lab, 1, &file(1));
    let h2 = start(&lab, 2, &file(2));
    let node = Node::with_priority(100);
    // Both Redis seen healthy (rise 2 x 1 s), then Master_Down_Interval, then the
    // first sync.
    let settle = Duration::from_secs(2) + node.master_down_interval() + MARGIN * 4;
    let mut last = String::new();
    let ready = wait_until(settle, POLL, || {
        match (
            settled(&lab, &[&a1, &a2], vip_a),
            settled(&lab, &[&b1, &b2], vip_b),
        ) {
            (Ok(1), Ok(2)) => true,
            other => {
                last = format!("{other:?}");
                false
            }
        }
    });
    assert!(
        ready.is_some(),
        "no settled pairs (a on host 1, b on host 2) within {settle:?}: {last}\n--- host 1:\n{}\n--- host 2:\n{}",
        h1.log(),
        h2.log()
    );

    // The status lists both instances; one by name.
    let all = status(&lab, 1, None);
    let names: BTreeSet<&str> = all["instances"]
        .as_array()
        .expect("a list of instances")
        .iter()
        .filter_map(|d| d["instance"].as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["a", "b"]), "{all}");
    let b = status(&lab, 2, Some("b"));
    assert_eq!(b["instance"], "b", "{b}");
    assert_eq!(b["vrrp"]["state"], "MASTER", "{b}");

    // Instance a's Redis killed on host 1: a's VIP and replication move to host 2;
    // b's VIP stays on host 2 throughout and its agents see no transition.
    let b_transitions = (transitions(&h1, "b"), transitions(&h2, "b"));
    let watch = HolderWatch::start(&lab, vip_b, vec![2], POLL);
    a1.kill();
    let takeover = node.master_down_interval() + MARGIN * 2;
    let moved = wait_until(takeover, POLL, || {
        lab.holders(vip_a) == [2]
            && replication(&a2).is_ok_and(|r| r.get("role").map(String::as_str) == Some("master"))
    });
    assert!(
        moved.is_some(),
        "a's VIP and Redis did not move to host 2 within {takeover:?}\n--- host 1:\n{}\n--- host 2:\n{}",
        h1.log(),
        h2.log()
    );
    // Restarted (empty), host 1's Redis of a follows host 2's.
    a1.start_again();
    let rejoin = Duration::from_secs(2) + MARGIN * 4;
    let rejoined = wait_until(rejoin, POLL, || settled(&lab, &[&a1, &a2], vip_a) == Ok(2));
    assert!(
        rejoined.is_some(),
        "host 1's Redis of a did not rejoin as a replica within {rejoin:?}: {:?}\n--- host 1:\n{}",
        settled(&lab, &[&a1, &a2], vip_a),
        h1.log()
    );
    let (samples, bad) = watch.finish();
    assert!(
        bad.is_empty(),
        "b's VIP left host 2 in {} of {samples} samples: {bad:?}",
        bad.len()
    );
    assert_eq!(
        (transitions(&h1, "b"), transitions(&h2, "b")),
        b_transitions,
        "instance b changed state\n--- host 1:\n{}\n--- host 2:\n{}",
        h1.log(),
        h2.log()
    );
    assert_eq!(settled(&lab, &[&b1, &b2], vip_b), Ok(2));
    // Neither agent took the other instance's adverts for its own to drop.
    for agent in [&h1, &h2] {
        assert!(!agent.log().contains("reason=vrid"), "{}", agent.log());
    }
}

#[test]
fn a_sync_group_moves_together_when_its_redis_fails() {
    let test = "a_sync_group_moves_together_when_its_redis_fails";
    if !require(test) {
        return;
    }
    let lab = Arc::new(Lab::new("syncgrp", 2));
    let mut r1 = RedisNode::start(&lab, 1, RedisOpts::default());
    let r2 = RedisNode::start(&lab, 2, RedisOpts::default());
    let (vip, vip2) = ("192.0.2.100", "192.0.2.101");
    // "cache" watches the Redis; "cache2", a second VIP for it, has no [redis]:
    // the group carries the Redis state to it.
    let file = |i: usize| {
        let p = if i == 1 { 150 } else { 100 };
        [
            Instance::vrrp("cache", 51, vip, p).redis(6379).nopreempt(),
            Instance::vrrp("cache2", 52, vip2, p).nopreempt(),
        ]
    };
    let group = "\n[sync_groups]\ncache = [\"cache\", \"cache2\"]\n";
    let h1 = start_file(&lab, 1, &write_file_with(&lab, 1, &file(1), group), &[]);
    let h2 = start_file(&lab, 2, &write_file_with(&lab, 2, &file(2), group), &[]);
    let node = Node::with_priority(100);
    let settle = Duration::from_secs(2) + node.master_down_interval() + MARGIN * 4;
    let ready = wait_until(settle, POLL, || {
        settled(&lab, &[&r1, &r2], vip) == Ok(1) && lab.holders(vip2) == [1]
    });
    assert!(
        ready.is_some(),
        "host 1 did not hold the group within {settle:?}: {:?}, {vip2} on {:?}\n--- host 1:\n{}",
        settled(&lab, &[&r1, &r2], vip),
        lab.holders(vip2),
        h1.log()
    );
    // Host 1's Redis killed: "cache" goes to FAULT for its Redis, "cache2" for the
    // group, and host 2 takes both (a killed Redis counts at once; then Skew_Time
    // after the priority-0 adverts).
    r1.kill();
    let takeover = node.master_down_interval() + MARGIN * 2;
    let moved = wait_until(takeover, POLL, || {
        lab.holders(vip) == [2] && lab.holders(vip2) == [2]
    });
    assert!(
        moved.is_some(),
        "the group did not move to host 2 within {takeover:?}: {vip} on {:?}, {vip2} on {:?}\n--- host 1:\n{}",
        lab.holders(vip),
        lab.holders(vip2),
        h1.log()
    );
    assert!(
        h1.log().contains("sync group cache: cache in FAULT"),
        "{}",
        h1.log()
    );
    // Its Redis back (empty), host 1 follows host 2 in both: the group's fault is
    // lifted, neither instance takes its VIP back (nopreempt).
    r1.start_again();
    let rejoin = Duration::from_secs(2) + MARGIN * 4;
    let rejoined = wait_until(rejoin, POLL, || {
        settled(&lab, &[&r1, &r2], vip) == Ok(2)
            && status(&lab, 1, Some("cache2"))["vrrp"]["state"] == "BACKUP"
    });
    assert!(
        rejoined.is_some(),
        "host 1 did not rejoin as backup within {rejoin:?}: {:?}\n--- host 1:\n{}",
        settled(&lab, &[&r1, &r2], vip),
        h1.log()
    );
    let watch = HolderWatch::start(&lab, vip2, vec![2], POLL);
    std::thread::sleep(Duration::from_secs(2));
    let (samples, bad) = watch.finish();
    assert!(
        bad.is_empty(),
        "{vip2} moved in {} of {samples} samples: {bad:?}",
        bad.len()
    );
    assert_eq!(lab.holders(vip), [2]);
    assert!(h2.is_running() && h1.is_running());
}

#[test]
fn a_reload_that_adds_an_instance_leaves_the_others_untouched() {
    let test = "a_reload_that_adds_an_instance_leaves_the_others_untouched";
    if !require_netns(test) {
        return;
    }
    let lab = Arc::new(Lab::new("addinst", 2));
    let file = |i: usize, with_c: bool| {
        let p = if i == 1 { 150 } else { 100 };
        let mut v = vec![
            Instance::vrrp("a", 51, "192.0.2.100", p),
            Instance::vrrp("b", 52, "192.0.2.101", p),
        ];
        if with_c {
            v.push(Instance::vrrp("c", 53, "192.0.2.102", p));
        }
        v
    };
    let h1 = start(&lab, 1, &file(1, false));
    let h2 = start(&lab, 2, &file(2, false));
    let node = Node::with_priority(150);
    let elect = node.master_down_interval() + MARGIN;
    let held = wait_until(elect, POLL, || {
        lab.holders("192.0.2.100") == [1] && lab.holders("192.0.2.101") == [1]
    });
    assert!(held.is_some(), "host 1 holds neither VIP:\n{}", h1.log());
    let before = [
        transitions(&h1, "a"),
        transitions(&h1, "b"),
        transitions(&h2, "a"),
        transitions(&h2, "b"),
    ];
    let watches = [
        HolderWatch::start(&lab, "192.0.2.100", vec![1], POLL),
        HolderWatch::start(&lab, "192.0.2.101", vec![1], POLL),
    ];
    write_file(&lab, 1, &file(1, true));
    write_file(&lab, 2, &file(2, true));
    assert!(h1.signal(libc::SIGHUP) && h2.signal(libc::SIGHUP));
    let added = wait_until(elect + MARGIN, POLL, || lab.holders("192.0.2.102") == [1]);
    assert!(
        added.is_some(),
        "the added instance c did not elect host 1:\n{}",
        h1.log()
    );
    // Two more advert intervals with everything in place.
    std::thread::sleep(Duration::from_secs(2));
    for watch in watches {
        let (samples, bad) = watch.finish();
        assert!(
            samples > 20 && bad.is_empty(),
            "{samples} samples, bad: {bad:?}"
        );
    }
    let after = [
        transitions(&h1, "a"),
        transitions(&h1, "b"),
        transitions(&h2, "a"),
        transitions(&h2, "b"),
    ];
    assert_eq!(before, after, "a or b changed state:\n{}", h1.log());
    for agent in [&h1, &h2] {
        let log = agent.log();
        assert!(log.contains("SIGHUP: instance added and started"), "{log}");
        assert!(!log.contains("reason=vrid"), "{log}");
        assert!(agent.is_running());
    }
}

/// The VIPs of `n` instances: 192.0.2.100 and up.
fn many_vips(n: u8) -> Vec<String> {
    (0..n).map(|k| format!("192.0.2.{}", 100 + k)).collect()
}

/// How many of `vips` host `i` holds.
fn held(lab: &Lab, i: usize, vips: &[IpAddr]) -> usize {
    let on = lab.addrs(i);
    vips.iter().filter(|v| on.contains(v)).count()
}

#[test]
fn a_hundred_and_fifty_vrrp_instances_elect_and_fail_over() {
    let test = "a_hundred_and_fifty_vrrp_instances_elect_and_fail_over";
    if !require_netns(test) {
        return;
    }
    const N: u8 = 150;
    let lab = Lab::new("many", 2);
    let names: Vec<&'static str> = (1..=N)
        .map(|k| &*Box::leak(format!("i{k}").into_boxed_str()))
        .collect();
    let vips = many_vips(N);
    let file = |priority: u8| -> Vec<Instance> {
        (0..usize::from(N))
            .map(|k| Instance::vrrp(names[k], k as u8 + 1, &vips[k], priority))
            .collect()
    };
    let addrs: Vec<IpAddr> = vips.iter().map(|v| v.parse().unwrap()).collect();
    let h1 = start(&lab, 1, &file(150));
    let h2 = start(&lab, 2, &file(100));
    let node = Node::with_priority(100);
    // Starting 150 instances takes a moment of its own; then Master_Down_Interval.
    let elect = node.master_down_interval() + MARGIN * 4;
    let all = wait_until(elect, Duration::from_millis(100), || {
        held(&lab, 1, &addrs) == usize::from(N) && held(&lab, 2, &addrs) == 0
    });
    assert!(
        all.is_some(),
        "host 1 holds {} of {N} VIPs and host 2 {} after {elect:?}:\n{}",
        held(&lab, 1, &addrs),
        held(&lab, 2, &addrs),
        h1.log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // What the agents cost while they hold still, for the log (the benchmark
    // measures it in release builds).
    let (c1, c2) = (cpu_seconds(&[h1.pid()]), cpu_seconds(&[h2.pid()]));
    std::thread::sleep(Duration::from_secs(5));
    eprintln!(
        "{test}: CPU over 5 s with {N} instances: master {:.0} %, backup {:.0} % of a core",
        (cpu_seconds(&[h1.pid()]) - c1) / 5.0 * 100.0,
        (cpu_seconds(&[h2.pid()]) - c2) / 5.0 * 100.0
    );
    assert!(h1.signal(libc::SIGKILL));
    let takeover = node.master_down_interval() + MARGIN * 2;
    let taken = wait_until(takeover, Duration::from_millis(100), || {
        held(&lab, 2, &addrs) == usize::from(N)
    });
    assert!(
        taken.is_some(),
        "host 2 holds {} of {N} VIPs {takeover:?} after host 1's agent was killed:\n{}",
        held(&lab, 2, &addrs),
        h2.log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The killed agent's VIPs expire with their lease.
    let lease = node.address_lease() + MARGIN;
    let expired = wait_until(lease, Duration::from_millis(100), || {
        held(&lab, 1, &addrs) == 0
    });
    assert!(
        expired.is_some(),
        "host 1 still holds {} VIPs {lease:?} after its agent died",
        held(&lab, 1, &addrs)
    );
    assert!(h2.is_running());
    assert!(!h2.log().contains("reason=vrid"));
}
