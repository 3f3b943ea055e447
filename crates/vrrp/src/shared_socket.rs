//! One raw VRRP socket per interface and address family, shared by the agent's
//! instances on it, as keepalived does.
//!
//! A raw socket for protocol 112 receives every VRRP datagram of its interface, so N
//! sockets make the kernel copy and queue each advert N times: with 150 instances,
//! 150 copies of each of the peer's 150 adverts a second, work done in the sender's
//! softirq. Here one socket per interface and family receives; a task of its own
//! decodes each datagram once, looks its VRID up ([`Demux`]) and queues it for that
//! instance alone; the instance runs its own checks on it ([`Filter::check`]).
//! Datagrams for no instance (undecodable, or for a VRID nobody here serves) are
//! queued for every instance on the socket, which counts them as its own socket did
//! before.
//!
//! The sockets of a thread are kept in a registry by interface index and family,
//! opened by the first instance that asks and closed with the last one's
//! [`SocketShare`]. Sending goes through the same socket: the source and the
//! destination are each instance's, given with every send.
//!
//! [`Filter::check`]: crate::receive::Filter::check

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::warn;

use crate::netlink::Family;
use crate::packet::Received;
use crate::receive::{Demux, Routed};
use crate::socket::{Destination, VrrpSocket};
use crate::stats::DropReason;

/// What the shared socket hands an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A decoded advert for the instance's VRID, not yet checked.
    Advert(Received),
    /// A datagram for no instance: undecodable, or for a VRID none serves; with its
    /// source when it is known.
    Dropped(DropReason, Option<IpAddr>),
}

/// How many deliveries wait for one instance at most; more are dropped, as a full
/// socket buffer drops datagrams. An instance takes them as they come, so this
/// fills only when its task does not run for many advert intervals.
const QUEUE_LIMIT: usize = 64;

/// How long the receive task waits after a failed receive before the next one (a
/// deleted interface can make every call fail at once).
const ERROR_PAUSE: Duration = Duration::from_millis(100);

/// At most one warning of each kind per this span.
const WARN_EVERY: Duration = Duration::from_secs(10);

thread_local! {
    /// This thread's shared sockets, by interface index and family.
    static SOCKETS: RefCell<HashMap<(u32, Family), Weak<Shared>>> = RefCell::new(HashMap::new());
}

/// One instance's queue on a shared socket.
#[derive(Debug, Default)]
struct Member {
    queue: Mutex<VecDeque<Delivery>>,
    notify: Notify,
}

impl Member {
    /// Queues a delivery; false when the queue is full and it was dropped.
    fn push(&self, delivery: Delivery) -> bool {
        let mut queue = lock(&self.queue);
        if queue.len() >= QUEUE_LIMIT {
            return false;
        }
        queue.push_back(delivery);
        drop(queue);
        self.notify.notify_one();
        true
    }
}

/// What the receive task and the members share.
#[derive(Debug)]
struct Inner {
    socket: VrrpSocket,
    /// The interface's name, for the log.
    interface: String,
    /// The members of each VRID (two while the agent replaces an instance: it starts
    /// the new one before it stops the old one).
    routes: Mutex<Demux<Vec<Arc<Member>>>>,
    /// How many members want the multicast group; joined while any does.
    multicast: Mutex<usize>,
}

/// A socket in the registry: the receive task lives as long as this does.
#[derive(Debug)]
struct Shared {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An instance's share of the socket of its interface and family: adverts for its
/// VRID come in through [`SocketShare::recv`], its own go out through
/// [`SocketShare::send`]. Dropping it leaves the socket (the last one closes it).
#[derive(Debug)]
pub struct SocketShare {
    shared: Arc<Shared>,
    member: Arc<Member>,
    vrid: u8,
    /// Whether this member counts towards the group membership.
    multicast: bool,
}

impl SocketShare {
    /// Joins the socket of `interface` (name and index) for `family`, opening it if
    /// this thread has none yet, to receive the adverts of `vrid`; with `multicast`,
    /// the socket is in the VRRP group while this share lives.
    pub fn join(
        interface: &str,
        index: u32,
        family: Family,
        vrid: u8,
        multicast: bool,
    ) -> io::Result<Self> {
        let shared = shared_socket(interface, index, family, None)?;
        Self::member_of(shared, vrid, multicast)
    }

    /// A share of a fresh socket for the same VRID on the interface as it is now
    /// (deleted and created again, whatever its index: the multicast membership
    /// died with the old one). The first instance to reopen opens the new socket; the
    /// others join it. This share is left when the returned one replaces it.
    pub fn reopen(&self, interface: &str, index: u32) -> io::Result<Self> {
        let family = self.shared.inner.socket.family();
        let shared = shared_socket(interface, index, family, Some(&self.shared))?;
        Self::member_of(shared, self.vrid, self.multicast)
    }

    fn member_of(shared: Arc<Shared>, vrid: u8, multicast: bool) -> io::Result<Self> {
        let member = Arc::new(Member::default());
        {
            let mut routes = lock(&shared.inner.routes);
            match routes.get_mut(vrid) {
                Some(members) => members.push(member.clone()),
                None => {
                    // Free, as get_mut just said.
                    let _ = routes.insert(vrid, vec![member.clone()]);
                }
            }
        }
        let mut share = SocketShare {
            shared,
            member,
            vrid,
            multicast: false,
        };
        // On failure the share is dropped, which takes the route back.
        share.set_multicast(multicast)?;
        Ok(share)
    }

    /// The index of the interface the socket is bound to.
    pub fn index(&self) -> u32 {
        self.shared.inner.socket.index()
    }

    /// Whether the socket should be in the multicast group for this instance (its
    /// adverts go to the group rather than to unicast peers).
    pub fn set_multicast(&mut self, multicast: bool) -> io::Result<()> {
        if multicast == self.multicast {
            return Ok(());
        }
        let socket = &self.shared.inner.socket;
        let mut members = lock(&self.shared.inner.multicast);
        if multicast {
            if *members == 0 {
                socket.join()?;
            }
            *members += 1;
        } else {
            *members -= 1;
            if *members == 0 {
                socket.leave()?;
            }
        }
        self.multicast = multicast;
        Ok(())
    }

    /// The next delivery for this instance.
    ///
    /// Cancel-safe: a delivery is taken from the queue only when it is returned.
    pub async fn recv(&self) -> Delivery {
        loop {
            if let Some(delivery) = lock(&self.member.queue).pop_front() {
                return delivery;
            }
            self.member.notify.notified().await;
        }
    }

    /// Sends one advert from `source` to `destination` (see [`VrrpSocket::send`]).
    pub async fn send(
        &self,
        source: IpAddr,
        destination: &Destination,
        encode: impl Fn(IpAddr, IpAddr) -> Vec<u8>,
    ) -> io::Result<()> {
        self.shared
            .inner
            .socket
            .send(source, destination, encode)
            .await
    }
}

impl Drop for SocketShare {
    fn drop(&mut self) {
        if let Err(e) = self.set_multicast(false) {
            warn!(interface = %self.shared.inner.interface, error = %e, "leaving the VRRP multicast group failed");
        }
        let mut routes = lock(&self.shared.inner.routes);
        if let Some(members) = routes.get_mut(self.vrid) {
            members.retain(|m| !Arc::ptr_eq(m, &self.member));
            if members.is_empty() {
                routes.remove(self.vrid);
            }
        }
    }
}

/// The socket of this interface and family, from the registry or newly opened (also
/// when the registry's is `stale`).
fn shared_socket(
    interface: &str,
    index: u32,
    family: Family,
    stale: Option<&Arc<Shared>>,
) -> io::Result<Arc<Shared>> {
    SOCKETS.with(|sockets| {
        let mut sockets = sockets.borrow_mut();
        sockets.retain(|_, shared| shared.strong_count() > 0);
        let existing = sockets
            .get(&(index, family))
            .and_then(Weak::upgrade)
            .filter(|shared| !shared.task.is_finished())
            .filter(|shared| stale.is_none_or(|stale| !Arc::ptr_eq(shared, stale)));
        if let Some(shared) = existing {
            return Ok(shared);
        }
        let inner = Arc::new(Inner {
            socket: VrrpSocket::open(interface, index, family)?,
            interface: interface.to_string(),
            routes: Mutex::new(Demux::new()),
            multicast: Mutex::new(0),
        });
        let task = tokio::spawn(receive(inner.clone()));
        let shared = Arc::new(Shared { inner, task });
        sockets.insert((index, family), Arc::downgrade(&shared));
        Ok(shared)
    })
}

/// The receive task: reads the socket and queues each datagram for its instance.
async fn receive(inner: Arc<Inner>) {
    let mut buf = vec![0u8; 2048];
    let (mut last_error_warn, mut last_full_warn) = (None::<Instant>, None::<Instant>);
    let due = |last: &mut Option<Instant>| {
        let now = Instant::now();
        let due = last.is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
        if due {
            *last = Some(now);
        }
        due
    };
    loop {
        let arrival = match inner.socket.recv(&mut buf).await {
            Ok(arrival) => arrival,
            Err(e) => {
                if due(&mut last_error_warn) {
                    warn!(interface = %inner.interface, error = %e, "receiving on the VRRP socket failed");
                }
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        let routes = lock(&inner.routes);
        let full = match routes.route(arrival.datagram(&buf)) {
            Routed::To(members, received) => deliver(members, &Delivery::Advert(received)),
            Routed::Dropped(reason, source) => {
                let dropped = Delivery::Dropped(reason, source);
                routes
                    .values()
                    .fold(0, |full, members| full + deliver(members, &dropped))
            }
        };
        drop(routes);
        if full > 0 && due(&mut last_full_warn) {
            warn!(interface = %inner.interface, "an instance did not take its adverts in time: dropped");
        }
    }
}

/// Queues `delivery` for each of `members`; how many queues were full.
fn deliver(members: &[Arc<Member>], delivery: &Delivery) -> usize {
    members
        .iter()
        .filter(|member| !member.push(delivery.clone()))
        .count()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
