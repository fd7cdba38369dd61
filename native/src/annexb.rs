//! Annex B framing for the encoders' output. The byte handling itself lives in
//! `shardcast_media::codec` (the shards use it too, for WebRTC); this maps an encoder's codec
//! onto it.

use crate::CodecId;
use shardcast_media::codec::VideoCodec;

pub use shardcast_media::codec::{avcc_from_annexb, hvcc_from_annexb, nal_units};

/// Rewrites an Annex B access unit as 4-byte-length-prefixed NAL units (ISO/IEC 14496-15),
/// leaving out parameter sets and access unit delimiters (they live in the `avcC` / `hvcC`).
pub fn to_length_prefixed(data: &[u8], codec: CodecId) -> Vec<u8> {
    let codec = match codec {
        CodecId::Hevc => VideoCodec::Hevc,
        // Only H.264 and H.265 encoders are opened, and only they write Annex B.
        CodecId::H264 | CodecId::Aac | CodecId::Opus | CodecId::Vp8 => VideoCodec::Avc,
    };
    shardcast_media::codec::to_length_prefixed(data, codec)
}
