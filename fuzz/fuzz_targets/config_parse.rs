//! libFuzzer target (nightly, `cargo fuzz run config_parse`): the same property as the stable
//! generator's `--target config_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fuzz::Target::ConfigParse.run(data);
});
