//! `cargo xtask onnx-bench`: issue 12, point 9, in one run on one model.
//!
//! ```text
//! cargo xtask onnx-bench [--repeats N] [--runs N] [--threads 1,2] [--batches 1,8]
//!                        [--image N] [--dir DIR] [--doc PATH | --no-doc] [--cli PATH]
//! ```
//!
//! 1. `tests/python/onnx_bench.py build` writes, from a fixed seed, a
//!    ResNet-style CNN in NCHW with about 25 M float32 parameters
//!    (`model.onnx`, 101 MiB, weights inside) and the same graph at width 8
//!    (`tiny.onnx`), into DIR (default `target/onnx-bench`).
//! 2. Conversion, as whole processes of the release `savedmodel` (built
//!    here, or `--cli PATH`): after one untimed round, REPEATS rounds
//!    (default 5) of `savedmodel --version`, `savedmodel export --onnx
//!    tiny.onnx` and `savedmodel export --onnx model.onnx`, each into a
//!    fresh `--base`. Each process is timed from spawn to exit and reaped
//!    with `wait4`, whose `rusage` gives its own peak resident memory
//!    (`ru_maxrss`) and CPU time. Then one more conversion of each model
//!    with `/proc/PID/status` read every millisecond, for the peaks of
//!    anonymous (`RssAnon`) and file-backed (`RssFile`) memory apart: pages
//!    of the memory-mapped model count in the RSS but are the page cache's.
//! 3. Inference: for each thread count (default 1 and 2),
//!    `tests/python/onnx_bench.py infer` times TensorFlow running the
//!    converted SavedModel in a session against onnxruntime on the ONNX
//!    model, both with intra- and inter-op threads set to that count, on the
//!    same inputs, batches 1 and 8 by default, RUNS timed runs each (default
//!    20) alternating between the two, after checking that their outputs
//!    agree. It counts the `Transpose` nodes in `saved_model.pb`.
//! 4. With `--onnx2tf` (issue 13, point 8), the same models through
//!    onnx2tf, the converter this one is measured against: the bench
//!    virtualenv `target/onnx2tf-venv` is created from
//!    `tests/python/onnx2tf-requirements.txt` when missing (reused while its
//!    stamp matches the file; CI and the tests never use it). After our
//!    conversions, one untimed round then REPEATS rounds of `onnx2tf -i
//!    tiny.onnx` and `onnx2tf -i model.onnx`, each timed from spawn to the
//!    line saying its SavedModel is written, then killed (onnx2tf always
//!    goes on to TFLite, for more than 35 minutes on the model; the untimed
//!    round converts the tiny model only), each from a fresh copy of the
//!    model (onnx2tf rewrites its input file) into a fresh output directory. The inference step then also
//!    runs onnx2tf's SavedModel, on the same TensorFlow, inputs and threads.
//! 5. Prints a markdown section and writes it as the section "ONNX import"
//!    of PATH (default `docs/performance.md`), keeping the rest of the file.
//!
//! The TensorFlow that builds the models and times inference is
//! `$SAVEDMODEL_TF_PYTHON` when set, else the project's `.tf-venv`
//! (`cargo xtask tf-env`).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::bench::{cpu_model, format_bytes, format_seconds, min_median_max, ratio, thousands};

/// The section heading this task owns in `docs/performance.md`.
const SECTION: &str = "## ONNX import";

const USAGE: &str = "usage: cargo xtask onnx-bench [--repeats N] [--runs N] [--threads 1,2] [--batches 1,8] [--image N] [--dir DIR] [--doc PATH | --no-doc] [--cli PATH] [--onnx2tf [--onnx2tf-repeats N]]
  --repeats N: timed conversions of each model (default 5)
  --runs N: timed inference runs per runtime, thread count and batch (default 20)
  --cli PATH: the `savedmodel` binary to time (default: built with --release)
  --onnx2tf: also convert with onnx2tf and time its SavedModel (creates the bench
             virtualenv target/onnx2tf-venv from tests/python/onnx2tf-requirements.txt
             when missing: about 3 GB, from PyPI; never used by CI or the tests)
  --onnx2tf-repeats N: timed onnx2tf conversions of each model (default: --repeats;
             onnx2tf takes minutes per conversion of the model)";

/// The onnx2tf bench virtualenv, relative to the workspace root.
const ONNX2TF_VENV: &str = "target/onnx2tf-venv";

/// Its pins, relative to the workspace root.
const ONNX2TF_REQUIREMENTS: &str = "tests/python/onnx2tf-requirements.txt";

/// Stamp file inside the virtualenv: a copy of the requirements it was
/// installed from.
const ONNX2TF_STAMP: &str = ".savedmodel-onnx2tf-env";

/// Arguments given to `onnx2tf` besides `-i` and `-o`.
const ONNX2TF_ARGS: &[&str] = &[];

/// The line onnx2tf prints once its SavedModel is written (onnx2tf.py, after
/// `tf.saved_model.save`). It goes on to convert to TFLite, which it always
/// does and which took more than 35 minutes for the bench's model: the bench
/// stops the clock at this line and kills the process, so onnx2tf's time
/// here is its time to a SavedModel, a lower bound of its end-to-end time.
const ONNX2TF_SAVED_MODEL_DONE: &str = "saved_model output complete!";

/// "Conversion at least 50x faster than onnx2tf end to end" (issue 13,
/// point 8): onnx2tf's median wall time over ours.
const ONNX2TF_SPEEDUP_TARGET: f64 = 50.0;

/// "Well under a second" (issue 12, point 9), taken as half a second.
const CONVERSION_TARGET: f64 = 0.5;

/// "Memory bounded by the largest tensor" (issue 12, point 9), taken as
/// anonymous memory above the tiny model's conversion of at most this many
/// times the largest weight: a convolution filter is transposed into
/// TensorFlow's layout in memory, one at a time (once the largest weight),
/// and the rest is room for I/O buffers.
const MEMORY_FACTOR: u64 = 2;

/// Interval at which the sampled run reads `/proc/PID/status`.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(1);

struct Options {
    repeats: usize,
    runs: usize,
    threads: Vec<usize>,
    batches: Vec<usize>,
    image: usize,
    dir: PathBuf,
    doc: Option<PathBuf>,
    cli: Option<PathBuf>,
    onnx2tf: bool,
    /// Timed onnx2tf rounds; `None`: as many as `repeats`.
    onnx2tf_repeats: Option<usize>,
}

fn parse_list(text: &str) -> anyhow::Result<Vec<usize>> {
    let list = text
        .split(',')
        .map(|n| n.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("bad list {text:?}: expected numbers separated by commas"))?;
    if list.is_empty() || list.contains(&0) {
        bail!("bad list {text:?}: expected positive numbers");
    }
    Ok(list)
}

fn parse_options(root: &Path, args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        repeats: 5,
        runs: 20,
        threads: vec![1, 2],
        batches: vec![1, 8],
        image: 224,
        dir: root.join("target").join("onnx-bench"),
        doc: Some(root.join("docs").join("performance.md")),
        cli: None,
        onnx2tf: false,
        onnx2tf_repeats: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--repeats" => options.repeats = value()?.parse().context("--repeats")?,
            "--runs" => options.runs = value()?.parse().context("--runs")?,
            "--threads" => options.threads = parse_list(value()?)?,
            "--batches" => options.batches = parse_list(value()?)?,
            "--image" => options.image = value()?.parse().context("--image")?,
            "--dir" => options.dir = PathBuf::from(value()?),
            "--doc" => options.doc = Some(PathBuf::from(value()?)),
            "--no-doc" => options.doc = None,
            "--cli" => options.cli = Some(PathBuf::from(value()?)),
            "--onnx2tf" => options.onnx2tf = true,
            "--onnx2tf-repeats" => {
                options.onnx2tf_repeats = Some(value()?.parse().context("--onnx2tf-repeats")?);
            }
            _ => bail!("unknown argument {arg:?}\n{USAGE}"),
        }
    }
    // The stem and four stride-2 stages need at least 32 pixels.
    if options.repeats == 0 || options.runs == 0 || options.image < 32 {
        bail!("--repeats and --runs must be positive, --image at least 32\n{USAGE}");
    }
    match options.onnx2tf_repeats {
        Some(0) => bail!("--onnx2tf-repeats must be positive\n{USAGE}"),
        Some(_) if !options.onnx2tf => bail!("--onnx2tf-repeats needs --onnx2tf\n{USAGE}"),
        _ => {}
    }
    Ok(options)
}

/// What `onnx_bench.py build` says about one model.
#[derive(Debug, Deserialize)]
struct ModelInfo {
    path: PathBuf,
    file_bytes: u64,
    parameters: u64,
    largest_initializer: String,
    largest_initializer_bytes: u64,
    nodes: u64,
    ops: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Deserialize)]
struct Models {
    model: ModelInfo,
    tiny: ModelInfo,
}

/// What `onnx_bench.py infer` measured at one thread count.
#[derive(Debug, Deserialize)]
struct Inference {
    threads: usize,
    tensorflow: String,
    onnxruntime: String,
    /// `TF_ENABLE_ONEDNN_OPTS` as the Python side saw it.
    onednn: String,
    transposes: u64,
    /// Transposes one run executes (functions counted per call).
    executed_transposes: u64,
    /// With `--onnx2tf`: its signature's input shape (-1 for unknown).
    #[serde(default)]
    onnx2tf_input_shape: Vec<i64>,
    #[serde(default)]
    onnx2tf_transposes: u64,
    #[serde(default)]
    onnx2tf_executed_transposes: u64,
    batches: Vec<BatchTimes>,
}

#[derive(Debug, Deserialize)]
struct BatchTimes {
    batch: usize,
    largest_difference: f64,
    largest_output: f64,
    tf_seconds: Vec<f64>,
    ort_seconds: Vec<f64>,
    /// With `--onnx2tf`: onnx2tf's SavedModel against onnxruntime, and its runs.
    #[serde(default)]
    onnx2tf_largest_difference: f64,
    #[serde(default)]
    onnx2tf_seconds: Vec<f64>,
}

/// A child process that ran to a successful exit.
pub(crate) struct Finished {
    /// Spawn to exit.
    pub(crate) seconds: f64,
    /// Its peak resident set (`ru_maxrss`), bytes.
    pub(crate) max_rss: u64,
    /// User plus system CPU seconds.
    pub(crate) cpu_seconds: f64,
    pub(crate) stdout: String,
}

/// Peaks seen by reading `/proc/PID/status` every [`SAMPLE_INTERVAL`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SampledPeaks {
    anon: u64,
    file: u64,
    samples: usize,
}

/// `RssAnon` and `RssFile` of a `/proc/PID/status`, bytes; `None` once the
/// process has exited (a zombie's status has no memory lines).
fn rss_parts(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("RssAnon:")?, field("RssFile:")?))
}

/// Runs `command` to completion, stdout and stderr into files under
/// `scratch`, and measures it; with `sample`, also the sampled peaks.
pub(crate) fn run_measured(
    command: &mut Command,
    scratch: &Path,
    sample: bool,
) -> anyhow::Result<(Finished, SampledPeaks)> {
    let (out_path, err_path) = (scratch.join("stdout.txt"), scratch.join("stderr.txt"));
    let shown = format!("{command:?}");
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?)
        .spawn()
        .with_context(|| format!("starting {shown}"))?;
    let pid = child.id();
    let mut peaks = SampledPeaks::default();
    if sample {
        let status_path = format!("/proc/{pid}/status");
        while let Some((anon, file)) = fs::read_to_string(&status_path)
            .ok()
            .as_deref()
            .and_then(rss_parts)
        {
            peaks.anon = peaks.anon.max(anon);
            peaks.file = peaks.file.max(file);
            peaks.samples += 1;
            std::thread::sleep(SAMPLE_INTERVAL);
        }
    }
    let (status, usage) = wait_with_usage(pid)?;
    let seconds = started.elapsed().as_secs_f64();
    // `wait_with_usage` reaped it: `Child` must not wait again (dropping it does not).
    drop(child);
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!(
            "{shown} failed (wait status {status}): {}",
            fs::read_to_string(&err_path).unwrap_or_default()
        );
    }
    let timeval = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Ok((
        Finished {
            seconds,
            max_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
            cpu_seconds: timeval(usage.ru_utime) + timeval(usage.ru_stime),
            stdout: fs::read_to_string(&out_path)?,
        },
        peaks,
    ))
}

/// Runs `command`, stdout and stderr into files under `scratch`, until its
/// stdout holds `marker`: the time from spawn to that line, after which the
/// process is killed (its CPU time and peak RSS, from `wait4`, are up to the
/// kill). An exit before the line is an error with its stderr.
fn run_until_printed(
    command: &mut Command,
    scratch: &Path,
    marker: &str,
) -> anyhow::Result<Finished> {
    let (out_path, err_path) = (scratch.join("stdout.txt"), scratch.join("stderr.txt"));
    let shown = format!("{command:?}");
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?)
        .spawn()
        .with_context(|| format!("starting {shown}"))?;
    let seconds = loop {
        let printed = fs::read(&out_path).unwrap_or_default();
        if printed
            .windows(marker.len())
            .any(|window| window == marker.as_bytes())
        {
            break started.elapsed().as_secs_f64();
        }
        if child.try_wait()?.is_some() {
            bail!(
                "{shown} exited before printing {marker:?}: {}",
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Killing an exited but unreaped child is harmless (it is a zombie).
    let _ = child.kill();
    let (_, usage) = wait_with_usage(child.id())?;
    drop(child);
    let timeval = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Ok(Finished {
        seconds,
        max_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        cpu_seconds: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        stdout: fs::read_to_string(&out_path)?,
    })
}

/// Waits for the child `pid` with `wait4`: its wait status and its own
/// resource usage (unlike `getrusage(RUSAGE_CHILDREN)`, which keeps the
/// largest peak of every child waited for).
#[allow(unsafe_code)]
fn wait_with_usage(pid: u32) -> anyhow::Result<(libc::c_int, libc::rusage)> {
    let pid = libc::pid_t::try_from(pid).context("process id out of range")?;
    let mut status: libc::c_int = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    loop {
        // SAFETY: `status` and `usage` are valid for writes for the whole
        // call; `wait4` writes nothing else.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()) };
        if reaped == pid {
            // SAFETY: `rusage` holds integers only, so its all-zero start is
            // a valid value, and `wait4` filled it for the reaped child.
            return Ok((status, unsafe { usage.assume_init() }));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error).context("wait4");
        }
    }
}

/// The counts `savedmodel export --onnx` prints:
/// `(TensorFlow nodes, variables, transposes)` and the version's path.
fn parse_export_output(stdout: &str) -> Option<((u64, u64, u64), PathBuf)> {
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("exported ONNX model"))?;
    let counts = &summary[summary.rfind('(')? + 1..];
    let number_before = |word: &str| -> Option<u64> {
        let end = counts.find(word)?;
        counts[..end]
            .split([' ', ','])
            .rfind(|w| !w.is_empty())?
            .parse()
            .ok()
    };
    let path = stdout.lines().find_map(|l| l.strip_prefix("path: "))?;
    Some((
        (
            number_before(" TensorFlow nodes")?,
            number_before(" variables")?,
            number_before(" transposes")?,
        ),
        PathBuf::from(path.trim()),
    ))
}

/// The runs of one command.
#[derive(Default)]
struct Series {
    seconds: Vec<f64>,
    max_rss: Vec<u64>,
    cpu_seconds: Vec<f64>,
}

impl Series {
    fn push(&mut self, run: &Finished) {
        self.seconds.push(run.seconds);
        self.max_rss.push(run.max_rss);
        self.cpu_seconds.push(run.cpu_seconds);
    }

    fn peak_rss(&self) -> u64 {
        self.max_rss.iter().copied().max().unwrap_or(0)
    }
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn command_output(command: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{command:?}");
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {shown}"))?;
    if !output.status.success() {
        bail!("{shown} failed ({})", output.status);
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Everything one run measured, for the report.
struct Results {
    date: String,
    load_start: String,
    load_end: String,
    models: Models,
    version: Series,
    tiny: Series,
    model: Series,
    tiny_peaks: SampledPeaks,
    model_peaks: SampledPeaks,
    /// TensorFlow nodes, variables and transposes the export printed.
    counts: (u64, u64, u64),
    inference: Vec<Inference>,
    onnx2tf: Option<Onnx2tfRuns>,
    seconds: f64,
}

/// onnx2tf's conversions of the same models.
struct Onnx2tfRuns {
    /// `onnx2tf.__version__` and `tf.__version__` in its virtualenv.
    versions: String,
    tiny: Series,
    model: Series,
}

/// Makes sure the onnx2tf bench virtualenv holds the pins of
/// [`ONNX2TF_REQUIREMENTS`]; returns its `bin` directory.
///
/// A stamp holding a copy of the requirements it was installed from makes
/// the next call cheap; an interpreter that does not start, or a missing or
/// different stamp, means (re)installing.
fn ensure_onnx2tf_venv(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join(ONNX2TF_VENV);
    let bin = venv.join("bin");
    let python = bin.join("python");
    let stamp_path = venv.join(ONNX2TF_STAMP);
    let requirements = root.join(ONNX2TF_REQUIREMENTS);
    let pins = fs::read_to_string(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let starts = |python: &Path| {
        python.exists()
            && Command::new(python)
                .args(["-c", ""])
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    };
    if starts(&python) && fs::read_to_string(&stamp_path).is_ok_and(|s| s == pins) {
        println!("onnx-bench: {} is up to date", venv.display());
        return Ok(bin);
    }
    let how = format!(
        "creating the onnx2tf bench virtualenv {} from {} (needs PyPI and about 3 GB; \
         `rm -r {}` to start over)",
        venv.display(),
        requirements.display(),
        venv.display()
    );
    let install = || -> anyhow::Result<()> {
        if !starts(&python) {
            let base = std::env::var("SAVEDMODEL_PYTHON3").unwrap_or_else(|_| "python3".to_owned());
            crate::tf_env::run_echoed(
                "onnx-bench",
                Command::new(&base)
                    .args(["-m", "venv", "--clear"])
                    .arg(&venv),
            )?;
        }
        // An interrupted install must not look finished.
        let _ = fs::remove_file(&stamp_path);
        crate::tf_env::run_echoed(
            "onnx-bench",
            Command::new(&python)
                .args(["-m", "pip", "install", "--disable-pip-version-check", "-r"])
                .arg(&requirements),
        )?;
        crate::tf_env::run_echoed(
            "onnx-bench",
            Command::new(&python)
                .args(["-c", "import onnx2tf, tensorflow as tf; print('onnx2tf', onnx2tf.__version__, 'tensorflow', tf.__version__)"])
                .env("TF_CPP_MIN_LOG_LEVEL", "2"),
        )?;
        fs::write(&stamp_path, &pins).with_context(|| format!("writing {}", stamp_path.display()))
    };
    install().context(how)?;
    Ok(bin)
}

/// Runs the task.
pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let options = parse_options(root, args)?;
    let started = Instant::now();
    let load_start = load_average();
    let date = command_output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .map(|d| d.trim().to_owned())
        .unwrap_or_default();
    let python = crate::tf_env::python(root)?;
    let onnx2tf_bin = if options.onnx2tf {
        Some(ensure_onnx2tf_venv(root)?)
    } else {
        None
    };
    let cli = match &options.cli {
        Some(cli) => cli.clone(),
        None => {
            let status = Command::new("cargo")
                .args(["build", "--release", "--quiet", "-p", "savedmodel-cli"])
                .current_dir(root)
                .status()?;
            if !status.success() {
                bail!("building the release savedmodel binary failed");
            }
            root.join("target/release/savedmodel")
        }
    };
    let dir = &options.dir;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let script = root.join("tests/python/onnx_bench.py");

    println!("onnx-bench: building the models in {}", dir.display());
    let built = command_output(
        Command::new(&python)
            .arg(&script)
            .arg("build")
            .arg(dir)
            .args(["--image", &options.image.to_string()]),
    )?;
    let models: Models = serde_json::from_str(built.trim())
        .with_context(|| format!("reading what onnx_bench.py build printed: {built:?}"))?;

    // Conversions: one untimed round, then the timed ones.
    let (mut version, mut tiny, mut model) =
        (Series::default(), Series::default(), Series::default());
    let mut counts = (0, 0, 0);
    let mut saved_model = PathBuf::new();
    let export = |onnx: &Path, base: &Path, sample: bool| {
        let _ = fs::remove_dir_all(base);
        run_measured(
            Command::new(&cli)
                .arg("export")
                .arg("--onnx")
                .arg(onnx)
                .arg("--base")
                .arg(base),
            dir,
            sample,
        )
    };
    let (tiny_base, model_base) = (dir.join("base-tiny"), dir.join("base-model"));
    for round in 0..=options.repeats {
        println!(
            "onnx-bench: conversion round {round} of {}{}",
            options.repeats,
            if round == 0 { " (untimed)" } else { "" }
        );
        let (v, _) = run_measured(Command::new(&cli).arg("--version"), dir, false)?;
        let (t, _) = export(&models.tiny.path, &tiny_base, false)?;
        let (m, _) = export(&models.model.path, &model_base, false)?;
        (counts, saved_model) = parse_export_output(&m.stdout)
            .with_context(|| format!("unexpected output of savedmodel export: {:?}", m.stdout))?;
        if round > 0 {
            version.push(&v);
            tiny.push(&t);
            model.push(&m);
        }
    }
    let (_, tiny_peaks) = export(&models.tiny.path, &tiny_base, true)?;
    let (_, model_peaks) = export(&models.model.path, &model_base, true)?;

    let onnx2tf = match &onnx2tf_bin {
        Some(bin) => Some(convert_with_onnx2tf(bin, &options, &models)?),
        None => None,
    };
    let onnx2tf_saved_model = dir.join("onnx2tf-model");

    let threads: Vec<String> = options.threads.iter().map(ToString::to_string).collect();
    let batches: Vec<String> = options.batches.iter().map(ToString::to_string).collect();
    let mut inference = Vec::new();
    for threads in &threads {
        println!("onnx-bench: inference with {threads} thread(s)");
        let text = command_output(
            Command::new(&python)
                .arg(&script)
                .arg("infer")
                .arg(&models.model.path)
                .arg(&saved_model)
                .args(["--threads", threads])
                .args(["--batches", &batches.join(",")])
                .args(["--runs", &options.runs.to_string()])
                .args(["--image", &options.image.to_string()])
                .args(
                    onnx2tf
                        .as_ref()
                        .map(|_| {
                            [
                                std::ffi::OsStr::new("--onnx2tf"),
                                onnx2tf_saved_model.as_os_str(),
                            ]
                        })
                        .into_iter()
                        .flatten(),
                ),
        )?;
        inference.push(
            serde_json::from_str::<Inference>(text.trim())
                .with_context(|| format!("reading what onnx_bench.py infer printed: {text:?}"))?,
        );
    }
    let _ = fs::remove_dir_all(&tiny_base);

    let results = Results {
        date,
        load_start,
        load_end: load_average(),
        models,
        version,
        tiny,
        model,
        tiny_peaks,
        model_peaks,
        counts,
        inference,
        onnx2tf,
        seconds: started.elapsed().as_secs_f64(),
    };
    let section = render(&options, &results);
    println!("{section}");
    if let Some(doc) = &options.doc {
        crate::doc_section::replace(doc, SECTION, &section)?;
        println!(
            "onnx-bench: wrote the section {SECTION:?} of {}",
            doc.display()
        );
    }
    Ok(())
}

/// Times onnx2tf converting the tiny model and the model, as whole
/// processes: one untimed conversion of the tiny model, then
/// `--onnx2tf-repeats` (default `--repeats`) rounds of both. onnx2tf simplifies
/// its input file in place, so each conversion starts from a fresh copy
/// (made before the clock starts), into a fresh output directory. Leaves
/// the model's SavedModel in `DIR/onnx2tf-model`.
fn convert_with_onnx2tf(
    bin: &Path,
    options: &Options,
    models: &Models,
) -> anyhow::Result<Onnx2tfRuns> {
    let dir = &options.dir;
    // onnx2tf runs the `onnxsim` command of its virtualenv.
    let path = std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))?;
    let versions = command_output(
        Command::new(bin.join("python"))
            .args(["-c", "import onnx2tf, tensorflow as tf; print(f'onnx2tf {onnx2tf.__version__} with TensorFlow {tf.__version__}')"])
            .env("TF_CPP_MIN_LOG_LEVEL", "2"),
    )?
    .trim()
    .to_owned();
    let input_dir = dir.join("onnx2tf-input");
    fs::create_dir_all(&input_dir).with_context(|| format!("creating {}", input_dir.display()))?;
    let convert = |onnx: &Path, name: &str| -> anyhow::Result<Finished> {
        let input = input_dir.join(format!("{name}.onnx"));
        fs::copy(onnx, &input)
            .with_context(|| format!("copying {} to {}", onnx.display(), input.display()))?;
        let out = dir.join(format!("onnx2tf-{name}"));
        let _ = fs::remove_dir_all(&out);
        let run = run_until_printed(
            Command::new(bin.join("onnx2tf"))
                .arg("-i")
                .arg(&input)
                .arg("-o")
                .arg(&out)
                .args(ONNX2TF_ARGS)
                .env("PATH", &path)
                // Its log lines reach the file as printed.
                .env("PYTHONUNBUFFERED", "1")
                .current_dir(dir),
            dir,
            ONNX2TF_SAVED_MODEL_DONE,
        )?;
        if !out.join("saved_model.pb").is_file() {
            bail!("onnx2tf wrote no saved_model.pb into {}", out.display());
        }
        Ok(run)
    };
    let (mut tiny, mut model) = (Series::default(), Series::default());
    let repeats = options.onnx2tf_repeats.unwrap_or(options.repeats);
    for round in 0..=repeats {
        println!(
            "onnx-bench: onnx2tf conversion round {round} of {repeats}{}",
            if round == 0 { " (untimed)" } else { "" }
        );
        let t = convert(&models.tiny.path, "tiny")?;
        // The untimed round converts the tiny model only: it brings
        // onnx2tf's Python and TensorFlow into the page cache, and a
        // conversion of the model takes minutes.
        if round > 0 {
            model.push(&convert(&models.model.path, "model")?);
            tiny.push(&t);
        }
    }
    let _ = fs::remove_dir_all(&input_dir);
    let _ = fs::remove_dir_all(dir.join("onnx2tf-tiny"));
    Ok(Onnx2tfRuns {
        versions,
        tiny,
        model,
    })
}

fn command_line(options: &Options) -> String {
    let mut line = "cargo xtask onnx-bench".to_owned();
    let list = |v: &[usize]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    for (flag, value, default) in [
        ("--repeats", options.repeats.to_string(), "5".to_owned()),
        ("--runs", options.runs.to_string(), "20".to_owned()),
        ("--threads", list(&options.threads), "1,2".to_owned()),
        ("--batches", list(&options.batches), "1,8".to_owned()),
        ("--image", options.image.to_string(), "224".to_owned()),
    ] {
        if value != default {
            let _ = write!(line, " {flag} {value}");
        }
    }
    if let Some(cli) = &options.cli {
        let _ = write!(line, " --cli {}", cli.display());
    }
    if options.onnx2tf {
        line.push_str(" --onnx2tf");
    }
    if let Some(n) = options.onnx2tf_repeats {
        let _ = write!(line, " --onnx2tf-repeats {n}");
    }
    line
}

/// Bytes in MiB (GiB from 1 GiB), or KiB below 1 MiB.
fn mib(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    } else {
        format_bytes(bytes as f64)
    }
}

/// The markdown section.
fn render(options: &Options, r: &Results) -> String {
    let m = &r.models.model;
    let mut w = String::new();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let _ = writeln!(w, "{SECTION}\n");
    let _ = writeln!(
        w,
        "Command: `{}` (`xtask/src/onnx_bench.rs`, `tests/python/onnx_bench.py`), {}, {:.0} s. \
         Machine: {cpus} CPUs ({}), shared with other sessions that compile and test on it: load \
         average {} at the start, {} at the end (above {cpus} means processes waited for a CPU); \
         the CPU times say how much of a wall time was work.\n",
        command_line(options),
        r.date,
        r.seconds,
        cpu_model(),
        r.load_start,
        r.load_end,
    );
    let ops = m
        .ops
        .iter()
        .map(|(op, n)| format!("{n} {op}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        w,
        "Model: a ResNet-style CNN built with the `onnx` helper API from a fixed seed, NCHW, \
         input `image` [batch, 3, {image}, {image}] with a dynamic batch, output `logits` \
         [batch, 1000]: a 7x7/2 stem, basic residual blocks at widths 64-128-256-512 \
         ([3, 4, 6, 4] blocks), GlobalAveragePool, Flatten, Gemm; opset 21. {} nodes ({ops}); \
         {} float32 parameters; `model.onnx` {} with the weights inside; largest initializer \
         `{}`, {}. The baseline `tiny.onnx` is the same graph at width 8, one block per stage \
         ({} parameters, {}).\n",
        m.nodes,
        thousands(m.parameters),
        mib(m.file_bytes),
        m.largest_initializer,
        mib(m.largest_initializer_bytes),
        thousands(r.models.tiny.parameters),
        mib(r.models.tiny.file_bytes),
        image = options.image,
    );

    let _ = writeln!(w, "### Conversion, as a whole process\n");
    let _ = writeln!(
        w,
        "{}, one untimed round, then {} rounds of the three commands in turn, \
         each conversion into a fresh `--base` (atomic publish with fsync, as always), warm page \
         cache. Wall time from spawn to exit; peak RSS is the process's own `ru_maxrss` \
         (`wait4`), the largest over the rounds; CPU is user + system time.\n",
        options.cli.as_ref().map_or_else(
            || "Release `savedmodel`".to_owned(),
            |cli| format!("`savedmodel` from `--cli {}`", cli.display())
        ),
        options.repeats
    );
    let _ = writeln!(
        w,
        "| command | min | median | max | CPU (median) | peak RSS |\n|---|---:|---:|---:|---:|---:|"
    );
    for (name, series) in [
        ("`savedmodel --version`", &r.version),
        ("`savedmodel export --onnx tiny.onnx`", &r.tiny),
        ("`savedmodel export --onnx model.onnx`", &r.model),
    ] {
        let (min, median, max) = min_median_max(&series.seconds);
        let cpu = min_median_max(&series.cpu_seconds).1;
        let _ = writeln!(
            w,
            "| {name} | {} | {} | {} | {} | {} |",
            format_seconds(min),
            format_seconds(median),
            format_seconds(max),
            format_seconds(cpu),
            mib(series.peak_rss())
        );
    }
    let (nodes, variables, transposes) = r.counts;
    let median = min_median_max(&r.model.seconds).1;
    let above_tiny = r.model.peak_rss().saturating_sub(r.tiny.peak_rss());
    let anon_above = r.model_peaks.anon.saturating_sub(r.tiny_peaks.anon);
    let _ = writeln!(
        w,
        "\nThe export printed: {nodes} TensorFlow nodes, {variables} variables, {transposes} \
         transposes.\n"
    );
    let _ = writeln!(
        w,
        "Memory: the conversion's peak RSS is {} above the tiny model's, against a model file of \
         {} and a largest weight of {}. The RSS counts the pages of the memory-mapped model that \
         the weights were streamed from (file-backed, the page cache's: no copy). One more \
         conversion of each, with `/proc/PID/status` read every {} ms ({} and {} samples), \
         separates them: peak anonymous memory (`RssAnon`: heap, copies) {} for `model.onnx` \
         against {} for `tiny.onnx`, {} above it; peak file-backed memory (`RssFile`: the \
         binary, the mapped model) {} and {}.\n",
        mib(above_tiny),
        mib(m.file_bytes),
        mib(m.largest_initializer_bytes),
        SAMPLE_INTERVAL.as_millis(),
        r.tiny_peaks.samples,
        r.model_peaks.samples,
        mib(r.model_peaks.anon),
        mib(r.tiny_peaks.anon),
        mib(anon_above),
        mib(r.model_peaks.file),
        mib(r.tiny_peaks.file),
    );
    let verdict = |met: bool| if met { "yes" } else { "**no**" };
    let _ = writeln!(
        w,
        "| target (issue 12, point 9) | measured | met |\n|---|---|---|"
    );
    let _ = writeln!(
        w,
        "| converting a 25M-parameter CNN takes well under a second as a whole process (taken as under {}) | median {}, max {} | {} |",
        format_seconds(CONVERSION_TARGET),
        format_seconds(median),
        format_seconds(min_median_max(&r.model.seconds).2),
        verdict(median < CONVERSION_TARGET)
    );
    let _ = writeln!(
        w,
        "| memory bounded by the largest tensor (taken as: anonymous memory above the tiny model's conversion, sampled, at most {MEMORY_FACTOR}x the largest weight) | {} against {} | {} |",
        mib(anon_above),
        mib(MEMORY_FACTOR * m.largest_initializer_bytes),
        verdict(anon_above <= MEMORY_FACTOR * m.largest_initializer_bytes)
    );
    let _ = writeln!(
        w,
        "| a plain CNN ends with at most 2 `Transpose` nodes | {transposes} | {} |\n",
        verdict(transposes <= 2)
    );

    let _ = writeln!(
        w,
        "### Inference latency: TensorFlow on the converted SavedModel against onnxruntime\n"
    );
    let (tf_version, ort_version, onednn, in_graph) =
        r.inference
            .first()
            .map_or(("?", "?", "?".to_owned(), 0), |i| {
                let onednn = if i.onednn == "unset" {
                    "TensorFlow's default, on: `TF_ENABLE_ONEDNN_OPTS` unset".to_owned()
                } else {
                    format!("`TF_ENABLE_ONEDNN_OPTS={}`", i.onednn)
                };
                (
                    i.tensorflow.as_str(),
                    i.onnxruntime.as_str(),
                    onednn,
                    i.transposes,
                )
            });
    let _ = writeln!(
        w,
        "TensorFlow {tf_version} loads the converted SavedModel into a `tf.compat.v1.Session` \
         (as TensorFlow Serving does; `intra_op_parallelism_threads` and \
         `inter_op_parallelism_threads` both set to the thread count) and runs its \
         `serving_default` signature (oneDNN custom operations: {onednn}); onnxruntime {ort_version} runs `model.onnx` (CPU provider, \
         default graph optimizations and thread spinning, `intra_op_num_threads` and `inter_op_num_threads` both set \
         to the thread count). Same random input for both; outputs checked to agree (largest \
         difference below). One process per thread count; 3 untimed runs of each, then {} runs \
         of each alternating, each timed around `Session.run` / `InferenceSession.run` alone. \
         `Transpose` nodes in `saved_model.pb` (graph and function library): {in_graph}.\n",
        options.runs
    );
    let _ = writeln!(
        w,
        "| threads | batch | TensorFlow min | median | max | onnxruntime min | median | max | TensorFlow / onnxruntime (medians) | largest difference (largest output) |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for inference in &r.inference {
        for b in &inference.batches {
            let tf = min_median_max(&b.tf_seconds);
            let ort = min_median_max(&b.ort_seconds);
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1e} ({:.1}) |",
                inference.threads,
                b.batch,
                format_seconds(tf.0),
                format_seconds(tf.1),
                format_seconds(tf.2),
                format_seconds(ort.0),
                format_seconds(ort.1),
                format_seconds(ort.2),
                ratio(tf.1 / ort.1),
                b.largest_difference,
                b.largest_output
            );
        }
    }
    if let Some(onnx2tf) = &r.onnx2tf {
        render_onnx2tf(&mut w, options, r, onnx2tf);
    }
    w
}

/// The subsection against onnx2tf (issue 13, point 8).
fn render_onnx2tf(w: &mut String, options: &Options, r: &Results, o: &Onnx2tfRuns) {
    let verdict = |met: bool| if met { "yes" } else { "**no**" };
    let _ = writeln!(w, "\n### Against onnx2tf\n");
    let args = if ONNX2TF_ARGS.is_empty() {
        String::new()
    } else {
        format!(" {}", ONNX2TF_ARGS.join(" "))
    };
    let _ = writeln!(
        w,
        "{} (the bench virtualenv `{ONNX2TF_VENV}`, pinned in `{ONNX2TF_REQUIREMENTS}`; not \
         used by CI or the tests) converts the same two models with `onnx2tf -i MODEL.onnx -o \
         DIR{args}`, after our conversions in the same run: one untimed conversion of `tiny.onnx` (it brings \
         onnx2tf's Python and TensorFlow into the page cache), then {} rounds of both, each a \
         process timed from spawn to the line `{ONNX2TF_SAVED_MODEL_DONE}` it prints once its \
         SavedModel is written (so its Python and TensorFlow start-up count, as our process's \
         does; CPU time and peak RSS from `wait4` include the `onnxsim` processes it runs), \
         from a fresh copy of the model (onnx2tf rewrites its input in place; the copy is made \
         before the clock starts) into a fresh directory, warm page cache. onnx2tf then goes on \
         to TFLite, which it always does and which took more than 35 minutes for `model.onnx` \
         by hand; the bench kills it at that line, so its times below are its time to a \
         SavedModel, a lower bound of its end-to-end time.\n",
        o.versions,
        options.onnx2tf_repeats.unwrap_or(options.repeats)
    );
    let _ = writeln!(
        w,
        "| conversion | min | median | max | CPU (median) | peak RSS | onnx2tf / ours (medians) |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    let ours_model = min_median_max(&r.model.seconds).1;
    let ours_tiny = min_median_max(&r.tiny.seconds).1;
    let theirs_model = min_median_max(&o.model.seconds).1;
    let theirs_tiny = min_median_max(&o.tiny.seconds).1;
    for (name, series, speedup) in [
        ("`savedmodel export --onnx tiny.onnx`", &r.tiny, None),
        (
            "`onnx2tf -i tiny.onnx`",
            &o.tiny,
            Some(theirs_tiny / ours_tiny),
        ),
        ("`savedmodel export --onnx model.onnx`", &r.model, None),
        (
            "`onnx2tf -i model.onnx`",
            &o.model,
            Some(theirs_model / ours_model),
        ),
    ] {
        let (min, median, max) = min_median_max(&series.seconds);
        let _ = writeln!(
            w,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            format_seconds(min),
            format_seconds(median),
            format_seconds(max),
            format_seconds(min_median_max(&series.cpu_seconds).1),
            mib(series.peak_rss()),
            speedup.map_or_else(String::new, |x| format!("{x:.0}x")),
        );
    }
    let Some(first) = r.inference.first() else {
        return;
    };
    let shape = first
        .onnx2tf_input_shape
        .iter()
        .map(|&d| if d < 0 { "?".to_owned() } else { d.to_string() })
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        w,
        "\nInference: TensorFlow {} runs onnx2tf's SavedModel in a session of its own, configured \
         as ours (same thread counts), in the same processes as the table above: each round \
         times our SavedModel, onnxruntime, then onnx2tf's. onnx2tf's `serving_default` input \
         is [{shape}]; a channels-last input gets the same image transposed to NHWC outside the \
         timed call. Its outputs are checked against onnxruntime's like ours. `Transpose` \
         nodes in `saved_model.pb` (graph and function library): ours {}, onnx2tf's {}; \
         executed per run (the graph's own, plus those of every function it calls, per call; a \
         Keras SavedModel keeps several copies of each function): ours {}, onnx2tf's {}.\n",
        first.tensorflow,
        first.transposes,
        first.onnx2tf_transposes,
        first.executed_transposes,
        first.onnx2tf_executed_transposes,
    );
    let _ = writeln!(
        w,
        "| threads | batch | ours median | onnx2tf min | median | max | ours / onnx2tf (medians) | onnx2tf's largest difference |\n|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut slowest = 0.0_f64;
    for inference in &r.inference {
        for b in &inference.batches {
            let ours = min_median_max(&b.tf_seconds).1;
            let theirs = min_median_max(&b.onnx2tf_seconds);
            slowest = slowest.max(ours / theirs.1);
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} | {:.1e} |",
                inference.threads,
                b.batch,
                format_seconds(ours),
                format_seconds(theirs.0),
                format_seconds(theirs.1),
                format_seconds(theirs.2),
                ratio(ours / theirs.1),
                b.onnx2tf_largest_difference,
            );
        }
    }
    let speedup = theirs_model / ours_model;
    let leaves_transposes = first.onnx2tf_executed_transposes > first.executed_transposes;
    let _ = writeln!(
        w,
        "\n| target (issue 13, point 8) | measured | met |\n|---|---|---|"
    );
    let _ = writeln!(
        w,
        "| conversion at least {ONNX2TF_SPEEDUP_TARGET:.0}x faster than onnx2tf (to its SavedModel, a lower bound of end to end; `model.onnx`, wall-time medians) | {speedup:.0}x ({} against {}; CPU time {:.0}x; tiny: {:.0}x) | {} |",
        format_seconds(theirs_model),
        format_seconds(ours_model),
        min_median_max(&o.model.cpu_seconds).1 / min_median_max(&r.model.cpu_seconds).1,
        theirs_tiny / ours_tiny,
        verdict(speedup >= ONNX2TF_SPEEDUP_TARGET)
    );
    let _ = writeln!(
        w,
        "| our graph's TensorFlow latency no slower than onnx2tf's, every thread count and batch (medians) | largest ours / onnx2tf {} | {} |",
        ratio(slowest),
        verdict(slowest <= 1.0)
    );
    let _ = writeln!(
        w,
        "| faster where onnx2tf leaves transposes | onnx2tf executes {} `Transpose` per run, ours {} | {} |",
        first.onnx2tf_executed_transposes,
        first.executed_transposes,
        if leaves_transposes {
            verdict(slowest < 1.0)
        } else {
            "n/a: onnx2tf leaves none here"
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_export_summary() {
        let out = "exported ONNX model /t/model.onnx (474 TensorFlow nodes, 76 variables, 2 transposes)\n\
                   path: /t/base/1\nversion: 1\n";
        assert_eq!(
            parse_export_output(out),
            Some(((474, 76, 2), PathBuf::from("/t/base/1")))
        );
        assert_eq!(parse_export_output("path: /t/base/1\n"), None);
    }

    #[test]
    fn reads_memory_lines_until_the_process_is_gone() {
        let live =
            "Name:\tsavedmodel\nVmHWM:\t  9000 kB\nRssAnon:\t  1200 kB\nRssFile:\t  3400 kB\n";
        assert_eq!(rss_parts(live), Some((1200 * 1024, 3400 * 1024)));
        assert_eq!(rss_parts("Name:\tsavedmodel\nState:\tZ (zombie)\n"), None);
    }

    #[test]
    fn onnx2tf_repeats_need_onnx2tf() {
        let root = Path::new("/r");
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let options = parse_options(root, &args(&["--onnx2tf", "--onnx2tf-repeats", "2"])).unwrap();
        assert!(options.onnx2tf && options.onnx2tf_repeats == Some(2));
        assert!(parse_options(root, &args(&["--onnx2tf-repeats", "2"])).is_err());
        assert!(parse_options(root, &args(&["--onnx2tf", "--onnx2tf-repeats", "0"])).is_err());
    }

    #[test]
    fn lists_are_positive_numbers() {
        assert_eq!(parse_list("1, 2,4").unwrap(), vec![1, 2, 4]);
        assert!(parse_list("1,x").is_err());
        assert!(parse_list("0").is_err());
    }

    #[test]
    fn measures_a_child_process_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (run, peaks) = run_measured(
            Command::new("sh").args(["-c", "sleep 0.1; echo hi"]),
            dir.path(),
            true,
        )
        .unwrap();
        assert_eq!(run.stdout, "hi\n");
        assert!(run.max_rss > 0 && run.seconds >= 0.1, "{} s", run.seconds);
        assert!(peaks.samples > 0 && peaks.file > 0, "{peaks:?}");
        let failed = run_measured(Command::new("sh").args(["-c", "exit 3"]), dir.path(), false);
        assert!(failed.is_err());
    }
}
