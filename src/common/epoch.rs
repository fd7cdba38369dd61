//! Epochs: names for one run of a room's order. A seq means something only within its epoch,
//! so a client resuming with a seq of another epoch is told to Resync.

use std::io::Read;

/// A fresh epoch: 16 hex digits from the kernel's generator (the clock if that fails: an
/// epoch only has to differ from the room's earlier ones).
pub fn new_epoch() -> String {
    let mut bytes = [0u8; 8];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn epochs_are_sixteen_hex_digits_and_differ() {
        let (a, b) = (super::new_epoch(), super::new_epoch());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
