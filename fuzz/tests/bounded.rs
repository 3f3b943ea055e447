//! `cargo test -p fuzz`: a bounded fixed-seed pass of every target (a few seconds
//! each in a debug build), and every input that ever crashed a target, replayed.

use fuzz::{Target, corpus, hex, read_dir_sorted, regressions_dir, run, run_one};

/// Inputs per target in the fixed-seed pass: a few seconds each, unoptimized.
fn budget(target: Target) -> u64 {
    match target {
        Target::VrrpDecode => 1_000_000,
        Target::InfoParse => 20_000,
        Target::ConfigParse => 15_000,
        Target::Migrate => 8_000,
    }
}

fn pass(target: Target) {
    let seeds = corpus(target);
    assert!(!seeds.is_empty(), "no seed corpus for {}", target.name());
    let report = run(target, seeds, 20_261_202, budget(target));
    eprintln!("{report}");
    let crashes: Vec<String> = report
        .crashes
        .iter()
        .map(|c| format!("input {}: {}\n  {}", c.index, c.message, hex(&c.input)))
        .collect();
    assert!(crashes.is_empty(), "{report}\n{}", crashes.join("\n"));
    // The generator reaches both sides of every target.
    assert!(report.accepted > 0 && report.rejected > 0, "{report}");
}

#[test]
fn vrrp_decode_fixed_seed() {
    pass(Target::VrrpDecode);
}

#[test]
fn info_parse_fixed_seed() {
    pass(Target::InfoParse);
}

#[test]
fn config_parse_fixed_seed() {
    pass(Target::ConfigParse);
}

#[test]
fn migrate_fixed_seed() {
    pass(Target::Migrate);
}

#[test]
fn every_seed_and_every_crash_found_so_far_passes() {
    for target in Target::ALL {
        for (path, input) in read_dir_sorted(&fuzz::corpus_dir(target))
            .into_iter()
            .chain(read_dir_sorted(&regressions_dir(target)))
        {
            if let Err(message) = run_one(target, &input) {
                panic!("{}: {}: {message}", target.name(), path.display());
            }
        }
    }
}

#[test]
fn the_generator_is_reproducible() {
    for target in Target::ALL {
        let mutator = fuzz::Mutator::new(target, corpus(target));
        let draw = |seed| {
            let mut rng = fuzz::Rng::new(seed);
            (0..50)
                .map(|_| mutator.generate(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7), "{}", target.name());
        assert_ne!(draw(7), draw(8), "{}", target.name());
    }
}
