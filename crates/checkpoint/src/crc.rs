//! CRC32C (Castagnoli) and TensorFlow's checksum masking.
//!
//! The checksum is the standard CRC32C (reflected polynomial `0x82F63B78`,
//! initial value and final xor `0xFFFFFFFF`), computed with the CPU's CRC32
//! instructions where available (the `crc32c` crate). TensorFlow stores
//! checksums *masked* (`tsl/lib/hash/crc32c.h`): rotated right by 15 bits and
//! offset by [`MASK_DELTA`], so that a CRC of data that itself contains CRCs
//! does not degenerate. FORMATS.md 1.4.

/// The constant added by [`mask`].
pub const MASK_DELTA: u32 = 0xa282_ead8;

/// The CRC32C of `data`.
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// The CRC32C of the concatenation of the bytes that gave `crc` and `data`.
#[inline]
pub fn extend(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// The CRC32C of the concatenation of two byte strings, from their CRCs
/// and the second one's length (what lets several threads checksum parts of
/// one tensor).
#[inline]
pub fn combine(crc1: u32, crc2: u32, len2: usize) -> u32 {
    crc32c::crc32c_combine(crc1, crc2, len2)
}

/// Masks a CRC for storage: rotate right by 15 bits, then add [`MASK_DELTA`].
#[inline]
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Undoes [`mask`].
#[inline]
pub fn unmask(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn extend_equals_whole() {
        let whole = crc32c(b"hello world");
        assert_eq!(extend(crc32c(b"hello "), b"world"), whole);
        assert_eq!(extend(0, b"hello world"), whole);
    }

    #[test]
    fn combine_equals_whole() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for cut in [0, 1, 4095, 4096, 9_999, 10_000] {
            let (a, b) = data.split_at(cut);
            assert_eq!(combine(crc32c(a), crc32c(b), b.len()), crc32c(&data));
        }
    }

    #[test]
    fn mask_vectors_from_formats() {
        assert_eq!(mask(0), 0xa282_ead8);
        assert_eq!(mask(0xe306_9283), 0xc78a_b0e5);
        assert_eq!(unmask(0xc78a_b0e5), 0xe306_9283);
    }

    #[test]
    fn mask_roundtrips() {
        for crc in [0u32, 1, 0x8000_0000, 0xffff_ffff, 0x1234_5678, 0xdead_beef] {
            assert_eq!(unmask(mask(crc)), crc);
            assert_ne!(mask(crc), crc);
        }
    }
}
