//! Writing FLV: the file header, tags, and the tag bodies of H.264, H.265 and AAC, the
//! inverse of [`crate::flv`]'s parsing. For players that take FLV over HTTP or a WebSocket
//! and for RTMP play: one encoded tag is made once per stream and shared by every viewer.
//!
//! H.264 and AAC are written as legacy FLV (Adobe FLV 10.1, Annex E), which every FLV player
//! reads; H.265 as Enhanced RTMP v1 (`hvc1`), which is what players that take H.265 in FLV
//! (mpegts.js, ffmpeg 6+, OBS 29.1+) read.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::VideoCodec;
use crate::flv::TagKind;

/// The FLV file header's size (a zero `PreviousTagSize0` follows it).
pub const FILE_HEADER_LEN: usize = 9;
/// A tag header's size: type, data size, timestamp, stream id.
pub const TAG_HEADER_LEN: usize = 11;
/// A tag body's largest size: its length field has 24 bits.
pub const TAG_BODY_MAX: usize = (1 << 24) - 1;

/// The FLV header (version 1, flags naming the tracks the file has) and the zero
/// `PreviousTagSize0` after it.
pub fn file_header((audio, video): (bool, bool)) -> [u8; FILE_HEADER_LEN + 4] {
    let flags = u8::from(audio) << 2 | u8::from(video);
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// One whole tag: its header, `body`, and the `PreviousTagSize` that follows it. None for a
/// body past [`TAG_BODY_MAX`] or a kind with no tag type.
///
/// `timestamp_ms` is the decode time; past 2^24 ms (4.6 hours) it goes on in the extension
/// byte, as the FLV specification says, and wraps at 2^32.
pub fn tag(kind: TagKind, timestamp_ms: u32, body: &[u8]) -> Option<Bytes> {
    let tag_type = match kind {
        TagKind::Audio => 8,
        TagKind::Video => 9,
        TagKind::Script => 18,
        TagKind::Other(_) => return None,
    };
    if body.len() > TAG_BODY_MAX {
        return None;
    }
    let mut out = BytesMut::with_capacity(TAG_HEADER_LEN + body.len() + 4);
    out.put_u8(tag_type);
    out.put_uint(body.len() as u64, 3);
    out.put_uint(u64::from(timestamp_ms & 0x00ff_ffff), 3);
    out.put_u8((timestamp_ms >> 24) as u8);
    out.put_uint(0, 3); // stream id
    out.put_slice(body);
    out.put_u32((TAG_HEADER_LEN + body.len()) as u32);
    Some(out.freeze())
}

/// The body of a video tag carrying a decoder configuration record (`avcC` or `hvcC`).
pub fn video_sequence_start(codec: VideoCodec, record: &[u8]) -> Vec<u8> {
    let mut body = video_head(codec, (1, 0));
    if codec == VideoCodec::Avc {
        body.extend_from_slice(&[0, 0, 0]); // composition time
    }
    body.extend_from_slice(record);
    body
}

/// The body of a video tag carrying one access unit of length-prefixed NAL units, a
/// keyframe (IDR, IRAP) or not, presented `composition_ms` after its decode time.
pub fn video_frame(
    codec: VideoCodec,
    (keyframe, composition_ms): (bool, i32),
    data: &[u8],
) -> Vec<u8> {
    // FrameType 1: seekable (a keyframe); 2: not.
    let frame_type = if keyframe { 1 } else { 2 };
    let mut body = video_head(codec, (frame_type, 1));
    // Signed 24 bits: clamped, as a B-frame's offset never comes near 2^23 ms.
    let composition = composition_ms.clamp(-(1 << 23), (1 << 23) - 1);
    body.extend_from_slice(&composition.to_be_bytes()[1..]);
    body.extend_from_slice(data);
    body
}

/// The body of a video tag ending the sequence.
pub fn video_sequence_end(codec: VideoCodec) -> Vec<u8> {
    let mut body = video_head(codec, (1, 2));
    if codec == VideoCodec::Avc {
        body.extend_from_slice(&[0, 0, 0]);
    }
    body
}

/// A video tag body's first bytes for `(frame type, packet type)`: legacy
/// `FrameType | CodecID 7` and `AVCPacketType` for H.264; Enhanced RTMP's
/// `IsExHeader | FrameType | PacketType` and FourCC for H.265.
fn video_head(codec: VideoCodec, (frame_type, packet_type): (u8, u8)) -> Vec<u8> {
    match codec {
        VideoCodec::Avc => vec![frame_type << 4 | 7, packet_type],
        VideoCodec::Hevc => {
            let mut head = vec![0x80 | frame_type << 4 | packet_type];
            head.extend_from_slice(b"hvc1");
            head
        }
    }
}

/// `SoundFormat` 10 (AAC), and the rate, size and type fields FLV says AAC always has
/// (44 kHz, 16-bit, stereo): players take the real ones from the `AudioSpecificConfig`.
const AAC_HEAD: u8 = 10 << 4 | 3 << 2 | 1 << 1 | 1;

/// The body of an audio tag carrying an AAC `AudioSpecificConfig`.
pub fn audio_sequence_start(config: &[u8]) -> Vec<u8> {
    let mut body = vec![AAC_HEAD, 0];
    body.extend_from_slice(config);
    body
}

/// The body of an audio tag carrying one raw AAC frame.
pub fn audio_frame(data: &[u8]) -> Vec<u8> {
    let mut body = vec![AAC_HEAD, 1];
    body.extend_from_slice(data);
    body
}

#[cfg(test)]
mod tests;
