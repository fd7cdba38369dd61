//! AAC: the `AudioSpecificConfig` (ISO/IEC 14496-3 §1.6.2.1).

use bytes::Bytes;

use crate::bits::BitReader;
use crate::MediaError;

/// §1.6.3.4, `samplingFrequencyIndex` 0 to 12.
const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Object types whose `GASpecificConfig` starts with `frameLengthFlag` (§4.4.1).
const GA_OBJECT_TYPES: [u8; 12] = [1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23];

/// A parsed `AudioSpecificConfig`, as carried in an FLV AAC sequence header and copied
/// unchanged into the `esds` DecoderSpecificInfo of the CMAF header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AacConfig {
    /// The config exactly as received.
    pub record: Bytes,
    /// `audioObjectType` as signalled first: 2 AAC-LC, 5 SBR (HE-AAC), 29 PS (HE-AAC v2) …
    pub object_type: u8,
    /// The core sampling frequency in Hz, from the index table or the explicit 24-bit field.
    /// This is the track's timescale.
    pub sample_rate: u32,
    /// The output sampling frequency of explicitly signalled SBR, when present.
    pub extension_sample_rate: Option<u32>,
    /// `channelConfiguration` (0 means a program config element describes the channels).
    pub channel_config: u8,
    /// Samples per channel in one access unit at `sample_rate`: 1024, or 960 when
    /// `frameLengthFlag` is set.
    pub frame_samples: u32,
}

impl AacConfig {
    /// The RFC 6381 `CODECS` value: `mp4a.40.N` with `N` the object type.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// The channel count for the sample entry: configuration 7 is 7.1 (8 channels), 11 is
    /// 6.1, 12 and 14 are 7.1; configuration 0 (a program config element) is reported as 2.
    pub fn channels(&self) -> u16 {
        match self.channel_config {
            1..=6 => u16::from(self.channel_config),
            7 | 12 | 14 => 8,
            11 => 7,
            13 => 24,
            _ => 2,
        }
    }
}

/// Parses an `AudioSpecificConfig`.
///
/// Only AAC object types are accepted (Main, LC, SSR, LTP, SBR, Scalable, ER variants, PS);
/// shardcast packages `mp4a.40.*` and nothing else.
pub fn parse_audio_specific_config(record: &Bytes) -> Result<AacConfig, MediaError> {
    let mut r = BitReader::unescaped(record, "AudioSpecificConfig");
    let object_type = read_object_type(&mut r)?;
    let sample_rate = read_sample_rate(&mut r)?;
    let channel_config = r.bits(4)? as u8;
    let mut extension_sample_rate = None;
    let mut core_object_type = object_type;
    if object_type == 5 || object_type == 29 {
        extension_sample_rate = Some(read_sample_rate(&mut r)?);
        core_object_type = read_object_type(&mut r)?;
    }
    if !GA_OBJECT_TYPES.contains(&core_object_type) {
        return Err(MediaError::Unsupported {
            what: "AAC audio object type",
        });
    }
    let frame_samples = if r.flag()? { 960 } else { 1024 };
    Ok(AacConfig {
        record: record.clone(),
        object_type,
        sample_rate,
        extension_sample_rate,
        channel_config,
        frame_samples,
    })
}

fn read_object_type(r: &mut BitReader<'_>) -> Result<u8, MediaError> {
    let short = r.bits(5)? as u8;
    if short == 31 {
        Ok(32 + r.bits(6)? as u8)
    } else if short == 0 {
        Err(MediaError::Invalid {
            what: "AAC audio object type 0",
        })
    } else {
        Ok(short)
    }
}

fn read_sample_rate(r: &mut BitReader<'_>) -> Result<u32, MediaError> {
    let index = r.bits(4)? as usize;
    let rate = if index == 15 {
        r.bits(24)?
    } else {
        *SAMPLE_RATES.get(index).ok_or(MediaError::Invalid {
            what: "AAC samplingFrequencyIndex",
        })?
    };
    if !(1000..=192_000).contains(&rate) {
        return Err(MediaError::Invalid {
            what: "AAC sampling frequency",
        });
    }
    Ok(rate)
}
