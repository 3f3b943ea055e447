//! The model of what the migration found: the file's top level ([`Survey`]), the
//! Redis check, the notify hooks, and what the chosen instance becomes ([`Out`]),
//! which [`render`](mod@super::render) writes as TOML.

use std::net::Ipv4Addr;

use super::tree::Stmt;

/// Gratuitous ARP settings: `vrrp_garp_*` in global_defs, `garp_*` in an instance.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Garp {
    pub(super) master_delay_ms: Option<u64>,
    pub(super) master_repeat: Option<u32>,
    pub(super) interval_ms: Option<u64>,
    pub(super) master_refresh_ms: Option<u64>,
    pub(super) master_refresh_repeat: Option<u32>,
}

/// What the top level of the file holds.
pub(super) struct Survey<'t> {
    pub(super) router_id: Option<String>,
    /// `vrrp_version` of global_defs, with its line.
    pub(super) version: Option<(String, usize)>,
    /// `v3_checksum_as_v2` of global_defs (the default of every instance).
    pub(super) v3_checksum_as_v2: bool,
    pub(super) garp: Garp,
    pub(super) scripts: Vec<&'t Stmt>,
    pub(super) instances: Vec<&'t Stmt>,
    /// The `vrrp_sync_group` blocks.
    pub(super) groups: Vec<&'t Stmt>,
}

/// The local Redis as keepalived's check script reached it.
#[derive(Clone, Debug, Default)]
pub(super) struct RedisCheck {
    pub(super) script: String,
    pub(super) line: usize,
    pub(super) host: String,
    pub(super) port: u16,
    /// Where the address came from, for its comment.
    pub(super) address_from: String,
    pub(super) password: Option<String>,
    pub(super) username: Option<String>,
    pub(super) interval_ms: Option<u64>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) fall: Option<u32>,
    pub(super) rise: Option<u32>,
}

/// A notify line of the instance.
#[derive(Clone, Debug)]
pub(super) struct Hook {
    /// keepalived's key, which is redha's too.
    pub(super) key: String,
    /// The command as keepalived had it (the quoted string, or the script path).
    pub(super) command: String,
    /// `None`: kept as a redha hook; `Some(reason)`: written commented out.
    pub(super) dropped: Option<String>,
}

/// What the chosen instance becomes.
#[derive(Clone, Debug, Default)]
pub(super) struct Out {
    pub(super) name: String,
    /// Named instances: the earlier instance whose Redis this one's check script
    /// reached too (its `[redis]` was dropped: that instance watches the Redis).
    pub(super) redis_of: Option<String>,
    pub(super) line: usize,
    pub(super) router_id: Option<String>,
    pub(super) interface: String,
    pub(super) vrid: u8,
    pub(super) priority: u8,
    pub(super) priority_comment: Option<String>,
    /// VRRPv3 (`vrrp_version 3` or the instance's `version 3`).
    pub(super) version3: bool,
    /// The interval as redha's version carries it, in milliseconds.
    pub(super) advert_int_ms: Option<u64>,
    /// keepalived's `v3_checksum_as_v2`, with VRRPv3.
    pub(super) v3_checksum_as_v2: bool,
    pub(super) advert_comment: Option<String>,
    pub(super) preempt: Option<bool>,
    pub(super) preempt_delay_ms: Option<u64>,
    pub(super) vips: Vec<String>,
    pub(super) unicast_peers: Vec<Ipv4Addr>,
    pub(super) unicast_src_ip: Option<(Ipv4Addr, &'static str)>,
    pub(super) auth_pass: Option<(String, bool)>,
    pub(super) garp: Garp,
    pub(super) hooks: Vec<Hook>,
    pub(super) redis: Option<RedisCheck>,
    /// The Redis section was added without a keepalived check (for [replication]).
    pub(super) redis_assumed: bool,
    /// `Some(peer)` with where it came from; `None` and `want_replication`: commented.
    pub(super) peer: Option<(String, String)>,
    pub(super) want_replication: bool,
    /// For a commented `[replication]`: the single unicast peer, as a hint.
    pub(super) peer_hint: Option<String>,
    pub(super) state_log: Option<String>,
}
