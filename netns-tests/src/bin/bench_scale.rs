//! Benchmark: many VRRP instances in one agent, redha against keepalived in the same
//! run, in network namespaces. For each setting (150 instances at 1 s with VRRPv2,
//! 50 at 100 ms with VRRPv3 by default), each agent and each run: both hosts start
//! together (host 1 priority 150, host 2 100); the time until host 1 holds every VIP;
//! the CPU of the master's and the backup's agent (percent of one core; the master's
//! also in the kernel alone) and their resident memory over `--idle` (30 s by
//! default) of steady state; then the master's agent is SIGKILLed and the time until host 2 holds every VIP. Prints a Markdown
//! table per setting: median and range over the runs.
//!
//! Run as root: `cargo build --release -p redha -p netns-tests --bins &&
//! REDHA_BIN=$PWD/target/release/redha target/release/bench_scale [--settings
//! v2:150:1s,v3:50:100ms] [--runs N] [--idle SECONDS]`. Tables to stdout, progress
//! to stderr.

use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::thread::sleep;
use std::time::{Duration, Instant};

use netns_tests::measure::{self, Flags, HIGH, LOW, Table, spread};
use netns_tests::procstat::{cpu_seconds, cpu_split, rss_mb};
use netns_tests::redha::control_socket;
use netns_tests::{Lab, Proc, keepalived, redha_bin};

/// How often the VIPs are looked at.
const POLL: Duration = Duration::from_millis(50);

/// One setting: the VRRP version, how many instances, the advert interval.
#[derive(Clone, Copy)]
struct Setting {
    version: u8,
    instances: u8,
    advert_int: Duration,
}

impl Setting {
    fn label(self) -> String {
        format!(
            "VRRPv{}, {} instances at {}",
            self.version,
            self.instances,
            if self.advert_int < Duration::from_secs(1) {
                format!("{} ms", self.advert_int.as_millis())
            } else {
                format!("{} s", self.advert_int.as_secs())
            }
        )
    }

    fn vips(self) -> Vec<IpAddr> {
        (0..self.instances)
            .map(|k| IpAddr::from([192, 0, 2, 100 + k]))
            .collect()
    }

    /// Master_Down_Interval of the backup (priority 100), plus slack for starting
    /// every instance: how long the waits may take.
    fn bound(self) -> Duration {
        self.advert_int * 3
            + self.advert_int * (256 - u32::from(LOW)) / 256
            + Duration::from_secs(15)
    }

    /// The redha file of host `i`: one named instance per VIP.
    fn redha_file(self, lab: &Lab, i: usize, priority: u8) -> PathBuf {
        let mut s = format!(
            "[control]\nsocket = {:?}\n",
            control_socket(lab, i).display().to_string()
        );
        for (k, vip) in self.vips().iter().enumerate() {
            let _ = write!(
                s,
                "\n[instances.i{k}.vrrp]\ninterface = \"eth0\"\nvirtual_router_id = {}\npriority = {priority}\nversion = {}\nadvert_int = \"{}ms\"\nvirtual_ipaddresses = [\"{vip}/24\"]\n",
                k + 1,
                self.version,
                self.advert_int.as_millis()
            );
        }
        let path = lab.dir().join(format!("redha-h{i}.toml"));
        fs::write(&path, s).expect("write the redha file");
        path
    }

    /// The keepalived.conf of host `i`: one vrrp_instance per VIP.
    fn keepalived_conf(self, i: usize, priority: u8) -> String {
        let mut s = format!(
            "global_defs {{\n    router_id lab_h{i}\n    vrrp_version {}\n}}\n",
            self.version
        );
        for (k, vip) in self.vips().iter().enumerate() {
            let _ = write!(
                s,
                "vrrp_instance VI_{k} {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {}\n    priority {priority}\n    advert_int {}\n    virtual_ipaddress {{\n        {vip}/24\n    }}\n}}\n",
                k + 1,
                self.advert_int.as_secs_f64()
            );
        }
        s
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
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

    fn start(self, lab: &Lab, i: usize, setting: Setting, priority: u8) -> Proc {
        match self {
            Agent::Redha => {
                let path = setting.redha_file(lab, i, priority);
                let mut command = Command::new(redha_bin());
                command
                    .arg("--config")
                    .arg(&path)
                    .env("RUST_LOG", "info")
                    .env("NO_COLOR", "1");
                lab.spawn_command(i, &format!("redha-h{i}"), &command)
            }
            Agent::Keepalived => keepalived::start_with_config(
                lab,
                i,
                &format!("keepalived-h{i}.conf"),
                &setting.keepalived_conf(i, priority),
            ),
        }
    }

    /// Every process of the agent on host `i`.
    fn pids(self, lab: &Lab, i: usize, proc: &Proc) -> Vec<u32> {
        match self {
            Agent::Redha => vec![proc.pid()],
            Agent::Keepalived => keepalived::pids(lab, i, proc),
        }
    }

    /// A crash: nothing may say goodbye.
    fn kill(self, lab: &Lab, i: usize, proc: &Proc) {
        match self {
            Agent::Redha => {
                proc.signal(libc::SIGKILL);
            }
            Agent::Keepalived => keepalived::crash(lab, i, proc),
        }
    }
}

/// One run's numbers; `None` where the thing measured did not happen in time.
#[derive(Default)]
struct Run {
    elect: Option<f64>,
    master_cpu: Option<f64>,
    /// The part of `master_cpu` spent in the kernel.
    master_system: Option<f64>,
    backup_cpu: Option<f64>,
    master_rss: Option<f64>,
    backup_rss: Option<f64>,
    takeover: Option<f64>,
}

/// How many of `vips` host `i` holds.
fn held(lab: &Lab, i: usize, vips: &[IpAddr]) -> usize {
    let on = lab.addrs(i);
    vips.iter().filter(|v| on.contains(v)).count()
}

/// Polls until `done` or `within` passes: the time it took.
fn time_until(within: Duration, mut done: impl FnMut() -> bool) -> Option<f64> {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if done() {
            return Some(t0.elapsed().as_secs_f64());
        }
        sleep(POLL);
    }
    None
}

fn run_once(agent: Agent, setting: Setting, run: usize, idle: Duration) -> Run {
    let lab = Lab::new(&format!("scale{run}"), 2);
    let vips = setting.vips();
    let n = vips.len();
    let mut out = Run::default();
    let t0 = Instant::now();
    let master = agent.start(&lab, 1, setting, HIGH);
    let backup = agent.start(&lab, 2, setting, LOW);
    out.elect = time_until(setting.bound(), || {
        held(&lab, 1, &vips) == n && held(&lab, 2, &vips) == 0
    })
    .map(|_| t0.elapsed().as_secs_f64());
    if out.elect.is_none() {
        eprintln!(
            "  {} run {run}: host 1 holds {} of {n} VIPs, host 2 {}",
            agent.name(),
            held(&lab, 1, &vips),
            held(&lab, 2, &vips)
        );
        return out;
    }
    let (mp, bp) = (agent.pids(&lab, 1, &master), agent.pids(&lab, 2, &backup));
    let (m0, b0, s0) = (cpu_split(&mp), cpu_seconds(&bp), Instant::now());
    sleep(idle);
    let span = s0.elapsed().as_secs_f64();
    let m1 = cpu_split(&mp);
    out.master_cpu = Some((m1.0 + m1.1 - m0.0 - m0.1) / span * 100.0);
    out.master_system = Some((m1.1 - m0.1) / span * 100.0);
    out.backup_cpu = Some((cpu_seconds(&bp) - b0) / span * 100.0);
    out.master_rss = Some(rss_mb(&mp));
    out.backup_rss = Some(rss_mb(&bp));
    agent.kill(&lab, 1, &master);
    out.takeover = time_until(setting.bound(), || held(&lab, 2, &vips) == n);
    out
}

fn parse_setting(text: &str) -> Result<Setting, String> {
    let bad = || format!("bad setting {text:?}: write v2:150:1s or v3:50:100ms");
    let mut parts = text.split(':');
    let version = match parts.next() {
        Some("v2") => 2,
        Some("v3") => 3,
        _ => return Err(bad()),
    };
    let instances: u8 = parts
        .next()
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=150).contains(n))
        .ok_or_else(bad)?;
    let int = parts.next().ok_or_else(bad)?;
    let advert_int = if let Some(ms) = int.strip_suffix("ms") {
        Duration::from_millis(ms.parse().map_err(|_| bad())?)
    } else if let Some(s) = int.strip_suffix('s') {
        Duration::from_secs(s.parse().map_err(|_| bad())?)
    } else {
        return Err(bad());
    };
    Ok(Setting {
        version,
        instances,
        advert_int,
    })
}

fn main() -> ExitCode {
    let program = "bench_scale";
    if let Err(code) = measure::require_root(program, "network namespaces") {
        return code;
    }
    if let Err(code) = measure::require_redha_bin(program) {
        return code;
    }
    let (mut settings, mut runs, mut idle) = (
        vec![
            parse_setting("v2:150:1s").expect("default"),
            parse_setting("v3:50:100ms").expect("default"),
        ],
        3,
        Duration::from_secs(30),
    );
    let mut flags = Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        let parsed = match flag.as_str() {
            "--runs" => flags.runs().map(|r| runs = r),
            "--idle" => flags
                .value("--idle")
                .and_then(|v| v.parse::<u64>().map_err(|e| e.to_string()))
                .map(|s| idle = Duration::from_secs(s)),
            "--settings" => flags.value("--settings").and_then(|v| {
                settings = v.split(',').map(parse_setting).collect::<Result<_, _>>()?;
                Ok(())
            }),
            other => Err(format!("unknown flag {other}")),
        };
        if let Err(e) = parsed {
            eprintln!("{program}: {e}");
            return ExitCode::from(2);
        }
    }
    let began = Instant::now();
    for setting in settings {
        let mut cells: Vec<(Agent, Vec<Run>)> = Vec::new();
        for agent in [Agent::Redha, Agent::Keepalived] {
            let mut done = Vec::new();
            for run in 1..=runs {
                eprintln!("{}: {} run {run} of {runs}", setting.label(), agent.name());
                done.push(run_once(agent, setting, run, idle));
            }
            cells.push((agent, done));
        }
        println!("\n### {}\n", setting.label());
        let mut table = Table::new(["metric", "redha", "keepalived"]);
        type Pick = fn(&Run) -> Option<f64>;
        let rows: [(&str, Pick, &str); 7] = [
            (
                "time until host 1 holds every VIP (from the start)",
                |r| r.elect,
                "s",
            ),
            ("master's CPU, % of a core (idle)", |r| r.master_cpu, "%"),
            (
                "of which in the kernel (system time: sending the adverts)",
                |r| r.master_system,
                "%",
            ),
            ("backup's CPU, % of a core (idle)", |r| r.backup_cpu, "%"),
            ("master's resident memory", |r| r.master_rss, "MB"),
            ("backup's resident memory", |r| r.backup_rss, "MB"),
            (
                "takeover of every VIP after SIGKILL of the master",
                |r| r.takeover,
                "s",
            ),
        ];
        for (label, pick, unit) in rows {
            let mut row = vec![label.to_string()];
            for (_, done) in &cells {
                let vals: Vec<f64> = done.iter().filter_map(pick).collect();
                row.push(if vals.is_empty() {
                    "failed".to_string()
                } else {
                    let missing = done.len() - vals.len();
                    let mut cell = spread(&vals, |v| format!("{v:.2} {unit}"));
                    if missing > 0 {
                        let _ = write!(cell, ", {missing} failed");
                    }
                    cell
                });
            }
            table.row(row);
        }
        print!("{}", table.text());
    }
    println!(
        "\n{runs} runs per cell, {} s of steady state each; keepalived {}.",
        idle.as_secs(),
        measure::version("keepalived", &["--version"])
            .lines()
            .next()
            .unwrap_or("")
    );
    measure::finish(program, began.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
