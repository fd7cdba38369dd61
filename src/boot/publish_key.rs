//! The server's publish key: generated on first start when no stream keys or publish tokens
//! are configured, so that a server started with defaults does not let strangers publish.
//! It is kept in `{state.data_dir}/publish.key` (mode 0600, the directory 0700) and read back
//! on every later start.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Random bytes in a key (hex-encoded: 32 characters).
const KEY_BYTES: usize = 16;
/// The file's name under the data directory.
const KEY_FILE: &str = "publish.key";

/// Reads the key from `data_dir`, or makes one and writes it there.
pub fn load_or_create(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = text.trim().to_string();
            if key.len() < 16 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!(
                    "{}: not a publish key (16+ letters and digits); delete it to make a new one",
                    path.display()
                ));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(data_dir, &path),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn create(data_dir: &Path, path: &Path) -> Result<String, String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|e| format!("cannot create state.data_dir {}: {e}", data_dir.display()))?;
    let mut random = [0u8; KEY_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let key: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(format!("{key}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    log::info!("made a publish key in {}", path.display());
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_kept_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("shardcast-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = load_or_create(&dir).unwrap();
        assert_eq!(key.len(), 2 * KEY_BYTES);
        assert_eq!(
            load_or_create(&dir).unwrap(),
            key,
            "the same key on restart"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.join(KEY_FILE), "short\n").unwrap();
        assert!(load_or_create(&dir)
            .unwrap_err()
            .contains("not a publish key"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
