//! `savedmodel export` from weights and a spec, judged by TensorFlow 2.21 and
//! NumPy.
//!
//! For each architecture (linear and logistic regression, softmax
//! classifier, MLPs with every activation, PyTorch and TensorFlow kernel
//! layouts, float16/float32/float64 weights in `.safetensors`, `.npz` and
//! TensorFlow checkpoints) the weights are generated here, written to a file
//! by the ecosystem's own writers (NumPy, `safetensors`) or by our checkpoint
//! writer, exported through the library and published with
//! `savedmodel_layout::publish`, exactly as `savedmodel export` does. Then:
//!
//! - TensorFlow's C++ loader (the one TensorFlow Serving uses) and
//!   `tf.saved_model.load` load it and run every signature, the classify and
//!   regress ones on real serialized `tf.Example`s built here with the prost
//!   types;
//! - `tests/python/export_reference.py` computes the same model with NumPy
//!   from the same weights file, read by NumPy / safetensors / TensorFlow's
//!   checkpoint reader and interpreted from the TOML spec independently;
//! - the outputs agree to 1e-5 relative (labels and argmaxes exactly);
//! - every warmup record replays through the loaded model.
//!
//! The iris model of `cargo xtask export` is built by the same code the
//! task runs (this file includes `xtask/src/export.rs`) and TensorFlow's
//! accuracy on the held-out flowers must equal the one the task reports.
//!
//! Bad input (a missing tensor, a shape that does not fit, an unknown
//! activation, a base path that is a file) must fail with a clear message
//! and publish nothing.

use std::path::{Path, PathBuf};

use prost::Message;
use savedmodel::proto::tensorflow::{Example, Feature, Features, FloatList, feature::Kind};
use savedmodel_export::{
    ExportOptions, ExportSpec, ExportSummary, PreparedModel, WarmupExamples, open_weights,
};
use savedmodel_layout::{NextVersion, publish};
use savedmodel_tests::tf::{self, Tensor, request};
use serde_json::{Value, json};

#[path = "../../xtask/src/export.rs"]
#[allow(dead_code, unreachable_pub)]
mod xtask_export;

/// How a case's weights are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Store {
    /// `safetensors.numpy.save_file`.
    SafeTensors,
    /// `np.savez`.
    Npz,
    /// `np.savez_compressed`.
    NpzCompressed,
    /// A TensorFlow checkpoint written by `savedmodel_checkpoint::BundleWriter`.
    Checkpoint,
}

struct Case {
    name: &'static str,
    spec: String,
    store: Store,
    /// NumPy dtype of the stored weights.
    dtype: &'static str,
    tensors: Vec<(String, Vec<i64>, Vec<f32>)>,
    input_width: usize,
    feature: &'static str,
    /// A vocabulary file to write beside the spec.
    vocabulary: Option<&'static str>,
    /// Inputs are drawn from [-scale, scale].
    scale: f32,
}

/// A deterministic xorshift generator for weights and inputs.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    fn tensor(&mut self, name: &str, shape: &[i64], scale: f32) -> (String, Vec<i64>, Vec<f32>) {
        let n: i64 = shape.iter().product();
        let values = (0..n).map(|_| self.uniform() * scale).collect();
        (name.to_owned(), shape.to_vec(), values)
    }
}

fn cases() -> Vec<Case> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    vec![
        Case {
            name: "linear",
            spec: "[model]\narchitecture = \"linear_regression\"\ninput_width = 5\n\n[[layers]]\nkernel = \"linear/weight\"\nbias = \"linear/bias\"\n".into(),
            store: Store::SafeTensors,
            dtype: "float32",
            tensors: vec![r.tensor("linear/weight", &[5, 1], 1.0), r.tensor("linear/bias", &[1], 1.0)],
            input_width: 5,
            feature: "x",
            vocabulary: None,
            scale: 2.0,
        },
        Case {
            name: "logistic",
            spec: "[model]\narchitecture = \"logistic_regression\"\ninput_width = 4\nfeature = \"features\"\n\n[classes]\nlabels = [\"negative\", \"positive\"]\n\n[normalization]\nmean = [0.5, -1.0, 2.0, 0.0]\nstd = [2.0, 0.5, 1.5, 3.0]\n\n[[layers]]\nkernel = \"w\"\nbias = \"b\"\n".into(),
            store: Store::Npz,
            dtype: "float32",
            tensors: vec![r.tensor("w", &[4, 1], 1.5), r.tensor("b", &[1], 0.5)],
            input_width: 4,
            feature: "features",
            vocabulary: None,
            scale: 3.0,
        },
        Case {
            name: "softmax",
            spec: "[model]\nname = \"softmax\"\narchitecture = \"softmax_classifier\"\ninput_width = 6\n\n[classes]\nvocabulary = \"labels.txt\"\n\n[normalization]\nmean = \"scaler/mean\"\nstd = \"scaler/std\"\n\n[[layers]]\nkernel = \"dense/kernel\"\nbias = \"dense/bias\"\nunits = 4\n".into(),
            store: Store::Checkpoint,
            dtype: "float32",
            tensors: vec![
                r.tensor("dense/kernel", &[6, 4], 1.0),
                r.tensor("dense/bias", &[4], 0.5),
                r.tensor("scaler/mean", &[6], 1.0),
                (
                    "scaler/std".into(),
                    vec![6],
                    vec![0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
                ),
            ],
            input_width: 6,
            feature: "x",
            vocabulary: Some("ant\nbee\ncicada\ndragonfly\n"),
            scale: 2.0,
        },
        Case {
            name: "mlp_torch",
            spec: "[model]\narchitecture = \"mlp\"\ntask = \"classifier\"\ninput_width = 8\nlayout = \"out_in\"\nfeature = \"pixels\"\n\n[[layers]]\nname = \"fc1\"\nkernel = \"fc1.weight\"\nbias = \"fc1.bias\"\nactivation = \"relu\"\n\n[[layers]]\nname = \"fc2\"\nkernel = \"fc2.weight\"\nbias = \"fc2.bias\"\nactivation = \"tanh\"\n\n[[layers]]\nname = \"fc3\"\nkernel = \"fc3.weight\"\nbias = \"fc3.bias\"\nactivation = \"softmax\"\n".into(),
            store: Store::SafeTensors,
            dtype: "float16",
            tensors: vec![
                r.tensor("fc1.weight", &[16, 8], 0.5),
                r.tensor("fc1.bias", &[16], 0.1),
                r.tensor("fc2.weight", &[12, 16], 0.5),
                r.tensor("fc2.bias", &[12], 0.1),
                r.tensor("fc3.weight", &[5, 12], 1.0),
                r.tensor("fc3.bias", &[5], 0.1),
            ],
            input_width: 8,
            feature: "pixels",
            vocabulary: None,
            scale: 2.0,
        },
        Case {
            name: "mlp_regressor",
            spec: "[model]\narchitecture = \"mlp\"\ntask = \"regressor\"\ninput_width = 3\n\n[[layers]]\nkernel = \"h1/kernel\"\nbias = \"h1/bias\"\nactivation = \"relu6\"\n\n[[layers]]\nkernel = \"h2/kernel\"\nactivation = \"sigmoid\"\n\n[[layers]]\nkernel = \"out/kernel\"\nbias = \"out/bias\"\nactivation = \"none\"\n".into(),
            store: Store::NpzCompressed,
            dtype: "float64",
            tensors: vec![
                r.tensor("h1/kernel", &[3, 7], 3.0),
                r.tensor("h1/bias", &[7], 1.0),
                r.tensor("h2/kernel", &[7, 4], 1.0),
                r.tensor("out/kernel", &[4, 1], 2.0),
                r.tensor("out/bias", &[1], 0.5),
            ],
            input_width: 3,
            feature: "x",
            vocabulary: None,
            scale: 4.0,
        },
        Case {
            name: "mlp_binary",
            spec: "[model]\narchitecture = \"mlp\"\ntask = \"classifier\"\ninput_width = 2\n\n[[layers]]\nkernel = \"a\"\nbias = \"a_bias\"\nactivation = \"relu\"\n\n[[layers]]\nkernel = \"b\"\nactivation = \"sigmoid\"\n".into(),
            store: Store::Npz,
            dtype: "float32",
            tensors: vec![r.tensor("a", &[2, 3], 1.0), r.tensor("a_bias", &[3], 0.2), r.tensor("b", &[3, 1], 1.0)],
            input_width: 2,
            feature: "x",
            vocabulary: None,
            scale: 2.0,
        },
    ]
}

const BATCH: usize = 6;

/// A serialized `tf.Example` with float feature `feature`, built with the
/// prost types directly.
fn serialized_example(feature: &str, row: &[f32]) -> Vec<u8> {
    let mut features = Features::default();
    features.feature.insert(
        feature.to_owned(),
        Feature {
            kind: Some(Kind::FloatList(FloatList {
                value: row.to_vec(),
            })),
        },
    );
    Example {
        features: Some(features),
    }
    .encode_to_vec()
}

fn weights_path(dir: &Path, store: Store) -> PathBuf {
    match store {
        Store::SafeTensors => dir.join("weights.safetensors"),
        Store::Npz | Store::NpzCompressed => dir.join("weights.npz"),
        Store::Checkpoint => dir.join("ckpt/model"),
    }
}

/// What `savedmodel export` does, through the library: spec, weights,
/// checks, then an atomic publish.
fn export_to_base(
    spec: &Path,
    weights: &Path,
    base: &Path,
    warmup: WarmupExamples,
) -> Result<(i64, PathBuf, ExportSummary), Box<dyn std::error::Error>> {
    let spec = ExportSpec::from_file(spec)?;
    let source = open_weights(weights)?;
    let model = PreparedModel::prepare(&spec, &source)?;
    let mut options = ExportOptions::default();
    options.warmup = warmup;
    let export = model.into_export(&options)?;
    let published = publish(base, NextVersion::Increment, |dir| {
        export.write_into_empty_dir(dir)
    })?;
    Ok((published.version, published.path, export.summary().clone()))
}

/// The graph tensor behind `alias` of signature `key`.
fn tensor_of(summary: &ExportSummary, key: &str, alias: &str, outputs: bool) -> String {
    let sig = summary.signatures.iter().find(|s| s.key == key).unwrap();
    let list = if outputs { &sig.outputs } else { &sig.inputs };
    list.iter()
        .find(|t| t.alias == alias)
        .unwrap()
        .tensor
        .clone()
}

/// `actual` (TensorFlow, float32) against `expected` (NumPy, float64):
/// 1e-5 relative, with magnitudes below 0.1 compared as if they were 0.1.
fn assert_close(actual: &[f32], expected: &[f64], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let tolerance = 1e-5 * e.abs().max(0.1);
        assert!(
            (f64::from(a) - e).abs() <= tolerance,
            "{what}[{i}]: TensorFlow {a}, NumPy {e} (difference {} > {tolerance})",
            (f64::from(a) - e).abs()
        );
    }
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("not a number: {other}"),
    }
}

fn strings(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().as_bytes().to_vec())
        })
        .collect()
}

fn output<'a>(outputs: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &outputs
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| {
            panic!(
                "no output {name} in {:?}",
                outputs.iter().map(|(k, _)| k).collect::<Vec<_>>()
            )
        })
        .1
}

fn reference_request(case_dir: &Path, weights: &Path, rows: &[Vec<f32>]) -> Value {
    json!({
        "cmd": "reference",
        "spec": case_dir.join("spec.toml"),
        "weights": weights,
        "inputs": rows,
    })
}

#[test]
fn every_architecture_matches_numpy_in_tensorflow() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = cases();

    // Weights files, written by NumPy / safetensors (one process) or our
    // checkpoint writer.
    let mut writes = Vec::new();
    for case in &cases {
        let dir = tmp.path().join(case.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("spec.toml"), &case.spec).unwrap();
        if let Some(vocabulary) = case.vocabulary {
            std::fs::write(dir.join("labels.txt"), vocabulary).unwrap();
        }
        let path = weights_path(&dir, case.store);
        let format = match case.store {
            Store::SafeTensors => "safetensors",
            Store::Npz => "npz",
            Store::NpzCompressed => "npz_compressed",
            Store::Checkpoint => {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                let mut w = savedmodel_checkpoint::BundleWriter::create(&path).unwrap();
                let mut sorted = case.tensors.clone();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                for (name, shape, values) in &sorted {
                    w.add_typed(name, shape, values).unwrap();
                }
                w.finish().unwrap();
                continue;
            }
        };
        let tensors: Vec<Value> = case
            .tensors
            .iter()
            .map(|(name, shape, values)| json!({"name": name, "shape": shape, "values": values}))
            .collect();
        writes.push(json!({"cmd": "write_weights", "path": path, "format": format, "dtype": case.dtype, "tensors": tensors}));
    }
    let written = tf::run_script("export_reference.py", &Value::Array(writes));
    for w in written.as_array().unwrap() {
        tf::ok(w);
    }

    // Export each, as `savedmodel export` does.
    let mut rng = Rng(42);
    let mut exported = Vec::new();
    for case in &cases {
        let dir = tmp.path().join(case.name);
        let base = dir.join("base");
        std::fs::create_dir(&base).unwrap();
        let weights = weights_path(&dir, case.store);
        let (version, path, summary) = export_to_base(
            &dir.join("spec.toml"),
            &weights,
            &base,
            WarmupExamples::Generated(3),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(version, 1);
        assert_eq!(summary.warmup_records, 6, "{}", case.name);
        let rows: Vec<Vec<f32>> = (0..BATCH)
            .map(|_| {
                (0..case.input_width)
                    .map(|_| rng.uniform() * case.scale)
                    .collect()
            })
            .collect();
        exported.push((path, summary, rows, weights));
    }

    // NumPy's answers, and every warmup record replayed by TensorFlow (one
    // process).
    let mut refs = Vec::new();
    for (case, (path, _, rows, weights)) in cases.iter().zip(&exported) {
        refs.push(reference_request(
            &tmp.path().join(case.name),
            weights,
            rows,
        ));
        refs.push(json!({"cmd": "replay_warmup", "dir": path}));
    }
    let refs = tf::run_script("export_reference.py", &Value::Array(refs));
    let refs = refs.as_array().unwrap();

    // TensorFlow's C++ loader, feeding graph tensors.
    let mut cc_requests = Vec::new();
    let mut v2_requests = Vec::new();
    for (case, (path, summary, rows, _)) in cases.iter().zip(&exported) {
        let examples: Vec<Vec<u8>> = rows
            .iter()
            .map(|r| serialized_example(case.feature, r))
            .collect();
        let examples = Tensor::from_strings("", &[BATCH as i64], &examples);
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let inputs = Tensor::from_f32("", &[BATCH as i64, case.input_width as i64], &flat);
        let ex_name = tensor_of(summary, "serving_default", "inputs", false);
        let in_name = tensor_of(summary, "predict", "inputs", false);
        let classifier = !summary.labels.is_empty();
        let (serving_fetches, predict_fetches) = if classifier {
            (
                vec![
                    tensor_of(summary, "serving_default", "classes", true),
                    tensor_of(summary, "serving_default", "scores", true),
                ],
                vec![
                    tensor_of(summary, "predict", "scores", true),
                    tensor_of(summary, "predict", "classes", true),
                ],
            )
        } else {
            (
                vec![tensor_of(summary, "serving_default", "outputs", true)],
                vec![tensor_of(summary, "predict", "outputs", true)],
            )
        };
        let sf: Vec<&str> = serving_fetches.iter().map(String::as_str).collect();
        let pf: Vec<&str> = predict_fetches.iter().map(String::as_str).collect();
        cc_requests.push(request::cc_load(
            path,
            &["serve"],
            &[
                request::cc_run(&[(&ex_name, &examples)], &sf),
                request::cc_run(&[(&in_name, &inputs)], &pf),
            ],
        ));
        v2_requests.push(request::load_v2(
            path,
            &["serve"],
            &[
                request::run("serving_default", &[("inputs", &examples)]),
                request::run("predict", &[("inputs", &inputs)]),
            ],
        ));
    }
    let cc = tf::cc_loader(&Value::Array(cc_requests));
    let v2 = tf::oracle(&Value::Array(v2_requests));

    for (i, (case, (_, summary, _, _))) in cases.iter().zip(&exported).enumerate() {
        let name = case.name;
        let reference = tf::ok(&refs[2 * i]);
        let replay = tf::ok(&refs[2 * i + 1]);
        assert_eq!(replay["records"], 6, "{name}: {replay}");
        assert_eq!(replay["errors"], json!([]), "{name}: {replay}");
        let kind = if summary.labels.is_empty() {
            "regress_log"
        } else {
            "classify_log"
        };
        assert_eq!(
            replay["kinds"],
            json!([
                kind,
                "predict_log",
                kind,
                "predict_log",
                kind,
                "predict_log"
            ]),
            "{name}"
        );

        let cc_serving = tf::run_outputs(&cc[i], 0);
        let cc_predict = tf::run_outputs(&cc[i], 1);
        let v2_serving = tf::run_outputs(&v2[i], 0);
        let v2_predict = tf::run_outputs(&v2[i], 1);
        if summary.labels.is_empty() {
            let expected = floats(&reference["outputs"]);
            let cc_out = output(
                &cc_serving,
                &tensor_of(summary, "serving_default", "outputs", true),
            );
            assert_eq!(cc_out.shape, [BATCH as i64], "{name}");
            assert_close(
                &cc_out.to_f32(),
                &expected,
                &format!("{name} regress (C++)"),
            );
            let cc_pred = output(&cc_predict, &tensor_of(summary, "predict", "outputs", true));
            assert_close(
                &cc_pred.to_f32(),
                &expected,
                &format!("{name} predict (C++)"),
            );
            assert_close(
                &output(&v2_serving, "outputs").to_f32(),
                &expected,
                &format!("{name} regress (tf.saved_model.load)"),
            );
            assert_close(
                &output(&v2_predict, "outputs").to_f32(),
                &expected,
                &format!("{name} predict (tf.saved_model.load)"),
            );
        } else {
            let k = summary.labels.len() as i64;
            let scores = floats(&reference["scores"]);
            let top_scores = floats(&reference["top_scores"]);
            let top_classes = strings(&reference["top_classes"]);
            let class_ids: Vec<i64> = floats(&reference["class_ids"])
                .iter()
                .map(|&v| v as i64)
                .collect();
            for (judge, serving, predict, classes_key, scores_key, p_scores_key, p_classes_key) in [
                (
                    "C++",
                    &cc_serving,
                    &cc_predict,
                    tensor_of(summary, "serving_default", "classes", true),
                    tensor_of(summary, "serving_default", "scores", true),
                    tensor_of(summary, "predict", "scores", true),
                    tensor_of(summary, "predict", "classes", true),
                ),
                (
                    "tf.saved_model.load",
                    &v2_serving,
                    &v2_predict,
                    "classes".to_owned(),
                    "scores".to_owned(),
                    "scores".to_owned(),
                    "classes".to_owned(),
                ),
            ] {
                let classes = output(serving, &classes_key);
                assert_eq!(classes.dtype, "DT_STRING", "{name} ({judge})");
                assert_eq!(classes.shape, [BATCH as i64, k], "{name} ({judge})");
                assert_eq!(
                    classes.to_strings(),
                    top_classes.as_slice(),
                    "{name} classify classes ({judge})"
                );
                let s = output(serving, &scores_key);
                assert_eq!(s.shape, [BATCH as i64, k], "{name} ({judge})");
                assert_close(
                    &s.to_f32(),
                    &top_scores,
                    &format!("{name} classify scores ({judge})"),
                );
                let p = output(predict, &p_scores_key);
                assert_eq!(p.shape, [BATCH as i64, k], "{name} ({judge})");
                assert_close(
                    &p.to_f32(),
                    &scores,
                    &format!("{name} predict scores ({judge})"),
                );
                let ids = output(predict, &p_classes_key);
                assert_eq!(ids.shape, [BATCH as i64], "{name} ({judge})");
                assert_eq!(ids.to_i64(), class_ids, "{name} predict classes ({judge})");
            }
        }
    }
}

#[test]
fn iris_accuracy_in_tensorflow_equals_the_reported_one() {
    let tmp = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    let first = xtask_export::train_and_export(tmp.path(), &mut report).unwrap();
    let text = String::from_utf8(report).unwrap();
    let line = format!(
        "held-out accuracy: {}/{} = {:.2}%",
        first.correct,
        first.held_out.len(),
        100.0 * first.accuracy()
    );
    assert!(text.contains(&line), "{text}");
    assert!(text.contains("signature_def['predict']"), "{text}");
    assert!(text.contains("tensorflow_model_server"), "{text}");
    assert!(
        first.correct >= 27,
        "iris held-out accuracy is {}/30",
        first.correct
    );
    assert_eq!(first.version, 1);
    // Running it again publishes version 2.
    let second = xtask_export::train_and_export(tmp.path(), &mut Vec::new()).unwrap();
    assert_eq!(second.version, 2);
    assert_eq!(second.path, tmp.path().join("iris/2"));
    assert_eq!(second.correct, first.correct);

    let iris = xtask_export::load_iris().unwrap();
    let rows: Vec<f32> = first
        .held_out
        .iter()
        .flat_map(|&r| iris.features[r])
        .collect();
    let n = first.held_out.len() as i64;
    let inputs = Tensor::from_f32("", &[n, 4], &rows);
    let examples: Vec<Vec<u8>> = first
        .held_out
        .iter()
        .map(|&r| serialized_example("x", &iris.features[r]))
        .collect();
    let examples = Tensor::from_strings("", &[n], &examples);

    // The C++ loader: predict's scores are in the order setosa, versicolor,
    // virginica, so their argmax is the species index.
    let cc = tf::cc_loader(&request::cc_load(
        &first.path,
        &["serve"],
        &[request::cc_run(
            &[("x:0", &inputs)],
            &["scores:0", "class_ids:0"],
        )],
    ));
    let cc = tf::run_outputs(&cc, 0);
    let ids = output(&cc, "class_ids:0").to_i64();
    let cc_correct = first
        .held_out
        .iter()
        .zip(&ids)
        .filter(|&(&r, &id)| id == iris.labels[r] as i64)
        .count();
    assert_eq!(cc_correct, first.correct, "C++ loader accuracy");
    let scores = output(&cc, "scores:0").to_f32();
    for (row, &id) in scores.chunks_exact(3).zip(&ids) {
        let best = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        assert_eq!(best as i64, id);
    }

    // tf.saved_model.load, classify on serialized tf.Examples: the top label
    // is the species name.
    let v2 = tf::oracle(&request::load_v2(
        &first.path,
        &["serve"],
        &[
            request::run("serving_default", &[("inputs", &examples)]),
            request::run("predict", &[("inputs", &inputs)]),
        ],
    ));
    let classify = tf::run_outputs(&v2, 0);
    let classes = output(&classify, "classes").to_strings().to_vec();
    assert_eq!(output(&classify, "classes").shape, [n, 3]);
    let top: Vec<&[u8]> = classes.chunks_exact(3).map(|c| c[0].as_slice()).collect();
    let v2_correct = first
        .held_out
        .iter()
        .zip(&top)
        .filter(|&(&r, label)| *label == iris.species[iris.labels[r]].as_bytes())
        .count();
    assert_eq!(
        v2_correct, first.correct,
        "tf.saved_model.load classify accuracy"
    );
    let predict = tf::run_outputs(&v2, 1);
    assert_eq!(output(&predict, "classes").to_i64(), ids);
}

#[test]
fn bad_input_is_refused_and_publishes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let prefix = dir.join("model");
    let mut w = savedmodel_checkpoint::BundleWriter::create(&prefix).unwrap();
    w.add_typed("b", &[3], &[0.0f32; 3]).unwrap();
    w.add_typed("w", &[4, 3], &[0.5f32; 12]).unwrap();
    w.finish().unwrap();
    let base = dir.join("base");
    std::fs::create_dir(&base).unwrap();
    let spec = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let head = "[model]\narchitecture = \"mlp\"\ntask = \"classifier\"\ninput_width = 4\n";
    let cases = [
        (
            spec("missing.toml", &format!("{head}[[layers]]\nkernel = \"kernel\"\nbias = \"b\"\nactivation = \"softmax\"\n")),
            prefix.clone(),
            base.clone(),
            format!("weights {}: no tensor 'kernel' (the kernel of layer 1); it has 'b', 'w'", prefix.display()),
        ),
        (
            spec("shape.toml", &format!("{head}layout = \"out_in\"\n[[layers]]\nkernel = \"w\"\nbias = \"b\"\nactivation = \"softmax\"\n")),
            prefix.clone(),
            base.clone(),
            "tensor 'w' (the kernel of layer 1) has shape [4, 3] but layer 1 takes 4 inputs, so layout \"out_in\" needs [units, 4]; it looks like [in, out]: set layout = \"in_out\"".to_owned(),
        ),
        (
            spec("bias.toml", &format!("{head}[[layers]]\nkernel = \"w\"\nbias = \"w\"\nactivation = \"softmax\"\n")),
            prefix.clone(),
            base.clone(),
            "tensor 'w' (the bias of layer 1) has shape [4, 3] but layer 1 has 3 units: expected [3]".to_owned(),
        ),
        (
            spec("activation.toml", &format!("{head}[[layers]]\nkernel = \"w\"\nbias = \"b\"\nactivation = \"gelu\"\n")),
            prefix.clone(),
            base.clone(),
            "layer 1: unknown activation \"gelu\": expected one of relu, relu6, sigmoid, tanh, softmax, none".to_owned(),
        ),
        (
            spec("good.toml", &format!("{head}[[layers]]\nkernel = \"w\"\nbias = \"b\"\nactivation = \"softmax\"\n")),
            prefix.clone(),
            {
                let file = dir.join("base_file");
                std::fs::write(&file, b"not a directory").unwrap();
                file
            },
            format!("base path {} is not a directory", dir.join("base_file").display()),
        ),
        (
            dir.join("good.toml"),
            dir.join("no_such_weights.safetensors"),
            base.clone(),
            format!("weights {}: ", dir.join("no_such_weights.safetensors").display()),
        ),
    ];
    for (spec, weights, target, expected) in &cases {
        let err = export_to_base(spec, weights, target, WarmupExamples::Generated(1)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(expected.as_str()),
            "{}: got {text:?}, expected it to contain {expected:?}",
            spec.display()
        );
    }
    assert_eq!(
        std::fs::read_dir(&base).unwrap().count(),
        0,
        "something was published"
    );
    assert_eq!(
        std::fs::read(dir.join("base_file")).unwrap(),
        b"not a directory"
    );
    // The good spec does export.
    let (version, path, _) =
        export_to_base(&dir.join("good.toml"), &prefix, &base, WarmupExamples::None).unwrap();
    assert_eq!((version, path), (1, base.join("1")));
}
