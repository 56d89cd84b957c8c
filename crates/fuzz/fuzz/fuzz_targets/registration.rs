//! cargo-fuzz entry point of [`ajwt_fuzz::registration`] (see crates/fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ajwt_fuzz::registration(data);
});
