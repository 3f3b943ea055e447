//! libFuzzer target (nightly, `cargo fuzz run info_parse`): the same property as the stable
//! generator's `--target info_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fuzz::Target::InfoParse.run(data);
});
