//! `cargo xtask tf-env`: the TensorFlow virtualenv that judges the tests.
//!
//! Creates `<root>/.tf-venv` (git-ignored) with `python3 -m venv`, installs the
//! pins of `tests/python/requirements.txt`, then `tensorflow-serving-api` and
//! `silero-vad` with `--no-deps` (the first depends on the full `tensorflow`
//! package, which would install over `tensorflow-cpu`; the second on torch,
//! when the tests only read the ONNX files its wheel ships), checks that
//! TensorFlow imports, and writes a stamp
//! file inside the virtualenv. When the stamp matches the pins and the
//! interpreter runs, nothing else happens, so calling this before every test
//! run is cheap.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

/// Installed with `--no-deps`, after the requirements file.
const NO_DEPS_PINS: [&str; 2] = ["tensorflow-serving-api==2.21.0", "silero-vad==6.2.3"];

/// The TensorFlow version the pins must produce.
const TENSORFLOW_VERSION: &str = "2.21.0";

/// Virtualenv directory under the workspace root.
const VENV_DIR: &str = ".tf-venv";

/// Stamp file inside the virtualenv: the fingerprint of what was installed.
const STAMP_FILE: &str = ".savedmodel-tf-env";

/// Pins, relative to the workspace root.
const REQUIREMENTS: &str = "tests/python/requirements.txt";

/// Imports everything the tests use; run once after installing.
const VERIFY_SCRIPT: &str = "\
import ml_dtypes, numpy, safetensors
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
import importlib.util, onnx, onnxruntime, skl2onnx, sklearn
assert importlib.util.find_spec('silero_vad'), 'silero-vad is not installed'
assert tf.__version__ == VERSION, 'tensorflow ' + tf.__version__ + ', expected ' + VERSION
print('tf-env: tensorflow', tf.__version__, 'numpy', numpy.__version__, 'ml_dtypes', ml_dtypes.__version__)
";

/// The TensorFlow python a task runs: `$SAVEDMODEL_TF_PYTHON` when set (as
/// for the Rust tests, so a worktree can share one virtualenv), else the
/// project's virtualenv from [`ensure`], created when missing.
pub(crate) fn python(root: &Path) -> anyhow::Result<PathBuf> {
    match std::env::var_os("SAVEDMODEL_TF_PYTHON") {
        Some(python) => Ok(PathBuf::from(python)),
        None => ensure(root),
    }
}

/// Makes sure `<root>/.tf-venv` holds the pinned TensorFlow; returns its python.
///
/// Adopts an existing virtualenv (installs the pins into it and verifies them).
/// The interpreter used to create a new one is `$SAVEDMODEL_PYTHON3`, else
/// `python3` from `PATH`.
pub(crate) fn ensure(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join(VENV_DIR);
    let python = venv.join("bin").join("python");
    let stamp_path = venv.join(STAMP_FILE);
    let requirements = root.join(REQUIREMENTS);
    let pins =
        fs::read(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = expected_stamp(&pins);

    let python_runs = runs(&python);
    if python_runs && fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        println!(
            "tf-env: {} is up to date ({})",
            venv.display(),
            stamp.trim_end()
        );
        return Ok(python);
    }

    let started = Instant::now();
    if !python_runs {
        let base = std::env::var("SAVEDMODEL_PYTHON3").unwrap_or_else(|_| "python3".to_owned());
        let mut args = vec!["-m".to_owned(), "venv".to_owned()];
        if venv.exists() {
            println!(
                "tf-env: {} exists but its python does not run: recreating it",
                venv.display()
            );
            args.push("--clear".to_owned());
        } else {
            println!("tf-env: creating {}", venv.display());
        }
        args.push(venv.to_string_lossy().into_owned());
        run(Command::new(&base).args(&args))?;
        if !runs(&python) {
            bail!("{} does not run after `{base} -m venv`", python.display());
        }
    } else {
        println!(
            "tf-env: adopting {} (no matching stamp): installing the pins",
            venv.display()
        );
    }

    // An interrupted install must not look finished.
    if stamp_path.exists() {
        fs::remove_file(&stamp_path)
            .with_context(|| format!("removing {}", stamp_path.display()))?;
    }
    let requirements_arg = requirements.to_string_lossy().into_owned();
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "-r",
        &requirements_arg,
    ]))?;
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-deps",
        ])
        .args(NO_DEPS_PINS))?;
    let script = format!("VERSION = {TENSORFLOW_VERSION:?}\n{VERIFY_SCRIPT}");
    run(Command::new(&python)
        .args(["-c", &script])
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .env("TF_ENABLE_ONEDNN_OPTS", "0"))?;

    fs::write(&stamp_path, &stamp).with_context(|| format!("writing {}", stamp_path.display()))?;
    println!(
        "tf-env: {} ready in {:.0} s; stamped {}",
        venv.display(),
        started.elapsed().as_secs_f64(),
        stamp_path.display()
    );
    Ok(python)
}

/// The stamp's contents: a fingerprint of the pins, so editing
/// `requirements.txt` or a `--no-deps` pin triggers a reinstall.
fn expected_stamp(requirements: &[u8]) -> String {
    let mut hasher = Fnv1a64::default();
    hasher.write(requirements);
    for pin in NO_DEPS_PINS {
        hasher.write(b"\0");
        hasher.write(pin.as_bytes());
    }
    format!("requirements-fnv1a64={:016x}\n", hasher.0)
}

/// Whether `python` exists and starts.
fn runs(python: &Path) -> bool {
    python.exists()
        && Command::new(python)
            .args(["-c", ""])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Runs a command with inherited output, echoing it first.
fn run(command: &mut Command) -> anyhow::Result<()> {
    run_echoed("tf-env", command)
}

/// Runs a command with inherited output, echoing it first after `tag`
/// (inline scripts shown as `'<script>'`); shared by the xtask commands
/// that drive Python.
pub(crate) fn run_echoed(tag: &str, command: &mut Command) -> anyhow::Result<()> {
    let shown = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command
            .get_args()
            .map(|a| {
                let a = a.to_string_lossy();
                if a.contains('\n') {
                    "'<script>'".to_owned()
                } else {
                    a.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("{tag}: $ {shown}");
    let status = command
        .status()
        .with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// 64-bit FNV-1a: tiny, stable across Rust releases (unlike `DefaultHasher`).
struct Fnv1a64(u64);

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a64 {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        let hash = |s: &[u8]| {
            let mut h = Fnv1a64::default();
            h.write(s);
            h.0
        };
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn stamp_changes_with_the_pins() {
        assert_ne!(expected_stamp(b"numpy==1\n"), expected_stamp(b"numpy==2\n"));
        assert!(expected_stamp(b"x").starts_with("requirements-fnv1a64="));
    }
}
