//! SIGHUP with another interface or VRID: the agent replaces its VRRP instance, and
//! starts the new one before the old one lets anything go.
//!
//! - A file that names an interface that does not exist (with the same VRID, then
//!   with another VRID) is refused: the master goes on as it was, holding the VIP
//!   throughout (polled every 50 ms), its backup hearing it, the refusal logged at
//!   ERROR and counted.
//! - A valid replacement (another VRID on both nodes) ends with one VIP holder, the
//!   master, under the new VRID, both agents still running.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netns_tests::holder_watch::HolderWatch;
use netns_tests::metrics_page::{sample, scrape};
use netns_tests::redha::{self, MARGIN, Node, VIP};
use netns_tests::{Lab, Proc, redha_bin, require_netns, wait_until};

const POLL: Duration = Duration::from_millis(50);
const METRICS: u16 = 9150;

fn node(priority: u8, vrid: u8) -> Node {
    Node {
        vrid,
        extra: format!("\n[metrics]\nlisten = \"127.0.0.1:{METRICS}\"\n"),
        ..Node::with_priority(priority)
    }
}

/// Writes node `i`'s file for `node`, on interface `interface` instead of eth0.
fn write_on(lab: &Lab, i: usize, node: &Node, interface: &str) {
    let path = redha::write_config(lab, i, node);
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        "interface = \"eth0\"",
        &format!("interface = {interface:?}"),
        1,
    );
    std::fs::write(&path, text).unwrap();
}

/// `redha status` of host `i`: (VRID, state), read off its table.
fn status(lab: &Lab, i: usize) -> Option<(u64, String)> {
    let out = Command::new(redha_bin())
        .arg("status")
        .arg("--socket")
        .arg(redha::control_socket(lab, i))
        .output()
        .ok()?;
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let vrid = table
        .lines()
        .find(|l| l.starts_with("instance "))?
        .split("VRID ")
        .nth(1)?
        .trim_end_matches(')')
        .parse()
        .ok()?;
    let state = table
        .lines()
        .find_map(|l| l.strip_prefix("state "))?
        .split_whitespace()
        .next()?
        .to_string();
    Some((vrid, state))
}

fn transitions(proc: &Proc) -> usize {
    proc.log().matches("VRRP transition").count()
}

/// Adverts of instance `name` that the agent has received (its debug log).
fn heard(proc: &Proc, name: &str) -> usize {
    proc.log()
        .matches(&format!("vrrp::driver: advert instance={name} "))
        .count()
}

/// Host 1 master (priority 150), host 2 backup (100), both on VRID 51 with metrics.
fn pair(lab: &Lab) -> (Proc, Proc) {
    let n1 = node(150, 51);
    let master = redha::start(lab, 1, &n1);
    wait_until(n1.master_down_interval() + MARGIN, POLL, || {
        lab.holders(VIP) == [1]
    })
    .unwrap_or_else(|| panic!("host 1 is master:\n{}", master.log()));
    let backup = redha::start(lab, 2, &node(100, 51));
    wait_until(MARGIN, POLL, || backup.log().contains("to=BACKUP")).expect("host 2 is backup");
    wait_until(MARGIN, POLL, || scrape(lab, 1, METRICS).is_some()).expect("host 1 serves metrics");
    (master, backup)
}

#[test]
fn a_replacing_reload_that_cannot_start_is_refused_and_the_master_keeps_its_vip() {
    if !require_netns(
        "a_replacing_reload_that_cannot_start_is_refused_and_the_master_keeps_its_vip",
    ) {
        return;
    }
    let lab = Arc::new(Lab::new("hupnoif", 2));
    let (master, backup) = pair(&lab);
    let (pid, counts) = (master.pid(), [transitions(&master), transitions(&backup)]);
    let watch = HolderWatch::start(&lab, VIP, vec![1], POLL);

    // 1. The same VRID on an interface that does not exist; 2. another VRID too.
    for (round, vrid) in [(1, 51), (2, 52)] {
        let refusals = master.log().matches("SIGHUP: REFUSED").count();
        write_on(&lab, 1, &node(150, vrid), "nosuch0");
        assert!(master.signal(libc::SIGHUP));
        wait_until(Duration::from_secs(5), POLL, || {
            master.log().matches("SIGHUP: REFUSED").count() > refusals || !master.is_running()
        })
        .unwrap_or_else(|| panic!("round {round}: no refusal logged:\n{}", master.log()));
        assert!(
            master.is_running(),
            "round {round}: the master exited on SIGHUP:\n{}",
            master.log()
        );
        let refusal = master
            .log()
            .lines()
            .filter(|l| l.contains("SIGHUP: REFUSED"))
            .nth(refusals)
            .unwrap()
            .to_string();
        assert!(refusal.contains("ERROR"), "{refusal}");
        assert!(refusal.contains("nosuch0"), "{refusal}");
        assert!(
            refusal.contains(&format!("eth0 VRID 51 -> nosuch0 VRID {vrid}")),
            "{refusal}"
        );
        // The old instance goes on: the backup hears a few more of its adverts.
        let before = heard(&backup, "vrid-51");
        wait_until(Duration::from_secs(3) + MARGIN, POLL, || {
            heard(&backup, "vrid-51") >= before + 2
        })
        .unwrap_or_else(|| {
            panic!(
                "round {round}: the backup no longer hears the master:\n{}",
                master.log()
            )
        });
    }

    let page = scrape(&lab, 1, METRICS).expect("the master still serves metrics");
    assert_eq!(
        sample(
            &page,
            "redha_config_reloads_total{instance=\"vrid-51\",result=\"refused\"}"
        ),
        Some(2.0),
        "{page}"
    );
    assert_eq!(status(&lab, 1), Some((51, "MASTER".into())));
    let (samples, bad) = watch.finish();
    eprintln!(
        "{samples} samples of the VIP through two refused reloads, {} without host 1 alone",
        bad.len()
    );
    assert!(samples > 20, "only {samples} samples of the VIP");
    assert!(
        bad.is_empty(),
        "the VIP was not held by host 1 alone at {bad:?}\nmaster:\n{}",
        master.log()
    );
    assert_eq!(master.pid(), pid);
    assert!(backup.is_running());
    assert_eq!(
        [transitions(&master), transitions(&backup)],
        counts,
        "a transition during a refused reload:\nmaster:\n{}\nbackup:\n{}",
        master.log(),
        backup.log()
    );
    assert!(
        !master.log().contains("virtual address removed"),
        "{}",
        master.log()
    );
}

#[test]
fn a_replacing_reload_to_another_vrid_ends_with_one_holder_under_it() {
    if !require_netns("a_replacing_reload_to_another_vrid_ends_with_one_holder_under_it") {
        return;
    }
    let lab = Arc::new(Lab::new("hupvrid", 2));
    let (master, backup) = pair(&lab);
    let (pids, hooked) = ([master.pid(), backup.pid()], Instant::now());

    let (n1, n2) = (node(150, 52), node(100, 52));
    redha::write_config(&lab, 1, &n1);
    redha::write_config(&lab, 2, &n2);
    assert!(master.signal(libc::SIGHUP));
    assert!(backup.signal(libc::SIGHUP));
    // The new instances elect host 1 (priority and preempt) within one
    // Master_Down_Interval of the later start, and the backup hears it.
    wait_until(n1.master_down_interval() + MARGIN * 2, POLL, || {
        assert!(master.is_running(), "the master exited:\n{}", master.log());
        assert!(backup.is_running(), "the backup exited:\n{}", backup.log());
        status(&lab, 1) == Some((52, "MASTER".into()))
            && status(&lab, 2) == Some((52, "BACKUP".into()))
            && heard(&backup, "vrid-52") >= 1
    })
    .unwrap_or_else(|| {
        panic!(
            "host 1 is master under VRID 52 ({:?}, {:?}):\nmaster:\n{}\nbackup:\n{}",
            status(&lab, 1),
            status(&lab, 2),
            master.log(),
            backup.log()
        )
    });
    let settled = hooked.elapsed();
    // And it stays so: one holder, host 1, while the backup hears three adverts.
    let before = heard(&backup, "vrid-52");
    let mut holders = Vec::new();
    wait_until(Duration::from_secs(3) + MARGIN, POLL, || {
        holders.push(lab.holders(VIP));
        heard(&backup, "vrid-52") >= before + 3
    })
    .expect("the backup goes on hearing the new master");
    assert!(
        holders.iter().all(|h| h == &[1]),
        "the VIP was not held by host 1 alone: {holders:?}"
    );
    eprintln!("replaced on both nodes; host 1 master under VRID 52 after {settled:?}");
    for (p, pid) in [&master, &backup].into_iter().zip(pids) {
        assert!(p.is_running(), "{} exited:\n{}", p.name(), p.log());
        assert_eq!(p.pid(), pid);
        assert!(!p.log().contains("REFUSED"), "{}", p.log());
        // The new instance, started while the old one held the VIP, left it alone.
        assert!(!p.log().contains("by an earlier run"), "{}", p.log());
    }
    let page = scrape(&lab, 1, METRICS).expect("metrics served by the new instance");
    assert_eq!(
        sample(
            &page,
            "redha_config_reloads_total{instance=\"vrid-52\",result=\"applied\"}"
        ),
        Some(1.0),
        "{page}"
    );
}
