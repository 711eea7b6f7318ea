//! `DT_STRING` tensors in a data file (docs/formats.md, section 5 "DT_STRING
//! tensors"; `WriteStringTensor` and
//! `ReadStringTensor` in `tensorflow/core/util/tensor_bundle/tensor_bundle.cc`).
//!
//! ```text
//! varint64 length[N]          element order
//! u32 masked_length_crc       Mask(crc32c of the lengths as 4-byte integers,
//!                             or 8-byte ones for lengths over u32::MAX),
//!                             in the writer's byte order
//! u8 payload[sum(length)]     the elements, concatenated
//! ```
//!
//! The entry's checksum is the CRC32C of the same 4/8-byte lengths, then the
//! 4 stored checksum bytes, then the payload (one running CRC, extended).
//! Note that a tensor with zero elements still takes 4 bytes (the checksum of
//! nothing).

use std::path::PathBuf;

use crate::crc;
use crate::entry::Endianness;
use crate::error::{Error, Result};
use crate::varint::{get_varint64, put_varint64};

/// The 4- or 8-byte form of an element length that the checksums cover.
fn extend_with_length(crc_so_far: u32, length: u64, endianness: Endianness) -> u32 {
    match (u32::try_from(length), endianness) {
        (Ok(short), Endianness::Little) => crc::extend(crc_so_far, &short.to_le_bytes()),
        (Ok(short), Endianness::Big) => crc::extend(crc_so_far, &short.to_be_bytes()),
        (Err(_), Endianness::Little) => crc::extend(crc_so_far, &length.to_le_bytes()),
        (Err(_), Endianness::Big) => crc::extend(crc_so_far, &length.to_be_bytes()),
    }
}

/// Encodes the part of a string tensor that precedes the payload: the varint
/// lengths and the masked length checksum. Returns those bytes and the
/// running (unmasked) CRC to extend with the payload bytes; the entry's
/// checksum is `mask` of the final value.
pub fn encode_prefix(lengths: &[u64], endianness: Endianness) -> (Vec<u8>, u32) {
    let mut out = Vec::with_capacity(lengths.len() + 4);
    let mut running = 0u32;
    for &length in lengths {
        put_varint64(&mut out, length);
        running = extend_with_length(running, length, endianness);
    }
    let masked = crc::mask(running);
    let stored = match endianness {
        Endianness::Little => masked.to_le_bytes(),
        Endianness::Big => masked.to_be_bytes(),
    };
    out.extend_from_slice(&stored);
    running = crc::extend(running, &stored);
    (out, running)
}

/// Encodes a whole string tensor. Returns the bytes to store and the masked
/// checksum for its entry.
pub fn encode<S: AsRef<[u8]>>(elements: &[S], endianness: Endianness) -> (Vec<u8>, u32) {
    let lengths: Vec<u64> = elements.iter().map(|e| e.as_ref().len() as u64).collect();
    let (mut out, mut running) = encode_prefix(&lengths, endianness);
    for element in elements {
        out.extend_from_slice(element.as_ref());
        running = crc::extend(running, element.as_ref());
    }
    (out, crc::mask(running))
}

/// A decoded string tensor: the elements borrow the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedStrings<'a> {
    /// The elements, in row-major order.
    pub elements: Vec<&'a [u8]>,
    /// The unmasked CRC32C as the entry's checksum covers it, when asked for.
    pub crc32c: Option<u32>,
}

fn corrupt(offset: usize, what: String) -> Error {
    Error::CorruptTensor {
        path: PathBuf::new(),
        tensor: String::new(),
        offset: offset as u64,
        what,
    }
}

/// Decodes the `data` of a string tensor of `num_elements` elements.
///
/// Checks, in order: at least one byte per element; every varint inside
/// `data` ("string lengths longer than expected"); the length checksum; the
/// payload lengths adding up to exactly the rest of `data`. When
/// `compute_crc` is set, also returns the checksum to compare with the
/// entry's. Errors are [`Error::CorruptTensor`] with an empty path and tensor
/// name and the offset within `data`: the bundle reader fills them in.
pub fn decode(
    data: &[u8],
    num_elements: u64,
    endianness: Endianness,
    compute_crc: bool,
) -> Result<DecodedStrings<'_>> {
    if data.is_empty() && num_elements == 0 {
        // TensorFlow reads nothing for a zero-size entry.
        return Ok(DecodedStrings {
            elements: Vec::new(),
            crc32c: Some(0).filter(|_| compute_crc),
        });
    }
    let n = usize::try_from(num_elements)
        .ok()
        .filter(|&n| n <= data.len())
        .ok_or_else(|| {
            corrupt(
                0,
                format!("{num_elements} elements cannot fit in {} bytes", data.len()),
            )
        })?;
    // Pass 1: lengths, their checksum and their total.
    let mut pos = 0;
    let mut running = 0u32;
    let mut total: u64 = 0;
    for i in 0..n {
        let length = get_varint64(data, &mut pos).ok_or_else(|| {
            corrupt(
                pos,
                format!("string lengths longer than expected (element {i})"),
            )
        })?;
        running = extend_with_length(running, length, endianness);
        total = total
            .checked_add(length)
            .ok_or_else(|| corrupt(pos, "string lengths overflow".to_owned()))?;
    }
    let lengths_end = pos;
    let stored: [u8; 4] = data
        .get(pos..pos + 4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt(pos, "length checksum missing".to_owned()))?;
    let masked = match endianness {
        Endianness::Little => u32::from_le_bytes(stored),
        Endianness::Big => u32::from_be_bytes(stored),
    };
    if crc::unmask(masked) != running {
        return Err(corrupt(
            pos,
            format!(
                "the length checksum does not match: stored {:#010x}, computed {running:#010x}",
                crc::unmask(masked)
            ),
        ));
    }
    let payload_start = pos + 4;
    let payload = &data[payload_start..];
    if total != payload.len() as u64 {
        return Err(corrupt(
            payload_start,
            format!(
                "string lengths add up to {total} bytes but {} bytes follow",
                payload.len()
            ),
        ));
    }
    // Pass 2: slice the payload.
    let mut elements = Vec::with_capacity(n);
    let mut p = 0;
    let mut start = 0usize;
    for _ in 0..n {
        // Cannot fail: pass 1 decoded the same bytes, and the lengths add up
        // to the payload's length.
        let length = get_varint64(&data[..lengths_end], &mut p).unwrap_or(0) as usize;
        let end = start + length;
        elements.push(&payload[start..end]);
        start = end;
    }
    let crc32c = compute_crc.then(|| {
        let with_checksum = crc::extend(running, &stored);
        crc::extend(with_checksum, payload)
    });
    Ok(DecodedStrings { elements, crc32c })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn worked_example_from_formats() {
        let (bytes, masked) = encode(&[b"a".as_slice(), b"bc"], Endianness::Little);
        assert_eq!(
            bytes,
            [0x01, 0x02, 0xbf, 0xdf, 0xdb, 0x7a, 0x61, 0x62, 0x63]
        );
        assert_eq!(masked, 0x8536_e4e9);
        let decoded = decode(&bytes, 2, Endianness::Little, true).unwrap();
        assert_eq!(decoded.elements, [b"a".as_slice(), b"bc"]);
        assert_eq!(decoded.crc32c.map(crc::mask), Some(masked));
    }

    #[test]
    fn empty_tensor_still_has_a_checksum() {
        let (bytes, masked) = encode::<&[u8]>(&[], Endianness::Little);
        assert_eq!(bytes, crc::mask(0).to_le_bytes());
        assert_eq!(masked, crc::mask(crc::crc32c(&bytes)));
        let decoded = decode(&bytes, 0, Endianness::Little, true).unwrap();
        assert!(decoded.elements.is_empty());
        assert_eq!(
            decode(&[], 0, Endianness::Little, true).unwrap().crc32c,
            Some(0)
        );
    }

    #[test]
    fn long_lengths_use_eight_bytes() {
        let short = extend_with_length(0, u64::from(u32::MAX), Endianness::Little);
        assert_eq!(short, crc::crc32c(&u32::MAX.to_le_bytes()));
        let long = 1u64 << 32;
        let crc_long = extend_with_length(0, long, Endianness::Little);
        assert_eq!(crc_long, crc::crc32c(&long.to_le_bytes()));
        assert_eq!(
            extend_with_length(0, long, Endianness::Big),
            crc::crc32c(&long.to_be_bytes())
        );
        // A prefix claiming a 4 GiB element decodes its checksum, then fails
        // on the missing payload without allocating it.
        let (prefix, _) = encode_prefix(&[long], Endianness::Little);
        assert_eq!(prefix.len(), 5 + 4);
        let e = decode(&prefix, 1, Endianness::Little, true).unwrap_err();
        assert!(e.to_string().contains("add up to 4294967296"), "{e}");
    }

    #[test]
    fn big_endian_checksum_is_stored_big_endian() {
        let (little, _) = encode(&[b"xyz".as_slice()], Endianness::Little);
        let (big, masked_big) = encode(&[b"xyz".as_slice()], Endianness::Big);
        assert_eq!(little[0], big[0]);
        let len_crc = crc::crc32c(&3u32.to_be_bytes());
        assert_eq!(&big[1..5], &crc::mask(len_crc).to_be_bytes());
        let decoded = decode(&big, 1, Endianness::Big, true).unwrap();
        assert_eq!(decoded.crc32c.map(crc::mask), Some(masked_big));
        assert!(decode(&big, 1, Endianness::Little, true).is_err());
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let (bytes, _) = encode(&[b"a".as_slice(), b"bc"], Endianness::Little);
        assert!(decode(&bytes, 3, Endianness::Little, true).is_err());
        assert!(decode(&bytes, 1, Endianness::Little, true).is_err());
        assert!(decode(&bytes, 100, Endianness::Little, true).is_err());
        assert!(decode(&[0x80, 0x80], 1, Endianness::Little, true).is_err());
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len], 2, Endianness::Little, true).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, 2, Endianness::Little, true).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn roundtrip(elements in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20), big in any::<bool>()) {
            let endianness = if big { Endianness::Big } else { Endianness::Little };
            let (bytes, masked) = encode(&elements, endianness);
            let decoded = decode(&bytes, elements.len() as u64, endianness, true).unwrap();
            prop_assert_eq!(decoded.elements.len(), elements.len());
            for (a, b) in decoded.elements.iter().zip(&elements) {
                prop_assert_eq!(*a, b.as_slice());
            }
            prop_assert_eq!(decoded.crc32c.map(crc::mask), Some(masked));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64), n in 0u64..80) {
            let _ = decode(&data, n, Endianness::Little, true);
        }
    }
}
