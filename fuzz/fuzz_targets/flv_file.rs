//! A whole FLV file (header, tags, previous-tag sizes) through the file reader, the demuxer
//! and a stream home with LL-HLS and transcoding on. See `shardcast_media::fuzz_flv_file`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shardcast_media::fuzz_flv_file(data);
});
