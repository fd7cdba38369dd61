//! Against the RFCs' own test vectors: RFC 3711 B.3 (key derivation), RFC 7714 §16.1.1 and
//! §16.2.1 (SRTP), §17.1 and §17.2 (SRTCP).

use super::*;

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    (digits.chunks(2))
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// RFC 7714 §16: every example's key is 00 01 02 ..., its salt "Quid pro quo".
fn rfc7714(key_len: u8, srtcp_index: u32) -> SrtpTx {
    let key: Vec<u8> = (0..key_len).collect();
    let salt: [u8; 12] = *b"Quid pro quo";
    SrtpTx::with_session_keys((&key, salt), (&key, salt), srtcp_index)
}

const RTP_PACKET: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
    20646976 69736120 696e2070 61727465 73207472 6573";
const RTCP_PACKET: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930
    4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef";

fn protect_rtp(tx: &SrtpTx) -> Vec<u8> {
    let packet = hex(RTP_PACKET);
    let mut buf = packet.clone();
    buf.resize(packet.len() + RTP_OVERHEAD, 0);
    let len = tx.protect_rtp(&mut buf, (12, packet.len()), 0);
    buf.truncate(len);
    buf
}

fn protect_rtcp(tx: &mut SrtpTx) -> Vec<u8> {
    let packet = hex(RTCP_PACKET);
    let mut buf = packet.clone();
    buf.resize(packet.len() + RTCP_OVERHEAD, 0);
    let len = tx.protect_rtcp(&mut buf, packet.len());
    buf.truncate(len);
    buf
}

#[test]
fn session_keys_are_derived_as_rfc_3711_b3_says() {
    let master_key = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
    let master_salt = hex("0EC675AD498AFEEBB6960B3AABE6");
    let mut key = [0u8; 16];
    derive(&master_key, &master_salt, LABEL_RTP_KEY, &mut key);
    assert_eq!(key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    let mut salt = [0u8; 14];
    derive(&master_key, &master_salt, LABEL_RTP_SALT, &mut salt);
    assert_eq!(salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
}

#[test]
fn rtp_is_sealed_as_rfc_7714_16_1_1_says() {
    let expected = "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5
        0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce";
    assert_eq!(protect_rtp(&rfc7714(16, 0)), hex(expected));
}

#[test]
fn rtp_is_sealed_as_rfc_7714_16_2_1_says() {
    let expected = "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238
        9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13";
    assert_eq!(protect_rtp(&rfc7714(32, 0)), hex(expected));
}

#[test]
fn rtcp_is_sealed_as_rfc_7714_17_1_and_17_2_say() {
    let expected_128 = "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d
        c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade
        800005d4";
    let mut tx = rfc7714(16, 0x5d4);
    assert_eq!(protect_rtcp(&mut tx), hex(expected_128));
    let expected_256 = "81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d bffe0a50
        a2eaa5c1 110555be 8415f658 c61de047 6f1b6fad 1d1eb30c 4446839f 57ff6f6c b26ac3be
        800005d4";
    let mut tx = rfc7714(32, 0x5d4);
    assert_eq!(protect_rtcp(&mut tx), hex(expected_256));
    // The index moves on: the next report is sealed under another nonce.
    assert_ne!(protect_rtcp(&mut tx), hex(expected_256));
}

#[test]
fn each_side_sends_with_its_own_half_of_the_keying_material() {
    // 128-bit keys: client key, server key, client salt, server salt.
    let material: Vec<u8> = (0..56).collect();
    let server = Keying {
        profile: SrtpProfile::AEAD_AES_128_GCM,
        material: material.clone(),
        client: false,
    };
    let client = Keying {
        profile: SrtpProfile::AEAD_AES_128_GCM,
        material: material.clone(),
        client: true,
    };
    let (server, client) = (SrtpTx::new(&server).unwrap(), SrtpTx::new(&client).unwrap());
    assert_ne!(protect_rtp(&server), protect_rtp(&client));
    let mut key = [0u8; 16];
    let mut salt = [0u8; 12];
    derive(
        &material[16..32],
        &material[44..56],
        LABEL_RTP_KEY,
        &mut key,
    );
    derive(
        &material[16..32],
        &material[44..56],
        LABEL_RTP_SALT,
        &mut salt,
    );
    let by_hand = SrtpTx::with_session_keys((&key, salt), (&key, salt), 0);
    assert_eq!(protect_rtp(&server), protect_rtp(&by_hand));
    // A profile without AEAD is left to str0m.
    let cm = Keying {
        profile: SrtpProfile::AES128_CM_SHA1_80,
        material: vec![0; 60],
        client: false,
    };
    assert!(SrtpTx::new(&cm).is_none());
}
