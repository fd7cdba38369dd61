use super::*;

const PEER: &str = "192.0.2.9:5000";

/// A send path to [`PEER`] with fixed keys, its clock read at `now`.
fn sender(now: Instant, cname: &str) -> DirectTx {
    let peer = (Protocol::Udp, PEER.parse().unwrap());
    DirectTx::new(SrtpTx::for_tests(), peer, cname.into(), now)
}

/// Sends `frame` on `track` at RTP time `time`, and returns the datagrams.
fn send_video(
    tx: &mut DirectTx,
    track: &mut Track,
    (time, now): (u32, Instant),
    frame: &Arc<VideoFrame>,
) -> Vec<Vec<u8>> {
    let mut out = Outbox::default();
    tx.video(track, &mut out, (96, time, now), frame);
    datagrams(&mut out)
}

fn frame(payloads: &[&[u8]]) -> Arc<VideoFrame> {
    Arc::new(VideoFrame {
        payloads: payloads.iter().map(|p| Arc::from(*p)).collect(),
        keyframe: true,
        rtp_time: 0,
        codec: str0m::format::Codec::H264,
    })
}

fn datagrams(out: &mut Outbox) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    out.drain(|proto, to, data| {
        assert_eq!((proto, to), (Protocol::Udp, PEER.parse().unwrap()));
        all.push(data.to_vec());
    });
    all
}

#[test]
fn the_mid_goes_in_a_one_byte_header_extension_padded_to_32_bits() {
    let track = Track::new(1, Some((3, "0")), 0, 90_000);
    assert_eq!(track.mid_ext, [0xbe, 0xde, 0, 1, 0x30, b'0', 0, 0]);
    let track = Track::new(1, Some((9, "video")), 0, 90_000);
    assert_eq!(
        track.mid_ext,
        [0xbe, 0xde, 0, 2, 0x94, b'v', b'i', b'd', b'e', b'o', 0, 0]
    );
    // No extension, or none that fits the one-byte form: packets go without it.
    assert!(Track::new(1, None, 0, 90_000).mid_ext.is_empty());
    assert!(Track::new(1, Some((15, "0")), 0, 90_000).mid_ext.is_empty());
    assert!(Track::new(1, Some((3, &"x".repeat(17))), 0, 90_000)
        .mid_ext
        .is_empty());
}

#[test]
fn a_frame_is_numbered_marked_and_sent_again_byte_for_byte_on_a_nack() {
    let now = Instant::now();
    let mut tx = sender(now, "cname");
    // The sequence numbers cross 2^16: the rollover counter goes into the nonce.
    let mut track = Track::new(0x1234_5678, Some((3, "0")), 0xfffe, 90_000);
    let payloads: [&[u8]; 3] = [&[1; 100], &[2; 100], &[3; 50]];
    let sent = send_video(&mut tx, &mut track, (9000, now), &frame(&payloads));
    let mut out = Outbox::default();
    assert_eq!(sent.len(), 3);
    for (i, packet) in sent.iter().enumerate() {
        assert_eq!(packet[0], 0x90, "version 2 with an extension");
        assert_eq!(
            packet[1],
            96 | if i == 2 { 0x80 } else { 0 },
            "the marker on the last"
        );
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        assert_eq!(seq, 0xfffe_u16.wrapping_add(i as u16));
        assert_eq!(packet[4..8], 9000u32.to_be_bytes());
        assert_eq!(packet[8..12], 0x1234_5678u32.to_be_bytes());
        assert_eq!(packet.len(), 12 + 8 + payloads[i].len() + RTP_OVERHEAD);
        assert_ne!(
            &packet[20..20 + payloads[i].len()],
            payloads[i],
            "encrypted"
        );
    }
    assert_eq!(track.seq, 0x1_0001);
    // A NACK for the second and third (PID 0xffff, then bit 0 of the bitmask for 0x0000),
    // and one for a packet never sent.
    tx.nack([0xffff, 0x0000, 0x4000].into_iter());
    tx.resend(&track, &mut out);
    assert_eq!(
        datagrams(&mut out),
        sent[1..].to_vec(),
        "the same bytes again"
    );
    assert_eq!((tx.resent, tx.unknown_nacks), (2, 1));
}

#[test]
fn a_sender_report_counts_what_was_sent_and_maps_now_to_rtp_time() {
    let start = Instant::now();
    let mut tx = sender(start, "abc");
    let mut video = Track::new(7, None, 100, 90_000);
    let mut audio = Track::new(8, None, 100, 48_000);
    let mut out = Outbox::default();
    // Nothing sent yet: no report.
    tx.report(start, [Some(&mut video), Some(&mut audio)], &mut out);
    assert!(out.is_empty());
    send_video(
        &mut tx,
        &mut video,
        (90_000, start),
        &frame(&[&[0; 40], &[0; 60]]),
    );
    let later = start + Duration::from_millis(500);
    let next = tx.report(later, [Some(&mut video), Some(&mut audio)], &mut out);
    assert_eq!(next, later + REPORT_EVERY);
    let reports = datagrams(&mut out);
    assert_eq!(
        reports.len(),
        1,
        "the video's alone: the sound sent nothing"
    );
    let report = &reports[0];
    assert_eq!(
        report[..8],
        [0x80, 200, 0, 6, 0, 0, 0, 7],
        "SR of SSRC 7, in clear"
    );
    // SR (28) and SDES (4 + 4 + 2 + 3 + 1 padded to 12), the tag and the E flag with index.
    assert_eq!(report.len(), 28 + 4 + 12 + RTCP_OVERHEAD);
    assert_eq!(report[report.len() - 4] & 0x80, 0x80, "encrypted");
    // In clear, before sealing:
    let mut clear = [0u8; 64];
    let len = video
        .report(later, 0x1122_3344_5566_7788, "abc", &mut clear)
        .unwrap();
    assert_eq!(len, 44);
    assert_eq!(clear[8..16], 0x1122_3344_5566_7788u64.to_be_bytes());
    assert_eq!(
        clear[16..20],
        (90_000u32 + 45_000).to_be_bytes(),
        "half a second on"
    );
    assert_eq!(clear[20..24], 2u32.to_be_bytes(), "packets");
    assert_eq!(clear[24..28], 100u32.to_be_bytes(), "payload octets");
    assert_eq!(clear[28..32], [0x81, 202, 0, 3]);
    assert_eq!(clear[36..41], [1, 3, b'a', b'b', b'c']);
    // Not due again until a second has passed.
    let soon = later + Duration::from_millis(100);
    tx.report(soon, [Some(&mut video), Some(&mut audio)], &mut out);
    assert!(out.is_empty());
}

#[test]
fn nacks_get_no_more_resends_than_the_video_sent() {
    let now = Instant::now();
    let mut tx = sender(now, "cname");
    let mut track = Track::new(1, None, 0, 90_000);
    send_video(&mut tx, &mut track, (0, now), &frame(&[&[1; 10], &[2; 10]]));
    let mut out = Outbox::default();
    // A viewer asking for the same two packets over and over gets them twice in all: the two
    // the frame earned.
    for _ in 0..10 {
        tx.nack([0, 1].into_iter());
        tx.resend(&track, &mut out);
    }
    assert_eq!(datagrams(&mut out).len(), 2);
    assert_eq!((tx.resent, tx.refused_nacks), (2, 18));
    // The next frame earns more.
    send_video(&mut tx, &mut track, (3000, now), &frame(&[&[3; 10]]));
    tx.nack([0].into_iter());
    tx.resend(&track, &mut out);
    assert_eq!(tx.resent, 3);
}
