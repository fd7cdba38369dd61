//! Helpers shared by the integration tests: fixtures, FLV files, record wrappers, a PRNG.

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

/// One tag of an FLV file.
pub use shardcast_media::flv::{FileTag as FlvTag, TagKind};

/// Reads the tags of a fixture FLV file, which must be whole.
pub fn read_flv(file: &Bytes) -> Vec<FlvTag> {
    let mut reader = shardcast_media::flv::FileReader::new(file.clone()).expect("an FLV file");
    let tags = reader.by_ref().collect();
    assert!(!reader.is_truncated(), "truncated FLV file");
    tags
}

/// The sequence header (decoder configuration record) of the first video tag that has one.
pub fn first_video_sequence_header(tags: &[FlvTag]) -> Bytes {
    tags.iter()
        .find(|t| {
            t.kind == TagKind::Video && t.body.len() > 5 && t.body[0] & 0x0F == 7 && t.body[1] == 0
        })
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
