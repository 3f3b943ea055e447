//! The TOML configuration file: one file per node, read with serde. Every value is
//! checked while it is read, so that an error names the file, the line and the key.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use vrrp::netlink::Family;
use vrrp::{Auth, GarpConfig, InstanceConfig, Version, VirtualAddress};

/// A node's configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The VRRP instance.
    pub vrrp: VrrpConfig,
    /// The local Redis; without it redha is a plain VRRP daemon.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// Replication with the peer's Redis; needs `[redis]`.
    #[serde(default)]
    pub replication: Option<ReplicationConfig>,
    /// The state log: one line per event, like the classic redis-state.log.
    #[serde(default)]
    pub state_log: Option<StateLogConfig>,
    /// The control socket that `redha status` talks to.
    #[serde(default)]
    pub control: ControlConfig,
    /// The Prometheus metrics listener; off unless the section is present.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

/// The `[control]` section.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// The Unix socket path; default /run/redha/redha.sock.
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: default_socket(),
        }
    }
}

fn default_socket() -> PathBuf {
    PathBuf::from(crate::control::DEFAULT_SOCKET)
}

/// The `[metrics]` section: present means on.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address to serve `GET /metrics` on; default 127.0.0.1:9150 (loopback).
    #[serde(default = "default_metrics_listen")]
    pub listen: std::net::SocketAddr,
}

fn default_metrics_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 9150))
}

/// The `[redis]` section: the local Redis and how it is checked.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `host:port` of the local Redis.
    pub address: RedisAddress,
    /// ACL user name (needs a password).
    #[serde(default)]
    pub username: Option<String>,
    /// Password (`requirepass`, or the ACL user's).
    #[serde(default)]
    pub password: Option<Secret>,
    /// A file holding the password (first line), instead of `password`.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Time between checks; default 1s.
    #[serde(default = "default_check_interval", with = "humantime_serde")]
    pub check_interval: Duration,
    /// Deadline of one check (PING and INFO); default 500ms.
    #[serde(default = "default_check_timeout", with = "humantime_serde")]
    pub check_timeout: Duration,
    /// Consecutive failures before the Redis is down; default 2.
    #[serde(default = "default_threshold")]
    pub fall: Threshold,
    /// Consecutive successes before the Redis is up; default 2.
    #[serde(default = "default_threshold")]
    pub rise: Threshold,
}

fn default_check_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_check_timeout() -> Duration {
    Duration::from_millis(500)
}

fn default_threshold() -> Threshold {
    Threshold(2)
}

/// The `[replication]` section: the peer's Redis.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReplicationConfig {
    /// `host:port` of the other host's Redis, as this host reaches it.
    pub peer: RedisAddress,
    /// `host:port` of our Redis as the peer's Redis reaches it; default: the VRRP
    /// interface's primary address and the port of `[redis] address`.
    #[serde(default)]
    pub announce: Option<RedisAddress>,
    /// How long a promotion waits for the last catch-up; default 10s.
    #[serde(default = "default_catch_up_timeout", with = "humantime_serde")]
    pub catch_up_timeout: Duration,
    /// Where the agent keeps what must survive a power loss: `state.json` (the
    /// history of our Redis) and `saved/` (datasets saved before a resync).
    /// Without it, no dataset can be saved, so no resync that needs one happens.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// With it, a master whose replica has been gone this long stops
    /// acknowledging writes (`min-replicas-to-write 1`) unless the peer is known
    /// to be down; default: off.
    #[serde(default, with = "humantime_serde")]
    pub isolation_timeout: Option<Duration>,
    /// `host:port` addresses on the clients' side of the network; one that
    /// answers (even by refusing the connection) shows that this side is the
    /// connected one, which lifts the isolation fence. Default: none.
    #[serde(default)]
    pub witnesses: Vec<RedisAddress>,
}

fn default_catch_up_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The `[state_log]` section.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StateLogConfig {
    /// The file to append to.
    pub path: PathBuf,
    /// `text` (key=value) or `json` (JSON lines); default text.
    #[serde(default)]
    pub format: StateLogFormat,
}

/// The state log's line format.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StateLogFormat {
    /// `time event=... key="value"`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A Redis `host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisAddress {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl fmt::Display for RedisAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl<'de> Deserialize<'de> for RedisAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let target = health::RedisTarget::new(text.clone());
        let (host, port) = target
            .host_port()
            .map_err(|e| de::Error::custom(e.to_string()))?;
        Ok(RedisAddress { host, port })
    }
}

/// A count from 1 to 100 (fall, rise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold(pub u32);

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        match u32::try_from(n) {
            Ok(v) if (1..=100).contains(&v) => Ok(Threshold(v)),
            _ => Err(de::Error::custom(format!("must be 1 to 100, not {n}"))),
        }
    }
}

/// A secret that `Debug` does not print.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The `[vrrp]` section: one VRRPv2 instance, with keepalived's names where it has
/// them.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VrrpConfig {
    /// A name for logs; default `vrid-<virtual_router_id>`.
    #[serde(default)]
    pub name: Option<String>,
    /// The interface to run on.
    pub interface: String,
    /// Virtual router id, 1..=255; both nodes of a pair use the same.
    pub virtual_router_id: Vrid,
    /// Priority, 1..=255 (255: this node owns the addresses); default 100.
    #[serde(default)]
    pub priority: Priority,
    /// The VRRP version: 2 (RFC 3768, the default) or 3 (RFC 5798: sub-second
    /// adverts, no authentication).
    #[serde(default)]
    pub version: VrrpVersion,
    /// Advertisement interval; default 1s. Whole seconds from 1s to 255s with
    /// version 2; centiseconds from 10ms to 40950ms with version 3.
    #[serde(default)]
    pub advert_int: AdvertInt,
    /// Version 3: compute and expect checksums without the IPv4 pseudo-header, for
    /// peers that do so (keepalived's `v3_checksum_as_v2`); default false.
    #[serde(default)]
    pub v3_checksum_as_v2: bool,
    /// Take over from a lower-priority master (keepalived's default); `false` is
    /// keepalived's `nopreempt`.
    #[serde(default = "default_true")]
    pub preempt: bool,
    /// With `preempt`, how long after start-up not to preempt; default 0s.
    #[serde(default, with = "humantime_serde")]
    pub preempt_delay: Duration,
    /// The virtual addresses, `a.b.c.d/len` (a bare address means /32).
    pub virtual_ipaddresses: VirtualAddresses,
    /// Send adverts to these peers instead of multicast; adverts from others are
    /// dropped.
    #[serde(default)]
    pub unicast_peers: Vec<IpAddr>,
    /// The source address of adverts; default: the interface's first address.
    #[serde(default)]
    pub unicast_src_ip: Option<IpAddr>,
    /// Take adverts only from these sources (multicast or unicast); others are
    /// dropped and counted (`source_not_allowed`). Default: any source.
    #[serde(default)]
    pub allowed_sources: Option<Vec<IpAddr>>,
    /// VRRPv2 simple password (auth_type PASS), 1 to 8 characters.
    #[serde(default)]
    pub auth_pass: Option<Password>,
    /// Delay before the second burst of gratuitous ARP after becoming master; 5s.
    #[serde(default = "default_garp_master_delay", with = "humantime_serde")]
    pub garp_master_delay: Duration,
    /// Gratuitous ARPs per address in a burst; 5.
    #[serde(default = "default_garp_master_repeat")]
    pub garp_master_repeat: u32,
    /// Pause between the gratuitous ARPs of a burst; 0s.
    #[serde(default, with = "humantime_serde")]
    pub garp_interval: Duration,
    /// Send a burst every so often while master; 0s = never.
    #[serde(default, with = "humantime_serde")]
    pub garp_master_refresh: Duration,
    /// Gratuitous ARPs per address in a refresh burst; 1.
    #[serde(default = "default_garp_master_refresh_repeat")]
    pub garp_master_refresh_repeat: u32,
    /// Command run on entering MASTER (keepalived's notify_master).
    #[serde(default)]
    pub notify_master: Option<String>,
    /// Command run on entering BACKUP.
    #[serde(default)]
    pub notify_backup: Option<String>,
    /// Command run on entering FAULT.
    #[serde(default)]
    pub notify_fault: Option<String>,
    /// Command run when the instance stops.
    #[serde(default)]
    pub notify_stop: Option<String>,
    /// Command run on every change with `INSTANCE <name> <STATE> <priority>`.
    #[serde(default)]
    pub notify: Option<String>,
    /// A hook still running after this is killed; default 10s.
    #[serde(default = "default_notify_timeout", with = "humantime_serde")]
    pub notify_timeout: Duration,
}

fn default_notify_timeout() -> Duration {
    Duration::from_secs(10)
}

impl VrrpConfig {
    /// The notify hooks.
    pub fn hooks(&self) -> crate::hooks::HookConfig {
        crate::hooks::HookConfig {
            notify_master: self.notify_master.clone(),
            notify_backup: self.notify_backup.clone(),
            notify_fault: self.notify_fault.clone(),
            notify_stop: self.notify_stop.clone(),
            notify: self.notify.clone(),
            notify_timeout: self.notify_timeout,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_garp_master_delay() -> Duration {
    GarpConfig::default().master_delay
}

fn default_garp_master_repeat() -> u32 {
    GarpConfig::default().master_repeat
}

fn default_garp_master_refresh_repeat() -> u32 {
    GarpConfig::default().master_refresh_repeat
}

/// A virtual router id, 1..=255.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vrid(pub u8);

impl<'de> Deserialize<'de> for Vrid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        match u8::try_from(n) {
            Ok(v) if v >= 1 => Ok(Vrid(v)),
            _ => Err(de::Error::custom(format!(
                "virtual_router_id must be 1 to 255, not {n}"
            ))),
        }
    }
}

/// A priority, 1..=255 (0 is reserved for a master stepping down).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority(pub u8);

impl Default for Priority {
    fn default() -> Self {
        Priority(100)
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        match u8::try_from(n) {
            Ok(v) if v >= 1 => Ok(Priority(v)),
            _ => Err(de::Error::custom(format!(
                "priority must be 1 to 255 (0 is reserved for a master stepping down), not {n}"
            ))),
        }
    }
}

/// The VRRP version, 2 or 3.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VrrpVersion(pub Version);

impl<'de> Deserialize<'de> for VrrpVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match i64::deserialize(d)? {
            2 => Ok(VrrpVersion(Version::V2)),
            3 => Ok(VrrpVersion(Version::V3)),
            n => Err(de::Error::custom(format!(
                "version must be 2 (VRRPv2, RFC 3768) or 3 (VRRPv3, RFC 5798), not {n}"
            ))),
        }
    }
}

/// The advertisement interval. What the version can carry (whole seconds for v2,
/// centiseconds for v3) is checked with the version: see [`Config::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertInt(pub Duration);

impl Default for AdvertInt {
    fn default() -> Self {
        AdvertInt(Duration::from_secs(1))
    }
}

impl<'de> Deserialize<'de> for AdvertInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(AdvertInt(humantime_serde::deserialize(d)?))
    }
}

/// Why `advert_int` cannot be carried by `version`, if it cannot.
fn advert_int_refusal(version: Version, int: Duration) -> Option<String> {
    if version.wire_interval(int).is_some() {
        return None;
    }
    let shown = humantime_serde::re::humantime::format_duration(int);
    Some(match version {
        Version::V2 if int < Duration::from_secs(1) || int.subsec_nanos() != 0 => format!(
            "must be whole seconds from 1s to 255s with VRRPv2, not {shown}; sub-second adverts need version = 3"
        ),
        Version::V2 => format!("must be whole seconds from 1s to 255s with VRRPv2, not {shown}"),
        Version::V3 => format!(
            "must be a multiple of 10ms from 10ms to 40950ms with VRRPv3 (centiseconds), not {shown}"
        ),
    })
}

/// The virtual addresses: at least one, at most 255 (the advert's count field), no
/// duplicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualAddresses(pub Vec<VirtualAddress>);

impl<'de> Deserialize<'de> for VirtualAddresses {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        let mut out: Vec<VirtualAddress> = Vec::with_capacity(items.len());
        for item in &items {
            let vip = parse_vip(item).map_err(de::Error::custom)?;
            if out.iter().any(|v| v.address == vip.address) {
                return Err(de::Error::custom(format!(
                    "{} is listed twice",
                    vip.address
                )));
            }
            out.push(vip);
        }
        if out.is_empty() {
            return Err(de::Error::custom("at least one virtual address is needed"));
        }
        if out.len() > 255 {
            return Err(de::Error::custom(
                "at most 255 virtual addresses fit in an advert",
            ));
        }
        Ok(VirtualAddresses(out))
    }
}

/// Parses `a.b.c.d/len` or `a.b.c.d` (/32).
pub fn parse_vip(text: &str) -> Result<VirtualAddress, String> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let address: IpAddr = addr.trim().parse().map_err(|_| {
        format!("{text:?} is not an IP address (a.b.c.d, a.b.c.d/len, or IPv6 as 2001:db8::1/64)")
    })?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix_len = match len {
        None => max,
        Some(l) => match l.trim().parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(format!("{text:?}: the prefix length must be 0 to {max}")),
        },
    };
    let unusable = match address {
        IpAddr::V4(a) => a.is_unspecified() || a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_unspecified() || a.is_multicast() || a.is_loopback(),
    };
    if unusable {
        return Err(format!("{text:?} cannot be a virtual address"));
    }
    Ok(VirtualAddress {
        address,
        prefix_len,
    })
}

/// A VRRPv2 simple password: 1 to 8 characters (the advert carries 8 bytes; we refuse
/// longer ones rather than cut them silently as keepalived does).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.len() > 8 {
            return Err(de::Error::custom(format!(
                "auth_pass must be 1 to 8 bytes (VRRPv2 carries 8), this one has {}",
                s.len()
            )));
        }
        Ok(Password(s))
    }
}

/// A configuration error, naming the file, the line and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or a value is wrong.
    #[error("{path}:{line}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending value (or of its table).
        line: usize,
        /// The dotted key (`vrrp.priority`), or the table for a missing key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Parses and checks configuration text; `path` is only used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            let (line, key) = locate(text, offset);
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                key,
                message: e.message().trim().to_string(),
            }
        })?;
        config.check(path, text, "")?;
        Ok(config)
    }

    /// Checks that need more than one value. `prefix` is where the instance's
    /// tables stand in the file: `""` for `[vrrp]`, `"instances.NAME."` for
    /// `[instances.NAME.vrrp]`.
    pub(crate) fn check(&self, path: &Path, text: &str, prefix: &str) -> Result<(), ConfigError> {
        let v = &self.vrrp;
        let fail = |key: &str, message: String| {
            let table = format!("{prefix}vrrp");
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line: line_of_key(text, &table, key),
                key: format!("{table}.{key}"),
                message,
            }
        };
        if v.interface.trim().is_empty() {
            return Err(fail("interface", "must name a network interface".into()));
        }
        let version = v.version.0;
        if let Some(why) = advert_int_refusal(version, v.advert_int.0) {
            return Err(fail("advert_int", why));
        }
        let vips = &v.virtual_ipaddresses.0;
        let family = Family::of(&vips[0].address);
        if let Some(other) = vips.iter().find(|a| Family::of(&a.address) != family) {
            return Err(fail(
                "virtual_ipaddresses",
                format!(
                    "mixes IPv4 and IPv6 ({} and {}): one instance is one address family",
                    vips[0].address, other.address
                ),
            ));
        }
        if family == Family::V6 && version == Version::V2 {
            return Err(fail(
                "virtual_ipaddresses",
                "IPv6 virtual addresses need version = 3 (VRRPv2 is IPv4 only)".into(),
            ));
        }
        let foreign = |addrs: &[IpAddr]| addrs.iter().find(|a| Family::of(a) != family).copied();
        for (key, addrs) in [
            ("unicast_peers", v.unicast_peers.clone()),
            ("unicast_src_ip", v.unicast_src_ip.into_iter().collect()),
            (
                "allowed_sources",
                v.allowed_sources.clone().unwrap_or_default(),
            ),
        ] {
            if let Some(a) = foreign(&addrs) {
                return Err(fail(
                    key,
                    format!("{a} is not {family}, like the virtual addresses"),
                ));
            }
        }
        if version == Version::V3 && v.auth_pass.is_some() {
            return Err(fail(
                "auth_pass",
                "VRRPv3 has no authentication (RFC 5798 dropped it); leave auth_pass out, or use version = 2".into(),
            ));
        }
        if version == Version::V2 && v.v3_checksum_as_v2 {
            return Err(fail(
                "v3_checksum_as_v2",
                "applies to VRRPv3 only: set version = 3, or leave the key out".into(),
            ));
        }
        for peer in &v.unicast_peers {
            if v.virtual_ipaddresses
                .0
                .iter()
                .any(|vip| vip.address == *peer)
            {
                return Err(fail(
                    "unicast_peers",
                    format!("{peer} is one of the virtual addresses"),
                ));
            }
        }
        if let Some(src) = v.unicast_src_ip
            && v.virtual_ipaddresses.0.iter().any(|vip| vip.address == src)
        {
            return Err(fail(
                "unicast_src_ip",
                format!("{src} is one of the virtual addresses"),
            ));
        }
        if let Some(allowed) = &v.allowed_sources {
            if allowed.is_empty() {
                return Err(fail(
                    "allowed_sources",
                    "lists no address, so every advert would be dropped; leave the key out to take adverts from any source".into(),
                ));
            }
            for (i, source) in allowed.iter().enumerate() {
                let broadcast = matches!(source, IpAddr::V4(a) if a.is_broadcast());
                if source.is_unspecified() || source.is_multicast() || broadcast {
                    return Err(fail(
                        "allowed_sources",
                        format!("{source} cannot be the source of an advert"),
                    ));
                }
                if allowed[..i].contains(source) {
                    return Err(fail("allowed_sources", format!("{source} is listed twice")));
                }
                if v.virtual_ipaddresses
                    .0
                    .iter()
                    .any(|vip| vip.address == *source)
                {
                    return Err(fail(
                        "allowed_sources",
                        format!("{source} is one of the virtual addresses"),
                    ));
                }
            }
            if let Some(peer) = v.unicast_peers.iter().find(|p| !allowed.contains(p)) {
                return Err(fail(
                    "allowed_sources",
                    format!(
                        "leaves out the unicast peer {peer}, whose adverts would all be dropped"
                    ),
                ));
            }
        }
        if v.garp_master_repeat == 0 {
            return Err(fail("garp_master_repeat", "must be at least 1".into()));
        }
        if let Err(e) = v.hooks().check() {
            let message = match e.command.is_empty() {
                true => e.refusal.to_string(),
                false => format!("{:?}: {}", e.command, e.refusal),
            };
            return Err(fail(e.key, message));
        }
        let fail_in = |table: &str, key: &str, message: String| {
            let table = format!("{prefix}{table}");
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line: line_of_key(text, &table, key),
                key: format!("{table}.{key}"),
                message,
            }
        };
        if let Some(r) = &self.redis {
            if r.password.is_some() && r.password_file.is_some() {
                return Err(fail_in(
                    "redis",
                    "password_file",
                    "give password or password_file, not both".into(),
                ));
            }
            if r.username.is_some() && r.password.is_none() && r.password_file.is_none() {
                return Err(fail_in(
                    "redis",
                    "username",
                    "a user name needs a password or password_file".into(),
                ));
            }
            if r.check_timeout.is_zero() || r.check_timeout > r.check_interval {
                return Err(fail_in(
                    "redis",
                    "check_timeout",
                    "must be more than 0s and at most check_interval".into(),
                ));
            }
        }
        if let Some(rep) = &self.replication {
            if self.redis.is_none() {
                return Err(fail_in(
                    "replication",
                    "peer",
                    "[replication] needs a [redis] section".into(),
                ));
            }
            if rep.catch_up_timeout.is_zero() {
                return Err(fail_in(
                    "replication",
                    "catch_up_timeout",
                    "must be more than 0s".into(),
                ));
            }
            if let Some(t) = rep.isolation_timeout
                && (t < Duration::from_secs(1) || t.subsec_nanos() != 0)
            {
                return Err(fail_in(
                    "replication",
                    "isolation_timeout",
                    "must be whole seconds, at least 1s (Redis's min-replicas-max-lag)".into(),
                ));
            }
            if !rep.witnesses.is_empty() && rep.isolation_timeout.is_none() {
                return Err(fail_in(
                    "replication",
                    "witnesses",
                    "witnesses only lift the isolation fence: set isolation_timeout too".into(),
                ));
            }
            if family == Family::V6 && rep.announce.is_none() {
                return Err(fail_in(
                    "replication",
                    "peer",
                    "with IPv6 virtual addresses set [replication] announce too: the adverts' source is link-local, which the peer's Redis cannot reach without a zone".into(),
                ));
            }
            if let Some(dir) = &rep.state_dir
                && !dir.is_absolute()
            {
                return Err(fail_in(
                    "replication",
                    "state_dir",
                    "must be an absolute path".into(),
                ));
            }
        }
        Ok(())
    }

    /// Whether `other` configures the instance as this does: the shared
    /// `[control]` and `[metrics]` aside, which an instance does not use.
    pub fn same_instance(&self, other: &Config) -> bool {
        (&self.vrrp, &self.redis, &self.replication, &self.state_log)
            == (
                &other.vrrp,
                &other.redis,
                &other.replication,
                &other.state_log,
            )
    }

    /// The local Redis target, with the password read from `password_file` when
    /// given.
    pub fn redis_target(&self, redis: &RedisConfig) -> Result<health::RedisTarget, ConfigError> {
        let password = match (&redis.password, &redis.password_file) {
            (Some(p), _) => Some(p.0.clone()),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
                    path: file.clone(),
                    source,
                })?;
                Some(text.lines().next().unwrap_or("").to_string())
            }
            (None, None) => None,
        };
        Ok(health::RedisTarget {
            address: redis.address.to_string(),
            username: redis.username.clone(),
            password,
        })
    }

    /// The VRRP instance as the vrrp crate takes it.
    pub fn instance(&self) -> InstanceConfig {
        let v = &self.vrrp;
        InstanceConfig {
            name: v
                .name
                .clone()
                .unwrap_or_else(|| format!("vrid-{}", v.virtual_router_id.0)),
            interface: v.interface.clone(),
            vrid: v.virtual_router_id.0,
            priority: v.priority.0,
            version: v.version.0,
            advert_int: v.advert_int.0,
            v3_checksum_as_v2: v.v3_checksum_as_v2,
            preempt: v.preempt,
            preempt_delay: v.preempt_delay,
            virtual_addresses: v.virtual_ipaddresses.0.clone(),
            auth: v
                .auth_pass
                .as_ref()
                .map_or(Auth::None, |p| Auth::simple(&p.0)),
            unicast_peers: v.unicast_peers.clone(),
            unicast_src_ip: v.unicast_src_ip,
            allowed_sources: v.allowed_sources.clone().unwrap_or_default(),
            garp: GarpConfig {
                master_repeat: v.garp_master_repeat,
                interval: v.garp_interval,
                master_delay: v.garp_master_delay,
                master_refresh: v.garp_master_refresh,
                master_refresh_repeat: v.garp_master_refresh_repeat,
            },
        }
    }
}

/// The 1-based line of a byte offset, and the dotted key written on that line (the
/// nearest `[table]` above joined with the key before `=`; just the table when the
/// line holds no key).
pub(crate) fn locate(text: &str, offset: usize) -> (usize, String) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line_no = before.matches('\n').count() + 1;
    let mut table = String::new();
    for line in before.lines() {
        if let Some(name) = table_header(line) {
            table = name;
        }
    }
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    if let Some(name) = table_header(line) {
        return (line_no, name);
    }
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('#'));
    let key = match (key, table.is_empty()) {
        (Some(k), true) => k,
        (Some(k), false) => format!("{table}.{k}"),
        (None, false) => table,
        (None, true) => "(top level)".to_string(),
    };
    (line_no, key)
}

fn table_header(line: &str) -> Option<String> {
    let t = line.trim();
    let inner = t.strip_prefix('[')?.split(']').next()?;
    // `[]` or `[[]]` names no table: not a header (an error then names the
    // enclosing table, or the top level, never an empty key).
    Some(inner.trim_matches('[').trim().to_string()).filter(|name| !name.is_empty())
}

/// The line on which `key` is set inside `[table]`, or the table's header line.
pub(crate) fn line_of_key(text: &str, table: &str, key: &str) -> usize {
    let mut in_table = false;
    let mut header = 1;
    for (i, line) in text.lines().enumerate() {
        if let Some(name) = table_header(line) {
            in_table = name == table;
            if in_table {
                header = i + 1;
            }
            continue;
        }
        if in_table
            && line
                .split_once('=')
                .is_some_and(|(k, _)| k.trim().trim_matches('"') == key)
        {
            return i + 1;
        }
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[vrrp]
interface = "eth0"
virtual_router_id = 51
priority = 100
advert_int = "5s"
preempt = false                 # the seed's nopreempt
virtual_ipaddresses = ["10.20.112.100/24"]
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("node.toml"), text)
    }

    fn error(text: &str) -> (usize, String, String) {
        match parse(text) {
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn reads_the_design_example() {
        let c = parse(GOOD).unwrap();
        let i = c.instance();
        assert_eq!(i.interface, "eth0");
        assert_eq!(i.vrid, 51);
        assert_eq!(i.priority, 100);
        assert_eq!(i.advert_int, Duration::from_secs(5));
        assert!(!i.preempt);
        assert_eq!(i.virtual_addresses[0].to_string(), "10.20.112.100/24");
        assert_eq!(i.auth, Auth::None);
        assert_eq!(i.garp, GarpConfig::default());
        assert_eq!(i.name, "vrid-51");
    }

    #[test]
    fn defaults_follow_keepalived() {
        let c = parse("[vrrp]\ninterface = \"eth0\"\nvirtual_router_id = 7\nvirtual_ipaddresses = [\"192.0.2.1\"]\n").unwrap();
        let i = c.instance();
        assert_eq!(
            (i.priority, i.advert_int, i.preempt),
            (100, Duration::from_secs(1), true)
        );
        assert_eq!(i.virtual_addresses[0].prefix_len, 32);
    }

    #[test]
    fn names_line_and_key_of_a_bad_value() {
        let text = GOOD.replace("priority = 100", "priority = 0");
        let (line, key, message) = error(&text);
        assert_eq!((line, key.as_str()), (5, "vrrp.priority"));
        assert!(message.contains("1 to 255"), "{message}");

        let text = GOOD.replace("\"5s\"", "\"1500ms\"");
        let (line, key, message) = error(&text);
        assert_eq!((line, key.as_str()), (6, "vrrp.advert_int"));
        assert!(message.contains("whole seconds"), "{message}");

        let text = GOOD.replace("10.20.112.100/24", "10.20.112.300/24");
        let (line, key, _) = error(&text);
        assert_eq!((line, key.as_str()), (8, "vrrp.virtual_ipaddresses"));

        let text = GOOD.replace("virtual_router_id = 51", "virtual_router_id = 256");
        assert_eq!(error(&text).1, "vrrp.virtual_router_id");

        let text = GOOD.replace("preempt = false", "preempt = \"no\"");
        assert_eq!(error(&text).1, "vrrp.preempt");
    }

    #[test]
    fn ipv6_instances_take_ipv6_everywhere_and_one_family_only() {
        let v6 = |extra: &str| {
            GOOD.replace("advert_int = \"5s\"", "version = 3\nadvert_int = \"100ms\"")
                .replace("10.20.112.100/24", "2001:db8::100/64")
                .replace("preempt = false", extra)
        };
        let i = parse(&v6(
            "unicast_peers = [\"fe80::2\"]\nallowed_sources = [\"fe80::2\"]",
        ))
        .unwrap()
        .instance();
        assert_eq!(i.virtual_addresses[0].to_string(), "2001:db8::100/64");
        assert_eq!(i.family(), vrrp::netlink::Family::V6);
        assert_eq!(i.unicast_peers, ["fe80::2".parse::<IpAddr>().unwrap()]);
        // A bare IPv6 address is a /128.
        let bare = v6("preempt = true").replace("2001:db8::100/64", "2001:db8::100");
        assert_eq!(
            parse(&bare).unwrap().instance().virtual_addresses[0].prefix_len,
            128
        );
        // One family per instance.
        let mixed = v6("preempt = true").replace(
            "[\"2001:db8::100/64\"]",
            "[\"2001:db8::100/64\", \"10.20.112.100/24\"]",
        );
        let (line, key, message) = error(&mixed);
        assert_eq!((line, key.as_str()), (9, "vrrp.virtual_ipaddresses"));
        assert!(message.contains("one address family"), "{message}");
        // IPv6 needs VRRPv3.
        let v2 = GOOD.replace("10.20.112.100/24", "2001:db8::100/64");
        let (_, key, message) = error(&v2);
        assert_eq!(key, "vrrp.virtual_ipaddresses");
        assert!(message.contains("version = 3"), "{message}");
        // Peers and sources of the other family are refused, naming the key.
        for (extra, key) in [
            ("unicast_peers = [\"10.20.112.27\"]", "vrrp.unicast_peers"),
            ("unicast_src_ip = \"10.20.112.26\"", "vrrp.unicast_src_ip"),
            (
                "allowed_sources = [\"10.20.112.27\"]",
                "vrrp.allowed_sources",
            ),
        ] {
            let (_, k, message) = error(&v6(extra));
            assert_eq!(k, key);
            assert!(message.contains("not IPv6"), "{message}");
        }
        let bad_len = v6("preempt = true").replace("/64", "/129");
        assert!(error(&bad_len).2.contains("0 to 128"));
        // With [replication], an IPv6 instance names the address its Redis is
        // reached at (the adverts' source is link-local).
        let rep = format!(
            "{}\n[redis]\naddress = \"[::1]:6379\"\n\n[replication]\npeer = \"[2001:db8::27]:6379\"\n",
            v6("preempt = true")
        );
        let (_, key, message) = error(&rep);
        assert_eq!(key, "replication.peer");
        assert!(message.contains("announce"), "{message}");
        let ok = rep.replace(
            "peer = \"[2001:db8::27]:6379\"",
            "peer = \"[2001:db8::27]:6379\"\nannounce = \"[2001:db8::26]:6379\"",
        );
        let c = parse(&ok).unwrap();
        assert_eq!(
            c.replication.unwrap().peer.to_string(),
            "[2001:db8::27]:6379"
        );
    }

    #[test]
    fn version_3_takes_centisecond_intervals_and_no_password() {
        let v3 = |int: &str| {
            GOOD.replace(
                "advert_int = \"5s\"",
                &format!("version = 3\nadvert_int = \"{int}\""),
            )
        };
        for (int, expected) in [
            ("100ms", 100),
            ("10ms", 10),
            ("40950ms", 40_950),
            ("1s", 1000),
        ] {
            let i = parse(&v3(int)).unwrap().instance();
            assert_eq!(i.version, Version::V3);
            assert_eq!(i.advert_int, Duration::from_millis(expected), "{int}");
            assert!(!i.v3_checksum_as_v2);
        }
        for bad in ["5ms", "15ms", "40960ms", "0s", "1ms"] {
            let (line, key, message) = error(&v3(bad));
            assert_eq!((line, key.as_str()), (7, "vrrp.advert_int"), "{bad}");
            assert!(message.contains("multiple of 10ms"), "{message}");
        }
        // Version 2 names the way to sub-second adverts.
        let text = GOOD.replace("\"5s\"", "\"100ms\"");
        let (_, key, message) = error(&text);
        assert_eq!(key, "vrrp.advert_int");
        assert!(message.contains("version = 3"), "{message}");
        // auth_pass has no place in v3.
        let text = v3("100ms").replace("preempt = false", "auth_pass = \"secret\"");
        let (line, key, message) = error(&text);
        assert_eq!((line, key.as_str()), (8, "vrrp.auth_pass"));
        assert!(message.contains("no authentication"), "{message}");
        // v3_checksum_as_v2 is read with v3 and refused with v2.
        let text = v3("100ms").replace("preempt = false", "v3_checksum_as_v2 = true");
        assert!(parse(&text).unwrap().instance().v3_checksum_as_v2);
        let text = GOOD.replace("preempt = false", "v3_checksum_as_v2 = true");
        assert_eq!(error(&text).1, "vrrp.v3_checksum_as_v2");
        // Only 2 and 3 exist.
        let text = GOOD.replace("advert_int = \"5s\"", "version = 4");
        let (line, key, message) = error(&text);
        assert_eq!((line, key.as_str()), (6, "vrrp.version"));
        assert!(message.contains("2 (VRRPv2"), "{message}");
    }

    #[test]
    fn names_an_unknown_key() {
        let text = GOOD.replace("priority = 100", "priorty = 100");
        let (line, key, message) = error(&text);
        assert_eq!((line, key.as_str()), (5, "vrrp.priorty"));
        assert!(message.contains("unknown field"), "{message}");
    }

    #[test]
    fn names_the_table_of_a_missing_key() {
        let text = GOOD.replace("interface = \"eth0\"\n", "");
        let (_, key, message) = error(&text);
        assert_eq!(key, "vrrp");
        assert!(message.contains("interface"), "{message}");
    }

    #[test]
    fn refuses_long_passwords_and_empty_address_lists() {
        let text = GOOD.replace("preempt = false", "auth_pass = \"123456789\"");
        assert_eq!(error(&text).1, "vrrp.auth_pass");
        let text = GOOD.replace("[\"10.20.112.100/24\"]", "[]");
        assert!(error(&text).2.contains("at least one"));
        let text = GOOD.replace(
            "[\"10.20.112.100/24\"]",
            "[\"192.0.2.1\", \"192.0.2.1/24\"]",
        );
        assert!(error(&text).2.contains("twice"));
    }

    #[test]
    fn cross_checks_name_their_key() {
        let text = GOOD.replace("preempt = false", "unicast_peers = [\"10.20.112.100\"]");
        let (line, key, _) = error(&text);
        assert_eq!((line, key.as_str()), (7, "vrrp.unicast_peers"));
    }

    #[test]
    fn reads_allowed_sources() {
        let c = parse(&GOOD.replace(
            "preempt = false",
            "allowed_sources = [\"10.20.112.26\", \"10.20.112.27\"]",
        ))
        .unwrap();
        assert_eq!(
            c.instance().allowed_sources,
            [
                IpAddr::from([10, 20, 112, 26]),
                IpAddr::from([10, 20, 112, 27])
            ]
        );
        // Left out: every source.
        assert!(parse(GOOD).unwrap().instance().allowed_sources.is_empty());
    }

    #[test]
    fn allowed_sources_errors_name_file_line_and_key() {
        for (value, words) in [
            ("[]", "leave the key out"),
            ("[\"10.20.112.27\", \"10.20.112.27\"]", "listed twice"),
            ("[\"10.20.112.100\"]", "one of the virtual addresses"),
            ("[\"224.0.0.18\"]", "cannot be the source"),
            ("[\"10.20.112.270\"]", "invalid"),
            ("\"10.20.112.27\"", "sequence"),
        ] {
            let text = GOOD.replace("preempt = false", &format!("allowed_sources = {value}"));
            let e = parse(&text).unwrap_err().to_string();
            assert!(
                e.starts_with("node.toml:7: vrrp.allowed_sources: "),
                "{value}: {e}"
            );
            assert!(e.contains(words), "{value}: {e}");
        }
        // A unicast peer that the list leaves out would never be heard.
        let text = GOOD.replace(
            "preempt = false",
            "unicast_peers = [\"10.20.112.27\"]\nallowed_sources = [\"10.20.112.28\"]",
        );
        let (line, key, message) = error(&text);
        assert_eq!((line, key.as_str()), (8, "vrrp.allowed_sources"));
        assert!(message.contains("10.20.112.27"), "{message}");
    }

    /// Found by fuzzing (fuzz/regressions/config_parse): a `[]` line gave an error
    /// with an empty key.
    #[test]
    fn an_empty_table_header_is_named_by_its_place_not_an_empty_key() {
        for (text, want) in [
            ("[]]\n", "(top level)"),
            ("[]\n", "(top level)"),
            ("[[]]\n", "(top level)"),
            ("[vrrp]\ninterface = \"eth0\"\n[]]\n", "vrrp"),
        ] {
            let (line, key, _) = error(text);
            assert_eq!(key, want, "{text:?}");
            assert!(
                line >= 1 && line <= text.lines().count() + 1,
                "{text:?}: {line}"
            );
        }
    }

    #[test]
    fn reports_syntax_errors_with_a_line() {
        let text = GOOD.replace("priority = 100", "priority = = 100");
        assert_eq!(error(&text).0, 5);
    }

    #[test]
    fn reads_redis_and_replication() {
        let text = format!(
            "{GOOD}\n[redis]\naddress = \"127.0.0.1:6380\"\nfall = 3\n\n[replication]\npeer = \"10.20.112.27:6379\"\n\n[state_log]\npath = \"/tmp/s.log\"\nformat = \"json\"\n"
        );
        let c = parse(&text).unwrap();
        let r = c.redis.unwrap();
        assert_eq!((r.address.port, r.fall.0, r.rise.0), (6380, 3, 2));
        assert_eq!(r.check_interval, Duration::from_secs(1));
        let rep = c.replication.unwrap();
        assert_eq!(rep.peer.to_string(), "10.20.112.27:6379");
        assert_eq!(rep.catch_up_timeout, Duration::from_secs(10));
        assert_eq!(
            (rep.state_dir, rep.isolation_timeout, rep.witnesses.len()),
            (None, None, 0)
        );
        assert_eq!(c.state_log.unwrap().format, StateLogFormat::Json);
    }

    #[test]
    fn reads_replication_safety_keys() {
        let text = format!(
            "{GOOD}\n[redis]\naddress = \"127.0.0.1:6379\"\n\n[replication]\npeer = \"192.0.2.12:6379\"\nstate_dir = \"/var/lib/redha\"\nisolation_timeout = \"5s\"\nwitnesses = [\"198.51.100.1:80\"]\n"
        );
        let rep = parse(&text).unwrap().replication.unwrap();
        assert_eq!(rep.state_dir, Some(PathBuf::from("/var/lib/redha")));
        assert_eq!(rep.isolation_timeout, Some(Duration::from_secs(5)));
        assert_eq!(rep.witnesses[0].to_string(), "198.51.100.1:80");
    }

    #[test]
    fn replication_safety_errors_name_their_key() {
        let base = format!(
            "{GOOD}\n[redis]\naddress = \"127.0.0.1:6379\"\n\n[replication]\npeer = \"192.0.2.12:6379\"\n"
        );
        for (extra, key, words) in [
            (
                "isolation_timeout = \"500ms\"\n",
                "replication.isolation_timeout",
                "whole seconds",
            ),
            (
                "witnesses = [\"198.51.100.1:80\"]\n",
                "replication.witnesses",
                "isolation_timeout",
            ),
            (
                "state_dir = \"relative\"\n",
                "replication.state_dir",
                "absolute",
            ),
        ] {
            let (line, k, message) = error(&format!("{base}{extra}"));
            assert_eq!((line, k.as_str()), (15, key), "{extra}");
            assert!(message.contains(words), "{message}");
        }
    }

    #[test]
    fn redis_errors_name_their_key() {
        let text = format!("{GOOD}\n[replication]\npeer = \"10.20.112.27:6379\"\n");
        let (line, key, message) = error(&text);
        assert_eq!((line, key.as_str()), (11, "replication.peer"));
        assert!(message.contains("[redis]"), "{message}");

        let text = format!("{GOOD}\n[redis]\naddress = \"localhost\"\n");
        let (line, key, _) = error(&text);
        assert_eq!((line, key.as_str()), (11, "redis.address"));

        let text = format!("{GOOD}\n[redis]\naddress = \"127.0.0.1:6379\"\nrise = 0\n");
        assert_eq!(error(&text).1, "redis.rise");

        let text =
            format!("{GOOD}\n[redis]\naddress = \"127.0.0.1:6379\"\ncheck_timeout = \"2s\"\n");
        assert_eq!(error(&text).1, "redis.check_timeout");

        let text = format!("{GOOD}\n[state_log]\npath = \"/tmp/x\"\nformat = \"xml\"\n");
        assert_eq!(error(&text).1, "state_log.format");
    }

    #[test]
    fn the_password_is_not_printed() {
        let c = parse(&GOOD.replace("preempt = false", "auth_pass = \"s3cret\"")).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
