//! Opus: the `OpusHead` an encoder hands out (RFC 7845 §5.1) and the `dOps` box that carries
//! the same facts in MP4 ("Encapsulation of Opus in ISO Base Media File Format" §4.3.2).

use bytes::Bytes;

use crate::MediaError;

/// Opus always decodes at 48 kHz; its timestamps count 48 kHz samples.
pub const OPUS_SAMPLE_RATE: u32 = 48_000;

/// An Opus track's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpusConfig {
    /// Output channels (1 or 2: mapping family 0).
    pub channels: u8,
    /// Samples (at 48 kHz) to drop from the decoder's output at the start.
    pub pre_skip: u16,
    /// The sample rate of the encoder's input, informational.
    pub input_sample_rate: u32,
    /// Output gain, Q7.8 dB.
    pub output_gain: i16,
    /// The `dOps` box payload, built from the fields above.
    pub record: Bytes,
}

impl OpusConfig {
    /// The RFC 6381 codecs string.
    pub fn codec_string(&self) -> String {
        "opus".to_string()
    }

    /// The `OpusHead` (RFC 7845 §5.1) of these fields, as a decoder takes it.
    pub fn opus_head(&self) -> Vec<u8> {
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(self.channels);
        head.extend_from_slice(&self.pre_skip.to_le_bytes());
        head.extend_from_slice(&self.input_sample_rate.to_le_bytes());
        head.extend_from_slice(&self.output_gain.to_le_bytes());
        head.push(0); // channel mapping family 0
        head
    }
}

/// Parses an `OpusHead` (mapping family 0: mono or stereo) into a configuration whose
/// `record` is the matching `dOps` payload.
pub fn parse_opus_head(head: &[u8]) -> Result<OpusConfig, MediaError> {
    if head.len() < 19 {
        return Err(MediaError::Truncated { what: "OpusHead" });
    }
    if &head[..8] != b"OpusHead" || head[8] >> 4 != 0 {
        return Err(MediaError::Invalid { what: "OpusHead" });
    }
    let channels = head[9];
    let pre_skip = u16::from_le_bytes([head[10], head[11]]);
    let input_sample_rate = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
    let output_gain = i16::from_le_bytes([head[16], head[17]]);
    let family = head[18];
    if family != 0 {
        return Err(MediaError::Unsupported {
            what: "Opus channel mapping family other than 0",
        });
    }
    if !(1..=2).contains(&channels) {
        return Err(MediaError::Invalid {
            what: "Opus channel count",
        });
    }
    let mut record = Vec::with_capacity(11);
    record.push(0); // Version
    record.push(channels); // OutputChannelCount
    record.extend_from_slice(&pre_skip.to_be_bytes());
    record.extend_from_slice(&input_sample_rate.to_be_bytes());
    record.extend_from_slice(&output_gain.to_be_bytes());
    record.push(family); // ChannelMappingFamily
    Ok(OpusConfig {
        channels,
        pre_skip,
        input_sample_rate,
        output_gain,
        record: Bytes::from(record),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_head_becomes_dops() {
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        let config = parse_opus_head(&head).unwrap();
        assert_eq!(config.channels, 2);
        assert_eq!(config.pre_skip, 312);
        assert_eq!(config.input_sample_rate, 48_000);
        assert_eq!(
            &config.record[..],
            &[0, 2, 0x01, 0x38, 0, 0, 0xbb, 0x80, 0, 0, 0]
        );
        assert_eq!(config.opus_head(), head, "the OpusHead again");
        assert!(parse_opus_head(&head[..18]).is_err());
        let mut bad = head.clone();
        bad[0] = b'X';
        assert!(parse_opus_head(&bad).is_err());
        let mut surround = head.clone();
        surround[18] = 1;
        assert!(parse_opus_head(&surround).is_err());
    }
}
