//! Telling the LAN where the virtual addresses are: for each IPv4 one a gratuitous
//! ARP (an ARP request, sender and target the address itself, broadcast from the
//! interface's MAC), for each IPv6 one an unsolicited Neighbor Advertisement (RFC 5798
//! section 6.4.2: to all nodes, ff02::1, from the address itself, Router and
//! Override flags set, the target link-layer address option naming the MAC), so that
//! neighbour tables point at the new master. Frames are built with pnet and sent on
//! an AF_PACKET socket that receives nothing.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pnet_base::MacAddr;
use pnet_packet::MutablePacket;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{MutableNeighborAdvertPacket, NdpOptionTypes, NeighborAdvertFlags};
use pnet_packet::icmpv6::{self, Icmpv6Code, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::MutableIpv6Packet;
use socket2::{Domain, Socket, Type};

const FRAME_LEN: usize = 14 + 28;
/// ICMPv6 Neighbor Advertisement (24 bytes) with one 8-byte option.
const NA_LEN: usize = 24 + 8;
const NA_FRAME_LEN: usize = 14 + 40 + NA_LEN;
/// All-nodes multicast, and its Ethernet address (33:33 and the group's low 32 bits).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

/// Builds one gratuitous ARP frame (Ethernet header included).
pub fn frame(mac: [u8; 6], address: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut buf = [0u8; FRAME_LEN];
    let mac = MacAddr::from(mac);
    {
        let mut ethernet = MutableEthernetPacket::new(&mut buf).expect("buffer fits a frame");
        ethernet.set_destination(MacAddr::broadcast());
        ethernet.set_source(mac);
        ethernet.set_ethertype(EtherTypes::Arp);
        let mut arp = MutableArpPacket::new(ethernet.payload_mut()).expect("buffer fits ARP");
        arp.set_hardware_type(ArpHardwareTypes::Ethernet);
        arp.set_protocol_type(EtherTypes::Ipv4);
        arp.set_hw_addr_len(6);
        arp.set_proto_addr_len(4);
        arp.set_operation(ArpOperations::Request);
        arp.set_sender_hw_addr(mac);
        arp.set_sender_proto_addr(address);
        arp.set_target_hw_addr(MacAddr::broadcast());
        arp.set_target_proto_addr(address);
    }
    buf
}

/// Builds one unsolicited Neighbor Advertisement frame for `address` (Ethernet
/// header included).
pub fn neighbor_advert(mac: [u8; 6], address: Ipv6Addr) -> [u8; NA_FRAME_LEN] {
    let mut buf = [0u8; NA_FRAME_LEN];
    let mut icmp = [0u8; NA_LEN];
    {
        let mut na = MutableNeighborAdvertPacket::new(&mut icmp).expect("buffer fits an NA");
        na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
        na.set_icmpv6_code(Icmpv6Code(0));
        na.set_flags(NeighborAdvertFlags::Router | NeighborAdvertFlags::Override);
        na.set_target_addr(address);
    }
    // The target link-layer address option: type, length in units of 8 bytes, MAC.
    icmp[24] = NdpOptionTypes::TargetLLAddr.0;
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&mac);
    let sum = icmpv6::checksum(
        &Icmpv6Packet::new(&icmp).expect("an ICMPv6 packet"),
        &address,
        &ALL_NODES,
    );
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    {
        let mut ethernet = MutableEthernetPacket::new(&mut buf).expect("buffer fits a frame");
        ethernet.set_destination(MacAddr::from(ALL_NODES_MAC));
        ethernet.set_source(MacAddr::from(mac));
        ethernet.set_ethertype(EtherTypes::Ipv6);
        let mut ip = MutableIpv6Packet::new(ethernet.payload_mut()).expect("buffer fits IPv6");
        ip.set_version(6);
        ip.set_payload_length(NA_LEN as u16);
        ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
        ip.set_hop_limit(255);
        ip.set_source(address);
        ip.set_destination(ALL_NODES);
        ip.payload_mut()[..NA_LEN].copy_from_slice(&icmp);
    }
    buf
}

/// An AF_PACKET socket on one interface, for sending frames only.
#[derive(Debug)]
pub struct GarpSender {
    socket: Socket,
    index: u32,
    mac: [u8; 6],
}

impl GarpSender {
    /// Opens the socket. Protocol 0: the socket receives no frame at all.
    pub fn open(index: u32, mac: [u8; 6]) -> io::Result<Self> {
        let socket = Socket::new(Domain::PACKET, Type::RAW, None)?;
        socket.set_nonblocking(true)?;
        Ok(GarpSender { socket, index, mac })
    }

    /// Sends one gratuitous ARP for each IPv4 address and one unsolicited Neighbor
    /// Advertisement for each IPv6 one.
    pub fn send(&self, addresses: &[IpAddr]) -> io::Result<()> {
        for address in addresses {
            match *address {
                IpAddr::V4(v4) => {
                    self.send_frame(&frame(self.mac, v4), libc::ETH_P_ARP, [0xff; 6])?
                }
                IpAddr::V6(v6) => self.send_frame(
                    &neighbor_advert(self.mac, v6),
                    libc::ETH_P_IPV6,
                    ALL_NODES_MAC,
                )?,
            }
        }
        Ok(())
    }

    fn send_frame(&self, frame: &[u8], protocol: libc::c_int, to: [u8; 6]) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data; zeroed is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (protocol as u16).to_be();
        sll.sll_ifindex = i32::try_from(self.index).map_err(|_| io::ErrorKind::InvalidInput)?;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&to);
        // SAFETY: the pointers and lengths describe live, initialised values.
        let sent = unsafe {
            libc::sendto(
                std::os::fd::AsRawFd::as_raw_fd(&self.socket),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_gratuitous_arp_request() {
        let mac = [0x02, 0, 0, 0, 0, 0x11];
        let f = frame(mac, Ipv4Addr::new(192, 0, 2, 100));
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &mac);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        // htype 1, ptype IPv4, hlen 6, plen 4, op request
        assert_eq!(&f[14..22], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&f[22..28], &mac);
        assert_eq!(&f[28..32], &[192, 0, 2, 100]);
        assert_eq!(&f[32..38], &[0xff; 6]);
        assert_eq!(&f[38..42], &[192, 0, 2, 100]);
    }

    /// RFC 4861 section 4.4 and RFC 5798 section 6.4.2: to ff02::1 from the address,
    /// hop limit 255, type 136 code 0, R and O set (not S: unsolicited), the target,
    /// and the target link-layer address option; the checksum over the IPv6
    /// pseudo-header verifies.
    #[test]
    fn builds_an_unsolicited_neighbor_advertisement() {
        let mac = [0x02, 0, 0, 0, 0, 0x11];
        let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let f = neighbor_advert(mac, vip);
        assert_eq!(&f[0..6], &ALL_NODES_MAC);
        assert_eq!(&f[6..12], &mac);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        let ip = &f[14..54];
        assert_eq!(ip[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 32, "payload length");
        assert_eq!((ip[6], ip[7]), (58, 255), "ICMPv6, hop limit 255");
        assert_eq!(&ip[8..24], &vip.octets());
        assert_eq!(&ip[24..40], &ALL_NODES.octets());
        let icmp = &f[54..];
        assert_eq!((icmp[0], icmp[1]), (136, 0));
        assert_eq!(icmp[4], 0xa0, "Router and Override, not Solicited");
        assert_eq!(&icmp[8..24], &vip.octets());
        assert_eq!(&icmp[24..26], &[2, 1]);
        assert_eq!(&icmp[26..32], &mac);
        // One's complement sum over pseudo-header and message is all ones.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&vip.octets());
        pseudo.extend_from_slice(&ALL_NODES.octets());
        pseudo.extend_from_slice(&32u32.to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        pseudo.extend_from_slice(icmp);
        assert_eq!(crate::packet::checksum(&pseudo), 0);
    }
}
