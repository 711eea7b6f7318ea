//! Conversion round trips between the three formats, without TensorFlow
//! (TensorFlow, NumPy and Python `safetensors` judge them in the workspace's
//! `tests/`).

use std::borrow::Cow;
use std::fs;
use std::io::Write;
use std::path::Path;

use regex::Regex;

use super::*;
use crate::slice::TensorSlice;
use crate::{BundleWriter, data_file_name, index_file_name};

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

/// One tensor of every type `.safetensors` holds, plus shapes that matter
/// (scalar, empty).
fn safetensors_tensors() -> Vec<(String, DType, Vec<i64>, Vec<u8>)> {
    let dtypes = [
        DType::Float,
        DType::Double,
        DType::Half,
        DType::BFloat16,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Bool,
        DType::Complex64,
        DType::Float8E5M2,
        DType::Float8E4M3FN,
        DType::Float8E4M3FNUZ,
        DType::Float8E5M2FNUZ,
    ];
    let mut out = Vec::new();
    for (i, &dtype) in dtypes.iter().enumerate() {
        let size = dtype.element_size().unwrap();
        let shape = vec![2, 3];
        let mut data = bytes(i as u64, 6 * size);
        if dtype == DType::Bool {
            data.iter_mut().for_each(|b| *b &= 1);
        }
        out.push((format!("t/{}", dtype.numpy_name()), dtype, shape, data));
    }
    out.push((
        "scalar".into(),
        DType::Float,
        vec![],
        1.5f32.to_ne_bytes().to_vec(),
    ));
    out.push(("empty".into(), DType::Int32, vec![0, 4], vec![]));
    out
}

/// Writes `tensors` (in the order given) as a checkpoint.
fn write_bundle(prefix: &Path, tensors: &[(String, DType, Vec<i64>, Vec<u8>)]) {
    let mut w = BundleWriter::create(prefix).unwrap();
    for (name, dtype, shape, data) in tensors {
        w.add(name, *dtype, shape, data).unwrap();
    }
    w.finish().unwrap();
}

fn bundle_files(prefix: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        fs::read(index_file_name(prefix)).unwrap(),
        fs::read(data_file_name(prefix, 0, 1)).unwrap(),
    )
}

fn convert(src: &Path, dst: &Path, options: &ConvertOptions) -> Result<ConvertSummary> {
    let source = load_tensors(src)?;
    let plan = ConvertPlan::new(&source, Format::for_output(dst), options)?;
    plan.write(dst, &mut |_, _| {})
}

fn sorted(
    mut t: Vec<(String, DType, Vec<i64>, Vec<u8>)>,
) -> Vec<(String, DType, Vec<i64>, Vec<u8>)> {
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

fn regexes(patterns: &[&str]) -> Vec<Regex> {
    patterns.iter().map(|p| Regex::new(p).unwrap()).collect()
}

#[test]
fn bundle_to_safetensors_and_back_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = safetensors_tensors();
    let (src, st, back, reference) = (
        dir.path().join("src"),
        dir.path().join("m.safetensors"),
        dir.path().join("back"),
        dir.path().join("reference"),
    );
    // Written in an unsorted order: conversion sorts.
    write_bundle(&src, &tensors);
    write_bundle(&reference, &sorted(tensors.clone()));

    let summary = convert(&src, &st, &ConvertOptions::default()).unwrap();
    assert_eq!(summary.tensors, tensors.len());
    let file = load_tensors(&st).unwrap();
    assert_eq!(file.format(), Format::SafeTensors);
    for (name, dtype, shape, data) in &tensors {
        let view = file.get(name).unwrap();
        assert_eq!((view.dtype(), view.shape()), (*dtype, &shape[..]), "{name}");
        assert_eq!(view.bytes().unwrap(), &data[..], "{name}");
        assert!(view.is_borrowed(), "{name} was copied");
    }

    convert(&st, &back, &ConvertOptions::default()).unwrap();
    assert_eq!(bundle_files(&back), bundle_files(&reference));
    // Checkpoint to checkpoint: the same.
    let direct = dir.path().join("direct");
    convert(&src, &direct, &ConvertOptions::default()).unwrap();
    assert_eq!(bundle_files(&direct), bundle_files(&reference));
}

/// Our `.safetensors` output is what the `safetensors` crate's own
/// serializer produces for the same tensors.
#[test]
fn safetensors_output_equals_the_crates_serializer() {
    struct Raw<'a>(safetensors::Dtype, Vec<usize>, &'a [u8]);
    impl safetensors::View for &Raw<'_> {
        fn dtype(&self) -> safetensors::Dtype {
            self.0
        }
        fn shape(&self) -> &[usize] {
            &self.1
        }
        fn data(&self) -> Cow<'_, [u8]> {
            Cow::Borrowed(self.2)
        }
        fn data_len(&self) -> usize {
            self.2.len()
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let tensors = safetensors_tensors();
    let src = dir.path().join("src");
    write_bundle(&src, &tensors);
    let st = dir.path().join("m.safetensors");
    convert(&src, &st, &ConvertOptions::default()).unwrap();

    let raws: Vec<(String, Raw<'_>)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            let st_dtype = safetensors_format::to_safetensors_dtype(*dtype).unwrap();
            let shape = shape.iter().map(|&d| d as usize).collect();
            (name.clone(), Raw(st_dtype, shape, data))
        })
        .collect();
    let expected = safetensors::serialize(raws.iter().map(|(n, r)| (n.as_str(), r)), None).unwrap();
    assert_eq!(fs::read(&st).unwrap(), expected);
}

#[test]
fn bundle_to_npz_and_back_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let mut tensors: Vec<_> = safetensors_tensors()
        .into_iter()
        .filter(|(_, d, _, _)| Format::Npz.supports(*d))
        .collect();
    tensors.push(("c128".into(), DType::Complex128, vec![3], bytes(99, 48)));
    let (src, npz, back, reference) = (
        dir.path().join("src"),
        dir.path().join("m.npz"),
        dir.path().join("back"),
        dir.path().join("reference"),
    );
    let mut w = BundleWriter::create(&src).unwrap();
    for (name, dtype, shape, data) in &tensors {
        w.add(name, *dtype, shape, data).unwrap();
    }
    let words: [&[u8]; 4] = [b"", b"a", b"\xff\x00bc", &[7u8; 300]];
    w.add_strings("words", &[2, 2], &words).unwrap();
    w.finish().unwrap();
    let mut r = BundleWriter::create(&reference).unwrap();
    let mut all: Vec<_> = tensors.iter().map(|t| (t.0.as_str(), Some(t))).collect();
    all.push(("words", None));
    all.sort_by(|a, b| a.0.cmp(b.0));
    for (name, t) in all {
        match t {
            Some((_, dtype, shape, data)) => r.add(name, *dtype, shape, data).unwrap(),
            None => r.add_strings(name, &[2, 2], &words).unwrap(),
        }
    }
    r.finish().unwrap();

    convert(&src, &npz, &ConvertOptions::default()).unwrap();
    let file = load_tensors(&npz).unwrap();
    assert_eq!(file.format(), Format::Npz);
    assert!(file.unsupported().is_empty());
    let w = file.get("words").unwrap();
    assert_eq!(w.shape(), [2, 2]);
    assert_eq!(w.strings().unwrap(), &words.map(Cow::Borrowed)[..]);
    for (name, dtype, shape, data) in &tensors {
        let view = file.get(name).unwrap();
        assert_eq!((view.dtype(), view.shape()), (*dtype, &shape[..]), "{name}");
        assert_eq!(view.bytes().unwrap(), &data[..], "{name}");
    }
    convert(&npz, &back, &ConvertOptions::default()).unwrap();
    assert_eq!(bundle_files(&back), bundle_files(&reference));
}

#[test]
fn unsupported_types_are_named_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let mut w = BundleWriter::create(&src).unwrap();
    w.add_typed("kernel", &[2], &[1.0f32, 2.0]).unwrap();
    w.add("bf", DType::BFloat16, &[1], &[0, 0x3f]).unwrap();
    w.add("q", DType::QInt8, &[1], &[3]).unwrap();
    w.add_strings("vocab", &[1], &["a"]).unwrap();
    w.finish().unwrap();
    let source = load_tensors(&src).unwrap();

    let npz = dir.path().join("m.npz");
    let plan = ConvertPlan::new(&source, Format::Npz, &ConvertOptions::default()).unwrap();
    let names: Vec<&str> = plan.unsupported().iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["bf", "q"]);
    let err = plan.write(&npz, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, Error::UnsupportedDType { ref tensor, .. } if tensor == "bf"));
    let message = err.to_string();
    assert!(
        message.contains("DT_BFLOAT16") && message.contains(".npz"),
        "{message}"
    );
    assert!(!npz.exists());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2, "no leftovers");

    let st = dir.path().join("m.safetensors");
    let plan = ConvertPlan::new(&source, Format::SafeTensors, &ConvertOptions::default()).unwrap();
    let names: Vec<&str> = plan.unsupported().iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["q", "vocab"]);

    let options = ConvertOptions {
        skip_unsupported: true,
        ..ConvertOptions::default()
    };
    let plan = ConvertPlan::new(&source, Format::SafeTensors, &options).unwrap();
    assert_eq!(plan.write(&st, &mut |_, _| {}).unwrap().tensors, 2);
    let names: Vec<String> = load_tensors(&st)
        .unwrap()
        .tensors()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(names, ["bf", "kernel"]);

    // Excluded tensors are not reported as unsupported.
    let options = ConvertOptions {
        exclude: regexes(&["^(q|vocab)$"]),
        ..ConvertOptions::default()
    };
    let plan = ConvertPlan::new(&source, Format::SafeTensors, &options).unwrap();
    assert!(plan.unsupported().is_empty());
    assert_eq!(plan.excluded(), 2);
}

#[test]
fn strings_ending_in_nul_cannot_go_to_npz() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let mut w = BundleWriter::create(&src).unwrap();
    w.add_strings("s", &[2], &[&b"ok"[..], b"bad\0"]).unwrap();
    w.finish().unwrap();
    let npz = dir.path().join("s.npz");
    let err = convert(&src, &npz, &ConvertOptions::default()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("tensor s") && message.contains("element 1"),
        "{message}"
    );
    assert!(!npz.exists());
}

#[test]
fn tensor_names_that_would_escape_an_unzip_directory_cannot_go_to_npz() {
    let dir = tempfile::tempdir().unwrap();
    for (name, why) in [
        ("../../evil", "`..` path component"),
        ("a/../b", "`..` path component"),
        ("/etc/x", "absolute path"),
        ("a\\b", "backslash"),
    ] {
        let src = dir.path().join("src");
        let mut w = BundleWriter::create(&src).unwrap();
        w.add_typed(name, &[1], &[1.0f32]).unwrap();
        w.finish().unwrap();
        let npz = dir.path().join("out.npz");
        let err = convert(&src, &npz, &ConvertOptions::default()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(name) && message.contains(why), "{message}");
        assert!(!npz.exists());
    }
    // Slashes alone are fine, as in NumPy's own savez.
    let src = dir.path().join("ok");
    let mut w = BundleWriter::create(&src).unwrap();
    w.add_typed("dense/kernel", &[1], &[1.0f32]).unwrap();
    w.finish().unwrap();
    convert(&src, &dir.path().join("ok.npz"), &ConvertOptions::default()).unwrap();
}

#[test]
fn include_exclude_and_rename() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let mut w = BundleWriter::create(&src).unwrap();
    for name in ["enc/a", "enc/b", "dec/a", "opt/enc/m"] {
        w.add_typed(name, &[1], &[1.0f32]).unwrap();
    }
    w.finish().unwrap();
    let source = load_tensors(&src).unwrap();
    let names = |options: &ConvertOptions| -> Vec<(String, String)> {
        ConvertPlan::new(&source, Format::SafeTensors, options)
            .unwrap()
            .tensors()
            .iter()
            .map(|t| (t.source_name.clone(), t.name.clone()))
            .collect()
    };
    let options = ConvertOptions {
        include: regexes(&["^enc/", "^dec/"]),
        exclude: regexes(&["/b$"]),
        renames: vec![
            Rename::parse("^(enc|dec)/=model/$1/").unwrap(),
            Rename::parse("/a$=/alpha").unwrap(),
        ],
        ..ConvertOptions::default()
    };
    assert_eq!(
        names(&options),
        [
            ("dec/a".to_owned(), "model/dec/alpha".to_owned()),
            ("enc/a".to_owned(), "model/enc/alpha".to_owned()),
        ]
    );

    let clash = ConvertOptions {
        renames: vec![Rename::parse("^(enc|dec)/=x/").unwrap()],
        ..ConvertOptions::default()
    };
    let err = ConvertPlan::new(&source, Format::SafeTensors, &clash).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("x/a") && message.contains("dec/a") && message.contains("enc/a"),
        "{message}"
    );

    let empty = ConvertOptions {
        renames: vec![Rename::parse(".*=").unwrap()],
        ..ConvertOptions::default()
    };
    assert!(ConvertPlan::new(&source, Format::SafeTensors, &empty).is_err());
    assert!(Rename::parse("no-equals").is_err());
    assert!(Rename::parse("(=x").is_err());
}

#[test]
fn partitioned_tensors_are_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let values: Vec<f32> = (0..15).map(|v| v as f32).collect();
    let mut w = BundleWriter::create(&src).unwrap();
    for (spec, rows) in [("0,3:-", 0..9), ("3,2:-", 9..15)] {
        let slice = TensorSlice::parse(spec).unwrap();
        w.add_slice(
            "part",
            &[5, 3],
            &slice,
            DType::Float,
            bytemuck::cast_slice(&values[rows]),
        )
        .unwrap();
    }
    w.finish().unwrap();
    let source = load_tensors(&src).unwrap();
    assert_eq!(source.tensors().len(), 1);
    assert_eq!(source.tensors()[0].shape, [5, 3]);
    let st = dir.path().join("p.safetensors");
    convert(&src, &st, &ConvertOptions::default()).unwrap();
    let file = load_tensors(&st).unwrap();
    assert_eq!(
        &file.get("part").unwrap().to_slice::<f32>().unwrap()[..],
        &values[..]
    );
}

/// A `.npz` as `np.savez_compressed` writes it (deflated members), with a
/// Fortran-order array, a big-endian one, a unicode one and an object
/// array.
fn handmade_npz(path: &Path, with_pickle: bool) {
    let file = fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let member = |zip: &mut zip::ZipWriter<fs::File>, name: &str, dict: &str, data: &[u8]| {
        zip.start_file(name, deflated).unwrap();
        let mut header = b"\x93NUMPY\x01\x00".to_vec();
        header.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        header.extend_from_slice(dict.as_bytes());
        zip.write_all(&header).unwrap();
        zip.write_all(data).unwrap();
    };
    member(
        &mut zip,
        "fortran.npy",
        "{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3), }\n",
        &[1, 0, 4, 0, 2, 0, 5, 0, 3, 0, 6, 0],
    );
    member(
        &mut zip,
        "big.npy",
        "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n",
        &1.5f32.to_be_bytes(),
    );
    let utf32: Vec<u8> = "hé\0x\0\0"
        .chars()
        .flat_map(|c| (c as u32).to_le_bytes())
        .collect();
    member(
        &mut zip,
        "text.npy",
        "{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }\n",
        &utf32,
    );
    if with_pickle {
        member(
            &mut zip,
            "pickled.npy",
            "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n",
            b"\x80\x04junk",
        );
    }
    zip.finish().unwrap();
}

#[test]
fn compressed_fortran_big_endian_and_unicode_npz_members_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("hand.npz");
    handmade_npz(&npz, true);
    let file = load_tensors(&npz).unwrap();
    let names: Vec<&str> = file.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["big", "fortran", "text"]);
    assert_eq!(file.unsupported().len(), 1);
    assert!(file.unsupported()[0].reason.contains("pickle"));
    assert_eq!(file.unsupported()[0].dtype, "|O");

    assert_eq!(
        &file.get("fortran").unwrap().to_slice::<i16>().unwrap()[..],
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(
        &file.get("big").unwrap().to_slice::<f32>().unwrap()[..],
        [1.5]
    );
    let text = file.get("text").unwrap();
    assert_eq!(text.strings().unwrap(), ["hé".as_bytes(), b"x"]);

    // The object array is named when converting, and skippable.
    let out = dir.path().join("out");
    let err = convert(&npz, &out, &ConvertOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("pickled") && err.to_string().contains("pickle"),
        "{err}"
    );
    let skip = ConvertOptions {
        skip_unsupported: true,
        ..ConvertOptions::default()
    };
    assert_eq!(convert(&npz, &out, &skip).unwrap().tensors, 3);
}

#[test]
fn formats_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("export");
    let prefix = model.join("variables").join("variables");
    let mut w = BundleWriter::create(&prefix).unwrap();
    w.add_typed("v", &[], &[1i64]).unwrap();
    w.finish().unwrap();
    for path in [prefix.clone(), index_file_name(&prefix), model.clone()] {
        let file = load_tensors(&path).unwrap();
        assert_eq!(file.format(), Format::TensorBundle, "{}", path.display());
        assert_eq!(file.path(), prefix);
        assert!(file.bundle_reader().is_some());
        assert_eq!(
            Format::detect(&path).unwrap(),
            (Format::TensorBundle, prefix.clone()),
            "{}",
            path.display()
        );
    }
    let missing = load_tensors(dir.path().join("nothing")).unwrap_err();
    assert!(missing.to_string().contains("nothing"), "{missing}");
    let missing = Format::detect(dir.path().join("nothing")).unwrap_err();
    assert!(
        matches!(&missing, Error::Io { path, .. } if path.ends_with("nothing")),
        "{missing}"
    );
    let npz = dir.path().join("w.bin");
    std::fs::write(&npz, b"PK\x03\x04").unwrap();
    assert_eq!(Format::detect(&npz).unwrap(), (Format::Npz, npz.clone()));
    let other = dir.path().join("w.npz");
    std::fs::write(&other, b"{}").unwrap();
    assert_eq!(
        Format::detect(&other).unwrap(),
        (Format::SafeTensors, other.clone())
    );
    assert_eq!(
        Format::for_output(Path::new("a/b.SafeTensors")),
        Format::SafeTensors
    );
    assert_eq!(Format::for_output(Path::new("b.npz")), Format::Npz);
    assert_eq!(
        Format::for_output(Path::new("model.ckpt-100")),
        Format::TensorBundle
    );
}

/// Every truncation and many byte flips of small `.safetensors` and `.npz`
/// files give errors (or, for flips in data, different values), never a
/// panic.
#[test]
fn hostile_inputs_give_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let mut w = BundleWriter::create(&src).unwrap();
    w.add_typed("a", &[3], &[1.0f32, 2.0, 3.0]).unwrap();
    w.add_strings("s", &[2], &["x", "yz"]).unwrap();
    w.finish().unwrap();
    let skip = ConvertOptions {
        skip_unsupported: true,
        ..ConvertOptions::default()
    };
    let st = dir.path().join("m.safetensors");
    let npz = dir.path().join("m.npz");
    let compressed = dir.path().join("c.npz");
    convert(&src, &st, &skip).unwrap();
    convert(&src, &npz, &skip).unwrap();
    handmade_npz(&compressed, false);

    let probe = dir.path().join("probe");
    let read_all = |path: &Path| -> Result<()> {
        let file = TensorFile::open_as(path, Format::for_output(path))?;
        for i in 0..file.tensors().len() {
            file.read(i)?;
        }
        match file.unsupported().first() {
            // A damaged type is as good as an error: the tensor is not read.
            Some(u) => Err(Error::InvalidArgument {
                tensor: u.name.clone(),
                what: u.reason.clone(),
            }),
            None => Ok(()),
        }
    };
    for original in [&st, &npz, &compressed] {
        let good = fs::read(original).unwrap();
        let ext = original.extension().unwrap().to_str().unwrap();
        let target = probe.with_extension(ext);
        for len in 0..good.len() {
            fs::write(&target, &good[..len]).unwrap();
            assert!(
                read_all(&target).is_err(),
                "{ext} truncated to {len} was accepted"
            );
        }
        // Flips in zip metadata (times, names) may go unnoticed, but must
        // not panic; a flip inside a stored member's .npy (header or data)
        // is caught by its CRC-32.
        let npy_starts: Vec<usize> = good
            .windows(6)
            .enumerate()
            .filter(|(_, w)| w == b"\x93NUMPY")
            .map(|(i, _)| i)
            .collect();
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            fs::write(&target, &bad).unwrap();
            let result = read_all(&target);
            let in_npy = npy_starts.iter().any(|&s| (s..s + 64 + 8).contains(&at));
            if original == &npz && in_npy {
                assert!(
                    result.is_err(),
                    "byte {at} of {} flipped was accepted",
                    original.display()
                );
            }
        }
    }
}

#[test]
fn many_small_tensors_convert_in_batches_to_the_same_bytes() {
    // 3,000 tensors of 4 KiB between a large one and a string tensor:
    // written as runs of `add_batch` (threaded: more than 8 MiB), around
    // the large tensor streamed and the strings added alone. The source is
    // sorted, so the conversion is its byte-for-byte copy.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let mut w = BundleWriter::create(&src).unwrap();
    for i in 0..3000u64 {
        let data = bytes(i, 4096);
        w.add(format!("a/{i:04}"), DType::Float, &[1024], &data)
            .unwrap();
    }
    w.add("b_large", DType::UInt8, &[9 << 20], &bytes(7, 9 << 20))
        .unwrap();
    w.add_strings("c_words", &[2], &[&b"x"[..], b""]).unwrap();
    w.add_typed("d_last", &[2], &[1.0f64, 2.0]).unwrap();
    w.finish().unwrap();

    let dst = dir.path().join("dst");
    let mut progress = Vec::new();
    let source = load_tensors(&src).unwrap();
    let plan = ConvertPlan::new(&source, Format::TensorBundle, &ConvertOptions::default()).unwrap();
    plan.write(&dst, &mut |done, total| progress.push((done, total)))
        .unwrap();
    assert!(
        bundle_files(&dst) == bundle_files(&src),
        "not a byte-for-byte copy"
    );
    // Progress is reported per run and per 8 MiB of the large tensor, up to
    // the total.
    let total = plan.total_bytes();
    assert!(progress.len() >= 3, "{progress:?}");
    assert!(progress.windows(2).all(|p| p[0].0 <= p[1].0));
    assert_eq!(progress.last().unwrap().0, total);

    // Into three data files: the same tensors, read back with every CRC.
    let options = ConvertOptions {
        data_files: 3,
        ..ConvertOptions::default()
    };
    let files = dir.path().join("files");
    convert(&src, &files, &options).unwrap();
    let (a, b) = (
        BundleReader::open(&src).unwrap(),
        BundleReader::open(&files).unwrap(),
    );
    assert_eq!(b.header().num_shards, 3);
    let mut shards = std::collections::BTreeSet::new();
    for item in a.entries() {
        let (key, _) = item.unwrap();
        let entry = b.entry(&key).unwrap();
        shards.insert(entry.shard_id);
        let (x, y) = (a.tensor(&key).unwrap(), b.tensor(&key).unwrap());
        assert_eq!(x.data(), y.data(), "{}", String::from_utf8_lossy(&key));
    }
    assert_eq!(shards.len(), 3);
}
