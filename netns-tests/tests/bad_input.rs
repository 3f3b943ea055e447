//! Malformed and foreign adverts from a third host change nothing and are counted.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use netns_tests::redha::{self, MARGIN, Node, VIP};
use netns_tests::{Lab, require_netns, wait_until};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use vrrp::packet::{Advert, Auth, ChecksumScope, MULTICAST_GROUP, ipv4_datagram};

const POLL: Duration = Duration::from_millis(50);
const ATTACKER: usize = 3;

/// Sends whole IPv4 datagrams (our own header, TTL included) from the attacker host.
fn send_raw(lab: &Lab, datagrams: Vec<Vec<u8>>) {
    lab.in_host(ATTACKER, move || {
        let socket =
            Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).expect("raw socket");
        socket.set_header_included_v4(true).expect("IP_HDRINCL");
        socket.bind_device(Some(b"eth0")).expect("bind to eth0");
        socket
            .set_multicast_if_v4(&Ipv4Addr::new(192, 0, 2, 10 + ATTACKER as u8))
            .expect("multicast interface");
        let to = SockAddr::from(SocketAddrV4::new(MULTICAST_GROUP, 0));
        for d in datagrams {
            socket.send_to(&d, &to).expect("send a crafted advert");
        }
    });
}

/// Starts redha with `node` on host 1, alone: it becomes master.
fn start_master(lab: &Lab, node: &Node) -> netns_tests::Proc {
    let master = redha::start(lab, 1, node);
    wait_until(node.master_down_interval() + MARGIN, POLL, || {
        lab.holders(VIP) == [1]
    })
    .expect("host 1 is master");
    master
}

/// Sends every case's datagram three times, `pause` apart, from the attacker; then
/// host 1 still holds the VIP, made no transition since it became master, and counted
/// each datagram under its case's counter (and took none as an advert).
fn send_and_count(
    lab: &Lab,
    master: &netns_tests::Proc,
    cases: &[(&str, Vec<u8>)],
    pause: Duration,
) {
    const ROUNDS: u64 = 3;
    for _ in 0..ROUNDS {
        send_raw(lab, cases.iter().map(|(_, d)| d.clone()).collect());
        std::thread::sleep(pause);
    }
    assert_eq!(lab.holders(VIP), [1], "a bad advert moved the VIP");
    let log = master.log();
    assert_eq!(
        log.matches("VRRP transition").count(),
        2,
        "a bad advert caused a transition:\n{log}"
    );
    let c = redha::counters(master);
    for (counter, _) in cases {
        let expected = ROUNDS * cases.iter().filter(|(k, _)| k == counter).count() as u64;
        assert_eq!(c.get(*counter), Some(&expected), "{counter} in {c:?}");
    }
    assert_eq!(c.get("adverts_received"), Some(&0), "{c:?}");
}

#[test]
fn malformed_adverts_change_nothing_and_are_counted() {
    if !require_netns("malformed_adverts_change_nothing_and_are_counted") {
        return;
    }
    let lab = Lab::new("badin", 3);
    let node = Node {
        auth_pass: Some("secret".into()),
        ..Node::with_priority(100)
    };
    let master = start_master(&lab, &node);

    // Every advert below would make the master step down if it were accepted:
    // priority 254 beats 100.
    let vip: Ipv4Addr = VIP.parse().unwrap();
    let src = lab.addr(ATTACKER);
    let auth = Auth::simple("secret");
    let good = |vrid: u8, int: u8, auth: &Auth, addrs: &[Ipv4Addr]| {
        Advert::new(vrid, 254, int, auth, addrs).encode()
    };
    let wrap = |payload: &[u8], ttl: u8| ipv4_datagram(src, MULTICAST_GROUP, ttl, payload);

    let mut bad_checksum = good(51, 1, &auth, &[vip]);
    bad_checksum[6] ^= 0xff;
    // A well-formed VRRPv3 advert: the wrong version for this VRRPv2 instance.
    let version3 = Advert::v3(51, 254, 100, &[vip]).encode();
    let truncated = good(51, 1, &auth, &[vip])[..12].to_vec();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dropped_ttl", wrap(&good(51, 1, &auth, &[vip]), 64)),
        ("dropped_checksum", wrap(&bad_checksum, 255)),
        ("dropped_version", wrap(&version3, 255)),
        ("dropped_vrid", wrap(&good(52, 1, &auth, &[vip]), 255)),
        (
            "dropped_address_list",
            wrap(&good(51, 1, &auth, &[Ipv4Addr::new(192, 0, 2, 101)]), 255),
        ),
        (
            "dropped_authentication",
            wrap(&good(51, 1, &Auth::simple("guess"), &[vip]), 255),
        ),
        (
            "dropped_auth_type",
            wrap(&good(51, 1, &Auth::None, &[vip]), 255),
        ),
        ("dropped_interval", wrap(&good(51, 2, &auth, &[vip]), 255)),
        ("dropped_truncated", wrap(&truncated, 255)),
    ];
    // Several rounds, spread over more than one advert interval.
    send_and_count(&lab, &master, &cases, Duration::from_millis(500));

    // Control: the same advert, well formed, is accepted and does make it step down.
    send_raw(&lab, vec![wrap(&good(51, 1, &auth, &[vip]), 255)]);
    wait_until(MARGIN, POLL, || lab.holders(VIP).is_empty())
        .expect("a valid higher-priority advert is obeyed");
    assert!(
        master
            .log()
            .contains("advert from 192.0.2.13 with higher priority 254")
    );
}

/// The same for a VRRPv3 instance at 100 ms adverts: a checksum without the
/// pseudo-header (when the instance expects it), a VRRPv2 advert, a zero interval and
/// the other malformations are counted by reason and change nothing; a well-formed
/// v3 advert of higher priority is obeyed.
#[test]
fn malformed_v3_adverts_change_nothing_and_are_counted() {
    if !require_netns("malformed_v3_adverts_change_nothing_and_are_counted") {
        return;
    }
    let lab = Lab::new("badin3", 3);
    let node = Node::v3(Duration::from_millis(100));
    let master = start_master(&lab, &node);

    let vip: Ipv4Addr = VIP.parse().unwrap();
    let src = lab.addr(ATTACKER);
    let pseudo = ChecksumScope::Ipv4Pseudo {
        source: src,
        destination: MULTICAST_GROUP,
    };
    let v3 = |vrid: u8, centis: u16, addrs: &[Ipv4Addr]| {
        Advert::v3(vrid, 254, centis, addrs).encode_with(pseudo)
    };
    let wrap = |payload: &[u8], ttl: u8| ipv4_datagram(src, MULTICAST_GROUP, ttl, payload);
    let mut bad_checksum = v3(51, 10, &[vip]);
    bad_checksum[7] ^= 0x01;
    let as_v2 = Advert::v3(51, 254, 10, &[vip]).encode();
    let v2 = Advert::new(51, 254, 1, &Auth::None, &[vip]).encode();
    let truncated = v3(51, 10, &[vip])[..10].to_vec();
    let other = Ipv4Addr::new(192, 0, 2, 101);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dropped_ttl", wrap(&v3(51, 10, &[vip]), 1)),
        ("dropped_checksum", wrap(&bad_checksum, 255)),
        ("dropped_checksum", wrap(&as_v2, 255)),
        ("dropped_version", wrap(&v2, 255)),
        ("dropped_vrid", wrap(&v3(52, 10, &[vip]), 255)),
        ("dropped_address_list", wrap(&v3(51, 10, &[other]), 255)),
        ("dropped_interval", wrap(&v3(51, 0, &[vip]), 255)),
        ("dropped_truncated", wrap(&truncated, 255)),
    ];
    send_and_count(&lab, &master, &cases, Duration::from_millis(300));

    send_raw(&lab, vec![wrap(&v3(51, 10, &[vip]), 255)]);
    wait_until(MARGIN, POLL, || lab.holders(VIP).is_empty())
        .expect("a valid higher-priority v3 advert is obeyed");
}
