//! `savedmodel export` of a small MLP (256 -> 1024 -> 1024 -> 10, 1.3 M
//! float32 parameters) from a `.safetensors` file: spec checks, weights
//! read, graph built and the SavedModel written (without fsync, so the
//! numbers measure our work rather than the disk).
//!
//! The 100 M-parameter export against copying its weights file, with peak
//! memory, is `cargo xtask export-bench` (`xtask/src/export_bench.rs`).
#![allow(missing_docs, clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use savedmodel_export::{ExportOptions, ExportSpec, PreparedModel, open_weights};

const WIDTHS: [usize; 4] = [256, 1024, 1024, 10];

/// A `.safetensors` file of PyTorch-style `fcN.weight` (`[out, in]`) and
/// `fcN.bias` tensors.
fn write_weights(path: &Path) {
    let mut header = String::from("{");
    let mut data: Vec<u8> = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for (i, pair) in WIDTHS.windows(2).enumerate() {
        let (inputs, units) = (pair[0], pair[1]);
        for (suffix, shape) in [("weight", vec![units, inputs]), ("bias", vec![units])] {
            let count: usize = shape.iter().product();
            let start = data.len();
            for _ in 0..count {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let v = ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1;
                data.extend_from_slice(&v.to_le_bytes());
            }
            if header.len() > 1 {
                header.push(',');
            }
            header.push_str(&format!(
                "\"fc{}.{suffix}\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[{start},{}]}}",
                i + 1,
                data.len()
            ));
        }
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    f.write_all(header.as_bytes()).unwrap();
    f.write_all(&data).unwrap();
}

fn spec() -> String {
    let mut s = format!(
        "[model]\narchitecture = \"mlp\"\ntask = \"classifier\"\ninput_width = {}\nlayout = \"out_in\"\n",
        WIDTHS[0]
    );
    for i in 0..WIDTHS.len() - 1 {
        let activation = if i == WIDTHS.len() - 2 {
            "softmax"
        } else {
            "relu"
        };
        s.push_str(&format!(
            "[[layers]]\nkernel = \"fc{n}.weight\"\nbias = \"fc{n}.bias\"\nactivation = \"{activation}\"\n",
            n = i + 1
        ));
    }
    s
}

fn export(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("mlp.safetensors");
    write_weights(&weights);
    let spec = ExportSpec::from_toml(&spec(), "mlp.toml").unwrap();
    let mut options = ExportOptions::default();
    options.no_fsync = true;
    let mut n = 0u64;
    c.bench_function("export/mlp_1.3M_params_safetensors", |b| {
        b.iter(|| {
            n += 1;
            let source = open_weights(&weights).unwrap();
            let model = PreparedModel::prepare(&spec, &source).unwrap();
            let export = model.into_export(&options).unwrap();
            let out = dir.path().join(format!("v{n}"));
            export.write_to(&out).unwrap();
            std::fs::remove_dir_all(&out).unwrap();
        })
    });
}

criterion_group!(benches, export);
criterion_main!(benches);
