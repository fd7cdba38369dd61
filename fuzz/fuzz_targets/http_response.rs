//! The edge's origin response reader fed one response whole, at fuzzer-chosen cuts and one
//! byte at a time. See `shardcast_fuzz::http_response` for the checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shardcast_fuzz::http_response(data);
});
