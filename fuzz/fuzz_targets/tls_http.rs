//! TLS connections of the engine in front of the HTTP request decoder: garbage where a
//! handshake should be, and real sessions carrying fuzzed (or tampered) requests. See
//! `shardcast_fuzz::tls_http` for the input layout and the checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shardcast_fuzz::tls_http(data);
});
