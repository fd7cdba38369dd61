//! The WebSocket frame decoder fed one connection's bytes whole, at fuzzer-chosen cuts and one
//! byte at a time. See `shardcast_fuzz::ws_decoder` for the input layout and the checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shardcast_fuzz::ws_decoder(data);
});
