//! H.265/HEVC: the decoder configuration record (`hvcC`, ISO/IEC 14496-15 §8.3.3) and the
//! sequence parameter set (ITU-T H.265 §7.3.2.2).

use bytes::Bytes;

use super::avc::read_common_vui_head;
use super::{check_dimension, FrameRate, VideoInfo};
use crate::bits::{BitReader, ByteReader};
use crate::MediaError;

/// NAL unit types of parameter sets (H.265 Table 7-1).
const NAL_VPS: u8 = 32;
const NAL_SPS: u8 = 33;
const NAL_PPS: u8 = 34;

/// A parsed `HEVCDecoderConfigurationRecord`, as carried in an Enhanced RTMP `hvc1` sequence
/// start and copied unchanged into the `hvcC` box of the CMAF header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HevcConfig {
    /// The record exactly as received.
    pub record: Bytes,
    /// The size of the length prefix before each NAL unit in samples: 1, 2 or 4.
    pub nal_length_size: u8,
    /// The video parameter sets (NAL units, header included), slices of `record`.
    pub vps: Vec<Bytes>,
    /// The sequence parameter sets, slices of `record`.
    pub sps: Vec<Bytes>,
    /// The picture parameter sets, slices of `record`.
    pub pps: Vec<Bytes>,
    /// What the first SPS says.
    pub sps_info: HevcSps,
}

impl HevcConfig {
    /// The RFC 6381 / ISO/IEC 14496-15 Annex E `CODECS` value, for example `hvc1.1.6.L93.B0`:
    /// profile space and profile, the compatibility flags bit-reversed in hex, tier and level,
    /// then the constraint bytes in hex with trailing zero bytes left out.
    pub fn codec_string(&self) -> String {
        let ptl = &self.sps_info.profile_tier_level;
        let space = ["", "A", "B", "C"][usize::from(ptl.profile_space & 3)];
        let mut out = format!(
            "hvc1.{space}{}.{:X}.{}{}",
            ptl.profile_idc,
            ptl.compatibility_flags.reverse_bits(),
            if ptl.tier_high { 'H' } else { 'L' },
            ptl.level_idc
        );
        let constraint = ptl.constraint_flags.to_be_bytes();
        let bytes = &constraint[2..];
        let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        for byte in &bytes[..used] {
            out.push_str(&format!(".{byte:X}"));
        }
        out
    }
}

/// The general profile, tier and level (H.265 §7.3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileTierLevel {
    /// `general_profile_space` (0 in every deployed stream).
    pub profile_space: u8,
    /// `general_tier_flag`: the High tier.
    pub tier_high: bool,
    /// `general_profile_idc` (1 Main, 2 Main 10, 3 Main Still Picture, 4 range extensions).
    pub profile_idc: u8,
    /// `general_profile_compatibility_flag[0..32]`, flag 0 in the most significant bit.
    pub compatibility_flags: u32,
    /// The 48 bits from `general_progressive_source_flag` on, in the low bits.
    pub constraint_flags: u64,
    /// `general_level_idc` (level × 30: 93 is level 3.1).
    pub level_idc: u8,
}

/// What shardcast reads from an H.265 sequence parameter set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HevcSps {
    /// The general profile, tier and level.
    pub profile_tier_level: ProfileTierLevel,
    /// Picture size, chroma format, bit depth, frame rate, aspect ratio and colour.
    pub video: VideoInfo,
}

/// Parses an `HEVCDecoderConfigurationRecord`.
///
/// At least one VPS, SPS and PPS are required (the `hvc1` sample entry keeps parameter sets
/// out of band, so they must all be in the record), and the first SPS must parse.
pub fn parse_hvcc(record: &Bytes) -> Result<HevcConfig, MediaError> {
    let mut r = ByteReader::new(record, "HEVCDecoderConfigurationRecord");
    if r.u8()? != 1 {
        return Err(MediaError::Invalid {
            what: "hvcC configurationVersion",
        });
    }
    // Profile, tier, level, segmentation, parallelism, chroma, bit depths and frame rate:
    // the SPS is authoritative for all of them.
    r.skip(20)?;
    let nal_length_size = (r.u8()? & 0b11) + 1;
    if nal_length_size == 3 {
        return Err(MediaError::Invalid {
            what: "hvcC lengthSizeMinusOne",
        });
    }
    let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
    let arrays = r.u8()?;
    for _ in 0..arrays {
        let nal_type = r.u8()? & 0x3F;
        let count = r.u16()?;
        for _ in 0..count {
            let len = usize::from(r.u16()?);
            let start = r.position();
            r.skip(len)?;
            let nal = record.slice(start..start + len);
            match nal_type {
                NAL_VPS => vps.push(nal),
                NAL_SPS => sps.push(nal),
                NAL_PPS => pps.push(nal),
                // SEI arrays (prefix/suffix) stay in the record and are otherwise ignored.
                _ => {}
            }
        }
    }
    let Some(first_sps) = sps.first() else {
        return Err(MediaError::Invalid {
            what: "hvcC without SPS",
        });
    };
    if vps.is_empty() || pps.is_empty() {
        return Err(MediaError::Invalid {
            what: "hvcC without VPS or PPS",
        });
    }
    let sps_info = parse_hevc_sps(first_sps)?;
    Ok(HevcConfig {
        record: record.clone(),
        nal_length_size,
        vps,
        sps,
        pps,
        sps_info,
    })
}

/// Parses an H.265 SPS NAL unit (two-byte header included) as far as the VUI timing
/// information.
pub fn parse_hevc_sps(nal: &[u8]) -> Result<HevcSps, MediaError> {
    if nal.len() < 2 {
        return Err(MediaError::Truncated { what: "SPS" });
    }
    if (nal[0] >> 1) & 0x3F != NAL_SPS {
        return Err(MediaError::Invalid {
            what: "SPS NAL unit type",
        });
    }
    let mut r = BitReader::new(&nal[2..], "SPS");
    r.bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)?;
    if max_sub_layers_minus1 > 6 {
        return Err(MediaError::Invalid {
            what: "sps_max_sub_layers_minus1",
        });
    }
    r.flag()?; // sps_temporal_id_nesting_flag
    let profile_tier_level = read_profile_tier_level(&mut r, max_sub_layers_minus1)?;
    r.ue_max(15, "sps_seq_parameter_set_id")?;
    let chroma_format_idc = r.ue_max(3, "chroma_format_idc")? as u8;
    let mut separate_colour_plane = false;
    if chroma_format_idc == 3 {
        separate_colour_plane = r.flag()?;
    }
    let coded_width = u64::from(r.ue()?);
    let coded_height = u64::from(r.ue()?);
    let mut window = [0u64; 4];
    if r.flag()? {
        for value in &mut window {
            *value = u64::from(r.ue()?);
        }
    }
    let bit_depth_luma = 8 + r.ue_max(8, "bit_depth_luma_minus8")? as u8;
    let bit_depth_chroma = 8 + r.ue_max(8, "bit_depth_chroma_minus8")? as u8;

    // §7.4.3.2.1: conformance window offsets are in chroma sample units.
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (sub_width, sub_height) = match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let crop_x = (window[0] + window[1]).saturating_mul(sub_width);
    let crop_y = (window[2] + window[3]).saturating_mul(sub_height);
    let width = check_dimension(coded_width.checked_sub(crop_x), "SPS picture width")?;
    let height = check_dimension(coded_height.checked_sub(crop_y), "SPS picture height")?;

    let mut video = VideoInfo {
        width,
        height,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        interlaced: false,
        frame_rate: None,
        sample_aspect_ratio: None,
        colour: None,
    };
    read_sps_tail(&mut r, max_sub_layers_minus1, &mut video)?;
    Ok(HevcSps {
        profile_tier_level,
        video,
    })
}

fn read_profile_tier_level(
    r: &mut BitReader<'_>,
    max_sub_layers_minus1: u32,
) -> Result<ProfileTierLevel, MediaError> {
    let profile_space = r.bits(2)? as u8;
    let tier_high = r.flag()?;
    let profile_idc = r.bits(5)? as u8;
    let compatibility_flags = r.bits(32)?;
    let constraint_flags = (u64::from(r.bits(16)?) << 32) | u64::from(r.bits(32)?);
    let level_idc = r.bits(8)? as u8;
    let mut profile_present = [false; 8];
    let mut level_present = [false; 8];
    for i in 0..max_sub_layers_minus1 as usize {
        profile_present[i] = r.flag()?;
        level_present[i] = r.flag()?;
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?; // reserved_zero_2bits
    }
    for i in 0..max_sub_layers_minus1 as usize {
        if profile_present[i] {
            r.skip(88)?;
        }
        if level_present[i] {
            r.skip(8)?;
        }
    }
    Ok(ProfileTierLevel {
        profile_space,
        tier_high,
        profile_idc,
        compatibility_flags,
        constraint_flags,
        level_idc,
    })
}

/// From `log2_max_pic_order_cnt_lsb_minus4` to the VUI timing information. A stream whose
/// SPS ends early after the picture size (a truncated VUI) keeps what was read.
fn read_sps_tail(
    r: &mut BitReader<'_>,
    max_sub_layers_minus1: u32,
    video: &mut VideoInfo,
) -> Result<(), MediaError> {
    let log2_max_poc_lsb = 4 + r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4")?;
    let ordering_all = r.flag()?;
    let first = if ordering_all {
        0
    } else {
        max_sub_layers_minus1
    };
    for _ in first..=max_sub_layers_minus1 {
        r.ue()?; // sps_max_dec_pic_buffering_minus1
        r.ue()?; // sps_max_num_reorder_pics
        r.ue()?; // sps_max_latency_increase_plus1
    }
    r.ue()?; // log2_min_luma_coding_block_size_minus3
    r.ue()?; // log2_diff_max_min_luma_coding_block_size
    r.ue()?; // log2_min_luma_transform_block_size_minus2
    r.ue()?; // log2_diff_max_min_luma_transform_block_size
    r.ue()?; // max_transform_hierarchy_depth_inter
    r.ue()?; // max_transform_hierarchy_depth_intra
    if r.flag()? && r.flag()? {
        skip_scaling_list_data(r)?;
    }
    r.flag()?; // amp_enabled_flag
    r.flag()?; // sample_adaptive_offset_enabled_flag
    if r.flag()? {
        r.bits(8)?; // pcm sample bit depths
        r.ue()?; // log2_min_pcm_luma_coding_block_size_minus3
        r.ue()?; // log2_diff_max_min_pcm_luma_coding_block_size
        r.flag()?; // pcm_loop_filter_disabled_flag
    }
    let sets = r.ue_max(64, "num_short_term_ref_pic_sets")?;
    let mut delta_pocs = [0u32; 65];
    for index in 0..sets as usize {
        delta_pocs[index] = read_short_term_ref_pic_set(r, index, &delta_pocs[..index])?;
    }
    if r.flag()? {
        let count = r.ue_max(32, "num_long_term_ref_pics_sps")?;
        for _ in 0..count {
            r.skip(log2_max_poc_lsb)?; // lt_ref_pic_poc_lsb_sps
            r.flag()?; // used_by_curr_pic_lt_sps_flag
        }
    }
    r.flag()?; // sps_temporal_mvp_enabled_flag
    r.flag()?; // strong_intra_smoothing_enabled_flag
    if r.flag()? {
        match read_hevc_vui(r, video) {
            Ok(()) | Err(MediaError::Truncated { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

fn skip_scaling_list_data(r: &mut BitReader<'_>) -> Result<(), MediaError> {
    for size_id in 0..4u32 {
        let step = if size_id == 3 { 3 } else { 1 };
        for _ in (0..6).step_by(step) {
            if !r.flag()? {
                r.ue()?; // scaling_list_pred_matrix_id_delta
            } else {
                let coefficients = 64.min(1 << (4 + (size_id << 1)));
                if size_id > 1 {
                    r.se()?; // scaling_list_dc_coef_minus8
                }
                for _ in 0..coefficients {
                    r.se()?; // scaling_list_delta_coef
                }
            }
        }
    }
    Ok(())
}

/// Reads `st_ref_pic_set(index)` (§7.3.7) and returns its `NumDeltaPocs`; `previous` holds
/// the counts of the sets before it, which inter-RPS prediction refers to.
fn read_short_term_ref_pic_set(
    r: &mut BitReader<'_>,
    index: usize,
    previous: &[u32],
) -> Result<u32, MediaError> {
    let predicted = index != 0 && r.flag()?;
    if predicted {
        // In an SPS, delta_idx_minus1 is absent: the reference is the set just before.
        let reference = previous[index - 1];
        r.flag()?; // delta_rps_sign
        r.ue()?; // abs_delta_rps_minus1
        let mut count = 0;
        for _ in 0..=reference {
            let used_by_curr_pic = r.flag()?;
            let use_delta = used_by_curr_pic || r.flag()?;
            if use_delta {
                count += 1;
            }
        }
        Ok(count)
    } else {
        let negative = r.ue_max(16, "num_negative_pics")?;
        let positive = r.ue_max(16, "num_positive_pics")?;
        for _ in 0..negative + positive {
            r.ue()?; // delta_poc_s0_minus1 / delta_poc_s1_minus1
            r.flag()?; // used_by_curr_pic_s0_flag / used_by_curr_pic_s1_flag
        }
        Ok(negative + positive)
    }
}

/// VUI up to and including the timing information (H.265 §E.2.1).
fn read_hevc_vui(r: &mut BitReader<'_>, video: &mut VideoInfo) -> Result<(), MediaError> {
    read_common_vui_head(r, video)?;
    r.flag()?; // neutral_chroma_indication_flag
    video.interlaced = r.flag()?; // field_seq_flag
    r.flag()?; // frame_field_info_present_flag
    if r.flag()? {
        for _ in 0..4 {
            r.ue()?; // default display window offsets
        }
    }
    if r.flag()? {
        let num_units_in_tick = r.bits(32)?;
        let time_scale = r.bits(32)?;
        // In H.265 a tick is one picture.
        video.frame_rate = FrameRate::from_ticks(time_scale, num_units_in_tick);
    }
    Ok(())
}
