//! savedmodel's integration tests: one binary, a module per area.
#![allow(clippy::unwrap_used, missing_docs)]

mod checkpoint;
mod ckpt_cli;
mod diff;
mod export;
mod fuzz_regressions;
mod graph_view;
mod layout;
mod leftovers;
mod mutation;
mod objstore;
mod onnx;
mod power_cut;
mod proto_descriptors;
mod proto_roundtrip;
mod saved_model_build;
mod saved_model_read;
mod tf_oracle;
