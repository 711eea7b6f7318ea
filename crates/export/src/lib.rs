//! Export from weights and a model spec: the library behind
//! `savedmodel export`.
//!
//! A [`ExportSpec`] (TOML, see `docs/spec.md`) names an architecture (linear
//! or logistic regression, softmax classifier, multilayer perceptron), the
//! tensors of a weights file that hold each layer, the input width and
//! `tf.Example` feature name, the class labels and an optional input
//! normalization. [`PreparedModel::prepare`] resolves it against a
//! [`WeightSource`] and checks everything before anything is written;
//! [`PreparedModel::into_export`] builds the graph, the classify/regress and
//! predict signatures and the warmup requests; [`Export`] writes the
//! SavedModel (into a staging directory of `savedmodel_layout::publish`,
//! which is what `savedmodel export` does).
//!
//! **Memory.** An export holds no copy of its weights. From a file opened
//! with [`open_weights`], each variable keeps a reference to the
//! memory-mapped file ([`WeightsFile`]) and its tensor is read from the map
//! only when the checkpoint is written: a `float32` weight goes from the map
//! to the data file in one write, a `float16`, `bfloat16` or `float64` one
//! is converted to `float32` 1 MiB at a time. [`Weights`] held in memory are
//! shared the same way. So, whatever the model's size, an export needs the
//! graph (kilobytes), the checkpoint writer's 1 MiB buffer and about 100
//! bytes of index entry per variable; the pages of the mapped file count in
//! the process's resident set while they are read, but they are the page
//! cache's, shared and reclaimable, not copies. (A `.npz` member stored
//! compressed, or a big-endian checkpoint, is decoded into memory one tensor
//! at a time, when checked and again when written. [`PreparedModel::predict`]
//! reads one layer's weights into memory at a time; it is meant for small
//! models.) `docs/performance.md` has the measurements.
//!
//! ```
//! use savedmodel_export::{ExportOptions, ExportSpec, PreparedModel, WarmupExamples, Weights};
//!
//! let spec = ExportSpec::from_toml(
//!     r#"
//!     [model]
//!     architecture = "softmax_classifier"
//!     input_width = 2
//!     [classes]
//!     labels = ["left", "right"]
//!     [[layers]]
//!     kernel = "dense/kernel"
//!     bias = "dense/bias"
//!     "#,
//!     "model.toml",
//! )?;
//! // Weights from memory here; `open_weights("w.safetensors")` reads a file.
//! let mut weights = Weights::new();
//! weights.insert_f32("dense/kernel", &[2, 2], &[1.0, -1.0, -1.0, 1.0])?;
//! weights.insert_f32("dense/bias", &[2], &[0.0, 0.0])?;
//!
//! let model = PreparedModel::prepare(&spec, &weights)?; // every check happens here
//! let scores = model.predict(&[3.0, 0.0])?;             // the same model, in Rust
//! assert!(scores[0] > scores[1]);
//!
//! let mut options = ExportOptions::default();
//! options.warmup = WarmupExamples::Generated(2);
//! let export = model.into_export(&options)?;
//! let keys: Vec<&str> = export.summary().signatures.iter().map(|s| s.key.as_str()).collect();
//! assert_eq!(keys, ["predict", "serving_default"]);
//!
//! let dir = tempfile::tempdir()?;
//! export.write_to(dir.path().join("1"))?;
//! assert!(dir.path().join("1/saved_model.pb").is_file());
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod files;
mod model;
mod spec;
mod weights;
mod write;

pub use error::{Error, Result};
pub use files::{WeightsFile, open_weights};
pub use model::{ExportGraph, Head, MAX_VOCABULARY_BYTES, PreparedLayer, PreparedModel};
pub use spec::{
    Activation, Architecture, ClassLabels, DEFAULT_FEATURE, ExportSpec, INLINE_SPEC_PATH,
    LayerSpec, MAX_WIDTH, Normalization, Task, Values, WeightLayout,
};
pub use weights::{IN_MEMORY_ORIGIN, SUPPORTED_DTYPES, WeightSource, WeightTensor, Weights};
pub use write::{
    Export, ExportOptions, ExportSummary, MAX_WARMUP_EXAMPLES, PREDICT_SIGNATURE_KEY,
    SignatureSummary, TensorSummary, WARMUP_RECORDS_PER_EXAMPLE, WarmupExamples,
};

#[cfg(test)]
mod tests;
