//! Replication orchestration for redha: what to tell each Redis, and when.
//!
//! [`Planner`] is sans-IO: it takes the node's role (mapped by the agent from its
//! VRRP state), fresh snapshots of the local and the peer Redis, what else is known
//! of the peer ([`Context`]) and the time, and returns the Redis commands to run,
//! whether the node may hold the VIP, and the rule that decided, with the ids and
//! offsets it compared. [`Executor`] runs the commands. Nothing here knows about VRRP.
//!
//! - [`command`]: the commands and their targets;
//! - [`standing`]: who holds data the other lacks, and who wins a split;
//! - [`claim`]: what an agent says of itself through its Redis connection's name;
//! - [`rule`]: the rules and their log lines;
//! - [`planner`]: the situations and what each decides;
//! - [`vouch`]: the recorded history an agent vouches for when its Redis lost its ids.

pub mod claim;
pub mod command;
pub mod executor;
pub mod lineage;
pub mod planner;
pub mod rule;
pub mod standing;
pub mod vouch;

pub use claim::{Claim, ClaimState, PeerClaim, Vouched};
pub use command::{Command, Endpoint, Target};
pub use executor::{Executor, ExecutorError};
pub use lineage::{Lineage, Link};
pub use planner::{Context, PeerFailure, Plan, Planner, PlannerConfig, Role};
pub use rule::{Rule, describe};
pub use standing::{Standing, compare, compare_known};
