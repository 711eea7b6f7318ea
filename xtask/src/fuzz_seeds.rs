//! `cargo xtask fuzz --write-seeds`: the seed corpora in `fuzz/seeds/<target>/`,
//! written again from the small TensorFlow Serving fixtures and from what the
//! library's own writers produce. Each seed is a few KB at most; libFuzzer's
//! growing corpus stays out of git (`fuzz/corpus/`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use prost::Message;
use savedmodel::proto::text_format;
use savedmodel::{
    DType, ExampleBuilder, Graph, MetaGraphBuilder, SavedModelBuilder, Tensor, WarmupRequests,
};
use savedmodel_checkpoint::convert::{ConvertOptions, ConvertPlan, Format, load_tensors};
use savedmodel_checkpoint::string_tensor::encode;
use savedmodel_checkpoint::table::Table;
use savedmodel_checkpoint::{BundleWriter, Endianness, parse_shape_and_slice};
use savedmodel_layout::{ModelsConfig, VersionPolicy};
use savedmodel_onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    attribute_proto::AttributeType,
};
use savedmodel_tests::onnx_build::float_value;

/// Fixture files small enough to be seeds, relative to the fixtures'
/// `tensorflow_serving/` directory, per target.
const FIXTURE_SEEDS: &[(&str, &str)] = &[
    (
        "table",
        "saved_model_half_plus_two_cpu/00000123/variables/variables.index",
    ),
    (
        "table",
        "saved_model_half_plus_two_mkl/00000123/variables/variables.index",
    ),
    (
        "table",
        "saved_model_half_plus_two_tf2_cpu/00000123/variables/variables.index",
    ),
    (
        "table",
        "saved_model_counter/00000123/variables/variables.index",
    ),
    ("saved_model", "matrix_half_plus_two/1/saved_model.pb"),
    ("saved_model", "saved_model_counter/00000123/saved_model.pb"),
    (
        "saved_model",
        "saved_model_half_plus_three/00000123/saved_model.pb",
    ),
    (
        "fingerprint",
        "saved_model_half_plus_two_tf2_cpu/00000123/fingerprint.pb",
    ),
];

pub(crate) fn write(root: &Path) -> anyhow::Result<()> {
    let seeds = root.join("fuzz").join("seeds");
    if seeds.exists() {
        std::fs::remove_dir_all(&seeds).with_context(|| format!("removing {}", seeds.display()))?;
    }
    let fixtures = savedmodel_tests::paths::serving_fixtures();
    let put = |target: &str, name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let dir = seeds.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)
            .with_context(|| format!("writing seed {target}/{name}"))
    };
    for (target, relative) in FIXTURE_SEEDS {
        let bytes = std::fs::read(fixtures.join(relative))
            .with_context(|| format!("reading fixture {relative}"))?;
        put(target, &relative.replace('/', "_"), &bytes)?;
        // The text of the smallest fixture (text format is four times as long).
        if relative.starts_with("matrix_half_plus_two/") {
            let model = savedmodel::proto::tensorflow::SavedModel::decode(bytes.as_slice())?;
            let name = relative.replace('/', "_").replace(".pb", ".pbtxt");
            put(
                "saved_model_text",
                &name,
                text_format::print(&model)?.as_bytes(),
            )?;
        }
    }

    let scratch = tempfile::tempdir()?;

    // A bundle of ours: every dtype family, strings, a partitioned tensor.
    let prefix = scratch.path().join("bundle");
    let mut writer = BundleWriter::create(&prefix)?;
    writer.add_typed("dense/kernel", &[2, 2], &[1.0f32, -2.0, 0.5, 4.0])?;
    writer.add_typed("dense/bias", &[2], &[0.25f64, -1.0])?;
    writer.add_typed("step", &[], &[7i64])?;
    writer.add_typed("mask", &[3], &[1u8, 0, 255])?;
    writer.add_strings("vocab", &[3], &["a", "", "long-ish word"])?;
    for (spec, values) in [("4 0,2", [1.0f32, 2.0]), ("4 2,2", [3.0, 4.0])] {
        let (full, slice) = parse_shape_and_slice(spec)?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        writer.add_slice(
            "part",
            &full,
            &slice,
            savedmodel_checkpoint::DType::Float,
            &bytes,
        )?;
    }
    writer.finish()?;
    let index = std::fs::read(prefix.with_extension("index"))?;
    put("table", "ours_all_kinds.index", &index)?;
    let table = Table::open(&index, Path::new("bundle.index"))?;
    for (i, item) in table.iter().enumerate() {
        let (key, value) = item?;
        let key = String::from_utf8_lossy(&key).replace(|c: char| !c.is_alphanumeric(), "_");
        put("bundle_entry", &format!("{i:02}_{key}"), value)?;
    }

    // String tensors: the control byte (count, byte order), then the data.
    let strings: [&[&str]; 3] = [&["a", "bc", ""], &["x"; 9], &[&"long".repeat(40), "z"]];
    for (i, elements) in strings.iter().enumerate() {
        for (order, control) in [(Endianness::Little, 0u8), (Endianness::Big, 0x80)] {
            let (bytes, _) = encode(elements, order);
            let mut seed = vec![control | elements.len() as u8];
            seed.extend_from_slice(&bytes);
            put("string_tensor", &format!("{i}_{control:02x}"), &seed)?;
        }
    }

    // .safetensors and .npz from the bundle, through the converter.
    let source = load_tensors(&prefix)?;
    for (format, name) in [
        (Format::SafeTensors, "ours.safetensors"),
        (Format::Npz, "ours.npz"),
    ] {
        let mut options = ConvertOptions::default();
        options.skip_unsupported = true;
        let plan = ConvertPlan::new(&source, format, &options)?;
        let path = scratch.path().join(name);
        plan.write(&path, &mut |_, _| {})?;
        let target = if format == Format::Npz {
            "npz"
        } else {
            "safetensors"
        };
        put(target, name, &std::fs::read(&path)?)?;
    }
    for (name, npy) in npy_seeds() {
        put("npy", name, &npy)?;
    }

    // The model the saved_model, warmup and fingerprint targets fuzz around
    // (`fuzz/src/lib.rs: small_model`: y = 0.5 x + 2 with these signatures).
    let model_dir = scratch.path().join("model");
    small_model()?.write_to(&model_dir)?;
    put(
        "saved_model",
        "ours_half_plus_two.pb",
        &std::fs::read(model_dir.join("saved_model.pb"))?,
    )?;
    let model = savedmodel::SavedModel::open(&model_dir)?;
    put(
        "saved_model_text",
        "ours_half_plus_two.pbtxt",
        text_format::print(model.proto())?.as_bytes(),
    )?;
    put(
        "fingerprint",
        "ours.pb",
        &std::fs::read(model_dir.join("fingerprint.pb"))?,
    )?;
    let mut warmup = WarmupRequests::new();
    warmup.predict(
        "serving_default",
        &[("x", &Tensor::new(&[2], &[1.0f32, 3.0])?)],
    )?;
    let example = ExampleBuilder::new().floats("x", &[1.5]).build();
    warmup.regress("regress_x_to_y", vec![example.clone()])?;
    warmup.classify("classify_x_to_y", vec![example])?;
    put("warmup", "three_kinds", &warmup.to_tfrecord())?;

    // models.config: hand-written, and printed by ModelsConfig.
    put(
        "models_config",
        "two_models.config",
        MODELS_CONFIG.as_bytes(),
    )?;
    let mut config = ModelsConfig::parse(Path::new("models.config"), "")?;
    config.add_model("iris", "/models/iris", "tensorflow")?;
    config.set_policy(
        "iris",
        &VersionPolicy::Specific {
            versions: vec![1, 2],
        },
    )?;
    config.set_label("iris", "stable", 1, true)?;
    put(
        "models_config",
        "printed.config",
        config.to_text()?.as_bytes(),
    )?;

    for (name, spec) in EXPORT_SPECS {
        put("export_spec", name, spec.as_bytes())?;
    }
    for (name, model) in onnx_models() {
        put("onnx", name, &model.encode_to_vec())?;
    }
    Ok(())
}

/// `fuzz/src/lib.rs: small_model` again (the fuzz crate is a workspace of
/// its own, so the two cannot share code): what the seeds are written for.
fn small_model() -> anyhow::Result<SavedModelBuilder> {
    let mut g = Graph::new();
    let x = g.placeholder("x", DType::Float, [-1])?;
    let a = g.variable("a", Tensor::new(&[], &[0.5f32])?)?;
    let b = g.constant("b", Tensor::new(&[], &[2.0f32])?)?;
    let ax = g.mul("mul", &x, a.value())?;
    let y = g.add("y", &ax, &b)?;
    let serialized = g.placeholder("tf_example", DType::String, [-1])?;
    let spec = savedmodel::ops::ExampleSpec::new().dense("x", DType::Float, &[1]);
    let parsed = g.parse_example("ParseExample", &serialized, &spec)?;
    let px = g.identity("px", parsed.dense("x").context("x was parsed")?)?;
    let pax = g.mul("pmul", &px, a.value())?;
    let py = g.add("py", &pax, &b)?;
    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature("serving_default", &[("x", &x)], &[("y", &y)])?
        .regress_signature("regress_x_to_y", &serialized, &py)?
        .classify_signature("classify_x_to_y", &serialized, None, Some(&py))?;
    let mut builder = SavedModelBuilder::new();
    builder.add_meta_graph(meta)?.fingerprint(true).fsync(false);
    Ok(builder)
}

const MODELS_CONFIG: &str = r#"model_config_list {
  config {
    name: "iris"
    base_path: "/models/iris"
    model_platform: "tensorflow"
    model_version_policy {
      specific {
        versions: 1
        versions: 2
      }
    }
    version_labels {
      key: "stable"
      value: 1
    }
  }
  config {
    name: "mnist"
    base_path: "/models/mnist"
    model_platform: "tensorflow"
    model_version_policy {
      latest {
        num_versions: 2
      }
    }
  }
}
"#;

const EXPORT_SPECS: &[(&str, &str)] = &[
    (
        "iris.toml",
        r#"[model]
name = "iris"
architecture = "softmax_classifier"
input_width = 4
feature = "x"
layout = "in_out"

[classes]
labels = ["setosa", "versicolor", "virginica"]

[normalization]
mean = [5.84, 3.05, 3.76, 1.20]
std = [0.83, 0.43, 1.76, 0.76]

[[layers]]
kernel = "dense/kernel"
bias = "dense/bias"
"#,
    ),
    (
        "mlp.toml",
        r#"[model]
architecture = "mlp"
task = "regressor"
input_width = 8
layout = "out_in"

[normalization]
mean = "norm/mean"
std = "norm/std"

[[layers]]
kernel = "fc1.weight"
bias = "fc1.bias"
activation = "relu"
units = 16

[[layers]]
kernel = "fc2.weight"
activation = "none"
name = "head"
"#,
    ),
];

/// `.npy` arrays: version 1.0 headers around little data.
fn npy_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let npy = |descr: &str, fortran: bool, shape: &str, data: &[u8]| {
        let dict = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        // Magic, version, header length, header padded with spaces to a
        // multiple of 64 bytes in all, ending in a newline.
        let unpadded = 10 + dict.len() + 1;
        let padding = unpadded.next_multiple_of(64) - unpadded;
        let header = format!("{dict}{}\n", " ".repeat(padding));
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    };
    let floats: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    let big: Vec<u8> = [1i32, -2].iter().flat_map(|i| i.to_be_bytes()).collect();
    vec![
        ("f4_2x3", npy("<f4", false, "(2, 3)", &floats)),
        ("f4_2x3_fortran", npy("<f4", true, "(2, 3)", &floats)),
        ("i4_big_endian", npy(">i4", false, "(2,)", &big)),
        ("scalar_f8", npy("<f8", false, "()", &2.5f64.to_le_bytes())),
        ("bool", npy("|b1", false, "(3,)", &[1, 0, 1])),
        ("bytes", npy("|S3", false, "(2,)", b"ab\0xyz")),
    ]
}

/// Small ONNX models of the operator families the converter handles.
fn onnx_models() -> Vec<(&'static str, ModelProto)> {
    let node =
        |op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>| NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: outputs.iter().map(|s| (*s).to_owned()).collect(),
            name: Some(format!("{op}_{}", outputs.first().copied().unwrap_or(""))),
            op_type: Some(op.to_owned()),
            attribute,
            ..Default::default()
        };
    let int = |name: &str, i: i64| AttributeProto {
        name: Some(name.to_owned()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(i),
        ..Default::default()
    };
    let ints = |name: &str, ints: &[i64]| AttributeProto {
        name: Some(name.to_owned()),
        r#type: Some(AttributeType::Ints as i32),
        ints: ints.to_vec(),
        ..Default::default()
    };
    let floats = |name: &str, dims: &[i64]| {
        let n: i64 = dims.iter().product();
        TensorProto {
            name: Some(name.to_owned()),
            dims: dims.to_vec(),
            // TensorProto.DataType.FLOAT.
            data_type: Some(1),
            float_data: (0..n).map(|i| (i % 7) as f32 * 0.25 - 0.5).collect(),
            ..Default::default()
        }
    };
    let model = |nodes: Vec<NodeProto>,
                 initializer: Vec<TensorProto>,
                 inputs: &[(&str, &[i64])],
                 outputs: &[(&str, &[i64])]| ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        producer_name: Some("savedmodel-fuzz-seeds".to_owned()),
        graph: Some(GraphProto {
            name: Some("g".to_owned()),
            node: nodes,
            initializer,
            input: inputs.iter().map(|(n, d)| float_value(n, d)).collect(),
            output: outputs.iter().map(|(n, d)| float_value(n, d)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let shape = TensorProto {
        name: Some("shape".to_owned()),
        dims: vec![2],
        // TensorProto.DataType.INT64.
        data_type: Some(7),
        int64_data: vec![3, 2],
        ..Default::default()
    };
    vec![
        (
            "mlp.onnx",
            model(
                vec![
                    node("MatMul", &["x", "w"], &["h"], vec![]),
                    node("Add", &["h", "b"], &["a"], vec![]),
                    node("Relu", &["a"], &["r"], vec![]),
                    node("Softmax", &["r"], &["y"], vec![int("axis", -1)]),
                ],
                vec![floats("w", &[4, 3]), floats("b", &[3])],
                &[("x", &[1, 4])],
                &[("y", &[1, 3])],
            ),
        ),
        (
            "conv.onnx",
            model(
                vec![
                    node(
                        "Conv",
                        &["x", "k"],
                        &["c"],
                        vec![ints("pads", &[1, 1, 1, 1]), ints("kernel_shape", &[3, 3])],
                    ),
                    node(
                        "MaxPool",
                        &["c"],
                        &["p"],
                        vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
                    ),
                    node("Flatten", &["p"], &["y"], vec![int("axis", 1)]),
                ],
                vec![floats("k", &[2, 1, 3, 3])],
                &[("x", &[1, 1, 4, 4])],
                &[("y", &[1, 8])],
            ),
        ),
        (
            "reshape.onnx",
            model(
                vec![
                    node("Reshape", &["x", "shape"], &["r"], vec![]),
                    node("Transpose", &["r"], &["t"], vec![ints("perm", &[1, 0])]),
                    node("Concat", &["t", "t"], &["y"], vec![int("axis", 0)]),
                ],
                vec![shape],
                &[("x", &[2, 3])],
                &[("y", &[4, 3])],
            ),
        ),
    ]
}

/// Where the seeds of `target` are.
pub(crate) fn dir(root: &Path, target: &str) -> PathBuf {
    root.join("fuzz").join("seeds").join(target)
}
