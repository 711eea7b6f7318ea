//! `savedmodel ckpt` (ls, cat, verify, convert) against TensorFlow 2.21,
//! NumPy and Python `safetensors`: the same lines as `inspect_checkpoint`,
//! the same bytes as `tf.train.load_checkpoint`, conversions that round trip
//! to files byte-identical to TensorFlow's own `SaveV2`.
//!
//! The tests run the real `savedmodel` binary. Cargo only hands integration
//! tests the binaries of their own package (`CARGO_BIN_EXE_*`), and the
//! binary lives in `savedmodel-cli`; so the first test to need it runs
//! `cargo build -p savedmodel-cli --bin savedmodel` (a no-op when it is up to
//! date; Cargo does not hold its build lock while tests run) and takes the
//! binary from the same target directory as this test executable
//! (`target/<profile>/deps/it-*` -> `target/<profile>/savedmodel`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use savedmodel_tests::paths::{savedmodel_bin, serving_fixtures};
use savedmodel_tests::tf::{self, Tensor, ok, oracle, request, tensors};
use serde_json::{Value, json};

/// Runs `savedmodel ARGS` and returns its output.
fn savedmodel(args: &[&str]) -> Output {
    Command::new(savedmodel_bin())
        .args(args)
        .output()
        .expect("running savedmodel")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `savedmodel ARGS`, asserts it succeeded, returns its stdout.
fn savedmodel_ok(args: &[&str]) -> String {
    let output = savedmodel(args);
    assert!(
        output.status.success(),
        "savedmodel {args:?} failed ({}):\n{}",
        output.status,
        stderr(&output)
    );
    stdout(&output)
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Deterministic pseudo-random bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
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

/// Bytes per element of a TensorFlow type as stored, and the part a byte
/// swap reverses (half of a complex number).
fn layout(dtype: &str) -> (usize, usize) {
    match dtype {
        "DT_DOUBLE" | "DT_INT64" | "DT_UINT64" => (8, 8),
        "DT_COMPLEX64" => (8, 4),
        "DT_COMPLEX128" => (16, 8),
        "DT_FLOAT" | "DT_INT32" | "DT_UINT32" | "DT_QINT32" => (4, 4),
        "DT_HALF" | "DT_BFLOAT16" | "DT_INT16" | "DT_UINT16" | "DT_QINT16" | "DT_QUINT16" => (2, 2),
        _ => (1, 1),
    }
}

/// A tensor whose bytes every judge keeps bit for bit: no NaN or infinity
/// patterns in float types, in-range values for bool and sub-byte types.
fn numeric(name: &str, dtype: &str, shape: &[i64], seed: u64) -> Tensor {
    let n = shape.iter().product::<i64>() as usize;
    let (size, unit) = layout(dtype);
    let mut data = noise(seed, n * size);
    for part in data.chunks_mut(unit) {
        let last = part.len() - 1;
        part[last] &= match dtype {
            "DT_BOOL" | "DT_INT2" | "DT_UINT2" => 0x01,
            "DT_INT4" | "DT_UINT4" | "DT_FLOAT4_E2M1FN" => 0x07,
            _ => 0x3f,
        };
    }
    Tensor::from_bytes(name, dtype, shape, data)
}

/// Types `.safetensors` holds (and NumPy too, for the first 13).
const SAFETENSORS_TYPES: [&str; 18] = [
    "DT_FLOAT",
    "DT_DOUBLE",
    "DT_HALF",
    "DT_INT8",
    "DT_INT16",
    "DT_INT32",
    "DT_INT64",
    "DT_UINT8",
    "DT_UINT16",
    "DT_UINT32",
    "DT_UINT64",
    "DT_BOOL",
    "DT_COMPLEX64",
    "DT_BFLOAT16",
    "DT_FLOAT8_E5M2",
    "DT_FLOAT8_E4M3FN",
    "DT_FLOAT8_E4M3FNUZ",
    "DT_FLOAT8_E5M2FNUZ",
];

/// Every type `SaveV2` takes.
const ALL_TYPES: [&str; 31] = [
    "DT_FLOAT",
    "DT_DOUBLE",
    "DT_HALF",
    "DT_BFLOAT16",
    "DT_INT8",
    "DT_INT16",
    "DT_INT32",
    "DT_INT64",
    "DT_UINT8",
    "DT_UINT16",
    "DT_UINT32",
    "DT_UINT64",
    "DT_BOOL",
    "DT_COMPLEX64",
    "DT_COMPLEX128",
    "DT_QINT8",
    "DT_QUINT8",
    "DT_QINT16",
    "DT_QUINT16",
    "DT_QINT32",
    "DT_FLOAT8_E5M2",
    "DT_FLOAT8_E4M3FN",
    "DT_FLOAT8_E4M3FNUZ",
    "DT_FLOAT8_E4M3B11FNUZ",
    "DT_FLOAT8_E5M2FNUZ",
    "DT_INT4",
    "DT_UINT4",
    "DT_INT2",
    "DT_UINT2",
    "DT_FLOAT4_E2M1FN",
    "DT_STRING",
];

/// A matrix, a scalar and an empty tensor of each of `dtypes`, in an order
/// that is not sorted (so that sorting is the converter's work).
fn tensors_of_types(dtypes: &[&str], seed: u64) -> Vec<Tensor> {
    let mut out = Vec::new();
    for (i, dtype) in dtypes.iter().enumerate() {
        let short = dtype.trim_start_matches("DT_").to_lowercase();
        let seed = seed + i as u64 * 10;
        if *dtype == "DT_STRING" {
            out.push(Tensor::from_strings(
                "z_string/matrix",
                &[2, 2],
                &[
                    &b""[..],
                    b"\xff\xfe not utf-8",
                    b"a\x00b",
                    &long_string(seed),
                ],
            ));
            out.push(Tensor::from_strings("a_string/scalar", &[], &[b"hello"]));
            out.push(Tensor::from_strings(
                "m_string/empty",
                &[0],
                &[] as &[&[u8]],
            ));
            continue;
        }
        out.push(numeric(&format!("z_{short}/matrix"), dtype, &[3, 5], seed));
        out.push(numeric(&format!("a_{short}/scalar"), dtype, &[], seed + 1));
        out.push(numeric(
            &format!("m_{short}/empty"),
            dtype,
            &[2, 0],
            seed + 2,
        ));
    }
    out
}

/// Over 64 KiB of any bytes, not ending in NUL (which NumPy's fixed-width
/// bytes arrays would drop).
fn long_string(seed: u64) -> Vec<u8> {
    let mut s = noise(seed, 70_000);
    s.push(b'.');
    s
}

fn sorted(mut list: Vec<Tensor>) -> Vec<Tensor> {
    list.sort_by(|a, b| a.name.cmp(&b.name));
    list
}

fn as_list(response: &Value) -> &[Value] {
    response
        .as_array()
        .unwrap_or_else(|| panic!("expected a list of responses: {response}"))
}

/// `.index` and data file of a one-shard bundle.
fn bundle_bytes(prefix: &Path) -> (Vec<u8>, Vec<u8>) {
    let index = fs::read(savedmodel_checkpoint::index_file_name(prefix)).unwrap();
    let data = fs::read(savedmodel_checkpoint::data_file_name(prefix, 0, 1)).unwrap();
    (index, data)
}

fn assert_same_bundle(ours: &Path, theirs: &Path) {
    let (a, b) = (bundle_bytes(ours), bundle_bytes(theirs));
    assert!(
        a.0 == b.0,
        "{}.index differs from TensorFlow's {}.index",
        ours.display(),
        theirs.display()
    );
    assert!(
        a.1 == b.1,
        "data file of {} differs from TensorFlow's {}",
        ours.display(),
        theirs.display()
    );
}

/// `ckpt cat --json` of every tensor of `prefix`, as judge tensors.
fn cat_all(prefix: &Path, names: &[&str]) -> Vec<Tensor> {
    names
        .iter()
        .map(|name| {
            let text = savedmodel_ok(&["ckpt", "cat", path_str(prefix), name, "--json"]);
            Tensor::from_json(&serde_json::from_str(&text).unwrap())
        })
        .collect()
}

#[test]
fn ls_cat_and_verify_agree_with_tensorflow() {
    let tmp = tempfile::tempdir().unwrap();
    let every = tmp.path().join("every/ckpt");
    let parted = tmp.path().join("parted/ckpt");
    let all = tensors_of_types(&ALL_TYPES, 1);
    let full: Vec<f32> = (0..15).map(|i| i as f32 * 0.25).collect();
    let parts = [
        Tensor::from_f32("part", &[3, 3], &full[..9]),
        Tensor::from_f32("part", &[2, 3], &full[9..]),
        Tensor::from_i64("step", &[], &[42]),
    ];
    let responses = oracle(&json!([
        request::save_v2(&every, &all),
        request::save_v2_slices(&parted, &parts, &["5 3 0,3:0,3", "5 3 3,2:0,3", ""]),
        request::inspect_checkpoint(&every, &[]),
        request::inspect_checkpoint(&parted, &[]),
        request::read_checkpoint(&every),
        request::read_checkpoint(&parted),
    ]));
    let [
        saved,
        saved_parted,
        inspect,
        inspect_parted,
        read,
        read_parted,
    ] = as_list(&responses)
    else {
        panic!("six responses expected: {responses}")
    };
    ok(saved);
    ok(saved_parted);

    // ls: inspect_checkpoint's lines, exactly (the partitioned bundle's
    // slice keys are binary: both drop the bytes that are not UTF-8).
    for (prefix, inspect) in [(&every, inspect), (&parted, inspect_parted)] {
        let theirs = ok(inspect)["stdout"].as_str().unwrap();
        let ours = savedmodel_ok(&["ckpt", "ls", path_str(prefix)]);
        assert_eq!(ours, theirs, "ckpt ls {} differs", prefix.display());
    }
    let theirs = ok(inspect_parted)["stdout"].as_str().unwrap();
    assert!(
        theirs.ends_with("\n\n# Total number of params: 16\n"),
        "{theirs}"
    );

    // cat --json: the bytes tf.train.load_checkpoint returns, every type;
    // the partitioned tensor whole.
    for (prefix, read) in [(&every, read), (&parted, read_parted)] {
        let expected = tensors(read);
        let names: Vec<&str> = expected.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(cat_all(prefix, &names), expected, "{}", prefix.display());
    }
    assert_eq!(
        cat_all(&parted, &["part"])[0].to_f32(),
        full,
        "partitioned tensor printed whole"
    );

    // ls --json: the entries, with the slices of the partitioned tensor.
    let listed: Value =
        serde_json::from_str(&savedmodel_ok(&["ckpt", "ls", path_str(&parted), "--json"])).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["name"], "part");
    assert_eq!(listed[0]["shape"], json!([5, 3]));
    assert_eq!(listed[0]["offset"], Value::Null);
    let slices = listed[0]["slices"].as_array().unwrap();
    assert_eq!(slices.len(), 2);
    assert_eq!(slices[0]["slice"], "0,3:0,3");
    assert_eq!(slices[0]["shape"], json!([3, 3]));
    assert_eq!(slices[0]["size"], 36);
    assert_eq!(listed[1]["name"], "step");
    assert_eq!(listed[1]["dtype"], "DT_INT64");
    assert_eq!(listed[1]["size"], 8);
    assert_eq!(listed[1]["slices"], json!([]));

    // verify: passes on TensorFlow's files ...
    for prefix in [&every, &parted] {
        let output = savedmodel(&["ckpt", "verify", path_str(prefix)]);
        assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
        assert!(stdout(&output).contains("all checks passed"));
    }
    // ... and fails, naming the tensor, on a flipped byte.
    let every_list: Value =
        serde_json::from_str(&savedmodel_ok(&["ckpt", "ls", path_str(&every), "--json"])).unwrap();
    let victim = every_list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "z_int32/matrix")
        .unwrap();
    let offset = victim["offset"].as_u64().unwrap() as usize + 7;
    let data_file = savedmodel_checkpoint::data_file_name(&every, 0, 1);
    let mut bytes = fs::read(&data_file).unwrap();
    bytes[offset] ^= 0x10;
    fs::write(&data_file, bytes).unwrap();
    let output = savedmodel(&["ckpt", "verify", path_str(&every)]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let report = stdout(&output);
    let faults: Vec<&str> = report.lines().filter(|l| l.starts_with("FAULT")).collect();
    assert_eq!(faults.len(), 1, "{report}");
    assert!(
        faults[0].contains("z_int32/matrix") && faults[0].contains("checksum"),
        "{report}"
    );
    assert!(report.contains("ok     z_float/matrix"), "{report}");

    // A missing checkpoint is an error (exit 2), not a fault.
    let output = savedmodel(&["ckpt", "verify", path_str(&tmp.path().join("nothing"))]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    // A corrupt index is a fault (exit 1).
    let index = savedmodel_checkpoint::index_file_name(&parted);
    let mut bytes = fs::read(&index).unwrap();
    bytes[3] ^= 0xff;
    fs::write(&index, bytes).unwrap();
    let output = savedmodel(&["ckpt", "verify", path_str(&parted)]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(stdout(&output).contains("FAULT"), "{}", stdout(&output));
}

#[test]
fn conversions_round_trip_to_tensorflows_own_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let st_tensors = tensors_of_types(&SAFETENSORS_TYPES, 100);
    let mut np_types = SAFETENSORS_TYPES[..13].to_vec();
    np_types.extend(["DT_COMPLEX128", "DT_STRING"]);
    let np_tensors = tensors_of_types(&np_types, 200);
    let dir = |name: &str| tmp.path().join(name).join("ckpt");
    let (st_source, st_reference, np_source, np_reference) = (
        dir("st_source"),
        dir("st_reference"),
        dir("np_source"),
        dir("np_reference"),
    );
    // TensorFlow writes each set twice: in our unsorted order (the source)
    // and sorted, as its Saver would (the reference).
    let responses = oracle(&json!([
        request::save_v2(&st_source, &st_tensors),
        request::save_v2(&st_reference, &sorted(st_tensors.clone())),
        request::save_v2(&np_source, &np_tensors),
        request::save_v2(&np_reference, &sorted(np_tensors.clone())),
    ]));
    as_list(&responses).iter().for_each(|r| {
        ok(r);
    });

    // TF -> .safetensors -> TF, and TF -> TF: TensorFlow's bytes.
    let st_file = tmp.path().join("weights.safetensors");
    let st_back = dir("st_back");
    let st_direct = dir("st_direct");
    savedmodel_ok(&["ckpt", "convert", path_str(&st_source), path_str(&st_file)]);
    savedmodel_ok(&["ckpt", "convert", path_str(&st_file), path_str(&st_back)]);
    savedmodel_ok(&[
        "ckpt",
        "convert",
        path_str(&st_source),
        path_str(&st_direct),
    ]);
    assert_same_bundle(&st_back, &st_reference);
    assert_same_bundle(&st_direct, &st_reference);

    // TF -> .npz -> TF.
    let np_file = tmp.path().join("weights.npz");
    let np_back = dir("np_back");
    savedmodel_ok(&["ckpt", "convert", path_str(&np_source), path_str(&np_file)]);
    savedmodel_ok(&["ckpt", "convert", path_str(&np_file), path_str(&np_back)]);
    assert_same_bundle(&np_back, &np_reference);

    // NumPy and Python safetensors read what we wrote: the same tensors.
    // (Python's save_file of the same arrays is the same file, byte for
    // byte.)
    let python_st = tmp.path().join("python.safetensors");
    let judged = tf::run_script(
        "convert_judge.py",
        &json!([
            {"cmd": "npz_read", "path": np_file},
            {"cmd": "safetensors_read", "path": st_file},
            {"cmd": "safetensors_write", "path": python_st, "tensors": st_tensors},
        ]),
    );
    let [npz_read, st_read, st_written] = as_list(&judged) else {
        panic!("three responses expected: {judged}")
    };
    ok(st_written);
    assert_eq!(tensors(npz_read), sorted(np_tensors));
    assert_eq!(tensors(st_read), sorted(st_tensors));
    assert!(
        fs::read(&python_st).unwrap() == fs::read(&st_file).unwrap(),
        "our .safetensors differs from safetensors.numpy.save_file's"
    );
}

#[test]
fn files_from_numpy_and_safetensors_become_checkpoints_tensorflow_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let st_tensors = tensors_of_types(&SAFETENSORS_TYPES, 300);
    let mut np_types = SAFETENSORS_TYPES[..13].to_vec();
    np_types.push("DT_COMPLEX128");
    let mut np_tensors = tensors_of_types(&np_types, 400);
    np_tensors.push(Tensor::from_strings(
        "words",
        &[3],
        &[&b"negative"[..], b"", b"\xe2\x82\xac"],
    ));
    let (st_file, npz_file, compressed_file) = (
        tmp.path().join("python.safetensors"),
        tmp.path().join("numpy.npz"),
        tmp.path().join("numpy_compressed_fortran.npz"),
    );
    let judged = tf::run_script(
        "convert_judge.py",
        &json!([
            {"cmd": "safetensors_write", "path": st_file, "tensors": st_tensors},
            {"cmd": "npz_write", "path": npz_file, "tensors": np_tensors},
            {"cmd": "npz_write", "path": compressed_file, "tensors": np_tensors,
             "compressed": true, "fortran": true},
        ]),
    );
    as_list(&judged).iter().for_each(|r| {
        ok(r);
    });

    let prefixes: Vec<PathBuf> = ["from_st", "from_npz", "from_compressed"]
        .iter()
        .map(|n| tmp.path().join(n).join("ckpt"))
        .collect();
    for (source, prefix) in [&st_file, &npz_file, &compressed_file]
        .iter()
        .zip(&prefixes)
    {
        savedmodel_ok(&["ckpt", "convert", path_str(source), path_str(prefix)]);
    }
    // And into three data files.
    let three_files = tmp.path().join("three_files").join("ckpt");
    savedmodel_ok(&[
        "ckpt",
        "convert",
        path_str(&st_file),
        path_str(&three_files),
        "--data-files",
        "3",
    ]);
    for i in 0..3 {
        assert!(savedmodel_checkpoint::data_file_name(&three_files, i, 3).exists());
    }
    let names: Vec<&str> = st_tensors.iter().map(|t| t.name.as_str()).collect();
    let dtypes: Vec<&str> = st_tensors.iter().map(|t| t.dtype.as_str()).collect();
    let responses = oracle(&json!([
        request::read_checkpoint(&prefixes[0]),
        request::read_checkpoint(&prefixes[1]),
        request::read_checkpoint(&prefixes[2]),
        request::restore_v2(&prefixes[0], &names, &dtypes),
        request::restore_v2(&three_files, &names, &dtypes),
    ]));
    let [st_read, npz_read, compressed_read, restored, restored_three] = as_list(&responses) else {
        panic!("five responses expected: {responses}")
    };
    assert_eq!(tensors(restored_three), st_tensors);
    assert_eq!(tensors(st_read), sorted(st_tensors.clone()));
    assert_eq!(tensors(npz_read), sorted(np_tensors.clone()));
    assert_eq!(tensors(compressed_read), sorted(np_tensors));
    assert_eq!(tensors(restored), st_tensors);
}

#[test]
fn convert_selects_renames_and_names_unsupported_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src/ckpt");
    let mut writer = savedmodel_checkpoint::BundleWriter::create(&source).unwrap();
    for name in ["enc/a", "enc/b", "dec/a", "opt/enc/m"] {
        writer.add_typed(name, &[2], &[1.0f32, 2.0]).unwrap();
    }
    writer
        .add(
            "bf",
            savedmodel_checkpoint::DType::BFloat16,
            &[1],
            &[0x80, 0x3f],
        )
        .unwrap();
    writer.add_strings("vocab", &[2], &["a", "b"]).unwrap();
    writer.finish().unwrap();
    let src = path_str(&source);

    let names_of = |path: &Path| -> Vec<String> {
        let listed: Value =
            serde_json::from_str(&savedmodel_ok(&["ckpt", "ls", path_str(path), "--json"]))
                .unwrap();
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };

    let selected = tmp.path().join("selected/ckpt");
    savedmodel_ok(&[
        "ckpt",
        "convert",
        src,
        path_str(&selected),
        "--include",
        "^enc/",
        "--include",
        "^dec/",
        "--exclude",
        "/b$",
        "--rename",
        "^(enc|dec)/=model/$1/",
        "--rename",
        "/a$=/alpha",
    ]);
    assert_eq!(names_of(&selected), ["model/dec/alpha", "model/enc/alpha"]);

    // .safetensors has no strings: an error naming the tensor; nothing
    // written.
    let st = tmp.path().join("out.safetensors");
    let output = savedmodel(&["ckpt", "convert", src, path_str(&st)]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("vocab (DT_STRING)") && message.contains("--skip-unsupported"),
        "{message}"
    );
    assert!(
        !message.contains("bf ("),
        "bfloat16 fits .safetensors: {message}"
    );
    assert!(!st.exists());

    // .npz has neither bfloat16 nor ... all of them named at once.
    let npz = tmp.path().join("out.npz");
    let output = savedmodel(&["ckpt", "convert", src, path_str(&npz)]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("bf (DT_BFLOAT16)"), "{message}");
    assert!(!npz.exists());

    // --skip-unsupported leaves them out and says so.
    let output = savedmodel(&["ckpt", "convert", src, path_str(&st), "--skip-unsupported"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("skipped 1 unsupported tensor(s): vocab"));
    let output = savedmodel(&["ckpt", "cat", path_str(&st), "bf", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&output)).unwrap(),
        json!({"name": "bf", "dtype": "DT_BFLOAT16", "shape": [1], "data": "gD8="})
    );

    // Two tensors renamed to one name, a bad pattern: errors.
    let clash = tmp.path().join("clash/ckpt");
    let output = savedmodel(&[
        "ckpt",
        "convert",
        src,
        path_str(&clash),
        "--rename",
        "^(enc|dec)/=",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("dec/a"), "{}", stderr(&output));
    let output = savedmodel(&["ckpt", "convert", src, path_str(&clash), "--include", "("]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!clash.parent().unwrap().exists());

    // --data-files is for checkpoints, and between 1 and 256.
    let output = savedmodel(&["ckpt", "convert", src, path_str(&npz), "--data-files", "2"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--data-files is for a TensorFlow checkpoint"),
        "{}",
        stderr(&output)
    );
    assert!(!npz.exists());
    for bad in ["0", "257", "two"] {
        let output = savedmodel(&[
            "ckpt",
            "convert",
            src,
            path_str(&clash),
            "--data-files",
            bad,
        ]);
        assert_eq!(output.status.code(), Some(2), "--data-files {bad}");
        assert!(
            stderr(&output).contains("--data-files"),
            "{}",
            stderr(&output)
        );
    }
    assert!(!clash.parent().unwrap().exists());
}

/// The serving fixtures (snappy-compressed index blocks, a TensorFlow 2
/// object checkpoint): `ckpt ls` prints inspect_checkpoint's lines, `ckpt
/// cat` the bytes `tf.train.load_checkpoint` reads, `ckpt verify` passes.
#[test]
fn serving_fixtures_read_as_tensorflow_reads_them() {
    let prefixes: Vec<PathBuf> = savedmodel_tests::paths::files_under(&serving_fixtures())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "index"))
        .map(|p| p.with_extension(""))
        .collect();
    assert!(prefixes.len() >= 10, "fixtures missing: {prefixes:?}");
    // inspect_checkpoint takes a TensorFlow import per call: two fixtures,
    // one TF1 and one TF2 object checkpoint.
    let inspected: Vec<&PathBuf> = prefixes
        .iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            s.contains("/saved_model_half_plus_two_cpu/") || s.contains("_tf2_cpu/")
        })
        .collect();
    assert_eq!(inspected.len(), 2);
    let mut requests: Vec<Value> = inspected
        .iter()
        .map(|p| request::inspect_checkpoint(p, &[]))
        .collect();
    requests.extend(prefixes.iter().map(|p| request::read_checkpoint(p)));
    let responses = oracle(&Value::Array(requests));
    let responses = as_list(&responses);
    for (prefix, inspect) in inspected.iter().zip(responses) {
        let theirs = ok(inspect)["stdout"].as_str().unwrap();
        let ours = savedmodel_ok(&["ckpt", "ls", path_str(prefix)]);
        assert_eq!(ours, theirs, "ckpt ls {}", prefix.display());
    }
    for (prefix, read) in prefixes.iter().zip(&responses[inspected.len()..]) {
        let expected = tensors(read);
        let names: Vec<&str> = expected.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(cat_all(prefix, &names), expected, "{}", prefix.display());
        let output = savedmodel(&["ckpt", "verify", path_str(prefix)]);
        assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    }
    let tf2 = inspected
        .iter()
        .find(|p| p.to_string_lossy().contains("tf2"))
        .unwrap();
    let listed = savedmodel_ok(&["ckpt", "ls", path_str(tf2)]);
    assert!(
        listed.contains("_CHECKPOINTABLE_OBJECT_GRAPH (DT_STRING) []"),
        "{listed}"
    );
}
