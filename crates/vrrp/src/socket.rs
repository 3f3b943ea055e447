//! The raw socket for protocol 112, IPv4 or IPv6: multicast to 224.0.0.18 or ff02::12
//! joined on one interface only, or unicast to configured peers; TTL (hop limit) 255
//! on everything sent, and every advert sent from the instance's source address
//! (`unicast_src_ip` or the interface's primary address: IPv6, its link-local one),
//! whatever address the kernel would pick.
//!
//! An IPv4 raw socket hands over whole datagrams; an IPv6 one the payload alone, so
//! the source comes from the sender's address, and the destination and the hop limit
//! from control messages (`IPV6_PKTINFO`, `IPV6_HOPLIMIT`), for the receive checks and
//! the pseudo-header checksum, which the agent computes and checks itself.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use socket2::{
    Domain, InterfaceIndexOrAddress, MaybeUninitSlice, MsgHdr, MsgHdrMut, Protocol, SockAddr,
    Socket, Type,
};
use tokio::io::unix::AsyncFd;

use crate::netlink::Family;
use crate::packet::{IPPROTO_VRRP, MULTICAST_GROUP, MULTICAST_GROUP_V6, TTL};
use crate::receive::Datagram;

/// Where adverts go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The VRRP multicast group of the source's family.
    Multicast,
    /// Each of these peers, one datagram each.
    Unicast(Vec<IpAddr>),
}

/// What one receive produced: how much of the buffer it filled and, over IPv6, what
/// the socket said of the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// A whole IPv4 datagram of `len` bytes.
    Ipv4 {
        /// Bytes received.
        len: usize,
    },
    /// An IPv6 payload of `len` bytes.
    Ipv6 {
        /// Bytes received.
        len: usize,
        /// The sender.
        source: Ipv6Addr,
        /// The destination (`IPV6_PKTINFO`; the group when the kernel gave none).
        destination: Ipv6Addr,
        /// The hop limit it arrived with (`IPV6_HOPLIMIT`; 0 when the kernel gave
        /// none, which the receive checks drop).
        hop_limit: u8,
    },
}

impl Arrival {
    /// The datagram in `buf`, the buffer it was received into.
    pub fn datagram<'a>(&self, buf: &'a [u8]) -> Datagram<'a> {
        match *self {
            Arrival::Ipv4 { len } => Datagram::Ipv4(&buf[..len]),
            Arrival::Ipv6 {
                len,
                source,
                destination,
                hop_limit,
            } => Datagram::Ipv6 {
                payload: &buf[..len],
                source,
                destination,
                hop_limit,
            },
        }
    }
}

/// A raw VRRP socket bound to one interface, of one address family. It holds no
/// instance's state: the source, the destination and the multicast membership are the
/// caller's, so that the instances on one interface can share it
/// ([`crate::shared_socket`]).
#[derive(Debug)]
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    index: u32,
    family: Family,
}

impl VrrpSocket {
    /// Opens the socket on `interface` (name and index), for `family`. It joins no
    /// group: see [`VrrpSocket::join`].
    ///
    /// The socket is not bound to an address (a bound raw socket receives only
    /// datagrams addressed to it, not the multicast group): each advert carries its
    /// source and interface in an `IP_PKTINFO` (`IPV6_PKTINFO`) control message
    /// instead, which the kernel puts in the IP header as long as the address is one
    /// of the host's.
    pub fn open(interface: &str, index: u32, family: Family) -> io::Result<Self> {
        let domain = match family {
            Family::V4 => Domain::IPV4,
            Family::V6 => Domain::IPV6,
        };
        let socket = Socket::new(
            domain,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )?;
        socket.set_nonblocking(true)?;
        socket.bind_device(Some(interface.as_bytes()))?;
        match family {
            Family::V4 => {
                socket.set_ttl_v4(u32::from(TTL))?;
                socket.set_multicast_ttl_v4(u32::from(TTL))?;
                socket.set_multicast_loop_v4(false)?;
                // Receive only the groups this socket joined, not every group of the
                // host.
                socket.set_multicast_all_v4(false)?;
            }
            Family::V6 => {
                socket.set_unicast_hops_v6(u32::from(TTL))?;
                socket.set_multicast_hops_v6(u32::from(TTL))?;
                socket.set_multicast_loop_v6(false)?;
                socket.set_multicast_all_v6(false)?;
                socket.set_multicast_if_v6(index)?;
                socket.set_recv_hoplimit_v6(true)?;
                set_recv_pktinfo_v6(&socket)?;
            }
        }
        // SAFETY: the socket owns its descriptor, which stays open and the same until
        // the AsyncFd drops it.
        let fd = unsafe { AsyncFd::register(socket) }.map_err(|e| e.into_parts().1)?;
        Ok(VrrpSocket { fd, index, family })
    }

    /// The index of the interface it is bound to.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Its address family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Joins the VRRP multicast group of its family on its interface.
    pub fn join(&self) -> io::Result<()> {
        let socket = self.fd.get_ref();
        match self.family {
            Family::V4 => socket.join_multicast_v4_n(
                &MULTICAST_GROUP,
                &InterfaceIndexOrAddress::Index(self.index),
            ),
            Family::V6 => socket.join_multicast_v6(&MULTICAST_GROUP_V6, self.index),
        }
    }

    /// Leaves the group again.
    pub fn leave(&self) -> io::Result<()> {
        let socket = self.fd.get_ref();
        match self.family {
            Family::V4 => socket.leave_multicast_v4_n(
                &MULTICAST_GROUP,
                &InterfaceIndexOrAddress::Index(self.index),
            ),
            Family::V6 => socket.leave_multicast_v6(&MULTICAST_GROUP_V6, self.index),
        }
    }

    /// Sends one VRRP message from `source` (the kernel adds the IP header) to every
    /// target of `destination`; `encode(source, target)` writes it for each (a VRRPv3
    /// checksum covers both addresses).
    pub async fn send(
        &self,
        source: IpAddr,
        destination: &Destination,
        encode: impl Fn(IpAddr, IpAddr) -> Vec<u8>,
    ) -> io::Result<()> {
        let group = match source {
            IpAddr::V4(_) => IpAddr::V4(MULTICAST_GROUP),
            IpAddr::V6(_) => IpAddr::V6(MULTICAST_GROUP_V6),
        };
        let targets = match destination {
            Destination::Multicast => std::slice::from_ref(&group),
            Destination::Unicast(peers) => peers.as_slice(),
        };
        let control = PktInfo::new(self.index, source);
        for &target in targets {
            let message = encode(source, target);
            let buffers = [IoSlice::new(&message)];
            let addr = match target {
                IpAddr::V4(v4) => SockAddr::from(SocketAddrV4::new(v4, 0)),
                // Link-local and multicast destinations need the interface as scope.
                IpAddr::V6(v6) => SockAddr::from(SocketAddrV6::new(v6, 0, 0, self.index)),
            };
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

    /// Receives one datagram into `buf`: a whole IPv4 datagram (header included), or
    /// an IPv6 payload with its addresses and hop limit.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Arrival> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| match self.family {
                Family::V4 => {
                    // SAFETY: recv only writes initialised bytes into the buffer, and
                    // MaybeUninit<u8> has the layout of u8.
                    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
                    fd.get_ref().recv(uninit).map(|len| Arrival::Ipv4 { len })
                }
                Family::V6 => recv_v6(fd.get_ref(), buf),
            }) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

/// `IPV6_RECVPKTINFO`: the destination of each datagram comes as a control message.
fn set_recv_pktinfo_v6(socket: &Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt with a valid descriptor and a c_int of the right size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVPKTINFO,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One `recvmsg` on an IPv6 raw socket: the payload into `buf`, the source from the
/// address, the destination and the hop limit from the control messages.
fn recv_v6(socket: &Socket, buf: &mut [u8]) -> io::Result<Arrival> {
    // u64 words keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    // SAFETY: a zeroed sockaddr_storage is a valid (empty) address to receive into.
    let mut from = unsafe { SockAddr::try_init(|_, _| Ok(())) }?.1;
    // SAFETY: recvmsg only writes initialised bytes; MaybeUninit<u8> has u8's layout.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    let control_bytes = unsafe {
        std::slice::from_raw_parts_mut(
            control.as_mut_ptr().cast::<MaybeUninit<u8>>(),
            std::mem::size_of_val(&control),
        )
    };
    let mut bufs = [MaybeUninitSlice::new(uninit)];
    let mut msg = MsgHdrMut::new()
        .with_addr(&mut from)
        .with_buffers(&mut bufs)
        .with_control(control_bytes);
    let len = socket.recvmsg(&mut msg, 0)?;
    let control_len = msg.control_len();
    let source = from
        .as_socket_ipv6()
        .map_or(Ipv6Addr::UNSPECIFIED, |a| *a.ip());
    let (mut destination, mut hop_limit) = (MULTICAST_GROUP_V6, 0u8);
    // SAFETY: a msghdr over the control buffer the kernel filled (`control_len`
    // bytes); CMSG_FIRSTHDR/CMSG_NXTHDR stay inside it, and each data read is of the
    // type its level and kind name.
    unsafe {
        let mut hdr: libc::msghdr = std::mem::zeroed();
        hdr.msg_control = control.as_mut_ptr().cast();
        hdr.msg_controllen = control_len as _;
        let mut cmsg = libc::CMSG_FIRSTHDR(&hdr);
        while !cmsg.is_null() {
            let (level, kind) = ((*cmsg).cmsg_level, (*cmsg).cmsg_type);
            if level == libc::IPPROTO_IPV6 && kind == libc::IPV6_HOPLIMIT {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                hop_limit = u8::try_from(v).unwrap_or(0);
            } else if level == libc::IPPROTO_IPV6 && kind == libc::IPV6_PKTINFO {
                let info =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>());
                destination = Ipv6Addr::from(info.ipi6_addr.s6_addr);
            }
            cmsg = libc::CMSG_NXTHDR(&hdr, cmsg);
        }
    }
    Ok(Arrival::Ipv6 {
        len,
        source,
        destination,
        hop_limit,
    })
}

/// An `IP_PKTINFO` (`IPV6_PKTINFO`) control message naming the outgoing interface
/// and the source address of one datagram.
struct PktInfo {
    /// `u64` words keep the buffer aligned for `cmsghdr`.
    buf: [u64; PktInfo::WORDS],
    len: usize,
}

impl PktInfo {
    const WORDS: usize = 8;

    fn new(index: u32, source: IpAddr) -> Self {
        match source {
            IpAddr::V4(v4) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: i32::try_from(index).unwrap_or(0),
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(v4).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                Self::with(libc::IPPROTO_IP, libc::IP_PKTINFO, info)
            }
            IpAddr::V6(v6) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: v6.octets(),
                    },
                    ipi6_ifindex: index,
                };
                Self::with(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, info)
            }
        }
    }

    fn with<T>(level: libc::c_int, kind: libc::c_int, info: T) -> Self {
        let mut this = PktInfo {
            buf: [0; Self::WORDS],
            len: 0,
        };
        let info_len = std::mem::size_of::<T>() as u32;
        // SAFETY: CMSG_SPACE and CMSG_LEN only compute sizes.
        let (space, cmsg_len) = unsafe { (libc::CMSG_SPACE(info_len), libc::CMSG_LEN(info_len)) };
        let space = space as usize;
        assert!(
            space <= std::mem::size_of_val(&this.buf),
            "the pktinfo fits"
        );
        // SAFETY: a msghdr whose control buffer is `buf` (aligned, `space` bytes):
        // CMSG_FIRSTHDR points at its start and CMSG_DATA inside it, with room for
        // the header and a T.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_control = this.buf.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = level;
            (*cmsg).cmsg_type = kind;
            (*cmsg).cmsg_len = cmsg_len as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<T>(), info);
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
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn pktinfo_names_the_interface_and_the_source() {
        let p = PktInfo::new(7, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 51)));
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
