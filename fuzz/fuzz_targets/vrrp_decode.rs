//! libFuzzer target (nightly, `cargo fuzz run vrrp_decode`): the same property as the stable
//! generator's `--target vrrp_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fuzz::Target::VrrpDecode.run(data);
});
