//! Math operators that map to one TensorFlow op each: `CumSum`,
//! `CumProd`, `Einsum`, `Mod`.
//!
//! ONNX semantics: `onnx/defs/math/defs.cc`.

use savedmodel_graph::{Attr, DType, Output, Shape};

use super::reduce::{binary, scalar_of, t};
use super::{Converter, normalize_axis, output0, rank_of, required_input, sub};
use crate::convert::constant;
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "CumSum" => |c, n| cumulative(c, n, "Cumsum"),
        "CumProd" => |c, n| cumulative(c, n, "Cumprod"),
        "Einsum" => einsum,
        "Mod" => modulo,
        _ => return None,
    };
    Some(f)
}

/// `CumSum` and `CumProd` (TensorFlow's `Cumsum` and `Cumprod` have the
/// same `exclusive` and `reverse`).
fn cumulative(ctx: &mut Ctx, node: &NodeView<'_>, op: &str) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let axis_name = required_input(ctx, node, 1)?;
    let rank = rank_of(ctx, x_name)?;
    let base = ctx.node_name(node);
    let axis_t = if ctx.constant(axis_name).is_some() {
        let axis = match ctx.const_ints(axis_name)?.as_slice() {
            [a] => normalize_axis(ctx, *a, rank)?,
            other => return Err(ctx.error(format!("axis must hold one value, not {other:?}"))),
        };
        ctx.const_scalar(&sub(&base, "axis"), DType::Int32, axis as f64)?
    } else {
        // TensorFlow takes negative axes as ONNX does.
        scalar_of(ctx, &base, axis_name, "axis")?
    };
    let logical = ctx.slot(x_name)?.shape.clone();
    let x = ctx.plain(x_name)?;
    let y = ctx.op1(
        op,
        &base,
        &[&x, &axis_t],
        &[
            (
                "exclusive",
                Attr::Bool(node.attr_i_or("exclusive", 0)? != 0),
            ),
            ("reverse", Attr::Bool(node.attr_i_or("reverse", 0)? != 0)),
            t(x.dtype()),
            ("Tidx", Attr::Type(axis_t.dtype())),
        ],
        logical.clone(),
    )?;
    ctx.set_plain(output0(ctx, node)?, y, logical);
    Ok(())
}

/// An ONNX einsum equation made explicit for TensorFlow: spaces dropped,
/// and the implicit output (`->` absent: the ellipsis, then the labels seen
/// once, in alphabetical order) written out. Also the output's labels, for
/// its shape, when there is no ellipsis.
fn explicit_equation(equation: &str) -> (String, bool) {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let has_ellipsis = eq.contains("...");
    if eq.contains("->") {
        return (eq, has_ellipsis);
    }
    let mut counts = std::collections::BTreeMap::new();
    for c in eq.chars().filter(char::is_ascii_alphabetic) {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let mut out = String::new();
    if has_ellipsis {
        out.push_str("...");
    }
    out.extend(counts.iter().filter(|(_, n)| **n == 1).map(|(c, _)| *c));
    (format!("{eq}->{out}"), has_ellipsis)
}

fn einsum(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let equation = node
        .attr_s("equation")?
        .ok_or_else(|| ctx.error("attribute equation is required"))?;
    let (equation, has_ellipsis) = explicit_equation(equation);
    let names: Vec<&str> = (0..node.proto().input.len())
        .map(|i| required_input(ctx, node, i))
        .collect::<Result<_>>()?;
    let base = ctx.node_name(node);
    // The output shape from the labels' sizes, when every label's size is
    // known and there is no ellipsis.
    let mut shape = Shape::unknown();
    if let Some((lhs, rhs)) = equation.split_once("->")
        && !has_ellipsis
    {
        let mut sizes = std::collections::HashMap::new();
        for (term, name) in lhs.split(',').zip(&names) {
            if let Some(d) = ctx.slot(name)?.shape.dims()
                && d.len() == term.len()
            {
                for (c, &v) in term.chars().zip(d) {
                    if v >= 0 {
                        sizes.insert(c, v);
                    }
                }
            }
        }
        let dims: Vec<i64> = rhs
            .chars()
            .map(|c| sizes.get(&c).copied().unwrap_or(-1))
            .collect();
        shape = Shape::new(&dims);
    }
    let inputs: Vec<Output> = names.iter().map(|n| ctx.plain(n)).collect::<Result<_>>()?;
    let refs: Vec<&Output> = inputs.iter().collect();
    let dtype = inputs
        .first()
        .map(Output::dtype)
        .ok_or_else(|| ctx.error("Einsum needs at least one input"))?;
    let y = ctx.op1(
        "Einsum",
        &base,
        &refs,
        &[
            ("equation", Attr::Str(equation.into_bytes())),
            ("N", Attr::Int(inputs.len() as i64)),
            t(dtype),
        ],
        shape.clone(),
    )?;
    ctx.set_plain(output0(ctx, node)?, y, shape);
    Ok(())
}

/// `Mod`: the remainder with the divisor's sign (`fmod=0`, TensorFlow's
/// `FloorMod`) or the dividend's (`fmod=1`, C's `fmod`, `TruncateMod`).
/// TensorFlow lacks some integer types for these: they are computed in
/// int64 (exact) and cast back.
fn modulo(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let a_name = required_input(ctx, node, 0)?;
    let b_name = required_input(ctx, node, 1)?;
    let fmod = node.attr_i_or("fmod", 0)? != 0;
    let base = ctx.node_name(node);
    let shape = match (
        ctx.slot(a_name)?.shape.dims().map(<[i64]>::to_vec),
        ctx.slot(b_name)?.shape.dims().map(<[i64]>::to_vec),
    ) {
        (Some(a), Some(b)) => constant::broadcast_dims(&a, &b)
            .map(|d| Shape::new(&d))
            .unwrap_or_else(|_| Shape::unknown()),
        _ => Shape::unknown(),
    };
    let a = ctx.plain(a_name)?;
    let b = ctx.plain(b_name)?;
    let dtype = a.dtype();
    let unsigned = matches!(
        dtype,
        DType::UInt8 | DType::UInt16 | DType::UInt32 | DType::UInt64
    );
    // For unsigned values both remainders are the same.
    let op = if fmod || unsigned {
        "TruncateMod"
    } else {
        "FloorMod"
    };
    // The types TensorFlow's CPU kernels take (`cwise_op_floor_mod.cc`,
    // `cwise_op_mod.cc` in tensorflow/core/kernels); others are computed in
    // a wider type, which is exact for a remainder.
    let native = match op {
        "TruncateMod" => matches!(
            dtype,
            DType::Int32 | DType::Int64 | DType::Float | DType::Double
        ),
        _ => matches!(
            dtype,
            DType::Int8 | DType::Int16 | DType::Int32 | DType::Int64 | DType::Float | DType::Double
        ),
    };
    let wide = if native {
        dtype
    } else if constant::is_int(dtype) {
        DType::Int64
    } else if matches!(dtype, DType::Half | DType::BFloat16) {
        DType::Float
    } else {
        return Err(ctx.error(format!("Mod of {dtype} values is not supported")));
    };
    let y = if native {
        binary(ctx, &base, op, &a, &b, shape.clone())?
    } else {
        let cast = |ctx: &mut Ctx, name: &str, x: &Output, from: DType, to: DType| {
            ctx.op1(
                "Cast",
                name,
                &[x],
                &[("SrcT", Attr::Type(from)), ("DstT", Attr::Type(to))],
                x.shape().clone(),
            )
        };
        let aw = cast(ctx, &sub(&base, "a_wide"), &a, dtype, wide)?;
        let bw = cast(ctx, &sub(&base, "b_wide"), &b, dtype, wide)?;
        let r = binary(ctx, &sub(&base, "wide"), op, &aw, &bw, shape.clone())?;
        cast(ctx, &base, &r, wide, dtype)?
    };
    ctx.set_plain(output0(ctx, node)?, y, shape);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn einsum_implicit_output_is_written_out() {
        assert_eq!(explicit_equation("ij, jk").0, "ij,jk->ik");
        assert_eq!(explicit_equation("ii").0, "ii->");
        assert_eq!(
            explicit_equation("...ij,...jk"),
            ("...ij,...jk->...ik".to_owned(), true)
        );
        assert_eq!(explicit_equation("ij->ji").0, "ij->ji");
    }
}
