//! Writes the seed corpora under `fuzz/seeds/<target>/`: a few small, valid inputs per target,
//! built with the crates' own encoders and test fixtures, so the fuzzer starts past the first
//! checks of each decoder.
//!
//! Run from the repository root on the stable toolchain:
//! `cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds`. The output is
//! deterministic; rerunning it rewrites the same files.

use std::fs;
use std::path::{Path, PathBuf};

use shardcast_fuzz::Input;
use shardcast_rtmp::{
    Amf0Object, ClientConfig, ClientSession, Event, ServerSession, SessionConfig,
    HANDSHAKE_PACKET_BYTES,
};

fn main() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = fuzz.parent().expect("fuzz/ sits in the repository");
    let seeds = fuzz.join("seeds");
    write(&seeds.join("rtmp_server"), rtmp_seeds());
    write(
        &seeds.join("flv"),
        flv_seeds(&root.join("shards/media/tests/fixtures")),
    );
    write(
        &seeds.join("flv_file"),
        flv_file_seeds(&root.join("shards/media/tests/fixtures")),
    );
    write(
        &seeds.join("wire_client"),
        copy_dir(&root.join("shards/wire/tests/fixtures/client")),
    );
    write(&seeds.join("ws_decoder"), ws_seeds());
    write(&seeds.join("http_request"), http_seeds());
    write(&seeds.join("tls_http"), tls_seeds());
}

/// `tls_http`: config 0 is what comes where a ClientHello should (a record header with a
/// short body, plain HTTP); 1 and 2 are requests a real client seals (2 then tampers).
fn tls_seeds() -> Vec<(String, Vec<u8>)> {
    let requests = "GET /live/a/index.m3u8 HTTP/1.1\r\nHost: a\r\n\r\n\
                    POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    let cuts = [9_000, 30_000, 52_000];
    vec![
        (
            "short_record".to_string(),
            Input::encode(0, cuts, b"\x16\x03\x01\x00\x05hello\x16\x03\x03\x40\x00"),
        ),
        (
            "plain_http".to_string(),
            Input::encode(0, cuts, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ),
        (
            "sealed_requests".to_string(),
            Input::encode(1, cuts, requests.as_bytes()),
        ),
        (
            "tampered_requests".to_string(),
            Input::encode(2, cuts, requests.as_bytes()),
        ),
    ]
}

/// Replaces the generated files of `dir` with `seeds`; `regression_*` files (inputs that once
/// crashed a target, kept so `just test` replays them) stay.
fn write(dir: &Path, seeds: Vec<(String, Vec<u8>)>) {
    fs::create_dir_all(dir).expect("create seed directory");
    for entry in fs::read_dir(dir).expect("seed directory") {
        let path = entry.expect("seed file").path();
        let kept = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("regression_"));
        if !kept {
            fs::remove_file(&path).expect("remove old seed");
        }
    }
    for (name, bytes) in seeds {
        assert!(bytes.len() <= 8 << 10, "{name}: seeds stay small");
        fs::write(dir.join(name), bytes).expect("write seed");
    }
    println!("{}", dir.display());
}

fn copy_dir(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .expect("fixture directory")
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect()
}

/// A publisher's bytes, recorded from a client paired in memory with a server: the whole
/// session, the part after the handshake, and the part after the accepted publish (the three
/// places `fuzz_server_input` starts feeding from).
fn rtmp_seeds() -> Vec<(String, Vec<u8>)> {
    let mut config = ClientConfig::new("live", "key");
    config.chunk_size = 512;
    let mut client = ClientSession::new(config);
    let mut server = ServerSession::new(SessionConfig::DEFAULT, 0);
    let mut sent = Vec::new();
    exchange(&mut client, &mut server, &mut sent);
    assert!(client.is_publishing());
    let published = sent.len();

    client
        .send_metadata(&Amf0Object::new().with("width", 640.0).with("height", 360.0))
        .unwrap();
    // An AVC sequence header (a real avcC), a keyframe, an AAC sequence header and a frame.
    let mut avc_header = vec![0x17, 0x00, 0, 0, 0];
    avc_header.extend_from_slice(&[
        0x01, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0x00, 0x0A, 0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x00, 0xA0,
        0x47, 0xFE, 0xC8, 0x01, 0x00, 0x04, 0x68, 0xCE, 0x3C, 0x80,
    ]);
    client.send_video(0, &avc_header).unwrap();
    client
        .send_video(
            0,
            &[
                0x17, 0x01, 0, 0, 0, 0, 0, 0, 5, 0x65, 0x88, 0x84, 0x00, 0x33,
            ],
        )
        .unwrap();
    client.send_audio(0, &[0xAF, 0x00, 0x12, 0x10]).unwrap();
    client
        .send_audio(23, &[0xAF, 0x01, 0x21, 0x10, 0x04, 0x60])
        .unwrap();
    client.set_chunk_size(64).unwrap();
    client
        .send_video(40, &[0x27, 0x01, 0, 0, 0, 0, 0, 0, 3, 0x41, 0x9A, 0x02])
        .unwrap();
    client.unpublish();
    exchange(&mut client, &mut server, &mut sent);

    let handshake = 1 + 2 * HANDSHAKE_PACKET_BYTES;
    vec![
        ("session".into(), sent.clone()),
        ("after_handshake".into(), sent[handshake..].to_vec()),
        ("after_publish".into(), sent[published..].to_vec()),
        ("connect_only".into(), sent[handshake..published].to_vec()),
    ]
}

/// Passes bytes both ways until neither side has anything to send, accepting every publish.
fn exchange(client: &mut ClientSession, server: &mut ServerSession, sent: &mut Vec<u8>) {
    loop {
        let mut moved = false;
        while let Some(bytes) = client.poll_transmit() {
            sent.extend_from_slice(&bytes);
            server.handle_input(0, &bytes).expect("a valid client");
            moved = true;
        }
        while let Some(event) = server.poll_event() {
            if let Event::PublishRequested { stream_id, .. } = event {
                server.accept_publish(stream_id).expect("pending");
            }
        }
        while let Some(bytes) = server.poll_transmit() {
            client.handle_input(&bytes).expect("a valid server");
            moved = true;
        }
        while client.poll_event().is_some() {}
        if !moved {
            return;
        }
    }
}

/// Tag bodies from the FLV fixture (the first tags of each type, small ones only), and
/// sequence headers wrapping the avcC and hvcC fixtures, legacy and Enhanced RTMP.
fn flv_seeds(fixtures: &Path) -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let file = fs::read(fixtures.join("avc_aac.flv")).expect("FLV fixture");
    let header_len = u32::from_be_bytes([file[5], file[6], file[7], file[8]]) as usize;
    let mut pos = header_len + 4;
    let (mut video, mut audio) = (0, 0);
    while pos + 11 <= file.len() {
        let tag_type = file[pos] & 0x1F;
        let size = u32::from_be_bytes([0, file[pos + 1], file[pos + 2], file[pos + 3]]) as usize;
        let body = &file[pos + 11..pos + 11 + size];
        pos += 11 + size + 4;
        let count = match tag_type {
            8 => &mut audio,
            9 => &mut video,
            _ => continue,
        };
        if *count < 3 && body.len() <= 2048 {
            let kind = if tag_type == 8 { "audio" } else { "video" };
            seeds.push((format!("{kind}_tag_{count}"), body.to_vec()));
            *count += 1;
        }
    }
    for name in ["avc_1080p25_baseline.avcc", "avc_576p_high10.avcc"] {
        let record = fs::read(fixtures.join(name)).unwrap();
        let mut legacy = vec![0x17, 0x00, 0, 0, 0];
        legacy.extend_from_slice(&record);
        seeds.push((format!("legacy_{name}"), legacy));
        let mut enhanced = vec![0x90];
        enhanced.extend_from_slice(b"avc1");
        enhanced.extend_from_slice(&record);
        seeds.push((format!("enhanced_{name}"), enhanced));
    }
    let record = fs::read(fixtures.join("hevc_720p30_main.hvcc")).unwrap();
    let mut enhanced = vec![0x90];
    enhanced.extend_from_slice(b"hvc1");
    enhanced.extend_from_slice(&record);
    seeds.push(("enhanced_hevc_720p30_main.hvcc".into(), enhanced));
    // Enhanced RTMP AAC: a sequence start for `mp4a` with an AudioSpecificConfig.
    let mut aac = vec![0x90];
    aac.extend_from_slice(b"mp4a");
    aac.extend_from_slice(&[0x12, 0x10]);
    seeds.push(("enhanced_aac_sequence_start".into(), aac));
    seeds
}

/// Whole files cut from the FLV fixture at tag boundaries: the header alone, the header with
/// the first tags (sequence headers and the first frames) up to the seed size cap, and the
/// same with the second half of its tags' timestamps going backwards.
fn flv_file_seeds(fixtures: &Path) -> Vec<(String, Vec<u8>)> {
    let file = fs::read(fixtures.join("avc_aac.flv")).expect("FLV fixture");
    let header_len = u32::from_be_bytes([file[5], file[6], file[7], file[8]]) as usize;
    let mut tag_ends = Vec::new();
    let mut pos = header_len + 4;
    while pos + 11 <= file.len() {
        let size = u32::from_be_bytes([0, file[pos + 1], file[pos + 2], file[pos + 3]]) as usize;
        pos += 11 + size + 4;
        if pos > 8 << 10 {
            break;
        }
        tag_ends.push(pos);
    }
    let head = file[..header_len + 4].to_vec();
    let first_tags = file[..*tag_ends.last().expect("the fixture has tags")].to_vec();
    let mut backwards = first_tags.clone();
    let mut start = tag_ends[tag_ends.len() / 2];
    for &end in &tag_ends[tag_ends.len() / 2 + 1..] {
        // Timestamp bytes 4..7 of the tag header: set to 1 ms, before every earlier tag.
        backwards[start + 4..start + 8].copy_from_slice(&[0, 0, 1, 0]);
        start = end;
    }
    vec![
        ("header_only".into(), head),
        ("first_tags".into(), first_tags),
        ("timestamps_backwards".into(), backwards),
    ]
}

/// A masked client frame, as a browser sends it.
fn masked(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut frame = vec![first];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

const FIN: u8 = 0x80;
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

fn ws_seeds() -> Vec<(String, Vec<u8>)> {
    let key = [0x37, 0xFA, 0x21, 0x3D];
    let mut close_body = 1000u16.to_be_bytes().to_vec();
    close_body.extend_from_slice("bye ✓".as_bytes());
    let sessions: Vec<(&str, u8, Vec<u8>)> = vec![
        ("text", 0, masked(FIN | TEXT, b"hello", key)),
        (
            "text_ping_close",
            0,
            [
                masked(FIN | TEXT, "弾幕 chat".as_bytes(), key),
                masked(FIN | PING, b"p", [0; 4]),
                masked(FIN | PONG, b"", key),
                masked(FIN | CLOSE, &close_body, key),
            ]
            .concat(),
        ),
        (
            // A character split across fragments, with a ping between them.
            "fragmented_text",
            1,
            [
                masked(TEXT, &"aé".as_bytes()[..2], key),
                masked(FIN | PING, b"keepalive", key),
                masked(CONTINUATION, &"é".as_bytes()[1..], key),
                masked(FIN | CONTINUATION, "€!".as_bytes(), key),
            ]
            .concat(),
        ),
        (
            "binary_16bit_length",
            0,
            [
                masked(FIN | BINARY, &[0xAB; 300], key),
                masked(FIN | BINARY, &[0, 1, 2, 3], key),
            ]
            .concat(),
        ),
        (
            "binary_fragments_at_caps",
            2,
            [
                masked(BINARY, &[1; 8], key),
                masked(FIN | CONTINUATION, &[2; 8], key),
                masked(FIN | CLOSE, &[], key),
            ]
            .concat(),
        ),
    ];
    let cuts = [
        [0x2000, 0x8000, 0xC000],
        [1, 0x4000, 0xFFFF],
        [0x5555, 0x5555, 0xAAAA],
    ];
    sessions
        .into_iter()
        .enumerate()
        .map(|(i, (name, config, payload))| {
            (
                name.to_owned(),
                Input::encode(config, cuts[i % cuts.len()], &payload),
            )
        })
        .collect()
}

fn http_seeds() -> Vec<(String, Vec<u8>)> {
    let requests: [(&str, u8, &str); 7] = [
        (
            "get_playlist",
            0,
            "GET /live/a/index.m3u8?_HLS_msn=12&_HLS_part=3 HTTP/1.1\r\nHost: live.example\r\n\
             Accept: */*\r\n\r\n",
        ),
        (
            "websocket_upgrade",
            0,
            "GET /ws HTTP/1.1\r\nHost: live.example:8080\r\nUpgrade: websocket\r\n\
             Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, danmaku.v1\r\n\r\n",
        ),
        (
            "range_etag",
            0,
            "\r\nGET /live/a/seg_42.m4s HTTP/1.1\r\nHost: [::1]:80\r\nRange: bytes=100-\r\n\
             If-None-Match: W/\"x\", \"3-abc\"\r\n\r\n",
        ),
        (
            "post_body_then_pipelined",
            1,
            "POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhelloHEAD /x HTTP/1.0\r\n\
             Connection: keep-alive\r\n\r\n",
        ),
        (
            "http10_close",
            2,
            "GET / HTTP/1.0\nX: y\n\nGET /",
        ),
        (
            "chunked_refused",
            0,
            "PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            // Past the tiny request-line cap before the line ends: refused at the first byte
            // over it when trickled, with more bytes seen when whole.
            "request_line_over_cap",
            2,
            "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ),
    ];
    let cuts = [
        [0x1000, 0x7000, 0xE000],
        [0, 0x3333, 0xFFFF],
        [0x8000, 0x8001, 0x8002],
    ];
    requests
        .iter()
        .enumerate()
        .map(|(i, (name, config, text))| {
            let data = Input::encode(*config, cuts[i % cuts.len()], text.as_bytes());
            ((*name).to_owned(), data)
        })
        .collect()
}
