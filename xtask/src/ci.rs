//! `cargo xtask ci`: everything CI checks, in the order that fails fastest.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

/// Runs one step, printing its name and duration; fails when it fails.
fn step(
    root: &Path,
    name: &str,
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> anyhow::Result<()> {
    println!("==> {name}: {program} {}", args.join(" "));
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(root)
        .status()
        .with_context(|| format!("starting {program}"))?;
    println!("<== {name}: {:.1} s", started.elapsed().as_secs_f64());
    if !status.success() {
        bail!("step {name:?} failed ({status})");
    }
    Ok(())
}

/// Seconds each fuzz target runs in CI (13 targets: a little over 2
/// minutes, plus the unoptimized build of `fuzz/`, 4 minutes on a 2-core
/// machine shared with other builds).
const FUZZ_SMOKE_SECONDS: &str = "10";

/// fmt, TensorFlow virtualenv, clippy, tests (TensorFlow ones included), the
/// Python wheel's tests, docs, a short run of every fuzz target.
pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    step(
        root,
        "fmt",
        "cargo",
        &["fmt", "--all", "--", "--check"],
        &[],
    )?;
    let python = crate::tf_env::ensure(root)?;
    let python = python.to_string_lossy().into_owned();
    step(
        root,
        "clippy",
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    step(
        root,
        "test",
        "cargo",
        &["test", "--workspace", "--locked"],
        &[("SAVEDMODEL_TF_PYTHON", python.as_str())],
    )?;
    println!("==> python: build the wheel, install it into a fresh virtualenv, pytest");
    let python_started = Instant::now();
    crate::python_pkg::test(root, Path::new(&python))?;
    println!(
        "<== python: {:.1} s",
        python_started.elapsed().as_secs_f64()
    );
    step(
        root,
        "doc",
        "cargo",
        &["doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    // Every fuzz target built and run briefly from its seeds: one that
    // stops building or crashes at once fails CI. Longer campaigns:
    // `cargo xtask fuzz --seconds N`.
    step(
        root,
        "fuzz",
        "cargo",
        &["xtask", "fuzz", "--dev", "--seconds", FUZZ_SMOKE_SECONDS],
        &[],
    )?;
    println!(
        "ci: all steps passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
