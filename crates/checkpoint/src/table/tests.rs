use std::io;
use std::path::Path;

use super::builder::{short_successor, shortest_separator};
use super::reader::read_block;
use super::*;
use crate::crc;
use crate::error::Error;

fn build(entries: &[(&[u8], &[u8])], options: TableOptions) -> Vec<u8> {
    let mut builder = TableBuilder::new(Vec::new(), options);
    for (k, v) in entries {
        builder.add(k, v).unwrap();
    }
    builder.finish().unwrap()
}

/// TF 2.21's bytes for the keys "", "W", "b" (docs/formats.md, section 2): 146 bytes,
/// data block at 0 (61 bytes), metaindex at 66 (8), index at 79 (14).
#[test]
fn layout_matches_formats_example() {
    let header = [0x08, 0x01, 0x1a, 0x02, 0x08, 0x01];
    let w = [
        0x08, 0x01, 0x12, 0x08, 0x12, 0x02, 0x08, 0x02, 0x12, 0x02, 0x08, 0x03, 0x28, 0x18, 0x35,
        0x7a, 0xeb, 0xf5, 0xab,
    ];
    // `b`: float[3] at offset 24 with some CRC; only lengths matter here.
    let b = [
        0x08, 0x01, 0x12, 0x04, 0x12, 0x02, 0x08, 0x03, 0x20, 0x18, 0x28, 0x0c, 0x35, 0x01, 0x02,
        0x03, 0x04,
    ];
    let table = build(
        &[(b"", &header), (b"W", &w), (b"b", &b)],
        TableOptions::default(),
    );
    assert_eq!(table.len(), 146);
    // data block: 3 entries (3*3 varint bytes + 0+1+1 key + 6+19+17 value) + 8.
    assert_eq!(3 * 3 + 2 + header.len() + w.len() + b.len() + 8, 61);
    assert_eq!(table[61], 0); // type byte
    // metaindex: an empty block at 66.
    assert_eq!(&table[66..74], &[0, 0, 0, 0, 1, 0, 0, 0]);
    // index block at 79: one entry, key "c" (successor of "b"), handle (0, 61).
    assert_eq!(&table[79..85], &[0, 1, 2, b'c', 0, 61]);
    // footer
    assert_eq!(&table[98..102], &[66, 8, 79, 14]);
    assert!(table[102..138].iter().all(|&b| b == 0));
    assert_eq!(
        &table[138..],
        &[0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]
    );

    let t = Table::open(&table[..], Path::new("t")).unwrap();
    assert_eq!(t.get(b"").unwrap(), Some(&header[..]));
    assert_eq!(t.get(b"W").unwrap(), Some(&w[..]));
    assert_eq!(t.get(b"b").unwrap(), Some(&b[..]));
    assert_eq!(t.get(b"a").unwrap(), None);
    assert_eq!(t.get(b"c").unwrap(), None);
    assert_eq!(t.get(b"zz").unwrap(), None);
}

#[test]
fn separators_match_leveldb() {
    let sep = |a: &[u8], b: &[u8]| {
        let mut s = a.to_vec();
        shortest_separator(&mut s, b);
        s
    };
    assert_eq!(sep(b"abcd", b"abzz"), b"abd");
    assert_eq!(sep(b"abc", b"abd"), b"abc"); // c+1 == d: keep
    assert_eq!(sep(b"ab", b"abc"), b"ab"); // prefix: keep
    assert_eq!(sep(b"a\xff", b"b"), b"a\xff"); // a+1 == b
    assert_eq!(sep(b"\xff\x01", b"\xff\x05"), b"\xff\x02");
    let succ = |a: &[u8]| {
        let mut s = a.to_vec();
        short_successor(&mut s);
        s
    };
    assert_eq!(succ(b"b"), b"c");
    assert_eq!(succ(b"strs"), b"t");
    assert_eq!(succ(b"\xff\xffa"), b"\xff\xffb");
    assert_eq!(succ(b"\xff\xff"), b"\xff\xff");
    assert_eq!(succ(b""), b"");
}

fn many(n: usize, value_len: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                format!("key/{i:08}").into_bytes(),
                vec![(i % 251) as u8; value_len],
            )
        })
        .collect()
}

fn roundtrip(entries: &[(Vec<u8>, Vec<u8>)], options: TableOptions) -> Vec<u8> {
    let mut builder = TableBuilder::new(Vec::new(), options);
    for (k, v) in entries {
        builder.add(k, v).unwrap();
    }
    let bytes = builder.finish().unwrap();
    let table = Table::open(bytes.as_slice(), Path::new("t")).unwrap();
    let all: Vec<_> = table.iter().map(|r| r.unwrap()).collect();
    assert_eq!(all.len(), entries.len());
    for ((k, v), (rk, rv)) in entries.iter().zip(&all) {
        assert_eq!(k, rk);
        assert_eq!(v.as_slice(), *rv);
    }
    for (k, v) in entries.iter().step_by(7) {
        assert_eq!(table.get(k).unwrap(), Some(v.as_slice()));
        let mut missing = k.clone();
        missing.push(0);
        assert_eq!(table.get(&missing).unwrap(), None);
    }
    bytes
}

#[test]
fn multi_block_tables_roundtrip() {
    let entries = many(20_000, 40);
    let bytes = roundtrip(&entries, TableOptions::default());
    let table = Table::open(bytes.as_slice(), Path::new("t")).unwrap();
    assert!(table.num_blocks() > 3);
}

#[test]
fn small_blocks_and_snappy_roundtrip() {
    let entries = many(3_000, 30);
    let options = TableOptions {
        block_size: 1024,
        block_restart_interval: 3,
        compression: Compression::Snappy,
    };
    let bytes = roundtrip(&entries, options);
    // Repetitive values compress: at least one block must be type 1.
    let table = Table::open(bytes.as_slice(), Path::new("t")).unwrap();
    let snappy_blocks = (0..table.num_blocks())
        .filter(|&i| {
            let h = table.block_handle(i).unwrap();
            bytes[(h.offset + h.size) as usize] == 1
        })
        .count();
    assert!(snappy_blocks > 0);
}

#[test]
fn overly_large_entry_gets_its_own_block() {
    let big = vec![7u8; 2 * 1024];
    let options = TableOptions {
        block_size: 1024,
        ..TableOptions::default()
    };
    let entries = vec![
        (b"a".to_vec(), b"1".to_vec()),
        (b"b".to_vec(), big.clone()),
        (b"c".to_vec(), b"3".to_vec()),
    ];
    let bytes = roundtrip(&entries, options);
    let table = Table::open(bytes.as_slice(), Path::new("t")).unwrap();
    // "a" alone, "b" alone (flushed by size), "c" alone.
    assert_eq!(table.num_blocks(), 3);
    assert_eq!(table.block_handle(0).unwrap().size, 3 + 1 + 1 + 8);
}

#[test]
fn out_of_order_keys_are_rejected() {
    let mut builder = TableBuilder::new(Vec::new(), TableOptions::default());
    builder.add(b"b", b"").unwrap();
    let err = builder.add(b"a", b"").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(builder.add(b"b", b"").is_err());
}

#[test]
fn snappy_claims_are_bounded() {
    // Worst-case expansion of real snappy output stays under the bound.
    let zeros = vec![0u8; 1 << 20];
    let compressed = snap::raw::Encoder::new().compress_vec(&zeros).unwrap();
    assert!(compressed.len() * MAX_SNAPPY_EXPANSION >= zeros.len());

    // A hand-made block claiming 1 GiB from a few bytes is refused.
    let mut block = Vec::new();
    put_varint64(&mut block, 1 << 30);
    block.extend_from_slice(&[0, 0, 0, 0]);
    let mut file = block.clone();
    let crc = crc::mask(crc::extend(crc::crc32c(&block), &[1]));
    file.push(1);
    file.extend_from_slice(&crc.to_le_bytes());
    let handle = BlockHandle {
        offset: 0,
        size: block.len() as u64,
    };
    let err = read_block(&file, handle, Path::new("t"), &TableReadOptions::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("claims"), "{err}");
}

#[test]
fn corruption_is_detected() {
    let entries = many(50, 10);
    let bytes = roundtrip(&entries, TableOptions::default());
    // Too short.
    let e = Table::open(&bytes[..47], Path::new("t")).err().unwrap();
    assert!(e.to_string().contains("too short"), "{e}");
    // Bad magic.
    let mut bad = bytes.clone();
    *bad.last_mut().unwrap() ^= 1;
    let e = Table::open(bad.as_slice(), Path::new("t")).err().unwrap();
    assert!(e.to_string().contains("bad magic"), "{e}");
    // Flipped data byte: block checksum.
    let mut bad = bytes.clone();
    bad[5] ^= 0x40;
    let t = Table::open(bad.as_slice(), Path::new("t")).unwrap();
    let e = t.get(b"key/00000001").err().unwrap();
    assert!(matches!(e, Error::BlockChecksum { .. }), "{e}");
    assert!(t.iter().any(|r| r.is_err()));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Random multi-byte damage, and random bytes behind a valid footer:
    /// errors or data, never a panic.
    #[test]
    fn random_damage_never_panics(
        edits in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..8),
        noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
    ) {
        let entries = many(60, 7);
        let options = TableOptions {
            block_size: 200,
            block_restart_interval: 3,
            compression: Compression::Snappy,
        };
        let mut builder = TableBuilder::new(Vec::new(), options);
        for (k, v) in &entries {
            builder.add(k, v).unwrap();
        }
        let mut bytes = builder.finish().unwrap();
        let len = bytes.len();
        for (at, value) in &edits {
            bytes[at % len] = *value;
        }
        if let Ok(table) = Table::open(bytes.as_slice(), Path::new("t")) {
            for (key, value) in table.iter().flatten() {
                let _ = crate::entry::TensorEntry::decode(&key, value, Path::new("t"));
                let _ = table.get(&key);
            }
        }
        let mut forged = noise.clone();
        forged.extend_from_slice(&bytes[len - FOOTER_LEN..]);
        if let Ok(table) = Table::open(forged.as_slice(), Path::new("t")) {
            let _ = table.iter().count();
            let _ = table.get(b"key/00000001");
        }
    }
}

/// Every truncation and every single-byte flip of a small table yields
/// an error or exactly the original entries.
#[test]
fn hostile_truncations_and_flips() {
    let entries = many(40, 5);
    let options = TableOptions {
        block_size: 128,
        block_restart_interval: 4,
        compression: Compression::Snappy,
    };
    let bytes = roundtrip(&entries, options);
    let expected: Vec<(Vec<u8>, Vec<u8>)> = entries;
    let check = |data: &[u8]| {
        let Ok(table) = Table::open(data, Path::new("t")) else {
            return;
        };
        let mut got = Vec::new();
        for item in table.iter() {
            match item {
                Ok((k, v)) => got.push((k, v.to_vec())),
                Err(_) => return,
            }
        }
        assert_eq!(got, expected);
        for (k, v) in &expected {
            if let Ok(found) = table.get(k) {
                assert_eq!(found, Some(v.as_slice()));
            }
        }
    };
    for len in 0..bytes.len() {
        check(&bytes[..len]);
    }
    for i in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= bit;
            check(&bad);
        }
    }
}
