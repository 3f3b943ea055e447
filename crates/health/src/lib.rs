//! Redis health checks for redha.
//!
//! - [`snapshot`]: a strict parser for `INFO server replication keyspace
//!   persistence` and the replication-history comparison the planner needs
//!   ([`relation`]).
//! - [`check`]: the sans-IO fall/rise counter ([`Checker`]).
//! - [`client`]: an async Redis client with connection and response timeouts
//!   that notices a dropped connection at once ([`Client`]).
//! - [`monitor`]: a task that checks one Redis every interval and publishes
//!   [`Observation`]s on a `watch` channel ([`monitor::spawn`]).
//! - [`client_list`]: `CLIENT LIST` parsed ([`ClientEntry`]).
//! - [`dump`]: a Redis's whole dataset saved as an RDB file over the
//!   replication protocol ([`save_rdb`]); [`rdb`] reads such a file's header.
//! - [`mod@preflight`]: the Redis version and the ACL the agent needs, checked
//!   before it starts ([`preflight()`]).
//!
//! This crate knows nothing of VRRP; the agent maps what it reports to its
//! own decisions.

#![warn(missing_docs)]

pub mod check;
pub mod client;
pub mod client_list;
pub mod dump;
pub mod monitor;
pub mod preflight;
pub mod rdb;
pub mod snapshot;

pub use check::{CheckConfig, CheckConfigError, Checker, Health, HealthChange, Outcome};
pub use client::{AddressError, Client, ClientError, ClientErrorKind, ClientOptions, RedisTarget};
pub use client_list::{ClientEntry, ClientListError, parse_client_list};
pub use dump::{DumpError, DumpErrorKind, DumpOptions, SavedRdb, Transfer, save_rdb};
pub use monitor::{MonitorHandle, Observation};
pub use preflight::{
    ACL_RULES, AgentCommand, Capabilities, CheckMethod, MIN_VERSION, Missing, MissingReason,
    PreflightError, RedisVersion, VersionError, preflight,
};
pub use rdb::{RdbHeader, RdbHeaderError, parse_rdb_header};
pub use snapshot::{
    LinkStatus, MasterLink, NO_REPLID, Relation, ReplicaInfo, ReplicaState, Role, Snapshot,
    SnapshotError, parse_info, relation,
};
