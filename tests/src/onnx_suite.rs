//! The ONNX backend test suite through our converter and TensorFlow's C++
//! loader.
//!
//! [`run`] writes the suite's cases (`tests/python/onnx_cases.py`, from the
//! `onnx` package pinned in the test virtualenv), converts each with
//! `savedmodel-onnx` in this process, writes the SavedModels, and has
//! `tests/python/onnx_run.py` load each one with the loader TensorFlow
//! Serving runs, feed the case's inputs and compare the outputs with the
//! expected ones within the suite's tolerances (random draws: their shapes
//! and dtypes only). Used by the integration
//! test (`it/onnx.rs`) and by `cargo xtask onnx-table`, which writes
//! `docs/onnx.md` and `tests/onnx/passing.txt` from the results.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use savedmodel_onnx::{ExportOptions, OnnxExport, OnnxModel};

/// What happened to one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Converted, loaded, ran, and every output matched.
    Pass,
    /// The converter refused it (the message says why).
    NotConverted(String),
    /// Converted, but TensorFlow failed to load or run it, or an output
    /// differed.
    Failed(String),
}

/// One case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The case's name (`test_abs`).
    pub name: String,
    /// The case's kind: `node`, `pytorch-converted`, `pytorch-operator` or
    /// `simple`.
    pub kind: String,
    /// The operators the case's model uses.
    pub op_types: Vec<String>,
    /// The opset the model imports for the default domain.
    pub opset: Option<i64>,
    /// The TensorFlow op types of the converted graph (without the
    /// plumbing every graph has: `Placeholder`, `Const`, `Identity`,
    /// variables); empty when it did not convert.
    pub tf_ops: Vec<String>,
    /// The outcome.
    pub outcome: Outcome,
}

/// Which cases to run.
#[derive(Clone, Copy, Debug)]
pub struct Selection<'a> {
    /// Comma-separated kinds (`node`, `pytorch-converted`,
    /// `pytorch-operator`, `simple`).
    pub kinds: &'a str,
    /// A regex the case names must match, or every case.
    pub filter: Option<&'a str>,
    /// Also run every case through `tf.saved_model.load` and compare both
    /// TensorFlow loaders' outputs with onnxruntime's on the same inputs
    /// (besides the case's expected outputs).
    pub onnxruntime: bool,
}

impl Selection<'static> {
    /// Every node case, judged by the C++ loader against the expected
    /// outputs.
    pub const NODE: Selection<'static> = Selection {
        kinds: "node",
        filter: None,
        onnxruntime: false,
    };
}

/// TensorFlow ops every converted graph may have that say nothing about an
/// operator's conversion.
const PLUMBING_OPS: &[&str] = &[
    "Placeholder",
    "Const",
    "Identity",
    "VarHandleOp",
    "ReadVariableOp",
    "AssignVariableOp",
    "NoOp",
];

/// The results of a run.
#[derive(Clone, Debug)]
pub struct SuiteResults {
    /// The `onnx` package's version.
    pub onnx_version: String,
    /// Every case, in the manifest's order.
    pub cases: Vec<CaseResult>,
}

impl SuiteResults {
    /// How many cases passed.
    pub fn passed(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| c.outcome == Outcome::Pass)
            .count()
    }
}

/// Runs the cases `selection` picks in `work` (a scratch directory).
pub fn run(work: &Path, selection: Selection<'_>) -> anyhow::Result<SuiteResults> {
    let python = crate::tf::python();
    let cases_dir = work.join("cases");
    let mut cmd = Command::new(&python);
    cmd.arg(crate::tf::script("onnx_cases.py"))
        .arg(&cases_dir)
        .arg("--npz")
        .arg("--kinds")
        .arg(selection.kinds);
    if let Some(f) = selection.filter {
        cmd.arg("--match").arg(f);
    }
    let out = cmd.output().context("running onnx_cases.py")?;
    if !out.status.success() {
        bail!(
            "onnx_cases.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(cases_dir.join("manifest.json")).context("reading the manifest")?,
    )?;
    let onnx_version = manifest["onnx_version"].as_str().unwrap_or("").to_owned();
    let empty = Vec::new();
    let cases = manifest["cases"].as_array().unwrap_or(&empty);

    let models = work.join("saved_models");
    std::fs::create_dir_all(&models)?;
    let mut results: Vec<CaseResult> = Vec::new();
    let mut requests = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("").to_owned();
        let op_types: Vec<String> = case["op_types"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let kind = case["kind"].as_str().unwrap_or("node").to_owned();
        let opset = case["opset_imports"]
            .get("")
            .or_else(|| case["opset_imports"].get("ai.onnx"))
            .and_then(Value::as_i64);
        let dir = models.join(&kind).join(&name);
        match convert_case(case, &dir) {
            Ok(export) => {
                for (i, set) in case["data_sets"]
                    .as_array()
                    .unwrap_or(&empty)
                    .iter()
                    .enumerate()
                {
                    let mut r = request(case, set, i, &name, &dir, &export);
                    if selection.onnxruntime {
                        r["onnxruntime"] = onnxruntime_request(case, &export);
                    }
                    requests.push(r);
                }
                let tf_ops = export
                    .op_counts
                    .keys()
                    .filter(|op| !PLUMBING_OPS.contains(&op.as_str()))
                    .cloned()
                    .collect();
                results.push(CaseResult {
                    name,
                    kind,
                    op_types,
                    opset,
                    tf_ops,
                    outcome: Outcome::Pass,
                });
            }
            Err(e) => results.push(CaseResult {
                name,
                kind,
                op_types,
                opset,
                tf_ops: Vec::new(),
                outcome: Outcome::NotConverted(format!("{e:#}")),
            }),
        }
    }
    let requests_path = work.join("requests.json");
    std::fs::write(&requests_path, serde_json::to_vec(&requests)?)?;
    let results_path = work.join("results.json");
    let status = Command::new(&python)
        .arg(crate::tf::script("onnx_run.py"))
        .arg(&requests_path)
        .arg(&results_path)
        .status()
        .context("running onnx_run.py")?;
    if !status.success() {
        bail!("onnx_run.py failed ({status})");
    }
    let run: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(&results_path).context("reading the results")?)?;
    for result in &mut results {
        if result.outcome != Outcome::Pass {
            continue;
        }
        // Every data set of the case must pass.
        let failures: Vec<&String> = run
            .iter()
            .filter(|(k, v)| {
                (k.as_str() == result.name || k.starts_with(&format!("{}#", result.name)))
                    && v.as_str() != "pass"
            })
            .map(|(_, v)| v)
            .collect();
        let ran = run
            .keys()
            .any(|k| k == &result.name || k.starts_with(&format!("{}#", result.name)));
        if !ran {
            result.outcome = Outcome::Failed("no data set ran".into());
        } else if let Some(f) = failures.first() {
            result.outcome = Outcome::Failed((*f).clone());
        }
    }
    Ok(SuiteResults {
        onnx_version,
        cases: results,
    })
}

fn convert_case(case: &Value, dir: &Path) -> anyhow::Result<OnnxExport> {
    let model_path = PathBuf::from(case["model"].as_str().unwrap_or(""));
    let model = Arc::new(OnnxModel::open(&model_path)?);
    let export = OnnxExport::new(&model, &ExportOptions::default())?;
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    export.write_to(dir)?;
    Ok(export)
}

/// What `onnx_run.py` needs to run a case through `tf.saved_model.load`
/// and onnxruntime: the model, and the signature's and the ONNX graph's
/// names for the data set's keys.
fn onnxruntime_request(case: &Value, export: &OnnxExport) -> Value {
    let position = |list: &str, onnx: &str| {
        case[list]
            .as_array()
            .and_then(|names| names.iter().position(|n| n.as_str() == Some(onnx)))
    };
    let mut signature_feeds = serde_json::Map::new();
    let mut onnx_feeds = serde_json::Map::new();
    for s in &export.inputs {
        if let Some(j) = position("inputs", &s.onnx_name) {
            signature_feeds.insert(s.key.clone(), json!(format!("input_{j}")));
            onnx_feeds.insert(s.onnx_name.clone(), json!(format!("input_{j}")));
        }
    }
    let mut signature_fetches = Vec::new();
    for s in &export.outputs {
        if let Some(j) = position("outputs", &s.onnx_name) {
            signature_fetches.push(json!([s.key, s.onnx_name, format!("output_{j}")]));
        }
    }
    json!({
        "model": case["model"],
        "signature_feeds": signature_feeds,
        "onnx_feeds": onnx_feeds,
        "signature_fetches": signature_fetches,
    })
}

fn request(
    case: &Value,
    set: &Value,
    i: usize,
    name: &str,
    dir: &Path,
    export: &OnnxExport,
) -> Value {
    let inputs = case["inputs"].as_array().cloned().unwrap_or_default();
    let outputs = case["outputs"].as_array().cloned().unwrap_or_default();
    let mut feeds = serde_json::Map::new();
    for (j, input) in inputs.iter().enumerate() {
        let onnx = input.as_str().unwrap_or("");
        if let Some(s) = export.inputs.iter().find(|s| s.onnx_name == onnx) {
            feeds.insert(s.tensor.name(), json!(format!("input_{j}")));
        }
    }
    let mut fetches = Vec::new();
    for (j, output) in outputs.iter().enumerate() {
        let onnx = output.as_str().unwrap_or("");
        if let Some(s) = export.outputs.iter().find(|s| s.onnx_name == onnx) {
            fetches.push(json!([s.tensor.name(), format!("output_{j}")]));
        }
    }
    let key = if i == 0 {
        name.to_owned()
    } else {
        format!("{name}#{i}")
    };
    json!({
        "name": key,
        "dir": dir,
        "npz": set["npz"],
        "value_types": set["value_types"],
        "feeds": feeds,
        "fetches": fetches,
        "rtol": case["rtol"],
        "atol": case["atol"],
        "random": set["random"].as_bool().unwrap_or(false),
    })
}
