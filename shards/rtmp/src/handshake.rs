//! The RTMP handshake (RTMP 1.0 §5.2), both sides, in its simple form.
//!
//! C0 and S0 are one version byte (3). C1 and S1 are 1,536 bytes: a four-byte time, four zero
//! bytes, and 1,528 random bytes. C2 and S2 echo the peer's C1 or S1.
//!
//! The server writes S1 with a zero version field (bytes 4..8). That is what tells clients
//! which speak the Flash Player 9 digest handshake (librtmp in OBS, ffmpeg) to fall back to
//! the simple one: librtmp stops expecting a digest when S1's version is zero, and ffmpeg only
//! checks for one when playing from a server whose S1 announces a version of 3 or above. S2 is
//! C1 byte for byte, as the specification says, which is also what librtmp compares it with.
//! The client's C2 is consumed without comparing it to S1: ffmpeg and librtmp echo S1, but some
//! encoders send something else, and nothing rides on it.

use crate::RtmpError;

/// The RTMP version both sides send in C0 and S0.
pub const RTMP_VERSION: u8 = 3;

/// The length of C1, S1, C2 and S2.
pub const HANDSHAKE_PACKET_BYTES: usize = 1536;

/// The server's side: reads C0 and C1, answers S0, S1 and S2 together, then reads C2.
#[derive(Debug)]
pub(crate) struct ServerHandshake {
    phase: ServerPhase,
    /// C1 as it arrives; freed once echoed.
    c1: Vec<u8>,
    /// Bytes of C2 still to come.
    c2_left: usize,
    seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerPhase {
    Version,
    C1,
    C2,
    Done,
}

impl ServerHandshake {
    /// A handshake whose S1 random bytes come from `seed`. They need not be secret: the simple
    /// handshake proves nothing, and RTMP has no other use for them.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            phase: ServerPhase::Version,
            c1: Vec::new(),
            c2_left: HANDSHAKE_PACKET_BYTES,
            seed,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.phase == ServerPhase::Done
    }

    /// Bytes held: the part of C1 received so far.
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.c1.len()
    }

    /// Consumes handshake bytes from the front of `input`, leaving whatever follows C2 (the
    /// first chunks) in it. Appends S0, S1 and S2 to `out` once C1 is complete.
    pub(crate) fn consume(
        &mut self,
        input: &mut &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RtmpError> {
        loop {
            match self.phase {
                ServerPhase::Version => {
                    let Some((&version, rest)) = input.split_first() else {
                        return Ok(());
                    };
                    if version != RTMP_VERSION {
                        return Err(RtmpError::BadVersion { seen: version });
                    }
                    *input = rest;
                    self.c1.reserve_exact(HANDSHAKE_PACKET_BYTES);
                    self.phase = ServerPhase::C1;
                }
                ServerPhase::C1 => {
                    let take = (HANDSHAKE_PACKET_BYTES - self.c1.len()).min(input.len());
                    let (front, back) = input.split_at(take);
                    self.c1.extend_from_slice(front);
                    *input = back;
                    if self.c1.len() < HANDSHAKE_PACKET_BYTES {
                        return Ok(());
                    }
                    out.reserve(1 + 2 * HANDSHAKE_PACKET_BYTES);
                    out.push(RTMP_VERSION);
                    write_packet(out, self.seed);
                    out.extend_from_slice(&self.c1);
                    self.c1 = Vec::new();
                    self.phase = ServerPhase::C2;
                }
                ServerPhase::C2 => {
                    let take = self.c2_left.min(input.len());
                    *input = &input[take..];
                    self.c2_left -= take;
                    if self.c2_left > 0 {
                        return Ok(());
                    }
                    self.phase = ServerPhase::Done;
                }
                ServerPhase::Done => return Ok(()),
            }
        }
    }
}

/// The client's side: C0 and C1 up front, then reads S0 and S1, answers C2, and checks that
/// S2 echoes C1.
#[derive(Debug)]
pub(crate) struct ClientHandshake {
    phase: ClientPhase,
    /// C1, kept to check S2 against.
    c1: Vec<u8>,
    /// S1 as it arrives, echoed as C2 once complete.
    s1: Vec<u8>,
    /// Bytes of S2 checked so far.
    s2_seen: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientPhase {
    Version,
    S1,
    S2,
    Done,
}

impl ClientHandshake {
    /// A handshake, and C0 plus C1 to send first.
    pub(crate) fn new(seed: u64) -> (Self, Vec<u8>) {
        let mut c0c1 = Vec::with_capacity(1 + HANDSHAKE_PACKET_BYTES);
        c0c1.push(RTMP_VERSION);
        write_packet(&mut c0c1, seed);
        let handshake = Self {
            phase: ClientPhase::Version,
            c1: c0c1[1..].to_vec(),
            s1: Vec::new(),
            s2_seen: 0,
        };
        (handshake, c0c1)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.phase == ClientPhase::Done
    }

    /// Consumes handshake bytes from the front of `input`; appends C2 to `out` once S1 is
    /// complete.
    pub(crate) fn consume(
        &mut self,
        input: &mut &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RtmpError> {
        loop {
            match self.phase {
                ClientPhase::Version => {
                    let Some((&version, rest)) = input.split_first() else {
                        return Ok(());
                    };
                    if version != RTMP_VERSION {
                        return Err(RtmpError::BadVersion { seen: version });
                    }
                    *input = rest;
                    self.phase = ClientPhase::S1;
                }
                ClientPhase::S1 => {
                    let take = (HANDSHAKE_PACKET_BYTES - self.s1.len()).min(input.len());
                    let (front, back) = input.split_at(take);
                    self.s1.extend_from_slice(front);
                    *input = back;
                    if self.s1.len() < HANDSHAKE_PACKET_BYTES {
                        return Ok(());
                    }
                    out.extend_from_slice(&self.s1);
                    self.s1 = Vec::new();
                    self.phase = ClientPhase::S2;
                }
                ClientPhase::S2 => {
                    let take = (HANDSHAKE_PACKET_BYTES - self.s2_seen).min(input.len());
                    let (front, back) = input.split_at(take);
                    if front != &self.c1[self.s2_seen..self.s2_seen + take] {
                        return Err(RtmpError::HandshakeMismatch);
                    }
                    *input = back;
                    self.s2_seen += take;
                    if self.s2_seen < HANDSHAKE_PACKET_BYTES {
                        return Ok(());
                    }
                    self.c1 = Vec::new();
                    self.phase = ClientPhase::Done;
                }
                ClientPhase::Done => return Ok(()),
            }
        }
    }
}

/// Appends a C1 or S1: time 0, a zero version field, and 1,528 bytes of xorshift64* output.
fn write_packet(out: &mut Vec<u8>, seed: u64) {
    out.extend_from_slice(&[0; 8]);
    let mut state = seed | 1;
    for _ in 0..(HANDSHAKE_PACKET_BYTES - 8) / 8 {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
}

const _: () = assert!((HANDSHAKE_PACKET_BYTES - 8).is_multiple_of(8));

#[cfg(test)]
mod tests {
    use super::*;

    fn c0c1(version: u8) -> Vec<u8> {
        let mut bytes = vec![version];
        bytes.extend((0..HANDSHAKE_PACKET_BYTES).map(|i| (i * 7) as u8));
        bytes
    }

    #[test]
    fn server_answers_s0_s1_s2_and_leaves_what_follows_c2() {
        let mut input = c0c1(3);
        input.extend(std::iter::repeat_n(0xAB, HANDSHAKE_PACKET_BYTES));
        input.extend_from_slice(b"rest");
        for split in [0, 1, 2, 1537, 1538, 3072, 3073, input.len()] {
            let mut handshake = ServerHandshake::new(42);
            let mut out = Vec::new();
            let (front, back) = input.split_at(split);
            let mut front = front;
            handshake.consume(&mut front, &mut out).unwrap();
            let mut back = back;
            handshake.consume(&mut back, &mut out).unwrap();
            assert!(handshake.is_done());
            assert_eq!([front, back].concat(), b"rest", "split at {split}");
            assert_eq!(out.len(), 1 + 2 * HANDSHAKE_PACKET_BYTES);
            assert_eq!(out[0], 3);
            assert_eq!(&out[1..9], &[0; 8], "S1 time and a zero version field");
            assert_eq!(
                &out[1 + HANDSHAKE_PACKET_BYTES..],
                &input[1..1537],
                "S2 is C1"
            );
            assert_eq!(handshake.buffered_bytes(), 0);
        }
    }

    #[test]
    fn bad_version_is_refused() {
        for version in [0, 6, 0xFF] {
            let mut handshake = ServerHandshake::new(1);
            let input = c0c1(version);
            assert_eq!(
                handshake.consume(&mut &input[..], &mut Vec::new()),
                Err(RtmpError::BadVersion { seen: version })
            );
        }
    }

    #[test]
    fn client_and_server_complete_each_other() {
        let (mut client, c0c1) = ClientHandshake::new(7);
        let mut server = ServerHandshake::new(8);
        let mut to_client = Vec::new();
        server.consume(&mut &c0c1[..], &mut to_client).unwrap();
        let mut c2 = Vec::new();
        client.consume(&mut &to_client[..], &mut c2).unwrap();
        assert!(client.is_done());
        assert_eq!(c2, to_client[1..1537], "C2 echoes S1");
        server.consume(&mut &c2[..], &mut Vec::new()).unwrap();
        assert!(server.is_done());
    }

    #[test]
    fn client_refuses_an_s2_that_does_not_echo_c1() {
        let (mut client, _) = ClientHandshake::new(7);
        let mut input = vec![3];
        input.extend(std::iter::repeat_n(0, 2 * HANDSHAKE_PACKET_BYTES));
        assert_eq!(
            client.consume(&mut &input[..], &mut Vec::new()),
            Err(RtmpError::HandshakeMismatch)
        );
    }
}
