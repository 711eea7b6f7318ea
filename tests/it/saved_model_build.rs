//! SavedModels built by `savedmodel`, judged by TensorFlow 2.21.
//!
//! Six models are built with the library alone: the MNIST-style classifier
//! of TensorFlow Serving's example with a warmup file (binary and text
//! `saved_model`, fingerprint), half_plus_two with predict/classify/regress
//! signatures (text format only), a lookup model whose tables read
//! vocabulary assets (two files named `vocab.txt`), a model with two
//! MetaGraphs (`serve`; `serve, gpu`), a model with partitioned and
//! multi-shard variables of several dtypes, and a model exercising the
//! other typed ops. Each is loaded by TensorFlow's C++ loader (the one
//! TensorFlow Serving uses), by `tf.compat.v1.saved_model.loader.load` and
//! by `tf.saved_model.load`; every signature is run and compared with
//! values computed here in Rust (1e-6 relative for floats, exact otherwise),
//! and the warmup requests are replayed. TensorFlow then re-saves each model
//! through our saver subgraph: the checkpoint files it writes are
//! byte-identical to ours, we read them back, and the C++ loader loads and
//! runs the re-saved model again.
//!
//! TensorFlow is slow to import, so every request goes in one batch per
//! judge.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use savedmodel::ops::{ExampleSpec, VariableOptions};
use savedmodel::proto::tensorflow::serving::PredictionLog;
use savedmodel::proto::tensorflow::serving::{input, prediction_log::LogType};
use savedmodel::proto::tensorflow::{SavedModel, tensor_info};
use savedmodel::serving::read_tfrecords;
use savedmodel::{DType, Graph, Tensor};
use savedmodel::{
    ExampleBuilder, MetaGraphBuilder, SavedModelBuilder, SavedModelFormat, WarmupRequests,
};
use savedmodel_checkpoint::BundleReader;
use savedmodel_tests::tf::{self, cc_loader, oracle, request};
use serde_json::Value;

// ---------------------------------------------------------------------------
// Expected values and comparisons

/// An expected output: floats compared to 1e-6 relative, the rest exactly.
#[derive(Clone, Debug)]
enum Expected {
    F32(Vec<i64>, Vec<f32>),
    I64(Vec<i64>, Vec<i64>),
    Strings(Vec<i64>, Vec<Vec<u8>>),
}

fn strings(shape: &[i64], values: &[&str]) -> Expected {
    Expected::Strings(
        shape.to_vec(),
        values.iter().map(|s| s.as_bytes().to_vec()).collect(),
    )
}

fn check(what: &str, expected: &Expected, actual: &tf::Tensor) {
    match expected {
        Expected::F32(shape, values) => {
            assert_eq!(actual.dtype, "DT_FLOAT", "{what}");
            assert_eq!(&actual.shape, shape, "{what}");
            let got = actual.to_f32();
            assert_eq!(got.len(), values.len(), "{what}");
            for (i, (g, e)) in got.iter().zip(values).enumerate() {
                let tol = 1e-6 * g.abs().max(e.abs());
                assert!(
                    (g - e).abs() <= tol,
                    "{what}[{i}]: TensorFlow {g}, Rust {e}"
                );
            }
        }
        Expected::I64(shape, values) => {
            assert_eq!(
                (&actual.dtype[..], &actual.shape),
                ("DT_INT64", shape),
                "{what}"
            );
            assert_eq!(&actual.to_i64(), values, "{what}");
        }
        Expected::Strings(shape, values) => {
            assert_eq!(
                (&actual.dtype[..], &actual.shape),
                ("DT_STRING", shape),
                "{what}"
            );
            assert_eq!(actual.to_strings(), values.as_slice(), "{what}");
        }
    }
}

/// One signature run: inputs by alias, expected outputs by alias.
#[derive(Clone, Debug)]
struct Run {
    signature: String,
    inputs: Vec<(String, tf::Tensor)>,
    expected: BTreeMap<String, Expected>,
}

fn run(signature: &str, inputs: Vec<(&str, tf::Tensor)>, expected: Vec<(&str, Expected)>) -> Run {
    Run {
        signature: signature.to_owned(),
        inputs: inputs.into_iter().map(|(a, t)| (a.to_owned(), t)).collect(),
        expected: expected
            .into_iter()
            .map(|(a, e)| (a.to_owned(), e))
            .collect(),
    }
}

/// A built model, the tag set to load and what its signatures must answer.
struct Case {
    name: &'static str,
    dir: PathBuf,
    tags: Vec<&'static str>,
    runs: Vec<Run>,
    /// Checkpoint tensors and their expected values (what the re-saved
    /// checkpoint must hold).
    variables: Vec<(&'static str, Expected)>,
}

/// The `SavedModel` in `dir`, from `saved_model.pb` or else
/// `saved_model.pbtxt` (as TensorFlow reads it).
fn read_model(dir: &Path) -> SavedModel {
    match fs::read(dir.join("saved_model.pb")) {
        Ok(bytes) => prost::Message::decode(bytes.as_slice()).unwrap(),
        Err(_) => {
            let text = fs::read_to_string(dir.join("saved_model.pbtxt")).unwrap();
            savedmodel::proto::text_format::parse(&text).unwrap()
        }
    }
}

/// The tensor name behind `alias` of `signature`, from the written model.
fn tensor_name(
    model: &SavedModel,
    tags: &[&str],
    signature: &str,
    input: bool,
    alias: &str,
) -> String {
    let mut want: Vec<&str> = tags.to_vec();
    want.sort_unstable();
    let meta = model
        .meta_graphs
        .iter()
        .find(|m| {
            let mut t: Vec<&str> = m
                .meta_info_def
                .as_ref()
                .unwrap()
                .tags
                .iter()
                .map(String::as_str)
                .collect();
            t.sort_unstable();
            t == want
        })
        .unwrap_or_else(|| panic!("no meta graph {tags:?}"));
    let sig = &meta.signature_def[signature];
    let info = if input {
        &sig.inputs[alias]
    } else {
        &sig.outputs[alias]
    };
    match &info.encoding {
        Some(tensor_info::Encoding::Name(n)) => n.clone(),
        other => panic!("{signature}/{alias}: {other:?}"),
    }
}

/// The `cc_loader` request that runs every run of `case` by tensor names.
fn cc_request(case: &Case, dir: &Path) -> Value {
    let model = read_model(dir);
    let runs: Vec<Value> = case
        .runs
        .iter()
        .map(|r| {
            let feeds: Vec<(String, &tf::Tensor)> = r
                .inputs
                .iter()
                .map(|(a, t)| (tensor_name(&model, &case.tags, &r.signature, true, a), t))
                .collect();
            let fetches: Vec<String> = r
                .expected
                .keys()
                .map(|a| tensor_name(&model, &case.tags, &r.signature, false, a))
                .collect();
            let feeds_ref: Vec<(&str, &tf::Tensor)> =
                feeds.iter().map(|(n, t)| (n.as_str(), *t)).collect();
            let fetches_ref: Vec<&str> = fetches.iter().map(String::as_str).collect();
            request::cc_run(&feeds_ref, &fetches_ref)
        })
        .collect();
    request::cc_load(dir, &case.tags, &runs)
}

fn check_cc(case: &Case, dir: &Path, response: &Value) {
    let model = read_model(dir);
    for (i, r) in case.runs.iter().enumerate() {
        let outputs: BTreeMap<String, tf::Tensor> =
            tf::run_outputs(response, i).into_iter().collect();
        for (alias, expected) in &r.expected {
            let name = tensor_name(&model, &case.tags, &r.signature, false, alias);
            let what = format!("{} (C++ loader) {}/{alias}", case.name, r.signature);
            check(
                &what,
                expected,
                outputs
                    .get(&name)
                    .unwrap_or_else(|| panic!("{what}: not fetched")),
            );
        }
    }
}

fn python_runs(case: &Case) -> Vec<Value> {
    case.runs
        .iter()
        .map(|r| {
            let inputs: Vec<(&str, &tf::Tensor)> =
                r.inputs.iter().map(|(a, t)| (a.as_str(), t)).collect();
            request::run(&r.signature, &inputs)
        })
        .collect()
}

fn check_python(case: &Case, loader: &str, response: &Value) {
    for (i, r) in case.runs.iter().enumerate() {
        let outputs: BTreeMap<String, tf::Tensor> =
            tf::run_outputs(response, i).into_iter().collect();
        for (alias, expected) in &r.expected {
            let what = format!("{} ({loader}) {}/{alias}", case.name, r.signature);
            check(
                &what,
                expected,
                outputs
                    .get(alias)
                    .unwrap_or_else(|| panic!("{what}: no output")),
            );
        }
    }
}

fn to_tf(t: &Tensor) -> tf::Tensor {
    match t.string_values() {
        Some(s) => tf::Tensor::from_strings("", t.shape(), s),
        None => {
            tf::Tensor::from_bytes("", t.dtype().name(), t.shape(), t.bytes().unwrap().to_vec())
        }
    }
}

// ---------------------------------------------------------------------------
// The models

const MNIST_PIXELS: usize = 784;
const MNIST_CLASSES: usize = 10;

/// Weights that make every float32 product and partial sum exact (multiples
/// of 2^-10 times multiples of 2^-8, summing to well under 2^14): TensorFlow's
/// MatMul then gives exactly the logits computed here, whatever its
/// summation order.
fn mnist_weights() -> (Vec<f32>, Vec<f32>) {
    let w = (0..MNIST_PIXELS * MNIST_CLASSES)
        .map(|i| (((i * 37 + 11) % 129) as f32 - 64.0) / 1024.0)
        .collect();
    let b = (0..MNIST_CLASSES)
        .map(|j| (j as f32 * 13.0 - 50.0) / 1024.0)
        .collect();
    (w, b)
}

fn mnist_image(seed: usize) -> Vec<f32> {
    (0..MNIST_PIXELS)
        .map(|p| ((p * 7 + seed * 31) % 256) as f32 / 256.0)
        .collect()
}

/// softmax(x W + b) in f64, for one image.
fn mnist_scores(image: &[f32], w: &[f32], b: &[f32]) -> Vec<f64> {
    let logits: Vec<f64> = (0..MNIST_CLASSES)
        .map(|j| {
            f64::from(b[j])
                + (0..MNIST_PIXELS)
                    .map(|i| f64::from(image[i]) * f64::from(w[i * MNIST_CLASSES + j]))
                    .sum::<f64>()
        })
        .collect();
    let max = logits.iter().cloned().fold(f64::MIN, f64::max);
    let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    exp.iter().map(|e| e / total).collect()
}

/// The MNIST-style classifier of TensorFlow Serving's `mnist_saved_model.py`:
/// `serving_default` classifies serialized tf.Examples (feature `x`, 784
/// floats) into the top-10 class names (an index-to-string table) with
/// their scores; `predict_images` maps images to scores.
fn build_mnist(dir: &Path) -> Case {
    let (w, b) = mnist_weights();
    let mut g = Graph::new();
    let serialized = g.placeholder("tf_example", DType::String, [-1]).unwrap();
    let spec = ExampleSpec::new().dense("x", DType::Float, &[MNIST_PIXELS as i64]);
    let parsed = g.parse_example("ParseExample", &serialized, &spec).unwrap();
    let x = g.identity("x", parsed.dense("x").unwrap()).unwrap();
    let weights = g
        .variable("weights", Tensor::new(&[784, 10], &w).unwrap())
        .unwrap();
    let biases = g
        .variable("biases", Tensor::new(&[10], &b).unwrap())
        .unwrap();
    let logits = g.matmul("MatMul", &x, weights.value()).unwrap();
    let logits = g.add("add", &logits, biases.value()).unwrap();
    let y = g.softmax("y", &logits).unwrap();
    let top = g.top_k("TopKV2", &y, MNIST_CLASSES as i32).unwrap();
    let names: Vec<String> = (0..MNIST_CLASSES).map(|i| i.to_string()).collect();
    let table = g
        .index_to_string_table("index_to_string", &names, "UNK")
        .unwrap();
    let indices = g.cast("Cast", &top.indices, DType::Int64).unwrap();
    let classes = g
        .lookup("index_to_string_Lookup", &table, &indices)
        .unwrap();

    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.classify_signature(
        "serving_default",
        &serialized,
        Some(&classes),
        Some(&top.values),
    )
    .unwrap()
    .predict_signature("predict_images", &[("images", &x)], &[("scores", &y)])
    .unwrap();

    let images: Vec<Vec<f32>> = (0..3).map(mnist_image).collect();
    let examples: Vec<_> = images
        .iter()
        .map(|img| ExampleBuilder::new().floats("x", img).build())
        .collect();
    let mut warmup = WarmupRequests::new();
    warmup
        .classify("serving_default", examples.clone())
        .unwrap();
    warmup
        .predict(
            "predict_images",
            &[("images", &Tensor::new(&[1, 784], &images[0]).unwrap())],
        )
        .unwrap();

    let mut builder = SavedModelBuilder::new();
    builder
        .add_meta_graph(meta)
        .unwrap()
        .warmup(warmup)
        .fingerprint(true)
        .format(SavedModelFormat::BinaryAndText);
    builder.write_to(dir).unwrap();

    // Expected: scores per image, and the classes sorted by score.
    let scores: Vec<Vec<f64>> = images.iter().map(|img| mnist_scores(img, &w, &b)).collect();
    let mut top_scores = Vec::new();
    let mut top_classes = Vec::new();
    for s in &scores {
        let mut order: Vec<usize> = (0..MNIST_CLASSES).collect();
        order.sort_by(|&a, &c| s[c].partial_cmp(&s[a]).unwrap().then(a.cmp(&c)));
        top_scores.extend(order.iter().map(|&k| s[k] as f32));
        top_classes.extend(order.iter().map(|k| k.to_string().into_bytes()));
    }
    let flat: Vec<f32> = scores.iter().flatten().map(|&v| v as f32).collect();
    let serialized: Vec<Vec<u8>> = examples.iter().map(prost::Message::encode_to_vec).collect();
    let pixels: Vec<f32> = images.iter().flatten().copied().collect();
    Case {
        name: "mnist",
        dir: dir.to_owned(),
        tags: vec!["serve"],
        runs: vec![
            run(
                "serving_default",
                vec![("inputs", tf::Tensor::from_strings("", &[3], &serialized))],
                vec![
                    ("classes", Expected::Strings(vec![3, 10], top_classes)),
                    ("scores", Expected::F32(vec![3, 10], top_scores)),
                ],
            ),
            run(
                "predict_images",
                vec![("images", tf::Tensor::from_f32("", &[3, 784], &pixels))],
                vec![("scores", Expected::F32(vec![3, 10], flat))],
            ),
        ],
        variables: vec![
            ("weights", Expected::F32(vec![784, 10], w)),
            ("biases", Expected::F32(vec![10], b)),
        ],
    }
}

fn half_plus_two_example(x: f32) -> Vec<u8> {
    ExampleBuilder::new().floats("x", &[x]).serialize()
}

/// y = 0.5 x + 2 with predict, regress and classify signatures (TensorFlow
/// Serving's half_plus_two), classes from a constant index-to-string table.
fn build_half_plus_two(dir: &Path) -> Case {
    let mut g = Graph::new();
    let a = g.variable("a", Tensor::scalar(0.5f32)).unwrap();
    let b = g.variable("b", Tensor::scalar(2.0f32)).unwrap();
    let x = g.placeholder("x", DType::Float, [-1, 1]).unwrap();
    let ax = g.mul("Mul", a.value(), &x).unwrap();
    let y = g.add("y", &ax, b.value()).unwrap();
    let serialized = g.placeholder("tf_example", DType::String, [-1]).unwrap();
    let parsed = g
        .parse_example(
            "ParseExample",
            &serialized,
            &ExampleSpec::new().dense("x", DType::Float, &[1]),
        )
        .unwrap();
    let ax2 = g.mul("Mul", a.value(), parsed.dense("x").unwrap()).unwrap();
    let y_example = g.add("y_example", &ax2, b.value()).unwrap();
    let threshold = g.constant("threshold", Tensor::scalar(2.5f32)).unwrap();
    let positive = g.greater("Greater", &y_example, &threshold).unwrap();
    let index = g.cast("Cast", &positive, DType::Int64).unwrap();
    let table = g
        .index_to_string_table("labels", &["negative", "positive"], "UNK")
        .unwrap();
    let classes = g.lookup("classes", &table, &index).unwrap();

    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature("serving_default", &[("x", &x)], &[("y", &y)])
        .unwrap()
        .regress_signature("regress_x_to_y", &serialized, &y_example)
        .unwrap()
        .classify_signature(
            "classify_x_to_y",
            &serialized,
            Some(&classes),
            Some(&y_example),
        )
        .unwrap();
    // Text format only: TensorFlow reads saved_model.pbtxt when there is no .pb.
    let mut builder = SavedModelBuilder::new();
    builder
        .add_meta_graph(meta)
        .unwrap()
        .format(SavedModelFormat::Text);
    builder.write_to(dir).unwrap();
    assert!(!dir.join("saved_model.pb").exists());

    let xs = [1.0f32, 2.0, 5.0];
    let ys: Vec<f32> = xs.iter().map(|x| 0.5 * x + 2.0).collect();
    let examples: Vec<Vec<u8>> = xs.iter().map(|&x| half_plus_two_example(x)).collect();
    Case {
        name: "half_plus_two",
        dir: dir.to_owned(),
        tags: vec!["serve"],
        runs: vec![
            run(
                "serving_default",
                vec![("x", tf::Tensor::from_f32("", &[3, 1], &xs))],
                vec![("y", Expected::F32(vec![3, 1], ys.clone()))],
            ),
            run(
                "regress_x_to_y",
                vec![("inputs", tf::Tensor::from_strings("", &[3], &examples))],
                vec![("outputs", Expected::F32(vec![3, 1], ys.clone()))],
            ),
            run(
                "classify_x_to_y",
                vec![("inputs", tf::Tensor::from_strings("", &[3], &examples))],
                vec![
                    ("scores", Expected::F32(vec![3, 1], ys)),
                    (
                        "classes",
                        strings(&[3, 1], &["negative", "positive", "positive"]),
                    ),
                ],
            ),
        ],
        variables: vec![
            ("a", Expected::F32(vec![], vec![0.5])),
            ("b", Expected::F32(vec![], vec![2.0])),
        ],
    }
}

/// Tables initialized from vocabulary files shipped as assets: words to ids
/// from `vocab.txt`, and ids to labels from another file also named
/// `vocab.txt` (stored as `vocab.txt_1`, as TensorFlow's builder renames
/// it). The same words file is added twice (one copy stored).
fn build_vocabulary(dir: &Path, sources: &Path) -> Case {
    let words_dir = sources.join("words");
    let labels_dir = sources.join("labels");
    fs::create_dir_all(&words_dir).unwrap();
    fs::create_dir_all(&labels_dir).unwrap();
    fs::write(words_dir.join("vocab.txt"), "apple\nbanana\ncherry\n").unwrap();
    fs::write(labels_dir.join("vocab.txt"), "fruit\nberry\ndrupe\n").unwrap();

    let mut g = Graph::new();
    let words_asset = g.asset("words_path", words_dir.join("vocab.txt")).unwrap();
    let labels_asset = g
        .asset("labels_path", labels_dir.join("vocab.txt"))
        .unwrap();
    let words_again = g
        .asset("words_path_again", words_dir.join("vocab.txt"))
        .unwrap();
    let word_ids = g
        .string_to_index_table_from_asset("word_ids", &words_asset, -1)
        .unwrap();
    let labels = g
        .index_to_string_table_from_asset("labels", &labels_asset, "UNK")
        .unwrap();
    let words_back = g
        .index_to_string_table_from_asset("words_back", &words_again, "?")
        .unwrap();
    let input = g.placeholder("words", DType::String, [-1]).unwrap();
    let ids = g.lookup("ids", &word_ids, &input).unwrap();
    let label = g.lookup("label", &labels, &ids).unwrap();
    let index = g.placeholder("index", DType::Int64, [-1]).unwrap();
    let word = g.lookup("word", &words_back, &index).unwrap();

    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature(
        "serving_default",
        &[("words", &input)],
        &[("ids", &ids), ("label", &label)],
    )
    .unwrap()
    .predict_signature("lookup", &[("index", &index)], &[("word", &word)])
    .unwrap();
    let mut builder = SavedModelBuilder::new();
    builder.add_meta_graph(meta).unwrap();
    builder
        .asset_extra("notes/README.txt", "not part of the graph")
        .unwrap();
    builder.write_to(dir).unwrap();

    // The sources may go away: the model carries its own copies.
    fs::remove_dir_all(sources).unwrap();

    Case {
        name: "vocabulary",
        dir: dir.to_owned(),
        tags: vec!["serve"],
        runs: vec![
            run(
                "serving_default",
                vec![(
                    "words",
                    tf::Tensor::from_strings("", &[4], &["cherry", "apple", "kiwi", "banana"]),
                )],
                vec![
                    ("ids", Expected::I64(vec![4], vec![2, 0, -1, 1])),
                    ("label", strings(&[4], &["drupe", "fruit", "UNK", "berry"])),
                ],
            ),
            run(
                "lookup",
                vec![("index", tf::Tensor::from_i64("", &[3], &[1, 7, 0]))],
                vec![("word", strings(&[3], &["banana", "?", "apple"]))],
            ),
        ],
        variables: vec![],
    }
}

/// y = x W + b in two MetaGraphs, `serve` and `serve, gpu` (compute pinned
/// to the GPU; loaders place it on the CPU here), sharing one checkpoint.
fn build_two_meta_graphs(dir: &Path) -> (Case, Case) {
    let w = [1.0f32, 2.0, 3.0, 4.0];
    let b = [0.5f32, -0.5];
    let make = |device: Option<&str>| {
        let mut g = Graph::new();
        let wv = g.variable("w", Tensor::new(&[2, 2], &w).unwrap()).unwrap();
        let bv = g.variable("b", Tensor::new(&[2], &b).unwrap()).unwrap();
        let x = g.placeholder("x", DType::Float, [-1, 2]).unwrap();
        let y = match device {
            Some(d) => g.with_device(d, |g| {
                let m = g.matmul("MatMul", &x, wv.value())?;
                g.bias_add("y", &m, bv.value())
            }),
            None => {
                let m = g.matmul("MatMul", &x, wv.value()).unwrap();
                g.bias_add("y", &m, bv.value())
            }
        }
        .unwrap();
        (g, x, y)
    };
    let (cpu, x1, y1) = make(None);
    let (gpu, x2, y2) = make(Some("/device:GPU:0"));
    let mut serve = MetaGraphBuilder::new(cpu, &["serve"]);
    serve
        .predict_signature("serving_default", &[("x", &x1)], &[("y", &y1)])
        .unwrap();
    let mut serve_gpu = MetaGraphBuilder::new(gpu, &["serve", "gpu"]);
    serve_gpu
        .predict_signature("serving_default", &[("x", &x2)], &[("y", &y2)])
        .unwrap();
    let mut builder = SavedModelBuilder::new();
    builder
        .add_meta_graph(serve)
        .unwrap()
        .add_meta_graph(serve_gpu)
        .unwrap();
    builder.write_to(dir).unwrap();

    let xs = [1.0f32, 1.0, 2.0, -1.0];
    // [1, 1] and [2, -1] times [[1, 2], [3, 4]], plus [0.5, -0.5].
    let ys: Vec<f32> = (0..2)
        .flat_map(|r| (0..2).map(move |c| xs[2 * r] * w[c] + xs[2 * r + 1] * w[2 + c] + b[c]))
        .collect();
    assert_eq!(ys, [4.5, 5.5, -0.5, -0.5]);
    let runs = vec![run(
        "serving_default",
        vec![("x", tf::Tensor::from_f32("", &[2, 2], &xs))],
        vec![("y", Expected::F32(vec![2, 2], ys))],
    )];
    let variables = || {
        vec![
            ("w", Expected::F32(vec![2, 2], w.to_vec())),
            ("b", Expected::F32(vec![2], b.to_vec())),
        ]
    };
    (
        Case {
            name: "two_meta_graphs_serve",
            dir: dir.to_owned(),
            tags: vec!["serve"],
            runs: runs.clone(),
            variables: variables(),
        },
        Case {
            name: "two_meta_graphs_serve_gpu",
            dir: dir.to_owned(),
            tags: vec!["serve", "gpu"],
            runs,
            variables: variables(),
        },
    )
}

/// An embedding partitioned in two parts (slices of one checkpoint tensor)
/// in shard 0, dense weights and int64/string variables in shard 1:
/// `variables.data-00000-of-00002` and `-00001-of-00002`.
fn build_partitioned(dir: &Path) -> Case {
    let emb: Vec<f32> = (0..15).map(|v| v as f32 * 0.25).collect();
    let w = [1.0f32, 0.0, 0.0, 1.0, 1.0, -1.0];
    let b = [10.0f32, 20.0];
    let mut g = Graph::new();
    let embedding = g
        .partitioned_variable(
            "embedding",
            Tensor::new(&[5, 3], &emb).unwrap(),
            2,
            VariableOptions::shard(0),
        )
        .unwrap();
    let wv = g
        .variable_with(
            "dense/kernel",
            Tensor::new(&[3, 2], &w).unwrap(),
            VariableOptions::shard(1),
        )
        .unwrap();
    let bv = g
        .variable_with(
            "dense/bias",
            Tensor::new(&[2], &b).unwrap(),
            VariableOptions::shard(1),
        )
        .unwrap();
    let step = g
        .variable_with(
            "global_step",
            Tensor::scalar(42i64),
            VariableOptions::shard(1),
        )
        .unwrap();
    let names = g
        .variable_with(
            "class_names",
            Tensor::string_vector(&["left", "right"]),
            VariableOptions::shard(0),
        )
        .unwrap();
    let ids = g.placeholder("ids", DType::Int64, [-1]).unwrap();
    let rows = g
        .gather("embedding_lookup", embedding.value(), &ids, 0)
        .unwrap();
    let m = g.matmul("MatMul", &rows, wv.value()).unwrap();
    let out = g.bias_add("out", &m, bv.value()).unwrap();
    let step_out = g.identity("step", step.value()).unwrap();
    let names_out = g.identity("names", names.value()).unwrap();
    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature(
        "serving_default",
        &[("ids", &ids)],
        &[("out", &out), ("step", &step_out), ("names", &names_out)],
    )
    .unwrap();
    let mut builder = SavedModelBuilder::new();
    builder.add_meta_graph(meta).unwrap();
    builder.write_to(dir).unwrap();

    let pick = [4usize, 0, 2];
    let mut expected = Vec::new();
    for &r in &pick {
        let row = &emb[r * 3..r * 3 + 3];
        for j in 0..2 {
            expected.push(b[j] + (0..3).map(|k| row[k] * w[k * 2 + j]).sum::<f32>());
        }
    }
    Case {
        name: "partitioned",
        dir: dir.to_owned(),
        tags: vec!["serve"],
        runs: vec![run(
            "serving_default",
            vec![("ids", tf::Tensor::from_i64("", &[3], &[4, 0, 2]))],
            vec![
                ("out", Expected::F32(vec![3, 2], expected)),
                ("step", Expected::I64(vec![], vec![42])),
                ("names", strings(&[2], &["left", "right"])),
            ],
        )],
        variables: vec![
            ("embedding", Expected::F32(vec![5, 3], emb)),
            ("dense/kernel", Expected::F32(vec![3, 2], w.to_vec())),
            ("dense/bias", Expected::F32(vec![2], b.to_vec())),
            ("global_step", Expected::I64(vec![], vec![42])),
            ("class_names", strings(&[2], &["left", "right"])),
        ],
    }
}

/// One predict signature exercising the other typed constructors on a
/// `[-1, 4]` float input, each output computed here in f64.
fn build_many_ops(dir: &Path) -> Case {
    let mut g = Graph::new();
    let x = g.placeholder("x", DType::Float, [-1, 4]).unwrap();
    let two = g.constant("two", Tensor::scalar(2.0f32)).unwrap();
    let half = g.constant("half", Tensor::scalar(0.5f32)).unwrap();
    let relu = g.relu("relu", &x).unwrap();
    let doubled = g.mul("doubled", &x, &two).unwrap();
    let relu6 = g.relu6("relu6", &doubled).unwrap();
    let sigmoid = g.sigmoid("sigmoid", &x).unwrap();
    let tanh = g.tanh("tanh", &x).unwrap();
    let log_softmax = g.log_softmax("log_softmax", &x).unwrap();
    let argmax = g.arg_max("argmax", &x, 1).unwrap();
    let sub = g.sub("sub", &x, &half).unwrap();
    let div = g.div("div", &x, &two).unwrap();
    let max = g.maximum("max", &x, &half).unwrap();
    let min = g.minimum("min", &x, &half).unwrap();
    let reshaped = g.reshape("reshape", &x, &[-1, 2, 2]).unwrap();
    let summed = g.sum("sum", &reshaped, &[2], false).unwrap();
    let mean = g.mean("mean", &x, &[1], true).unwrap();
    let expanded = g.expand_dims("expand", &x, 1).unwrap();
    let squeezed = g.squeeze("squeeze", &expanded, &[1]).unwrap();
    let concat = g.concat("concat", &[x.clone(), squeezed], 1).unwrap();
    let picks = g.constant("picks", Tensor::vector(&[3i32, 0])).unwrap();
    let gathered = g.gather("gather", &concat, &picks, 1).unwrap();
    let shifted = g.add("shifted", &x, &two).unwrap();
    let log = g.log("log", &shifted).unwrap();
    let exp = g.exp("exp", &half).unwrap();
    let scaled = g.mul("scaled", &log, &exp).unwrap();
    let top = g.top_k("top", &x, 2).unwrap();
    let cast = g.cast("cast", &top.indices, DType::Int64).unwrap();
    let outputs = [
        ("relu", &relu),
        ("relu6", &relu6),
        ("sigmoid", &sigmoid),
        ("tanh", &tanh),
        ("log_softmax", &log_softmax),
        ("argmax", &argmax),
        ("sub", &sub),
        ("div", &div),
        ("max", &max),
        ("min", &min),
        ("sum", &summed),
        ("mean", &mean),
        ("gathered", &gathered),
        ("scaled", &scaled),
        ("top_values", &top.values),
        ("top_indices", &cast),
    ];
    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature("serving_default", &[("x", &x)], &outputs)
        .unwrap();
    let mut builder = SavedModelBuilder::new();
    builder.add_meta_graph(meta).unwrap();
    builder.write_to(dir).unwrap();

    let xs = [-1.5f32, 0.25, 3.5, 1.0, 2.0, -0.75, 0.5, 1.5];
    let map = |f: &dyn Fn(f64) -> f64| -> Vec<f32> {
        xs.iter().map(|&v| f(f64::from(v)) as f32).collect()
    };
    let rows: Vec<&[f32]> = xs.chunks(4).collect();
    let log_softmax_v: Vec<f32> = rows
        .iter()
        .flat_map(|r| {
            let m = r.iter().fold(f64::MIN, |a, &b| a.max(f64::from(b)));
            let lse = m + r
                .iter()
                .map(|&v| (f64::from(v) - m).exp())
                .sum::<f64>()
                .ln();
            r.iter().map(move |&v| (f64::from(v) - lse) as f32)
        })
        .collect();
    let argmax_v: Vec<i64> = rows
        .iter()
        .map(|r| (0..4).fold(0, |best, i| if r[i] > r[best] { i } else { best }) as i64)
        .collect();
    let sum_v: Vec<f32> = xs.chunks(2).map(|p| p[0] + p[1]).collect();
    let mean_v: Vec<f32> = rows.iter().map(|r| r.iter().sum::<f32>() / 4.0).collect();
    let gathered_v: Vec<f32> = rows.iter().flat_map(|r| [r[3], r[0]]).collect();
    let mut top_v = Vec::new();
    let mut top_i = Vec::new();
    for r in &rows {
        let mut order: Vec<usize> = (0..4).collect();
        order.sort_by(|&a, &b| r[b].partial_cmp(&r[a]).unwrap().then(a.cmp(&b)));
        top_v.extend(order[..2].iter().map(|&i| r[i]));
        top_i.extend(order[..2].iter().map(|&i| i as i64));
    }
    let f = |v: Vec<f32>, shape: &[i64]| Expected::F32(shape.to_vec(), v);
    Case {
        name: "many_ops",
        dir: dir.to_owned(),
        tags: vec!["serve"],
        runs: vec![run(
            "serving_default",
            vec![("x", tf::Tensor::from_f32("", &[2, 4], &xs))],
            vec![
                ("relu", f(map(&|v| v.max(0.0)), &[2, 4])),
                ("relu6", f(map(&|v| (2.0 * v).clamp(0.0, 6.0)), &[2, 4])),
                ("sigmoid", f(map(&|v| 1.0 / (1.0 + (-v).exp())), &[2, 4])),
                ("tanh", f(map(&f64::tanh), &[2, 4])),
                ("log_softmax", f(log_softmax_v, &[2, 4])),
                ("argmax", Expected::I64(vec![2], argmax_v)),
                ("sub", f(map(&|v| v - 0.5), &[2, 4])),
                ("div", f(map(&|v| v / 2.0), &[2, 4])),
                ("max", f(map(&|v| v.max(0.5)), &[2, 4])),
                ("min", f(map(&|v| v.min(0.5)), &[2, 4])),
                ("sum", f(sum_v, &[2, 2])),
                ("mean", f(mean_v, &[2, 1])),
                ("gathered", f(gathered_v, &[2, 2])),
                (
                    "scaled",
                    f(map(&|v| (v + 2.0).ln() * 0.5f64.exp()), &[2, 4]),
                ),
                ("top_values", f(top_v, &[2, 2])),
                ("top_indices", Expected::I64(vec![2, 2], top_i)),
            ],
        )],
        variables: vec![],
    }
}

/// Checks the variables of the checkpoint at `prefix` with our reader.
fn check_checkpoint(case: &Case, prefix: &Path) {
    let reader = BundleReader::open(prefix).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    for (name, expected) in &case.variables {
        let view = reader
            .tensor(name)
            .unwrap_or_else(|e| panic!("{}: {name}: {e}", case.name));
        let actual = match view.strings() {
            Some(s) => tf::Tensor::from_strings(name, view.shape(), s),
            None => tf::Tensor::from_bytes(
                name,
                view.dtype().name(),
                view.shape(),
                view.bytes().unwrap().to_vec(),
            ),
        };
        check(
            &format!("{} checkpoint {}", case.name, prefix.display()),
            expected,
            &actual,
        );
    }
}

/// Replays the warmup file of `dir` the way TensorFlow Serving does (each
/// request run against its signature), as `cc_loader` runs.
fn warmup_runs(dir: &Path) -> (Vec<Value>, Vec<(usize, usize)>) {
    let model = read_model(dir);
    let bytes = fs::read(dir.join("assets.extra/tf_serving_warmup_requests")).unwrap();
    let records = read_tfrecords(&bytes).unwrap();
    let mut runs = Vec::new();
    let mut shapes = Vec::new();
    for record in records {
        let log: PredictionLog = prost::Message::decode(record).unwrap();
        match log.log_type.unwrap() {
            LogType::ClassifyLog(c) => {
                let request = c.request.unwrap();
                let sig = request.model_spec.unwrap().signature_name;
                let Some(input::Kind::ExampleList(list)) = request.input.unwrap().kind else {
                    panic!("expected an example list");
                };
                let serialized: Vec<Vec<u8>> = list
                    .examples
                    .iter()
                    .map(prost::Message::encode_to_vec)
                    .collect();
                let feed = tf::Tensor::from_strings("", &[serialized.len() as i64], &serialized);
                let input = tensor_name(&model, &["serve"], &sig, true, "inputs");
                let classes = tensor_name(&model, &["serve"], &sig, false, "classes");
                let scores = tensor_name(&model, &["serve"], &sig, false, "scores");
                runs.push(request::cc_run(&[(&input, &feed)], &[&classes, &scores]));
                shapes.push((serialized.len(), MNIST_CLASSES));
            }
            LogType::PredictLog(p) => {
                let request = p.request.unwrap();
                let sig = request.model_spec.unwrap().signature_name;
                let feeds: Vec<(String, tf::Tensor)> = request
                    .inputs
                    .iter()
                    .map(|(alias, proto)| {
                        (
                            tensor_name(&model, &["serve"], &sig, true, alias),
                            to_tf(&Tensor::from_proto(proto).unwrap()),
                        )
                    })
                    .collect();
                let feeds_ref: Vec<(&str, &tf::Tensor)> =
                    feeds.iter().map(|(n, t)| (n.as_str(), t)).collect();
                let out = tensor_name(&model, &["serve"], &sig, false, "scores");
                runs.push(request::cc_run(&feeds_ref, &[&out]));
                shapes.push((1, MNIST_CLASSES));
            }
            other => panic!("unexpected warmup log {other:?}"),
        }
    }
    (runs, shapes)
}

#[test]
fn built_models_load_run_and_resave_in_tensorflow() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mnist = build_mnist(&root.join("mnist/1"));
    let half = build_half_plus_two(&root.join("half_plus_two/1"));
    let vocab = build_vocabulary(&root.join("vocabulary/1"), &root.join("vocab_sources"));
    let (serve, serve_gpu) = build_two_meta_graphs(&root.join("two_meta_graphs/1"));
    let partitioned = build_partitioned(&root.join("partitioned/1"));
    let ops = build_many_ops(&root.join("many_ops/1"));
    let cases = [mnist, half, vocab, serve, serve_gpu, partitioned, ops];

    // What we wrote, before asking TensorFlow.
    let files = |dir: &Path| -> Vec<String> {
        savedmodel_tests::paths::files_under(dir)
            .iter()
            .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(
        files(&cases[0].dir),
        [
            "assets.extra/tf_serving_warmup_requests",
            "fingerprint.pb",
            "saved_model.pb",
            "saved_model.pbtxt",
            "variables/variables.data-00000-of-00001",
            "variables/variables.index",
        ]
    );
    assert_eq!(
        files(&cases[2].dir),
        [
            "assets/vocab.txt",
            "assets/vocab.txt_1",
            "assets.extra/notes/README.txt",
            "saved_model.pb"
        ]
    );
    assert!(cases[2].dir.join("variables").is_dir());
    assert_eq!(
        files(&cases[5].dir),
        [
            "saved_model.pb",
            "variables/variables.data-00000-of-00002",
            "variables/variables.data-00001-of-00002",
            "variables/variables.index",
        ]
    );
    // No staging directory is left beside the exports.
    for case in &cases {
        let parent = case.dir.parent().unwrap();
        let names: Vec<_> = fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("1")], "{}", case.name);
        check_checkpoint_if_any(case);
        // Our validator finds nothing wrong with what our builder wrote.
        let options = savedmodel::validate::ValidateOptions::default();
        let report = savedmodel::validate::validate(&case.dir, &options);
        assert!(
            !report.has_errors(),
            "{}: {:?}",
            case.name,
            report.errors().collect::<Vec<_>>()
        );
    }
    // `saved_model_cli show --all` and our `show --all` agree on each model.
    let mut dirs: Vec<PathBuf> = cases.iter().map(|c| c.dir.clone()).collect();
    dirs.dedup();
    crate::saved_model_read::assert_show_all_matches_saved_model_cli(&dirs);
    // The fingerprint is TensorFlow's hash of what is on disk.
    let fp = savedmodel::fingerprint_def(&cases[0].dir).unwrap();
    let written: savedmodel::proto::tensorflow::FingerprintDef = prost::Message::decode(
        fs::read(cases[0].dir.join("fingerprint.pb"))
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    assert_eq!(
        (
            written.saved_model_checksum,
            written.graph_def_program_hash,
            written.signature_def_hash,
            written.checkpoint_hash
        ),
        (
            fp.saved_model_checksum,
            fp.graph_def_program_hash,
            fp.signature_def_hash,
            fp.checkpoint_hash
        )
    );
    assert_eq!(
        written.saved_model_checksum,
        savedmodel::fingerprint64(&fs::read(cases[0].dir.join("saved_model.pb")).unwrap()),
        "saved_model.pb is written in canonical (deterministic) form"
    );
    assert_eq!(
        written.saved_object_graph_hash, 0,
        "a TF1 model: Python must not take it for TF2"
    );

    // 1. TensorFlow's C++ loader, every signature, plus the warmup replay.
    let (warmup, warmup_shapes) = warmup_runs(&cases[0].dir);
    let mut cc_requests: Vec<Value> = cases.iter().map(|c| cc_request(c, &c.dir)).collect();
    cc_requests.push(request::cc_load(&cases[0].dir, &["serve"], &warmup));
    let cc = cc_loader(&Value::Array(cc_requests));
    for (i, case) in cases.iter().enumerate() {
        check_cc(case, &case.dir, &cc[i]);
    }
    let replay = &cc[cases.len()];
    for (i, (n, c)) in warmup_shapes.iter().enumerate() {
        for (_, t) in tf::run_outputs(replay, i) {
            assert_eq!(t.shape, vec![*n as i64, *c as i64], "warmup request {i}");
        }
    }

    // 2. Both Python loaders, and TensorFlow re-saving each model.
    let resaved: Vec<PathBuf> = cases
        .iter()
        .map(|c| root.join("resaved").join(c.name))
        .collect();
    let mut requests = Vec::new();
    for (case, out) in cases.iter().zip(&resaved) {
        requests.push(request::load_v1(&case.dir, &case.tags, &python_runs(case)));
        requests.push(request::load_v2(&case.dir, &case.tags, &python_runs(case)));
        requests.push(
            serde_json::json!({"cmd": "resave", "dir": case.dir, "out": out, "tags": case.tags}),
        );
    }
    // And a TF2 model written by `tf.saved_model.save`, whose fingerprint.pb
    // our fingerprint must reproduce.
    let tf2 = root.join("tf2_model");
    requests.push(serde_json::json!({"cmd": "write_tf2_model", "dir": tf2}));
    let answers = oracle(&Value::Array(requests));
    tf::ok(&answers[3 * cases.len()]);
    assert_fingerprint_matches(&tf2, None);
    for (i, case) in cases.iter().enumerate() {
        check_python(case, "tf.saved_model.load", &answers[3 * i + 1]);
        // GPU-pinned nodes load with soft placement (the oracle's TF1
        // session sets it, as TensorFlow Serving does).
        check_python(
            case,
            "tf.compat.v1.saved_model.loader.load",
            &answers[3 * i],
        );
        tf::ok(&answers[3 * i + 2]);
    }
    let resaved_cases: Vec<(&Case, &PathBuf)> = cases.iter().zip(&resaved).collect();

    // 3. What TensorFlow re-saved, through our saver subgraph: read it back,
    //    then load it again in C++ and rerun every signature.
    for &(case, out) in &resaved_cases {
        let model = read_model(out);
        let meta = &model.meta_graphs[0];
        let mut tags: Vec<&str> = meta
            .meta_info_def
            .as_ref()
            .unwrap()
            .tags
            .iter()
            .map(String::as_str)
            .collect();
        tags.sort_unstable();
        let mut want = case.tags.clone();
        want.sort_unstable();
        assert_eq!(tags, want, "{}", case.name);
        for r in &case.runs {
            assert!(
                meta.signature_def.contains_key(&r.signature),
                "{}: {}",
                case.name,
                r.signature
            );
        }
        if !case.variables.is_empty() {
            check_checkpoint(case, &out.join("variables/variables"));
            // SaveV2 through our saver subgraph wrote exactly our files.
            for file in fs::read_dir(case.dir.join("variables")).unwrap() {
                let name = file.unwrap().file_name();
                let ours = fs::read(case.dir.join("variables").join(&name)).unwrap();
                let theirs = fs::read(out.join("variables").join(&name))
                    .unwrap_or_else(|e| panic!("{}: TensorFlow wrote no {name:?}: {e}", case.name));
                assert!(
                    ours == theirs,
                    "{}: {name:?} differs from what TensorFlow saved",
                    case.name
                );
            }
        }
    }
    let again: Vec<Value> = resaved_cases
        .iter()
        .map(|(c, out)| cc_request(c, out))
        .collect();
    let again = cc_loader(&Value::Array(again));
    for (i, (case, out)) in resaved_cases.iter().enumerate() {
        check_cc(case, out, &again[i]);
    }
}

fn check_checkpoint_if_any(case: &Case) {
    if !case.variables.is_empty() {
        check_checkpoint(case, &case.dir.join("variables/variables"));
    }
}

#[test]
fn the_builder_refuses_non_empty_directories_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("stray"), "x").unwrap();
    let mut g = Graph::new();
    let x = g.placeholder("x", DType::Float, [-1]).unwrap();
    let y = g.identity("y", &x).unwrap();
    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature("serving_default", &[("x", &x)], &[("y", &y)])
        .unwrap();
    let mut builder = SavedModelBuilder::new();
    builder.add_meta_graph(meta).unwrap();
    let err = builder.write_to(&dir).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    assert!(builder.write_into_empty_dir(&dir).is_err());
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);

    // An empty directory is fine, and so is a missing one.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    builder.write_to(&empty).unwrap();
    builder.write_to(tmp.path().join("new/1")).unwrap();
    assert!(tmp.path().join("new/1/saved_model.pb").is_file());

    // A failure while writing (here: an asset that vanished) leaves nothing.
    let asset = tmp.path().join("vocab.txt");
    fs::write(&asset, "a\n").unwrap();
    let mut g = Graph::new();
    let a = g.asset("vocab", &asset).unwrap();
    let t = g.string_to_index_table_from_asset("t", &a, -1).unwrap();
    let w = g.placeholder("w", DType::String, [-1]).unwrap();
    let id = g.lookup("id", &t, &w).unwrap();
    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature("serving_default", &[("w", &w)], &[("id", &id)])
        .unwrap();
    let mut builder = SavedModelBuilder::new();
    builder.add_meta_graph(meta).unwrap();
    fs::remove_file(&asset).unwrap();
    assert!(builder.write_to(tmp.path().join("broken/1")).is_err());
    assert_eq!(fs::read_dir(tmp.path().join("broken")).unwrap().count(), 0);
    let staged = tmp.path().join("staged");
    fs::create_dir(&staged).unwrap();
    assert!(builder.write_into_empty_dir(&staged).is_err());
    assert_eq!(fs::read_dir(&staged).unwrap().count(), 0);
}

#[test]
fn meta_graphs_and_signatures_are_checked_before_writing() {
    let mut g = Graph::new();
    let v = g.variable("v", Tensor::scalar(1.0f32)).unwrap();
    let x = g.placeholder("x", DType::Float, [-1]).unwrap();
    let y = g.mul("y", &x, v.value()).unwrap();
    let mut meta = MetaGraphBuilder::new(g.clone(), &["serve"]);
    // A tensor of another graph, a reserved key, a wrong dtype.
    let other = Graph::new().placeholder("zz", DType::Float, [-1]).unwrap();
    assert!(
        meta.predict_signature("s", &[("x", &other)], &[("y", &y)])
            .is_err()
    );
    assert!(
        meta.predict_signature("__saved_model_init_op", &[("x", &x)], &[("y", &y)])
            .is_err()
    );
    let mut wrong = savedmodel::predict_signature("w", &[("x", &x)], &[("y", &y)]).unwrap();
    wrong.outputs.get_mut("y").unwrap().dtype = DType::Int64.as_i32();
    assert!(meta.signature("w", wrong).is_err());
    meta.predict_signature("serving_default", &[("x", &x)], &[("y", &y)])
        .unwrap();

    let mut builder = SavedModelBuilder::new();
    builder.add_meta_graph(meta.clone()).unwrap();
    // The same tag set twice (in another order) is ambiguous for loaders.
    let err = builder
        .add_meta_graph(MetaGraphBuilder::new(Graph::new(), &["serve"]))
        .unwrap_err();
    assert!(err.to_string().contains("already"), "{err}");
    // A variable with the same name but another value cannot share the checkpoint.
    let mut g2 = Graph::new();
    g2.variable("v", Tensor::scalar(2.0f32)).unwrap();
    let err = builder
        .add_meta_graph(MetaGraphBuilder::new(g2, &["serve", "gpu"]))
        .unwrap_err();
    assert!(err.to_string().contains("differs"), "{err}");

    // Warmup requests must fit the signatures.
    let mut warmup = WarmupRequests::new();
    warmup
        .predict(
            "serving_default",
            &[("x", &Tensor::new(&[2], &[1i64, 2]).unwrap())],
        )
        .unwrap();
    builder.warmup(warmup);
    let tmp = tempfile::tempdir().unwrap();
    let err = builder.write_to(tmp.path().join("1")).unwrap_err();
    assert!(err.to_string().contains("warmup record 0"), "{err}");
    let mut warmup = WarmupRequests::new();
    warmup
        .classify(
            "serving_default",
            vec![ExampleBuilder::new().floats("x", &[1.0]).build()],
        )
        .unwrap();
    builder.warmup(warmup);
    assert!(
        builder.write_to(tmp.path().join("1")).is_err(),
        "a predict signature cannot classify"
    );
    let mut warmup = WarmupRequests::new();
    warmup
        .predict(
            "serving_default",
            &[("x", &Tensor::new(&[2], &[1.0f32, 2.0]).unwrap())],
        )
        .unwrap();
    builder.warmup(warmup);
    builder.write_to(tmp.path().join("1")).unwrap();
    assert!(
        tmp.path()
            .join("1/assets.extra/tf_serving_warmup_requests")
            .is_file()
    );
    // assets.extra paths stay inside assets.extra/.
    assert!(builder.asset_extra("../x", "x").is_err());
    assert!(builder.asset_extra("/abs", "x").is_err());
    assert!(
        builder
            .asset_extra("tf_serving_warmup_requests", "x")
            .is_err()
    );
}

/// `fingerprint_def(dir)` reproduces the hashes of the `fingerprint.pb`
/// TensorFlow wrote in `dir`; `saved_model_checksum` too when `checksum`
/// (`None` for a file written by another TensorFlow version, see below).
fn assert_fingerprint_matches(dir: &Path, checksum: Option<u64>) {
    let stored: savedmodel::proto::tensorflow::FingerprintDef =
        prost::Message::decode(fs::read(dir.join("fingerprint.pb")).unwrap().as_slice()).unwrap();
    let ours = savedmodel::fingerprint_def(dir).unwrap();
    assert_eq!(
        savedmodel::singleprint(&ours),
        savedmodel::singleprint(&stored),
        "{}",
        dir.display()
    );
    assert_ne!(
        stored.saved_object_graph_hash, 0,
        "a TF2 model has an object graph"
    );
    assert_eq!(
        ours.saved_model_checksum,
        checksum.unwrap_or(stored.saved_model_checksum),
        "{}",
        dir.display()
    );
}

/// The fixture was written by TensorFlow 2.14, whose `saved_model_checksum`
/// hashed a serialization that differs from 2.21's; the other four hashes
/// are stable. TensorFlow 2.21's own `CreateFingerprintDef` on this
/// directory (`pywrap_saved_model.fingerprinting`) gives the checksum
/// below, which is ours.
#[test]
fn fingerprints_match_a_tensorflow_written_fixture() {
    let dir = savedmodel_tests::paths::serving_fixtures()
        .join("saved_model_half_plus_two_tf2_cpu/00000123");
    assert_fingerprint_matches(&dir, Some(12_534_565_651_167_025_280));
}
