//! The two-host demo: two hosts with redis-server and redha, and a client writing
//! through the VIP, in network namespaces, through the classic faults: a planned
//! switchover, Redis killed on the master, redha killed on the master, and a
//! partition. It prints a timeline of who holds the VIP, each Redis's role and the
//! client's write gaps. Run as root: `scripts/demo` (or `cargo run -p netns-tests
//! --bin demo`).

use std::net::SocketAddrV4;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use netns_tests::redha::{self, Node, RedisSettings, VIP};
use netns_tests::redis::{RedisNode, RedisOpts, lab_connect, require_redis};
use netns_tests::writer::{WriteLog, Writer, missing_keys};
use netns_tests::{Lab, Proc, require_netns, wait_until};

const POLL: Duration = Duration::from_millis(100);
const NAMES: [&str; 4] = ["", "host-a", "host-b", "client"];

fn main() {
    if !require_netns("demo") || !require_redis("demo") {
        eprintln!("the demo needs root, iproute2 and redis-server: run scripts/demo with sudo");
        std::process::exit(1);
    }
    let lab = Lab::new("demo", 3);
    let start = Instant::now();
    let stamp = move || format!("{:>6.1}s", start.elapsed().as_secs_f64());
    println!(
        "redha demo: host-a {} and host-b {} each run redis-server and redha; the VIP is {VIP}.",
        lab.addr(1),
        lab.addr(2)
    );
    println!(
        "The client {} writes a key every 10 ms through the VIP and counts what was acknowledged.",
        lab.addr(3)
    );
    println!(
        "Both nodes use the classic settings (nopreempt, advert_int 1s); host-a has priority 150, host-b 100.\n"
    );

    let _redis_a = RedisNode::start(&lab, 1, RedisOpts::default());
    let mut redis_b = RedisNode::start(&lab, 2, RedisOpts::default());
    let node = |host: usize, priority: u8| Node {
        preempt: false,
        redis: Some(RedisSettings::pair(
            lab.addr(3 - host),
            lab.dir().join(format!("state-h{host}.log")),
        )),
        ..Node::with_priority(priority)
    };
    let (a, b) = (node(1, 150), node(2, 100));
    let done = AtomicBool::new(false);
    let procs: Mutex<Vec<(usize, Proc)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        scope.spawn(|| timeline(&lab, &done, &stamp));
        let step = |text: &str| println!("{}  > {text}", stamp());
        let start_node = |host: usize, node: &Node| {
            let proc = redha::start(&lab, host, node);
            procs.lock().unwrap().push((host, proc));
        };
        let signal_node = |host: usize, signal: i32| {
            for (h, p) in procs.lock().unwrap().iter() {
                if *h == host && p.is_running() {
                    p.signal(signal);
                }
            }
        };

        step("start redha on both hosts at once (no start-up ritual)");
        start_node(1, &a);
        start_node(2, &b);
        settle_pair(&lab, 1, Duration::from_secs(20));
        let writer = Writer::start(
            &lab,
            3,
            SocketAddrV4::new(VIP.parse().unwrap(), 6379),
            Duration::from_millis(10),
        );
        std::thread::sleep(Duration::from_secs(3));
        let mut mark = writer.snapshot();

        step(
            "planned switchover: SIGTERM to host-a's redha (pause writes, let host-b catch up, hand over)",
        );
        signal_node(1, libc::SIGTERM);
        settle(&lab, 2, Duration::from_secs(10));
        std::thread::sleep(Duration::from_secs(2));
        mark = report(&writer, mark, &stamp);

        step("host-a's redha comes back; host-a's Redis stays host-b's replica");
        start_node(1, &a);
        std::thread::sleep(Duration::from_secs(3));
        settle_pair(&lab, 2, Duration::from_secs(20));

        step("Redis killed (SIGKILL) on the master host-b: host-b goes FAULT, host-a promotes");
        redis_b.kill();
        settle(&lab, 1, Duration::from_secs(10));
        std::thread::sleep(Duration::from_secs(2));
        mark = report(&writer, mark, &stamp);

        step("host-b's Redis restarts empty; it must not become a source: it resyncs from host-a");
        redis_b.restart_empty();
        std::thread::sleep(Duration::from_secs(3));
        settle_pair(&lab, 1, Duration::from_secs(20));

        step(
            "redha killed (SIGKILL) on the master host-a while its Redis lives: its VIP lease runs out,",
        );
        println!(
            "{}  >   host-b takes over, fences host-a's Redis, catches up, promotes",
            stamp()
        );
        for (h, p) in procs.lock().unwrap().iter() {
            if *h == 1 && p.is_running() {
                p.kill();
            }
        }
        settle(&lab, 2, Duration::from_secs(10));
        std::thread::sleep(Duration::from_secs(2));
        mark = report(&writer, mark, &stamp);

        step("host-a's redha comes back as backup");
        start_node(1, &a);
        std::thread::sleep(Duration::from_secs(3));
        settle_pair(&lab, 2, Duration::from_secs(20));

        step("partition: host-b (master) is cut off the LAN; host-a takes over for the client");
        lab.detach(2);
        settle_any(&lab, &[1, 2], Duration::from_secs(10));
        std::thread::sleep(Duration::from_secs(3));
        step("heal: one master again, the RFC's choice; the other side's Redis follows it");
        lab.attach(2);
        settle_pair(&lab, 1, Duration::from_secs(20));
        std::thread::sleep(Duration::from_secs(1));
        let _ = report(&writer, mark, &stamp);

        let log = writer.stop();
        let holder = lab.holders(VIP).first().copied().unwrap_or(1);
        let master_addr = SocketAddrV4::new(lab.addr(holder), 6379);
        let missing = missing_keys(&lab, 3, master_addr, &log.acked_keys());
        println!(
            "\n{} writes acknowledged in all; {} of them missing on the final master ({}); longest gap {:.2}s.",
            log.acked.len(),
            missing.len(),
            NAMES[holder],
            log.longest_gap().as_secs_f64()
        );
        println!(
            "(The Redis kill loses what host-b had not yet replicated: asynchronous replication. The other faults lose nothing.)"
        );
        for (_, p) in procs.lock().unwrap().iter() {
            if p.is_running() {
                p.signal(libc::SIGTERM);
            }
        }
        for (_, p) in procs.lock().unwrap().iter() {
            p.wait_exit(Duration::from_secs(15));
        }
        done.store(true, Ordering::Relaxed);
    });
    println!("\nEvery decision, with the ids and offsets compared, is in the state logs:");
    println!("  {}/state-h1.log and state-h2.log", lab.dir().display());
}

/// Prints a line whenever the VIP holders or a Redis role change.
fn timeline(lab: &Lab, done: &AtomicBool, stamp: &dyn Fn() -> String) {
    let mut last = String::new();
    while !done.load(Ordering::Relaxed) {
        let holders: Vec<&str> = lab.holders(VIP).iter().map(|h| NAMES[*h]).collect();
        let vip = if holders.is_empty() {
            "nobody".to_string()
        } else {
            holders.join(" AND ")
        };
        let role = |host: usize| {
            let addr = SocketAddrV4::new(lab.addr(host), 6379);
            match lab_connect(lab, 3, addr, Duration::from_millis(300)).and_then(|mut c| c.role()) {
                Ok(role) if role == "slave" => "replica".to_string(),
                Ok(role) => role,
                Err(_) => "down".to_string(),
            }
        };
        let line = format!(
            "VIP: {vip:<16} redis host-a: {:<8} host-b: {:<8}",
            role(1),
            role(2)
        );
        if line != last {
            println!("{}  | {line}", stamp());
            last = line;
        }
        std::thread::sleep(POLL);
    }
}

/// The client's view since `since`: acknowledged writes and the longest gap.
fn report(writer: &Writer, since: WriteLog, stamp: &dyn Fn() -> String) -> WriteLog {
    let now = writer.snapshot();
    let from = since.acked.last().map_or(Duration::ZERO, |(_, t)| *t);
    let window: Vec<Duration> = now
        .acked
        .iter()
        .map(|(_, t)| *t)
        .filter(|t| *t >= from)
        .collect();
    let gap = window
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    println!(
        "{}  | client: {} writes acknowledged in this step, longest gap {:.2}s",
        stamp(),
        window.len().saturating_sub(1),
        gap.as_secs_f64()
    );
    now
}

/// Waits until exactly `host` holds the VIP.
fn settle(lab: &Lab, host: usize, within: Duration) {
    settle_any(lab, &[host], within);
}

/// Waits until `host` holds the VIP, its Redis is master and the other host's Redis
/// is its replica with the link up: a settled pair, ready for the next fault.
fn settle_pair(lab: &Lab, host: usize, within: Duration) {
    let other = 3 - host;
    let settled = || {
        let query = |h: usize| {
            lab_connect(
                lab,
                3,
                SocketAddrV4::new(lab.addr(h), 6379),
                Duration::from_millis(300),
            )
        };
        lab.holders(VIP) == [host]
            && query(host)
                .and_then(|mut c| c.role())
                .is_ok_and(|r| r == "master")
            && query(other).and_then(|mut c| c.link_up()).unwrap_or(false)
    };
    if wait_until(within, Duration::from_millis(100), settled).is_none() {
        eprintln!(
            "demo: the pair did not settle on {} within {within:?}",
            NAMES[host]
        );
    }
}

fn settle_any(lab: &Lab, holders: &[usize], within: Duration) {
    if wait_until(within, Duration::from_millis(50), || {
        lab.holders(VIP) == holders
    })
    .is_none()
    {
        eprintln!(
            "demo: expected VIP holders {holders:?}, still {:?} after {within:?}",
            lab.holders(VIP)
        );
    }
}
