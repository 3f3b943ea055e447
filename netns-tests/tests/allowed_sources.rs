//! `[vrrp] allowed_sources`: a third router on the LAN with our VRID, a valid
//! password and a higher priority is ignored (and counted) unless it is allowed.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use netns_tests::redha::{self, MARGIN, Node, VIP};
use netns_tests::{Lab, Proc, require_netns, wait_until};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use vrrp::packet::{Advert, Auth, MULTICAST_GROUP, ipv4_datagram};

const POLL: Duration = Duration::from_millis(50);
const STRAY: usize = 3;

/// Sends whole IPv4 datagrams (our own header, TTL included) to 224.0.0.18 from the
/// stray host.
fn send_from_stray(lab: &Lab, datagrams: Vec<Vec<u8>>) {
    let source = lab.addr(STRAY);
    lab.in_host(STRAY, move || {
        let socket =
            Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).expect("raw socket");
        socket.set_header_included_v4(true).expect("IP_HDRINCL");
        socket.bind_device(Some(b"eth0")).expect("bind to eth0");
        socket
            .set_multicast_if_v4(&source)
            .expect("multicast interface");
        let to = SockAddr::from(SocketAddrV4::new(MULTICAST_GROUP, 0));
        for d in datagrams {
            socket.send_to(&d, &to).expect("send an advert");
        }
    });
}

fn transitions(proc: &Proc) -> usize {
    proc.log().matches("VRRP transition").count()
}

#[test]
fn a_router_not_in_allowed_sources_is_ignored_and_counted() {
    if !require_netns("a_router_not_in_allowed_sources_is_ignored_and_counted") {
        return;
    }
    let lab = Lab::new("allowsrc", 3);
    let allowed = format!(
        "allowed_sources = [\"{}\", \"{}\"]\n",
        lab.addr(1),
        lab.addr(2)
    );
    let node = |priority| Node {
        auth_pass: Some("secret".into()),
        extra: allowed.clone(),
        ..Node::with_priority(priority)
    };
    let (n1, n2) = (node(100), node(90));
    let master = redha::start(&lab, 1, &n1);
    wait_until(n1.master_down_interval() + MARGIN, POLL, || {
        lab.holders(VIP) == [1]
    })
    .expect("host 1 is master");
    let backup = redha::start(&lab, 2, &n2);
    wait_until(MARGIN, POLL, || backup.log().contains("to=BACKUP")).expect("host 2 is backup");
    wait_until(MARGIN + Duration::from_secs(1), POLL, || {
        redha::counters(&backup)
            .get("adverts_received")
            .copied()
            .unwrap_or(0)
            > 0
    })
    .expect("host 2 hears host 1");
    let (t1, t2) = (transitions(&master), transitions(&backup));

    // The stray router: our VRID, our password, our address list, TTL 255, a valid
    // checksum, priority 254, which beats both. And a priority-0 advert, which would
    // make the backup take over after Skew_Time if it were believed.
    let vip: Ipv4Addr = VIP.parse().unwrap();
    let auth = Auth::simple("secret");
    let advert = |priority| {
        ipv4_datagram(
            lab.addr(STRAY),
            MULTICAST_GROUP,
            255,
            &Advert::new(51, priority, 1, &auth, &[vip]).encode(),
        )
    };
    let rounds = 5u64;
    for _ in 0..rounds {
        send_from_stray(&lab, vec![advert(254), advert(0)]);
    }
    for (name, proc) in [("master", &master), ("backup", &backup)] {
        wait_until(Duration::from_secs(5), POLL, || {
            redha::counters(proc).get("dropped_source_not_allowed") == Some(&(2 * rounds))
        })
        .unwrap_or_else(|| {
            panic!(
                "the {name} counts the stray's adverts: {:?}\n{}",
                redha::counters(proc),
                proc.log()
            )
        });
    }
    // Dropped, not obeyed: the VIP stayed, nobody moved, the drop was logged once.
    assert_eq!(lab.holders(VIP), [1], "the stray moved the VIP");
    assert_eq!((transitions(&master), transitions(&backup)), (t1, t2));
    assert!(
        master
            .log()
            .contains("reason=source_not_allowed source=192.0.2.13"),
        "{}",
        master.log()
    );
    // The backup still follows host 1 (its Master_Down_Timer was not disturbed):
    // wait out a whole Master_Down_Interval and check again.
    let before = redha::counters(&backup)["adverts_received"];
    wait_until(n2.master_down_interval() + MARGIN, POLL, || {
        redha::counters(&backup)["adverts_received"] >= before + 4
    })
    .expect("host 2 keeps hearing host 1");
    assert_eq!(lab.holders(VIP), [1]);
    assert_eq!((transitions(&master), transitions(&backup)), (t1, t2));

    // Control: once the master's file allows the stray too (SIGHUP), the same
    // advert is obeyed and the master steps down.
    let reloads = master.log().matches("configuration reloaded").count();
    let widened = Node {
        extra: format!(
            "allowed_sources = [\"{}\", \"{}\", \"{}\"]\n",
            lab.addr(1),
            lab.addr(2),
            lab.addr(STRAY)
        ),
        ..n1.clone()
    };
    redha::write_config(&lab, 1, &widened);
    assert!(master.signal(libc::SIGHUP));
    wait_until(Duration::from_secs(5), POLL, || {
        master.log().matches("configuration reloaded").count() > reloads
    })
    .expect("host 1 reloads");
    send_from_stray(&lab, vec![advert(254)]);
    wait_until(MARGIN, POLL, || !lab.holders(VIP).contains(&1))
        .expect("an allowed higher-priority advert is obeyed");
    assert!(
        master
            .log()
            .contains("advert from 192.0.2.13 with higher priority 254"),
        "{}",
        master.log()
    );
}
