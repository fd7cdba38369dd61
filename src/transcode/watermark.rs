//! Watermarks: the libavfilter description of an overlay on a stream's rungs.

/// What a watermark draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlay<'a> {
    /// Text at the top right (drawtext, the system's default font).
    Text(&'a str),
    /// An image file at the top right.
    Image(&'a str),
    /// Any libavfilter chain with one video input and output.
    Filter(&'a str),
}

/// The libavfilter description of `overlay`.
pub fn watermark_filter(overlay: Overlay<'_>) -> String {
    match overlay {
        Overlay::Filter(filter) => filter.to_string(),
        Overlay::Image(path) => format!(
            "movie=filename={}[wm];[in][wm]overlay=W-w-20:20",
            quoted_option(path)
        ),
        Overlay::Text(text) => format!(
            "drawtext=text={}:expansion=none:fontcolor=white@0.85:fontsize=h/18:\
             x=w-tw-20:y=20:box=1:boxcolor=black@0.4:boxborderw=8",
            quoted_option(text)
        ),
    }
}

/// An option value as a filter graph takes it. Two levels of escaping: an option value
/// escapes `\`, `'` and `:` with a backslash; the graph then takes the value in single quotes
/// (inside which only `'` is special, written as `'\''`).
fn quoted_option(raw: &str) -> String {
    let mut option = String::with_capacity(raw.len() + 8);
    for c in raw.chars() {
        if matches!(c, '\\' | '\'' | ':') {
            option.push('\\');
        }
        option.push(c);
    }
    format!("'{}'", option.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardcast_native::Rational;

    fn builds(filter: &str) -> bool {
        shardcast_native::FilterGraph::new(
            shardcast_native::VideoFormat {
                width: 320,
                height: 180,
                pixel_format: shardcast_native::PixelFormat::YUV420P,
            },
            Rational::new(1, 90_000),
            filter,
        )
        .is_ok()
    }

    #[test]
    fn watermark_text_survives_quotes_colons_and_backslashes() {
        for text in ["live", "it's 10:30", r"a\b 'c' : d;e,f[g]", "100% [on air]"] {
            let filter = watermark_filter(Overlay::Text(text));
            assert!(builds(&filter), "{text:?} → {filter}");
        }
        assert_eq!(watermark_filter(Overlay::Filter("hflip")), "hflip");
    }
}
