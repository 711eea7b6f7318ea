//! Unit tests: models built with prost, encoded, read back; hostile ones too.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use prost::Message;
use savedmodel_checkpoint::DType;

use crate::proto::attribute_proto::AttributeType;
use crate::proto::tensor_proto::{DataLocation, DataType};
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TypeProto, ValueInfoProto, type_proto,
};
use crate::{Error, Limits, OnnxModel, TensorData};

fn opset(domain: &str, version: i64) -> OperatorSetIdProto {
    OperatorSetIdProto {
        domain: Some(domain.into()),
        version: Some(version),
    }
}

fn value(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        name: Some(name.into()),
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn attr(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn raw_tensor(name: &str, data_type: DataType, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(data_type as i32),
        dims: dims.to_vec(),
        raw_data: Some(raw.into()),
        ..Default::default()
    }
}

fn model_with(graph: GraphProto) -> ModelProto {
    ModelProto {
        ir_version: Some(10),
        opset_import: vec![opset("", 21)],
        graph: Some(graph),
        ..Default::default()
    }
}

/// x -> Relu -> y, with initializers.
fn relu_model(initializer: Vec<TensorProto>) -> ModelProto {
    model_with(GraphProto {
        name: Some("main".into()),
        node: vec![node("relu", "Relu", &["x"], &["y"])],
        initializer,
        input: vec![value("x")],
        output: vec![value("y")],
        ..Default::default()
    })
}

fn read(model: &ModelProto) -> Result<OnnxModel, Error> {
    OnnxModel::from_bytes(&model.encode_to_vec())
}

fn err_text(result: Result<OnnxModel, Error>) -> String {
    result.unwrap_err().to_string()
}

// ---- Opening, versions, limits ----

#[test]
fn raw_data_of_an_opened_file_is_a_slice_of_the_map_not_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let weights: Vec<u8> = (0..4096u32)
        .flat_map(|i| (i as f32).to_le_bytes())
        .collect();
    let model = relu_model(vec![raw_tensor(
        "w",
        DataType::Float,
        &[64, 64],
        weights.clone(),
    )]);
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, model.encode_to_vec()).unwrap();

    let opened = OnnxModel::open(&path).unwrap();
    assert_eq!(opened.name(), path.display().to_string());
    let tensor = opened.graph().initializer("w").unwrap();
    let view = opened.tensor(tensor).unwrap();
    assert_eq!(view.dtype, DType::Float);
    assert_eq!(view.shape, vec![64, 64]);
    assert_eq!(view.num_elements(), 4096);
    assert!(view.is_borrowed());
    let bytes = view.bytes().unwrap();
    assert_eq!(bytes, weights.as_slice());
    // The bytes lie inside the mapped file's buffer: prost's decode of a
    // `Bytes` field from a `Bytes` buffer slices it.
    let buffer = opened.buffer().as_ptr_range();
    let data = bytes.as_ptr_range();
    assert!(buffer.start <= data.start && data.end <= buffer.end);
}

#[test]
fn ir_versions_outside_3_to_14_are_errors_naming_the_file() {
    for version in [2, 15, 0, -1] {
        let mut model = relu_model(vec![]);
        model.ir_version = Some(version);
        let err = err_text(read(&model));
        assert!(
            err.contains("<bytes>") && err.contains(&format!("IR version {version} ")),
            "{err}"
        );
        assert!(err.contains("3 to 14"), "{err}");
    }
    for version in [3, 14] {
        let mut model = relu_model(vec![]);
        model.ir_version = Some(version);
        read(&model).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.onnx");
    let mut model = relu_model(vec![]);
    model.ir_version = Some(1);
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    let err = OnnxModel::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("old.onnx") && err.contains("IR version 1"),
        "{err}"
    );
}

#[test]
fn default_domain_opsets_outside_1_to_28_are_errors() {
    for (domain, version) in [("ai.onnx", 29), ("", 0), ("", -1)] {
        let mut model = relu_model(vec![]);
        model.opset_import = vec![opset(domain, version)];
        let err = err_text(read(&model));
        assert!(
            err.contains(&format!("opset {version} of the default domain"))
                && err.contains("1 to 28"),
            "{err}"
        );
    }
    for version in [1, 6, 7, 28] {
        let mut model = relu_model(vec![]);
        model.opset_import = vec![opset("ai.onnx", version), opset("ai.onnx.ml", 5)];
        let read = read(&model).unwrap();
        assert_eq!(read.opset_version(""), Some(version));
        assert_eq!(read.opset_version("ai.onnx"), Some(version));
        assert_eq!(read.opset_version("ai.onnx.ml"), Some(5));
        assert_eq!(read.opset_version("com.example"), None);
    }
}

#[test]
fn missing_conflicting_or_zero_opset_imports_are_errors() {
    let mut model = relu_model(vec![]);
    model.opset_import.clear();
    assert!(err_text(read(&model)).contains("imports no operator set"));

    model.opset_import = vec![opset("", 13), opset("ai.onnx", 14)];
    let err = err_text(read(&model));
    assert!(
        err.contains("imported twice, at versions 13 and 14"),
        "{err}"
    );
    // The same import twice (as skl2onnx writes it) is no ambiguity.
    model.opset_import = vec![opset("", 13), opset("ai.onnx", 13)];
    assert_eq!(read(&model).unwrap().opset_version(""), Some(13));

    model.opset_import = vec![opset("", 13), opset("com.example", 0)];
    let err = err_text(read(&model));
    assert!(err.contains("\"com.example\" has version 0"), "{err}");
}

#[test]
fn a_model_without_a_graph_is_an_error() {
    let mut model = relu_model(vec![]);
    model.graph = None;
    assert!(err_text(read(&model)).contains("has no graph"));
}

#[test]
fn garbage_and_truncated_bytes_are_malformed_errors() {
    let bytes =
        relu_model(vec![raw_tensor("w", DataType::Float, &[2], vec![0; 8])]).encode_to_vec();
    for cut in [1, bytes.len() / 2, bytes.len() - 1] {
        let err = OnnxModel::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, Error::Malformed { .. }),
            "cut at {cut}: {err}"
        );
    }
    let err = OnnxModel::from_bytes(&[0xff; 16]).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    // A group (wire type 3), which ONNX never writes.
    let err = OnnxModel::from_bytes(&[0x0b]).unwrap_err().to_string();
    assert!(
        err.contains("wire type 3") && err.contains("byte 0"),
        "{err}"
    );
}

#[test]
fn file_size_limit_is_checked_before_reading() {
    let bytes = relu_model(vec![]).encode_to_vec();
    let limits = Limits {
        max_file_size: bytes.len() as u64 - 1,
        ..Limits::default()
    };
    let err = OnnxModel::from_bytes_with(&bytes, &limits).unwrap_err();
    assert!(matches!(err, Error::FileTooLarge { .. }), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.onnx");
    std::fs::write(&path, &bytes).unwrap();
    let err = OnnxModel::open_with(&path, &limits)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("big.onnx") && err.contains("over the limit"),
        "{err}"
    );
}

#[test]
fn counts_over_their_limits_stop_the_read_before_decoding() {
    // 100 empty nodes: 2 bytes each on the wire.
    let graph = GraphProto {
        node: vec![NodeProto::default(); 100],
        ..Default::default()
    };
    let bytes = model_with(graph).encode_to_vec();
    let at = |limits: Limits| OnnxModel::from_bytes_with(&bytes, &limits).map(|_| ());
    at(Limits {
        max_nodes: 100,
        ..Limits::default()
    })
    .unwrap();
    let err = at(Limits {
        max_nodes: 99,
        ..Limits::default()
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("100 nodes or more") && err.contains("limit of 99"),
        "{err}"
    );
    let err = at(Limits {
        max_messages: 50,
        ..Limits::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("messages"), "{err}");

    let mut tensor = raw_tensor("w", DataType::Float, &[1, 1, 1, 1], vec![0; 4]);
    tensor.raw_data = None;
    tensor.float_data = vec![0.0];
    let mut a = attr("ints", AttributeType::Ints);
    a.ints = vec![1; 10];
    let mut n = node("n", "Relu", &["x"], &["y"]);
    n.attribute = vec![a.clone(), a];
    let mut model = relu_model(vec![tensor]);
    model.graph.as_mut().unwrap().node = vec![n];
    let bytes = model.encode_to_vec();
    for (limits, item) in [
        (
            Limits {
                max_dims: 3,
                ..Limits::default()
            },
            "4 dims",
        ),
        (
            Limits {
                max_attributes: 1,
                ..Limits::default()
            },
            "2 attributes",
        ),
        (
            Limits {
                max_integers: 19,
                ..Limits::default()
            },
            "20 packed integers",
        ),
        (
            Limits {
                max_tensors: 0,
                ..Limits::default()
            },
            "1 tensors",
        ),
    ] {
        let err = OnnxModel::from_bytes_with(&bytes, &limits)
            .unwrap_err()
            .to_string();
        assert!(err.contains(item), "{item}: {err}");
    }
    let read = OnnxModel::from_bytes(&bytes).unwrap();
    assert_eq!(
        crate::scan::scan(&bytes, &Limits::default(), "m")
            .unwrap()
            .nodes(),
        1
    );
    assert_eq!(read.graph().nodes().count(), 1);
}

/// A value type nested `levels` sequences deep.
fn nested_type(levels: usize) -> TypeProto {
    let mut t = TypeProto::default();
    for _ in 0..levels {
        t = TypeProto {
            value: Some(type_proto::Value::SequenceType(Box::new(
                type_proto::Sequence {
                    elem_type: Some(Box::new(t)),
                },
            ))),
            ..Default::default()
        };
    }
    t
}

#[test]
fn nesting_deeper_than_the_limit_is_an_error_before_prost_sees_it() {
    let model_at = |levels: usize| {
        let mut model = relu_model(vec![]);
        model.graph.as_mut().unwrap().input[0].r#type = Some(nested_type(levels));
        model.encode_to_vec()
    };
    // Model (0) > graph (1) > value info (2) > type (3) > sequence (4) > type
    // (5) ...: the innermost type of `levels` sequences is at 3 + 2 * levels.
    let limits = Limits {
        max_depth: 19,
        ..Limits::default()
    };
    OnnxModel::from_bytes_with(&model_at(8), &limits).unwrap();
    let err = OnnxModel::from_bytes_with(&model_at(9), &limits)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("20 nesting levels") && err.contains("limit of 19"),
        "{err}"
    );
    // The deepest model the default limit allows decodes on a test thread's
    // default 2 MiB stack, in a debug build.
    OnnxModel::from_bytes(&model_at(30)).unwrap();
    let err = OnnxModel::from_bytes(&model_at(31))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nesting levels") && err.contains("limit of 64"),
        "{err}"
    );
    // With our limit raised past prost's, prost's recursion limit (100)
    // stops it. Encoding and decoding 100 levels in a debug build needs more
    // than the default stack.
    let prost_stops_it = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let limits = Limits {
                max_depth: 1000,
                ..Limits::default()
            };
            let err = OnnxModel::from_bytes_with(&model_at(60), &limits).unwrap_err();
            assert!(
                matches!(&err, Error::Malformed { detail, .. } if detail.contains("recursion limit")),
                "{err}"
            );
        })
        .unwrap();
    prost_stops_it.join().unwrap();
}

// ---- Tensors ----

#[test]
fn typed_fields_become_little_endian_bytes() {
    let typed = |data_type: DataType, dims: &[i64], fill: &dyn Fn(&mut TensorProto)| {
        let mut t = TensorProto {
            name: Some("t".into()),
            data_type: Some(data_type as i32),
            dims: dims.to_vec(),
            ..Default::default()
        };
        fill(&mut t);
        t
    };
    let cases: Vec<(TensorProto, DType, Vec<u8>)> = vec![
        (
            typed(DataType::Float, &[2], &|t| t.float_data = vec![1.5, -2.0]),
            DType::Float,
            [1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat(),
        ),
        (
            typed(DataType::Complex64, &[1], &|t| {
                t.float_data = vec![1.0, 2.0]
            }),
            DType::Complex64,
            [1.0f32.to_le_bytes(), 2.0f32.to_le_bytes()].concat(),
        ),
        (
            typed(DataType::Int64, &[2], &|t| t.int64_data = vec![-1, 1 << 40]),
            DType::Int64,
            [(-1i64).to_le_bytes(), (1i64 << 40).to_le_bytes()].concat(),
        ),
        (
            typed(DataType::Int8, &[3], &|t| t.int32_data = vec![-128, 0, 127]),
            DType::Int8,
            vec![0x80, 0, 0x7f],
        ),
        (
            typed(DataType::Bool, &[2], &|t| t.int32_data = vec![1, 0]),
            DType::Bool,
            vec![1, 0],
        ),
        (
            typed(DataType::Float16, &[1], &|t| t.int32_data = vec![0x3c00]),
            DType::Half,
            vec![0x00, 0x3c],
        ),
        (
            typed(DataType::Uint16, &[1], &|t| t.int32_data = vec![65535]),
            DType::UInt16,
            vec![0xff, 0xff],
        ),
        (
            typed(DataType::Int32, &[1], &|t| t.int32_data = vec![-2]),
            DType::Int32,
            (-2i32).to_le_bytes().to_vec(),
        ),
        (
            typed(DataType::Uint32, &[1], &|t| {
                t.uint64_data = vec![u64::from(u32::MAX)]
            }),
            DType::UInt32,
            u32::MAX.to_le_bytes().to_vec(),
        ),
        (
            typed(DataType::Uint64, &[1], &|t| t.uint64_data = vec![u64::MAX]),
            DType::UInt64,
            u64::MAX.to_le_bytes().to_vec(),
        ),
        (
            typed(DataType::Double, &[], &|t| t.double_data = vec![0.25]),
            DType::Double,
            0.25f64.to_le_bytes().to_vec(),
        ),
        (
            typed(DataType::Float8e4m3fn, &[1], &|t| t.int32_data = vec![0x38]),
            DType::Float8E4M3FN,
            vec![0x38],
        ),
        (
            typed(DataType::Float, &[0, 3], &|_| {}),
            DType::Float,
            vec![],
        ),
    ];
    let model = relu_model(cases.iter().map(|c| c.0.clone()).collect());
    let read = read(&model).unwrap();
    for (i, (tensor, dtype, bytes)) in cases.iter().enumerate() {
        let view = read.tensor(&read.graph().proto().initializer[i]).unwrap();
        assert_eq!(view.dtype, *dtype, "{tensor:?}");
        assert_eq!(view.bytes().unwrap(), bytes.as_slice(), "{tensor:?}");
        assert_eq!(
            view.shape,
            tensor.dims.iter().map(|&d| d as u64).collect::<Vec<_>>()
        );
        assert!(!view.is_borrowed() || bytes.is_empty());
    }
}

#[test]
fn string_tensors_give_their_strings() {
    let t = TensorProto {
        name: Some("s".into()),
        data_type: Some(DataType::String as i32),
        dims: vec![2],
        string_data: vec![b"ab".to_vec(), b"".to_vec()],
        ..Default::default()
    };
    let read = read(&relu_model(vec![t])).unwrap();
    let view = read.tensor(read.graph().initializer("s").unwrap()).unwrap();
    assert_eq!(view.dtype, DType::String);
    assert_eq!(
        view.data,
        TensorData::Strings(&[b"ab".to_vec(), Vec::new()])
    );
    assert_eq!(view.bytes(), None);
}

#[test]
fn inconsistent_tensors_are_errors_naming_the_tensor() {
    let mut bad_int8 = raw_tensor("i8", DataType::Int8, &[1], vec![]);
    bad_int8.raw_data = None;
    bad_int8.int32_data = vec![128];
    let mut bad_bool = bad_int8.clone();
    bad_bool.name = Some("b".into());
    bad_bool.data_type = Some(DataType::Bool as i32);
    bad_bool.int32_data = vec![2];
    let mut segment = raw_tensor("seg", DataType::Float, &[1], vec![0; 4]);
    segment.segment = Some(Default::default());
    let mut string_raw = raw_tensor("sr", DataType::String, &[1], vec![1]);
    string_raw.string_data = vec![vec![1]];
    let mut too_few = raw_tensor("few", DataType::Int64, &[3], vec![]);
    too_few.raw_data = None;
    too_few.int64_data = vec![1, 2];
    let mut uint32 = raw_tensor("u32", DataType::Uint32, &[1], vec![]);
    uint32.raw_data = None;
    uint32.uint64_data = vec![1 << 32];
    let cases = [
        (
            raw_tensor("short", DataType::Float, &[2, 2], vec![0; 15]),
            "raw_data has 15 bytes; 4 FLOAT elements need 16",
        ),
        (
            raw_tensor("neg", DataType::Float, &[-1], vec![]),
            "negative dimension -1",
        ),
        (
            raw_tensor("huge", DataType::Float, &[1 << 40, 1 << 40], vec![]),
            "overflows",
        ),
        (
            raw_tensor("int4", DataType::Int4, &[2], vec![0]),
            "INT4 packs several",
        ),
        (
            raw_tensor("undef", DataType::Undefined, &[1], vec![0]),
            "UNDEFINED",
        ),
        (bad_int8, "int32_data value 128 is out of range for INT8"),
        (bad_bool, "int32_data value 2 is out of range for BOOL"),
        (segment, "segmented"),
        (
            string_raw,
            "STRING tensors keep their values in string_data only",
        ),
        (
            too_few,
            "int64_data has 2 entries; the shape has 3 elements",
        ),
        (uint32, "out of range for UINT32"),
    ];
    let model = relu_model(cases.iter().map(|c| c.0.clone()).collect());
    let read = read(&model).unwrap();
    for (tensor, expected) in &cases {
        let err = read.tensor(tensor).unwrap_err().to_string();
        assert!(
            err.contains(expected) && err.contains(&format!("tensor {:?}", tensor.name())),
            "{err}"
        );
    }
}

// ---- External data ----

fn external_tensor(name: &str, dims: &[i64], entries: &[(&str, &str)]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(DataType::Float as i32),
        dims: dims.to_vec(),
        data_location: Some(DataLocation::External as i32),
        external_data: entries
            .iter()
            .map(|(k, v)| StringStringEntryProto {
                key: Some(k.to_string()),
                value: Some(v.to_string()),
            })
            .collect(),
        ..Default::default()
    }
}

fn write_model(dir: &Path, model: &ModelProto) -> std::path::PathBuf {
    let path = dir.join("model.onnx");
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}

#[test]
fn external_data_is_read_from_one_map_per_file_without_copies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("weights")).unwrap();
    let floats: Vec<u8> = (0..32u32).flat_map(|i| (i as f32).to_le_bytes()).collect();
    std::fs::write(dir.path().join("weights/w.bin"), &floats).unwrap();
    let model = relu_model(vec![
        external_tensor(
            "a",
            &[4],
            &[("location", "weights/w.bin"), ("length", "16")],
        ),
        external_tensor(
            "b",
            &[2, 2],
            &[
                ("location", "./weights/w.bin"),
                ("offset", "64"),
                ("length", "16"),
                ("checksum", "ignored"),
            ],
        ),
        // No length: the rest of the file.
        external_tensor(
            "c",
            &[16],
            &[("location", "weights/w.bin"), ("offset", "64")],
        ),
    ]);
    let opened = OnnxModel::open(write_model(dir.path(), &model)).unwrap();
    assert_eq!(opened.external_files(), 1);
    let graph = opened.graph();
    let a = opened.tensor(graph.initializer("a").unwrap()).unwrap();
    let b = opened.tensor(graph.initializer("b").unwrap()).unwrap();
    let c = opened.tensor(graph.initializer("c").unwrap()).unwrap();
    assert_eq!(a.bytes().unwrap(), &floats[..16]);
    assert_eq!(b.bytes().unwrap(), &floats[64..80]);
    assert_eq!(c.bytes().unwrap(), &floats[64..]);
    assert!(a.is_borrowed() && b.is_borrowed() && c.is_borrowed());
    // All three are slices of one mapping: b starts 64 bytes after a.
    let (a, b) = (a.bytes().unwrap().as_ptr(), b.bytes().unwrap().as_ptr());
    assert_eq!(b as usize - a as usize, 64);
}

#[test]
fn hostile_external_data_entries_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(outer.path().join("secret.bin"), [0u8; 16]).unwrap();
    std::fs::write(dir.join("w.bin"), [0u8; 16]).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink(outer.path().join("secret.bin"), dir.join("link.bin")).unwrap();
    std::os::unix::fs::symlink(outer.path(), dir.join("up")).unwrap();
    // A symlink that stays inside is fine.
    std::os::unix::fs::symlink(dir.join("w.bin"), dir.join("inside.bin")).unwrap();
    let secret = outer.path().join("secret.bin").display().to_string();

    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("location", "../secret.bin")],
            "has a \"..\" component",
        ),
        (
            vec![("location", "sub/../../secret.bin")],
            "has a \"..\" component",
        ),
        (vec![("location", &secret)], "absolute path"),
        (
            vec![("location", "link.bin")],
            "outside the model's directory",
        ),
        (
            vec![("location", "up/secret.bin")],
            "outside the model's directory",
        ),
        (vec![("location", "missing.bin")], "cannot resolve"),
        (vec![("location", "sub")], "not a regular file"),
        (vec![("location", "")], "the location is empty"),
        (vec![("offset", "0")], "no \"location\" entry"),
        (
            vec![("location", "w.bin"), ("location", "w.bin")],
            "given twice",
        ),
        (
            vec![("location", "w.bin"), ("offset", "-4")],
            "not a non-negative decimal",
        ),
        (
            vec![("location", "w.bin"), ("offset", "+4")],
            "not a non-negative decimal",
        ),
        (
            vec![("location", "w.bin"), ("length", "99999999999999999999")],
            "too large",
        ),
        (
            vec![("location", "w.bin"), ("offset", "17")],
            "past the end of the 16-byte file",
        ),
        (
            vec![("location", "w.bin"), ("offset", "8"), ("length", "12")],
            "offset 8 + length 12 is past the end",
        ),
        (
            vec![
                ("location", "w.bin"),
                ("offset", "1"),
                ("length", "18446744073709551615"),
            ],
            "past the end",
        ),
    ];
    for (entries, expected) in &cases {
        let model = relu_model(vec![external_tensor("w", &[4], entries)]);
        let err = OnnxModel::open(write_model(&dir, &model)).unwrap_err();
        assert!(
            matches!(err, Error::ExternalData { .. }),
            "{entries:?}: {err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(expected) && text.contains("tensor \"w\""),
            "{entries:?}: {text}"
        );
    }

    // Inside symlink: accepted; a length that does not match the shape is
    // an error when the tensor is read.
    let model = relu_model(vec![
        external_tensor("ok", &[4], &[("location", "inside.bin")]),
        external_tensor("short", &[4], &[("location", "w.bin"), ("length", "8")]),
    ]);
    let opened = OnnxModel::open(write_model(&dir, &model)).unwrap();
    assert_eq!(opened.external_files(), 1);
    let ok = opened.graph().initializer("ok").unwrap();
    assert_eq!(opened.tensor(ok).unwrap().bytes().unwrap(), &[0u8; 16]);
    let short = opened.graph().initializer("short").unwrap();
    let err = opened.tensor(short).unwrap_err().to_string();
    assert!(err.contains("the external data has 8 bytes"), "{err}");

    // From bytes there is no directory.
    let model = relu_model(vec![external_tensor("w", &[4], &[("location", "w.bin")])]);
    let err = err_text(read(&model));
    assert!(err.contains("read from bytes"), "{err}");
}

#[test]
fn external_data_in_attributes_and_subgraphs_is_checked_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut constant = node("const", "Constant", &[], &["c"]);
    let mut value = attr("value", AttributeType::Tensor);
    value.t = Some(external_tensor("cv", &[1], &[("location", "../x.bin")]));
    constant.attribute = vec![value];
    let mut if_node = node("if", "If", &["x"], &["y"]);
    let mut branch = attr("then_branch", AttributeType::Graph);
    branch.g = Some(GraphProto {
        node: vec![constant],
        ..Default::default()
    });
    if_node.attribute = vec![branch];
    let model = model_with(GraphProto {
        node: vec![if_node],
        input: vec![self::value("x")],
        ..Default::default()
    });
    let err = OnnxModel::open(write_model(dir.path(), &model))
        .unwrap_err()
        .to_string();
    assert!(err.contains("tensor \"cv\"") && err.contains(".."), "{err}");
}

// ---- Graphs and attributes ----

#[test]
fn out_of_order_and_undefined_inputs_name_the_node() {
    let mut model = relu_model(vec![]);
    let graph = model.graph.as_mut().unwrap();
    graph.node = vec![
        node("second", "Relu", &["h"], &["y"]),
        node("first", "Relu", &["x"], &["h"]),
    ];
    let read = read(&model).unwrap();
    let err = read
        .graph()
        .check_topological_order()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("graph \"main\"")
            && err.contains("\"second\" (Relu)")
            && err.contains("input \"h\""),
        "{err}"
    );

    let mut model = relu_model(vec![]);
    let graph = model.graph.as_mut().unwrap();
    graph.node = vec![
        node("", "Relu", &["x"], &["h"]),
        node("", "Relu", &["x"], &["h"]),
    ];
    let read = self::read(&model).unwrap();
    let err = read
        .graph()
        .check_topological_order()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("#1 (Relu)") && err.contains("\"h\" is already defined"),
        "{err}"
    );

    // Initializers, inputs and omitted optional inputs ("") are defined.
    let mut model = relu_model(vec![raw_tensor("w", DataType::Float, &[1], vec![0; 4])]);
    model.graph.as_mut().unwrap().node = vec![node("clip", "Clip", &["x", "", "w"], &["y"])];
    self::read(&model)
        .unwrap()
        .graph()
        .check_topological_order()
        .unwrap();
}

#[test]
fn subgraphs_see_outer_values_defined_before_their_node() {
    let body = |input: &str| GraphProto {
        name: Some("body".into()),
        node: vec![node("inner", "Identity", &[input], &["out"])],
        ..Default::default()
    };
    let model_using = |input: &str| {
        let mut if_node = node("if", "If", &["cond"], &["y"]);
        let mut branch = attr("then_branch", AttributeType::Graph);
        branch.g = Some(body(input));
        if_node.attribute = vec![branch];
        model_with(GraphProto {
            name: Some("main".into()),
            node: vec![
                node("h", "Relu", &["x"], &["h"]),
                if_node,
                node("late", "Relu", &["x"], &["late"]),
            ],
            input: vec![value("x"), value("cond")],
            ..Default::default()
        })
    };
    read(&model_using("h"))
        .unwrap()
        .graph()
        .check_topological_order()
        .unwrap();
    let read = read(&model_using("late")).unwrap();
    let err = read
        .graph()
        .check_topological_order()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("graph \"body\"")
            && err.contains("\"inner\" (Identity)")
            && err.contains("\"late\""),
        "{err}"
    );
    let node = read.graph().nodes().nth(1).unwrap();
    let body = node.attr_graph("then_branch").unwrap().unwrap();
    assert_eq!(body.name(), "body");
    assert_eq!(body.nodes().next().unwrap().op_type(), "Identity");
}

#[test]
fn attribute_getters_check_types_and_name_node_and_attribute() {
    let mut n = node("conv1", "Conv", &["x"], &["y"]);
    let mut group = attr("group", AttributeType::Int);
    group.i = Some(2);
    let mut alpha = attr("alpha", AttributeType::Float);
    alpha.f = Some(0.5);
    let mut pads = attr("pads", AttributeType::Ints);
    pads.ints = vec![1, 1, 1, 1];
    let mut scales = attr("scales", AttributeType::Floats);
    scales.floats = vec![2.0];
    let mut auto_pad = attr("auto_pad", AttributeType::String);
    auto_pad.s = Some(b"SAME_UPPER".to_vec());
    let mut bad_utf8 = attr("bad", AttributeType::String);
    bad_utf8.s = Some(vec![0xff]);
    let mut names = attr("names", AttributeType::Strings);
    names.strings = vec![b"a".to_vec(), b"b".to_vec()];
    let mut value = attr("value", AttributeType::Tensor);
    value.t = Some(raw_tensor(
        "",
        DataType::Int64,
        &[1],
        7i64.to_le_bytes().to_vec(),
    ));
    let mut empty_tensor = attr("empty", AttributeType::Tensor);
    empty_tensor.t = None;
    let mut reference = attr("ref", AttributeType::Int);
    reference.ref_attr_name = Some("outer".into());
    n.attribute = vec![
        group,
        alpha,
        pads,
        scales,
        auto_pad,
        bad_utf8,
        names,
        value,
        empty_tensor,
        reference,
    ];
    n.domain = Some(String::new());
    let mut custom = node("custom", "Foo", &["x"], &["z"]);
    custom.domain = Some("com.example".into());
    let mut model = relu_model(vec![]);
    model.graph.as_mut().unwrap().node = vec![n, custom];
    let read = read(&model).unwrap();
    let mut nodes = read.graph().nodes();
    let conv = nodes.next().unwrap();
    assert_eq!(conv.opset_version().unwrap(), 21);
    assert_eq!(conv.attr_i("group").unwrap(), Some(2));
    assert_eq!(conv.attr_i_or("missing", 1).unwrap(), 1);
    assert_eq!(conv.attr_f("alpha").unwrap(), Some(0.5));
    assert_eq!(conv.attr_f_or("beta", 1.0).unwrap(), 1.0);
    assert_eq!(conv.attr_ints("pads").unwrap(), Some(&[1i64, 1, 1, 1][..]));
    assert_eq!(conv.attr_floats("scales").unwrap(), Some(&[2.0f32][..]));
    assert_eq!(conv.attr_s("auto_pad").unwrap(), Some("SAME_UPPER"));
    assert_eq!(conv.attr_s_or("mode", "NOTSET").unwrap(), "NOTSET");
    assert_eq!(conv.attr_strings("names").unwrap(), Some(vec!["a", "b"]));
    let tensor = conv.attr_tensor("value").unwrap().unwrap();
    assert_eq!(
        (tensor.dtype, tensor.bytes().unwrap()),
        (DType::Int64, &7i64.to_le_bytes()[..])
    );
    assert!(conv.attr_graph("body").unwrap().is_none());

    let expect = |err: Error, attribute: &str, detail: &str| {
        let text = err.to_string();
        assert!(matches!(err, Error::Attribute { .. }), "{text}");
        assert!(
            text.contains("\"conv1\" (Conv)")
                && text.contains(&format!("attribute {attribute:?}"))
                && text.contains(detail),
            "{text}"
        );
    };
    expect(
        conv.attr_f("group").unwrap_err(),
        "group",
        "is of type INT, expected FLOAT",
    );
    expect(
        conv.attr_ints("alpha").unwrap_err(),
        "alpha",
        "is of type FLOAT, expected INTS",
    );
    expect(
        conv.attr_graph("pads").unwrap_err(),
        "pads",
        "expected GRAPH",
    );
    expect(conv.attr_s("bad").unwrap_err(), "bad", "not UTF-8");
    expect(
        conv.attr_tensor("empty").unwrap_err(),
        "empty",
        "has no tensor",
    );
    expect(
        conv.attr_i("ref").unwrap_err(),
        "ref",
        "only a function body",
    );
    expect(
        conv.required("kernel_shape", conv.attr_ints("kernel_shape").unwrap())
            .unwrap_err(),
        "kernel_shape",
        "is required and missing",
    );

    let custom = nodes.next().unwrap();
    let err = custom.opset_version().unwrap_err().to_string();
    assert!(
        err.contains("\"custom\" (Foo)") && err.contains("\"com.example\""),
        "{err}"
    );
}
