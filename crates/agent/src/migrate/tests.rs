//! The migration end to end: the keepalived.conf fixtures of `tests/fixtures/keepalived`
//! against their golden TOML, the notes, and files mangled at random.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::config::Config;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keepalived")
}

/// Migrates fixture `name` (instance `instance`), reading script files under the
/// fixture directory `root` as if it were `/`, or none; checks the TOML against
/// the loader and against `<golden>.toml` (`REDHA_BLESS=1` rewrites it).
fn run_fixture(
    name: &str,
    instance: Option<&str>,
    root: Option<&str>,
    golden: &str,
) -> (Migration, Config) {
    let text = fs::read_to_string(fixtures().join(name)).unwrap();
    let root = root.map(|r| fixtures().join(r));
    let read = |p: &Path| {
        let root = root.as_ref()?;
        fs::read(root.join(p.strip_prefix("/").unwrap_or(p))).ok()
    };
    let m = migrate_with(&text, name, instance, &read).unwrap_or_else(|e| panic!("{name}: {e}"));
    let config = crate::config_file::ConfigFile::parse(Path::new("x.toml"), &m.toml)
        .unwrap_or_else(|e| panic!("{name}: {e}\n{}", m.toml))
        .instances
        .remove(0);
    let golden = fixtures().join(format!("{golden}.toml"));
    if std::env::var_os("REDHA_BLESS").is_some() {
        fs::write(&golden, &m.toml).unwrap();
    }
    let expected = fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        expected == m.toml,
        "{name}: the TOML differs from {} (REDHA_BLESS=1 rewrites it):\n{}",
        golden.display(),
        m.toml
    );
    (m, config)
}

/// Asserts a note on `line` contains every one of `needles`.
#[track_caller]
fn has_note(m: &Migration, line: usize, needles: &[&str]) {
    assert!(
        m.notes
            .iter()
            .any(|n| n.line == line && needles.iter().all(|w| n.text.contains(w))),
        "no note on line {line} with {needles:?}; notes:\n{}",
        render_notes(&m.notes)
    );
}

#[track_caller]
fn no_note(m: &Migration, needle: &str) {
    assert!(
        !m.notes.iter().any(|n| n.text.contains(needle)),
        "unexpected note with {needle:?}:\n{}",
        render_notes(&m.notes)
    );
}

fn vips(c: &Config) -> Vec<String> {
    c.instance()
        .virtual_addresses
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn active_hooks(m: &Migration) -> Vec<&str> {
    m.toml.lines().filter(|l| l.starts_with("notify")).collect()
}

#[test]
fn classic_pair_host_26() {
    let (m, c) = run_fixture("classic-26.conf", None, Some("root-26"), "classic-26");
    let i = c.instance();
    assert_eq!(i.name, "VI_1");
    assert_eq!(
        (i.interface.as_str(), i.vrid, i.priority),
        ("eth0", 51, 100)
    );
    assert_eq!(i.advert_int, secs(5));
    assert!(!i.preempt);
    assert_eq!(vips(&c), ["10.20.112.100/24"]);
    assert_eq!(c.vrrp.auth_pass.as_ref().unwrap().0, "redis");

    let r = c.redis.as_ref().unwrap();
    assert_eq!(r.address.to_string(), "127.0.0.1:6379");
    assert_eq!((r.check_interval, r.check_timeout), (secs(2), secs(2)));
    assert_eq!((r.fall.0, r.rise.0), (3, 2));
    assert!(
        m.toml
            .contains("from `redis-cli -h 127.0.0.1 -p 6379 PING`")
    );

    let rep = c.replication.as_ref().unwrap();
    assert_eq!(rep.peer.to_string(), "10.20.112.27:6379");
    assert!(
        m.toml
            .contains("from SLAVEOF 10.20.112.27 6379 in notify_master")
    );

    // The SLAVEOF scripts are written commented out, never as hooks.
    assert!(active_hooks(&m).is_empty(), "{}", m.toml);
    for key in [
        "notify_master",
        "notify_backup",
        "notify_fault",
        "notify_stop",
    ] {
        assert!(m.toml.contains(&format!("# {key} = ")), "{key}");
    }
    has_note(
        &m,
        42,
        &["notify_master", "dropped", "SLAVEOF", "[replication]"],
    );
    has_note(&m, 43, &["notify_backup", "dropped", "SLAVEOF"]);
    has_note(&m, 44, &["notify_fault", "dropped", "acts on Redis"]);
    has_note(
        &m,
        6,
        &[
            "notification_email, notification_email_from, smtp_server, smtp_connect_timeout (lines 6, 9, 10, 11)",
            "no equivalent",
        ],
    );
    has_note(&m, 12, &["router_id redis-26"]);
    has_note(
        &m,
        13,
        &["enable_script_security, script_user root (lines 13, 14)"],
    );
    assert!(m.toml.contains("# [state_log]"));
    assert!(m.toml.contains("/var/log/keepalived-redis-state.log"));
    assert!(m.toml.starts_with(
        "# redha configuration generated from classic-26.conf by `redha migrate-keepalived`."
    ));
}

#[test]
fn classic_pair_host_27_checks_inline_and_points_back() {
    let (m, c) = run_fixture("classic-27.conf", None, Some("root-27"), "classic-27");
    let (_, c26) = run_fixture("classic-26.conf", None, Some("root-26"), "classic-26");
    // The two halves agree on everything VRRP compares.
    let (a, b) = (c.instance(), c26.instance());
    assert_eq!(
        (a.vrid, a.advert_int, a.preempt),
        (b.vrid, b.advert_int, b.preempt)
    );
    assert_eq!(a.auth, b.auth);
    assert_eq!(a.virtual_addresses, b.virtual_addresses);
    let r = c.redis.as_ref().unwrap();
    assert_eq!(r.address.to_string(), "127.0.0.1:6379");
    assert!(
        m.toml
            .contains("from `redis-cli -h 127.0.0.1 -p 6379 ping`")
    );
    assert_eq!(c.replication.unwrap().peer.to_string(), "10.20.112.26:6379");
}

#[test]
fn classic_pair_without_its_scripts_leaves_the_peer_to_fill_in() {
    let (m, c) = run_fixture("classic-26.conf", None, None, "classic-26-no-scripts");
    // The check script's name says Redis: the default address, with a note.
    assert_eq!(c.redis.unwrap().address.to_string(), "127.0.0.1:6379");
    has_note(
        &m,
        18,
        &["could not be read here", "checks Redis", "127.0.0.1:6379"],
    );
    // The notify scripts are Redis scripts by their names: dropped all the same.
    assert!(active_hooks(&m).is_empty());
    has_note(&m, 42, &["notify_master", "dropped", "could not be read"]);
    // No peer could be inferred: [replication] is commented out, with a note.
    assert!(c.replication.is_none());
    assert!(m.toml.contains("# [replication]"));
    assert!(m.toml.contains("# peer = \"OTHER_HOST:6379\""));
    has_note(&m, 25, &["[replication] peer", "could not be inferred"]);
}

#[test]
fn unicast_with_pass_auth_and_inline_replicaof() {
    let (m, c) = run_fixture("unicast-auth.conf", None, None, "unicast-auth");
    let i = c.instance();
    assert_eq!(
        (i.interface.as_str(), i.vrid, i.priority),
        ("ens192", 60, 150)
    );
    assert_eq!(
        i.unicast_peers,
        ["192.168.50.12".parse::<Ipv4Addr>().unwrap()]
    );
    assert_eq!(i.unicast_src_ip, Some("192.168.50.11".parse().unwrap()));
    assert_eq!(c.vrrp.auth_pass.as_ref().unwrap().0, "rEd1s");
    assert_eq!(vips(&c), ["192.168.50.100/24"]);
    let r = c.redis.as_ref().unwrap();
    assert_eq!(r.password.as_ref().unwrap().0, "Str0ng!Pass");
    assert_eq!(r.address.to_string(), "127.0.0.1:6379");
    assert_eq!((r.check_interval, r.check_timeout), (secs(1), secs(1)));
    // The comment shows the command, never the password.
    assert!(m.toml.contains("redis-cli -a *** --no-auth-warning ping"));
    assert_eq!(
        c.replication.unwrap().peer.to_string(),
        "192.168.50.12:6379"
    );
    has_note(&m, 11, &["password", "password_file"]);
    has_note(&m, 43, &["notify_master", "dropped", "SLAVEOF/REPLICAOF"]);
    has_note(&m, 44, &["notify_backup", "dropped"]);
    // `dev ens192` is the instance's interface: nothing lost, nothing said.
    no_note(&m, "dev ens192");
    assert!(active_hooks(&m).is_empty());
}

#[test]
fn long_password_is_cut_to_8_like_keepalived() {
    let (m, c) = run_fixture("long-password.conf", None, None, "long-password");
    assert_eq!(c.vrrp.auth_pass.as_ref().unwrap().0, "redisHA2");
    has_note(&m, 22, &["auth_pass", "17 bytes", "first 8", "redisHA2"]);
    let i = c.instance();
    assert_eq!((i.vrid, i.priority, i.advert_int), (33, 90, secs(2)));
    assert_eq!(vips(&c), ["172.20.0.10/16"]);
    has_note(
        &m,
        25,
        &["brd 172.20.255.255", "label eth1:vip", "no equivalent"],
    );
    // `killall -0 redis-server` checks Redis, without PING: default address.
    let r = c.redis.as_ref().unwrap();
    assert_eq!(r.address.to_string(), "127.0.0.1:6379");
    assert_eq!(r.check_interval, secs(3));
    has_note(
        &m,
        9,
        &["check_redis", "no redis-cli PING", "127.0.0.1:6379"],
    );
    has_note(&m, 28, &["weight 2", "FAULT"]);
    // The alert script is not a Redis script; it is missing here, so redha's
    // hook check would refuse it: written commented out, with a note.
    assert!(
        m.toml
            .contains("# notify = \"/usr/local/bin/keepalived-alert.sh\"")
    );
    has_note(
        &m,
        30,
        &["notify", "would refuse it on this host", "does not exist"],
    );
    has_note(&m, 31, &["smtp_alert", "no equivalent"]);
    has_note(
        &m,
        4,
        &["script_user keepalived_script, enable_script_security"],
    );
    // No replication scripts: [replication] is left commented out.
    assert!(c.replication.is_none());
    has_note(&m, 14, &["no notify script moved Redis replication"]);
}

#[test]
fn master_with_weight_and_garp_tuning() {
    let (m, c) = run_fixture("weight-master.conf", None, None, "weight-master");
    let i = c.instance();
    assert_eq!((i.vrid, i.priority, i.advert_int), (77, 101, secs(1)));
    assert!(i.preempt);
    has_note(
        &m,
        17,
        &[
            "state MASTER",
            "starts every node as backup",
            "priority decide",
            "101",
        ],
    );
    let r = c.redis.as_ref().unwrap();
    assert_eq!(r.address.to_string(), "127.0.0.1:6380");
    // keepalived's timeout 3 > interval 2: redha needs timeout <= interval.
    assert_eq!((r.check_interval, r.check_timeout), (secs(2), secs(2)));
    has_note(&m, 10, &["timeout 3s is longer than interval 2s"]);
    assert_eq!((r.fall.0, r.rise.0), (2, 1));
    has_note(&m, 29, &["chk_redis weight -2", "FAULT"]);
    assert_eq!(i.garp.master_delay, secs(1));
    assert_eq!(i.garp.master_repeat, 3);
    assert_eq!(i.garp.master_refresh, secs(60));
    has_note(&m, 25, &["track_interface", "no equivalent"]);
    assert!(c.replication.is_none());
    assert!(m.toml.contains("# peer = \"OTHER_HOST:6380\""));
}

#[test]
fn backup_with_preempt_delay_and_a_weight_override() {
    let (m, c) = run_fixture("weight-backup.conf", None, None, "weight-backup");
    let i = c.instance();
    assert_eq!((i.vrid, i.priority), (77, 100));
    assert!(i.preempt);
    assert_eq!(i.preempt_delay, secs(30));
    // The track_script's own weight wins over the vrrp_script's.
    has_note(&m, 23, &["chk_redis weight -5", "FAULT"]);
    no_note(&m, "state");
    let (_, master) = run_fixture("weight-master.conf", None, None, "weight-master");
    assert_eq!(master.instance().vrid, i.vrid);
    assert_eq!(master.redis.unwrap().address, c.redis.unwrap().address);
}

#[test]
fn braces_on_their_own_lines_and_bang_comments() {
    let (m, c) = run_fixture("braces-own-lines.conf", None, None, "braces-own-lines");
    let i = c.instance();
    assert_eq!(i.name, "redis_vip");
    assert_eq!(
        (i.interface.as_str(), i.vrid, i.priority),
        ("bond0", 121, 120)
    );
    assert_eq!(i.advert_int, secs(3));
    assert!(!i.preempt);
    assert_eq!(vips(&c), ["10.0.3.50/32", "10.0.3.51/24"]);
    has_note(&m, 31, &["10.0.3.50", "/32", "keepalived's default"]);
    has_note(&m, 32, &["scope global", "no equivalent"]);
    no_note(&m, "dev bond0");
    has_note(
        &m,
        5,
        &["include /etc/keepalived/conf.d/*.conf", "not followed"],
    );
    // Global garp defaults apply to the instance.
    assert_eq!(i.garp.master_refresh, secs(30));
    assert_eq!(i.garp.master_refresh_repeat, 2);
    // The script string continued on the next line with a backslash.
    let r = c.redis.as_ref().unwrap();
    assert_eq!(r.address.to_string(), "10.0.3.21:6379");
    assert_eq!(r.check_interval, secs(1));
    // failover.sh is a Redis script by its path: dropped; replication commented.
    has_note(&m, 38, &["notify_master", "dropped", "could not be read"]);
    assert!(c.replication.is_none());
    assert!(m.toml.contains("# [replication]"));
    has_note(&m, 21, &["could not be inferred"]);
    // The paging script is missing here: commented; logger exists: a hook.
    has_note(&m, 40, &["notify_fault", "would refuse it on this host"]);
    if super::notify::hook_refusal("notify", "/usr/bin/logger -t keepalived-vip").is_none() {
        assert_eq!(
            active_hooks(&m),
            [
                "notify = \"/usr/bin/logger -t keepalived-vip\"  # run with keepalived's arguments, one at a time, with a timeout"
            ]
        );
    }
}

#[test]
fn two_instances_both_by_default_one_on_request() {
    let (m, c) = run_fixture("two-instances.conf", None, None, "two-instances");
    let i = c.instance();
    assert_eq!((i.name.as_str(), i.vrid, i.priority), ("VI_6379", 10, 150));
    assert_eq!(
        c.redis.as_ref().unwrap().address.to_string(),
        "127.0.0.1:6379"
    );
    assert_eq!(c.replication.unwrap().peer.to_string(), "10.9.0.12:6379");
    let file = crate::config_file::ConfigFile::parse(Path::new("x.toml"), &m.toml).unwrap();
    let second = &file.instances[1];
    let i = second.instance();
    assert_eq!((i.name.as_str(), i.vrid, i.priority), ("VI_6380", 11, 100));
    assert_eq!(
        second.replication.as_ref().unwrap().peer.to_string(),
        "10.9.0.12:6380"
    );
    assert!(m.toml.contains("[instances.VI_6380.redis]"), "{}", m.toml);
    has_note(&m, 5, &["vrrp_skip_check_adv_addr"]);
    // chk_redis_6380 belongs to the other instance: no "untracked" note.
    no_note(&m, "no instance tracks");

    let (m, c) = run_fixture(
        "two-instances.conf",
        Some("VI_6380"),
        None,
        "two-instances-VI_6380",
    );
    let i = c.instance();
    assert_eq!((i.name.as_str(), i.vrid, i.priority), ("VI_6380", 11, 100));
    assert_eq!(
        c.redis.as_ref().unwrap().address.to_string(),
        "127.0.0.1:6380"
    );
    assert_eq!(c.replication.unwrap().peer.to_string(), "10.9.0.12:6380");
    has_note(&m, 18, &["vrrp_instance VI_6379 not migrated"]);

    let text = fs::read_to_string(fixtures().join("two-instances.conf")).unwrap();
    let err = migrate_with(&text, "x", Some("VI_9"), &|_| None).unwrap_err();
    assert!(err.to_string().contains("VI_6379, VI_6380"), "{err}");
    // Both on one virtual router: no file (found by the fuzzer).
    let same = text.replace("virtual_router_id 11", "virtual_router_id 10");
    let err = migrate_with(&same, "x", None, &|_| None).unwrap_err();
    assert!(
        err.to_string()
            .contains("line 34: vrrp_instance VI_6380 is virtual router 10 on eth0 like vrrp_instance VI_6379 (line 18)"),
        "{err}"
    );
}

#[test]
fn a_sync_group_of_an_ipv4_and_an_ipv6_vip_for_one_redis() {
    let (m, c) = run_fixture("sync-group.conf", None, None, "sync-group");
    let file = crate::config_file::ConfigFile::parse(Path::new("x.toml"), &m.toml).unwrap();
    assert_eq!(
        file.sync_groups.get("VG_cache").map(Vec::as_slice),
        Some(&["VI_4".to_string(), "VI_6".to_string()][..])
    );
    // The IPv4 instance watches the Redis and moves replication; the IPv6 one
    // shares its Redis: no [redis] of its own, the group carries the state.
    assert_eq!(c.instance().name, "VI_4");
    assert!(c.redis.is_some() && c.replication.is_some());
    let v6 = &file.instances[1];
    assert!(v6.redis.is_none() && v6.replication.is_none());
    assert_eq!(v6.instance().version, vrrp::Version::V3);
    has_note(&m, 34, &["VI_6", "Redis of instance VI_4", "sync_group"]);
    has_note(&m, 17, &["VG_cache", "notify_master", "no equivalent"]);
    // Asked for one instance, the group is noted as not migrated.
    let text = fs::read_to_string(fixtures().join("sync-group.conf")).unwrap();
    let one = migrate_with(&text, "x", Some("VI_6"), &|_| None).unwrap();
    has_note(&one, 12, &["VG_cache", "not migrated", "--instance"]);
}

#[test]
fn vrrp_version_3_becomes_version_3_with_its_interval() {
    let (m, c) = run_fixture("vrrp3.conf", None, None, "vrrp3");
    let i = c.instance();
    assert_eq!(i.version, vrrp::Version::V3);
    assert_eq!(i.advert_int, Duration::from_millis(500));
    assert!(!i.v3_checksum_as_v2);
    assert!(
        !m.notes.iter().any(|n| n.line == 4 || n.line == 22),
        "{:?}",
        m.notes
    );
    assert_eq!(vips(&c), ["192.0.2.80/24"]);
    has_note(&m, 25, &["2001:db8::80/64", "IPv6", "dropped"]);
    has_note(&m, 27, &["virtual_ipaddress_excluded", "no equivalent"]);
    has_note(&m, 5, &["vrrp_strict"]);
    has_note(&m, 7, &["vrrp_gna_interval"]);
    assert_eq!(i.garp.interval, Duration::from_millis(1));
    let r = c.redis.as_ref().unwrap();
    assert_eq!(r.address.to_string(), "[::1]:6379");
    assert_eq!((r.fall.0, r.rise.0), (3, 3));
}

/// An instance's own `version 3`, centisecond rounding, `v3_checksum_as_v2` (global
/// or per instance) and an authentication block, which VRRPv3 does without.
#[test]
fn vrrpv3_instances_keep_their_checksum_choice_and_drop_authentication() {
    let (m, c) = run_fixture("vrrp3_checksum.conf", None, None, "vrrp3_checksum");
    let i = c.instance();
    assert_eq!(i.version, vrrp::Version::V3);
    assert_eq!(i.advert_int, Duration::from_millis(130));
    has_note(&m, 12, &["advert_int 0.125", "centiseconds", "130ms"]);
    assert!(i.v3_checksum_as_v2);
    assert!(c.vrrp.auth_pass.is_none());
    has_note(&m, 16, &["authentication", "VRRPv3 has none"]);
    // With VRRPv2 a sub-second interval says how to get one.
    let v2 = "vrrp_instance V { interface eth0\nvirtual_router_id 9\nadvert_int 0.1\nvirtual_ipaddress { 192.0.2.9 } }\n";
    let m = migrate_with(v2, "v2", None, &|_| None).unwrap();
    has_note(&m, 3, &["whole seconds", "vrrp_version 3"]);
}

/// An IPv6 instance (VRRPv3) becomes an IPv6 one, bare addresses as /128; with
/// VRRPv2 its addresses are refused as keepalived would need v3 for them.
#[test]
fn ipv6_virtual_address_blocks_convert_with_vrrpv3() {
    let conf = "global_defs { vrrp_version 3 }\nvrrp_instance V6 {\ninterface eth0\nvirtual_router_id 52\nadvert_int 0.1\nvirtual_ipaddress {\n2001:db8::100/64\n2001:db8::101\n}\n}\n";
    let m = migrate_with(conf, "v6", None, &|_| None).unwrap();
    let c = Config::parse(Path::new("v6.toml"), &m.toml).unwrap();
    let i = c.instance();
    assert_eq!(i.family(), vrrp::netlink::Family::V6);
    assert_eq!(vips(&c), ["2001:db8::100/64", "2001:db8::101/128"]);
    assert_eq!(i.advert_int, Duration::from_millis(100));
    let v2 = conf.replace("vrrp_version 3", "vrrp_version 2");
    let err = migrate_with(&v2, "v6", None, &|_| None).unwrap_err();
    assert!(
        err.to_string().contains("no usable virtual address"),
        "{err}"
    );
}

#[test]
fn lvs_blocks_have_no_equivalent() {
    let (m, c) = run_fixture("lvs.conf", None, None, "lvs");
    has_note(
        &m,
        28,
        &["virtual_server 10.30.0.100 6379", "no equivalent", "LVS"],
    );
    has_note(
        &m,
        7,
        &["vrrp_sync_group VG_1", "not migrated", "one vrrp_instance"],
    );
    has_note(&m, 4, &["lvs_sync_daemon"]);
    has_note(&m, 20, &["auth_type AH", "no equivalent"]);
    has_note(&m, 14, &["state MASTER"]);
    has_note(&m, 24, &["10.30.0.100", "/32"]);
    let i = c.instance();
    assert_eq!((i.vrid, i.priority), (51, 150));
    assert_eq!(i.auth, vrrp::Auth::None);
    assert_eq!(vips(&c), ["10.30.0.100/32"]);
    assert!(c.redis.is_none() && c.replication.is_none());
    assert!(m.toml.contains("plain\n# VRRP router"));
}

const MINIMAL: &str = "vrrp_instance V {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\n  192.0.2.9/24\n }\n}\n";

fn quick(text: &str) -> Result<Migration, MigrateError> {
    migrate_with(text, "k.conf", None, &|_| None)
}

#[test]
fn a_minimal_instance_and_what_is_required() {
    let m = quick(MINIMAL).unwrap();
    assert!(m.notes.is_empty(), "{:?}", m.notes);
    let c = Config::parse(Path::new("x.toml"), &m.toml).unwrap();
    assert_eq!((c.vrrp.priority.0, c.vrrp.preempt), (100, true));
    assert_eq!(quick("global_defs {\n}\n"), Err(MigrateError::NoInstance));
    let err = quick(&MINIMAL.replace(" interface eth0\n", "")).unwrap_err();
    assert!(
        matches!(err, MigrateError::Unusable { line: 1, .. }),
        "{err}"
    );
    let err = quick(&MINIMAL.replace("9\n", "300\n")).unwrap_err();
    assert!(
        matches!(err, MigrateError::Unusable { line: 3, .. }),
        "{err}"
    );
    let err = quick(&MINIMAL.replace("192.0.2.9/24", "fd00::9")).unwrap_err();
    assert!(
        err.to_string().contains("no usable virtual address"),
        "{err}"
    );
}

#[test]
fn master_without_priority_is_the_address_owner() {
    let m = quick(&MINIMAL.replace("interface", "state MASTER\n interface")).unwrap();
    let c = Config::parse(Path::new("x.toml"), &m.toml).unwrap();
    assert_eq!(c.vrrp.priority.0, 255);
    has_note(&m, 2, &["state MASTER", "address owner"]);
}

#[test]
fn replication_scripts_without_a_check_still_get_redis() {
    let text = MINIMAL.replace(
        " interface eth0\n",
        " interface eth0\n notify_backup \"/usr/bin/redis-cli slaveof 192.0.2.2 6379\"\n notify_master /etc/keepalived/master.sh root\n",
    );
    let m = quick(&text).unwrap();
    let c = Config::parse(Path::new("x.toml"), &m.toml).unwrap();
    assert_eq!(c.redis.unwrap().address.to_string(), "127.0.0.1:6379");
    assert_eq!(c.replication.unwrap().peer.to_string(), "192.0.2.2:6379");
    has_note(&m, 1, &["no tracked script checked Redis", "FAULT"]);
    // Unquoted words after the script are keepalived's user and group.
    has_note(&m, 4, &["notify_master", "(root)", "user and group"]);
}

#[test]
fn a_track_script_without_its_vrrp_script_is_noted() {
    let text = MINIMAL.replace(
        " interface eth0\n",
        " interface eth0\n track_script {\n  chk_gone\n }\n",
    );
    let m = quick(&(text + "vrrp_script chk_other {\n script \"/bin/true\"\n}\n")).unwrap();
    has_note(&m, 4, &["track_script chk_gone", "no vrrp_script"]);
    has_note(&m, 11, &["vrrp_script chk_other", "no instance tracks it"]);
}

#[test]
fn unknown_keys_are_noted_not_fatal() {
    let text =
        MINIMAL.replace(" interface eth0\n", " interface eth0\n frobnicate 3\n") + "foo_bar {\n}\n";
    let m = quick(&text).unwrap();
    has_note(&m, 3, &["frobnicate 3", "not known"]);
    has_note(&m, 9, &["foo_bar", "not known"]);
}

/// Mangled fixtures never panic and never yield a TOML the loader refuses. (Hook
/// programs are renamed so that none exists here: whether the loader takes a hook
/// is the hook check's business.)
/// Found by fuzzing (fuzz/regressions/migrate): a repeated notify line was
/// written twice, and the loader refused the duplicate key.
#[test]
fn a_repeated_notify_line_keeps_the_first_like_keepalived() {
    let text = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    virtual_ipaddress {\n        192.0.2.100/24\n    }\n    notify \"/usr/bin/logger -t first\"\n    notify \"/usr/bin/logger -t second\"\n    notify_master /nonexistent/a.sh\n    notify_master /nonexistent/b.sh\n}\n";
    let m =
        migrate_with(text, "dup.conf", None, &|_: &Path| None).unwrap_or_else(|e| panic!("{e}"));
    Config::parse(Path::new("x.toml"), &m.toml).unwrap();
    assert!(m.toml.contains("first"), "{}", m.toml);
    assert!(!m.toml.contains("second"), "{}", m.toml);
    assert!(!m.toml.contains("b.sh"), "{}", m.toml);
    has_note(&m, 8, &["notify", "given again", "ignored"]);
    has_note(&m, 10, &["notify_master", "given again"]);
}

#[test]
fn mangled_files_never_yield_a_refused_config() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as usize
    };
    let mut runs = 0;
    for entry in fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension() != Some("conf".as_ref()) {
            continue;
        }
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/bin/", "/nonexistent/");
        for _ in 0..300 {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            for _ in 0..1 + next(3) {
                if lines.is_empty() {
                    break;
                }
                let i = next(lines.len());
                match next(5) {
                    0 => {
                        lines.remove(i);
                    }
                    1 => {
                        let j = next(lines.len());
                        lines.swap(i, j);
                    }
                    2 => {
                        let copy = lines[i].clone();
                        lines.insert(i, copy);
                    }
                    3 => {
                        let mut words: Vec<&str> = lines[i].split_whitespace().collect();
                        if !words.is_empty() {
                            words.remove(next(words.len()));
                        }
                        lines[i] = words.join(" ");
                    }
                    _ => {
                        let number = ["0", "1", "255", "256", "99999999999999999999"][next(5)];
                        if let Some(start) = lines[i].find(|c: char| c.is_ascii_digit()) {
                            let end = lines[i][start..]
                                .find(|c: char| !c.is_ascii_digit())
                                .map_or(lines[i].len(), |e| start + e);
                            lines[i].replace_range(start..end, number);
                        }
                    }
                }
            }
            let mangled = lines.join("\n");
            if let Err(MigrateError::Rejected(e)) =
                migrate_with(&mangled, "m.conf", None, &|_| None)
            {
                panic!("{}: refused: {e}\n{mangled}", path.display());
            }
            runs += 1;
        }
    }
    assert!(runs >= 8 * 300);
}
