//! The `Date` header value: an IMF-fixdate (RFC 9110 §5.6.7) from seconds the caller supplies.

/// An IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`: always 29 ASCII bytes.
///
/// There is no clock here. A shard reads its clock once per loop tick and keeps an
/// [`HttpDateCache`], so the date is formatted at most once a second, not once a response.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HttpDate {
    text: [u8; HttpDate::LEN],
}

impl HttpDate {
    /// The length of every IMF-fixdate.
    pub const LEN: usize = 29;

    /// The last second with a four-digit year, 9999-12-31 23:59:59 UTC; later times are
    /// formatted as this one.
    pub const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

    /// Formats `unix_seconds` (seconds since 1970-01-01 00:00:00 UTC).
    pub fn from_unix_seconds(unix_seconds: u64) -> HttpDate {
        const WEEKDAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
        const MONTHS: [&[u8; 3]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        let unix_seconds = unix_seconds.min(Self::MAX_UNIX_SECONDS);
        let days = unix_seconds / 86_400;
        let second_of_day = unix_seconds % 86_400;
        let (year, month, day) = civil_from_days(days);

        let mut text = *b"Thu, 01 Jan 1970 00:00:00 GMT";
        text[0..3].copy_from_slice(WEEKDAYS[index(days % 7)]);
        put_digits(&mut text[5..7], day);
        text[8..11].copy_from_slice(MONTHS[index(month - 1)]);
        put_digits(&mut text[12..16], year);
        put_digits(&mut text[17..19], second_of_day / 3600);
        put_digits(&mut text[20..22], second_of_day / 60 % 60);
        put_digits(&mut text[23..25], second_of_day % 60);
        HttpDate { text }
    }

    /// The 29 bytes, ready to be written after `Date: `.
    pub fn as_bytes(&self) -> &[u8; HttpDate::LEN] {
        &self.text
    }

    /// The date as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text).expect("an HttpDate is ASCII")
    }
}

impl std::fmt::Debug for HttpDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("HttpDate").field(&self.as_str()).finish()
    }
}

/// The current [`HttpDate`], re-formatted only when the second changes.
#[derive(Clone, Copy, Debug)]
pub struct HttpDateCache {
    unix_seconds: u64,
    date: HttpDate,
}

impl HttpDateCache {
    /// A cache holding the date for `unix_seconds`.
    pub fn new(unix_seconds: u64) -> HttpDateCache {
        HttpDateCache {
            unix_seconds,
            date: HttpDate::from_unix_seconds(unix_seconds),
        }
    }

    /// The date for `unix_seconds`, formatting it only if it differs from the last call's.
    pub fn at(&mut self, unix_seconds: u64) -> &HttpDate {
        if unix_seconds != self.unix_seconds {
            *self = HttpDateCache::new(unix_seconds);
        }
        &self.date
    }
}

/// The proleptic Gregorian (year, month 1–12, day 1–31) of a day count from 1970-01-01.
///
/// Howard Hinnant's `civil_from_days`, for non-negative day counts: shift to an era starting on
/// 0000-03-01 so that the leap day ends each 400-year cycle, then peel off years and months.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
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

/// Writes `value` as zero-padded decimal filling `out`.
fn put_digits(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
    assert_eq!(value, 0, "value wider than its field");
}

fn index(n: u64) -> usize {
    usize::try_from(n).expect("a small table index")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_timestamps() {
        let cases = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_700_000_000, "Tue, 14 Nov 2023 22:13:20 GMT"),
            (1_709_164_799, "Wed, 28 Feb 2024 23:59:59 GMT"),
            (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 GMT"),
            (1_709_251_200, "Fri, 01 Mar 2024 00:00:00 GMT"),
            (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
            (HttpDate::MAX_UNIX_SECONDS, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (u64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for (unix_seconds, expected) in cases {
            let date = HttpDate::from_unix_seconds(unix_seconds);
            assert_eq!(date.as_str(), expected, "{unix_seconds}");
            assert_eq!(date.as_bytes().len(), HttpDate::LEN);
        }
    }

    #[test]
    fn every_day_of_a_leap_cycle_is_consistent() {
        // Walk day by day from 1970 to 2401 and check the calendar advances one day at a time.
        let mut previous = civil_from_days(0);
        assert_eq!(previous, (1970, 1, 1));
        for days in 1..(431 * 366) {
            let (year, month, day) = civil_from_days(days);
            let (p_year, p_month, p_day) = previous;
            let next_day = (year, month, day) == (p_year, p_month, p_day + 1);
            let next_month = (year, month, day) == (p_year, p_month + 1, 1);
            let next_year = (year, month, day) == (p_year + 1, 1, 1) && p_month == 12;
            assert!(next_day || next_month || next_year, "{days}: {previous:?}");
            if next_month || next_year {
                let leap = p_year % 4 == 0 && (p_year % 100 != 0 || p_year % 400 == 0);
                let month_len = match p_month {
                    2 if leap => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                assert_eq!(p_day, month_len, "{previous:?}");
            }
            previous = (year, month, day);
        }
    }

    #[test]
    fn cache_reformats_only_on_a_new_second() {
        let mut cache = HttpDateCache::new(0);
        assert_eq!(cache.at(0).as_str(), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            cache.at(784_111_777).as_str(),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            cache.at(784_111_778).as_str(),
            "Sun, 06 Nov 1994 08:49:38 GMT"
        );
    }
}
