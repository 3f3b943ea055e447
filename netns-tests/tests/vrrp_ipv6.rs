//! VRRPv3 over IPv6 in network namespaces: redha pairs at 100 ms (election, the VIP
//! usable at once, SIGKILL and its lease, a client's neighbour entry moved by an
//! unsolicited Neighbor Advertisement) and interop with keepalived 2.2.7, multicast
//! and unicast, both ways round. Addresses: link-local, and 2001:db8::/64 inside
//! the lab only.

use std::net::{SocketAddrV6, UdpSocket};
use std::time::{Duration, Instant};

use netns_tests::redha::{self, MARGIN, Node, VIP6};
use netns_tests::{Lab, Proc, keepalived, require_netns, wait_until};

const POLL: Duration = Duration::from_millis(20);
const FAST: Duration = Duration::from_millis(100);

fn node(priority: u8, advert_int: Duration) -> Node {
    Node {
        priority,
        ..Node::v6(advert_int)
    }
}

fn wait_sole_holder(lab: &Lab, host: usize, within: Duration, what: &str) -> Duration {
    wait_until(within, POLL, || lab.holders(VIP6) == [host]).unwrap_or_else(|| {
        panic!(
            "{what}: host {host} is not the only holder of {VIP6} (non-tentative) after {within:?}; holders: {:?}",
            lab.holders(VIP6)
        )
    })
}

#[test]
fn ipv6_at_100ms_elects_and_the_vip_is_usable_at_once() {
    if !require_netns("ipv6_at_100ms_elects_and_the_vip_is_usable_at_once") {
        return;
    }
    let lab = Lab::with_ipv6("v6elect", 2);
    let (low, high) = (node(100, FAST), node(150, FAST));
    let a = redha::start(&lab, 1, &low);
    let b = redha::start(&lab, 2, &high);
    // `holders` counts only addresses that are not tentative: added without DAD.
    wait_sole_holder(&lab, 2, high.master_down_interval() + MARGIN, "election");
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        assert_eq!(lab.holders(VIP6), [2], "the VIP moved");
        std::thread::sleep(POLL);
    }
    let lifetimes = lab.addr_lifetimes(2, VIP6).expect("host 2 holds the VIP");
    assert_ne!(
        lifetimes.0, "forever",
        "the IPv6 VIP carries a lifetime: {lifetimes:?}"
    );
    for p in [&a, &b] {
        assert!(!p.log().contains("dropped a VRRP packet"), "{}", p.log());
    }
    assert!(b.log().contains("to=MASTER"), "{}", b.log());
}

/// SIGKILL of the IPv6 master: the backup takes over within Master_Down_Interval,
/// the dead master's VIP goes once its lease runs out, and a client that talked to
/// the VIP has its neighbour entry moved to the new master by the unsolicited
/// Neighbor Advertisement.
#[test]
fn ipv6_sigkill_takeover_lease_and_neighbour_entry() {
    if !require_netns("ipv6_sigkill_takeover_lease_and_neighbour_entry") {
        return;
    }
    let lab = Lab::with_ipv6("v6kill", 3);
    let (master, backup) = (node(150, FAST), node(100, FAST));
    let a = redha::start(&lab, 1, &master);
    let _b = redha::start(&lab, 2, &backup);
    wait_sole_holder(&lab, 1, master.master_down_interval() + MARGIN, "election");
    // The client sends one datagram to the VIP: it resolves the VIP's neighbour.
    let vip: std::net::Ipv6Addr = VIP6.parse().unwrap();
    lab.in_host(3, || {
        let s = UdpSocket::bind("[::]:0").expect("udp");
        s.send_to(b"x", SocketAddrV6::new(vip, 9, 0, 0))
            .expect("send to the VIP");
    });
    wait_until(MARGIN, POLL, || lab.neigh_mac(3, VIP6) == Some(lab.mac(1)))
        .expect("the client's neighbour entry names host 1");
    std::thread::sleep(Duration::from_millis(1100));
    let killed = Instant::now();
    a.kill();
    let taken = wait_until(backup.master_down_interval() + MARGIN, POLL, || {
        lab.has_addr(2, VIP6)
    })
    .expect("the backup takes over");
    wait_until(master.address_lease() + MARGIN, POLL, || {
        !lab.has_addr(1, VIP6)
    })
    .expect("the killed master's IPv6 VIP runs out of lease");
    let gone = killed.elapsed();
    let moved = wait_until(MARGIN, POLL, || lab.neigh_mac(3, VIP6) == Some(lab.mac(2)));
    assert!(
        moved.is_some(),
        "the client's neighbour entry still says {:?}; the new master is {}",
        lab.neigh_mac(3, VIP6),
        lab.mac(2)
    );
    eprintln!("IPv6 100 ms: takeover {taken:?}, dead master's VIP gone {gone:?} after the kill");
}

fn stop(proc: &Proc) {
    assert!(proc.signal(libc::SIGTERM));
    assert!(
        proc.wait_exit(Duration::from_secs(10)).is_some(),
        "{} did not stop",
        proc.name()
    );
}

/// redha on host 1 and keepalived on host 2 over IPv6, `redha_first` deciding who
/// has the higher priority: the higher one is elected, a SIGTERM hands over within
/// Skew_Time, and nobody complains about the other's packets.
fn ipv6_with_keepalived(tag: &str, redha_first: bool, common: Node) {
    let lab = Lab::with_ipv6(tag, 2);
    let (p_redha, p_ka) = if redha_first { (150, 100) } else { (100, 150) };
    let mut r_node = Node {
        priority: p_redha,
        ..common.clone()
    };
    let mut k_node = Node {
        priority: p_ka,
        ..common.clone()
    };
    if !common.unicast_peers.is_empty() {
        r_node.unicast_peers = vec![lab.link_local(2).into()];
        k_node.unicast_peers = vec![lab.link_local(1).into()];
    }
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
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lab.holders(VIP6), [winner], "the election did not hold");
    if redha_first {
        stop(&r);
    } else {
        stop(&k);
    }
    wait_sole_holder(
        &lab,
        loser,
        loser_node.skew_time() + MARGIN,
        "SIGTERM of the master",
    );
    let complaints = keepalived::complaints(&k.log());
    assert!(
        complaints.is_empty(),
        "keepalived complained: {complaints:#?}"
    );
    assert!(
        !r.log().contains("dropped a VRRP packet"),
        "redha dropped keepalived's packets:\n{}",
        r.log()
    );
}

#[test]
fn ipv6_interop_with_keepalived_multicast_at_1s_and_100ms() {
    if !require_netns("ipv6_interop_with_keepalived_multicast_at_1s_and_100ms") {
        return;
    }
    for (tag, ms) in [("ka6m1", 1000), ("ka6m01", 100)] {
        let common = Node::v6(Duration::from_millis(ms));
        ipv6_with_keepalived(&format!("{tag}r"), true, common.clone());
        ipv6_with_keepalived(&format!("{tag}k"), false, common);
    }
}

/// Unicast between link-local addresses; keepalived 2.2.7 sends those with hop
/// limit 64, which redha takes from a listed unicast peer only.
#[test]
fn ipv6_interop_with_keepalived_unicast() {
    if !require_netns("ipv6_interop_with_keepalived_unicast") {
        return;
    }
    let common = Node {
        // A placeholder: the helper puts each side's peer link-local address here.
        unicast_peers: vec![std::net::Ipv6Addr::LOCALHOST.into()],
        ..Node::v6(Duration::from_millis(100))
    };
    ipv6_with_keepalived("ka6ur", true, common.clone());
    ipv6_with_keepalived("ka6uk", false, common);
}
