//! H.264 bitstream framing: encoders with a global header hand out Annex B (start codes), CMAF
//! wants NAL units prefixed by their length and an `avcC` record for the parameter sets.
//! Pure byte handling, no FFmpeg calls.

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
/// leaving out parameter sets and access unit delimiters (they live in the `avcC`).
pub fn to_length_prefixed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    for unit in nal_units(data) {
        if matches!(unit[0] & 0x1f, 7..=9) {
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
            to_length_prefixed(&data),
            [&[0, 0, 0, 3][..], sei, &[0, 0, 0, 3], idr].concat()
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
