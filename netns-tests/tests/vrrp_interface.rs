//! The VRRP instance and its interface, in network namespaces: adverts leave from
//! `unicast_src_ip`, and (issue 10) the instance follows its interface's link.

use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use netns_tests::redha::{self, MARGIN, Node, VIP};
use netns_tests::{Lab, redha_bin, require_netns, wait_until};
use socket2::{Domain, Protocol, Socket, Type};

const POLL: Duration = Duration::from_millis(50);

/// Hosts holding the VIP on any interface, in ascending order; unlike
/// [`Lab::holders`] this works while a host's `eth0` is gone.
fn vip_holders(lab: &Lab) -> Vec<usize> {
    let needle = format!("inet {VIP}/");
    (1..=lab.hosts())
        .filter(|&i| {
            let out = lab.try_run(i, "ip", ["-4", "-o", "addr", "show"]);
            String::from_utf8_lossy(&out.stdout).contains(&needle)
        })
        .collect()
}

/// Waits until exactly `host` holds the VIP; returns how long that took.
fn wait_sole_holder(lab: &Lab, host: usize, within: Duration) -> Duration {
    wait_until(within, POLL, || vip_holders(lab) == [host]).unwrap_or_else(|| {
        panic!(
            "host {host} did not become the only VIP holder within {within:?}; holders: {:?}",
            vip_holders(lab)
        )
    })
}

/// Asserts that `host` stays the only holder for `period`.
fn assert_stays_holder(lab: &Lab, host: usize, period: Duration) {
    let end = Instant::now() + period;
    while Instant::now() < end {
        assert_eq!(vip_holders(lab), [host], "the VIP moved");
        std::thread::sleep(POLL);
    }
}

/// The first word of a row of `redha status` for the node on host `i` (`state` ->
/// `MASTER`, `master` -> `192.0.2.12`, ...).
fn status_field(lab: &Lab, i: usize, row: &str) -> Option<String> {
    let out = Command::new(redha_bin())
        .arg("status")
        .arg("--socket")
        .arg(redha::control_socket(lab, i))
        .output()
        .expect("run redha status");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(row).filter(|rest| rest.starts_with(' ')))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
}

/// The state `redha status` reports for the node on host `i` (`MASTER`, ...).
fn status_state(lab: &Lab, i: usize) -> Option<String> {
    status_field(lab, i, "state")
}

fn wait_state(lab: &Lab, i: usize, state: &str, within: Duration) -> Duration {
    wait_until(within, POLL, || {
        status_state(lab, i).as_deref() == Some(state)
    })
    .unwrap_or_else(|| {
        panic!(
            "host {i} did not report {state} within {within:?}: it says {:?}",
            status_state(lab, i)
        )
    })
}

/// Counts the VRRP datagrams that reach host `i`, by IPv4 source, with a raw socket
/// of the test's own (no tcpdump) read on a thread until [`AdvertCounter::stop`].
struct AdvertCounter {
    running: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<BTreeMap<Ipv4Addr, u64>>>,
}

impl AdvertCounter {
    fn start(lab: &Lab, i: usize) -> Self {
        let socket = lab.in_host(i, || {
            let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112)))
                .expect("raw socket for protocol 112");
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            s
        });
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        let thread = std::thread::spawn(move || {
            let mut counts = BTreeMap::new();
            let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
            while flag.load(Ordering::Relaxed) {
                if let Ok(len) = socket.recv(&mut buf)
                    && len >= 20
                {
                    // SAFETY: recv initialised the first `len` bytes.
                    let bytes: Vec<u8> = buf[..len]
                        .iter()
                        .map(|b| unsafe { b.assume_init() })
                        .collect();
                    let source = Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]);
                    *counts.entry(source).or_insert(0) += 1;
                }
            }
            counts
        });
        AdvertCounter {
            running,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> BTreeMap<Ipv4Addr, u64> {
        self.running.store(false, Ordering::Relaxed);
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("counter thread")
    }
}

impl Drop for AdvertCounter {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
    }
}

/// Issue 10: `unicast_src_ip` names a secondary address of the interface. The peer
/// accepts adverts only from that address (its `unicast_peers`), so they must leave
/// from it, not from the primary address the kernel would pick; else the peer drops
/// them and both hosts become master.
#[test]
fn adverts_leave_from_unicast_src_ip_on_a_secondary_address() {
    if !require_netns("adverts_leave_from_unicast_src_ip_on_a_secondary_address") {
        return;
    }
    let lab = Lab::new("srcip", 2);
    let secondary = Ipv4Addr::new(192, 0, 2, 51);
    lab.run(
        1,
        "ip",
        ["addr", "add", &format!("{secondary}/24"), "dev", "eth0"],
    );
    // The secondary really is secondary: the kernel's own choice would be .11.
    assert!(
        lab.ip(1, ["-4", "-o", "addr", "show", "dev", "eth0"])
            .lines()
            .any(|l| l.contains(&secondary.to_string()) && l.contains("secondary")),
        "{secondary} is a secondary address"
    );
    let master = Node {
        unicast_peers: vec![lab.addr(2).into()],
        extra: format!("unicast_src_ip = \"{secondary}\"\n"),
        ..Node::with_priority(150)
    };
    let backup = Node {
        unicast_peers: vec![secondary.into()],
        ..Node::with_priority(100)
    };
    let counter = AdvertCounter::start(&lab, 2);
    let _a = redha::start(&lab, 1, &master);
    let b = redha::start(&lab, 2, &backup);
    wait_sole_holder(&lab, 1, master.master_down_interval() + MARGIN);
    assert_stays_holder(&lab, 1, backup.master_down_interval() + MARGIN);
    let counts = counter.stop();
    eprintln!("adverts reaching host 2 by source: {counts:?}");
    let from_secondary = counts.get(&secondary).copied().unwrap_or(0);
    assert!(
        from_secondary >= 3,
        "host 2 saw {from_secondary} adverts from {secondary}: {counts:?}"
    );
    assert_eq!(
        counts.get(&lab.addr(1)),
        None,
        "adverts left from the primary address: {counts:?}"
    );
    assert_eq!(status_state(&lab, 1).as_deref(), Some("MASTER"));
    assert_eq!(status_state(&lab, 2).as_deref(), Some("BACKUP"));
    assert!(!b.log().contains("unknown_source"), "{}", b.log());
}

/// Lines of a log that contain `needle`.
fn count_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// Issue 10: the master's interface is deleted under it, so the VIP can no longer be
/// renewed. It must not stay MASTER (logging errors forever): it reports FAULT with
/// the reason, and the peer holds the VIP alone.
#[test]
fn a_master_whose_vip_cannot_be_renewed_reports_fault() {
    if !require_netns("a_master_whose_vip_cannot_be_renewed_reports_fault") {
        return;
    }
    let lab = Lab::new("vipfail", 2);
    let master = Node {
        preempt: false,
        ..Node::with_priority(150)
    };
    let backup = Node {
        preempt: false,
        ..Node::with_priority(100)
    };
    let a = redha::start(&lab, 1, &master);
    let _b = redha::start(&lab, 2, &backup);
    wait_sole_holder(&lab, 1, master.master_down_interval() + MARGIN);
    assert_eq!(status_state(&lab, 1).as_deref(), Some("MASTER"));

    // Deleting eth0 deletes its peer p1 too: host 1 is off the LAN, VIP and all.
    lab.run(1, "ip", ["link", "del", "eth0"]);
    let faulted = wait_state(&lab, 1, "FAULT", master.advert_int + MARGIN);
    eprintln!("FAULT {faulted:?} after the interface was deleted");
    wait_sole_holder(&lab, 2, backup.master_down_interval() + MARGIN);
    // It stays in FAULT, quietly: no error every second.
    let left = wait_until(Duration::from_secs(5), POLL, || {
        status_state(&lab, 1).as_deref() != Some("FAULT")
    });
    assert_eq!(left, None, "left FAULT: {:?}", status_state(&lab, 1));
    let log = a.log();
    assert!(log.contains("to=FAULT"), "{log}");
    let errors = count_lines(&log, " ERROR ") + count_lines(&log, " WARN ");
    assert!(errors <= 6, "{errors} errors and warnings:\n{log}");
}

/// Issue 10: `ip link set dev eth0 down` on the master's host. keepalived goes to
/// FAULT; so must redha, releasing the VIP (a downed interface keeps its IPv4
/// addresses, so a master that missed it would keep renewing the VIP), and the peer
/// takes over. Link up: BACKUP, the peer keeps the VIP (nopreempt).
#[test]
fn link_down_on_the_master_is_fault_and_link_up_is_backup() {
    if !require_netns("link_down_on_the_master_is_fault_and_link_up_is_backup") {
        return;
    }
    let lab = Lab::new("linkdown", 2);
    let master = Node {
        preempt: false,
        ..Node::with_priority(150)
    };
    let backup = Node {
        preempt: false,
        ..Node::with_priority(100)
    };
    let a = redha::start(&lab, 1, &master);
    let _b = redha::start(&lab, 2, &backup);
    wait_sole_holder(&lab, 1, master.master_down_interval() + MARGIN);

    lab.run(1, "ip", ["link", "set", "dev", "eth0", "down"]);
    let faulted = wait_state(&lab, 1, "FAULT", MARGIN);
    eprintln!("FAULT {faulted:?} after link down");
    assert!(!lab.has_addr(1, VIP), "the VIP left with the link");
    wait_sole_holder(&lab, 2, backup.master_down_interval() + MARGIN);
    assert!(
        a.log()
            .contains("reason=interface unusable: interface eth0 is down"),
        "{}",
        a.log()
    );

    lab.run(1, "ip", ["link", "set", "dev", "eth0", "up"]);
    let back = wait_state(&lab, 1, "BACKUP", MARGIN);
    eprintln!("BACKUP {back:?} after link up");
    assert_stays_holder(&lab, 2, master.master_down_interval() + MARGIN);
    assert_eq!(status_state(&lab, 1).as_deref(), Some("BACKUP"));
    assert_eq!(
        status_field(&lab, 1, "master"),
        Some(lab.addr(2).to_string()),
        "host 1 hears host 2 again"
    );
}

/// Issue 10: the master's interface is deleted, then created again under the same
/// name with a fresh index and MAC. The agent must look it up again by name: FAULT
/// while it is gone, BACKUP once it is back, and from then on it hears and is heard
/// (it takes over when the peer stops, answers a client at its new MAC, and a
/// restarted peer stays its backup).
#[test]
fn a_deleted_and_recreated_interface_is_picked_up_again() {
    if !require_netns("a_deleted_and_recreated_interface_is_picked_up_again") {
        return;
    }
    let lab = Lab::new("recreate", 3);
    let master = Node {
        preempt: false,
        ..Node::with_priority(150)
    };
    let backup = Node {
        preempt: false,
        ..Node::with_priority(100)
    };
    let a = redha::start(&lab, 1, &master);
    let b = redha::start(&lab, 2, &backup);
    wait_sole_holder(&lab, 1, master.master_down_interval() + MARGIN);
    let old_mac = lab.mac(1);

    lab.run(1, "ip", ["link", "del", "eth0"]);
    wait_state(&lab, 1, "FAULT", MARGIN);
    wait_sole_holder(&lab, 2, backup.master_down_interval() + MARGIN);

    // The same name again, a fresh veth pair: new index, new (random) MAC.
    let h1 = lab.ns(1).to_owned();
    lab.bridge_ip([
        "link", "add", "p1", "type", "veth", "peer", "name", "eth0", "netns", &h1,
    ]);
    lab.bridge_ip(["link", "set", "p1", "master", netns_tests::BRIDGE]);
    lab.bridge_ip(["link", "set", "p1", "up"]);
    // Down and without an address, it is not usable yet.
    assert_eq!(status_state(&lab, 1).as_deref(), Some("FAULT"));
    lab.run(
        1,
        "ip",
        ["addr", "add", &format!("{}/24", lab.addr(1)), "dev", "eth0"],
    );
    lab.run(1, "ip", ["link", "set", "dev", "eth0", "up"]);
    wait_until(Duration::from_secs(5), POLL, || {
        lab.bridge_ip(["-d", "-o", "link", "show", "p1"])
            .contains("state forwarding")
    })
    .expect("p1 forwards");
    let new_mac = lab.mac(1);
    assert_ne!(new_mac, old_mac, "a fresh MAC");
    let back = wait_state(&lab, 1, "BACKUP", MARGIN);
    eprintln!("BACKUP {back:?} after the interface came back");
    assert!(
        a.log().contains("the interface is back: sockets reopened"),
        "{}",
        a.log()
    );
    // It hears the master on the new interface...
    wait_until(MARGIN, POLL, || {
        status_field(&lab, 1, "master") == Some(lab.addr(2).to_string())
    })
    .unwrap_or_else(|| {
        panic!(
            "host 1 does not hear host 2: {:?}",
            status_field(&lab, 1, "master")
        )
    });
    assert_stays_holder(&lab, 2, master.master_down_interval() + MARGIN);

    // ...takes over when it says goodbye, and a client reaches it at its new MAC.
    assert!(b.signal(libc::SIGTERM));
    b.wait_exit(Duration::from_secs(5)).expect("host 2 stops");
    wait_sole_holder(&lab, 1, master.skew_time() + MARGIN);
    assert!(lab.ping(3, VIP));
    assert_eq!(lab.neigh_mac(3, VIP), Some(new_mac));

    // And it is heard: a peer started now stays its backup.
    let _b2 = redha::start(&lab, 2, &backup);
    wait_until(backup.master_down_interval(), POLL, || {
        status_state(&lab, 2).as_deref() == Some("BACKUP")
    })
    .expect("host 2 starts");
    assert_stays_holder(&lab, 1, backup.master_down_interval() + MARGIN);
    assert_eq!(
        status_field(&lab, 2, "master"),
        Some(lab.addr(1).to_string())
    );
}
