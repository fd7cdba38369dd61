//! Text building blocks shared by the writers: deterministic numbers, ISO 8601 times, names and
//! URI queries that are safe inside a quoted attribute.
//!
//! Numbers never go through `f64`: durations are integer ticks converted to integer
//! milliseconds in one place ([`ticks_to_ms`]) and written as `seconds.mmm`, so output is
//! identical on every platform and never uses an exponent.

use std::fmt::{self, Write as _};

/// The longest URI query accepted by [`UriQuery::new`], in bytes. A playlist repeats the query
/// on every URI (about 600 for a 600 s window with 2 s segments and parts), so the cap bounds a
/// playlist's growth at ~1.2 MB in the worst case; real tokens are under 200 bytes.
pub const URI_QUERY_MAX_BYTES: usize = 2048;

/// The longest rendition name [`is_valid_name`] accepts, in bytes.
pub const NAME_MAX_BYTES: usize = 64;

/// The longest codec string [`is_valid_codecs`] accepts, in bytes.
pub const CODECS_MAX_BYTES: usize = 128;

/// A query string to append to every URI a writer emits (signed playback URLs: `token=...`).
///
/// It usually comes from the viewer's own request, so it is checked here rather than trusted:
/// only RFC 3986 query characters are accepted, minus those that would need escaping in an M3U8
/// quoted string (`"`, whitespace) — which RFC 3986 forbids anyway. `&` and `$` are legal and
/// are escaped where the format needs it (XML, DASH templates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UriQuery<'a>(&'a str);

/// Why a query string was refused by [`UriQuery::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UriQueryError {
    /// The query is empty (after an optional leading `?`).
    Empty,
    /// The query is longer than [`URI_QUERY_MAX_BYTES`].
    TooLong {
        /// The limit.
        max_bytes: usize,
        /// The length seen.
        len_bytes: usize,
    },
    /// A byte outside the RFC 3986 query characters, or a `%` not followed by two hex digits.
    BadByte {
        /// Where, counting from the first byte after any leading `?`.
        offset: usize,
    },
}

impl fmt::Display for UriQueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UriQueryError::Empty => f.write_str("empty URI query"),
            UriQueryError::TooLong {
                max_bytes,
                len_bytes,
            } => write!(f, "URI query of {len_bytes} bytes exceeds {max_bytes}"),
            UriQueryError::BadByte { offset } => {
                write!(f, "URI query has an invalid byte at offset {offset}")
            }
        }
    }
}

impl std::error::Error for UriQueryError {}

impl<'a> UriQuery<'a> {
    /// Checks `query` (with or without its leading `?`).
    pub fn new(query: &'a str) -> Result<Self, UriQueryError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        if query.is_empty() {
            return Err(UriQueryError::Empty);
        }
        if query.len() > URI_QUERY_MAX_BYTES {
            return Err(UriQueryError::TooLong {
                max_bytes: URI_QUERY_MAX_BYTES,
                len_bytes: query.len(),
            });
        }
        let bytes = query.as_bytes();
        let mut offset = 0;
        while offset < bytes.len() {
            let b = bytes[offset];
            if b == b'%' {
                let hex = bytes.get(offset + 1..offset + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return Err(UriQueryError::BadByte { offset });
                }
                offset += 3;
                continue;
            }
            if !is_query_byte(b) {
                return Err(UriQueryError::BadByte { offset });
            }
            offset += 1;
        }
        Ok(UriQuery(query))
    }

    /// The query, without a leading `?`.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// RFC 3986 `query` characters other than `%`: unreserved, sub-delims, `:`, `@`, `/`, `?`.
fn is_query_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b)
}

/// Whether `name` is usable as a rendition name: 1 to [`NAME_MAX_BYTES`] ASCII letters,
/// digits, `-`, `_` or `.`, and not `.` or `..`. Such a name is a safe URL path segment, M3U8
/// quoted string and XML attribute value as it is.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX_BYTES
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether `codecs` looks like an RFC 6381 codec string: 1 to [`CODECS_MAX_BYTES`] ASCII
/// letters, digits, `.`, `-`, `_` or `+` (one codec; the writers join them with `,`).
pub fn is_valid_codecs(codecs: &str) -> bool {
    !codecs.is_empty()
        && codecs.len() <= CODECS_MAX_BYTES
        && codecs
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'))
}

/// Converts a tick count to milliseconds, rounding half up. The one place media time changes
/// unit; 128-bit intermediate so no tick count overflows.
pub(crate) fn ticks_to_ms(ticks: u64, timescale: u32) -> u64 {
    debug_assert!(timescale > 0, "a timescale of 0 is a caller bug");
    let timescale = u128::from(timescale.max(1));
    let ms = (u128::from(ticks) * 1000 + timescale / 2) / timescale;
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// An ISO 8601 / RFC 3339 UTC time with milliseconds, `2024-05-06T07:08:09.010Z`, from Unix
/// milliseconds. Written by hand (days to civil date) so no clock or time library is involved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iso8601Ms(pub u64);

impl Iso8601Ms {
    /// The last millisecond with a four-digit year, 9999-12-31T23:59:59.999Z; later times are
    /// written as this one.
    pub const MAX_UNIX_MS: u64 = 253_402_300_799_999;
}

impl fmt::Display for Iso8601Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unix_ms = self.0.min(Self::MAX_UNIX_MS);
        let ms = unix_ms % 1000;
        let seconds = unix_ms / 1000;
        let (year, month, day) = civil_from_days(seconds / 86_400);
        let second_of_day = seconds % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60
        )
    }
}

/// (year, month 1..=12, day 1..=31) of the day `days` after 1970-01-01, by Howard Hinnant's
/// `civil_from_days` restricted to dates from 1970 on.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Appends text to a caller-owned `String`. Writing to a `String` cannot fail, so the methods
/// return `&mut Self` for chaining instead of a `fmt::Result`.
pub(crate) struct Text<'a> {
    out: &'a mut String,
}

impl<'a> Text<'a> {
    pub(crate) fn new(out: &'a mut String) -> Self {
        Text { out }
    }

    pub(crate) fn s(&mut self, text: &str) -> &mut Self {
        self.out.push_str(text);
        self
    }

    pub(crate) fn nl(&mut self) -> &mut Self {
        self.out.push('\n');
        self
    }

    pub(crate) fn display(&mut self, value: impl fmt::Display) -> &mut Self {
        write!(self.out, "{value}").expect("writing to a String cannot fail");
        self
    }

    pub(crate) fn u64(&mut self, value: u64) -> &mut Self {
        self.display(value)
    }

    /// Milliseconds as decimal seconds with exactly three decimals: `2002` → `2.002`.
    pub(crate) fn seconds_ms(&mut self, ms: u64) -> &mut Self {
        self.display(format_args!("{}.{:03}", ms / 1000, ms % 1000))
    }

    /// Milliseconds as an `xs:duration`, trailing zero decimals dropped: `PT2S`, `PT2.5S`.
    pub(crate) fn xs_duration_ms(&mut self, ms: u64) -> &mut Self {
        let (whole, frac) = (ms / 1000, ms % 1000);
        match frac {
            0 => self.display(format_args!("PT{whole}S")),
            f if f % 100 == 0 => self.display(format_args!("PT{whole}.{}S", f / 100)),
            f if f % 10 == 0 => self.display(format_args!("PT{whole}.{:02}S", f / 10)),
            f => self.display(format_args!("PT{whole}.{f:03}S")),
        }
    }

    /// A frame rate as decimal with three decimals (HLS `FRAME-RATE`): `30000/1001` → `29.970`.
    pub(crate) fn frame_rate_decimal(&mut self, num: u32, den: u32) -> &mut Self {
        let den = u64::from(den.max(1));
        let milli = (u64::from(num) * 1000 + den / 2) / den;
        self.seconds_ms(milli)
    }

    /// A rendition name (a URL path segment and quoted-string value). A name failing
    /// [`is_valid_name`] is a configuration bug: it panics in debug builds and has its bad
    /// bytes replaced with `_` in release builds.
    pub(crate) fn name(&mut self, name: &str) -> &mut Self {
        debug_assert!(is_valid_name(name), "invalid rendition name {name:?}");
        self.sanitized(name, |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
        })
    }

    /// An RFC 6381 codec string; as [`Text::name`], for [`is_valid_codecs`].
    pub(crate) fn codecs(&mut self, codecs: &str) -> &mut Self {
        debug_assert!(is_valid_codecs(codecs), "invalid codec string {codecs:?}");
        self.sanitized(codecs, |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+')
        })
    }

    fn sanitized(&mut self, text: &str, allowed: impl Fn(u8) -> bool) -> &mut Self {
        if text.bytes().all(&allowed) && !text.is_empty() {
            return self.s(text);
        }
        if text.is_empty() {
            return self.s("_");
        }
        for b in text.bytes() {
            self.out.push(if allowed(b) { char::from(b) } else { '_' });
        }
        self
    }

    /// `?query` or `&query` after a URI that does (`has_query`) or does not have one yet.
    pub(crate) fn query(&mut self, has_query: bool, query: Option<UriQuery<'_>>) -> &mut Self {
        if let Some(query) = query {
            self.s(if has_query { "&" } else { "?" }).s(query.as_str());
        }
        self
    }

    /// `text` escaped for an XML attribute value delimited by `"`.
    pub(crate) fn xml(&mut self, text: &str) -> &mut Self {
        for c in text.chars() {
            match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '"' => self.out.push_str("&quot;"),
                '\'' => self.out.push_str("&apos;"),
                c => self.out.push(c),
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(ms: u64) -> String {
        Iso8601Ms(ms).to_string()
    }

    #[test]
    fn iso8601_known_instants() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1), "1970-01-01T00:00:00.001Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(iso(1_234_567_890_123), "2009-02-13T23:31:30.123Z");
        assert_eq!(iso(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(iso(1_709_164_800_500), "2024-02-29T00:00:00.500Z");
        assert_eq!(iso(1_735_689_599_999), "2024-12-31T23:59:59.999Z");
        assert_eq!(iso(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
        assert_eq!(iso(4_107_456_000_000), "2100-02-28T00:00:00.000Z");
        assert_eq!(iso(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(iso(Iso8601Ms::MAX_UNIX_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(iso(u64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn iso8601_every_day_round_trips_through_a_day_count() {
        // Walk forward day by day from 1970 and check the civil date increments correctly.
        let (mut y, mut m, mut d) = (1970, 1, 1);
        for days in 0..(200 * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let month_len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > month_len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn numbers_are_fixed_point() {
        let mut out = String::new();
        Text::new(&mut out)
            .seconds_ms(0)
            .s(" ")
            .seconds_ms(2002)
            .s(" ")
            .seconds_ms(u64::MAX)
            .s(" ")
            .frame_rate_decimal(30000, 1001)
            .s(" ")
            .frame_rate_decimal(25, 1);
        assert_eq!(out, "0.000 2.002 18446744073709551.615 29.970 25.000");
        let mut out = String::new();
        let mut t = Text::new(&mut out);
        for ms in [0, 2000, 2500, 2250, 2002, 600_000] {
            t.xs_duration_ms(ms).s(" ");
        }
        assert_eq!(out, "PT0S PT2S PT2.5S PT2.25S PT2.002S PT600S ");
    }

    #[test]
    fn ticks_round_half_up() {
        assert_eq!(ticks_to_ms(180_180, 90_000), 2002);
        assert_eq!(ticks_to_ms(45, 90_000), 1); // 0.5 ms
        assert_eq!(ticks_to_ms(44, 90_000), 0);
        assert_eq!(ticks_to_ms(96_000, 48_000), 2000);
        assert_eq!(ticks_to_ms(u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn uri_query_validation() {
        assert_eq!(UriQuery::new("token=abc").unwrap().as_str(), "token=abc");
        assert_eq!(
            UriQuery::new("?token=a%2Fb&e=1").unwrap().as_str(),
            "token=a%2Fb&e=1"
        );
        assert_eq!(UriQuery::new(""), Err(UriQueryError::Empty));
        assert_eq!(UriQuery::new("?"), Err(UriQueryError::Empty));
        assert_eq!(
            UriQuery::new("t=\"x"),
            Err(UriQueryError::BadByte { offset: 2 })
        );
        assert_eq!(
            UriQuery::new("t=a\nb"),
            Err(UriQueryError::BadByte { offset: 3 })
        );
        assert_eq!(
            UriQuery::new("t=a b"),
            Err(UriQueryError::BadByte { offset: 3 })
        );
        assert_eq!(
            UriQuery::new("t=%4"),
            Err(UriQueryError::BadByte { offset: 2 })
        );
        assert_eq!(
            UriQuery::new("t=<x>"),
            Err(UriQueryError::BadByte { offset: 2 })
        );
        assert!(matches!(
            UriQuery::new("é"),
            Err(UriQueryError::BadByte { offset: 0 })
        ));
        let long = "a".repeat(URI_QUERY_MAX_BYTES + 1);
        assert_eq!(
            UriQuery::new(&long),
            Err(UriQueryError::TooLong {
                max_bytes: URI_QUERY_MAX_BYTES,
                len_bytes: URI_QUERY_MAX_BYTES + 1
            })
        );
    }

    #[test]
    fn names_and_codecs() {
        assert!(is_valid_name("source"));
        assert!(is_valid_name("720p"));
        assert!(is_valid_name("audio_en.1"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(".."));
        assert!(!is_valid_name("a/b"));
        assert!(!is_valid_name("a\"b"));
        assert!(is_valid_codecs("avc1.64001f"));
        assert!(is_valid_codecs("hvc1.1.6.L93.B0"));
        assert!(is_valid_codecs("mp4a.40.2"));
        assert!(!is_valid_codecs("avc1,mp4a"));
        assert!(!is_valid_codecs("a\nb"));
    }

    #[test]
    fn xml_escapes_all_five() {
        let mut out = String::new();
        Text::new(&mut out).xml("a&b<c>d\"e'f$");
        assert_eq!(out, "a&amp;b&lt;c&gt;d&quot;e&apos;f$");
    }
}
