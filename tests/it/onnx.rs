//! ONNX models to SavedModels, judged by TensorFlow and onnxruntime.
//!
//! - The ONNX backend node test suite (`onnx` pinned in the test
//!   virtualenv): every case is converted, loaded by TensorFlow's C++ loader
//!   (the one TensorFlow Serving runs), run on the case's inputs and
//!   compared with the expected outputs within the suite's tolerances
//!   (`savedmodel_tests::onnx_suite`). Every case listed in
//!   `tests/onnx/passing.txt` (written by `cargo xtask onnx-table`) must
//!   pass: the converter may only get better.
//! - Real models built in the tests (`tests/python/onnx_models.py`: a CNN
//!   with batch norm, pooling and a residual add; a transformer encoder
//!   block with dynamic batch and sequence length; stacked LSTM, GRU and
//!   RNN layers with sequence lengths, initial states, peepholes, `clip`
//!   and other activations; a `Scan` with axes and directions) are exported with
//!   `savedmodel export --onnx`, run through the C++ loader and
//!   `tf.saved_model.load`, and compared with onnxruntime's outputs. The CNN
//!   keeps at most two `Transpose` nodes, and none at its input with
//!   `--input-layout nhwc`.
//! - Six of the `onnx` package's nine `light` models (model zoo CNNs:
//!   DenseNet-121, Inception v1 and v2, ResNet-50, ShuffleNet, SqueezeNet),
//!   the four smallest also with random weights, through the same path, and
//!   against their shipped outputs too; scikit-learn pipelines exported by
//!   `skl2onnx`; the `silero-vad` package's voice activity detectors (LSTM,
//!   `If` on the sample rate).
//! - The models the `onnx` package ships from PyTorch's exporter
//!   (`pytorch-converted`, `pytorch-operator`) are converted and compared
//!   with onnxruntime through both TensorFlow loaders.
//! - An unsupported model fails with every unsupported node listed and
//!   publishes nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use prost::Message;
use savedmodel_checkpoint::TensorData;
use savedmodel_checkpoint::convert::load_tensors;
use savedmodel_onnx::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto};
use savedmodel_onnx::{ConvertOptions, OnnxModel};
use savedmodel_tests::onnx_build::{float_initializer, float_value};
use savedmodel_tests::onnx_suite::{self, Outcome, Selection};
use savedmodel_tests::paths::{savedmodel_bin, workspace_root};
use savedmodel_tests::tf::{self, Tensor, request};
use serde_json::Value;

#[test]
fn the_node_suite_passes_what_it_passed() {
    let work = tempfile::tempdir().unwrap();
    let results = onnx_suite::run(work.path(), Selection::NODE).unwrap();
    let expected: BTreeSet<String> =
        std::fs::read_to_string(workspace_root().join("tests/onnx/passing.txt"))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
    assert!(
        results.cases.len() >= 1884,
        "the suite has {} cases, expected onnx 1.23's 1,884",
        results.cases.len()
    );
    let mut regressions = Vec::new();
    for case in &results.cases {
        if expected.contains(&case.name) && case.outcome != Outcome::Pass {
            regressions.push(format!("{}: {:?}", case.name, case.outcome));
        }
    }
    eprintln!(
        "onnx node suite: {} of {} cases pass ({} listed in tests/onnx/passing.txt)",
        results.passed(),
        results.cases.len(),
        expected.len()
    );
    assert!(
        regressions.is_empty(),
        "{} cases that passed no longer do:\n{}",
        regressions.len(),
        regressions.join("\n")
    );
    let missing: Vec<&String> = expected
        .iter()
        .filter(|n| !results.cases.iter().any(|c| &&c.name == n))
        .collect();
    assert!(missing.is_empty(), "cases gone from the suite: {missing:?}");
}

/// The models the `onnx` package ships from PyTorch's exporter (82
/// `pytorch-converted` layers, 35 `pytorch-operator` models; most import
/// opset 6): every one converts, and through both the C++ loader and
/// `tf.saved_model.load` gives onnxruntime's outputs (and the expected
/// ones, for the opset-6 models onnxruntime no longer runs).
#[test]
fn pytorch_exported_models_match_onnxruntime_through_both_loaders() {
    let work = tempfile::tempdir().unwrap();
    let results = onnx_suite::run(
        work.path(),
        Selection {
            kinds: "pytorch-converted,pytorch-operator",
            filter: None,
            onnxruntime: true,
        },
    )
    .unwrap();
    let count = |kind: &str| results.cases.iter().filter(|c| c.kind == kind).count();
    assert_eq!(
        (count("pytorch-converted"), count("pytorch-operator")),
        (82, 35),
        "onnx 1.23 ships 82 pytorch-converted and 35 pytorch-operator cases"
    );
    let failures: Vec<String> = results
        .cases
        .iter()
        .filter(|c| c.outcome != Outcome::Pass)
        .map(|c| format!("{} ({}): {:?}", c.name, c.kind, c.outcome))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        results.cases.len(),
        failures.join("\n")
    );
    // Opset 6 is most of them: the legacy rules are exercised.
    assert!(results.cases.iter().filter(|c| c.opset == Some(6)).count() >= 100);
}

/// The arrays of an .npz file as judge tensors, by name.
fn npz(path: &Path) -> Vec<(String, Tensor)> {
    let file = load_tensors(path).unwrap();
    (0..file.tensors().len())
        .map(|i| {
            let name = file.tensors()[i].name.clone();
            let view = file.read(i).unwrap();
            let dtype = view.dtype().name();
            let shape = view.shape().to_vec();
            let TensorData::Bytes(b) = view.into_data() else {
                panic!("string arrays are not used here")
            };
            (
                name.clone(),
                Tensor::from_bytes(&name, dtype, &shape, b.into_owned()),
            )
        })
        .collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_within(what, got, want, 1e-4, 1e-5);
}

fn export(bin: &Path, model: &Path, base: &Path, extra: &[&str]) -> String {
    let out = Command::new(bin)
        .arg("export")
        .arg("--onnx")
        .arg(model)
        .arg("--base")
        .arg(base)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "export failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn real_models_match_onnxruntime_through_tensorflow() {
    let work = tempfile::tempdir().unwrap();
    let checked = models_match_onnxruntime(work.path(), &["built"], |name, dir, text| {
        if name != "cnn" {
            return;
        }
        let transposes = transposes_of(text);
        assert!(
            transposes <= 2,
            "the CNN kept {transposes} transposes: {text}"
        );
        // Channels-last input: the leading transpose disappears.
        let nhwc_base = work.path().join("models/cnn_nhwc");
        let text = export(
            savedmodel_bin(),
            &dir.join("model.onnx"),
            &nhwc_base,
            &["--input-layout", "nhwc"],
        );
        assert!(transposes_of(&text) < transposes, "{text}");
        assert!(text.contains("image: DT_FLOAT [-1, 16, 16, 3]"), "{text}");
    });
    assert_eq!(
        checked,
        [
            "cnn",
            "transformer",
            "transformer_batch3_sequence11",
            "recurrent",
            "scan",
            "sklearn",
            "detector"
        ],
        "the models onnx_models.py builds"
    );
}

/// Six of the `onnx` package's nine `light` models (model zoo CNNs whose
/// weights are all 0.02; the other three, whose dense layers hold 61M to
/// 144M weights, are set `light-large` of `onnx_models.py`): each converts
/// and, through both loaders, gives onnxruntime's outputs and the shipped
/// ones, with the last feature map and the logits as further outputs (the
/// classes are uniform with equal weights; the feature maps are not); the
/// four smallest also with random weights, so the channels differ.
#[test]
fn light_models_match_onnxruntime_and_the_shipped_outputs() {
    let work = tempfile::tempdir().unwrap();
    let checked = models_match_onnxruntime(work.path(), &["light"], |_, _, _| {});
    assert_eq!(
        checked,
        [
            "light_densenet121",
            "light_densenet121_random_weights",
            "light_inception_v1",
            "light_inception_v1_random_weights",
            "light_inception_v2",
            "light_resnet50",
            "light_shufflenet",
            "light_shufflenet_random_weights",
            "light_squeezenet",
            "light_squeezenet_random_weights"
        ]
    );
}

/// scikit-learn pipelines as `skl2onnx` exports them (`zipmap=False`): a
/// scaled logistic regression, a scaled random forest, gradient-boosted
/// trees, and a scaled PCA before a boosted regressor. Labels equal
/// onnxruntime's, probabilities and values are close, through both
/// loaders.
#[test]
fn scikit_learn_pipelines_from_skl2onnx_match_onnxruntime() {
    let work = tempfile::tempdir().unwrap();
    let checked = models_match_onnxruntime(work.path(), &["skl2onnx"], |_, _, _| {});
    assert_eq!(
        checked,
        [
            "skl2onnx_logistic_regression",
            "skl2onnx_random_forest",
            "skl2onnx_gradient_boosting",
            "skl2onnx_pca_boosted_regressor"
        ]
    );
}

/// The `silero-vad` package's voice activity detector: the opset-16 model
/// with its LSTMs and the `If` on the sample rate, at 16 kHz and at 8 kHz
/// (its chunk length fixed at 288 samples, see `onnx_models.py`), the
/// opset-18 model likewise (the two branches of its `If`), and the sequence
/// model through the LSTM operator; each fed a state onnxruntime carried
/// over two chunks. Probabilities and the next state match onnxruntime's.
#[test]
fn silero_vad_matches_onnxruntime_through_both_loaders() {
    let work = tempfile::tempdir().unwrap();
    let checked = models_match_onnxruntime(work.path(), &["silero"], |name, dir, text| {
        if name == "silero_vad_288_16k" {
            // The sample rate decides at run time, in TensorFlow's If: both
            // branches are functions of the graph.
            let version = dir.parent().unwrap().join("models").join(name).join("1");
            let model = savedmodel::SavedModel::open(&version).unwrap();
            let meta = model.meta_graph(&["serve"]).unwrap();
            let graph = meta.def().graph_def.as_ref().unwrap();
            let ifs = graph
                .node
                .iter()
                .filter(|n| matches!(n.op.as_str(), "If" | "StatelessIf"))
                .count();
            assert_eq!(ifs, 1, "{name}: the If on the sample rate; {text}");
            let library = graph.library.as_ref().map_or(0, |l| l.function.len());
            assert!(library >= 2, "{name}: {library} functions");
        }
    });
    assert_eq!(
        checked,
        [
            "silero_vad_288_16k",
            "silero_vad_288_8k",
            "silero_vad_op18_ifless",
            "silero_vad_op18_ifless_8k",
            "silero_vad_16k_sequence"
        ]
    );
}

/// A model's own expected outputs (`reference.npz`) and the tolerances
/// (rtol, atol) it ships them with.
type Reference = (Vec<(String, Tensor)>, f32, f32);

/// One model of `onnx_models.py`'s listing, exported.
struct ExportedModel {
    name: String,
    version: std::path::PathBuf,
    inputs: Vec<(String, Tensor)>,
    expected: Vec<(String, Tensor)>,
    /// The model's own expected outputs and their tolerances.
    reference: Option<Reference>,
    /// An element's absolute tolerance as a fraction of its tensor's
    /// largest magnitude, for deep random networks; else [`assert_close`]'s.
    atol_of_max: Option<f32>,
}

/// Has `onnx_models.py` write the models of `sets` under `work`, exports
/// each with the CLI (then calls `also` with its name, directory and the
/// export's text), runs them all through the C++ loader in one process and
/// through `tf.saved_model.load` in another, and compares every output
/// with onnxruntime's (and with the model's shipped outputs where it has
/// them). Returns the names of the models checked, in order.
fn models_match_onnxruntime(
    work: &Path,
    sets: &[&str],
    mut also: impl FnMut(&str, &Path, &str),
) -> Vec<String> {
    let listing = Command::new(tf::python())
        .arg(tf::script("onnx_models.py"))
        .arg(work)
        .args(sets)
        .output()
        .unwrap();
    assert!(
        listing.status.success(),
        "onnx_models.py: {}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let listing: Value = serde_json::from_slice(&listing.stdout).unwrap();
    let bin = savedmodel_bin().to_path_buf();
    let mut models = Vec::new();
    for model in listing.as_array().unwrap() {
        let name = model["name"].as_str().unwrap();
        let dir = work.join(name);
        let base = work.join("models").join(name);
        let text = export(&bin, &dir.join("model.onnx"), &base, &[]);
        assert!(text.contains("version: 1\n"), "{text}");
        also(name, &dir, &text);
        let reference = model.get("reference").map(|r| {
            (
                npz(&dir.join("reference.npz")),
                r["rtol"].as_f64().unwrap() as f32,
                r["atol"].as_f64().unwrap() as f32,
            )
        });
        models.push(ExportedModel {
            name: name.to_owned(),
            version: base.join("1"),
            inputs: npz(&dir.join("inputs.npz")),
            expected: npz(&dir.join("expected.npz")),
            reference,
            atol_of_max: model
                .get("atol_of_max")
                .and_then(Value::as_f64)
                .map(|a| a as f32),
        });
    }

    let cc_requests: Vec<Value> = models
        .iter()
        .map(|m| {
            let feeds: Vec<(String, &Tensor)> = m
                .inputs
                .iter()
                .map(|(n, t)| (format!("{n}:0"), t))
                .collect();
            let feed_refs: Vec<(&str, &Tensor)> =
                feeds.iter().map(|(n, t)| (n.as_str(), *t)).collect();
            let fetches: Vec<String> = m.expected.iter().map(|(n, _)| format!("{n}:0")).collect();
            let fetch_refs: Vec<&str> = fetches.iter().map(String::as_str).collect();
            request::cc_load(
                &m.version,
                &["serve"],
                &[request::cc_run(&feed_refs, &fetch_refs)],
            )
        })
        .collect();
    let cc = tf::cc_loader(&Value::Array(cc_requests));
    let v2_requests: Vec<Value> = models
        .iter()
        .map(|m| {
            let inputs: Vec<(&str, &Tensor)> =
                m.inputs.iter().map(|(n, t)| (n.as_str(), t)).collect();
            request::load_v2(
                &m.version,
                &["serve"],
                &[request::run("serving_default", &inputs)],
            )
        })
        .collect();
    let v2 = tf::oracle(&Value::Array(v2_requests));

    for (i, m) in models.iter().enumerate() {
        let name = &m.name;
        let outputs = tf::run_outputs(&cc[i], 0);
        for (n, want) in &m.expected {
            let got = outputs
                .iter()
                .find(|(k, _)| k == &format!("{n}:0"))
                .unwrap_or_else(|| panic!("{name}: no output {n} in {}", cc[i]));
            assert_eq!(got.1.shape, want.shape, "{name}: {n} shape");
            assert_same(
                &format!("{name} C++ loader {n}"),
                &got.1,
                want,
                m.atol_of_max,
            );
            if let Some((reference, rtol, atol)) = &m.reference
                && let Some((_, shipped)) = reference.iter().find(|(k, _)| k == n)
            {
                assert_within(
                    &format!("{name} C++ loader {n} (shipped output)"),
                    &got.1.to_f32(),
                    &shipped.to_f32(),
                    *rtol,
                    *atol,
                );
            }
        }
        let outputs = tf::run_outputs(&v2[i], 0);
        for (n, want) in &m.expected {
            let got = outputs
                .iter()
                .find(|(k, _)| k == n)
                .unwrap_or_else(|| panic!("{name}: no output {n} in {}", v2[i]));
            assert_same(
                &format!("{name} tf.saved_model.load {n}"),
                &got.1,
                want,
                m.atol_of_max,
            );
        }
    }
    models.into_iter().map(|m| m.name).collect()
}

/// `numpy.testing.assert_allclose(got, want, rtol, atol)`.
fn assert_within(what: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: element count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}: element {i} is {g}, expected {w}"
        );
    }
}

/// Integer outputs (class labels) equal, float outputs close (with
/// `atol_of_max`, each element within that fraction of the tensor's
/// largest magnitude, and 1e-4 of its own).
fn assert_same(what: &str, got: &Tensor, want: &Tensor, atol_of_max: Option<f32>) {
    if want.dtype == "DT_INT64" {
        assert_eq!(got.to_i64(), want.to_i64(), "{what}");
    } else if let Some(fraction) = atol_of_max {
        let want = want.to_f32();
        let largest = want.iter().fold(0f32, |m, w| m.max(w.abs()));
        assert_within(what, &got.to_f32(), &want, 1e-4, fraction * largest);
    } else {
        assert_close(what, &got.to_f32(), &want.to_f32());
    }
}

fn transposes_of(text: &str) -> usize {
    let at = text
        .find(" transposes)")
        .unwrap_or_else(|| panic!("no transpose count in {text}"));
    let start = text[..at].rfind(' ').unwrap() + 1;
    text[start..at].parse().unwrap()
}

fn node(op: &str, domain: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        domain: Some(domain.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: outputs.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

#[test]
fn unsupported_models_list_every_unsupported_node_and_publish_nothing() {
    let model = ModelProto {
        ir_version: Some(10),
        opset_import: vec![
            OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(21),
            },
            OperatorSetIdProto {
                domain: Some("com.example".into()),
                version: Some(1),
            },
        ],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: vec![
                node("Relu", "", "ok", &["x"], &["a"]),
                node("NoSuchOp", "", "first", &["a"], &["b"]),
                node("Custom", "com.example", "second", &["b"], &["y"]),
            ],
            input: vec![float_value("x", &[2])],
            output: vec![float_value("y", &[2])],
            ..Default::default()
        }),
        ..Default::default()
    };
    let bytes = model.encode_to_vec();
    let parsed = Arc::new(OnnxModel::from_bytes(&bytes).unwrap());
    let err = savedmodel_onnx::convert(&parsed, &ConvertOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot convert 2 node(s)"), "{err}");
    assert!(
        err.contains("\"first\" (NoSuchOp) (domain \"\", opset 21)"),
        "{err}"
    );
    assert!(
        err.contains("\"second\" (Custom) (domain \"com.example\", opset 1)"),
        "{err}"
    );

    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("bad.onnx");
    std::fs::write(&path, &bytes).unwrap();
    let base = work.path().join("models/bad");
    let out = Command::new(savedmodel_bin())
        .args(["export", "--onnx"])
        .arg(&path)
        .arg("--base")
        .arg(&base)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("NoSuchOp") && stderr.contains("Custom"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&base)
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert!(
        left.is_empty() || left == [0],
        "something was published: {left:?}"
    );
}

/// The count in `export --onnx`'s "(N TensorFlow nodes" line.
fn nodes_of(text: &str) -> usize {
    let at = text
        .find(" TensorFlow nodes")
        .unwrap_or_else(|| panic!("no node count in {text}"));
    let start = text[..at].rfind('(').unwrap() + 1;
    text[start..at].parse().unwrap()
}

/// The fusions (`Conv` + `BatchNormalization`, `MatMul` + `Add`) make the
/// graph smaller and leave its results those of the node-by-node graph:
/// both, run by TensorFlow's C++ loader, give onnxruntime's outputs.
#[test]
fn fused_graphs_are_smaller_and_give_the_unfused_graphs_outputs() {
    let work = tempfile::tempdir().unwrap();
    let listing = Command::new(tf::python())
        .arg(tf::script("onnx_models.py"))
        .arg(work.path())
        .output()
        .unwrap();
    assert!(
        listing.status.success(),
        "onnx_models.py: {}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let bin = savedmodel_bin().to_path_buf();
    let mut runs = Vec::new();
    let mut cases = Vec::new();
    for name in ["cnn", "transformer"] {
        let dir = work.path().join(name);
        let model = dir.join("model.onnx");
        let fused_base = work.path().join("fused").join(name);
        let plain_base = work.path().join("plain").join(name);
        let fused = export(&bin, &model, &fused_base, &[]);
        let plain = export(&bin, &model, &plain_base, &["--no-optimize"]);
        let (fused_nodes, plain_nodes) = (nodes_of(&fused), nodes_of(&plain));
        match name {
            // Two normalizations folded: their Mul, AddV2 and two Consts
            // each gone; the second convolution, which had no bias, gains
            // a BiasAdd and its Const.
            "cnn" => assert_eq!(plain_nodes - fused_nodes, 6, "{plain}{fused}"),
            // Six Adds became BiasAdds: as many nodes.
            _ => assert_eq!(plain_nodes, fused_nodes, "{plain}{fused}"),
        }
        let inputs = npz(&dir.join("inputs.npz"));
        let expected = npz(&dir.join("expected.npz"));
        for base in [&fused_base, &plain_base] {
            runs.push((base.join("1"), inputs.clone(), expected.clone()));
        }
        cases.push(name);
    }
    for (version, inputs, expected) in &runs {
        let feeds: Vec<(String, &Tensor)> =
            inputs.iter().map(|(n, t)| (format!("{n}:0"), t)).collect();
        let feed_refs: Vec<(&str, &Tensor)> = feeds.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        let fetches: Vec<String> = expected.iter().map(|(n, _)| format!("{n}:0")).collect();
        let fetch_refs: Vec<&str> = fetches.iter().map(String::as_str).collect();
        let cc = tf::cc_loader(&request::cc_load(
            version,
            &["serve"],
            &[request::cc_run(&feed_refs, &fetch_refs)],
        ));
        let outputs = tf::run_outputs(&cc, 0);
        for (n, want) in expected {
            let got = outputs
                .iter()
                .find(|(k, _)| k == &format!("{n}:0"))
                .unwrap_or_else(|| panic!("{}: no output {n} in {cc}", version.display()));
            assert_same(&format!("{} {n}", version.display()), &got.1, want, None);
        }
    }
    assert_eq!(cases, ["cnn", "transformer"]);
}

/// A MobileNet-style block built here: Conv (its filter a variable) ->
/// BatchNormalization -> Clip(0, 6) (PyTorch's ReLU6) -> global pooling ->
/// MatMul + Add. Fused, it is Conv2D + BiasAdd + Relu6 and MatMul +
/// BiasAdd; unfused, Maximum and Minimum, Mul and AddV2 remain. Both,
/// through TensorFlow's C++ loader, give the same outputs.
#[test]
fn a_mobilenet_block_fuses_to_conv_bias_relu6_and_keeps_its_outputs() {
    // Deterministic values without a generator: a few irregular sequences.
    let wave = |n: usize, a: f32, b: f32| -> Vec<f32> {
        (0..n).map(|i| a * ((i as f32) * 0.37 + b).sin()).collect()
    };
    let var: Vec<f32> = wave(8, 0.5, 1.0).iter().map(|v| v.abs() + 0.1).collect();
    let model = ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("mobile".into()),
            node: vec![
                node("Conv", "", "conv", &["x", "w", "b"], &["c"]),
                node(
                    "BatchNormalization",
                    "",
                    "bn",
                    &["c", "gamma", "beta", "mean", "var"],
                    &["n"],
                ),
                node("Clip", "", "relu6", &["n", "zero", "six"], &["r"]),
                node("GlobalAveragePool", "", "gap", &["r"], &["p"]),
                node("Flatten", "", "flat", &["p"], &["f"]),
                node("MatMul", "", "fc", &["f", "fc_w"], &["m"]),
                node("Add", "", "fc_bias", &["m", "fc_b"], &["y"]),
            ],
            initializer: vec![
                // 8 x 4 x 3 x 3 floats: 1,152 bytes, above the const limit.
                float_initializer("w", &[8, 4, 3, 3], &wave(288, 0.4, 0.0)),
                float_initializer("b", &[8], &wave(8, 0.3, 2.0)),
                float_initializer("gamma", &[8], &wave(8, 1.5, 0.5)),
                float_initializer("beta", &[8], &wave(8, 2.0, 3.0)),
                float_initializer("mean", &[8], &wave(8, 0.2, 4.0)),
                float_initializer("var", &[8], &var),
                float_initializer("zero", &[], &[0.0]),
                float_initializer("six", &[], &[6.0]),
                float_initializer("fc_w", &[8, 5], &wave(40, 0.7, 5.0)),
                float_initializer("fc_b", &[5], &wave(5, 0.1, 6.0)),
            ],
            input: vec![float_value("x", &[2, 4, 8, 8])],
            output: vec![float_value("y", &[2, 5])],
            ..Default::default()
        }),
        ..Default::default()
    };
    let bytes = model.encode_to_vec();
    let parsed = Arc::new(OnnxModel::from_bytes(&bytes).unwrap());
    let ops = |optimize: bool| -> Vec<String> {
        let options = ConvertOptions {
            optimize,
            ..ConvertOptions::default()
        };
        let converted = savedmodel_onnx::convert(&parsed, &options).unwrap();
        converted
            .graph
            .nodes()
            .iter()
            .map(|n| n.op.clone())
            .collect()
    };
    let count = |ops: &[String], op: &str| ops.iter().filter(|o| *o == op).count();
    let (fused, plain) = (ops(true), ops(false));
    for (op, in_fused, in_plain) in [
        ("Relu6", 1, 0),
        ("Maximum", 0, 1),
        ("Minimum", 0, 1),
        ("Mul", 0, 1),
        ("AddV2", 0, 2),
        ("BiasAdd", 2, 1),
        ("Conv2D", 1, 1),
    ] {
        assert_eq!(
            (count(&fused, op), count(&plain, op)),
            (in_fused, in_plain),
            "{op}: fused {fused:?}, unfused {plain:?}"
        );
    }

    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("mobile.onnx");
    std::fs::write(&path, &bytes).unwrap();
    let bin = savedmodel_bin().to_path_buf();
    let x = Tensor::from_f32("x", &[2, 4, 8, 8], &wave(512, 3.0, 0.25));
    let mut results = Vec::new();
    for (base, extra) in [("fused", &[][..]), ("plain", &["--no-optimize"][..])] {
        let base = work.path().join(base);
        export(&bin, &path, &base, extra);
        let cc = tf::cc_loader(&request::cc_load(
            &base.join("1"),
            &["serve"],
            &[request::cc_run(&[("x:0", &x)], &["y:0"])],
        ));
        let outputs = tf::run_outputs(&cc, 0);
        let y = outputs
            .iter()
            .find(|(k, _)| k == "y:0")
            .unwrap_or_else(|| panic!("no y in {cc}"));
        assert_eq!(y.1.shape, [2, 5]);
        results.push(y.1.to_f32());
    }
    assert_close("fused vs unfused y", &results[0], &results[1]);
    // The block is not trivial: some outputs are clipped at 6 or 0 before
    // pooling, so the values differ from one input to the next.
    assert!(
        results[0].iter().any(|v| (v - results[0][0]).abs() > 1e-3),
        "{:?}",
        results[0]
    );
}
