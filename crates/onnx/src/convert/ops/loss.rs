//! Losses: `NegativeLogLikelihoodLoss` and `SoftmaxCrossEntropyLoss` (its
//! log-softmax over the class axis, then the same loss).
//!
//! ONNX semantics: `onnx/defs/math/defs.cc` and the reference
//! implementations `onnx/reference/ops/op_negative_log_likelihood_loss.py`,
//! `op_softmax_cross_entropy_loss.py`. For input `[N, C, d...]` and target
//! `[N, d...]`, each element's loss is `-input[n, target, d...]` times its
//! weight (`weight[target]`, or 1; 0 where the target is `ignore_index`);
//! `mean` divides the sum by the sum of the weights.

use savedmodel_graph::{Attr, DType, Output, Shape};

use super::norm::{cast, reshaped};
use super::reduce::{binary, dim_size, swap_last, t, tf_reduce, unary};
use super::{Converter, input_name, output_name, output0, rank_of, required_input, sub};
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "NegativeLogLikelihoodLoss" => nll_loss,
        "SoftmaxCrossEntropyLoss" => softmax_cross_entropy,
        _ => return None,
    };
    Some(f)
}

fn nll_loss(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x_name)?;
    let x = ctx.plain(x_name)?;
    let base = ctx.node_name(node);
    let (loss, shape) = loss_of(ctx, node, &base, &x, rank)?;
    ctx.set_plain(output0(ctx, node)?, loss, shape);
    Ok(())
}

fn softmax_cross_entropy(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x_name)?;
    if rank < 2 {
        return Err(ctx.error(format!("the scores have rank {rank}, not 2 or more")));
    }
    let logical = ctx.slot(x_name)?.shape.clone();
    let x = ctx.plain(x_name)?;
    let base = ctx.node_name(node);
    let dtype = x.dtype();
    // LogSoftmax over the class axis (1), moved last for TensorFlow.
    let log_prob = if rank == 2 {
        ctx.op1(
            "LogSoftmax",
            &sub(&base, "log_prob"),
            &[&x],
            &[t(dtype)],
            logical.clone(),
        )?
    } else {
        let perm = swap_last(rank, 1);
        let moved = ctx.transpose(&sub(&base, "classes_last"), &x, &perm)?;
        let l = ctx.op1(
            "LogSoftmax",
            &sub(&base, "log_softmax"),
            &[&moved],
            &[t(dtype)],
            moved.shape().clone(),
        )?;
        ctx.transpose(&sub(&base, "log_prob"), &l, &perm)?
    };
    let (loss, shape) = loss_of(ctx, node, &base, &log_prob, rank)?;
    ctx.set_plain(output0(ctx, node)?, loss, shape);
    if let Some(name) = output_name(node, 1) {
        ctx.set_plain(name, log_prob, logical);
    }
    Ok(())
}

/// The loss of log-probabilities `x` (`[N, C, d...]`, of `rank`) for the
/// node's target (input 1) and optional weight (input 2), reduced as its
/// `reduction` says.
fn loss_of(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    base: &str,
    x: &Output,
    rank: usize,
) -> Result<(Output, Shape)> {
    if rank < 2 {
        return Err(ctx.error(format!("the input has rank {rank}, not 2 or more")));
    }
    let reduction = node.attr_s_or("reduction", "mean")?;
    if !matches!(reduction, "none" | "sum" | "mean") {
        return Err(ctx.error(format!("reduction {reduction:?} is not defined")));
    }
    let ignore = node.attr_i("ignore_index")?;
    let target_name = required_input(ctx, node, 1)?;
    let target_shape = ctx.slot(target_name)?.shape.clone();
    let target = ctx.plain(target_name)?;
    let tdtype = target.dtype();
    let dtype = x.dtype();
    let x_shape = x.shape().clone();

    // One-hot of the target along the class axis: all zeros for a target
    // outside [0, C) (an ignore_index there).
    let depth = dim_size(ctx, &sub(base, "classes"), x, 1)?;
    let depth = cast(ctx, &sub(base, "classes32"), &depth, DType::Int32)?;
    let on = ctx.const_scalar(&sub(base, "on"), dtype, 1.0)?;
    let off = ctx.const_scalar(&sub(base, "off"), dtype, 0.0)?;
    let one_hot = ctx.op1(
        "OneHot",
        &sub(base, "one_hot"),
        &[&target, &depth, &on, &off],
        &[("axis", Attr::Int(1)), t(dtype), ("TI", Attr::Type(tdtype))],
        x_shape.clone(),
    )?;
    let masked = binary(
        ctx,
        &sub(base, "masked"),
        "Mul",
        x,
        &one_hot,
        x_shape.clone(),
    )?;
    let picked = tf_reduce(
        ctx,
        &sub(base, "picked"),
        "Sum",
        &masked,
        &[1],
        false,
        target_shape.clone(),
    )?;
    let mut loss = unary(ctx, &sub(base, "negated"), "Neg", &picked)?;

    // Each element's weight, when not all are 1.
    let mut weight = match input_name(node, 2) {
        Some(w_name) => {
            let mut dims = vec![-1i64];
            dims.extend(std::iter::repeat_n(1, rank - 2));
            let w = reshaped(ctx, &sub(base, "class_weight"), w_name, &dims)?;
            let w = binary(ctx, &sub(base, "weights_hot"), "Mul", &one_hot, &w, x_shape)?;
            Some(tf_reduce(
                ctx,
                &sub(base, "weights"),
                "Sum",
                &w,
                &[1],
                false,
                target_shape.clone(),
            )?)
        }
        None => None,
    };
    if let Some(ignore) = ignore {
        let ignored = ctx.const_scalar(&sub(base, "ignore_index"), tdtype, ignore as f64)?;
        let kept = ctx.op1(
            "NotEqual",
            &sub(base, "kept"),
            &[&target, &ignored],
            &[t(tdtype), ("incompatible_shape_error", Attr::Bool(true))],
            target_shape.clone(),
        )?;
        let kept = cast(ctx, &sub(base, "kept_weight"), &kept, dtype)?;
        weight = Some(match weight {
            Some(w) => binary(
                ctx,
                &sub(base, "kept_weights"),
                "Mul",
                &w,
                &kept,
                target_shape.clone(),
            )?,
            None => kept,
        });
    }
    if let Some(w) = &weight {
        loss = binary(
            ctx,
            &sub(base, "weighted"),
            "Mul",
            &loss,
            w,
            target_shape.clone(),
        )?;
    }
    let all: Vec<i64> = (0..rank as i64 - 1).collect();
    let scalar = Shape::new(&[]);
    let out = match (reduction, &weight) {
        ("none", _) => {
            let y = ctx.op1(
                "Identity",
                base,
                &[&loss],
                &[t(dtype)],
                target_shape.clone(),
            )?;
            return Ok((y, target_shape));
        }
        ("sum", _) => tf_reduce(ctx, base, "Sum", &loss, &all, false, scalar.clone())?,
        (_, None) => tf_reduce(ctx, base, "Mean", &loss, &all, false, scalar.clone())?,
        (_, Some(w)) => {
            let total = tf_reduce(
                ctx,
                &sub(base, "total"),
                "Sum",
                &loss,
                &all,
                false,
                scalar.clone(),
            )?;
            let weights = tf_reduce(
                ctx,
                &sub(base, "total_weight"),
                "Sum",
                w,
                &all,
                false,
                scalar.clone(),
            )?;
            binary(ctx, base, "RealDiv", &total, &weights, scalar.clone())?
        }
    };
    Ok((out, scalar))
}
