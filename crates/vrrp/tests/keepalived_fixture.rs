//! Real keepalived 2.2.7 adverts, captured off the wire (see the fixture's header),
//! decode and pass our receive checks with the matching configuration.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vrrp::packet::{Advert, Auth, ChecksumScope, Expect, MULTICAST_GROUP, Version};

const FIXTURE: &str = include_str!("fixtures/keepalived_v2_adverts.txt");
const FIXTURE_V3: &str = include_str!("fixtures/keepalived_v3_adverts.txt");
const FIXTURE_V3_IPV6: &str = include_str!("fixtures/keepalived_v3_ipv6_adverts.txt");

fn packets(prefix: &str) -> Vec<(String, Vec<u8>)> {
    packets_in(FIXTURE, prefix)
}

fn packets_in(fixture: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let found: Vec<(String, Vec<u8>)> = fixture
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('\t'))
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(name, hex)| {
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            (name.to_string(), bytes)
        })
        .collect();
    assert!(!found.is_empty(), "no packet named {prefix}*");
    found
}

fn vip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

const SENDER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
const GROUP: IpAddr = IpAddr::V4(MULTICAST_GROUP);

fn expect<'a>(vrid: u8, int: u8, auth: &'a Auth, addresses: &'a [IpAddr]) -> Expect<'a> {
    Expect {
        version: Version::V2,
        vrid,
        advert_int: u16::from(int),
        auth,
        checksum_as_v2: false,
        addresses,
        we_are_owner: false,
        unicast_peers: &[],
        allowed_sources: &[],
    }
}

#[test]
fn multicast_without_authentication() {
    for (name, bytes) in packets("a_") {
        let r = Advert::decode_ipv4(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((r.source, r.destination), (SENDER, GROUP), "{name}");
        assert_eq!(
            (r.advert.vrid, r.advert.priority, r.advert.advert_int),
            (51, 100, 1)
        );
        assert_eq!(r.advert.addresses, [vip(100)]);
        r.advert
            .check_against(&expect(51, 1, &Auth::None, &[vip(100)]))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // What we would send for the same instance is byte-for-byte keepalived's.
        assert_eq!(
            Advert::new(51, 100, 1, &Auth::None, &[vip(100)]).encode(),
            bytes[20..]
        );
    }
}

#[test]
fn simple_password() {
    let ours = Auth::simple("secret12");
    for (name, bytes) in packets("b_") {
        let r = Advert::decode_ipv4(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        r.advert
            .check_against(&expect(51, 1, &ours, &[vip(100)]))
            .unwrap();
        assert_eq!(
            r.advert
                .check_against(&expect(51, 1, &Auth::simple("secret13"), &[vip(100)])),
            Err(vrrp::DropReason::Authentication)
        );
        assert_eq!(
            Advert::new(51, 100, 1, &ours, &[vip(100)]).encode(),
            bytes[20..]
        );
    }
}

#[test]
fn three_addresses_and_a_longer_interval() {
    let addrs = [vip(100), vip(101), vip(102)];
    for (name, bytes) in packets("c_") {
        let r = Advert::decode_ipv4(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (r.advert.vrid, r.advert.priority, r.advert.advert_int),
            (52, 150, 2)
        );
        assert_eq!(r.advert.addresses, addrs);
        r.advert
            .check_against(&expect(52, 2, &Auth::None, &addrs))
            .unwrap();
        assert_eq!(
            r.advert.check_against(&expect(52, 1, &Auth::None, &addrs)),
            Err(vrrp::DropReason::Interval)
        );
    }
}

#[test]
fn priority_zero_on_shutdown() {
    for (name, bytes) in packets("d_") {
        let r = Advert::decode_ipv4(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.advert.priority, 0, "{name}");
    }
}

#[test]
fn unicast_to_a_peer() {
    for (name, bytes) in packets("e_") {
        let r = Advert::decode_ipv4(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((r.source, r.destination), (SENDER, vip(12)), "{name}");
        r.advert
            .check_against(&expect(51, 1, &Auth::None, &[vip(100)]))
            .unwrap();
    }
}

fn expect_v3(addresses: &[IpAddr], checksum_as_v2: bool) -> Expect<'_> {
    Expect {
        version: Version::V3,
        checksum_as_v2,
        ..expect(51, 1, &Auth::None, addresses)
    }
}

/// keepalived's VRRPv3 adverts (multicast at 100 ms and 1 s, unicast at 1 s): version
/// 3, Max Adver Int in centiseconds, the checksum over the pseudo-header; they pass
/// a v3 instance's checks (not a v2 one's, nor one set to v3_checksum_as_v2), and
/// what redha sends for the same instance is byte for byte keepalived's.
#[test]
fn v3_adverts_with_the_pseudo_header_checksum() {
    for (prefix, centis, destination) in
        [("a_", 10, GROUP), ("b_", 100, GROUP), ("c_", 100, vip(12))]
    {
        for (name, bytes) in packets_in(FIXTURE_V3, prefix) {
            let r = Advert::decode_ipv4(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((r.source, r.destination), (SENDER, destination), "{name}");
            assert_eq!(r.advert.version, Version::V3, "{name}");
            assert_eq!(r.advert.advert_int, centis, "{name}");
            assert!(!r.checksum_as_v2, "{name}: the pseudo-header is in the sum");
            assert_eq!(r.advert.addresses, [vip(100)], "{name}");
            let stop = name.ends_with("_stop");
            assert_eq!(r.advert.priority, if stop { 0 } else { 100 }, "{name}");
            r.check_against(&expect_v3(&[vip(100)], false))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                r.check_against(&expect_v3(&[vip(100)], true)),
                Err(vrrp::DropReason::Checksum),
                "{name}"
            );
            assert_eq!(
                r.check_against(&expect(51, 1, &Auth::None, &[vip(100)])),
                Err(vrrp::DropReason::Version),
                "{name}"
            );
            let ours = Advert::v3(51, r.advert.priority, centis, &[vip(100)]);
            let scope = ChecksumScope::pseudo(SENDER, destination).unwrap();
            assert_eq!(ours.encode_with(scope), bytes[20..], "{name}");
        }
    }
}

/// keepalived's VRRPv3 adverts over IPv6 (multicast at 100 ms and 1 s, unicast at
/// 1 s): decoded from the payload with the header's addresses and hop limit, the
/// checksum over the IPv6 pseudo-header, 16-byte addresses; they pass a v3 IPv6
/// instance's checks, and redha's own advert for the same instance is byte for byte
/// keepalived's. Unicast ones come with hop limit 64: taken from a listed unicast
/// peer only.
#[test]
fn v3_ipv6_adverts() {
    let vip: IpAddr = "2001:db8::100".parse().unwrap();
    let sender: Ipv6Addr = "fe80::e808:d5ff:fea1:abd4".parse().unwrap();
    for (prefix, centis, unicast) in [("a_", 10, false), ("b_", 100, false), ("c_", 100, true)] {
        for (name, bytes) in packets_in(FIXTURE_V3_IPV6, prefix) {
            assert_eq!(bytes[0] >> 4, 6, "{name}");
            assert_eq!(bytes[6], 112, "{name}: next header VRRP");
            let hop_limit = bytes[7];
            let source = Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[8..24]).unwrap());
            let destination = Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[24..40]).unwrap());
            assert_eq!(source, sender, "{name}");
            assert_eq!(hop_limit, if unicast { 64 } else { 255 }, "{name}");
            let payload = &bytes[40..];
            let r = Advert::decode_ipv6(payload, source, destination, hop_limit)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.advert.version, Version::V3, "{name}");
            assert_eq!(r.advert.advert_int, centis, "{name}");
            assert_eq!(r.advert.addresses, [vip], "{name}");
            assert!(!r.checksum_as_v2, "{name}");
            let peers = [IpAddr::V6(sender)];
            let mut e = Expect {
                vrid: 52,
                ..expect_v3(std::slice::from_ref(&vip), false)
            };
            if unicast {
                assert_eq!(r.check_against(&e), Err(vrrp::DropReason::Ttl), "{name}");
                e.unicast_peers = &peers;
            }
            r.check_against(&e)
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            let ours = Advert::v3(52, r.advert.priority, centis, &[vip]);
            let scope = ChecksumScope::pseudo(source.into(), destination.into()).unwrap();
            assert_eq!(ours.encode_with(scope), payload, "{name}");
            // One flipped bit of the pseudo-header's source address breaks it.
            let mut other = source.octets();
            other[15] ^= 1;
            assert_eq!(
                Advert::decode_ipv6(payload, other.into(), destination, hop_limit),
                Err(vrrp::DropReason::Checksum),
                "{name}"
            );
        }
    }
}
