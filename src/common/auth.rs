//! Signed tokens: HMAC-SHA256 over a small JSON claim set, minted by `shardcast token` and
//! checked by the shards without any I/O.
//!
//! Format: `base64url(claims_json) "." base64url(hmac_sha256(secret, claims_part))`, no
//! padding. Claims: `{"u": user, "r": room or stream ("*" = any), "role": "viewer"|"speaker"|
//! "admin"|"cohost", "exp": unix seconds, "aud": "chat"|"play"|"publish"}`. Every check names the
//! audience it accepts, so a token minted for one use is refused for the others. Tokens are
//! capped at [`TOKEN_MAX_BYTES`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Longest token accepted; longer input is refused before any decoding.
pub const TOKEN_MAX_BYTES: usize = 1024;

/// What a token lets its holder do in a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads, chats, likes, sends gifts.
    Viewer,
    /// The room's host: chats at paid priority.
    Speaker,
    /// Moderates: may kick users.
    Admin,
    /// A publish token's holder joins the stream's co-hosting stage as a guest (a feed
    /// `{stream}~{slot}` with slot 1 or more), never as its owner.
    Cohost,
}

impl Role {
    /// Parses "viewer", "speaker" or "admin".
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "speaker" => Some(Role::Speaker),
            "admin" => Some(Role::Admin),
            "cohost" => Some(Role::Cohost),
            _ => None,
        }
    }
}

/// What a token is for. A token is valid for its audience only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    /// Danmaku: join a room, and with a role, chat, like, gift or kick.
    Chat,
    /// Playback: `/live/` requests when `media.playback_tokens` is on.
    Play,
    /// Publishing the stream named by the claims' room (`media.publish_tokens`).
    Publish,
    /// The admin API (`/api/v1/wallets/…`, `/api/v1/rooms/…`): the platform's own services.
    Admin,
}

impl Audience {
    /// Parses "chat", "play", "publish" or "admin".
    pub fn parse(text: &str) -> Option<Audience> {
        match text {
            "chat" => Some(Audience::Chat),
            "play" => Some(Audience::Play),
            "publish" => Some(Audience::Publish),
            "admin" => Some(Audience::Admin),
            _ => None,
        }
    }
}

/// The signed claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "u")]
    pub user: String,
    #[serde(rename = "r")]
    pub room: String,
    pub role: Role,
    #[serde(rename = "exp")]
    pub expires_unix_s: u64,
    /// What the token is for.
    #[serde(rename = "aud")]
    pub audience: Audience,
}

impl Claims {
    /// True when the token is valid for `room`.
    pub fn allows_room(&self, room: &str) -> bool {
        self.room == "*" || self.room == room
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Longer than [`TOKEN_MAX_BYTES`].
    #[error("token too long: {seen} bytes (limit {limit})")]
    TooLong { limit: usize, seen: usize },
    /// Not two base64url parts, or the claims are not the expected JSON.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match: another secret, or a modified token.
    #[error("bad token signature")]
    BadSignature,
    /// Minted for another use (a chat token offered for playback, say).
    #[error("token is for {found:?}, not {expected:?}")]
    WrongAudience { expected: Audience, found: Audience },
    /// Past its expiry.
    #[error("token expired at {expires_unix_s} (now {now_unix_s})")]
    Expired {
        expires_unix_s: u64,
        now_unix_s: u64,
    },
}

/// A signing key.
#[derive(Clone)]
pub struct TokenKey {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl TokenKey {
    /// A key from a secret (any length; 32 random bytes or more is what it should be).
    pub fn new(secret: &[u8]) -> TokenKey {
        TokenKey {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(&self.secret).expect("HMAC takes any key length")
    }

    /// Signs `claims`.
    pub fn mint(&self, claims: &Claims) -> String {
        let json = serde_json::to_vec(claims).expect("claims serialize");
        let body = URL_SAFE_NO_PAD.encode(json);
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{signature}")
    }

    /// Checks the signature (in constant time) and the expiry, and returns the claims.
    pub fn verify(&self, token: &str, now_unix_s: u64) -> Result<Claims, TokenError> {
        if token.len() > TOKEN_MAX_BYTES {
            return Err(TokenError::TooLong {
                limit: TOKEN_MAX_BYTES,
                seen: token.len(),
            });
        }
        let (body, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.expires_unix_s <= now_unix_s {
            return Err(TokenError::Expired {
                expires_unix_s: claims.expires_unix_s,
                now_unix_s,
            });
        }
        Ok(claims)
    }

    /// [`TokenKey::verify`], and the token must be for `audience`.
    pub fn verify_for(
        &self,
        token: &str,
        now_unix_s: u64,
        audience: Audience,
    ) -> Result<Claims, TokenError> {
        let claims = self.verify(token, now_unix_s)?;
        if claims.audience != audience {
            return Err(TokenError::WrongAudience {
                expected: audience,
                found: claims.audience,
            });
        }
        Ok(claims)
    }
}

/// Compares two secrets in time that depends on their lengths only, not on where they
/// differ (stream keys: a guesser learns nothing from the response time).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Parses durations like `90s`, `15m`, `12h`, `7d` (a bare number is seconds).
pub fn parse_duration_s(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: u64 = number.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    value.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            user: "alice".into(),
            room: "room-1".into(),
            role: Role::Speaker,
            expires_unix_s: 2_000,
            audience: Audience::Chat,
        }
    }

    #[test]
    fn a_token_is_refused_for_any_audience_but_its_own() {
        let key = TokenKey::new(b"0123456789abcdef0123456789abcdef");
        for audience in [Audience::Chat, Audience::Play, Audience::Publish] {
            let token = key.mint(&Claims {
                audience,
                ..claims()
            });
            for other in [Audience::Chat, Audience::Play, Audience::Publish] {
                let result = key.verify_for(&token, 1_000, other);
                if other == audience {
                    assert!(result.is_ok());
                } else {
                    assert_eq!(
                        result,
                        Err(TokenError::WrongAudience {
                            expected: other,
                            found: audience
                        })
                    );
                }
            }
        }
        // A token without an audience (an older format) is refused, not taken as any.
        let json = r#"{"u":"a","r":"*","role":"viewer","exp":2000}"#;
        let body = URL_SAFE_NO_PAD.encode(json);
        let mut mac = key.mac();
        mac.update(body.as_bytes());
        let token = format!(
            "{body}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(key.verify(&token, 1_000), Err(TokenError::Malformed));
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"key-1", b"key-1"));
        assert!(!constant_time_eq(b"key-1", b"key-2"));
        assert!(!constant_time_eq(b"key-1", b"key-10"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn minted_tokens_verify_until_expiry() {
        let key = TokenKey::new(b"0123456789abcdef0123456789abcdef");
        let token = key.mint(&claims());
        assert_eq!(key.verify(&token, 1_999), Ok(claims()));
        assert_eq!(
            key.verify(&token, 2_000),
            Err(TokenError::Expired {
                expires_unix_s: 2_000,
                now_unix_s: 2_000
            })
        );
    }

    #[test]
    fn another_key_or_any_modification_is_refused() {
        let key = TokenKey::new(b"secret-a");
        let token = key.mint(&claims());
        assert_eq!(
            TokenKey::new(b"secret-b").verify(&token, 0),
            Err(TokenError::BadSignature)
        );
        // Flip every character in turn: never accepted.
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let Ok(modified) = String::from_utf8(bytes) else {
                continue;
            };
            if modified != token {
                assert!(key.verify(&modified, 0).is_err(), "accepted change at {i}");
            }
        }
        assert_eq!(key.verify("nodot", 0), Err(TokenError::Malformed));
        assert!(matches!(
            key.verify(&"a".repeat(2000), 0),
            Err(TokenError::TooLong { .. })
        ));
    }

    #[test]
    fn rooms_and_durations() {
        let mut c = claims();
        assert!(c.allows_room("room-1") && !c.allows_room("room-2"));
        c.room = "*".into();
        assert!(c.allows_room("anything"));
        assert_eq!(parse_duration_s("90"), Some(90));
        assert_eq!(parse_duration_s("15m"), Some(900));
        assert_eq!(parse_duration_s("2h"), Some(7200));
        assert_eq!(parse_duration_s("7d"), Some(604_800));
        assert_eq!(parse_duration_s("1w"), None);
        assert_eq!(parse_duration_s(""), None);
    }
}
