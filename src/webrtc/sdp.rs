//! What a session reads from SDP text str0m does not expose: which codecs and media lines an
//! offer has, and which media lines an answer accepted.

use str0m::format::Codec;
use str0m::media::Mid;

/// Whether the offer has a video media line that is not turned off (port 0).
pub(super) fn offers_video(sdp: &str) -> bool {
    (sdp.lines()).any(|line| {
        let mut fields = line.split_whitespace();
        fields.next() == Some("m=video") && fields.next().is_some_and(|port| port != "0")
    })
}

/// Whether the offer names `codec` in an `a=rtpmap` line (`a=rtpmap:96 VP8/90000`).
pub fn offers_codec(sdp: &str, codec: Codec) -> bool {
    let name = match codec {
        Codec::H264 => "H264",
        Codec::Vp8 => "VP8",
        _ => return false,
    };
    sdp.lines()
        .filter_map(|line| line.trim().strip_prefix("a=rtpmap:"))
        .filter_map(|rest| rest.split_whitespace().nth(1))
        .any(|format| (format.split('/').next()).is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

/// The first video and the first audio media line of an answer with one of `directions`
/// (`a=sendonly`…), by mid: an accepted line (port not 0) with at least one codec.
pub(super) fn media_mids(sdp: &str, directions: &[&str]) -> (Option<Mid>, Option<Mid>) {
    let (mut video, mut audio) = (None, None);
    let mut sections = sdp.split("\nm=").skip(1);
    for section in sections.by_ref() {
        let mut words = section.split_whitespace();
        let kind = words.next().unwrap_or("");
        let port = words.next().unwrap_or("0");
        let has_codec = words.nth(1).is_some();
        let sending = section.lines().any(|l| directions.contains(&l.trim()));
        let mid = section
            .lines()
            .find_map(|l| l.trim().strip_prefix("a=mid:"))
            .map(Mid::from);
        if port == "0" || !sending || !has_codec {
            continue;
        }
        match kind {
            "video" if video.is_none() => video = mid,
            "audio" if audio.is_none() => audio = mid,
            _ => {}
        }
    }
    (video, audio)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\na=rtpmap:96 VP8/90000\r\n\
        a=rtpmap:102 h264/90000\r\n";

    #[test]
    fn codecs_are_found_by_name_in_rtpmap_lines_whatever_their_case() {
        assert!(offers_codec(OFFER, Codec::Vp8));
        assert!(offers_codec(OFFER, Codec::H264));
        assert!(!offers_codec(OFFER, Codec::Vp9));
        let no_h264 = OFFER.replace("h264/90000", "VP9/90000");
        assert!(!offers_codec(&no_h264, Codec::H264));
    }

    #[test]
    fn a_video_line_counts_unless_its_port_is_zero() {
        assert!(offers_video(OFFER));
        assert!(!offers_video(&OFFER.replace("m=video 9", "m=video 0")));
        assert!(!offers_video("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"));
    }
}
