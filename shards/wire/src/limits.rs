//! What a decoder accepts before it reads a message.

use flatbuffers::{Follow, Verifiable, VerifierOptions};

use crate::WireError;

/// Largest client message, in bytes. The biggest v1 client message is a `Hello`: a room name,
/// an HMAC token (a few hundred bytes) and a version string, plus about 60 bytes of tables and
/// vtables. A `Chat` of 1000 four-byte UTF-8 characters still fits. This is also the most a
/// shard copies per client message, so it bounds the per-connection tail buffer.
pub const CLIENT_MAX_BYTES: usize = 4096;
/// Deepest table nesting in a client message. v1 nests two deep (`ClientMessage` → body); the
/// headroom lets a later version nest without a flag day.
pub const CLIENT_MAX_DEPTH: usize = 8;
/// Most tables in a client message. v1 has exactly two; 64 is headroom, and it still bounds the
/// verifier's work at 64 table visits.
pub const CLIENT_MAX_TABLES: usize = 64;
/// Most bytes the verifier may inspect in a client message, counting a shared part (a vtable,
/// or a table reached twice) once per use. Four times [`CLIENT_MAX_BYTES`]: an honest message
/// stays near 1×, while a crafted buffer whose tables all point at one huge vtable is refused
/// after 16 KiB of checking instead of costing `tables × 64 KiB`.
pub const CLIENT_MAX_APPARENT_SIZE: usize = 4 * CLIENT_MAX_BYTES;

/// Largest server message, in bytes: 1 MiB. A `Batch` or `HistoryReply` event costs 60–400
/// bytes (a chat event with a user name and a 100-character text is about 200), so this holds
/// several thousand events, more than a batching window or a history page carries.
pub const SERVER_MAX_BYTES: usize = 1 << 20;
/// Deepest table nesting in a server message. v1 nests four deep (`ServerMessage` → `Batch` →
/// `Event` → event body); the rest is headroom.
pub const SERVER_MAX_DEPTH: usize = 8;
/// Most tables in a server message. Every table costs at least 4 bytes (its vtable offset), so
/// no buffer within [`SERVER_MAX_BYTES`] reaches this count unless it reuses tables (a DAG),
/// which the [`Encoder`](crate::Encoder) never does.
pub const SERVER_MAX_TABLES: usize = SERVER_MAX_BYTES / 4;
/// Most bytes the verifier may inspect in a server message; see [`CLIENT_MAX_APPARENT_SIZE`].
/// An encoded batch of small events inspects about 1.5× its size (each event table counts its
/// shared vtable again).
pub const SERVER_MAX_APPARENT_SIZE: usize = 4 * SERVER_MAX_BYTES;

const _: () = assert!(CLIENT_MAX_BYTES <= SERVER_MAX_BYTES);
const _: () = assert!(CLIENT_MAX_APPARENT_SIZE >= CLIENT_MAX_BYTES);
const _: () = assert!(SERVER_MAX_APPARENT_SIZE >= SERVER_MAX_BYTES);
// The flatbuffers format addresses at most 2 GiB; the limits stay far below.
const _: () = assert!(SERVER_MAX_APPARENT_SIZE < (1 << 31));

/// The limits a message is checked against before any of it is read.
///
/// Verification costs time linear in `max_apparent_size` at worst, and decoding an accepted
/// message allocates nothing, so these limits bound a decoder's work per message whatever the
/// peer sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyLimits {
    /// Deepest nesting of tables.
    pub max_depth: usize,
    /// Most tables visited.
    pub max_tables: usize,
    /// Most bytes inspected, counting shared parts once per use.
    pub max_apparent_size: usize,
    /// Largest message; a longer one is [`WireError::TooLarge`] before the verifier runs.
    pub max_bytes: usize,
}

impl VerifyLimits {
    /// Limits for messages from clients: 4 KiB, depth 8, 64 tables, 16 KiB inspected (the
    /// `CLIENT_MAX_*` constants).
    pub const fn client() -> Self {
        Self {
            max_depth: CLIENT_MAX_DEPTH,
            max_tables: CLIENT_MAX_TABLES,
            max_apparent_size: CLIENT_MAX_APPARENT_SIZE,
            max_bytes: CLIENT_MAX_BYTES,
        }
    }

    /// Limits for messages from the server: 1 MiB, depth 8, 262 144 tables, 4 MiB inspected
    /// (the `SERVER_MAX_*` constants).
    pub const fn server() -> Self {
        Self {
            max_depth: SERVER_MAX_DEPTH,
            max_tables: SERVER_MAX_TABLES,
            max_apparent_size: SERVER_MAX_APPARENT_SIZE,
            max_bytes: SERVER_MAX_BYTES,
        }
    }

    /// Checks the size, runs the verifier and returns the root table of type `T`.
    pub(crate) fn verify<'a, T>(&self, buf: &'a [u8]) -> Result<T::Inner, WireError>
    where
        T: 'a + Follow<'a> + Verifiable,
    {
        if buf.len() > self.max_bytes {
            return Err(WireError::TooLarge {
                limit: self.max_bytes,
                seen: buf.len(),
            });
        }
        let options = VerifierOptions {
            max_depth: self.max_depth,
            max_tables: self.max_tables,
            max_apparent_size: self.max_apparent_size,
            ..VerifierOptions::default()
        };
        Ok(flatbuffers::root_with_opts::<T>(&options, buf)?)
    }
}

impl Default for VerifyLimits {
    /// The client limits: what a server checks by default.
    fn default() -> Self {
        Self::client()
    }
}
