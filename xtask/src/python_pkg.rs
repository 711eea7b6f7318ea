//! `cargo xtask python-test` (and a step of `cargo xtask ci`): build the
//! `savedmodel` wheel with maturin, install it into a fresh virtualenv and
//! run its pytest suite (`crates/python/tests`) against the installed wheel.
//!
//! Two virtualenvs under `target/`: `py-build-venv` holds maturin (from
//! PyPI, pinned) and is reused; `py-wheel-venv` is recreated every run and
//! gets only the wheel, numpy, ml_dtypes and pytest, never TensorFlow. The
//! tests drive TensorFlow through `tests/python/oracle.py` in a subprocess
//! of the TensorFlow virtualenv's python, passed as `SAVEDMODEL_TF_PYTHON`.
//!
//! The wheel is built with cargo's dev profile, which shares its artifacts
//! with `cargo test` (dependencies are optimised there anyway, see the
//! workspace's `[profile.dev.package."*"]`); a wheel for distribution is
//! `maturin build --release` (README).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

/// maturin, from PyPI.
const MATURIN_PIN: &str = "maturin==1.16.0";

/// What the test virtualenv gets besides the wheel.
const TEST_REQUIREMENTS: [&str; 3] = ["numpy", "ml_dtypes", "pytest"];

/// Builds the wheel, installs it into a fresh virtualenv and runs pytest;
/// `tf_python` is the TensorFlow virtualenv's interpreter.
pub(crate) fn test(root: &Path, tf_python: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let target = root.join("target");
    let base = std::env::var("SAVEDMODEL_PYTHON3").unwrap_or_else(|_| "python3".to_owned());

    let wheel = build_wheel(root, &base, false)?;

    let test_venv = target.join("py-wheel-venv");
    run(Command::new(&base)
        .arg("-m")
        .arg("venv")
        .arg("--clear")
        .arg(&test_venv))?;
    let python = test_venv.join("bin").join("python");
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
        ])
        .arg(&wheel)
        .args(TEST_REQUIREMENTS))?;
    run(Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "crates/python/tests",
        ])
        .env("SAVEDMODEL_TF_PYTHON", tf_python)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(root))?;
    println!(
        "python-test: wheel built, installed and tested in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Builds the `savedmodel` wheel with maturin (installed into
/// `target/py-build-venv` when missing) for interpreter `base`, with cargo's
/// dev profile or `--release`; returns the wheel's path (the one file in
/// `target/wheels` or `target/wheels-release`).
pub(crate) fn build_wheel(root: &Path, base: &str, release: bool) -> anyhow::Result<PathBuf> {
    let target = root.join("target");
    let build_venv = target.join("py-build-venv");
    let maturin = build_venv.join("bin").join("maturin");
    if !runs(&maturin) {
        run(Command::new(base)
            .arg("-m")
            .arg("venv")
            .arg("--clear")
            .arg(&build_venv))?;
        run(Command::new(build_venv.join("bin").join("python")).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            MATURIN_PIN,
        ]))?;
    }
    let wheels = target.join(if release { "wheels-release" } else { "wheels" });
    if wheels.exists() {
        fs::remove_dir_all(&wheels).with_context(|| format!("removing {}", wheels.display()))?;
    }
    let mut build = Command::new(&maturin);
    build.args(["build", "--locked", "--interpreter", base]);
    if release {
        build.arg("--release");
    }
    run(build
        .arg("-m")
        .arg(root.join("crates/python/Cargo.toml"))
        .arg("-o")
        .arg(&wheels)
        .current_dir(root))?;
    single_wheel(&wheels)
}

/// The one `.whl` maturin wrote into `dir`.
fn single_wheel(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut wheels = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "whl") {
            wheels.push(path);
        }
    }
    match wheels.as_slice() {
        [wheel] => Ok(wheel.clone()),
        _ => bail!("expected one wheel in {}, found {wheels:?}", dir.display()),
    }
}

fn runs(program: &Path) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a command with inherited output, echoing it first.
fn run(command: &mut Command) -> anyhow::Result<()> {
    crate::tf_env::run_echoed("python-test", command)
}
