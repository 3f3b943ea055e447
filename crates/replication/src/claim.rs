//! What an agent says about itself through its own Redis: the name of its
//! connection (`CLIENT SETNAME`), which the peer's agent reads with `CLIENT LIST`.
//!
//! VRRP tells a backup which router is master, but a master hears nothing from a
//! backup, and with one-way multicast loss two routers can both be master while both
//! Redis servers still reach each other. The claim lets each agent see the other's
//! VRRP state and priority through the Redis connection they already share, so that
//! exactly one of two VRRP masters makes its Redis the master, by VRRP's own
//! tie-break (higher priority, then higher address). An agent that is not running
//! has no connection, hence no claim; an agent that is stopped or hung keeps its
//! connection but stops using it, and its claim goes stale ([`PeerClaim`]).
//!
//! A claim also carries the history the agent vouches for when its Redis came back
//! from disk without its replication ids (see [`Vouched`]).
//!
//! The name is `redha/1/<STATE>/<priority>/<address>` with an optional
//! `/vouch/<master|replica>/<replid>/<offset>/<replid2>/<second_repl_offset>`: no
//! spaces (Redis refuses them).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use health::ClientEntry;

const PREFIX: &str = "redha/1/";

/// The VRRP state an agent claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimState {
    /// It holds the VIP.
    Master,
    /// It waits for the master to fail.
    Backup,
    /// It is out of the election.
    Fault,
}

impl ClaimState {
    fn as_str(self) -> &'static str {
        match self {
            ClaimState::Master => "MASTER",
            ClaimState::Backup => "BACKUP",
            ClaimState::Fault => "FAULT",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "MASTER" => Some(ClaimState::Master),
            "BACKUP" => Some(ClaimState::Backup),
            "FAULT" => Some(ClaimState::Fault),
            _ => None,
        }
    }
}

/// The history an agent vouches for, recorded in its state file before its Redis
/// restarted from disk and lost its replication ids (Redis does not keep them in an
/// AOF). A master vouches for all of that history: nobody can hold more of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vouched {
    /// The role the Redis had when last recorded.
    pub was_master: bool,
    /// The history id recorded.
    pub replid: String,
    /// The offset recorded.
    pub offset: u64,
    /// The history it continued (all zeros: none).
    pub replid2: String,
    /// Where it left that history, plus one (-1: none).
    pub second_repl_offset: i64,
}

/// Is `s` a 40-character hex replication id?
fn is_replid(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One agent's claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Its VRRP state.
    pub state: ClaimState,
    /// Its configured priority.
    pub priority: u8,
    /// Its primary address (VRRP's tie-break).
    pub address: IpAddr,
    /// The history it vouches for, if its Redis lost its ids.
    pub vouched: Option<Vouched>,
}

impl Claim {
    /// Does this claim win VRRP's election against `other`: higher priority, then
    /// higher primary address?
    pub fn outranks(&self, other: &Claim) -> bool {
        (self.priority, self.address) > (other.priority, other.address)
    }

    /// The connection name that carries this claim.
    pub fn to_name(&self) -> String {
        self.to_string()
    }

    /// Reads a claim from a connection name; `None` for any other name.
    pub fn parse(name: &str) -> Option<Claim> {
        let rest = name.strip_prefix(PREFIX)?;
        let mut parts = rest.split('/');
        let state = ClaimState::parse(parts.next()?)?;
        let priority = parts.next()?.parse().ok()?;
        let address = parts.next()?.parse().ok()?;
        let vouched = match parts.next() {
            None => None,
            Some("vouch") => {
                let was_master = match parts.next()? {
                    "master" => true,
                    "replica" => false,
                    _ => return None,
                };
                let replid = parts.next()?.to_string();
                let offset = parts.next()?.parse().ok()?;
                let replid2 = parts.next()?.to_string();
                let second_repl_offset = parts.next()?.parse().ok()?;
                if !is_replid(&replid) || !is_replid(&replid2) {
                    return None;
                }
                Some(Vouched {
                    was_master,
                    replid,
                    offset,
                    replid2,
                    second_repl_offset,
                })
            }
            Some(_) => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Claim {
            state,
            priority,
            address,
            vouched,
        })
    }
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{}/{}/{}",
            self.state.as_str(),
            self.priority,
            self.address
        )?;
        if let Some(v) = &self.vouched {
            let role = if v.was_master { "master" } else { "replica" };
            write!(
                f,
                "/vouch/{role}/{}/{}/{}/{}",
                v.replid, v.offset, v.replid2, v.second_repl_offset
            )?;
        }
        Ok(())
    }
}

/// The peer agent's claim as read off the peer's Redis (`CLIENT LIST`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerClaim {
    /// No connection carries a claim: no agent of ours runs there.
    Absent,
    /// A claim on a connection its agent keeps using.
    Live(Claim),
    /// A claim on a connection idle for `idle`, at least the bound given to
    /// [`PeerClaim::from_clients`]: the agent that made it is not acting
    /// (stopped, hung, or its runtime stalled), so it speaks for nobody.
    Stale {
        /// What it claimed.
        claim: Claim,
        /// How long its connection has been idle (Redis counts whole seconds).
        idle: Duration,
    },
}

impl PeerClaim {
    /// The claim among `clients` (the freshest, if a lingering connection carries
    /// an older one), stale once its connection has been idle for `stale_after`
    /// or longer. A connection without a readable `idle` counts as in use.
    pub fn from_clients(clients: &[ClientEntry], stale_after: Duration) -> PeerClaim {
        let idle = |c: &ClientEntry| {
            c.field("idle")
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(Duration::ZERO, Duration::from_secs)
        };
        let freshest = clients
            .iter()
            .filter_map(|c| Claim::parse(&c.name).map(|claim| (idle(c), claim)))
            .min_by_key(|(idle, _)| *idle);
        match freshest {
            None => PeerClaim::Absent,
            Some((idle, claim)) if idle >= stale_after => PeerClaim::Stale { claim, idle },
            Some((_, claim)) => PeerClaim::Live(claim),
        }
    }

    /// The claim, if its agent is acting on it.
    pub fn live(&self) -> Option<&Claim> {
        match self {
            PeerClaim::Live(claim) => Some(claim),
            PeerClaim::Absent | PeerClaim::Stale { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(priority: u8, address: &str) -> Claim {
        Claim {
            state: ClaimState::Master,
            priority,
            address: address.parse().unwrap(),
            vouched: None,
        }
    }

    #[test]
    fn names_round_trip() {
        let mut c = claim(150, "192.0.2.11");
        assert_eq!(c.to_name(), "redha/1/MASTER/150/192.0.2.11");
        assert_eq!(Claim::parse(&c.to_name()), Some(c.clone()));
        c.vouched = Some(Vouched {
            was_master: true,
            replid: "a".repeat(40),
            offset: 1234,
            replid2: "0".repeat(40),
            second_repl_offset: -1,
        });
        c.state = ClaimState::Fault;
        c.address = "2001:db8::27".parse().unwrap();
        assert_eq!(Claim::parse(&c.to_name()), Some(c));
    }

    #[test]
    fn other_names_are_no_claim() {
        for name in [
            "",
            "app",
            "redha/1/",
            "redha/1/MASTER/150",
            "redha/1/LEADER/150/192.0.2.11",
            "redha/1/MASTER/256/192.0.2.11",
            "redha/1/MASTER/150/not-an-ip",
            "redha/1/MASTER/150/192.0.2.11/extra",
            "redha/1/MASTER/150/192.0.2.11/vouch/master/xyz/1/0/-1",
            "redha/1/MASTER/150/192.0.2.11/vouch/master/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/1",
            "redha/2/MASTER/150/192.0.2.11",
        ] {
            assert_eq!(Claim::parse(name), None, "{name:?}");
        }
    }

    #[test]
    fn vrrp_tie_break() {
        assert!(claim(150, "192.0.2.11").outranks(&claim(100, "192.0.2.12")));
        assert!(claim(100, "192.0.2.12").outranks(&claim(100, "192.0.2.11")));
        assert!(!claim(100, "192.0.2.11").outranks(&claim(100, "192.0.2.11")));
    }

    #[test]
    fn an_idle_claim_is_stale() {
        let line = |id: u32, name: &str, idle: u64| {
            format!(
                "id={id} addr=192.0.2.12:4{id:04} laddr=192.0.2.11:6379 fd=8 name={name} \
                 age=30 idle={idle} flags=N db=0 cmd=info user=default"
            )
        };
        let list = |lines: &[String]| health::parse_client_list(&lines.join("\n")).unwrap();
        let name = "redha/1/MASTER/150/192.0.2.11";
        let stale_after = Duration::from_secs(3);
        let live = list(&[line(1, "app", 500), line(2, name, 1)]);
        assert_eq!(
            PeerClaim::from_clients(&live, stale_after),
            PeerClaim::Live(claim(150, "192.0.2.11"))
        );
        let stale = list(&[line(2, name, 3)]);
        assert_eq!(
            PeerClaim::from_clients(&stale, stale_after),
            PeerClaim::Stale {
                claim: claim(150, "192.0.2.11"),
                idle: Duration::from_secs(3)
            }
        );
        assert_eq!(PeerClaim::from_clients(&stale, stale_after).live(), None);
        // A lingering older connection does not hide the one in use.
        let both = list(&[
            line(2, name, 40),
            line(3, "redha/1/BACKUP/150/192.0.2.11", 0),
        ]);
        assert_eq!(
            PeerClaim::from_clients(&both, stale_after)
                .live()
                .map(|c| c.state),
            Some(ClaimState::Backup)
        );
        assert_eq!(
            PeerClaim::from_clients(&list(&[line(1, "app", 0)]), stale_after),
            PeerClaim::Absent
        );
    }
}
