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
    for (tag, ms) in [("ka6u01", 100), ("ka6u1", 1000)] {
        let common = Node {
            // A placeholder: the helper puts each side's peer link-local address here.
            unicast_peers: vec![std::net::Ipv6Addr::LOCALHOST.into()],
            ..Node::v6(Duration::from_millis(ms))
        };
        ipv6_with_keepalived(&format!("{tag}r"), true, common.clone());
        ipv6_with_keepalived(&format!("{tag}k"), false, common);
    }
}

/// Malformed VRRPv3 adverts over IPv6 from a third host (each would make the master
/// step down if it were taken: priority 254) change nothing and are counted by
/// reason; the well-formed one is obeyed.
#[test]
fn malformed_ipv6_adverts_change_nothing_and_are_counted() {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    use vrrp::packet::{Advert, ChecksumScope, MULTICAST_GROUP_V6};

    if !require_netns("malformed_ipv6_adverts_change_nothing_and_are_counted") {
        return;
    }
    let lab = Lab::with_ipv6("v6badin", 3);
    let n = node(100, FAST);
    let master = redha::start(&lab, 1, &n);
    wait_sole_holder(&lab, 1, n.master_down_interval() + MARGIN, "election");
    let vip: std::net::IpAddr = VIP6.parse().unwrap();
    let src = lab.link_local(3);
    let pseudo = ChecksumScope::Ipv6Pseudo {
        source: src,
        destination: MULTICAST_GROUP_V6,
    };
    let good = |vrid: u8, centis: u16| Advert::v3(vrid, 254, centis, &[vip]).encode_with(pseudo);
    let mut bad_checksum = good(51, 10);
    bad_checksum[7] ^= 1;
    let mut v2 = good(51, 10);
    v2[0] = 0x21;
    let cases: Vec<(&str, Vec<u8>, u32)> = vec![
        ("dropped_ttl", good(51, 10), 64),
        ("dropped_checksum", bad_checksum, 255),
        (
            "dropped_checksum",
            Advert::v3(51, 254, 10, &[vip]).encode(),
            255,
        ),
        ("dropped_version", v2, 255),
        ("dropped_vrid", good(52, 10), 255),
        ("dropped_interval", good(51, 0), 255),
        ("dropped_truncated", good(51, 10)[..12].to_vec(), 255),
    ];
    let send = |datagrams: Vec<(Vec<u8>, u32)>| {
        lab.in_host(3, move || {
            let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(112)))
                .expect("raw socket");
            socket.bind_device(Some(b"eth0")).expect("bind to eth0");
            let index = nix_index("eth0");
            socket
                .set_multicast_if_v6(index)
                .expect("multicast interface");
            let to = SockAddr::from(SocketAddrV6::new(MULTICAST_GROUP_V6, 0, 0, index));
            for (d, hops) in datagrams {
                socket.set_multicast_hops_v6(hops).expect("hop limit");
                socket.send_to(&d, &to).expect("send a crafted advert");
            }
        });
    };
    for _ in 0..3 {
        send(cases.iter().map(|(_, d, h)| (d.clone(), *h)).collect());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(lab.holders(VIP6), [1], "a bad advert moved the VIP");
    let log = master.log();
    assert_eq!(
        log.matches("VRRP transition").count(),
        2,
        "a bad advert caused a transition:\n{log}"
    );
    let c = redha::counters(&master);
    for (counter, _, _) in &cases {
        let expected = 3 * cases.iter().filter(|(k, _, _)| k == counter).count() as u64;
        assert_eq!(c.get(*counter), Some(&expected), "{counter} in {c:?}");
    }
    assert_eq!(c.get("adverts_received"), Some(&0), "{c:?}");
    send(vec![(good(51, 10), 255)]);
    wait_until(MARGIN, POLL, || lab.holders(VIP6).is_empty())
        .expect("a valid higher-priority advert is obeyed");
}

/// The index of interface `name` in the current namespace.
fn nix_index(name: &str) -> u32 {
    let name = std::ffi::CString::new(name).expect("a name");
    // SAFETY: if_nametoindex reads a NUL-terminated string.
    unsafe { libc::if_nametoindex(name.as_ptr()) }
}

/// The Redis side over IPv6 at 100 ms adverts: host 2's Redis replicates from host
/// 1's over IPv6 (`[replication] peer` and `announce` as `[2001:db8::..]:6379`), a
/// client on host 3 writes through the IPv6 VIP; the master's Redis is SIGKILLed:
/// host 2 takes the VIP and promotes, writes resume, and every write acknowledged
/// after the kill is on the new master.
#[test]
fn ipv6_redis_killed_on_the_master_at_100ms() {
    use netns_tests::pair::{self, FAST_CHECK, replication};
    use netns_tests::redha::RedisSettings;
    use netns_tests::redis::RedisOpts;
    use netns_tests::writer::{Writer, missing_keys};

    if !require_netns("ipv6_redis_killed_on_the_master_at_100ms")
        || !pair::require("ipv6_redis_killed_on_the_master_at_100ms")
    {
        return;
    }
    let lab = Lab::with_ipv6("v6redis", 3);
    let opts = RedisOpts {
        extra: vec!["bind 0.0.0.0 ::".into()],
        ..RedisOpts::default()
    };
    let redis = pair::start_redis(&lab, opts);
    let redis_node = |host: usize, priority: u8| {
        let peer = 3 - host;
        let mut settings = RedisSettings::pair(lab.addr(peer), pair::state_log_path(&lab, host));
        settings.peer = Some(format!("[{}]:6379", lab.addr6(peer)));
        settings.redis_extra.push_str(FAST_CHECK);
        settings
            .replication_extra
            .push_str(&format!("announce = \"[{}]:6379\"\n", lab.addr6(host)));
        Node {
            preempt: false,
            redis: Some(settings),
            ..node(priority, FAST)
        }
    };
    let (n1, n2) = (redis_node(1, 150), redis_node(2, 100));
    let _a = redha::start(&lab, 1, &n1);
    let _b = redha::start(&lab, 2, &n2);
    let follows_host1 = || {
        replication(&redis[1]).is_ok_and(|m| {
            m.get("master_host").map(String::as_str) == Some(lab.addr6(1).to_string().as_str())
                && m.get("master_link_status").map(String::as_str) == Some("up")
        })
    };
    wait_until(Duration::from_secs(20), POLL, || {
        lab.holders(VIP6) == [1] && follows_host1()
    })
    .unwrap_or_else(|| {
        panic!(
            "host 1 master and host 2's Redis its replica over IPv6 within 20 s: {}",
            pair::redis_state(&lab, &redis)
        )
    });
    let vip: std::net::Ipv6Addr = VIP6.parse().unwrap();
    let writer = Writer::start(
        &lab,
        3,
        SocketAddrV6::new(vip, 6379, 0, 0),
        Duration::from_millis(10),
    );
    assert!(
        writer.wait_acked(50, Duration::from_secs(5)),
        "{}",
        writer.snapshot().summary()
    );
    let killed_at = writer.snapshot().started.elapsed();
    redis[0].kill();
    let promoted = wait_until(MARGIN * 2, POLL, || {
        lab.holders(VIP6) == [2]
            && replication(&redis[1])
                .is_ok_and(|m| m.get("role").map(String::as_str) == Some("master"))
    });
    assert!(
        promoted.is_some(),
        "host 2 took over: {}",
        pair::redis_state(&lab, &redis)
    );
    let resumed = wait_until(Duration::from_secs(3), POLL, || {
        writer
            .snapshot()
            .acked
            .iter()
            .any(|&(_, at)| at > killed_at)
    });
    assert!(
        resumed.is_some(),
        "writes did not resume: {}",
        writer.snapshot().summary()
    );
    std::thread::sleep(Duration::from_millis(500));
    let log = writer.stop();
    let after: Vec<u64> = log
        .acked
        .iter()
        .filter(|&&(_, at)| at > killed_at)
        .map(|&(n, _)| n)
        .collect();
    let lost = missing_keys(&lab, 3, redis[1].addr(), &after);
    assert!(
        lost.is_empty(),
        "writes acknowledged after the kill are missing: {lost:?}"
    );
    eprintln!(
        "IPv6 Redis at 100 ms: takeover {promoted:?}; writer {}",
        log.summary()
    );
}
