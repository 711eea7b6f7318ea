#![doc = include_str!("../README.md")]

/// The protobuf types SavedModels are made of (re-exported from
/// `savedmodel-proto`).
pub use savedmodel_proto as proto;

mod error;
pub use error::{Error, Result};

/// The graph builder this crate writes SavedModels from (re-exported from
/// `savedmodel-graph`): typed ops, tensors, TensorFlow's op registry.
pub use savedmodel_graph::{self as graph, op_registry, ops};

pub mod reader;
pub mod serving;
pub mod show;
pub mod validate;

pub use reader::SavedModel;

// Writing: graph construction, variables and saver, SavedModelBuilder.
mod assets;
pub mod builder;
pub mod example;
pub mod fingerprint;
pub mod saver;
pub mod signature;
pub mod warmup;

pub use builder::{MetaGraphBuilder, SavedModelBuilder, SavedModelFormat};
pub use savedmodel_graph::{DType, Graph, Operation, Output, Shape, Tensor};

#[cfg(test)]
mod tests_hostile;
