//! The DASH MPD (ISO/IEC 23009-1, DASH-IF IOP live profile) for `/live/{stream}/manifest.mpd`.
//! The choices it makes are documented on [`write_mpd`].

use super::hls::InitPath;
use super::model::{RenditionKind, RenditionView, SegmentView, Slices, StreamFacts};
use super::text::{ticks_to_ms, Iso8601Ms, Text, UriQuery};

/// The `MPD@profiles` value.
pub const DASH_PROFILES: &str = "urn:mpeg:dash:profile:isoff-live:2011";

/// `suggestedPresentationDelay` as a multiple of the target duration: the same distance from
/// the live edge as HLS `HOLD-BACK`.
pub const PRESENTATION_DELAY_TARGET_DURATIONS: u64 = 3;

/// Low-latency DASH: the service's latency target, in parts (0.6 s with 200 ms parts, as
/// LL-HLS's `PART-HOLD-BACK`). dash.js at this target plays about 0.6 s behind the camera
/// here (bench/results/latency.md).
pub const LL_LATENCY_TARGET_PARTS: u64 = 3;

/// Low-latency DASH: segments listed past the last complete one (the one being made and the
/// next), so a player can ask for them as soon as their first part is out without a new MPD.
pub const LL_SEGMENTS_AHEAD: u64 = 2;

/// Low-latency DASH: the segments listed ahead are expected as long as the shortest of this
/// many recent complete ones. An encoder that drops frames makes an odd GOP short, and the
/// segment that holds it ends at a later keyframe (a 0.9 s GOP with a 2 s target gives a
/// 2.9 s segment); expecting the next ones that long would have a player ask for them up to
/// a GOP late and run dry (measured: two stalls a minute in dash.js). Expected too short, a
/// player only asks early, and the server holds the request until the segment begins.
pub const LL_EXPECTED_FROM_SEGMENTS: usize = 6;

/// Wall-clock facts for an MPD, all Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpdClock {
    /// `availabilityStartTime`: the wall time of presentation time 0, i.e. of media time
    /// `epoch_ticks` in every rendition ([`availability_start_ms`]). A segment asked for
    /// before it is complete is not refused: the server waits for it (or, with low latency,
    /// sends it as it is made), so this may be the media's own time without a margin.
    pub availability_start_ms: u64,
    /// `publishTime`: when the index last changed (a segment added, the stream ended).
    pub publish_time_ms: u64,
    /// The current time, sent as `UTCTiming` so clients need no time server.
    pub now_ms: u64,
}

/// The `availabilityStartTime` that puts presentation time 0 on the wall clock where the
/// playlists' `PROGRAM-DATE-TIME` puts it: from the newest dated segment of the first
/// rendition that has one (its date less its presentation time). So DASH players, which
/// place themselves by this clock, sit where they think they sit, and HLS and DASH agree;
/// the segmenter moves that mapping earlier while an encoder's late start settles, and this
/// follows. `fallback` (the publish time) when no segment is dated.
pub fn availability_start_ms(renditions: &[RenditionView<'_>], fallback: u64) -> u64 {
    renditions
        .iter()
        .find_map(|r| {
            let s = r
                .segments
                .iter()
                .rev()
                .find(|s| s.program_date_time_ms.is_some())?;
            let since_epoch = s.start_ticks.saturating_sub(r.info.epoch_ticks);
            let pdt = s.program_date_time_ms?;
            Some(pdt.saturating_sub(ticks_to_ms(since_epoch, r.info.timescale)))
        })
        .unwrap_or(fallback)
}

/// Writes the MPD for `renditions`: one `AdaptationSet` per kind (video, audio) and codec
/// family, since a player switches representations within a set through one decoder (an H.265
/// source with H.264 rungs is two video sets; AAC and Opus two audio sets).
/// Only complete segments are listed; a rendition without any is left out.
///
/// Choices, and why:
///
/// - **Profile** `urn:mpeg:dash:profile:isoff-live:2011` only. dash.js, Shaka and ffmpeg's
///   demuxer all accept it; the CMAF profile (`urn:mpeg:dash:profile:cmaf:2019`) would also
///   promise CMAF brands and constraints in every segment, which is the muxer's contract to
///   make, not this writer's.
/// - **Addressing**: `SegmentTemplate` with `$Number$` (the URLs are `{rendition}/{n}.m4s`, n
///   being the HLS media sequence number) and a `SegmentTimeline` built from the exact tick
///   times of each segment, rather than `@duration`: GOP-aligned segments vary in length, and a
///   fixed `@duration` would drift from the media until the player requests the wrong segment.
///   Equal consecutive durations are folded into `S@r`; a jump in media time starts a new `S`
///   with an explicit `@t`. Gap segments stay in the timeline so numbers keep matching msns.
/// - **Template placement**: on the `AdaptationSet` when every representation in it has the
///   same timescale, epoch, init version and segment times (aligned rungs, the normal case),
///   else on each `Representation`.
/// - **Timing**: one `Period` (`id="0"`, `start="PT0S"`) starting at `availabilityStartTime`.
///   Media time `epoch_ticks` of each rendition is presentation time 0, written as
///   `presentationTimeOffset` (omitted when 0). `UTCTiming` with the `direct` scheme carries the
///   caller's `now`, so clients sync their clocks without another request.
/// - **Refresh and buffers**: `minimumUpdatePeriod` is the latest segment's duration (a client
///   reloads about when the next segment appears); `minBufferTime` and `maxSegmentDuration` are
///   the target duration; `suggestedPresentationDelay` is three target durations, as HLS
///   `HOLD-BACK`; `timeShiftBufferDepth` is the span of the shortest listed window, so every
///   segment inside it is really there.
/// - **Discontinuities** do not start a new Period. A discontinuity whose media time keeps
///   increasing (the segmenter rebases timestamps on failover) is carried in the one timeline.
///   When the init segment changes or media time goes backwards, the timeline restarts at that
///   segment: older segments are left out of the MPD (they stay in HLS), so a new client always
///   gets one init that fits every listed segment. A player already playing across such a
///   change may have to reload. That is the limitation of a single Period.
/// - **End of stream**: the MPD turns `type="static"` (ISO/IEC 23009-1 allows an update to
///   do so) with `mediaPresentationDuration` set to the end of the last segment and the live
///   attributes (`minimumUpdatePeriod`, `timeShiftBufferDepth`,
///   `suggestedPresentationDelay`) removed: players know it will not change, and read the
///   window from its start to the end.
/// - **Low-latency DASH** (DASH-IF IOP low-latency modes) while the stream is live and has
///   LL-HLS parts (`part_target_ms`): each timeline also lists [`LL_SEGMENTS_AHEAD`] segments
///   past the last complete one (the one being made and the next), each as long as the
///   shortest of the last [`LL_EXPECTED_FROM_SEGMENTS`] complete ones, and the
///   `SegmentTemplate` carries
///   `availabilityTimeOffset` = that duration less one part and
///   `availabilityTimeComplete="false"`: a segment is announced once its first part should be
///   out, and the server sends it with chunked transfer part by part as it is made (the bytes
///   are the same as the complete segment's). A segment that ends longer or shorter than
///   expected is corrected by the next MPD. `ServiceDescription` asks for a latency of
///   [`LL_LATENCY_TARGET_PARTS`] parts, and `suggestedPresentationDelay` is the same.
/// - **Clock**: `UTCTiming` `http-iso` at `/api/v1/time` on the same server (a player asks
///   the time whenever it syncs), then `direct` (the server's time when the MPD was made).
pub fn write_mpd(
    out: &mut String,
    stream: &StreamFacts,
    clock: &MpdClock,
    renditions: &[RenditionView<'_>],
    uri_query: Option<UriQuery<'_>>,
) {
    let runs = || {
        renditions
            .iter()
            .map(Run::of)
            .filter(|r| !r.segments.is_empty())
    };
    let target_ms = u64::from(stream.target_duration_s).max(1) * 1000;
    // The shortest run bounds the window in which every listed segment is available.
    let time_shift_ms = runs().map(|r| r.duration_ms()).min().unwrap_or(0);
    // Reload about when the next segment is due: the latest segment's duration.
    let update_ms = runs()
        .filter_map(|r| {
            r.segments
                .last()
                .map(|s| ticks_to_ms(s.duration_ticks, r.timescale()))
        })
        .max()
        .unwrap_or(target_ms)
        .max(1);
    let end_ms = runs().map(|r| r.end_ms()).max().unwrap_or(0);
    let low_latency = stream.part_target_ms.filter(|&p| p > 0 && !stream.ended);
    let delay_ms = match low_latency {
        Some(part_ms) => LL_LATENCY_TARGET_PARTS * u64::from(part_ms),
        None => PRESENTATION_DELAY_TARGET_DURATIONS * target_ms,
    };

    let mut t = Text::new(out);
    t.s("<?xml version=\"1.0\" encoding=\"UTF-8\"?>").nl();
    t.s("<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"")
        .s(DASH_PROFILES)
        .s(if stream.ended {
            "\" type=\"static\""
        } else {
            "\" type=\"dynamic\""
        })
        .s(" availabilityStartTime=\"")
        .display(Iso8601Ms(clock.availability_start_ms))
        .s("\" publishTime=\"")
        .display(Iso8601Ms(clock.publish_time_ms))
        .s("\"");
    if stream.ended {
        // The presentation is over: a static MPD (ISO/IEC 23009-1 lets an update turn a
        // dynamic MPD static) of known duration, which players read from the start to the end.
        t.s(" mediaPresentationDuration=\"")
            .xs_duration_ms(end_ms)
            .s("\"");
        t.s(" minBufferTime=\"").xs_duration_ms(target_ms).s("\"");
    } else {
        t.s(" minimumUpdatePeriod=\"")
            .xs_duration_ms(update_ms)
            .s("\"");
        t.s(" minBufferTime=\"").xs_duration_ms(target_ms).s("\"");
        t.s(" timeShiftBufferDepth=\"")
            .xs_duration_ms(time_shift_ms)
            .s("\"");
        t.s(" suggestedPresentationDelay=\"")
            .xs_duration_ms(delay_ms)
            .s("\"");
    }
    t.s(" maxSegmentDuration=\"")
        .xs_duration_ms(target_ms)
        .s("\">")
        .nl();
    if low_latency.is_some() {
        t.s("  <ServiceDescription id=\"0\">").nl();
        t.s("    <Latency referenceId=\"0\" target=\"")
            .u64(delay_ms)
            .s("\" min=\"")
            .u64(delay_ms / 2)
            .s("\" max=\"")
            .u64(delay_ms * 3)
            .s("\"/>")
            .nl();
        t.s("    <PlaybackRate min=\"0.92\" max=\"1.08\"/>").nl();
        t.s("  </ServiceDescription>").nl();
    }
    t.s("  <Period id=\"0\" start=\"PT0S\">").nl();

    let mut contents = Vec::new();
    for video in [true, false] {
        for run in runs() {
            let family = codec_family(run.view.info.codecs);
            let content = match run.view.info.kind {
                RenditionKind::Video { .. } if video => Content::Video(family),
                RenditionKind::Audio { .. } if !video => Content::Audio(family),
                _ => continue,
            };
            if !contents.contains(&content) {
                contents.push(content);
            }
        }
    }
    let mut set_id = 0;
    for content in contents {
        let mut members = runs().filter(|r| content.matches(r.view)).peekable();
        if members.peek().is_none() {
            continue;
        }
        let shared = shared_template(runs().filter(|r| content.matches(r.view)));
        let template = Template {
            uri_query,
            low_latency,
        };
        write_adaptation_set(&mut t, content, set_id, members, shared, template);
        set_id += 1;
    }

    t.s("  </Period>").nl();
    // The server's clock first: a player that syncs again later asks it then, where the
    // `direct` value is only right when the MPD was made (dash.js re-syncs with the value of
    // the MPD it holds, which put it up to a second behind).
    t.s("  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"/api/v1/time\"/>")
        .nl();
    t.s("  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"")
        .display(Iso8601Ms(clock.now_ms))
        .s("\"/>")
        .nl();
    t.s("</MPD>").nl();
}

/// What every `SegmentTemplate` of an MPD shares.
#[derive(Clone, Copy)]
struct Template<'q> {
    uri_query: Option<UriQuery<'q>>,
    /// The part target when the MPD is low-latency.
    low_latency: Option<u32>,
}

/// What an `AdaptationSet` holds: the video or the audio renditions of one codec family.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Content<'c> {
    Video(&'c str),
    Audio(&'c str),
}

impl Content<'_> {
    fn matches(self, view: &RenditionView<'_>) -> bool {
        match (self, view.info.kind) {
            (Content::Video(family), RenditionKind::Video { .. })
            | (Content::Audio(family), RenditionKind::Audio { .. }) => {
                codec_family(view.info.codecs) == family
            }
            _ => false,
        }
    }
}

/// The codec family of a `CODECS` value: what comes before the first dot (`mp4a`, `opus`).
pub(crate) fn codec_family(codecs: &str) -> &str {
    codecs.split('.').next().unwrap_or(codecs)
}

/// The part of a rendition's window the MPD lists: from the last init change or media-time
/// regression on.
#[derive(Clone, Copy)]
struct Run<'v, 'a> {
    view: &'v RenditionView<'a>,
    segments: Slices<'a, SegmentView>,
}

impl<'v, 'a> Run<'v, 'a> {
    fn of(view: &'v RenditionView<'a>) -> Self {
        let all = view.segments;
        let mut start = 0;
        let mut previous: Option<&SegmentView> = None;
        for (i, s) in all.iter().enumerate() {
            if let Some(p) = previous {
                if s.init_version != p.init_version
                    || s.start_ticks < p.start_ticks + p.duration_ticks
                {
                    start = i;
                }
            }
            previous = Some(s);
        }
        Run {
            view,
            segments: all.skip_to(start),
        }
    }

    fn timescale(&self) -> u32 {
        self.view.info.timescale
    }

    fn duration_ms(&self) -> u64 {
        let ticks: u64 = self.segments.iter().map(|s| s.duration_ticks).sum();
        ticks_to_ms(ticks, self.timescale())
    }

    /// The presentation time of the end of the last segment.
    fn end_ms(&self) -> u64 {
        self.segments.last().map_or(0, |s| {
            let end = (s.start_ticks + s.duration_ticks).saturating_sub(self.view.info.epoch_ticks);
            ticks_to_ms(end, self.timescale())
        })
    }

    fn init_version(&self) -> u32 {
        self.segments.first().map_or(0, |s| s.init_version)
    }

    /// Whether `other` can share this run's `SegmentTemplate`.
    fn same_template(&self, other: &Run<'_, '_>) -> bool {
        self.timescale() == other.timescale()
            && self.view.info.epoch_ticks == other.view.info.epoch_ticks
            && self.init_version() == other.init_version()
            && self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(other.segments.iter())
                .all(|(a, b)| {
                    a.msn == b.msn
                        && a.start_ticks == b.start_ticks
                        && a.duration_ticks == b.duration_ticks
                })
    }
}

/// The run whose template every member shares, if they all can.
fn shared_template<'v, 'a>(mut members: impl Iterator<Item = Run<'v, 'a>>) -> Option<Run<'v, 'a>> {
    let first = members.next()?;
    members.all(|m| first.same_template(&m)).then_some(first)
}

fn write_adaptation_set<'v, 'a>(
    t: &mut Text<'_>,
    content: Content<'_>,
    id: u32,
    members: impl Iterator<Item = Run<'v, 'a>>,
    shared: Option<Run<'v, 'a>>,
    template: Template<'_>,
) {
    t.s("    <AdaptationSet id=\"").u64(u64::from(id));
    match content {
        Content::Video(_) => t.s("\" contentType=\"video\" mimeType=\"video/mp4\""),
        Content::Audio(_) => t.s("\" contentType=\"audio\" mimeType=\"audio/mp4\" lang=\"und\""),
    };
    t.s(" segmentAlignment=\"true\" startWithSAP=\"1\">").nl();
    if let Some(run) = shared {
        write_segment_template(t, "      ", &run, template);
    }
    for run in members {
        write_representation(t, &run, shared.is_none(), template);
    }
    t.s("    </AdaptationSet>").nl();
}

fn write_representation(
    t: &mut Text<'_>,
    run: &Run<'_, '_>,
    own_template: bool,
    template: Template<'_>,
) {
    let info = &run.view.info;
    t.s("      <Representation id=\"")
        .name(info.name)
        .s("\" bandwidth=\"")
        .u64(info.bandwidth_bps)
        .s("\"");
    let mut children = own_template;
    match info.kind {
        RenditionKind::Video {
            width,
            height,
            frame_rate,
        } => {
            t.s(" width=\"")
                .u64(u64::from(width))
                .s("\" height=\"")
                .u64(u64::from(height))
                .s("\" frameRate=\"")
                .u64(u64::from(frame_rate.num));
            if frame_rate.den != 1 {
                t.s("/").u64(u64::from(frame_rate.den));
            }
            t.s("\"");
        }
        RenditionKind::Audio { sample_rate_hz, .. } => {
            t.s(" audioSamplingRate=\"")
                .u64(u64::from(sample_rate_hz))
                .s("\"");
            children = true;
        }
    }
    t.s(" codecs=\"").codecs(info.codecs).s("\"");
    if !children {
        t.s("/>").nl();
        return;
    }
    t.s(">").nl();
    if let RenditionKind::Audio { channels, .. } = info.kind {
        t.s("        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"")
            .u64(u64::from(channels))
            .s("\"/>")
            .nl();
    }
    if own_template {
        write_segment_template(t, "        ", run, template);
    }
    t.s("      </Representation>").nl();
}

fn write_segment_template(
    t: &mut Text<'_>,
    indent: &str,
    run: &Run<'_, '_>,
    template: Template<'_>,
) {
    let info = &run.view.info;
    let uri_query = template.uri_query;
    let (Some(first), Some(last)) = (run.segments.first(), run.segments.last()) else {
        return;
    };
    // Low latency: the segments after the last complete one are expected as long as the
    // shortest recent one.
    let ahead = template.low_latency.map(|part_ms| {
        let part_ticks = u64::from(part_ms) * u64::from(info.timescale) / 1000;
        let recent = run.segments.len().saturating_sub(LL_EXPECTED_FROM_SEGMENTS);
        let expected = (run.segments.iter().skip(recent))
            .map(|s| s.duration_ticks)
            .min()
            .unwrap_or(last.duration_ticks);
        (expected, expected.saturating_sub(part_ticks))
    });
    t.s(indent)
        .s("<SegmentTemplate timescale=\"")
        .u64(u64::from(info.timescale))
        .s("\"");
    if info.epoch_ticks != 0 {
        t.s(" presentationTimeOffset=\"")
            .u64(info.epoch_ticks)
            .s("\"");
    }
    let init = InitPath(run.init_version());
    t.s(" initialization=\"$RepresentationID$/").display(init);
    template_query(t, init.has_query(), uri_query);
    t.s("\" media=\"$RepresentationID$/$Number$.m4s");
    template_query(t, false, uri_query);
    t.s("\" startNumber=\"").u64(first.msn).s("\"");
    if let Some((_, offset_ticks)) = ahead {
        t.s(" availabilityTimeOffset=\"")
            .seconds_ms(ticks_to_ms(offset_ticks, info.timescale))
            .s("\" availabilityTimeComplete=\"false\"");
    }
    t.s(">").nl();
    t.s(indent).s("  <SegmentTimeline>").nl();
    write_timeline(t, indent, run.segments, ahead.map(|(duration, _)| duration));
    t.s(indent).s("  </SegmentTimeline>").nl();
    t.s(indent).s("</SegmentTemplate>").nl();
}

/// The query inside a template attribute: `$` doubled (a literal `$` in a DASH template) and
/// XML-escaped.
fn template_query(t: &mut Text<'_>, has_query: bool, uri_query: Option<UriQuery<'_>>) {
    let Some(query) = uri_query else {
        return;
    };
    t.s(if has_query { "&amp;" } else { "?" });
    for piece in query.as_str().split_inclusive('$') {
        match piece.strip_suffix('$') {
            Some(before) => t.xml(before).s("$$"),
            None => t.xml(piece),
        };
    }
}

/// `S` elements: a run of segments with equal durations, each starting where the last ended,
/// becomes one `S` with `r`; `t` is written on the first and wherever media time jumps. With
/// `ahead`, [`LL_SEGMENTS_AHEAD`] segments of that duration follow the last one.
fn write_timeline(
    t: &mut Text<'_>,
    indent: &str,
    segments: Slices<'_, SegmentView>,
    ahead: Option<u64>,
) {
    struct Entry {
        start: u64,
        duration: u64,
        repeat: u64,
        explicit_start: bool,
    }
    let flush = |t: &mut Text<'_>, e: &Entry| {
        t.s(indent).s("    <S");
        if e.explicit_start {
            t.s(" t=\"").u64(e.start).s("\"");
        }
        t.s(" d=\"").u64(e.duration).s("\"");
        if e.repeat > 0 {
            t.s(" r=\"").u64(e.repeat).s("\"");
        }
        t.s("/>").nl();
    };
    let mut current: Option<Entry> = None;
    let expected = segments.last().zip(ahead).map(|(last, duration)| {
        (1..=LL_SEGMENTS_AHEAD).map(move |k| {
            (
                last.start_ticks + last.duration_ticks + (k - 1) * duration,
                duration,
            )
        })
    });
    let listed = segments.iter().map(|s| (s.start_ticks, s.duration_ticks));
    for (start_ticks, duration_ticks) in listed.chain(expected.into_iter().flatten()) {
        if let Some(e) = current.as_mut() {
            let next_start = e.start + e.duration * (e.repeat + 1);
            if start_ticks == next_start && duration_ticks == e.duration {
                e.repeat += 1;
                continue;
            }
            let contiguous = start_ticks == next_start;
            flush(t, e);
            current = Some(Entry {
                start: start_ticks,
                duration: duration_ticks,
                repeat: 0,
                explicit_start: !contiguous,
            });
        } else {
            current = Some(Entry {
                start: start_ticks,
                duration: duration_ticks,
                repeat: 0,
                explicit_start: true,
            });
        }
    }
    if let Some(e) = current {
        flush(t, &e);
    }
}
