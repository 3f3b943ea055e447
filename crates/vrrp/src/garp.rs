//! Gratuitous ARP: an ARP request for each virtual address, sender and target the
//! address itself, broadcast from the interface's MAC, so that the LAN's neighbour
//! tables point at the new master. Frames are built with pnet and sent on an
//! AF_PACKET socket that receives nothing.

use std::io;
use std::net::Ipv4Addr;

use pnet_base::MacAddr;
use pnet_packet::MutablePacket;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};
use socket2::{Domain, Socket, Type};

const FRAME_LEN: usize = 14 + 28;

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

    /// Sends one gratuitous ARP for each address.
    pub fn send(&self, addresses: &[Ipv4Addr]) -> io::Result<()> {
        for address in addresses {
            let frame = frame(self.mac, *address);
            // SAFETY: sockaddr_ll is plain old data; zeroed is a valid value.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = (libc::ETH_P_ARP as u16).to_be();
            sll.sll_ifindex = i32::try_from(self.index).map_err(|_| io::ErrorKind::InvalidInput)?;
            sll.sll_halen = 6;
            sll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
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
}
