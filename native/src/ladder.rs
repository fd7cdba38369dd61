//! The ABR ladder of one stream: decode once, scale once per rung, encode each rung.
//!
//! A [`Ladder`] takes the source's access units in decode order ([`Ladder::push`]) and hands
//! back each rung's encoded access units ([`RungPacket`]): 4-byte-length-prefixed H.264 with
//! the parameter sets in the rung's `avcC` ([`ActiveRung::avcc`]), timestamps in the source's
//! 1/90000 s. Every source keyframe becomes an IDR in every rung at the same presentation time,
//! and nowhere else (scene-cut detection is off), so the rungs' segments can start exactly
//! where the source's do.
//!
//! Rungs never upscale: a rung taller (or, when it names a width, wider) than the source is not
//! encoded. When the source's picture size changes mid-stream, the ladder is planned again:
//! rungs whose output size is unchanged keep their encoder (only the scaler is replaced), the
//! others are drained and replaced, and their [`ActiveRung::generation`] goes up, which tells
//! the packager to start a new header with a discontinuity.

use crate::annexb::{avcc_from_annexb, hvcc_from_annexb, to_length_prefixed};
use crate::thumb::{ThumbnailSpec, Thumbnailer};
use crate::{
    CodecContext, CodecId, Error, FilterGraph, Frame, Options, Packet, Rational, Scaler,
    VideoConfig, VideoFormat,
};
use std::collections::VecDeque;

/// One rung as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RungSpec {
    /// The rendition name (`720p`).
    pub name: String,
    /// Output width; 0 keeps the source's aspect ratio at `height`.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Target bit rate (CBR with a one-second VBV buffer).
    pub bit_rate_bps: u64,
}

/// How a ladder encodes.
#[derive(Clone, Debug)]
pub struct LadderConfig {
    /// What the rungs are: [`CodecId::H264`] or [`CodecId::Hevc`].
    pub codec: CodecId,
    /// The encoder, by FFmpeg name (what the probe chose, e.g. `libx264`, `libx265`).
    pub encoder: String,
    /// The libx264 / libx265 preset (`veryfast`); ignored by other encoders.
    pub preset: String,
    /// The rungs, in any order.
    pub rungs: Vec<RungSpec>,
    /// The source's nominal frame rate, for rate control (timestamps drive timing).
    pub frame_rate: Rational,
    /// Threads per codec (decoder and each encoder); 0 lets FFmpeg choose.
    pub threads: u32,
    /// A libavfilter description applied to every decoded picture before the rungs are
    /// scaled from it (a watermark: `drawtext=…`, `movie=logo.png[wm];[in][wm]overlay=…`).
    pub filter: Option<String>,
}

/// The size rung `spec` encodes at for a `src_width`×`src_height` source, or `None` when that
/// would upscale. Sizes are even (4:2:0 chroma).
pub fn rung_size(spec: &RungSpec, src_width: u32, src_height: u32) -> Option<(u32, u32)> {
    if spec.height == 0 || src_width == 0 || src_height == 0 {
        return None;
    }
    if spec.height > src_height || spec.width > src_width {
        return None;
    }
    let height = (spec.height & !1).max(2);
    let width = if spec.width > 0 {
        spec.width
    } else {
        // The nearest even width: round(src_width × height / src_height / 2) × 2.
        let twice = 2 * u64::from(src_height);
        let halves = (u64::from(src_width) * u64::from(height) + twice / 2) / twice;
        u32::try_from(halves * 2).ok()?
    };
    Some(((width & !1).max(2), height))
}

/// One encoded access unit of one rung.
#[derive(Debug)]
pub struct RungPacket {
    /// Index of the rung in [`LadderConfig::rungs`].
    pub rung: usize,
    /// The [`ActiveRung::generation`] of the encoder that made it.
    pub generation: u32,
    /// Length-prefixed NAL units.
    pub data: Vec<u8>,
    /// Presentation time, 1/90000 s.
    pub pts: i64,
    /// Decode time, 1/90000 s.
    pub dts: i64,
    /// An IDR.
    pub keyframe: bool,
}

/// A rung being encoded.
#[derive(Debug)]
pub struct ActiveRung {
    /// Index in [`LadderConfig::rungs`].
    pub spec: usize,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// The decoder configuration record of this encoder's output (`avcC` for H.264, `hvcC`
    /// for H.265).
    pub record: Vec<u8>,
    /// Bumped each time the rung gets a new encoder (a new header).
    pub generation: u32,
    /// The larger rung this one is scaled from (a cascade: 1080p → 720p → 480p reads 720p
    /// pictures, not 1080p ones); `None`: from the source.
    pub parent: Option<usize>,
    codec: CodecId,
    encoder: CodecContext,
    scaler: Scaler,
    scaled: Frame,
    packet: Packet,
}

/// Counters of one ladder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LadderStats {
    /// Access units decoded into pictures.
    pub frames_decoded: u64,
    /// Pictures sent to each active rung's encoder, summed.
    pub frames_encoded: u64,
    /// Access units the decoder refused (corrupt input); the ladder goes on.
    pub decode_errors: u64,
    /// Times the ladder was planned again for a new source size.
    pub replans: u64,
    /// Thumbnails that could not be made (the encoder would not open or encode).
    pub thumbnail_errors: u64,
}

/// One stream's decoder and rungs.
pub struct Ladder {
    config: LadderConfig,
    decoder: CodecContext,
    decoded: Frame,
    source: Option<VideoFormat>,
    rungs: Vec<Option<ActiveRung>>,
    /// Active rungs (indices into `rungs`), largest picture first: the order they are
    /// scaled and encoded in.
    order: Vec<usize>,
    /// The picture filter for the current source format, and its output picture.
    filter: Option<FilterGraph>,
    filtered: Frame,
    /// Presentation times of source keyframes not yet decoded, ascending.
    keyframes: VecDeque<i64>,
    /// Rungs (by spec index) whose next picture is to be a keyframe though the source's is
    /// not ([`Ladder::force_keyframe`]).
    forced: Vec<bool>,
    /// Thumbnails: the encoder for the current source format, whether the next picture
    /// should become one, and the one made and not yet taken.
    thumbnailer: Option<Thumbnailer>,
    thumbnail_wanted: Option<ThumbnailSpec>,
    thumbnail: Option<Vec<u8>>,
    next_generation: u32,
    stats: LadderStats,
}

impl std::fmt::Debug for Ladder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ladder")
            .field("source", &self.source)
            .field("rungs", &self.rungs)
            .field("stats", &self.stats)
            .finish()
    }
}

/// Source keyframes remembered while the decoder holds their pictures.
const KEYFRAMES_PENDING_MAX: usize = 64;

impl Ladder {
    /// A ladder for a `codec` source whose decoder configuration record is `extradata`.
    /// Encoders open when the first picture is decoded (its size picks the rungs).
    pub fn new(codec: CodecId, extradata: &[u8], config: LadderConfig) -> Result<Ladder, Error> {
        let mut decoder = CodecContext::decoder(codec)?;
        decoder.set_extradata(extradata)?;
        decoder.set_threads(config.threads);
        decoder.open(None)?;
        Ok(Ladder {
            rungs: (0..config.rungs.len()).map(|_| None).collect(),
            forced: vec![false; config.rungs.len()],
            config,
            decoder,
            decoded: Frame::new()?,
            source: None,
            order: Vec::new(),
            filter: None,
            filtered: Frame::new()?,
            keyframes: VecDeque::new(),
            thumbnailer: None,
            thumbnail_wanted: None,
            thumbnail: None,
            next_generation: 0,
            stats: LadderStats::default(),
        })
    }

    /// Makes rung `spec`'s next picture an IDR (a WebRTC viewer lost one or joined): its
    /// segments still start only where the source's keyframes are. A rung not in the ladder
    /// is ignored.
    pub fn force_keyframe(&mut self, spec: usize) {
        if let Some(forced) = self.forced.get_mut(spec) {
            *forced = true;
        }
    }

    /// The rungs being encoded (none before the first picture).
    pub fn rungs(&self) -> impl Iterator<Item = &ActiveRung> {
        self.rungs.iter().flatten()
    }

    /// What the rungs are encoded as.
    pub fn codec(&self) -> CodecId {
        self.config.codec
    }

    /// The source picture format, once known.
    pub fn source(&self) -> Option<VideoFormat> {
        self.source
    }

    /// Counters.
    pub fn stats(&self) -> LadderStats {
        self.stats
    }

    /// Makes the next decoded picture (as decoded, before any watermark) into a JPEG of
    /// `spec`, to be taken with [`Ladder::take_thumbnail`].
    pub fn want_thumbnail(&mut self, spec: ThumbnailSpec) {
        self.thumbnail_wanted = Some(spec);
    }

    /// The thumbnail made since the last call, if any.
    pub fn take_thumbnail(&mut self) -> Option<Vec<u8>> {
        self.thumbnail.take()
    }

    /// A thumbnail of the decoded picture, when one is wanted. A failure is counted and the
    /// picture goes on to the rungs: thumbnails never stop a stream.
    fn thumbnail_of_decoded(&mut self, format: VideoFormat) {
        let Some(spec) = self.thumbnail_wanted.take() else {
            return;
        };
        let fits = self
            .thumbnailer
            .as_ref()
            .is_some_and(|t| t.src() == format && t.spec() == spec);
        if !fits {
            self.thumbnailer = match Thumbnailer::new(format, spec) {
                Ok(t) => Some(t),
                Err(_) => {
                    self.stats.thumbnail_errors += 1;
                    return;
                }
            };
        }
        let thumbnailer = self.thumbnailer.as_mut().expect("made above");
        match thumbnailer.encode(&self.decoded) {
            Ok(jpeg) => self.thumbnail = Some(jpeg),
            Err(_) => self.stats.thumbnail_errors += 1,
        }
    }

    /// Decodes one source access unit (decode order) and encodes the pictures that come out,
    /// appending each rung's packets to `out`. A source `keyframe` makes the same picture an
    /// IDR in every rung. A corrupt access unit is counted and skipped.
    pub fn push(
        &mut self,
        data: &[u8],
        pts: i64,
        dts: i64,
        keyframe: bool,
        out: &mut Vec<RungPacket>,
    ) -> Result<(), Error> {
        if keyframe {
            self.keyframes.push_back(pts);
            while self.keyframes.len() > KEYFRAMES_PENDING_MAX {
                self.keyframes.pop_front();
            }
        }
        let mut packet = Packet::copy_from(data)?;
        packet.set_pts(Some(pts));
        packet.set_dts(Some(dts));
        packet.set_key(keyframe);
        loop {
            match self.decoder.send_packet(&packet) {
                Ok(()) => break,
                Err(Error::Again) => self.drain_decoder(out)?,
                Err(Error::InvalidData) => {
                    self.stats.decode_errors += 1;
                    return Ok(());
                }
                Err(error) => return Err(error),
            }
        }
        self.drain_decoder(out)
    }

    /// Drains the decoder and every encoder (end of stream), appending the last packets.
    pub fn finish(&mut self, out: &mut Vec<RungPacket>) -> Result<(), Error> {
        match self.decoder.send_eof() {
            Ok(()) | Err(Error::Eof) => {}
            Err(error) => return Err(error),
        }
        self.drain_decoder(out)?;
        for rung in self.rungs.iter_mut().flatten() {
            drain_encoder(rung, true, out)?;
        }
        Ok(())
    }

    fn drain_decoder(&mut self, out: &mut Vec<RungPacket>) -> Result<(), Error> {
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => {
                    self.stats.frames_decoded += 1;
                    self.encode_decoded(out)?;
                }
                Err(Error::Again | Error::Eof) => return Ok(()),
                Err(Error::InvalidData) => self.stats.decode_errors += 1,
                Err(error) => return Err(error),
            }
        }
    }

    fn encode_decoded(&mut self, out: &mut Vec<RungPacket>) -> Result<(), Error> {
        let Some(format) = self.decoded.format() else {
            return Ok(());
        };
        if self.source != Some(format) {
            self.plan(format, out)?;
        }
        self.thumbnail_of_decoded(format);
        if let Some(filter) = self.filter.as_mut() {
            match filter.filter(&self.decoded, &mut self.filtered) {
                Ok(()) => std::mem::swap(&mut self.decoded, &mut self.filtered),
                Err(Error::Again) => return Ok(()),
                Err(error) => return Err(error),
            }
        }
        let Some(pts) = self.decoded.pts() else {
            return Ok(());
        };
        while self.keyframes.front().is_some_and(|&k| k < pts) {
            self.keyframes.pop_front();
        }
        let force = self.keyframes.front() == Some(&pts);
        if force {
            self.keyframes.pop_front();
        }
        for k in 0..self.order.len() {
            let index = self.order[k];
            // Scale from the parent rung's picture of this instant when there is one (it was
            // scaled just before: the order is by size, largest first), else the source.
            let parent = self.rungs[index].as_ref().and_then(|r| r.parent);
            let (source, rung) = match parent {
                Some(p) => {
                    let (parent, child) = pair_mut(&mut self.rungs, p, index);
                    (&parent.scaled, child)
                }
                None => (
                    &self.decoded,
                    self.rungs[index]
                        .as_mut()
                        .expect("ordered rungs are active"),
                ),
            };
            rung.scaler.scale_into(source, &mut rung.scaled)?;
            rung.scaled.set_pts(Some(pts));
            rung.scaled
                .set_force_keyframe(force || std::mem::take(&mut self.forced[index]));
            loop {
                match rung.encoder.send_frame(&rung.scaled) {
                    Ok(()) => break,
                    Err(Error::Again) => drain_encoder(rung, false, out)?,
                    Err(error) => return Err(error),
                }
            }
            self.stats.frames_encoded += 1;
            drain_encoder(rung, false, out)?;
        }
        Ok(())
    }

    /// (Re)plans the rungs for a source of `format`.
    fn plan(&mut self, format: VideoFormat, out: &mut Vec<RungPacket>) -> Result<(), Error> {
        if self.source.is_some() {
            self.stats.replans += 1;
        }
        self.source = Some(format);
        self.filter = match &self.config.filter {
            Some(description) => Some(FilterGraph::new(
                format,
                Rational::new(1, 90_000),
                description,
            )?),
            None => None,
        };
        for index in 0..self.config.rungs.len() {
            let size = rung_size(&self.config.rungs[index], format.width, format.height);
            let keep = match (&self.rungs[index], size) {
                (Some(rung), Some((w, h))) => rung.width == w && rung.height == h,
                _ => false,
            };
            if keep {
                // Same size, same encoder; `plan_cascade` gives it a scaler for the new source.
                continue;
            }
            if let Some(mut old) = self.rungs[index].take() {
                drain_encoder(&mut old, true, out)?;
            }
            if let Some((width, height)) = size {
                let generation = self.next_generation;
                self.next_generation += 1;
                self.rungs[index] = Some(self.open_rung(index, format, width, height, generation)?);
            }
        }
        self.plan_cascade(format)
    }

    /// Orders the active rungs largest first and gives each the smallest larger rung (at least
    /// as wide and as tall) as the picture it scales from, or the source.
    fn plan_cascade(&mut self, source: VideoFormat) -> Result<(), Error> {
        let size = |r: &ActiveRung| (r.width, r.height);
        let mut order: Vec<usize> = (0..self.rungs.len())
            .filter(|&i| self.rungs[i].is_some())
            .collect();
        order.sort_by_key(|&i| {
            let (w, h) = size(self.rungs[i].as_ref().expect("active"));
            std::cmp::Reverse(u64::from(w) * u64::from(h))
        });
        for k in 0..order.len() {
            let index = order[k];
            let (w, h) = size(self.rungs[index].as_ref().expect("active"));
            let parent = order[..k].iter().rev().copied().find(|&p| {
                let (pw, ph) = size(self.rungs[p].as_ref().expect("active"));
                pw >= w && ph >= h && (pw, ph) != (w, h)
            });
            let from = match parent {
                Some(p) => self.rungs[p].as_ref().expect("active").scaler.dst(),
                None => source,
            };
            let rung = self.rungs[index].as_mut().expect("active");
            rung.parent = parent;
            if rung.scaler.src() != from {
                rung.scaler = Scaler::new(from, rung.scaler.dst())?;
            }
        }
        self.order = order;
        Ok(())
    }

    fn open_rung(
        &self,
        index: usize,
        source: VideoFormat,
        width: u32,
        height: u32,
        generation: u32,
    ) -> Result<ActiveRung, Error> {
        let spec = &self.config.rungs[index];
        let pixel_format =
            crate::system_memory_format(&self.config.encoder).ok_or(Error::Unsupported {
                what: "an encoder that takes only hardware surfaces (VAAPI) in the ladder",
            })?;
        let mut encoder = CodecContext::encoder_by_name(&self.config.encoder)?;
        let mut video = VideoConfig::new(width, height, self.config.frame_rate, spec.bit_rate_bps);
        video.pixel_format = pixel_format;
        // Keyframes come from the source (forced); this only bounds a source that sends none.
        video.gop_size = 600;
        video.max_rate_bps = spec.bit_rate_bps;
        video.buffer_bits = spec.bit_rate_bps;
        video.threads = self.config.threads;
        encoder.configure_video(&video);
        let mut options = Options::new();
        options.set("forced-idr", "1")?;
        match self.config.encoder.as_str() {
            "libx264" => {
                options.set("preset", &self.config.preset)?;
                options.set("tune", "zerolatency")?;
                // nal-hrd=cbr: constant bit rate with filler, so every rung keeps its budget
                // even when the picture is easy; scene cuts off so keyframes come only from
                // the source.
                options.set(
                    "x264-params",
                    "scenecut=0:open-gop=0:nal-hrd=cbr:force-cfr=1",
                )?;
            }
            "libx265" => {
                options.set("preset", &self.config.preset)?;
                options.set("tune", "zerolatency")?;
                options.set(
                    "x265-params",
                    "scenecut=0:open-gop=0:strict-cbr=1:repeat-headers=0:log-level=warning",
                )?;
            }
            _ => {}
        }
        encoder.open(Some(&mut options))?;
        let extradata = encoder.extradata();
        let record = if extradata.first() == Some(&1) {
            extradata.to_vec()
        } else if self.config.codec == CodecId::Hevc {
            hvcc_from_annexb(extradata).ok_or(Error::BadHeader {
                what: "no VPS, SPS and PPS",
            })?
        } else {
            avcc_from_annexb(extradata).ok_or(Error::BadHeader {
                what: "no SPS and PPS",
            })?
        };
        let target = VideoFormat {
            width,
            height,
            pixel_format,
        };
        Ok(ActiveRung {
            spec: index,
            width,
            height,
            record,
            generation,
            parent: None,
            codec: self.config.codec,
            encoder,
            scaler: Scaler::new(source, target)?,
            scaled: Frame::video(target)?,
            packet: Packet::new()?,
        })
    }
}

/// Takes every packet `rung`'s encoder has ready (all of them after end of input when
/// `finish`).
fn drain_encoder(
    rung: &mut ActiveRung,
    finish: bool,
    out: &mut Vec<RungPacket>,
) -> Result<(), Error> {
    if finish {
        match rung.encoder.send_eof() {
            Ok(()) | Err(Error::Eof) => {}
            Err(error) => return Err(error),
        }
    }
    loop {
        match rung.encoder.receive_packet(&mut rung.packet) {
            Ok(()) => {
                let Some(pts) = rung.packet.pts() else {
                    continue;
                };
                out.push(RungPacket {
                    rung: rung.spec,
                    generation: rung.generation,
                    data: to_length_prefixed(rung.packet.data(), rung.codec),
                    pts,
                    dts: rung.packet.dts().unwrap_or(pts),
                    keyframe: rung.packet.is_key(),
                });
            }
            Err(Error::Again | Error::Eof) => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}

/// Borrows `rungs[a]` and `rungs[b]` (both active, `a != b`) at once.
fn pair_mut(
    rungs: &mut [Option<ActiveRung>],
    a: usize,
    b: usize,
) -> (&ActiveRung, &mut ActiveRung) {
    assert_ne!(a, b);
    if a < b {
        let (left, right) = rungs.split_at_mut(b);
        (
            left[a].as_ref().expect("active parent"),
            right[0].as_mut().expect("active rung"),
        )
    } else {
        let (left, right) = rungs.split_at_mut(a);
        (
            right[0].as_ref().expect("active parent"),
            left[b].as_mut().expect("active rung"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(width: u32, height: u32) -> RungSpec {
        RungSpec {
            name: format!("{height}p"),
            width,
            height,
            bit_rate_bps: 1_000_000,
        }
    }

    #[test]
    fn rungs_keep_the_aspect_and_never_upscale() {
        assert_eq!(rung_size(&spec(0, 720), 1920, 1080), Some((1280, 720)));
        assert_eq!(rung_size(&spec(0, 480), 1920, 1080), Some((854, 480)));
        assert_eq!(rung_size(&spec(0, 360), 1920, 1080), Some((640, 360)));
        assert_eq!(rung_size(&spec(0, 720), 1280, 720), Some((1280, 720)));
        assert_eq!(rung_size(&spec(0, 720), 854, 480), None, "would upscale");
        assert_eq!(rung_size(&spec(400, 400), 1920, 1080), Some((400, 400)));
        assert_eq!(rung_size(&spec(720, 720), 640, 360), None);
        assert_eq!(
            rung_size(&spec(0, 361), 1920, 1080),
            Some((640, 360)),
            "even"
        );
        assert_eq!(rung_size(&spec(0, 0), 1920, 1080), None);
    }
}
