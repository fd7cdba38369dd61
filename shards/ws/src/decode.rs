//! Frame decoding: [`Decoder`], [`Event`] and [`MessageKind`].

use crate::{
    CloseCode, Limits, Opcode, WsError, CONTROL_PAYLOAD_MAX_BYTES, FRAME_HEADER_MAX_BYTES,
};

/// The longest masked frame header: an unmasked one plus the four-byte masking key.
const MASKED_HEADER_MAX_BYTES: usize = FRAME_HEADER_MAX_BYTES + 4;

/// Decodes the frames one client sends on one WebSocket connection.
///
/// # Call order
///
/// 1. Create one per connection with [`new`](Self::new), right after the 101 response.
/// 2. Call [`decode`](Self::decode) with each run of received bytes, in order, starting with
///    any bytes that arrived after the handshake head. Every call consumes all of its input:
///    the caller keeps nothing and may hand a pooled receive buffer back as soon as the call
///    returns. Events come out through the callback while the call runs, in stream order, and
///    borrow from the input's decoded copy: act on them (or copy) inside the callback.
/// 3. After the callback has seen [`Event::Close`], the decoder is finished: the rest of that
///    input and every later call are ignored. Answer as
///    [`CloseHandshake`](crate::CloseHandshake) says.
/// 4. After `decode` returns an `Err`, the decoder is finished as well and ignores later
///    input: send a Close with [`WsError::close_code`] and close the connection.
///
/// # Memory
///
/// Frames that arrive whole within one call are unmasked into the caller's `scratch` buffer,
/// which a shard shares among all its connections, so the fast path allocates nothing per
/// connection. Only what spans calls is kept here: up to 14 bytes of a split frame header in a
/// fixed array, and, in a buffer allocated for the purpose, the unmasked bytes of a split frame
/// or of a fragmented message. That buffer is freed (not just cleared) as soon as its message
/// or control frame completes, so an idle connection costs `size_of::<Decoder>()`, about 100
/// bytes, and a busy one at most [`Limits::message_max_bytes`] + 125 more.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    phase: Phase,
    /// The data message in progress: from its first frame's header until its last frame ends.
    message: Option<Message>,
    /// The bytes of a frame header split across calls; empty while `header_len` is 0.
    header: [u8; MASKED_HEADER_MAX_BYTES],
    header_len: u8,
    /// Unmasked bytes kept between calls: the message in progress, then the received part of
    /// the current control frame if one is split. Empty, with no allocation, otherwise.
    pending: Vec<u8>,
}

/// What the next input bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A frame header (or its rest, when `header_len` > 0).
    Header,
    /// The payload of this frame.
    Payload(Frame),
    /// The peer's Close was reported; input is ignored.
    Closed,
    /// An error was returned; input is ignored.
    Failed,
}

/// A frame whose header has been read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Frame {
    opcode: Opcode,
    fin: bool,
    mask: [u8; 4],
    /// The payload length, within the caps.
    len: usize,
    /// Payload bytes received so far.
    received: usize,
}

/// A data message being reassembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Message {
    kind: MessageKind,
    /// Bytes received so far, including the received part of a data frame in progress.
    len: usize,
    /// For text: the bytes before this offset are valid UTF-8 and end on a character boundary;
    /// the (at most three) bytes after it are the start of a character still to be completed.
    utf8_checked: usize,
}

/// Whether a message is text or binary (its first frame's opcode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text; the decoder has checked the encoding.
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// What a client sent, as reported by [`Decoder::decode`].
///
/// Payloads borrow from the decoder's working buffer and last only for the callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete message, reassembled from its fragments and unmasked. A `Text` payload is
    /// valid UTF-8.
    Message {
        /// Text or binary.
        kind: MessageKind,
        /// The whole message, at most [`Limits::message_max_bytes`].
        payload: &'a [u8],
    },
    /// A ping (at most 125 bytes). Answer with a pong carrying the same payload
    /// ([`pong_frame`](crate::pong_frame)) soon; when several pings arrive before the answer
    /// is sent, answering the last is enough (RFC 6455 §5.5.3).
    Ping(&'a [u8]),
    /// A pong (at most 125 bytes): an answer to a ping, or an unsolicited heartbeat.
    Pong(&'a [u8]),
    /// The client's Close. The decoder ignores everything after it; see
    /// [`CloseHandshake::handle_close`](crate::CloseHandshake::handle_close) for the answer.
    Close {
        /// The close code; `None` when the frame had no payload. Always allowed on the wire
        /// (see [`CloseCode::new`]), so never 1005.
        code: Option<u16>,
        /// The reason, checked as UTF-8; empty when there is none.
        reason: &'a str,
    },
}

impl Decoder {
    /// A decoder for a new connection.
    ///
    /// # Panics
    ///
    /// If `limits` fails [`Limits::validate`]; configuration loading should have refused it.
    pub fn new(limits: Limits) -> Self {
        if let Err(error) = limits.validate() {
            panic!("invalid WebSocket limits: {error}");
        }
        Self {
            limits,
            phase: Phase::Header,
            message: None,
            header: [0; MASKED_HEADER_MAX_BYTES],
            header_len: 0,
            pending: Vec::new(),
        }
    }

    /// The caps this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the decoder has reported the peer's Close or returned an error, and so ignores
    /// further input.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Closed | Phase::Failed)
    }

    /// Unmasked bytes kept for this connection between calls: a fragmented message's frames
    /// so far and the received part of a split frame. Zero between messages.
    pub fn buffered_bytes(&self) -> usize {
        self.pending.len()
    }

    /// The capacity of this connection's own buffer: what it actually costs, and zero
    /// whenever nothing is kept.
    pub fn buffered_capacity_bytes(&self) -> usize {
        self.pending.capacity()
    }

    /// Decodes all of `input`, calling `on_event` for each message and control frame
    /// completed by it; see the type's documentation for the order of calls.
    ///
    /// `scratch` is a working buffer that the caller shares among the connections of a shard:
    /// frames that arrive whole are unmasked into it and reported from it, so its capacity is
    /// reused from call to call. Its contents on entry are discarded and on return are
    /// unspecified. This decoder grows it to at most [`Limits::message_max_bytes`] + 125
    /// bytes.
    ///
    /// Events reported before an error stand: the bytes that carried them were valid.
    pub fn decode(
        &mut self,
        input: &[u8],
        scratch: &mut Vec<u8>,
        mut on_event: impl FnMut(Event<'_>),
    ) -> Result<(), WsError> {
        if self.is_finished() {
            return Ok(());
        }
        scratch.clear();
        let own = std::mem::take(&mut self.pending);
        let mut work = Work {
            in_own: !own.is_empty(),
            own,
            scratch,
            max_bytes: self.limits.buffer_max_bytes(),
        };
        let result = self.run(input, &mut work, &mut on_event);
        if let Err(error) = result {
            self.phase = Phase::Failed;
            self.message = None;
            self.header_len = 0;
            return Err(error);
        }
        if self.is_finished() {
            self.message = None;
            self.header_len = 0;
        } else {
            let frame_rest = match self.phase {
                Phase::Payload(frame) => frame.len - frame.received,
                _ => 0,
            };
            self.pending = work.keep(frame_rest);
        }
        self.check_invariants();
        Ok(())
    }

    fn run(
        &mut self,
        mut input: &[u8],
        work: &mut Work<'_>,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<(), WsError> {
        loop {
            match self.phase {
                Phase::Header if input.is_empty() => return Ok(()),
                Phase::Header => {
                    let Some((frame, consumed)) = self.read_header(input)? else {
                        return Ok(());
                    };
                    input = &input[consumed..];
                    self.start_frame(frame);
                }
                Phase::Payload(mut frame) => {
                    let take = input.len().min(frame.len - frame.received);
                    let (chunk, rest) = input.split_at(take);
                    input = rest;
                    self.receive_payload(&mut frame, chunk, work)?;
                    if frame.received < frame.len {
                        assert!(input.is_empty());
                        self.phase = Phase::Payload(frame);
                        return Ok(());
                    }
                    self.phase = Phase::Header;
                    self.finish_frame(frame, work, on_event)?;
                }
                Phase::Closed => return Ok(()),
                Phase::Failed => unreachable!("run is not called once the decoder failed"),
            }
        }
    }

    /// Reads a frame header from the front of `input`, after any part kept from earlier calls.
    /// Returns the frame and how many bytes of `input` it took, or `None` when `input` ended
    /// first (all of it is then kept).
    fn read_header(&mut self, input: &[u8]) -> Result<Option<(Frame, usize)>, WsError> {
        let kept = usize::from(self.header_len);
        if kept == 0 {
            // Fast path: parse straight from the input.
            if let Some((frame, header_len)) = self.parse_header(input)? {
                return Ok(Some((frame, header_len)));
            }
            assert!(input.len() < MASKED_HEADER_MAX_BYTES);
            self.header[..input.len()].copy_from_slice(input);
            self.header_len = u8::try_from(input.len()).expect("shorter than a header");
            return Ok(None);
        }
        let take = input.len().min(MASKED_HEADER_MAX_BYTES - kept);
        self.header[kept..kept + take].copy_from_slice(&input[..take]);
        match self.parse_header(&self.header[..kept + take])? {
            Some((frame, header_len)) => {
                assert!(header_len > kept);
                self.header_len = 0;
                Ok(Some((frame, header_len - kept)))
            }
            None => {
                // A header is at most 14 bytes, so it can only be incomplete if all of the
                // input went in.
                assert_eq!(take, input.len());
                self.header_len = u8::try_from(kept + take).expect("shorter than a header");
                Ok(None)
            }
        }
    }

    /// Parses the header at the front of `bytes`: the frame and the header's length, `None`
    /// if `bytes` ends first, or the first rule it breaks.
    ///
    /// Each rule is checked as soon as the bytes it needs are present, in the order of those
    /// bytes, so a header refused from its first two bytes is refused whatever follows, and
    /// the verdict does not depend on how the header was split across calls.
    fn parse_header(&self, bytes: &[u8]) -> Result<Option<(Frame, usize)>, WsError> {
        let Some(&first) = bytes.first() else {
            return Ok(None);
        };
        let fin = first & 0x80 != 0;
        let reserved = (first >> 4) & 0x7;
        if reserved != 0 {
            return Err(WsError::ReservedBits { bits: reserved });
        }
        let opcode = Opcode::from_bits(first & 0x0F).ok_or(WsError::UnknownOpcode {
            opcode: first & 0x0F,
        })?;
        if opcode.is_control() && !fin {
            return Err(WsError::FragmentedControl { opcode });
        }
        match (opcode, &self.message) {
            (Opcode::Continuation, None) => return Err(WsError::ContinuationWithoutMessage),
            (Opcode::Text | Opcode::Binary, Some(_)) => {
                return Err(WsError::MessageInterrupted { opcode })
            }
            _ => {}
        }

        let Some(&second) = bytes.get(1) else {
            return Ok(None);
        };
        if second & 0x80 == 0 {
            return Err(WsError::Unmasked { opcode });
        }
        let length_field = second & 0x7F;
        if opcode.is_control() && usize::from(length_field) > CONTROL_PAYLOAD_MAX_BYTES {
            return Err(WsError::ControlTooLong {
                opcode,
                length_field,
            });
        }
        if opcode == Opcode::Close && length_field == 1 {
            return Err(WsError::CloseTooShort);
        }

        let field_bytes = match length_field {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let Some(extended) = bytes.get(2..2 + field_bytes) else {
            return Ok(None);
        };
        let length = match field_bytes {
            0 => u64::from(length_field),
            2 => u64::from(u16::from_be_bytes([extended[0], extended[1]])),
            _ => u64::from_be_bytes(extended.try_into().expect("eight bytes")),
        };
        check_length_encoding(length, field_bytes)?;
        let len = self.check_caps(opcode, length)?;

        let mask_start = 2 + field_bytes;
        let Some(mask) = bytes.get(mask_start..mask_start + 4) else {
            return Ok(None);
        };
        let frame = Frame {
            opcode,
            fin,
            mask: mask.try_into().expect("four bytes"),
            len,
            received: 0,
        };
        Ok(Some((frame, mask_start + 4)))
    }

    /// Checks a payload length against the frame and message caps; returns it as `usize`.
    fn check_caps(&self, opcode: Opcode, length: u64) -> Result<usize, WsError> {
        let frame_max = self.limits.frame_max_bytes;
        if length > to_u64(frame_max) {
            return Err(WsError::FrameTooLarge {
                limit: frame_max,
                seen: length,
            });
        }
        let len = usize::try_from(length).expect("within frame_max_bytes");
        if !opcode.is_control() {
            let so_far = self.message.map_or(0, |message| message.len);
            let message_max = self.limits.message_max_bytes;
            if so_far + len > message_max {
                return Err(WsError::MessageTooLarge {
                    limit: message_max,
                    seen: to_u64(so_far + len),
                });
            }
        }
        Ok(len)
    }

    /// Enters the payload of a frame whose header passed every check.
    fn start_frame(&mut self, frame: Frame) {
        match frame.opcode {
            Opcode::Text | Opcode::Binary => {
                assert!(self.message.is_none());
                let kind = if frame.opcode == Opcode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                self.message = Some(Message {
                    kind,
                    len: 0,
                    utf8_checked: 0,
                });
            }
            Opcode::Continuation => assert!(self.message.is_some()),
            Opcode::Close | Opcode::Ping | Opcode::Pong => {
                assert!(frame.fin && frame.len <= CONTROL_PAYLOAD_MAX_BYTES);
            }
        }
        self.phase = Phase::Payload(frame);
    }

    /// Unmasks `chunk`, the next bytes of `frame`'s payload, onto the working buffer, and
    /// checks a text message's UTF-8 as far as it can be decided.
    fn receive_payload(
        &mut self,
        frame: &mut Frame,
        chunk: &[u8],
        work: &mut Work<'_>,
    ) -> Result<(), WsError> {
        assert!(chunk.len() <= frame.len - frame.received);
        let buffer = work.buffer();
        let start = buffer.len();
        work.grow(chunk.len());
        let buffer = work.buffer();
        buffer.extend_from_slice(chunk);
        unmask(&mut buffer[start..], frame.mask, frame.received);
        frame.received += chunk.len();

        if frame.opcode.is_control() {
            return Ok(());
        }
        let message = self.message.as_mut().expect("a data frame is in a message");
        message.len += chunk.len();
        assert_eq!(message.len, buffer.len());
        if message.kind == MessageKind::Text {
            check_utf8_prefix(buffer, &mut message.utf8_checked)?;
        }
        Ok(())
    }

    /// Acts on a frame whose payload is complete: reports control frames and finished
    /// messages, and lets go of what they occupied.
    fn finish_frame(
        &mut self,
        frame: Frame,
        work: &mut Work<'_>,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<(), WsError> {
        assert_eq!(frame.received, frame.len);
        let message_len = self.message.map_or(0, |message| message.len);
        match frame.opcode {
            Opcode::Ping | Opcode::Pong | Opcode::Close => {
                let payload = &work.buffer()[message_len..];
                assert_eq!(payload.len(), frame.len);
                match frame.opcode {
                    Opcode::Ping => on_event(Event::Ping(payload)),
                    Opcode::Pong => on_event(Event::Pong(payload)),
                    _ => {
                        let (code, reason) = parse_close(payload)?;
                        on_event(Event::Close { code, reason });
                        self.phase = Phase::Closed;
                    }
                }
                work.truncate(message_len);
            }
            Opcode::Text | Opcode::Binary | Opcode::Continuation if frame.fin => {
                let message = self.message.take().expect("a data frame is in a message");
                let payload = &work.buffer()[..];
                assert_eq!(payload.len(), message.len);
                if message.kind == MessageKind::Text && message.utf8_checked != message.len {
                    // The message ends inside a character.
                    return Err(WsError::InvalidUtf8 {
                        offset: message.utf8_checked,
                    });
                }
                on_event(Event::Message {
                    kind: message.kind,
                    payload,
                });
                work.truncate(0);
            }
            Opcode::Text | Opcode::Binary | Opcode::Continuation => {}
        }
        Ok(())
    }

    fn check_invariants(&self) {
        assert!(self.pending.len() <= self.limits.buffer_max_bytes());
        assert!(
            !self.pending.is_empty() || self.pending.capacity() == 0,
            "an empty buffer is released"
        );
        assert!(usize::from(self.header_len) < MASKED_HEADER_MAX_BYTES);
        match self.phase {
            Phase::Header => {
                assert_eq!(self.pending.len(), self.message.map_or(0, |m| m.len));
            }
            Phase::Payload(frame) => {
                assert_eq!(self.header_len, 0);
                let message_len = self.message.map_or(0, |m| m.len);
                let control = if frame.opcode.is_control() {
                    frame.received
                } else {
                    0
                };
                assert_eq!(self.pending.len(), message_len + control);
            }
            Phase::Closed | Phase::Failed => {
                assert!(self.pending.capacity() == 0 && self.message.is_none());
                assert_eq!(self.header_len, 0);
            }
        }
        if let Some(message) = self.message {
            assert!(message.len <= self.limits.message_max_bytes);
            if message.kind == MessageKind::Text {
                assert!(message.utf8_checked <= message.len);
                assert!(
                    message.len - message.utf8_checked < 4,
                    "at most a partial character"
                );
            }
        }
    }
}

/// The buffer that unmasked bytes go to during one call: the caller's shared scratch buffer,
/// or the connection's own when it holds bytes carried over from an earlier call.
struct Work<'s> {
    own: Vec<u8>,
    scratch: &'s mut Vec<u8>,
    /// Whether `own` is the working buffer. Stays true until it empties, then is released.
    in_own: bool,
    /// The most the working buffer ever holds: [`Limits::buffer_max_bytes`].
    max_bytes: usize,
}

impl Work<'_> {
    fn buffer(&mut self) -> &mut Vec<u8> {
        if self.in_own {
            &mut self.own
        } else {
            self.scratch
        }
    }

    /// Makes room for `additional` bytes, doubling as a `Vec` does but never past
    /// `max_bytes`, so the connection's buffer stays within the documented bound.
    fn grow(&mut self, additional: usize) {
        let max_bytes = self.max_bytes;
        let buffer = self.buffer();
        let needed = buffer.len() + additional;
        assert!(needed <= max_bytes, "the caps bound the working buffer");
        if needed > buffer.capacity() {
            let target = needed.max(buffer.capacity().saturating_mul(2).min(max_bytes));
            buffer.reserve_exact(target - buffer.len());
        }
    }

    /// Drops bytes past `len` (a reported control frame or message); releases the
    /// connection's own buffer once it is empty.
    fn truncate(&mut self, len: usize) {
        if len == 0 && self.in_own {
            self.own = Vec::new();
            self.in_own = false;
        } else {
            self.buffer().truncate(len);
        }
    }

    /// The bytes to keep for the next call, in a buffer of the connection's own: `own` if it
    /// was in use, else a copy of the scratch buffer sized for the rest of the current frame.
    fn keep(self, frame_rest: usize) -> Vec<u8> {
        if self.in_own {
            return self.own;
        }
        if self.scratch.is_empty() {
            return Vec::new();
        }
        let capacity = (self.scratch.len() + frame_rest).min(self.max_bytes);
        let mut kept = Vec::with_capacity(capacity);
        kept.extend_from_slice(self.scratch);
        kept
    }
}

/// Refuses a length not sent in the shortest form, or a 64-bit length with its top bit set
/// (RFC 6455 §5.2).
fn check_length_encoding(length: u64, field_bytes: usize) -> Result<(), WsError> {
    match field_bytes {
        0 => Ok(()),
        8 if length >> 63 != 0 => Err(WsError::LengthHighBit { length }),
        2 if length >= 126 => Ok(()),
        8 if length > 0xFFFF => Ok(()),
        _ => Err(WsError::NonMinimalLength {
            length,
            field_bytes: u8::try_from(field_bytes).expect("2 or 8"),
        }),
    }
}

/// XORs `bytes` with the masking key (RFC 6455 §5.3), where `bytes` starts at payload offset
/// `offset`.
fn unmask(bytes: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut key = mask;
    key.rotate_left(offset % 4);
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = bytes.chunks_exact_mut(8);
    for word in &mut words {
        let value = u64::from_ne_bytes((&*word).try_into().expect("eight bytes")) ^ wide;
        word.copy_from_slice(&value.to_ne_bytes());
    }
    for (byte, k) in words.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

/// Advances `checked` over the complete, valid UTF-8 characters of `text[checked..]`.
///
/// Fails as soon as a sequence cannot become valid whatever follows (a bad lead byte, a bad
/// continuation, an overlong form, a surrogate, a code point above U+10FFFF), which the
/// standard library's validator decides at the first byte that rules it out. A character that
/// is merely incomplete at the end stays unchecked until more bytes arrive.
fn check_utf8_prefix(text: &[u8], checked: &mut usize) -> Result<(), WsError> {
    match std::str::from_utf8(&text[*checked..]) {
        Ok(_) => *checked = text.len(),
        Err(error) => {
            let valid_end = *checked + error.valid_up_to();
            if error.error_len().is_some() {
                return Err(WsError::InvalidUtf8 { offset: valid_end });
            }
            *checked = valid_end;
        }
    }
    Ok(())
}

/// Splits a Close payload into its code and reason, checking both (RFC 6455 §5.5.1, §7.4).
fn parse_close(payload: &[u8]) -> Result<(Option<u16>, &str), WsError> {
    let [high, low, reason @ ..] = payload else {
        // The header check refuses a one-byte payload.
        assert!(payload.is_empty());
        return Ok((None, ""));
    };
    let code = u16::from_be_bytes([*high, *low]);
    if CloseCode::new(code).is_none() {
        return Err(WsError::InvalidCloseCode { code });
    }
    let reason = std::str::from_utf8(reason).map_err(|error| WsError::InvalidCloseReason {
        offset: error.valid_up_to(),
    })?;
    Ok((Some(code), reason))
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).expect("usize fits in u64 on every supported target")
}

#[cfg(test)]
mod tests;
