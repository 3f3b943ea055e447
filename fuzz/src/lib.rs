//! Fuzzing redha's decoders and parsers: the VRRP packet decoder, the Redis INFO
//! parser, the TOML configuration loader and the keepalived.conf migrator.
//!
//! Each target ([`Target`]) takes arbitrary bytes and checks properties that must
//! hold for every input (no panic; decode/encode round trips; errors that name what
//! they should). Two drivers run them:
//!
//! - on the stable toolchain, a generator ([`run`]): a seeded PRNG applies stacked,
//!   structure-aware mutations to the seed corpus in `fuzz/corpus/<target>/`; the
//!   same target, seed and count always give the same inputs, so a crash is replayed
//!   by its seed alone. `cargo test -p fuzz` runs a bounded fixed-seed pass of each
//!   target; `cargo run --release -p fuzz -- --target X --inputs N --seed S` runs
//!   as many as wanted;
//! - on nightly, `cargo fuzz run <target>` (feature `libfuzzer`, targets in
//!   `fuzz_targets/`): coverage-guided libFuzzer on the same functions.

#![warn(missing_docs)]

pub mod mutate;
pub mod targets;

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use mutate::{Mutator, Rng};
pub use targets::{Outcome, Target};

/// The corpus directory of a target, in this crate.
pub fn corpus_dir(target: Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target.name())
}

/// The directory of a target's regression inputs (every crash found, kept).
pub fn regressions_dir(target: Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("regressions")
        .join(target.name())
}

/// The files of a directory, sorted by name (so that runs are reproducible); none
/// if it does not exist.
pub fn read_dir_sorted(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|bytes| (p, bytes)))
        .collect()
}

/// An input that broke a property.
#[derive(Clone, Debug)]
pub struct Crash {
    /// Which input of the run (0-based), to replay it with the same seed.
    pub index: u64,
    /// The panic message, with its location.
    pub message: String,
    /// The input.
    pub input: Vec<u8>,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Report {
    /// The target.
    pub target: Target,
    /// The seed.
    pub seed: u64,
    /// Inputs run.
    pub inputs: u64,
    /// Inputs taken without error.
    pub accepted: u64,
    /// Inputs refused with an error.
    pub rejected: u64,
    /// Inputs that broke a property, the first of each distinct message.
    pub crashes: Vec<Crash>,
    /// Inputs that broke a property, all of them.
    pub crash_count: u64,
    /// How long it took.
    pub elapsed: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "{}: seed {} inputs {} ({} accepted, {} rejected) crashes {} ({} distinct) in {:.1?} ({:.0} inputs/s)",
            self.target.name(),
            self.seed,
            self.inputs,
            self.accepted,
            self.rejected,
            self.crash_count,
            self.crashes.len(),
            self.elapsed,
            rate
        )
    }
}

/// The message of the last panic on this thread, kept by [`run`]'s panic hook.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Runs one input, catching a panic: `Err(message)` if a property broke.
pub fn run_one(target: Target, input: &[u8]) -> Result<Outcome, String> {
    match panic::catch_unwind(AssertUnwindSafe(|| target.run(input))) {
        Ok(outcome) => Ok(outcome),
        Err(payload) => {
            let hooked = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).take();
            Err(hooked.unwrap_or_else(|| {
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into())
            }))
        }
    }
}

/// Runs `inputs` generated inputs of `target` from the seed corpus `seeds`, with
/// `seed`; every seed itself runs first. Panics are caught and reported (quietly:
/// the panic hook is replaced while it runs); the run goes on after a crash.
pub fn run(target: Target, seeds: Vec<Vec<u8>>, seed: u64, inputs: u64) -> Report {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(format!("{message}{location}"));
    }));
    let start = Instant::now();
    let mutator = Mutator::new(target, seeds);
    let mut rng = Rng::new(seed);
    let mut report = Report {
        target,
        seed,
        inputs: 0,
        accepted: 0,
        rejected: 0,
        crashes: Vec::new(),
        crash_count: 0,
        elapsed: Duration::ZERO,
    };
    let fixed: Vec<Vec<u8>> = mutator.seeds().to_vec();
    let mut index = 0u64;
    let mut next = |rng: &mut Rng| {
        let input = match fixed.get(index as usize) {
            Some(seed) => seed.clone(),
            None => mutator.generate(rng),
        };
        index += 1;
        input
    };
    for i in 0..inputs {
        let input = next(&mut rng);
        report.inputs += 1;
        match run_one(target, &input) {
            Ok(Outcome::Accepted) => report.accepted += 1,
            Ok(Outcome::Rejected) => report.rejected += 1,
            Err(message) => {
                report.crash_count += 1;
                let kind = crash_kind(&message);
                if !report
                    .crashes
                    .iter()
                    .any(|c| crash_kind(&c.message) == kind)
                {
                    report.crashes.push(Crash {
                        index: i,
                        message,
                        input,
                    });
                }
            }
        }
    }
    report.elapsed = start.elapsed();
    panic::set_hook(previous);
    report
}

/// A crash's message without its numbers (lines, offsets), so that one bug met
/// at many places is counted as one distinct crash.
fn crash_kind(message: &str) -> String {
    message.chars().filter(|c| !c.is_ascii_digit()).collect()
}

/// The seed corpus of a target as kept in this crate.
pub fn corpus(target: Target) -> Vec<Vec<u8>> {
    read_dir_sorted(&corpus_dir(target))
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect()
}

/// Hex of an input, for a report that must show it.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
