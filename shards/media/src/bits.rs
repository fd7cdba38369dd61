//! Readers over bytes: [`ByteReader`] for byte-aligned big-endian structures (FLV headers,
//! decoder configuration records, MP4 boxes) and [`BitReader`] for the bit-level syntax of
//! parameter sets, with exp-Golomb codes and emulation-prevention removal.

use crate::MediaError;

/// A cursor over byte-aligned, big-endian fields. Every read checks the remaining length and
/// reports [`MediaError::Truncated`] with the structure's name instead of panicking.
#[derive(Clone, Debug)]
pub(crate) struct ByteReader<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> ByteReader<'a> {
    pub(crate) fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { data, pos: 0, what }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], MediaError> {
        if self.remaining() < len {
            return Err(MediaError::Truncated { what: self.what });
        }
        let out = &self.data[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    pub(crate) fn skip(&mut self, len: usize) -> Result<(), MediaError> {
        self.bytes(len).map(|_| ())
    }

    pub(crate) fn u8(&mut self) -> Result<u8, MediaError> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, MediaError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u24(&mut self) -> Result<u32, MediaError> {
        let b = self.bytes(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    /// A signed 24-bit big-endian integer (FLV `SI24`, the composition time).
    pub(crate) fn i24(&mut self) -> Result<i32, MediaError> {
        let raw = self.u24()?;
        // Sign-extend from bit 23.
        Ok(((raw << 8) as i32) >> 8)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, MediaError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, MediaError> {
        let b = self.bytes(8)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(b);
        Ok(u64::from_be_bytes(raw))
    }

    pub(crate) fn fourcc(&mut self) -> Result<[u8; 4], MediaError> {
        let b = self.bytes(4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }
}

/// A bit reader over the payload of a NAL unit (its EBSP), reading the RBSP.
///
/// Emulation-prevention bytes (the `0x03` in `00 00 03`, ITU-T H.264 §7.4.1 and H.265 §7.4.2)
/// are dropped on the fly, so no unescaped copy of the NAL unit is made. Reads past the end
/// return [`MediaError::Truncated`]; an exp-Golomb code longer than 32 bits returns
/// [`MediaError::Invalid`]. Nothing here panics on any input.
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    zeros: u8,
    current: u8,
    bits_left: u8,
    escaped: bool,
    what: &'static str,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `ebsp`, dropping emulation-prevention bytes; `what` names
    /// the structure in errors.
    pub fn new(ebsp: &'a [u8], what: &'static str) -> Self {
        Self {
            data: ebsp,
            pos: 0,
            zeros: 0,
            current: 0,
            bits_left: 0,
            escaped: true,
            what,
        }
    }

    /// A reader over a bitstream that is not NAL-escaped (an AAC `AudioSpecificConfig`).
    pub fn unescaped(data: &'a [u8], what: &'static str) -> Self {
        Self {
            escaped: false,
            ..Self::new(data, what)
        }
    }

    fn next_byte(&mut self) -> Result<u8, MediaError> {
        loop {
            let Some(&byte) = self.data.get(self.pos) else {
                return Err(MediaError::Truncated { what: self.what });
            };
            self.pos += 1;
            if self.escaped && self.zeros >= 2 && byte == 0x03 {
                self.zeros = 0;
                continue;
            }
            self.zeros = if byte == 0 {
                self.zeros.saturating_add(1)
            } else {
                0
            };
            return Ok(byte);
        }
    }

    /// One bit, as `true` for 1.
    pub fn flag(&mut self) -> Result<bool, MediaError> {
        if self.bits_left == 0 {
            self.current = self.next_byte()?;
            self.bits_left = 8;
        }
        self.bits_left -= 1;
        Ok((self.current >> self.bits_left) & 1 == 1)
    }

    /// `count` bits (at most 32), most significant first: the `u(n)` descriptor.
    pub fn bits(&mut self, count: u32) -> Result<u32, MediaError> {
        assert!(count <= 32, "BitReader::bits reads at most 32 bits");
        let mut value = 0u64;
        for _ in 0..count {
            value = (value << 1) | u64::from(self.flag()?);
        }
        Ok(value as u32)
    }

    /// `count` bits (at most 64) thrown away.
    pub fn skip(&mut self, count: u32) -> Result<(), MediaError> {
        for _ in 0..count {
            self.flag()?;
        }
        Ok(())
    }

    /// An unsigned exp-Golomb code: the `ue(v)` descriptor.
    pub fn ue(&mut self) -> Result<u32, MediaError> {
        let mut leading_zeros = 0u32;
        while !self.flag()? {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return Err(MediaError::Invalid {
                    what: "exp-Golomb code longer than 32 bits",
                });
            }
        }
        let suffix = u64::from(self.bits(leading_zeros)?);
        let value = (1u64 << leading_zeros) - 1 + suffix;
        u32::try_from(value).map_err(|_| MediaError::Invalid {
            what: "exp-Golomb code longer than 32 bits",
        })
    }

    /// A signed exp-Golomb code: the `se(v)` descriptor.
    pub fn se(&mut self) -> Result<i32, MediaError> {
        let code = i64::from(self.ue()?);
        let value = if code % 2 == 1 {
            (code + 1) / 2
        } else {
            -(code / 2)
        };
        // |value| ≤ 2^31, and only -2^31 fits at that magnitude; +2^31 is refused.
        i32::try_from(value).map_err(|_| MediaError::Invalid {
            what: "signed exp-Golomb code out of range",
        })
    }

    /// A `ue(v)` that must not exceed `max`: list lengths and indices, which bound loops.
    pub fn ue_max(&mut self, max: u32, what: &'static str) -> Result<u32, MediaError> {
        let value = self.ue()?;
        if value > max {
            return Err(MediaError::TooLarge {
                what,
                limit: u64::from(max),
                seen: u64::from(value),
            });
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_codes() {
        // 1 | 010 | 011 | 00100 | 00101 | 00111 → ue 0,1,2,3,4,6 ; se of 1,2,3,4 → 1,-1,2,-2
        let data = [0b1010_0110, 0b0100_0010, 0b1001_1100];
        let mut r = BitReader::new(&data, "test");
        let values: Vec<u32> = (0..6).map(|_| r.ue().unwrap()).collect();
        assert_eq!(values, [0, 1, 2, 3, 4, 6]);
        let data = [0b0100_1100, 0b1000_0101];
        let mut r = BitReader::new(&data, "test");
        let values: Vec<i32> = (0..4).map(|_| r.se().unwrap()).collect();
        assert_eq!(values, [1, -1, 2, -2]);
    }

    #[test]
    fn emulation_prevention_bytes_are_skipped() {
        let data = [0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x00, 0x03];
        let mut r = BitReader::new(&data, "test");
        assert_eq!(r.bits(32).unwrap(), 0x0000_0100);
        // `00 00 03 00` loses its 03; after it the zero run restarts, so `00 03` keeps its 03.
        assert_eq!(r.bits(16).unwrap(), 0x0000);
        assert_eq!(r.bits(8).unwrap(), 0x03);
        assert!(matches!(r.flag(), Err(MediaError::Truncated { .. })));
    }

    #[test]
    fn overlong_exp_golomb_is_invalid() {
        let data = [0u8; 8];
        let mut r = BitReader::new(&data, "test");
        assert!(matches!(r.ue(), Err(MediaError::Invalid { .. })));
        let mut r = BitReader::new(&[0x00], "test");
        assert!(matches!(r.ue(), Err(MediaError::Truncated { .. })));
    }

    #[test]
    fn byte_reader_sign_extends_si24() {
        let mut r = ByteReader::new(&[0xFF, 0xFF, 0xFE, 0x00, 0x00, 0x21], "test");
        assert_eq!(r.i24().unwrap(), -2);
        assert_eq!(r.i24().unwrap(), 33);
        assert!(r.u8().is_err());
    }
}
