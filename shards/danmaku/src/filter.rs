//! The sensitive-word filter, run on the viewer's shard before a chat is forwarded.
//!
//! Words and texts are compared in a **normalized form**, so the usual evasions (`ＢＡＤ`,
//! `B.A.D`, `b a d`, `b\u{200B}ad`) still match. The normalized form of a text is built one
//! original character at a time, in this order:
//!
//! 1. **Zero-width characters are removed**: U+200B ZERO WIDTH SPACE, U+200C ZERO WIDTH
//!    NON-JOINER, U+200D ZERO WIDTH JOINER, U+2060 WORD JOINER, U+FEFF ZERO WIDTH NO-BREAK SPACE
//!    and U+00AD SOFT HYPHEN.
//! 2. **Full-width forms become half-width**: U+FF01..=U+FF5E become U+0021..=U+007E
//!    (`Ａ` → `A`, `！` → `!`), and U+3000 IDEOGRAPHIC SPACE becomes a space.
//! 3. **Separators are removed** (see [`is_separator`]): every whitespace and control character,
//!    ASCII punctuation and symbols (`!"#$%&'()*+,-./:;<=>?@[\]^_` and backtick, `{|}~`), the
//!    Latin-1 punctuation and symbols (U+00A1..=U+00BF except the letters and digits `ª²³µ¹º¼½¾`,
//!    and `×` `÷`), the whole General Punctuation block U+2000..=U+206F (dashes, quotes, bullets,
//!    invisible operators, bidirectional controls), arrows, mathematical operators, technical
//!    symbols, box drawing, shapes, miscellaneous symbols, dingbats and Braille
//!    (U+2190..=U+2BFF except the enclosed alphanumerics U+2460..=U+24FF), CJK punctuation
//!    (U+3001..=U+3004, U+3008..=U+3020, U+3030, U+3036, U+3037, U+303D..=U+303F, U+30FB),
//!    Hangul fillers (U+115F, U+1160, U+3164, U+FFA0), U+034F COMBINING GRAPHEME JOINER, U+180E
//!    MONGOLIAN VOWEL SEPARATOR, variation selectors (U+FE00..=U+FE0F), the vertical,
//!    compatibility and small forms (U+FE10..=U+FE1F, U+FE30..=U+FE6F), half-width CJK
//!    punctuation (U+FF5F..=U+FF65), full-width symbols (U+FFE0..=U+FFEE), emoji and pictographs
//!    (U+1F000..=U+1FAFF) and tag characters (U+E0000..=U+E007F).
//! 4. **Case is folded**: what remains is replaced by its Unicode lowercase
//!    ([`char::to_lowercase`], which may give more than one character).
//!
//! Letters, digits and marks of every script are kept as they are: CJK, kana, Hangul, Cyrillic
//! and so on match themselves. No Unicode normalization (NFC/NFKC) is applied, so a word written
//! with combining accents does not match its precomposed spelling; list both if it matters.
//!
//! Matching is Aho-Corasick over the normalized text. [`WordFilter::check`] asks whether any
//! listed word occurs. [`WordFilter::mask`] masks the union of **all** occurrences, overlapping
//! ones included: a leftmost-longest search reports `abc` in `abcd` and then skips `bcd`, which
//! would leave `d` of a listed `bcd` readable, so the automaton uses the standard match kind and
//! an overlapping search instead (every leftmost-longest match is among the spans masked). Each
//! normalized byte remembers the original character it came from; a match masks every original
//! character from the first to the last contributing one, separators and zero-width characters
//! inside the span included, and leaves every other character exactly as it was.
//!
//! A [`WordFilter`] is immutable and `Send + Sync`: build it once and share it between shards
//! behind an `Arc`.

use std::collections::BTreeSet;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Most words a filter accepts.
pub const WORDS_MAX: usize = 100_000;

/// Longest word accepted, in bytes of its normalized form.
pub const WORD_MAX_BYTES: usize = 256;

/// What to do with a chat that contains a listed word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FilterMode {
    /// Replace the offending characters with a mask character and let the chat through.
    #[default]
    Mask,
    /// Refuse the chat.
    Reject,
}

/// The result of [`WordFilter::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterVerdict {
    /// No listed word: send the text as it is.
    Clean,
    /// [`FilterMode::Mask`] and a listed word: send this text instead.
    Masked(String),
    /// [`FilterMode::Reject`] and a listed word: refuse the chat.
    Rejected,
}

/// Why a word list was refused.
#[derive(Debug, thiserror::Error)]
pub enum FilterBuildError {
    /// More distinct words than [`WORDS_MAX`].
    #[error("word list has more than {limit} words")]
    TooManyWords {
        /// [`WORDS_MAX`].
        limit: usize,
    },
    /// A normalized word longer than [`WORD_MAX_BYTES`].
    #[error("word on line {line} is {seen_bytes} bytes after normalization, limit {limit_bytes}")]
    WordTooLong {
        /// 1-based line (or position in the iterator).
        line: usize,
        /// [`WORD_MAX_BYTES`].
        limit_bytes: usize,
        /// Length of the normalized word.
        seen_bytes: usize,
    },
    /// The automaton could not be built (it would exceed the library's size limits).
    #[error("building the word automaton failed: {0}")]
    Automaton(#[from] aho_corasick::BuildError),
}

/// A compiled word list.
///
/// Memory: the automaton, at most a few hundred bytes per listed byte for a large list (an NFA;
/// small lists get a DFA); [`WordFilter::memory_usage_bytes`] gives the figure. Each call to
/// `check`/`mask` allocates the normalized text and a position map, about 9 bytes per byte of
/// input, freed before it returns.
#[derive(Clone, Debug)]
pub struct WordFilter {
    /// `None` when the list is empty: nothing ever matches.
    automaton: Option<AhoCorasick>,
    words: usize,
}

impl WordFilter {
    /// A filter that matches nothing.
    pub fn empty() -> Self {
        WordFilter {
            automaton: None,
            words: 0,
        }
    }

    /// Builds a filter from a word list file: one word per line; blank lines and lines whose
    /// first non-blank character is `#` are skipped; surrounding whitespace is trimmed. Words are
    /// normalized like texts; a word that normalizes to nothing (only separators) is skipped.
    pub fn from_lines(list: &str) -> Result<Self, FilterBuildError> {
        let words = list
            .lines()
            .map(str::trim)
            .map(|line| if line.starts_with('#') { "" } else { line });
        Self::new(words)
    }

    /// Builds a filter from words (normalized like texts; empty ones skipped, duplicates merged).
    pub fn new<I, S>(words: I) -> Result<Self, FilterBuildError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut distinct = BTreeSet::new();
        for (index, word) in words.into_iter().enumerate() {
            let word = normalize(word.as_ref());
            if word.is_empty() {
                continue;
            }
            if word.len() > WORD_MAX_BYTES {
                return Err(FilterBuildError::WordTooLong {
                    line: index + 1,
                    limit_bytes: WORD_MAX_BYTES,
                    seen_bytes: word.len(),
                });
            }
            distinct.insert(word);
            if distinct.len() > WORDS_MAX {
                return Err(FilterBuildError::TooManyWords { limit: WORDS_MAX });
            }
        }
        if distinct.is_empty() {
            return Ok(Self::empty());
        }
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(&distinct)?;
        Ok(WordFilter {
            automaton: Some(automaton),
            words: distinct.len(),
        })
    }

    /// Number of distinct normalized words.
    pub fn len(&self) -> usize {
        self.words
    }

    /// True when the list is empty.
    pub fn is_empty(&self) -> bool {
        self.words == 0
    }

    /// Heap bytes used by the automaton.
    pub fn memory_usage_bytes(&self) -> usize {
        self.automaton.as_ref().map_or(0, AhoCorasick::memory_usage)
    }

    /// True when the normalized `text` contains a listed word.
    pub fn check(&self, text: &str) -> bool {
        let Some(automaton) = &self.automaton else {
            return false;
        };
        automaton.is_match(normalize(text).as_str())
    }

    /// `None` when `text` is clean; otherwise `text` with every original character that
    /// contributed to a match (and everything between the first and last of them) replaced by
    /// `mask_char`, one mask character per original character.
    pub fn mask(&self, text: &str, mask_char: char) -> Option<String> {
        let automaton = self.automaton.as_ref()?;
        let normalized = Normalized::of(text);
        // Difference array over original character indices: +1 where a masked span starts,
        // -1 just past where it ends. Linear in text and matches, however much they overlap.
        let mut delta: Vec<i32> = Vec::new();
        for found in automaton.find_overlapping_iter(normalized.text.as_str()) {
            if delta.is_empty() {
                delta = vec![0; normalized.chars + 1];
            }
            debug_assert!(found.start() < found.end(), "empty words are never listed");
            let first = normalized.origin[found.start()];
            let last = normalized.origin[found.end() - 1];
            delta[first] += 1;
            delta[last + 1] -= 1;
        }
        if delta.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut depth = 0;
        for (index, c) in text.chars().enumerate() {
            depth += delta[index];
            out.push(if depth > 0 { mask_char } else { c });
        }
        Some(out)
    }

    /// Applies `mode`: [`FilterVerdict::Clean`] when no word matches, otherwise the masked text
    /// or a rejection.
    pub fn apply(&self, text: &str, mode: FilterMode, mask_char: char) -> FilterVerdict {
        match mode {
            FilterMode::Reject if self.check(text) => FilterVerdict::Rejected,
            FilterMode::Reject => FilterVerdict::Clean,
            FilterMode::Mask => match self.mask(text, mask_char) {
                Some(masked) => FilterVerdict::Masked(masked),
                None => FilterVerdict::Clean,
            },
        }
    }
}

/// The normalized form of `text` (see the module documentation).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for_each_normalized(text, |_, c| out.push(c));
    out
}

/// A normalized text and, for each of its bytes, the index of the original character it came
/// from.
struct Normalized {
    text: String,
    origin: Vec<usize>,
    /// Number of characters in the original text.
    chars: usize,
}

impl Normalized {
    fn of(original: &str) -> Self {
        let mut text = String::with_capacity(original.len());
        let mut origin = Vec::with_capacity(original.len());
        let chars = for_each_normalized(original, |index, c| {
            text.push(c);
            origin.resize(text.len(), index);
        });
        debug_assert_eq!(text.len(), origin.len());
        Normalized {
            text,
            origin,
            chars,
        }
    }
}

/// Calls `emit(original_char_index, normalized_char)` for each normalized character, in order,
/// and returns the number of original characters.
fn for_each_normalized(text: &str, mut emit: impl FnMut(usize, char)) -> usize {
    let mut chars = 0;
    for (index, c) in text.chars().enumerate() {
        chars = index + 1;
        if is_zero_width(c) {
            continue;
        }
        let c = to_half_width(c);
        if is_separator(c) {
            continue;
        }
        for lower in c.to_lowercase() {
            emit(index, lower);
        }
    }
    chars
}

/// Zero-width characters removed in step 1.
pub fn is_zero_width(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
    )
}

/// Step 2: full-width ASCII variants and the ideographic space to their half-width forms.
pub fn to_half_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => {
            // The block mirrors U+0021..=U+007E at a fixed offset.
            char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c)
        }
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Separator characters removed in step 3 (applied after step 2).
pub fn is_separator(c: char) -> bool {
    if c.is_whitespace() || c.is_control() || c.is_ascii_punctuation() {
        return true;
    }
    matches!(
        c,
        '\u{00A1}'..='\u{00A9}'
            | '\u{00AB}'..='\u{00B1}'
            | '\u{00B4}'
            | '\u{00B6}'..='\u{00B8}'
            | '\u{00BB}'
            | '\u{00BF}'
            | '\u{00D7}'
            | '\u{00F7}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{2000}'..='\u{206F}'
            | '\u{2190}'..='\u{245F}'
            | '\u{2500}'..='\u{2BFF}'
            | '\u{3001}'..='\u{3004}'
            | '\u{3008}'..='\u{3020}'
            | '\u{3030}'
            | '\u{3036}'
            | '\u{3037}'
            | '\u{303D}'..='\u{303F}'
            | '\u{30FB}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE1F}'
            | '\u{FE30}'..='\u{FE6F}'
            | '\u{FF5F}'..='\u{FF65}'
            | '\u{FFA0}'
            | '\u{FFE0}'..='\u{FFEE}'
            | '\u{1F000}'..='\u{1FAFF}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_steps() {
        assert_eq!(normalize("BaD"), "bad");
        assert_eq!(normalize("ＢＡＤ"), "bad");
        assert_eq!(normalize("b\u{200D}a\u{200B}d\u{00AD}"), "bad");
        assert_eq!(normalize("b.a.d"), "bad");
        assert_eq!(normalize("b a\u{3000}d"), "bad");
        assert_eq!(normalize("b_a-d"), "bad");
        assert_eq!(normalize("b*a*d"), "bad");
        assert_eq!(normalize("b！a｡d"), "bad");
        assert_eq!(normalize("b★a♥d🙂"), "bad");
        assert_eq!(normalize("坏·词。"), "坏词");
        assert_eq!(normalize("Привет"), "привет");
        assert_eq!(normalize("①ª²"), "①ª²");
        assert_eq!(normalize("々〇"), "々〇");
    }

    #[test]
    fn lowercase_may_expand_and_still_maps_back() {
        // U+0130 lowercases to "i" + U+0307: two normalized characters, one original.
        let normalized = Normalized::of("aİb");
        assert_eq!(normalized.text, "ai\u{307}b");
        assert_eq!(normalized.origin, vec![0, 1, 1, 1, 2]);
        assert_eq!(normalized.chars, 3);
    }

    #[test]
    fn comment_and_blank_lines_are_skipped() {
        let filter =
            WordFilter::from_lines("# header\n\n  bad  \n   # indented comment\nBAD\n...\n")
                .expect("valid list");
        assert_eq!(filter.len(), 1);
        assert!(filter.check("so bad"));
        assert!(!filter.check("header"));
        assert!(!filter.check("indented comment"));
    }

    #[test]
    fn word_too_long_is_refused_with_its_line() {
        let list = format!("ok\n{}\n", "x".repeat(WORD_MAX_BYTES + 1));
        match WordFilter::from_lines(&list) {
            Err(FilterBuildError::WordTooLong {
                line, seen_bytes, ..
            }) => {
                assert_eq!(line, 2);
                assert_eq!(seen_bytes, WORD_MAX_BYTES + 1);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn filter_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<WordFilter>();
    }
}
