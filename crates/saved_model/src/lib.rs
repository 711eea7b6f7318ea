#![doc = include_str!("../README.md")]

/// The protobuf types SavedModels are made of (re-exported from
/// `savedmodel-proto`).
pub use savedmodel_proto as proto;

mod error;
pub use error::{Error, Result};

pub mod op_registry;
pub mod reader;
pub mod serving;
pub mod show;
pub mod validate;

pub use reader::SavedModel;

// Writing: graph construction, variables and saver, SavedModelBuilder.
pub mod assets;
pub mod builder;
pub mod example;
pub mod export;
pub mod fingerprint;
pub mod graph;
pub mod ops;
pub mod saver;
pub mod signature;
pub mod tables;
pub mod tensor;
pub mod warmup;

pub use builder::{MetaGraphBuilder, SavedModelBuilder, SavedModelFormat};
pub use graph::{Graph, Operation, Output, Shape};
pub use savedmodel_checkpoint::DType;
pub use tensor::Tensor;

#[cfg(test)]
mod tests_hostile;
