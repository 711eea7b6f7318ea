//! Tables whose block checksums are correct but whose structure is hostile
//! (threats.md section 2, 3, 4 and 7): every corruption test elsewhere is
//! stopped by the block CRC, so these tables are forged block by block with a
//! correct masked CRC32C, and each must give an error naming the file, never
//! a panic, a wrong answer or an allocation the file cannot justify.
//!
//! Layout reminders (docs/formats.md, section 2 "The index: a
//! LevelDB-style sorted table", see `table/`): a block is
//! `entry* restart:u32le* count:u32le`, an entry `shared non_shared
//! value_len key_delta value`, a block is followed by a 5-byte trailer (type,
//! masked CRC32C of block and type), and the 48-byte footer holds the
//! metaindex and index handles, zero padding and the magic.

use std::path::Path;

use super::alloc_probe::largest_allocation;
use crate::crc;
use crate::table::{BlockHandle, FOOTER_LEN, TABLE_MAGIC, Table};
use crate::varint::{put_varint32, put_varint64};
use crate::*;

/// The name every forged table is opened under; each error must name it.
const PATH: &str = "forged/hostile.index";

/// Every table here is under 1 KiB: no read of one may ask the allocator for
/// more than this in one request.
const ALLOCATION_LIMIT: usize = 64 << 10;

/// The header entry TensorFlow writes for one little-endian shard.
const HEADER: &[u8] = &[0x08, 0x01, 0x1a, 0x02, 0x08, 0x01];

/// A value standing in for a tensor entry (the table does not look inside).
const VALUE: &[u8] = b"value";

// ---------------------------------------------------------------------------
// Forging

/// One entry: `shared`, the key delta and the value, the value length being
/// the value's unless `value_len` says otherwise.
fn entry_claiming(shared: u32, delta: &[u8], value: &[u8], value_len: u32) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint32(&mut out, shared);
    put_varint32(&mut out, u32::try_from(delta.len()).unwrap());
    put_varint32(&mut out, value_len);
    out.extend_from_slice(delta);
    out.extend_from_slice(value);
    out
}

fn entry(shared: u32, delta: &[u8], value: &[u8]) -> Vec<u8> {
    entry_claiming(shared, delta, value, u32::try_from(value.len()).unwrap())
}

/// Entries (full keys, no prefix sharing) concatenated.
fn entries(items: &[(&[u8], &[u8])]) -> Vec<u8> {
    items.iter().flat_map(|(k, v)| entry(0, k, v)).collect()
}

/// A block body: `entries`, the restart offsets, then `count` (normally
/// `restarts.len()`).
fn block_counting(entries: &[u8], restarts: &[u32], count: u32) -> Vec<u8> {
    let mut out = entries.to_vec();
    for r in restarts {
        out.extend_from_slice(&r.to_le_bytes());
    }
    out.extend_from_slice(&count.to_le_bytes());
    out
}

fn block(entries: &[u8], restarts: &[u32]) -> Vec<u8> {
    block_counting(entries, restarts, u32::try_from(restarts.len()).unwrap())
}

/// Appends `body` and its trailer (type byte `kind`, masked CRC32C of the
/// body and the type byte, as `table/builder.rs: write_block` computes it) to `file`.
fn put_block(file: &mut Vec<u8>, body: &[u8], kind: u8) -> BlockHandle {
    let handle = BlockHandle {
        offset: file.len() as u64,
        size: body.len() as u64,
    };
    let checksum = crc::mask(crc::extend(crc::crc32c(body), &[kind]));
    file.extend_from_slice(body);
    file.push(kind);
    file.extend_from_slice(&checksum.to_le_bytes());
    handle
}

/// A block handle as stored in an index entry or the footer.
fn handle_bytes(offset: u64, size: u64) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint64(&mut out, offset);
    put_varint64(&mut out, size);
    out
}

fn encode(handle: BlockHandle) -> Vec<u8> {
    handle_bytes(handle.offset, handle.size)
}

/// The footer: the two handles (given as bytes), zero padding, the magic.
fn put_footer(file: &mut Vec<u8>, handles: &[u8]) {
    let mut footer = handles.to_vec();
    assert!(footer.len() <= 40);
    footer.resize(40, 0);
    footer.extend_from_slice(&(TABLE_MAGIC as u32).to_le_bytes());
    footer.extend_from_slice(&((TABLE_MAGIC >> 32) as u32).to_le_bytes());
    file.extend_from_slice(&footer);
}

/// An empty block (what TensorFlow writes as the metaindex block).
fn empty_block() -> Vec<u8> {
    block(&[], &[0])
}

/// A table of data blocks `(body, type)`, an empty metaindex block and an
/// index block built by `index` from the data blocks' handles (its entries,
/// one restart point each, as TensorFlow's index block has).
fn table_with(
    data: &[(Vec<u8>, u8)],
    index: impl FnOnce(&[BlockHandle]) -> Vec<(Vec<u8>, Vec<u8>)>,
) -> Vec<u8> {
    let mut file = Vec::new();
    let handles: Vec<BlockHandle> = data
        .iter()
        .map(|(body, kind)| put_block(&mut file, body, *kind))
        .collect();
    let metaindex = put_block(&mut file, &empty_block(), 0);
    let items = index(&handles);
    let mut body = Vec::new();
    let mut restarts = Vec::new();
    for (key, value) in &items {
        restarts.push(u32::try_from(body.len()).unwrap());
        body.extend(entry(0, key, value));
    }
    if restarts.is_empty() {
        restarts.push(0);
    }
    let index = put_block(&mut file, &block(&body, &restarts), 0);
    let mut handles = encode(metaindex);
    handles.extend(encode(index));
    put_footer(&mut file, &handles);
    file
}

/// A table with one uncompressed data block `body`, indexed under `\xff`
/// (after every key used here).
fn table(body: &[u8]) -> Vec<u8> {
    table_with(&[(body.to_vec(), 0)], |h| {
        vec![(b"\xff".to_vec(), encode(h[0]))]
    })
}

/// A table whose footer's index handle is `index_handle` (bytes), after one
/// good data block and `index_body` stored as a block of type `kind`.
fn table_with_index_block(index_body: &[u8], kind: u8, index_handle: Option<&[u8]>) -> Vec<u8> {
    let mut file = Vec::new();
    put_block(&mut file, &good_block(), 0);
    let metaindex = put_block(&mut file, &empty_block(), 0);
    let index = put_block(&mut file, index_body, kind);
    let mut handles = encode(metaindex);
    match index_handle {
        Some(bytes) => handles.extend_from_slice(bytes),
        None => handles.extend(encode(index)),
    }
    put_footer(&mut file, &handles);
    file
}

/// A well-formed data block: the header entry and `a`, `b`.
fn good_block() -> Vec<u8> {
    block(
        &entries(&[(b"", HEADER), (b"a", VALUE), (b"b", VALUE)]),
        &[0],
    )
}

/// The raw snappy encoding of `data` (as TensorFlow's writer would store a
/// compressible block).
fn snappy(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(data).unwrap()
}

// ---------------------------------------------------------------------------
// Reading, with the allocation bound checked

fn path() -> &'static Path {
    Path::new(PATH)
}

/// Runs `f`, asserting that it asks for no single allocation above
/// [`ALLOCATION_LIMIT`].
fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let (result, largest) = largest_allocation(f);
    assert!(
        largest <= ALLOCATION_LIMIT,
        "{what}: an allocation of {largest} bytes"
    );
    result
}

/// The message of an error, checked to name the file.
fn named(e: &Error) -> String {
    let message = e.to_string();
    assert!(
        message.contains(PATH),
        "error does not name the file: {message}"
    );
    message
}

fn assert_mentions(message: &str, expected: &str) {
    assert!(
        message.contains(expected),
        "expected {expected:?} in: {message}"
    );
}

/// Opening `bytes` fails; the error names the file and mentions `expected`.
fn refused_at_open(bytes: &[u8], expected: &str) -> String {
    let message = bounded(expected, || match Table::open(bytes, path()) {
        Ok(_) => panic!("a table with {expected:?} was opened"),
        Err(e) => named(&e),
    });
    assert_mentions(&message, expected);
    message
}

/// The table opens, and iterating over it ends with an error (after the
/// good entries before the fault) naming the file and mentioning `expected`.
/// Returns the keys read before the error.
fn refused_when_iterating(bytes: &[u8], expected: &str) -> Vec<Vec<u8>> {
    bounded(expected, || {
        let table = Table::open(bytes, path()).unwrap();
        let mut keys = Vec::new();
        let mut failures = 0;
        for item in table.iter() {
            match item {
                Ok((key, _)) => {
                    assert_eq!(failures, 0, "{expected}: entries after an error");
                    keys.push(key);
                }
                Err(e) => {
                    assert_mentions(&named(&e), expected);
                    failures += 1;
                }
            }
        }
        assert_eq!(failures, 1, "{expected}: iteration did not fail once");
        keys
    })
}

/// The table opens, and looking `key` up fails with an error naming the
/// file and mentioning `expected`.
fn refused_when_looking_up(bytes: &[u8], key: &[u8], expected: &str) {
    bounded(expected, || {
        let table = Table::open(bytes, path()).unwrap();
        match table.get(key) {
            Ok(found) => panic!(
                "{expected}: looking up {} gave {found:?}",
                key.escape_ascii()
            ),
            Err(e) => assert_mentions(&named(&e), expected),
        }
    });
}

// ---------------------------------------------------------------------------
// The forge itself is right

#[test]
fn forged_tables_read_like_built_ones() {
    let bytes = table(&good_block());
    let t = Table::open(bytes.as_slice(), path()).unwrap();
    let all: Vec<(Vec<u8>, Vec<u8>)> = t
        .iter()
        .map(|r| r.map(|(k, v)| (k, v.to_vec())).unwrap())
        .collect();
    assert_eq!(
        all,
        vec![
            (b"".to_vec(), HEADER.to_vec()),
            (b"a".to_vec(), VALUE.to_vec()),
            (b"b".to_vec(), VALUE.to_vec()),
        ]
    );
    assert_eq!(t.get(b"b").unwrap(), Some(VALUE));
    assert_eq!(t.get(b"c").unwrap(), None);

    // Prefix sharing and several restart points, as TensorFlow writes them.
    let first = entry(0, b"key1", VALUE);
    let mut body = first.clone();
    body.extend(entry(3, b"2", VALUE)); // "key2"
    let second_restart = u32::try_from(body.len()).unwrap();
    body.extend(entry(0, b"key3", VALUE));
    body.extend(entry(3, b"4", VALUE)); // "key4"
    let bytes = table(&block(&body, &[0, second_restart]));
    let t = Table::open(bytes.as_slice(), path()).unwrap();
    let keys: Vec<Vec<u8>> = t.iter().map(|r| r.unwrap().0).collect();
    assert_eq!(keys, [&b"key1"[..], b"key2", b"key3", b"key4"]);
    assert_eq!(t.get(b"key4").unwrap(), Some(VALUE));

    // A snappy data block and a snappy index block.
    let bytes = table_with(&[(snappy(&good_block()), 1)], |h| {
        vec![(b"\xff".to_vec(), encode(h[0]))]
    });
    let t = Table::open(bytes.as_slice(), path()).unwrap();
    assert_eq!(t.iter().count(), 3);
    let index = block(
        &entry(0, b"\xff", &handle_bytes(0, good_block().len() as u64)),
        &[0],
    );
    let bytes = table_with_index_block(&snappy(&index), 1, None);
    let t = Table::open(bytes.as_slice(), path()).unwrap();
    assert_eq!(t.get(b"a").unwrap(), Some(VALUE));

    // The same bytes through a bundle reader.
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("forged");
    std::fs::write(index_file_name(&prefix), table(&good_block())).unwrap();
    let reader = BundleReader::open(&prefix).unwrap();
    assert_eq!(reader.header().num_shards, 1);
}

// ---------------------------------------------------------------------------
// Restart arrays (table/reader.rs: parse_restarts)

#[test]
fn restart_counts_beyond_the_block_are_refused() {
    let body = entries(&[(b"", HEADER), (b"a", VALUE)]);
    // The block is `body`, 4 bytes per restart point and the count: one
    // more than fits.
    let just_too_many = u32::try_from((body.len() + 4) / 4 + 1).unwrap();
    for count in [u32::MAX, 0x8000_0000, 1000, just_too_many] {
        let data = block_counting(&body, &[0], count);
        let len = data.len();
        let expected = format!("{count} restart points in a {len}-byte block");
        let bytes = table(&data);
        assert!(refused_when_iterating(&bytes, &expected).is_empty());
        refused_when_looking_up(&bytes, b"a", &expected);
        // The same array in the index block stops the open.
        let index = block_counting(&entry(0, b"\xff", &handle_bytes(0, 1)), &[0], count);
        let expected = format!("{count} restart points in a {}-byte block", index.len());
        refused_at_open(&table_with_index_block(&index, 0, None), &expected);
    }
}

#[test]
fn malformed_restart_arrays_are_refused() {
    let body = entries(&[(b"", HEADER), (b"a", VALUE), (b"b", VALUE)]);
    let len = u32::try_from(body.len()).unwrap();
    let cases: Vec<(Vec<u8>, String)> = vec![
        // The first restart point must be the first entry.
        (block(&body, &[3]), "restart point 0 at 3".to_owned()),
        // Restart points strictly increase...
        (block(&body, &[0, 9, 9]), "restart point 2 at 9".to_owned()),
        (block(&body, &[0, 9, 4]), "restart point 2 at 4".to_owned()),
        // ...and lie inside the entries.
        (block(&body, &[0, len]), format!("restart point 1 at {len}")),
        (
            block(&body, &[0, u32::MAX]),
            format!("restart point 1 at {}", u32::MAX),
        ),
        // Entries need a restart point.
        (
            block(&body, &[]),
            "entries without restart points".to_owned(),
        ),
        // Too short to hold a count.
        (vec![0, 0, 0], "bad block contents: 3 bytes".to_owned()),
    ];
    for (data, expected) in cases {
        let bytes = table(&data);
        refused_when_iterating(&bytes, &expected);
        refused_when_looking_up(&bytes, b"a", &expected);
    }
    // An empty block (no entries, no restart points) is merely empty.
    let bytes = table(&block(&[], &[]));
    let t = Table::open(bytes.as_slice(), path()).unwrap();
    assert_eq!(t.iter().count(), 0);
    assert_eq!(t.get(b"a").unwrap(), None);
}

// ---------------------------------------------------------------------------
// Entries (table/reader.rs: decode_entry, BlockCursor::step, seek_in_block)

#[test]
fn shared_prefixes_longer_than_the_previous_key_are_refused() {
    let mut body = entries(&[(b"", HEADER), (b"ab", VALUE)]);
    body.extend(entry(5, b"c", VALUE));
    let bytes = table(&block(&body, &[0]));
    // The whole block is checked when first read: none of it is returned.
    assert!(refused_when_iterating(&bytes, "shares 5 bytes of a 2-byte key").is_empty());
    refused_when_looking_up(&bytes, b"abc", "shares 5 bytes of a 2-byte key");
    // The largest `shared` a varint32 holds.
    let mut body = entries(&[(b"", HEADER)]);
    body.extend(entry(u32::MAX, b"c", VALUE));
    let bytes = table(&block(&body, &[0]));
    refused_when_iterating(
        &bytes,
        &format!("shares {} bytes of a 0-byte key", u32::MAX),
    );
}

#[test]
fn lengths_past_the_block_are_refused() {
    let header = entry(0, b"", HEADER);
    let at = header.len();
    let expected = format!("bad entry at block offset {at}");
    let mut cases = Vec::new();
    for value_len in [u32::MAX, 1 << 31, 6] {
        // A 4 GiB (or just one byte too long) value length.
        let mut body = header.clone();
        body.extend(entry_claiming(0, b"a", VALUE, value_len));
        cases.push(body);
    }
    // A 4 GiB key length.
    let mut body = header.clone();
    put_varint32(&mut body, 0);
    put_varint32(&mut body, u32::MAX);
    put_varint32(&mut body, 1);
    body.extend_from_slice(b"a1");
    cases.push(body);
    // Varints cut off by the end of the entries, or longer than 5 bytes.
    let mut body = header.clone();
    body.extend_from_slice(&[0, 1]);
    cases.push(body);
    let mut body = header.clone();
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0]);
    cases.push(body);
    for body in cases {
        let bytes = table(&block(&body, &[0]));
        assert!(refused_when_iterating(&bytes, &expected).is_empty());
        refused_when_looking_up(&bytes, b"a", &expected);
    }
}

#[test]
fn restart_entries_that_share_a_prefix_are_refused() {
    // The entry at the second restart point claims to share a prefix.
    let mut body = entries(&[(b"", HEADER), (b"a", VALUE)]);
    let restart = u32::try_from(body.len()).unwrap();
    body.extend(entry(1, b"b", VALUE));
    let bytes = table(&block(&body, &[0, restart]));
    let expected = format!("entry at restart point {restart} shares a key prefix");
    assert!(refused_when_iterating(&bytes, &expected).is_empty());
    // The binary search over restart points reads it first.
    refused_when_looking_up(&bytes, b"ab", &expected);
    // So does the first entry of a block.
    let bytes = table(&block(&entry(1, b"a", VALUE), &[0]));
    refused_when_iterating(&bytes, "entry at restart point 0 shares a key prefix");
    refused_when_looking_up(&bytes, b"a", "entry at restart point 0 shares a key prefix");
}

#[test]
fn entries_straddling_a_restart_point_are_refused() {
    let body = entries(&[(b"", HEADER), (b"a", VALUE)]);
    // The second restart point falls inside the header entry.
    let bytes = table(&block(&body, &[0, 2]));
    refused_when_iterating(&bytes, "entry at 0 overlaps a restart point");
    // A lookup's binary search would land on the restart point inside the
    // entry (whose bytes `06 08 ...` decode as an entry sharing 6 bytes); the
    // whole block is checked before any lookup in it.
    refused_when_looking_up(&bytes, b"a", "entry at 0 overlaps a restart point");
}

/// A restart point inside an entry's value, where the value's bytes form
/// entries of their own: iteration never visits them, but a lookup's binary
/// search starts there. Such a block must be refused, not answer lookups
/// with entries the table does not list.
#[test]
fn restart_points_inside_entries_hide_nothing() {
    let mut hidden = entry(0, b"z", b"");
    hidden.extend(entry(1, b"z", b"evil")); // "zz"
    let mut value = vec![0xee; 3];
    value.extend_from_slice(&hidden);
    let body = entry(0, b"a", &value);
    let restart = u32::try_from(body.len() - hidden.len()).unwrap();
    let bytes = table(&block(&body, &[0, restart]));
    let expected = "entry at 0 overlaps a restart point";
    assert!(refused_when_iterating(&bytes, expected).is_empty());
    refused_when_looking_up(&bytes, b"zz", expected);
    refused_when_looking_up(&bytes, b"a", expected);
}

// ---------------------------------------------------------------------------
// Key order (table/reader.rs: TableIter::next, Table::open_with)

#[test]
fn unsorted_and_duplicate_keys_are_refused() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            entries(&[(b"", HEADER), (b"b", VALUE), (b"a", VALUE)]),
            "key a does not sort after the previous key b",
        ),
        (
            entries(&[(b"", HEADER), (b"a", VALUE), (b"a", VALUE)]),
            "key a does not sort after the previous key a",
        ),
        (
            entries(&[(b"", HEADER), (b"a", VALUE), (b"", VALUE)]),
            "key  does not sort after the previous key a",
        ),
    ];
    for (body, expected) in cases {
        let bytes = table(&block(&body, &[0]));
        assert!(refused_when_iterating(&bytes, expected).is_empty());
        // A lookup checks the whole block first, so it does not answer from
        // an unsorted one (where its search could miss keys that are there).
        refused_when_looking_up(&bytes, b"a", expected);
        refused_when_looking_up(&bytes, b"", expected);
    }
}

#[test]
fn keys_out_of_order_across_blocks_are_refused() {
    // Block 0 holds "b", block 1 holds "a": each block is sorted.
    let first = block(&entries(&[(b"", HEADER), (b"b", VALUE)]), &[0]);
    let second = block(&entries(&[(b"a", VALUE)]), &[0]);
    let bytes = table_with(&[(first.clone(), 0), (second, 0)], |h| {
        vec![(b"c".to_vec(), encode(h[0])), (b"d".to_vec(), encode(h[1]))]
    });
    let keys = refused_when_iterating(
        &bytes,
        "data block 1: key a does not sort after the previous key b",
    );
    assert_eq!(keys, [&b""[..], b"b"]);
    // Two index entries naming the same block repeat its keys.
    let bytes = table_with(&[(first.clone(), 0)], |h| {
        vec![(b"c".to_vec(), encode(h[0])), (b"d".to_vec(), encode(h[0]))]
    });
    refused_when_iterating(
        &bytes,
        "data block 1: key  does not sort after the previous key b",
    );
    // A key after its block's index key.
    let bytes = table_with(&[(first, 0)], |h| vec![(b"a".to_vec(), encode(h[0]))]);
    refused_when_iterating(&bytes, "key b sorts after the block's index key a");
    refused_when_looking_up(&bytes, b"", "key b sorts after the block's index key a");
}

#[test]
fn unsorted_index_blocks_are_refused() {
    // Each data block is sorted and iteration would see sorted keys, but a
    // lookup's binary search over the index keys would miss some of them.
    let first = block(&entries(&[(b"", HEADER), (b"a", VALUE)]), &[0]);
    let second = block(&entries(&[(b"b", VALUE)]), &[0]);
    for keys in [[b"c", b"b"], [b"c", b"c"]] {
        let bytes = table_with(&[(first.clone(), 0), (second.clone(), 0)], |h| {
            vec![
                (keys[0].to_vec(), encode(h[0])),
                (keys[1].to_vec(), encode(h[1])),
            ]
        });
        refused_at_open(&bytes, "index block: key");
    }
}

// ---------------------------------------------------------------------------
// Block handles (table/reader.rs: Table::open_with, read_block)

#[test]
fn index_entries_pointing_outside_the_data_area_are_refused() {
    let data = good_block();
    // `bytes.len() - FOOTER_LEN` is where the footer starts; a handle's block
    // and its 5-byte trailer must end there or before.
    let probe = table(&data);
    let footer_start = (probe.len() - FOOTER_LEN) as u64;
    let cases: Vec<(u64, u64)> = vec![
        (0, 10_000),               // past the end of the file
        (0, footer_start - 5 + 1), // trailer overlaps the footer
        (footer_start - 2, 1),     // block in the last data bytes, trailer in the footer
        (footer_start + 8, 4),     // inside the footer
        (0, u64::MAX),             // size overflows
        (u64::MAX, 1),             // offset overflows
        (u64::MAX - 4, 0),         // offset + trailer overflows
        (1 << 62, 1 << 62),
    ];
    for (offset, size) in cases {
        let bytes = table_with(&[(data.clone(), 0)], |_| {
            vec![(b"\xff".to_vec(), handle_bytes(offset, size))]
        });
        let message = refused_at_open(&bytes, "beyond the data area");
        assert_mentions(&message, &format!("(offset {offset}, size {size})"));
    }
    // A value that is not a handle at all.
    for value in [&b""[..], b"\x05", b"\x80\x80", &[0xff; 11]] {
        let bytes = table_with(&[(data.clone(), 0)], |_| {
            vec![(b"\xff".to_vec(), value.to_vec())]
        });
        refused_at_open(&bytes, "bad block handle in index block");
    }
    // The largest handle that fits is accepted (then its checksum is wrong).
    let bytes = table_with(&[(data, 0)], |_| {
        vec![(b"\xff".to_vec(), handle_bytes(0, footer_start - 5))]
    });
    let t = Table::open(bytes.as_slice(), path()).unwrap();
    let e = t.get(b"a").unwrap_err();
    assert!(matches!(e, Error::BlockChecksum { .. }), "{e}");
    named(&e);
}

#[test]
fn footer_handles_outside_the_data_area_are_refused() {
    let index = block(
        &entry(0, b"\xff", &handle_bytes(0, good_block().len() as u64)),
        &[0],
    );
    for (offset, size) in [
        (0, 100_000),
        (0, u64::MAX),
        (u64::MAX, 1),
        (u64::MAX - 2, 2),
        (1 << 40, 8),
    ] {
        let bytes = table_with_index_block(&index, 0, Some(&handle_bytes(offset, size)));
        refused_at_open(
            &bytes,
            &format!("the index block (offset {offset}, size {size}) runs beyond the data area"),
        );
    }
    // Handles that do not decode: a varint of 11 bytes, or cut off by the
    // padding's end (40 bytes of continuation bits).
    let mut meta = handle_bytes(0, 8);
    meta.extend_from_slice(&[0xff; 11]);
    refused_at_open(
        &table_with_index_block(&index, 0, Some(&meta[2..])),
        "bad block handle",
    );
    let all_continuation = [0x80; 38];
    refused_at_open(
        &table_with_index_block(&index, 0, Some(&all_continuation)),
        "bad block handle",
    );
}

/// An index block whose bytes run into the footer: its one entry's value
/// holds the data block's handle followed by filler that spans the footer's
/// handles, and its restart array and trailer sit in the footer's (unchecked)
/// padding. Every checksum is right; the handle in the footer points at it.
fn index_block_over_the_footer() -> Vec<u8> {
    let mut file = Vec::new();
    let data = put_block(&mut file, &good_block(), 0);
    let metaindex = put_block(&mut file, &empty_block(), 0);
    let start = file.len() as u64;
    // Footer handles: 4 one-byte varints (all values below 128).
    let filler = 10;
    let data_handle = encode(data);
    let value_len = data_handle.len() + filler + 4;
    // Block: 3 one-byte varints, the 1-byte key, the value, restart, count.
    let size = (3 + 1 + value_len + 8) as u64;
    let mut footer_handles = encode(metaindex);
    footer_handles.extend(handle_bytes(start, size));
    assert_eq!(footer_handles.len(), 4);
    let mut value = data_handle;
    value.resize(value.len() + filler, 0);
    value.extend_from_slice(&footer_handles);
    let body = block(&entry(0, b"\xff", &value), &[0]);
    assert_eq!(body.len() as u64, size);
    put_block(&mut file, &body, 0);
    // The footer starts where the value's copy of the handles starts.
    let footer_start = start as usize + 4 + value_len - 4;
    let mut footer = file.split_off(footer_start);
    assert_eq!(&footer[..4], &footer_handles[..]);
    footer.resize(40, 0);
    footer.extend_from_slice(&(TABLE_MAGIC as u32).to_le_bytes());
    footer.extend_from_slice(&((TABLE_MAGIC >> 32) as u32).to_le_bytes());
    file.extend_from_slice(&footer);
    file
}

#[test]
fn index_blocks_overlapping_the_footer_are_refused() {
    let bytes = index_block_over_the_footer();
    let footer_start = bytes.len() - FOOTER_LEN;
    refused_at_open(
        &bytes,
        &format!("beyond the data area ({footer_start} bytes)"),
    );
}

#[test]
fn bad_block_types_are_refused() {
    for kind in [2u8, 0x80, 0xff] {
        let bytes = table_with(&[(good_block(), kind)], |h| {
            vec![(b"\xff".to_vec(), encode(h[0]))]
        });
        refused_when_iterating(&bytes, &format!("bad block type {kind}"));
        let index = block(&entry(0, b"\xff", &handle_bytes(0, 1)), &[0]);
        refused_at_open(
            &table_with_index_block(&index, kind, None),
            &format!("bad block type {kind}"),
        );
    }
}

// ---------------------------------------------------------------------------
// Snappy blocks (table/reader.rs: read_block)

#[test]
fn snappy_blocks_claiming_huge_sizes_are_refused() {
    // A raw snappy stream starts with the decompressed length as a varint.
    for claim in [1u64 << 30, u64::from(u32::MAX), 64 << 20, 10_000] {
        let mut body = Vec::new();
        put_varint64(&mut body, claim);
        body.extend_from_slice(&[0, 0, 0, 0]);
        let expected = format!("snappy block claims {claim} decompressed bytes");
        let bytes = table_with(&[(body.clone(), 1)], |h| {
            vec![(b"\xff".to_vec(), encode(h[0]))]
        });
        refused_when_iterating(&bytes, &expected);
        refused_when_looking_up(&bytes, b"a", &expected);
        refused_at_open(&table_with_index_block(&body, 1, None), &expected);
    }
    // A length varint snappy cannot hold (above 2^32), or cut off.
    for body in [vec![0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0], vec![0x80]] {
        let bytes = table_with(&[(body.clone(), 1)], |h| {
            vec![(b"\xff".to_vec(), encode(h[0]))]
        });
        refused_when_iterating(&bytes, "corrupted compressed block contents");
        refused_at_open(
            &table_with_index_block(&body, 1, None),
            "corrupted compressed block contents",
        );
    }
}

#[test]
fn snappy_blocks_that_lie_are_refused() {
    let good = snappy(&good_block());
    // A plausible claim the stream does not fill.
    let mut short = Vec::new();
    put_varint64(&mut short, good_block().len() as u64 + 20);
    short.extend_from_slice(&good[1..]);
    // Garbage after a plausible claim.
    let mut garbage = vec![40];
    garbage.extend_from_slice(&[0xfe; 20]);
    for body in [short, garbage, good[..good.len() - 2].to_vec()] {
        let bytes = table_with(&[(body, 1)], |h| vec![(b"\xff".to_vec(), encode(h[0]))]);
        refused_when_iterating(&bytes, "corrupted compressed block contents");
    }
    // A valid stream whose decompressed block is hostile.
    let hostile = block_counting(&entries(&[(b"", HEADER), (b"a", VALUE)]), &[0], u32::MAX);
    let bytes = table_with(&[(snappy(&hostile), 1)], |h| {
        vec![(b"\xff".to_vec(), encode(h[0]))]
    });
    refused_when_iterating(&bytes, &format!("{} restart points", u32::MAX));
    let mut body = entries(&[(b"", HEADER), (b"b", VALUE), (b"a", VALUE)]);
    body.extend(entry(9, b"c", VALUE));
    let bytes = table_with(&[(snappy(&block(&body, &[0])), 1)], |h| {
        vec![(b"\xff".to_vec(), encode(h[0]))]
    });
    refused_when_iterating(&bytes, "key a does not sort after the previous key b");
}

// ---------------------------------------------------------------------------
// The same tables through a bundle reader

#[test]
fn bundle_readers_name_the_index_file() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("forged");
    let index_path = index_file_name(&prefix);
    std::fs::write(data_file_name(&prefix, 0, 1), b"").unwrap();
    // Valid entries (a float scalar), so that only the table is at fault.
    let value = TensorEntry {
        dtype: DType::Float,
        shape: Vec::new(),
        shard_id: 0,
        offset: 0,
        size: 4,
        crc32c: 0,
        slices: Vec::new(),
    }
    .encode();
    let with_header = |rest: &[&[u8]]| {
        let mut items: Vec<(&[u8], &[u8])> = vec![(b"", HEADER)];
        items.extend(rest.iter().map(|key| (*key, value.as_slice())));
        entries(&items)
    };
    let cases: Vec<(Vec<u8>, String)> = vec![
        (
            table(&block_counting(&with_header(&[b"a"]), &[0], u32::MAX)),
            format!("{} restart points", u32::MAX),
        ),
        (
            table(&block(&with_header(&[b"b", b"a"]), &[0])),
            "key a does not sort after the previous key b".to_owned(),
        ),
        (
            table(&block(&with_header(&[b"a", b"a"]), &[0])),
            "key a does not sort after the previous key a".to_owned(),
        ),
        (
            {
                let mut body = with_header(&[b"ab"]);
                body.extend(entry(7, b"c", &value));
                table(&block(&body, &[0]))
            },
            "shares 7 bytes of a 2-byte key".to_owned(),
        ),
    ];
    for (bytes, expected) in cases {
        std::fs::write(&index_path, &bytes).unwrap();
        let message = bounded(&expected, || {
            let outcome = BundleReader::open(&prefix)
                .and_then(|reader| reader.entries().try_for_each(|item| item.map(drop)));
            outcome.unwrap_err().to_string()
        });
        assert!(
            message.contains(&index_path.display().to_string()),
            "{message}"
        );
        assert_mentions(&message, &expected);
    }
    // Refused at open: the header lookup reaches the broken block.
    std::fs::write(&index_path, index_block_over_the_footer()).unwrap();
    let e = BundleReader::open(&prefix).unwrap_err();
    assert_mentions(&e.to_string(), &index_path.display().to_string());
}
