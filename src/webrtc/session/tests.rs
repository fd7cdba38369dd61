//! A session against a str0m peer on a virtual clock.

use super::*;
use std::time::Duration;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};

const SERVER: &str = "192.0.2.1:20000";
const VIEWER: &str = "192.0.2.2:40000";

/// A viewer as a browser would be: it offers to receive video and audio.
fn viewer(now: Instant) -> (Rtc, String, str0m::change::SdpPendingOffer) {
    let mut rtc = Rtc::builder().build(now);
    rtc.add_local_candidate(Candidate::host(VIEWER.parse().unwrap(), "udp").unwrap());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    (rtc, offer.to_sdp_string(), pending)
}

/// Moves datagrams both ways on a virtual clock until `done` or 5 s of virtual time.
fn run(
    now: &mut Instant,
    viewer: &mut Rtc,
    server: &mut Session,
    done: impl Fn(&Rtc, &Session) -> bool,
) {
    let lossless: Lossy = (&mut |_: &[u8]| false, &mut |_| {});
    run_lossy(
        (now, Duration::from_secs(5)),
        viewer,
        server,
        done,
        lossless,
    );
}

/// Which datagrams to the viewer are lost on the way, and what to do with its events.
type Lossy<'a> = (&'a mut dyn FnMut(&[u8]) -> bool, &'a mut dyn FnMut(Event));

/// [`run`] for up to `duration`, with the datagrams to the viewer that `lose` picks lost.
fn run_lossy(
    (now, duration): (&mut Instant, Duration),
    viewer: &mut Rtc,
    server: &mut Session,
    done: impl Fn(&Rtc, &Session) -> bool,
    (lose, on_event): Lossy,
) {
    let (server_addr, viewer_addr): (SocketAddr, SocketAddr) =
        (SERVER.parse().unwrap(), VIEWER.parse().unwrap());
    let end = *now + duration;
    let mut to_server = Vec::new();
    while *now < end && !done(viewer, server) {
        let mut viewer_timeout = *now + Duration::from_millis(50);
        loop {
            match viewer.poll_output().unwrap() {
                Output::Timeout(at) => {
                    viewer_timeout = viewer_timeout.min(at);
                    break;
                }
                Output::Transmit(t) => to_server.push(t.contents.to_vec()),
                Output::Event(event) => on_event(event),
            }
        }
        let mut to_viewer = Outbox::default();
        for data in to_server.drain(..) {
            let from = (Protocol::Udp, viewer_addr);
            assert!(server.accepts(*now, from, &data) || data[0] >= 128);
            if data[0] < 2 && data[1] == 1 {
                // A Binding request names the server's username fragment first.
                assert_eq!(stun_local_ufrag(&data), Some(server.ufrag()));
            }
            server.handle_datagram(*now, from, &data, &mut to_viewer);
        }
        let mut deliver = |now: Instant, to_viewer: &mut Outbox| {
            to_viewer.drain(|_, to, data| {
                assert_eq!(to, viewer_addr);
                if lose(data) {
                    return;
                }
                let receive = Receive::new(Protocol::Udp, server_addr, viewer_addr, data).unwrap();
                viewer.handle_input(Input::Receive(now, receive)).unwrap();
            })
        };
        deliver(*now, &mut to_viewer);
        *now = (*now + Duration::from_millis(5)).max(viewer_timeout.min(server.next_timeout()));
        server.handle_timeout(*now, &mut to_viewer);
        deliver(*now, &mut to_viewer);
        viewer.handle_input(Input::Timeout(*now)).unwrap();
    }
}

/// The server's session for a (non-adaptive) viewer's offer, and its answer.
fn answer_viewer(now: Instant, offer: &str) -> (Session, String) {
    let local = SERVER.parse().unwrap();
    Session::answer(
        now,
        offer,
        (local, None),
        (PeerRole::Viewer, None),
        &[Codec::H264],
    )
    .unwrap()
}

#[test]
fn a_viewer_s_offer_is_answered_and_ice_and_dtls_complete() {
    let mut now = Instant::now();
    let (mut viewer, offer, pending) = viewer(now);
    let (mut server, answer) = answer_viewer(now, &offer);
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(
        answer.contains("H264") && answer.contains("opus"),
        "{answer}"
    );
    let (video, audio) = server.mids();
    assert!(video.is_some() && audio.is_some());
    let answer = SdpAnswer::from_sdp_string(&answer).unwrap();
    viewer.sdp_api().accept_answer(pending, answer).unwrap();
    run(&mut now, &mut viewer, &mut server, |v, s| {
        s.state() == SessionState::Connected && v.is_connected()
    });
    assert_eq!(server.state(), SessionState::Connected);
    assert!(viewer.is_connected());
}

#[test]
fn a_vp8_feed_s_viewer_is_answered_every_codec_it_could_be_moved_to() {
    let now = Instant::now();
    let local = SERVER.parse().unwrap();
    let (_, offer, _) = viewer(now);
    let role = (PeerRole::Viewer, None);
    let codecs = [Codec::Vp8, Codec::H264];
    let (server, answer) = Session::answer(now, &offer, (local, None), role, &codecs).unwrap();
    assert!(answer.contains("VP8/90000") && answer.contains("H264/90000"));
    assert_eq!(server.video_codec(), Codec::Vp8);
    assert!(server.takes(Codec::Vp8) && server.takes(Codec::H264));
    // A viewer of H.264 is answered H.264 alone.
    let (server, answer) = answer_viewer(now, &offer);
    assert!(!answer.contains("VP8"), "{answer}");
    assert!(server.takes(Codec::H264) && !server.takes(Codec::Vp8));
    // A publisher is answered the first codec alone, whatever it offers.
    let publisher = |video: &[Codec]| {
        let mut rtc = Rtc::builder().build(now);
        let mut change = rtc.sdp_api();
        change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let offer = change.apply().unwrap().0.to_sdp_string();
        let role = (PeerRole::Publisher, None);
        Session::answer(now, &offer, (local, None), role, video)
            .unwrap()
            .1
    };
    let answer = publisher(&codecs);
    assert!(
        answer.contains("VP8/90000") && !answer.contains("H264"),
        "{answer}"
    );
}

/// A str0m viewer and the server's session for it, through ICE and DTLS.
fn connected_viewer() -> (Instant, Rtc, Session) {
    let mut now = Instant::now();
    let (mut viewer, offer, pending) = viewer(now);
    let (mut server, answer) = answer_viewer(now, &offer);
    let answer = SdpAnswer::from_sdp_string(&answer).unwrap();
    viewer.sdp_api().accept_answer(pending, answer).unwrap();
    run(&mut now, &mut viewer, &mut server, |v, s| {
        s.state() == SessionState::Connected && v.is_connected()
    });
    (now, viewer, server)
}

#[test]
fn a_viewer_that_goes_silent_is_freed_within_30_s() {
    let (mut now, _viewer, mut server) = connected_viewer();
    let silent_from = now;
    let mut out = Outbox::default();
    while server.state() != SessionState::Closed && now < silent_from + Duration::from_secs(60) {
        now = (now + Duration::from_millis(100))
            .max(server.next_timeout().min(now + Duration::from_secs(1)));
        server.handle_timeout(now, &mut out);
    }
    assert_eq!(server.state(), SessionState::Closed);
    let after = now - silent_from;
    assert!(after <= Duration::from_secs(30), "freed after {after:?}");
}

#[test]
fn stun_usernames_are_read_from_well_formed_messages_only() {
    let mut stun = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    stun.extend_from_slice(&[0x00, 0x06, 0x00, 0x07]);
    stun.extend_from_slice(b"abc:xyz\0");
    assert_eq!(stun_local_ufrag(&stun), Some("abc"));
    for cut in 0..stun.len() {
        assert_eq!(stun_local_ufrag(&stun[..cut]), None, "cut at {cut}");
    }
    let mut wrong_cookie = stun.clone();
    wrong_cookie[4] = 0;
    assert_eq!(stun_local_ufrag(&wrong_cookie), None);
    let mut rtp = stun.clone();
    rtp[0] = 0x80;
    assert_eq!(stun_local_ufrag(&rtp), None);
    let mut lying = stun.clone();
    lying[22..24].copy_from_slice(&[0xff, 0xff]);
    assert_eq!(
        stun_local_ufrag(&lying),
        None,
        "an attribute longer than the message"
    );
}

#[test]
fn bad_offers_get_their_status() {
    let now = Instant::now();
    let local = SERVER.parse().unwrap();
    let garbage = Session::answer(
        now,
        "v=0\r\nthis is not sdp",
        (local, None),
        (PeerRole::Viewer, None),
        &[Codec::H264],
    )
    .map(|_| ())
    .unwrap_err();
    assert_eq!(garbage.status(), 400, "{garbage}");
    // An offer that only sends (a publisher's) has nothing a viewer would receive.
    let mut rtc = Rtc::builder().build(now);
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, _) = change.apply().unwrap();
    let error = Session::answer(
        now,
        &offer.to_sdp_string(),
        (local, None),
        (PeerRole::Viewer, None),
        &[Codec::H264],
    )
    .map(|_| ())
    .unwrap_err();
    assert_eq!(error, OfferError::NothingInCommon);
    assert_eq!(error.status(), 406);
}

/// A frame of `nals` single-NAL-unit payloads of `size` bytes each, at `rtp_time`; the one
/// at time 0 is an IDR.
fn frame(rtp_time: u64, (nals, size): (usize, usize)) -> Arc<VideoFrame> {
    let keyframe = rtp_time == 0;
    let nal_type = if keyframe { 0x65 } else { 0x41 };
    let payload = |i: usize| -> Arc<[u8]> {
        let mut nal = vec![(rtp_time as u8).wrapping_add(i as u8); size];
        nal[0] = nal_type;
        Arc::from(nal)
    };
    Arc::new(VideoFrame {
        payloads: (0..nals).map(payload).collect(),
        keyframe,
        rtp_time,
        codec: Codec::H264,
    })
}

#[test]
fn a_plain_viewer_s_media_goes_on_its_own_path_and_lost_packets_are_sent_again() {
    let (mut now, mut viewer, mut server) = connected_viewer();
    assert!(
        server.is_direct(),
        "an AEAD profile over UDP: the session's own path"
    );
    // 30 frames of 4 packets; every 9th media packet to the viewer is lost once.
    let (mut media_packets, mut lost) = (0u64, std::collections::HashSet::new());
    let mut lose = |data: &[u8]| {
        let media = data[0] >> 6 == 2 && !(192..=223).contains(&data[1]) && data.len() > 500;
        if !media {
            return false;
        }
        media_packets += 1;
        media_packets % 9 == 0 && lost.insert(data.to_vec())
    };
    let (mut frames, mut reports) = (Vec::new(), 0u32);
    let mut on_event = |event: Event| match event {
        Event::MediaData(data) => frames.push((data.time.numer(), data.data.len())),
        Event::SenderFeedback(feedback) => {
            reports = reports.max(feedback.sender_info.sender_packet_count)
        }
        _ => {}
    };
    let mut out = Outbox::default();
    let start = now;
    for i in 0..30u64 {
        let wallclock = start + Duration::from_millis(33 * i);
        server.write_video(wallclock, &frame(3000 * i, (4, 1000)), &mut out);
        let sent = out.bytes();
        assert!(
            sent > 4 * 1000 && sent < 4 * 1100,
            "4 packets built at once: {sent}"
        );
        let viewer_addr: SocketAddr = VIEWER.parse().unwrap();
        out.drain(|_, to, data| {
            assert_eq!(to, viewer_addr);
            if lose(data) {
                return;
            }
            let receive = Receive::new(Protocol::Udp, SERVER.parse().unwrap(), to, data).unwrap();
            viewer.handle_input(Input::Receive(now, receive)).unwrap();
        });
        let frame_time = (&mut now, Duration::from_millis(33));
        let lossy: Lossy = (&mut lose, &mut on_event);
        run_lossy(frame_time, &mut viewer, &mut server, |_, _| false, lossy);
    }
    let lossy: Lossy = (&mut lose, &mut on_event);
    run_lossy(
        (&mut now, Duration::from_secs(2)),
        &mut viewer,
        &mut server,
        |_, _| false,
        lossy,
    );
    assert!(
        !lost.is_empty() && server.resent() >= lost.len() as u64,
        "{} lost, {} resent",
        lost.len(),
        server.resent()
    );
    let times: Vec<u64> = frames.iter().map(|&(time, _)| time).collect();
    assert_eq!(
        times,
        (0..30).map(|i| 3000 * i).collect::<Vec<u64>>(),
        "every frame, in order"
    );
    assert!(frames.iter().all(|&(_, len)| len >= 4 * 1000), "{frames:?}");
    assert_eq!(
        reports,
        30 * 4,
        "the sender report counts every packet sent once"
    );
}
