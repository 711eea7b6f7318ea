//! Shared helpers for savedmodel's integration tests: where the fixtures are,
//! and how to ask TensorFlow (installed by `cargo xtask tf-env`) to judge what
//! we wrote.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod layout_model;
pub mod moto;
pub mod onnx_build;
pub mod onnx_suite;
pub mod paths;
pub mod power_cut;
pub mod process;
pub mod tf;
