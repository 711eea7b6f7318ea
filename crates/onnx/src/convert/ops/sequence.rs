//! Sequences of tensors as TensorFlow `TensorList`s (a `DT_VARIANT`
//! scalar), the type TensorFlow's own lists and loops use.
//!
//! - `SequenceEmpty`, `SequenceConstruct` (`EmptyTensorList` and one
//!   `TensorListPushBack` per element, so elements may differ in shape),
//!   `SequenceAt` (`TensorListGetItem`, a negative position counted from
//!   the end), `SequenceLength`, `SequenceInsert` and `SequenceErase` (at
//!   the end: `TensorListPushBack`/`TensorListPopBack`; elsewhere: the
//!   elements stacked, cut and put back, so they must share a shape),
//!   `ConcatFromSequence` (`TensorListStack`, then the new axis moved or
//!   merged into `axis`), `SplitToSequence` (`SplitV`/`Unpack` along an
//!   axis whose size is known, then pushed).
//! - A graph input or output that is a sequence crosses the signature as
//!   its elements stacked along a new first axis (`TensorListFromTensor` /
//!   `TensorListStack`): a client sends `numpy.stack(elements)`. Elements
//!   of different shapes cannot cross it.

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::build::{Builder, t};
use super::{Converter, input_name, normalize_axis, output0, rank_of, required_input};
use crate::convert::constant;
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "SequenceEmpty" => sequence_empty,
        "SequenceConstruct" => sequence_construct,
        "SequenceAt" => sequence_at,
        "SequenceLength" => sequence_length,
        "SequenceInsert" => sequence_insert,
        "SequenceErase" => sequence_erase,
        "ConcatFromSequence" => concat_from_sequence,
        "SplitToSequence" => split_to_sequence,
        _ => return None,
    };
    Some(f)
}

/// Whether `op_type` takes sequence values (the rest take tensors only).
pub(crate) fn takes_sequences(op_type: &str) -> bool {
    lookup(op_type).is_some()
        || matches!(
            op_type,
            "Identity" | "Loop" | "If" | "Optional" | "OptionalGetElement" | "OptionalHasElement"
        )
}

fn element_attrs(dtype: DType) -> Vec<(&'static str, Attr)> {
    vec![
        ("element_dtype", Attr::Type(dtype)),
        ("shape_type", Attr::Type(DType::Int32)),
    ]
}

/// An int32 `element_shape` operand: the dims where known, else -1.
fn element_shape(b: &mut Builder<'_>, shape: &Shape) -> Result<Output> {
    match shape.dims() {
        Some(d) => {
            let d: Vec<i32> = d.iter().map(|&v| v as i32).collect();
            b.tensor(Tensor::vector(&d))
        }
        None => b.tensor(Tensor::scalar(-1i32)),
    }
}

fn empty_list(b: &mut Builder<'_>, dtype: DType, shape: &Shape) -> Result<Output> {
    let es = element_shape(b, shape)?;
    let unbounded = b.tensor(Tensor::scalar(-1i32))?;
    b.op(
        "EmptyTensorList",
        &[&es, &unbounded],
        &element_attrs(dtype),
        Shape::scalar(),
    )
}

fn push_back(b: &mut Builder<'_>, list: &Output, x: &Output) -> Result<Output> {
    b.op(
        "TensorListPushBack",
        &[list, x],
        &[("element_dtype", Attr::Type(x.dtype()))],
        Shape::scalar(),
    )
}

/// The list's elements stacked along a new first axis.
fn stack(b: &mut Builder<'_>, list: &Output, dtype: DType, shape: &Shape) -> Result<Output> {
    let es = element_shape(b, shape)?;
    let stacked_shape = match shape.dims() {
        Some(d) => {
            let mut v = vec![-1];
            v.extend_from_slice(d);
            Shape::new(&v)
        }
        None => Shape::unknown(),
    };
    b.op(
        "TensorListStack",
        &[list, &es],
        &[
            ("element_dtype", Attr::Type(dtype)),
            ("num_elements", Attr::Int(-1)),
        ],
        stacked_shape,
    )
}

fn from_stacked(b: &mut Builder<'_>, stacked: &Output, shape: &Shape) -> Result<Output> {
    let es = element_shape(b, shape)?;
    b.op(
        "TensorListFromTensor",
        &[stacked, &es],
        &element_attrs(stacked.dtype()),
        Shape::scalar(),
    )
}

/// The sequence input `name` of the current node, or an error.
fn sequence_input(ctx: &mut Ctx, name: &str) -> Result<(Output, DType, Shape)> {
    let (dtype, shape) = ctx
        .sequence(name)
        .ok_or_else(|| ctx.error(format!("input {name:?} is not a sequence")))?;
    Ok((ctx.plain(name)?, dtype, shape))
}

/// The signature's stacked input `name` (already a placeholder) as a
/// sequence of its rows.
pub(crate) fn sequence_from_signature(
    ctx: &mut Ctx,
    name: &str,
    dtype: DType,
    stacked_shape: &Shape,
) -> Result<()> {
    let element = match stacked_shape.dims() {
        Some(d) if !d.is_empty() => Shape::new(&d[1..]),
        _ => Shape::unknown(),
    };
    let stacked = ctx.plain(name)?;
    let mut b = Builder::for_value(ctx, name);
    let list = from_stacked(&mut b, &stacked, &element)?;
    ctx.set_plain(name, list, Shape::scalar());
    ctx.set_sequence(name, dtype, element);
    Ok(())
}

/// Sequence output `name` redefined as its elements stacked, for the
/// signature.
pub(crate) fn sequence_to_signature(ctx: &mut Ctx, name: &str) -> Result<()> {
    let (list, dtype, element) = sequence_input(ctx, name)?;
    let mut b = Builder::for_value(ctx, name);
    let stacked = stack(&mut b, &list, dtype, &element)?;
    let shape = stacked.shape().clone();
    ctx.set_plain(name, stacked, shape);
    ctx.clear_sequence(name);
    Ok(())
}

fn define_sequence(ctx: &mut Ctx, out: &str, list: Output, dtype: DType, shape: Shape) {
    ctx.set_plain(out, list, Shape::scalar());
    ctx.set_sequence(out, dtype, shape);
}

fn sequence_empty(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let out = output0(ctx, node)?;
    let dtype = match node.attr_i("dtype")? {
        Some(d) => crate::dtype_from_onnx(d as i32).map_err(|e| ctx.error(e))?,
        None => DType::Float,
    };
    let mut b = Builder::new(ctx, node);
    let list = empty_list(&mut b, dtype, &Shape::unknown())?;
    define_sequence(ctx, out, list, dtype, Shape::unknown());
    Ok(())
}

fn sequence_construct(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let out = output0(ctx, node)?;
    let names: Vec<&str> = node.proto().input.iter().map(String::as_str).collect();
    let Some(first) = names.first() else {
        return Err(ctx.error("SequenceConstruct needs at least one input"));
    };
    let dtype = ctx.slot(first)?.dtype;
    // The element shape every input shares (unknown where they differ).
    let mut shape = ctx.slot(first)?.shape.clone();
    let mut values = Vec::new();
    for name in &names {
        let slot = ctx.slot(name)?.clone();
        if slot.dtype != dtype {
            return Err(ctx.error(format!("input {name:?} is {}, not {dtype}", slot.dtype)));
        }
        shape = shape.merge(&slot.shape).unwrap_or_else(Shape::unknown);
        values.push(ctx.plain(name)?);
    }
    let mut b = Builder::new(ctx, node);
    let mut list = empty_list(&mut b, dtype, &Shape::unknown())?;
    for v in &values {
        list = push_back(&mut b, &list, v)?;
    }
    define_sequence(ctx, out, list, dtype, shape);
    Ok(())
}

/// Position input `i` as an int32 scalar counted from the front (a negative
/// one from the end of a list of `length`).
fn position(b: &mut Builder<'_>, name: &str, length: &Output) -> Result<Output> {
    let p = b.ctx.plain(name)?;
    let p = b.reshape(&p, &[])?;
    let p = b.cast(&p, DType::Int32)?;
    let zero = b.tensor(Tensor::scalar(0i32))?;
    let negative = b.bin("Less", &p, &zero)?;
    let from_end = b.bin("AddV2", &p, length)?;
    b.select(&negative, &from_end, &p)
}

fn length(b: &mut Builder<'_>, list: &Output) -> Result<Output> {
    b.op("TensorListLength", &[list], &[], Shape::scalar())
}

fn sequence_at(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let seq = required_input(ctx, node, 0)?;
    let pos = required_input(ctx, node, 1)?;
    let out = output0(ctx, node)?;
    let (list, dtype, shape) = sequence_input(ctx, seq)?;
    let mut b = Builder::new(ctx, node);
    let n = length(&mut b, &list)?;
    let index = position(&mut b, pos, &n)?;
    let es = element_shape(&mut b, &shape)?;
    let y = b.op(
        "TensorListGetItem",
        &[&list, &index, &es],
        &[("element_dtype", Attr::Type(dtype))],
        shape.clone(),
    )?;
    ctx.set_plain(out, y, shape);
    Ok(())
}

fn sequence_length(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let seq = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let (list, _, _) = sequence_input(ctx, seq)?;
    let mut b = Builder::new(ctx, node);
    let n = length(&mut b, &list)?;
    let n = b.cast(&n, DType::Int64)?;
    ctx.set_plain(out, n, Shape::scalar());
    Ok(())
}

/// The stacked elements `[0, at)` and `[from, n)` of `stacked`, with
/// `middle` (a `[k, ...]` tensor) between them, as a list.
fn splice(
    b: &mut Builder<'_>,
    stacked: &Output,
    at: &Output,
    from: &Output,
    middle: Option<&Output>,
    shape: &Shape,
) -> Result<Output> {
    let zero = b.tensor(Tensor::scalar(0i32))?;
    let one = b.tensor(Tensor::scalar(1i32))?;
    let n = b.op(
        "Shape",
        &[stacked],
        &[t(stacked.dtype()), ("out_type", Attr::Type(DType::Int32))],
        Shape::unknown_dims(1),
    )?;
    let n = b.element(&n, 0)?;
    let head_index = b.range(&zero, at, &one)?;
    let tail_index = b.range(from, &n, &one)?;
    let head = b.gather(stacked, &head_index, 0, Shape::unknown())?;
    let tail = b.gather(stacked, &tail_index, 0, Shape::unknown())?;
    let joined = match middle {
        Some(m) => b.concat(&[&head, m, &tail], 0)?,
        None => b.concat(&[&head, &tail], 0)?,
    };
    from_stacked(b, &joined, shape)
}

fn sequence_insert(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let seq = required_input(ctx, node, 0)?;
    let x_name = required_input(ctx, node, 1)?;
    let out = output0(ctx, node)?;
    let (list, dtype, shape) = sequence_input(ctx, seq)?;
    let x = ctx.plain(x_name)?;
    let x_shape = ctx.slot(x_name)?.shape.clone();
    if x.dtype() != dtype {
        return Err(ctx.error(format!(
            "inserting {} into a sequence of {dtype}",
            x.dtype()
        )));
    }
    let merged = shape.merge(&x_shape).unwrap_or_else(Shape::unknown);
    let mut b = Builder::new(ctx, node);
    let list = match input_name(node, 2) {
        None => push_back(&mut b, &list, &x)?,
        Some(pos) => {
            let n = length(&mut b, &list)?;
            let at = position(&mut b, pos, &n)?;
            let stacked = stack(&mut b, &list, dtype, &merged)?;
            let zero = b.tensor(Tensor::scalar(0i32))?;
            let row = b.op(
                "ExpandDims",
                &[&x, &zero],
                &[t(dtype), ("Tdim", Attr::Type(DType::Int32))],
                Shape::unknown(),
            )?;
            splice(&mut b, &stacked, &at, &at, Some(&row), &merged)?
        }
    };
    define_sequence(ctx, out, list, dtype, merged);
    Ok(())
}

fn sequence_erase(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let seq = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let (list, dtype, shape) = sequence_input(ctx, seq)?;
    let mut b = Builder::new(ctx, node);
    let list = match input_name(node, 1) {
        None => {
            let es = element_shape(&mut b, &shape)?;
            let popped = b.op_n(
                "TensorListPopBack",
                &[&list, &es],
                &[("element_dtype", Attr::Type(dtype))],
                vec![Shape::scalar(), shape.clone()],
            )?;
            popped[0].clone()
        }
        Some(pos) => {
            let n = length(&mut b, &list)?;
            let at = position(&mut b, pos, &n)?;
            let one = b.tensor(Tensor::scalar(1i32))?;
            let after = b.bin("AddV2", &at, &one)?;
            let stacked = stack(&mut b, &list, dtype, &shape)?;
            splice(&mut b, &stacked, &at, &after, None, &shape)?
        }
    };
    define_sequence(ctx, out, list, dtype, shape);
    Ok(())
}

fn concat_from_sequence(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let seq = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let (list, dtype, shape) = sequence_input(ctx, seq)?;
    let new_axis = node.attr_i_or("new_axis", 0)? != 0;
    let axis = node.required("axis", node.attr_i("axis")?)?;
    let rank = shape
        .rank()
        .ok_or_else(|| ctx.error("the rank of the sequence's elements is unknown"))?;
    let out_rank = if new_axis { rank + 1 } else { rank };
    let axis = normalize_axis(ctx, axis, out_rank)?;
    let mut b = Builder::new(ctx, node);
    // [n, element dims...]
    let stacked = stack(&mut b, &list, dtype, &shape)?;
    let mut perm: Vec<i64> = (1..=rank as i64).collect();
    perm.insert(axis, 0);
    let p = b.i64s(&perm)?;
    let moved = b.op(
        "Transpose",
        &[&stacked, &p],
        &[t(dtype), ("Tperm", Attr::Type(DType::Int64))],
        Shape::unknown_dims(rank + 1),
    )?;
    let y = if new_axis {
        moved
    } else {
        // Merge the sequence axis with the element axis after it.
        let dims = b.shape(&moved)?;
        let slice = |b: &mut Builder<'_>, begin: i64, size: i64| -> Result<Output> {
            let begin = b.i64s(&[begin])?;
            let size = b.i64s(&[size])?;
            b.op(
                "Slice",
                &[&dims, &begin, &size],
                &[t(DType::Int64), ("Index", Attr::Type(DType::Int64))],
                Shape::unknown_dims(1),
            )
        };
        let before = slice(&mut b, 0, axis as i64)?;
        let after = slice(&mut b, axis as i64 + 2, -1)?;
        let merged = b.i64s(&[-1])?;
        let target = b.concat(&[&before, &merged, &after], 0)?;
        b.reshape_to(&moved, &target, Shape::unknown_dims(rank))?
    };
    ctx.set_plain(out, y, Shape::unknown_dims(out_rank));
    Ok(())
}

fn split_to_sequence(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let rank = rank_of(ctx, x_name)?;
    let axis = normalize_axis(ctx, node.attr_i_or("axis", 0)?, rank)?;
    let keepdims = node.attr_i_or("keepdims", 1)? != 0;
    let dims = ctx.slot(x_name)?.shape.dims().map(<[i64]>::to_vec);
    let size = dims.as_ref().map_or(-1, |d| d[axis]);
    let split: Option<Vec<i64>> = match input_name(node, 1) {
        None => None,
        Some(name) => Some(
            ctx.constant(name)
                .map(|v| constant::to_i64(v).map_err(|e| ctx.error(e)))
                .transpose()?
                .ok_or_else(|| ctx.error("split must be known at conversion"))?,
        ),
    };
    let squeeze = split.is_none() && !keepdims;
    let lengths: Vec<i64> = match split {
        Some(s) if s.len() == 1 => {
            if size < 0 || s[0] <= 0 {
                return Err(ctx.error("a scalar split needs the axis's size known at conversion"));
            }
            let mut v = vec![s[0]; (size / s[0]) as usize];
            if size % s[0] != 0 {
                v.push(size % s[0]);
            }
            v
        }
        Some(s) => s,
        None => {
            if size < 0 {
                return Err(
                    ctx.error("splitting into elements needs the axis's size known at conversion")
                );
            }
            vec![1; size as usize]
        }
    };
    let x = ctx.plain(x_name)?;
    let dtype = x.dtype();
    let mut b = Builder::new(ctx, node);
    let sizes = b.i64s(&lengths)?;
    let axis_t = b.tensor(Tensor::scalar(axis as i32))?;
    let pieces = b.op_n(
        "SplitV",
        &[&x, &sizes, &axis_t],
        &[
            t(dtype),
            ("Tlen", Attr::Type(DType::Int64)),
            ("num_split", Attr::Int(lengths.len() as i64)),
        ],
        vec![Shape::unknown_dims(rank); lengths.len()],
    )?;
    let mut list = empty_list(&mut b, dtype, &Shape::unknown())?;
    for piece in &pieces {
        let piece = if squeeze {
            b.op(
                "Squeeze",
                &[piece],
                &[t(dtype), ("squeeze_dims", Attr::IntList(vec![axis as i64]))],
                Shape::unknown_dims(rank - 1),
            )?
        } else {
            piece.clone()
        };
        list = push_back(&mut b, &list, &piece)?;
    }
    let element = Shape::unknown_dims(if squeeze { rank - 1 } else { rank });
    define_sequence(ctx, out, list, dtype, element);
    Ok(())
}
