//! Election and failover of redha nodes in network namespaces (invariants 1 and 7).

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
    let lifetimes = lab.addr_lifetimes(1, VIP).expect("the master holds the VIP");
    assert_ne!(lifetimes.0, "forever", "the VIP must carry a kernel lifetime: {lifetimes:?}");

    let killed = Instant::now();
    a.kill();
    // Invariant 7: the dead agent's VIP goes away by itself, within the lease.
    let gone = wait_until(master.address_lease() + MARGIN, POLL, || !lab.has_addr(1, VIP))
        .unwrap_or_else(|| panic!("the killed master's VIP outlived its lease {:?}", master.address_lease()));
    // The backup takes over within its Master_Down_Interval.
    let taken = wait_until(backup.master_down_interval() + MARGIN, POLL, || lab.has_addr(2, VIP))
        .expect("the backup took over");
    eprintln!("takeover after {:?}, killed VIP gone after {:?}", taken, gone);
    assert!(killed.elapsed() <= master.address_lease() + backup.master_down_interval() + MARGIN * 2);
    // Invariant 1: once the lease is over, one holder only.
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
    let status = a.wait_exit(Duration::from_secs(5)).expect("redha exits on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(!lab.has_addr(1, VIP), "the VIP is removed on SIGTERM");
    // Priority 0 makes the backup take over after Skew_Time, not Master_Down_Interval.
    let taken = wait_sole_holder(&lab, 2, backup.skew_time() + MARGIN);
    eprintln!("takeover after SIGTERM: {taken:?}");
    assert!(a.log().contains("priority_zero_sent=1"), "{}", a.log());
}
