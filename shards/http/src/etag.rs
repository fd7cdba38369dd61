//! Conditional GET: matching `If-None-Match` against a representation's entity tag.

/// Whether `if_none_match` (an `If-None-Match` value) matches `etag`, the entity tag the
/// response would carry (`"abc"` or `W/"abc"`). When it does, a GET or HEAD is answered with
/// 304 Not Modified (RFC 9110 §13.1.2).
///
/// `*` matches any representation. Otherwise the value is a list of entity tags compared with
/// the weak comparison function (RFC 9110 §8.8.3.2): tags match when their opaque quoted
/// strings are equal, whether or not either is marked weak. Commas inside quotes belong to the
/// tag. A malformed list matches nothing from the first malformed element on, so a bad header
/// costs a full response, never a wrong 304. A malformed `etag` matches nothing but `*`.
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let list = if_none_match.trim_matches(is_ows);
    if list == "*" {
        return true;
    }
    let Some((ours, "")) = split_entity_tag(etag.trim_matches(is_ows)) else {
        return false;
    };
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches(|c| is_ows(c) || c == ',');
        if rest.is_empty() {
            return false;
        }
        let Some((theirs, after)) = split_entity_tag(rest) else {
            return false;
        };
        if theirs == ours {
            return true;
        }
        if !after.is_empty() && !after.starts_with(|c| is_ows(c) || c == ',') {
            return false;
        }
        rest = after;
    }
}

/// Splits `[W/] DQUOTE *etagc DQUOTE` off the front of `s`: the quoted opaque tag (quotes
/// included, weakness dropped) and what follows.
fn split_entity_tag(s: &str) -> Option<(&str, &str)> {
    let s = s.strip_prefix("W/").unwrap_or(s);
    let inner = s.strip_prefix('"')?;
    let close = inner.find('"')?;
    let etagc_ok = inner[..close]
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80);
    if !etagc_ok {
        return None;
    }
    Some(s.split_at(close + 2))
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_table() {
        let cases: &[(&str, &str, bool)] = &[
            // wildcard
            ("*", "\"abc\"", true),
            (" * ", "W/\"abc\"", true),
            ("*", "garbage", true),
            // strong and weak, both sides: weak comparison ignores weakness
            ("\"abc\"", "\"abc\"", true),
            ("W/\"abc\"", "\"abc\"", true),
            ("\"abc\"", "W/\"abc\"", true),
            ("W/\"abc\"", "W/\"abc\"", true),
            ("\"abc\"", "\"abd\"", false),
            ("\"abc\"", "\"ABC\"", false),
            ("\"\"", "\"\"", true),
            // lists
            ("\"x\", \"abc\"", "\"abc\"", true),
            ("\"x\",\"y\" , W/\"abc\"", "\"abc\"", true),
            ("\"x\", \"y\"", "\"abc\"", false),
            (" , \"abc\" ,", "\"abc\"", true),
            ("\"a,b\", \"c\"", "\"a,b\"", true),
            ("\"a,b\"", "\"a\"", false),
            // malformed: matches nothing from there on
            ("abc", "\"abc\"", false),
            ("\"abc", "\"abc\"", false),
            ("w/\"abc\"", "\"abc\"", false),
            ("\"x\"\"abc\"", "\"abc\"", false),
            ("\"abc\" junk", "\"abc\"", true),
            ("junk, \"abc\"", "\"abc\"", false),
            ("\"a b\"", "\"a b\"", false),
            ("", "\"abc\"", false),
            // malformed own tag
            ("\"abc\"", "abc", false),
            ("\"abc\"", "\"abc\"x", false),
        ];
        for (if_none_match, etag, expected) in cases {
            assert_eq!(
                etag_matches(if_none_match, etag),
                *expected,
                "{if_none_match:?} vs {etag:?}"
            );
        }
    }
}
