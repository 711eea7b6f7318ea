//! Project automation, run as `cargo xtask <task>`:
//!
//! - `codegen`: compile `proto/` with protox and regenerate `crates/proto/src/generated/`
//! - `tf-env`: create or update the project's TensorFlow virtualenv (`.tf-venv/`)
//! - `op-registry`: write the ops TensorFlow registers to `crates/saved_model/src/op_registry.binpb`
//! - `onnx-table`: the ONNX backend node suite through the converter and TensorFlow (writes `docs/onnx.md`)
//! - `onnx-bench`: conversion time and memory of a 25M-parameter ONNX CNN, TensorFlow's latency on it against onnxruntime's; `--onnx2tf`: against onnx2tf's conversion and SavedModel too
//! - `bench`: checkpoint benchmarks against TensorFlow and safetensors (writes `docs/performance.md`)
//! - `python-test`: build the `savedmodel` wheel, install it into a fresh virtualenv, run its pytest suite
//! - `ci`: everything CI checks (fmt, clippy, tests with TensorFlow, the Python wheel's tests, docs, a short run of every fuzz target)
//! - `fuzz`: a libFuzzer campaign per fuzz target (`fuzz/`), one at a time (`--seconds N` each); `--write-seeds` rewrites `fuzz/seeds/`
//! - `export`: train a softmax regression on iris and publish it to `./models/iris/<version>/`
//! - `export-bench`: time `savedmodel export` of a 100M-parameter MLP against copying its weights
//! - `show-bench`: export an MNIST-style model end to end, and `savedmodel show` against `saved_model_cli show`
//! - `diff-graph-bench`: `savedmodel diff` of two 1 GiB versions, `savedmodel graph` of 1,000 nodes
//! - `objstore-bench`: `savedmodel publish` and `sync` of 1 GiB against `aws s3 cp`/`sync` on one local S3 server (moto)
#![allow(clippy::unwrap_used)]

mod bench;
mod ci;
mod codegen;
mod diff_graph_bench;
mod doc_section;
mod export;
mod export_bench;
mod fuzz;
mod fuzz_seeds;
mod objstore_bench;
mod onnx_bench;
mod onnx_table;
mod op_registry;
mod python_pkg;
mod show_bench;
mod tf_env;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

const USAGE: &str = "usage: cargo xtask <codegen [--check] | tf-env | python-test | op-registry | onnx-table [--match REGEX] | onnx-bench [--help] | bench [--help] | ci | export [--models-dir DIR] | export-bench | fuzz [--seconds N] [TARGET...] | fuzz --write-seeds | show-bench [--repeats N] | diff-graph-bench [--repeats N] | objstore-bench [--size-mib N] [--bin PATH]>";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let Some((task, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    match task.as_str() {
        "codegen" => match rest {
            [] => codegen::write(&root),
            [flag] if flag == "--check" => codegen::check(&root),
            _ => bail!("{USAGE}"),
        },
        "tf-env" => tf_env::ensure(&root).map(|_| ()),
        "python-test" => {
            let tf_python = tf_env::python(&root)?;
            python_pkg::test(&root, &tf_python)
        }
        "op-registry" => op_registry::write(&root),
        "onnx-table" => onnx_table::run(&root, rest),
        "onnx-bench" => onnx_bench::run(&root, rest),
        "bench" => bench::run(&root, rest),
        "ci" => ci::run(&root),
        "export" => export::run(rest),
        "export-bench" => export_bench::run(rest),
        "fuzz" => fuzz::run(&root, rest),
        "show-bench" => show_bench::run(&root, rest),
        "diff-graph-bench" => diff_graph_bench::run(&root, rest),
        "objstore-bench" => objstore_bench::run(&root, rest),
        other => bail!("unknown task {other:?}\n{USAGE}"),
    }
    .with_context(|| format!("cargo xtask {task} failed"))
}

/// The workspace root: xtask's manifest directory's parent.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
