#![doc = include_str!("../README.md")]

/// The protobuf types SavedModels are made of (re-exported from
/// `savedmodel-proto`).
pub use savedmodel_proto as proto;

mod error;
pub use error::{Error, Result};

/// The graph builder this crate writes SavedModels from (re-exported from
/// `savedmodel-graph`): typed ops, tensors, TensorFlow's op registry.
pub use savedmodel_graph::{self as graph, op_registry, ops};

// Public modules are the ones whose path tells the user something: the
// reader's family of types, TensorFlow Serving's rules and constants, the
// `saved_model_cli show` texts, the validator's report. Everything else is
// private and its public items are re-exported here.
pub mod reader;
pub mod serving;
pub mod show;
pub mod validate;

pub use reader::SavedModel;

// Writing: graph construction, variables and saver, SavedModelBuilder.
mod assets;
mod builder;
mod example;
mod fingerprint;
mod saver;
mod signature;
mod warmup;

pub use builder::{
    ASSETS_COLLECTION, GPU_TAG, MAIN_OP_COLLECTION, MetaGraphBuilder, SAVED_MODEL_SCHEMA_VERSION,
    SavedModelBuilder, SavedModelFormat,
};
pub use example::ExampleBuilder;
pub use fingerprint::{
    FINGERPRINT_PRODUCER, fingerprint_cat64, fingerprint_def, fingerprint_from_bytes,
    fingerprint64, singleprint,
};
pub use savedmodel_graph::{DType, Graph, Operation, Output, Shape, Tensor};
pub use saver::add_saver;
pub use signature::{
    check_classify, check_regress, classify_signature, init_op_signature, predict_signature,
    regress_signature, signature_with_default, tensor_info,
};
pub use warmup::WarmupRequests;

#[cfg(test)]
mod tests_hostile;
