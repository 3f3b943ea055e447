//! The configuration of one VRRP instance as the I/O layer needs it.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::netlink::VirtualAddress;
use crate::packet::Auth;

/// Gratuitous ARP settings, with keepalived's names and defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GarpConfig {
    /// `garp_master_repeat`: how many gratuitous ARPs per address in a burst (5).
    pub master_repeat: u32,
    /// `garp_interval`: the pause between the ARPs of a burst (0).
    pub interval: Duration,
    /// `garp_master_delay`: the delay before the second burst after becoming master
    /// (5 s); zero sends no second burst.
    pub master_delay: Duration,
    /// `garp_master_refresh`: a burst every so often while master (0 = never).
    pub master_refresh: Duration,
    /// `garp_master_refresh_repeat`: ARPs per address in a refresh burst (1).
    pub master_refresh_repeat: u32,
}

impl Default for GarpConfig {
    fn default() -> Self {
        GarpConfig {
            master_repeat: 5,
            interval: Duration::ZERO,
            master_delay: Duration::from_secs(5),
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
        }
    }
}

/// Everything one VRRP instance needs to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConfig {
    /// A name for logs (keepalived's instance name, or `vrid-51`).
    pub name: String,
    /// The interface to run on.
    pub interface: String,
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// Priority, 1..=255.
    pub priority: u8,
    /// Advertisement interval: whole seconds, 1..=255 (VRRPv2).
    pub advert_int: Duration,
    /// Preempt a lower-priority master.
    pub preempt: bool,
    /// Do not preempt for this long after start-up.
    pub preempt_delay: Duration,
    /// The virtual addresses.
    pub virtual_addresses: Vec<VirtualAddress>,
    /// Authentication.
    pub auth: Auth,
    /// Unicast peers; empty means multicast.
    pub unicast_peers: Vec<Ipv4Addr>,
    /// The source address of adverts; default: the interface's primary address.
    pub unicast_src_ip: Option<Ipv4Addr>,
    /// `allowed_sources`: adverts from any other source are dropped (multicast and
    /// unicast alike) and counted as [`crate::DropReason::SourceNotAllowed`]. Empty
    /// allows every source.
    pub allowed_sources: Vec<Ipv4Addr>,
    /// Gratuitous ARP settings.
    pub garp: GarpConfig,
}

impl InstanceConfig {
    /// The advertisement interval in whole seconds, as VRRPv2 puts it on the wire.
    pub fn advert_int_secs(&self) -> u8 {
        u8::try_from(self.advert_int.as_secs())
            .unwrap_or(u8::MAX)
            .max(1)
    }

    /// The lifetime given to the virtual addresses: Master_Down_Interval rounded up to
    /// whole seconds (the kernel's unit). It is renewed with every advert, so it runs
    /// out about when a peer's Master_Down_Timer does: an agent killed while master
    /// leaves its addresses behind for less than a second past the peer's takeover.
    pub fn address_lease(&self, master_down_interval: Duration) -> Duration {
        let secs =
            master_down_interval.as_secs() + u64::from(master_down_interval.subsec_nanos() > 0);
        Duration::from_secs(secs.max(1))
    }

    /// Just the addresses, without prefix lengths.
    pub fn addresses(&self) -> Vec<Ipv4Addr> {
        self.virtual_addresses.iter().map(|v| v.address).collect()
    }
}
