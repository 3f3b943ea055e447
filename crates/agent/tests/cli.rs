//! The binary's command line, without root and without the network.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn redha(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_redha"))
        .args(args)
        .output()
        .expect("run redha")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("redha-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_shipped_configs_check_out() {
    for name in ["redha-26.toml", "redha-27.toml", "reference.toml"] {
        let path = repo().join("config").join(name);
        let out = redha(&["check-config", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(": ok: "));
    }
}

#[test]
fn check_config_summarises_a_vrrpv3_instance_at_100ms() {
    let path = temp_config(
        "v3.toml",
        "[vrrp]\ninterface = \"eth0\"\nvirtual_router_id = 51\nversion = 3\nadvert_int = \"100ms\"\nvirtual_ipaddresses = [\"192.0.2.100/24\"]\n",
    );
    let out = redha(&["check-config", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("VRRPv3"), "{summary}");
    assert!(summary.contains("advert_int 100ms"), "{summary}");
}

#[test]
fn a_bad_config_names_file_line_and_key() {
    let path = temp_config(
        "bad.toml",
        "[vrrp]\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = 300\nvirtual_ipaddresses = [\"192.0.2.100/24\"]\n",
    );
    let out = redha(&["check-config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:4: vrrp.priority: ", path.display())),
        "{err}"
    );
}

#[test]
fn run_refuses_a_bad_config_before_touching_the_network() {
    // An interface that cannot exist: if redha got as far as the network it would
    // complain about the interface, not the key.
    let path = temp_config(
        "bad-run.toml",
        "[vrrp]\ninterface = \"no-such-if0\"\nvirtual_router_id = 51\nadvert_int = \"100ms\"\nvirtual_ipaddresses = [\"192.0.2.100/24\"]\n",
    );
    let out = redha(&["--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":4: vrrp.advert_int: "), "{err}");
    assert!(!err.contains("no-such-if0"), "{err}");
}

#[test]
fn check_config_summarises_named_instances_and_their_sync_group() {
    let two = "[instances.cache.vrrp]\ninterface = \"eth0\"\nvirtual_router_id = 51\nvirtual_ipaddresses = [\"192.0.2.100/24\"]\n\
               [instances.cache6.vrrp]\ninterface = \"eth0\"\nvirtual_router_id = 51\nversion = 3\nvirtual_ipaddresses = [\"2001:db8::100/64\"]\n\
               [sync_groups]\ncache = [\"cache\", \"cache6\"]\n";
    let path = temp_config("named.toml", two);
    let out = redha(&["check-config", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(": ok: 2 instance(s), 1 sync group(s)"),
        "{summary}"
    );
    assert!(
        summary.contains("  instance cache6 on eth0, VRRPv3, vrid 51")
            && summary.contains("(sync group cache)"),
        "{summary}"
    );
    assert!(
        summary.contains("  sync group cache: cache, cache6"),
        "{summary}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let out = redha(&["check-config", "/nonexistent/redha.toml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/redha.toml"));
}

#[test]
fn help_describes_the_commands() {
    let out = redha(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "run",
        "check-config",
        "migrate-keepalived",
        "status",
        "--config",
        "SIGHUP",
    ] {
        assert!(help.contains(word), "{word} missing from --help:\n{help}");
    }
    let expect = [
        ("run", "SIGUSR1"),
        ("check-config", "line and the key"),
        ("migrate-keepalived", "no equivalent"),
        ("status", "control socket"),
    ];
    for (command, word) in expect {
        let out = redha(&[command, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && help.contains(word),
            "{command} --help:\n{help}"
        );
    }
}

#[test]
fn migrate_keepalived_writes_a_config_that_checks_out() {
    let conf = repo().join("crates/agent/tests/fixtures/keepalived/unicast-auth.conf");
    let out_path = std::env::temp_dir().join(format!("redha-migrated-{}.toml", std::process::id()));
    let out = redha(&[
        "migrate-keepalived",
        conf.to_str().unwrap(),
        "--output",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check = redha(&["check-config", out_path.to_str().unwrap()]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _ = std::fs::remove_file(out_path);
}
