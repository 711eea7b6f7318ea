//! Optionals: `Optional`, `OptionalHasElement`, `OptionalGetElement`
//! (opsets 15 to 18), where whether an optional holds a value is known at
//! conversion, since TensorFlow's graph has no optional type:
//!
//! - an optional holding a value is that value (a tensor or a sequence):
//!   `Optional(x)` and `OptionalGetElement(x)` are `x` itself, and a graph
//!   input of an optional type is its value's type (a client cannot send
//!   an empty one, `convert::value_type`);
//! - `Optional()` without an input is empty: it has no tensor, and only
//!   `OptionalHasElement` may take it;
//! - `OptionalHasElement` is the constant `true` for a value, `false` for
//!   an empty optional or a missing input.
//!
//! An optional whose emptiness depends on run time (an `If` with an empty
//! optional in one branch only) is refused where the empty value is used.

use savedmodel_graph::Tensor;

use super::{Converter, input_name, output0};
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "Optional" => optional,
        "OptionalHasElement" => has_element,
        "OptionalGetElement" => get_element,
        _ => return None,
    };
    Some(f)
}

fn optional(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let out = output0(ctx, node)?;
    match input_name(node, 0) {
        Some(x) => ctx.alias(out, x),
        None => {
            ctx.set_empty_optional(out);
            Ok(())
        }
    }
}

fn has_element(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let out = output0(ctx, node)?;
    let holds = match input_name(node, 0) {
        None => false,
        Some(x) if ctx.is_empty_optional(x) => false,
        Some(x) => {
            // Defined: a tensor or a sequence.
            ctx.slot(x)?;
            true
        }
    };
    ctx.set_constant(out, Tensor::scalar(holds));
    Ok(())
}

fn get_element(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let out = output0(ctx, node)?;
    let Some(x) = input_name(node, 0) else {
        return Err(ctx.error("OptionalGetElement needs an input"));
    };
    if ctx.is_empty_optional(x) {
        return Err(ctx.error(format!(
            "input {x:?} is an empty optional: it has no element to get"
        )));
    }
    ctx.alias(out, x)
}
