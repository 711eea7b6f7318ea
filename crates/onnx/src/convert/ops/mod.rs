//! One converter per ONNX operator, grouped by family, each family a file
//! with a `lookup` from op type to converter.
//!
//! A converter reads its node's inputs from the [`Ctx`] (as constants, or
//! as TensorFlow tensors in the layout it needs), builds TensorFlow nodes,
//! and defines the node's outputs in the [`Ctx`]. Attributes and opset
//! differences are handled by the converter; an attribute value it does not
//! support is an error naming the node.

mod arg;
mod array;
#[cfg(test)]
mod array_tests;
mod attention;
mod build;
mod carried;
mod control;
mod detect;
mod dft;
mod elementwise;
mod grid_sample;
mod index;
mod legacy;
mod loss;
mod math;
mod ml;
mod more;
mod nn;
mod norm;
mod optional;
mod pool;
mod quant;
mod random;
mod reduce;
mod resize;
mod rnn;
mod roi_align;
mod sequence;
mod shape;
mod slice;
mod squeeze;
mod strings;
mod unique;
#[cfg(test)]
mod window_tests;

use super::context::Ctx;
use crate::{NodeView, Result};
pub(crate) use sequence::{sequence_from_signature, sequence_to_signature};

/// A converter: builds the TensorFlow nodes for one ONNX node.
pub(crate) type Converter = fn(&mut Ctx, &NodeView<'_>) -> Result<()>;

/// The converter of `op_type` in the default domain.
fn lookup(op_type: &str) -> Option<Converter> {
    elementwise::lookup(op_type)
        .or_else(|| nn::lookup(op_type))
        .or_else(|| shape::lookup(op_type))
        .or_else(|| reduce::lookup(op_type))
        .or_else(|| arg::lookup(op_type))
        .or_else(|| math::lookup(op_type))
        .or_else(|| norm::lookup(op_type))
        .or_else(|| loss::lookup(op_type))
        .or_else(|| more::lookup(op_type))
        .or_else(|| array::lookup(op_type))
        .or_else(|| slice::lookup(op_type))
        .or_else(|| index::lookup(op_type))
        .or_else(|| resize::lookup(op_type))
        .or_else(|| control::lookup(op_type))
        .or_else(|| quant::lookup(op_type))
        .or_else(|| strings::lookup(op_type))
        .or_else(|| detect::lookup(op_type))
        .or_else(|| roi_align::lookup(op_type))
        .or_else(|| random::lookup(op_type))
        .or_else(|| optional::lookup(op_type))
        .or_else(|| unique::lookup(op_type))
        .or_else(|| attention::lookup(op_type))
        .or_else(|| grid_sample::lookup(op_type))
        .or_else(|| dft::lookup(op_type))
        .or_else(|| sequence::lookup(op_type))
        .or_else(|| rnn::lookup(op_type))
}

/// The `ai.onnx.ml` domain, whose operators `ml.rs` converts.
const ML_DOMAIN: &str = "ai.onnx.ml";

/// The converter of `op_type` in `domain` (`""` and `"ai.onnx"` are the
/// default domain).
fn lookup_in(domain: &str, op_type: &str) -> Option<Converter> {
    match domain {
        "" | "ai.onnx" => lookup(op_type),
        ML_DOMAIN => ml::lookup(op_type),
        _ => None,
    }
}

/// Whether the converter has a converter for `op_type` of the default
/// domain.
pub(crate) fn is_supported(op_type: &str) -> bool {
    lookup(op_type).is_some()
}

/// Why `node` cannot be converted at all, or `None` when a converter
/// exists for its domain and op type.
pub(crate) fn unsupported(node: &NodeView<'_>) -> Result<Option<String>> {
    let domain = node.domain();
    if !matches!(domain, "" | "ai.onnx" | ML_DOMAIN) {
        return Ok(Some(format!(
            "operators of domain {domain:?} are not supported"
        )));
    }
    if lookup_in(domain, node.op_type()).is_none() {
        return Ok(Some("operator not supported".to_owned()));
    }
    if domain == ML_DOMAIN {
        // Its opsets count from 1: the default domain's legacy rules are
        // not for it.
        return Ok(None);
    }
    if let Some(opset) = legacy::legacy_opset(node)? {
        return legacy::unsupported(node, opset);
    }
    control::unsupported_in_bodies(node)
}

/// Converts one node.
pub(crate) fn convert_node(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    ctx.begin_node(node);
    // The second node of a fusion whose first node defined its output
    // (`fuse.rs`); ONNX defines each value once, so nothing else can have.
    if let Some(out) = output_name(node, 0)
        && ctx.fusions.is_fused_output(out)
        && ctx.is_defined(out)
    {
        return Ok(());
    }
    let converter = lookup_in(node.domain(), node.op_type())
        .ok_or_else(|| ctx.error("operator not supported"))?;
    // Values of a type TensorFlow carries in another (`Carried`) mean
    // something else to every op but these: the rule's one home.
    let takes_carried = matches!(node.op_type(), "Cast" | "CastLike" | "Identity");
    let mut carried_input = None;
    let mut sequence_input = None;
    let takes_sequences = sequence::takes_sequences(node.op_type());
    for name in node.proto().input.iter().filter(|n| !n.is_empty()) {
        if let Some(e) = ctx.sequence(name) {
            if !takes_sequences {
                return Err(ctx.error(format!(
                    "input {name:?} is a sequence, which {} does not take",
                    node.op_type()
                )));
            }
            sequence_input.get_or_insert(e);
        }
        if let Some(c) = ctx.carried(name) {
            if !takes_carried {
                return Err(ctx.error(format!(
                    "input {name:?} is {}, which TensorFlow has no kernels for (the graph carries it {}); only Cast, CastLike and Identity take it",
                    c.onnx_name(),
                    c.describe()
                )));
            }
            carried_input.get_or_insert(c);
        }
    }
    converter(ctx, node)?;
    if let (Some(c), "Identity", Some(out)) = (carried_input, node.op_type(), output_name(node, 0))
    {
        ctx.set_carried(out, c);
    }
    if let (Some((dtype, shape)), "Identity", Some(out)) =
        (sequence_input, node.op_type(), output_name(node, 0))
    {
        ctx.set_sequence(out, dtype, shape);
    }
    Ok(())
}

/// The name of input `i` of `node`, `None` when absent or empty (an
/// omitted optional input).
pub(crate) fn input_name<'a>(node: &NodeView<'a>, i: usize) -> Option<&'a str> {
    node.proto()
        .input
        .get(i)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// The name of required input `i` of `node`.
pub(crate) fn required_input<'a>(ctx: &Ctx, node: &NodeView<'a>, i: usize) -> Result<&'a str> {
    input_name(node, i).ok_or_else(|| ctx.error(format!("input {i} is required")))
}

/// The name of output `i` of `node`, `None` when absent or empty.
pub(crate) fn output_name<'a>(node: &NodeView<'a>, i: usize) -> Option<&'a str> {
    node.proto()
        .output
        .get(i)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// The name of output 0 of `node`.
pub(crate) fn output0<'a>(ctx: &Ctx, node: &NodeView<'a>) -> Result<&'a str> {
    output_name(node, 0).ok_or_else(|| ctx.error("the node has no output"))
}

/// `axis` made non-negative for a value of `rank`, or an error.
pub(crate) fn normalize_axis(ctx: &Ctx, axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(ctx.error(format!("axis {axis} is out of range for rank {rank}")))
    }
}

/// The rank of ONNX value `name`, or an error when it is unknown.
pub(crate) fn rank_of(ctx: &Ctx, name: &str) -> Result<usize> {
    ctx.slot(name)?
        .shape
        .rank()
        .ok_or_else(|| ctx.error(format!("the rank of {name:?} is unknown")))
}

/// A TensorFlow-legal name for a node's helper nodes: `base/what`.
pub(crate) fn sub(base: &str, what: &str) -> String {
    format!("{base}/{what}")
}
