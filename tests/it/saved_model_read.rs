//! Reading, showing and validating SavedModels, judged by TensorFlow 2.21:
//!
//! - the embedded op registry matches the installed TensorFlow;
//! - every SavedModel under the shared fixtures, and the TF1 and TF2 models
//!   TensorFlow writes here, opens, resolves every signature tensor, and
//!   validates without errors;
//! - `savedmodel::show` prints what `saved_model_cli show` prints, line for
//!   line (the op set compared as a set, the TF2 "Concrete Functions" section
//!   left out);
//! - deliberately broken copies of a fixture (one fault each) are reported
//!   with the right message.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use savedmodel::SavedModel;
use savedmodel::proto::tensorflow::{
    self, AttrValue, MetaGraphDef, NodeDef, TensorInfo, attr_value, collection_def,
    tensor_info::Encoding,
};
use savedmodel::reader::{ModelFileFormat, tensor_names};
use savedmodel::show;
use savedmodel::validate::{Report, ValidateOptions, validate};
use savedmodel_checkpoint::crc;
use savedmodel_tests::paths::serving_fixtures;
use savedmodel_tests::tf::{self, oracle, request};
use serde_json::Value;

// ---------------------------------------------------------------------------
// helpers

/// Every SavedModel directory under the fixtures (a directory holding
/// `saved_model.pb` or `.pbtxt`), sorted.
fn fixture_models() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = savedmodel_tests::paths::files_under(&serving_fixtures())
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n == "saved_model.pb" || n == "saved_model.pbtxt")
        })
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    out.sort();
    out.dedup();
    assert!(out.len() >= 12, "only {} fixture models found", out.len());
    out
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Asserts that `report` has an error whose location contains `location`
/// and whose message contains every one of `words`.
fn assert_error(report: &Report, location: &str, words: &[&str]) {
    let found = report
        .errors()
        .any(|f| f.location.contains(location) && words.iter().all(|w| f.message.contains(w)));
    assert!(
        found,
        "no error at {location:?} mentioning {words:?}; the report:\n{report}"
    );
}

/// Compares our `show` text with `saved_model_cli show`'s: line for line,
/// except the op-set line (compared as a set) and everything from
/// "Concrete Functions:" on.
fn assert_same_show(what: &str, ours: &str, theirs: &str) {
    let theirs = before_concrete_functions(theirs);
    let ours = before_concrete_functions(ours);
    let ours_lines: Vec<&str> = ours.lines().collect();
    let their_lines: Vec<&str> = theirs.lines().collect();
    assert_eq!(
        ours_lines.len(),
        their_lines.len(),
        "{what}: line counts differ\nours:\n{ours}\ntheirs:\n{theirs}"
    );
    for (i, (a, b)) in ours_lines.iter().zip(&their_lines).enumerate() {
        let marker = "contains the following ops: ";
        if let (Some(pa), Some(pb)) = (a.find(marker), b.find(marker)) {
            assert_eq!(a[..pa], b[..pb], "{what}: line {i}");
            assert_eq!(
                op_set(&a[pa + marker.len()..]),
                op_set(&b[pb + marker.len()..]),
                "{what}: op sets differ"
            );
        } else {
            assert_eq!(
                a, b,
                "{what}: line {i} differs\nours:\n{ours}\ntheirs:\n{theirs}"
            );
        }
    }
}

/// Our rebuilt "Concrete Functions" section equals saved_model_cli's (which
/// it produces by loading the model into TensorFlow).
fn assert_same_concrete_functions(what: &str, model: &SavedModel, theirs: &str) {
    let their_section = theirs.find("\nConcrete Functions:").map(|at| &theirs[at..]);
    assert_eq!(
        show::concrete_functions(model).as_deref(),
        their_section,
        "{what}: concrete functions differ"
    );
}

/// `text` up to the TensorFlow 2 "Concrete Functions" section.
fn before_concrete_functions(text: &str) -> &str {
    match text.find("\nConcrete Functions:") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// The elements of a Python set repr of op names.
fn op_set(text: &str) -> BTreeSet<String> {
    if text == "set()" {
        return BTreeSet::new();
    }
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not a set repr: {text}"));
    inner
        .split(", ")
        .map(|s| s.trim_matches('\'').to_owned())
        .collect()
}

/// Writes the TF1-style and TF2-style reference models with TensorFlow.
fn tensorflow_written_models(tmp: &Path) -> Vec<PathBuf> {
    let tf1 = tmp.join("tf1");
    let tf2 = tmp.join("tf2");
    let resaved = tmp.join("resaved");
    let responses = oracle(&serde_json::json!([
        {"cmd": "write_tf1_model", "dir": tf1},
        {"cmd": "write_tf2_model", "dir": tf2},
        {"cmd": "resave", "dir": serving_fixtures().join("saved_model_half_plus_two_cpu/00000123"),
         "out": resaved, "tags": ["serve"]},
    ]));
    for response in responses.as_array().unwrap() {
        tf::ok(response);
    }
    vec![tf1, tf2, resaved]
}

// ---------------------------------------------------------------------------
// the op registry

#[test]
fn op_registry_is_fresh() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ops.binpb");
    let script = tf::script("op_registry.py");
    let run = Command::new(tf::python())
        .arg(&script)
        .arg(&out)
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .env("TF_ENABLE_ONEDNN_OPTS", "0")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    let fresh = fs::read(&out).unwrap();
    assert!(
        fresh == savedmodel::op_registry::TENSORFLOW_OP_LIST,
        "crates/saved_model/src/op_registry.binpb is stale ({} bytes, TensorFlow gives {}): run \
         `cargo xtask op-registry`",
        savedmodel::op_registry::TENSORFLOW_OP_LIST.len(),
        fresh.len()
    );

    let output = Command::new(tf::python())
        .arg(&script)
        .arg("--versions")
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .env("TF_ENABLE_ONEDNN_OPTS", "0")
        .output()
        .unwrap();
    assert!(output.status.success());
    let versions: Value = serde_json::from_slice(&output.stdout).unwrap();
    use savedmodel::op_registry as ops;
    assert_eq!(versions["version"], ops::TENSORFLOW_VERSION);
    assert_eq!(versions["graph_def_version"], ops::GRAPH_DEF_VERSION);
    assert_eq!(
        versions["graph_def_version_min_consumer"],
        ops::GRAPH_DEF_VERSION_MIN_CONSUMER
    );
    assert_eq!(
        versions["graph_def_version_min_producer"],
        ops::GRAPH_DEF_VERSION_MIN_PRODUCER
    );
}

// ---------------------------------------------------------------------------
// good models open, resolve and validate

/// Opens `dir`, resolves every signature tensor, and validates it; returns
/// the report. Where a signature declares another data type than its tensor
/// has, the report must say so.
fn open_and_validate(dir: &Path) -> Report {
    let model = SavedModel::open(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert_eq!(model.format(), ModelFileFormat::Binary);
    assert!(!model.proto().meta_graphs.is_empty());
    let mut mismatches = Vec::new();
    for meta_graph in model.meta_graphs() {
        assert_eq!(
            model.meta_graph(meta_graph.tags()).unwrap().index(),
            meta_graph.index()
        );
        for signature in meta_graph.signatures() {
            if signature.key() == "__saved_model_init_op" {
                continue;
            }
            let def = signature.def();
            let inputs = def.inputs.iter().map(|(a, i)| ("input", a, i));
            let outputs = def.outputs.iter().map(|(a, i)| ("output", a, i));
            for (kind, alias, info) in inputs.chain(outputs) {
                for name in tensor_names(info) {
                    let tensor = meta_graph
                        .resolve(name)
                        .unwrap_or_else(|e| panic!("{} {}: {e}", dir.display(), signature.key()));
                    let actual = tensor
                        .dtype
                        .unwrap_or_else(|| panic!("{} {name}: no data type", dir.display()));
                    if actual % 100 != info.dtype % 100 {
                        mismatches
                            .push(format!("signature '{}' {kind} '{alias}'", signature.key()));
                    }
                }
            }
        }
        // Assets resolve (one fixture lacks its unused asset file; the
        // validator tells).
        for asset in meta_graph.assets().unwrap() {
            meta_graph.resolve(&asset.tensor_name).unwrap();
        }
        if let Some(init) = meta_graph.init_op().unwrap() {
            assert!(meta_graph.node(init.name).is_some(), "{}", init.name);
        }
    }
    // The variables open through the checkpoint crate (the half_plus_two
    // models hold a, b and c or a2/c2; the matrix model has none).
    match model.open_variables().unwrap() {
        Some(bundle) => assert!(bundle.entries().count() > 0, "{}", dir.display()),
        None => assert!(!model.variables_index().exists()),
    }
    let report = validate(dir, &ValidateOptions::default());
    for location in mismatches {
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.location == location && f.message.starts_with("declared ")),
            "{}: the data type mismatch at {location} is not reported:\n{report}",
            dir.display()
        );
    }
    report
}

#[test]
fn every_fixture_opens_and_validates_without_errors() {
    for dir in fixture_models() {
        let report = open_and_validate(&dir);
        assert!(!report.has_errors(), "{}:\n{report}", dir.display());
        // Only the GPU fixtures earn a warning: their nodes are pinned to a GPU.
        let name = dir.parent().unwrap().file_name().unwrap().to_string_lossy();
        let warnings: Vec<String> = report.warnings().map(ToString::to_string).collect();
        if name.contains("gpu") {
            assert!(
                warnings.iter().any(|w| w.contains("pinned to")),
                "{}: {warnings:?}",
                dir.display()
            );
        }
        for warning in &warnings {
            assert!(
                warning.contains("pinned to")
                    || warning.contains("Predict API")
                    || warning.contains("the Classify and Regress APIs work")
                    || warning.contains("so the model still loads"),
                "{}: unexpected warning {warning}",
                dir.display()
            );
        }
    }
}

#[test]
fn the_session_bundle_fixture_is_refused() {
    let dir = serving_fixtures().join("bad_half_plus_two/00000123");
    let report = validate(&dir, &ValidateOptions::default());
    assert_error(&report, "export.meta", &["session bundle"]);
    assert_error(
        &report,
        "saved_model.pb",
        &["no saved_model.pb or saved_model.pbtxt"],
    );
    assert!(matches!(
        SavedModel::open(&dir),
        Err(savedmodel::Error::NotASavedModel { .. })
    ));
}

#[test]
fn tensorflow_written_models_open_show_and_validate() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tensorflow_written_models(tmp.path());
    let mut requests = Vec::new();
    for dir in &models {
        assert_clean(&open_and_validate(dir));
        requests.push(request::saved_model_cli_show(dir, &["--all"]));
    }
    let responses = oracle(&Value::Array(requests));
    for (dir, response) in models.iter().zip(responses.as_array().unwrap()) {
        let theirs = tf::ok(response)["stdout"].as_str().unwrap();
        let model = SavedModel::open(dir).unwrap();
        assert_same_show(&dir.display().to_string(), &show::all(&model), theirs);
        assert_same_concrete_functions(&dir.display().to_string(), &model, theirs);
    }
    // The TF2 model has an object graph, and saved_model_cli lists its
    // concrete functions.
    let tf2 = SavedModel::open(&models[1]).unwrap();
    assert!(show::has_object_graph(&tf2));
    let tf1 = SavedModel::open(&models[0]).unwrap();
    assert!(!show::has_object_graph(&tf1));
}

// ---------------------------------------------------------------------------
// show == saved_model_cli show

/// Asserts that `savedmodel::show::all` prints what `saved_model_cli show
/// --all` prints for each of `dirs` (one TensorFlow process for all of
/// them): line for line up to the "Concrete Functions" section, the op-set
/// line compared as a set. For the other test modules' SavedModels.
#[allow(dead_code)]
pub(crate) fn assert_show_all_matches_saved_model_cli(dirs: &[PathBuf]) {
    let requests: Vec<Value> = dirs
        .iter()
        .map(|dir| request::saved_model_cli_show(dir, &["--all"]))
        .collect();
    let responses = oracle(&Value::Array(requests));
    for (dir, response) in dirs.iter().zip(responses.as_array().unwrap()) {
        let theirs = tf::ok(response)["stdout"].as_str().unwrap();
        let model = SavedModel::open(dir).unwrap();
        assert_same_show(&dir.display().to_string(), &show::all(&model), theirs);
    }
}

#[test]
fn show_matches_saved_model_cli_on_every_fixture() {
    let models = fixture_models();
    let mut requests: Vec<Value> = models
        .iter()
        .map(|dir| request::saved_model_cli_show(dir, &["--all"]))
        .collect();
    // The other modes, on a model with several signatures and a TF2 one.
    let cpu = serving_fixtures().join("saved_model_half_plus_two_cpu/00000123");
    let tf2 = serving_fixtures().join("saved_model_half_plus_two_tf2_cpu/00000123");
    let modes: Vec<(PathBuf, Vec<&str>)> = vec![
        (cpu.clone(), vec![]),
        (cpu.clone(), vec!["--tag_set", "serve"]),
        (
            cpu.clone(),
            vec!["--tag_set", "serve", "--signature_def", "classify_x_to_y"],
        ),
        (cpu.clone(), vec!["--tag_set", "serve", "--list_ops"]),
        (
            tf2.clone(),
            vec!["--tag_set", "serve", "--signature_def", "serving_default"],
        ),
    ];
    for (dir, args) in &modes {
        requests.push(request::saved_model_cli_show(dir, args));
    }
    let responses = oracle(&Value::Array(requests));
    let responses = responses.as_array().unwrap();
    for (dir, response) in models.iter().zip(responses) {
        let theirs = tf::ok(response)["stdout"].as_str().unwrap();
        let model = SavedModel::open(dir).unwrap();
        assert_same_show(&dir.display().to_string(), &show::all(&model), theirs);
        assert_same_concrete_functions(&dir.display().to_string(), &model, theirs);
    }
    for ((dir, args), response) in modes.iter().zip(&responses[models.len()..]) {
        let theirs = tf::ok(response)["stdout"].as_str().unwrap();
        let model = SavedModel::open(dir).unwrap();
        let ours = match args.as_slice() {
            [] => show::tag_sets(&model),
            ["--tag_set", tags] => show::signature_keys(&model.meta_graph(&[*tags]).unwrap()),
            ["--tag_set", tags, "--signature_def", key] => {
                show::signature(&model.meta_graph(&[*tags]).unwrap(), key).unwrap()
            }
            ["--tag_set", tags, "--list_ops"] => {
                let meta_graph = model.meta_graph(&[*tags]).unwrap();
                show::ops(&meta_graph) + &show::signature_keys(&meta_graph)
            }
            other => panic!("no such mode {other:?}"),
        };
        assert_same_show(&format!("{} {args:?}", dir.display()), &ours, theirs);
    }
}

#[test]
fn show_reproduces_unusual_signatures() {
    // Several MetaGraphs (sorted by tag list), a sparse tensor info (empty
    // name), an empty method name, an unknown-rank and a scalar shape, a
    // text-format SavedModel.
    let tmp = tempfile::tempdir().unwrap();
    let source = serving_fixtures().join("saved_model_half_plus_two_cpu/00000123");
    let mut proto = SavedModel::open(&source).unwrap().into_proto();
    let mut second = proto.meta_graphs[0].clone();
    second.meta_info_def.as_mut().unwrap().tags = vec!["serve".into(), "gpu".into()];
    let signature = second.signature_def.get_mut("serving_default").unwrap();
    signature.method_name.clear();
    signature.inputs.insert(
        "sparse".into(),
        TensorInfo {
            dtype: tensorflow::DataType::DtInt64 as i32,
            tensor_shape: None,
            encoding: Some(Encoding::CooSparse(tensorflow::tensor_info::CooSparse {
                values_tensor_name: "a:0".into(),
                indices_tensor_name: "b:0".into(),
                dense_shape_tensor_name: "c:0".into(),
            })),
        },
    );
    proto.meta_graphs.insert(0, second);
    let pbtxt_dir = tmp.path().join("pbtxt");
    fs::create_dir_all(&pbtxt_dir).unwrap();
    fs::write(
        pbtxt_dir.join("saved_model.pbtxt"),
        savedmodel::proto::text_format::print(&proto).unwrap(),
    )
    .unwrap();
    let pb_dir = tmp.path().join("pb");
    fs::create_dir_all(&pb_dir).unwrap();
    fs::write(pb_dir.join("saved_model.pb"), proto.encode_to_vec()).unwrap();

    let responses = oracle(&serde_json::json!([
        request::saved_model_cli_show(&pbtxt_dir, &["--all"]),
        request::saved_model_cli_show(&pb_dir, &[]),
        request::saved_model_cli_show(
            &pb_dir,
            &[
                "--tag_set",
                "gpu,serve",
                "--signature_def",
                "serving_default"
            ]
        ),
    ]));
    let responses = responses.as_array().unwrap();
    let text_model = SavedModel::open(&pbtxt_dir).unwrap();
    assert_eq!(text_model.format(), ModelFileFormat::Text);
    assert_same_show(
        "pbtxt --all",
        &show::all(&text_model),
        tf::ok(&responses[0])["stdout"].as_str().unwrap(),
    );
    let model = SavedModel::open(&pb_dir).unwrap();
    assert_same_show(
        "tag sets",
        &show::tag_sets(&model),
        tf::ok(&responses[1])["stdout"].as_str().unwrap(),
    );
    let meta_graph = model.meta_graph(&["gpu", "serve"]).unwrap();
    assert_same_show(
        "sparse signature",
        &show::signature(&meta_graph, "serving_default").unwrap(),
        tf::ok(&responses[2])["stdout"].as_str().unwrap(),
    );
}

// ---------------------------------------------------------------------------
// broken models, one fault each

/// A copy of `saved_model_half_plus_two_cpu` (TF1 graph, sharded saver,
/// asset `foo.txt`, main op) in `tmp/name`.
fn half_plus_two_copy(tmp: &Path, name: &str) -> PathBuf {
    let dir = tmp.join(name);
    copy_dir(
        &serving_fixtures().join("saved_model_half_plus_two_cpu/00000123"),
        &dir,
    );
    dir
}

/// Rewrites `dir/saved_model.pb` through `edit` of its first MetaGraph.
fn edit_meta_graph(dir: &Path, edit: impl FnOnce(&mut MetaGraphDef)) {
    let path = dir.join("saved_model.pb");
    let mut proto = tensorflow::SavedModel::decode(fs::read(&path).unwrap().as_slice()).unwrap();
    edit(&mut proto.meta_graphs[0]);
    fs::write(&path, proto.encode_to_vec()).unwrap();
}

fn node_mut<'a>(meta_graph: &'a mut MetaGraphDef, name: &str) -> &'a mut NodeDef {
    meta_graph
        .graph_def
        .as_mut()
        .unwrap()
        .node
        .iter_mut()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node {name}"))
}

fn nodes(meta_graph: &mut MetaGraphDef) -> &mut Vec<NodeDef> {
    &mut meta_graph.graph_def.as_mut().unwrap().node
}

/// Asserts that `report` has no errors and no warnings but the one every
/// copy of `saved_model_half_plus_two_cpu` earns (its `regress_x2_to_y3`
/// signature takes floats, so only Predict can use it).
fn assert_clean(report: &Report) {
    for finding in &report.findings {
        assert!(
            finding.severity == savedmodel::validate::Severity::Warning
                && finding.location == "signature 'regress_x2_to_y3'"
                && finding.message.contains("only the Predict API"),
            "unexpected finding {finding}\nin:\n{report}"
        );
    }
}

fn check(dir: &Path) -> Report {
    let report = validate(dir, &ValidateOptions::default());
    assert!(report.has_errors(), "{} validated cleanly", dir.display());
    report
}

/// Writes a TFRecord file of `records`.
fn tfrecord_file(path: &Path, records: &[Vec<u8>]) {
    let mut out = Vec::new();
    for data in records {
        let len = (data.len() as u64).to_le_bytes();
        out.extend_from_slice(&len);
        out.extend_from_slice(&crc::mask(crc::crc32c(&len)).to_le_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(&crc::mask(crc::crc32c(data)).to_le_bytes());
    }
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, out).unwrap();
}

fn predict_log(signature: &str, inputs: &[&str]) -> Vec<u8> {
    use savedmodel::proto::tensorflow::serving::{
        ModelSpec, PredictLog, PredictRequest, PredictionLog, prediction_log::LogType,
    };
    let request = PredictRequest {
        model_spec: Some(ModelSpec {
            name: "m".into(),
            signature_name: signature.into(),
            ..Default::default()
        }),
        // A DT_FLOAT [1, 1], what half_plus_two's inputs take (TensorFlow
        // Serving cannot parse a tensor without a data type).
        inputs: inputs
            .iter()
            .map(|alias| {
                let tensor = tensorflow::TensorProto {
                    dtype: tensorflow::DataType::DtFloat as i32,
                    tensor_shape: Some(tensorflow::TensorShapeProto {
                        dim: vec![
                            tensorflow::tensor_shape_proto::Dim {
                                size: 1,
                                name: String::new()
                            };
                            2
                        ],
                        unknown_rank: false,
                    }),
                    float_val: vec![1.0],
                    ..Default::default()
                };
                ((*alias).to_owned(), tensor)
            })
            .collect(),
        ..Default::default()
    };
    PredictionLog {
        log_metadata: None,
        log_type: Some(LogType::PredictLog(PredictLog {
            request: Some(request),
            response: None,
        })),
    }
    .encode_to_vec()
}

#[test]
fn broken_files_are_reported() {
    let tmp = tempfile::tempdir().unwrap();

    let dir = half_plus_two_copy(tmp.path(), "garbage_pb");
    fs::write(dir.join("saved_model.pb"), b"\xff\xff\xff garbage").unwrap();
    assert_error(
        &check(&dir),
        "saved_model.pb",
        &[
            "cannot parse",
            "saved_model.pb",
            "binary tensorflow.SavedModel",
        ],
    );

    let dir = half_plus_two_copy(tmp.path(), "no_pb");
    fs::remove_file(dir.join("saved_model.pb")).unwrap();
    assert_error(
        &check(&dir),
        "saved_model.pb",
        &["no saved_model.pb or saved_model.pbtxt"],
    );

    let dir = half_plus_two_copy(tmp.path(), "wrong_tags");
    let report = validate(
        &dir,
        &ValidateOptions::default().with_tags(["serve", "gpu"]),
    );
    assert_error(
        &report,
        "saved_model.pb",
        &["no meta graph with tag set { gpu, serve }", "{ serve }"],
    );

    let dir = half_plus_two_copy(tmp.path(), "no_index");
    fs::remove_file(dir.join("variables/variables.index")).unwrap();
    assert_error(
        &check(&dir),
        "variables/variables.index",
        &["missing", "restore"],
    );

    let dir = half_plus_two_copy(tmp.path(), "garbage_index");
    fs::write(dir.join("variables/variables.index"), b"not a table").unwrap();
    assert_error(
        &check(&dir),
        "variables/variables.index",
        &["variables.index"],
    );

    let dir = half_plus_two_copy(tmp.path(), "flipped_data");
    let data = dir.join("variables/variables.data-00000-of-00001");
    let mut bytes = fs::read(&data).unwrap();
    bytes[0] ^= 0xff;
    fs::write(&data, bytes).unwrap();
    assert_error(&check(&dir), "variables.data-00000-of-00001", &["checksum"]);

    let dir = half_plus_two_copy(tmp.path(), "no_data");
    fs::remove_file(dir.join("variables/variables.data-00000-of-00001")).unwrap();
    assert_error(
        &check(&dir),
        "variables.data-00000-of-00001",
        &["variables.data-00000-of-00001"],
    );

    let dir = half_plus_two_copy(tmp.path(), "bad_config");
    fs::create_dir_all(dir.join("assets.extra")).unwrap();
    fs::write(
        dir.join("assets.extra/saved_model_config.pb"),
        b"\xff\xff\xff",
    )
    .unwrap();
    assert_error(
        &check(&dir),
        "assets.extra/saved_model_config.pb",
        &["SavedModelConfig"],
    );
}

#[test]
fn broken_signatures_are_reported() {
    let tmp = tempfile::tempdir().unwrap();

    let dir = half_plus_two_copy(tmp.path(), "missing_node");
    edit_meta_graph(&dir, |m| {
        let sig = m.signature_def.get_mut("serving_default").unwrap();
        sig.outputs.get_mut("y").unwrap().encoding = Some(Encoding::Name("nope:0".into()));
    });
    assert_error(
        &check(&dir),
        "signature 'serving_default' output 'y'",
        &["'nope:0'", "node 'nope'", "not in the graph"],
    );

    let dir = half_plus_two_copy(tmp.path(), "missing_output");
    edit_meta_graph(&dir, |m| {
        let sig = m.signature_def.get_mut("serving_default").unwrap();
        sig.outputs.get_mut("y").unwrap().encoding = Some(Encoding::Name("y:1".into()));
    });
    assert_error(
        &check(&dir),
        "signature 'serving_default' output 'y'",
        &["output 1 of node 'y'", "has 1 output(s)"],
    );

    let dir = half_plus_two_copy(tmp.path(), "wrong_dtype");
    edit_meta_graph(&dir, |m| {
        let sig = m.signature_def.get_mut("serving_default").unwrap();
        sig.inputs.get_mut("x").unwrap().dtype = tensorflow::DataType::DtString as i32;
    });
    assert_error(
        &check(&dir),
        "signature 'serving_default' input 'x'",
        &["declared DT_STRING", "'x:0'", "is DT_FLOAT"],
    );

    let dir = half_plus_two_copy(tmp.path(), "classify_two_inputs");
    edit_meta_graph(&dir, |m| {
        let sig = m.signature_def.get_mut("classify_x_to_y").unwrap();
        let extra = sig.inputs["inputs"].clone();
        sig.inputs.insert("more".into(), extra);
    });
    assert_error(
        &check(&dir),
        "signature 'classify_x_to_y'",
        &["exactly one input, 'inputs'", "'inputs', 'more'"],
    );

    let dir = half_plus_two_copy(tmp.path(), "classify_no_outputs");
    edit_meta_graph(&dir, |m| {
        let sig = m.signature_def.get_mut("classify_x_to_y").unwrap();
        let scores = sig.outputs.remove("scores").unwrap();
        sig.outputs.insert("probabilities".into(), scores);
    });
    assert_error(
        &check(&dir),
        "signature 'classify_x_to_y'",
        &["'classes' or 'scores'"],
    );

    let dir = half_plus_two_copy(tmp.path(), "regress_two_outputs");
    edit_meta_graph(&dir, |m| {
        let sig = m.signature_def.get_mut("regress_x_to_y").unwrap();
        let extra = sig.outputs["outputs"].clone();
        sig.outputs.insert("extra".into(), extra);
    });
    assert_error(
        &check(&dir),
        "signature 'regress_x_to_y'",
        &["exactly one output, 'outputs'"],
    );
}

#[test]
fn broken_savers_and_init_ops_are_reported() {
    let tmp = tempfile::tempdir().unwrap();

    let dir = half_plus_two_copy(tmp.path(), "missing_restore_op");
    edit_meta_graph(&dir, |m| {
        m.saver_def.as_mut().unwrap().restore_op_name = "save/nothing_here".into();
    });
    assert_error(
        &check(&dir),
        "saver",
        &["restore op 'save/nothing_here'", "not a node"],
    );

    let dir = half_plus_two_copy(tmp.path(), "renamed_checkpoint_key");
    edit_meta_graph(&dir, |m| {
        // Make the saver restore a tensor the checkpoint does not have.
        let node = node_mut(m, "save/RestoreV2/tensor_names");
        if let Some(attr_value::Value::Tensor(t)) =
            node.attr.get_mut("value").unwrap().value.as_mut()
        {
            t.string_val[0] = b"not_saved".to_vec();
        }
    });
    assert_error(&check(&dir), "restore 'not_saved'", &["no such tensor"]);

    // TF2: the restore runs inside a library function.
    let dir = tmp.path().join("tf2_renamed_key");
    copy_dir(
        &serving_fixtures().join("saved_model_half_plus_two_tf2_cpu/00000123"),
        &dir,
    );
    assert!(!validate(&dir, &ValidateOptions::default()).has_errors());
    edit_meta_graph(&dir, |m| {
        let library = m.graph_def.as_mut().unwrap().library.as_mut().unwrap();
        let node = library
            .function
            .iter_mut()
            .flat_map(|f| f.node_def.iter_mut())
            .find(|n| n.name == "RestoreV2/tensor_names")
            .unwrap();
        if let Some(attr_value::Value::Tensor(t)) =
            node.attr.get_mut("value").unwrap().value.as_mut()
        {
            t.string_val[1] = b"b/.ATTRIBUTES/RENAMED".to_vec();
        }
    });
    assert_error(
        &check(&dir),
        "restore 'b/.ATTRIBUTES/RENAMED'",
        &["no such tensor"],
    );

    let dir = half_plus_two_copy(tmp.path(), "restore_dtype");
    edit_meta_graph(&dir, |m| {
        let node = node_mut(m, "save/RestoreV2");
        if let Some(attr_value::Value::List(list)) =
            node.attr.get_mut("dtypes").unwrap().value.as_mut()
        {
            list.r#type[0] = tensorflow::DataType::DtDouble as i32;
        }
    });
    assert_error(
        &check(&dir),
        "restore '",
        &["restores it as DT_DOUBLE", "holds DT_FLOAT"],
    );

    let dir = half_plus_two_copy(tmp.path(), "variable_shape");
    edit_meta_graph(&dir, |m| {
        let node = node_mut(m, "a");
        node.attr.insert(
            "shape".into(),
            AttrValue {
                value: Some(attr_value::Value::Shape(tensorflow::TensorShapeProto {
                    dim: vec![tensorflow::tensor_shape_proto::Dim {
                        size: 3,
                        name: String::new(),
                    }],
                    unknown_rank: false,
                })),
            },
        );
    });
    assert_error(
        &check(&dir),
        "restore 'a'",
        &["variable 'a' is declared with shape [3]", "holds []"],
    );

    let dir = half_plus_two_copy(tmp.path(), "missing_init_target");
    edit_meta_graph(&dir, |m| {
        m.collection_def.insert(
            "saved_model_main_op".into(),
            tensorflow::CollectionDef {
                kind: Some(collection_def::Kind::NodeList(collection_def::NodeList {
                    value: vec!["no_such_init".into()],
                })),
            },
        );
    });
    assert_error(
        &check(&dir),
        "init op",
        &["'no_such_init' is not a node", "PruneForTargets"],
    );

    let dir = half_plus_two_copy(tmp.path(), "two_main_ops");
    edit_meta_graph(&dir, |m| {
        let Some(collection_def::Kind::NodeList(list)) = m
            .collection_def
            .get_mut("saved_model_main_op")
            .unwrap()
            .kind
            .as_mut()
        else {
            panic!("main op collection is not a node list")
        };
        let first = list.value[0].clone();
        list.value.push(first);
    });
    assert_error(&check(&dir), "init op", &["exactly one main op, found 2"]);

    let dir = half_plus_two_copy(tmp.path(), "init_signature_without_output");
    edit_meta_graph(&dir, |m| {
        m.signature_def.insert(
            "__saved_model_init_op".into(),
            tensorflow::SignatureDef::default(),
        );
    });
    assert_error(
        &check(&dir),
        "init op",
        &["no output '__saved_model_init_op'"],
    );
}

fn assets_any(m: &mut MetaGraphDef) -> &mut Vec<savedmodel::proto::prost_types::Any> {
    let Some(collection_def::Kind::AnyList(list)) = m
        .collection_def
        .get_mut("saved_model_assets")
        .unwrap()
        .kind
        .as_mut()
    else {
        panic!("assets collection is not an any list")
    };
    &mut list.value
}

#[test]
fn broken_assets_are_reported() {
    let tmp = tempfile::tempdir().unwrap();

    // A vocabulary the main op's table initializer reads (TF1 model written
    // by TensorFlow): missing, it fails the load.
    let tf1 = tmp.path().join("tf1");
    tf::ok(&oracle(
        &serde_json::json!({"cmd": "write_tf1_model", "dir": tf1}),
    ));
    assert_clean(&validate(&tf1, &ValidateOptions::default()));
    fs::remove_file(tf1.join("assets/vocab.txt")).unwrap();
    assert_error(
        &check(&tf1),
        "'vocab.txt'",
        &["assets/vocab.txt does not exist", "No such file"],
    );

    // An asset nothing reads (half_plus_two's foo.txt only lands in a
    // variable): missing, the model still loads.
    let dir = half_plus_two_copy(tmp.path(), "missing_unread_asset");
    fs::remove_file(dir.join("assets/foo.txt")).unwrap();
    let report = validate(&dir, &ValidateOptions::default());
    assert!(!report.has_errors(), "{report}");
    assert!(
        report
            .warnings()
            .any(|w| w.message.contains("assets/foo.txt does not exist")
                && w.message.contains("still loads")),
        "{report}"
    );

    let dir = half_plus_two_copy(tmp.path(), "asset_twice");
    edit_meta_graph(&dir, |m| {
        let list = assets_any(m);
        let first = list[0].clone();
        list.push(first);
    });
    assert_error(
        &check(&dir),
        "saved_model_assets",
        &["listed as an asset 2 times", "fed more than once"],
    );

    let dir = half_plus_two_copy(tmp.path(), "asset_escapes");
    edit_meta_graph(&dir, |m| {
        let list = assets_any(m);
        let mut def = tensorflow::AssetFileDef::decode(list[0].value.as_slice()).unwrap();
        def.filename = "../../etc/passwd".into();
        list[0].value = def.encode_to_vec();
    });
    assert_error(
        &check(&dir),
        "saved_model_assets",
        &["'../../etc/passwd' escapes assets/"],
    );

    let dir = half_plus_two_copy(tmp.path(), "asset_wrong_any");
    edit_meta_graph(&dir, |m| {
        assets_any(m)[0].type_url = "type.googleapis.com/tensorflow.NodeDef".into();
    });
    assert_error(
        &check(&dir),
        "assets",
        &["tensorflow.NodeDef", "expected tensorflow.AssetFileDef"],
    );
}

#[test]
fn broken_warmup_files_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let warmup = "assets.extra/tf_serving_warmup_requests";

    // A good one first: predict requests on existing signatures.
    let dir = half_plus_two_copy(tmp.path(), "warmup_ok");
    tfrecord_file(
        &dir.join(warmup),
        &[
            predict_log("serving_default", &["x"]),
            predict_log("", &["x"]),
        ],
    );
    assert_clean(&validate(&dir, &ValidateOptions::default()));

    let dir = half_plus_two_copy(tmp.path(), "warmup_corrupt");
    tfrecord_file(&dir.join(warmup), &[predict_log("serving_default", &["x"])]);
    let path = dir.join(warmup);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 6;
    bytes[last] ^= 0x55;
    fs::write(&path, bytes).unwrap();
    assert_error(&check(&dir), warmup, &["record 0", "checksum mismatch"]);

    let dir = half_plus_two_copy(tmp.path(), "warmup_too_long");
    let records: Vec<Vec<u8>> = (0..1001)
        .map(|_| predict_log("serving_default", &["x"]))
        .collect();
    tfrecord_file(&dir.join(warmup), &records);
    assert_error(&check(&dir), warmup, &["1001 records", "beyond 1000"]);

    let dir = half_plus_two_copy(tmp.path(), "warmup_forbidden");
    use savedmodel::proto::tensorflow::serving::{
        PredictionLog, SessionRunLog, prediction_log::LogType,
    };
    let session_run = PredictionLog {
        log_metadata: None,
        log_type: Some(LogType::SessionRunLog(SessionRunLog::default())),
    }
    .encode_to_vec();
    tfrecord_file(
        &dir.join(warmup),
        &[predict_log("serving_default", &["x"]), session_run],
    );
    assert_error(
        &check(&dir),
        "record 1",
        &["session_run_log", "Unimplemented"],
    );

    let dir = half_plus_two_copy(tmp.path(), "warmup_unknown_signature");
    tfrecord_file(&dir.join(warmup), &[predict_log("nope", &["x"])]);
    assert_error(&check(&dir), "record 0", &["signature 'nope'"]);

    let dir = half_plus_two_copy(tmp.path(), "warmup_unknown_input");
    tfrecord_file(
        &dir.join(warmup),
        &[predict_log("serving_default", &["x", "z"])],
    );
    assert_error(&check(&dir), "record 0", &["feeds 'z'"]);

    let dir = half_plus_two_copy(tmp.path(), "warmup_not_a_log");
    tfrecord_file(&dir.join(warmup), &[b"\xff\xff\xff\xff".to_vec()]);
    assert_error(
        &check(&dir),
        "record 0",
        &["not a tensorflow.serving.PredictionLog"],
    );
}

#[test]
fn broken_graphs_are_reported() {
    let tmp = tempfile::tempdir().unwrap();

    let dir = half_plus_two_copy(tmp.path(), "unknown_op");
    edit_meta_graph(&dir, |m| node_mut(m, "Add").op = "FancyAdd".into());
    assert_error(
        &check(&dir),
        "node 'Add'",
        &[
            "op type 'FancyAdd' is not registered",
            "Op type not registered 'FancyAdd'",
        ],
    );

    let dir = half_plus_two_copy(tmp.path(), "unknown_attr");
    edit_meta_graph(&dir, |m| {
        node_mut(m, "Add").attr.insert(
            "fancy".into(),
            AttrValue {
                value: Some(attr_value::Value::B(true)),
            },
        );
    });
    assert_error(
        &check(&dir),
        "node 'Add'",
        &[
            "attr 'fancy' is not an attr of op Add",
            "NodeDef mentions attr 'fancy' not in Op",
        ],
    );

    let dir = half_plus_two_copy(tmp.path(), "missing_attr");
    edit_meta_graph(&dir, |m| {
        node_mut(m, "Add").attr.remove("T");
    });
    assert_error(
        &check(&dir),
        "node 'Add'",
        &["required attr 'T' of op Add is missing"],
    );

    let dir = half_plus_two_copy(tmp.path(), "duplicate_node");
    edit_meta_graph(&dir, |m| {
        let add = node_mut(m, "Add").clone();
        nodes(m).push(add);
    });
    assert_error(
        &check(&dir),
        "node 'Add'",
        &["2 nodes are named 'Add'", "is not unique"],
    );

    let dir = half_plus_two_copy(tmp.path(), "control_first");
    edit_meta_graph(&dir, |m| {
        node_mut(m, "Add").input.insert(0, "^x".into());
    });
    assert_error(&check(&dir), "node 'Add'", &["comes after a control input"]);

    let dir = half_plus_two_copy(tmp.path(), "dangling_input");
    edit_meta_graph(&dir, |m| {
        node_mut(m, "Add").input[0] = "ghost:0".into();
    });
    assert_error(
        &check(&dir),
        "node 'Add'",
        &["node 'ghost'", "not in the graph"],
    );

    let dir = half_plus_two_copy(tmp.path(), "input_type");
    edit_meta_graph(&dir, |m| {
        // Add = Add(Mul, b/read): feed it the string placeholder instead.
        node_mut(m, "Add").input[1] = "tf_example:0".into();
    });
    assert_error(
        &check(&dir),
        "node 'Add'",
        &["input 1 ('tf_example:0') is DT_STRING", "expects DT_FLOAT"],
    );

    let dir = half_plus_two_copy(tmp.path(), "undefined_const");
    edit_meta_graph(&dir, |m| {
        let node = node_mut(m, "a/initial_value");
        if let Some(attr_value::Value::Tensor(t)) =
            node.attr.get_mut("value").unwrap().value.as_mut()
        {
            t.tensor_shape = Some(tensorflow::TensorShapeProto {
                dim: vec![tensorflow::tensor_shape_proto::Dim {
                    size: -1,
                    name: String::new(),
                }],
                unknown_rank: false,
            });
        }
    });
    assert_error(
        &check(&dir),
        "node 'a/initial_value'",
        &["shape [?]", "not fully defined"],
    );

    let dir = half_plus_two_copy(tmp.path(), "min_consumer");
    edit_meta_graph(&dir, |m| {
        m.graph_def
            .as_mut()
            .unwrap()
            .versions
            .as_mut()
            .unwrap()
            .min_consumer = 100_000;
    });
    assert_error(&check(&dir), "graph", &["min consumer version 100000"]);

    // Ops inside library functions are checked too.
    let dir = half_plus_two_copy(tmp.path(), "function_unknown_op");
    edit_meta_graph(&dir, |m| {
        let graph = m.graph_def.as_mut().unwrap();
        graph.library = Some(tensorflow::FunctionDefLibrary {
            function: vec![tensorflow::FunctionDef {
                signature: Some(tensorflow::OpDef {
                    name: "helper".into(),
                    ..Default::default()
                }),
                node_def: vec![NodeDef {
                    name: "inner".into(),
                    op: "MysteryOp".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
    });
    assert_error(
        &check(&dir),
        "function 'helper' node 'inner'",
        &["op type 'MysteryOp' is not registered"],
    );
}

/// What the validator calls a load failure, TensorFlow's C++ loader (the one
/// TensorFlow Serving runs) refuses too, and the untouched copy loads.
#[test]
fn tensorflow_refuses_to_load_what_validate_calls_unloadable() {
    let tmp = tempfile::tempdir().unwrap();
    type Edit = Box<dyn Fn(&Path)>;
    let graph_edit = |edit: fn(&mut MetaGraphDef)| -> Edit {
        Box::new(move |dir: &Path| edit_meta_graph(dir, edit))
    };
    let cases: Vec<(&str, Edit)> = vec![
        ("untouched", Box::new(|_: &Path| {})),
        (
            "garbage_pb",
            Box::new(|dir: &Path| fs::write(dir.join("saved_model.pb"), b"\xff\xff\xff").unwrap()),
        ),
        (
            "flipped_data",
            Box::new(|dir: &Path| {
                let data = dir.join("variables/variables.data-00000-of-00001");
                let mut bytes = fs::read(&data).unwrap();
                bytes[0] ^= 0xff;
                fs::write(&data, bytes).unwrap();
            }),
        ),
        (
            "unknown_op",
            graph_edit(|m| node_mut(m, "Add").op = "FancyAdd".into()),
        ),
        (
            "missing_attr",
            graph_edit(|m| {
                node_mut(m, "Add").attr.remove("T");
            }),
        ),
        (
            "duplicate_node",
            graph_edit(|m| {
                let add = node_mut(m, "Add").clone();
                nodes(m).push(add);
            }),
        ),
        (
            "input_type",
            graph_edit(|m| node_mut(m, "Add").input[1] = "tf_example:0".into()),
        ),
        (
            "control_first",
            graph_edit(|m| node_mut(m, "Add").input.insert(0, "^x".into())),
        ),
        (
            "min_consumer",
            graph_edit(|m| {
                m.graph_def
                    .as_mut()
                    .unwrap()
                    .versions
                    .as_mut()
                    .unwrap()
                    .min_consumer = 100_000;
            }),
        ),
        (
            "missing_restore_op",
            graph_edit(|m| m.saver_def.as_mut().unwrap().restore_op_name = "save/nothing".into()),
        ),
        (
            "renamed_checkpoint_key",
            graph_edit(|m| {
                let node = node_mut(m, "save/RestoreV2/tensor_names");
                if let Some(attr_value::Value::Tensor(t)) =
                    node.attr.get_mut("value").unwrap().value.as_mut()
                {
                    t.string_val[0] = b"not_saved".to_vec();
                }
            }),
        ),
        (
            "two_main_ops",
            graph_edit(|m| {
                if let Some(collection_def::Kind::NodeList(list)) = m
                    .collection_def
                    .get_mut("saved_model_main_op")
                    .unwrap()
                    .kind
                    .as_mut()
                {
                    let first = list.value[0].clone();
                    list.value.push(first);
                }
            }),
        ),
        (
            "missing_init_target",
            graph_edit(|m| {
                if let Some(collection_def::Kind::NodeList(list)) = m
                    .collection_def
                    .get_mut("saved_model_main_op")
                    .unwrap()
                    .kind
                    .as_mut()
                {
                    list.value[0] = "no_such_init".into();
                }
            }),
        ),
        (
            "asset_twice",
            graph_edit(|m| {
                let list = assets_any(m);
                let first = list[0].clone();
                list.push(first);
            }),
        ),
    ];
    let mut requests = Vec::new();
    for (name, edit) in &cases {
        let dir = half_plus_two_copy(tmp.path(), name);
        edit(&dir);
        let report = validate(&dir, &ValidateOptions::default());
        assert_eq!(
            report.has_errors(),
            *name != "untouched",
            "{name}:\n{report}"
        );
        requests.push(request::cc_load(&dir, &["serve"], &[]));
    }
    let responses = tf::cc_loader(&Value::Array(requests));
    for ((name, _), response) in cases.iter().zip(responses.as_array().unwrap()) {
        if *name == "untouched" {
            tf::ok(response);
        } else {
            let error = tf::err(response);
            assert!(!error.is_empty(), "{name}");
        }
    }
}
