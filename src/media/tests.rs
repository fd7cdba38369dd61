//! Live media scenarios on the engine's harness: RTMP publishers, stream homes on other
//! shards, failover and takeback, the end of a stream, the transcode hand-off and LL-HLS
//! requests that wait — on a virtual clock, without sockets.

use super::names::home_of;
use crate::shard::testing::{self, fixture_tags, get, Publisher, HTTP};
use crate::transcode::msg::TranscodeMsg;
use shardcast_engine::ShardId;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// A stream name whose home is `shard` of `shards`.
fn stream_homed_on(shard: u16, shards: usize) -> String {
    (0..)
        .map(|i| format!("s{i}"))
        .find(|name| home_of(name, shards) == ShardId(shard))
        .unwrap()
}

/// The `#EXTINF`-listed segment URIs of a media playlist, with their discontinuity marks.
fn segments(playlist: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut discontinuity = false;
    let mut in_segment = false;
    for line in playlist.lines() {
        if line == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
        } else if line.starts_with("#EXTINF:") {
            in_segment = true;
        } else if in_segment && !line.starts_with('#') {
            out.push((line.to_string(), discontinuity));
            discontinuity = false;
            in_segment = false;
        }
    }
    out
}

#[test]
fn a_publish_on_one_shard_is_packaged_by_its_home_and_served_by_every_shard() {
    let config = testing::config("");
    let mut t = testing::shards(2, &config, 0);
    let stream = stream_homed_on(1, 2);
    let tags = fixture_tags();
    let mut publisher = Publisher::connect(&mut t, ShardId(0), &stream);
    assert!(publisher.is_publishing(), "{:?}", publisher.events);
    publisher.send(&mut t, &tags, 0..u32::MAX, 0);
    publisher.unpublish(&mut t);
    let home = t.service(ShardId(1)).media().counters();
    assert!(
        home.segments.load(Relaxed) >= 2,
        "source video and audio segments"
    );
    assert!(home.parts.load(Relaxed) >= 4);
    for shard in [ShardId(0), ShardId(1)] {
        let (status, body) = get(&mut t, shard, &format!("/live/{stream}/source/index.m3u8"));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("#EXT-X-ENDLIST"), "{body}");
        let first = &segments(&body)[0].0;
        let (status, media) = get(&mut t, shard, &format!("/live/{stream}/source/{first}"));
        assert_eq!(status, 200, "{media}");
        assert!(media.contains("Content-Type: video/mp4"));
        let (status, _) = get(&mut t, shard, &format!("/live/{stream}/manifest.mpd"));
        assert_eq!(status, 200);
    }
}

#[test]
fn a_backup_takes_over_at_its_keyframe_when_the_primary_stalls_and_the_primary_takes_back() {
    let config = testing::config("[media]\nfailover_ms = 1000\n");
    let mut t = testing::shards(2, &config, 0);
    let stream = stream_homed_on(1, 2);
    let tags = fixture_tags();
    let mut primary = Publisher::connect(&mut t, ShardId(0), &stream);
    let mut backup = Publisher::connect(&mut t, ShardId(1), &format!("{stream}?role=backup"));
    assert!(primary.is_publishing() && backup.is_publishing());
    let refused = Publisher::connect(&mut t, ShardId(0), &stream);
    assert!(!refused.is_publishing(), "a second primary is refused");
    // The primary sends its first second at once and goes quiet; the backup keeps sending
    // in real time.
    primary.send(&mut t, &tags, 0..1000, 0);
    for step in 0..10 {
        backup.send(&mut t, &tags, step * 100..step * 100 + 100, 0);
        t.advance(100);
    }
    t.advance(200);
    let home = t.service(ShardId(1)).media().counters();
    assert_eq!(
        home.failovers.load(Relaxed),
        0,
        "no keyframe from the backup yet"
    );
    // The backup's keyframe at 1 s: the switch.
    backup.send(&mut t, &tags, 1000..2000, 0);
    let home = t.service(ShardId(1)).media().counters();
    assert_eq!(home.failovers.load(Relaxed), 1);
    // The primary comes back: it takes back at its next keyframe.
    primary.send(&mut t, &tags, 0..2000, 2000);
    let home = t.service(ShardId(1)).media().counters();
    assert_eq!(home.failovers.load(Relaxed), 2);
    primary.unpublish(&mut t);
    backup.unpublish(&mut t);
    let (_, playlist) = get(
        &mut t,
        ShardId(0),
        &format!("/live/{stream}/source/index.m3u8"),
    );
    let marks: Vec<bool> = segments(&playlist).iter().map(|s| s.1).collect();
    assert_eq!(
        marks.iter().filter(|&&d| d).count(),
        2,
        "two switches:\n{playlist}"
    );
    assert!(!marks[0], "{playlist}");
}

#[test]
fn an_ended_stream_is_dropped_and_a_new_publish_starts_a_fresh_session() {
    let config = testing::config("");
    let mut t = testing::shards(2, &config, 0);
    let stream = stream_homed_on(0, 2);
    let tags = fixture_tags();
    let mut first = Publisher::connect(&mut t, ShardId(1), &stream);
    first.send(&mut t, &tags, 0..u32::MAX, 0);
    first.unpublish(&mut t);
    assert_eq!(t.service(ShardId(0)).media().streams_homed(), 1);
    t.advance(200);
    assert_eq!(
        t.service(ShardId(0)).media().streams_homed(),
        0,
        "ended homes go"
    );
    let mut second = Publisher::connect(&mut t, ShardId(1), &stream);
    assert!(second.is_publishing(), "{:?}", second.events);
    second.send(&mut t, &tags, 0..1000, 0);
    let (status, playlist) = get(
        &mut t,
        ShardId(1),
        &format!("/live/{stream}/source/index.m3u8"),
    );
    assert_eq!(status, 200);
    assert!(
        !playlist.contains("#EXT-X-ENDLIST"),
        "live again:\n{playlist}"
    );
}

#[test]
fn the_transcode_worker_gets_the_placed_source_and_the_end_waits_for_its_flush() {
    let config = testing::config("[media]\nll_hls = true\n");
    let transcode = crate::transcode::settings::tests::settings_for_tests(1);
    let mut t = testing::shards_with(2, &config, 1, Some(Arc::new(transcode)));
    let worker = t.worker_id(0);
    let stream = stream_homed_on(1, 2);
    let tags = fixture_tags();
    let mut publisher = Publisher::connect(&mut t, ShardId(0), &stream);
    publisher.send(&mut t, &tags, 0..u32::MAX, 0);
    let sent = t.take_outside(worker);
    let starts = sent
        .iter()
        .filter(|(_, m)| {
            matches!(
                m,
                crate::shard::msg::ShardMsg::Transcode(TranscodeMsg::Start { .. })
            )
        })
        .count();
    let samples = sent
        .iter()
        .filter(|(from, m)| {
            *from == ShardId(1)
                && matches!(
                    m,
                    crate::shard::msg::ShardMsg::Transcode(TranscodeMsg::Sample(_))
                )
        })
        .count();
    assert_eq!(starts, 1, "the source video's header");
    assert_eq!(samples, 60, "every source picture, from the home");
    publisher.unpublish(&mut t);
    let end = t.take_outside(worker);
    let epoch = match end.as_slice() {
        [(_, crate::shard::msg::ShardMsg::Transcode(TranscodeMsg::End { epoch, .. }))] => *epoch,
        _ => panic!("one End"),
    };
    let path = format!("/live/{stream}/source/index.m3u8");
    let (_, playlist) = get(&mut t, ShardId(0), &path);
    assert!(
        !playlist.contains("#EXT-X-ENDLIST"),
        "waits for the worker:\n{playlist}"
    );
    let ended = super::msg::MediaMsg::RungEnded {
        stream: Arc::from(stream.as_str()),
        epoch,
    };
    t.send_from_outside(worker, ShardId(1), ended.into());
    let (_, playlist) = get(&mut t, ShardId(0), &path);
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
}

#[test]
fn a_blocking_playlist_reload_waits_for_its_part_and_one_that_cannot_be_met_times_out() {
    let config = testing::config("");
    let mut t = testing::shards(1, &config, 0);
    let stream = "live1";
    let tags = fixture_tags();
    let mut publisher = Publisher::connect(&mut t, ShardId(0), stream);
    publisher.send(&mut t, &tags, 0..1000, 0);
    let next_msn = preload_hint_msn(&mut t, stream);
    let conn = t.connect(ShardId(0), HTTP).unwrap();
    let request = format!(
        "GET /live/{stream}/source/index.m3u8?_HLS_msn={}&_HLS_part=0 HTTP/1.1\r\nHost: t\r\n\r\n",
        next_msn + 1
    );
    t.write(ShardId(0), conn, request.as_bytes());
    assert!(t.read(ShardId(0), conn).is_empty(), "it waits");
    publisher.send(&mut t, &tags, 1000..2000, 0);
    publisher.send(&mut t, &tags, 0..1000, 2000);
    let answer = String::from_utf8_lossy(&t.read(ShardId(0), conn)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Ahead of what the publisher will send: waits until its deadline, then 503.
    let request = format!(
        "GET /live/{stream}/source/index.m3u8?_HLS_msn={}&_HLS_part=0 HTTP/1.1\r\nHost: t\r\n\r\n",
        preload_hint_msn(&mut t, stream) + 1
    );
    t.write(ShardId(0), conn, request.as_bytes());
    assert!(t.read(ShardId(0), conn).is_empty());
    t.advance(10_000);
    let answer = String::from_utf8_lossy(&t.read(ShardId(0), conn)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let counters = t.service(ShardId(0)).media().counters();
    assert_eq!(counters.blocked_requests.load(Relaxed), 2);
    assert_eq!(counters.blocked_timeouts.load(Relaxed), 1);
}

/// The body of one chunked response at the start of `bytes`, checked strictly, and the
/// bytes after it.
fn dechunk(bytes: &[u8]) -> (Vec<u8>, &[u8]) {
    let text_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = std::str::from_utf8(&bytes[..text_end]).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nTransfer-Encoding: chunked\r\n"),
        "{head}"
    );
    let mut rest = &bytes[text_end..];
    let mut body = Vec::new();
    loop {
        let line = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a size line");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap(), 16)
            .expect("a hex chunk size");
        rest = &rest[line + 2..];
        assert_eq!(&rest[size..size + 2], b"\r\n", "CRLF after chunk data");
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
        if size == 0 {
            return (body, rest);
        }
    }
}

#[test]
fn many_segments_being_made_go_out_chunked_and_whole_on_one_shard() {
    let config = testing::config("");
    let mut t = testing::shards(1, &config, 0);
    let stream = "chunky";
    let tags = fixture_tags();
    let mut publisher = Publisher::connect(&mut t, ShardId(0), stream);
    publisher.send(&mut t, &tags, 0..1000, 0);
    let open = preload_hint_msn(&mut t, stream);
    // Many viewers of the open segments of both renditions on one shard: their heads, chunk
    // framing and parts share the shard's output buffer, which fills up many times over.
    let mut conns = Vec::new();
    for i in 0..40 {
        let conn = t.connect(ShardId(0), HTTP).unwrap();
        let rendition = if i % 2 == 0 { "audio" } else { "source" };
        let path = format!("/live/{stream}/{rendition}/{open}.m4s");
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        t.write(ShardId(0), conn, request.as_bytes());
        conns.push((conn, path, Vec::new()));
    }
    // The fixture is 2 s of media: the rest of it, then all of it again twice, later.
    for (range, offset) in [(1000..2000, 0), (0..2000, 2000), (0..2000, 4000)] {
        publisher.send(&mut t, &tags, range, offset);
        for (conn, _, got) in conns.iter_mut() {
            got.extend(t.read(ShardId(0), *conn));
        }
    }
    for (conn, path, got) in &conns {
        let (body, rest) = dechunk(got);
        assert!(rest.is_empty(), "{path}: bytes after the last chunk");
        // The connection goes on: the same segment again comes whole.
        let conn = *conn;
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        t.write(ShardId(0), conn, request.as_bytes());
        let whole = t.read(ShardId(0), conn);
        let head_end = whole.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(
            whole.starts_with(b"HTTP/1.1 200 OK\r\n"),
            "{}",
            String::from_utf8_lossy(&whole[..head_end])
        );
        assert!(!body.is_empty() && body == whole[head_end..], "{path}");
    }
}

/// The segment number of the preload hint of `stream`'s source playlist (the open segment).
fn preload_hint_msn(
    t: &mut shardcast_engine::testing::TestShards<crate::shard::router::ShardService>,
    stream: &str,
) -> u64 {
    let (_, playlist) = get(t, ShardId(0), &format!("/live/{stream}/source/index.m3u8"));
    playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))
        .and_then(|uri| uri.split('.').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a preload hint:\n{playlist}"))
}

#[test]
fn a_publisher_that_is_not_allowed_is_refused_with_the_reason() {
    let config = testing::config("[media]\npublish_keys = [{ stream = \"cam\", key = \"k1\" }]\n");
    let mut t = testing::shards(1, &config, 0);
    let bad = Publisher::connect(&mut t, ShardId(0), "cam?key=nope");
    assert!(!bad.is_publishing());
    assert!(
        bad.events.iter().any(|e| matches!(e,
            shardcast_rtmp::ClientEvent::Status { code, .. } if code == "NetStream.Publish.Denied")),
        "{:?}",
        bad.events
    );
    let good = Publisher::connect(&mut t, ShardId(0), "cam?key=k1");
    assert!(good.is_publishing(), "{:?}", good.events);
    let counters = t.service(ShardId(0)).media().counters();
    assert_eq!(counters.publishes_refused.load(Relaxed), 1);
    assert_eq!(counters.publishes.load(Relaxed), 1);
}

#[test]
fn a_new_stream_past_streams_max_is_refused_with_the_reason_and_a_live_one_is_not() {
    let config = testing::config("[media]\nstreams_max = 2\n");
    let mut t = testing::shards(1, &config, 0);
    let a = Publisher::connect(&mut t, ShardId(0), "a");
    let b = Publisher::connect(&mut t, ShardId(0), "b");
    assert!(a.is_publishing() && b.is_publishing());
    let c = Publisher::connect(&mut t, ShardId(0), "c");
    assert!(!c.is_publishing());
    assert!(
        c.events.iter().any(|e| matches!(e,
            shardcast_rtmp::ClientEvent::Status { level, description, .. }
                if level == "error" && description.contains("streams_max"))),
        "{:?}",
        c.events
    );
    // A backup of a stream that is already there is not a new stream.
    let backup = Publisher::connect(&mut t, ShardId(0), "a?role=backup");
    assert!(backup.is_publishing(), "{:?}", backup.events);
    assert_eq!(t.service(ShardId(0)).media().streams_homed(), 2);
}

#[test]
fn rtmp_connections_past_the_shard_cap_are_closed_at_once() {
    let config = testing::config("[rtmp]\nmax_connections_per_shard = 2\n");
    let mut t = testing::shards(1, &config, 0);
    let first = t.connect(ShardId(0), testing::RTMP).expect("slot");
    let second = t.connect(ShardId(0), testing::RTMP).expect("slot");
    let third = t.connect(ShardId(0), testing::RTMP).expect("slot");
    assert!(t.closed(ShardId(0), first).is_none() && t.closed(ShardId(0), second).is_none());
    assert!(t.closed(ShardId(0), third).is_some());
    let counters = t.service(ShardId(0)).media().counters();
    assert_eq!(counters.rtmp_refused.load(Relaxed), 1);
    // An HTTP client on the same shard is still served.
    assert_eq!(get(&mut t, ShardId(0), "/healthz").0, 200);
}

#[test]
fn a_publish_that_waits_on_its_webhook_past_the_publish_timeout_is_closed() {
    // The harness has no control thread: the on_publish request is never answered, as with
    // a webhook that hangs.
    let config = testing::config(
        "[media]\non_publish = \"http://127.0.0.1:9/hook\"\n\
         [rtmp]\npublish_timeout_ms = 3000\n",
    );
    let mut t = testing::shards(1, &config, 0);
    let waiting = Publisher::connect(&mut t, ShardId(0), "cam");
    assert!(!waiting.is_publishing());
    t.advance(2900);
    assert!(t.closed(ShardId(0), waiting.conn).is_none());
    t.advance(200);
    assert!(t.closed(ShardId(0), waiting.conn).is_some());
    let counters = t.service(ShardId(0)).media().counters();
    assert_eq!(counters.rtmp_timeouts.load(Relaxed), 1);
}

#[test]
fn a_silent_publisher_is_closed_after_the_idle_timeout_and_its_stream_ends() {
    let config = testing::config("[rtmp]\nidle_timeout_ms = 5000\n");
    let mut t = testing::shards(1, &config, 0);
    let mut publisher = Publisher::connect(&mut t, ShardId(0), "cam");
    assert!(publisher.is_publishing());
    let tags = fixture_tags();
    publisher.send(&mut t, &tags, 0..1000, 0);
    t.advance(4000);
    assert!(t.closed(ShardId(0), publisher.conn).is_none());
    t.advance(1100);
    assert!(t.closed(ShardId(0), publisher.conn).is_some());
    let counters = t.service(ShardId(0)).media().counters();
    assert_eq!(counters.rtmp_timeouts.load(Relaxed), 1);
}

#[test]
fn a_refused_publisher_that_does_not_read_its_refusal_is_dropped() {
    let config = testing::config("[media]\npublish_keys = [{ stream = \"cam\", key = \"k1\" }]\n");
    let mut t = testing::shards(1, &config, 0);
    let conn = t.connect(ShardId(0), testing::RTMP).expect("slot");
    let mut client = shardcast_rtmp::ClientSession::new(shardcast_rtmp::ClientConfig::new(
        "live",
        "cam?key=nope",
    ));
    // The client reads the handshake, connect and createStream answers, then stops reading
    // just before it sends its publish: the refusal is never read.
    'talk: for _ in 0..20 {
        while let Some(bytes) = client.poll_transmit() {
            if bytes.windows(10).any(|w| w == b"\x02\x00\x07publish") {
                t.set_read_window(ShardId(0), conn, Some(0));
                t.write(ShardId(0), conn, &bytes);
                break 'talk;
            }
            t.write(ShardId(0), conn, &bytes);
        }
        let input = t.read(ShardId(0), conn);
        if !input.is_empty() {
            client.handle_input(&input).expect("a valid server");
        }
        while client.poll_event().is_some() {}
    }
    assert!(
        t.queued_bytes(ShardId(0), conn) > 0,
        "the refusal waits unread"
    );
    // (The refusal was queued; the peer reads nothing.)
    t.advance(4900);
    let counters = t.service(ShardId(0)).media().counters();
    assert_eq!(counters.publishes_refused.load(Relaxed), 1);
    t.advance(200);
    assert!(t.closed(ShardId(0), conn).is_some());
}

#[test]
fn a_parked_request_is_forgotten_when_its_connection_closes() {
    let config = testing::config("");
    let mut t = testing::shards(1, &config, 0);
    let stream = "live1";
    let tags = fixture_tags();
    let mut publisher = Publisher::connect(&mut t, ShardId(0), stream);
    publisher.send(&mut t, &tags, 0..1000, 0);
    let ahead = preload_hint_msn(&mut t, stream) + 1;
    for _ in 0..20 {
        let conn = t.connect(ShardId(0), HTTP).unwrap();
        let request = format!(
            "GET /live/{stream}/source/index.m3u8?_HLS_msn={ahead}&_HLS_part=0 HTTP/1.1\r\n\
             Host: t\r\n\r\n"
        );
        t.write(ShardId(0), conn, request.as_bytes());
        assert_eq!(t.service(ShardId(0)).media().parked_requests(), 1);
        t.reset(ShardId(0), conn, 104);
        assert_eq!(t.service(ShardId(0)).media().parked_requests(), 0);
    }
}

#[test]
fn with_nothing_configured_only_the_generated_key_publishes_and_a_backup_needs_it_too() {
    let dir = std::env::temp_dir().join(format!("shardcast-pubkey-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = testing::config(&format!(
        "[media]\npublish_open = false\n[state]\ndata_dir = \"{}\"\n",
        dir.display()
    ));
    let mut t = testing::shards(1, &config, 0);
    let key = std::fs::read_to_string(dir.join("publish.key")).unwrap();
    let key = key.trim();
    let stranger = Publisher::connect(&mut t, ShardId(0), "cam");
    assert!(!stranger.is_publishing(), "no key: refused");
    let wrong = Publisher::connect(
        &mut t,
        ShardId(0),
        "cam?key=0123456789abcdef0123456789abcdef",
    );
    assert!(!wrong.is_publishing(), "a wrong key: refused");
    let owner = Publisher::connect(&mut t, ShardId(0), &format!("cam?key={key}"));
    assert!(owner.is_publishing(), "{:?}", owner.events);
    let hijack = Publisher::connect(&mut t, ShardId(0), "cam?role=backup");
    assert!(!hijack.is_publishing(), "a backup without the key: refused");
    let backup = Publisher::connect(&mut t, ShardId(0), &format!("cam?role=backup&key={key}"));
    assert!(backup.is_publishing(), "{:?}", backup.events);
    let counters = t.service(ShardId(0)).media().counters();
    assert_eq!(counters.publishes_refused.load(Relaxed), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_address_that_guesses_stream_keys_is_refused_for_a_minute_and_others_are_not() {
    use std::net::IpAddr;
    let config = testing::config(
        "[media]\npublish_keys = [{ stream = \"cam\", key = \"k1\" }]\n\
         [rtmp]\npublish_failures_per_minute = 3\n",
    );
    let mut t = testing::shards(1, &config, 0);
    let guesser: IpAddr = "10.0.0.9".parse().unwrap();
    let owner: IpAddr = "10.0.0.1".parse().unwrap();
    for guess in ["a", "b", "c"] {
        let p = Publisher::connect_from(&mut t, ShardId(0), &format!("cam?key={guess}"), guesser);
        assert!(!p.is_publishing());
    }
    // The right key from the guessing address: refused until the minute ends.
    let p = Publisher::connect_from(&mut t, ShardId(0), "cam?key=k1", guesser);
    assert!(!p.is_publishing());
    assert!(
        p.events.iter().any(|e| matches!(e,
            shardcast_rtmp::ClientEvent::Status { description, .. }
                if description.contains("too many refused credentials"))),
        "{:?}",
        p.events
    );
    let counters = t.service(ShardId(0)).media().counters();
    assert_eq!(counters.publish_guesses_blocked.load(Relaxed), 1);
    // The owner, from another address, is not affected.
    let mut owner_publisher = Publisher::connect_from(&mut t, ShardId(0), "cam?key=k1", owner);
    assert!(owner_publisher.is_publishing());
    owner_publisher.unpublish(&mut t);
    t.reset(ShardId(0), owner_publisher.conn, 104);
    t.advance(60_000);
    let p = Publisher::connect_from(&mut t, ShardId(0), "cam?key=k1", guesser);
    assert!(p.is_publishing(), "{:?}", p.events);
}

#[test]
fn a_stream_that_starts_while_every_worker_is_full_is_served_without_the_ladder() {
    let config = testing::config("");
    let transcode = crate::transcode::settings::tests::settings_for_tests(1);
    // The worker reports it runs its streams_per_worker (2) streams.
    transcode.counters[0]
        .streams
        .store(2, std::sync::atomic::Ordering::Relaxed);
    let mut t = testing::shards_with(1, &config, 1, Some(Arc::new(transcode)));
    let worker = t.worker_id(0);
    let mut publisher = Publisher::connect(&mut t, ShardId(0), "busy");
    publisher.send(&mut t, &fixture_tags(), 0..3000, 0);
    assert!(
        t.take_outside(worker).is_empty(),
        "nothing goes to a full worker"
    );
    let counters = t.service(ShardId(0)).media().counters();
    assert_eq!(counters.untranscoded_streams.load(Relaxed), 1);
    let (status, playlist) = get(&mut t, ShardId(0), "/live/busy/source/index.m3u8");
    assert_eq!(status, 200, "{playlist}");
}

#[test]
fn a_publish_withdrawn_before_its_answer_gives_the_stream_back() {
    let config = testing::config("");
    let mut t = testing::shards(2, &config, 0);
    let stream = stream_homed_on(1, 2);
    t.hold_mesh(true);
    let mut first = Publisher::connect(&mut t, ShardId(0), &stream);
    assert!(!first.is_publishing(), "the claim is held in flight");
    // The encoder gives up (closeStream) before the home answers.
    first.client.unpublish();
    first.pump(&mut t);
    t.hold_mesh(false);
    first.pump(&mut t);
    assert!(!first.is_publishing());
    // The stream is free at once for another primary.
    let second = Publisher::connect(&mut t, ShardId(0), &stream);
    assert!(second.is_publishing(), "{:?}", second.events);
}

#[test]
fn an_ended_stream_stays_servable_for_ended_keep_s_then_every_shard_forgets_it() {
    let config = testing::config("[media]\nended_keep_s = 30\n");
    let mut t = testing::shards(2, &config, 0);
    let stream = stream_homed_on(1, 2);
    let other = stream_homed_on(0, 2);
    let tags = fixture_tags();
    let mut publisher = Publisher::connect(&mut t, ShardId(0), &stream);
    publisher.send(&mut t, &tags, 0..u32::MAX, 0);
    let mut live = Publisher::connect(&mut t, ShardId(1), &other);
    live.send(&mut t, &tags, 0..1000, 0);
    t.advance(1000);
    live.send(&mut t, &tags, 0..1000, 1000);
    for shard in [ShardId(0), ShardId(1)] {
        let c = t.service(shard).media().counters();
        assert_eq!(c.streams_indexed.load(Relaxed), 2);
        assert_eq!(c.streams_indexed_ended.load(Relaxed), 0);
        assert!(c.index_bytes.load(Relaxed) > 0);
    }
    publisher.unpublish(&mut t);
    t.advance(1000);
    let playlist = format!("/live/{stream}/source/index.m3u8");
    for shard in [ShardId(0), ShardId(1)] {
        let c = t.service(shard).media().counters();
        assert_eq!(c.streams_indexed_ended.load(Relaxed), 1);
        let (status, body) = get(&mut t, shard, &playlist);
        assert_eq!(status, 200, "kept while players finish: {body}");
        assert!(body.contains("#EXT-X-ENDLIST"), "{body}");
    }
    // The other stream keeps publishing in real time (its first second, over and over).
    let mut keep_live =
        |t: &mut shardcast_engine::testing::TestShards<_>, seconds: u32, from: u32| {
            for s in from..from + seconds {
                live.send(t, &tags, 0..1000, s * 1000);
                t.advance(1000);
            }
        };
    keep_live(&mut t, 28, 2);
    assert_eq!(
        get(&mut t, ShardId(0), &playlist).0,
        200,
        "29 s after the end"
    );
    keep_live(&mut t, 2, 30);
    for shard in [ShardId(0), ShardId(1)] {
        assert_eq!(get(&mut t, shard, &playlist).0, 404, "31 s after the end");
        let media = t.service(shard).media();
        let c = media.counters();
        assert_eq!(c.streams_indexed.load(Relaxed), 1, "the live one stays");
        assert_eq!(c.streams_indexed_ended.load(Relaxed), 0);
        assert_eq!(c.streams_retired.load(Relaxed), 1);
        let other_held = media.index().stream(&other).unwrap().bytes_held();
        assert_eq!(c.index_bytes.load(Relaxed), other_held as u64);
        assert!(media.index().stream(&stream).is_none());
    }
    // The live stream ends too; its own retirement comes 30 s later.
    live.unpublish(&mut t);
    t.advance(31_000);
    for shard in [ShardId(0), ShardId(1)] {
        let c = t.service(shard).media().counters();
        assert_eq!(c.streams_indexed.load(Relaxed), 0);
        assert_eq!(c.index_bytes.load(Relaxed), 0, "nothing held");
        assert_eq!(c.streams_retired.load(Relaxed), 2);
    }
}

#[test]
fn the_vp8_fact_follows_the_publisher_being_shown_not_one_standing_by() {
    use super::msg::{MediaMsg, PublishFrom, PublishRole, PublisherId};
    let config = testing::config("");
    let mut t = testing::shards(2, &config, 0);
    let stream: Arc<str> = Arc::from(stream_homed_on(1, 2).as_str());
    let publish = |key: u32, role: PublishRole, vp8: bool| MediaMsg::Publish {
        stream: stream.clone(),
        conn: PublisherId::Whip { key, serial: key },
        role,
        from: Box::new(PublishFrom {
            remote: Arc::from("10.0.0.1 (WHIP)"),
            title: None,
            vp8,
        }),
    };
    let vp8_seen_by =
        |t: &shardcast_engine::testing::TestShards<crate::shard::router::ShardService>,
         shard: u16| {
            let media = t.service(ShardId(shard)).media();
            media.index.stream(&stream).map(|s| s.info.vp8)
        };
    t.inject(
        ShardId(0),
        ShardId(1),
        publish(1, PublishRole::Primary, true).into(),
    );
    t.advance(10);
    assert_eq!(vp8_seen_by(&t, 0), Some(true), "the primary sends VP8");
    assert_eq!(vp8_seen_by(&t, 1), Some(true));
    // An H.264 backup standing by changes nothing.
    t.inject(
        ShardId(0),
        ShardId(1),
        publish(2, PublishRole::Backup, false).into(),
    );
    t.advance(10);
    assert_eq!(vp8_seen_by(&t, 0), Some(true));
}
