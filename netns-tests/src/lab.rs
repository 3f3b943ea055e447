//! A throwaway layer-2 lab: one bridge namespace plus N host namespaces.

use std::ffi::OsStr;
use std::fmt::{Display, Write as _};
use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::Duration;

use crate::cmd;
use crate::netns;
use crate::process::{Proc, ProcInner};
use crate::wait::wait_until;

/// Most hosts a lab may have. Host addresses are `192.0.2.11` to
/// `192.0.2.(10 + hosts)`, so `192.0.2.1`–`.10` and `192.0.2.100`–`.254` are
/// always free for virtual addresses.
pub const MAX_HOSTS: usize = 80;

/// How long [`Lab::new`] and [`Lab::attach`] wait for links to come up.
const LINK_TIMEOUT: Duration = Duration::from_secs(10);

/// Name of the bridge inside the bridge namespace.
pub const BRIDGE: &str = "br0";

/// Name of the second bridge that [`Lab::split`] moves ports to (created by the
/// first split, in the bridge namespace).
pub const SPLIT_BRIDGE: &str = "br1";

/// Name of each host's interface.
pub const HOST_IF: &str = "eth0";

/// A lab of `n` hosts (1-based indices) on one Ethernet segment.
///
/// Layout: namespace [`bridge_ns`](Lab::bridge_ns) holds bridge `br0`
/// (multicast snooping off, so VRRP's 224.0.0.18 floods to every port) and,
/// per host `i`, port `p<i>` of a veth pair whose peer is `eth0` in host
/// namespace [`ns(i)`](Lab::ns), with address `192.0.2.(10+i)/24` and MAC
/// `02:72:68:00:00:<i in hex>`. IPv6 is disabled in all lab namespaces (no
/// DAD, router or MLD noise), except in a lab made with [`Lab::with_ipv6`]: there
/// each host also has its link-local address and `2001:db8::(10+i)/64`, without
/// duplicate address detection.
///
/// Dropping the lab SIGKILLs every process it spawned and every other process
/// still inside its namespaces, then deletes the namespaces (this also happens
/// when the test panics; the lab directory with the logs is kept, and its
/// path plus the log tails are printed).
pub struct Lab {
    base: String,
    bridge_ns: String,
    hosts: Vec<String>,
    dir: PathBuf,
    procs: Mutex<Vec<Weak<ProcInner>>>,
    logs: Mutex<Vec<PathBuf>>,
    ipv6: bool,
}

fn log_root() -> PathBuf {
    std::env::var_os("REDHA_NETNS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("redha-netns"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Parses an address argument (`"192.0.2.5"`, `"192.0.2.5/24"`, `"2001:db8::5"`,
/// an `Ipv4Addr`, ...), keeping only the part before any `/`.
fn parse_ip(ip: impl Display) -> IpAddr {
    let s = ip.to_string();
    let a = s.split('/').next().unwrap_or_default();
    a.parse()
        .unwrap_or_else(|e| panic!("netns-tests: `{s}` is not an IP address: {e}"))
}

impl Lab {
    /// Creates a lab of `hosts` hosts; `tag` (alphanumerics, first 8 kept)
    /// goes into the namespace names to tell labs apart.
    ///
    /// Names are `rh-<pid>-<counter>-<tag>-br` and `…-h<i>`, unique across
    /// threads and processes. Returns once every link has carrier and every
    /// bridge port is forwarding. Panics, after cleaning up, if anything
    /// fails, and if namespaces are unusable: guard tests with
    /// [`require_netns`](crate::require_netns).
    pub fn new(tag: &str, hosts: usize) -> Lab {
        Lab::build(tag, hosts, false)
    }

    /// A lab as [`Lab::new`] makes, with IPv6 on: each host's `eth0` has its
    /// link-local address ([`Lab::link_local`]) and `2001:db8::(10+i)/64`
    /// ([`Lab::addr6`]), both usable at once (no duplicate address detection).
    pub fn with_ipv6(tag: &str, hosts: usize) -> Lab {
        Lab::build(tag, hosts, true)
    }

    fn build(tag: &str, hosts: usize, ipv6: bool) -> Lab {
        if let Err(reason) = netns::available() {
            panic!(
                "netns-tests: network namespaces unavailable: {reason} \
                 (guard the test with `if !netns_tests::require_netns(..) {{ return; }}`)"
            );
        }
        assert!(
            (1..=MAX_HOSTS).contains(&hosts),
            "netns-tests: a lab has 1 to {MAX_HOSTS} hosts, not {hosts}"
        );
        let base = netns::fresh_base(tag);
        let dir = log_root().join(&base);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("netns-tests: creating {}: {e}", dir.display()));
        let lab = Lab {
            bridge_ns: format!("{base}-br"),
            hosts: (1..=hosts).map(|i| format!("{base}-h{i}")).collect(),
            base,
            dir,
            procs: Mutex::new(Vec::new()),
            logs: Mutex::new(Vec::new()),
            ipv6,
        };
        // On failure `lab` is dropped here, deleting whatever was created.
        if let Err(e) = lab.setup() {
            panic!(
                "netns-tests: setting up lab {} failed (dir {}):\n{e}",
                lab.base,
                lab.dir.display()
            );
        }
        lab
    }

    fn setup(&self) -> Result<(), String> {
        let mut script = format!("netns add {}\n", self.bridge_ns);
        for h in &self.hosts {
            writeln!(script, "netns add {h}").unwrap();
        }
        cmd::ip_batch(None, &script)?;

        let disable = if self.ipv6 { "0" } else { "1" };
        for ns in self.all_ns() {
            let dad = |key: &str| match self.ipv6 {
                true => netns::sysctl(ns, key, "0"),
                false => Ok(()),
            };
            match netns::sysctl(ns, "net/ipv6/conf/all/disable_ipv6", disable)
                .and_then(|()| netns::sysctl(ns, "net/ipv6/conf/default/disable_ipv6", disable))
                .and_then(|()| dad("net/ipv6/conf/all/accept_dad"))
                .and_then(|()| dad("net/ipv6/conf/default/accept_dad"))
            {
                Ok(()) => {}
                // Kernel without IPv6: nothing to disable.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("disabling IPv6 in {ns}: {e}")),
            }
        }

        let mut script = format!(
            "link add {BRIDGE} type bridge mcast_snooping 0 stp_state 0\nlink set {BRIDGE} up\n"
        );
        for (i, h) in self.hosts.iter().enumerate() {
            let i = i + 1;
            writeln!(
                script,
                "link add p{i} type veth peer name {HOST_IF} address {mac} netns {h}\n\
                 link set p{i} master {BRIDGE}\n\
                 link set p{i} up",
                mac = Self::initial_mac(i)
            )
            .unwrap();
        }
        cmd::ip_batch(Some(&self.bridge_ns), &script)?;

        for (i, h) in self.hosts.iter().enumerate() {
            let i = i + 1;
            let mut script = format!(
                "link set lo up\nlink set {HOST_IF} up\naddr add {}/24 dev {HOST_IF}\n",
                self.addr(i)
            );
            if self.ipv6 {
                writeln!(script, "addr add {}/64 dev {HOST_IF} nodad", self.addr6(i)).unwrap();
            }
            cmd::ip_batch(Some(h), &script)?;
        }

        let mut info = format!("bridge {} ({BRIDGE})\n", self.bridge_ns);
        for (i, h) in self.hosts.iter().enumerate() {
            writeln!(info, "host {} {h} {}", i + 1, self.addr(i + 1)).unwrap();
        }
        let _ = fs::write(self.dir.join("lab.txt"), info);

        if wait_until(LINK_TIMEOUT, Duration::from_millis(20), || {
            self.ports_forwarding(BRIDGE, 1..=self.hosts.len())
                && (1..=self.hosts.len()).all(|i| self.has_carrier(i))
                && (!self.ipv6 || (1..=self.hosts.len()).all(|i| self.try_link_local(i).is_some()))
        })
        .is_none()
        {
            return Err(format!(
                "links not up after {LINK_TIMEOUT:?}:\n{}",
                cmd::ip(["-n", &self.bridge_ns, "-d", "-o", "link", "show"]).unwrap_or_else(|e| e)
            ));
        }
        Ok(())
    }

    fn initial_mac(i: usize) -> String {
        format!("02:72:68:00:{:02x}:{:02x}", i >> 8, i & 0xff)
    }

    fn all_ns(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.bridge_ns).chain(&self.hosts)
    }

    fn check(&self, i: usize) {
        assert!(
            (1..=self.hosts.len()).contains(&i),
            "netns-tests: lab {} has hosts 1..={}, not {i}",
            self.base,
            self.hosts.len()
        );
    }

    /// Does host `i`'s `eth0` have carrier (`LOWER_UP`) and is it up? True
    /// throughout a [`detach`](Lab::detach) or a [`split`](Lab::split): those
    /// cut the switch, not the cable.
    pub fn has_carrier(&self, i: usize) -> bool {
        cmd::ip(["-n", self.ns(i), "-o", "link", "show", "dev", HOST_IF])
            .is_ok_and(|out| out.contains("LOWER_UP") && out.contains(",UP"))
    }

    /// The `ip -d -o link show` line of each bridge port `p<i>`, by host.
    fn port_lines(&self) -> Option<Vec<(usize, String)>> {
        let out = cmd::ip(["-n", &self.bridge_ns, "-d", "-o", "link", "show"]).ok()?;
        Some(
            out.lines()
                .filter_map(|l| {
                    let name = l.split_whitespace().nth(1)?;
                    let i = name.strip_prefix('p')?.split('@').next()?.parse().ok()?;
                    Some((i, l.to_owned()))
                })
                .collect(),
        )
    }

    fn ports_forwarding(&self, bridge: &str, mut ports: impl Iterator<Item = usize>) -> bool {
        let Some(lines) = self.port_lines() else {
            return false;
        };
        ports.all(|i| {
            lines.iter().any(|(p, l)| {
                *p == i
                    && l.contains("LOWER_UP")
                    && l.contains(&format!("master {bridge} "))
                    && l.contains("bridge_slave state forwarding")
            })
        })
    }

    /// Which bridge host `i`'s port `p<i>` is on: [`BRIDGE`], [`SPLIT_BRIDGE`],
    /// or `None` while it is [detached](Lab::detach).
    pub fn bridge_of(&self, i: usize) -> Option<String> {
        self.check(i);
        let lines = self
            .port_lines()
            .unwrap_or_else(|| panic!("netns-tests: cannot list the ports of {}", self.bridge_ns));
        let (_, line) = lines
            .iter()
            .find(|(p, _)| *p == i)
            .unwrap_or_else(|| panic!("netns-tests: no port p{i} in {}", self.bridge_ns));
        let mut words = line.split_whitespace();
        words.find(|w| *w == "master")?;
        words.next().map(str::to_owned)
    }

    /// Base name shared by this lab's namespaces and its directory.
    pub fn name(&self) -> &str {
        &self.base
    }

    /// Number of hosts.
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }

    /// Namespace of host `i` (1-based).
    pub fn ns(&self, i: usize) -> &str {
        self.check(i);
        &self.hosts[i - 1]
    }

    /// Namespace holding the bridge `br0` and the ports `p<i>`.
    pub fn bridge_ns(&self) -> &str {
        &self.bridge_ns
    }

    /// Directory for this lab's logs, kept after the lab is dropped:
    /// `$REDHA_NETNS_DIR/<name>` if that variable is set, else
    /// `/tmp/redha-netns/<name>`. It also holds `lab.txt` (namespaces and
    /// addresses) and, after a panic, `failure.txt`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Address of host `i`: `192.0.2.(10+i)` (prefix length 24).
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        self.check(i);
        Ipv4Addr::new(192, 0, 2, 10 + i as u8)
    }

    /// Current MAC of host `i`'s `eth0`, lowercase and colon separated.
    pub fn mac(&self, i: usize) -> String {
        let out = self.ip(i, ["-o", "link", "show", "dev", HOST_IF]);
        let mut words = out.split_whitespace();
        words
            .find(|w| *w == "link/ether")
            .and_then(|_| words.next())
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| panic!("netns-tests: no MAC in `{}`", out.trim()))
    }

    /// Runs `ip -n <ns(i)> ARGS...` and returns its stdout; panics on failure.
    pub fn ip<S: AsRef<OsStr>>(&self, i: usize, args: impl IntoIterator<Item = S>) -> String {
        let ns = self.ns(i).to_owned();
        self.ip_in(&ns, args)
    }

    /// Runs `ip -n <bridge_ns> ARGS...` and returns its stdout; panics on
    /// failure.
    pub fn bridge_ip<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> String {
        self.ip_in(&self.bridge_ns, args)
    }

    fn ip_in<S: AsRef<OsStr>>(&self, ns: &str, args: impl IntoIterator<Item = S>) -> String {
        let mut all: Vec<std::ffi::OsString> = vec!["-n".into(), ns.into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        cmd::ip(all).unwrap_or_else(|e| panic!("netns-tests: {e}"))
    }

    fn exec_command(&self, i: usize, program: &OsStr) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns(i)]).arg(program);
        c
    }

    /// Runs `program ARGS...` to completion inside host `i`'s namespace,
    /// whatever its exit status.
    pub fn try_run<S: AsRef<OsStr>>(
        &self,
        i: usize,
        program: impl AsRef<OsStr>,
        args: impl IntoIterator<Item = S>,
    ) -> Output {
        let mut c = self.exec_command(i, program.as_ref());
        c.args(args);
        cmd::output(&mut c)
    }

    /// Like [`try_run`](Lab::try_run), but panics (with stdout and stderr)
    /// unless the command succeeds.
    pub fn run<S: AsRef<OsStr>>(
        &self,
        i: usize,
        program: impl AsRef<OsStr>,
        args: impl IntoIterator<Item = S>,
    ) -> Output {
        let mut c = self.exec_command(i, program.as_ref());
        c.args(args);
        let out = cmd::output(&mut c);
        if !out.status.success() {
            panic!("netns-tests: in host {i}: {}", cmd::failure(&c, &out));
        }
        out
    }

    /// Starts `program ARGS...` in host `i`'s namespace (via `ip netns exec`,
    /// which execs it, so [`Proc::pid`] is the program's pid), stdin closed,
    /// stdout and stderr appended to `<dir>/<name>.log`.
    pub fn spawn<S: AsRef<OsStr>>(
        &self,
        i: usize,
        name: &str,
        program: impl AsRef<OsStr>,
        args: impl IntoIterator<Item = S>,
    ) -> Proc {
        let mut c = Command::new(program);
        c.args(args);
        self.spawn_command(i, name, &c)
    }

    /// Like [`spawn`](Lab::spawn), but takes program, arguments, environment
    /// changes and working directory from `command` (its stdio settings are
    /// ignored).
    pub fn spawn_command(&self, i: usize, name: &str, command: &Command) -> Proc {
        assert!(
            !name.is_empty() && !name.contains('/') && name != "." && name != "..",
            "netns-tests: process name `{name}` must be usable as a file name"
        );
        let mut c = self.exec_command(i, command.get_program());
        c.args(command.get_args());
        for (k, v) in command.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = command.get_current_dir() {
            c.current_dir(d);
        }

        let log_path = self.dir.join(format!("{name}.log"));
        let open = || -> io::Result<(fs::File, u64)> {
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)?;
            writeln!(f, "=== host {i} ({}): {}", self.ns(i), cmd::describe(&c))?;
            let offset = f.metadata()?.len();
            Ok((f, offset))
        };
        let (file, log_offset) =
            open().unwrap_or_else(|e| panic!("netns-tests: log file {}: {e}", log_path.display()));
        let err_file = file
            .try_clone()
            .unwrap_or_else(|e| panic!("netns-tests: log file {}: {e}", log_path.display()));
        c.stdin(Stdio::null()).stdout(file).stderr(err_file);
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("netns-tests: spawning `{}`: {e}", cmd::describe(&c)));

        Self::await_exec(&mut child, self.ns(i));

        let inner = Arc::new(ProcInner {
            name: name.to_owned(),
            pid: child.id(),
            log_path: log_path.clone(),
            log_offset,
            child: Mutex::new(child),
        });
        {
            let mut procs = lock(&self.procs);
            procs.retain(|w| w.strong_count() > 0);
            procs.push(Arc::downgrade(&inner));
        }
        let mut logs = lock(&self.logs);
        if !logs.contains(&log_path) {
            logs.push(log_path);
        }
        Proc { inner }
    }

    /// Waits (up to 5 s) until `ip netns exec` has entered the namespace and
    /// exec'd the program, or has exited, so that the pid, signals and
    /// `/proc` refer to the program itself once `spawn` returns.
    fn await_exec(child: &mut std::process::Child, ns: &str) {
        let cmdline = format!("/proc/{}/cmdline", child.id());
        // Right after spawn the command line may still be empty (exec not
        // finished) or that of `ip netns exec <ns> …`.
        let ip_prefix = format!("ip\0netns\0exec\0{ns}\0");
        wait_until(Duration::from_secs(5), Duration::from_millis(1), || {
            !matches!(child.try_wait(), Ok(None))
                || fs::read(&cmdline)
                    .is_ok_and(|c| !c.is_empty() && !c.starts_with(ip_prefix.as_bytes()))
        });
    }

    /// Addresses currently on host `i`'s `eth0`, IPv4 and IPv6 (`ip addr`), not
    /// counting tentative ones (IPv6 duplicate address detection under way: not
    /// usable yet).
    pub fn addrs(&self, i: usize) -> Vec<IpAddr> {
        self.ip(i, ["-o", "addr", "show", "dev", HOST_IF])
            .lines()
            .filter(|l| !l.contains("tentative"))
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                w.find(|t| *t == "inet" || *t == "inet6")?;
                w.next()?.split('/').next()?.parse().ok()
            })
            .collect()
    }

    /// Host `i`'s global IPv6 address in a [`Lab::with_ipv6`] lab:
    /// `2001:db8::(10+i)`.
    pub fn addr6(&self, i: usize) -> Ipv6Addr {
        self.check(i);
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10 + i as u16)
    }

    /// Host `i`'s IPv6 link-local address (the source of its VRRPv3 adverts).
    ///
    /// # Panics
    /// When it has none (a lab without IPv6).
    pub fn link_local(&self, i: usize) -> Ipv6Addr {
        self.try_link_local(i)
            .unwrap_or_else(|| panic!("netns-tests: host {i} has no usable link-local address"))
    }

    fn try_link_local(&self, i: usize) -> Option<Ipv6Addr> {
        self.addrs(i).into_iter().find_map(|a| match a {
            IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(v6),
            _ => None,
        })
    }

    /// Does host `i`'s `eth0` have address `ip` (`"192.0.2.100"`, an
    /// `Ipv4Addr`, …; any `/prefix` is ignored)?
    pub fn has_addr(&self, i: usize, ip: impl Display) -> bool {
        self.addrs(i).contains(&parse_ip(ip))
    }

    /// `(valid_lft, preferred_lft)` of address `ip` on host `i`'s `eth0`, as
    /// printed by `ip` (`"forever"`, `"4sec"`, …); `None` if absent.
    pub fn addr_lifetimes(&self, i: usize, ip: impl Display) -> Option<(String, String)> {
        let ip = parse_ip(ip);
        let out = self.ip(i, ["-o", "addr", "show", "dev", HOST_IF]);
        out.lines().find_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "inet" || *w == "inet6")?;
            let a: IpAddr = words.get(at + 1)?.split('/').next()?.parse().ok()?;
            if a != ip {
                return None;
            }
            let after = |key: &str| {
                let k = words.iter().position(|w| *w == key)?;
                words.get(k + 1).map(|s| (*s).to_owned())
            };
            Some((after("valid_lft")?, after("preferred_lft")?))
        })
    }

    /// Hosts whose `eth0` currently has address `ip`, in ascending order.
    pub fn holders(&self, ip: impl Display) -> Vec<usize> {
        let ip = parse_ip(ip);
        (1..=self.hosts.len())
            .filter(|&i| self.addrs(i).contains(&ip))
            .collect()
    }

    /// MAC that host `i`'s neighbour table holds for `ip` (lowercase), or
    /// `None` if there is no entry or it is `INCOMPLETE`/`FAILED`.
    pub fn neigh_mac(&self, i: usize, ip: impl Display) -> Option<String> {
        let ip = parse_ip(ip).to_string();
        let out = self.ip(i, ["neigh", "show", ip.as_str()]);
        out.lines().find_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            if words.first() != Some(&ip.as_str()) {
                return None;
            }
            if words.iter().any(|w| matches!(*w, "INCOMPLETE" | "FAILED")) {
                return None;
            }
            let k = words.iter().position(|w| *w == "lladdr")?;
            words.get(k + 1).map(|m| m.to_ascii_lowercase())
        })
    }

    /// Sends one ICMP echo request from host `i` to `ip` and waits up to 1 s
    /// for the reply. `ip` must be in 192.0.2.0/24. No `ping` binary needed.
    pub fn ping(&self, i: usize, ip: impl Display) -> bool {
        let IpAddr::V4(ip) = parse_ip(ip) else {
            panic!("netns-tests: lab pings are IPv4");
        };
        assert!(
            netns::in_lab_range(ip),
            "netns-tests: lab pings stay inside 192.0.2.0/24, not {ip}"
        );
        netns::ping(self.ns(i), ip, Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("netns-tests: ping from host {i} to {ip}: {e}"))
    }

    /// Runs `f` on a short-lived thread that has entered host `i`'s network
    /// namespace, and returns its result. Sockets created inside stay in that
    /// namespace after `f` returns, so this is how a test opens a socket on a
    /// host: `let s = lab.in_host(2, || UdpSocket::bind("0.0.0.0:0"))?;`.
    pub fn in_host<T: Send>(&self, i: usize, f: impl FnOnce() -> T + Send) -> T {
        netns::in_netns(self.ns(i), || Ok(f()))
            .unwrap_or_else(|e| panic!("netns-tests: entering host {i}: {e}"))
    }

    /// Takes host `i`'s port `p<i>` off the bridge; both ends stay up (the
    /// host keeps carrier) but no frames pass.
    pub fn detach(&self, i: usize) {
        self.check(i);
        self.bridge_ip(["link", "set", &format!("p{i}"), "nomaster"]);
    }

    /// Puts host `i`'s port back on the bridge and waits until it forwards.
    pub fn attach(&self, i: usize) {
        self.check(i);
        self.move_ports(&[i], BRIDGE);
    }

    /// Cuts the switch in two while every link keeps its carrier: the ports of
    /// `hosts` move to a second bridge, [`SPLIT_BRIDGE`], in the bridge
    /// namespace (created by the first split, multicast snooping and STP off
    /// like [`BRIDGE`]); the other hosts stay on [`BRIDGE`]. Hosts on the same
    /// side reach each other (VRRP multicast included), no frame crosses
    /// between the sides, and no host sees a link change. Returns once the
    /// moved ports forward.
    ///
    /// `lab.split(&[1, 4])` keeps host 1 (say the master) with client host 4,
    /// and hosts 2 and 3 together on the first bridge. Splitting again moves
    /// more ports over (those already there stay); [`heal_split`](Lab::heal_split)
    /// undoes it. A [detached](Lab::detach) host named here is put on the
    /// second bridge.
    pub fn split(&self, hosts: &[usize]) {
        for &i in hosts {
            self.check(i);
        }
        assert!(
            hosts.len() < self.hosts.len(),
            "netns-tests: a split of lab {} leaves at least one host on {BRIDGE}",
            self.base
        );
        let exists = cmd::ip([
            "-n",
            &self.bridge_ns,
            "-o",
            "link",
            "show",
            "dev",
            SPLIT_BRIDGE,
        ])
        .is_ok();
        if !exists {
            let script = format!(
                "link add {SPLIT_BRIDGE} type bridge mcast_snooping 0 stp_state 0\n\
                 link set {SPLIT_BRIDGE} up\n"
            );
            cmd::ip_batch(Some(&self.bridge_ns), &script)
                .unwrap_or_else(|e| panic!("netns-tests: creating {SPLIT_BRIDGE}: {e}"));
        }
        self.move_ports(hosts, SPLIT_BRIDGE);
    }

    /// Heals a [`split`](Lab::split): every port on [`SPLIT_BRIDGE`] goes back
    /// to [`BRIDGE`]; returns once they forward. The hosts moved back, in
    /// ascending order (none if there was no split).
    pub fn heal_split(&self) -> Vec<usize> {
        let lines = self
            .port_lines()
            .unwrap_or_else(|| panic!("netns-tests: cannot list the ports of {}", self.bridge_ns));
        let mut moved: Vec<usize> = lines
            .iter()
            .filter(|(_, l)| l.contains(&format!("master {SPLIT_BRIDGE} ")))
            .map(|(i, _)| *i)
            .collect();
        moved.sort_unstable();
        self.move_ports(&moved, BRIDGE);
        moved
    }

    /// The hosts whose port is on `bridge`, in ascending order.
    pub fn hosts_on(&self, bridge: &str) -> Vec<usize> {
        let lines = self
            .port_lines()
            .unwrap_or_else(|| panic!("netns-tests: cannot list the ports of {}", self.bridge_ns));
        let mut on: Vec<usize> = lines
            .iter()
            .filter(|(_, l)| l.contains(&format!("master {bridge} ")))
            .map(|(i, _)| *i)
            .collect();
        on.sort_unstable();
        on
    }

    /// Moves the ports of `hosts` onto `bridge` in one `ip` batch and waits
    /// until they forward there.
    fn move_ports(&self, hosts: &[usize], bridge: &str) {
        if hosts.is_empty() {
            return;
        }
        let mut script = String::new();
        for &i in hosts {
            writeln!(script, "link set p{i} master {bridge}").unwrap();
        }
        cmd::ip_batch(Some(&self.bridge_ns), &script)
            .unwrap_or_else(|e| panic!("netns-tests: moving ports {hosts:?} to {bridge}: {e}"));
        if wait_until(LINK_TIMEOUT, Duration::from_millis(10), || {
            self.ports_forwarding(bridge, hosts.iter().copied())
        })
        .is_none()
        {
            panic!(
                "netns-tests: ports {hosts:?} not forwarding on {bridge} after {LINK_TIMEOUT:?}"
            );
        }
    }

    fn dump_diagnostics(&self) {
        let mut report = format!(
            "netns-tests: lab {} dropped during a panic; logs kept in {}\n",
            self.base,
            self.dir.display()
        );
        for (i, ns) in self.hosts.iter().enumerate() {
            let addr = cmd::ip(["-n", ns, "-4", "-o", "addr", "show"]).unwrap_or_else(|e| e);
            let neigh = cmd::ip(["-n", ns, "neigh", "show"]).unwrap_or_else(|e| e);
            let _ = write!(
                report,
                "--- host {} ({ns}) addresses:\n{addr}--- host {} neighbours:\n{neigh}",
                i + 1,
                i + 1
            );
        }
        for path in lock(&self.logs).iter() {
            let text = fs::read_to_string(path).unwrap_or_else(|e| format!("(unreadable: {e})\n"));
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            let _ = writeln!(
                report,
                "--- last {} lines of {}:\n{}",
                tail.len(),
                path.display(),
                tail.join("\n")
            );
        }
        let _ = fs::write(self.dir.join("failure.txt"), &report);
        eprintln!("{report}");
    }
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("name", &self.base)
            .field("hosts", &self.hosts.len())
            .field("dir", &self.dir)
            .finish()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if thread::panicking() {
            self.dump_diagnostics();
        }
        // Processes in a deleted namespace keep running: kill first.
        for p in lock(&self.procs).drain(..) {
            if let Some(p) = p.upgrade() {
                let _ = p.kill_and_reap();
            }
        }
        let ours: Vec<String> = self.all_ns().cloned().collect();
        for ns in self.hosts.iter().chain(std::iter::once(&self.bridge_ns)) {
            let _ = netns::destroy(ns);
        }
        let left: Vec<String> = netns::list()
            .into_iter()
            .filter(|n| ours.contains(n))
            .collect();
        if !left.is_empty() {
            eprintln!("netns-tests: warning: could not delete namespaces {left:?}");
        }
    }
}
