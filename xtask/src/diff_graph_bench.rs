//! `cargo xtask diff-graph-bench`: issue 16's speed targets, measured on
//! the release `savedmodel` binary as whole processes:
//!
//! - `savedmodel diff` of two 1 GiB versions (256 variables of 4 MiB; the
//!   second version changes the values of 8 of them) without `--values`:
//!   it reads the two `saved_model.pb` files and the two checkpoint
//!   indexes only (target: under 100 ms);
//! - `savedmodel graph` of a graph of 1,000 nodes (250 blocks of a
//!   constant, an add, a relu and a skip connection) to SVG and to HTML,
//!   every node drawn (`--depth 64`: nothing collapsed; target: under 1 s).
//!
//! Each command runs `--repeats` times (default 10) after one warm-up run;
//! min/median/max go to stdout and to the "Diff and graph" section of
//! `docs/performance.md`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};
use savedmodel::{DType, Graph, MetaGraphBuilder, SavedModelBuilder, Tensor};

use crate::show_bench::{ms, time_command};

/// The section heading this task owns in `docs/performance.md`.
const SECTION: &str = "## Diff and graph";

/// Variables per version and elements of each (4 MiB of float32).
const VARIABLES: usize = 256;
const SIDE: usize = 1024;

/// Runs the task.
pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let repeats: usize = match args {
        [] => 10,
        [flag, n] if flag == "--repeats" => n.parse().context("--repeats takes a number")?,
        _ => bail!("usage: cargo xtask diff-graph-bench [--repeats N]"),
    };
    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet", "-p", "savedmodel-cli"])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("building the release savedmodel binary failed");
    }
    let savedmodel = root.join("target/release/savedmodel");
    let work = tempfile::tempdir()?;
    let base = work.path().join("big");
    write_big_version(&base.join("1"), 1)?;
    write_big_version(&base.join("2"), 2)?;
    let size = dir_size(&base.join("2"))?;

    let mut diff = Command::new(&savedmodel);
    diff.arg("diff").arg(&base).args(["1", "2"]);
    let diff_timing = time_command(repeats, &mut diff, &[1])?;
    let report = String::from_utf8(diff.output()?.stdout)?;
    let changed = report.lines().filter(|l| l.contains(" variable ")).count();

    let wide = work.path().join("wide");
    let nodes = write_wide_graph(&wide)?;
    let mut timings = Vec::new();
    for ext in ["svg", "html"] {
        let mut graph = Command::new(&savedmodel);
        graph
            .arg("graph")
            .arg(&wide)
            .args(["--all", "--depth", "64", "-o"])
            .arg(work.path().join(format!("wide.{ext}")));
        timings.push((ext, time_command(repeats, &mut graph, &[0])?));
    }

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut section = format!(
        "{SECTION}\n\n\
         Command: `cargo xtask diff-graph-bench --repeats {repeats}` (release `savedmodel`, whole \
         processes, one warm-up run each, warm page cache; load average at the end: {}).\n\n\
         | what | min | median | max | target |\n|---|---|---|---|---|\n",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    section.push_str(&format!(
        "| `savedmodel diff` of two {:.2} GiB versions ({VARIABLES} variables each, {changed} changed), no `--values` | {} | {} | {} | < 100 ms |\n",
        size as f64 / f64::from(1u32 << 30),
        ms(diff_timing.min),
        ms(diff_timing.median),
        ms(diff_timing.max)
    ));
    for (ext, t) in &timings {
        section.push_str(&format!(
            "| `savedmodel graph --all --depth 64 -o graph.{ext}`, {nodes} nodes | {} | {} | {} | < 1 s |\n",
            ms(t.min),
            ms(t.median),
            ms(t.max)
        ));
    }
    section.push_str(
        "\n`diff` reads the two `saved_model.pb` files and the two checkpoint indexes (each \
         tensor's size and CRC32C), never the 1 GiB of data files. `graph` reads \
         `saved_model.pb`, lays out every node (no scope collapsed) and writes the file.\n",
    );
    println!("{section}");
    crate::doc_section::replace(&root.join("docs/performance.md"), SECTION, &section)
}

/// A chain of `VARIABLES` matmuls by `[SIDE, SIDE]` float32 kernels: 1 GiB
/// of variables. Version 2 changes every 32nd kernel's values.
fn write_big_version(dir: &Path, version: u32) -> anyhow::Result<()> {
    let mut g = Graph::new();
    let x = g.placeholder("x", DType::Float, [-1, SIDE as i64])?;
    let mut h = x.clone();
    for i in 0..VARIABLES {
        let salt = if version == 2 && i % 32 == 0 {
            7.0
        } else {
            0.0
        };
        let values: Vec<f32> = (0..SIDE * SIDE)
            .map(|j| ((j % 97) as f32 + i as f32 + salt) * 1e-4)
            .collect();
        let kernel = g.variable(
            &format!("layer{i}/kernel"),
            Tensor::new(&[SIDE as i64, SIDE as i64], &values)?,
        )?;
        h = g.matmul(&format!("layer{i}/MatMul"), &h, kernel.value())?;
    }
    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature("serving_default", &[("x", &x)], &[("y", &h)])?;
    let mut builder = SavedModelBuilder::new();
    builder.fsync(false).add_meta_graph(meta)?;
    builder.write_to(dir)?;
    Ok(())
}

/// 250 blocks of a constant, an add, a relu and a skip add: 1,000 nodes
/// (plus the input).
fn write_wide_graph(dir: &Path) -> anyhow::Result<usize> {
    let mut g = Graph::new();
    let x = g.placeholder("x", DType::Float, [-1, 8])?;
    let (mut prev, mut prev2) = (x.clone(), x.clone());
    for i in 0..250 {
        let c = g.constant(&format!("block{i}/c"), Tensor::new(&[8], &[i as f32; 8])?)?;
        let a = g.add(&format!("block{i}/add"), &prev, &c)?;
        let r = g.relu(&format!("block{i}/relu"), &a)?;
        let s = g.add(&format!("block{i}/skip"), &r, &prev2)?;
        prev2 = prev;
        prev = s;
    }
    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature("serving_default", &[("x", &x)], &[("y", &prev)])?;
    let nodes = meta.graph().to_graph_def().node.len();
    let mut builder = SavedModelBuilder::new();
    builder.fsync(false).add_meta_graph(meta)?;
    builder.write_to(dir)?;
    Ok(nodes)
}

fn dir_size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
