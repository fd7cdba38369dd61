//! Embeds the web front end (`web/`) in the binary: every file under it except the npm
//! install (`node_modules/`, `package.json`, `package-lock.json`), plus the danmaku protocol's
//! browser module (`shards/wire/ts/dist/shardcast-wire.js`, committed) as
//! `vendor/shardcast-wire.js`.
//!
//! `web/vendor/` holds the players (hls.js, dash.js), copied from npm by `scripts/web.sh`,
//! which `just run` and `just test` run first. A build without them still serves the pages;
//! the watch page then says the player is missing, and this script warns.

use std::path::{Path, PathBuf};

/// Files that must be vendored for the watch page to play.
const PLAYERS: [&str; 2] = ["vendor/hls.min.js", "vendor/dash.mediaplayer.min.js"];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let web = root.join("web");
    let wire = root.join("shards/wire/ts/dist/shardcast-wire.js");
    println!("cargo:rerun-if-changed={}", web.display());
    println!("cargo:rerun-if-changed={}", wire.display());

    let mut files = Vec::new();
    if web.is_dir() {
        collect(&web, "", &mut files);
    }
    files.push(("vendor/shardcast-wire.js".to_string(), wire));
    files.sort();
    for player in PLAYERS {
        if !files.iter().any(|(name, _)| name == player) {
            println!(
                "cargo:warning=web/{player} is missing: run scripts/web.sh (just run and just \
                 test do) or the watch page cannot play"
            );
        }
    }

    let mut out = String::from("/// The web front end: (path under web/, contents).\n");
    out.push_str("pub static WEB_FILES: &[(&str, &[u8])] = &[\n");
    for (name, path) in &files {
        out.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("web_files.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}

/// Every regular file under `dir`, as (relative path, absolute path).
fn collect(dir: &Path, prefix: &str, files: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("web/ is readable")
        .map(|e| e.expect("web/ entries are readable"))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if prefix.is_empty()
            && matches!(
                name.as_str(),
                "node_modules" | "package.json" | "package-lock.json"
            )
        {
            continue;
        }
        if name.starts_with('.') {
            continue;
        }
        let relative = format!("{prefix}{name}");
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            collect(&entry.path(), &format!("{relative}/"), files);
        } else if kind.is_file() {
            files.push((relative, entry.path()));
        }
    }
}
