//! cargo-fuzz entry point of [`ajwt_fuzz::token_request`] (see crates/fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ajwt_fuzz::token_request(data);
});
