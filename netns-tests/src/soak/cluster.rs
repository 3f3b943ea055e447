//! The soak's processes: `redis-server` and redha on hosts 1 and 2 (host 1
//! priority 150, host 2 priority 100, nopreempt, as [`pair::node`]), every agent
//! ever started, and the configuration each runs.

use std::fmt;
use std::time::Duration;

use crate::pair::{self, other};
use crate::redha::{self, Node};
use crate::redis::{AppendFsync, Persistence, RedisNode, RedisOpts};
use crate::{Lab, Proc};

/// What each Redis keeps on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persist {
    /// Redis 7's default RDB snapshots on both.
    Rdb,
    /// The AOF with `appendfsync always` on both.
    Aof,
    /// Host 1 with the default snapshots, host 2 with the AOF (`always`): both
    /// kinds of files meet the same faults in one run.
    Mixed,
}

impl Persist {
    /// `rdb`, `aof` or `mixed`.
    pub fn parse(s: &str) -> Option<Persist> {
        match s {
            "rdb" => Some(Persist::Rdb),
            "aof" => Some(Persist::Aof),
            "mixed" => Some(Persist::Mixed),
            _ => None,
        }
    }

    /// The persistence of `host`'s Redis.
    pub fn of(self, host: usize) -> Persistence {
        let aof = Persistence::Aof(AppendFsync::Always);
        match (self, host) {
            (Persist::Rdb, _) | (Persist::Mixed, 1) => Persistence::RdbDefault,
            (Persist::Aof, _) | (Persist::Mixed, _) => aof,
        }
    }
}

impl fmt::Display for Persist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Persist::Rdb => "rdb",
            Persist::Aof => "aof",
            Persist::Mixed => "mixed",
        })
    }
}

/// The two Redis hosts and their agents.
pub struct Cluster<'lab> {
    /// The lab.
    pub lab: &'lab Lab,
    /// Index `host - 1`.
    pub redis: Vec<RedisNode<'lab>>,
    /// Every agent ever started, with its host, in order.
    pub agents: Vec<(usize, Proc)>,
    /// The configuration each host's agent runs (or will run when started
    /// again), index `host - 1`.
    pub nodes: [Node; 2],
    /// Agents started again after the first two.
    pub restarts: usize,
}

impl<'lab> Cluster<'lab> {
    /// Starts Redis on hosts 1 and 2 with `persist`, then redha on host 1 and
    /// host 2.
    pub fn start(lab: &'lab Lab, persist: Persist) -> Self {
        let redis = (1..=2)
            .map(|h| RedisNode::start(lab, h, RedisOpts::default().persistence(persist.of(h))))
            .collect();
        let mut c = Cluster {
            lab,
            redis,
            agents: Vec::new(),
            nodes: [pair::node(lab, 1, false), pair::node(lab, 2, false)],
            restarts: 0,
        };
        c.start_agent(1);
        c.start_agent(2);
        c.restarts = 0;
        c
    }

    /// The Redis of `host`.
    pub fn redis(&self, host: usize) -> &RedisNode<'lab> {
        &self.redis[host - 1]
    }

    /// The Redis of `host`, to restart it.
    pub fn redis_mut(&mut self, host: usize) -> &mut RedisNode<'lab> {
        &mut self.redis[host - 1]
    }

    /// The configuration of `host`'s agent.
    pub fn node(&self, host: usize) -> &Node {
        &self.nodes[host - 1]
    }

    /// The configuration of `host`'s agent, to change it.
    pub fn node_mut(&mut self, host: usize) -> &mut Node {
        &mut self.nodes[host - 1]
    }

    /// Starts redha on `host` with its current configuration.
    pub fn start_agent(&mut self, host: usize) {
        let proc = redha::start(self.lab, host, self.node(host));
        self.agents.push((host, proc));
        self.restarts += 1;
    }

    /// The latest agent on `host`.
    pub fn agent(&self, host: usize) -> &Proc {
        pair::latest_agent(&self.agents, host)
    }

    /// The other Redis host.
    pub fn other(host: usize) -> usize {
        other(host)
    }

    /// The longest Master_Down_Interval of the two nodes.
    pub fn master_down_interval(&self) -> Duration {
        self.nodes
            .iter()
            .map(Node::master_down_interval)
            .max()
            .unwrap_or_default()
    }

    /// The longest address lease of the two nodes.
    pub fn address_lease(&self) -> Duration {
        self.nodes
            .iter()
            .map(Node::address_lease)
            .max()
            .unwrap_or_default()
    }

    /// Writes `host`'s configuration file again (for a reload).
    pub fn write_config(&self, host: usize) {
        redha::write_config(self.lab, host, self.node(host));
    }
}
