//! What an operator uses at 3 a.m.: `redha status` over the control socket, the
//! metrics page, and reload on SIGHUP (kept VIP; a bad file refused).

use std::process::Command;
use std::time::Duration;

use netns_tests::metrics_page::{raw_request, scrape};
use netns_tests::redha::{self, MARGIN, Node, VIP};
use netns_tests::{Lab, redha_bin, require_netns, wait_until};

const POLL: Duration = Duration::from_millis(50);

fn status(lab: &Lab, i: usize, json: bool) -> (bool, String, String) {
    let socket = redha::control_socket(lab, i);
    let mut args = vec![
        "status".to_string(),
        "--socket".into(),
        socket.display().to_string(),
    ];
    if json {
        args.push("--json".into());
    }
    let out = Command::new(redha_bin())
        .args(&args)
        .output()
        .expect("run redha status");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn status_shows_state_and_a_clear_message_without_agent() {
    if !require_netns("status_shows_state_and_a_clear_message_without_agent") {
        return;
    }
    let lab = Lab::new("status", 2);
    let node = Node::with_priority(150);
    let _a = redha::start(&lab, 1, &node);
    let _b = redha::start(&lab, 2, &Node::with_priority(100));
    wait_until(node.master_down_interval() + MARGIN, POLL, || {
        lab.holders(VIP) == [1]
    })
    .expect("host 1 is master");
    std::thread::sleep(Duration::from_millis(300));

    let (ok, table, err) = status(&lab, 1, false);
    assert!(ok, "{err}");
    assert!(table.contains("state         MASTER since"), "{table}");
    assert!(table.contains("192.0.2.100/24 (held here)"), "{table}");
    assert!(
        table.contains("event") || table.contains("transition"),
        "{table}"
    );
    let (ok, table, _) = status(&lab, 2, false);
    assert!(ok);
    assert!(table.contains("state         BACKUP"), "{table}");
    assert!(
        table.contains("master        192.0.2.11 (priority 150)"),
        "{table}"
    );
    let (ok, json, _) = status(&lab, 1, true);
    assert!(ok);
    assert!(json.contains("\"state\":\"MASTER\""), "{json}");
    assert!(json.trim_start().starts_with('{') && json.trim_end().ends_with('}'));

    let out = Command::new(redha_bin())
        .args(["status", "--socket", "/nonexistent/redha.sock"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no redha agent is running"));
}

#[test]
fn the_metrics_page_parses() {
    if !require_netns("the_metrics_page_parses") {
        return;
    }
    let lab = Lab::new("metrics", 1);
    let node = Node {
        extra: "\n[metrics]\nlisten = \"127.0.0.1:9150\"\n".into(),
        ..Node::with_priority(150)
    };
    let _a = redha::start(&lab, 1, &node);
    wait_until(node.master_down_interval() + MARGIN, POLL, || {
        lab.holders(VIP) == [1]
    })
    .expect("master");
    std::thread::sleep(Duration::from_millis(1200));
    let page = scrape(&lab, 1, 9150).expect("the metrics page");
    let (head, body) = page.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    let mut samples = std::collections::HashMap::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line == "# EOF",
                "{line}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(series.starts_with("redha_"), "{line}");
        samples.insert(series.to_string(), value);
    }
    assert_eq!(
        samples["redha_vrrp_state{instance=\"vrid-51\",state=\"MASTER\"}"],
        1.0
    );
    assert_eq!(
        samples["redha_vrrp_state{instance=\"vrid-51\",state=\"BACKUP\"}"],
        0.0
    );
    assert_eq!(samples["redha_vrrp_priority{instance=\"vrid-51\"}"], 150.0);
    assert!(samples["redha_vrrp_adverts_sent_total{instance=\"vrid-51\"}"] >= 1.0);
    assert_eq!(
        samples["redha_vrrp_transitions_total{instance=\"vrid-51\",to=\"MASTER\",reason=\"master_down\"}"],
        1.0
    );
    assert!(
        samples
            .contains_key("redha_vrrp_adverts_dropped_total{instance=\"vrid-51\",reason=\"ttl\"}")
    );

    // A request head of 8 KiB without its end is refused; a client that sends nothing is let go
    // after the 2 s read timeout; the listener serves on.
    let (answer, _) = raw_request(&lab, 1, 9150, vec![b'a'; 8192]).expect("an answer");
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large"),
        "{answer}"
    );
    let (answer, took) = raw_request(&lab, 1, 9150, Vec::new()).expect("closed");
    assert!(answer.is_empty(), "{answer}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert!(scrape(&lab, 1, 9150).is_some());
}

#[test]
fn sighup_applies_a_new_priority_without_dropping_the_vip_and_refuses_a_bad_file() {
    if !require_netns(
        "sighup_applies_a_new_priority_without_dropping_the_vip_and_refuses_a_bad_file",
    ) {
        return;
    }
    let lab = Lab::new("reload", 2);
    let node = Node::with_priority(150);
    let a = redha::start(&lab, 1, &node);
    let _b = redha::start(&lab, 2, &Node::with_priority(100));
    wait_until(node.master_down_interval() + MARGIN, POLL, || {
        lab.holders(VIP) == [1]
    })
    .expect("master");

    // A new priority and a second VIP: applied in place, the VIP never moves.
    let changed = Node {
        vips: vec![format!("{VIP}/24"), "192.0.2.101/24".into()],
        ..Node::with_priority(200)
    };
    redha::write_config(&lab, 1, &changed);
    // (The backup keeps its old list: it drops the master's adverts as
    // address_list mismatches, so its file is updated too, before its own reload.)
    let b_node = Node {
        vips: changed.vips.clone(),
        ..Node::with_priority(100)
    };
    redha::write_config(&lab, 2, &b_node);
    assert!(a.signal(libc::SIGHUP));
    wait_until(Duration::from_secs(3), POLL, || {
        lab.has_addr(1, "192.0.2.101")
    })
    .expect("the new VIP is added");
    for _ in 0..20 {
        assert_eq!(lab.holders(VIP), [1], "the VIP moved during the reload");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = a.log();
    assert!(
        log.contains("configuration reloaded; no transition"),
        "{log}"
    );
    assert_eq!(log.matches("VRRP transition").count(), 2, "{log}");
    let (_, table, _) = status(&lab, 1, false);
    assert!(table.contains("priority      200"), "{table}");

    // A broken file is refused loudly; the agent keeps running as it was.
    std::fs::write(lab.dir().join("redha-h1.toml"), "[vrrp]\npriority = 0\n").unwrap();
    assert!(a.signal(libc::SIGHUP));
    wait_until(Duration::from_secs(3), POLL, || a.log().contains("REFUSED"))
        .expect("the bad file is refused");
    assert!(a.is_running());
    assert_eq!(lab.holders(VIP), [1]);
    let log = a.log();
    let refused = log.lines().find(|l| l.contains("REFUSED")).unwrap();
    assert!(refused.contains("redha-h1.toml:2"), "{refused}");
}

#[test]
fn notify_hooks_run_with_keepalived_arguments() {
    if !require_netns("notify_hooks_run_with_keepalived_arguments") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::new("hooks", 1);
    let record = lab.dir().join("hook-calls.log");
    let script = lab.dir().join("hook.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", record.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let master_script = lab.dir().join("master.sh");
    std::fs::write(
        &master_script,
        format!("#!/bin/sh\necho notify_master >> {}\n", record.display()),
    )
    .unwrap();
    std::fs::set_permissions(&master_script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let node = Node {
        extra: format!(
            "notify = {:?}\nnotify_master = {:?}\n",
            script.display().to_string(),
            master_script.display().to_string()
        ),
        ..Node::with_priority(150)
    };
    let a = redha::start(&lab, 1, &node);
    wait_until(node.master_down_interval() + MARGIN, POLL, || {
        lab.holders(VIP) == [1]
    })
    .expect("master");
    assert!(a.signal(libc::SIGTERM));
    a.wait_exit(Duration::from_secs(10)).expect("redha exits");
    let calls = std::fs::read_to_string(&record).unwrap_or_default();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(
        lines,
        [
            "INSTANCE vrid-51 BACKUP 150",
            "notify_master",
            "INSTANCE vrid-51 MASTER 150",
            "INSTANCE vrid-51 STOP 150"
        ],
        "{}",
        a.log()
    );
}
