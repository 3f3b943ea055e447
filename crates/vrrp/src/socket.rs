//! The raw IPv4 socket for protocol 112: multicast to 224.0.0.18 joined on one
//! interface only, or unicast to configured peers; TTL 255 on everything sent.

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
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
}

impl VrrpSocket {
    /// Opens the socket on `interface` (name and index), sending from `source`.
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
        Ok(VrrpSocket { fd, destination })
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

    /// Sends one VRRP message (the kernel adds the IPv4 header) to every destination.
    pub async fn send(&self, message: &[u8]) -> io::Result<()> {
        let targets = match &self.destination {
            Destination::Multicast => vec![MULTICAST_GROUP],
            Destination::Unicast(peers) => peers.clone(),
        };
        for target in targets {
            let addr = SockAddr::from(SocketAddrV4::new(target, 0));
            loop {
                let mut guard = self.fd.writable().await?;
                match guard.try_io(|fd| fd.get_ref().send_to(message, &addr)) {
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
