//! Running `redha` nodes in a [`Lab`]: a configuration per node written into the lab's
//! directory, and the timing bounds the tests derive from protocol math.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::redis::AclUser;
use crate::{Lab, Proc, redha_bin};

/// The virtual address the tests use.
pub const VIP: &str = "192.0.2.100";
/// The IPv6 virtual address of [`Node::v6`] (documentation prefix).
pub const VIP6: &str = "2001:db8::100";

/// One node's `[vrrp]` settings.
#[derive(Clone, Debug)]
pub struct Node {
    /// Virtual router id.
    pub vrid: u8,
    /// Priority.
    pub priority: u8,
    /// The VRRP version, 2 or 3.
    pub version: u8,
    /// Advertisement interval (whole seconds with version 2).
    pub advert_int: Duration,
    /// Preempt a lower-priority master.
    pub preempt: bool,
    /// Virtual addresses with prefix.
    pub vips: Vec<String>,
    /// Simple password.
    pub auth_pass: Option<String>,
    /// Unicast peers (empty: multicast).
    pub unicast_peers: Vec<IpAddr>,
    /// Extra lines appended to `[vrrp]`.
    pub extra: String,
    /// `[redis]`, `[replication]` and `[state_log]`; `None` runs plain VRRP.
    pub redis: Option<RedisSettings>,
}

/// The Redis side of a node's configuration.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// `[redis] address` (the local Redis).
    pub address: String,
    /// `[replication] peer`; `None` leaves out `[replication]`.
    pub peer: Option<String>,
    /// `[state_log] path`, if any.
    pub state_log: Option<PathBuf>,
    /// Extra lines for `[redis]` (check_interval, fall, ...).
    pub redis_extra: String,
    /// Extra lines for `[replication]` (catch_up_timeout, announce).
    pub replication_extra: String,
}

impl RedisSettings {
    /// The local Redis on 127.0.0.1:6379, replicating with `peer`:6379, with a state
    /// log at `state_log` and a `[replication] state_dir` beside it (the log's name
    /// without `.log`, plus `.d`), where the state file and saved datasets go.
    pub fn pair(peer: Ipv4Addr, state_log: PathBuf) -> Self {
        let state_dir = state_log.with_extension("d");
        RedisSettings {
            address: "127.0.0.1:6379".into(),
            peer: Some(format!("{peer}:6379")),
            state_log: Some(state_log),
            redis_extra: String::new(),
            replication_extra: format!("state_dir = {:?}\n", state_dir.display().to_string()),
        }
    }

    /// The `[replication] state_dir` that [`RedisSettings::pair`] set.
    pub fn state_dir(&self) -> Option<PathBuf> {
        self.state_log.as_ref().map(|log| log.with_extension("d"))
    }

    /// Logs in to both Redis as `user` (`[redis] username` and `password`;
    /// the same credentials serve the peer's Redis).
    pub fn with_user(mut self, user: &AclUser) -> Self {
        self.redis_extra.push_str(&user.redha_keys());
        self
    }
}

impl Default for Node {
    fn default() -> Self {
        Node {
            vrid: 51,
            priority: 100,
            version: 2,
            advert_int: Duration::from_secs(1),
            preempt: true,
            vips: vec![format!("{VIP}/24")],
            auth_pass: None,
            unicast_peers: Vec::new(),
            extra: String::new(),
            redis: None,
        }
    }
}

impl Node {
    /// A node with this priority and the defaults otherwise.
    pub fn with_priority(priority: u8) -> Self {
        Node {
            priority,
            ..Node::default()
        }
    }

    /// The TOML text of this node's configuration.
    pub fn toml(&self) -> String {
        let mut s = String::from("[vrrp]\ninterface = \"eth0\"\n");
        let _ = writeln!(s, "virtual_router_id = {}", self.vrid);
        let _ = writeln!(s, "priority = {}", self.priority);
        if self.version != 2 {
            let _ = writeln!(s, "version = {}", self.version);
        }
        let _ = writeln!(s, "advert_int = \"{}ms\"", self.advert_int.as_millis());
        let _ = writeln!(s, "preempt = {}", self.preempt);
        let vips: Vec<String> = self.vips.iter().map(|v| format!("{v:?}")).collect();
        let _ = writeln!(s, "virtual_ipaddresses = [{}]", vips.join(", "));
        if let Some(pass) = &self.auth_pass {
            let _ = writeln!(s, "auth_pass = {pass:?}");
        }
        if !self.unicast_peers.is_empty() {
            let peers: Vec<String> = self
                .unicast_peers
                .iter()
                .map(|p| format!("\"{p}\""))
                .collect();
            let _ = writeln!(s, "unicast_peers = [{}]", peers.join(", "));
        }
        s.push_str(&self.extra);
        if let Some(r) = &self.redis {
            let _ = writeln!(s, "\n[redis]\naddress = {:?}", r.address);
            s.push_str(&r.redis_extra);
            if let Some(peer) = &r.peer {
                let _ = writeln!(s, "\n[replication]\npeer = {peer:?}");
                s.push_str(&r.replication_extra);
            }
            if let Some(path) = &r.state_log {
                let _ = writeln!(s, "\n[state_log]\npath = {:?}", path.display().to_string());
            }
        }
        s
    }

    /// A VRRPv3 node advertising every `advert_int`, with the defaults otherwise.
    pub fn v3(advert_int: Duration) -> Self {
        Node {
            version: 3,
            advert_int,
            ..Node::default()
        }
    }

    /// A VRRPv3 node over IPv6 advertising every `advert_int`, with [`VIP6`]/64.
    pub fn v6(advert_int: Duration) -> Self {
        Node {
            vips: vec![format!("{VIP6}/64")],
            ..Node::v3(advert_int)
        }
    }

    /// Skew_Time of this node: (256 - priority) / 256 seconds with VRRPv2, that
    /// times advert_int with VRRPv3 (whose backups take the master's interval; the
    /// tests give both nodes the same).
    pub fn skew_time(&self) -> Duration {
        let unit = if self.version == 3 {
            self.advert_int
        } else {
            Duration::from_secs(1)
        };
        unit * (256 - u32::from(self.priority)) / 256
    }

    /// Master_Down_Interval of this node: 3 x advert_int + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        self.advert_int * 3 + self.skew_time()
    }

    /// advert_int as keepalived writes it: decimal seconds.
    pub fn keepalived_advert_int(&self) -> String {
        format!("{}", self.advert_int.as_secs_f64())
    }

    /// The lifetime redha gives its virtual addresses: Master_Down_Interval rounded up
    /// to whole seconds.
    pub fn address_lease(&self) -> Duration {
        let mdi = self.master_down_interval();
        Duration::from_secs(mdi.as_secs() + u64::from(mdi.subsec_nanos() > 0))
    }
}

/// The margin the tests add to protocol bounds: process start-up, netlink, polling.
pub const MARGIN: Duration = Duration::from_millis(1500);

/// Writes node `i`'s configuration into the lab directory and returns its path.
/// Each node gets a control socket of its own in the lab directory (the
/// namespaces share one filesystem): [`control_socket`].
pub fn write_config(lab: &Lab, i: usize, node: &Node) -> PathBuf {
    let path = lab.dir().join(format!("redha-h{i}.toml"));
    let text = format!(
        "{}\n[control]\nsocket = {:?}\n",
        node.toml(),
        control_socket(lab, i).display().to_string()
    );
    std::fs::write(&path, text).expect("write the node's configuration");
    path
}

/// The control socket of the redha node on host `i`.
pub fn control_socket(lab: &Lab, i: usize) -> PathBuf {
    lab.dir().join(format!("redha-h{i}.sock"))
}

/// Starts `redha --config` on host `i`, logging at debug level to `redha-h{i}.log`.
pub fn start(lab: &Lab, i: usize, node: &Node) -> Proc {
    start_file(lab, i, &write_config(lab, i, node), &[])
}

/// Starts `redha --config path` on host `i` with extra environment, logging at
/// debug level to `redha-h{i}.log`.
pub fn start_file(lab: &Lab, i: usize, path: &std::path::Path, env: &[(&str, &str)]) -> Proc {
    let mut command = Command::new(redha_bin());
    command
        .arg("--config")
        .arg(path)
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        command.env(k, v);
    }
    lab.spawn_command(i, &format!("redha-h{i}"), &command)
}

/// The counters line that redha logs on SIGUSR1, as key=value pairs.
pub fn counters(proc: &Proc) -> std::collections::HashMap<String, u64> {
    let before = proc.log().matches(" counters").count();
    assert!(proc.signal(libc::SIGUSR1));
    crate::wait_until(Duration::from_secs(3), Duration::from_millis(50), || {
        proc.log().matches(" counters").count() > before
    })
    .expect("redha logs its counters on SIGUSR1");
    let log = proc.log();
    let line = log.lines().rev().find(|l| l.contains(" counters")).unwrap();
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}
