//! H.264 and H.265 bitstream framing: encoders with a global header hand out Annex B (start
//! codes), CMAF wants NAL units prefixed by their length and an `avcC` / `hvcC` record for the
//! parameter sets; WebRTC's H.264 arrives as Annex B too. Pure byte handling.

use super::VideoCodec;

/// The NAL units of an Annex B stream (start codes `00 00 01` or `00 00 00 01` removed),
/// in order. Trailing zero bytes before a start code belong to no unit and are dropped.
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut units = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(s) = start {
                units.push(trim_trailing_zeros(&data[s..i]));
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        units.push(&data[s..]);
    }
    units.retain(|u| !u.is_empty());
    units
}

fn trim_trailing_zeros(unit: &[u8]) -> &[u8] {
    let end = unit.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    &unit[..end]
}

/// Rewrites an Annex B access unit as 4-byte-length-prefixed NAL units (ISO/IEC 14496-15),
/// leaving out parameter sets and access unit delimiters (they live in the `avcC` / `hvcC`).
pub fn to_length_prefixed(data: &[u8], codec: VideoCodec) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    for unit in nal_units(data) {
        let out_of_band = match codec {
            // SPS, PPS, access unit delimiter.
            VideoCodec::Avc => matches!(unit[0] & 0x1f, 7..=9),
            // VPS, SPS, PPS, access unit delimiter.
            VideoCodec::Hevc => matches!((unit[0] >> 1) & 0x3f, 32..=35),
        };
        if out_of_band {
            continue;
        }
        out.extend_from_slice(&(unit.len() as u32).to_be_bytes());
        out.extend_from_slice(unit);
    }
    out
}

/// An `AVCDecoderConfigurationRecord` from Annex B parameter sets (an encoder's extradata):
/// `None` without an SPS and a PPS.
pub fn avcc_from_annexb(extradata: &[u8]) -> Option<Vec<u8>> {
    let units = nal_units(extradata);
    let sps: Vec<&[u8]> = units.iter().copied().filter(|u| u[0] & 0x1f == 7).collect();
    let pps: Vec<&[u8]> = units.iter().copied().filter(|u| u[0] & 0x1f == 8).collect();
    let first = sps.first()?;
    if pps.is_empty() || first.len() < 4 || sps.len() > 31 || pps.len() > 255 {
        return None;
    }
    let mut out = vec![
        1,
        first[1],
        first[2],
        first[3],
        0xff,
        0xe0 | sps.len() as u8,
    ];
    for set in &sps {
        out.extend_from_slice(&(u16::try_from(set.len()).ok()?).to_be_bytes());
        out.extend_from_slice(set);
    }
    out.push(pps.len() as u8);
    for set in &pps {
        out.extend_from_slice(&(u16::try_from(set.len()).ok()?).to_be_bytes());
        out.extend_from_slice(set);
    }
    Some(out)
}

/// A `HEVCDecoderConfigurationRecord` from Annex B parameter sets (an encoder's extradata):
/// `None` without a VPS, an SPS and a PPS. The profile, tier, level and constraint flags come
/// from the SPS; chroma format and bit depths are 4:2:0 and 8 bits, what the ladder encodes.
pub fn hvcc_from_annexb(extradata: &[u8]) -> Option<Vec<u8>> {
    let units = nal_units(extradata);
    let of_type = |t: u8| -> Vec<&[u8]> {
        units
            .iter()
            .copied()
            .filter(|u| u.len() > 2 && (u[0] >> 1) & 0x3f == t)
            .collect()
    };
    let (vps, sps, pps) = (of_type(32), of_type(33), of_type(34));
    let first = sps.first()?;
    if vps.is_empty() || pps.is_empty() {
        return None;
    }
    // The SPS payload without emulation prevention: header (2 bytes), then one byte of
    // vps id / max sub-layers / nesting, then the 12 bytes of the general profile_tier_level.
    let mut rbsp = Vec::with_capacity(16);
    let mut zeros = 0;
    for &b in &first[2..] {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
        if rbsp.len() == 13 {
            break;
        }
    }
    if rbsp.len() < 13 {
        return None;
    }
    let ptl = &rbsp[1..13];
    let mut out = vec![1];
    out.extend_from_slice(ptl);
    out.extend_from_slice(&[0xf0, 0x00, 0xfc, 0xfc | 1, 0xf8, 0xf8, 0, 0]);
    let temporal_nesting = rbsp[0] & 1;
    let sub_layers = ((rbsp[0] >> 1) & 0x7) + 1;
    out.push((sub_layers << 3) | (temporal_nesting << 2) | 3);
    out.push(3);
    for (kind, sets) in [(32u8, &vps), (33, &sps), (34, &pps)] {
        out.push(0x80 | kind);
        out.extend_from_slice(&u16::try_from(sets.len()).ok()?.to_be_bytes());
        for set in sets.iter() {
            out.extend_from_slice(&u16::try_from(set.len()).ok()?.to_be_bytes());
            out.extend_from_slice(set);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: [u8; 6] = [0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9];
    const PPS: [u8; 4] = [0x68, 0xeb, 0xe3, 0xcb];

    fn annexb(units: &[&[u8]], long: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for unit in units {
            out.extend_from_slice(if long { &[0, 0, 0, 1] } else { &[0, 0, 1] });
            out.extend_from_slice(unit);
        }
        out
    }

    #[test]
    fn splits_both_start_code_lengths() {
        let idr: &[u8] = &[0x65, 0x88, 0x00, 0x00, 0x03, 0x01];
        let data = annexb(&[&SPS, &PPS, idr], true);
        assert_eq!(nal_units(&data), vec![&SPS[..], &PPS[..], idr]);
        let data = annexb(&[&[0x09, 0xf0], idr], false);
        assert_eq!(nal_units(&data), vec![&[0x09, 0xf0][..], idr]);
        assert!(nal_units(&[0, 0, 0]).is_empty());
    }

    #[test]
    fn length_prefixed_drops_parameter_sets_and_delimiters() {
        let idr: &[u8] = &[0x65, 0x88, 0x84];
        let sei: &[u8] = &[0x06, 0x05, 0x01];
        let data = annexb(&[&[0x09, 0xf0], &SPS, &PPS, sei, idr], true);
        assert_eq!(
            to_length_prefixed(&data, VideoCodec::Avc),
            [&[0, 0, 0, 3][..], sei, &[0, 0, 0, 3], idr].concat()
        );
        // H.265: VPS (32), SPS (33), PPS (34) and AUD (35) go; an IDR (19) stays.
        let idr: &[u8] = &[0x26, 0x01, 0xaf];
        let hevc = annexb(
            &[
                &[0x46, 0x01, 0x50],
                &[0x40, 0x01, 0x0c],
                &[0x42, 0x01],
                &[0x44, 0x01],
                idr,
            ],
            true,
        );
        assert_eq!(
            to_length_prefixed(&hevc, VideoCodec::Hevc),
            [&[0, 0, 0, 3][..], idr].concat()
        );
    }

    #[test]
    fn builds_avcc() {
        let avcc = avcc_from_annexb(&annexb(&[&SPS, &PPS], true)).unwrap();
        assert_eq!(
            avcc,
            [
                &[1, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0, 6][..],
                &SPS,
                &[1, 0, 4],
                &PPS
            ]
            .concat()
        );
        assert!(avcc_from_annexb(&annexb(&[&SPS], true)).is_none());
    }
}
