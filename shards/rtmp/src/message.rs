//! Message type ids, user control events, well-known chunk stream ids, and writers for the
//! protocol control, user control and command messages both session kinds send
//! (RTMP 1.0 §5.4, §6, §7).

use crate::amf0::{encode_all, Amf0Value};
use crate::chunk::ChunkEncoder;

/// Set Chunk Size (§5.4.1).
pub(crate) const SET_CHUNK_SIZE: u8 = 1;
/// Abort Message (§5.4.2).
pub(crate) const ABORT: u8 = 2;
/// Acknowledgement (§5.4.3).
pub(crate) const ACKNOWLEDGEMENT: u8 = 3;
/// User Control Message (§6.2).
pub(crate) const USER_CONTROL: u8 = 4;
/// Window Acknowledgement Size (§5.4.4).
pub(crate) const WINDOW_ACK_SIZE: u8 = 5;
/// Set Peer Bandwidth (§5.4.5).
pub(crate) const SET_PEER_BANDWIDTH: u8 = 6;
/// Audio data: an FLV audio tag body.
pub(crate) const AUDIO: u8 = 8;
/// Video data: an FLV video tag body.
pub(crate) const VIDEO: u8 = 9;
/// Data message, AMF3 envelope.
pub(crate) const DATA_AMF3: u8 = 15;
/// Command message, AMF3 envelope.
pub(crate) const COMMAND_AMF3: u8 = 17;
/// Data message, AMF0 (`@setDataFrame`, `onMetaData`).
pub(crate) const DATA_AMF0: u8 = 18;
/// Command message, AMF0 (`connect`, `publish`, …).
pub(crate) const COMMAND_AMF0: u8 = 20;
/// Aggregate message: FLV-tag-like sub-messages in one message (§7.1.6).
pub(crate) const AGGREGATE: u8 = 22;

/// Whether messages of this type are AMF, and so fall under
/// [`SessionConfig::command_max_bytes`](crate::SessionConfig::command_max_bytes).
pub(crate) fn is_amf(type_id: u8) -> bool {
    matches!(type_id, DATA_AMF3 | COMMAND_AMF3 | DATA_AMF0 | COMMAND_AMF0)
}

/// User control event: a stream became functional (§7.1.7).
pub(crate) const STREAM_BEGIN: u16 = 0;
/// User control event: the peer asks for a ping response.
pub(crate) const PING_REQUEST: u16 = 6;
/// User control event: the answer to a ping request.
pub(crate) const PING_RESPONSE: u16 = 7;

/// The chunk stream protocol control messages must use (§5.4).
pub(crate) const CSID_CONTROL: u32 = 2;
/// The chunk stream for NetConnection commands and their answers (what SRS and nginx-rtmp use).
pub(crate) const CSID_COMMAND: u32 = 3;
/// The chunk stream for NetStream commands and `onStatus` notices.
pub(crate) const CSID_STREAM: u32 = 5;

/// Set Peer Bandwidth limit type "dynamic" (§5.4.5).
const LIMIT_DYNAMIC: u8 = 2;

/// Writes whole messages into one growing send buffer through a [`ChunkEncoder`].
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) encoder: ChunkEncoder,
    pub(crate) out: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self {
            encoder: ChunkEncoder::new(),
            out: Vec::new(),
        }
    }

    /// A protocol control message on chunk stream 2, message stream 0.
    pub(crate) fn control(&mut self, type_id: u8, payload: &[u8]) {
        self.encoder
            .encode(CSID_CONTROL, type_id, 0, 0, payload, &mut self.out, None);
    }

    /// Set Chunk Size, which applies to every chunk written after it.
    pub(crate) fn set_chunk_size(&mut self, size: u32) {
        self.control(SET_CHUNK_SIZE, &size.to_be_bytes());
        self.encoder.set_chunk_size(size);
    }

    pub(crate) fn window_ack_size(&mut self, size: u32) {
        self.control(WINDOW_ACK_SIZE, &size.to_be_bytes());
    }

    pub(crate) fn set_peer_bandwidth(&mut self, size: u32) {
        let b = size.to_be_bytes();
        self.control(SET_PEER_BANDWIDTH, &[b[0], b[1], b[2], b[3], LIMIT_DYNAMIC]);
    }

    pub(crate) fn acknowledgement(&mut self, sequence: u32) {
        self.control(ACKNOWLEDGEMENT, &sequence.to_be_bytes());
    }

    /// A user control event with a four-byte argument (a stream id or a timestamp).
    pub(crate) fn user_control(&mut self, event: u16, argument: u32) {
        let e = event.to_be_bytes();
        let a = argument.to_be_bytes();
        self.control(USER_CONTROL, &[e[0], e[1], a[0], a[1], a[2], a[3]]);
    }

    /// An AMF0 command message: `values` are the name, the transaction id, and the rest.
    pub(crate) fn command(&mut self, csid: u32, stream_id: u32, values: &[Amf0Value]) {
        let mut payload = Vec::new();
        encode_all(values, &mut payload);
        self.encoder.encode(
            csid,
            COMMAND_AMF0,
            stream_id,
            0,
            &payload,
            &mut self.out,
            None,
        );
    }
}

/// A command message split into its standard parts (§7.1.1): the name, the transaction id,
/// the command object, and the optional arguments.
#[derive(Debug)]
pub(crate) struct Command {
    pub(crate) name: String,
    /// The transaction id; 0 when absent or not a number (some senders omit it on
    /// notifications).
    pub(crate) transaction_id: f64,
    pub(crate) object: Amf0Value,
    pub(crate) args: Vec<Amf0Value>,
}

impl Command {
    /// Splits decoded values into a command; `None` when the first value is not a string.
    pub(crate) fn from_values(values: Vec<Amf0Value>) -> Option<Command> {
        let mut values = values.into_iter();
        let name = match values.next() {
            Some(Amf0Value::String(name)) => name,
            _ => return None,
        };
        let transaction_id = values
            .next()
            .and_then(|v| v.as_number())
            .filter(|n| n.is_finite())
            .unwrap_or(0.0);
        let object = values.next().unwrap_or(Amf0Value::Null);
        Some(Command {
            name,
            transaction_id,
            object,
            args: values.collect(),
        })
    }
}

/// The four-byte big-endian number at the start of a control message payload.
pub(crate) fn be_u32(payload: &[u8]) -> Option<u32> {
    let b = payload.get(..4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A stream id carried as an AMF0 number: a whole number that fits 32 bits.
pub(crate) fn stream_id_of(value: &Amf0Value) -> Option<u32> {
    let n = value.as_number()?;
    (n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n)).then_some(n as u32)
}
