//! LL-HLS blocking playlist reload (rfc8216bis §6.2.5.2): what a request with `_HLS_msn` and
//! `_HLS_part` waits for.
//!
//! The caller's sequence for a media playlist request:
//!
//! 1. [`parse_blocking_reload`] with the request's query and the rendition's current
//!    [`Progress`]. An error is answered with [`ReloadError::status`] (400) at once; `Ok(None)`
//!    is an ordinary request, answered at once.
//! 2. While [`BlockingReload::is_satisfied`] is false for the rendition's latest progress, hold
//!    the request, re-checking each time the index publishes a part or segment.
//! 3. Answer with the whole playlist once satisfied; answer 503 if still waiting after
//!    [`blocking_reload_timeout_ms`] (the clock is the caller's).
//!
//! `_HLS_skip` is accepted and ignored: delta updates are not implemented and `CAN-SKIP-UNTIL`
//! is never advertised, so a client that sends it anyway gets the full playlist, which the spec
//! allows.

use std::fmt;

use super::model::PartRef;

/// How far a rendition has got: what a blocking reload is compared with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The media sequence number of the last complete segment.
    pub last_msn: Option<u64>,
    /// The last published part (possibly of the segment in progress).
    pub last_part: Option<PartRef>,
    /// Whether the playlist has `EXT-X-ENDLIST`: directives are then ignored (§6.2.5.2).
    pub ended: bool,
}

/// A blocking playlist reload: hold the response until segment `msn` (or its part `part`)
/// is in the playlist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockingReload {
    /// `_HLS_msn`.
    pub msn: u64,
    /// `_HLS_part`, if given.
    pub part: Option<u32>,
}

/// Why a blocking reload request is refused; every variant is a 400 (§6.2.5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadError {
    /// `_HLS_part` without `_HLS_msn`: the spec requires Bad Request.
    PartWithoutMsn,
    /// A directive's value is not a decimal number that fits (u64 for msn, u32 for part).
    Malformed {
        /// The directive's name.
        directive: &'static str,
    },
    /// A directive appears twice.
    Repeated {
        /// The directive's name.
        directive: &'static str,
    },
    /// `_HLS_msn` is more than two segments past the last complete segment.
    MsnTooFarAhead {
        /// The largest msn that would have been accepted.
        max_msn: u64,
        /// The msn asked for.
        msn: u64,
    },
    /// `_HLS_part` is further ahead of the last published part than the Advance Part Limit.
    PartTooFarAhead {
        /// The Advance Part Limit, in parts.
        limit_parts: u64,
        /// How many parts ahead of the last published part the request is (at least).
        ahead_parts: u64,
    },
}

impl ReloadError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        400
    }
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::PartWithoutMsn => f.write_str("_HLS_part without _HLS_msn"),
            ReloadError::Malformed { directive } => write!(f, "malformed {directive}"),
            ReloadError::Repeated { directive } => write!(f, "{directive} given twice"),
            ReloadError::MsnTooFarAhead { max_msn, msn } => {
                write!(f, "_HLS_msn={msn} is past the limit of {max_msn}")
            }
            ReloadError::PartTooFarAhead {
                limit_parts,
                ahead_parts,
            } => write!(
                f,
                "_HLS_part is {ahead_parts} parts ahead, past the limit of {limit_parts}"
            ),
        }
    }
}

impl std::error::Error for ReloadError {}

/// The longest value of a directive, in bytes: a u64 has at most 20 digits.
const DIRECTIVE_VALUE_MAX_BYTES: usize = 20;

/// Reads the blocking-reload directives from a playlist request's query (with or without its
/// leading `?`; other parameters such as a token are ignored) and checks them against
/// `progress` and the stream's part target.
///
/// `Ok(None)` means no `_HLS_msn`: an ordinary request. Once the playlist has ended the
/// directives are ignored (`Ok(None)`) after the syntax checks.
pub fn parse_blocking_reload(
    query: &str,
    progress: &Progress,
    part_target_ms: Option<u32>,
) -> Result<Option<BlockingReload>, ReloadError> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut msn: Option<u64> = None;
    let mut part: Option<u32> = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "_HLS_msn" => set_once(&mut msn, "_HLS_msn", parse_decimal(value, "_HLS_msn")?)?,
            "_HLS_part" => {
                let value = parse_decimal(value, "_HLS_part")?;
                let value = u32::try_from(value).map_err(|_| ReloadError::Malformed {
                    directive: "_HLS_part",
                })?;
                set_once(&mut part, "_HLS_part", value)?;
            }
            // Accepted and ignored: see the module documentation.
            _ => {}
        }
    }
    let Some(msn) = msn else {
        return match part {
            Some(_) => Err(ReloadError::PartWithoutMsn),
            None => Ok(None),
        };
    };
    if progress.ended {
        return Ok(None);
    }
    let request = BlockingReload { msn, part };
    request.check_reach(progress, part_target_ms)?;
    Ok(Some(request))
}

/// How long to hold a blocking reload before answering 503 (§6.2.5.2: a server that cannot
/// answer after blocking for more than three target durations SHOULD return 503).
pub fn blocking_reload_timeout_ms(target_duration_s: u32) -> u64 {
    3 * u64::from(target_duration_s) * 1000
}

/// The Advance Part Limit in parts: three seconds' worth of parts when the part target is under
/// a second (3 / part target, rounded up), else 3.
pub fn advance_part_limit_parts(part_target_ms: u32) -> u64 {
    let part_target_ms = u64::from(part_target_ms.max(1));
    if part_target_ms < 1000 {
        3000u64.div_ceil(part_target_ms)
    } else {
        3
    }
}

impl BlockingReload {
    /// Whether a playlist at `progress` answers this request: segment `msn` is complete, or,
    /// with a part, that part is published. A part index past the last part of a complete
    /// segment means part 0 of the next one (§6.2.5.2). An ended playlist answers everything.
    pub fn is_satisfied(&self, progress: &Progress) -> bool {
        if progress.ended {
            return true;
        }
        let complete = |msn: u64| progress.last_msn.is_some_and(|last| last >= msn);
        let Some(part) = self.part else {
            return complete(self.msn);
        };
        let wanted = PartRef {
            msn: self.msn,
            part_index: part,
        };
        if progress.last_part.is_some_and(|last| last >= wanted) {
            return true;
        }
        if !complete(self.msn) {
            return false;
        }
        match progress.last_part {
            // Segment msn is complete and its last part is before the one asked for: the
            // request is for part 0 of the next segment.
            Some(last) if last.msn == self.msn => complete(self.msn + 1),
            // Complete, and no parts of it are known (LL-HLS off, or its parts already
            // dropped): the segment itself contains the part.
            _ => true,
        }
    }

    /// Refuses requests too far ahead (§6.2.5.2 SHOULDs): an msn more than two past the last
    /// complete segment, or a part more than the Advance Part Limit past the last part.
    fn check_reach(
        &self,
        progress: &Progress,
        part_target_ms: Option<u32>,
    ) -> Result<(), ReloadError> {
        // With no complete segment yet, the segment in progress stands in for "last + 1".
        let max_msn = match (progress.last_msn, progress.last_part) {
            (Some(last), _) => last.saturating_add(2),
            (None, Some(part)) => part.msn.saturating_add(1),
            (None, None) => 1,
        };
        if self.msn > max_msn {
            return Err(ReloadError::MsnTooFarAhead {
                max_msn,
                msn: self.msn,
            });
        }
        let (Some(part), Some(last), Some(part_target_ms)) =
            (self.part, progress.last_part, part_target_ms)
        else {
            return Ok(());
        };
        // Parts per segment are not fixed, so a request in a later segment is counted as at
        // least part + 1 ahead: a lower bound, which never refuses a reachable request.
        let ahead_parts = if self.msn == last.msn {
            u64::from(part.saturating_sub(last.part_index))
        } else if self.msn > last.msn {
            u64::from(part) + 1
        } else {
            0
        };
        let limit_parts = advance_part_limit_parts(part_target_ms);
        if ahead_parts > limit_parts {
            return Err(ReloadError::PartTooFarAhead {
                limit_parts,
                ahead_parts,
            });
        }
        Ok(())
    }
}

fn set_once<T>(slot: &mut Option<T>, directive: &'static str, value: T) -> Result<(), ReloadError> {
    if slot.is_some() {
        return Err(ReloadError::Repeated { directive });
    }
    *slot = Some(value);
    Ok(())
}

/// A non-empty run of ASCII digits that fits a u64: no sign, no spaces, no percent-encoding.
fn parse_decimal(value: &str, directive: &'static str) -> Result<u64, ReloadError> {
    let malformed = ReloadError::Malformed { directive };
    if value.is_empty()
        || value.len() > DIRECTIVE_VALUE_MAX_BYTES
        || !value.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(malformed);
    }
    value.parse().map_err(|_| malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(last_msn: Option<u64>, last_part: Option<(u64, u32)>) -> Progress {
        Progress {
            last_msn,
            last_part: last_part.map(|(msn, part_index)| PartRef { msn, part_index }),
            ended: false,
        }
    }

    fn req(msn: u64, part: Option<u32>) -> BlockingReload {
        BlockingReload { msn, part }
    }

    #[test]
    fn parse_table() {
        // Segment 10 complete; segment 11 has parts 0..=2. Part target 500 ms: limit 6 parts.
        let p = at(Some(10), Some((11, 2)));
        let pt = Some(500);
        let ok = |q: &str| parse_blocking_reload(q, &p, pt);
        let cases: &[(&str, Result<Option<BlockingReload>, ReloadError>)] = &[
            ("", Ok(None)),
            ("token=abc", Ok(None)),
            ("_HLS_skip=YES", Ok(None)),
            ("_HLS_msn=11", Ok(Some(req(11, None)))),
            ("?_HLS_msn=11&_HLS_part=3", Ok(Some(req(11, Some(3))))),
            (
                "token=x&_HLS_part=3&_HLS_msn=11&_HLS_skip=v2",
                Ok(Some(req(11, Some(3)))),
            ),
            ("_HLS_msn=12", Ok(Some(req(12, None)))),
            ("_HLS_msn=3", Ok(Some(req(3, None)))),
            ("_HLS_part=3", Err(ReloadError::PartWithoutMsn)),
            ("token=x&_HLS_part=0", Err(ReloadError::PartWithoutMsn)),
            (
                "_HLS_msn=13",
                Err(ReloadError::MsnTooFarAhead {
                    max_msn: 12,
                    msn: 13,
                }),
            ),
            (
                "_HLS_msn=11&_HLS_part=9",
                Err(ReloadError::PartTooFarAhead {
                    limit_parts: 6,
                    ahead_parts: 7,
                }),
            ),
            ("_HLS_msn=11&_HLS_part=8", Ok(Some(req(11, Some(8))))),
            (
                "_HLS_msn=12&_HLS_part=6",
                Err(ReloadError::PartTooFarAhead {
                    limit_parts: 6,
                    ahead_parts: 7,
                }),
            ),
            ("_HLS_msn=12&_HLS_part=5", Ok(Some(req(12, Some(5))))),
            (
                "_HLS_msn=",
                Err(ReloadError::Malformed {
                    directive: "_HLS_msn",
                }),
            ),
            (
                "_HLS_msn",
                Err(ReloadError::Malformed {
                    directive: "_HLS_msn",
                }),
            ),
            (
                "_HLS_msn=abc",
                Err(ReloadError::Malformed {
                    directive: "_HLS_msn",
                }),
            ),
            (
                "_HLS_msn=-1",
                Err(ReloadError::Malformed {
                    directive: "_HLS_msn",
                }),
            ),
            (
                "_HLS_msn=+1",
                Err(ReloadError::Malformed {
                    directive: "_HLS_msn",
                }),
            ),
            (
                "_HLS_msn=1%30",
                Err(ReloadError::Malformed {
                    directive: "_HLS_msn",
                }),
            ),
            (
                "_HLS_msn=99999999999999999999",
                Err(ReloadError::Malformed {
                    directive: "_HLS_msn",
                }),
            ),
            (
                "_HLS_msn=11&_HLS_part=4294967296",
                Err(ReloadError::Malformed {
                    directive: "_HLS_part",
                }),
            ),
            (
                "_HLS_msn=11&_HLS_msn=11",
                Err(ReloadError::Repeated {
                    directive: "_HLS_msn",
                }),
            ),
        ];
        for (query, want) in cases {
            assert_eq!(&ok(query), want, "query {query:?}");
            if let Err(e) = want {
                assert_eq!(e.status(), 400);
            }
        }
    }

    #[test]
    fn ended_ignores_directives_but_not_syntax() {
        let p = Progress {
            ended: true,
            ..at(Some(10), None)
        };
        assert_eq!(
            parse_blocking_reload("_HLS_msn=99", &p, Some(500)),
            Ok(None)
        );
        assert_eq!(
            parse_blocking_reload("_HLS_part=1", &p, Some(500)),
            Err(ReloadError::PartWithoutMsn)
        );
        assert!(req(99, Some(3)).is_satisfied(&p));
    }

    #[test]
    fn before_the_first_segment() {
        let empty = at(None, None);
        assert_eq!(
            parse_blocking_reload("_HLS_msn=1", &empty, Some(500)),
            Ok(Some(req(1, None)))
        );
        assert!(parse_blocking_reload("_HLS_msn=2", &empty, Some(500)).is_err());
        let first_parts = at(None, Some((0, 1)));
        assert!(parse_blocking_reload("_HLS_msn=1&_HLS_part=0", &first_parts, Some(500)).is_ok());
        assert!(!req(0, Some(2)).is_satisfied(&first_parts));
        assert!(req(0, Some(1)).is_satisfied(&first_parts));
    }

    #[test]
    fn advance_part_limit() {
        assert_eq!(advance_part_limit_parts(500), 6);
        assert_eq!(advance_part_limit_parts(333), 10);
        assert_eq!(advance_part_limit_parts(1000), 3);
        assert_eq!(advance_part_limit_parts(2000), 3);
    }

    #[test]
    fn satisfaction() {
        // Segment 10 complete with parts 0..=3; segment 11 in progress with parts 0..=1.
        let p = at(Some(10), Some((11, 1)));
        assert!(req(9, None).is_satisfied(&p));
        assert!(req(10, None).is_satisfied(&p));
        assert!(!req(11, None).is_satisfied(&p));
        assert!(req(11, Some(0)).is_satisfied(&p));
        assert!(req(11, Some(1)).is_satisfied(&p));
        assert!(!req(11, Some(2)).is_satisfied(&p));
        assert!(!req(12, Some(0)).is_satisfied(&p));
        assert!(req(10, Some(2)).is_satisfied(&p));
        // A part past segment 10's last (3) is part 0 of 11, which exists.
        assert!(req(10, Some(7)).is_satisfied(&p));

        // Segment 11 just completed with parts 0..=3, segment 12 has none yet.
        let p = at(Some(11), Some((11, 3)));
        assert!(req(11, None).is_satisfied(&p));
        assert!(req(11, Some(3)).is_satisfied(&p));
        // Part 4 of 11 means part 0 of 12: not yet.
        assert!(!req(11, Some(4)).is_satisfied(&p));
        assert!(req(11, Some(4)).is_satisfied(&at(Some(12), Some((12, 3)))));
        assert!(req(11, Some(4)).is_satisfied(&at(Some(11), Some((12, 0)))));

        // Without LL-HLS there are no parts: a complete segment answers any part of it.
        let p = at(Some(11), None);
        assert!(req(11, Some(9)).is_satisfied(&p));
        assert!(!req(12, Some(0)).is_satisfied(&p));
    }

    #[test]
    fn timeout_is_three_target_durations() {
        assert_eq!(blocking_reload_timeout_ms(4), 12_000);
    }
}
