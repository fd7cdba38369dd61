//! H.264/AVC: the decoder configuration record (`avcC`, ISO/IEC 14496-15 §5.3.3) and the
//! sequence parameter set (ITU-T H.264 §7.3.2.1).

use bytes::Bytes;

use super::{check_dimension, Colour, FrameRate, VideoInfo};
use crate::bits::{BitReader, ByteReader};
use crate::MediaError;

/// A parsed `AVCDecoderConfigurationRecord`, as carried in an FLV AVC sequence header and
/// copied unchanged into the `avcC` box of the CMAF header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcConfig {
    /// The record exactly as received.
    pub record: Bytes,
    /// The size of the length prefix before each NAL unit in samples: 1, 2 or 4.
    pub nal_length_size: u8,
    /// The sequence parameter sets (NAL units, header byte included), slices of `record`.
    pub sps: Vec<Bytes>,
    /// The picture parameter sets, slices of `record`.
    pub pps: Vec<Bytes>,
    /// What the first SPS says.
    pub sps_info: AvcSps,
}

impl AvcConfig {
    /// The RFC 6381 `CODECS` value: `avc1.PPCCLL` (profile, constraint flags, level in hex).
    pub fn codec_string(&self) -> String {
        let sps = &self.sps_info;
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            sps.profile_idc, sps.constraint_flags, sps.level_idc
        )
    }
}

/// What shardcast reads from an H.264 sequence parameter set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcSps {
    /// `profile_idc` (66 Baseline, 77 Main, 100 High, 110 High 10, 244 High 4:4:4 …).
    pub profile_idc: u8,
    /// The byte holding `constraint_set0_flag` … `constraint_set5_flag` and two reserved bits.
    pub constraint_flags: u8,
    /// `level_idc` (level × 10: 31 is level 3.1).
    pub level_idc: u8,
    /// Picture size, chroma format, bit depth, frame rate, aspect ratio and colour.
    pub video: VideoInfo,
}

/// Profiles whose SPS carries chroma format, bit depth and scaling matrices (§7.3.2.1.1).
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// Parses an `AVCDecoderConfigurationRecord`.
///
/// At least one SPS and one PPS are required, and the first SPS must parse: shardcast refuses
/// a stream whose picture size it cannot read. The optional high-profile extension after the
/// PPS list is not needed (the SPS says the same) and is kept only as part of `record`.
pub fn parse_avcc(record: &Bytes) -> Result<AvcConfig, MediaError> {
    let mut r = ByteReader::new(record, "AVCDecoderConfigurationRecord");
    if r.u8()? != 1 {
        return Err(MediaError::Invalid {
            what: "avcC configurationVersion",
        });
    }
    r.skip(3)?; // profile, compatibility and level: the SPS is authoritative.
    let nal_length_size = (r.u8()? & 0b11) + 1;
    if nal_length_size == 3 {
        return Err(MediaError::Invalid {
            what: "avcC lengthSizeMinusOne",
        });
    }
    let sps_count = r.u8()? & 0x1F;
    let sps = read_parameter_sets(&mut r, record, usize::from(sps_count))?;
    let pps_count = r.u8()?;
    let pps = read_parameter_sets(&mut r, record, usize::from(pps_count))?;
    let (Some(first_sps), false) = (sps.first(), pps.is_empty()) else {
        return Err(MediaError::Invalid {
            what: "avcC without SPS or PPS",
        });
    };
    let sps_info = parse_avc_sps(first_sps)?;
    Ok(AvcConfig {
        record: record.clone(),
        nal_length_size,
        sps,
        pps,
        sps_info,
    })
}

fn read_parameter_sets(
    r: &mut ByteReader<'_>,
    record: &Bytes,
    count: usize,
) -> Result<Vec<Bytes>, MediaError> {
    let mut sets = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::from(r.u16()?);
        let start = r.position();
        r.skip(len)?;
        if len == 0 {
            return Err(MediaError::Invalid {
                what: "empty parameter set",
            });
        }
        sets.push(record.slice(start..start + len));
    }
    Ok(sets)
}

/// Parses an H.264 SPS NAL unit (header byte included) as far as the VUI timing information.
pub fn parse_avc_sps(nal: &[u8]) -> Result<AvcSps, MediaError> {
    let Some((&header, payload)) = nal.split_first() else {
        return Err(MediaError::Truncated { what: "SPS" });
    };
    if header & 0x1F != 7 {
        return Err(MediaError::Invalid {
            what: "SPS NAL unit type",
        });
    }
    let mut r = BitReader::new(payload, "SPS");
    let profile_idc = r.bits(8)? as u8;
    let constraint_flags = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    r.ue_max(31, "seq_parameter_set_id")?;

    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    let mut bit_depth_luma = 8;
    let mut bit_depth_chroma = 8;
    if HIGH_PROFILES.contains(&profile_idc) {
        chroma_format_idc = r.ue_max(3, "chroma_format_idc")? as u8;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        bit_depth_luma = 8 + r.ue_max(6, "bit_depth_luma_minus8")? as u8;
        bit_depth_chroma = 8 + r.ue_max(6, "bit_depth_chroma_minus8")? as u8;
        r.flag()?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for index in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if index < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue_max(12, "log2_max_frame_num_minus4")?;
    match r.ue_max(2, "pic_order_cnt_type")? {
        0 => {
            r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4")?;
        }
        1 => {
            r.flag()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle")?;
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.flag()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        r.flag()?; // mb_adaptive_frame_field_flag
    }
    r.flag()?; // direct_8x8_inference_flag
    let mut crop = [0u64; 4];
    if r.flag()? {
        for value in &mut crop {
            *value = u64::from(r.ue()?);
        }
    }

    // §7.4.2.1.1: the crop unit depends on ChromaArrayType and on field coding.
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let (crop_unit_x, crop_unit_y) = match chroma_array_type {
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    let coded_width = width_mbs * 16;
    let coded_height = height_map_units * 16 * field_factor;
    let crop_x = (crop[0] + crop[1]).saturating_mul(crop_unit_x);
    let crop_y = (crop[2] + crop[3]).saturating_mul(crop_unit_y);
    let width = check_dimension(coded_width.checked_sub(crop_x), "SPS picture width")?;
    let height = check_dimension(coded_height.checked_sub(crop_y), "SPS picture height")?;

    let mut video = VideoInfo {
        width,
        height,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        interlaced: !frame_mbs_only,
        frame_rate: None,
        sample_aspect_ratio: None,
        colour: None,
    };
    if r.flag()? {
        read_avc_vui(&mut r, &mut video)?;
    }
    Ok(AvcSps {
        profile_idc,
        constraint_flags,
        level_idc,
        video,
    })
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: u32) -> Result<(), MediaError> {
    let mut last = 8i32;
    let mut next = 8i32;
    for _ in 0..size {
        if next != 0 {
            // delta_scale is -128..=127 (§7.4.2.1.1.1); anything else is not an SPS.
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(MediaError::Invalid {
                    what: "SPS delta_scale (out of -128..=127)",
                });
            }
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// VUI up to and including the timing information (§E.1.1). Reading stops there: the HRD and
/// bitstream restriction parts say nothing shardcast needs. A VUI that ends early (some
/// encoders truncate it) keeps what was read instead of failing the whole SPS.
fn read_avc_vui(r: &mut BitReader<'_>, video: &mut VideoInfo) -> Result<(), MediaError> {
    let result = (|| {
        read_common_vui_head(r, video)?;
        if r.flag()? {
            let num_units_in_tick = r.bits(32)?;
            let time_scale = r.bits(32)?;
            // One frame is two ticks in H.264 (a tick is a field period).
            video.frame_rate =
                FrameRate::from_ticks(time_scale, num_units_in_tick.saturating_mul(2));
        }
        Ok(())
    })();
    match result {
        Err(MediaError::Truncated { .. }) | Ok(()) => Ok(()),
        Err(error) => Err(error),
    }
}

/// The VUI fields H.264 and H.265 share, from `aspect_ratio_info_present_flag` through the
/// chroma location (H.264 §E.1.1, H.265 §E.2.1).
pub(super) fn read_common_vui_head(
    r: &mut BitReader<'_>,
    video: &mut VideoInfo,
) -> Result<(), MediaError> {
    if r.flag()? {
        let idc = r.bits(8)? as u8;
        video.sample_aspect_ratio = if idc == 255 {
            let width = r.bits(16)? as u16;
            let height = r.bits(16)? as u16;
            (width != 0 && height != 0).then_some((width, height))
        } else {
            sar_from_idc(idc)
        };
    }
    if r.flag()? {
        r.flag()?; // overscan_appropriate_flag
    }
    if r.flag()? {
        r.bits(3)?; // video_format
        let full_range = r.flag()?;
        let mut colour = Colour {
            primaries: 2,
            transfer: 2,
            matrix: 2,
            full_range,
        };
        if r.flag()? {
            colour.primaries = r.bits(8)? as u8;
            colour.transfer = r.bits(8)? as u8;
            colour.matrix = r.bits(8)? as u8;
        }
        video.colour = Some(colour);
    }
    if r.flag()? {
        r.ue()?; // chroma_sample_loc_type_top_field
        r.ue()?; // chroma_sample_loc_type_bottom_field
    }
    Ok(())
}

/// Table E-1 of H.264 (identical in H.265).
fn sar_from_idc(idc: u8) -> Option<(u16, u16)> {
    const TABLE: [(u16, u16); 17] = [
        (0, 0),
        (1, 1),
        (12, 11),
        (10, 11),
        (16, 11),
        (40, 33),
        (24, 11),
        (20, 11),
        (32, 11),
        (80, 33),
        (18, 11),
        (15, 11),
        (64, 33),
        (160, 99),
        (4, 3),
        (3, 2),
        (2, 1),
    ];
    match TABLE.get(usize::from(idc)) {
        Some(&(0, 0)) | None => None,
        Some(&sar) => Some(sar),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (`flv`): a scaling list whose delta_scale is far out of range made
    /// `last + delta` overflow.
    #[test]
    fn an_sps_with_an_out_of_range_delta_scale_is_refused() {
        let nal = [
            0x27, 0x2c, 0xb1, 0xff, 0xff, 0xff, 0xff, 0xf9, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff,
            0x01,
        ];
        assert!(parse_avc_sps(&nal).is_err());
    }
}
