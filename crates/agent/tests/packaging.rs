//! Packaging: the systemd unit (contrib/redha.service) and the Debian package
//! metadata ([package.metadata.deb] in crates/agent/Cargo.toml).
//!
//! The unit is always parsed and its security-relevant settings asserted; where
//! `systemd-analyze` is installed it also runs `systemd-analyze verify` (on a copy
//! whose ExecStart is the binary just built) and the offline security audit. Without
//! it a line says so, unless REDHA_REQUIRE_SYSTEMD_ANALYZE=1 makes that a failure.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn unit_text() -> String {
    let path = repo().join("contrib/redha.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The unit's assignments in order: (section, key, value).
fn parse_unit(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        assert!(
            !line.ends_with('\\'),
            "line {}: continuation lines are not expected here",
            n + 1
        );
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: not key=value: {line}", n + 1));
        assert!(!section.is_empty(), "line {}: outside a section", n + 1);
        out.push((
            section.clone(),
            key.trim().to_string(),
            value.trim().to_string(),
        ));
    }
    out
}

struct Unit(Vec<(String, String, String)>);

impl Unit {
    fn load() -> Unit {
        Unit(parse_unit(&unit_text()))
    }

    /// All values of `key` in `section`.
    fn all(&self, section: &str, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    /// The single value of `key` in [Service]; a repeated key is an error here.
    fn one(&self, key: &str) -> &str {
        match self.all("Service", key).as_slice() {
            [v] => v,
            [] => panic!("[Service] has no {key}="),
            more => panic!("[Service] sets {key}= {} times: {more:?}", more.len()),
        }
    }

    /// A list setting as systemd accumulates it: assignments add words, an empty
    /// one resets the list.
    fn list(&self, key: &str) -> BTreeSet<String> {
        let mut set = BTreeSet::new();
        for v in self.all("Service", key) {
            if v.is_empty() {
                set.clear();
            }
            set.extend(v.split_whitespace().map(str::to_string));
        }
        set
    }
}

fn set(words: &[&str]) -> BTreeSet<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[test]
fn unit_runs_redha_as_an_unprivileged_user_with_two_capabilities() {
    let unit = Unit::load();
    assert_eq!(unit.one("User"), "redha");
    assert_eq!(unit.one("Group"), "redha");
    let caps = set(&["CAP_NET_ADMIN", "CAP_NET_RAW"]);
    assert_eq!(unit.list("AmbientCapabilities"), caps);
    assert_eq!(unit.list("CapabilityBoundingSet"), caps);
    assert_eq!(unit.one("NoNewPrivileges"), "yes");
    // Nothing runs with full privileges ("+" or "!" prefixes) or as root.
    for (section, key, value) in &unit.0 {
        if key.starts_with("Exec") {
            assert!(
                !value.starts_with(['+', '!', '@', '-']),
                "[{section}] {key}={value}: a prefixed command"
            );
        }
        assert_ne!(key, "PermissionsStartOnly", "[{section}] {key}");
        assert_ne!(key, "DynamicUser", "[{section}] {key}: the user is redha");
    }
    assert!(unit.all("Service", "SupplementaryGroups").is_empty());
}

#[test]
fn unit_starts_reloads_and_restarts_redha() {
    let unit = Unit::load();
    assert_eq!(unit.one("Type"), "simple");
    assert_eq!(
        unit.one("ExecStart"),
        "/usr/bin/redha --config /etc/redha/redha.toml"
    );
    let reload: Vec<&str> = unit.one("ExecReload").split_whitespace().collect();
    assert!(
        reload[0].ends_with("/kill") && reload.contains(&"-HUP") && reload.contains(&"$MAINPID"),
        "ExecReload must send SIGHUP to the main process: {reload:?}"
    );
    assert_eq!(unit.one("Restart"), "always");
    assert_eq!(unit.one("RestartSec"), "1");
    assert_eq!(unit.all("Unit", "StartLimitIntervalSec"), ["0"]);
    assert_eq!(unit.all("Install", "WantedBy"), ["multi-user.target"]);
}

#[test]
fn unit_is_hardened() {
    let unit = Unit::load();
    for (key, value) in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("RestrictRealtime", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("RuntimeDirectory", "redha"),
        ("LogsDirectory", "redha"),
        ("StateDirectory", "redha"),
    ] {
        assert_eq!(unit.one(key), value, "{key}");
    }
    assert_eq!(
        unit.list("RestrictAddressFamilies"),
        set(&["AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET", "AF_UNIX"])
    );
    // The paths the agent writes by default are the ones systemd makes writable.
    let reference = std::fs::read_to_string(repo().join("config/redha-26.toml")).unwrap();
    assert!(
        reference.contains("/var/log/redha/"),
        "state log under LogsDirectory"
    );
    assert!(
        reference.contains("state_dir = \"/var/lib/redha\""),
        "state_dir is the StateDirectory"
    );
}

#[test]
fn every_setting_has_a_comment() {
    // Each block of settings is preceded by a comment saying what it does.
    let text = unit_text();
    let mut previous = "";
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.contains('=') && !line.starts_with('#') {
            let follows_comment_or_setting =
                previous.starts_with('#') || (previous.contains('=') && !previous.starts_with('['));
            assert!(
                follows_comment_or_setting,
                "line {}: `{line}` has no comment above it",
                n + 1
            );
        }
        previous = line;
    }
}

fn systemd_analyze() -> bool {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("REDHA_REQUIRE_SYSTEMD_ANALYZE").is_none_or(|v| v != "1"),
            "systemd-analyze is required (REDHA_REQUIRE_SYSTEMD_ANALYZE=1) but not installed (apt-get install systemd)"
        );
        println!("skipped: systemd-analyze not installed");
    }
    found
}

/// A copy of the unit, named redha.service, whose ExecStart is the binary just built
/// (`systemd-analyze verify` checks that the program exists).
struct UnitCopy(PathBuf);

impl UnitCopy {
    fn new(tag: &str) -> UnitCopy {
        let dir =
            std::env::temp_dir().join(format!("redha-packaging-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = unit_text().replace(
            "ExecStart=/usr/bin/redha ",
            &format!("ExecStart={} ", env!("CARGO_BIN_EXE_redha")),
        );
        assert!(text.contains(env!("CARGO_BIN_EXE_redha")));
        let path = dir.join("redha.service");
        std::fs::write(&path, text).unwrap();
        UnitCopy(path)
    }
}

impl Drop for UnitCopy {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    if !systemd_analyze() {
        return;
    }
    let copy = UnitCopy::new("verify");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy.0)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Complaints about other units of this machine are not ours; any line about
    // redha.service (unknown key, bad value, missing program) is.
    let ours: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .filter(|l| l.contains("redha"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: {}\n{stdout}{stderr}",
        out.status
    );
}

#[test]
fn systemd_analyze_security_rates_the_unit_ok() {
    if !systemd_analyze() {
        return;
    }
    let copy = UnitCopy::new("security");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&copy.0)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
    else {
        // systemd before 250 has no --offline.
        println!(
            "skipped: systemd-analyze security --offline not supported: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return;
    };
    let exposure: f64 = line
        .rsplit(':')
        .next()
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure from {line:?}"));
    println!("{line}");
    assert!(
        exposure <= 4.0,
        "the unit's exposure rose to {exposure} (2.2 when written):\n{stdout}"
    );
}

#[test]
fn debian_package_metadata_names_existing_files() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&manifest).unwrap();
    let deb = manifest["package"]["metadata"]["deb"]
        .as_table()
        .expect("[package.metadata.deb]");
    assert_eq!(deb["section"].as_str(), Some("net"));
    assert_eq!(deb["priority"].as_str(), Some("optional"));
    assert!(deb["depends"].as_str().unwrap().contains("$auto"));
    assert!(deb["maintainer"].as_str().is_some());
    assert_eq!(deb["conf-files"].as_array().map(Vec::len), Some(0));
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut targets = Vec::new();
    for asset in deb["assets"].as_array().unwrap() {
        let asset = asset.as_array().unwrap();
        let source = asset[0].as_str().unwrap();
        let target = asset[1].as_str().unwrap();
        targets.push(target.to_string());
        if source == "target/release/redha" {
            assert_eq!(target, "usr/bin/redha");
            assert_eq!(asset[2].as_str(), Some("755"));
            continue;
        }
        assert!(
            crate_dir.join(source).is_file(),
            "asset {source} does not exist"
        );
    }
    for wanted in [
        "lib/systemd/system/redha.service",
        "usr/share/doc/redha/examples/",
    ] {
        assert!(targets.iter().any(|t| t == wanted), "no asset to {wanted}");
    }
    for config in ["reference.toml", "redha-26.toml", "redha-27.toml"] {
        assert!(
            deb["assets"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a[0].as_str() == Some(&format!("../../config/{config}"))),
            "config/{config} is not packaged"
        );
    }
    // The maintainer scripts: shell that parses, postinst creating the user.
    let scripts = crate_dir.join(deb["maintainer-scripts"].as_str().unwrap());
    let postinst = std::fs::read_to_string(scripts.join("postinst")).unwrap();
    assert!(
        postinst.contains("adduser --system --group --no-create-home")
            && postinst.contains("redha"),
        "postinst must create the redha system user"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let path = scripts.join(script);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o111, 0o111, "{script} is not executable");
        let status = Command::new("sh").arg("-n").arg(&path).status().unwrap();
        assert!(status.success(), "{script}: sh -n failed");
    }
}
