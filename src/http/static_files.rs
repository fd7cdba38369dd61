//! Static files served from memory under `/static/`: a directory read once at start into
//! `Bytes`, shared by every shard (immutable, so sharing is a pointer copy).

use bytes::Bytes;
use std::collections::HashMap;
use std::path::Path;

/// One file held in memory.
pub struct StaticFile {
    pub body: Bytes,
    /// A strong validator derived from length and content hash.
    pub etag: String,
    pub content_type: &'static str,
}

/// The loaded files, by path relative to the directory (`/`-separated).
#[derive(Default)]
pub struct StaticFiles {
    files: HashMap<String, StaticFile>,
    total_bytes: u64,
}

impl StaticFiles {
    /// Reads every regular file under `dir` (recursively), refusing to load more than
    /// `max_bytes` in total.
    pub fn load(dir: &Path, max_bytes: u64) -> std::io::Result<StaticFiles> {
        let mut files = StaticFiles::default();
        files.load_dir(dir, "", max_bytes)?;
        Ok(files)
    }

    fn load_dir(&mut self, dir: &Path, prefix: &str, max_bytes: u64) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type()?;
            let relative = format!("{prefix}{name}");
            if kind.is_dir() {
                self.load_dir(&entry.path(), &format!("{relative}/"), max_bytes)?;
            } else if kind.is_file() {
                let len = entry.metadata()?.len();
                if self.total_bytes + len > max_bytes {
                    return Err(std::io::Error::other(format!(
                        "static files exceed http.static_max_bytes = {max_bytes} at {relative}"
                    )));
                }
                self.insert(relative, Bytes::from(std::fs::read(entry.path())?));
            }
        }
        Ok(())
    }

    /// Files compiled into the binary: `(relative path, contents)`.
    pub fn from_static(files: &[(&str, &'static [u8])]) -> StaticFiles {
        let mut loaded = StaticFiles::default();
        for (name, body) in files {
            loaded.insert(name.to_string(), Bytes::from_static(body));
        }
        loaded
    }

    fn insert(&mut self, relative: String, body: Bytes) {
        self.total_bytes += body.len() as u64;
        let etag = format!("\"{:x}-{:016x}\"", body.len(), fnv1a(&body));
        let content_type = content_type(&relative);
        self.files.insert(
            relative,
            StaticFile {
                body,
                etag,
                content_type,
            },
        );
    }

    /// The file at `relative` (no leading slash).
    pub fn get(&self, relative: &str) -> Option<&StaticFile> {
        self.files.get(relative)
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when no file is loaded.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Bytes held.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &b in data {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Media type by file extension; unknown types are served as octet streams.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "css" => "text/css",
        "js" | "mjs" => "text/javascript",
        "json" => "application/json",
        "m3u8" => "application/vnd.apple.mpegurl",
        "mpd" => "application/dash+xml",
        "mp4" | "m4s" => "video/mp4",
        "m4a" => "audio/mp4",
        "ts" => "video/mp2t",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_recursively_and_enforces_the_cap() {
        let dir = std::env::temp_dir().join(format!("shardcast-static-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.txt"), b"hello").unwrap();
        std::fs::write(dir.join("sub/b.m3u8"), b"#EXTM3U\n").unwrap();
        let files = StaticFiles::load(&dir, 1 << 20).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(&files.get("a.txt").unwrap().body[..], b"hello");
        assert_eq!(
            files.get("sub/b.m3u8").unwrap().content_type,
            "application/vnd.apple.mpegurl"
        );
        assert!(StaticFiles::load(&dir, 6).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
