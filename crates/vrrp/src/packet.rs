//! VRRP packet codec: VRRPv2 (RFC 3768 section 5) and VRRPv3 for IPv4 (RFC 5798
//! section 5), and the receive checks of section 7.1 of each.
//!
//! [`Advert::decode_ipv4`] takes a whole IPv4 datagram as a raw socket hands it over
//! (header of any legal length included) and applies every check that needs nothing
//! but the packet itself; [`Received::check_against`] applies the checks that need the
//! local instance's configuration: who may send (`unicast_peers`, `allowed_sources`)
//! and what the advert must say ([`Advert::check_against`]). Each failure is a
//! [`DropReason`], so that the caller can count it.
//!
//! A VRRPv3 checksum covers an IPv4 pseudo-header (RFC 5798 section 5.2.8; keepalived
//! computes it so by default); some implementations leave the pseudo-header out
//! (keepalived's `v3_checksum_as_v2`, discussed in RFC 9568). The decoder accepts
//! either and says which ([`Received::checksum_as_v2`]); the instance's check then
//! takes only the kind it is configured for.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::netlink::Family;

use crate::stats::DropReason;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// The IPv4 multicast group VRRP adverts are sent to.
pub const MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group VRRP adverts are sent to (RFC 5798 section 5.1.2.2).
pub const MULTICAST_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The TTL (IPv4) or hop limit (IPv6) every advert is sent with and must arrive with.
pub const TTL: u8 = 255;
/// The only VRRP packet type: ADVERTISEMENT.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Length of the fixed part of the VRRP header (before the address list).
pub const HEADER_LEN: usize = 8;
/// Length of the authentication data that ends every VRRPv2 packet.
pub const AUTH_DATA_LEN: usize = 8;
/// The largest VRRPv3 Max Adver Int: 12 bits of centiseconds (40.95 s).
pub const MAX_ADVER_INT_V3: u16 = 0x0fff;

/// The VRRP version an advert is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// VRRPv2 (RFC 3768): IPv4, whole-second intervals, authentication fields.
    #[default]
    V2,
    /// VRRPv3 (RFC 5798): centisecond intervals, no authentication.
    V3,
}

impl Version {
    /// The value of the Version field.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// The advertisement interval as this version puts it on the wire: whole seconds
    /// for v2 (1..=255), centiseconds for v3 (1..=4095); `None` when it cannot be.
    pub fn wire_interval(self, interval: Duration) -> Option<u16> {
        match self {
            Version::V2 => {
                let secs = u8::try_from(interval.as_secs()).ok()?;
                (secs >= 1 && interval.subsec_nanos() == 0).then_some(u16::from(secs))
            }
            Version::V3 => {
                if !interval.as_nanos().is_multiple_of(10_000_000) {
                    return None;
                }
                let centis = u16::try_from(interval.as_millis() / 10).ok()?;
                (1..=MAX_ADVER_INT_V3).contains(&centis).then_some(centis)
            }
        }
    }

    /// The interval a wire value of this version stands for.
    pub fn interval(self, wire: u16) -> Duration {
        match self {
            Version::V2 => Duration::from_secs(u64::from(wire)),
            Version::V3 => Duration::from_millis(u64::from(wire) * 10),
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VRRPv{}", self.number())
    }
}

/// Authentication of a VRRPv2 advert (section 5.3.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Type 0: no authentication; the data field is sent as zero and ignored on
    /// reception.
    None,
    /// Type 1: a simple text password of up to 8 bytes, zero padded.
    Simple([u8; AUTH_DATA_LEN]),
}

impl Auth {
    /// A simple text password, as keepalived's `auth_pass`: longer passwords are cut to
    /// 8 bytes (keepalived does the same, so the two interoperate).
    pub fn simple(password: &str) -> Self {
        let mut data = [0u8; AUTH_DATA_LEN];
        let bytes = password.as_bytes();
        let n = bytes.len().min(AUTH_DATA_LEN);
        data[..n].copy_from_slice(&bytes[..n]);
        Auth::Simple(data)
    }

    /// The wire value of the Auth Type field.
    pub fn type_code(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Simple(_) => 1,
        }
    }

    fn data(&self) -> [u8; AUTH_DATA_LEN] {
        match self {
            Auth::None => [0; AUTH_DATA_LEN],
            Auth::Simple(data) => *data,
        }
    }
}

/// A decoded VRRP advertisement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    /// The VRRP version it is written in.
    pub version: Version,
    /// Virtual router identifier, 1..=255.
    pub vrid: u8,
    /// Priority of the sender; 0 means "I stop being master", 255 "I own the addresses".
    pub priority: u8,
    /// The advertisement interval in the version's unit: whole seconds (v2), or
    /// centiseconds (v3's Max Adver Int, 12 bits). See [`Advert::interval`].
    pub advert_int: u16,
    /// Authentication type (v2; 0 in v3, which has none).
    pub auth_type: u8,
    /// The 8 bytes of authentication data as received (v2; zero in v3).
    pub auth_data: [u8; AUTH_DATA_LEN],
    /// The virtual addresses the sender announces, all of one family.
    pub addresses: Vec<IpAddr>,
}

/// An advert together with the IP facts the receive checks need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Source address of the datagram.
    pub source: IpAddr,
    /// Destination address (the multicast group, or ours for unicast).
    pub destination: IpAddr,
    /// The VRRP payload.
    pub advert: Advert,
    /// Whether the checksum covers the VRRP message alone, as in VRRPv2 (always so
    /// for a v2 advert; for v3, a sender configured as keepalived's
    /// `v3_checksum_as_v2`), rather than the pseudo-header too.
    pub checksum_as_v2: bool,
    /// The TTL (IPv4: always 255, the decoder drops any other) or hop limit (IPv6:
    /// checked by [`Received::check_against`], which lets a listed unicast peer send
    /// with another, as keepalived 2.2.7 does over IPv6 unicast with 64).
    pub hop_limit: u8,
}

/// What the local instance expects of a peer's advert (section 7.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect<'a> {
    /// Our VRRP version.
    pub version: Version,
    /// Our virtual router id.
    pub vrid: u8,
    /// Our advertisement interval in the version's unit (see [`Advert::advert_int`]):
    /// v2 drops an advert with another; v3 learns the master's instead.
    pub advert_int: u16,
    /// Our authentication (v2).
    pub auth: &'a Auth,
    /// v3: whether we take checksums without the pseudo-header (and only those).
    pub checksum_as_v2: bool,
    /// Our configured virtual addresses, in configuration order.
    pub addresses: &'a [IpAddr],
    /// True when we own the addresses (priority 255): an owner accepts no advert.
    pub we_are_owner: bool,
    /// Unicast mode: the only sources adverts are taken from
    /// ([`DropReason::UnknownSource`] otherwise). Empty in multicast mode.
    pub unicast_peers: &'a [IpAddr],
    /// `allowed_sources`: the only sources adverts are taken from, multicast or
    /// unicast ([`DropReason::SourceNotAllowed`] otherwise). Empty allows any.
    pub allowed_sources: &'a [IpAddr],
}

impl Received {
    /// Every check that needs the local configuration, in this order: the source
    /// against `unicast_peers` (as it always was), the hop limit (255 unless the
    /// sender is a listed unicast peer), the VRID (another virtual router's
    /// adverts are the LAN's normal traffic and are counted as such, not as strangers),
    /// the source against `allowed_sources`, the version and, for v3, the kind of
    /// checksum, then [`Advert::check_against`].
    ///
    /// Note what the source checks are worth: they stop a stray or misconfigured
    /// router (a third keepalived with our VRID, a test box cloned from a
    /// production image), not a host on the LAN that forges its source address.
    pub fn check_against(&self, expect: &Expect<'_>) -> Result<(), DropReason> {
        let listed = expect.unicast_peers.contains(&self.source);
        if !expect.unicast_peers.is_empty() && !listed {
            return Err(DropReason::UnknownSource);
        }
        if self.hop_limit != TTL && !listed {
            return Err(DropReason::Ttl);
        }
        if self.advert.vrid != expect.vrid {
            return Err(DropReason::Vrid);
        }
        if !expect.allowed_sources.is_empty() && !expect.allowed_sources.contains(&self.source) {
            return Err(DropReason::SourceNotAllowed);
        }
        if self.advert.version != expect.version {
            return Err(DropReason::Version);
        }
        if self.advert.version == Version::V3
            && self.source.is_ipv4()
            && self.checksum_as_v2 != expect.checksum_as_v2
        {
            return Err(DropReason::Checksum);
        }
        self.advert.check_against(expect)
    }
}

/// What a checksum covers besides the VRRP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumScope {
    /// The message alone: VRRPv2, or VRRPv3 as `v3_checksum_as_v2`.
    Message,
    /// VRRPv3 over IPv4: the IPv4 pseudo-header too (RFC 5798 section 5.2.8).
    Ipv4Pseudo {
        /// The datagram's source address.
        source: Ipv4Addr,
        /// The datagram's destination address.
        destination: Ipv4Addr,
    },
    /// VRRPv3 over IPv6: the IPv6 pseudo-header (RFC 8200 section 8.1), always.
    Ipv6Pseudo {
        /// The datagram's source address.
        source: Ipv6Addr,
        /// The datagram's destination address.
        destination: Ipv6Addr,
    },
}

impl ChecksumScope {
    /// The pseudo-header of a datagram from `source` to `destination`; `None` for
    /// addresses of two families.
    pub fn pseudo(source: IpAddr, destination: IpAddr) -> Option<ChecksumScope> {
        match (source, destination) {
            (IpAddr::V4(source), IpAddr::V4(destination)) => Some(ChecksumScope::Ipv4Pseudo {
                source,
                destination,
            }),
            (IpAddr::V6(source), IpAddr::V6(destination)) => Some(ChecksumScope::Ipv6Pseudo {
                source,
                destination,
            }),
            _ => None,
        }
    }
}

impl Advert {
    /// Builds a VRRPv2 advert (IPv4 addresses only: VRRPv2 has no IPv6).
    pub fn new<A: Into<IpAddr> + Copy>(
        vrid: u8,
        priority: u8,
        advert_int_secs: u8,
        auth: &Auth,
        addresses: &[A],
    ) -> Self {
        Advert {
            version: Version::V2,
            vrid,
            priority,
            advert_int: u16::from(advert_int_secs),
            auth_type: auth.type_code(),
            auth_data: auth.data(),
            addresses: addresses.iter().map(|&a| a.into()).collect(),
        }
    }

    /// Builds a VRRPv3 advert for IPv4 or IPv6 `addresses` (of one family);
    /// `advert_int_centis` is cut to its 12 bits.
    pub fn v3<A: Into<IpAddr> + Copy>(
        vrid: u8,
        priority: u8,
        advert_int_centis: u16,
        addresses: &[A],
    ) -> Self {
        Advert {
            version: Version::V3,
            vrid,
            priority,
            advert_int: advert_int_centis & MAX_ADVER_INT_V3,
            auth_type: 0,
            auth_data: [0; AUTH_DATA_LEN],
            addresses: addresses.iter().map(|&a| a.into()).collect(),
        }
    }

    /// The family of its addresses (IPv4 when it has none).
    pub fn family(&self) -> Family {
        match self.addresses.first() {
            Some(IpAddr::V6(_)) => Family::V6,
            _ => Family::V4,
        }
    }

    /// The advertisement interval it announces.
    pub fn interval(&self) -> Duration {
        self.version.interval(self.advert_int)
    }

    /// Length of the encoded VRRP message.
    pub fn encoded_len(&self) -> usize {
        let auth = match self.version {
            Version::V2 => AUTH_DATA_LEN,
            Version::V3 => 0,
        };
        HEADER_LEN + address_len(self.family()) * self.addresses.len() + auth
    }

    /// Encodes the VRRP message (without an IP header), its checksum over the message
    /// alone: VRRPv2, or VRRPv3 as `v3_checksum_as_v2`. See [`Advert::encode_with`].
    ///
    /// # Panics
    /// If there are more than 255 addresses, which the configuration refuses.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(ChecksumScope::Message)
    }

    /// Encodes the VRRP message (without an IP header), its checksum covering `scope`
    /// besides the message (a v2 advert's checksum always covers the message alone).
    ///
    /// # Panics
    /// If there are more than 255 addresses, which the configuration refuses.
    pub fn encode_with(&self, scope: ChecksumScope) -> Vec<u8> {
        let count = u8::try_from(self.addresses.len()).expect("at most 255 addresses");
        let mut buf = Vec::with_capacity(self.encoded_len());
        buf.push((self.version.number() << 4) | TYPE_ADVERTISEMENT);
        buf.push(self.vrid);
        buf.push(self.priority);
        buf.push(count);
        match self.version {
            Version::V2 => {
                buf.push(self.auth_type);
                buf.push(u8::try_from(self.advert_int).unwrap_or(u8::MAX));
            }
            Version::V3 => {
                buf.extend_from_slice(&(self.advert_int & MAX_ADVER_INT_V3).to_be_bytes())
            }
        }
        buf.extend_from_slice(&[0, 0]);
        for address in &self.addresses {
            match address {
                IpAddr::V4(a) => buf.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => buf.extend_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 {
            buf.extend_from_slice(&self.auth_data);
        }
        let scope = match self.version {
            Version::V2 => ChecksumScope::Message,
            Version::V3 => scope,
        };
        let sum = checksum_with(scope, &buf);
        buf[6..8].copy_from_slice(&sum.to_be_bytes());
        buf
    }

    /// Decodes a VRRP message (no IP header): version, type, length and checksum are
    /// verified. Without the IP header a v3 checksum can only be taken as
    /// `v3_checksum_as_v2`; see [`Advert::decode_ipv4`].
    pub fn decode(buf: &[u8]) -> Result<Advert, DropReason> {
        Self::decode_message(buf, Family::V4, None).map(|(advert, _)| advert)
    }

    /// Decodes a VRRP message carrying `family` addresses; a v3 checksum is tried
    /// with `pseudo` (the datagram's pseudo-header) first, then, over IPv4 only, over
    /// the message alone. Returns the advert and whether its checksum covers the
    /// message alone.
    fn decode_message(
        buf: &[u8],
        family: Family,
        pseudo: Option<ChecksumScope>,
    ) -> Result<(Advert, bool), DropReason> {
        if buf.len() < HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        let version = match buf[0] >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            _ => return Err(DropReason::Version),
        };
        if buf[0] & 0x0f != TYPE_ADVERTISEMENT {
            return Err(DropReason::Type);
        }
        if version == Version::V2 && family == Family::V6 {
            // VRRPv2 is IPv4 only.
            return Err(DropReason::Version);
        }
        let count = usize::from(buf[3]);
        let auth_len = match version {
            Version::V2 => AUTH_DATA_LEN,
            Version::V3 => 0,
        };
        let width = address_len(family);
        let len = HEADER_LEN + width * count + auth_len;
        if buf.len() < len {
            return Err(DropReason::Truncated);
        }
        // Bytes past the declared message (link padding) are not part of it.
        let buf = &buf[..len];
        let as_v2 = family == Family::V4 && checksum(buf) == 0;
        let checksum_as_v2 = match (version, pseudo) {
            (Version::V2, _) | (Version::V3, None) if as_v2 => true,
            (Version::V3, Some(scope)) => {
                if checksum_with(scope, buf) == 0 {
                    false
                } else if as_v2 {
                    true
                } else {
                    return Err(DropReason::Checksum);
                }
            }
            _ => return Err(DropReason::Checksum),
        };
        let addresses = buf[HEADER_LEN..HEADER_LEN + width * count]
            .chunks_exact(width)
            .map(|o| match <[u8; 16]>::try_from(o) {
                Ok(v6) => IpAddr::V6(Ipv6Addr::from(v6)),
                Err(_) => IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3])),
            })
            .collect();
        let (auth_type, advert_int, auth_data) = match version {
            Version::V2 => {
                let mut auth_data = [0u8; AUTH_DATA_LEN];
                auth_data.copy_from_slice(&buf[len - AUTH_DATA_LEN..]);
                (buf[4], u16::from(buf[5]), auth_data)
            }
            // The 4 reserved bits are ignored on reception.
            Version::V3 => (
                0,
                u16::from_be_bytes([buf[4], buf[5]]) & MAX_ADVER_INT_V3,
                [0; AUTH_DATA_LEN],
            ),
        };
        let advert = Advert {
            version,
            vrid: buf[1],
            priority: buf[2],
            advert_int,
            auth_type,
            auth_data,
            addresses,
        };
        Ok((advert, checksum_as_v2))
    }

    /// Decodes a whole IPv4 datagram carrying a VRRP message, as a raw socket returns
    /// it. The IPv4 header may carry options; the TTL must be 255.
    pub fn decode_ipv4(buf: &[u8]) -> Result<Received, DropReason> {
        if buf.len() < 20 {
            return Err(DropReason::Truncated);
        }
        if buf[0] >> 4 != 4 {
            return Err(DropReason::IpHeader);
        }
        let header_len = usize::from(buf[0] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if header_len < 20 || total_len < header_len {
            return Err(DropReason::IpHeader);
        }
        if buf.len() < total_len {
            return Err(DropReason::Truncated);
        }
        if buf[9] != IPPROTO_VRRP {
            return Err(DropReason::IpHeader);
        }
        if buf[8] != TTL {
            return Err(DropReason::Ttl);
        }
        let source = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
        let destination = Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]);
        let pseudo = ChecksumScope::Ipv4Pseudo {
            source,
            destination,
        };
        let (advert, checksum_as_v2) =
            Advert::decode_message(&buf[header_len..total_len], Family::V4, Some(pseudo))?;
        Ok(Received {
            source: source.into(),
            destination: destination.into(),
            advert,
            checksum_as_v2,
            hop_limit: TTL,
        })
    }

    /// Decodes a VRRP message received over IPv6: a raw IPv6 socket hands over the
    /// payload alone, with the source, the destination and the hop limit from its
    /// control messages. The version must be 3 and the checksum must cover the IPv6
    /// pseudo-header; the hop limit is checked with the configuration
    /// ([`Received::check_against`]).
    pub fn decode_ipv6(
        payload: &[u8],
        source: Ipv6Addr,
        destination: Ipv6Addr,
        hop_limit: u8,
    ) -> Result<Received, DropReason> {
        let pseudo = ChecksumScope::Ipv6Pseudo {
            source,
            destination,
        };
        let (advert, checksum_as_v2) = Advert::decode_message(payload, Family::V6, Some(pseudo))?;
        Ok(Received {
            source: source.into(),
            destination: destination.into(),
            advert,
            checksum_as_v2,
            hop_limit,
        })
    }

    /// The checks of section 7.1 on what the advert says, in the RFC's order. The
    /// source lists of `expect` are not looked at here: see
    /// [`Received::check_against`]. VRRPv3 has no authentication and does not
    /// compare intervals (a backup learns the master's).
    pub fn check_against(&self, expect: &Expect<'_>) -> Result<(), DropReason> {
        if self.vrid != expect.vrid {
            return Err(DropReason::Vrid);
        }
        if self.version != expect.version {
            return Err(DropReason::Version);
        }
        if expect.we_are_owner {
            return Err(DropReason::OwnerReceived);
        }
        if self.version == Version::V2 {
            if self.auth_type != expect.auth.type_code() {
                return Err(DropReason::AuthType);
            }
            // Section 5.3.6: with type 0 the data field is ignored on reception (it is
            // only zeroed on transmission); only a password is compared.
            if let Auth::Simple(password) = expect.auth
                && self.auth_data != *password
            {
                return Err(DropReason::Authentication);
            }
        }
        // Section 7.1: a mismatching address list is dropped unless the sender owns
        // the addresses. The order of the list is not significant.
        if self.priority != 255 && !same_addresses(&self.addresses, expect.addresses) {
            return Err(DropReason::AddressList);
        }
        if self.version == Version::V2 && self.advert_int != expect.advert_int {
            return Err(DropReason::Interval);
        }
        if self.version == Version::V3 && self.advert_int == 0 {
            return Err(DropReason::Interval);
        }
        Ok(())
    }
}

/// Bytes per address of `family` in an advert.
fn address_len(family: Family) -> usize {
    match family {
        Family::V4 => 4,
        Family::V6 => 16,
    }
}

fn same_addresses(a: &[IpAddr], b: &[IpAddr]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// The Internet checksum (RFC 1071) of `buf`: zero when computed over a message whose
/// checksum field is already filled in correctly.
pub fn checksum(buf: &[u8]) -> u16 {
    fold(sum_words(0, buf))
}

/// The checksum of `message` (its checksum field zero, or filled in: then the
/// result is zero when it is right) with what `scope` adds in front of it.
pub fn checksum_with(scope: ChecksumScope, message: &[u8]) -> u16 {
    match scope {
        ChecksumScope::Message => checksum(message),
        ChecksumScope::Ipv4Pseudo {
            source,
            destination,
        } => {
            let len = u16::try_from(message.len()).unwrap_or(u16::MAX);
            let mut pseudo = [0u8; 12];
            pseudo[..4].copy_from_slice(&source.octets());
            pseudo[4..8].copy_from_slice(&destination.octets());
            pseudo[9] = IPPROTO_VRRP;
            pseudo[10..].copy_from_slice(&len.to_be_bytes());
            fold(sum_words(sum_words(0, &pseudo), message))
        }
        ChecksumScope::Ipv6Pseudo {
            source,
            destination,
        } => {
            let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
            let mut pseudo = [0u8; 40];
            pseudo[..16].copy_from_slice(&source.octets());
            pseudo[16..32].copy_from_slice(&destination.octets());
            pseudo[32..36].copy_from_slice(&len.to_be_bytes());
            pseudo[39] = IPPROTO_VRRP;
            fold(sum_words(sum_words(0, &pseudo), message))
        }
    }
}

/// Adds `buf` as 16-bit big-endian words (an odd last byte padded with zero).
fn sum_words(mut sum: u32, buf: &[u8]) -> u32 {
    let mut chunks = buf.chunks_exact(2);
    for pair in &mut chunks {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    // Fold as we go so that long inputs cannot overflow.
    (sum & 0xffff) + (sum >> 16)
}

fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Wraps a VRRP message in an IPv4 header (no options), as the kernel would send it.
/// Used by tests and by tools that craft packets; the agent lets the kernel build the
/// header.
pub fn ipv4_datagram(source: Ipv4Addr, destination: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("datagram fits in 64 KiB");
    let mut buf = Vec::with_capacity(usize::from(total));
    buf.extend_from_slice(&[0x45, 0xc0]);
    buf.extend_from_slice(&total.to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0, ttl, IPPROTO_VRRP, 0, 0]);
    buf.extend_from_slice(&source.octets());
    buf.extend_from_slice(&destination.octets());
    let sum = checksum(&buf);
    buf[10..12].copy_from_slice(&sum.to_be_bytes());
    buf.extend_from_slice(payload);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));

    fn advert() -> Advert {
        Advert::new(51, 100, 1, &Auth::None, &[VIP])
    }

    fn expect<'a>(auth: &'a Auth, addresses: &'a [IpAddr]) -> Expect<'a> {
        Expect {
            version: Version::V2,
            vrid: 51,
            advert_int: 1,
            auth,
            checksum_as_v2: false,
            addresses,
            we_are_owner: false,
            unicast_peers: &[],
            allowed_sources: &[],
        }
    }

    fn ip4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn received(source: IpAddr, advert: Advert) -> Received {
        Received {
            source,
            destination: MULTICAST_GROUP.into(),
            advert,
            checksum_as_v2: true,
            hop_limit: TTL,
        }
    }

    #[test]
    fn allowed_sources_drops_every_other_source_multicast_too() {
        let auth = Auth::None;
        let peer = ip4(192, 0, 2, 12);
        let stranger = ip4(192, 0, 2, 13);
        let allowed = [peer];
        let e = Expect {
            allowed_sources: &allowed,
            ..expect(&auth, &[VIP])
        };
        let higher = Advert::new(51, 254, 1, &auth, &[VIP]);
        assert_eq!(received(peer, higher.clone()).check_against(&e), Ok(()));
        assert_eq!(
            received(stranger, higher.clone()).check_against(&e),
            Err(DropReason::SourceNotAllowed)
        );
        // Priority 0 (a forged step-down) and an owner's advert are strangers' too.
        for priority in [0, 255] {
            let a = Advert::new(51, priority, 1, &auth, &[VIP]);
            assert_eq!(
                received(stranger, a).check_against(&e),
                Err(DropReason::SourceNotAllowed)
            );
        }
        // Another virtual router's adverts are counted as such, whoever sends them.
        let other_vrid = Advert::new(52, 100, 1, &auth, &[VIP]);
        assert_eq!(
            received(stranger, other_vrid).check_against(&e),
            Err(DropReason::Vrid)
        );
        // Without the list every source is taken.
        assert_eq!(
            received(stranger, higher).check_against(&expect(&auth, &[VIP])),
            Ok(())
        );
    }

    #[test]
    fn unicast_peers_still_filter_and_combine_with_allowed_sources() {
        let auth = Auth::None;
        let peer = ip4(192, 0, 2, 12);
        let other = ip4(192, 0, 2, 14);
        let peers = [peer];
        let e = Expect {
            unicast_peers: &peers,
            ..expect(&auth, &[VIP])
        };
        let a = Advert::new(51, 100, 1, &auth, &[VIP]);
        assert_eq!(received(peer, a.clone()).check_against(&e), Ok(()));
        assert_eq!(
            received(other, a.clone()).check_against(&e),
            Err(DropReason::UnknownSource)
        );
        // A unicast peer that allowed_sources leaves out is dropped too.
        let allowed = [other];
        let both = Expect {
            allowed_sources: &allowed,
            ..e
        };
        assert_eq!(
            received(peer, a).check_against(&both),
            Err(DropReason::SourceNotAllowed)
        );
    }

    #[test]
    fn the_advert_checks_follow_the_source_checks() {
        let auth = Auth::simple("secret");
        let peer = ip4(192, 0, 2, 12);
        let allowed = [peer];
        let e = Expect {
            allowed_sources: &allowed,
            ..expect(&auth, &[VIP])
        };
        let wrong = Advert::new(51, 100, 1, &Auth::simple("guess"), &[VIP]);
        assert_eq!(
            received(peer, wrong).check_against(&e),
            Err(DropReason::Authentication)
        );
    }

    fn datagram(advert: &Advert, ttl: u8) -> Vec<u8> {
        ipv4_datagram(SRC, MULTICAST_GROUP, ttl, &advert.encode())
    }

    #[test]
    fn encodes_the_rfc_layout() {
        let bytes = Advert::new(51, 100, 1, &Auth::simple("secret"), &[VIP]).encode();
        assert_eq!(bytes.len(), 20);
        assert_eq!(&bytes[..6], &[0x21, 51, 100, 1, 1, 1]);
        assert_eq!(&bytes[8..12], &[192, 0, 2, 100]);
        assert_eq!(&bytes[12..], b"secret\0\0");
        assert_eq!(checksum(&bytes), 0);
    }

    #[test]
    fn decodes_what_it_encodes_through_an_ip_header() {
        let received = Advert::decode_ipv4(&datagram(&advert(), 255)).unwrap();
        assert_eq!(received.source, SRC);
        assert_eq!(received.destination, MULTICAST_GROUP);
        assert_eq!(received.advert, advert());
    }

    #[test]
    fn accepts_an_ip_header_with_options() {
        let payload = advert().encode();
        let mut buf = ipv4_datagram(SRC, MULTICAST_GROUP, 255, &payload);
        // Grow the header by one 4-byte option word (router alert).
        buf.splice(20..20, [0x94, 0x04, 0x00, 0x00]);
        buf[0] = 0x46;
        let total = u16::try_from(buf.len()).unwrap();
        buf[2..4].copy_from_slice(&total.to_be_bytes());
        assert_eq!(Advert::decode_ipv4(&buf).unwrap().advert, advert());
    }

    #[test]
    fn ignores_link_padding_after_the_message() {
        let mut payload = advert().encode();
        payload.extend_from_slice(&[0; 6]);
        assert_eq!(Advert::decode(&payload).unwrap(), advert());
    }

    #[test]
    fn rejects_ttl_other_than_255() {
        for ttl in [0, 1, 64, 254] {
            assert_eq!(
                Advert::decode_ipv4(&datagram(&advert(), ttl)),
                Err(DropReason::Ttl)
            );
        }
    }

    #[test]
    fn rejects_other_versions() {
        for first in [0x11, 0x41, 0xf1] {
            let mut bytes = advert().encode();
            bytes[0] = first;
            assert_eq!(Advert::decode(&bytes), Err(DropReason::Version));
        }
    }

    #[test]
    fn rejects_other_types() {
        let mut bytes = advert().encode();
        bytes[0] = 0x22;
        assert_eq!(Advert::decode(&bytes), Err(DropReason::Type));
    }

    #[test]
    fn rejects_a_bad_checksum() {
        let mut bytes = advert().encode();
        bytes[7] ^= 0x01;
        assert_eq!(Advert::decode(&bytes), Err(DropReason::Checksum));
    }

    #[test]
    fn rejects_truncated_packets_at_every_length() {
        let bytes = advert().encode();
        for len in 0..bytes.len() {
            assert_eq!(
                Advert::decode(&bytes[..len]),
                Err(DropReason::Truncated),
                "len {len}"
            );
        }
        let whole = datagram(&advert(), 255);
        for len in 0..whole.len() {
            assert!(Advert::decode_ipv4(&whole[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn rejects_an_address_count_larger_than_the_packet() {
        let mut bytes = advert().encode();
        bytes[3] = 3;
        assert_eq!(Advert::decode(&bytes), Err(DropReason::Truncated));
    }

    #[test]
    fn rejects_non_vrrp_and_non_ipv4() {
        let mut buf = datagram(&advert(), 255);
        buf[9] = 17;
        assert_eq!(Advert::decode_ipv4(&buf), Err(DropReason::IpHeader));
        let mut buf = datagram(&advert(), 255);
        buf[0] = 0x65;
        assert_eq!(Advert::decode_ipv4(&buf), Err(DropReason::IpHeader));
        let mut buf = datagram(&advert(), 255);
        buf[0] = 0x44;
        assert_eq!(Advert::decode_ipv4(&buf), Err(DropReason::IpHeader));
    }

    #[test]
    fn checks_vrid() {
        let auth = Auth::None;
        let a = Advert::new(52, 100, 1, &auth, &[VIP]);
        assert_eq!(
            a.check_against(&expect(&auth, &[VIP])),
            Err(DropReason::Vrid)
        );
    }

    #[test]
    fn an_owner_accepts_no_advert() {
        let auth = Auth::None;
        let mut e = expect(&auth, &[VIP]);
        e.we_are_owner = true;
        assert_eq!(advert().check_against(&e), Err(DropReason::OwnerReceived));
    }

    #[test]
    fn checks_auth_type_and_password() {
        let ours = Auth::simple("secret");
        let none = Advert::new(51, 100, 1, &Auth::None, &[VIP]);
        assert_eq!(
            none.check_against(&expect(&ours, &[VIP])),
            Err(DropReason::AuthType)
        );
        let wrong = Advert::new(51, 100, 1, &Auth::simple("guess"), &[VIP]);
        assert_eq!(
            wrong.check_against(&expect(&ours, &[VIP])),
            Err(DropReason::Authentication)
        );
        let right = Advert::new(51, 100, 1, &Auth::simple("secret"), &[VIP]);
        assert_eq!(right.check_against(&expect(&ours, &[VIP])), Ok(()));
    }

    /// RFC 3768 5.3.6: with auth type 0 the data field "is ignored on reception".
    #[test]
    fn auth_type_zero_ignores_the_auth_data_on_reception() {
        let ours = Auth::None;
        let mut a = Advert::new(51, 100, 1, &ours, &[VIP]);
        a.auth_data = *b"garbage!";
        // Through the wire too: the checksum covers the data, decoding keeps it.
        let decoded = Advert::decode(&a.encode()).unwrap();
        assert_eq!(decoded.auth_data, *b"garbage!");
        assert_eq!(decoded.check_against(&expect(&ours, &[VIP])), Ok(()));
        // A type-1 advert is still refused by a type-0 instance.
        let simple = Advert::new(51, 100, 1, &Auth::simple("garbage!"), &[VIP]);
        assert_eq!(
            simple.check_against(&expect(&ours, &[VIP])),
            Err(DropReason::AuthType)
        );
    }

    #[test]
    fn long_passwords_are_cut_to_eight_bytes_like_keepalived() {
        assert_eq!(Auth::simple("secret1234"), Auth::simple("secret12"));
    }

    #[test]
    fn checks_the_address_list_unless_the_sender_owns_it() {
        let auth = Auth::None;
        let other = ip4(192, 0, 2, 101);
        let a = Advert::new(51, 100, 1, &auth, &[other]);
        assert_eq!(
            a.check_against(&expect(&auth, &[VIP])),
            Err(DropReason::AddressList)
        );
        let a = Advert::new(51, 100, 1, &auth, &[VIP, other]);
        assert_eq!(
            a.check_against(&expect(&auth, &[VIP])),
            Err(DropReason::AddressList)
        );
        let owner = Advert::new(51, 255, 1, &auth, &[other]);
        assert_eq!(owner.check_against(&expect(&auth, &[VIP])), Ok(()));
        let reordered = Advert::new(51, 100, 1, &auth, &[other, VIP]);
        assert_eq!(
            reordered.check_against(&expect(&auth, &[VIP, other])),
            Ok(())
        );
    }

    #[test]
    fn checks_the_interval() {
        let auth = Auth::None;
        let a = Advert::new(51, 100, 2, &auth, &[VIP]);
        assert_eq!(
            a.check_against(&expect(&auth, &[VIP])),
            Err(DropReason::Interval)
        );
    }

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 12));

    fn expect_v3<'a>(addresses: &'a [IpAddr], as_v2: bool) -> Expect<'a> {
        Expect {
            version: Version::V3,
            advert_int: 100,
            checksum_as_v2: as_v2,
            ..expect(&Auth::None, addresses)
        }
    }

    fn v3_datagram(advert: &Advert, as_v2: bool) -> Vec<u8> {
        let scope = if as_v2 {
            ChecksumScope::Message
        } else {
            ChecksumScope::Ipv4Pseudo {
                source: SRC,
                destination: MULTICAST_GROUP,
            }
        };
        ipv4_datagram(SRC, MULTICAST_GROUP, 255, &advert.encode_with(scope))
    }

    /// RFC 5798 section 5.1: version 3, 4 reserved bits and a 12-bit Max Adver Int
    /// in centiseconds where v2 had auth type and interval, no authentication data.
    #[test]
    fn encodes_the_v3_layout() {
        let a = Advert::v3(51, 100, 10, &[VIP]);
        let bytes = a.encode();
        assert_eq!(bytes.len(), 12);
        assert_eq!(&bytes[..6], &[0x31, 51, 100, 1, 0x00, 10]);
        assert_eq!(&bytes[8..12], &[192, 0, 2, 100]);
        assert_eq!(a.interval(), Duration::from_millis(100));
        let long = Advert::v3(51, 100, 4095, &[VIP]).encode();
        assert_eq!(&long[4..6], &[0x0f, 0xff]);
        assert_eq!(Version::V3.interval(4095), Duration::from_millis(40_950));
    }

    /// The v3 checksum covers the IPv4 pseudo-header (source, destination, zero,
    /// protocol 112, VRRP length) unless the sender computes it as v2 does; the
    /// decoder says which, and each instance takes only its own kind.
    #[test]
    fn the_v3_checksum_covers_the_pseudo_header_or_not_as_configured() {
        let a = Advert::v3(51, 100, 100, &[VIP]);
        let pseudo = Advert::decode_ipv4(&v3_datagram(&a, false)).unwrap();
        assert!(!pseudo.checksum_as_v2);
        assert_eq!(pseudo.advert, a);
        let plain = Advert::decode_ipv4(&v3_datagram(&a, true)).unwrap();
        assert!(plain.checksum_as_v2);
        assert_eq!(pseudo.check_against(&expect_v3(&[VIP], false)), Ok(()));
        assert_eq!(
            plain.check_against(&expect_v3(&[VIP], false)),
            Err(DropReason::Checksum)
        );
        assert_eq!(plain.check_against(&expect_v3(&[VIP], true)), Ok(()));
        assert_eq!(
            pseudo.check_against(&expect_v3(&[VIP], true)),
            Err(DropReason::Checksum)
        );
        // The pseudo-header's addresses are those of the datagram: a message
        // checksummed for another destination fails both ways.
        let other = ChecksumScope::Ipv4Pseudo {
            source: SRC,
            destination: Ipv4Addr::new(192, 0, 2, 12),
        };
        let wrong = ipv4_datagram(SRC, MULTICAST_GROUP, 255, &a.encode_with(other));
        assert_eq!(Advert::decode_ipv4(&wrong), Err(DropReason::Checksum));
        // The pseudo-header makes a difference at all.
        assert_ne!(a.encode_with(other), a.encode());
    }

    /// Section 7.1 for v3: no authentication to check, and the interval is learned
    /// from the master rather than compared; a zero interval is refused. A v2 advert
    /// is refused by a v3 instance and the other way round.
    #[test]
    fn v3_checks_skip_the_interval_and_the_versions_do_not_mix() {
        let slower = Advert::v3(51, 100, 300, &[VIP]);
        assert_eq!(slower.check_against(&expect_v3(&[VIP], true)), Ok(()));
        let zero = Advert::v3(51, 100, 0, &[VIP]);
        assert_eq!(
            zero.check_against(&expect_v3(&[VIP], true)),
            Err(DropReason::Interval)
        );
        let v2 = Advert::new(51, 100, 1, &Auth::None, &[VIP]);
        assert_eq!(
            v2.check_against(&expect_v3(&[VIP], true)),
            Err(DropReason::Version)
        );
        assert_eq!(
            slower.check_against(&expect(&Auth::None, &[VIP])),
            Err(DropReason::Version)
        );
        let other = Advert::v3(51, 100, 100, &[PEER]);
        assert_eq!(
            other.check_against(&expect_v3(&[VIP], true)),
            Err(DropReason::AddressList)
        );
        // Reserved bits are ignored.
        let mut bytes = Advert::v3(51, 100, 100, &[VIP]).encode();
        bytes[4] |= 0xf0;
        bytes[6..8].copy_from_slice(&[0, 0]);
        let sum = checksum(&bytes);
        bytes[6..8].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(Advert::decode(&bytes).unwrap().advert_int, 100);
    }

    #[test]
    fn wire_intervals_per_version() {
        let ms = Duration::from_millis;
        assert_eq!(Version::V2.wire_interval(ms(1000)), Some(1));
        assert_eq!(Version::V2.wire_interval(ms(255_000)), Some(255));
        assert_eq!(Version::V2.wire_interval(ms(1500)), None);
        assert_eq!(Version::V2.wire_interval(ms(256_000)), None);
        assert_eq!(Version::V2.wire_interval(ms(0)), None);
        assert_eq!(Version::V3.wire_interval(ms(10)), Some(1));
        assert_eq!(Version::V3.wire_interval(ms(100)), Some(10));
        assert_eq!(Version::V3.wire_interval(ms(40_950)), Some(4095));
        assert_eq!(Version::V3.wire_interval(ms(40_960)), None);
        assert_eq!(Version::V3.wire_interval(ms(15)), None);
        assert_eq!(Version::V3.wire_interval(ms(0)), None);
    }

    const LL_A: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x11);
    const LL_B: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x12);

    fn v6_payload(advert: &Advert) -> Vec<u8> {
        advert.encode_with(ChecksumScope::Ipv6Pseudo {
            source: LL_A,
            destination: MULTICAST_GROUP_V6,
        })
    }

    /// Over IPv6: 16-byte addresses, the checksum always over the IPv6 pseudo-header
    /// (no v3_checksum_as_v2: RFC 5798 leaves no choice there), version 3 only, the
    /// hop limit checked against the unicast peers.
    #[test]
    fn v3_over_ipv6() {
        let vip: IpAddr = "2001:db8::100".parse().unwrap();
        let a = Advert::v3(52, 100, 10, &[vip]);
        assert_eq!(a.encoded_len(), 8 + 16);
        let payload = v6_payload(&a);
        let r = Advert::decode_ipv6(&payload, LL_A, MULTICAST_GROUP_V6, 255).unwrap();
        assert_eq!(r.advert, a);
        assert_eq!(r.source, IpAddr::V6(LL_A));
        let e = Expect {
            vrid: 52,
            ..expect_v3(std::slice::from_ref(&vip), false)
        };
        assert_eq!(r.check_against(&e), Ok(()));
        // The option for IPv4 peers does not apply to IPv6.
        let as_v2 = Expect {
            checksum_as_v2: true,
            ..e.clone()
        };
        assert_eq!(r.check_against(&as_v2), Ok(()));
        // A checksum without the pseudo-header is refused over IPv6.
        assert_eq!(
            Advert::decode_ipv6(&a.encode(), LL_A, MULTICAST_GROUP_V6, 255),
            Err(DropReason::Checksum)
        );
        // The pseudo-header's destination counts too.
        assert_eq!(
            Advert::decode_ipv6(&payload, LL_A, LL_B, 255),
            Err(DropReason::Checksum)
        );
        // VRRPv2 has no IPv6.
        let mut v2 = payload.clone();
        v2[0] = 0x21;
        assert_eq!(
            Advert::decode_ipv6(&v2, LL_A, MULTICAST_GROUP_V6, 255),
            Err(DropReason::Version)
        );
        // A hop limit other than 255 is taken from a listed unicast peer only.
        let low = Advert::decode_ipv6(&payload, LL_A, MULTICAST_GROUP_V6, 64).unwrap();
        assert_eq!(low.check_against(&e), Err(DropReason::Ttl));
        let peers = [IpAddr::V6(LL_A)];
        let unicast = Expect {
            unicast_peers: &peers,
            ..e.clone()
        };
        assert_eq!(low.check_against(&unicast), Ok(()));
        // Truncated at every length.
        for len in 0..payload.len() {
            assert!(
                Advert::decode_ipv6(&payload[..len], LL_A, MULTICAST_GROUP_V6, 255).is_err(),
                "len {len}"
            );
        }
    }

    proptest! {
        #[test]
        fn v3_ipv6_round_trips(vrid in 1u8.., priority: u8, int in 1u16..=4095,
                               addrs in proptest::collection::vec(any::<u128>(), 0..10)) {
            let addresses: Vec<IpAddr> =
                addrs.into_iter().map(|a| IpAddr::V6(Ipv6Addr::from(a))).collect();
            let a = Advert::v3(vrid, priority, int, &addresses);
            let payload = v6_payload(&a);
            prop_assert_eq!(payload.len(), a.encoded_len());
            let r = Advert::decode_ipv6(&payload, LL_A, MULTICAST_GROUP_V6, 255).unwrap();
            prop_assert_eq!(r.advert, a);
        }

        #[test]
        fn never_panics_on_ipv6_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                        hop: u8) {
            let _ = Advert::decode_ipv6(&bytes, LL_A, MULTICAST_GROUP_V6, hop);
        }

        #[test]
        fn v3_round_trips(vrid in 1u8.., priority: u8, int in 1u16..=4095, as_v2: bool,
                          addrs in proptest::collection::vec(any::<u32>(), 0..20)) {
            let addresses: Vec<Ipv4Addr> = addrs.into_iter().map(Ipv4Addr::from).collect();
            let a = Advert::v3(vrid, priority, int, &addresses);
            let bytes = v3_datagram(&a, as_v2);
            prop_assert_eq!(bytes.len(), 20 + a.encoded_len());
            let r = Advert::decode_ipv4(&bytes).unwrap();
            prop_assert_eq!(r.checksum_as_v2, as_v2);
            prop_assert_eq!(r.advert, a);
        }

        #[test]
        fn any_single_bit_flip_of_a_v3_datagram_is_caught(bit in 0usize..160, as_v2: bool) {
            // The bits of the VRRP message and of the addresses the pseudo-header
            // covers (bytes 12..20 of the IPv4 header), TTL and protocol aside.
            let mut bytes = v3_datagram(&Advert::v3(51, 100, 100, &[VIP]), as_v2);
            let byte = 12 + bit / 8;
            bytes[byte] ^= 1 << (bit % 8);
            let covered = byte >= 20 || !as_v2;
            if covered {
                prop_assert!(Advert::decode_ipv4(&bytes).is_err(), "byte {}", byte);
            }
        }

        #[test]
        fn round_trips(vrid in 1u8.., priority: u8, int in 1u8.., pass in "[a-z0-9]{0,10}",
                       addrs in proptest::collection::vec(any::<u32>(), 0..20), ttl_ok: bool) {
            let auth = if pass.is_empty() { Auth::None } else { Auth::simple(&pass) };
            let addresses: Vec<Ipv4Addr> = addrs.into_iter().map(Ipv4Addr::from).collect();
            let a = Advert::new(vrid, priority, int, &auth, &addresses);
            let bytes = a.encode();
            prop_assert_eq!(bytes.len(), a.encoded_len());
            prop_assert_eq!(checksum(&bytes), 0);
            prop_assert_eq!(Advert::decode(&bytes), Ok(a.clone()));
            let ttl = if ttl_ok { 255 } else { 64 };
            let decoded = Advert::decode_ipv4(&ipv4_datagram(SRC, MULTICAST_GROUP, ttl, &bytes));
            if ttl_ok {
                prop_assert_eq!(decoded.map(|r| r.advert), Ok(a));
            } else {
                prop_assert_eq!(decoded, Err(DropReason::Ttl));
            }
        }

        #[test]
        fn any_single_bit_flip_is_caught(bit in 0usize..160) {
            let mut bytes = advert().encode();
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(Advert::decode(&bytes).is_err());
        }

        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = Advert::decode_ipv4(&bytes);
            let _ = Advert::decode(&bytes);
        }
    }
}
