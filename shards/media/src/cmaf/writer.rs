//! [`BoxWriter`]: ISO BMFF boxes appended to a `Vec<u8>`, sizes back-patched on close.

/// Appends boxes to a buffer. [`open`](Self::open) writes a placeholder size and returns the
/// box's start; [`close`](Self::close) patches the size once the contents are written. Boxes
/// nest by closing in reverse order; [`finish`](Self::finish) asserts that every opened box
/// was closed.
#[derive(Debug, Default)]
pub(crate) struct BoxWriter {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl BoxWriter {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
            open: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Opens a box of type `kind`.
    pub(crate) fn open(&mut self, kind: &[u8; 4]) {
        self.open.push(self.buf.len());
        self.u32(0);
        self.bytes(kind);
    }

    /// Opens a full box: type, then version and 24-bit flags.
    pub(crate) fn open_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) {
        debug_assert!(flags < 1 << 24);
        self.open(kind);
        self.u32((u32::from(version) << 24) | flags);
    }

    /// Closes the innermost open box, writing its size.
    pub(crate) fn close(&mut self) {
        let start = self.open.pop().expect("close without a matching open");
        let size = u32::try_from(self.buf.len() - start).expect("box larger than 4 GiB");
        self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }

    /// Overwrites four bytes at `at` (a field whose value was not known when it was written).
    pub(crate) fn patch_u32(&mut self, at: usize, value: u32) {
        self.buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn u24(&mut self, value: u32) {
        debug_assert!(value < 1 << 24);
        self.buf.extend_from_slice(&value.to_be_bytes()[1..]);
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn i32(&mut self, value: i32) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn zeros(&mut self, count: usize) {
        self.buf.resize(self.buf.len() + count, 0);
    }

    pub(crate) fn bytes(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The finished buffer.
    ///
    /// # Panics
    ///
    /// If a box is still open.
    pub(crate) fn finish(self) -> Vec<u8> {
        assert!(self.open.is_empty(), "{} boxes left open", self.open.len());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sizes_are_patched() {
        let mut w = BoxWriter::default();
        w.open(b"moov");
        w.open_full(b"mvhd", 0, 0);
        w.u32(7);
        w.close();
        w.close();
        let out = w.finish();
        assert_eq!(&out[..8], &[0, 0, 0, 24, b'm', b'o', b'o', b'v']);
        assert_eq!(&out[8..16], &[0, 0, 0, 16, b'm', b'v', b'h', b'd']);
    }

    #[test]
    #[should_panic(expected = "left open")]
    fn unclosed_boxes_are_a_bug() {
        let mut w = BoxWriter::default();
        w.open(b"moov");
        let _ = w.finish();
    }
}
