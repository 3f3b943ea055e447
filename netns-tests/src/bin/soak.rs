//! `soak`: the randomized fault soak of issue 10 (see `netns_tests::soak`).
//!
//! ```text
//! soak --seed N --duration 60m [--faults kind,kind|all] [--count N]
//!      [--persistence mixed|rdb|aof] [--keep-going]
//! ```
//!
//! Runs as root; uses `$REDHA_BIN` or the `redha` built beside this binary.
//! Exits 0 when every check held, 1 on a violation (after printing the seed, the
//! schedule so far, the replay command and the diagnostics), 2 on bad arguments.

use std::process::ExitCode;
use std::time::Duration;

use netns_tests::soak::cluster::Persist;
use netns_tests::soak::schedule::Kind;
use netns_tests::soak::{self, Config};
use netns_tests::{measure, pair};

const USAGE: &str = "usage: soak --seed N --duration D (90s, 20m, 1h) [--faults KIND,...|all \
                     (default all)] [--count N (stop after N faults)] [--persistence \
                     mixed|rdb|aof (default mixed: host 1 RDB snapshots, host 2 AOF)] \
                     [--keep-going (go on after a violation)]";

/// `90s`, `20m`, `1h`, `300` (seconds).
fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" | "min" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
    let mut seed = None;
    let mut duration = None;
    let mut cfg = Config {
        seed: 0,
        duration: Duration::ZERO,
        kinds: Kind::ALL.to_vec(),
        max_faults: None,
        persist: Persist::Mixed,
        keep_going: false,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--seed" => {
                let v = value("--seed")?;
                seed = Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("--seed: `{v}` is not a number"))?,
                );
            }
            "--duration" => {
                let v = value("--duration")?;
                duration = Some(
                    parse_duration(&v)
                        .ok_or_else(|| format!("--duration: `{v}` is not like 90s, 20m, 1h"))?,
                );
            }
            "--faults" => cfg.kinds = Kind::parse_list(&value("--faults")?)?,
            "--count" => {
                let v = value("--count")?;
                cfg.max_faults = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("--count: `{v}` is not a positive number"))?,
                );
            }
            "--persistence" => {
                let v = value("--persistence")?;
                cfg.persist = Persist::parse(&v)
                    .ok_or_else(|| format!("--persistence: `{v}` is not mixed, rdb or aof"))?;
            }
            "--keep-going" => cfg.keep_going = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    cfg.seed = seed.ok_or_else(|| format!("--seed is required\n{USAGE}"))?;
    cfg.duration = duration.ok_or_else(|| format!("--duration is required\n{USAGE}"))?;
    Ok(cfg)
}

fn main() -> ExitCode {
    let cfg = match parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(code) = measure::require_root("soak", "network namespaces, VRRP") {
        return code;
    }
    if let Err(code) = measure::require_redha_bin("soak") {
        return code;
    }
    if !pair::require("soak") {
        return ExitCode::from(1);
    }
    let outcome = soak::run(&cfg);
    println!("\n{}", outcome.report.render());
    if outcome.passed() {
        println!("soak: every check held (seed {})", cfg.seed);
        ExitCode::SUCCESS
    } else {
        eprintln!("{}", outcome.failure);
        eprintln!(
            "soak: {} violation(s); seed {}; replay: {}",
            outcome.report.violations.len(),
            cfg.seed,
            cfg.replay_command()
        );
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Config, String> {
        parse_args(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("20m"), Some(Duration::from_secs(1200)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("300"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("5d"), None);
        assert_eq!(parse_duration("m"), None);
    }

    #[test]
    fn arguments_parse_and_replay() {
        let c = args("--seed 7 --duration 20m").unwrap();
        assert_eq!((c.seed, c.duration), (7, Duration::from_secs(1200)));
        assert_eq!(c.kinds, Kind::ALL);
        assert_eq!(
            c.replay_command(),
            "REDHA_BIN=$PWD/target/release/redha target/release/soak --seed 7 --duration 1200s"
        );
        let c = args("--seed 1 --duration 60s --faults loss,reload --count 3 --persistence aof")
            .unwrap();
        assert_eq!(c.kinds, [Kind::Loss, Kind::Reload]);
        assert!(
            c.replay_command()
                .ends_with("--faults loss,reload --count 3 --persistence aof"),
            "{}",
            c.replay_command()
        );
        assert!(args("--duration 1m").unwrap_err().contains("--seed"));
        assert!(args("--seed 1").unwrap_err().contains("--duration"));
        assert!(args("--seed x --duration 1m").is_err());
        assert!(args("--seed 1 --duration 1m --faults nope").is_err());
    }
}
