//! The word filter's normalization and masking, as a table.

use shardcast_danmaku::filter::normalize;
use shardcast_danmaku::{FilterMode, FilterVerdict, WordFilter};

fn build(words: &str) -> WordFilter {
    WordFilter::from_lines(words).expect("valid list")
}

#[test]
fn matches_through_evasions() {
    let filter = build("bad\n坏蛋\n");
    let table: &[(&str, bool)] = &[
        ("bad", true),
        ("this is BAD!", true),
        ("BaD", true),
        ("ＢＡＤ", true),
        ("ｂａｄ", true),
        ("b\u{200D}a\u{200B}d", true),
        ("b\u{2060}a\u{FEFF}d\u{00AD}", true),
        ("b\u{200C}ad", true),
        ("b.a.d", true),
        ("b a d", true),
        ("b_a-d", true),
        ("b*a*d", true),
        ("b\u{3000}a\u{3000}d", true),
        ("b\ta\nd", true),
        ("b…a—d", true),
        ("b🙂a🙂d", true),
        ("b。a、d", true),
        ("good", false),
        (
            "ba d", /* still adjacent after removing the space */
            true,
        ),
        ("b4d", false),
        ("bat", false),
        ("他是个坏蛋", true),
        ("他是个坏·蛋", true),
        ("他是个坏人", false),
        ("坏 蛋", true),
        ("", false),
    ];
    for &(text, listed) in table {
        assert_eq!(filter.check(text), listed, "{text:?}");
        assert_eq!(filter.mask(text, '*').is_some(), listed, "{text:?}");
    }
}

#[test]
fn normalization_table() {
    let table: &[(&str, &str)] = &[
        ("Hello World", "helloworld"),
        ("ＨＥＬＬＯ　ｗｏｒｌｄ！", "helloworld"),
        (
            "z\u{200B}e\u{200C}r\u{200D}o\u{2060}w\u{FEFF}i\u{00AD}dth",
            "zerowidth",
        ),
        ("a.b,c;d:e!f?g", "abcdefg"),
        ("«quoted» ¿question?", "quotedquestion"),
        ("直播间，欢迎！", "直播间欢迎"),
        ("カタカナ・テスト", "カタカナテスト"),
        ("한국어 테스트", "한국어테스트"),
        ("ÉCOLE", "école"),
        ("123 456", "123456"),
        ("①②", "①②"),
    ];
    for &(text, normalized) in table {
        assert_eq!(normalize(text), normalized, "{text:?}");
    }
}

#[test]
fn words_are_normalized_like_texts() {
    let filter = build("B.A.D\nＷＯＲＳＥ\nw\u{200B}orst\n");
    assert_eq!(filter.len(), 3);
    assert!(filter.check("bad"));
    assert!(filter.check("worse"));
    assert!(filter.check("WORST"));
}

#[test]
fn masking_keeps_everything_else_exactly() {
    let filter = build("bad\n坏蛋\n");
    let table: &[(&str, &str)] = &[
        ("bad", "***"),
        ("so bad!", "so ***!"),
        ("So BAD, really bad.", "So ***, really ***."),
        ("ＢＡＤ day", "*** day"),
        // Separators and zero-width characters inside the span are masked with it; those
        // around it are left alone.
        (" b.a.d ", " ***** "),
        ("(b a d)", "(*****)"),
        ("b_a-d", "*****"),
        ("b\u{200D}ad", "****"),
        ("\u{200B}bad\u{200B}", "\u{200B}***\u{200B}"),
        ("他是个坏蛋。", "他是个**。"),
        ("他是个坏 蛋!", "他是个***!"),
        ("🙂bad🙂", "🙂***🙂"),
    ];
    for &(text, masked) in table {
        assert_eq!(filter.mask(text, '*').as_deref(), Some(masked), "{text:?}");
        assert_eq!(
            masked.chars().count(),
            text.chars().count(),
            "one mask per character"
        );
    }
    assert_eq!(filter.mask("clean text", '*'), None);
    assert_eq!(filter.mask("bad", '■').as_deref(), Some("■■■"));
}

#[test]
fn case_folding_that_expands_masks_the_original_character() {
    // U+0130 (İ) lowercases to two characters; both map back to the one original.
    let filter = build("i\u{307}x\n");
    assert_eq!(filter.mask("aİxb", '*').as_deref(), Some("a**b"));
}

#[test]
fn overlapping_and_nested_words_mask_their_union() {
    let filter = build("abc\nbcd\ncd\nabcdef\n");
    assert_eq!(filter.mask("xabcdx", '*').as_deref(), Some("x****x"));
    assert_eq!(filter.mask("xabcdefx", '*').as_deref(), Some("x******x"));
    assert_eq!(filter.mask("a.b.c.d", '*').as_deref(), Some("*******"));
    assert_eq!(filter.mask("bc", '*'), None);

    let nested = build("ab\nabab\n");
    assert_eq!(nested.mask("ababa", '#').as_deref(), Some("####a"));
}

#[test]
fn empty_lists_match_nothing() {
    for list in ["", "\n\n", "# only comments\n  # more\n", "...\n---\n"] {
        let filter = build(list);
        assert!(filter.is_empty(), "{list:?}");
        assert!(!filter.check("anything at all"));
        assert_eq!(filter.mask("anything", '*'), None);
        assert_eq!(filter.memory_usage_bytes(), 0);
    }
}

#[test]
fn modes() {
    let filter = build("bad\n");
    assert_eq!(
        filter.apply("fine", FilterMode::Mask, '*'),
        FilterVerdict::Clean
    );
    assert_eq!(
        filter.apply("so bad", FilterMode::Mask, '*'),
        FilterVerdict::Masked("so ***".to_owned())
    );
    assert_eq!(
        filter.apply("fine", FilterMode::Reject, '*'),
        FilterVerdict::Clean
    );
    assert_eq!(
        filter.apply("so bad", FilterMode::Reject, '*'),
        FilterVerdict::Rejected
    );
}

#[test]
fn large_lists_build_and_match() {
    let words: Vec<String> = (0..5_000).map(|i| format!("word{i}x")).collect();
    let filter = WordFilter::new(&words).expect("valid list");
    assert_eq!(filter.len(), 5_000);
    assert!(filter.check("a WORD4999X here"));
    assert!(!filter.check("word5000x"));
    assert!(filter.memory_usage_bytes() > 0);
}
