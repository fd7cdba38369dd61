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
    let (server_addr, viewer_addr): (SocketAddr, SocketAddr) =
        (SERVER.parse().unwrap(), VIEWER.parse().unwrap());
    let end = *now + Duration::from_secs(5);
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
                Output::Event(_) => {}
            }
        }
        let mut to_viewer = Vec::new();
        for data in to_server.drain(..) {
            let from = (Protocol::Udp, viewer_addr);
            assert!(server.accepts(*now, from, &data) || data[0] >= 128);
            if data[0] < 2 && data[1] == 1 {
                // A Binding request names the server's username fragment first.
                assert_eq!(stun_local_ufrag(&data), Some(server.ufrag()));
            }
            server.handle_datagram(*now, from, &data, &mut to_viewer);
        }
        for (_, to, data) in to_viewer {
            assert_eq!(to, viewer_addr);
            let receive = Receive::new(Protocol::Udp, server_addr, viewer_addr, &data).unwrap();
            viewer.handle_input(Input::Receive(*now, receive)).unwrap();
        }
        *now = (*now + Duration::from_millis(5)).max(viewer_timeout.min(server.next_timeout()));
        viewer.handle_input(Input::Timeout(*now)).unwrap();
        let mut to_viewer = Vec::new();
        server.handle_timeout(*now, &mut to_viewer);
        for (_, _, data) in to_viewer {
            let receive = Receive::new(Protocol::Udp, server_addr, viewer_addr, &data).unwrap();
            viewer.handle_input(Input::Receive(*now, receive)).unwrap();
        }
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

#[test]
fn a_viewer_that_goes_silent_is_freed_within_30_s() {
    let mut now = Instant::now();
    let (mut viewer, offer, pending) = viewer(now);
    let (mut server, answer) = answer_viewer(now, &offer);
    let answer = SdpAnswer::from_sdp_string(&answer).unwrap();
    viewer.sdp_api().accept_answer(pending, answer).unwrap();
    run(&mut now, &mut viewer, &mut server, |v, s| {
        s.state() == SessionState::Connected && v.is_connected()
    });
    let silent_from = now;
    let mut out = Vec::new();
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
