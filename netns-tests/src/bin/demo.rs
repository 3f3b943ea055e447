//! The two-host demo: two redha nodes and a client in network namespaces, through
//! election, a planned stop, a crash, and a partition, with a timeline of who holds
//! the VIP and why. Run as root: `scripts/demo` (or `cargo run -p netns-tests --bin
//! demo`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use netns_tests::redha::{self, Node, VIP};
use netns_tests::{Lab, Proc, require_netns, wait_until};

const POLL: Duration = Duration::from_millis(50);

fn main() {
    if !require_netns("demo") {
        eprintln!("the demo needs root and iproute2 (ip netns): run scripts/demo with sudo");
        std::process::exit(1);
    }
    let lab = Lab::new("demo", 3);
    let start = Instant::now();
    let wall_start = seconds_of_day(SystemTime::now());
    let stamp = move || format!("{:>6.1}s", start.elapsed().as_secs_f64());
    let names = ["", "host-a", "host-b", "client"];
    println!(
        "redha demo: host-a {} and host-b {} run redha for VIP {VIP}; client {} watches.",
        lab.addr(1),
        lab.addr(2),
        lab.addr(3)
    );
    println!(
        "Both use the classic settings: nopreempt, advert_int 1s; host-a has priority 150, host-b 100.\n"
    );

    let a = Node {
        preempt: false,
        ..Node::with_priority(150)
    };
    let b = Node {
        preempt: false,
        ..Node::with_priority(100)
    };
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // The timeline: every change of VIP holders, as the kernel shows them.
        scope.spawn(|| {
            let mut last = None;
            while !done.load(Ordering::Relaxed) {
                let holders = lab.holders(VIP);
                if last.as_ref() != Some(&holders) {
                    let who: Vec<&str> = holders.iter().map(|h| names[*h]).collect();
                    let text = if who.is_empty() {
                        "nobody".to_string()
                    } else {
                        who.join(" AND ")
                    };
                    println!("{}  | VIP held by {text}", stamp());
                    last = Some(holders);
                }
                std::thread::sleep(POLL);
            }
        });

        let step = |text: &str| println!("{}  > {text}", stamp());
        step("start redha on host-a and host-b at the same time");
        let pa_first = redha::start(&lab, 1, &a);
        let pb_first = redha::start(&lab, 2, &b);
        settle(&lab, &[1], Duration::from_secs(8));
        lab.ping(3, VIP);
        println!(
            "{}  | client's ARP entry for the VIP: {} (host-a is {})",
            stamp(),
            lab.neigh_mac(3, VIP).unwrap_or_default(),
            lab.mac(1)
        );

        step("planned stop: SIGTERM to host-a's redha (it sends priority 0 and removes the VIP)");
        pa_first.signal(libc::SIGTERM);
        settle(&lab, &[2], Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(300));
        println!(
            "{}  | client's ARP entry: {} (host-b is {}): moved by gratuitous ARP",
            stamp(),
            lab.neigh_mac(3, VIP).unwrap_or_default(),
            lab.mac(2)
        );

        step("host-a's redha comes back: nopreempt, so host-b keeps the VIP");
        let pa = redha::start(&lab, 1, &a);
        std::thread::sleep(Duration::from_secs(5));

        step(&format!(
            "crash: SIGKILL to host-b's redha (no goodbye; its VIP has a {:?} kernel lease)",
            b.address_lease()
        ));
        pb_first.kill();
        settle(&lab, &[1], Duration::from_secs(8));

        step("host-b's redha comes back as backup");
        let pb = redha::start(&lab, 2, &b);
        std::thread::sleep(Duration::from_secs(2));

        step("partition: host-a's port is taken off the bridge (its link stays up)");
        lab.detach(1);
        settle(&lab, &[1, 2], Duration::from_secs(8));
        step("heal: host-a is back on the bridge; the RFC says the higher priority keeps the VIP");
        lab.attach(1);
        settle(&lab, &[1], Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(500));
        println!(
            "{}  | client's ARP entry: {} (host-a is {})",
            stamp(),
            lab.neigh_mac(3, VIP).unwrap_or_default(),
            lab.mac(1)
        );

        step("done: stopping both nodes");
        pa.signal(libc::SIGTERM);
        pb.signal(libc::SIGTERM);
        pa.wait_exit(Duration::from_secs(5));
        pb.wait_exit(Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(200));
        done.store(true, Ordering::Relaxed);
        println!("\nWhy: every VRRP transition the nodes logged (from -> to: reason)");
        let mut lines = Vec::new();
        for (name, procs) in [("host-a", [&pa_first, &pa]), ("host-b", [&pb_first, &pb])] {
            for proc in procs {
                lines.extend(transitions(name, proc, wall_start));
            }
        }
        lines.sort_by(|x, y| x.0.total_cmp(&y.0));
        // An earlier run's log view also holds the later run's lines of that host.
        lines.dedup();
        for (t, line) in lines {
            println!("{t:>6.1}s  {line}");
        }
    });
    println!("\nLogs of this run: {}", lab.dir().display());
}

/// Waits until exactly `holders` hold the VIP.
fn settle(lab: &Lab, holders: &[usize], within: Duration) {
    if wait_until(within, POLL, || lab.holders(VIP) == holders).is_none() {
        eprintln!(
            "demo: expected holders {holders:?}, still {:?} after {within:?}",
            lab.holders(VIP)
        );
    }
}

/// Seconds since midnight UTC.
fn seconds_of_day(t: SystemTime) -> f64 {
    let since_epoch = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    since_epoch.as_secs_f64() % 86_400.0
}

/// The VRRP transitions a node logged, as (seconds since the demo started, text).
/// Log lines start with an RFC 3339 UTC time stamp: `2026-11-25T18:01:14.729322Z`.
fn transitions(name: &str, proc: &Proc, wall_start: f64) -> Vec<(f64, String)> {
    let log = proc.log();
    log.lines()
        .filter(|l| l.contains("VRRP transition"))
        .filter_map(|line| {
            let clock = line.split('T').nth(1)?.split('Z').next()?;
            let mut parts = clock.split(':');
            let h: f64 = parts.next()?.parse().ok()?;
            let m: f64 = parts.next()?.parse().ok()?;
            let s: f64 = parts.next()?.parse().ok()?;
            let at = h * 3600.0 + m * 60.0 + s - wall_start;
            let field = |key: &str| -> Option<String> {
                let rest = line.split(&format!(" {key}=")).nth(1)?;
                let end = [" from=", " to=", " reason=", " priority="]
                    .iter()
                    .filter_map(|k| rest.find(k))
                    .min()
                    .unwrap_or(rest.len());
                Some(rest[..end].to_string())
            };
            Some((
                at,
                format!(
                    "{name}: {} -> {}: {}",
                    field("from")?,
                    field("to")?,
                    field("reason")?
                ),
            ))
        })
        .collect()
}
