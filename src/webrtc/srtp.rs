//! SRTP of our own, for the media of a viewer that does not adapt: its packets are built and
//! encrypted straight into the shard's outbound queue (`webrtc/direct.rs`), one copy per
//! viewer and packet, instead of going through str0m's per-packet send path.
//!
//! str0m does the DTLS handshake and keeps its SRTP keys to itself. Its crypto is pluggable
//! (`CryptoProvider`), so the sessions here run with a DTLS provider that wraps the usual one
//! and keeps a copy of what DTLS-SRTP exports (RFC 5764 §4.2) for the session that asked
//! ([`build_tapped`]). The session keys are derived from it as RFC 3711 §4.3 says.
//!
//! Only the AEAD profiles (RFC 7714: AEAD_AES_128_GCM, AEAD_AES_256_GCM) are done here; a
//! peer that settles on AES_CM_128_HMAC_SHA1_80 keeps str0m's send path.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128, AES_256};
use aws_lc_rs::iv::FixedLength;
use std::cell::RefCell;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::{Rtc, RtcConfig};
use str0m_proto::crypto::dtls::{DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider};
use str0m_proto::crypto::dtls::{ProtocolVersion, SrtpProfile};
use str0m_proto::crypto::{CryptoError, DtlsVersion};

/// Bytes an AEAD profile adds to an RTP packet (the GCM tag).
pub const RTP_OVERHEAD: usize = 16;
/// Bytes it adds to an RTCP packet: the tag, then the E flag and SRTCP index.
pub const RTCP_OVERHEAD: usize = 16 + 4;

/// What DTLS-SRTP exported for one session.
#[derive(Debug)]
pub struct Keying {
    profile: SrtpProfile,
    /// client key, server key, client salt, server salt (RFC 5764 §4.2).
    material: Vec<u8>,
    /// Whether this side was the DTLS client: it then sends with the client's key.
    client: bool,
}

/// Where a session's [`Keying`] lands once its handshake is done.
pub type KeySlot = Arc<OnceLock<Keying>>;

thread_local! {
    /// The slot the next DTLS instance made on this thread writes to ([`build_tapped`]).
    static NEXT_SLOT: RefCell<Option<KeySlot>> = const { RefCell::new(None) };
}

/// The crypto str0m would use (aws-lc-rs), unchanged.
fn base() -> &'static CryptoProvider {
    static BASE: OnceLock<CryptoProvider> = OnceLock::new();
    BASE.get_or_init(str0m_aws_lc_rs::default_provider)
}

/// The same, with DTLS instances that report their keying material.
fn tapped_provider() -> Arc<CryptoProvider> {
    static TAP: Tap = Tap;
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    let provider = PROVIDER.get_or_init(|| {
        Arc::new(CryptoProvider {
            dtls_provider: &TAP,
            ..base().clone()
        })
    });
    Arc::clone(provider)
}

/// Builds the `Rtc` of `config`; its DTLS keying material, once the handshake is done, is in
/// the returned slot.
pub fn build_tapped(config: RtcConfig, now: Instant) -> (Rtc, KeySlot) {
    let slot = KeySlot::default();
    NEXT_SLOT.with(|next| *next.borrow_mut() = Some(Arc::clone(&slot)));
    let rtc = config.set_crypto_provider(tapped_provider()).build(now);
    NEXT_SLOT.with(|next| next.borrow_mut().take());
    (rtc, slot)
}

#[derive(Debug)]
struct Tap;

impl DtlsProvider for Tap {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        base().dtls_provider.generate_certificate()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let inner = base().dtls_provider.new_dtls(cert, now, version, mtu)?;
        match NEXT_SLOT.with(|next| next.borrow_mut().take()) {
            Some(slot) => Ok(Box::new(Tapped { inner, slot })),
            None => Ok(inner),
        }
    }

    fn is_test(&self) -> bool {
        base().dtls_provider.is_test()
    }
}

/// A DTLS instance that copies its keying material into its session's slot.
#[derive(Debug)]
struct Tapped {
    inner: Box<dyn DtlsInstance>,
    slot: KeySlot,
}

impl DtlsInstance for Tapped {
    fn set_active(&mut self, active: bool) {
        self.inner.set_active(active);
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.inner.handle_packet(packet)
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        let output = self.inner.poll_output(buf);
        if let DtlsOutput::KeyingMaterial(material, profile) = &output {
            let _ = self.slot.set(Keying {
                profile: *profile,
                material: material.to_vec(),
                client: self.inner.is_active(),
            });
        }
        output
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.inner.handle_timeout(now)
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.inner.send_application_data(data)
    }

    fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.inner.protocol_version()
    }

    fn is_closing(&self) -> bool {
        self.inner.is_closing()
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.inner.close()
    }
}

/// RFC 3711 §4.3.3 key derivation labels.
const LABEL_RTP_KEY: u8 = 0;
const LABEL_RTP_SALT: u8 = 2;
const LABEL_RTCP_KEY: u8 = 3;
const LABEL_RTCP_SALT: u8 = 5;

/// A session key and salt of one direction and packet kind.
struct Aead {
    key: LessSafeKey,
    salt: [u8; 12],
}

impl Aead {
    /// Seals `plain` in place under the nonce `nonce` XOR the salt (RFC 7714 §8.1, §9.1)
    /// with `aad`; returns the tag.
    fn seal(&self, nonce: [u8; 12], aad: &[u8], plain: &mut [u8]) -> [u8; 16] {
        let mut iv = self.salt;
        iv.iter_mut().zip(nonce).for_each(|(s, n)| *s ^= n);
        let tag = (self.key)
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), plain)
            .expect("AES-GCM seals any length under 2^36 bytes");
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// The sending half of a session's SRTP (RFC 7714 AEAD profiles).
pub struct SrtpTx {
    rtp: Aead,
    rtcp: Aead,
    /// The next SRTCP index (31 bits). It starts well above 0: str0m may have sent a sender
    /// report or two with the same SSRCs before this took over, and the receiver would take a
    /// repeated index for a replay.
    srtcp_index: u32,
}

impl SrtpTx {
    /// The sender of `keying`; None for a profile done elsewhere (AES-CM with HMAC-SHA1).
    pub fn new(keying: &Keying) -> Option<SrtpTx> {
        let key_len = match keying.profile {
            SrtpProfile::AEAD_AES_128_GCM => 16,
            SrtpProfile::AEAD_AES_256_GCM => 32,
            _ => return None,
        };
        const SALT_LEN: usize = 12;
        let material = &keying.material;
        if material.len() != 2 * (key_len + SALT_LEN) {
            return None;
        }
        let own = usize::from(!keying.client);
        let master_key = &material[own * key_len..][..key_len];
        let master_salt = &material[2 * key_len + own * SALT_LEN..][..SALT_LEN];
        let session = |(key_label, salt_label): (u8, u8)| {
            let mut key = [0u8; 32];
            derive(master_key, master_salt, key_label, &mut key[..key_len]);
            let mut salt = [0u8; 12];
            derive(master_key, master_salt, salt_label, &mut salt);
            (key, salt)
        };
        let (rtp_key, rtp_salt) = session((LABEL_RTP_KEY, LABEL_RTP_SALT));
        let (rtcp_key, rtcp_salt) = session((LABEL_RTCP_KEY, LABEL_RTCP_SALT));
        Some(SrtpTx::with_session_keys(
            (&rtp_key[..key_len], rtp_salt),
            (&rtcp_key[..key_len], rtcp_salt),
            1 << 20,
        ))
    }

    /// A sender with fixed keys, for tests of what is built around it.
    #[cfg(test)]
    pub(super) fn for_tests() -> SrtpTx {
        SrtpTx::with_session_keys((&[7; 16], [1; 12]), (&[8; 16], [2; 12]), 0)
    }

    /// The sender of session keys and salts (16 or 32-byte keys), and the first SRTCP index.
    fn with_session_keys(
        rtp: (&[u8], [u8; 12]),
        rtcp: (&[u8], [u8; 12]),
        srtcp_index: u32,
    ) -> SrtpTx {
        let aead = |(key, salt): (&[u8], [u8; 12])| {
            let algorithm = if key.len() == 32 {
                &AES_256_GCM
            } else {
                &AES_128_GCM
            };
            let key = UnboundKey::new(algorithm, key).expect("key of its length");
            Aead {
                key: LessSafeKey::new(key),
                salt,
            }
        };
        SrtpTx {
            rtp: aead(rtp),
            rtcp: aead(rtcp),
            srtcp_index,
        }
    }

    /// Encrypts the RTP packet in `buf[..len]` whose header (extensions included) is
    /// `buf[..header_len]`, with rollover counter `roc` (RFC 7714 §8.1); the tag goes after
    /// it, so `buf` must have [`RTP_OVERHEAD`] bytes more. Returns the packet's new length.
    pub fn protect_rtp(
        &self,
        buf: &mut [u8],
        (header_len, len): (usize, usize),
        roc: u32,
    ) -> usize {
        let mut nonce = [0u8; 12];
        nonce[2..6].copy_from_slice(&buf[8..12]); // SSRC
        nonce[6..10].copy_from_slice(&roc.to_be_bytes());
        nonce[10..12].copy_from_slice(&buf[2..4]); // sequence number
        let (header, rest) = buf.split_at_mut(header_len);
        let (plain, after) = rest.split_at_mut(len - header_len);
        after[..RTP_OVERHEAD].copy_from_slice(&self.rtp.seal(nonce, header, plain));
        len + RTP_OVERHEAD
    }

    /// Encrypts the compound RTCP packet in `buf[..len]` (RFC 7714 §9.1): the tag and then
    /// the E flag with the SRTCP index go after it, so `buf` must have [`RTCP_OVERHEAD`]
    /// bytes more. Returns the packet's new length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> usize {
        let index = self.srtcp_index;
        self.srtcp_index = (index + 1) & 0x7fff_ffff;
        let e_and_index = (0x8000_0000 | index).to_be_bytes();
        let mut nonce = [0u8; 12];
        nonce[2..6].copy_from_slice(&buf[4..8]); // the first packet's SSRC
        nonce[8..12].copy_from_slice(&index.to_be_bytes());
        let mut aad = [0u8; 12];
        aad[..8].copy_from_slice(&buf[..8]);
        aad[8..].copy_from_slice(&e_and_index);
        let (plain, after) = buf[8..].split_at_mut(len - 8);
        after[..16].copy_from_slice(&self.rtcp.seal(nonce, &aad, plain));
        after[16..20].copy_from_slice(&e_and_index);
        len + RTCP_OVERHEAD
    }
}

/// RFC 3711 §4.3.1: the session key or salt of `label`, the AES counter-mode keystream under
/// the master key (AES-256 for a 256-bit one, RFC 6188 §5.1) from the IV
/// `(label << 48) XOR master_salt`, shifted up 16 bits; a 96-bit salt (RFC 7714 §11) fills
/// the IV's first 12 bytes, as libsrtp does.
fn derive(master_key: &[u8], master_salt: &[u8], label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..master_salt.len()].copy_from_slice(master_salt);
    iv[7] ^= label;
    let algorithm = if master_key.len() == 32 {
        &AES_256
    } else {
        &AES_128
    };
    let key = UnboundCipherKey::new(algorithm, master_key).expect("key of its length");
    let key = EncryptingKey::ctr(key).expect("AES in counter mode");
    let mut stream = [0u8; 32];
    let stream = &mut stream[..out.len().div_ceil(16) * 16];
    key.less_safe_encrypt(stream, EncryptionContext::Iv128(FixedLength::from(iv)))
        .expect("counter mode encrypts any length");
    out.copy_from_slice(&stream[..out.len()]);
}

#[cfg(test)]
mod tests;
