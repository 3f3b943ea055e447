//! SIGHUP with `[metrics]` configured, on both nodes: the same processes go on, the
//! VIP never leaves the master (polled every 50 ms), nobody makes a transition, and
//! the metrics are served after the reload, on the old address when it is unchanged
//! and on the new one when it changed (overlapping the old one or not).

use std::sync::Arc;
use std::time::Duration;

use netns_tests::holder_watch::HolderWatch;
use netns_tests::metrics_page::{sample, scrape};
use netns_tests::redha::{self, MARGIN, Node, VIP};
use netns_tests::{Lab, Proc, require_netns, wait_until};

const POLL: Duration = Duration::from_millis(50);

fn node(priority: u8, port: u16) -> Node {
    node_on(priority, &format!("127.0.0.1:{port}"))
}

fn node_on(priority: u8, listen: &str) -> Node {
    Node {
        extra: format!("\n[metrics]\nlisten = \"{listen}\"\n"),
        ..Node::with_priority(priority)
    }
}

fn transitions(proc: &Proc) -> usize {
    proc.log().matches("VRRP transition").count()
}

/// Sends SIGHUP to both agents after writing their new files, and waits until both
/// have applied them and the backup has heard the master again a few times since.
fn reload_both(lab: &Lab, procs: &[&Proc; 2], nodes: [&Node; 2], metrics_port: u16) {
    let before: Vec<usize> = procs
        .iter()
        .map(|p| p.log().matches("configuration reloaded").count())
        .collect();
    for (i, n) in nodes.iter().enumerate() {
        redha::write_config(lab, i + 1, n);
    }
    for p in procs {
        assert!(p.signal(libc::SIGHUP));
    }
    for (p, before) in procs.iter().zip(&before) {
        wait_until(Duration::from_secs(5), POLL, || {
            p.log().matches("configuration reloaded").count() > *before || !p.is_running()
        })
        .unwrap_or_else(|| panic!("{} reloads:\n{}", p.name(), p.log()));
        assert!(
            p.is_running(),
            "{} exited on SIGHUP:\n{}",
            p.name(),
            p.log()
        );
    }
    // The protocol went on: the backup hears the master's adverts (on the new
    // listener, which proves it serves).
    let heard = |lab: &Lab| {
        scrape(lab, 2, metrics_port)
            .and_then(|page| {
                sample(
                    &page,
                    "redha_vrrp_adverts_received_total{instance=\"vrid-51\"}",
                )
            })
            .unwrap_or(0.0)
    };
    let start = wait_until(Duration::from_secs(3), POLL, || heard(lab) > 0.0)
        .map(|_| heard(lab))
        .expect("the backup's metrics are served after the reload");
    wait_until(Duration::from_secs(4) + MARGIN, POLL, || {
        heard(lab) >= start + 3.0
    })
    .expect("the backup goes on hearing the master after the reload");
}

#[test]
fn sighup_with_metrics_on_both_nodes_keeps_processes_vip_and_metrics() {
    if !require_netns("sighup_with_metrics_on_both_nodes_keeps_processes_vip_and_metrics") {
        return;
    }
    let lab = Arc::new(Lab::new("hupmetr", 2));
    let (n1, n2) = (node(100, 9150), node(90, 9150));
    let master = redha::start(&lab, 1, &n1);
    wait_until(n1.master_down_interval() + MARGIN, POLL, || {
        lab.holders(VIP) == [1]
    })
    .expect("host 1 is master");
    let backup = redha::start(&lab, 2, &n2);
    wait_until(MARGIN, POLL, || backup.log().contains("to=BACKUP")).expect("host 2 is backup");
    for i in [1, 2] {
        wait_until(MARGIN, POLL, || scrape(&lab, i, 9150).is_some())
            .unwrap_or_else(|| panic!("host {i} serves metrics"));
    }
    let (pids, counts) = (
        [master.pid(), backup.pid()],
        [transitions(&master), transitions(&backup)],
    );
    let watch = HolderWatch::start(&lab, VIP, vec![1], POLL);

    // 1. Changed files (new priorities, same order), the metrics address unchanged.
    let (m1, m2) = (node(110, 9150), node(80, 9150));
    reload_both(&lab, &[&master, &backup], [&m1, &m2], 9150);
    for (i, priority) in [(1, 110.0), (2, 80.0)] {
        let page = scrape(&lab, i, 9150).expect("metrics served after the reload");
        assert_eq!(
            sample(&page, "redha_vrrp_priority{instance=\"vrid-51\"}"),
            Some(priority),
            "host {i}:\n{page}"
        );
        assert_eq!(
            sample(
                &page,
                "redha_config_reloads_total{instance=\"vrid-51\",result=\"applied\"}"
            ),
            Some(1.0),
            "host {i}:\n{page}"
        );
    }

    // 2. The metrics address changed too: served on the new port, the old one closed.
    let (r1, r2) = (node(120, 9151), node(70, 9151));
    reload_both(&lab, &[&master, &backup], [&r1, &r2], 9151);
    for i in [1, 2] {
        let page = scrape(&lab, i, 9151).expect("metrics served on the new address");
        assert!(page.contains("result=\"applied\"} 2"), "host {i}:\n{page}");
        assert!(
            scrape(&lab, i, 9150).is_none(),
            "host {i} still serves on the old address"
        );
    }

    // 3. The same port on every address: the new listener overlaps the old one, so
    // the old one is closed first.
    let (w1, w2) = (node_on(130, "0.0.0.0:9151"), node_on(60, "0.0.0.0:9151"));
    reload_both(&lab, &[&master, &backup], [&w1, &w2], 9151);
    for (i, p) in [(1, &master), (2, &backup)] {
        let page = scrape(&lab, i, 9151).expect("metrics served on 0.0.0.0:9151");
        assert!(page.contains("result=\"applied\"} 3"), "host {i}:\n{page}");
        assert_eq!(
            p.log().matches("SIGHUP: metrics listener moved").count(),
            2,
            "{}",
            p.log()
        );
    }

    let (samples, bad) = watch.finish();
    eprintln!(
        "{samples} samples of the VIP through three reloads of both nodes, {} without host 1 alone",
        bad.len()
    );
    assert!(samples > 20, "only {samples} samples of the VIP");
    assert!(
        bad.is_empty(),
        "the VIP was not held by host 1 alone at {bad:?} ({samples} samples)\nmaster:\n{}",
        master.log()
    );
    for (p, (pid, count)) in [&master, &backup].iter().zip(pids.iter().zip(counts)) {
        assert!(p.is_running(), "{} exited:\n{}", p.name(), p.log());
        assert_eq!(p.pid(), *pid);
        assert_eq!(
            transitions(p),
            count,
            "{} made a transition:\n{}",
            p.name(),
            p.log()
        );
        assert!(!p.log().contains("ERROR"), "{}:\n{}", p.name(), p.log());
    }
}
