//! Checks behind shardcast's fuzz targets, kept in a library so that the seed corpora can be
//! replayed through them by `cargo test` on a stable toolchain.
//!
//! The RTMP, FLV and danmaku-wire targets call entry points their crates export
//! (`fuzz_server_input`, `fuzz_flv`, `fuzz_decode_client`). The WebSocket and HTTP decoders
//! have none, so their targets are written here against the public API: [`ws_decoder`] and
//! [`http_request`].
//!
//! Both take an input whose first [`CONTROL_BYTES`] bytes choose the caps and where the rest
//! is cut into pieces ([`Input`]), so that libFuzzer mutates the split points along with the
//! bytes. A panic is a finding: either the decoder panicked, or it broke one of the contracts
//! its documentation states.

#![forbid(unsafe_code)]

pub mod http;
pub mod http_response;
pub mod tls;
pub mod ws;

pub use http::http_request;
pub use http_response::http_response;
pub use tls::tls_http;
pub use ws::ws_decoder;

/// How many leading bytes of a fuzz input say how to feed the rest: one selects the caps, then
/// three big-endian `u16`s place three cuts.
pub const CONTROL_BYTES: usize = 1 + 2 * CUTS;

/// How many cut points an input chooses.
const CUTS: usize = 3;

/// Payloads up to this size are also fed one byte per call. Larger ones would cost the fuzzer
/// more time per input than they are worth: the fuzzer's own cuts still split them anywhere.
pub const BYTE_AT_A_TIME_MAX_BYTES: usize = 512;

/// A fuzz input taken apart: a selector for the caps, and the payload with the cut points that
/// the input chose for it.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// Which set of caps to decode with; each target maps it to its own table.
    pub config: u8,
    /// The bytes to decode.
    pub payload: &'a [u8],
    /// Cut offsets into `payload`, ascending, each in `0..=payload.len()`.
    cuts: [usize; CUTS],
}

impl<'a> Input<'a> {
    /// Splits a fuzz input into control bytes and payload; `None` if it is shorter than
    /// [`CONTROL_BYTES`].
    pub fn parse(data: &'a [u8]) -> Option<Input<'a>> {
        let (control, payload) = data.split_at_checked(CONTROL_BYTES)?;
        let mut cuts = [0; CUTS];
        for (cut, pair) in cuts.iter_mut().zip(control[1..].chunks_exact(2)) {
            let fraction = usize::from(u16::from_be_bytes([pair[0], pair[1]]));
            // Scaled onto 0..=len: 0x0000 cuts before the first byte, 0xFFFF after the last.
            *cut = fraction * payload.len() / usize::from(u16::MAX);
        }
        cuts.sort_unstable();
        Some(Input {
            config: control[0],
            payload,
            cuts,
        })
    }

    /// The payload cut at the input's chosen offsets: up to four pieces, some possibly empty
    /// (an empty read is something a decoder must take in its stride too).
    pub fn pieces(&self) -> Vec<&'a [u8]> {
        let mut pieces = Vec::with_capacity(CUTS + 1);
        let mut start = 0;
        for &cut in &self.cuts {
            pieces.push(&self.payload[start..cut]);
            start = cut;
        }
        pieces.push(&self.payload[start..]);
        pieces
    }

    /// Builds an input from its parts: the inverse of [`parse`](Self::parse), for seeds and
    /// tests. `cuts` are fractions of the payload's length in 1/65535ths.
    pub fn encode(config: u8, cuts: [u16; CUTS], payload: &[u8]) -> Vec<u8> {
        let mut data = Vec::with_capacity(CONTROL_BYTES + payload.len());
        data.push(config);
        for cut in cuts {
            data.extend_from_slice(&cut.to_be_bytes());
        }
        data.extend_from_slice(payload);
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_cover_the_payload_in_order() {
        let payload: Vec<u8> = (0..=200).collect();
        for cuts in [[0, 0, 0], [u16::MAX; 3], [40_000, 100, 65_000], [1, 2, 3]] {
            let data = Input::encode(7, cuts, &payload);
            let input = Input::parse(&data).unwrap();
            assert_eq!(input.config, 7);
            assert_eq!(input.pieces().concat(), payload);
        }
        let data = Input::encode(0, [0, 32_768, u16::MAX], b"abcd");
        let input = Input::parse(&data).unwrap();
        assert_eq!(input.pieces(), [&b""[..], b"ab", b"cd", b""]);
        assert!(Input::parse(&[0; CONTROL_BYTES - 1]).is_none());
    }

    /// Every committed seed runs through its target's checks without a finding.
    #[test]
    fn seeds_pass() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        type Check = fn(&[u8]);
        let targets: [(&str, Check); 8] = [
            ("ws_decoder", ws_decoder),
            ("http_request", http_request),
            ("http_response", http_response),
            ("tls_http", tls_http),
            ("rtmp_server", shardcast_rtmp::fuzz_server_input),
            ("flv", shardcast_media::fuzz_flv),
            ("flv_file", shardcast_media::fuzz_flv_file),
            ("wire_client", shardcast_wire::fuzz_decode_client),
        ];
        // Every fuzz target is replayed here, and nothing here is not a target.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz_targets");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("fuzz_targets")
            .map(|e| {
                e.unwrap()
                    .path()
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = targets.iter().map(|(t, _)| t.to_string()).collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "fuzz_targets/ and the replayed targets differ"
        );
        for (target, check) in targets {
            let mut count = 0;
            for entry in std::fs::read_dir(seeds.join(target)).expect("seed directory") {
                let path = entry.unwrap().path();
                check(&std::fs::read(&path).unwrap());
                count += 1;
            }
            assert!(count >= 3, "{target} has {count} seeds");
        }
    }
}
