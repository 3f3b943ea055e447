//! Benchmark: redha against keepalived with the same VRRP settings, in network
//! namespaces. Measures election time, takeover after SIGKILL and after SIGTERM of the
//! master, how long a killed master's VIP lingers (and how long both hosts hold it),
//! and the idle memory of the master's agent, then prints a Markdown table per
//! setting: VRRPv2 at 1 s, VRRPv3 at 100 ms, VRRPv3 over IPv6 at 1 s and 100 ms unless
//! told otherwise.
//!
//! Run as root: `cargo run --release -p netns-tests --bin bench -- [--settings
//! v2:1s,v3:100ms,v3-ipv6:1s,v3-ipv6:100ms] [--advert-int N (v2 only, N seconds)] [--runs N]` (default 3
//! runs). The tables go to stdout, progress to stderr.

use std::fmt::Write as _;
use std::fs;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

use netns_tests::measure::{self, Flags, HIGH, LOW, Table, median};
use netns_tests::redha::{self, Node, VIP, VIP6};
use netns_tests::{Lab, Proc, is_alive, keepalived, require_netns};

/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(20);
/// How long the master idles before its memory is read and it is killed.
const MASTER_IDLE: Duration = Duration::from_secs(5);
/// MASTER_IDLE rounded up to whole advert intervals, so that the phase added to it is
/// the kill's position in the advert cycle.
fn master_idle(setting: Setting) -> Duration {
    let int = setting.advert_int.as_millis().max(1) as u64;
    Duration::from_millis((MASTER_IDLE.as_millis() as u64).div_ceil(int) * int)
}

/// One VRRP setting both agents run with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Setting {
    /// 2 or 3.
    version: u8,
    advert_int: Duration,
    /// VRRPv3 over IPv6 (the VIP is [`VIP6`]).
    ipv6: bool,
}

impl Setting {
    /// `v2:1s`, `v3:100ms`, `v3-ipv6:100ms`.
    fn parse(text: &str) -> Result<Setting, String> {
        let bad = || format!("`{text}` is not VERSION:INTERVAL (v2:1s, v3:100ms, v3-ipv6:1s)");
        let (v, int) = text.split_once(':').ok_or_else(bad)?;
        let (version, ipv6) = match v {
            "v2" | "2" => (2, false),
            "v3" | "3" => (3, false),
            "v3-ipv6" => (3, true),
            _ => return Err(bad()),
        };
        let advert_int = if let Some(ms) = int.strip_suffix("ms") {
            Duration::from_millis(ms.parse().map_err(|_| bad())?)
        } else if let Some(s) = int.strip_suffix('s') {
            Duration::from_secs(s.parse().map_err(|_| bad())?)
        } else {
            return Err(bad());
        };
        let ok = match version {
            2 => advert_int.subsec_nanos() == 0 && (1..=255).contains(&advert_int.as_secs()),
            _ => {
                let ms = advert_int.as_millis();
                ms % 10 == 0 && (10..=40_950).contains(&ms)
            }
        };
        if !ok {
            return Err(format!(
                "`{text}`: VRRPv2 takes whole seconds 1s..255s, VRRPv3 10ms..40950ms in steps of 10ms"
            ));
        }
        Ok(Setting {
            version,
            advert_int,
            ipv6,
        })
    }

    fn label(self) -> String {
        format!(
            "VRRPv{} over {}, advert_int {}",
            self.version,
            if self.ipv6 { "IPv6" } else { "IPv4" },
            ms_or_s(self.advert_int)
        )
    }

    /// The virtual address both nodes announce.
    fn vip(self) -> &'static str {
        if self.ipv6 { VIP6 } else { VIP }
    }

    /// A lab of two hosts, with IPv6 when the setting needs it.
    fn lab(self, tag: &str) -> Lab {
        if self.ipv6 {
            Lab::with_ipv6(tag, 2)
        } else {
            Lab::new(tag, 2)
        }
    }

    /// A short tag for lab names.
    fn tag(self) -> String {
        format!("{}{}", self.version, if self.ipv6 { "6" } else { "" })
    }

    fn nodes(self) -> (Node, Node) {
        let base = if self.ipv6 {
            Node::v6(self.advert_int)
        } else {
            Node {
                version: self.version,
                advert_int: self.advert_int,
                ..Node::default()
            }
        };
        let node = |priority| Node {
            priority,
            ..base.clone()
        };
        (node(HIGH), node(LOW))
    }
}

/// `100 ms` or `1 s`.
fn ms_or_s(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// How long the SIGTERM scenario lets the master settle before stopping it.
const TERM_SETTLE: Duration = Duration::from_secs(1);
/// Extra time allowed beyond a protocol bound before giving up on an event.
const SLACK: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Agent {
    Redha,
    Keepalived,
}

impl Agent {
    fn name(self) -> &'static str {
        match self {
            Agent::Redha => "redha",
            Agent::Keepalived => "keepalived",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Agent::Redha => "r",
            Agent::Keepalived => "k",
        }
    }

    fn start(self, lab: &Lab, i: usize, node: &Node) -> Proc {
        match self {
            Agent::Redha => redha::start(lab, i, node),
            Agent::Keepalived => keepalived::start(lab, i, node),
        }
    }

    /// All processes of the agent on host `i`: the spawned one plus, for keepalived,
    /// its children ([`keepalived::pids`]).
    fn pids(self, lab: &Lab, i: usize, proc: &Proc) -> Vec<u32> {
        match self {
            Agent::Redha => vec![proc.pid()],
            Agent::Keepalived => keepalived::pids(lab, i, proc),
        }
    }

    /// A crash of the agent on host `i`: SIGKILL of every process of it, for
    /// keepalived children first ([`keepalived::crash`]), so that none can notice its
    /// parent's death and send a priority-0 advert.
    fn crash(self, lab: &Lab, i: usize, proc: &Proc) {
        match self {
            Agent::Redha => {
                proc.signal(libc::SIGKILL);
            }
            Agent::Keepalived => keepalived::crash(lab, i, proc),
        }
    }
}

/// One measured value of one run.
#[derive(Clone, Copy, Debug)]
enum Val {
    /// Seconds (or MB for memory).
    At(f64),
    /// The event had not happened when the watch ended, this many seconds in.
    Never(f64),
    /// The run could not measure it (e.g. no election).
    Failed,
}

/// Samples of one agent.
#[derive(Default)]
struct Samples {
    election: Vec<Val>,
    kill_takeover: Vec<Val>,
    term_takeover: Vec<Val>,
    gone: Vec<Val>,
    overlap: Vec<Val>,
    rss_mb: Vec<Val>,
    pss_mb: Vec<Val>,
    procs: Vec<usize>,
    warnings: Vec<String>,
}

/// The first moment a polled condition held, estimated as the midpoint between the
/// start of the last check that saw it false and the end of the first that saw it true.
struct Edge {
    since: Instant,
    last_false: Instant,
    at: Option<Duration>,
}

impl Edge {
    fn new(since: Instant) -> Edge {
        Edge {
            since,
            last_false: since,
            at: None,
        }
    }

    fn observe(&mut self, check: impl FnOnce() -> bool) {
        if self.at.is_some() {
            return;
        }
        let start = Instant::now();
        if check() {
            let end = Instant::now();
            let mid = self.last_false + (end - self.last_false) / 2;
            self.at = Some(mid.saturating_duration_since(self.since));
        } else {
            self.last_false = start;
        }
    }

    fn val(&self) -> Val {
        match self.at {
            Some(d) => Val::At(d.as_secs_f64()),
            None => Val::Never(self.since.elapsed().as_secs_f64()),
        }
    }
}

/// A `kB` field (`VmRSS:`, `Pss:`) of a `/proc/<pid>/` file.
fn kb_field(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Sum of a memory field over `pids`, in MB; `Failed` if any is unreadable.
fn memory_mb(pids: &[u32], file: &str, key: &str) -> Val {
    let mut kb = 0;
    for &pid in pids {
        match kb_field(pid, file, key) {
            Some(v) => kb += v,
            None => return Val::Failed,
        }
    }
    Val::At(kb as f64 / 1024.0)
}

fn sigkill(pid: u32) {
    // SAFETY: kill(2) with a pid we just read from /proc or a pid file; at worst it
    // fails with ESRCH.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

/// Starts host 1 (priority 150) and host 2 (100) together and waits for the first
/// VIP holder. Returns the processes, the election time and the master's host.
fn elect(agent: Agent, lab: &Lab, setting: Setting) -> (Proc, Proc, Option<(Duration, usize)>) {
    let (high, low) = setting.nodes();
    let t0 = Instant::now();
    let p1 = agent.start(lab, 1, &high);
    let p2 = agent.start(lab, 2, &low);
    let deadline = t0 + high.master_down_interval() + SLACK;
    let mut edge = Edge::new(t0);
    let mut holders = Vec::new();
    loop {
        edge.observe(|| {
            holders = lab.holders(setting.vip());
            !holders.is_empty()
        });
        if edge.at.is_some() || Instant::now() >= deadline {
            break;
        }
        sleep(POLL);
    }
    let elected = edge.at.map(|d| (d, holders[0]));
    (p1, p2, elected)
}

fn secs(v: Val) -> String {
    match v {
        Val::At(s) => format!("{s:.2} s"),
        Val::Never(s) => format!("never within {s:.1} s"),
        Val::Failed => "failed".into(),
    }
}

/// Election, ~5 s as master (memory read), SIGKILL of the master; then the backup's
/// takeover and the killed host's VIP are watched for 3 x Master_Down_Interval.
fn kill_scenario(agent: Agent, setting: Setting, run: usize, phase: Duration, s: &mut Samples) {
    let lab = setting.lab(&format!("bk{}{}{run}", agent.tag(), setting.tag()));
    let (p1, p2, elected) = elect(agent, &lab, setting);
    let Some((election, master)) = elected else {
        s.election.push(Val::Failed);
        for v in [
            &mut s.kill_takeover,
            &mut s.gone,
            &mut s.overlap,
            &mut s.rss_mb,
            &mut s.pss_mb,
        ] {
            v.push(Val::Failed);
        }
        s.warnings
            .push(format!("run {run}: no VIP holder appeared (kill scenario)"));
        eprintln!("  {}: no election!", agent.name());
        return;
    };
    s.election.push(Val::At(election.as_secs_f64()));
    let backup = 3 - master;
    let (mproc, master_node) = if master == 1 {
        (&p1, setting.nodes().0)
    } else {
        (&p2, setting.nodes().1)
    };
    let elected_at = Instant::now();
    sleep((master_idle(setting) + phase).saturating_sub(elected_at.elapsed()));

    let holders = lab.holders(setting.vip());
    if holders != [master] {
        s.warnings.push(format!(
            "run {run}: before the kill the VIP holders were {holders:?}, expected [{master}]"
        ));
    }
    let pids = agent.pids(&lab, master, mproc);
    let rss = memory_mb(&pids, "status", "VmRSS:");
    let pss = memory_mb(&pids, "smaps_rollup", "Pss:");
    s.rss_mb.push(rss);
    s.pss_mb.push(pss);
    s.procs.push(pids.len());

    // The crash: SIGKILL every process of the agent, children first, so that none can
    // notice its parent's death and send a priority-0 advert.
    let log_before = mproc.log();
    let killed = Instant::now();
    agent.crash(&lab, master, mproc);
    // Long enough for the lease too (at 100 ms adverts it is 1 s, 3 x Master_Down_Interval
    // less), plus the kernel's expiry rounding.
    let window = (master_node.master_down_interval() * 3)
        .max(master_node.address_lease() + Duration::from_millis(1500));
    let mut taken = Edge::new(killed);
    let mut gone = Edge::new(killed);
    loop {
        taken.observe(|| lab.has_addr(backup, setting.vip()));
        gone.observe(|| !lab.has_addr(master, setting.vip()));
        if (taken.at.is_some() && gone.at.is_some()) || killed.elapsed() >= window {
            break;
        }
        sleep(POLL);
    }
    mproc.kill();
    if let Some(pid) = pids.iter().find(|&&p| is_alive(p)) {
        s.warnings
            .push(format!("run {run}: pid {pid} survived the SIGKILL"));
    }
    let log_after = mproc.log();
    let new_log = log_after.get(log_before.len()..).unwrap_or("");
    if new_log.contains("sent 0 priority") || new_log.contains("priority_zero_sent") {
        s.warnings.push(format!(
            "run {run}: the killed master sent a priority-0 advert"
        ));
    }

    s.kill_takeover.push(taken.val());
    s.gone.push(gone.val());
    let overlap = match (taken.at, gone.at) {
        (Some(t), Some(g)) => Val::At(g.saturating_sub(t).as_secs_f64()),
        (Some(t), None) => Val::Never(killed.elapsed().saturating_sub(t).as_secs_f64()),
        (None, _) => Val::Failed,
    };
    s.overlap.push(overlap);
    eprintln!(
        "  {:<10} kill: election {} (host {master}), takeover {}, killed VIP gone {}, \
         overlap {}, RSS {} in {} process(es)",
        agent.name(),
        secs(Val::At(election.as_secs_f64())),
        secs(taken.val()),
        secs(gone.val()),
        secs(overlap),
        match rss {
            Val::At(mb) => format!("{mb:.1} MB"),
            _ => "?".into(),
        },
        pids.len()
    );
    drop(p2);
    drop(p1);
}

/// Election, ~1 s as master, SIGTERM of the master, time until the backup holds the VIP.
fn term_scenario(agent: Agent, setting: Setting, run: usize, phase: Duration, s: &mut Samples) {
    let lab = setting.lab(&format!("bt{}{}{run}", agent.tag(), setting.tag()));
    let (p1, p2, elected) = elect(agent, &lab, setting);
    let Some((election, master)) = elected else {
        s.election.push(Val::Failed);
        s.term_takeover.push(Val::Failed);
        s.warnings
            .push(format!("run {run}: no VIP holder appeared (term scenario)"));
        eprintln!("  {}: no election!", agent.name());
        return;
    };
    s.election.push(Val::At(election.as_secs_f64()));
    let backup = 3 - master;
    let mproc = if master == 1 { &p1 } else { &p2 };
    sleep(TERM_SETTLE + phase);

    let (_, low) = setting.nodes();
    let limit = low.master_down_interval() + SLACK;
    let stopped = Instant::now();
    mproc.signal(libc::SIGTERM);
    let mut taken = Edge::new(stopped);
    loop {
        taken.observe(|| lab.has_addr(backup, setting.vip()));
        if taken.at.is_some() || stopped.elapsed() >= limit {
            break;
        }
        sleep(POLL);
    }
    if mproc.wait_exit(Duration::from_secs(5)).is_none() {
        s.warnings.push(format!(
            "run {run}: the master did not exit within 5 s of SIGTERM"
        ));
    }
    s.term_takeover.push(taken.val());
    eprintln!(
        "  {:<10} term: election {} (host {master}), takeover {}",
        agent.name(),
        secs(Val::At(election.as_secs_f64())),
        secs(taken.val())
    );
    drop(p2);
    drop(p1);
}

/// Does keepalived's VRRP child survive a SIGKILL of its parent alone, and what does
/// it do then? Returns one sentence for the note.
fn probe_parent_kill(setting: Setting) -> String {
    let lab = setting.lab("bkprobe");
    let (p1, p2, elected) = elect(Agent::Keepalived, &lab, setting);
    let Some((_, master)) = elected else {
        return "Probe of a parent-only SIGKILL of keepalived failed: no election.".into();
    };
    let backup = 3 - master;
    let mproc = if master == 1 { &p1 } else { &p2 };
    sleep(Duration::from_secs(1));
    let Some(child) = keepalived::vrrp_child_pid(&lab, master).filter(|&c| is_alive(c)) else {
        return "Probe of a parent-only SIGKILL of keepalived failed: no VRRP child pid.".into();
    };
    let log_before = mproc.log();
    let killed = Instant::now();
    sigkill(mproc.pid());
    mproc.kill();
    let (_, low) = setting.nodes();
    let window = low.master_down_interval() + Duration::from_secs(2);
    let mut died = Edge::new(killed);
    let mut taken = Edge::new(killed);
    let mut released = Edge::new(killed);
    while killed.elapsed() < window {
        died.observe(|| !is_alive(child));
        taken.observe(|| lab.has_addr(backup, setting.vip()));
        released.observe(|| !lab.has_addr(master, setting.vip()));
        sleep(POLL);
    }
    let log_after = mproc.log();
    let new_log = log_after.get(log_before.len()..).unwrap_or("");
    let prio0 = new_log.contains("sent 0 priority");
    let stopping = new_log.contains("Stopp");
    if is_alive(child) {
        sigkill(child);
    }
    let mut text = String::from("Probe (keepalived, SIGKILL of the parent only): the VRRP child ");
    match died.at {
        Some(d) => {
            let _ = write!(text, "exited {:.2} s after its parent", d.as_secs_f64());
        }
        None => {
            let _ = write!(
                text,
                "survived (still running {:.1} s later)",
                window.as_secs_f64()
            );
        }
    }
    let _ = write!(
        text,
        "; it {} a priority-0 advert{}; the backup {}; the old master's host {}.",
        if prio0 { "sent" } else { "did not send" },
        if stopping {
            " and logged a shutdown"
        } else {
            ""
        },
        match taken.at {
            Some(d) => format!("took the VIP after {:.2} s", d.as_secs_f64()),
            None => format!("did not take the VIP within {:.1} s", window.as_secs_f64()),
        },
        match released.at {
            Some(d) if d < Duration::from_millis(100) => "lost its VIP at once".into(),
            Some(d) => format!("lost its VIP after {:.2} s", d.as_secs_f64()),
            None => "kept the VIP".into(),
        }
    );
    if prio0 {
        text.push_str(
            " So a SIGKILL of keepalived's parent alone is a clean stop, not a crash, which \
             is why the kill lab SIGKILLs both processes.",
        );
    } else if died.at.is_none() {
        text.push_str(" So killing the parent alone leaves a headless VRRP child running.");
    }
    eprintln!("  {text}");
    text
}

/// "median unit (min–max)" over the `At` values, plus the other outcomes.
fn cell(vals: &[Val], unit: &str, prec: usize, never: impl Fn(f64) -> String) -> String {
    let mut at: Vec<f64> = vals
        .iter()
        .filter_map(|v| match v {
            Val::At(x) => Some(*x),
            _ => None,
        })
        .collect();
    at.sort_by(f64::total_cmp);
    let nevers: Vec<f64> = vals
        .iter()
        .filter_map(|v| match v {
            Val::Never(x) => Some(*x),
            _ => None,
        })
        .collect();
    let failed = vals.iter().filter(|v| matches!(v, Val::Failed)).count();
    let mut parts = Vec::new();
    if !at.is_empty() {
        let mut s = format!("{:.prec$} {unit}", median(&at));
        if at.len() > 1 {
            let _ = write!(s, " ({:.prec$}–{:.prec$})", at[0], at[at.len() - 1]);
        }
        if !nevers.is_empty() || failed > 0 {
            let _ = write!(s, " in {} of {} runs", at.len(), vals.len());
        }
        parts.push(s);
    }
    if !nevers.is_empty() {
        let min = nevers.iter().copied().fold(f64::INFINITY, f64::min);
        let mut s = never(min);
        if !at.is_empty() || failed > 0 {
            let _ = write!(s, " in {} runs", nevers.len());
        }
        parts.push(s);
    }
    if failed > 0 {
        parts.push(format!("failed in {failed} of {} runs", vals.len()));
    }
    parts.join("; ")
}

fn parse_args() -> Result<(Vec<Setting>, usize), String> {
    let mut settings = ["v2:1s", "v3:100ms", "v3-ipv6:1s", "v3-ipv6:100ms"]
        .map(|s| Setting::parse(s).expect("valid"))
        .to_vec();
    let mut runs = 3usize;
    let mut flags = Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--advert-int" => {
                let secs = flags.advert_int()?;
                settings = vec![Setting {
                    version: 2,
                    advert_int: Duration::from_secs(secs),
                    ipv6: false,
                }];
            }
            "--settings" => {
                settings = flags
                    .value("--settings")?
                    .split(',')
                    .map(Setting::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--runs" => runs = flags.runs()?,
            "-h" | "--help" => {
                return Err(
                    "usage: bench [--settings v2:1s,v3:100ms,v3-ipv6:1s,v3-ipv6:100ms (the default; \
                     VRRPv2 takes whole seconds, VRRPv3 10ms..40950ms)] [--advert-int SECONDS (VRRPv2 only)] \
                     [--runs N (default 3)]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    Ok((settings, runs))
}

fn main() -> ExitCode {
    let (settings, runs) = match parse_args() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(code) = measure::require_root("bench", "network namespaces, VRRP raw sockets") {
        return code;
    }
    if keepalived::binary().is_none() {
        eprintln!(
            "bench: keepalived is not installed (no /usr/sbin/keepalived): apt-get install keepalived"
        );
        return ExitCode::from(1);
    }
    let redha_bin = match measure::require_redha_bin("bench") {
        Ok(p) => p,
        Err(code) => return code,
    };
    if !require_netns("bench") {
        eprintln!("bench: network namespaces are unusable here (see above)");
        return ExitCode::from(1);
    }
    let began = Instant::now();
    eprintln!(
        "bench: redha {} vs {}; {runs} run(s) of each of: {}",
        redha_bin.display(),
        keepalived::binary().unwrap_or_default().display(),
        settings
            .iter()
            .map(|s| s.label())
            .collect::<Vec<_>>()
            .join("; ")
    );
    let mut warnings = Vec::new();
    for (i, &setting) in settings.iter().enumerate() {
        let (redha_s, ka_s) = measure_setting(setting, runs, began);
        // Probed once, at the first setting: it is about keepalived's processes.
        let probe = if i == 0 {
            eprintln!("probe: keepalived child after a parent-only SIGKILL");
            probe_parent_kill(setting)
        } else {
            String::new()
        };
        if settings.len() > 1 {
            println!("### {}\n", setting.label());
        }
        println!("{}", table(setting, &redha_s, &ka_s));
        println!("{}\n", method(setting, runs, &probe));
        for (name, s) in [("redha", &redha_s), ("keepalived", &ka_s)] {
            for w in &s.warnings {
                warnings.push(format!("{}: {name}: {w}", setting.label()));
            }
        }
    }
    let elapsed = began.elapsed().as_secs_f64();
    println!("Total runtime {elapsed:.0} s.");
    measure::print_list("Warnings", &warnings);
    measure::finish("bench", elapsed);
    ExitCode::SUCCESS
}

/// Every run of both scenarios for both agents at `setting`.
fn measure_setting(setting: Setting, runs: usize, began: Instant) -> (Samples, Samples) {
    let (high, low) = setting.nodes();
    eprintln!(
        "{}: Master_Down_Interval {:.3} s (prio {HIGH}) / {:.3} s (prio {LOW})",
        setting.label(),
        high.master_down_interval().as_secs_f64(),
        low.master_down_interval().as_secs_f64()
    );
    let mut redha_s = Samples::default();
    let mut ka_s = Samples::default();
    for run in 1..=runs {
        // Kill phase relative to the advert timer, spread evenly over the runs.
        let phase = setting.advert_int.mul_f64((run as f64 - 0.5) / runs as f64);
        let order = if run % 2 == 1 {
            [Agent::Redha, Agent::Keepalived]
        } else {
            [Agent::Keepalived, Agent::Redha]
        };
        eprintln!(
            "run {run}/{runs} (order {} then {}, phase {:.2} s, {:.0} s elapsed)",
            order[0].name(),
            order[1].name(),
            phase.as_secs_f64(),
            began.elapsed().as_secs_f64()
        );
        for agent in order {
            let s = match agent {
                Agent::Redha => &mut redha_s,
                Agent::Keepalived => &mut ka_s,
            };
            kill_scenario(agent, setting, run, phase, s);
        }
        for agent in order {
            let s = match agent {
                Agent::Redha => &mut redha_s,
                Agent::Keepalived => &mut ka_s,
            };
            term_scenario(agent, setting, run, phase, s);
        }
    }
    (redha_s, ka_s)
}

/// Skew_Time's formula for the bound column.
fn skew_formula(setting: Setting, priority: u8) -> String {
    let weight = 256 - u32::from(priority);
    match setting.version {
        2 => format!("{weight}/256 s"),
        _ => format!("{weight}/256 × {}", ms_or_s(setting.advert_int)),
    }
}

/// The Markdown table of one setting.
fn table(setting: Setting, redha_s: &Samples, ka_s: &Samples) -> String {
    let (high, low) = setting.nodes();
    let a = setting.advert_int.as_secs_f64();
    let mdi_high = high.master_down_interval().as_secs_f64();
    let mdi_low = low.master_down_interval().as_secs_f64();
    let lease = high.address_lease().as_secs_f64();
    let s2 = |v: &[Val]| cell(v, "s", 2, |x| format!("never within {x:.1} s"));
    let gone = |v: &[Val]| cell(v, "s", 2, |x| format!("never (still held after {x:.1} s)"));
    let overlap = |v: &[Val]| {
        cell(v, "s", 2, |x| {
            format!("never ends (both still held it {x:.1} s after the takeover)")
        })
    };
    let mb = |v: &[Val], procs: &[usize]| {
        let mut c = cell(v, "MB", 1, |_| String::new());
        let mut p = procs.to_vec();
        p.sort_unstable();
        p.dedup();
        let plural = if p.iter().any(|&n| n > 1) { "es" } else { "" };
        let p: Vec<String> = p.iter().map(ToString::to_string).collect();
        let _ = write!(c, ", {} process{plural}", p.join("/"));
        c
    };

    let mut table = Table::new(["metric", "redha", "keepalived", "bound from protocol math"]);
    let mut row = |metric: &str, r: String, k: String, bound: String| {
        table.row([metric, r.as_str(), k.as_str(), bound.as_str()]);
    };
    row(
        "election: start → first VIP holder",
        s2(&redha_s.election),
        s2(&ka_s.election),
        format!(
            "≈ Master_Down_Interval({HIGH}) = 3 × {} + {} = {mdi_high:.2} s",
            ms_or_s(setting.advert_int),
            skew_formula(setting, HIGH)
        ),
    );
    row(
        "takeover after SIGKILL of the master",
        s2(&redha_s.kill_takeover),
        s2(&ka_s.kill_takeover),
        format!(
            "Master_Down_Interval({LOW}) after the last advert: {:.2}–{mdi_low:.2} s",
            mdi_low - a
        ),
    );
    row(
        "takeover after SIGTERM of the master",
        s2(&redha_s.term_takeover),
        s2(&ka_s.term_takeover),
        format!(
            "Skew_Time({LOW}) = {} = {:.2} s (priority-0 advert)",
            skew_formula(setting, LOW),
            low.skew_time().as_secs_f64()
        ),
    );
    row(
        "killed master's VIP gone from its host",
        gone(&redha_s.gone),
        gone(&ka_s.gone),
        format!(
            "VRRP: none; redha's lease ⌈Master_Down_Interval({HIGH})⌉ = {lease:.0} s after the \
             last refresh: {:.2}–{lease:.2} s (+ ≤ ~0.5 s kernel timer rounding)",
            lease - a
        ),
    );
    row(
        "both hosts hold the VIP after the kill",
        overlap(&redha_s.overlap),
        overlap(&ka_s.overlap),
        format!(
            "redha: lease − Master_Down_Interval({LOW}) = {:.2} s (+ ≤ ~0.5 s kernel \
             timer rounding); unbounded without a lease",
            lease - mdi_low
        ),
    );
    row(
        "idle RSS of the master's agent (~5 s as master)",
        mb(&redha_s.rss_mb, &redha_s.procs),
        mb(&ka_s.rss_mb, &ka_s.procs),
        "— (not protocol)".into(),
    );
    row(
        "idle PSS of the same processes",
        mb(&redha_s.pss_mb, &redha_s.procs),
        mb(&ka_s.pss_mb, &ka_s.procs),
        "— (not protocol)".into(),
    );
    table.text().to_string()
}

/// How one setting was measured.
fn method(setting: Setting, runs: usize, probe: &str) -> String {
    let (high, _) = setting.nodes();
    let timers = match setting.version {
        2 => "RFC 3768 timers give (Skew_Time = (256 − priority)/256 s",
        _ => "RFC 5798 timers give (Skew_Time = (256 − priority)/256 × advert_int",
    };
    format!(
        "Method: one invocation measured redha and keepalived {} (Debian package) with \
         the same settings: {}, VRID 51, VIP {}, \
         priority {HIGH} on host 1 and {LOW} on host 2, preempt on, multicast, in \
         {runs} run(s). Each run builds fresh two-host network-namespace labs on one \
         bridge and starts fresh processes; redha and keepalived alternate (odd runs \
         redha first, even runs keepalived first). Kill lab: both agents start together \
         (election time = from the first spawn to the first VIP holder seen), the master \
         idles {} s (whole advert intervals, at least 5 s) + phase, its resident memory is read (VmRSS from /proc/<pid>/status \
         and PSS from smaps_rollup, summed over every process of the agent: redha's one \
         process; keepalived's parent and its VRRP child), then every process of the \
         agent is SIGKILLed at once (keepalived: child first, then parent, so nothing \
         can send a priority-0 advert), and the hosts are watched for 3 × \
         Master_Down_Interval({HIGH}) or the lease + 1.5 s, the longer: {:.1} s: takeover = kill → backup holds the VIP, \
         VIP gone = kill → the killed host no longer has it, overlap = time both held it. \
         Term lab: election again, the master idles {} s + phase, gets SIGTERM, takeover = \
         signal → backup holds the VIP. The phase, (run − 0.5)/runs × advert_int, spreads \
         the kill over the advert cycle. Events are polled every {} ms with `ip addr` \
         (a few ms per call) and timed at the midpoint between the last negative and the \
         first positive check. Cells: median over the runs (election: both labs, so 2 \
         per run), then (min–max). The bound column is what {timers}, \
         Master_Down_Interval = 3 × advert_int + Skew_Time), without process start-up or \
         netlink latency; a kernel address lifetime expires up to about 0.5 s late (the \
         kernel's expiry check is scheduled with round_jiffies_up, up to HZ/4 late, on a \
         timer wheel that rounds up by 64 jiffies in this range). {probe}",
        keepalived_version(),
        setting.label(),
        setting.nodes().0.vips[0],
        master_idle(setting).as_secs_f64(),
        (high.master_down_interval() * 3)
            .max(high.address_lease() + Duration::from_millis(1500))
            .as_secs_f64(),
        TERM_SETTLE.as_secs(),
        POLL.as_millis(),
    )
}

/// keepalived's version number (`2.2.7`), from `keepalived --version`.
fn keepalived_version() -> String {
    let Some(bin) = keepalived::binary() else {
        return String::new();
    };
    measure::version(bin, &["--version"])
        .split_whitespace()
        .nth(1)
        .map(str::to_owned)
        .unwrap_or_default()
}
