//! The configuration of one VRRP instance as the I/O layer needs it.

use std::net::IpAddr;
use std::time::Duration;

use crate::netlink::{Family, VirtualAddress};
use crate::packet::{Advert, Auth, ChecksumScope, Version};
use crate::router::RouterConfig;

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
    /// The VRRP version spoken (2 unless configured).
    pub version: Version,
    /// Advertisement interval: whole seconds, 1..=255, with VRRPv2; centiseconds,
    /// 10 ms..=40.95 s, with VRRPv3.
    pub advert_int: Duration,
    /// VRRPv3: compute and expect checksums without the IPv4 pseudo-header
    /// (keepalived's `v3_checksum_as_v2`, for peers that do so).
    pub v3_checksum_as_v2: bool,
    /// Preempt a lower-priority master.
    pub preempt: bool,
    /// Do not preempt for this long after start-up.
    pub preempt_delay: Duration,
    /// The virtual addresses.
    pub virtual_addresses: Vec<VirtualAddress>,
    /// Authentication.
    pub auth: Auth,
    /// Unicast peers; empty means multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// The source address of adverts; default: the interface's primary address
    /// (IPv6: its link-local address).
    pub unicast_src_ip: Option<IpAddr>,
    /// `allowed_sources`: adverts from any other source are dropped (multicast and
    /// unicast alike) and counted as [`crate::DropReason::SourceNotAllowed`]. Empty
    /// allows every source.
    pub allowed_sources: Vec<IpAddr>,
    /// Gratuitous ARP settings.
    pub garp: GarpConfig,
}

impl InstanceConfig {
    /// The advertisement interval as the version puts it on the wire (whole seconds
    /// for v2, centiseconds for v3). The configuration refuses intervals the version
    /// cannot carry; one that slipped through is rounded into range.
    pub fn wire_advert_int(&self) -> u16 {
        self.version
            .wire_interval(self.advert_int)
            .unwrap_or_else(|| match self.version {
                Version::V2 => self.advert_int.as_secs().clamp(1, 255) as u16,
                Version::V3 => (self.advert_int.as_millis() / 10).clamp(1, 4095) as u16,
            })
    }

    /// Our advert with `priority` for `addresses`, in our version.
    pub fn advert(&self, priority: u8, addresses: &[IpAddr]) -> Advert {
        let int = self.wire_advert_int();
        match self.version {
            Version::V2 => Advert::new(
                self.vrid,
                priority,
                u8::try_from(int).unwrap_or(u8::MAX),
                &self.auth,
                addresses,
            ),
            Version::V3 => Advert::v3(self.vrid, priority, int, addresses),
        }
    }

    /// The state machine's parameters, with `primary` as our address.
    pub fn router_config(&self, primary: IpAddr) -> RouterConfig {
        RouterConfig {
            vrid: self.vrid,
            priority: self.priority,
            version: self.version,
            advert_int: self.advert_int,
            preempt: self.preempt,
            preempt_delay: self.preempt_delay,
            primary_address: primary,
        }
    }

    /// The encoded advert with `priority` for `addresses`, from `source` to
    /// `destination` (a v3 checksum may cover both).
    pub fn encode_advert(
        &self,
        priority: u8,
        addresses: &[IpAddr],
        source: IpAddr,
        destination: IpAddr,
    ) -> Vec<u8> {
        self.advert(priority, addresses)
            .encode_with(self.checksum_scope(source, destination))
    }

    /// What the checksum of an advert from `source` to `destination` covers.
    pub fn checksum_scope(&self, source: IpAddr, destination: IpAddr) -> ChecksumScope {
        let plain = self.version == Version::V2 || (self.v3_checksum_as_v2 && source.is_ipv4());
        match ChecksumScope::pseudo(source, destination) {
            Some(pseudo) if !plain => pseudo,
            _ => ChecksumScope::Message,
        }
    }

    /// The address family of the instance: that of its virtual addresses (the
    /// configuration refuses a mix).
    pub fn family(&self) -> Family {
        self.virtual_addresses
            .first()
            .map_or(Family::V4, |v| Family::of(&v.address))
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
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.virtual_addresses.iter().map(|v| v.address).collect()
    }
}
