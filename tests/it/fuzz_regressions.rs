//! Inputs the fuzz targets (`fuzz/fuzz_targets/`, `cargo xtask fuzz`) found
//! crashing, kept in `tests/fuzz/<target>/`, each run through the entry
//! point its target calls and checked to give the clear error the fix
//! gives.

use std::path::PathBuf;
use std::sync::Arc;

use savedmodel_onnx::{ExportOptions, OnnxExport, OnnxModel};
use savedmodel_tests::paths::workspace_root;

fn input(target: &str, name: &str) -> Vec<u8> {
    let path: PathBuf = workspace_root().join("tests/fuzz").join(target).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `OnnxExport::new` on a model the `onnx` target found: the error text.
fn onnx_export_error(name: &str) -> String {
    let model = OnnxModel::from_bytes(&input("onnx", name)).unwrap();
    let err = OnnxExport::new(&Arc::new(model), &ExportOptions::default()).unwrap_err();
    err.to_string()
}

#[test]
fn onnx_pooling_with_a_zero_stride_is_refused() {
    // MaxPool with strides [0, 2]: divided by zero computing the output size.
    let err = onnx_export_error("maxpool_zero_stride.onnx");
    assert!(
        err.contains("strides value 0 is not between 1 and 16777216"),
        "{err}"
    );
}
