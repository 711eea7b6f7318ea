//! `cargo xtask onnx-table`: runs the ONNX backend node test suite through
//! the converter and TensorFlow's C++ loader
//! (`savedmodel_tests::onnx_suite`), then writes
//!
//! - `docs/onnx.md`: the pass count, and per ONNX operator the cases that
//!   use it, how many pass, and the status (supported, partial, not
//!   supported) with the first reason a case fails;
//! - `tests/onnx/passing.txt`: the names of the passing cases, which the
//!   integration test `onnx::the_node_suite_passes_what_it_passed` holds
//!   the converter to.
//!
//! With options (`--match REGEX`, `--kinds KIND,...`, `--onnxruntime`) it
//! runs only the cases they pick and prints each outcome, writing nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use savedmodel_tests::onnx_suite::{self, CaseResult, Outcome, Selection, SuiteResults};

const USAGE: &str =
    "usage: cargo xtask onnx-table [--match REGEX] [--kinds KIND,...] [--onnxruntime]
  with no option: runs every node case and writes docs/onnx.md and tests/onnx/passing.txt;
  with options: runs the cases they pick (kinds: node, pytorch-converted, pytorch-operator,
  simple; --onnxruntime also compares with onnxruntime through both TensorFlow loaders)
  and prints each case's outcome, writing nothing";

/// Runs the suite and writes the table and the passing list.
pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut selection = Selection::NODE;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        match flag.as_str() {
            "--match" => selection.filter = rest.next().map(String::as_str),
            "--kinds" => selection.kinds = rest.next().map_or("", String::as_str),
            "--onnxruntime" => selection.onnxruntime = true,
            _ => anyhow::bail!("{USAGE}"),
        }
    }
    if selection.kinds.is_empty()
        || (args.iter().any(|a| a == "--match") && selection.filter.is_none())
    {
        anyhow::bail!("{USAGE}");
    }
    let work = tempfile::tempdir()?;
    let results = onnx_suite::run(work.path(), selection)?;
    println!(
        "onnx-table: {} of {} cases pass",
        results.passed(),
        results.cases.len()
    );
    if !args.is_empty() {
        for c in &results.cases {
            println!("{:<60} {}", c.name, describe(&c.outcome));
        }
        return Ok(());
    }
    let passing: Vec<&str> = results
        .cases
        .iter()
        .filter(|c| c.outcome == Outcome::Pass)
        .map(|c| c.name.as_str())
        .collect();
    let list = root.join("tests/onnx/passing.txt");
    std::fs::create_dir_all(list.parent().unwrap_or(root))?;
    std::fs::write(&list, passing.join("\n") + "\n")
        .with_context(|| format!("writing {}", list.display()))?;
    let doc = root.join("docs/onnx.md");
    let mut text = table(&results);
    // The hand-kept section on real models stays.
    let existing = std::fs::read_to_string(&doc).unwrap_or_default();
    if let Some(kept) = crate::doc_section::section(&existing, REAL_MODELS) {
        text = crate::doc_section::replaced(&text, REAL_MODELS, kept);
    }
    std::fs::write(&doc, text).with_context(|| format!("writing {}", doc.display()))?;
    println!("wrote {} and {}", list.display(), doc.display());
    Ok(())
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Pass => "pass".to_owned(),
        // The message names the model's temporary path first: drop it, and
        // join the list of unsupported nodes onto one line.
        Outcome::NotConverted(why) => {
            let why = why.split_once(": ").map_or(why.as_str(), |(_, rest)| rest);
            let joined: Vec<&str> = why.lines().map(str::trim).collect();
            format!("not converted: {}", shorten(&joined.join(" ")))
        }
        Outcome::Failed(why) => shorten(why).to_owned(),
    }
}

fn shorten(s: &str) -> &str {
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        &s[..end]
    } else {
        s
    }
}

/// The operators whose every case must pass (issue 12, point 7).
const CORE_OPERATORS: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "BatchNormalization",
    "InstanceNormalization",
    "LayerNormalization",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Gemm",
    "MatMul",
    "Einsum",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Sqrt",
    "Exp",
    "Log",
    "Abs",
    "Neg",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Round",
    "Min",
    "Max",
    "Sum",
    "Mean",
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Elu",
    "Selu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Softplus",
    "Gelu",
    "Erf",
    "Softmax",
    "LogSoftmax",
    "Clip",
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Concat",
    "Split",
    "Slice",
    "Gather",
    "GatherElements",
    "GatherND",
    "ScatterND",
    "Expand",
    "Tile",
    "Pad",
    "Shape",
    "Size",
    "Cast",
    "ConstantOfShape",
    "Range",
    "Where",
    "Equal",
    "Less",
    "Greater",
    "And",
    "Or",
    "Not",
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ArgMax",
    "ArgMin",
    "TopK",
    "CumSum",
    "Resize",
    "DepthToSpace",
    "SpaceToDepth",
    "Dropout",
    "Identity",
    "Constant",
];

/// The operator a case tests: the one operator of a single-operator model,
/// and for an `_expanded` case (the operator's function body) the operator
/// of the case it expands.
fn operator_of<'a>(results: &'a SuiteResults, case: &'a CaseResult) -> Option<&'a str> {
    let single = |c: &'a CaseResult| match c.op_types.as_slice() {
        [op] => Some(op.as_str()),
        _ => None,
    };
    match case.name.strip_suffix("_expanded") {
        Some(base) => results
            .cases
            .iter()
            .find(|c| c.name == base)
            .and_then(single),
        None => single(case),
    }
}

/// `7-13` or `13`: the range of the opsets in `opsets`.
fn opset_range(opsets: &std::collections::BTreeSet<i64>) -> String {
    match (opsets.first(), opsets.last()) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => String::new(),
    }
}

/// The heading of `docs/onnx.md`'s hand-kept section (real exporters'
/// models, `tests/it/onnx.rs`), carried over when the tables are
/// regenerated.
const REAL_MODELS: &str = "## Real models";

/// The Markdown of `docs/onnx.md`.
fn table(results: &SuiteResults) -> String {
    #[derive(Default)]
    struct Op {
        total: usize,
        passed: usize,
        first_failure: Option<String>,
        /// Opsets of the passing cases.
        opsets: std::collections::BTreeSet<i64>,
        /// TensorFlow ops of the passing cases that test this operator.
        tf_ops: std::collections::BTreeSet<String>,
    }
    let mut ops: BTreeMap<&str, Op> = BTreeMap::new();
    for case in &results.cases {
        // A case judges an operator only when the converter handles every
        // other operator it uses; an operator without a converter is judged
        // by every case that uses it.
        let unhandled: Vec<&String> = case
            .op_types
            .iter()
            .filter(|op| !savedmodel_onnx::convert::is_supported(op))
            .collect();
        for op in &case.op_types {
            let entry = ops.entry(op.as_str()).or_default();
            let handled = savedmodel_onnx::convert::is_supported(op);
            if handled && !unhandled.is_empty() {
                continue;
            }
            entry.total += 1;
            if case.outcome == Outcome::Pass {
                entry.passed += 1;
                entry.opsets.extend(case.opset);
            } else if entry.first_failure.is_none() {
                entry.first_failure = Some(format!("`{}`: {}", case.name, describe(&case.outcome)));
            }
        }
        if case.outcome == Outcome::Pass && !case.name.ends_with("_expanded") {
            if let Some(op) = operator_of(results, case) {
                ops.entry(op)
                    .or_default()
                    .tf_ops
                    .extend(case.tf_ops.iter().cloned());
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "# ONNX operators\n");
    let _ = writeln!(
        out,
        "Generated by `cargo xtask onnx-table` from the ONNX backend node test suite of \
         `onnx` {}: each case is converted by `savedmodel-onnx`, loaded by TensorFlow's C++ \
         loader (the one TensorFlow Serving runs), run on the case's inputs and compared with \
         the expected outputs within the suite's tolerances. A case whose outputs are random \
         draws (its model uses `RandomUniform`, `RandomNormal`, their `Like` forms, `Bernoulli` \
         or `Multinomial`, or a `Dropout` in training mode with a ratio that is not 0) is \
         judged on its outputs' shapes and dtypes only: another generator cannot give the \
         expected values (`tests/python/onnx_cases.py`, `is_random`).\n",
        results.onnx_version
    );
    let _ = writeln!(
        out,
        "**{} of {} cases pass.**\n",
        results.passed(),
        results.cases.len()
    );
    core_section(&mut out, results);
    let _ = writeln!(out, "## Every operator\n");
    let _ = writeln!(
        out,
        "An operator the converter handles is *supported* when every case that uses it (and \
         only other handled operators) passes, and *partial* otherwise: the first failing case \
         says what is missing. An operator it does not handle is *not supported*. The \
         `_expanded` cases count for the operators of the function body. *Opsets* are the \
         default-domain opsets of the passing cases (the converter reads opsets 1 to 28; \
         before 7, see `crates/onnx/src/convert/ops/legacy.rs`); *TensorFlow ops* are those \
         the passing cases of the operator itself convert to (besides `Placeholder`, `Const`, \
         `Identity`).\n"
    );
    let _ = writeln!(
        out,
        "| operator | cases | pass | status | opsets | TensorFlow ops | first failing case |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for (name, op) in &ops {
        let status = if !savedmodel_onnx::convert::is_supported(name) {
            "not supported"
        } else if op.passed == op.total {
            "supported"
        } else {
            "partial"
        };
        let failure = op
            .first_failure
            .as_deref()
            .unwrap_or("")
            .replace('|', "\\|");
        let tf_ops: Vec<&str> = op.tf_ops.iter().map(String::as_str).collect();
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {status} | {} | {} | {failure} |",
            op.total,
            op.passed,
            opset_range(&op.opsets),
            tf_ops.join(", ")
        );
    }
    failing_section(&mut out, results);
    out
}

/// The core operators: every case of each, and those that fail.
fn core_section(out: &mut String, results: &SuiteResults) {
    let _ = writeln!(out, "## Core operators\n");
    let _ = writeln!(
        out,
        "The operators every model family uses. A case is an operator's when its model is that \
         one operator (its `_expanded` twin, the operator's function body, counts too).\n"
    );
    let _ = writeln!(out, "| operator | cases | pass | failing cases |");
    let _ = writeln!(out, "|---|---|---|---|");
    let (mut all, mut all_passed) = (0, 0);
    for &op in CORE_OPERATORS {
        let cases: Vec<&CaseResult> = results
            .cases
            .iter()
            .filter(|c| operator_of(results, c) == Some(op))
            .collect();
        let passed = cases.iter().filter(|c| c.outcome == Outcome::Pass).count();
        all += cases.len();
        all_passed += passed;
        let failing: Vec<String> = cases
            .iter()
            .filter(|c| c.outcome != Outcome::Pass)
            .map(|c| format!("`{}`", c.name))
            .collect();
        let _ = writeln!(
            out,
            "| {op} | {} | {passed} | {} |",
            cases.len(),
            failing.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "\n**{all_passed} of {all} cases of the core operators pass.**\n"
    );
}

/// Every failing case with the reason.
fn failing_section(out: &mut String, results: &SuiteResults) {
    let _ = writeln!(out, "\n## Every failing case\n");
    let _ = writeln!(out, "| case | why |");
    let _ = writeln!(out, "|---|---|");
    for case in &results.cases {
        if case.outcome != Outcome::Pass {
            let _ = writeln!(
                out,
                "| `{}` | {} |",
                case.name,
                describe(&case.outcome).replace('|', "\\|")
            );
        }
    }
}
