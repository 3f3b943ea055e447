//! libFuzzer target (nightly, `cargo fuzz run migrate`): the same property as the stable
//! generator's `--target migrate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fuzz::Target::Migrate.run(data);
});
