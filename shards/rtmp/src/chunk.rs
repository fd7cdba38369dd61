//! The chunk stream (RTMP 1.0 §5.3): [`ChunkDecoder`] reassembles the peer's messages from
//! chunks, [`ChunkEncoder`] splits messages into chunks with the smallest headers that
//! describe them.
//!
//! Timestamp rules, shared by both sides and by ffmpeg, librtmp and SRS:
//!
//! - A type 0 header carries the message's absolute timestamp; types 1 and 2 carry a delta
//!   from the previous message's timestamp on the same chunk stream; a type 3 header that
//!   starts a message repeats the previous "timestamp field": the delta of the last type 1 or 2
//!   header, or the absolute timestamp of the last type 0 header (§5.3.1.2.4).
//! - A field of 0xFFFFFF means the value is in a four-byte extended timestamp after the
//!   message header (§5.3.1.3). Type 3 chunks carry the extended timestamp too when the last
//!   type 0, 1 or 2 header of their chunk stream did, continuation chunks included: that is what
//!   the specification says and what ffmpeg, librtmp (OBS) and Flash send.
//! - Timestamps are 32-bit milliseconds; deltas are added modulo 2^32.

use bytes::{Bytes, BytesMut};

use crate::config::{CHUNK_SIZE_DEFAULT, PARTIAL_BYTES_CEILING};
use crate::message::{be_u32, is_amf, ABORT, SET_CHUNK_SIZE};
use crate::{RtmpError, SessionConfig};

/// The longest chunk header: a three-byte basic header, an 11-byte type 0 message header and
/// a four-byte extended timestamp.
pub(crate) const CHUNK_HEADER_MAX_BYTES: usize = 3 + 11 + 4;

/// The message header length of each chunk type.
const MESSAGE_HEADER_BYTES: [usize; 4] = [11, 7, 3, 0];

/// A timestamp field of this value means "see the extended timestamp".
const EXTENDED: u32 = 0xFF_FFFF;

/// The lowest and highest chunk stream ids a chunk can name (0 and 1 select the two- and
/// three-byte basic header forms).
pub(crate) const CHUNK_STREAM_ID_MIN: u32 = 2;
pub(crate) const CHUNK_STREAM_ID_MAX: u32 = 65_599;

/// A whole message, reassembled from its chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) chunk_stream_id: u32,
    pub(crate) type_id: u8,
    pub(crate) stream_id: u32,
    /// The message's timestamp, with deltas applied (modulo 2^32).
    pub(crate) timestamp: u32,
    pub(crate) payload: Bytes,
}

/// The caps a [`ChunkDecoder`] enforces: a subset of [`SessionConfig`].
#[derive(Clone, Copy, Debug)]
struct Limits {
    chunk_size_max: u32,
    message_max_bytes: usize,
    command_max_bytes: usize,
    chunk_streams_max: usize,
    /// The cap in force: `partial_max_bytes` unless the owner lowered it with
    /// [`ChunkDecoder::set_partial_max_bytes`].
    partial_max_bytes: usize,
}

/// Reassembles messages from the chunks one peer sends.
///
/// It handles Set Chunk Size and Abort Message itself, since they change how the following
/// chunks are read, and returns every other message. It consumes its input completely: up to
/// [`CHUNK_HEADER_MAX_BYTES`] of a split chunk header are kept in a fixed array, and payload
/// bytes are copied straight into the buffer of their message, which was reserved at the
/// message's announced length and becomes the returned `Bytes` without another copy.
#[derive(Debug)]
pub(crate) struct ChunkDecoder {
    limits: Limits,
    chunk_size: u32,
    streams: Vec<ChunkStream>,
    /// The index in `streams` of the last chunk stream used: most chunks continue it.
    last: usize,
    header: [u8; CHUNK_HEADER_MAX_BYTES],
    header_len: usize,
    /// While a chunk's payload is being read: its chunk stream's index and the payload bytes
    /// left in the chunk (never zero).
    payload: Option<(usize, usize)>,
    /// The sum of the announced lengths of unfinished messages.
    partial_bytes: usize,
}

/// What a decoder remembers about one chunk stream.
#[derive(Debug)]
struct ChunkStream {
    id: u32,
    /// The timestamp of the latest message started.
    timestamp: u32,
    /// What a type 3 header that starts a message adds: the last type 0 header's timestamp
    /// or the last type 1 or 2 header's delta.
    timestamp_field: u32,
    /// Whether the last type 0, 1 or 2 header used an extended timestamp, and so every
    /// type 3 chunk until the next such header carries one.
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The message being reassembled, with capacity for all `length` bytes.
    message: Option<BytesMut>,
}

impl ChunkDecoder {
    pub(crate) fn new(config: &SessionConfig) -> Self {
        Self {
            limits: Limits {
                chunk_size_max: config.chunk_size_max,
                message_max_bytes: config.message_max_bytes,
                command_max_bytes: config.command_max_bytes,
                chunk_streams_max: config.chunk_streams_max,
                partial_max_bytes: config.partial_max_bytes,
            },
            chunk_size: CHUNK_SIZE_DEFAULT,
            streams: Vec::new(),
            last: 0,
            header: [0; CHUNK_HEADER_MAX_BYTES],
            header_len: 0,
            payload: None,
            partial_bytes: 0,
        }
    }

    /// Sets the cap on bytes reserved for unfinished messages, which starts at
    /// `partial_max_bytes`. It applies to messages started from now on; those already started
    /// keep their reservation, so lower it only before any chunk arrives.
    pub(crate) fn set_partial_max_bytes(&mut self, max: usize) {
        assert!(max <= PARTIAL_BYTES_CEILING, "partial cap {max}");
        assert!(
            max >= self.limits.partial_max_bytes || self.partial_bytes == 0,
            "the partial cap is lowered below {} bytes already reserved",
            self.partial_bytes
        );
        self.limits.partial_max_bytes = max;
    }

    /// The cap on bytes reserved for unfinished messages in force now.
    pub(crate) fn partial_max_bytes(&self) -> usize {
        self.limits.partial_max_bytes
    }

    /// The chunk size the peer uses now.
    pub(crate) fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Bytes held for unfinished messages (their reserved lengths) and a split header.
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.partial_bytes + self.header_len
    }

    /// The number of distinct chunk streams seen.
    pub(crate) fn chunk_stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Drops every unfinished message, releasing its memory; used when the session ends.
    pub(crate) fn clear(&mut self) {
        self.streams = Vec::new();
        self.partial_bytes = 0;
        self.header_len = 0;
        self.payload = None;
    }

    /// Consumes bytes from the front of `input` until a message completes or the input runs
    /// out. Returns the message, or `None` with `input` empty.
    pub(crate) fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Message>, RtmpError> {
        loop {
            if let Some((index, left)) = self.payload {
                let take = left.min(input.len());
                let (front, back) = input.split_at(take);
                *input = back;
                let stream = &mut self.streams[index];
                let message = stream
                    .message
                    .as_mut()
                    .expect("a chunk payload belongs to an unfinished message");
                message.extend_from_slice(front);
                if take < left {
                    self.payload = Some((index, left - take));
                    return Ok(None);
                }
                self.payload = None;
                if message.len() == stream.length as usize {
                    if let Some(message) = self.complete(index)? {
                        return Ok(Some(message));
                    }
                }
                continue;
            }
            let need = self.header_need();
            if self.header_len < need {
                let take = (need - self.header_len).min(input.len());
                let (front, back) = input.split_at(take);
                *input = back;
                self.header[self.header_len..self.header_len + take].copy_from_slice(front);
                self.header_len += take;
                if self.header_len < need {
                    return Ok(None);
                }
                // The length needed may grow now that more of the header is known.
                continue;
            }
            if let Some(message) = self.start_chunk()? {
                return Ok(Some(message));
            }
        }
    }

    /// How long the header being read is, as far as its bytes so far tell.
    fn header_need(&self) -> usize {
        let h = &self.header[..self.header_len];
        let Some(&first) = h.first() else {
            return 1;
        };
        let basic = basic_header_len(first);
        if h.len() < basic {
            return basic;
        }
        let fmt = usize::from(first >> 6);
        let fixed = basic + MESSAGE_HEADER_BYTES[fmt];
        if h.len() < fixed {
            return fixed;
        }
        let extended = if fmt < 3 {
            u24(&h[basic..]) == EXTENDED
        } else {
            self.find(chunk_stream_id(h))
                .is_some_and(|index| self.streams[index].extended)
        };
        fixed + if extended { 4 } else { 0 }
    }

    /// Acts on a complete chunk header: continues or starts a message on its chunk stream.
    fn start_chunk(&mut self) -> Result<Option<Message>, RtmpError> {
        let header = self.header;
        let len = self.header_len;
        self.header_len = 0;
        let h = &header[..len];
        let fmt = h[0] >> 6;
        let id = chunk_stream_id(h);
        let basic = basic_header_len(h[0]);
        let fixed = basic + MESSAGE_HEADER_BYTES[usize::from(fmt)];
        let extended = (len > fixed).then(|| be_u32(&h[fixed..]).expect("four bytes"));
        let m = &h[basic..fixed];
        let index = self.stream_index(id, fmt)?;
        let chunk_size = self.chunk_size as usize;
        let stream = &mut self.streams[index];
        if let Some(message) = &stream.message {
            if fmt != 3 {
                return Err(RtmpError::ProtocolViolation(
                    "a new message header inside an unfinished message",
                ));
            }
            let left = stream.length as usize - message.len();
            self.payload = Some((index, left.min(chunk_size)));
            return Ok(None);
        }
        match fmt {
            0 => {
                let field = u24(m);
                let timestamp = if field == EXTENDED {
                    extended.expect("extended timestamp read")
                } else {
                    field
                };
                stream.timestamp = timestamp;
                stream.timestamp_field = timestamp;
                stream.extended = field == EXTENDED;
                stream.length = u24(&m[3..]);
                stream.type_id = m[6];
                stream.stream_id = u32::from_le_bytes([m[7], m[8], m[9], m[10]]);
            }
            1 | 2 => {
                let field = u24(m);
                let delta = if field == EXTENDED {
                    extended.expect("extended timestamp read")
                } else {
                    field
                };
                stream.timestamp = stream.timestamp.wrapping_add(delta);
                stream.timestamp_field = delta;
                stream.extended = field == EXTENDED;
                if fmt == 1 {
                    stream.length = u24(&m[3..]);
                    stream.type_id = m[6];
                }
            }
            _ => {
                // A new message with everything repeated, including the delta; the extended
                // timestamp, when present, is that delta.
                let delta = extended.unwrap_or(stream.timestamp_field);
                stream.timestamp = stream.timestamp.wrapping_add(delta);
                stream.timestamp_field = delta;
            }
        }
        let length = stream.length as usize;
        let type_id = stream.type_id;
        if length > self.limits.message_max_bytes {
            return Err(RtmpError::MessageTooLarge {
                limit: self.limits.message_max_bytes,
                seen: length,
            });
        }
        if is_amf(type_id) && length > self.limits.command_max_bytes {
            return Err(RtmpError::CommandTooLarge {
                limit: self.limits.command_max_bytes,
                seen: length,
            });
        }
        let reserved = self.partial_bytes + length;
        if reserved > self.limits.partial_max_bytes {
            return Err(RtmpError::PartialBytesTooLarge {
                limit: self.limits.partial_max_bytes,
                seen: reserved,
            });
        }
        self.partial_bytes = reserved;
        self.streams[index].message = Some(BytesMut::with_capacity(length));
        if length == 0 {
            return self.complete(index);
        }
        self.payload = Some((index, length.min(chunk_size)));
        Ok(None)
    }

    /// The index of chunk stream `id`, adding it if this chunk may open it.
    fn stream_index(&mut self, id: u32, fmt: u8) -> Result<usize, RtmpError> {
        if let Some(index) = self.find(id) {
            self.last = index;
            return Ok(index);
        }
        if fmt != 0 {
            return Err(RtmpError::ProtocolViolation(
                "the first chunk of a chunk stream is not type 0",
            ));
        }
        if self.streams.len() == self.limits.chunk_streams_max {
            return Err(RtmpError::TooManyChunkStreams {
                limit: self.limits.chunk_streams_max,
                seen: self.streams.len() + 1,
            });
        }
        self.streams.push(ChunkStream {
            id,
            timestamp: 0,
            timestamp_field: 0,
            extended: false,
            length: 0,
            type_id: 0,
            stream_id: 0,
            message: None,
        });
        self.last = self.streams.len() - 1;
        Ok(self.last)
    }

    fn find(&self, id: u32) -> Option<usize> {
        if self.streams.get(self.last).is_some_and(|s| s.id == id) {
            return Some(self.last);
        }
        self.streams.iter().position(|s| s.id == id)
    }

    /// Finishes the message on chunk stream `index`: applies it if it is Set Chunk Size or
    /// Abort, returns it otherwise.
    fn complete(&mut self, index: usize) -> Result<Option<Message>, RtmpError> {
        let stream = &mut self.streams[index];
        let payload = stream.message.take().expect("a complete message").freeze();
        debug_assert_eq!(payload.len(), stream.length as usize);
        self.partial_bytes -= payload.len();
        let message = Message {
            chunk_stream_id: stream.id,
            type_id: stream.type_id,
            stream_id: stream.stream_id,
            timestamp: stream.timestamp,
            payload,
        };
        match message.type_id {
            SET_CHUNK_SIZE => {
                let size = control_u32(&message)?;
                if size == 0 || size & 0x8000_0000 != 0 {
                    return Err(RtmpError::InvalidChunkSize { seen: size });
                }
                if size > self.limits.chunk_size_max {
                    return Err(RtmpError::ChunkSizeTooLarge {
                        limit: self.limits.chunk_size_max,
                        seen: size,
                    });
                }
                self.chunk_size = size;
                Ok(None)
            }
            ABORT => {
                let id = control_u32(&message)?;
                if let Some(index) = self.find(id) {
                    if self.streams[index].message.take().is_some() {
                        self.partial_bytes -= self.streams[index].length as usize;
                    }
                }
                Ok(None)
            }
            _ => Ok(Some(message)),
        }
    }
}

/// The first four bytes of a protocol control message, which must have them.
pub(crate) fn control_u32(message: &Message) -> Result<u32, RtmpError> {
    be_u32(&message.payload).ok_or(RtmpError::MessageTooShort {
        type_id: message.type_id,
        len: message.payload.len(),
    })
}

/// The basic header's length, from its first byte (§5.3.1.1).
fn basic_header_len(first: u8) -> usize {
    match first & 0x3F {
        0 => 2,
        1 => 3,
        _ => 1,
    }
}

/// The chunk stream id of a header whose basic header is complete.
fn chunk_stream_id(h: &[u8]) -> u32 {
    match h[0] & 0x3F {
        0 => 64 + u32::from(h[1]),
        1 => 64 + u32::from(h[1]) + 256 * u32::from(h[2]),
        id => u32::from(id),
    }
}

fn u24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

/// Splits messages into chunks for one peer, choosing for each message the smallest header
/// type that the peer's decoder state makes unambiguous.
#[derive(Debug)]
pub(crate) struct ChunkEncoder {
    chunk_size: u32,
    streams: Vec<EncoderStream>,
    /// How many messages started with each header type, and how many headers (first chunks
    /// and continuations) carried an extended timestamp: tests check they cover every case.
    #[cfg(test)]
    pub(crate) stats: ([u64; 4], u64),
}

/// What the peer's decoder remembers about one chunk stream, mirrored.
#[derive(Clone, Copy, Debug)]
struct EncoderStream {
    id: u32,
    /// Whether a message was written on this chunk stream: until then only type 0 will do.
    started: bool,
    timestamp: u32,
    timestamp_field: u32,
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

impl ChunkEncoder {
    pub(crate) fn new() -> Self {
        Self {
            chunk_size: CHUNK_SIZE_DEFAULT,
            streams: Vec::new(),
            #[cfg(test)]
            stats: ([0; 4], 0),
        }
    }

    /// The chunk size used for chunks written from now on. The caller sends the Set Chunk
    /// Size message that tells the peer, before any chunk written after this call.
    pub(crate) fn set_chunk_size(&mut self, size: u32) {
        assert!(
            (1..=crate::config::CHUNK_SIZE_CEILING).contains(&size),
            "chunk size {size}"
        );
        self.chunk_size = size;
    }

    pub(crate) fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Appends `payload` as one message, in chunks, to `out`. When `boundaries` is given, the
    /// offset in `out` where each chunk ends is pushed to it, so the chunks can be interleaved
    /// with those of other chunk streams.
    ///
    /// # Panics
    ///
    /// If `csid` is outside 2..=65599 or the payload is longer than 0xFFFFFF bytes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn encode(
        &mut self,
        csid: u32,
        type_id: u8,
        stream_id: u32,
        timestamp: u32,
        payload: &[u8],
        out: &mut Vec<u8>,
        mut boundaries: Option<&mut Vec<usize>>,
    ) {
        assert!(
            (CHUNK_STREAM_ID_MIN..=CHUNK_STREAM_ID_MAX).contains(&csid),
            "chunk stream id {csid}"
        );
        let length = u32::try_from(payload.len())
            .ok()
            .filter(|&len| len <= EXTENDED)
            .expect("message length fits 24 bits");
        let index = match self.streams.iter().position(|s| s.id == csid) {
            Some(index) => index,
            None => {
                self.streams.push(EncoderStream {
                    id: csid,
                    started: false,
                    timestamp: 0,
                    timestamp_field: 0,
                    extended: false,
                    length: 0,
                    type_id: 0,
                    stream_id: 0,
                });
                self.streams.len() - 1
            }
        };
        let prev = self.streams[index];
        let fmt: u8 = if !prev.started || prev.stream_id != stream_id || timestamp < prev.timestamp
        {
            0
        } else if prev.length != length || prev.type_id != type_id {
            1
        } else if timestamp - prev.timestamp != prev.timestamp_field {
            2
        } else {
            3
        };
        let field = if fmt == 0 {
            timestamp
        } else {
            timestamp.wrapping_sub(prev.timestamp)
        };
        let stream = &mut self.streams[index];
        if fmt < 3 {
            stream.timestamp_field = field;
            stream.extended = field >= EXTENDED;
        }
        stream.started = true;
        stream.timestamp = timestamp;
        stream.length = length;
        stream.type_id = type_id;
        stream.stream_id = stream_id;
        let stream = *stream;

        #[cfg(test)]
        {
            self.stats.0[usize::from(fmt)] += 1;
            if stream.extended {
                self.stats.1 += payload.len().div_ceil(self.chunk_size as usize).max(1) as u64;
            }
        }
        write_basic_header(out, fmt, csid);
        let field_bytes = stream.timestamp_field.min(EXTENDED).to_be_bytes();
        match fmt {
            0 => {
                out.extend_from_slice(&field_bytes[1..]);
                out.extend_from_slice(&length.to_be_bytes()[1..]);
                out.push(type_id);
                out.extend_from_slice(&stream_id.to_le_bytes());
            }
            1 => {
                out.extend_from_slice(&field_bytes[1..]);
                out.extend_from_slice(&length.to_be_bytes()[1..]);
                out.push(type_id);
            }
            2 => out.extend_from_slice(&field_bytes[1..]),
            _ => {}
        }
        if stream.extended {
            out.extend_from_slice(&stream.timestamp_field.to_be_bytes());
        }
        let mut chunks = payload.chunks(self.chunk_size as usize);
        if let Some(first) = chunks.next() {
            out.extend_from_slice(first);
        }
        if let Some(b) = boundaries.as_deref_mut() {
            b.push(out.len());
        }
        for chunk in chunks {
            write_basic_header(out, 3, csid);
            if stream.extended {
                out.extend_from_slice(&stream.timestamp_field.to_be_bytes());
            }
            out.extend_from_slice(chunk);
            if let Some(b) = boundaries.as_deref_mut() {
                b.push(out.len());
            }
        }
    }
}

fn write_basic_header(out: &mut Vec<u8>, fmt: u8, csid: u32) {
    let fmt = fmt << 6;
    match csid {
        2..=63 => out.push(fmt | csid as u8),
        64..=319 => out.extend_from_slice(&[fmt, (csid - 64) as u8]),
        _ => {
            let rest = csid - 64;
            out.extend_from_slice(&[fmt | 1, rest as u8, (rest >> 8) as u8]);
        }
    }
}

#[cfg(test)]
mod tests;
