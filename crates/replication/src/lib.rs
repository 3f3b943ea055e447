//! Replication orchestration for redha: what to tell each Redis, and when.
//!
//! [`Planner`] is sans-IO: it takes the node's role (mapped by the agent from its
//! VRRP state), fresh snapshots of the local and the peer Redis and the time, and
//! returns the Redis commands to run, whether the node may hold the VIP, and the rule
//! that decided, with the ids and offsets it compared. [`Executor`] runs the commands.
//! Nothing here knows about VRRP.

pub mod executor;
pub mod planner;

pub use executor::{Executor, ExecutorError};
pub use planner::{Command, Endpoint, Plan, Planner, PlannerConfig, Role, Rule, Target};
