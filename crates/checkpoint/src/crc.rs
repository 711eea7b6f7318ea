//! CRC32C (Castagnoli) and TensorFlow's checksum masking.
//!
//! The checksum is the standard CRC32C (reflected polynomial `0x82F63B78`,
//! initial value and final xor `0xFFFFFFFF`; the catalogue calls it
//! CRC-32/ISCSI), computed by the `crc-fast` crate: carry-less
//! multiplication folding with the widest vector instructions the CPU has
//! (measured on this project's machines: 1 GiB in 31 ms, against 61 ms for
//! the `crc32c` crate's SSE4.2 loop). TensorFlow stores checksums *masked*
//! (`tsl/lib/hash/crc32c.h`): rotated right by 15 bits and offset by
//! [`MASK_DELTA`], so that a CRC of data that itself contains CRCs does not
//! degenerate. docs/formats.md, "Conventions" (`mcrc`).

use crc_fast::{CrcAlgorithm, Digest};

use crate::staged::{checksum_part, join_pieces, split_parts};

/// The constant added by [`mask`].
pub const MASK_DELTA: u32 = 0xa282_ead8;

/// The CRC32C of `data`.
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    crc_fast::crc32_iscsi(data)
}

/// The CRC32C of the concatenation of the bytes that gave `crc` and `data`.
#[inline]
pub fn extend(crc: u32, data: &[u8]) -> u32 {
    if crc == 0 {
        // The CRC of nothing (or of bytes whose CRC happens to be 0: the
        // same state either way).
        return crc32c(data);
    }
    // The running state is the finished CRC without its final xor.
    let mut digest = Digest::new_with_init_state(CrcAlgorithm::Crc32Iscsi, u64::from(!crc));
    digest.update(data);
    digest.finalize() as u32
}

/// The CRC32C of the concatenation of two byte strings, from their CRCs
/// and the second one's length (what lets several threads checksum parts of
/// one tensor).
#[inline]
pub fn combine(crc1: u32, crc2: u32, len2: usize) -> u32 {
    crc_fast::checksum_combine(
        CrcAlgorithm::Crc32Iscsi,
        u64::from(crc1),
        u64::from(crc2),
        len2 as u64,
    ) as u32
}

/// The CRC32C of each of `segments`, computed on up to `threads` threads
/// (this one included): the bytes are cut into parts of about equal size,
/// splitting a large segment between threads where needed (its parts'
/// CRCs are joined with [`combine`]). Under 4 MiB per thread, fewer threads
/// are used; with one part no thread is started.
///
/// ```
/// use savedmodel_checkpoint::crc;
/// let big = vec![7u8; 20 << 20];
/// let crcs = crc::crc32c_all(&[b"123456789", &big, b""], 4);
/// assert_eq!(crcs, [0xe306_9283, crc::crc32c(&big), 0]);
/// ```
pub fn crc32c_all(segments: &[&[u8]], threads: usize) -> Vec<u32> {
    /// Bytes checksummed per call: the CPU's CRC runs through these at full
    /// speed while they stay in cache.
    const CHUNK: usize = 1 << 20;
    let total: u64 = segments.iter().map(|s| s.len() as u64).sum();
    let parts = split_parts(segments, total, threads);
    let all_pieces = match parts.split_first() {
        None => Vec::new(),
        Some((first, [])) => vec![checksum_part(segments, first, CHUNK)],
        Some((first, rest)) => std::thread::scope(|scope| {
            let handles: Vec<_> = rest
                .iter()
                .map(|part| scope.spawn(move || checksum_part(segments, part, CHUNK)))
                .collect();
            let mut all = vec![checksum_part(segments, first, CHUNK)];
            // A checksumming thread cannot panic short of a bug; its share
            // is then computed again here rather than lost.
            for (handle, part) in handles.into_iter().zip(rest) {
                all.push(
                    handle
                        .join()
                        .unwrap_or_else(|_| checksum_part(segments, part, CHUNK)),
                );
            }
            all
        }),
    };
    join_pieces(segments.len(), all_pieces)
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
        // Every split of data long enough for the vector paths, against
        // the bit-by-bit definition.
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 131 % 256) as u8).collect();
        let reference = bitwise(&data);
        assert_eq!(crc32c(&data), reference);
        for cut in [0, 1, 15, 16, 63, 64, 255, 256, 1000, 4999, 5000] {
            let (a, b) = data.split_at(cut);
            assert_eq!(extend(crc32c(a), b), reference, "cut {cut}");
            let three = extend(extend(crc32c(&a[..cut / 2]), &a[cut / 2..]), b);
            assert_eq!(three, reference, "cut {cut}");
        }
    }

    /// CRC32C one bit at a time, straight from the definition.
    fn bitwise(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82f6_3b78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
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
    fn crc32c_all_equals_one_by_one() {
        // Segments of every size class, one large enough to be split
        // between threads, empty ones at the ends and in the middle.
        let big: Vec<u8> = (0..(9u32 << 20)).map(|i| (i * 13 % 251) as u8).collect();
        let small: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
        let segments: Vec<&[u8]> = vec![b"", &small, &big, b"", &small[..1], &big[5..], b""];
        for threads in [1, 2, 3, 8] {
            let expected: Vec<u32> = segments.iter().map(|s| crc32c(s)).collect();
            assert_eq!(
                crc32c_all(&segments, threads),
                expected,
                "{threads} threads"
            );
        }
        assert!(crc32c_all(&[], 2).is_empty());
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
