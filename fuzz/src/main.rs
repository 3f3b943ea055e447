//! The stable fuzz driver:
//!
//! ```text
//! cargo run --release -p fuzz -- --target vrrp_decode --inputs 10000000 --seed 1
//! cargo run --release -p fuzz -- --target all --inputs 1000000 --seed 7
//! ```
//!
//! Prints one line per target (inputs, accepted, rejected, crashes, speed) and each
//! distinct crash with the input in hex; crashing inputs are written to
//! `fuzz/crashes/<target>/` (or `--save DIR`). Exits 1 if anything crashed.

use std::path::PathBuf;
use std::process::ExitCode;

use fuzz::{Target, corpus, hex, run};

fn usage() -> ExitCode {
    eprintln!(
        "usage: fuzz --target <vrrp_decode|info_parse|config_parse|migrate|all> [--inputs N] [--seed S] [--save DIR]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut targets = Vec::new();
    let mut inputs: u64 = 100_000;
    let mut seed: u64 = 1;
    let mut save = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crashes");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next();
        match arg.as_str() {
            "--target" => match value().as_deref() {
                Some("all") => targets = Target::ALL.to_vec(),
                Some(name) => match Target::from_name(name) {
                    Some(t) => targets.push(t),
                    None => return usage(),
                },
                None => return usage(),
            },
            "--inputs" => match value().and_then(|v| v.replace('_', "").parse().ok()) {
                Some(n) => inputs = n,
                None => return usage(),
            },
            "--seed" => match value().and_then(|v| v.parse().ok()) {
                Some(s) => seed = s,
                None => return usage(),
            },
            "--save" => match value() {
                Some(dir) => save = PathBuf::from(dir),
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    if targets.is_empty() {
        return usage();
    }
    let mut crashed = false;
    for target in targets {
        let report = run(target, corpus(target), seed, inputs);
        println!("{report}");
        for crash in &report.crashes {
            crashed = true;
            let dir = save.join(target.name());
            let path = dir.join(format!("seed{seed}-input{}.bin", crash.index));
            let saved = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&path, &crash.input))
                .map_or_else(
                    |e| format!("not saved: {e}"),
                    |()| path.display().to_string(),
                );
            println!(
                "  CRASH input {} ({} bytes, {saved}): {}\n    {}",
                crash.index,
                crash.input.len(),
                crash.message,
                hex(&crash.input)
            );
        }
    }
    if crashed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
