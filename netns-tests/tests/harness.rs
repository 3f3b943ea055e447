//! Tests of the namespace harness itself.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::process::ExitStatusExt;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use netns_tests::{BRIDGE, Lab, SPLIT_BRIDGE, cleanup_stale, require_netns, wait_until};

fn netns_list() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn all_ns(lab: &Lab) -> Vec<String> {
    let mut v: Vec<String> = (1..=lab.hosts()).map(|i| lab.ns(i).to_owned()).collect();
    v.push(lab.bridge_ns().to_owned());
    v
}

/// Is `pid` gone (or a zombie awaiting its new parent)?
fn pid_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn hosts_ping_each_other() {
    if !require_netns("hosts_ping_each_other") {
        return;
    }
    let lab = Lab::new("ping", 2);
    assert_eq!(lab.addr(1), Ipv4Addr::new(192, 0, 2, 11));
    assert_eq!(lab.addr(2), Ipv4Addr::new(192, 0, 2, 12));
    assert_ne!(lab.ns(1), lab.ns(2));
    assert!(lab.has_addr(1, lab.addr(1)));
    assert_eq!(lab.holders("192.0.2.12"), vec![2]);

    for i in 1..=2 {
        assert_eq!(
            lab.ip(i, ["-6", "-o", "addr", "show"]).trim(),
            "",
            "IPv6 not disabled"
        );
    }
    assert_eq!(
        lab.bridge_ip(["-6", "-o", "addr", "show"]).trim(),
        "",
        "IPv6 not disabled"
    );

    assert!(lab.ping(1, lab.addr(2)), "host 1 cannot ping host 2");
    assert!(lab.ping(2, "192.0.2.11"), "host 2 cannot ping host 1");
    assert!(lab.ping(1, lab.addr(1)), "host 1 cannot ping itself");
    assert!(!lab.ping(1, "192.0.2.99"), "nobody has 192.0.2.99");

    let mac2 = lab.mac(2);
    assert_eq!(mac2.len(), 17, "{mac2}");
    assert_eq!(mac2, mac2.to_ascii_lowercase());
    assert_ne!(mac2, lab.mac(1));
    assert_eq!(lab.neigh_mac(1, lab.addr(2)), Some(mac2));
    assert_eq!(
        lab.neigh_mac(1, "192.0.2.99"),
        None,
        "failed entry counts as absent"
    );
    assert_eq!(lab.neigh_mac(2, "192.0.2.98"), None, "no entry");
}

#[test]
fn detach_and_attach() {
    if !require_netns("detach_and_attach") {
        return;
    }
    let lab = Lab::new("detach", 3);
    assert!(lab.ping(1, lab.addr(2)));
    lab.detach(2);
    assert!(!lab.ping(1, lab.addr(2)), "ping crossed a detached port");
    assert!(!lab.ping(2, lab.addr(3)), "ping crossed a detached port");
    assert!(
        lab.ping(1, lab.addr(3)),
        "other hosts must still reach each other"
    );
    lab.attach(2);
    assert!(
        wait_until(Duration::from_secs(5), Duration::ZERO, || lab
            .ping(1, lab.addr(2)))
        .is_some(),
        "no ping after re-attaching"
    );
    // Host 2's ARP for host 3 may still be pending from while it was cut
    // off (retried once a second), so allow a few tries.
    assert!(
        wait_until(Duration::from_secs(5), Duration::ZERO, || lab
            .ping(2, lab.addr(3)))
        .is_some(),
        "host 2 cannot reach host 3 after re-attaching"
    );
}

/// Pings that must get through, allowing a few tries: an ARP entry of a host
/// on the other side may still be resolving from before.
fn reaches(lab: &Lab, from: usize, to: usize) -> bool {
    wait_until(Duration::from_secs(5), Duration::ZERO, || {
        lab.ping(from, lab.addr(to))
    })
    .is_some()
}

#[test]
fn split_keeps_carrier_and_each_side_connected() {
    if !require_netns("split_keeps_carrier_and_each_side_connected") {
        return;
    }
    let lab = Lab::new("splitsw", 4);
    let all = [1, 2, 3, 4];
    let sides = [[1, 4], [2, 3]];
    for i in all {
        assert_eq!(lab.bridge_of(i).as_deref(), Some(BRIDGE));
    }
    // Everyone talks to everyone first, so that every neighbour entry exists.
    for a in all {
        for b in all {
            assert!(reaches(&lab, a, b), "before the split: {a} -> {b}");
        }
    }
    // Watch carrier from another thread for the whole split and heal.
    let done = std::sync::atomic::AtomicBool::new(false);
    let lost_carrier = thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut lost = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for i in all {
                    if !lab.has_carrier(i) && !lost.contains(&i) {
                        lost.push(i);
                    }
                }
                thread::sleep(Duration::from_millis(5));
            }
            lost
        });

        lab.split(&[1, 4]);
        assert_eq!(lab.hosts_on(SPLIT_BRIDGE), [1, 4]);
        assert_eq!(lab.hosts_on(BRIDGE), [2, 3]);
        assert_eq!(lab.bridge_of(4).as_deref(), Some(SPLIT_BRIDGE));
        // VRRP's multicast must flood on the second bridge too.
        let br1 = lab.bridge_ip(["-d", "link", "show", "dev", SPLIT_BRIDGE]);
        assert!(br1.contains("mcast_snooping 0"), "{br1}");
        for side in sides {
            let (a, b) = (side[0], side[1]);
            assert!(reaches(&lab, a, b), "split: {a} -> {b} on the same side");
            assert!(reaches(&lab, b, a), "split: {b} -> {a} on the same side");
        }
        for a in sides[0] {
            for b in sides[1] {
                assert!(!lab.ping(a, lab.addr(b)), "split: {a} reached {b}");
                assert!(!lab.ping(b, lab.addr(a)), "split: {b} reached {a}");
            }
        }

        assert_eq!(lab.heal_split(), [1, 4]);
        assert!(lab.hosts_on(SPLIT_BRIDGE).is_empty());
        for a in all {
            for b in all {
                assert!(reaches(&lab, a, b), "after the heal: {a} -> {b}");
            }
        }
        assert_eq!(
            lab.heal_split(),
            Vec::<usize>::new(),
            "nothing left to heal"
        );
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        watcher.join().unwrap()
    });
    assert!(
        lost_carrier.is_empty(),
        "hosts {lost_carrier:?} lost carrier during the split or the heal"
    );
}

#[test]
fn multicast_floods_to_attached_hosts() {
    if !require_netns("multicast_floods_to_attached_hosts") {
        return;
    }
    const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
    let lab = Lab::new("mcast", 3);
    let recv = |i: usize| {
        let addr = lab.addr(i);
        lab.in_host(i, move || {
            let s = UdpSocket::bind("0.0.0.0:5118").unwrap();
            s.join_multicast_v4(&GROUP, &addr).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            s
        })
    };
    let r2 = recv(2);
    let r3 = recv(3);
    lab.detach(3);
    lab.ip(1, ["route", "add", "224.0.0.0/4", "dev", "eth0"]);
    let tx = lab.in_host(1, || UdpSocket::bind("192.0.2.11:0").unwrap());
    tx.send_to(b"advert", (GROUP, 5118)).unwrap();

    let mut buf = [0u8; 64];
    let (n, from) = r2.recv_from(&mut buf).expect("host 2 got no multicast");
    assert_eq!(&buf[..n], b"advert");
    assert_eq!(from.ip(), lab.addr(1));
    assert!(
        r3.recv_from(&mut buf).is_err(),
        "detached host 3 got multicast"
    );
}

#[test]
fn spawn_signal_kill_and_logs() {
    if !require_netns("spawn_signal_kill_and_logs") {
        return;
    }
    let lab = Lab::new("spawn", 1);

    let sleeper = lab.spawn(1, "sleep", "sleep", ["30"]);
    assert!(sleeper.is_running());
    let ns_of = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_ne!(
        ns_of(sleeper.pid()),
        ns_of(std::process::id()),
        "not in the lab namespace"
    );
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", sleeper.pid())).unwrap();
    assert_eq!(comm.trim(), "sleep", "pid is not the program's");
    assert_eq!(sleeper.wait_exit(Duration::from_millis(100)), None);
    let status = sleeper.kill();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(!sleeper.is_running());
    assert!(
        !sleeper.signal(libc::SIGTERM),
        "signalled an exited process"
    );

    let term = lab.spawn(1, "sleep", "sleep", ["30"]);
    assert!(term.signal(libc::SIGTERM));
    let status = term
        .wait_exit(Duration::from_secs(5))
        .expect("SIGTERM ignored");
    assert_eq!(status.signal(), Some(libc::SIGTERM));

    let sh = lab.spawn(
        1,
        "sh",
        "sh",
        [
            "-c",
            "echo hello; echo oops >&2; ip -4 -o addr show dev eth0; exit 3",
        ],
    );
    let status = sh
        .wait_exit(Duration::from_secs(5))
        .expect("sh did not exit");
    assert_eq!(status.code(), Some(3));
    let log = sh.log();
    assert!(log.contains("hello") && log.contains("oops"), "{log}");
    assert!(
        log.contains("192.0.2.11/24"),
        "not run inside host 1: {log}"
    );
    assert_eq!(sh.log_path(), lab.dir().join("sh.log"));

    // Same name again: the log file is appended to, log() shows only this run.
    let sh2 = lab.spawn(1, "sh", "sh", ["-c", "echo second"]);
    sh2.wait_exit(Duration::from_secs(5))
        .expect("sh did not exit");
    assert_eq!(sh2.log().trim(), "second");
    let whole = std::fs::read_to_string(sh2.log_path()).unwrap();
    assert!(whole.contains("hello") && whole.contains("second"));
}

#[test]
fn run_and_addresses() {
    if !require_netns("run_and_addresses") {
        return;
    }
    let lab = Lab::new("addr", 2);
    assert!(!lab.has_addr(1, "192.0.2.100"));
    assert!(lab.holders("192.0.2.100").is_empty());

    lab.run(1, "ip", ["addr", "add", "192.0.2.100/24", "dev", "eth0"]);
    assert!(lab.has_addr(1, "192.0.2.100"));
    assert!(lab.has_addr(1, "192.0.2.100/24"));
    assert!(
        !lab.has_addr(1, "192.0.2.10"),
        "prefix match is not a match"
    );
    assert!(!lab.has_addr(2, "192.0.2.100"));
    assert_eq!(lab.holders(Ipv4Addr::new(192, 0, 2, 100)), vec![1]);
    assert_eq!(
        lab.addr_lifetimes(1, "192.0.2.100"),
        Some(("forever".to_owned(), "forever".to_owned()))
    );
    assert_eq!(lab.addr_lifetimes(2, "192.0.2.100"), None);

    lab.run(
        2,
        "ip",
        [
            "addr",
            "add",
            "192.0.2.101/24",
            "dev",
            "eth0",
            "valid_lft",
            "30",
            "preferred_lft",
            "20",
        ],
    );
    let (valid, preferred) = lab.addr_lifetimes(2, "192.0.2.101").unwrap();
    assert!(
        valid.ends_with("sec") && preferred.ends_with("sec"),
        "{valid} {preferred}"
    );
    assert!(lab.ping(1, "192.0.2.101"));

    let out = lab.try_run(1, "ip", ["addr", "add", "not-an-address", "dev", "eth0"]);
    assert!(!out.status.success());
    let r = std::panic::catch_unwind(|| {
        lab.run(1, "false", [] as [&str; 0]);
    });
    assert!(r.is_err(), "run must panic on failure");
}

#[test]
fn drop_removes_namespaces_and_processes() {
    if !require_netns("drop_removes_namespaces_and_processes") {
        return;
    }
    let lab = Lab::new("drop", 2);
    let names = all_ns(&lab);
    let dir = lab.dir().to_owned();
    for n in &names {
        assert!(netns_list().contains(n), "{n} missing");
    }
    // Owned by the test but outliving the lab: the lab must still kill it.
    let sleeper = lab.spawn(1, "sleep", "sleep", ["30"]);
    // A grandchild the lab does not know about.
    let sh = lab.spawn(2, "sh", "sh", ["-c", "sleep 30 & echo $!; wait"]);
    let grandchild: u32 = wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
        !sh.log().trim().is_empty()
    })
    .and_then(|_| sh.log().trim().parse().ok())
    .expect("no grandchild pid");
    assert!(!pid_gone(grandchild));

    drop(lab);
    let left = netns_list();
    for n in &names {
        assert!(!left.contains(n), "{n} still exists");
    }
    assert!(!sleeper.is_running(), "lab drop left its process running");
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
            pid_gone(grandchild)
        })
        .is_some(),
        "process inside the namespace survived"
    );
    assert!(dir.join("sleep.log").exists(), "lab directory must be kept");
}

#[test]
fn drop_on_panic_removes_namespaces() {
    if !require_netns("drop_on_panic_removes_namespaces") {
        return;
    }
    let names = Mutex::new(Vec::new());
    let r = std::panic::catch_unwind(|| {
        let lab = Lab::new("panic", 1);
        *names.lock().unwrap() = all_ns(&lab);
        let _p = lab.spawn(1, "sleep", "sleep", ["30"]);
        panic!("deliberate");
    });
    assert!(r.is_err());
    let names = names.into_inner().unwrap();
    assert_eq!(names.len(), 2);
    let left = netns_list();
    for n in &names {
        assert!(!left.contains(n), "{n} survived a panic");
    }
}

#[test]
fn parallel_labs_get_unique_names() {
    if !require_netns("parallel_labs_get_unique_names") {
        return;
    }
    let labs: Vec<Lab> = thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| Lab::new("same", 2))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut names: Vec<String> = labs.iter().flat_map(all_ns).collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n, "duplicate namespace names");
    thread::scope(|s| {
        for lab in &labs {
            s.spawn(move || assert!(lab.ping(1, lab.addr(2)), "{}", lab.name()));
        }
    });
    // Same addresses in every lab, yet the labs are isolated from each other:
    // a lab's host only answers inside its own lab.
    assert_eq!(labs[0].mac(1), labs[1].mac(1));
}

#[test]
fn stale_namespaces_are_cleaned() {
    if !require_netns("stale_namespaces_are_cleaned") {
        return;
    }
    let lab = Lab::new("live", 1);
    // No process can have this pid (above the largest possible pid_max).
    // The counter field carries our pid so concurrent runs do not collide.
    let stale = format!("rh-4194305-{}-stale-br", std::process::id());
    let status = std::process::Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .unwrap();
    assert!(status.success());
    // (A concurrent test process may have cleaned it up first.)
    cleanup_stale();
    let left = netns_list();
    assert!(!left.contains(&stale), "stale namespace kept");
    assert!(left.contains(&lab.ns(1).to_owned()), "live lab removed");
    assert!(lab.ping(1, lab.addr(1)));
}
