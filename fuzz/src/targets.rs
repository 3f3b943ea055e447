//! The fuzz targets: each takes arbitrary bytes and checks properties that must hold
//! for every input; a violated property panics, like a crash.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

use health::snapshot::{Role, parse_info, relation};
use redha::config::ConfigError;
use redha::config_file::ConfigFile;
use redha::migrate::{MigrateError, migrate_with, render_notes};
use vrrp::packet::{Advert, Auth, ChecksumScope, Expect, ipv4_datagram};

/// What a target did with an input that broke no property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The input was taken (decoded, parsed, migrated).
    Accepted,
    /// The input was refused with an error.
    Rejected,
}

/// One fuzz target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// `vrrp::packet`: `Advert::decode_ipv4`, `Advert::decode` and the receive
    /// checks; decode/encode round trips.
    VrrpDecode,
    /// `health::parse_info` (and `relation` on what it parsed).
    InfoParse,
    /// The agent's `ConfigFile::parse` (the TOML loader, named instances too).
    ConfigParse,
    /// The keepalived.conf migrator, `migrate_with`.
    Migrate,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 4] = [
        Target::VrrpDecode,
        Target::InfoParse,
        Target::ConfigParse,
        Target::Migrate,
    ];

    /// The target's name: its corpus directory and its `--target` value.
    pub fn name(self) -> &'static str {
        match self {
            Target::VrrpDecode => "vrrp_decode",
            Target::InfoParse => "info_parse",
            Target::ConfigParse => "config_parse",
            Target::Migrate => "migrate",
        }
    }

    /// The target of a name.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether the input is text (line and token mutations apply).
    pub fn is_text(self) -> bool {
        self != Target::VrrpDecode
    }

    /// Runs the target on one input; panics when a property fails.
    pub fn run(self, data: &[u8]) -> Outcome {
        match self {
            Target::VrrpDecode => vrrp_decode(data),
            Target::InfoParse => info_parse(data),
            Target::ConfigParse => config_parse(data),
            Target::Migrate => migrate(data),
        }
    }
}

/// The source of the IPv6 payloads `vrrp_decode` reads its inputs as.
pub const IPV6_SOURCE: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x11);
/// Their destination: the VRRP group.
pub const IPV6_DESTINATION: Ipv6Addr = vrrp::packet::MULTICAST_GROUP_V6;

/// Two checksum fields mean the same if equal, or if they are the two
/// ones'-complement zeros (RFC 1071: 0x0000 and 0xffff): a sender may put either.
fn same_checksum(a: &[u8], b: &[u8]) -> bool {
    a == b || (a == [0, 0] && b == [0xff, 0xff]) || (a == [0xff, 0xff] && b == [0, 0])
}

/// `vrrp_decode`: decoding never panics; what decodes re-encodes to the bytes it
/// came from and decodes again to the same advert; the receive checks never
/// panic, whatever the local configuration.
pub fn vrrp_decode(data: &[u8]) -> Outcome {
    if let Ok(advert) = Advert::decode(data) {
        let bytes = advert.encode();
        let len = advert.encoded_len();
        assert_eq!(bytes.len(), len);
        // VRRPv3's 4 reserved bits (byte 4) are ignored on reception, sent as zero.
        let reserved = match advert.version {
            vrrp::Version::V3 => 0xf0,
            vrrp::Version::V2 => 0,
        };
        assert_eq!(bytes[..4], data[..4], "header re-encoded differently");
        assert_eq!(
            bytes[4],
            data[4] & !reserved,
            "header re-encoded differently"
        );
        assert_eq!(bytes[5], data[5], "header re-encoded differently");
        assert_eq!(bytes[8..], data[8..len], "body re-encoded differently");
        // Reserved bits set on the wire were in the sender's sum, not in ours.
        if data[4] & reserved == 0 {
            assert!(same_checksum(&bytes[6..8], &data[6..8]), "checksum differs");
        }
        assert_eq!(Advert::decode(&bytes).as_ref(), Ok(&advert));
    }
    // The same bytes as an IPv6 payload between two link-local addresses: decoding
    // never panics, and what decodes re-encodes to the message it came from.
    let (ll_a, ll_b) = (IPV6_SOURCE, IPV6_DESTINATION);
    let hop_limit = data.last().copied().unwrap_or(0);
    if let Ok(received) = Advert::decode_ipv6(data, ll_a, ll_b, hop_limit) {
        let scope = ChecksumScope::Ipv6Pseudo {
            source: ll_a,
            destination: ll_b,
        };
        let bytes = received.advert.encode_with(scope);
        assert_eq!(
            Advert::decode_ipv6(&bytes, ll_a, ll_b, hop_limit).as_ref(),
            Ok(&received),
            "an IPv6 advert re-encoded differently"
        );
    }
    match Advert::decode_ipv4(data) {
        Ok(received) => {
            let (IpAddr::V4(source), IpAddr::V4(destination)) =
                (received.source, received.destination)
            else {
                panic!("an IPv4 datagram decoded with IPv6 addresses");
            };
            let scope = if received.checksum_as_v2 {
                ChecksumScope::Message
            } else {
                ChecksumScope::Ipv4Pseudo {
                    source,
                    destination,
                }
            };
            let again = ipv4_datagram(
                source,
                destination,
                vrrp::packet::TTL,
                &received.advert.encode_with(scope),
            );
            assert_eq!(Advert::decode_ipv4(&again).as_ref(), Ok(&received));
            // The local checks, with a configuration drawn from the input itself
            // (sometimes matching the advert, sometimes not).
            let byte = |i: usize| data.get(i).copied().unwrap_or(0);
            let pick = byte(data.len() / 2);
            let auth = match (pick % 3, received.advert.auth_type) {
                (2, _) => Auth::simple("secret"),
                (_, 0) => Auth::None,
                _ => Auth::Simple(received.advert.auth_data),
            };
            let addresses = if pick & 4 == 0 {
                received.advert.addresses.clone()
            } else {
                vec![IpAddr::from([192, 0, 2, 100])]
            };
            let sources = [received.source, IpAddr::from([192, 0, 2, 12])];
            let expect = Expect {
                version: received.advert.version,
                checksum_as_v2: received.checksum_as_v2 == (byte(2) & 1 == 0),
                vrid: if pick & 8 == 0 {
                    received.advert.vrid
                } else {
                    byte(1)
                },
                advert_int: if pick & 16 == 0 {
                    received.advert.advert_int
                } else {
                    u16::from(byte(5))
                },
                auth: &auth,
                addresses: &addresses,
                we_are_owner: pick & 32 != 0,
                unicast_peers: if pick & 64 == 0 { &[] } else { &sources[1..] },
                allowed_sources: if pick & 128 == 0 { &[] } else { &sources[..1] },
            };
            let verdict = received.check_against(&expect);
            // An allowed source with everything as expected is always taken.
            let v3_zero_interval =
                received.advert.version == vrrp::Version::V3 && received.advert.advert_int == 0;
            if pick & 0b1111_1100 == 0
                && pick % 3 != 2
                && received.advert.auth_type <= 1
                && byte(2) & 1 == 0
                && !v3_zero_interval
            {
                assert_eq!(verdict, Ok(()), "a matching advert was refused");
            }
            Outcome::Accepted
        }
        Err(_) => Outcome::Rejected,
    }
}

/// `info_parse`: parsing never panics; `\r\n` line ends parse like `\n`; a parsed
/// snapshot is consistent (replica fields exactly on a replica) and can be related
/// to itself and to the seeds' shapes without panicking.
pub fn info_parse(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data);
    let parsed = parse_info(&text);
    if !text.contains('\r') {
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(parse_info(&crlf), parsed, "CRLF parses differently");
    }
    match parsed {
        Ok(snapshot) => {
            assert_eq!(
                snapshot.master.is_some(),
                snapshot.role == Role::Replica,
                "replica fields on a master, or none on a replica"
            );
            let _ = relation(&snapshot, &snapshot);
            let _ = snapshot.offset();
            let _ = snapshot.is_fresh_empty();
            let _ = snapshot.accepts_partial_resync(&snapshot.master_replid, snapshot.offset());
            Outcome::Accepted
        }
        Err(e) => {
            let _ = e.to_string();
            Outcome::Rejected
        }
    }
}

/// `config_parse`: loading a file (the single-instance form or named instances with
/// sync groups) never panics; an error names a line of the text (or the one past
/// it) and a key, with a message; a loaded file yields each instance and its hooks,
/// and its sync groups name its instances.
pub fn config_parse(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data);
    match ConfigFile::parse(Path::new("fuzz.toml"), &text) {
        Ok(file) => {
            assert!(!file.instances.is_empty(), "a file without an instance");
            for config in &file.instances {
                let instance = config.instance();
                let _ = instance.wire_advert_int();
                let _ = instance.address_lease(instance.advert_int * 3);
                let _ = config.vrrp.hooks();
            }
            for members in file.sync_groups.values() {
                for member in members {
                    assert!(
                        file.instances
                            .iter()
                            .any(|c| ConfigFile::name_of(c) == *member),
                        "sync group member {member} is no instance"
                    );
                }
            }
            Outcome::Accepted
        }
        Err(ConfigError::Invalid {
            line, key, message, ..
        }) => {
            let lines = text.lines().count();
            assert!(
                (1..=lines + 1).contains(&line),
                "error line {line} of a {lines}-line text"
            );
            assert!(!key.is_empty(), "an error without a key");
            assert!(!message.is_empty(), "an error without a message");
            Outcome::Rejected
        }
        Err(e @ ConfigError::Read { .. }) => panic!("parse read a file: {e}"),
    }
}

/// The marker that starts a script file in a `migrate` input: `#%% /path` on a line
/// of its own, then the file's content (a keepalived comment, should it stay).
pub const SCRIPT_MARKER: &str = "\n#%% ";

/// `migrate`: the input is a keepalived.conf, then script files after
/// [`SCRIPT_MARKER`] lines, read by the migrator as if on disk. Migration never
/// panics and never yields a configuration that redha's loader refuses
/// ([`MigrateError::Rejected`], a bug by its own definition).
pub fn migrate(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split(SCRIPT_MARKER);
    let conf = parts.next().unwrap_or("");
    let files: HashMap<&str, &str> = parts
        .map(|part| part.split_once('\n').unwrap_or((part, "")))
        .map(|(path, content)| (path.trim(), content))
        .collect();
    let read = |path: &Path| {
        files
            .get(path.to_str().unwrap_or(""))
            .map(|c| c.as_bytes().to_vec())
    };
    let mut outcome = Outcome::Rejected;
    for instance in [None, Some("VI_1")] {
        match migrate_with(conf, "fuzz.conf", instance, &read) {
            Ok(m) => {
                let _ = render_notes(&m.notes);
                outcome = Outcome::Accepted;
            }
            Err(MigrateError::Rejected(why)) => {
                panic!("the migrator wrote a configuration its own loader refuses: {why}")
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    outcome
}
