//! An RTMP server session fed arbitrary bytes: raw, after a valid handshake, and after a
//! valid handshake, `connect`, `createStream` and an accepted `publish`, cut into pieces.
//! See `shardcast_rtmp::fuzz_server_input` for the checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shardcast_rtmp::fuzz_server_input(data);
});
