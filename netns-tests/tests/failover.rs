//! Election and failover of redha nodes in network namespaces (invariants 1 and 7),
//! with VRRPv2 at 1 s and VRRPv3 at 100 ms.

use std::time::{Duration, Instant};

use netns_tests::redha::{self, MARGIN, Node, VIP};
use netns_tests::{Lab, require_netns, wait_until};

const POLL: Duration = Duration::from_millis(50);

/// Waits until exactly `host` holds the VIP; returns how long that took.
fn wait_sole_holder(lab: &Lab, host: usize, within: Duration) -> Duration {
    wait_until(within, POLL, || lab.holders(VIP) == [host]).unwrap_or_else(|| {
        panic!(
            "host {host} did not become the only VIP holder within {within:?}; holders: {:?}",
            lab.holders(VIP)
        )
    })
}

/// Asserts that `host` stays the only holder for `period`.
fn assert_stays_holder(lab: &Lab, host: usize, period: Duration) {
    let end = Instant::now() + period;
    while Instant::now() < end {
        assert_eq!(lab.holders(VIP), [host], "the VIP moved");
        std::thread::sleep(POLL);
    }
}

#[test]
fn the_higher_priority_is_elected() {
    if !require_netns("the_higher_priority_is_elected") {
        return;
    }
    let lab = Lab::new("elect", 2);
    let low = Node::with_priority(100);
    let high = Node::with_priority(150);
    let _a = redha::start(&lab, 1, &low);
    let _b = redha::start(&lab, 2, &high);
    // Both start in Backup; the higher one's Master_Down_Interval runs out first.
    wait_sole_holder(&lab, 2, high.master_down_interval() + MARGIN);
    assert_stays_holder(&lab, 2, low.master_down_interval() + MARGIN);
}

#[test]
fn nopreempt_keeps_the_first_master() {
    if !require_netns("nopreempt_keeps_the_first_master") {
        return;
    }
    let lab = Lab::new("nopre", 2);
    let first = Node {
        preempt: false,
        ..Node::with_priority(100)
    };
    let later = Node {
        preempt: false,
        ..Node::with_priority(150)
    };
    let _a = redha::start(&lab, 1, &first);
    wait_sole_holder(&lab, 1, first.master_down_interval() + MARGIN);
    let b = redha::start(&lab, 2, &later);
    assert_stays_holder(&lab, 1, later.master_down_interval() * 2 + MARGIN);
    assert!(b.log().contains("to=BACKUP"), "{}", b.log());
}

#[test]
fn preempt_lets_a_higher_priority_joiner_take_over() {
    if !require_netns("preempt_lets_a_higher_priority_joiner_take_over") {
        return;
    }
    let lab = Lab::new("preempt", 2);
    let first = Node::with_priority(100);
    let later = Node::with_priority(150);
    let _a = redha::start(&lab, 1, &first);
    wait_sole_holder(&lab, 1, first.master_down_interval() + MARGIN);
    let _b = redha::start(&lab, 2, &later);
    wait_sole_holder(&lab, 2, later.master_down_interval() + MARGIN);
}

#[test]
fn sigkill_of_the_master_fails_over_and_its_vip_expires() {
    if !require_netns("sigkill_of_the_master_fails_over_and_its_vip_expires") {
        return;
    }
    let lab = Lab::new("kill9", 2);
    let master = Node::with_priority(150);
    let backup = Node::with_priority(100);
    let a = redha::start(&lab, 1, &master);
    let _b = redha::start(&lab, 2, &backup);
    wait_sole_holder(&lab, 1, master.master_down_interval() + MARGIN);
    let lifetimes = lab
        .addr_lifetimes(1, VIP)
        .expect("the master holds the VIP");
    assert_ne!(
        lifetimes.0, "forever",
        "the VIP must carry a kernel lifetime: {lifetimes:?}"
    );

    let killed = Instant::now();
    a.kill();
    let (mut taken, mut gone) = (None, None);
    let deadline = killed + master.address_lease().max(backup.master_down_interval()) + MARGIN;
    while (taken.is_none() || gone.is_none()) && Instant::now() < deadline {
        if taken.is_none() && lab.has_addr(2, VIP) {
            taken = Some(killed.elapsed());
        }
        if gone.is_none() && !lab.has_addr(1, VIP) {
            gone = Some(killed.elapsed());
        }
        std::thread::sleep(POLL);
    }
    eprintln!("takeover after {taken:?}, killed VIP gone after {gone:?}");
    // The backup takes over within its Master_Down_Interval.
    let taken = taken.expect("the backup took over");
    assert!(
        taken <= backup.master_down_interval() + MARGIN,
        "takeover took {taken:?}"
    );
    // Invariant 7: the dead agent's VIP goes away by itself, within its lease.
    let gone = gone.unwrap_or_else(|| {
        panic!(
            "the killed master's VIP outlived its lease {:?}",
            master.address_lease()
        )
    });
    assert!(
        gone <= master.address_lease() + MARGIN,
        "the VIP lingered {gone:?}"
    );
    // Invariant 1: from then on, one holder only.
    assert_stays_holder(&lab, 2, Duration::from_secs(2));
}

#[test]
fn sigterm_of_the_master_hands_over_within_skew_time() {
    if !require_netns("sigterm_of_the_master_hands_over_within_skew_time") {
        return;
    }
    let lab = Lab::new("term", 2);
    let master = Node::with_priority(150);
    let backup = Node::with_priority(100);
    let a = redha::start(&lab, 1, &master);
    let _b = redha::start(&lab, 2, &backup);
    wait_sole_holder(&lab, 1, master.master_down_interval() + MARGIN);

    assert!(a.signal(libc::SIGTERM));
    let status = a
        .wait_exit(Duration::from_secs(5))
        .expect("redha exits on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(!lab.has_addr(1, VIP), "the VIP is removed on SIGTERM");
    // Priority 0 makes the backup take over after Skew_Time, not Master_Down_Interval.
    let taken = wait_sole_holder(&lab, 2, backup.skew_time() + MARGIN);
    eprintln!("takeover after SIGTERM: {taken:?}");
    assert!(a.log().contains("priority_zero_sent=1"), "{}", a.log());
}

#[test]
fn gratuitous_arp_moves_a_silent_clients_neighbour_entry() {
    if !require_netns("gratuitous_arp_moves_a_silent_clients_neighbour_entry") {
        return;
    }
    let lab = Lab::new("garp", 3);
    let master = Node::with_priority(150);
    let backup = Node::with_priority(100);
    let a = redha::start(&lab, 1, &master);
    let _b = redha::start(&lab, 2, &backup);
    wait_sole_holder(&lab, 1, master.master_down_interval() + MARGIN);
    // The client talks to the VIP once, so that it has a neighbour entry for it.
    assert!(lab.ping(3, VIP));
    assert_eq!(lab.neigh_mac(3, VIP), Some(lab.mac(1)));
    // Linux ignores an ARP update within locktime (1 s) of the last one.
    std::thread::sleep(Duration::from_millis(1100));

    assert!(a.signal(libc::SIGTERM));
    wait_sole_holder(&lab, 2, backup.skew_time() + MARGIN);
    // The client sends nothing; only the new master's gratuitous ARP can move it.
    let moved = wait_until(MARGIN, POLL, || lab.neigh_mac(3, VIP) == Some(lab.mac(2)));
    assert!(
        moved.is_some(),
        "the client's entry still says {:?}; new master is {}",
        lab.neigh_mac(3, VIP),
        lab.mac(2)
    );
}

/// Both nodes become master while apart; after the heal the one the RFC names (the
/// higher priority, or the higher address on a tie) keeps the VIP, even with
/// nopreempt, and a client's neighbour entry follows it.
fn partition_and_heal(tag: &str, priorities: [u8; 2], winner: usize) {
    let lab = Lab::new(tag, 3);
    let nodes = priorities.map(|p| Node {
        preempt: false,
        ..Node::with_priority(p)
    });
    let _a = redha::start(&lab, 1, &nodes[0]);
    wait_sole_holder(&lab, 1, nodes[0].master_down_interval() + MARGIN);
    let _b = redha::start(&lab, 2, &nodes[1]);
    assert_stays_holder(&lab, 1, Duration::from_secs(1));
    assert!(lab.ping(3, VIP));

    lab.detach(1);
    wait_until(nodes[1].master_down_interval() + MARGIN, POLL, || {
        lab.holders(VIP) == [1, 2]
    })
    .expect("both nodes hold the VIP while apart");
    wait_until(MARGIN, POLL, || lab.neigh_mac(3, VIP) == Some(lab.mac(2)))
        .expect("the client follows the master on its side");
    std::thread::sleep(Duration::from_millis(1100));

    lab.attach(1);
    // The first advert that crosses decides it: one advert interval, plus margin.
    let healed = wait_sole_holder(&lab, winner, nodes[0].advert_int + MARGIN);
    eprintln!("{tag}: one holder {healed:?} after the heal");
    assert_stays_holder(&lab, winner, Duration::from_secs(2));
    let mac = lab.mac(winner);
    wait_until(MARGIN, POLL, || lab.neigh_mac(3, VIP) == Some(mac.clone())).unwrap_or_else(|| {
        panic!(
            "the client's entry says {:?}, the master is {mac}",
            lab.neigh_mac(3, VIP)
        )
    });
}

#[test]
fn partition_heal_keeps_the_higher_priority() {
    if !require_netns("partition_heal_keeps_the_higher_priority") {
        return;
    }
    partition_and_heal("split", [150, 100], 1);
}

#[test]
fn partition_heal_on_equal_priority_keeps_the_higher_address() {
    if !require_netns("partition_heal_on_equal_priority_keeps_the_higher_address") {
        return;
    }
    partition_and_heal("splittie", [100, 100], 2);
}

#[test]
fn a_vip_left_by_an_earlier_run_is_removed_at_start() {
    if !require_netns("a_vip_left_by_an_earlier_run_is_removed_at_start") {
        return;
    }
    let lab = Lab::new("stale", 2);
    // An earlier run died and left its VIP (without a lifetime, as keepalived would).
    lab.run(
        2,
        "ip",
        ["addr", "add", &format!("{VIP}/24"), "dev", "eth0"],
    );
    assert!(lab.has_addr(2, VIP));
    let master = Node::with_priority(150);
    let _a = redha::start(&lab, 1, &master);
    let b = redha::start(&lab, 2, &Node::with_priority(100));
    // redha starts in Backup and must not answer for the address meanwhile.
    wait_until(Duration::from_secs(2), POLL, || !lab.has_addr(2, VIP))
        .expect("the stale VIP is removed at start");
    // The log line follows the removal: wait for it rather than race it.
    let said = wait_until(Duration::from_secs(2), POLL, || {
        b.log()
            .contains("removed a virtual address left on eth0 by an earlier run")
    });
    assert!(said.is_some(), "{}", b.log());
    wait_sole_holder(&lab, 1, master.master_down_interval() + MARGIN);
}

// ------------------------------------------------------------------ VRRPv3 at 100 ms
//
// Between two redha nodes: election, SIGKILL and SIGTERM takeovers, each within the
// bound of RFC 5798's timers (Master_Down_Interval = 3 x 100 ms + Skew_Time,
// Skew_Time = (256 - priority) x 100 ms / 256) plus margin.

const FAST: Duration = Duration::from_millis(100);
/// Polling for the 100 ms cases, fine enough to time their takeovers.
const FAST_POLL: Duration = Duration::from_millis(10);

fn node_at_100ms(priority: u8) -> Node {
    Node {
        priority,
        ..Node::v3(FAST)
    }
}

#[test]
fn v3_at_100ms_elects_the_higher_priority_and_holds() {
    if !require_netns("v3_at_100ms_elects_the_higher_priority_and_holds") {
        return;
    }
    let lab = Lab::new("v3elect", 2);
    let (low, high) = (node_at_100ms(100), node_at_100ms(150));
    let a = redha::start(&lab, 1, &low);
    let b = redha::start(&lab, 2, &high);
    wait_sole_holder(&lab, 2, high.master_down_interval() + MARGIN);
    // Host 1 may have been master for a moment before: started a little after it,
    // host 2's Master_Down_Interval can end after host 1's (they differ by 20 ms
    // of Skew_Time), and it then preempts. Once host 2 holds the VIP, host 1
    // must never take it again.
    let before = a.log().matches("to=MASTER").count();
    // Ten Master_Down_Intervals and more: no advert is missed for long enough to
    // move the VIP (the period holds at 100 ms).
    assert_stays_holder(&lab, 2, Duration::from_secs(5));
    assert_eq!(a.log().matches("to=MASTER").count(), before, "{}", a.log());
    assert!(!b.log().contains("dropped a VRRP packet"), "{}", b.log());
}

#[test]
fn v3_at_100ms_sigkill_is_taken_over_and_the_vip_expires() {
    if !require_netns("v3_at_100ms_sigkill_is_taken_over_and_the_vip_expires") {
        return;
    }
    let lab = Lab::new("v3kill", 2);
    let (master, backup) = (node_at_100ms(150), node_at_100ms(100));
    let a = redha::start(&lab, 1, &master);
    let _b = redha::start(&lab, 2, &backup);
    wait_sole_holder(&lab, 1, master.master_down_interval() + MARGIN);
    std::thread::sleep(Duration::from_secs(1));
    let killed = Instant::now();
    a.kill();
    let taken = wait_until(backup.master_down_interval() + MARGIN, FAST_POLL, || {
        lab.has_addr(2, VIP)
    })
    .expect("the backup takes over");
    wait_until(master.address_lease() + MARGIN, FAST_POLL, || {
        !lab.has_addr(1, VIP)
    })
    .expect("the killed master's VIP runs out of lease");
    let gone = killed.elapsed();
    assert!(
        gone <= master.address_lease() + MARGIN,
        "the VIP lingered {gone:?}"
    );
    eprintln!(
        "v3 100 ms: takeover {taken:?} (Master_Down_Interval {:?}), VIP gone {gone:?} after the kill (lease {:?})",
        backup.master_down_interval(),
        master.address_lease()
    );
    assert_stays_holder(&lab, 2, Duration::from_secs(1));
}

#[test]
fn v3_at_100ms_sigterm_hands_over_within_skew_time() {
    if !require_netns("v3_at_100ms_sigterm_hands_over_within_skew_time") {
        return;
    }
    let lab = Lab::new("v3term", 2);
    let (master, backup) = (node_at_100ms(150), node_at_100ms(100));
    let a = redha::start(&lab, 1, &master);
    let _b = redha::start(&lab, 2, &backup);
    wait_sole_holder(&lab, 1, master.master_down_interval() + MARGIN);
    assert!(a.signal(libc::SIGTERM));
    let status = a
        .wait_exit(Duration::from_secs(5))
        .expect("redha exits on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    let taken = wait_sole_holder(&lab, 2, backup.skew_time() + MARGIN);
    eprintln!(
        "v3 100 ms: takeover after SIGTERM {taken:?} (Skew_Time {:?})",
        backup.skew_time()
    );
}

/// The master's host busy on every core (two shell loops at the same priority as
/// redha): its adverts at 100 ms still leave on time, so the backup never takes
/// over and receives about one every 100 ms.
#[test]
fn v3_at_100ms_adverts_keep_their_period_on_a_busy_host() {
    if !require_netns("v3_at_100ms_adverts_keep_their_period_on_a_busy_host") {
        return;
    }
    let lab = Lab::new("v3busy", 2);
    let (master, backup) = (node_at_100ms(150), node_at_100ms(100));
    let _a = redha::start(&lab, 1, &master);
    let b = redha::start(&lab, 2, &backup);
    wait_sole_holder(&lab, 1, master.master_down_interval() + MARGIN);
    let before = redha::counters(&b)["adverts_received"];
    let _load: Vec<_> = (0..2)
        .map(|i| lab.spawn(1, &format!("busy{i}"), "sh", ["-c", "while :; do :; done"]))
        .collect();
    let span = Duration::from_secs(5);
    assert_stays_holder(&lab, 1, span);
    let received = redha::counters(&b)["adverts_received"] - before;
    let expected = (span.as_millis() / FAST.as_millis()) as u64;
    assert!(
        received * 10 >= expected * 9,
        "the backup received {received} adverts in {span:?} under load, {expected} expected"
    );
    assert!(!b.log().contains("to=MASTER"), "{}", b.log());
}
