//! Real keepalived 2.2.7 adverts, captured off the wire (see the fixture's header),
//! decode and pass our receive checks with the matching configuration.

use std::net::Ipv4Addr;

use vrrp::packet::{Advert, Auth, Expect, MULTICAST_GROUP, Version};

const FIXTURE: &str = include_str!("fixtures/keepalived_v2_adverts.txt");

fn packets(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let found: Vec<(String, Vec<u8>)> = FIXTURE
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

fn vip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, last)
}

const SENDER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);

fn expect<'a>(vrid: u8, int: u8, auth: &'a Auth, addresses: &'a [Ipv4Addr]) -> Expect<'a> {
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
        assert_eq!(
            (r.source, r.destination),
            (SENDER, MULTICAST_GROUP),
            "{name}"
        );
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
