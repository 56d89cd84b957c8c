//! cargo-fuzz entry point of [`ajwt_fuzz::intent_token`] (see crates/fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ajwt_fuzz::intent_token(data);
});
