//! A danmaku client message through the verified decoder, every field read, and a re-encode
//! that must decode to the same message. See `shardcast_wire::fuzz_decode_client`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shardcast_wire::fuzz_decode_client(data);
});
