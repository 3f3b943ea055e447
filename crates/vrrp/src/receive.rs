//! The receive path's decisions, sans-IO: what one received datagram means to an
//! instance, and which instance a datagram is for when several share a socket.
//!
//! The driver and the simulated LAN of `tests/` both go through here, so that what the
//! tests exercise is what runs in production. Nothing here owns a socket, reads a clock
//! or counts: the caller counts and logs what comes out.
//!
//! * [`Filter`] holds one instance's receive checks, prepared from its
//!   [`InstanceConfig`]. [`Filter::classify`] takes a [`Datagram`] as the raw socket
//!   hands it over (a whole IPv4 datagram, or an IPv6 payload with its addresses and
//!   hop limit), and says what it is: a peer's advert to feed to
//!   [`Router::receive`](crate::Router::receive), our own advert looped back, or a
//!   packet to drop and count ([`Inbound`]).
//! * [`Demux`] maps a VRID to an instance key, for the instances that share one
//!   receive socket (one interface and address family,
//!   [`crate::shared_socket`]): it decodes a datagram once and says which instance
//!   it is for; an advert for no configured VRID is dropped as
//!   [`DropReason::Vrid`]. The instance then runs [`Filter::check`] on it.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use crate::instance::InstanceConfig;
use crate::packet::{Advert, Auth, Expect, Received, Version};
use crate::router::RouterConfig;
use crate::stats::DropReason;

/// What a received datagram is to one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A peer's advert that passed every check: feed it to the router.
    Advert {
        /// The sender's address.
        source: IpAddr,
        /// The priority it advertises.
        priority: u8,
        /// The advertisement interval it announces (VRRPv3's backups learn the
        /// master's; with v2 it is ours).
        interval: Duration,
    },
    /// Our own advert, looped back by the kernel: ignore it, count nothing.
    Own,
    /// A packet to drop, with the reason to count it under and its source when it
    /// is known (the IPv4 header could be read; IPv6: always).
    Dropped(DropReason, Option<IpAddr>),
}

/// One received datagram, as the raw socket hands it over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// A whole IPv4 datagram, header included.
    Ipv4(&'a [u8]),
    /// An IPv6 payload (the VRRP message), with what the socket's control messages
    /// and address said of it.
    Ipv6 {
        /// The VRRP message.
        payload: &'a [u8],
        /// The source address.
        source: Ipv6Addr,
        /// The destination address (the group, or ours).
        destination: Ipv6Addr,
        /// The hop limit it arrived with.
        hop_limit: u8,
    },
}

impl Datagram<'_> {
    /// Decodes it ([`Advert::decode_ipv4`], [`Advert::decode_ipv6`]); a failure comes
    /// with the source when it is known.
    pub fn decode(&self) -> Result<Received, (DropReason, Option<IpAddr>)> {
        match *self {
            Datagram::Ipv4(bytes) => Advert::decode_ipv4(bytes).map_err(|r| (r, None)),
            Datagram::Ipv6 {
                payload,
                source,
                destination,
                hop_limit,
            } => Advert::decode_ipv6(payload, source, destination, hop_limit)
                .map_err(|r| (r, Some(source.into()))),
        }
    }
}

/// One instance's receive checks (RFC 3768 section 7.1, plus `unicast_peers` and
/// `allowed_sources`), prepared from its configuration. Build a new one when the
/// configuration changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    version: Version,
    vrid: u8,
    advert_int: u16,
    auth: Auth,
    checksum_as_v2: bool,
    addresses: Vec<IpAddr>,
    unicast_peers: Vec<IpAddr>,
    allowed_sources: Vec<IpAddr>,
}

impl Filter {
    /// The checks of `config`'s instance.
    pub fn new(config: &InstanceConfig) -> Self {
        Filter {
            version: config.version,
            vrid: config.vrid,
            advert_int: config.wire_advert_int(),
            auth: config.auth.clone(),
            checksum_as_v2: config.v3_checksum_as_v2,
            addresses: config.addresses(),
            unicast_peers: config.unicast_peers.clone(),
            allowed_sources: config.allowed_sources.clone(),
        }
    }

    /// The VRID this instance takes adverts for.
    pub fn vrid(&self) -> u8 {
        self.vrid
    }

    /// Decodes a datagram ([`Datagram::decode`]) and [checks](Self::check) it.
    /// `router` is the router's current configuration: its primary address is where
    /// our own adverts come from, its priority 255 makes us the owner, who accepts no
    /// advert.
    pub fn classify(&self, datagram: Datagram<'_>, router: &RouterConfig) -> Inbound {
        match datagram.decode() {
            Ok(received) => self.check(&received, router),
            Err((reason, source)) => Inbound::Dropped(reason, source),
        }
    }

    /// What a decoded advert is to this instance: our own when it comes from the
    /// router's primary address; otherwise a peer's advert if it passes
    /// [`Received::check_against`] (source lists, VRID, then the advert's own fields),
    /// else dropped with the first check it fails.
    pub fn check(&self, received: &Received, router: &RouterConfig) -> Inbound {
        if received.source == router.primary_address {
            return Inbound::Own;
        }
        let expect = Expect {
            version: self.version,
            vrid: self.vrid,
            advert_int: self.advert_int,
            auth: &self.auth,
            checksum_as_v2: self.checksum_as_v2,
            addresses: &self.addresses,
            we_are_owner: router.priority == 255,
            unicast_peers: &self.unicast_peers,
            allowed_sources: &self.allowed_sources,
        };
        match received.check_against(&expect) {
            Ok(()) => Inbound::Advert {
                source: received.source,
                priority: received.advert.priority,
                interval: received.advert.interval(),
            },
            Err(reason) => Inbound::Dropped(reason, Some(received.source)),
        }
    }
}

/// Where [`Demux::route`] sends a datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routed<'a, K> {
    /// An advert for the instance `K`: run its [`Filter::check`] on it.
    To(&'a K, Received),
    /// For no instance: undecodable, or for a VRID nobody here serves
    /// ([`DropReason::Vrid`]); with its source when it is known.
    Dropped(DropReason, Option<IpAddr>),
}

/// Which instance, of those sharing one receive socket, a datagram is for: a map from
/// VRID to an instance key `K` (a name, an index).
///
/// On a shared socket the VRID is looked at before the instance's checks: a wrong-VRID
/// advert from a source that is not one of an instance's `unicast_peers` is counted as
/// [`DropReason::Vrid`] here, where one instance alone ([`Filter::check`]) counts it
/// as [`DropReason::UnknownSource`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Demux<K> {
    by_vrid: Vec<Option<K>>,
}

impl<K> Default for Demux<K> {
    fn default() -> Self {
        Demux {
            by_vrid: std::iter::repeat_with(|| None)
                .take(usize::from(u8::MAX) + 1)
                .collect(),
        }
    }
}

impl<K> Demux<K> {
    /// A map with no instance.
    pub fn new() -> Self {
        Demux::default()
    }

    /// Sends adverts for `vrid` to `key`. A VRID already taken is refused (two
    /// instances on one socket cannot share one), and the key holding it returned.
    pub fn insert(&mut self, vrid: u8, key: K) -> Result<(), &K> {
        let slot = &mut self.by_vrid[usize::from(vrid)];
        match slot {
            Some(existing) => Err(existing),
            None => {
                *slot = Some(key);
                Ok(())
            }
        }
    }

    /// Stops sending adverts for `vrid` anywhere; returns the key that had it.
    pub fn remove(&mut self, vrid: u8) -> Option<K> {
        self.by_vrid[usize::from(vrid)].take()
    }

    /// The instance adverts for `vrid` go to.
    pub fn get(&self, vrid: u8) -> Option<&K> {
        self.by_vrid[usize::from(vrid)].as_ref()
    }

    /// The instance adverts for `vrid` go to, to change it.
    pub fn get_mut(&mut self, vrid: u8) -> Option<&mut K> {
        self.by_vrid[usize::from(vrid)].as_mut()
    }

    /// The instances of every VRID served, in VRID order.
    pub fn values(&self) -> impl Iterator<Item = &K> {
        self.by_vrid.iter().flatten()
    }

    /// How many VRIDs are served.
    pub fn len(&self) -> usize {
        self.by_vrid.iter().flatten().count()
    }

    /// True when no VRID is served.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes a datagram ([`Datagram::decode`]) and says which instance it is for.
    pub fn route(&self, datagram: Datagram<'_>) -> Routed<'_, K> {
        match datagram.decode() {
            Ok(received) => match self.get(received.advert.vrid) {
                Some(key) => Routed::To(key, received),
                None => Routed::Dropped(DropReason::Vrid, Some(received.source)),
            },
            Err((reason, source)) => Routed::Dropped(reason, source),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use std::net::Ipv4Addr;

    use super::*;
    use crate::instance::GarpConfig;
    use crate::netlink::VirtualAddress;
    use crate::packet::{MULTICAST_GROUP, TTL, ipv4_datagram};

    const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
    const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 12);
    const STRANGER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 13);
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);

    fn instance(vrid: u8) -> InstanceConfig {
        InstanceConfig {
            name: format!("vrid-{vrid}"),
            interface: "eth0".into(),
            vrid,
            priority: 100,
            version: Version::V2,
            advert_int: Duration::from_secs(1),
            v3_checksum_as_v2: false,
            preempt: false,
            preempt_delay: Duration::ZERO,
            virtual_addresses: vec![VirtualAddress {
                address: VIP.into(),
                prefix_len: 24,
            }],
            auth: Auth::simple("secret"),
            unicast_peers: Vec::new(),
            unicast_src_ip: None,
            allowed_sources: Vec::new(),
            garp: GarpConfig::default(),
        }
    }

    fn router(config: &InstanceConfig) -> RouterConfig {
        config.router_config(US.into())
    }

    /// An advert as `config`'s peers send it, from `source` with TTL 255.
    fn datagram(config: &InstanceConfig, source: Ipv4Addr, priority: u8) -> Vec<u8> {
        let advert = config.encode_advert(
            priority,
            &config.addresses(),
            source.into(),
            MULTICAST_GROUP.into(),
        );
        ipv4_datagram(source, MULTICAST_GROUP, TTL, &advert)
    }

    #[test]
    fn a_peers_advert_is_taken_with_its_source_and_priority() {
        let config = instance(51);
        let filter = Filter::new(&config);
        assert_eq!(filter.vrid(), 51);
        assert_eq!(
            filter.classify(
                Datagram::Ipv4(&datagram(&config, PEER, 120)),
                &router(&config)
            ),
            Inbound::Advert {
                source: PEER.into(),
                priority: 120,
                interval: Duration::from_secs(1),
            }
        );
    }

    #[test]
    fn our_own_advert_is_recognised_before_any_check() {
        let config = instance(51);
        let filter = Filter::new(&config);
        let ours = router(&config);
        assert_eq!(
            filter.classify(Datagram::Ipv4(&datagram(&config, US, 100)), &ours),
            Inbound::Own
        );
        // Even as the owner, or with allowed_sources leaving us out: it is ours, not
        // a drop to count.
        let owner = RouterConfig {
            priority: 255,
            ..ours.clone()
        };
        assert_eq!(
            filter.classify(Datagram::Ipv4(&datagram(&config, US, 255)), &owner),
            Inbound::Own
        );
        let strict = Filter::new(&InstanceConfig {
            allowed_sources: vec![PEER.into()],
            ..config.clone()
        });
        assert_eq!(
            strict.classify(Datagram::Ipv4(&datagram(&config, US, 100)), &ours),
            Inbound::Own
        );
        // The router's primary address counts, not the configured source: the driver
        // follows the interface's primary address as it changes.
        let moved = RouterConfig {
            primary_address: PEER.into(),
            ..ours
        };
        assert_eq!(
            filter.classify(Datagram::Ipv4(&datagram(&config, PEER, 100)), &moved),
            Inbound::Own
        );
    }

    #[test]
    fn an_undecodable_datagram_is_dropped_without_a_source() {
        let config = instance(51);
        let filter = Filter::new(&config);
        let ours = router(&config);
        let mut ttl = datagram(&config, PEER, 100);
        ttl[8] = 64;
        assert_eq!(
            filter.classify(Datagram::Ipv4(&ttl), &ours),
            Inbound::Dropped(DropReason::Ttl, None)
        );
        let whole = datagram(&config, PEER, 100);
        assert_eq!(
            filter.classify(Datagram::Ipv4(&whole[..10]), &ours),
            Inbound::Dropped(DropReason::Truncated, None)
        );
        let mut corrupt = whole;
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert_eq!(
            filter.classify(Datagram::Ipv4(&corrupt), &ours),
            Inbound::Dropped(DropReason::Checksum, None)
        );
    }

    #[test]
    fn each_configuration_check_drops_with_its_reason_and_the_source() {
        let config = instance(51);
        let ours = router(&config);
        let dropped = |filter: &Filter, datagram: Vec<u8>, router: &RouterConfig| match filter
            .classify(Datagram::Ipv4(&datagram), router)
        {
            Inbound::Dropped(reason, Some(source)) => {
                assert_eq!(source, PEER);
                reason
            }
            other => panic!("not dropped with a source: {other:?}"),
        };
        let filter = Filter::new(&config);
        let cases = [
            (instance(52), DropReason::Vrid),
            (
                InstanceConfig {
                    auth: Auth::None,
                    ..config.clone()
                },
                DropReason::AuthType,
            ),
            (
                InstanceConfig {
                    auth: Auth::simple("guess"),
                    ..config.clone()
                },
                DropReason::Authentication,
            ),
            (
                InstanceConfig {
                    virtual_addresses: vec![VirtualAddress {
                        address: Ipv4Addr::new(192, 0, 2, 101).into(),
                        prefix_len: 24,
                    }],
                    ..config.clone()
                },
                DropReason::AddressList,
            ),
            (
                InstanceConfig {
                    advert_int: Duration::from_secs(2),
                    ..config.clone()
                },
                DropReason::Interval,
            ),
        ];
        for (sender, reason) in cases {
            assert_eq!(
                dropped(&filter, datagram(&sender, PEER, 100), &ours),
                reason,
                "{sender:?}"
            );
        }
        // The owner (priority 255 now, whatever the configuration said) takes none.
        let owner = RouterConfig {
            priority: 255,
            ..ours.clone()
        };
        assert_eq!(
            dropped(&filter, datagram(&config, PEER, 100), &owner),
            DropReason::OwnerReceived
        );
        // Unicast: only the peers are heard.
        let unicast = Filter::new(&InstanceConfig {
            unicast_peers: vec![STRANGER.into()],
            ..config.clone()
        });
        assert_eq!(
            dropped(&unicast, datagram(&config, PEER, 100), &ours),
            DropReason::UnknownSource
        );
        // allowed_sources: only the listed sources are heard.
        let allowed = Filter::new(&InstanceConfig {
            allowed_sources: vec![STRANGER.into()],
            ..config.clone()
        });
        assert_eq!(
            dropped(&allowed, datagram(&config, PEER, 100), &ours),
            DropReason::SourceNotAllowed
        );
        let listed = Filter::new(&InstanceConfig {
            allowed_sources: vec![PEER.into()],
            unicast_peers: vec![PEER.into()],
            ..config.clone()
        });
        assert_eq!(
            listed.classify(Datagram::Ipv4(&datagram(&config, PEER, 100)), &ours),
            Inbound::Advert {
                source: PEER.into(),
                priority: 100,
                interval: Duration::from_secs(1),
            }
        );
    }

    #[test]
    fn demux_sends_each_vrid_to_its_instance_and_drops_the_rest_as_vrid() {
        let (a, b) = (instance(51), instance(52));
        let mut demux = Demux::new();
        assert!(demux.is_empty());
        assert_eq!(demux.insert(51, "a"), Ok(()));
        assert_eq!(demux.insert(52, "b"), Ok(()));
        assert_eq!(demux.len(), 2);
        assert_eq!(demux.get(51), Some(&"a"));

        for (config, key) in [(&a, "a"), (&b, "b")] {
            let Routed::To(to, received) =
                demux.route(Datagram::Ipv4(&datagram(config, PEER, 100)))
            else {
                panic!("not routed");
            };
            assert_eq!(*to, key);
            // The instance's own checks then take it.
            assert_eq!(
                Filter::new(config).check(&received, &router(config)),
                Inbound::Advert {
                    source: PEER.into(),
                    priority: 100,
                    interval: Duration::from_secs(1),
                }
            );
        }
        assert_eq!(
            demux.route(Datagram::Ipv4(&datagram(&instance(53), PEER, 100))),
            Routed::Dropped(DropReason::Vrid, Some(PEER.into()))
        );
        let mut ttl = datagram(&a, PEER, 100);
        ttl[8] = 1;
        assert_eq!(
            demux.route(Datagram::Ipv4(&ttl)),
            Routed::Dropped(DropReason::Ttl, None)
        );
    }

    #[test]
    fn demux_refuses_a_vrid_twice_and_forgets_a_removed_one() {
        let config = instance(51);
        let mut demux = Demux::new();
        assert_eq!(demux.insert(51, 0usize), Ok(()));
        assert_eq!(demux.insert(51, 1), Err(&0));
        assert_eq!(demux.get(51), Some(&0));
        assert_eq!(demux.remove(51), Some(0));
        assert_eq!(demux.remove(51), None);
        assert_eq!(
            demux.route(Datagram::Ipv4(&datagram(&config, PEER, 100))),
            Routed::Dropped(DropReason::Vrid, Some(PEER.into()))
        );
        // VRID 0 and 255 are slots like any other (0 is refused by the configuration,
        // not here).
        assert_eq!(demux.insert(255, 2), Ok(()));
        assert_eq!(demux.insert(0, 3), Ok(()));
        assert_eq!(demux.len(), 2);
    }
}
