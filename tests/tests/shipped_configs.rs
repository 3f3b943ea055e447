//! The example configurations in `config/` as a pair on the simulated LAN: the classic
//! setup has .26 as master and .27 as its backup, so `redha-27.toml` must lose the
//! election to `redha-26.toml` when both start together.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use redha_tests::Lan;
use vrrp::{RouterConfig, State};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(name: &str) -> toml::Table {
    let path = repo().join("config").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn table<'a>(config: &'a toml::Table, key: &str) -> &'a toml::Table {
    config[key].as_table().expect(key)
}

/// The address of the other host, from `[replication] peer`.
fn peer(config: &toml::Table) -> Ipv4Addr {
    let peer: SocketAddrV4 = table(config, "replication")["peer"]
        .as_str()
        .expect("replication.peer")
        .parse()
        .expect("host:port");
    *peer.ip()
}

/// The `[vrrp]` settings the election depends on, for a node whose own address is
/// `address`.
fn router(config: &toml::Table, address: Ipv4Addr) -> RouterConfig {
    let vrrp = table(config, "vrrp");
    let secs = vrrp["advert_int"]
        .as_str()
        .and_then(|s| s.strip_suffix('s'))
        .and_then(|s| s.parse().ok())
        .expect("advert_int in whole seconds");
    RouterConfig {
        vrid: u8::try_from(vrrp["virtual_router_id"].as_integer().unwrap()).unwrap(),
        priority: u8::try_from(vrrp["priority"].as_integer().unwrap()).unwrap(),
        version: vrrp::Version::V2,
        advert_int: Duration::from_secs(secs),
        preempt: vrrp["preempt"].as_bool().unwrap(),
        preempt_delay: Duration::ZERO,
        primary_address: address.into(),
    }
}

#[test]
fn the_classic_pair_elects_26_when_both_start_together() {
    let c26 = load("redha-26.toml");
    let c27 = load("redha-27.toml");
    // Each file names the other host as its peer: that is each host's own address.
    let (a26, a27) = (peer(&c27), peer(&c26));
    assert_eq!(a26.octets()[3], 26);
    assert_eq!(a27.octets()[3], 27);
    let (r26, r27) = (router(&c26, a26), router(&c27, a27));
    assert_eq!(r26.vrid, r27.vrid);
    assert_eq!(r26.advert_int, r27.advert_int);
    assert!(
        r26.priority > r27.priority,
        "redha-27.toml must have a lower priority than redha-26.toml ({} vs {}): with \
         equal priorities the higher address, .27, wins the tie",
        r27.priority,
        r26.priority
    );

    let mut lan = Lan::with_routers([r26, r27]);
    lan.start_all();
    lan.run_for(lan.max_master_down_interval() + Duration::from_secs(1));
    assert_eq!(lan.holders(), [0], "{}", lan.dump());
    assert_eq!(lan.state(1), State::Backup);
    lan.run_for(Duration::from_secs(600));
    assert_eq!(lan.holders(), [0], "{}", lan.dump());
}
