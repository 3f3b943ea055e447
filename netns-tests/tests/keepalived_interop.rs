//! redha and Debian's keepalived on one VRID: the right master both ways round,
//! failover both ways, and no complaint on either side about the other's packets.

use std::time::Duration;

use netns_tests::redha::{self, MARGIN, Node, VIP};
use netns_tests::{Lab, Proc, keepalived, require_netns, wait_until};

const POLL: Duration = Duration::from_millis(50);

fn wait_sole_holder(lab: &Lab, host: usize, within: Duration, what: &str) {
    wait_until(within, POLL, || lab.holders(VIP) == [host]).unwrap_or_else(|| {
        panic!(
            "{what}: host {host} is not the only VIP holder after {within:?}; holders: {:?}",
            lab.holders(VIP)
        )
    });
}

fn assert_no_complaints(keepalived: &Proc, redha: &Proc) {
    let complaints = keepalived::complaints(&keepalived.log());
    assert!(
        complaints.is_empty(),
        "keepalived complained about our packets: {complaints:#?}"
    );
    let log = redha.log();
    assert!(
        !log.contains("dropped a VRRP packet"),
        "redha dropped keepalived's packets:\n{log}"
    );
}

fn stop(proc: &Proc) {
    assert!(proc.signal(libc::SIGTERM));
    assert!(
        proc.wait_exit(Duration::from_secs(10)).is_some(),
        "{} did not stop",
        proc.name()
    );
}

/// Host 1 runs redha, host 2 keepalived; `redha_first` says which has the higher
/// priority. The higher one is elected, a SIGTERM moves the VIP to the other within
/// Skew_Time, and the higher one takes it back (preempt) when restarted.
fn elect_and_fail_over(tag: &str, redha_first: bool, common: Node) {
    let lab = Lab::new(tag, 2);
    let (p_redha, p_ka) = if redha_first { (150, 100) } else { (100, 150) };
    let r_node = Node {
        priority: p_redha,
        ..common.clone()
    };
    let k_node = Node {
        priority: p_ka,
        ..common.clone()
    };
    let (winner, loser) = if redha_first { (1, 2) } else { (2, 1) };
    let (winner_node, loser_node) = if redha_first {
        (&r_node, &k_node)
    } else {
        (&k_node, &r_node)
    };

    let r = redha::start(&lab, 1, &r_node);
    let k = keepalived::start(&lab, 2, &k_node);
    wait_sole_holder(
        &lab,
        winner,
        winner_node.master_down_interval() + MARGIN,
        "election",
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lab.holders(VIP), [winner], "the election did not hold");

    // Planned stop of the master: the other takes over after its Skew_Time.
    let restarted = if redha_first {
        stop(&r);
        wait_sole_holder(
            &lab,
            loser,
            loser_node.skew_time() + MARGIN,
            "SIGTERM of redha",
        );
        assert!(k.log().contains("Entering MASTER STATE"), "{}", k.log());
        redha::start(&lab, 1, &r_node)
    } else {
        stop(&k);
        wait_sole_holder(
            &lab,
            loser,
            loser_node.skew_time() + MARGIN,
            "SIGTERM of keepalived",
        );
        keepalived::start(&lab, 2, &k_node)
    };
    // The higher priority comes back and preempts.
    wait_sole_holder(
        &lab,
        winner,
        winner_node.master_down_interval() + MARGIN,
        "preemption",
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lab.holders(VIP), [winner]);
    let (k_proc, r_proc) = if redha_first {
        (&k, &restarted)
    } else {
        (&restarted, &r)
    };
    assert_no_complaints(k_proc, r_proc);
    assert_no_complaints(&k, &r);
}

#[test]
fn redha_master_keepalived_backup() {
    if !require_netns("redha_master_keepalived_backup") {
        return;
    }
    elect_and_fail_over("ka-r1", true, Node::default());
}

#[test]
fn keepalived_master_redha_backup_with_password() {
    if !require_netns("keepalived_master_redha_backup_with_password") {
        return;
    }
    let common = Node {
        auth_pass: Some("secret12".into()),
        ..Node::default()
    };
    elect_and_fail_over("ka-k1", false, common);
}

#[test]
fn sigkill_fails_over_both_ways_in_unicast() {
    if !require_netns("sigkill_fails_over_both_ways_in_unicast") {
        return;
    }
    sigkill_both_ways_in_unicast("ka-kill", Node::default());
}

/// redha (host 1, priority 150) and keepalived (host 2, 100) in unicast with
/// `common`'s settings: a SIGKILLed redha is taken over within keepalived's
/// Master_Down_Interval and its VIP runs out of lease; redha restarted below
/// keepalived stays backup, and takes over from a SIGKILLed keepalived.
fn sigkill_both_ways_in_unicast(tag: &str, common: Node) {
    let lab = Lab::new(tag, 2);
    let r_node = Node {
        unicast_peers: vec![lab.addr(2).into()],
        priority: 150,
        ..common.clone()
    };
    let k_node = Node {
        unicast_peers: vec![lab.addr(1).into()],
        priority: 100,
        ..common
    };
    let r = redha::start(&lab, 1, &r_node);
    let k = keepalived::start(&lab, 2, &k_node);
    wait_sole_holder(&lab, 1, r_node.master_down_interval() + MARGIN, "election");

    // redha crashes: keepalived takes over after its Master_Down_Interval, and the
    // crashed node's VIP runs out of lease.
    r.kill();
    wait_until(k_node.master_down_interval() + MARGIN, POLL, || {
        lab.has_addr(2, VIP)
    })
    .expect("keepalived takes over from a killed redha");
    wait_sole_holder(
        &lab,
        2,
        r_node.address_lease() + MARGIN,
        "lease of the killed redha",
    );

    // redha comes back with a priority below keepalived's, so that it stays backup;
    // then keepalived crashes (both of its processes, so that none says goodbye).
    let r_node = Node {
        priority: 50,
        ..r_node
    };
    let r = redha::start(&lab, 1, &r_node);
    std::thread::sleep(r_node.master_down_interval() + Duration::from_secs(1));
    assert_eq!(
        lab.holders(VIP),
        [2],
        "redha with the lower priority stays backup"
    );
    keepalived::crash(&lab, 2, &k);
    wait_until(r_node.master_down_interval() + MARGIN, POLL, || {
        lab.has_addr(1, VIP)
    })
    .expect("redha takes over from a killed keepalived");
    assert_no_complaints(&k, &r);
}

// ------------------------------------------------------------------ VRRPv3

/// VRRPv3 over IPv4, multicast, at 1 s and 100 ms adverts: each side elected in turn,
/// a SIGTERM hands over within Skew_Time, and nobody complains about the other's
/// packets (keepalived computes the checksum with the pseudo-header, as redha).
#[test]
fn v3_redha_master_keepalived_backup_at_1s_and_100ms() {
    if !require_netns("v3_redha_master_keepalived_backup_at_1s_and_100ms") {
        return;
    }
    for (tag, ms) in [("ka3-r1", 1000), ("ka3-r01", 100)] {
        elect_and_fail_over(tag, true, Node::v3(Duration::from_millis(ms)));
    }
}

#[test]
fn v3_keepalived_master_redha_backup_at_1s_and_100ms() {
    if !require_netns("v3_keepalived_master_redha_backup_at_1s_and_100ms") {
        return;
    }
    for (tag, ms) in [("ka3-k1", 1000), ("ka3-k01", 100)] {
        elect_and_fail_over(tag, false, Node::v3(Duration::from_millis(ms)));
    }
}

/// VRRPv3 in unicast at 100 ms and 1 s: SIGKILL of either side is taken over within the
/// other's Master_Down_Interval (the pseudo-header then holds the peer's address).
#[test]
fn v3_sigkill_fails_over_both_ways_in_unicast_at_100ms_and_1s() {
    if !require_netns("v3_sigkill_fails_over_both_ways_in_unicast_at_100ms_and_1s") {
        return;
    }
    sigkill_both_ways_in_unicast("ka3-kill", Node::v3(Duration::from_millis(100)));
    sigkill_both_ways_in_unicast("ka3-kill1", Node::v3(Duration::from_secs(1)));
}
