//! A small, strict ISO BMFF reader for checking what the muxer wrote: tests walk the box tree
//! with it, and a debugging endpoint could print an outline. It is not a demuxer: it
//! understands the boxes this crate writes and treats every other box as opaque.

use crate::bits::ByteReader;
use crate::MediaError;

/// One box inside a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxRef<'a> {
    /// The four-character type.
    pub kind: [u8; 4],
    /// The offset of the box's first byte from the start of the buffer that was parsed.
    pub offset: usize,
    /// The whole box's size, header included.
    pub size: usize,
    /// The contents after the 8-byte header (or 16-byte header for `largesize` boxes).
    pub body: &'a [u8],
}

impl<'a> BoxRef<'a> {
    /// The type as text (`"moov"`).
    pub fn name(&self) -> &str {
        std::str::from_utf8(&self.kind).unwrap_or("????")
    }

    /// The version and flags of a full box.
    pub fn full_header(&self) -> Result<(u8, u32), MediaError> {
        let mut r = ByteReader::new(self.body, "full box header");
        let word = r.u32()?;
        Ok(((word >> 24) as u8, word & 0x00FF_FFFF))
    }

    /// The child boxes, for container boxes this reader knows (see [`children_offset`]);
    /// `Ok(None)` for a leaf.
    pub fn children(&self) -> Result<Option<Vec<BoxRef<'a>>>, MediaError> {
        let Some(skip) = children_offset(&self.kind) else {
            return Ok(None);
        };
        let Some(inner) = self.body.get(skip..) else {
            return Err(MediaError::Truncated {
                what: "container box",
            });
        };
        let base = self.offset + (self.size - self.body.len()) + skip;
        parse_boxes_at(inner, base).map(Some)
    }

    /// The first child of type `kind`.
    pub fn child(&self, kind: &str) -> Option<BoxRef<'a>> {
        self.children()
            .ok()
            .flatten()?
            .into_iter()
            .find(|b| b.kind == kind.as_bytes())
    }
}

/// How far into a box's body its children start, for the containers this crate writes.
pub fn children_offset(kind: &[u8; 4]) -> Option<usize> {
    match kind {
        b"moov" | b"trak" | b"mdia" | b"minf" | b"dinf" | b"stbl" | b"mvex" | b"moof" | b"traf" => {
            Some(0)
        }
        // Full box header and entry count.
        b"stsd" | b"dref" => Some(8),
        // VisualSampleEntry fields before its boxes.
        b"avc1" | b"avc3" | b"hvc1" | b"hev1" => Some(78),
        // AudioSampleEntry fields before its boxes.
        b"mp4a" | b"Opus" => Some(28),
        _ => None,
    }
}

/// Parses a buffer that must consist of whole boxes, back to back, with nothing left over.
pub fn parse_boxes(data: &[u8]) -> Result<Vec<BoxRef<'_>>, MediaError> {
    parse_boxes_at(data, 0)
}

fn parse_boxes_at(data: &[u8], base: usize) -> Result<Vec<BoxRef<'_>>, MediaError> {
    let mut boxes = Vec::new();
    let mut r = ByteReader::new(data, "box");
    while r.remaining() > 0 {
        let start = r.position();
        let size32 = r.u32()?;
        let kind = r.fourcc()?;
        let (size, header) = match size32 {
            0 => (data.len() - start, 8),
            1 => {
                let large = r.u64()?;
                (usize::try_from(large).unwrap_or(usize::MAX), 16)
            }
            n => (n as usize, 8),
        };
        if size < header {
            return Err(MediaError::Invalid { what: "box size" });
        }
        let body = r.bytes(size - header)?;
        boxes.push(BoxRef {
            kind,
            offset: base + start,
            size,
            body,
        });
    }
    Ok(boxes)
}

/// Finds the first box along `path` (`["moov", "trak", "mdia", "mdhd"]`).
pub fn find<'a>(data: &'a [u8], path: &[&str]) -> Option<BoxRef<'a>> {
    let (first, rest) = path.split_first()?;
    let mut current = parse_boxes(data)
        .ok()?
        .into_iter()
        .find(|b| b.kind == first.as_bytes())?;
    for name in rest {
        current = current.child(name)?;
    }
    Some(current)
}

/// An outline of the box tree, like `ftyp moov(mvhd trak(tkhd …)) `, checking on the way that
/// every container's children fill it exactly.
pub fn outline(data: &[u8]) -> Result<String, MediaError> {
    let mut out = String::new();
    write_outline(&parse_boxes(data)?, &mut out)?;
    Ok(out)
}

fn write_outline(boxes: &[BoxRef<'_>], out: &mut String) -> Result<(), MediaError> {
    for (index, b) in boxes.iter().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        out.push_str(b.name());
        if let Some(children) = b.children()? {
            out.push('(');
            write_outline(&children, out)?;
            out.push(')');
        }
    }
    Ok(())
}

/// One sample of a `trun`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrunSample {
    /// `sample_duration`, when present.
    pub duration: Option<u32>,
    /// `sample_size`, when present.
    pub size: Option<u32>,
    /// `sample_flags`, when present.
    pub flags: Option<u32>,
    /// `sample_composition_time_offset`, signed for version 1.
    pub composition_offset: Option<i64>,
}

/// A parsed `moof` + `mdat` pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// `mfhd` sequence number.
    pub sequence_number: u32,
    /// `tfhd` track ID.
    pub track_id: u32,
    /// `tfhd` default sample flags, when present.
    pub default_sample_flags: Option<u32>,
    /// `tfdt` base media decode time.
    pub base_media_decode_time: u64,
    /// `tfdt` version.
    pub tfdt_version: u8,
    /// `trun` version.
    pub trun_version: u8,
    /// The samples.
    pub samples: Vec<TrunSample>,
    /// The sample data, checked to start exactly at the `trun` data offset and to hold exactly
    /// the sum of the sample sizes.
    pub data: &'a [u8],
}

/// Parses a run of `moof` + `mdat` pairs, optionally after a `styp` (a part or a segment),
/// checking that each `trun` data offset points at the first byte of its `mdat` payload and
/// that the sample sizes fill the `mdat`.
pub fn parse_fragments(data: &[u8]) -> Result<Vec<Fragment<'_>>, MediaError> {
    let boxes = parse_boxes(data)?;
    let mut rest = boxes.as_slice();
    if rest.first().is_some_and(|b| &b.kind == b"styp") {
        rest = &rest[1..];
    }
    let mut fragments = Vec::new();
    while let Some((moof, tail)) = rest.split_first() {
        let Some((mdat, tail)) = tail.split_first() else {
            return Err(MediaError::Invalid {
                what: "moof without mdat",
            });
        };
        if &moof.kind != b"moof" || &mdat.kind != b"mdat" {
            return Err(MediaError::Invalid {
                what: "expected moof then mdat",
            });
        }
        fragments.push(parse_fragment(moof, mdat)?);
        rest = tail;
    }
    Ok(fragments)
}

fn parse_fragment<'a>(moof: &BoxRef<'a>, mdat: &BoxRef<'a>) -> Result<Fragment<'a>, MediaError> {
    let missing = |what| MediaError::Invalid { what };
    let mfhd = moof.child("mfhd").ok_or(missing("no mfhd"))?;
    let traf = moof.child("traf").ok_or(missing("no traf"))?;
    let tfhd = traf.child("tfhd").ok_or(missing("no tfhd"))?;
    let tfdt = traf.child("tfdt").ok_or(missing("no tfdt"))?;
    let trun = traf.child("trun").ok_or(missing("no trun"))?;

    let mut r = ByteReader::new(mfhd.body, "mfhd");
    r.u32()?;
    let sequence_number = r.u32()?;

    let (_, tfhd_flags) = tfhd.full_header()?;
    if tfhd_flags & 0x02_0000 == 0 {
        return Err(missing("tfhd without default-base-is-moof"));
    }
    let mut r = ByteReader::new(tfhd.body, "tfhd");
    r.u32()?;
    let track_id = r.u32()?;
    if tfhd_flags & 0x01 != 0 {
        r.u64()?;
    }
    if tfhd_flags & 0x02 != 0 {
        r.u32()?;
    }
    if tfhd_flags & 0x08 != 0 {
        r.u32()?;
    }
    if tfhd_flags & 0x10 != 0 {
        r.u32()?;
    }
    let default_sample_flags = if tfhd_flags & 0x20 != 0 {
        Some(r.u32()?)
    } else {
        None
    };

    let (tfdt_version, _) = tfdt.full_header()?;
    let mut r = ByteReader::new(tfdt.body, "tfdt");
    r.u32()?;
    let base_media_decode_time = if tfdt_version == 1 {
        r.u64()?
    } else {
        u64::from(r.u32()?)
    };

    let (trun_version, trun_flags) = trun.full_header()?;
    let mut r = ByteReader::new(trun.body, "trun");
    r.u32()?;
    let count = r.u32()? as usize;
    let data_offset = if trun_flags & 0x01 != 0 {
        Some(r.u32()? as i32)
    } else {
        None
    };
    if trun_flags & 0x04 != 0 {
        r.u32()?; // first_sample_flags
    }
    let mut samples = Vec::with_capacity(count.min(r.remaining() / 4 + 1));
    for _ in 0..count {
        let mut field = |bit: u32| -> Result<Option<u32>, MediaError> {
            if trun_flags & bit != 0 {
                Ok(Some(r.u32()?))
            } else {
                Ok(None)
            }
        };
        let duration = field(0x100)?;
        let size = field(0x200)?;
        let flags = field(0x400)?;
        let composition_offset = field(0x800)?.map(|raw| {
            if trun_version == 1 {
                i64::from(raw as i32)
            } else {
                i64::from(raw)
            }
        });
        samples.push(TrunSample {
            duration,
            size,
            flags,
            composition_offset,
        });
    }
    if r.remaining() != 0 {
        return Err(missing("trailing bytes in trun"));
    }

    let mdat_payload_offset = mdat.offset + (mdat.size - mdat.body.len());
    let expected_offset = (mdat_payload_offset - moof.offset) as i64;
    if data_offset.map(i64::from) != Some(expected_offset) {
        return Err(missing(
            "trun data offset does not point at the mdat payload",
        ));
    }
    let total: u64 = samples.iter().map(|s| u64::from(s.size.unwrap_or(0))).sum();
    if total != mdat.body.len() as u64 {
        return Err(missing("sample sizes do not fill the mdat"));
    }
    Ok(Fragment {
        sequence_number,
        track_id,
        default_sample_flags,
        base_media_decode_time,
        tfdt_version,
        trun_version,
        samples,
        data: mdat.body,
    })
}
