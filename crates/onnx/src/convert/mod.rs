//! ONNX graph -> TensorFlow graph.
//!
//! [`convert`] walks the ONNX graph's nodes in their (topological) order and
//! builds the equivalent TensorFlow nodes with `savedmodel-graph`, which
//! checks every node against TensorFlow 2.21's op registry. Three ideas keep
//! the result exact and simple:
//!
//! - **Values known at conversion time are folded.** Small initializers,
//!   `Constant` nodes and everything computed only from them (the
//!   `Shape -> Gather -> Concat -> Reshape` chains exporters emit, with
//!   `Shape` of a statically known shape being a constant too) are
//!   [`Tensor`](savedmodel_graph::Tensor)s in the converter, not nodes; they become `Const` nodes only
//!   where a TensorFlow op consumes them.
//! - **Layout is a property of a value, not a guess.** ONNX is channels
//!   first; TensorFlow's CPU kernels for convolution and pooling are
//!   channels last. Each value may exist in its ONNX layout, its
//!   channels-last layout, or both (`context.rs: Slot`); a convolution asks
//!   for its input channels last and gives its output channels last,
//!   elementwise ops keep whatever layout their inputs have, and any op that
//!   cares about axes asks for the ONNX layout. A `Transpose` is built only
//!   when a layout is asked for that a value does not have yet, once per
//!   value, so a plain CNN gets one at its input and at most one at its
//!   head (none when the head pools to `[N, C, 1, 1]` and flattens, whose
//!   element order is the same in both layouts; see `ops/shape.rs`).
//! - **Weights are not copied.** Initializers above
//!   [`ConvertOptions::const_limit`] bytes become resource variables whose
//!   values are read from the memory-mapped model when the checkpoint is
//!   written (`weights.rs`).
//! - **Pairs TensorFlow runs as one are converted as one.** A
//!   `BatchNormalization` after a `Conv` is folded into the filter and the
//!   bias; a `MatMul` plus a bias vector becomes `MatMul` + `BiasAdd`, the
//!   patterns TensorFlow's remapper fuses with the activation after them
//!   (`fuse.rs`; [`ConvertOptions::optimize`]).
//! - **Loops stay loops.** `Loop`, `Scan`, and the recurrent layers `RNN`, `GRU`
//!   and `LSTM` (every direction, `sequence_lens`, initial states,
//!   peepholes, `clip`, `linear_before_reset`, `layout` 0 and 1), become
//!   TensorFlow `While` nodes whose body is a function of the graph's
//!   library, never unrolled: one loop per direction of a recurrent layer,
//!   its per-step outputs accumulated in a `TensorList` (`ops/control.rs`,
//!   `ops/rnn.rs`; `docs/formats.md` section 20).
//!
//! Every unsupported operator of the model is listed in one error before
//! anything is built ([`crate::Error::Unsupported`]).

mod constant;
mod context;
mod fuse;
mod ops;
mod weights;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use savedmodel_graph::{DType, Graph, Output, Shape};

use crate::proto::{TypeProto, ValueInfoProto, type_proto};
use crate::{Carried, Error, OnnxModel, Result};

use context::Ctx;
pub use context::SignatureTensor;

/// How to convert.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    /// Initializers larger than this many bytes become variables (in
    /// `variables/`); smaller ones are `Const` nodes (and are folded).
    pub const_limit: usize,
    /// The signature takes 4-D image inputs channels last (NHWC) instead of
    /// ONNX's NCHW, so the converted graph needs no input transpose.
    pub input_layout_nhwc: bool,
    /// Make dimension 0 of every input and output dynamic (-1), for models
    /// exported with a fixed batch of 1.
    pub dynamic_batch: bool,
    /// Fuse pairs of nodes where TensorFlow runs one op (or a pattern its
    /// remapper fuses) for two: `Conv` + `BatchNormalization`, `MatMul` +
    /// `Add` of a bias (`fuse.rs`). Results stay those of the unfused graph
    /// up to float rounding. On by default.
    pub optimize: bool,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self {
            const_limit: 1024,
            input_layout_nhwc: false,
            dynamic_batch: false,
            optimize: true,
        }
    }
}

/// A converted model: the TensorFlow graph and what its signature takes and
/// gives, in the ONNX graph's input and output order.
#[derive(Debug)]
pub struct Converted {
    /// The graph, variables included.
    pub graph: Graph,
    /// The signature's inputs.
    pub inputs: Vec<SignatureTensor>,
    /// The signature's outputs.
    pub outputs: Vec<SignatureTensor>,
    /// How many `Transpose` nodes the graph has.
    pub transposes: usize,
}

/// Converts `model`'s main graph to a TensorFlow graph.
///
/// Fails, before building anything, with every unsupported node listed;
/// then with the first node that cannot be converted as its inputs stand.
pub fn convert(model: &Arc<OnnxModel>, options: &ConvertOptions) -> Result<Converted> {
    let graph = model.graph();
    graph.check_topological_order()?;
    let mut unsupported = Vec::new();
    for node in graph.nodes() {
        if let Some(why) = ops::unsupported(&node)? {
            unsupported.push(format!(
                "  {} (domain {:?}, opset {}): {why}",
                node.label(),
                node.domain(),
                node.opset_version().unwrap_or(0)
            ));
        }
    }
    if !unsupported.is_empty() {
        return Err(Error::Unsupported {
            model: model.name().to_owned(),
            nodes: unsupported,
        });
    }

    let fusions = if options.optimize {
        fuse::Fusions::plan(model)?
    } else {
        fuse::Fusions::default()
    };
    let mut ctx = Ctx::new(Arc::clone(model), options.clone(), Arc::new(fusions));
    let proto = graph.proto();
    for init in &proto.initializer {
        ctx.add_initializer(init)?;
    }
    let mut inputs = Vec::new();
    for input in &proto.input {
        if graph.initializer(input.name()).is_some() {
            continue;
        }
        let (dtype, shape, carried, sequence) = value_type(model, input, options.dynamic_batch)?;
        inputs.push(ctx.add_input(input.name(), dtype, shape.clone(), carried)?);
        if sequence {
            ops::sequence_from_signature(&mut ctx, input.name(), dtype, &shape)?;
        }
    }
    for node in graph.nodes() {
        ops::convert_node(&mut ctx, &node)?;
    }
    let mut outputs = Vec::new();
    for output in &proto.output {
        let declared = value_type(model, output, options.dynamic_batch).ok();
        if ctx.sequence(output.name()).is_some() {
            ops::sequence_to_signature(&mut ctx, output.name())?;
        }
        let declared = declared.map(|(dtype, shape, carried, _)| (dtype, shape, carried));
        outputs.push(ctx.add_output(output.name(), declared)?);
    }
    let transposes = ctx
        .graph()
        .nodes()
        .iter()
        .filter(|n| n.op == "Transpose")
        .count();
    Ok(Converted {
        graph: ctx.into_graph(),
        inputs,
        outputs,
        transposes,
    })
}

/// Whether the converter handles operator `op_type` of the default ONNX
/// domain (some attribute values may still be refused).
pub fn is_supported(op_type: &str) -> bool {
    ops::is_supported(op_type)
}

/// The largest dimension a graph input or output may declare. No model
/// feeds a tensor with a dimension of 2^31 or more, and bounding them keeps
/// the shape arithmetic of the conversion (sums, windows, products of two
/// dimensions) inside `i64`.
pub const MAX_DECLARED_DIM: i64 = i32::MAX as i64;

/// The TensorFlow dtype and shape of a graph input or output (symbolic and
/// missing dimensions are -1), its ONNX type when the dtype carries another
/// ([`Carried`]), and whether it is a sequence of tensors, which crosses the
/// signature as its elements stacked along a new first axis (their dtype,
/// `[-1, element dims...]`). An optional is its value's type (a client
/// cannot send an empty one).
fn value_type(
    model: &OnnxModel,
    value: &ValueInfoProto,
    dynamic_batch: bool,
) -> Result<(DType, Shape, Option<Carried>, bool)> {
    let error = |detail: String| Error::Convert {
        model: model.name().to_owned(),
        node: format!("graph input/output {:?}", value.name()),
        detail,
    };
    let mut sequence = false;
    // An optional crosses the signature as its value, which must be there.
    let mut ty = value
        .r#type
        .as_ref()
        .and_then(|t: &TypeProto| t.value.as_ref());
    if let Some(type_proto::Value::OptionalType(o)) = ty {
        ty = o
            .elem_type
            .as_deref()
            .and_then(|t: &TypeProto| t.value.as_ref());
    }
    let tensor = match ty {
        Some(type_proto::Value::TensorType(t)) => t,
        Some(type_proto::Value::SequenceType(s)) => match s
            .elem_type
            .as_deref()
            .and_then(|t: &TypeProto| t.value.as_ref())
        {
            Some(type_proto::Value::TensorType(t)) => {
                sequence = true;
                t
            }
            _ => {
                return Err(error(
                    "is a sequence of something other than tensors (not supported as a graph input or output)".into(),
                ));
            }
        },
        Some(_) => {
            return Err(error(
                "is not a tensor (sequences, maps and optionals are not supported as graph inputs or outputs)".into(),
            ));
        }
        None => return Err(error("has no type".into())),
    };
    let carried = Carried::from_onnx(tensor.elem_type());
    let dtype = match carried {
        Some(c) => c.carrier(),
        None => crate::dtype_from_onnx(tensor.elem_type()).map_err(error)?,
    };
    let shape =
        match &tensor.shape {
            None => Shape::unknown(),
            Some(shape) => {
                let mut dims: Vec<i64> =
                    shape
                        .dim
                        .iter()
                        .map(|d| match d.value {
                            Some(crate::proto::tensor_shape_proto::dimension::Value::DimValue(
                                v,
                            )) if v > MAX_DECLARED_DIM => Err(error(format!(
                                "declares a dimension of {v}, above the limit of {MAX_DECLARED_DIM}"
                            ))),
                            Some(crate::proto::tensor_shape_proto::dimension::Value::DimValue(
                                v,
                            )) if v >= 0 => Ok(v),
                            _ => Ok(-1),
                        })
                        .collect::<Result<_>>()?;
                if dynamic_batch && !dims.is_empty() {
                    dims[0] = -1;
                }
                Shape::new(&dims)
            }
        };
    let shape = if sequence {
        match shape.dims() {
            Some(d) => {
                let mut dims = vec![-1];
                dims.extend_from_slice(d);
                Shape::new(&dims)
            }
            None => Shape::unknown(),
        }
    } else {
        shape
    };
    Ok((dtype, shape, carried, sequence))
}

/// The signature key for an ONNX value name: the name itself when it is a
/// valid TensorFlow node name, else the name with every other character
/// replaced by `_` (and a leading `_` dropped).
pub fn signature_key(onnx_name: &str) -> String {
    let mut key: String = onnx_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while key.starts_with(['_', '-', '/']) {
        key.remove(0);
    }
    if key.is_empty() {
        key = "value".to_owned();
    }
    key
}

/// The output of a converted graph for `name`, for tests and tools.
pub fn output_named<'a>(converted: &'a Converted, name: &str) -> Option<&'a Output> {
    converted
        .outputs
        .iter()
        .find(|o| o.onnx_name == name)
        .map(|o| &o.tensor)
}
