//! Detection heads: `NonMaxSuppression`.
//!
//! ONNX's `NonMaxSuppression` runs per batch and per class over boxes
//! `[B, N, 4]` and scores `[B, C, N]` and returns `[batch, class, box]`
//! rows in that order. TensorFlow's `NonMaxSuppressionV3` does one batch
//! and class: it is built once per `(b, c)` (both must be known at
//! conversion), its indices get their batch and class columns, and the
//! rows are concatenated. Both keep a box whose score is above the score
//! threshold (strictly) and drop a box whose IoU with a kept one is above
//! the IoU threshold; both take corners in either order.
//! `center_point_box = 1` (`[x_center, y_center, width, height]`) is turned
//! into corners `[y1, x1, y2, x2]` first. A missing
//! `max_output_boxes_per_class` keeps no box, as ONNX says; a missing score
//! threshold keeps every score.

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::build::{Builder, t};
use super::{Converter, input_name, output0, required_input};
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "NonMaxSuppression" => non_max_suppression,
        _ => return None,
    };
    Some(f)
}

/// Optional scalar input `i` of `node` as a `dtype` scalar, else `default`.
fn scalar_input(
    b: &mut Builder<'_>,
    node: &NodeView<'_>,
    i: usize,
    dtype: DType,
    default: f64,
) -> Result<Output> {
    match input_name(node, i) {
        Some(name) => {
            let v = b.ctx.plain(name)?;
            let v = b.reshape(&v, &[])?;
            b.cast(&v, dtype)
        }
        None => b.scalar(dtype, default),
    }
}

fn non_max_suppression(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let boxes_name = required_input(ctx, node, 0)?;
    let scores_name = required_input(ctx, node, 1)?;
    let out = output0(ctx, node)?;
    let center = node.attr_i_or("center_point_box", 0)?;
    let (batches, classes) = match (
        ctx.slot(boxes_name)?.shape.dims(),
        ctx.slot(scores_name)?.shape.dims(),
    ) {
        (Some([b, _, 4]), Some([b2, c, _])) if *b > 0 && (*b2 == *b || *b2 < 0) && *c > 0 => {
            (*b, *c)
        }
        _ => {
            return Err(ctx.error(format!(
                "boxes {} and scores {} must be [B, N, 4] and [B, C, N] with B and C known at conversion",
                ctx.slot(boxes_name)?.shape,
                ctx.slot(scores_name)?.shape
            )));
        }
    };
    let boxes = ctx.plain(boxes_name)?;
    let scores = ctx.plain(scores_name)?;
    let mut b = Builder::new(ctx, node);
    let boxes = b.cast(&boxes, DType::Float)?;
    let scores = b.cast(&scores, DType::Float)?;
    let boxes = match center {
        0 => boxes,
        1 => {
            // [xc, yc, w, h] -> [yc - h/2, xc - w/2, yc + h/2, xc + w/2].
            let two = b.tensor(Tensor::scalar(2i32))?;
            let parts = b.op_n(
                "Split",
                &[&two, &boxes],
                &[t(DType::Float), ("num_split", Attr::Int(4))],
                vec![Shape::unknown_dims(3); 4],
            )?;
            let (xc, yc, w, h) = (&parts[0], &parts[1], &parts[2], &parts[3]);
            let half = b.scalar(DType::Float, 0.5)?;
            let half_w = b.bin("Mul", w, &half)?;
            let half_h = b.bin("Mul", h, &half)?;
            let y1 = b.bin("Sub", yc, &half_h)?;
            let x1 = b.bin("Sub", xc, &half_w)?;
            let y2 = b.bin("AddV2", yc, &half_h)?;
            let x2 = b.bin("AddV2", xc, &half_w)?;
            b.concat(&[&y1, &x1, &y2, &x2], 2)?
        }
        other => {
            return Err(b
                .ctx
                .error(format!("center_point_box {other} is not 0 or 1")));
        }
    };
    // max_output_boxes_per_class: int64, clamped into int32.
    let max_out = match input_name(node, 2) {
        Some(name) => {
            let v = b.ctx.plain(name)?;
            let v = b.reshape(&v, &[])?;
            let v = b.cast(&v, DType::Int64)?;
            let limit = b.i64(i64::from(i32::MAX))?;
            let v = b.bin("Minimum", &v, &limit)?;
            b.cast(&v, DType::Int32)?
        }
        None => b.tensor(Tensor::scalar(0i32))?,
    };
    let iou = scalar_input(&mut b, node, 3, DType::Float, 0.0)?;
    let score_threshold = scalar_input(&mut b, node, 4, DType::Float, f64::from(f32::MIN))?;
    let mut rows = Vec::new();
    for batch in 0..batches {
        let index = b.tensor(Tensor::scalar(batch as i32))?;
        let batch_boxes = b.gather(&boxes, &index, 0, Shape::new(&[-1, 4]))?;
        let batch_scores = b.gather(&scores, &index, 0, Shape::new(&[classes, -1]))?;
        for class in 0..classes {
            let c = b.tensor(Tensor::scalar(class as i32))?;
            let class_scores = b.gather(&batch_scores, &c, 0, Shape::unknown_dims(1))?;
            let selected = b.op(
                "NonMaxSuppressionV3",
                &[
                    &batch_boxes,
                    &class_scores,
                    &max_out,
                    &iou,
                    &score_threshold,
                ],
                &[t(DType::Float), ("T_threshold", Attr::Type(DType::Float))],
                Shape::unknown_dims(1),
            )?;
            let selected = b.cast(&selected, DType::Int64)?;
            // [batch, class, box] for each selected box.
            let ones = b.op(
                "OnesLike",
                &[&selected],
                &[t(DType::Int64)],
                Shape::unknown_dims(1),
            )?;
            let batch_value = b.i64(batch)?;
            let class_value = b.i64(class)?;
            let batch_column = b.bin("Mul", &ones, &batch_value)?;
            let class_column = b.bin("Mul", &ones, &class_value)?;
            let row = b.stack(&[&batch_column, &class_column, &selected], 1)?;
            rows.push(row);
        }
    }
    let refs: Vec<&Output> = rows.iter().collect();
    let y = if refs.len() == 1 {
        rows[0].clone()
    } else {
        b.concat(&refs, 0)?
    };
    ctx.set_plain(out, y, Shape::new(&[-1, 3]));
    Ok(())
}
