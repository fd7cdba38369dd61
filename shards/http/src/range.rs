//! Single byte ranges (RFC 9110 §14): parsing `Range` and formatting `Content-Range`.

/// What a `Range` header asks of a representation of a known length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Serve the whole representation with 200: the header is absent from consideration
    /// because it is invalid, names another unit, or asks for several ranges.
    Full,
    /// Serve bytes `start..=end_inclusive` with 206 and
    /// [`ContentRange::bytes`]`(start, end_inclusive, len)`. Always
    /// `start <= end_inclusive < len`.
    Partial {
        /// The first byte.
        start: u64,
        /// The last byte, already clamped to the representation.
        end_inclusive: u64,
    },
    /// Answer 416 with [`ContentRange::unsatisfied`]`(len)`.
    Unsatisfiable,
}

/// Interprets a `Range` value against a representation of `len` bytes.
///
/// Supported: one `bytes=first-last`, `bytes=first-` or `bytes=-suffix` (the unit
/// case-insensitive, OWS allowed around list elements, empty list elements skipped).
///
/// - A last position past the end is clamped to the end; a suffix longer than the
///   representation selects all of it (RFC 9110 §14.1.2).
/// - A first position at or past the end, or a zero suffix, is unsatisfiable.
/// - Several ranges give [`RangeOutcome::Full`]: a server may ignore `Range` (RFC 9110 §14.2),
///   and media players ask for one range at a time, so multipart/byteranges is not worth
///   having.
/// - Invalid syntax, a last position before the first, or another unit give
///   [`RangeOutcome::Full`], as RFC 9110 §14.2 says to ignore such a header.
/// - On an empty representation every `first-` form is unsatisfiable; a non-zero suffix is
///   satisfiable but selects nothing, which 206 cannot express, so it gives
///   [`RangeOutcome::Full`] (a 200 with an empty body).
pub fn parse_range(value: &str, len: u64) -> RangeOutcome {
    let value = value.trim_matches(is_ows);
    let Some((unit, set)) = value.split_once('=') else {
        return RangeOutcome::Full;
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        return RangeOutcome::Full;
    }
    let mut specs = set
        .split(',')
        .map(|spec| spec.trim_matches(is_ows))
        .filter(|spec| !spec.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return RangeOutcome::Full;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeOutcome::Full;
    };

    if first.is_empty() {
        return match parse_position(last) {
            None => RangeOutcome::Full,
            Some(0) => RangeOutcome::Unsatisfiable,
            Some(_) if len == 0 => RangeOutcome::Full,
            Some(suffix) => RangeOutcome::Partial {
                start: len - suffix.min(len),
                end_inclusive: len - 1,
            },
        };
    }
    let Some(first) = parse_position(first) else {
        return RangeOutcome::Full;
    };
    let last = if last.is_empty() {
        None
    } else {
        match parse_position(last) {
            Some(last) if last >= first => Some(last),
            _ => return RangeOutcome::Full,
        }
    };
    if first >= len {
        return RangeOutcome::Unsatisfiable;
    }
    RangeOutcome::Partial {
        start: first,
        end_inclusive: last.map_or(len - 1, |last| last.min(len - 1)),
    }
}

/// A `Content-Range` value, formatted without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    text: [u8; ContentRange::MAX_LEN],
    len: usize,
}

impl ContentRange {
    /// `bytes ` + three 20-digit numbers + `-` + `/`.
    const MAX_LEN: usize = 6 + 20 + 1 + 20 + 1 + 20;

    /// `bytes {start}-{end_inclusive}/{complete_len}`, for a 206 response.
    ///
    /// # Panics
    ///
    /// Unless `start <= end_inclusive < complete_len`, which [`parse_range`] guarantees.
    pub fn bytes(start: u64, end_inclusive: u64, complete_len: u64) -> ContentRange {
        assert!(start <= end_inclusive && end_inclusive < complete_len);
        let mut range = ContentRange::empty();
        range.push(b"bytes ");
        range.push_number(start);
        range.push(b"-");
        range.push_number(end_inclusive);
        range.push(b"/");
        range.push_number(complete_len);
        range
    }

    /// `bytes */{complete_len}`, for a 416 response.
    pub fn unsatisfied(complete_len: u64) -> ContentRange {
        let mut range = ContentRange::empty();
        range.push(b"bytes */");
        range.push_number(complete_len);
        range
    }

    /// The value, to pass as a header to [`ResponseHead`](crate::ResponseHead).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text[..self.len]).expect("a ContentRange is ASCII")
    }

    fn empty() -> ContentRange {
        ContentRange {
            text: [0; ContentRange::MAX_LEN],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.text[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn push_number(&mut self, n: u64) {
        self.push(itoa::Buffer::new().format(n).as_bytes());
    }
}

impl std::fmt::Debug for ContentRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ContentRange").field(&self.as_str()).finish()
    }
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `1*DIGIT`, saturating: a position too large for `u64` is past the end of anything.
fn parse_position(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::RangeOutcome::{Full, Partial, Unsatisfiable};
    use super::*;

    fn partial(start: u64, end_inclusive: u64) -> RangeOutcome {
        Partial {
            start,
            end_inclusive,
        }
    }

    #[test]
    fn range_table() {
        let cases: &[(&str, u64, RangeOutcome)] = &[
            // first-last
            ("bytes=0-499", 10_000, partial(0, 499)),
            ("bytes=500-999", 10_000, partial(500, 999)),
            ("bytes=0-0", 1, partial(0, 0)),
            ("bytes=5-5", 10, partial(5, 5)),
            ("bytes=9500-20000", 10_000, partial(9500, 9999)),
            ("bytes=0-18446744073709551615", 10, partial(0, 9)),
            ("bytes=0-99999999999999999999999", 10, partial(0, 9)),
            // first-
            ("bytes=9500-", 10_000, partial(9500, 9999)),
            ("bytes=0-", 1, partial(0, 0)),
            ("bytes=9999-", 10_000, partial(9999, 9999)),
            // -suffix
            ("bytes=-500", 10_000, partial(9500, 9999)),
            ("bytes=-1", 10, partial(9, 9)),
            ("bytes=-10", 10, partial(0, 9)),
            ("bytes=-20000", 10_000, partial(0, 9999)),
            ("bytes=-99999999999999999999999", 10, partial(0, 9)),
            // out of bounds
            ("bytes=10000-", 10_000, Unsatisfiable),
            ("bytes=10000-10001", 10_000, Unsatisfiable),
            ("bytes=99999999999999999999999-", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            // zero-length representation
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=0-0", 0, Unsatisfiable),
            ("bytes=-5", 0, Full),
            ("bytes=-0", 0, Unsatisfiable),
            // tolerated spellings
            ("BYTES=1-2", 10, partial(1, 2)),
            ("  bytes=1-2  ", 10, partial(1, 2)),
            ("bytes= 1-2", 10, partial(1, 2)),
            ("bytes=1-2,", 10, partial(1, 2)),
            ("bytes=,1-2", 10, partial(1, 2)),
            // several ranges: served whole
            ("bytes=0-1,5-6", 10, Full),
            ("bytes=0-1, -2", 10, Full),
            ("bytes=20-30,40-50", 10, Full),
            // invalid: ignored
            ("bytes=5-3", 10, Full),
            ("bytes=", 10, Full),
            ("bytes=,", 10, Full),
            ("bytes=-", 10, Full),
            ("bytes=1", 10, Full),
            ("bytes=a-b", 10, Full),
            ("bytes=1-b", 10, Full),
            ("bytes=+1-2", 10, Full),
            ("bytes=1 -2", 10, Full),
            ("bytes=1-2-3", 10, Full),
            ("bytes=-1-2", 10, Full),
            ("bytes 1-2", 10, Full),
            ("bytes =1-2", 10, Full),
            ("items=1-2", 10, Full),
            ("", 10, Full),
            ("=1-2", 10, Full),
        ];
        for (value, len, expected) in cases {
            assert_eq!(parse_range(value, *len), *expected, "{value:?} of {len}");
        }
    }

    #[test]
    fn partial_outcomes_are_in_bounds() {
        let values = [
            "bytes=0-",
            "bytes=-1",
            "bytes=3-7",
            "bytes=-100",
            "bytes=7-100",
        ];
        for len in 0..20 {
            for value in values {
                if let Partial {
                    start,
                    end_inclusive,
                } = parse_range(value, len)
                {
                    assert!(
                        start <= end_inclusive && end_inclusive < len,
                        "{value} {len}"
                    );
                    ContentRange::bytes(start, end_inclusive, len);
                }
            }
        }
    }

    #[test]
    fn content_range_formatting() {
        assert_eq!(
            ContentRange::bytes(0, 499, 1234).as_str(),
            "bytes 0-499/1234"
        );
        assert_eq!(ContentRange::bytes(5, 5, 6).as_str(), "bytes 5-5/6");
        assert_eq!(ContentRange::unsatisfied(1234).as_str(), "bytes */1234");
        assert_eq!(ContentRange::unsatisfied(0).as_str(), "bytes */0");
        let widest = ContentRange::bytes(u64::MAX - 2, u64::MAX - 1, u64::MAX);
        assert_eq!(
            widest.as_str(),
            "bytes 18446744073709551613-18446744073709551614/18446744073709551615"
        );
    }

    #[test]
    #[should_panic]
    fn content_range_refuses_an_inverted_range() {
        ContentRange::bytes(5, 4, 10);
    }
}
