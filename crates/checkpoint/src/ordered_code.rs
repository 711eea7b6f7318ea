//! TensorFlow's OrderedCode (`tensorflow/core/lib/strings/ordered_code.cc`)
//! and the slice keys built from it (`EncodeTensorNameSlice` in
//! `tensorflow/core/util/saved_tensor_slice_util.cc`). docs/formats.md, section
//! 6 "Partitioned tensors and slice keys".
//!
//! A slice key is
//! `num(0) string(name) num(rank) { signed(start) signed(length) }*rank`,
//! a full dimension being written as start 0, length -1. Because it starts
//! with a `0x00` byte, every slice key sorts before every ordinary tensor name
//! (and after the empty header key).

use crate::slice::{Extent, TensorSlice};

/// Appends `value` in OrderedCode's increasing unsigned form: one length byte
/// (0 to 8) then the value's big-endian bytes without leading zeros.
pub(crate) fn write_num_increasing(out: &mut Vec<u8>, value: u64) {
    let len = 8 - (value.leading_zeros() / 8) as usize;
    out.push(len as u8);
    out.extend_from_slice(&value.to_be_bytes()[8 - len..]);
}

/// Reads a value written by [`write_num_increasing`], advancing `input`.
pub(crate) fn read_num_increasing(input: &mut &[u8]) -> Option<u64> {
    let (&len, rest) = input.split_first()?;
    let len = usize::from(len);
    if len > 8 || rest.len() < len {
        return None;
    }
    let value = rest[..len]
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    *input = &rest[len..];
    Some(value)
}

/// Appends `bytes` in OrderedCode's string form: `00` escaped as `00 ff`,
/// `ff` as `ff 00`, terminated by `00 01`.
pub(crate) fn write_string(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        match b {
            0x00 => out.extend_from_slice(&[0x00, 0xff]),
            0xff => out.extend_from_slice(&[0xff, 0x00]),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Reads a string written by [`write_string`], advancing `input`.
pub(crate) fn read_string(input: &mut &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let b = *input.get(i)?;
        match b {
            0x00 => match *input.get(i + 1)? {
                0x01 => {
                    *input = &input[i + 2..];
                    return Some(out);
                }
                0xff => out.push(0x00),
                _ => return None,
            },
            0xff => match *input.get(i + 1)? {
                0x00 => out.push(0xff),
                _ => return None,
            },
            _ => {
                out.push(b);
                i += 1;
                continue;
            }
        }
        i += 2;
    }
}

/// Header bits XORed into the first two bytes of an `L`-byte signed encoding
/// (index `L`, 1 to 10): `L` one-bits followed by a zero-bit.
const SIGNED_HEADER: [[u8; 2]; 11] = [
    [0x00, 0x00],
    [0x80, 0x00],
    [0xc0, 0x00],
    [0xe0, 0x00],
    [0xf0, 0x00],
    [0xf8, 0x00],
    [0xfc, 0x00],
    [0xfe, 0x00],
    [0xff, 0x00],
    [0xff, 0x80],
    [0xff, 0xc0],
];

/// Appends `value` in OrderedCode's increasing signed form: `L` bytes
/// (1 to 10, holding `7L - 1` value bits) of big-endian two's complement with
/// a length header in the leading bits.
pub(crate) fn write_signed_num_increasing(out: &mut Vec<u8>, value: i64) {
    let magnitude = if value < 0 { !value } else { value } as u64;
    let bits = 64 - magnitude.leading_zeros() as usize;
    let len = bits / 7 + 1;
    let sign = if value < 0 { 0xff } else { 0x00 };
    let mut buf = [sign; 10];
    buf[2..].copy_from_slice(&value.to_be_bytes());
    let encoded = &mut buf[10 - len..];
    encoded[0] ^= SIGNED_HEADER[len][0];
    if len > 1 {
        encoded[1] ^= SIGNED_HEADER[len][1];
    }
    out.extend_from_slice(encoded);
}

/// Reads a value written by [`write_signed_num_increasing`], advancing
/// `input`. Rejects encodings longer than 10 bytes or outside `i64`.
pub(crate) fn read_signed_num_increasing(input: &mut &[u8]) -> Option<i64> {
    let first = *input.first()?;
    // Non-negative values start with a one-bit; negative values are stored
    // complemented, so undo that to read the length header.
    let flip = if first & 0x80 != 0 { 0x00 } else { 0xff };
    let b0 = first ^ flip;
    let b1 = input.get(1).map_or(0, |b| b ^ flip);
    let header = u16::from_be_bytes([b0, b1]);
    let len = header.leading_ones() as usize;
    if !(1..=10).contains(&len) || input.len() < len {
        return None;
    }
    let mut bytes = [0u8; 10];
    bytes[..len].copy_from_slice(&input[..len]);
    bytes[0] ^= SIGNED_HEADER[len][0];
    if len > 1 {
        bytes[1] ^= SIGNED_HEADER[len][1];
    }
    // Sign-extend the `8 * len`-bit big-endian value.
    let mut value: i128 = if flip == 0xff { -1 } else { 0 };
    for &b in &bytes[..len] {
        value = (value << 8) | i128::from(b);
    }
    let value = i64::try_from(value).ok()?;
    *input = &input[len..];
    Some(value)
}

/// The index key TensorFlow stores a slice of tensor `name` under.
pub fn encode_tensor_name_slice(name: &[u8], slice: &TensorSlice) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 8 + 4 * slice.rank());
    write_num_increasing(&mut out, 0);
    write_string(&mut out, name);
    write_num_increasing(&mut out, slice.rank() as u64);
    for extent in slice.extents() {
        let (start, length) = match *extent {
            Extent::Full => (0, -1),
            Extent::Range { start, length } => (start, length),
        };
        write_signed_num_increasing(&mut out, start);
        write_signed_num_increasing(&mut out, length);
    }
    out
}

/// Decodes a slice key into the tensor name and the slice, or `None` when
/// `key` is not a well-formed slice key (ordinary tensor names never are:
/// they do not start with `0x00`). A negative length means a full dimension,
/// as in TensorFlow; rank 0 and trailing bytes are rejected.
pub fn decode_tensor_name_slice(key: &[u8]) -> Option<(Vec<u8>, TensorSlice)> {
    let mut input = key;
    if read_num_increasing(&mut input)? != 0 {
        return None;
    }
    let name = read_string(&mut input)?;
    let rank = read_num_increasing(&mut input)?;
    if rank == 0 || rank >= i32::MAX as u64 {
        return None;
    }
    // Each dimension takes at least two bytes: bound the allocation by input.
    if rank > (input.len() / 2) as u64 {
        return None;
    }
    let mut extents = Vec::with_capacity(rank as usize);
    for _ in 0..rank {
        let start = read_signed_num_increasing(&mut input)?;
        let length = read_signed_num_increasing(&mut input)?;
        extents.push(if length < 0 {
            Extent::Full
        } else {
            Extent::Range { start, length }
        });
    }
    if !input.is_empty() {
        return None;
    }
    Some((name, TensorSlice::new(extents)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signed(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_signed_num_increasing(&mut out, v);
        out
    }

    #[test]
    fn vectors_from_formats() {
        let mut out = Vec::new();
        write_num_increasing(&mut out, 0);
        write_num_increasing(&mut out, 2);
        write_num_increasing(&mut out, 0x0102_0304);
        assert_eq!(out, [0x00, 0x01, 0x02, 0x04, 0x01, 0x02, 0x03, 0x04]);

        assert_eq!(signed(0), [0x80]);
        assert_eq!(signed(3), [0x83]);
        assert_eq!(signed(-1), [0x7f]);
        assert_eq!(signed(63), [0xbf]);
        assert_eq!(signed(-64), [0x40]);
        assert_eq!(signed(64), [0xc0, 0x40]);
        assert_eq!(signed(33_334), [0xe0, 0x82, 0x36]);
        assert_eq!(signed(66_667), [0xe1, 0x04, 0x6b]);

        let mut s = Vec::new();
        write_string(&mut s, b"a\x00b\xff");
        assert_eq!(s, [b'a', 0x00, 0xff, b'b', 0xff, 0x00, 0x00, 0x01]);
    }

    #[test]
    fn slice_keys_from_formats() {
        // `part` [5,3] split into rows 0..3 and 3..5 (verified against TF 2.21).
        let rows = |start, length| {
            TensorSlice::new(vec![
                Extent::Range { start, length },
                Extent::Range {
                    start: 0,
                    length: 3,
                },
            ])
        };
        let first = encode_tensor_name_slice(b"part", &rows(0, 3));
        assert_eq!(
            first,
            [
                0x00, b'p', b'a', b'r', b't', 0x00, 0x01, 0x01, 0x02, 0x80, 0x83, 0x80, 0x83
            ]
        );
        let second = encode_tensor_name_slice(b"part", &rows(3, 2));
        assert_eq!(
            second,
            [
                0x00, b'p', b'a', b'r', b't', 0x00, 0x01, 0x01, 0x02, 0x83, 0x82, 0x80, 0x83
            ]
        );
        assert_eq!(
            decode_tensor_name_slice(&first),
            Some((b"part".to_vec(), rows(0, 3)))
        );
        let full = TensorSlice::new(vec![
            Extent::Full,
            Extent::Range {
                start: 1,
                length: 1,
            },
        ]);
        let key = encode_tensor_name_slice(b"x", &full);
        assert_eq!(&key[6..8], &[0x80, 0x7f]); // start 0, length -1
        assert_eq!(decode_tensor_name_slice(&key), Some((b"x".to_vec(), full)));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(read_signed_num_increasing(&mut &[][..]), None);
        assert_eq!(read_signed_num_increasing(&mut &[0xff, 0xff][..]), None);
        assert_eq!(read_signed_num_increasing(&mut &[0xc0][..]), None);
        assert_eq!(
            read_num_increasing(&mut &[9, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]),
            None
        );
        assert_eq!(read_string(&mut &[b'a', 0x00][..]), None);
        assert_eq!(read_string(&mut &[0x00, 0x02][..]), None);
        assert_eq!(decode_tensor_name_slice(b"W"), None);
        assert_eq!(decode_tensor_name_slice(&[0, b'a', 0, 1, 0]), None); // rank 0
        assert_eq!(decode_tensor_name_slice(&[0, b'a', 0, 1, 1, 5]), None); // truncated
    }

    #[test]
    fn signed_boundaries_roundtrip_and_order() {
        let mut values = vec![i64::MIN, i64::MAX, 0, -1, 1];
        for bits in 1..63 {
            let p = 1i64 << bits;
            values.extend([p - 1, p, p + 1, -p - 1, -p, -p + 1]);
        }
        values.sort();
        values.dedup();
        let encoded: Vec<Vec<u8>> = values.iter().map(|&v| signed(v)).collect();
        for (v, e) in values.iter().zip(&encoded) {
            assert!(e.len() <= 10);
            let mut input = e.as_slice();
            assert_eq!(read_signed_num_increasing(&mut input), Some(*v), "{v}");
            assert!(input.is_empty());
        }
        for pair in encoded.windows(2) {
            assert!(pair[0] < pair[1], "order {:?} {:?}", pair[0], pair[1]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn signed_roundtrip(v in any::<i64>(), w in any::<i64>()) {
            let (a, b) = (signed(v), signed(w));
            prop_assert_eq!(read_signed_num_increasing(&mut a.as_slice()), Some(v));
            prop_assert_eq!(v.cmp(&w), a.cmp(&b));
        }

        #[test]
        fn unsigned_and_string_roundtrip(v in any::<u64>(), s in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut out = Vec::new();
            write_num_increasing(&mut out, v);
            write_string(&mut out, &s);
            let mut input = out.as_slice();
            prop_assert_eq!(read_num_increasing(&mut input), Some(v));
            prop_assert_eq!(read_string(&mut input), Some(s));
            prop_assert!(input.is_empty());
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_tensor_name_slice(&bytes);
        }
    }
}
