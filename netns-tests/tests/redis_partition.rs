//! Partitions that keep the carrier (issue 7): the cut-off side goes silent, no
//! resets, no link change.
//!
//! Hosts 1 and 2 run `redis-server` and redha as in `redis_failover.rs` (host 1
//! priority 150, host 2 priority 100, both `preempt = false`, each replicating
//! with the other); client host 3 writes through the VIP. Each test prints a
//! timeline (VIP holders, both Redis roles, the client's neighbour entry for the
//! VIP, the client's writes) with wall-clock times, and the matching window of
//! host 2's redha log and state log, so that where the time goes can be read off.

use std::io::{self, Read as _};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use socket2::{Domain, Protocol, Socket, Type};

use netns_tests::pair::{
    self, CATCH_UP_TIMEOUT, CHECK_INTERVAL, DISKLESS_SYNC_DELAY, RISE, require, role, vip_addr,
};
use netns_tests::redha::{self, MARGIN, Node, VIP};
use netns_tests::redis::{RedisNode, RedisOpts};
use netns_tests::timeline::{Timeline, log_window, utc};
use netns_tests::writer::{WriteLog, Writer, error_kind};
use netns_tests::{Lab, Proc};

/// The client host, on host 2's side of the cut.
const CLIENT: usize = 3;
/// One write every this long.
const WRITE_INTERVAL: Duration = Duration::from_millis(10);
/// Polling period of the waits (each sample takes a few `ip` calls on top).
const POLL: Duration = Duration::from_millis(10);

/// Host 1: priority 150; host 2: priority 100; both nopreempt, each replicating
/// with the other.
fn node(lab: &Lab, host: usize) -> Node {
    pair::node(lab, host, false)
}

/// The two Redis hosts with their agents, the client's writer, and what was seen.
struct Scene<'lab> {
    test: &'static str,
    lab: &'lab Lab,
    /// Index `host - 1`.
    redis: Vec<RedisNode<'lab>>,
    agents: Vec<(usize, Proc)>,
    timeline: Timeline,
    writer: Option<Writer>,
}

impl<'lab> Scene<'lab> {
    /// Starts Redis on hosts 1 and 2, then redha on host 1 and host 2.
    fn start(test: &'static str, lab: &'lab Lab, opts: RedisOpts) -> Self {
        let redis = pair::start_redis(lab, opts);
        let mut scene = Scene {
            test,
            lab,
            redis,
            agents: Vec::new(),
            timeline: Timeline::new(),
            writer: None,
        };
        for host in 1..=2 {
            let proc = redha::start(lab, host, &node(lab, host));
            scene.note(format!("redha started on host {host}"));
            scene.agents.push((host, proc));
        }
        scene
    }

    fn note(&mut self, what: impl std::fmt::Display) {
        let what = what.to_string();
        eprintln!(
            "{}: +{:.2}s {what}",
            self.test,
            self.timeline.started().elapsed().as_secs_f64()
        );
        self.timeline.note(what);
    }

    /// Which host a MAC belongs to, for the client's neighbour entry.
    fn host_of_mac(&self, mac: &str) -> String {
        (1..=self.lab.hosts())
            .find(|&i| self.lab.mac(i) == mac)
            .map_or_else(|| mac.to_owned(), |i| format!("host {i}"))
    }

    /// Looks at everything once and records what changed.
    fn sample(&mut self) {
        let holders = self.lab.holders(VIP);
        self.timeline.set("VIP holders", format!("{holders:?}"));
        for host in 1..=2 {
            let r = role(&self.redis[host - 1]);
            self.timeline.set(&format!("host {host} Redis"), r);
        }
        let neigh = match self.lab.neigh_mac(CLIENT, VIP) {
            Some(mac) => self.host_of_mac(&mac),
            None => "none (resolving or failed)".into(),
        };
        self.timeline
            .set(&format!("client's neighbour entry for {VIP}"), neigh);
        if let Some(w) = &self.writer {
            let log = w.snapshot();
            let last_ack = log.acked.last().map(|&(_, at)| at);
            let last_err = log.errors.last().map(|(_, at, e)| (*at, e.clone()));
            let state = match (last_ack, last_err) {
                (_, None) => "writes acknowledged".to_owned(),
                (Some(ack), Some((err, _))) if ack > err => "writes acknowledged".to_owned(),
                (_, Some((_, e))) => format!("writes failing ({})", error_kind(&e)),
            };
            self.timeline.set("client", state);
        }
    }

    /// Samples until `f` holds or `within` passes; `None` on timeout.
    fn wait(&mut self, within: Duration, mut f: impl FnMut(&Self) -> bool) -> Option<Duration> {
        let start = Instant::now();
        loop {
            self.sample();
            if f(self) {
                return Some(start.elapsed());
            }
            if start.elapsed() >= within {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Exactly one VIP holder, host `master`, its Redis master, the other Redis its
    /// replica with the link up.
    fn settled_with(&self, master: usize) -> bool {
        pair::settled(self.lab, &self.redis) == Ok(master)
    }

    fn agent_log(&self, host: usize) -> String {
        pair::agent_log(&self.agents, host)
    }

    fn state_log(&self, host: usize) -> String {
        pair::state_log(self.lab, host)
    }

    fn fail(&self, msg: &str) -> ! {
        panic!(
            "{}: {msg}\n--- timeline:\n{}--- lab dir {}",
            self.test,
            self.timeline.render(),
            self.lab.dir().display()
        );
    }
}

/// A raw VRRP socket (protocol 112, joined to 224.0.0.18) in host `i`: it sees
/// every advert on that host's side of the switch.
fn advert_listener(lab: &Lab, i: usize) -> Socket {
    let addr = lab.addr(i);
    lab.in_host(i, move || -> io::Result<Socket> {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112)))?;
        s.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 18), &addr)?;
        Ok(s)
    })
    .unwrap_or_else(|e| panic!("a raw VRRP socket in host {i}: {e}"))
}

/// Waits up to `within` for the next advert from `from` (adverts queued before
/// the call are skipped); returns whether one came.
fn next_advert(socket: &Socket, from: Ipv4Addr, within: Duration) -> bool {
    let mut buf = [0u8; 2048];
    let mut reader = socket;
    socket.set_nonblocking(true).expect("non-blocking");
    while reader.read(&mut buf).is_ok() {}
    socket.set_nonblocking(false).expect("blocking");
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        socket
            .set_read_timeout(Some(left))
            .expect("set the read timeout");
        match reader.read(&mut buf) {
            // The IPv4 header's source address.
            Ok(n) if n >= 20 && buf[12..16] == from.octets() => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// The longest interval between consecutive acknowledgements: its length and the
/// acknowledgements around it (from the writer's start).
fn longest_gap(log: &WriteLog) -> (Duration, Duration, Duration) {
    log.acked
        .windows(2)
        .map(|w| (w[1].1.saturating_sub(w[0].1), w[0].1, w[1].1))
        .max()
        .unwrap_or_default()
}

/// The first line of `log` at or after `since` containing all of `needles`, and
/// its time.
fn first_line_after<'a>(
    log: &'a str,
    since: SystemTime,
    needles: &[&str],
) -> Option<(SystemTime, &'a str)> {
    log.lines().find_map(|l| {
        let t = netns_tests::timeline::line_time(l)?;
        (t >= since && needles.iter().all(|n| l.contains(n))).then_some((t, l))
    })
}

fn secs_between(a: SystemTime, b: SystemTime) -> String {
    match b.duration_since(a) {
        Ok(d) => format!("{:+.3}s", d.as_secs_f64()),
        Err(e) => format!("{:+.3}s", -e.duration().as_secs_f64()),
    }
}

/// The master's switch port leaves the bridge, its carrier kept: host 1 and its
/// Redis go silent (no RST, no link change), the client on host 2's side goes on
/// writing through the VIP. Host 2 takes the VIP after Master_Down_Interval and
/// must promote at once: its peer is known unreachable. The client's longest
/// write gap must stay within 3 x advert_int + 1 s (the bound; the
/// protocol's Master_Down_Interval is 3.6 s at advert_int 1 s).
#[test]

fn silent_partition_gap() {
    let test = "silent_partition_gap";
    if !require(test) {
        return;
    }
    let lab = Lab::new("silent", 3);
    let adverts = advert_listener(&lab, CLIENT);
    let mut scene = Scene::start(test, &lab, RedisOpts::default());
    let n2 = node(&lab, 2);
    let advert_int = n2.advert_int;

    let settle = CHECK_INTERVAL * RISE
        + node(&lab, 1).master_down_interval()
        + DISKLESS_SYNC_DELAY
        + MARGIN * 2;
    if scene.wait(settle, |s| s.settled_with(1)).is_none() {
        scene.fail(&format!(
            "the pair did not settle with host 1 master within {settle:?}"
        ));
    }
    scene.note("settled: host 1 master, host 2 its replica");
    scene.writer = Some(Writer::start(&lab, CLIENT, vip_addr(), WRITE_INTERVAL));
    let writer_started = scene.writer.as_ref().expect("writer").snapshot().started;
    if scene
        .wait(Duration::from_secs(5), |s| {
            s.writer.as_ref().expect("writer").acked_count() >= 100
        })
        .is_none()
    {
        scene.fail("the client could not write through the VIP");
    }

    // The cut, right after an advert from host 1 (the worst phase: host 2 then
    // waits the whole Master_Down_Interval): host 1's port leaves the bridge;
    // both ends keep their carrier.
    if !next_advert(&adverts, lab.addr(1), advert_int * 3) {
        scene.fail("no advert from host 1 seen on the client's side");
    }
    let advert_seen = Instant::now();
    lab.detach(1);
    let cut = Instant::now();
    scene.note(format!(
        "host 1's switch port left the bridge (carrier kept), {:?} after its last advert",
        cut - advert_seen
    ));
    let cut_wall = scene.timeline.wall(cut);
    let cut_at = scene.timeline.started().elapsed();
    scene.timeline.set("host 1 carrier", lab.has_carrier(1));
    assert!(lab.has_carrier(1), "host 1 lost its carrier");

    // Wait for the takeover and for writes to resume, then a little longer.
    let resume_bound = n2.master_down_interval() + CATCH_UP_TIMEOUT + MARGIN * 4;
    let resumed = scene.wait(resume_bound, |s| {
        let log = s.writer.as_ref().expect("writer").snapshot();
        let since_cut = cut.duration_since(log.started);
        s.redis[1]
            .client()
            .and_then(|mut c| c.role())
            .is_ok_and(|r| r == "master")
            && log
                .acked
                .iter()
                .any(|&(_, at)| at > since_cut + Duration::from_millis(100))
    });
    let Some(resumed) = resumed else {
        scene.fail(&format!(
            "writes did not resume on host 2 within {resume_bound:?} of the cut"
        ));
    };
    scene.note(format!(
        "writes resumed on host 2 {resumed:?} after the cut"
    ));
    let _ = scene.wait(Duration::from_secs(1), |_| false);
    scene.timeline.set("host 1 carrier", lab.has_carrier(1));
    assert!(lab.has_carrier(1), "host 1 lost its carrier");
    let log = scene.writer.take().expect("writer").stop();

    // Where the time went.
    let (gap, gap_from, gap_to) = longest_gap(&log);
    let wall_of = |at: Duration| scene.timeline.wall(writer_started + at);
    let (gap_from_wall, gap_to_wall) = (wall_of(gap_from), wall_of(gap_to));
    let state2 = scene.state_log(2);
    let agent2 = scene.agent_log(2);
    let takeover = first_line_after(&agent2, cut_wall, &["VRRP transition", "to=MASTER"]);
    let seen = first_line_after(&state2, cut_wall, &["event=transition", "to=MASTER"]);
    let promote = first_line_after(&state2, cut_wall, &["event=command", "REPLICAOF NO ONE"]);
    let mut report = format!(
        "{test}: writer: {}\n\
         longest write gap {gap:?}: from the ack at {} to the ack at {} ({} to {} of the cut)\n",
        log.summary(),
        utc(gap_from_wall),
        utc(gap_to_wall),
        secs_between(cut_wall, gap_from_wall),
        secs_between(cut_wall, gap_to_wall),
    );
    let mut line = |what: &str, found: Option<(SystemTime, &str)>| {
        let at = found.map_or("never".to_owned(), |(t, _)| {
            format!("{} ({} of the cut)", utc(t), secs_between(cut_wall, t))
        });
        report.push_str(&format!("  {what}: {at}\n"));
    };
    line("cut", Some((cut_wall, "")));
    line("host 2 VRRP master", takeover);
    line("host 2's coordinator sees it", seen);
    line("host 2 promotes its Redis", promote);
    let window_from = cut_wall - Duration::from_secs(1);
    let window_to = gap_to_wall.max(cut_wall) + Duration::from_millis(500);
    let agent_lines: Vec<&str> = log_window(&agent2, window_from, window_to)
        .into_iter()
        .filter(|l| !l.contains("vrrp::driver: advert ") && !l.contains("sent advert"))
        .collect();
    report.push_str(&format!(
        "--- timeline (relative to the cut):\n{}\
         --- host 2's redha log from 1 s before the cut to 0.5 s after writes resumed \
         (adverts left out; full log {}):\n{}\n\
         --- host 2's state log, same window:\n{}\n--- lab dir {}",
        scene.timeline.render_from(cut_at),
        lab.dir().join("redha-h2.log").display(),
        agent_lines.join("\n"),
        log_window(&state2, window_from, window_to).join("\n"),
        lab.dir().display(),
    ));
    eprintln!("{report}");

    let bound = advert_int * 3 + Duration::from_secs(1);
    assert!(
        gap <= bound,
        "{test}: longest write gap {gap:?} exceeds 3 x advert_int + 1 s = {bound:?}\n\
         (see the timeline and logs above)"
    );
}

/// A token-bucket filter on both ends of host `i`'s link (`rate` kbit/s, queue
/// latency 200 ms), or none: a slow link that queues and drops what overflows,
/// as the fault soak's `delay`.
fn slow_link(lab: &Lab, i: usize, rate_kbit: Option<u32>) {
    let port = format!("p{i}");
    let rate = rate_kbit.map(|r| format!("{r}kbit"));
    for (ns, dev) in [
        (lab.ns(i), netns_tests::HOST_IF),
        (lab.bridge_ns(), port.as_str()),
    ] {
        let mut args = vec!["-n", ns, "qdisc"];
        match &rate {
            Some(rate) => args.extend([
                "replace", "dev", dev, "root", "tbf", "rate", rate, "burst", "4kb", "latency",
                "200ms",
            ]),
            None => args.extend(["del", "dev", dev, "root"]),
        }
        let out = std::process::Command::new("tc")
            .args(&args)
            .output()
            .expect("run tc");
        assert!(
            out.status.success(),
            "tc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Drops, in host `i`, every packet from host `from` (adverts, the replication
/// stream, answers to reads), or stops dropping: a one-way outage, what a queue
/// that overflows does for seconds at a time.
fn drop_from(lab: &Lab, i: usize, from: usize, on: bool) {
    let script = if on {
        format!(
            "table inet redha_test {{\n chain input {{\n  type filter hook input priority 0;\n  ip saddr {} drop\n }}\n}}\n",
            lab.addr(from)
        )
    } else {
        "delete table inet redha_test\n".to_owned()
    };
    let path = lab.dir().join(format!("drop-h{i}.nft"));
    std::fs::write(&path, script).expect("write the nft script");
    let out = lab.try_run(i, "nft", [std::ffi::OsStr::new("-f"), path.as_os_str()]);
    assert!(
        out.status.success(),
        "nft -f {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fault soak's finding (`--seed 1`, fault 103): the replica's link slowed
/// to 64 kbit/s, below what the client's writes stream. Its agent's reads of the
/// master's Redis time out while the stream still comes in; then the queue loses
/// the master's adverts and stalls its stream for seconds (here: everything from
/// the master dropped for a while), so the replica takes the VIP with a copy
/// seconds old while the master lives on and acknowledges writes. The replica's
/// adverts get through, and the master, of lower priority after an earlier
/// failover, yields. Nothing acknowledged may be lost: the replica, having seen
/// the master alive behind a slow link, holds its writes until it has read the
/// master, then follows it.
#[test]
fn slow_link_on_the_replica_loses_no_acknowledged_write() {
    let test = "slow_link_on_the_replica_loses_no_acknowledged_write";
    if !require(test) {
        return;
    }
    let lab = Lab::new("slowrep", 3);
    let mut scene = Scene::start(test, &lab, RedisOpts::default().rdb_default());
    let n1 = node(&lab, 1);
    let settle = pair::election_bound(&n1) + pair::sync_bound();
    if scene.wait(settle, |s| s.settled_with(1)).is_none() {
        scene.fail(&format!(
            "no settled pair with host 1 master within {settle:?}"
        ));
    }
    // Host 1 (priority 150) hands over and comes back as the replica: host 2
    // (priority 100) is master, as after an earlier failover.
    let first = scene.agents.remove(0).1;
    first.signal(libc::SIGTERM);
    if first.wait_exit(Duration::from_secs(15)).is_none() {
        scene.fail("host 1's agent did not exit on SIGTERM");
    }
    if scene.wait(settle, |s| s.settled_with(2)).is_none() {
        scene.fail("host 2 did not take over from host 1's planned stop");
    }
    let proc = redha::start(&lab, 1, &n1);
    scene.agents.push((1, proc));
    scene.note("host 1's agent restarted");
    if scene
        .wait(settle, |s| {
            s.settled_with(2)
                && pair::latest_agent(&s.agents, 1)
                    .log()
                    .contains("following the peer, link up")
        })
        .is_none()
    {
        scene.fail("host 1 did not rejoin as host 2's replica");
    }
    scene.writer = Some(Writer::start(&lab, CLIENT, vip_addr(), WRITE_INTERVAL));
    if !scene
        .writer
        .as_ref()
        .expect("writer")
        .wait_acked(100, Duration::from_secs(5))
    {
        scene.fail("the client could not write through the VIP");
    }

    slow_link(&lab, 1, Some(64));
    scene.note("host 1's link slowed to 64 kbit/s (held 5 s)");
    let _ = scene.wait(Duration::from_secs(5), |_| false);
    drop_from(&lab, 1, 2, true);
    scene.note("host 1 drops everything from host 2");
    let takeover = n1.master_down_interval() + MARGIN * 2;
    if scene
        .wait(takeover, |s| s.lab.holders(VIP).contains(&1))
        .is_none()
    {
        scene.fail(&format!(
            "host 1 did not take the VIP within {takeover:?} of losing host 2's adverts"
        ));
    }
    scene.note("host 1 holds the VIP (the drop held 3 s more)");
    let _ = scene.wait(Duration::from_secs(3), |_| false);
    drop_from(&lab, 1, 2, false);
    scene.note("host 1 hears host 2 again, over the slow link");
    let bound = CATCH_UP_TIMEOUT + pair::election_bound(&n1) + MARGIN * 2;
    if scene
        .wait(bound, |s| pair::settled(s.lab, &s.redis).is_ok())
        .is_none()
    {
        scene.fail(&format!(
            "the pair did not settle over the slow link within {bound:?}"
        ));
    }
    slow_link(&lab, 1, None);
    scene.note("host 1's link back to full speed");
    let bound = pair::election_bound(&n1) + pair::sync_bound();
    if scene
        .wait(bound, |s| pair::settled(s.lab, &s.redis).is_ok())
        .is_none()
    {
        scene.fail(&format!("the pair did not settle within {bound:?}"));
    }
    let master = pair::settled(&lab, &scene.redis).expect("settled");
    scene.note(format!("settled with host {master} master"));
    let log = scene.writer.take().expect("writer").stop();
    let addr = scene.redis[master - 1].addr();
    let missing = netns_tests::writer::missing_keys(&lab, CLIENT, addr, &log.acked_keys());
    eprintln!(
        "{test}: writer: {}\n--- timeline:\n{}--- host 1's state log:\n{}",
        log.summary(),
        scene.timeline.render(),
        scene.state_log(1),
    );
    if !missing.is_empty() {
        scene.fail(&format!(
            "{} acknowledged writes missing on host {master}, the master: {}\n--- host 2's state log:\n{}",
            missing.len(),
            netns_tests::writer::ranges(&missing),
            scene.state_log(2),
        ));
    }
}
