//! Query strings (`a=1&b=x%20y`), parsed in one place for every URL shardcast reads: HTTP
//! request targets and RTMP publish names (`stream?key=K&role=backup`).
//!
//! Values are percent-decoded (RFC 3986 §2.1). `+` stays a plus sign: it means a space only in
//! HTML form bodies (`application/x-www-form-urlencoded`), and stream keys and tokens may
//! contain it. A malformed escape (`%zz`, a truncated `%4`) is kept as written, and a value
//! that does not decode to UTF-8 is refused (`None`), so a lookup never panics and never
//! guesses.

use std::borrow::Cow;

/// Longest query looked at, in bytes; past it lookups find nothing. Request heads and RTMP
/// commands are capped well below this already.
pub const QUERY_MAX_BYTES: usize = 16 * 1024;

/// A borrowed query string (without the `?`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Query<'a>(&'a str);

impl<'a> Query<'a> {
    /// The query of `text`, which is the part after `?` (or nothing).
    pub fn new(text: &'a str) -> Self {
        if text.len() > QUERY_MAX_BYTES {
            return Query("");
        }
        Query(text)
    }

    /// Splits `target` (`path?query`) into its path and query.
    pub fn split(target: &'a str) -> (&'a str, Query<'a>) {
        match target.split_once('?') {
            Some((path, query)) => (path, Query::new(query)),
            None => (target, Query("")),
        }
    }

    /// The raw text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// The decoded value of the first `key` (keys compare after decoding). A key with no `=`
    /// has the empty value.
    pub fn get(&self, key: &str) -> Option<Cow<'a, str>> {
        self.pairs().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The raw text without the pairs whose (decoded) key is one of `keys`: what may be
    /// passed on (to a webhook, a log) when those hold secrets.
    pub fn without(&self, keys: &[&str]) -> String {
        self.0
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter(|pair| {
                let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
                !decode(key).is_some_and(|k| keys.contains(&&*k))
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The decoded `(key, value)` pairs in order; pairs that do not decode to UTF-8 are
    /// skipped.
    pub fn pairs(&self) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> + 'a {
        self.0
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                Some((decode(key)?, decode(value)?))
            })
    }
}

/// Percent-decodes `text`; `None` when the result is not UTF-8.
pub fn decode(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains('%') {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| Some((hex(*bytes.get(i + 1)?)? << 4) | hex(*bytes.get(i + 2)?)?))
            .flatten();
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a value put back into
/// a URL (a playback token carried on every playlist URI).
pub fn encode(value: &str) -> Cow<'_, str> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if value.bytes().all(unreserved) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_decoded_values_by_decoded_keys() {
        let q = Query::new("key=a%2Fb&role=backup&empty&x%20y=1&token=abc.def");
        assert_eq!(q.get("key").as_deref(), Some("a/b"));
        assert_eq!(q.get("role").as_deref(), Some("backup"));
        assert_eq!(q.get("empty").as_deref(), Some(""));
        assert_eq!(q.get("x y").as_deref(), Some("1"));
        assert_eq!(q.get("token").as_deref(), Some("abc.def"));
        assert_eq!(q.get("missing"), None);
    }

    #[test]
    fn the_first_of_repeated_keys_wins_and_plus_is_literal() {
        let q = Query::new("k=1&k=2&p=a+b");
        assert_eq!(q.get("k").as_deref(), Some("1"));
        assert_eq!(q.get("p").as_deref(), Some("a+b"));
    }

    #[test]
    fn malformed_escapes_are_kept_and_bad_utf8_is_refused() {
        assert_eq!(decode("100%").as_deref(), Some("100%"));
        assert_eq!(decode("%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(decode("%E2%82%AC").as_deref(), Some("€"));
        assert_eq!(decode("%FF"), None);
        let q = Query::new("bad=%FF&good=1");
        assert_eq!(q.get("bad"), None);
        assert_eq!(q.get("good").as_deref(), Some("1"));
    }

    #[test]
    fn split_and_encode_round_trip() {
        let (path, q) = Query::split("/live/a/index.m3u8?token=x%2By&_HLS_msn=3");
        assert_eq!(path, "/live/a/index.m3u8");
        assert_eq!(q.get("token").as_deref(), Some("x+y"));
        assert_eq!(Query::split("/healthz").1.as_str(), "");
        for value in ["plain-._~", "a b/c?d&e=f", "€", "x+y"] {
            assert_eq!(decode(&encode(value)).as_deref(), Some(value));
        }
        assert!(matches!(encode("abc"), Cow::Borrowed(_)));
    }

    #[test]
    fn oversized_queries_find_nothing() {
        let long = format!("k=v&{}", "x".repeat(QUERY_MAX_BYTES));
        assert_eq!(Query::new(&long).get("k"), None);
    }

    #[test]
    fn without_drops_the_named_keys_however_they_are_encoded() {
        let q = Query::new("role=backup&key=s3cret&%74oken=t&x=1&token");
        assert_eq!(q.without(&["key", "token"]), "role=backup&x=1");
        assert_eq!(Query::new("").without(&["key"]), "");
    }
}
