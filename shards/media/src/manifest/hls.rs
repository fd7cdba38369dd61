//! HLS media and multivariant playlists (RFC 8216, draft-pantos-hls-rfc8216bis for LL-HLS).
//!
//! URIs are relative: a media playlist lives at `/live/{stream}/{rendition}/index.m3u8`, so its
//! segments are `{n}.m4s`, its parts `{n}.{p}.m4s`, its init `init.mp4`, and the other
//! renditions `../{name}/index.m3u8`; the multivariant playlist at `/live/{stream}/index.m3u8`
//! points at `{name}/index.m3u8`.

use super::model::{
    PartView, RenditionInfo, RenditionKind, RenditionView, SegmentView, StreamFacts,
};
use super::text::{ticks_to_ms, Iso8601Ms, Text, UriQuery};

/// The `EXT-X-VERSION` written on every playlist.
///
/// It is the minimum the tags used require: `EXT-X-MAP` in a media playlist without
/// `EXT-X-I-FRAMES-ONLY` needs version 6 (rfc8216bis §8). The LL-HLS tags (`EXT-X-PART`,
/// `EXT-X-PART-INF`, `EXT-X-SERVER-CONTROL`, `EXT-X-PRELOAD-HINT`, `EXT-X-RENDITION-REPORT`)
/// carry no version requirement; version 9 would only be needed for `EXT-X-SKIP` (playlist
/// delta updates), which is not implemented, so `CAN-SKIP-UNTIL` is never advertised. Declaring
/// a higher version than needed would only lock out older clients.
pub const HLS_VERSION: u32 = 6;

/// How many target durations from the end of the playlist parts are listed for (rfc8216bis
/// §6.2.2: parts further back SHOULD be removed).
pub const PART_WINDOW_TARGET_DURATIONS: u64 = 3;

/// `HOLD-BACK` and `PART-HOLD-BACK` as multiples of the target duration and part target: the
/// spec's minimum (HOLD-BACK MUST be ≥ 3 × target duration; PART-HOLD-BACK SHOULD be ≥ 3 ×
/// part target).
pub const HOLD_BACK_MULTIPLE: u64 = 3;

/// The path, relative to a rendition's directory, of init segment version `.0`: `init.mp4` for
/// version 0 and `init.mp4?v={version}` after the track's configuration changed, so each
/// version has its own cacheable URL on the one documented route. The server serves the
/// version named by `v` (absent means 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitPath(pub u32);

impl InitPath {
    /// Whether the path already carries a query (so more parameters follow with `&`).
    pub fn has_query(&self) -> bool {
        self.0 != 0
    }
}

impl std::fmt::Display for InitPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => f.write_str("init.mp4"),
            v => write!(f, "init.mp4?v={v}"),
        }
    }
}

/// Writes the media playlist of `rendition` to `out`.
///
/// `renditions` is every rendition of the stream (the one written is recognised by name and
/// skipped); with LL-HLS on they become `EXT-X-RENDITION-REPORT` tags. `uri_query` is appended
/// to every URI. The blocking-reload directives of the request are not part of it: the caller
/// passes only what it wants clients to carry forward (a playback token).
pub fn write_media_playlist(
    out: &mut String,
    stream: &StreamFacts,
    rendition: &RenditionView<'_>,
    renditions: &[RenditionView<'_>],
    uri_query: Option<UriQuery<'_>>,
) {
    let target_duration_s = effective_target_duration_s(stream, rendition);
    let low_latency = stream.part_target_ms.filter(|&ms| ms > 0);
    let segments = rendition.segments;
    let open = rendition.open_segment.filter(|_| !stream.ended);
    let open_parts = if open.is_some() && low_latency.is_some() {
        rendition.open_parts()
    } else {
        Default::default()
    };
    let first_msn = segments
        .first()
        .map(|s| s.msn)
        .or(open.map(|o| o.msn))
        .unwrap_or(0);

    let mut t = Text::new(out);
    write_media_header(
        &mut t,
        target_duration_s,
        low_latency,
        first_msn,
        rendition.discontinuity_sequence,
    );

    let timescale = rendition.info.timescale;
    let parts_from_msn = if low_latency.is_some() {
        first_msn_with_parts(rendition, open_parts, target_duration_s)
    } else {
        u64::MAX
    };
    let mut parts = rendition
        .parts
        .skip_to(rendition.parts.partition_point(|p| p.msn < parts_from_msn));
    let mut previous: Option<&SegmentView> = None;
    for segment in segments.iter() {
        debug_assert!(
            previous.is_none_or(|p| p.msn + 1 == segment.msn),
            "segment msns must be consecutive"
        );
        let head = SegmentHead {
            discontinuity: segment.discontinuity,
            init_version: segment.init_version,
            program_date_time_ms: segment.program_date_time_ms,
        };
        head.write(&mut t, previous.map(|p| p.init_version), uri_query);
        let (own, rest) = split_parts(parts, segment.msn);
        parts = rest;
        if segment.msn >= parts_from_msn && !segment.gap {
            write_parts(&mut t, own, timescale, uri_query);
        }
        if segment.gap {
            t.s("#EXT-X-GAP").nl();
        }
        t.s("#EXTINF:")
            .seconds_ms(ticks_to_ms(segment.duration_ticks, timescale))
            .s(",")
            .nl();
        t.u64(segment.msn).s(".m4s").query(false, uri_query).nl();
        previous = Some(segment);
    }

    if let Some(open) = open.filter(|_| !open_parts.is_empty()) {
        let head = SegmentHead {
            discontinuity: open.discontinuity,
            init_version: open.init_version,
            program_date_time_ms: open.program_date_time_ms,
        };
        head.write(&mut t, previous.map(|p| p.init_version), uri_query);
        write_parts(&mut t, open_parts.iter(), timescale, uri_query);
    }

    if low_latency.is_some() && !stream.ended {
        let hint = rendition.preload_hint();
        t.s("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"")
            .u64(hint.msn)
            .s(".")
            .u64(u64::from(hint.part_index))
            .s(".m4s")
            .query(false, uri_query)
            .s("\"")
            .nl();
    }
    if low_latency.is_some() {
        for other in renditions
            .iter()
            .filter(|r| r.info.name != rendition.info.name)
        {
            write_rendition_report(&mut t, other, uri_query);
        }
    }
    if stream.ended {
        t.s("#EXT-X-ENDLIST").nl();
    }
}

/// The playlist tags before the first segment.
fn write_media_header(
    t: &mut Text<'_>,
    target_duration_s: u64,
    part_target_ms: Option<u32>,
    first_msn: u64,
    discontinuity_sequence: u64,
) {
    t.s("#EXTM3U").nl();
    t.s("#EXT-X-VERSION:").u64(u64::from(HLS_VERSION)).nl();
    t.s("#EXT-X-TARGETDURATION:").u64(target_duration_s).nl();
    if let Some(part_target_ms) = part_target_ms {
        let part_target_ms = u64::from(part_target_ms);
        t.s("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=")
            .seconds_ms(HOLD_BACK_MULTIPLE * part_target_ms)
            .s(",HOLD-BACK=")
            .seconds_ms(HOLD_BACK_MULTIPLE * target_duration_s * 1000)
            .nl();
        t.s("#EXT-X-PART-INF:PART-TARGET=")
            .seconds_ms(part_target_ms)
            .nl();
    }
    t.s("#EXT-X-MEDIA-SEQUENCE:").u64(first_msn).nl();
    if discontinuity_sequence != 0 {
        t.s("#EXT-X-DISCONTINUITY-SEQUENCE:")
            .u64(discontinuity_sequence)
            .nl();
    }
    t.s("#EXT-X-INDEPENDENT-SEGMENTS").nl();
}

/// The tags that open a segment (complete or open): discontinuity, init map, date.
struct SegmentHead {
    discontinuity: bool,
    init_version: u32,
    program_date_time_ms: Option<u64>,
}

impl SegmentHead {
    /// `previous_init` is the init version of the segment before, `None` for the first.
    fn write(&self, t: &mut Text<'_>, previous_init: Option<u32>, uri_query: Option<UriQuery<'_>>) {
        let first = previous_init.is_none();
        // A discontinuity before the first listed segment has no segment to separate it from;
        // it is already counted in EXT-X-DISCONTINUITY-SEQUENCE.
        if self.discontinuity && !first {
            t.s("#EXT-X-DISCONTINUITY").nl();
        }
        if previous_init != Some(self.init_version) {
            let path = InitPath(self.init_version);
            t.s("#EXT-X-MAP:URI=\"")
                .display(path)
                .query(path.has_query(), uri_query)
                .s("\"")
                .nl();
        }
        if first || self.discontinuity {
            if let Some(ms) = self.program_date_time_ms {
                t.s("#EXT-X-PROGRAM-DATE-TIME:").display(Iso8601Ms(ms)).nl();
            }
        }
    }
}

fn write_parts<'p>(
    t: &mut Text<'_>,
    parts: impl Iterator<Item = &'p PartView>,
    timescale: u32,
    uri_query: Option<UriQuery<'_>>,
) {
    for part in parts {
        t.s("#EXT-X-PART:DURATION=")
            .seconds_ms(ticks_to_ms(part.duration_ticks, timescale))
            .s(",URI=\"")
            .u64(part.msn)
            .s(".")
            .u64(u64::from(part.index))
            .s(".m4s")
            .query(false, uri_query)
            .s("\"");
        if part.independent {
            t.s(",INDEPENDENT=YES");
        }
        t.nl();
    }
}

fn write_rendition_report(
    t: &mut Text<'_>,
    other: &RenditionView<'_>,
    uri_query: Option<UriQuery<'_>>,
) {
    let last_msn = other.last_msn();
    let last_part = other.last_part();
    // LAST-MSN is the segment of the last part when there are parts, else the last segment.
    let Some(msn) = last_part.map(|p| p.msn).or(last_msn) else {
        return;
    };
    t.s("#EXT-X-RENDITION-REPORT:URI=\"../")
        .name(other.info.name)
        .s("/index.m3u8")
        .query(false, uri_query)
        .s("\",LAST-MSN=")
        .u64(msn);
    if let Some(part) = last_part {
        t.s(",LAST-PART=").u64(u64::from(part.part_index));
    }
    t.nl();
}

/// The target duration to write: the stream's, raised if a segment in the window would break
/// the rule that every EXTINF, rounded to the nearest second, is at most the target duration.
/// Such a segment is a segmenter bug (the index must keep the target duration at least the
/// ceiling of every duration it has seen), so debug builds stop on it.
fn effective_target_duration_s(stream: &StreamFacts, rendition: &RenditionView<'_>) -> u64 {
    let target_s = u64::from(stream.target_duration_s).max(1);
    let longest_ms = rendition
        .segments
        .iter()
        .map(|s| ticks_to_ms(s.duration_ticks, rendition.info.timescale))
        .max()
        .unwrap_or(0);
    let fits = (longest_ms + 500) / 1000 <= target_s;
    debug_assert!(
        fits,
        "a {longest_ms} ms segment exceeds the target duration of {target_s} s"
    );
    if fits {
        target_s
    } else {
        longest_ms.div_ceil(1000)
    }
}

/// The first msn whose parts are listed: the oldest segment that starts no more than
/// [`PART_WINDOW_TARGET_DURATIONS`] target durations before the end of the playlist (the end of
/// the last published part or segment). Whole segments only, so a listed segment has all of
/// its parts or none.
fn first_msn_with_parts(
    rendition: &RenditionView<'_>,
    open_parts: super::model::Slices<'_, PartView>,
    target_duration_s: u64,
) -> u64 {
    let timescale = u64::from(rendition.info.timescale);
    let window_ticks = PART_WINDOW_TARGET_DURATIONS * target_duration_s * timescale;
    let mut from_end_ticks: u64 = open_parts.iter().map(|p| p.duration_ticks).sum();
    let mut first = u64::MAX;
    for segment in rendition.segments.iter().rev() {
        from_end_ticks = from_end_ticks.saturating_add(segment.duration_ticks);
        if from_end_ticks > window_ticks {
            break;
        }
        first = segment.msn;
    }
    first
}

/// Splits the parts into those of segment `msn` and those after, dropping any before.
fn split_parts(
    parts: super::model::Slices<'_, PartView>,
    msn: u64,
) -> (
    impl Iterator<Item = &PartView>,
    super::model::Slices<'_, PartView>,
) {
    let start = parts.partition_point(|p| p.msn < msn);
    let end = parts.partition_point(|p| p.msn <= msn);
    let own = parts.skip_to(start).iter().take(end - start);
    (own, parts.skip_to(end))
}

/// Writes the multivariant playlist for `renditions`.
///
/// Audio renditions form `AUDIO` groups (`EXT-X-MEDIA`, the first of each is its default), one
/// per codec family, AAC's first: `"audio"` for the first, `"audio-{family}"` for others; each video
/// rendition is one variant per group, highest `BANDWIDTH` first. A variant's `BANDWIDTH`
/// and `AVERAGE-BANDWIDTH` add the largest audio rendition's, since the spec defines them over
/// every rendition played together, and its `CODECS` lists the video codec and every distinct
/// audio codec of the group. A stream without video gets one audio-only variant per audio
/// rendition instead.
pub fn write_multivariant_playlist(
    out: &mut String,
    renditions: &[RenditionInfo<'_>],
    uri_query: Option<UriQuery<'_>>,
) {
    let is_audio = |r: &&RenditionInfo<'_>| matches!(r.kind, RenditionKind::Audio { .. });
    // AAC first: it plays everywhere, and a player that does not read CODECS starts with the
    // first variant (a WHIP stream's source audio is Opus, its AAC a transcoded rendition).
    let is_aac = |r: &&RenditionInfo<'_>| super::dash::codec_family(r.codecs) == "mp4a";
    let audio = || {
        (renditions.iter().filter(is_audio).filter(is_aac))
            .chain(renditions.iter().filter(is_audio).filter(|r| !is_aac(r)))
    };
    let has_video = renditions.iter().any(|r| !is_audio(&r));

    let mut t = Text::new(out);
    t.s("#EXTM3U").nl();
    t.s("#EXT-X-VERSION:").u64(u64::from(HLS_VERSION)).nl();
    t.s("#EXT-X-INDEPENDENT-SEGMENTS").nl();

    if !has_video {
        for a in audio() {
            t.s("#EXT-X-STREAM-INF:BANDWIDTH=")
                .u64(a.bandwidth_bps)
                .s(",AVERAGE-BANDWIDTH=")
                .u64(a.average_bandwidth_bps)
                .s(",CODECS=\"")
                .codecs(a.codecs)
                .s("\"")
                .nl();
            t.name(a.name).s("/index.m3u8").query(false, uri_query).nl();
        }
        return;
    }

    // One AUDIO group per codec family: "audio" for the first (AAC: the publisher's, or one
    // transcoded from a WHIP publisher's Opus), "audio-{family}" for each other (Opus: a
    // transcoded one, or a WHIP publisher's). Every video rendition is a variant
    // of every group, so a player that cannot decode a family skips the variants naming it.
    let mut groups: Vec<(&str, String)> = Vec::new();
    for a in audio() {
        let family = super::dash::codec_family(a.codecs);
        if !groups.iter().any(|(f, _)| *f == family) {
            let id = if groups.is_empty() {
                "audio".to_string()
            } else {
                format!("audio-{family}")
            };
            groups.push((family, id));
        }
    }
    let in_group = |family: &str| {
        let family = family.to_string();
        audio().filter(move |a| super::dash::codec_family(a.codecs) == family)
    };
    for (family, id) in &groups {
        for (i, a) in in_group(family).enumerate() {
            let RenditionKind::Audio { channels, .. } = a.kind else {
                unreachable!("filtered to audio");
            };
            let default = if i == 0 { "YES" } else { "NO" };
            t.s("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"")
                .s(id)
                .s("\",NAME=\"")
                .name(a.name)
                .s("\",DEFAULT=")
                .s(default)
                .s(",AUTOSELECT=YES,CHANNELS=\"")
                .u64(u64::from(channels))
                .s("\",URI=\"")
                .name(a.name)
                .s("/index.m3u8")
                .query(false, uri_query)
                .s("\"")
                .nl();
        }
    }
    let no_audio = [("", String::new())];
    let variant_groups: &[(&str, String)] = if groups.is_empty() {
        &no_audio
    } else {
        &groups
    };
    for (family, id) in variant_groups {
        let members = || in_group(family);
        let audio_peak_bps = members().map(|a| a.bandwidth_bps).max();
        let audio_average_bps = members().map(|a| a.average_bandwidth_bps).max();
        for v in videos_by_bandwidth(renditions) {
            let RenditionKind::Video {
                width,
                height,
                frame_rate,
            } = v.kind
            else {
                unreachable!("videos_by_bandwidth yields video");
            };
            t.s("#EXT-X-STREAM-INF:BANDWIDTH=")
                .u64(v.bandwidth_bps.saturating_add(audio_peak_bps.unwrap_or(0)))
                .s(",AVERAGE-BANDWIDTH=")
                .u64(
                    v.average_bandwidth_bps
                        .saturating_add(audio_average_bps.unwrap_or(0)),
                )
                .s(",CODECS=\"")
                .codecs(v.codecs);
            for (i, a) in members().enumerate() {
                let seen_before = members().take(i).any(|b| b.codecs == a.codecs);
                if !seen_before {
                    t.s(",").codecs(a.codecs);
                }
            }
            t.s("\",RESOLUTION=")
                .u64(u64::from(width))
                .s("x")
                .u64(u64::from(height))
                .s(",FRAME-RATE=")
                .frame_rate_decimal(frame_rate.num, frame_rate.den);
            if audio_peak_bps.is_some() {
                t.s(",AUDIO=\"").s(id).s("\"");
            }
            t.nl();
            t.name(v.name).s("/index.m3u8").query(false, uri_query).nl();
        }
    }
}

/// Video renditions by descending peak bandwidth, ties in input order. Selection without a
/// buffer: a ladder has a handful of rungs.
fn videos_by_bandwidth<'r, 'a>(
    renditions: &'r [RenditionInfo<'a>],
) -> impl Iterator<Item = &'r RenditionInfo<'a>> {
    // Rank key: higher bandwidth first, then lower index first.
    let key = |i: usize| (std::cmp::Reverse(renditions[i].bandwidth_bps), i);
    let is_video = move |i: &usize| matches!(renditions[*i].kind, RenditionKind::Video { .. });
    let mut last: Option<(std::cmp::Reverse<u64>, usize)> = None;
    std::iter::from_fn(move || {
        let next = (0..renditions.len())
            .filter(is_video)
            .filter(|&i| last.is_none_or(|l| key(i) > l))
            .min_by_key(|&i| key(i))?;
        last = Some(key(next));
        Some(&renditions[next])
    })
}
