//! Helpers shared by the integration tests: fixtures and a minimal FLV file reader.

#![allow(dead_code)]

use std::path::PathBuf;

use bytes::Bytes;

/// The path of a fixture file.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The bytes of a fixture file.
pub fn fixture(name: &str) -> Bytes {
    let path = fixture_path(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// One tag of an FLV file: what an RTMP message would carry.
#[derive(Clone, Debug)]
pub struct FlvTag {
    /// 8 audio, 9 video, 18 script data.
    pub tag_type: u8,
    /// The tag timestamp, extended byte included.
    pub timestamp_ms: u32,
    /// The tag body, a slice of the file.
    pub body: Bytes,
}

/// Reads the tags of an FLV file (header, then tag / previous-tag-size pairs).
pub fn read_flv(file: &Bytes) -> Vec<FlvTag> {
    assert_eq!(&file[..3], b"FLV", "not an FLV file");
    let header_len = u32::from_be_bytes([file[5], file[6], file[7], file[8]]) as usize;
    let mut pos = header_len + 4;
    let mut tags = Vec::new();
    while pos + 11 <= file.len() {
        let tag_type = file[pos] & 0x1F;
        let size = u32::from_be_bytes([0, file[pos + 1], file[pos + 2], file[pos + 3]]) as usize;
        let timestamp_ms =
            u32::from_be_bytes([file[pos + 7], file[pos + 4], file[pos + 5], file[pos + 6]]);
        let start = pos + 11;
        assert!(start + size <= file.len(), "truncated FLV tag");
        tags.push(FlvTag {
            tag_type,
            timestamp_ms,
            body: file.slice(start..start + size),
        });
        pos = start + size + 4;
    }
    tags
}

/// The sequence header (decoder configuration record) of the first video tag that has one.
pub fn first_video_sequence_header(tags: &[FlvTag]) -> Bytes {
    tags.iter()
        .find(|t| t.tag_type == 9 && t.body.len() > 5 && t.body[0] & 0x0F == 7 && t.body[1] == 0)
        .map(|t| t.body.slice(5..))
        .expect("no AVC sequence header")
}

/// Wraps a record in a legacy AVC sequence header tag body.
pub fn legacy_avc_sequence_header(record: &[u8]) -> Bytes {
    let mut body = vec![0x17, 0, 0, 0, 0];
    body.extend_from_slice(record);
    Bytes::from(body)
}

/// Wraps a record in an Enhanced RTMP `hvc1` SequenceStart tag body.
pub fn enhanced_hevc_sequence_start(record: &[u8]) -> Bytes {
    let mut body = vec![0x80 | 0x10, b'h', b'v', b'c', b'1'];
    body.extend_from_slice(record);
    Bytes::from(body)
}

/// A deterministic xorshift64* generator for the fuzz loops and synthetic streams.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
