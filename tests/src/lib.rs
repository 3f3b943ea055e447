//! Shared helpers for the cross-crate tests.
//!
//! [`lan`] is a deterministic simulated LAN: several [`vrrp::Router`] state machines on
//! a shared segment, exchanging real encoded adverts and driven through virtual time by
//! always jumping to the earliest wake-up, as quinn-proto's test `Pair` does. It runs
//! an hour of protocol time in milliseconds, so that the election invariants can be
//! tested exhaustively without root, sockets or sleeps.

pub mod lan;
pub mod timeline;

pub use lan::{
    DEFAULT_LINK_DELAY, Lan, NodeId, Process, ResumeOrder, Segment, VIP, VRID, host_address,
    router_config,
};
pub use timeline::{Happening, HolderChange, Record};
