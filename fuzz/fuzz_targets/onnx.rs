//! An ONNX model on arbitrary bytes, through `OnnxModel::from_bytes` (the
//! limit scan, decoding, version and external-data checks) and
//! `OnnxExport::new` (graph checks, shape inference, constant folding,
//! conversion, signature), what `savedmodel export-onnx` runs before
//! writing.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use savedmodel_onnx::{ExportOptions, OnnxExport, OnnxModel};

fuzz_target!(|data: &[u8]| {
    let Ok(model) = OnnxModel::from_bytes(data) else {
        return;
    };
    let model = Arc::new(model);
    let graph = model.graph();
    for node in graph.nodes() {
        let _ = node.label();
    }
    let _ = OnnxExport::new(&model, &ExportOptions::default());
});
