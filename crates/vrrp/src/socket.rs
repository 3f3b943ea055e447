//! The raw IPv4 socket for protocol 112: multicast to 224.0.0.18 joined on one
//! interface only, or unicast to configured peers; TTL 255 on everything sent, and
//! every advert sent from the instance's source address (`unicast_src_ip` or the
//! interface's primary address), whatever address the kernel would pick.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, InterfaceIndexOrAddress, MsgHdr, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use crate::packet::{IPPROTO_VRRP, MULTICAST_GROUP, TTL};

/// Where adverts go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The VRRP multicast group.
    Multicast,
    /// Each of these peers, one datagram each.
    Unicast(Vec<Ipv4Addr>),
}

/// A raw VRRP socket bound to one interface.
#[derive(Debug)]
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    destination: Destination,
    index: u32,
    source: Ipv4Addr,
}

impl VrrpSocket {
    /// Opens the socket on `interface` (name and index), sending from `source`.
    ///
    /// The socket is not bound to `source` (a bound raw socket receives only datagrams
    /// addressed to it, not the multicast group): each advert carries the source in an
    /// `IP_PKTINFO` control message instead, which the kernel puts in the IPv4 header
    /// as long as the address is one of the host's.
    pub fn open(
        interface: &str,
        index: u32,
        source: Ipv4Addr,
        destination: Destination,
    ) -> io::Result<Self> {
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )?;
        socket.set_nonblocking(true)?;
        socket.bind_device(Some(interface.as_bytes()))?;
        socket.set_ttl_v4(u32::from(TTL))?;
        socket.set_multicast_ttl_v4(u32::from(TTL))?;
        socket.set_multicast_loop_v4(false)?;
        // Receive only the groups this socket joined, not every group of the host.
        socket.set_multicast_all_v4(false)?;
        socket.set_multicast_if_v4(&source)?;
        if destination == Destination::Multicast {
            socket.join_multicast_v4_n(&MULTICAST_GROUP, &InterfaceIndexOrAddress::Index(index))?;
        }
        // SAFETY: the socket owns its descriptor, which stays open and the same until
        // the AsyncFd drops it.
        let fd = unsafe { AsyncFd::register(socket) }.map_err(|e| e.into_parts().1)?;
        Ok(VrrpSocket {
            fd,
            destination,
            index,
            source,
        })
    }

    /// The source address adverts leave from.
    pub fn source(&self) -> Ipv4Addr {
        self.source
    }

    /// Changes the source address of the adverts (a reload changed `unicast_src_ip`).
    pub fn set_source(&mut self, source: Ipv4Addr) -> io::Result<()> {
        self.fd.get_ref().set_multicast_if_v4(&source)?;
        self.source = source;
        Ok(())
    }

    /// Changes where adverts go, joining or leaving the multicast group as needed.
    pub fn set_destination(&mut self, index: u32, destination: Destination) -> io::Result<()> {
        let group = InterfaceIndexOrAddress::Index(index);
        let socket = self.fd.get_ref();
        match (&self.destination, &destination) {
            (Destination::Multicast, Destination::Unicast(_)) => {
                socket.leave_multicast_v4_n(&MULTICAST_GROUP, &group)?;
            }
            (Destination::Unicast(_), Destination::Multicast) => {
                socket.join_multicast_v4_n(&MULTICAST_GROUP, &group)?;
            }
            _ => {}
        }
        self.destination = destination;
        Ok(())
    }

    /// Sends one VRRP message (the kernel adds the IPv4 header) to every destination;
    /// `encode(source, destination)` writes it for each (a VRRPv3 checksum covers
    /// both addresses).
    pub async fn send(&self, encode: impl Fn(Ipv4Addr, Ipv4Addr) -> Vec<u8>) -> io::Result<()> {
        let targets = match &self.destination {
            Destination::Multicast => vec![MULTICAST_GROUP],
            Destination::Unicast(peers) => peers.clone(),
        };
        let control = PktInfo::new(self.index, self.source);
        for target in targets {
            let message = encode(self.source, target);
            let buffers = [IoSlice::new(&message)];
            let addr = SockAddr::from(SocketAddrV4::new(target, 0));
            let header = MsgHdr::new()
                .with_addr(&addr)
                .with_buffers(&buffers)
                .with_control(control.bytes());
            loop {
                let mut guard = self.fd.writable().await?;
                match guard.try_io(|fd| fd.get_ref().sendmsg(&header, 0)) {
                    Ok(result) => {
                        result?;
                        break;
                    }
                    Err(_would_block) => continue,
                }
            }
        }
        Ok(())
    }

    /// Receives one whole IPv4 datagram (header included) into `buf`; returns its
    /// length.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| {
                // SAFETY: recv only writes initialised bytes into the buffer, and
                // MaybeUninit<u8> has the layout of u8.
                let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
                fd.get_ref().recv(uninit)
            }) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

/// An `IP_PKTINFO` control message naming the outgoing interface and the source
/// address (`ipi_spec_dst`) of one datagram.
struct PktInfo {
    /// `u64` words keep the buffer aligned for `cmsghdr`.
    buf: [u64; PktInfo::WORDS],
    len: usize,
}

impl PktInfo {
    const WORDS: usize = 8;

    fn new(index: u32, source: Ipv4Addr) -> Self {
        let mut this = PktInfo {
            buf: [0; Self::WORDS],
            len: 0,
        };
        let info_len = std::mem::size_of::<libc::in_pktinfo>() as u32;
        // SAFETY: CMSG_SPACE and CMSG_LEN only compute sizes.
        let (space, cmsg_len) = unsafe { (libc::CMSG_SPACE(info_len), libc::CMSG_LEN(info_len)) };
        let space = space as usize;
        assert!(space <= std::mem::size_of_val(&this.buf), "IP_PKTINFO fits");
        let info = libc::in_pktinfo {
            ipi_ifindex: i32::try_from(index).unwrap_or(0),
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(source).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        // SAFETY: a msghdr whose control buffer is `buf` (aligned, `space` bytes):
        // CMSG_FIRSTHDR points at its start and CMSG_DATA inside it, with room for
        // the header and an in_pktinfo.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_control = this.buf.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::IPPROTO_IP;
            (*cmsg).cmsg_type = libc::IP_PKTINFO;
            (*cmsg).cmsg_len = cmsg_len as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in_pktinfo>(), info);
        }
        this.len = space;
        this
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the buffer is plain integers; viewing its first `len` bytes is fine.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pktinfo_names_the_interface_and_the_source() {
        let p = PktInfo::new(7, Ipv4Addr::new(192, 0, 2, 51));
        let bytes = p.bytes();
        let header = std::mem::size_of::<libc::cmsghdr>();
        assert!(bytes.len() >= header + std::mem::size_of::<libc::in_pktinfo>());
        // cmsg_level and cmsg_type follow the length word.
        let len_size = std::mem::size_of::<usize>();
        let level = i32::from_ne_bytes(bytes[len_size..len_size + 4].try_into().unwrap());
        let kind = i32::from_ne_bytes(bytes[len_size + 4..len_size + 8].try_into().unwrap());
        assert_eq!((level, kind), (libc::IPPROTO_IP, libc::IP_PKTINFO));
        let data = &bytes[header..];
        assert_eq!(i32::from_ne_bytes(data[0..4].try_into().unwrap()), 7);
        assert_eq!(&data[4..8], &[192, 0, 2, 51]);
    }
}
