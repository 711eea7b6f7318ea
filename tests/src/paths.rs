//! Where the workspace, the shared fixtures and the TensorFlow virtualenv are.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives inside the workspace")
        .to_path_buf()
}

/// `../shared/fixtures/tensorflow_serving` beside the workspace, or
/// `$SAVEDMODEL_FIXTURES` when set. Panics with a clear message when absent:
/// the fixture tests never skip themselves.
pub fn serving_fixtures() -> PathBuf {
    let dir = match std::env::var_os("SAVEDMODEL_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("../shared/fixtures/tensorflow_serving"),
    };
    assert!(
        dir.is_dir(),
        "fixtures not found at {}: clone the project beside ../shared or set SAVEDMODEL_FIXTURES",
        dir.display()
    );
    dir
}

/// Every file under `dir`, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The `savedmodel` binary, built once per test process.
///
/// Cargo only hands integration tests the binaries of their own package
/// (`CARGO_BIN_EXE_*`), and the binary lives in `savedmodel-cli`; so the
/// first call runs `cargo build -p savedmodel-cli --bin savedmodel` (a no-op
/// when it is up to date; Cargo does not hold its build lock while tests
/// run) and takes the binary from the same target directory as the test
/// executable (`target/<profile>/deps/it-*` -> `target/<profile>/savedmodel`).
pub fn savedmodel_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable in target/<profile>/deps");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args([
                "build",
                "--quiet",
                "-p",
                "savedmodel-cli",
                "--bin",
                "savedmodel",
            ])
            .current_dir(workspace_root());
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build");
        assert!(status.success(), "cargo build -p savedmodel-cli failed");
        let bin = profile_dir.join(format!("savedmodel{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}
