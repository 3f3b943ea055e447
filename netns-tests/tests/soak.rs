//! The fault soak's short fixed-seed form (issue 10): one fault of every kind
//! (the schedule's first draws are a shuffle of all kinds), each healed and
//! checked: the pair settles within its protocol bound, the replica catches up,
//! no acknowledged write is missing except the asynchronous tail of a master's
//! Redis SIGKILLed, the agents run without panics and within their memory bound.
//! The hour-long form is `target/release/soak --seed 1 --duration 60m` (README,
//! "Fault soak").

use std::time::Duration;

use netns_tests::pair::require;
use netns_tests::soak::cluster::Persist;
use netns_tests::soak::schedule::{Kind, Schedule, Target};
use netns_tests::soak::{self, Config};

/// The seed CI runs: its first twelve draws (one of each kind) all hit the master,
/// the reload excepted (it changes one node's file and needs no failover), so every
/// failover path runs (checked below).
const SEED: u64 = 2_292_810;

#[test]
fn every_fault_kind_once_with_a_fixed_seed() {
    let test = "every_fault_kind_once_with_a_fixed_seed";
    if !require(test) {
        return;
    }
    let first: Vec<_> = Schedule::new(SEED, Kind::ALL.to_vec())
        .take(Kind::ALL.len())
        .collect();
    assert!(
        first
            .iter()
            .all(|f| f.target == Target::Master || f.kind == Kind::Reload),
        "seed {SEED} no longer hits the master with every fault: {first:#?}"
    );
    let cfg = Config {
        seed: SEED,
        // A cap only: the run stops after one fault of each kind.
        duration: Duration::from_secs(600),
        kinds: Kind::ALL.to_vec(),
        max_faults: Some(Kind::ALL.len()),
        persist: Persist::Mixed,
        keep_going: false,
    };
    let outcome = soak::run(&cfg);
    let table = outcome.report.render();
    println!("{table}");
    assert!(outcome.passed(), "{}\n{table}", outcome.failure);
    for kind in Kind::ALL {
        let k = outcome.report.kinds.get(&kind);
        assert!(
            k.is_some_and(|k| k.injected == 1 && k.recovered == 1),
            "{kind} was not injected and recovered once: {k:?}\n{table}"
        );
    }
}
