//! The CMAF muxer (ISO/IEC 14496-12, ISO/IEC 23000-19): one track per file.
//!
//! Video and audio are separate CMAF tracks (separate renditions in HLS, separate adaptation
//! sets in DASH), each with its own header ([`init_segment`]) and its own fragments
//! ([`write_fragment`]). Nothing here keeps state: the [`Segmenter`](crate::Segmenter) decides
//! what goes in which fragment and numbers them.
//!
//! # Layout
//!
//! The CMAF header (`init.mp4`):
//!
//! ```text
//! ftyp  major cmf2, compatible cmf2 cmfc iso6 isom
//! moov
//!   mvhd              timescale 1000, duration 0, next_track_ID 2
//!   trak
//!     tkhd            track 1, enabled|in_movie, display width/height for video
//!     mdia
//!       mdhd          the track timescale (90000, or the audio sampling rate), language und
//!       hdlr          vide | soun
//!       minf
//!         vmhd | smhd
//!         dinf/dref   one self-contained url entry
//!         stbl
//!           stsd      avc1+avcC+colr+pasp | hvc1+hvcC+colr+pasp | mp4a+esds
//!           stts stsc stsz stco   empty: every sample is in a fragment
//!   mvex/trex         track 1, sample description 1, no defaults
//! ```
//!
//! A fragment (one LL-HLS part, one CMAF chunk):
//!
//! ```text
//! moof
//!   mfhd              sequence number
//!   traf
//!     tfhd            track 1, default-base-is-moof (audio also: default flags = sync)
//!     tfdt  v1        64-bit base media decode time
//!     trun  v1 video  data offset; per sample: duration, size, flags, signed composition offset
//!           v0 audio  data offset; per sample: duration, size
//! mdat
//! ```
//!
//! A segment is [`STYP`] followed by its fragments.
//!
//! # Brands
//!
//! - `ftyp` major `cmf2`, compatible `cmf2`, `cmfc`, `iso6`, `isom`. `cmfc` is the CMAF
//!   structural brand and `cmf2` its stricter second-edition form; the output meets `cmf2`:
//!   no edit list, `trun` version 1 with signed composition offsets for video (decode times
//!   are shifted so that the first keyframe's composition offset is zero, see the segmenter),
//!   `tfdt` in every fragment, defaults repeated in every fragment, `colr` and `pasp` in video
//!   sample entries. `iso6` is the ISO BMFF brand that covers `tfdt` and default-base-is-moof;
//!   `isom` is there for old parsers that look for it. No codec media-profile brand (`cfhd`,
//!   `chh1`, `caac` …) is claimed: those promise resolution, level and colour constraints that
//!   are the publisher's to keep, not ours to check.
//! - `styp` major `msdh`, compatible `msdh`, `cmfs`: a DASH media segment and a CMAF segment.
//!   Not `msix` (that promises a `sidx`, which live segments do not carry) and not `cmfl` (the
//!   `styp` starts a segment, not each chunk).
//!
//! The parts are `avc1`/`hvc1` samples with parameter sets out of band (in the header);
//! in-band copies inside samples are left as they are (see [`crate::codec::NalUnits`]).

pub mod inspect;
mod writer;

use bytes::Bytes;

use crate::codec::{AacConfig, Colour, TrackConfig, VideoInfo};
use crate::{Sample, TrackKind};
use writer::BoxWriter;

/// The `styp` box that starts every media segment: major `msdh`, compatible `msdh`, `cmfs`.
pub const STYP: &[u8] = &[
    0, 0, 0, 24, b's', b't', b'y', b'p', b'm', b's', b'd', b'h', 0, 0, 0, 0, b'm', b's', b'd',
    b'h', b'c', b'm', b'f', b's',
];

/// The `styp` box as [`Bytes`], without a copy.
pub fn styp() -> Bytes {
    Bytes::from_static(STYP)
}

/// The track ID used in every file. Each file holds one track, so it is always 1.
pub const TRACK_ID: u32 = 1;

/// `sample_flags` of a sync sample: `sample_depends_on` = 2 (depends on no other sample).
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;

/// `sample_flags` of a non-sync sample: `sample_depends_on` = 1 and
/// `sample_is_non_sync_sample`.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

const IDENTITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Builds the CMAF header (`ftyp` + `moov`) of a track.
pub fn init_segment(config: &TrackConfig) -> Bytes {
    let mut w = BoxWriter::with_capacity(1024 + config.record().len());
    w.open(b"ftyp");
    w.bytes(b"cmf2");
    w.u32(0);
    for brand in [b"cmf2", b"cmfc", b"iso6", b"isom"] {
        w.bytes(brand);
    }
    w.close();

    w.open(b"moov");
    write_mvhd(&mut w);
    w.open(b"trak");
    write_tkhd(&mut w, config);
    w.open(b"mdia");
    write_mdhd(&mut w, config.timescale());
    write_hdlr(&mut w, config.kind());
    w.open(b"minf");
    match config.kind() {
        TrackKind::Video => {
            w.open_full(b"vmhd", 0, 1);
            w.zeros(8); // graphicsmode, opcolor
            w.close();
        }
        TrackKind::Audio => {
            w.open_full(b"smhd", 0, 0);
            w.zeros(4); // balance, reserved
            w.close();
        }
    }
    w.open(b"dinf");
    w.open_full(b"dref", 0, 0);
    w.u32(1);
    w.open_full(b"url ", 0, 1); // flag 1: the media is in this file
    w.close();
    w.close();
    w.close();
    w.open(b"stbl");
    w.open_full(b"stsd", 0, 0);
    w.u32(1);
    match config {
        TrackConfig::Avc(avc) => {
            write_visual_entry(&mut w, b"avc1", b"avcC", &avc.record, &avc.sps_info.video)
        }
        TrackConfig::Hevc(hevc) => {
            write_visual_entry(&mut w, b"hvc1", b"hvcC", &hevc.record, &hevc.sps_info.video)
        }
        TrackConfig::Aac(aac) => write_mp4a(&mut w, aac),
        TrackConfig::Opus(opus) => write_opus(&mut w, opus),
    }
    w.close();
    for kind in [b"stts", b"stsc", b"stco"] {
        w.open_full(kind, 0, 0);
        w.u32(0);
        w.close();
    }
    w.open_full(b"stsz", 0, 0);
    w.u32(0); // sample_size
    w.u32(0); // sample_count
    w.close();
    w.close(); // stbl
    w.close(); // minf
    w.close(); // mdia
    w.close(); // trak
    w.open(b"mvex");
    w.open_full(b"trex", 0, 0);
    w.u32(TRACK_ID);
    w.u32(1); // default_sample_description_index
    w.zeros(12); // default duration, size, flags: every fragment says its own
    w.close();
    w.close();
    w.close(); // moov
    Bytes::from(w.finish())
}

fn write_mvhd(w: &mut BoxWriter) {
    w.open_full(b"mvhd", 0, 0);
    w.zeros(8); // creation, modification time
    w.u32(1000); // timescale
    w.u32(0); // duration: unknown (live)
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(10);
    for value in IDENTITY_MATRIX {
        w.u32(value);
    }
    w.zeros(24); // pre_defined
    w.u32(TRACK_ID + 1); // next_track_ID
    w.close();
}

fn write_tkhd(w: &mut BoxWriter, config: &TrackConfig) {
    w.open_full(b"tkhd", 0, 0x3); // enabled, in movie
    w.zeros(8); // creation, modification time
    w.u32(TRACK_ID);
    w.u32(0); // reserved
    w.u32(0); // duration
    w.zeros(8); // reserved
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(if config.kind() == TrackKind::Audio {
        0x0100
    } else {
        0
    });
    w.u16(0); // reserved
    for value in IDENTITY_MATRIX {
        w.u32(value);
    }
    let (width, height) = config.video().map_or((0, 0), display_size);
    w.u32(width << 16);
    w.u32(height << 16);
    w.close();
}

/// The display size: the picture stretched horizontally by the sample aspect ratio.
fn display_size(video: &VideoInfo) -> (u32, u32) {
    let width = match video.sample_aspect_ratio {
        Some((h, v)) if h != v => {
            let scaled = u64::from(video.width) * u64::from(h) / u64::from(v);
            scaled.clamp(1, u64::from(u16::MAX)) as u32
        }
        _ => video.width,
    };
    (width, video.height)
}

fn write_mdhd(w: &mut BoxWriter, timescale: u32) {
    w.open_full(b"mdhd", 0, 0);
    w.zeros(8); // creation, modification time
    w.u32(timescale);
    w.u32(0); // duration
              // ISO 639-2 "und", three 5-bit letters offset from 0x60.
    let und = ((u16::from(b'u') - 0x60) << 10)
        | ((u16::from(b'n') - 0x60) << 5)
        | (u16::from(b'd') - 0x60);
    w.u16(und);
    w.u16(0);
    w.close();
}

fn write_hdlr(w: &mut BoxWriter, kind: TrackKind) {
    w.open_full(b"hdlr", 0, 0);
    w.u32(0); // pre_defined
    let (handler, name): (&[u8; 4], &[u8]) = match kind {
        TrackKind::Video => (b"vide", b"VideoHandler\0"),
        TrackKind::Audio => (b"soun", b"SoundHandler\0"),
    };
    w.bytes(handler);
    w.zeros(12);
    w.bytes(name);
    w.close();
}

fn write_visual_entry(
    w: &mut BoxWriter,
    entry: &[u8; 4],
    config_box: &[u8; 4],
    record: &[u8],
    video: &VideoInfo,
) {
    w.open(entry);
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.zeros(16); // pre_defined, reserved, pre_defined[3]
                 // Dimensions never exceed DIMENSION_MAX (16384), so they fit.
    w.u16(video.width as u16);
    w.u16(video.height as u16);
    w.u32(0x0048_0000); // 72 dpi
    w.u32(0x0048_0000);
    w.u32(0);
    w.u16(1); // frame_count
    w.zeros(32); // compressorname: empty
    w.u16(0x0018); // depth
    w.u16(0xFFFF); // pre_defined = -1
    w.open(config_box);
    w.bytes(record);
    w.close();
    let colour = video.colour.unwrap_or(Colour {
        primaries: 2,
        transfer: 2,
        matrix: 2,
        full_range: false,
    });
    w.open(b"colr");
    w.bytes(b"nclx");
    w.u16(u16::from(colour.primaries));
    w.u16(u16::from(colour.transfer));
    w.u16(u16::from(colour.matrix));
    w.u8(if colour.full_range { 0x80 } else { 0 });
    w.close();
    let (h_spacing, v_spacing) = video.sample_aspect_ratio.unwrap_or((1, 1));
    w.open(b"pasp");
    w.u32(u32::from(h_spacing));
    w.u32(u32::from(v_spacing));
    w.close();
    w.close();
}

fn write_mp4a(w: &mut BoxWriter, aac: &AacConfig) {
    w.open(b"mp4a");
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.zeros(8); // reserved
    w.u16(aac.channels());
    w.u16(16); // samplesize
    w.zeros(4); // pre_defined, reserved
                // 16.16 fixed point: rates above 65535 Hz do not fit and are written as 0; decoders take
                // the rate from the AudioSpecificConfig and players from the mdhd timescale.
    let rate = if aac.sample_rate <= 0xFFFF {
        aac.sample_rate << 16
    } else {
        0
    };
    w.u32(rate);
    write_esds(w, &aac.record);
    w.close();
}

/// The `Opus` sample entry with its `dOps` box (Opus in ISOBMFF §4.3).
fn write_opus(w: &mut BoxWriter, opus: &crate::codec::OpusConfig) {
    w.open(b"Opus");
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.zeros(8); // reserved
    w.u16(u16::from(opus.channels));
    w.u16(16); // samplesize
    w.zeros(4); // pre_defined, reserved
    w.u32(crate::codec::OPUS_SAMPLE_RATE << 16);
    w.open(b"dOps");
    w.bytes(&opus.record);
    w.close();
    w.close();
}

/// The `esds` box (ISO/IEC 14496-1 §7.2.6.5 ES_Descriptor), with descriptor lengths in the
/// fixed four-byte form so they can be written before the contents are known.
fn write_esds(w: &mut BoxWriter, audio_specific_config: &[u8]) {
    let dsi_len = audio_specific_config.len() as u32;
    let dcd_len = 13 + 5 + dsi_len;
    let es_len = 3 + 5 + dcd_len + 5 + 1;
    w.open_full(b"esds", 0, 0);
    write_descriptor_head(w, 0x03, es_len);
    w.u16(TRACK_ID as u16); // ES_ID
    w.u8(0); // no dependency, URL or OCR stream
    write_descriptor_head(w, 0x04, dcd_len);
    w.u8(0x40); // objectTypeIndication: ISO/IEC 14496-3 audio
    w.u8((0x05 << 2) | 1); // streamType audio, upStream 0, reserved 1
    w.u24(0); // bufferSizeDB
    w.u32(0); // maxBitrate
    w.u32(0); // avgBitrate
    write_descriptor_head(w, 0x05, dsi_len);
    w.bytes(audio_specific_config);
    write_descriptor_head(w, 0x06, 1);
    w.u8(0x02); // SLConfigDescriptor predefined: MP4 files
    w.close();
}

fn write_descriptor_head(w: &mut BoxWriter, tag: u8, len: u32) {
    assert!(len < 1 << 28, "descriptor of {len} bytes");
    w.u8(tag);
    w.u8(0x80 | (len >> 21) as u8 & 0x7F);
    w.u8(0x80 | (len >> 14) as u8 & 0x7F);
    w.u8(0x80 | (len >> 7) as u8 & 0x7F);
    w.u8(len as u8 & 0x7F);
}

const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
const TFHD_DEFAULT_SAMPLE_FLAGS: u32 = 0x00_0020;
const TRUN_DATA_OFFSET: u32 = 0x00_0001;
const TRUN_DURATION: u32 = 0x00_0100;
const TRUN_SIZE: u32 = 0x00_0200;
const TRUN_FLAGS: u32 = 0x00_0400;
const TRUN_COMPOSITION_OFFSET: u32 = 0x00_0800;

/// The bytes a fragment of `samples` samples adds around the sample data (`moof` and the
/// `mdat` header), so that a segment's size can be bounded before the fragment is built.
pub fn fragment_overhead(kind: TrackKind, samples: usize) -> usize {
    let (tfhd, per_sample) = match kind {
        TrackKind::Video => (16, 16),
        TrackKind::Audio => (20, 8),
    };
    let trun = 20 + per_sample * samples;
    8 + 16 + 8 + tfhd + 20 + trun + 8
}

/// Builds one fragment (`moof` + `mdat`) of a track: `samples` in decode order, the first
/// one's `dts` as the base media decode time, each `duration` already set.
///
/// Video samples carry their sync flag and signed composition offset per sample (`trun`
/// version 1); audio samples are all sync, declared once in `tfhd`.
///
/// # Panics
///
/// If `samples` is empty, a duration is zero, or the fragment would exceed 4 GiB: the
/// segmenter never does that.
pub fn write_fragment(kind: TrackKind, sequence_number: u32, samples: &[Sample]) -> Bytes {
    let first = samples.first().expect("a fragment has at least one sample");
    assert!(
        samples.iter().all(|s| s.duration > 0),
        "zero sample duration"
    );
    let data_len: usize = samples.iter().map(|s| s.data.len()).sum();
    let expected_len = fragment_overhead(kind, samples.len()) + data_len;
    let mut w = BoxWriter::with_capacity(expected_len);

    w.open(b"moof");
    w.open_full(b"mfhd", 0, 0);
    w.u32(sequence_number);
    w.close();
    w.open(b"traf");
    match kind {
        TrackKind::Video => {
            w.open_full(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF);
            w.u32(TRACK_ID);
        }
        TrackKind::Audio => {
            w.open_full(
                b"tfhd",
                0,
                TFHD_DEFAULT_BASE_IS_MOOF | TFHD_DEFAULT_SAMPLE_FLAGS,
            );
            w.u32(TRACK_ID);
            w.u32(SYNC_SAMPLE_FLAGS);
        }
    }
    w.close();
    w.open_full(b"tfdt", 1, 0);
    w.u64(first.dts);
    w.close();
    let data_offset_at = match kind {
        TrackKind::Video => {
            let flags =
                TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | TRUN_COMPOSITION_OFFSET;
            w.open_full(b"trun", 1, flags);
            w.u32(samples.len() as u32);
            let at = w.len();
            w.u32(0);
            for sample in samples {
                w.u32(sample.duration);
                w.u32(sample.data.len() as u32);
                w.u32(if sample.keyframe {
                    SYNC_SAMPLE_FLAGS
                } else {
                    NON_SYNC_SAMPLE_FLAGS
                });
                w.i32(sample.composition_offset);
            }
            at
        }
        TrackKind::Audio => {
            w.open_full(b"trun", 0, TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE);
            w.u32(samples.len() as u32);
            let at = w.len();
            w.u32(0);
            for sample in samples {
                w.u32(sample.duration);
                w.u32(sample.data.len() as u32);
            }
            at
        }
    };
    w.close(); // trun
    w.close(); // traf
    w.close(); // moof
    let moof_len = w.len();
    // default-base-is-moof: the data offset counts from the first byte of the moof.
    w.patch_u32(data_offset_at, (moof_len + 8) as u32);
    w.open(b"mdat");
    for sample in samples {
        w.bytes(&sample.data);
    }
    w.close();
    let out = w.finish();
    assert_eq!(out.len(), expected_len, "fragment_overhead is out of date");
    Bytes::from(out)
}
