//! Parameter sets carried in band: a keyframe whose SPS describes another picture than the
//! track's configuration (an encoder that resized, or changed profile, without sending a new
//! sequence header) gets a configuration of its own, built from the parameter sets it
//! carries, so that the picture is packaged under a header that describes it.
//!
//! Encoders that repeat SPS and PPS in front of every IDR (hardware encoders, x264 with
//! `repeat-headers`, many IP cameras) send exactly that when their picture size changes; the
//! FLV sequence header they sent at the start still describes the old picture. Packaged under
//! the old header, the new pictures reach players whose decoders were set up for the old size
//! (an `avc1`/`hvc1` sample entry is authoritative), which show garbage or stop.

use bytes::Bytes;

use super::{
    avc_nal_type, hevc_nal_type, parse_avc_sps, parse_avcc, parse_hevc_sps, parse_hvcc, AvcConfig,
    HevcConfig, NalUnits, TrackConfig,
};
use crate::MediaError;

/// H.264 NAL unit types of parameter sets (H.264 Table 7-1).
const AVC_SPS: u8 = 7;
const AVC_PPS: u8 = 8;

/// H.265 NAL unit types of parameter sets (H.265 Table 7-1).
const HEVC_VPS: u8 = 32;
const HEVC_SPS: u8 = 33;
const HEVC_PPS: u8 = 34;

/// H.264 profiles whose `avcC` has no chroma format and bit depth extension: Baseline, Main
/// and Extended (ISO/IEC 14496-15 §5.3.3.1.2; every other profile has it).
const AVC_PLAIN_PROFILES: [u8; 3] = [66, 77, 88];

/// The most parameter sets of one kind an `avcC` can list (5 bits for SPS).
const AVC_SPS_COUNT_MAX: usize = 31;

/// The configuration a video sample's in-band parameter sets call for, when it differs from
/// `config`: `Some` when the sample carries an SPS that is not one of `config`'s and that
/// describes another picture (size, profile, level, chroma, bit depth, timing, colour). Its
/// record lists the sample's parameter sets, completed with `config`'s for a kind the sample
/// does not carry (a PPS that did not change, the VPS).
///
/// `None` for audio configurations, for samples without an SPS, and for an SPS that only
/// restates the configuration's picture (encoders that repeat headers send that at every
/// IDR). `Err` when the sample's framing or its SPS cannot be read: the caller keeps the
/// configuration it has.
pub fn inband_config(
    config: &TrackConfig,
    sample: &Bytes,
) -> Result<Option<TrackConfig>, MediaError> {
    match config {
        TrackConfig::Avc(avc) => avc_inband_config(avc, sample),
        TrackConfig::Hevc(hevc) => hevc_inband_config(hevc, sample),
        TrackConfig::Aac(_) | TrackConfig::Opus(_) => Ok(None),
    }
}

fn avc_inband_config(avc: &AvcConfig, sample: &Bytes) -> Result<Option<TrackConfig>, MediaError> {
    let (mut sps, mut pps) = (Vec::new(), Vec::new());
    for nal in NalUnits::new(sample, avc.nal_length_size) {
        let nal = nal?;
        match avc_nal_type(nal) {
            AVC_SPS => sps.push(sample.slice_ref(nal)),
            AVC_PPS => pps.push(sample.slice_ref(nal)),
            _ => {}
        }
    }
    let Some(first) = sps.first() else {
        return Ok(None);
    };
    if avc.sps.contains(first) {
        return Ok(None);
    }
    let info = parse_avc_sps(first)?;
    if info == avc.sps_info {
        return Ok(None);
    }
    if pps.is_empty() {
        pps.clone_from(&avc.pps);
    }
    if sps.len() > AVC_SPS_COUNT_MAX || pps.len() > usize::from(u8::MAX) {
        return Err(MediaError::TooLarge {
            what: "in-band parameter set count",
            limit: AVC_SPS_COUNT_MAX as u64,
            seen: sps.len().max(pps.len()) as u64,
        });
    }
    // The SPS parsed, so it has its header, profile, constraint and level bytes.
    let mut record = vec![
        1,
        first[1],
        first[2],
        first[3],
        0xFC | (avc.nal_length_size - 1),
        0xE0 | sps.len() as u8,
    ];
    write_sets(&mut record, &sps)?;
    record.push(pps.len() as u8);
    write_sets(&mut record, &pps)?;
    if !AVC_PLAIN_PROFILES.contains(&info.profile_idc) {
        let video = &info.video;
        record.extend_from_slice(&[
            0xFC | (video.chroma_format_idc & 0b11),
            0xF8 | (video.bit_depth_luma.saturating_sub(8) & 0b111),
            0xF8 | (video.bit_depth_chroma.saturating_sub(8) & 0b111),
            0, // numOfSequenceParameterSetExt
        ]);
    }
    Ok(Some(TrackConfig::Avc(parse_avcc(&Bytes::from(record))?)))
}

fn hevc_inband_config(
    hevc: &HevcConfig,
    sample: &Bytes,
) -> Result<Option<TrackConfig>, MediaError> {
    let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
    for nal in NalUnits::new(sample, hevc.nal_length_size) {
        let nal = nal?;
        match hevc_nal_type(nal) {
            HEVC_VPS => vps.push(sample.slice_ref(nal)),
            HEVC_SPS => sps.push(sample.slice_ref(nal)),
            HEVC_PPS => pps.push(sample.slice_ref(nal)),
            _ => {}
        }
    }
    let Some(first) = sps.first() else {
        return Ok(None);
    };
    if hevc.sps.contains(first) {
        return Ok(None);
    }
    let info = parse_hevc_sps(first)?;
    if info == hevc.sps_info {
        return Ok(None);
    }
    if vps.is_empty() {
        vps.clone_from(&hevc.vps);
    }
    if pps.is_empty() {
        pps.clone_from(&hevc.pps);
    }
    let ptl = &info.profile_tier_level;
    let video = &info.video;
    let mut record = vec![
        1,
        (ptl.profile_space & 0b11) << 6 | u8::from(ptl.tier_high) << 5 | (ptl.profile_idc & 0x1F),
    ];
    record.extend_from_slice(&ptl.compatibility_flags.to_be_bytes());
    record.extend_from_slice(&ptl.constraint_flags.to_be_bytes()[2..]);
    record.extend_from_slice(&[
        ptl.level_idc,
        0xF0, // reserved, min_spatial_segmentation_idc 0 (unknown)
        0x00,
        0xFC, // reserved, parallelismType 0 (unknown)
        0xFC | (video.chroma_format_idc & 0b11),
        0xF8 | (video.bit_depth_luma.saturating_sub(8) & 0b111),
        0xF8 | (video.bit_depth_chroma.saturating_sub(8) & 0b111),
        0, // avgFrameRate 0 (unknown)
        0,
        // constantFrameRate 0, numTemporalLayers 0 (unknown), temporalIdNested 0.
        hevc.nal_length_size - 1,
        3, // numOfArrays
    ]);
    for (nal_type, sets) in [(HEVC_VPS, &vps), (HEVC_SPS, &sps), (HEVC_PPS, &pps)] {
        // array_completeness: an `hvc1` sample entry holds every parameter set.
        record.push(0x80 | nal_type);
        let count = u16::try_from(sets.len()).map_err(|_| MediaError::TooLarge {
            what: "in-band parameter set count",
            limit: u64::from(u16::MAX),
            seen: sets.len() as u64,
        })?;
        record.extend_from_slice(&count.to_be_bytes());
        write_sets(&mut record, sets)?;
    }
    Ok(Some(TrackConfig::Hevc(parse_hvcc(&Bytes::from(record))?)))
}

/// Appends each parameter set with its 16-bit length.
fn write_sets(record: &mut Vec<u8>, sets: &[Bytes]) -> Result<(), MediaError> {
    for set in sets {
        let len = u16::try_from(set.len()).map_err(|_| MediaError::TooLarge {
            what: "in-band parameter set",
            limit: u64::from(u16::MAX),
            seen: set.len() as u64,
        })?;
        record.extend_from_slice(&len.to_be_bytes());
        record.extend_from_slice(set);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4-byte length prefix and `nal`.
    fn prefixed(nal: &[u8]) -> Vec<u8> {
        [&(nal.len() as u32).to_be_bytes()[..], nal].concat()
    }

    /// The fixtures' 1080p avcC (Constrained Baseline, 25 fps).
    fn avc_1080p() -> AvcConfig {
        let record = include_bytes!("../../tests/fixtures/avc_1080p25_baseline.avcc");
        parse_avcc(&Bytes::from_static(record)).unwrap()
    }

    /// The fixtures' 640x360 avcC (High 4:4:4).
    fn avc_360p() -> AvcConfig {
        let record = include_bytes!("../../tests/fixtures/avc_360p_high444.avcc");
        parse_avcc(&Bytes::from_static(record)).unwrap()
    }

    /// A keyframe with `config`'s parameter sets in band, then an IDR slice.
    fn keyframe_with(config: &AvcConfig) -> Bytes {
        let mut sample = Vec::new();
        for set in config.sps.iter().chain(&config.pps) {
            sample.extend(prefixed(set));
        }
        sample.extend(prefixed(&[0x65, 0x88, 0x84, 0x00]));
        Bytes::from(sample)
    }

    #[test]
    fn an_sps_for_another_picture_makes_a_configuration() {
        let announced = TrackConfig::Avc(avc_1080p());
        let sent = avc_360p();
        let config = inband_config(&announced, &keyframe_with(&sent))
            .unwrap()
            .expect("a new configuration");
        let TrackConfig::Avc(avc) = &config else {
            panic!("{config:?}")
        };
        assert_eq!(avc.sps_info, sent.sps_info);
        assert_eq!((avc.sps.clone(), avc.pps.clone()), (sent.sps, sent.pps));
        assert_eq!(avc.nal_length_size, 4);
        let video = config.video().unwrap();
        assert_eq!((video.width, video.height), (640, 360));
        assert_eq!(
            config.codec_string(),
            TrackConfig::Avc(avc_360p()).codec_string()
        );
        // Byte for byte what x264 wrote, the High 4:4:4 extension (chroma format, bit
        // depths) included.
        assert_eq!(avc.record, sent.record);
        // And the other way, a Baseline record without the extension.
        let back = inband_config(&config, &keyframe_with(&avc_1080p())).unwrap();
        let Some(TrackConfig::Avc(back)) = back else {
            panic!("{back:?}")
        };
        assert_eq!(back.record, avc_1080p().record);
    }

    #[test]
    fn a_repeated_or_equivalent_sps_changes_nothing() {
        let announced = TrackConfig::Avc(avc_1080p());
        // The same parameter sets repeated at an IDR.
        assert_eq!(
            inband_config(&announced, &keyframe_with(&avc_1080p())),
            Ok(None)
        );
        // No parameter set at all.
        let idr = Bytes::from(prefixed(&[0x65, 0x88]));
        assert_eq!(inband_config(&announced, &idr), Ok(None));
        // Audio has none.
        let aac = super::super::parse_audio_specific_config(&Bytes::from_static(&[0x11, 0x90]));
        assert_eq!(
            inband_config(&TrackConfig::Aac(aac.unwrap()), &idr),
            Ok(None)
        );
    }

    #[test]
    fn a_pps_left_out_of_band_comes_from_the_configuration() {
        let announced = TrackConfig::Avc(avc_1080p());
        let sent = avc_360p();
        let sample = Bytes::from([prefixed(&sent.sps[0]), prefixed(&[0x65, 0x88])].concat());
        let Some(TrackConfig::Avc(avc)) = inband_config(&announced, &sample).unwrap() else {
            panic!("no configuration")
        };
        assert_eq!(avc.pps, avc_1080p().pps);
    }

    #[test]
    fn an_hevc_sps_for_another_picture_makes_a_configuration() {
        let record = |bytes: &'static [u8]| parse_hvcc(&Bytes::from_static(bytes)).unwrap();
        let announced = record(include_bytes!("../../tests/fixtures/hevc_720p30_main.hvcc"));
        let sent = record(include_bytes!(
            "../../tests/fixtures/hevc_1080p50_main10.hvcc"
        ));
        let mut sample = Vec::new();
        for set in sent.vps.iter().chain(&sent.sps).chain(&sent.pps) {
            sample.extend(prefixed(set));
        }
        sample.extend(prefixed(&[0x26, 0x01, 0xAF]));
        let config = inband_config(&TrackConfig::Hevc(announced), &Bytes::from(sample))
            .unwrap()
            .expect("a new configuration");
        let TrackConfig::Hevc(hevc) = &config else {
            panic!("{config:?}")
        };
        assert_eq!(hevc.sps_info, sent.sps_info);
        assert_eq!(
            (&hevc.vps, &hevc.sps, &hevc.pps),
            (&sent.vps, &sent.sps, &sent.pps)
        );
        assert_eq!(
            config.codec_string(),
            TrackConfig::Hevc(sent.clone()).codec_string()
        );
        // The general fields the record repeats match the SPS, as in x265's own record.
        assert_eq!(hevc.record[1..13], sent.record[1..13]);
    }

    #[test]
    fn unreadable_in_band_parameter_sets_are_an_error() {
        let announced = TrackConfig::Avc(avc_1080p());
        let truncated = Bytes::from_static(&[0, 0, 0, 9, 0x67, 0x42]);
        assert!(inband_config(&announced, &truncated).is_err());
        let bad_sps = Bytes::from(prefixed(&[0x67]));
        assert!(inband_config(&announced, &bad_sps).is_err());
    }
}
