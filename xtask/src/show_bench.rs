//! `cargo xtask show-bench`: issue 4's measurements, in one run on one model:
//!
//! - exporting an MNIST-style softmax classifier (784 inputs, 10 classes,
//!   weights from a `.safetensors` file) end to end with the release
//!   `savedmodel export` (process start, checks, graph, checkpoint, fsync,
//!   atomic publish);
//! - `savedmodel show --all` against TensorFlow's `saved_model_cli show --all`
//!   on the model just exported (target: at least 50x faster, since we import
//!   no TensorFlow).
//!
//! Each command runs `--repeats` times (default 5) after one warm-up run;
//! min/median/max wall times and the ratio of medians go to stdout and to the
//! "SavedModel: export and show" section of `docs/performance.md`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The section heading this task owns in `docs/performance.md`.
const SECTION: &str = "## SavedModel: export and show";

const SPEC: &str = r#"[model]
name = "mnist"
architecture = "softmax_classifier"
input_width = 784
feature = "x"

[classes]
labels = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]

[[layers]]
kernel = "W"
bias = "b"
"#;

/// Runs the task.
pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let repeats = match args {
        [] => 5,
        [flag, n] if flag == "--repeats" => n.parse().context("--repeats takes a number")?,
        _ => bail!("usage: cargo xtask show-bench [--repeats N]"),
    };
    let python = crate::tf_env::python(root)?;
    let saved_model_cli = python.with_file_name("saved_model_cli");
    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet", "-p", "savedmodel-cli"])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("building the release savedmodel binary failed");
    }
    let savedmodel = root.join("target/release/savedmodel");

    let work = tempfile::tempdir()?;
    let spec = work.path().join("mnist.toml");
    std::fs::write(&spec, SPEC)?;
    let weights = work.path().join("mnist.safetensors");
    write_weights(&weights)?;

    // Export: each run publishes a new version under its own base.
    let mut run_index = 0;
    let mut export_once = || -> anyhow::Result<PathBuf> {
        run_index += 1;
        let base = work.path().join(format!("base{run_index}"));
        let output = Command::new(&savedmodel)
            .arg("export")
            .arg("--spec")
            .arg(&spec)
            .arg("--weights")
            .arg(&weights)
            .arg("--base")
            .arg(&base)
            .output()?;
        if !output.status.success() {
            bail!(
                "savedmodel export failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(base.join("1"))
    };
    let model = export_once()?; // warm-up, and the model `show` reads
    let export = time(repeats, || export_once().map(|_| ()))?;

    let show_ours = time_command(
        repeats,
        Command::new(&savedmodel)
            .arg("show")
            .arg("--dir")
            .arg(&model)
            .arg("--all"),
        &[0],
    )?;
    let mut theirs = Command::new(&saved_model_cli);
    theirs
        .arg("show")
        .arg("--dir")
        .arg(&model)
        .arg("--all")
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .env("TF_ENABLE_ONEDNN_OPTS", "0");
    let show_theirs = time_command(repeats, &mut theirs, &[0])?;

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let ratio = show_theirs.median.as_secs_f64() / show_ours.median.as_secs_f64();
    let mut section = format!(
        "{SECTION}\n\n\
         Command: `cargo xtask show-bench --repeats {repeats}` (release `savedmodel`, one warm-up run \
         each, warm page cache; load average at the end: {}). Model: softmax classifier, 784 inputs, \
         10 classes, weights from a `.safetensors` file; signatures `predict` and `serving_default` \
         (classify over `tf.Example`s).\n\n\
         | what | min | median | max |\n|---|---|---|---|\n",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (name, t) in [
        (
            "`savedmodel export` end to end (process, checks, graph, checkpoint, fsync, publish)",
            &export,
        ),
        ("`savedmodel show --all`", &show_ours),
        (
            "`saved_model_cli show --all` (TensorFlow 2.21)",
            &show_theirs,
        ),
    ] {
        section.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            ms(t.min),
            ms(t.median),
            ms(t.max)
        ));
    }
    section.push_str(&format!(
        "\n`show` is **{ratio:.0}x** faster than `saved_model_cli show` (medians; target: at least 50x). \
         `saved_model_cli` spends its time importing TensorFlow.\n"
    ));
    println!("{section}");
    crate::doc_section::replace(&root.join("docs/performance.md"), SECTION, &section)
}

/// min / median / max of a series of runs (the benches that time whole
/// processes share it: `diff_graph_bench.rs`).
pub(crate) struct Timing {
    pub(crate) min: Duration,
    pub(crate) median: Duration,
    pub(crate) max: Duration,
}

fn time(repeats: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Timing> {
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        f()?;
        samples.push(started.elapsed());
    }
    samples.sort();
    Ok(Timing {
        min: samples[0],
        median: samples[samples.len() / 2],
        max: samples[samples.len() - 1],
    })
}

/// Times `command` as a whole process (one warm-up run first); `ok` lists
/// the exit statuses that are not failures (`diff` exits 1 for compatible
/// differences).
pub(crate) fn time_command(
    repeats: usize,
    command: &mut Command,
    ok: &[i32],
) -> anyhow::Result<Timing> {
    let mut run = || -> anyhow::Result<()> {
        let output = command.output()?;
        if !output.status.code().is_some_and(|c| ok.contains(&c)) {
            bail!(
                "{command:?} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    };
    run()?; // warm-up
    time(repeats, run)
}

/// A duration in milliseconds, one decimal.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A `.safetensors` file with `W` float32 `[784, 10]` and `b` float32 `[10]`:
/// an 8-byte little-endian header length, the JSON header, the data.
fn write_weights(path: &Path) -> anyhow::Result<()> {
    let w: Vec<f32> = (0..7840)
        .map(|i| ((i * 7919) % 1000) as f32 / 10_000.0 - 0.05)
        .collect();
    let b: Vec<f32> = (0..10).map(|i| i as f32 / 100.0).collect();
    let w_bytes = w.len() * 4;
    let header = format!(
        r#"{{"W":{{"dtype":"F32","shape":[784,10],"data_offsets":[0,{w_bytes}]}},"b":{{"dtype":"F32","shape":[10],"data_offsets":[{w_bytes},{}]}}}}"#,
        w_bytes + 40
    );
    let mut out = Vec::new();
    out.extend((header.len() as u64).to_le_bytes());
    out.extend(header.as_bytes());
    for v in w.iter().chain(&b) {
        out.extend(v.to_le_bytes());
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}
