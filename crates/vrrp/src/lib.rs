//! VRRP for redha, version 2 (RFC 3768) and version 3 over IPv4 (RFC 5798): a packet
//! codec with every receive check, a sans-IO state machine and receive path
//! ([`receive`]), and the I/O around them (raw socket, virtual addresses through
//! netlink, gratuitous ARP).
//!
//! Nothing here knows about Redis: the agent drives [`Router`] faults from outside
//! through [`driver::Command`].

pub mod driver;
pub mod garp;
pub mod instance;
pub mod netlink;
pub mod packet;
pub mod receive;
pub mod router;
pub mod shared_socket;
pub mod socket;
pub mod stats;

pub use driver::{Command, InstanceHandle, Spawned, Status, TransitionEvent, Transitions};
pub use instance::{GarpConfig, InstanceConfig};
pub use netlink::VirtualAddress;
pub use packet::{Advert, Auth, Version};
pub use router::{Action, FaultCause, Reason, Router, RouterConfig, State, Transition};
pub use stats::{DropReason, Stats, StatsSnapshot};
