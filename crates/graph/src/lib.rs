//! Build TensorFlow `GraphDef`s without TensorFlow.
//!
//! [`Graph`] appends `NodeDef`s the way TensorFlow's Python graph
//! construction does (unique names, name scopes, devices, control
//! dependencies), and every [`Output`] carries its dtype and static
//! [`Shape`], so signatures built from it get exact `TensorInfo`s. The typed
//! constructors for the ops a serving graph needs live in [`ops`] as methods
//! of [`Graph`]; [`Graph::op`] builds any other op.
//!
//! Every node is checked against TensorFlow's own op definitions
//! ([`op_registry`], the `OpList` of TensorFlow 2.21 embedded in the crate):
//! an op type TensorFlow does not register, an attr the op does not have,
//! an attr of the wrong type or a missing required attr is an error when the
//! node is built, not when TensorFlow Serving loads the model. Attrs equal to
//! their registered default are left out (`strip_default_attrs`), so older
//! TensorFlow builds accept the graph too.
//!
//! Variables are resource variables whose values stay out of the `GraphDef`:
//! a [`Tensor`] moved in, or a [`TensorSource`] read only when the
//! checkpoint is written. Writing the graph, its variables and its
//! signatures as a SavedModel is the `savedmodel` crate's job.
//!
//! ```
//! use savedmodel_graph::{DType, Graph, Shape, Tensor};
//!
//! let mut g = Graph::new();
//! let x = g.placeholder("x", DType::Float, Shape::new(&[-1, 2]))?;
//! let w = g.constant("w", Tensor::new(&[2, 1], &[0.5f32, -1.0])?)?;
//! let y = g.matmul("y", &x, &w)?;
//! assert_eq!(y.shape().dims(), Some(&[-1, 1][..]));
//! assert_eq!(y.name(), "y:0");
//!
//! // TensorFlow's op definitions are the judge of every node.
//! assert!(g.op("NoSuchOp", "n").build().is_err());
//! let def = g.to_graph_def();
//! assert_eq!(def.node.len(), 3);
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use savedmodel_proto as proto;

mod assets;
mod error;
mod graph;
pub mod op_registry;
pub mod ops;
mod tensor;

pub use assets::{Asset, check_asset_filename, check_asset_source};
pub use error::{Error, Result};
pub use graph::{
    AssetRecord, Attr, Graph, OpBuilder, Operation, Output, Partition, Shape, VariableRecord,
    is_valid_node_name,
};
pub use savedmodel_checkpoint::DType;
pub use tensor::{
    Chunks, ElementType, SourceData, Tensor, TensorElements, TensorSource, VariableValue,
    shape_proto,
};
