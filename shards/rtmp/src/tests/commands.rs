//! The command layer: what the server answers to each NetConnection and NetStream command,
//! what it reports, and what it refuses.

use super::*;
use crate::message::{
    ACKNOWLEDGEMENT, AGGREGATE, AUDIO, COMMAND_AMF3, DATA_AMF0, DATA_AMF3, SET_CHUNK_SIZE,
    SET_PEER_BANDWIDTH, USER_CONTROL, VIDEO, WINDOW_ACK_SIZE,
};
use crate::{Amf0Object, Amf0Value, NoPendingPublish, StatusLevel};

#[test]
fn connect_is_answered_like_flash_media_server() {
    let mut raw = Raw::handshaken(SessionConfig::DEFAULT);
    raw.command(0, &connect_command());
    assert_eq!(raw.flush(), Ok(()));
    assert_eq!(
        raw.events,
        [Event::Connected {
            app: "live".into(),
            tc_url: "rtmp://localhost/live".into(),
            flash_ver: "FMLE/3.0 (compatible; FMSc/1.0)".into(),
        }]
    );
    let sent = raw.sent_messages();
    // Set Chunk Size is applied by the decoder rather than returned; it sits between these.
    let summary: Vec<(u8, Vec<u8>)> = sent[..2]
        .iter()
        .map(|m| (m.type_id, m.payload.to_vec()))
        .collect();
    assert_eq!(
        summary,
        [
            (WINDOW_ACK_SIZE, 2_500_000u32.to_be_bytes().to_vec()),
            (SET_PEER_BANDWIDTH, vec![0x00, 0x26, 0x25, 0xA0, 2]),
        ]
    );
    assert!(sent[..2]
        .iter()
        .all(|m| m.chunk_stream_id == 2 && m.stream_id == 0));
    let mut decoder = crate::chunk::ChunkDecoder::new(&SessionConfig::DEFAULT);
    let mut input = &raw.received[..];
    while decoder.decode(&mut input).unwrap().is_some() {}
    assert_eq!(decoder.chunk_size(), 4096);
    assert_eq!(
        raw.received[29..45],
        [
            0x42,
            0,
            0,
            0,
            0,
            0,
            4,
            SET_CHUNK_SIZE,
            0,
            0,
            0x10,
            0,
            0x03,
            0,
            0,
            0
        ]
    );
    let properties = Amf0Object::new()
        .with("fmsVer", "FMS/3,0,1,123")
        .with("capabilities", 31.0);
    let information = Amf0Object::new()
        .with("level", "status")
        .with("code", "NetConnection.Connect.Success")
        .with("description", "Connection succeeded.")
        .with("objectEncoding", 0.0);
    assert_eq!(
        values_of(&sent[2]),
        [
            Amf0Value::from("_result"),
            1.0.into(),
            properties.into(),
            information.into()
        ]
    );
    assert_eq!(sent.len(), 3);
}

/// An Enhanced RTMP client announces its codecs in `connect`; nothing changes.
#[test]
fn enhanced_rtmp_connect_is_accepted() {
    let mut raw = Raw::handshaken(SessionConfig::DEFAULT);
    let info_map = Amf0Object::new().with(
        "hvc1",
        Amf0Object::new()
            .with("canDecode", true)
            .with("canEncode", 1.0),
    );
    let object = Amf0Object::new()
        .with("app", "live")
        .with("tcUrl", "rtmp://h/live")
        .with(
            "fourCcList",
            Amf0Value::StrictArray(vec!["av01".into(), "vp09".into(), "hvc1".into()]),
        )
        .with("videoFourCcInfoMap", info_map)
        .with("capsEx", 1.0);
    raw.command(0, &["connect".into(), 1.0.into(), object.into()]);
    assert_eq!(raw.flush(), Ok(()));
    assert!(raw.server.is_connected());
    assert_eq!(
        code_of(&raw.sent_messages()[2]),
        "NetConnection.Connect.Success"
    );
}

#[test]
fn connect_errors() {
    let cases: [(Vec<Amf0Value>, &str); 3] = [
        (
            vec!["connect".into(), 1.0.into()],
            "connect without a command object",
        ),
        (
            vec!["connect".into(), 1.0.into(), Amf0Object::new().into()],
            "connect without an app",
        ),
        (
            vec![
                "connect".into(),
                1.0.into(),
                Amf0Object::new().with("app", 3.0).into(),
            ],
            "connect without an app",
        ),
    ];
    for (values, reason) in cases {
        let mut raw = Raw::handshaken(SessionConfig::DEFAULT);
        raw.command(0, &values);
        assert_eq!(raw.flush(), Err(RtmpError::ProtocolViolation(reason)));
    }
    let mut raw = Raw::connected(SessionConfig::DEFAULT);
    raw.command(0, &connect_command());
    assert_eq!(
        raw.flush(),
        Err(RtmpError::ProtocolViolation("a second connect"))
    );
    let mut raw = Raw::handshaken(SessionConfig::DEFAULT);
    raw.command(0, &[3.0.into()]);
    assert_eq!(
        raw.flush(),
        Err(RtmpError::ProtocolViolation(
            "a command whose name is not a string"
        ))
    );
}

#[test]
fn commands_before_connect_are_refused() {
    for name in ["publish", "createStream", "releaseStream", "whatever"] {
        let mut raw = Raw::handshaken(SessionConfig::DEFAULT);
        raw.command(0, &call(name, 2.0, &["key".into()]));
        assert_eq!(
            raw.flush(),
            Err(RtmpError::ProtocolViolation("a command before connect")),
            "{name}"
        );
    }
    // Protocol control messages before connect are fine; media is dropped.
    let mut raw = Raw::handshaken(SessionConfig::DEFAULT);
    raw.message(2, WINDOW_ACK_SIZE, 0, 0, &5_000_000u32.to_be_bytes());
    raw.message(4, AUDIO, 1, 0, b"early");
    assert_eq!(raw.flush(), Ok(()));
    assert!(raw.events.is_empty());
}

/// The full publishing sequence, as ffmpeg and OBS send it, and every answer.
#[test]
fn publish_sequence_and_answers() {
    let mut raw = Raw::connected(SessionConfig::DEFAULT);
    raw.command(0, &call("releaseStream", 2.0, &["key".into()]));
    raw.command(0, &call("FCPublish", 3.0, &["key".into()]));
    raw.command(0, &call("createStream", 4.0, &[]));
    raw.command(1, &call("publish", 5.0, &["key".into(), "live".into()]));
    assert_eq!(raw.flush(), Ok(()));
    assert_eq!(
        raw.events,
        [Event::PublishRequested {
            stream_id: 1,
            name: "key".into(),
            kind: "live".into()
        }]
    );
    let sent = raw.sent_messages();
    assert_eq!(
        command_names(&sent),
        ["_result", "onFCPublish", "_result", "_result"]
    );
    assert_eq!(values_of(&sent[0])[1], 2.0.into(), "releaseStream answered");
    assert_eq!(code_of(&sent[1]), "NetStream.Publish.Start");
    assert_eq!(values_of(&sent[2])[1], 3.0.into(), "FCPublish answered");
    assert_eq!(
        values_of(&sent[3]),
        [
            Amf0Value::from("_result"),
            4.0.into(),
            Amf0Value::Null,
            1.0.into()
        ]
    );

    // Media before the answer is dropped.
    raw.mark();
    raw.message(4, AUDIO, 1, 0, b"early");
    assert_eq!(raw.flush(), Ok(()));
    raw.events.clear();
    assert_eq!(raw.server.accept_publish(1), Ok(()));
    assert_eq!(
        raw.server.accept_publish(1),
        Err(NoPendingPublish { stream_id: 1 })
    );
    while let Some(bytes) = raw.server.poll_transmit() {
        raw.received.extend_from_slice(&bytes);
    }
    let sent = raw.sent_messages();
    assert_eq!(sent[0].type_id, USER_CONTROL);
    assert_eq!(&sent[0].payload[..], [0, 0, 0, 0, 0, 1], "Stream Begin 1");
    assert_eq!((sent[1].stream_id, sent[1].chunk_stream_id), (1, 5));
    let info = values_of(&sent[1])[3].as_object().unwrap().clone();
    assert_eq!(info.get_str("level"), Some("status"));
    assert_eq!(info.get_str("code"), Some("NetStream.Publish.Start"));
    assert_eq!(info.get_str("details"), Some("key"));

    // Media on the stream is reported; on another stream it is dropped.
    raw.message(4, AUDIO, 1, 10, b"a");
    raw.message(6, VIDEO, 1, 20, b"v");
    raw.message(7, VIDEO, 2, 20, b"elsewhere");
    raw.flush().unwrap();
    assert_eq!(
        raw.events,
        [
            Event::Audio {
                stream_id: 1,
                timestamp_ms: 10,
                payload: Bytes::from_static(b"a")
            },
            Event::Video {
                stream_id: 1,
                timestamp_ms: 20,
                payload: Bytes::from_static(b"v")
            },
        ]
    );

    // FCUnpublish, then deleteStream end the publish.
    raw.events.clear();
    raw.mark();
    raw.command(0, &call("FCUnpublish", 6.0, &["key".into()]));
    raw.command(0, &call("deleteStream", 7.0, &[1.0.into()]));
    raw.flush().unwrap();
    assert_eq!(raw.events, [Event::Unpublished { stream_id: 1 }]);
    let sent = raw.sent_messages();
    assert_eq!(command_names(&sent), ["onFCUnpublish", "_result"]);
    assert_eq!(code_of(&sent[0]), "NetStream.Unpublish.Success");
    // The stream is gone: media on it is dropped, publishing on it is a violation.
    raw.events.clear();
    raw.message(4, AUDIO, 1, 30, b"late");
    raw.flush().unwrap();
    assert!(raw.events.is_empty());
    raw.command(1, &call("publish", 8.0, &["key".into()]));
    assert_eq!(
        raw.flush(),
        Err(RtmpError::ProtocolViolation(
            "publish on a stream that was not created"
        ))
    );
}

#[test]
fn close_stream_ends_the_publish_and_keeps_the_stream() {
    let mut raw = Raw::publishing(SessionConfig::DEFAULT);
    raw.command(1, &call("closeStream", 0.0, &[]));
    raw.flush().unwrap();
    assert_eq!(raw.events, [Event::Unpublished { stream_id: 1 }]);
    raw.server
        .send_status(1, StatusLevel::Status, "NetStream.Unpublish.Success", "bye");
    raw.feed(&[]).unwrap();
    assert_eq!(
        code_of(&raw.sent_messages()[0]),
        "NetStream.Unpublish.Success"
    );
    // The stream can publish again; a second closeStream reports nothing more.
    raw.events.clear();
    raw.command(1, &call("publish", 0.0, &["key2".into(), "record".into()]));
    raw.command(1, &call("closeStream", 0.0, &[]));
    raw.command(1, &call("closeStream", 0.0, &[]));
    raw.flush().unwrap();
    assert_eq!(
        raw.events,
        [
            Event::PublishRequested {
                stream_id: 1,
                name: "key2".into(),
                kind: "record".into()
            },
            Event::Unpublished { stream_id: 1 },
        ]
    );
    assert_eq!(
        raw.server.accept_publish(1),
        Err(NoPendingPublish { stream_id: 1 }),
        "the client closed the stream before the answer"
    );
}

#[test]
fn publish_errors() {
    let mut raw = Raw::connected(SessionConfig::DEFAULT);
    raw.command(0, &call("createStream", 2.0, &[]));
    raw.command(1, &call("publish", 0.0, &[]));
    assert_eq!(
        raw.flush(),
        Err(RtmpError::ProtocolViolation("publish without a name"))
    );
    let mut raw = Raw::publishing(SessionConfig::DEFAULT);
    raw.command(1, &call("publish", 0.0, &["key".into()]));
    assert_eq!(
        raw.flush(),
        Err(RtmpError::ProtocolViolation(
            "publish on a stream that is already publishing"
        ))
    );
    // A publish without a type is live.
    let mut raw = Raw::connected(SessionConfig::DEFAULT);
    raw.command(0, &call("createStream", 2.0, &[]));
    raw.command(1, &call("publish", 0.0, &["k".into()]));
    raw.flush().unwrap();
    assert!(matches!(&raw.events[0], Event::PublishRequested { kind, .. } if kind == "live"));
}

#[test]
fn rejected_publish() {
    let mut pair = Pair::new(SessionConfig::DEFAULT, ClientConfig::new("live", "nope"));
    pair.accept = false;
    pair.drive();
    assert!(matches!(
        pair.events.last(),
        Some(Event::PublishRequested { stream_id: 1, .. })
    ));
    assert_eq!(
        pair.server
            .reject_publish(1, "NetStream.Publish.BadName", "Unknown stream key."),
        Ok(())
    );
    assert!(pair.server.is_finished());
    assert_eq!(pair.server.poll_timeout(), None);
    pair.drive();
    assert_eq!(
        pair.client_events.last(),
        Some(&ClientEvent::Status {
            level: "error".into(),
            code: "NetStream.Publish.BadName".into(),
            description: "Unknown stream key.".into(),
        })
    );
    assert!(!pair.client.is_publishing());
    // Input after the rejection is ignored; answering again is refused.
    pair.client.send_audio(0, b"a").unwrap();
    pair.drive();
    assert!(matches!(
        pair.events.last(),
        Some(Event::PublishRequested { .. })
    ));
    assert_eq!(
        pair.server
            .reject_publish(1, "NetStream.Publish.Denied", "no"),
        Err(NoPendingPublish { stream_id: 1 })
    );
}

#[test]
fn error_and_close() {
    // With a stream publishing: NetStream.Failed on it.
    let mut raw = Raw::publishing(SessionConfig::DEFAULT);
    raw.server.error_and_close("HEVC is not supported here.");
    raw.feed(&[]).unwrap();
    let sent = raw.sent_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].stream_id, 1);
    let info = values_of(&sent[0])[3].as_object().unwrap().clone();
    assert_eq!(info.get_str("level"), Some("error"));
    assert_eq!(info.get_str("code"), Some("NetStream.Failed"));
    assert_eq!(
        info.get_str("description"),
        Some("HEVC is not supported here.")
    );
    assert!(raw.server.is_finished());
    raw.message(4, AUDIO, 1, 0, b"a");
    assert_eq!(raw.flush(), Ok(()));
    assert!(raw.events.is_empty(), "input is ignored");
    raw.server.error_and_close("again");
    assert_eq!(raw.server.poll_transmit(), None, "only once");

    // Without a stream: NetConnection.Connect.Rejected on stream 0.
    let mut raw = Raw::connected(SessionConfig::DEFAULT);
    raw.server.error_and_close("Unknown app.");
    raw.feed(&[]).unwrap();
    let sent = raw.sent_messages();
    assert_eq!(code_of(&sent[0]), "NetConnection.Connect.Rejected");
    assert_eq!(sent[0].stream_id, 0);

    // Before the handshake is done there is nothing to say.
    let mut server = ServerSession::new(SessionConfig::DEFAULT, 0);
    server.error_and_close("no");
    assert!(server.is_finished());
    assert_eq!(server.poll_transmit(), None);
}

#[test]
fn unknown_commands_are_answered_not_fatal() {
    let mut raw = Raw::publishing(SessionConfig::DEFAULT);
    raw.command(0, &call("getStreamLength", 9.0, &["key".into()]));
    raw.command(0, &call("_checkbw", 10.0, &[]));
    raw.command(0, &call("FCSubscribe", 11.0, &["key".into()]));
    raw.command(0, &call("noTransactionId", 0.0, &[]));
    raw.command(0, &["bare".into()]);
    // Answers from the client are never answered.
    raw.command(0, &call("_result", 12.0, &[]));
    raw.command(0, &call("_error", 13.0, &[]));
    raw.command(0, &call("onStatus", 0.0, &[]));
    raw.flush().unwrap();
    let sent = raw.sent_messages();
    assert_eq!(command_names(&sent), ["_error", "_error", "_error"]);
    let txns: Vec<Amf0Value> = sent.iter().map(|m| values_of(m)[1].clone()).collect();
    assert_eq!(txns, [9.0.into(), 10.0.into(), 11.0.into()]);
    assert!(sent
        .iter()
        .all(|m| code_of(m) == "NetConnection.Call.Failed"));
    assert!(!raw.server.is_finished());
    raw.message(4, AUDIO, 1, 0, b"still publishing");
    raw.flush().unwrap();
    assert_eq!(raw.events.len(), 1);
}

#[test]
fn play_is_refused() {
    let mut raw = Raw::connected(SessionConfig::DEFAULT);
    raw.command(0, &call("createStream", 2.0, &[]));
    raw.command(1, &call("play", 3.0, &["key".into()]));
    raw.flush().unwrap();
    let sent = raw.sent_messages();
    assert_eq!(command_names(&sent), ["_result", "onStatus", "_error"]);
    assert_eq!(code_of(&sent[1]), "NetStream.Play.Failed");
    assert_eq!(sent[1].stream_id, 1);
    assert!(raw.events.is_empty());
}

#[test]
fn create_stream_up_to_the_cap() {
    let config = SessionConfig {
        streams_max: 2,
        ..SessionConfig::DEFAULT
    };
    let mut raw = Raw::connected(config);
    for txn in 2..5 {
        raw.command(0, &call("createStream", f64::from(txn), &[]));
    }
    raw.flush().unwrap();
    let sent = raw.sent_messages();
    assert_eq!(command_names(&sent), ["_result", "_result", "_error"]);
    assert_eq!(values_of(&sent[1])[3], 2.0.into());
    assert_eq!(code_of(&sent[2]), "NetConnection.Call.Failed");
    // Deleting one makes room again, with a fresh id.
    raw.mark();
    raw.command(0, &call("deleteStream", 0.0, &[1.0.into()]));
    raw.command(0, &call("createStream", 5.0, &[]));
    raw.flush().unwrap();
    assert_eq!(values_of(&raw.sent_messages()[0])[3], 3.0.into());
}

#[test]
fn metadata_in_every_form() {
    let mut raw = Raw::publishing(SessionConfig::DEFAULT);
    let object = Amf0Object::new()
        .with("width", 1920.0)
        .with("encoder", "obs");
    let data = |values: &[Amf0Value]| {
        let mut payload = Vec::new();
        crate::amf0::encode_all(values, &mut payload);
        payload
    };
    // @setDataFrame with an ECMA array (ffmpeg), with an object (OBS), bare onMetaData, and
    // an AMF3 envelope.
    raw.message(
        8,
        DATA_AMF0,
        1,
        0,
        &data(&[
            "@setDataFrame".into(),
            "onMetaData".into(),
            Amf0Value::EcmaArray(object.clone()),
        ]),
    );
    raw.message(
        8,
        DATA_AMF0,
        1,
        0,
        &data(&[
            "@setDataFrame".into(),
            "onMetaData".into(),
            object.clone().into(),
        ]),
    );
    raw.message(
        8,
        DATA_AMF0,
        1,
        0,
        &data(&["onMetaData".into(), object.clone().into()]),
    );
    let mut amf3 = vec![0];
    amf3.extend(data(&["onMetaData".into(), object.clone().into()]));
    raw.message(8, DATA_AMF3, 1, 0, &amf3);
    // Other data and metadata on a stream that is not publishing are ignored.
    raw.message(
        8,
        DATA_AMF0,
        1,
        0,
        &data(&["onCuePoint".into(), object.clone().into()]),
    );
    raw.message(
        8,
        DATA_AMF0,
        1,
        0,
        &data(&["onMetaData".into(), "no object".into()]),
    );
    raw.message(
        9,
        DATA_AMF0,
        2,
        0,
        &data(&["onMetaData".into(), object.clone().into()]),
    );
    raw.flush().unwrap();
    let metadata = Event::Metadata {
        stream_id: 1,
        values: object,
    };
    assert_eq!(raw.events, vec![metadata; 4]);
}

#[test]
fn amf3_commands() {
    // AMF0 behind the leading zero byte is accepted.
    let mut raw = Raw::handshaken(SessionConfig::DEFAULT);
    let mut payload = vec![0];
    crate::amf0::encode_all(&connect_command(), &mut payload);
    raw.message(3, COMMAND_AMF3, 0, 0, &payload);
    assert_eq!(raw.flush(), Ok(()));
    assert!(raw.server.is_connected());
    // Real AMF3 (here, an AMF3 string marker first) is refused.
    let mut raw = Raw::connected(SessionConfig::DEFAULT);
    raw.message(3, COMMAND_AMF3, 0, 0, &[0x06, 0x0F, b'c']);
    assert_eq!(raw.flush(), Err(RtmpError::Amf3Unsupported { type_id: 17 }));
    let mut raw = Raw::publishing(SessionConfig::DEFAULT);
    raw.message(8, DATA_AMF3, 1, 0, &[]);
    assert_eq!(raw.flush(), Err(RtmpError::Amf3Unsupported { type_id: 15 }));
}

#[test]
fn malformed_amf_is_fatal() {
    let mut raw = Raw::connected(SessionConfig::DEFAULT);
    raw.message(
        3,
        crate::message::COMMAND_AMF0,
        0,
        0,
        &[0x02, 0x00, 0x09, b'x'],
    );
    assert_eq!(raw.flush(), Err(RtmpError::Amf(crate::AmfError::Truncated)));
}

/// The server acknowledges every window of bytes the client announced, counting every byte
/// received since the handshake began.
#[test]
fn acknowledgements_at_the_window() {
    let mut raw = Raw::publishing(SessionConfig::DEFAULT);
    raw.message(2, WINDOW_ACK_SIZE, 0, 0, &10_000u32.to_be_bytes());
    raw.flush().unwrap();
    let received = raw.server.bytes_received();
    assert!(received < 10_000);
    let acks = |raw: &Raw| -> Vec<u32> {
        raw.sent_messages()
            .iter()
            .filter(|m| m.type_id == ACKNOWLEDGEMENT)
            .map(|m| u32::from_be_bytes(m.payload[..4].try_into().unwrap()))
            .collect()
    };
    // Fed a byte at a time, an acknowledgement goes out exactly as each window fills.
    raw.message(4, AUDIO, 1, 0, &vec![0; 20_000]);
    let bytes = std::mem::take(&mut raw.writer.out);
    for byte in &bytes {
        raw.feed(std::slice::from_ref(byte)).unwrap();
        let total = raw.server.bytes_received();
        let expected: Vec<u32> = (1..=total / 10_000).map(|n| n as u32 * 10_000).collect();
        assert_eq!(acks(&raw), expected, "after {total} bytes");
    }
    assert_eq!(raw.events.len(), 1);
    // A read that crosses a window gets one acknowledgement, of the total.
    raw.mark();
    raw.message(4, AUDIO, 1, 0, &vec![0; 30_000]);
    raw.flush().unwrap();
    assert_eq!(acks(&raw), [raw.server.bytes_received() as u32]);
    // Acknowledgements and Set Peer Bandwidth from the client are accepted.
    raw.message(2, ACKNOWLEDGEMENT, 0, 0, &5u32.to_be_bytes());
    raw.message(2, SET_PEER_BANDWIDTH, 0, 0, &[0, 0, 1, 0, 2]);
    assert_eq!(raw.flush(), Ok(()));
    raw.message(2, SET_PEER_BANDWIDTH, 0, 0, &[0, 0, 1, 0]);
    assert_eq!(
        raw.flush(),
        Err(RtmpError::MessageTooShort {
            type_id: SET_PEER_BANDWIDTH,
            len: 4
        })
    );
}

#[test]
fn ping_requests_are_answered() {
    let mut raw = Raw::connected(SessionConfig::DEFAULT);
    raw.message(2, USER_CONTROL, 0, 0, &[0, 6, 0xDE, 0xAD, 0xBE, 0xEF]);
    // Set Buffer Length (librtmp sends it after connect) needs no answer.
    raw.message(2, USER_CONTROL, 0, 0, &[0, 3, 0, 0, 0, 1, 0, 0, 0x0B, 0xB8]);
    raw.flush().unwrap();
    let sent = raw.sent_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(&sent[0].payload[..], [0, 7, 0xDE, 0xAD, 0xBE, 0xEF]);
    raw.message(2, USER_CONTROL, 0, 0, &[0, 6, 0]);
    assert_eq!(
        raw.flush(),
        Err(RtmpError::MessageTooShort {
            type_id: USER_CONTROL,
            len: 3
        })
    );
}

#[test]
fn aggregate_messages_are_split() {
    let mut raw = Raw::publishing(SessionConfig::DEFAULT);
    // Two sub-messages: video at offset 1000 and audio at 1040, with back pointers.
    let mut aggregate = Vec::new();
    for (type_id, ts, body) in [(VIDEO, 1000u32, &b"vv"[..]), (AUDIO, 1040, &b"a"[..])] {
        aggregate.push(type_id);
        aggregate.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        aggregate.extend_from_slice(&ts.to_be_bytes()[1..]);
        aggregate.push((ts >> 24) as u8);
        aggregate.extend_from_slice(&[0, 0, 1]);
        aggregate.extend_from_slice(body);
        aggregate.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
    }
    raw.message(4, AGGREGATE, 1, 500, &aggregate);
    raw.flush().unwrap();
    assert_eq!(
        raw.events,
        [
            Event::Video {
                stream_id: 1,
                timestamp_ms: 500,
                payload: Bytes::from_static(b"vv")
            },
            Event::Audio {
                stream_id: 1,
                timestamp_ms: 540,
                payload: Bytes::from_static(b"a")
            },
        ]
    );
    raw.message(4, AGGREGATE, 1, 500, &aggregate[..aggregate.len() - 5]);
    assert_eq!(
        raw.flush(),
        Err(RtmpError::ProtocolViolation(
            "an aggregate sub-message is truncated"
        ))
    );
}

/// A client and a server agree on everything, with chunks split at random points: the client
/// sees Connected and Publishing, the server the publish, and unpublishing is reported.
#[test]
fn client_and_server_pair() {
    let mut pair = Pair::new(SessionConfig::DEFAULT, ClientConfig::new("app", "stream"));
    pair.rng = Some(Rng(99));
    pair.drive();
    assert_eq!(
        pair.client_events,
        [
            ClientEvent::Connected,
            ClientEvent::Publishing { stream_id: 1 }
        ]
    );
    assert_eq!(pair.server.peer_chunk_size(), 4096);
    pair.client.send_audio(0, b"x").unwrap();
    pair.client.unpublish();
    pair.drive();
    assert_eq!(
        pair.media_events(),
        [
            Event::Audio {
                stream_id: 1,
                timestamp_ms: 0,
                payload: Bytes::from_static(b"x")
            },
            Event::Unpublished { stream_id: 1 }
        ]
    );
}

use bytes::Bytes;

/// A peer-chosen stream name is reported whole but echoed clipped, at a character boundary,
/// so no name can make an answer outgrow the send queue or the message length field.
#[test]
fn long_names_are_clipped_in_answers() {
    let config = SessionConfig {
        command_max_bytes: 1 << 20,
        partial_max_bytes_before_publish: 1 << 20,
        ..SessionConfig::DEFAULT
    };
    let mut raw = Raw::connected(config);
    let name = "é".repeat(300_000);
    raw.command(0, &call("FCPublish", 3.0, &[name.as_str().into()]));
    raw.command(0, &call("createStream", 4.0, &[]));
    raw.command(1, &call("publish", 5.0, &[name.as_str().into()]));
    raw.flush().unwrap();
    assert!(matches!(&raw.events[0], Event::PublishRequested { name: n, .. } if *n == name));
    raw.server.accept_publish(1).unwrap();
    raw.server
        .send_status(1, StatusLevel::Warning, &"c".repeat(5000), &name);
    raw.feed(&[]).unwrap();
    let mut sent = raw.sent_messages();
    sent.retain(|m| m.type_id == crate::message::COMMAND_AMF0);
    assert_eq!(
        command_names(&sent),
        ["onFCPublish", "_result", "_result", "onStatus", "onStatus"]
    );
    let clipped = "é".repeat(crate::NOTICE_TEXT_MAX_BYTES / 2);
    let info = |i: usize| values_of(&sent[i])[3].as_object().unwrap().clone();
    assert_eq!(info(0).get_str("description"), Some(clipped.as_str()));
    assert_eq!(info(3).get_str("details"), Some(clipped.as_str()));
    // The description is the clipped name plus a sentence, clipped again.
    assert_eq!(info(3).get_str("description"), Some(clipped.as_str()));
    assert_eq!(info(4).get_str("code").map(str::len), Some(1024));
    assert_eq!(info(4).get_str("description"), Some(clipped.as_str()));
    assert!(sent.iter().all(|m| m.payload.len() < 4 * 1024));
}
