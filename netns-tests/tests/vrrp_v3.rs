//! VRRPv3 over IPv4 at 100 ms adverts between two redha nodes: election, SIGKILL and
//! SIGTERM takeovers, each within the bound of RFC 5798's timers (Master_Down_Interval
//! = 3 x 100 ms + Skew_Time, Skew_Time = (256 - priority) x 100 ms / 256) plus margin.

use std::time::{Duration, Instant};

use netns_tests::redha::{self, MARGIN, Node, VIP};
use netns_tests::{Lab, require_netns, wait_until};

const POLL: Duration = Duration::from_millis(10);
const FAST: Duration = Duration::from_millis(100);

fn node(priority: u8) -> Node {
    Node {
        priority,
        ..Node::v3(FAST)
    }
}

fn wait_sole_holder(lab: &Lab, host: usize, within: Duration) -> Duration {
    wait_until(within, POLL, || lab.holders(VIP) == [host]).unwrap_or_else(|| {
        panic!(
            "host {host} did not become the only VIP holder within {within:?}; holders: {:?}",
            lab.holders(VIP)
        )
    })
}

fn assert_stays_holder(lab: &Lab, host: usize, period: Duration) {
    let end = Instant::now() + period;
    while Instant::now() < end {
        assert_eq!(lab.holders(VIP), [host], "the VIP moved");
        std::thread::sleep(POLL);
    }
}

#[test]
fn v3_at_100ms_elects_the_higher_priority_and_holds() {
    if !require_netns("v3_at_100ms_elects_the_higher_priority_and_holds") {
        return;
    }
    let lab = Lab::new("v3elect", 2);
    let (low, high) = (node(100), node(150));
    let a = redha::start(&lab, 1, &low);
    let b = redha::start(&lab, 2, &high);
    wait_sole_holder(&lab, 2, high.master_down_interval() + MARGIN);
    // Ten Master_Down_Intervals and more: no advert is missed for long enough to
    // move the VIP (the period holds at 100 ms).
    assert_stays_holder(&lab, 2, Duration::from_secs(5));
    assert_eq!(a.log().matches("to=MASTER").count(), 0, "{}", a.log());
    assert!(!b.log().contains("dropped a VRRP packet"), "{}", b.log());
}

#[test]
fn v3_at_100ms_sigkill_is_taken_over_and_the_vip_expires() {
    if !require_netns("v3_at_100ms_sigkill_is_taken_over_and_the_vip_expires") {
        return;
    }
    let lab = Lab::new("v3kill", 2);
    let (master, backup) = (node(150), node(100));
    let a = redha::start(&lab, 1, &master);
    let _b = redha::start(&lab, 2, &backup);
    wait_sole_holder(&lab, 1, master.master_down_interval() + MARGIN);
    std::thread::sleep(Duration::from_secs(1));
    let killed = Instant::now();
    a.kill();
    let taken = wait_until(backup.master_down_interval() + MARGIN, POLL, || {
        lab.has_addr(2, VIP)
    })
    .expect("the backup takes over");
    wait_until(master.address_lease() + MARGIN, POLL, || {
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
    let (master, backup) = (node(150), node(100));
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
