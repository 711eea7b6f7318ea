//! Whole-bundle tests: write, read, partition, shard, merge, fail, and
//! hostile input. (Byte identity with TensorFlow and TensorFlow reading our
//! files are proved in the workspace's `tests/` with TensorFlow itself.)

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use crate::dtype::ALL_DTYPES;
use crate::slice::{Extent, TensorSlice};
use crate::staged::Fault;
use crate::table::{TableBuilder, TableOptions};
use crate::*;

mod alloc_probe;
mod hostile;
mod hostile_bundles;
mod hostile_tables;

/// Deterministic pseudo-random bytes.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Owned copy of everything a reader returns for a bundle: per key, the
/// entry and (for tensors stored whole or partitioned) the tensor.
pub(crate) type Dump = Vec<(Vec<u8>, TensorEntry, Option<TensorView<'static>>)>;

pub(crate) fn dump(reader: &BundleReader) -> Result<Dump> {
    let mut out = Vec::new();
    for item in reader.entries() {
        let (key, entry) = item?;
        let tensor = match entry.dtype {
            DType::Resource | DType::Variant => None,
            _ => Some(reader.tensor_for_entry(&key, &entry)?.into_owned()),
        };
        out.push((key, entry, tensor));
    }
    Ok(out)
}

fn shape_for(dtype: DType, i: usize) -> Vec<i64> {
    match i % 3 {
        0 => vec![],
        1 => vec![3, 0, 2],
        _ => vec![2, (dtype.as_i32() % 4 + 1) as i64],
    }
}

#[test]
fn readers_are_shared_and_writers_sent_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<BundleReader>();
    send_sync::<TensorView<'static>>();
    send::<BundleWriter>();
    send::<ShardedBundleWriter>();
}

#[test]
fn every_dtype_roundtrips_borrowed() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("sub/ckpt");
    let mut writer = BundleWriter::create(&prefix).unwrap();
    let mut expected = Vec::new();
    for (i, dtype) in ALL_DTYPES.iter().copied().enumerate() {
        let Some(size) = dtype.element_size() else {
            continue;
        };
        for variant in 0..3 {
            let shape = shape_for(dtype, i + variant);
            let n: i64 = shape.iter().product();
            let data = bytes(i as u64 * 7 + variant as u64, n as usize * size);
            let name = format!("{}/{variant}", dtype.numpy_name());
            writer.add(&name, dtype, &shape, &data).unwrap();
            expected.push((name, dtype, shape, data));
        }
    }
    assert_eq!(writer.num_entries(), expected.len());
    writer.finish().unwrap();
    assert_eq!(
        files_in(prefix.parent().unwrap()),
        ["ckpt.data-00000-of-00001", "ckpt.index"]
    );

    let reader = BundleReader::open(&prefix).unwrap();
    assert_eq!(reader.header(), &BundleHeader::new(1, Endianness::Little));
    let mut offset = 0;
    for (name, dtype, shape, data) in &expected {
        let entry = reader.entry(name).unwrap();
        assert_eq!(
            entry.offset, offset,
            "{name}: tensors are contiguous in add order"
        );
        offset += data.len() as u64;
        let view = reader.tensor(name).unwrap();
        assert_eq!(view.dtype(), *dtype);
        assert_eq!(view.shape(), shape.as_slice());
        assert_eq!(view.bytes(), Some(data.as_slice()), "{name}");
        assert!(view.is_borrowed(), "{name}");
    }
    assert_eq!(reader.entries().count(), expected.len());
    let missing = reader.tensor("nope").unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
    assert!(missing.to_string().contains("ckpt.index"), "{missing}");
}

#[test]
fn unsupported_and_invalid_adds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = BundleWriter::create(dir.path().join("p")).unwrap();
    assert!(matches!(
        writer.add("v", DType::Variant, &[], &[]),
        Err(Error::UnsupportedDType { .. })
    ));
    assert!(writer.add("s", DType::String, &[1], b"x").is_err());
    assert!(writer.add("f", DType::Float, &[2], &[0; 7]).is_err());
    assert!(writer.add("f", DType::Float, &[-1], &[]).is_err());
    assert!(writer.add("", DType::Float, &[], &[0; 4]).is_err());
    writer.add("f", DType::Float, &[], &[0; 4]).unwrap();
    let dup = writer.add("f", DType::Float, &[], &[0; 4]).unwrap_err();
    assert!(dup.to_string().contains("duplicate"), "{dup}");
    assert!(writer.add_strings("s", &[3], &["a"]).is_err());
    // Refusals leave the writer usable.
    writer.add_strings("s", &[1], &["a"]).unwrap();
    writer.finish().unwrap();
}

#[test]
fn string_tensors_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("strings");
    let big = bytes(9, 70_000);
    type Case = (&'static str, Vec<i64>, Vec<Vec<u8>>);
    let cases: Vec<Case> = vec![
        ("empty_tensor", vec![0], vec![]),
        ("scalar", vec![], vec![b"hello".to_vec()]),
        ("empty_strings", vec![3], vec![vec![], vec![], vec![]]),
        (
            "not_utf8",
            vec![2],
            vec![vec![0xff, 0xfe, 0x00], vec![0x80]],
        ),
        ("big", vec![1, 2], vec![big.clone(), b"x".to_vec()]),
    ];
    let mut writer = BundleWriter::create(&prefix).unwrap();
    for (name, shape, elements) in &cases {
        writer.add_strings(name, shape, elements).unwrap();
    }
    writer.finish().unwrap();
    let reader = BundleReader::open(&prefix).unwrap();
    for (name, shape, elements) in &cases {
        let view = reader.tensor(name).unwrap();
        assert_eq!(view.dtype(), DType::String);
        assert_eq!(view.shape(), shape.as_slice());
        let got: Vec<&[u8]> = view.strings().unwrap().iter().map(|s| &s[..]).collect();
        let want: Vec<&[u8]> = elements.iter().map(|s| &s[..]).collect();
        assert_eq!(got, want, "{name}");
        assert!(view.is_borrowed());
    }
    // An empty string tensor still stores its 4-byte length checksum.
    assert_eq!(reader.entry("empty_tensor").unwrap().size, 4);
}

#[test]
fn big_endian_bundles_are_swapped_on_write_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("be");
    let options = WriterOptions {
        endianness: Endianness::Big,
        ..WriterOptions::default()
    };
    let floats = [1.5f32, -2.0, 3.25];
    let complex = [[1.0f64, 2.0], [3.0, 4.0]];
    let mut writer = BundleWriter::create_with(&prefix, options).unwrap();
    writer.add_typed("f", &[3], &floats).unwrap();
    writer.add_typed("c", &[2], &complex).unwrap();
    writer.add_typed("b", &[2], &[1u8, 2]).unwrap();
    writer.add_strings("s", &[2], &["ab", ""]).unwrap();
    // Streamed in odd chunks, so elements straddle chunk boundaries.
    let halves: Vec<half::f16> = (0..9).map(|i| half::f16::from_f32(i as f32)).collect();
    let raw: &[u8] = bytemuck::cast_slice(&halves);
    let mut sink = writer.begin_tensor("h", DType::Half, &[9]).unwrap();
    for chunk in raw.chunks(3) {
        sink.write_chunk(chunk).unwrap();
    }
    sink.finish().unwrap();
    writer.finish().unwrap();

    let data = fs::read(data_file_name(&prefix, 0, 1)).unwrap();
    assert_eq!(&data[..4], &1.5f32.to_be_bytes());
    let reader = BundleReader::open(&prefix).unwrap();
    assert_eq!(reader.header().endianness, Endianness::Big);
    let f = reader.tensor("f").unwrap();
    assert_eq!(&*f.to_slice::<f32>().unwrap(), &floats);
    assert!(!f.is_borrowed());
    assert!(matches!(
        f.as_slice::<f32>(),
        Err(Error::NotBorrowable { .. })
    ));
    let c = reader.tensor("c").unwrap();
    assert_eq!(&*c.to_slice::<[f64; 2]>().unwrap(), &complex);
    assert!(reader.tensor("b").unwrap().is_borrowed());
    let s = reader.tensor("s").unwrap();
    assert_eq!(s.strings().unwrap()[0].as_ref(), b"ab");
    let h = reader.tensor("h").unwrap();
    assert_eq!(&*h.to_slice::<half::f16>().unwrap(), halves.as_slice());
}

#[test]
fn alignment_pads_and_makes_views_borrowable() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("aligned");
    let options = WriterOptions {
        data_alignment: 8,
        ..WriterOptions::default()
    };
    let mut writer = BundleWriter::create_with(&prefix, options).unwrap();
    writer.add_typed("a_byte", &[3], &[1u8, 2, 3]).unwrap();
    writer.add_typed("b_double", &[2], &[1.0f64, 2.0]).unwrap();
    writer.finish().unwrap();
    let reader = BundleReader::open(&prefix).unwrap();
    assert_eq!(reader.entry("b_double").unwrap().offset, 8);
    let view = reader.tensor("b_double").unwrap();
    assert_eq!(view.as_slice::<f64>().unwrap(), &[1.0, 2.0]);
    // TensorFlow-style (unpadded): the double lands at offset 3.
    let plain = dir.path().join("plain");
    let mut writer = BundleWriter::create(&plain).unwrap();
    writer.add_typed("a_byte", &[3], &[1u8, 2, 3]).unwrap();
    writer.add_typed("b_double", &[2], &[1.0f64, 2.0]).unwrap();
    writer.finish().unwrap();
    let reader = BundleReader::open(&plain).unwrap();
    let view = reader.tensor("b_double").unwrap();
    assert_eq!(reader.entry("b_double").unwrap().offset, 3);
    assert!(matches!(
        view.as_slice::<f64>(),
        Err(Error::NotBorrowable { .. })
    ));
    assert_eq!(&*view.to_slice::<f64>().unwrap(), &[1.0, 2.0]);
}

fn rows(start: i64, length: i64) -> TensorSlice {
    TensorSlice::new(vec![Extent::Range { start, length }, Extent::Full])
}

#[test]
fn partitioned_tensors_assemble_and_slice() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("part");
    let full: Vec<f32> = (0..15).map(|i| i as f32).collect();
    let names: Vec<String> = (0..5).map(|i| format!("w{i}")).collect();
    let mut writer = BundleWriter::create(&prefix).unwrap();
    let (shape_str, slice) = parse_shape_and_slice("5 3 3,2:-").unwrap();
    assert_eq!(shape_str, [5, 3]);
    writer
        .add_slice(
            "part",
            &[5, 3],
            &slice,
            DType::Float,
            bytemuck::cast_slice(&full[9..]),
        )
        .unwrap();
    writer
        .add_slice(
            "part",
            &[5, 3],
            &rows(0, 3),
            DType::Float,
            bytemuck::cast_slice(&full[..9]),
        )
        .unwrap();
    writer
        .add_string_slice(
            "names",
            &[5],
            &TensorSlice::new(vec![Extent::Range {
                start: 0,
                length: 2,
            }]),
            &names[..2],
        )
        .unwrap();
    writer
        .add_string_slice(
            "names",
            &[5],
            &TensorSlice::new(vec![Extent::Range {
                start: 2,
                length: 3,
            }]),
            &names[2..],
        )
        .unwrap();
    // A "slice" covering everything is an ordinary tensor.
    writer
        .add_slice(
            "whole",
            &[2],
            &parse_shape_and_slice("2 0,2").unwrap().1,
            DType::Int32,
            &[0; 8],
        )
        .unwrap();
    // Errors: overlapping slice, mismatched type, duplicate slice.
    assert!(
        writer
            .add_slice("part", &[5, 3], &rows(2, 2), DType::Float, &[0; 24])
            .is_err()
    );
    assert!(
        writer
            .add_slice("part", &[5, 3], &rows(0, 1), DType::Int32, &[0; 12])
            .is_err()
    );
    assert!(
        writer
            .add_slice(
                "whole",
                &[2],
                &TensorSlice::new(vec![Extent::Range {
                    start: 0,
                    length: 1
                }]),
                DType::Int32,
                &[0; 4]
            )
            .is_err()
    );
    writer.finish().unwrap();

    let reader = BundleReader::open(&prefix).unwrap();
    let entry = reader.entry("part").unwrap();
    assert_eq!(entry.slices, [slice.clone(), rows(0, 3)]);
    assert_eq!((entry.size, entry.offset), (0, 0));
    assert!(!reader.entry("whole").unwrap().is_partitioned());
    let keys: Vec<Vec<u8>> = reader.entries().map(|e| e.unwrap().0).collect();
    assert_eq!(keys.len(), 2 + 2 + 2 + 1);
    assert!(keys[0].starts_with(&[0]));

    let whole = reader.tensor("part").unwrap();
    assert_eq!(whole.shape(), &[5, 3]);
    assert_eq!(&*whole.to_slice::<f32>().unwrap(), full.as_slice());
    // A stored slice is borrowed.
    let stored = reader.slice("part", &rows(3, 2)).unwrap();
    assert!(stored.is_borrowed());
    assert_eq!(&*stored.to_slice::<f32>().unwrap(), &full[9..]);
    // A slice across both stored slices, columns 1..3.
    let cross = TensorSlice::new(vec![
        Extent::Range {
            start: 2,
            length: 2,
        },
        Extent::Range {
            start: 1,
            length: 2,
        },
    ]);
    let view = reader.slice("part", &cross).unwrap();
    assert_eq!(view.shape(), &[2, 2]);
    assert_eq!(&*view.to_slice::<f32>().unwrap(), &[7.0, 8.0, 10.0, 11.0]);
    // Slicing a tensor stored whole.
    let view = reader
        .slice(
            "whole",
            &TensorSlice::new(vec![Extent::Range {
                start: 1,
                length: 1,
            }]),
        )
        .unwrap();
    assert_eq!(view.bytes(), Some(&[0u8; 4][..]));
    let strings = reader.tensor("names").unwrap();
    let got: Vec<&[u8]> = strings.strings().unwrap().iter().map(|s| &s[..]).collect();
    let want: Vec<&[u8]> = names.iter().map(|s| s.as_bytes()).collect();
    assert_eq!(got, want);
    assert!(reader.slice("part", &rows(4, 2)).is_err());
}

#[test]
fn listed_slice_keys_are_told_from_other_keys() {
    use crate::ordered_code::encode_tensor_name_slice;
    let rows = |start, length| TensorSlice::new(vec![Extent::Range { start, length }]);
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("listed");
    let mut writer = BundleWriter::create(&prefix).unwrap();
    writer
        .add_slice("p", &[4], &rows(0, 2), DType::Float, &[0; 8])
        .unwrap();
    writer
        .add_slice("p", &[4], &rows(2, 2), DType::Float, &[0; 8])
        .unwrap();
    // A slice key stored as a plain tensor: no tensor lists it.
    let orphan = encode_tensor_name_slice(b"q", &rows(0, 1));
    writer.add(&orphan, DType::Float, &[1], &[0; 4]).unwrap();
    // A slice key of `p`'s name for a slice `p` does not list.
    let unlisted = encode_tensor_name_slice(b"p", &rows(1, 1));
    writer.add(&unlisted, DType::Float, &[1], &[0; 4]).unwrap();
    writer.add_typed("w", &[1], &[1.0f32]).unwrap();
    writer.finish().unwrap();

    let reader = BundleReader::open(&prefix).unwrap();
    let listed: Vec<(Vec<u8>, bool)> = reader
        .entries()
        .map(|item| {
            let (key, _) = item.unwrap();
            let listed = reader.is_listed_slice(&key).unwrap();
            (key, listed)
        })
        .collect();
    let expected_listed = [
        encode_tensor_name_slice(b"p", &rows(0, 2)),
        encode_tensor_name_slice(b"p", &rows(2, 2)),
    ];
    assert_eq!(listed.len(), 6, "{listed:?}");
    for (key, is_listed) in &listed {
        assert_eq!(
            *is_listed,
            expected_listed.contains(key),
            "{}",
            key.escape_ascii()
        );
    }
    assert!(!reader.is_listed_slice(b"").unwrap());
    assert!(!reader.is_listed_slice(b"\0not a slice key").unwrap());
}

#[test]
fn missing_slices_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("half");
    let mut writer = BundleWriter::create(&prefix).unwrap();
    writer
        .add_slice(
            "p",
            &[4],
            &TensorSlice::new(vec![Extent::Range {
                start: 0,
                length: 2,
            }]),
            DType::Float,
            &[0; 8],
        )
        .unwrap();
    writer.finish().unwrap();
    let reader = BundleReader::open(&prefix).unwrap();
    let e = reader.tensor("p").unwrap_err();
    assert!(matches!(e, Error::Slices { .. }), "{e}");
    assert!(e.to_string().contains("sufficient slices"), "{e}");
    assert!(
        reader
            .slice(
                "p",
                &TensorSlice::new(vec![Extent::Range {
                    start: 1,
                    length: 1
                }])
            )
            .is_ok()
    );
}

#[test]
fn streaming_matches_adding_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = bytes(3, 3 * 1024 * 1024 + 12);
    let n = (data.len() / 4) as i64;
    let a = dir.path().join("a");
    let mut writer = BundleWriter::create(&a).unwrap();
    writer.add("t", DType::Float, &[n], &data).unwrap();
    writer.finish().unwrap();

    struct Trickle<'a>(&'a [u8], usize);
    impl io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 += 1;
            let n = buf
                .len()
                .min(self.0.len())
                .min(1 + (self.1 * 7919) % 100_000);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let b = dir.path().join("b");
    let options = WriterOptions {
        buffer_size: 64 * 1024,
        ..WriterOptions::default()
    };
    let mut writer = BundleWriter::create_with(&b, options).unwrap();
    writer
        .add_from_reader("t", DType::Float, &[n], Trickle(&data, 0))
        .unwrap();
    writer.finish().unwrap();
    for name in ["a.index", "a.data-00000-of-00001"] {
        let other = name.replacen('a', "b", 1);
        assert_eq!(
            fs::read(dir.path().join(name)).unwrap(),
            fs::read(dir.path().join(other)).unwrap()
        );
    }

    // A reader that ends early is an error and nothing is published.
    let c = dir.path().join("c");
    let mut writer = BundleWriter::create(&c).unwrap();
    let e = writer
        .add_from_reader("t", DType::Float, &[n], &data[..100])
        .unwrap_err();
    assert!(e.to_string().contains("ended after 100"), "{e}");
    assert!(writer.finish().is_err());
    // An unfinished sink poisons the writer.
    let mut writer = BundleWriter::create(&c).unwrap();
    let mut sink = writer.begin_tensor("t", DType::Float, &[2]).unwrap();
    sink.write_chunk(&[0; 4]).unwrap();
    assert!(sink.write_chunk(&[0; 8]).is_err());
    drop(sink);
    assert!(writer.finish().is_err());
    assert_eq!(
        files_in(dir.path()),
        [
            "a.data-00000-of-00001",
            "a.index",
            "b.data-00000-of-00001",
            "b.index"
        ]
    );
}

/// Tensors for the threaded-write tests: one over the threading threshold,
/// an empty one, 3,000 of a few KiB (together over the threshold too) and
/// 1,500 of one byte (more pieces than one `pwritev` takes), names not in
/// order.
fn threaded_write_set() -> Vec<(String, DType, Vec<i64>, Vec<u8>)> {
    let mut set = vec![
        (
            "big".to_owned(),
            DType::UInt8,
            vec![(17 << 20) + 3],
            bytes(1, (17 << 20) + 3),
        ),
        ("empty".to_owned(), DType::Float, vec![0, 4], Vec::new()),
    ];
    for i in 0..3000 {
        let len = 4096 + (i * 37) % 1000;
        set.push((
            format!("small/{:04}", (i * 7) % 3000),
            DType::UInt8,
            vec![len as i64],
            bytes(i as u64, len),
        ));
    }
    for i in 0..1500 {
        set.push((format!("byte/{i:04}"), DType::Int8, vec![1], vec![i as u8]));
    }
    set
}

/// Options for comparing write paths: a 64 KiB buffer (so that the set's
/// tensors cross it), no fsync.
fn small_buffer_options(alignment: u64, threads: usize) -> WriterOptions {
    WriterOptions::default()
        .with_data_alignment(alignment)
        .with_threads(threads)
        .with_buffer_size(64 << 10)
        .with_fsync(false)
}

/// The tensors of a set, for `add_batch`.
fn batch_of(set: &[(String, DType, Vec<i64>, Vec<u8>)]) -> Vec<TensorBytes<'_>> {
    set.iter()
        .map(|(name, dtype, shape, data)| TensorBytes::new(name, *dtype, shape, data))
        .collect()
}

#[test]
fn threaded_and_batched_writes_are_byte_identical_to_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    let set = threaded_write_set();
    let tensors = batch_of(&set);
    for alignment in [1, 64] {
        let options = |threads| small_buffer_options(alignment, threads);
        // The reference: one thread, one `add` at a time (the path proved
        // byte-identical to SaveV2 in tests/it/checkpoint.rs).
        let reference = dir.path().join(format!("reference{alignment}"));
        let mut writer = BundleWriter::create_with(&reference, options(1)).unwrap();
        for t in &tensors {
            writer.add(t.name, t.dtype, t.shape, t.data).unwrap();
        }
        writer.finish().unwrap();

        let each = dir.path().join(format!("each{alignment}"));
        let mut writer = BundleWriter::create_with(&each, options(2)).unwrap();
        for t in &tensors {
            writer.add(t.name, t.dtype, t.shape, t.data).unwrap();
        }
        writer.finish().unwrap();

        let batch = dir.path().join(format!("batch{alignment}"));
        let mut writer = BundleWriter::create_with(&batch, options(3)).unwrap();
        writer.add_batch(&tensors).unwrap();
        writer.finish().unwrap();

        // Two batches, the second into a writer that has entries already.
        let halves = dir.path().join(format!("halves{alignment}"));
        let mut writer = BundleWriter::create_with(&halves, options(2)).unwrap();
        let (first, second) = tensors.split_at(1700);
        writer.add_batch(first).unwrap();
        writer.add_batch(second).unwrap();
        writer.finish().unwrap();

        for other in [&each, &batch, &halves] {
            for file in [index_file_name, |p: &Path| data_file_name(p, 0, 1)] {
                assert!(
                    fs::read(file(&reference)).unwrap() == fs::read(file(other)).unwrap(),
                    "{} differs from {}",
                    file(other).display(),
                    file(&reference).display()
                );
            }
        }
        // And every CRC checks out on reading.
        let reader = BundleReader::open(&batch).unwrap();
        for (name, _, _, data) in &set {
            assert_eq!(
                reader.tensor(name).unwrap().bytes().unwrap(),
                data.as_slice()
            );
        }
    }
}

#[test]
fn several_data_files_have_the_same_bytes_however_written() {
    let dir = tempfile::tempdir().unwrap();
    let set = threaded_write_set();
    let tensors = batch_of(&set);
    const FILES: u32 = 3;
    let files_of = |p: &Path| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = (0..FILES).map(|i| data_file_name(p, i, FILES)).collect();
        files.push(index_file_name(p));
        files
    };
    let assert_same = |a: &Path, b: &Path| {
        for (mine, theirs) in files_of(a).iter().zip(&files_of(b)) {
            assert!(
                fs::read(mine).unwrap() == fs::read(theirs).unwrap(),
                "{} differs from {}",
                theirs.display(),
                mine.display()
            );
        }
    };
    for alignment in [1, 64] {
        let options =
            |threads| small_buffer_options(alignment, threads).with_data_files(FILES as usize);
        let write = |name: &str, threads, fill: &dyn Fn(&mut BundleWriter)| {
            let prefix = dir.path().join(format!("{name}{alignment}"));
            let mut writer = BundleWriter::create_with(&prefix, options(threads)).unwrap();
            fill(&mut writer);
            writer.finish().unwrap();
            prefix
        };
        // One tensor at a time: each goes to the emptiest file.
        let each = write("each", 1, &|w| {
            for t in &tensors {
                w.add(t.name, t.dtype, t.shape, t.data).unwrap();
            }
        });
        let streamed = write("streamed", 2, &|w| {
            for t in &tensors {
                let mut sink = w.begin_tensor(t.name, t.dtype, t.shape).unwrap();
                for chunk in t.data.chunks(5000) {
                    sink.write_chunk(chunk).unwrap();
                }
                sink.finish().unwrap();
            }
        });
        assert_same(&each, &streamed);
        // Batches: one thread (tensor by tensor), a thread per file, and
        // two workers for three files; then two batches, the second into a
        // writer that has entries already.
        let batch = |w: &mut BundleWriter| w.add_batch(&tensors).unwrap();
        let one_thread = write("batch_1_thread", 1, &batch);
        for threads in [2, 3] {
            assert_same(
                &one_thread,
                &write(&format!("batch_{threads}"), threads, &batch),
            );
        }
        let halves = |w: &mut BundleWriter| {
            let (first, second) = tensors.split_at(1700);
            w.add_batch(first).unwrap();
            w.add_batch(second).unwrap();
        };
        let halves_one_thread = write("halves_1_thread", 1, &halves);
        assert_same(&halves_one_thread, &write("halves_3", 3, &halves));

        // The batch is cut into consecutive runs that fill the files to an
        // even share in turn: the 17 MiB tensor fills the first, the second
        // stops within a small tensor past the share, the third takes the
        // rest.
        assert!(!data_file_name(&one_thread, 0, 1).exists());
        let sizes: Vec<u64> = files_of(&one_thread)[..FILES as usize]
            .iter()
            .map(|f| fs::metadata(f).unwrap().len())
            .collect();
        let share = tensors
            .iter()
            .map(|t| t.data.len() as u64)
            .sum::<u64>()
            .div_ceil(u64::from(FILES));
        assert!(sizes[0] > 17 << 20, "{sizes:?}");
        assert!(
            sizes[1] >= share && sizes[1] < share + 8192,
            "{sizes:?} {share}"
        );
        assert!(sizes[2] > 0, "{sizes:?}");
        // The index says which file holds each tensor, and every CRC checks
        // out on reading.
        for prefix in [&each, &one_thread, &halves_one_thread] {
            let reader = BundleReader::open(prefix).unwrap();
            assert_eq!(reader.header().num_shards, FILES);
            let mut used = [false; FILES as usize];
            for item in reader.entries() {
                let (_, entry) = item.unwrap();
                used[entry.shard_id as usize] = true;
            }
            assert_eq!(used, [true; FILES as usize], "{}", prefix.display());
            for (name, _, _, data) in &set {
                assert_eq!(
                    reader.tensor(name).unwrap().bytes().unwrap(),
                    data.as_slice()
                );
            }
        }
    }
    let refused = BundleWriter::create_with(
        dir.path().join("too_many"),
        WriterOptions::default().with_data_files(MAX_DATA_FILES + 1),
    );
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("data_files must be 1 to 256"),
        "a writer with too many data files"
    );
    assert!(fs::read_dir(dir.path()).unwrap().all(|e| {
        let name = e.unwrap().file_name();
        !name.to_string_lossy().contains("too_many")
            && !name.to_string_lossy().contains("tempstate")
    }));
}

#[test]
fn a_batch_whose_data_all_goes_to_one_of_several_files() {
    // One large tensor takes a file past its share; the empty tensors after
    // it go to the next file, which gets no bytes. Written the threaded way
    // for one file, and tensor by tensor: the same bytes.
    let dir = tempfile::tempdir().unwrap();
    let big = bytes(7, 9 << 20);
    let tensors = [
        TensorBytes::new("a_empty", DType::Float, &[0], &[]),
        TensorBytes::new("big", DType::UInt8, &[9 << 20], &big),
        TensorBytes::new("c_empty", DType::Int64, &[2, 0], &[]),
    ];
    let prefixes: Vec<PathBuf> = [1, 3]
        .into_iter()
        .map(|threads| {
            let prefix = dir.path().join(format!("one_file_with_data_{threads}"));
            let options = WriterOptions::default()
                .with_data_files(3)
                .with_threads(threads)
                .with_fsync(false);
            let mut writer = BundleWriter::create_with(&prefix, options).unwrap();
            writer.add_batch(&tensors).unwrap();
            writer.finish().unwrap();
            prefix
        })
        .collect();
    for i in 0..3 {
        let [a, b] =
            [&prefixes[0], &prefixes[1]].map(|p| fs::read(data_file_name(p, i, 3)).unwrap());
        assert!(a == b, "data file {i} differs");
    }
    let [a, b] = [&prefixes[0], &prefixes[1]].map(|p| fs::read(index_file_name(p)).unwrap());
    assert_eq!(a, b);
    let reader = BundleReader::open(&prefixes[1]).unwrap();
    assert_eq!(
        reader.tensor("big").unwrap().bytes().unwrap(),
        big.as_slice()
    );
    assert_eq!(reader.entry("big").unwrap().shard_id, 0);
    assert_eq!(reader.entry("c_empty").unwrap().shard_id, 1);
    assert!(
        reader
            .tensor("c_empty")
            .unwrap()
            .bytes()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn entries_of_many_batches_behave_as_those_added_one_by_one() {
    // Six batches large enough for the threaded path (their entries are
    // kept as runs, merged as they come), names interleaved across
    // batches, single tensors in between; the same calls on one thread
    // (entries in the map, tensor by tensor) give the same files.
    let dir = tempfile::tempdir().unwrap();
    let sizes = [1000usize, 300, 300, 1200, 100, 2000];
    let data: Vec<Vec<Vec<u8>>> = sizes
        .iter()
        .enumerate()
        .map(|(b, &n)| {
            let each = (9 << 20) / n / 4 * 4;
            (0..n)
                .map(|i| bytes((b * 10_000 + i) as u64, each))
                .collect()
        })
        .collect();
    let names: Vec<Vec<String>> = sizes
        .iter()
        .enumerate()
        .map(|(b, &n)| (0..n).map(|i| format!("t/{:06}", i * 6 + b)).collect())
        .collect();
    let shapes: Vec<[i64; 1]> = data.iter().map(|d| [d[0].len() as i64 / 4]).collect();
    let write = |name: &str, threads| {
        let prefix = dir.path().join(name);
        let options = WriterOptions::default()
            .with_threads(threads)
            .with_fsync(false);
        let mut writer = BundleWriter::create_with(&prefix, options).unwrap();
        let mut expected_entries = 0;
        for (b, batch_data) in data.iter().enumerate() {
            let batch: Vec<TensorBytes<'_>> = batch_data
                .iter()
                .zip(&names[b])
                .map(|(d, n)| TensorBytes::new(n, DType::Float, &shapes[b], d))
                .collect();
            writer.add_batch(&batch).unwrap();
            writer
                .add_typed(format!("single/{b}"), &[1], &[b as f32])
                .unwrap();
            expected_entries += batch.len() + 1;
            assert_eq!(writer.num_entries(), expected_entries);
        }
        // Names already in a batch are refused, by every method.
        let error = writer.add_typed("t/000000", &[1], &[0f32]).unwrap_err();
        assert!(error.to_string().contains("duplicate"), "{error}");
        let again = [TensorBytes::new("t/000015", DType::Float, &[1], &[0; 4])];
        let error = writer.add_batch(&again).unwrap_err();
        assert!(error.to_string().contains("duplicate"), "{error}");
        let slice = TensorSlice::new(vec![Extent::Range {
            start: 0,
            length: 1,
        }]);
        let error = writer
            .add_slice("t/000017", &[2], &slice, DType::Float, &[0; 4])
            .unwrap_err();
        assert!(error.to_string().contains("whole tensor"), "{error}");
        assert_eq!(writer.num_entries(), expected_entries);
        writer.finish().unwrap();
        prefix
    };
    let threaded = write("threaded", 2);
    let reference = write("one_thread", 1);
    for file in [index_file_name, |p: &Path| data_file_name(p, 0, 1)] {
        assert!(
            fs::read(file(&threaded)).unwrap() == fs::read(file(&reference)).unwrap(),
            "{} differs",
            file(&threaded).display()
        );
    }
    let reader = BundleReader::open(&threaded).unwrap();
    let mut keys = Vec::new();
    for item in reader.entries() {
        keys.push(item.unwrap().0);
    }
    assert_eq!(keys.len(), sizes.iter().sum::<usize>() + sizes.len());
    assert!(keys.windows(2).all(|k| k[0] < k[1]));
    for (b, batch_data) in data.iter().enumerate() {
        for (d, n) in batch_data.iter().zip(&names[b]).step_by(97) {
            assert_eq!(reader.tensor(n).unwrap().bytes().unwrap(), d.as_slice());
        }
    }
}

#[test]
fn add_batch_checks_every_tensor_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("checked");
    let mut writer = BundleWriter::create(&prefix).unwrap();
    writer.add_typed("kept", &[1], &[1.0f32]).unwrap();
    let big = vec![0u8; 9 << 20];
    let fine = TensorBytes::new("fine", DType::UInt8, &[9 << 20], &big);
    let cases = [
        (
            TensorBytes::new("kept", DType::Float, &[1], &[0; 4]),
            "duplicate",
        ),
        (
            TensorBytes::new("fine", DType::UInt8, &[9 << 20], &big),
            "duplicate",
        ),
        (
            TensorBytes::new("", DType::Float, &[1], &[0; 4]),
            "reserved",
        ),
        (
            TensorBytes::new("short", DType::Float, &[2], &[0; 4]),
            "4 bytes given",
        ),
        (
            TensorBytes::new("s", DType::String, &[1], &[0; 4]),
            "add_strings",
        ),
    ];
    for (bad, message) in cases {
        let error = writer.add_batch(&[fine, bad]).unwrap_err();
        assert!(error.to_string().contains(message), "{error}");
        assert_eq!((writer.num_entries(), writer.data_size()), (1, 4));
    }
    // Into an empty writer too (which skips looking names up in the index).
    let mut empty = BundleWriter::create(dir.path().join("empty")).unwrap();
    let error = empty.add_batch(&[fine, fine]).unwrap_err();
    assert!(error.to_string().contains("duplicate"), "{error}");
    assert_eq!((empty.num_entries(), empty.data_size()), (0, 0));
    drop(empty);
    // Nothing was poisoned: the writer goes on.
    writer.add_batch(&[fine]).unwrap();
    writer.finish().unwrap();
    let reader = BundleReader::open(&prefix).unwrap();
    assert_eq!(
        reader.tensor("fine").unwrap().bytes().unwrap().len(),
        9 << 20
    );
    assert_eq!(
        files_in(dir.path()),
        ["checked.data-00000-of-00001", "checked.index"]
    );
}

#[test]
fn blocks_allocated_ahead_are_released() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("sized");
    let mut writer = BundleWriter::create(&prefix).unwrap();
    // Many small writes (the allocation runs ahead in growing steps) and a
    // threaded one.
    for i in 0..300 {
        writer
            .add(
                format!("t{i:03}"),
                DType::UInt8,
                &[10_000],
                &bytes(i, 10_000),
            )
            .unwrap();
    }
    writer
        .add("big", DType::UInt8, &[9 << 20], &bytes(7, 9 << 20))
        .unwrap();
    writer.finish().unwrap();
    let data = fs::metadata(data_file_name(&prefix, 0, 1)).unwrap();
    assert_eq!(data.len(), 300 * 10_000 + (9 << 20));
    use std::os::unix::fs::MetadataExt;
    let allocated = data.blocks() * 512;
    assert!(
        allocated <= data.len().next_multiple_of(4096) + (64 << 10),
        "{allocated} bytes allocated for a file of {}",
        data.len()
    );
}

#[test]
fn disk_full_leaves_nothing_behind() {
    let small: Vec<Vec<u8>> = (0..3000).map(|i| vec![i as u8; 4096]).collect();
    let names: Vec<String> = (0..small.len()).map(|i| format!("s{i:04}")).collect();
    let batch: Vec<TensorBytes<'_>> = small
        .iter()
        .zip(&names)
        .map(|(data, name)| TensorBytes::new(name, DType::UInt8, &[4096], data))
        .collect();
    let faults = [
        (Some(10), None),
        (Some(0), None),
        (Some(1000), None),
        (Some(3 << 20), None),
        (None, Some(0)),
        (None, Some(30)),
    ];
    for ((data_fault, index_fault), data_files) in faults.into_iter().flat_map(|f| [(f, 1), (f, 3)])
    {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("full");
        let options = WriterOptions::default().with_data_files(data_files);
        let mut writer = BundleWriter::create_with(&prefix, options).unwrap();
        let fault = |after| Fault {
            after,
            kind: io::ErrorKind::StorageFull,
        };
        writer.inject_faults(data_fault.map(fault), index_fault.map(fault));
        let mut first_error = None;
        for i in 0..4 {
            if let Err(e) = writer.add_typed(format!("t{i}"), &[8], &[0f32; 8]) {
                first_error = Some(e);
                break;
            }
        }
        // A tensor and a batch large enough to be written by several
        // threads, when the small ones got through.
        // (With three files, the batch alone: its thirds then run out of
        // room in their threads.)
        if first_error.is_none() && data_fault.is_some() && data_files == 1 {
            first_error = writer
                .add("big", DType::UInt8, &[9 << 20], &vec![0; 9 << 20])
                .err();
        }
        if first_error.is_none() && data_fault.is_some() {
            first_error = writer.add_batch(&batch).err();
            assert!(first_error.is_some(), "{data_fault:?} {data_files}");
        }
        let error = match first_error {
            Some(e) => {
                assert!(writer.finish().is_err());
                e
            }
            None => writer.finish().unwrap_err(),
        };
        match &error {
            Error::Io { path, source, .. } => {
                assert_eq!(source.kind(), io::ErrorKind::StorageFull);
                assert!(path.to_string_lossy().contains("full."), "{error}");
            }
            other => panic!("unexpected error {other}"),
        }
        assert!(
            files_in(dir.path()).is_empty(),
            "{:?}",
            files_in(dir.path())
        );
    }
}

/// A real `EFBIG`: a child process with a 512-byte file-size limit and
/// `SIGXFSZ` ignored runs this same test, which then writes a bundle.
#[test]
fn file_size_limit_is_a_clean_error() {
    const CHILD: &str = "SAVEDMODEL_CHECKPOINT_EFBIG_DIR";
    if let Some(dir) = std::env::var_os(CHILD) {
        let dir = PathBuf::from(dir);
        // Through the write buffer, and through the threaded write of a
        // large tensor and of a batch.
        let big = vec![1u8; 9 << 20];
        let small: Vec<Vec<u8>> = (0..3000).map(|i| vec![i as u8; 4096]).collect();
        let names: Vec<String> = (0..small.len()).map(|i| format!("s{i:04}")).collect();
        let batch: Vec<TensorBytes<'_>> = small
            .iter()
            .zip(&names)
            .map(|(data, name)| TensorBytes::new(name, DType::UInt8, &[4096], data))
            .collect();
        type Add<'a> = &'a dyn Fn(&mut BundleWriter) -> Result<()>;
        let cases: [Add<'_>; 3] = [
            &|w| w.add_typed("t", &[4096], &big[..4096]),
            &|w| w.add_typed("t", &[big.len() as i64], &big),
            &|w| w.add_batch(&batch),
        ];
        let with_files = cases.iter().flat_map(|add| [(add, 1), (add, 2)]);
        for (add, data_files) in with_files {
            let options = WriterOptions::default()
                .with_threads(2)
                .with_data_files(data_files);
            let mut writer = BundleWriter::create_with(dir.join("big"), options).unwrap();
            let error = add(&mut writer).and_then(|()| writer.finish()).unwrap_err();
            match &error {
                Error::Io { source, .. } => {
                    assert_eq!(source.kind(), io::ErrorKind::FileTooLarge, "{error}")
                }
                other => panic!("unexpected error {other}"),
            }
            assert!(files_in(&dir).is_empty(), "{:?}", files_in(&dir));
            println!("EFBIG-OK: {error}");
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 1 && trap '' XFSZ && exec \"$0\" --exact tests::file_size_limit_is_a_clean_error --nocapture --test-threads 1")
        .arg(&exe)
        .env(CHILD, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("EFBIG-OK"),
        "child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn sharded_writer_merges_like_tensorflow() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("out/model");
    let mut writer = ShardedBundleWriter::create(&prefix, 3, WriterOptions::default()).unwrap();
    std::thread::scope(|s| {
        for (i, shard) in writer.shards_mut().iter_mut().enumerate() {
            s.spawn(move || {
                shard
                    .add_typed(format!("v{i}"), &[2], &[i as f32; 2])
                    .unwrap();
                // The partitioned tensor has one slice per shard.
                let slice = TensorSlice::new(vec![Extent::Range {
                    start: i as i64,
                    length: 1,
                }]);
                shard
                    .add_slice("p", &[3], &slice, DType::Int64, &(i as i64).to_ne_bytes())
                    .unwrap();
            });
        }
    });
    writer.finish().unwrap();
    assert_eq!(
        files_in(&dir.path().join("out")),
        [
            "model.data-00000-of-00003",
            "model.data-00001-of-00003",
            "model.data-00002-of-00003",
            "model.index"
        ]
    );
    let reader = BundleReader::open(&prefix).unwrap();
    assert_eq!(reader.header().num_shards, 3);
    for i in 0..3u32 {
        let entry = reader.entry(format!("v{i}")).unwrap();
        assert_eq!(entry.shard_id, i);
        assert_eq!(
            &*reader
                .tensor(format!("v{i}"))
                .unwrap()
                .to_slice::<f32>()
                .unwrap(),
            &[i as f32; 2]
        );
    }
    assert_eq!(reader.entry("p").unwrap().slices.len(), 3);
    assert_eq!(
        &*reader.tensor("p").unwrap().to_slice::<i64>().unwrap(),
        &[0, 1, 2]
    );
}

#[test]
fn merge_rejects_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, endianness| {
        let p = dir.path().join(name);
        let options = WriterOptions {
            endianness,
            ..WriterOptions::default()
        };
        let mut w = BundleWriter::create_with(&p, options).unwrap();
        w.add_typed("same", &[], &[1i32]).unwrap();
        w.finish().unwrap();
        p
    };
    let a = write("a", Endianness::Little);
    let b = write("b", Endianness::Little);
    let e = merge_bundles(&[&a, &b], dir.path().join("m")).unwrap_err();
    assert!(e.to_string().contains("duplicate"), "{e}");
    let c = write("c", Endianness::Big);
    let e = merge_bundles(&[&a, &c], dir.path().join("m")).unwrap_err();
    assert!(e.to_string().contains("endianness"), "{e}");
    // Nothing was renamed or written.
    assert!(!dir.path().join("m.index").exists());
    assert!(a.with_extension("data-00000-of-00001").exists());
}

/// Rewrites a bundle's index with a different header.
fn rewrite_header(prefix: &Path, entries: &[(Vec<u8>, Vec<u8>)], header: &[u8]) {
    let index = index_file_name(prefix);
    let mut builder = TableBuilder::new(Vec::new(), TableOptions::default());
    builder.add(b"", header).unwrap();
    for (k, v) in entries {
        builder.add(k, v).unwrap();
    }
    fs::write(index, builder.finish().unwrap()).unwrap();
}

#[test]
fn header_checks() {
    use prost::Message;
    use savedmodel_proto::tensorflow::{BundleHeaderProto, VersionDef};
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("v");
    let mut writer = BundleWriter::create(&prefix).unwrap();
    writer.add_typed("x", &[], &[1.0f32]).unwrap();
    writer.finish().unwrap();
    let entries: Vec<(Vec<u8>, Vec<u8>)> = BundleReader::open(&prefix)
        .unwrap()
        .entries()
        .map(|e| {
            let (k, e) = e.unwrap();
            (k, e.encode())
        })
        .collect();
    let header = |num_shards, endianness, min_consumer, bad: Vec<i32>| {
        BundleHeaderProto {
            num_shards,
            endianness,
            version: Some(VersionDef {
                producer: 1,
                min_consumer,
                bad_consumers: bad,
            }),
        }
        .encode_to_vec()
    };
    rewrite_header(&prefix, &entries, &header(1, 0, 2, vec![]));
    assert!(matches!(
        BundleReader::open(&prefix),
        Err(Error::Version { .. })
    ));
    rewrite_header(&prefix, &entries, &header(1, 0, 0, vec![1]));
    assert!(matches!(
        BundleReader::open(&prefix),
        Err(Error::Version { .. })
    ));
    rewrite_header(&prefix, &entries, &header(1, 7, 0, vec![]));
    assert!(matches!(
        BundleReader::open(&prefix),
        Err(Error::CorruptEntry { .. })
    ));
    rewrite_header(&prefix, &entries, &header(i32::MAX, 0, 0, vec![]));
    assert!(matches!(
        BundleReader::open(&prefix),
        Err(Error::Limit { .. })
    ));
    // Two shards claimed: the tensor's file name changes and is missing.
    rewrite_header(&prefix, &entries, &header(2, 0, 0, vec![]));
    let reader = BundleReader::open(&prefix).unwrap();
    let e = reader.tensor("x").unwrap_err();
    assert!(e.to_string().contains("v.data-00000-of-00002"), "{e}");
    rewrite_header(&prefix, &entries, &header(1, 0, 0, vec![2]));
    assert_eq!(
        &*BundleReader::open(&prefix)
            .unwrap()
            .tensor("x")
            .unwrap()
            .to_slice::<f32>()
            .unwrap(),
        &[1.0]
    );
}

#[test]
fn object_graph_is_decoded() {
    use prost::Message;
    use savedmodel_proto::tensorflow::{
        TrackableObjectGraph, trackable_object_graph::TrackableObject,
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("tf2");
    let graph = TrackableObjectGraph {
        nodes: vec![TrackableObject::default(), TrackableObject::default()],
    };
    let mut writer = BundleWriter::create(&prefix).unwrap();
    writer
        .add_strings(OBJECT_GRAPH_KEY, &[], &[graph.encode_to_vec()])
        .unwrap();
    writer.finish().unwrap();
    let reader = BundleReader::open(&prefix).unwrap();
    assert_eq!(reader.object_graph().unwrap(), Some(graph));

    let plain = dir.path().join("tf1");
    let mut writer = BundleWriter::create(&plain).unwrap();
    writer.add_typed("w", &[], &[0f32]).unwrap();
    writer.finish().unwrap();
    assert_eq!(
        BundleReader::open(&plain).unwrap().object_graph().unwrap(),
        None
    );
}

#[test]
fn many_tensors_span_several_index_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("many");
    let mut writer = BundleWriter::create(&prefix).unwrap();
    for i in 0..10_000 {
        writer
            .add_typed(
                format!("layer_{i:05}/some/long/variable/name"),
                &[1],
                &[i as f32],
            )
            .unwrap();
    }
    writer.finish().unwrap();
    let index = fs::read(index_file_name(&prefix)).unwrap();
    let table = crate::table::Table::open(index.as_slice(), Path::new("i")).unwrap();
    assert!(table.num_blocks() >= 2, "{} blocks", table.num_blocks());
    let reader = BundleReader::open(&prefix).unwrap();
    for i in (0..10_000).step_by(997) {
        let view = reader
            .tensor(format!("layer_{i:05}/some/long/variable/name"))
            .unwrap();
        assert_eq!(&*view.to_slice::<f32>().unwrap(), &[i as f32]);
    }
    assert_eq!(reader.entries().count(), 10_000);
}

#[test]
fn checksums_can_be_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("c");
    let mut writer = BundleWriter::create(&prefix).unwrap();
    writer.add_typed("x", &[2], &[1u32, 2]).unwrap();
    writer.finish().unwrap();
    let data = data_file_name(&prefix, 0, 1);
    let mut bytes = fs::read(&data).unwrap();
    bytes[0] ^= 1;
    fs::write(&data, bytes).unwrap();
    let e = BundleReader::open(&prefix)
        .unwrap()
        .tensor("x")
        .unwrap_err();
    assert!(matches!(e, Error::TensorChecksum { .. }), "{e}");
    assert!(e.to_string().contains("c.data-00000-of-00001"), "{e}");
    let options = ReaderOptions {
        verify_checksums: false,
        ..ReaderOptions::default()
    };
    let reader = BundleReader::open_with(&prefix, options).unwrap();
    assert_eq!(
        &*reader.tensor("x").unwrap().to_slice::<u32>().unwrap(),
        &[0, 2]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_bundles_roundtrip(
        tensors in proptest::collection::btree_map(
            "[a-z/_]{1,12}",
            (0usize..ALL_DTYPES.len(), proptest::collection::vec(0i64..4, 0..3), any::<u64>()),
            1..12,
        ),
        big in any::<bool>(),
        alignment in prop_oneof![Just(1u64), Just(8), Just(64)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("p");
        let options = WriterOptions {
            endianness: if big { Endianness::Big } else { Endianness::Little },
            data_alignment: alignment,
            fsync: false,
            ..WriterOptions::default()
        };
        let mut writer = BundleWriter::create_with(&prefix, options).unwrap();
        let mut expected = Vec::new();
        for (name, (d, shape, seed)) in &tensors {
            let dtype = ALL_DTYPES[*d];
            let n: i64 = shape.iter().product();
            if dtype == DType::String {
                let elements: Vec<Vec<u8>> = (0..n).map(|i| bytes(seed + i as u64, (seed % 7) as usize)).collect();
                writer.add_strings(name, shape, &elements).unwrap();
                expected.push((name.clone(), TensorData::Strings(elements.into_iter().map(Cow::Owned).collect())));
            } else if let Some(size) = dtype.element_size() {
                let data = bytes(*seed, n as usize * size);
                writer.add(name, dtype, shape, &data).unwrap();
                expected.push((name.clone(), TensorData::Bytes(Cow::Owned(data))));
            }
        }
        writer.finish().unwrap();
        let reader = BundleReader::open(&prefix).unwrap();
        for (name, data) in expected {
            let view = reader.tensor(&name).unwrap();
            prop_assert_eq!(view.data(), &data);
            prop_assert_eq!(reader.entry(&name).unwrap().offset % alignment, 0);
        }
    }
}
