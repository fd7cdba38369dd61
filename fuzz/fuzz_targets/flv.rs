//! An FLV audio or video tag body through the demuxer, the codec configuration parsers, the
//! CMAF muxer and the segmenter. See `shardcast_media::fuzz_flv` for the checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shardcast_media::fuzz_flv(data);
});
