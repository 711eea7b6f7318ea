//! The string operators: `StringConcat`, `RegexFullMatch`, `StringSplit`
//! and `StringNormalizer`, on TensorFlow's string kernels.
//!
//! - `StringConcat` broadcasts both inputs (`BroadcastTo`) and joins them
//!   with `StringJoin`, which wants equal shapes.
//! - `RegexFullMatch` is `StaticRegexFullMatch`: both use RE2's syntax.
//! - `StringSplit` is `StringSplitV2` on the flattened input, which splits
//!   as Python's `str.split` does (an empty or missing delimiter splits on
//!   runs of whitespace, ends stripped; `maxsplit` limits the splits), then
//!   `SparseToDense` pads the rows with empty strings to the longest, and
//!   the counts come from the sparse indices' rows (an empty piece between
//!   two delimiters is a piece, so the counts are not the non-empty cells).
//! - `StringNormalizer` drops the stopwords (compared lowercased by
//!   `StringLower` when `is_case_sensitive` is 0), then changes case with
//!   `StringLower`/`StringUpper` (UTF-8); when everything is dropped the
//!   output is one empty string, as ONNX specifies.

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::build::{Builder, t};
use super::{Converter, output_name, output0, rank_of, required_input};
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "StringConcat" => string_concat,
        "RegexFullMatch" => regex_full_match,
        "StringSplit" => string_split,
        "StringNormalizer" => string_normalizer,
        _ => return None,
    };
    Some(f)
}

/// ONNX value `name` as a string tensor, or an error naming it.
fn string_input(ctx: &mut Ctx, name: &str) -> Result<Output> {
    let dtype = ctx.slot(name)?.dtype;
    if dtype != DType::String {
        return Err(ctx.error(format!("input {name:?} is {dtype}, not a string tensor")));
    }
    ctx.plain(name)
}

fn string_concat(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let a_name = required_input(ctx, node, 0)?;
    let b_name = required_input(ctx, node, 1)?;
    let out = output0(ctx, node)?;
    let a = string_input(ctx, a_name)?;
    let b_in = string_input(ctx, b_name)?;
    let shape = super::elementwise::broadcast_shape(ctx, &[a_name, b_name]);
    let mut b = Builder::new(ctx, node);
    let sa = b.shape(&a)?;
    let sb = b.shape(&b_in)?;
    let dims = b.op(
        "BroadcastArgs",
        &[&sa, &sb],
        &[t(DType::Int64)],
        Shape::unknown_dims(1),
    )?;
    let broadcast = |b: &mut Builder<'_>, x: &Output| {
        b.op(
            "BroadcastTo",
            &[x, &dims],
            &[t(DType::String), ("Tidx", Attr::Type(DType::Int64))],
            shape.clone(),
        )
    };
    let a = broadcast(&mut b, &a)?;
    let b_full = broadcast(&mut b, &b_in)?;
    let y = b.op(
        "StringJoin",
        &[&a, &b_full],
        &[("N", Attr::Int(2)), ("separator", Attr::Str(Vec::new()))],
        shape.clone(),
    )?;
    ctx.set_plain(out, y, shape);
    Ok(())
}

fn regex_full_match(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let pattern = node.required("pattern", node.attr_s("pattern")?)?;
    let x = string_input(ctx, x_name)?;
    let shape = ctx.slot(x_name)?.shape.clone();
    let mut b = Builder::new(ctx, node);
    let y = b.op(
        "StaticRegexFullMatch",
        &[&x],
        &[("pattern", Attr::Str(pattern.as_bytes().to_vec()))],
        shape.clone(),
    )?;
    ctx.set_plain(out, y, shape);
    Ok(())
}

fn string_split(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let counts_out = output_name(node, 1);
    let delimiter = node.attr_s_or("delimiter", "")?.to_owned();
    let maxsplit = node.attr_i_or("maxsplit", -1)?;
    let x = string_input(ctx, x_name)?;
    let x_shape = ctx.slot(x_name)?.shape.clone();
    let rank = rank_of(ctx, x_name)?;
    let mut b = Builder::new(ctx, node);
    let flat = b.reshape(&x, &[-1])?;
    let sep = b.tensor(Tensor::string(delimiter.as_bytes()))?;
    let parts = b.op_n(
        "StringSplitV2",
        &[&flat, &sep],
        &[("maxsplit", Attr::Int(maxsplit))],
        vec![
            Shape::unknown_dims(2),
            Shape::unknown_dims(1),
            Shape::new(&[2]),
        ],
    )?;
    let (indices, values, dense_shape) = (&parts[0], &parts[1], &parts[2]);
    let empty = b.tensor(Tensor::string(b""))?;
    let padded = b.op(
        "SparseToDense",
        &[indices, dense_shape, values, &empty],
        &[
            t(DType::String),
            ("Tindices", Attr::Type(DType::Int64)),
            ("validate_indices", Attr::Bool(true)),
        ],
        Shape::unknown_dims(2),
    )?;
    // The pieces of each row (input element), summed by row. Splitting on
    // whitespace with `maxsplit`, TensorFlow can end a row with an empty
    // piece Python's `str.split` does not give (it never gives empty pieces
    // there): those are not counted, and the width is the longest count.
    let rows = b.element(dense_shape, 0)?;
    let column = b.tensor(Tensor::scalar(0i32))?;
    let row_of_piece = b.gather(indices, &column, 1, Shape::unknown_dims(1))?;
    let weight = if delimiter.is_empty() {
        let nonempty = b.op(
            "NotEqual",
            &[values, &empty],
            &[
                t(DType::String),
                ("incompatible_shape_error", Attr::Bool(true)),
            ],
            Shape::unknown_dims(1),
        )?;
        b.cast(&nonempty, DType::Int64)?
    } else {
        b.op(
            "OnesLike",
            &[&row_of_piece],
            &[t(DType::Int64)],
            Shape::unknown_dims(1),
        )?
    };
    let counts = b.op(
        "UnsortedSegmentSum",
        &[&weight, &row_of_piece, &rows],
        &[
            t(DType::Int64),
            ("Tindices", Attr::Type(DType::Int64)),
            ("Tnumsegments", Attr::Type(DType::Int64)),
        ],
        Shape::unknown_dims(1),
    )?;
    let zero = b.i64s(&[0])?;
    let with_zero = b.concat(&[&counts, &zero], 0)?;
    let axis = b.tensor(Tensor::scalar(0i32))?;
    let width = b.op(
        "Max",
        &[&with_zero, &axis],
        &[
            t(DType::Int64),
            ("keep_dims", Attr::Bool(true)),
            ("Tidx", Attr::Type(DType::Int32)),
        ],
        Shape::new(&[1]),
    )?;
    // Y: the padded rows cut to that width, in X's shape plus the width.
    let minus_one = b.i64s(&[-1])?;
    let size = b.concat(&[&minus_one, &width], 0)?;
    let begin = b.i64s(&[0, 0])?;
    let cut = b.op(
        "Slice",
        &[&padded, &begin, &size],
        &[t(DType::String), ("Index", Attr::Type(DType::Int64))],
        Shape::unknown_dims(2),
    )?;
    let x_dims = b.shape(&x)?;
    let y_dims = b.concat(&[&x_dims, &width], 0)?;
    let mut y_shape: Vec<i64> = x_shape.dims().map_or(vec![-1; rank], <[i64]>::to_vec);
    y_shape.push(-1);
    let y = b.reshape_to(&cut, &y_dims, Shape::new(&y_shape))?;
    let counts = b.reshape_to(&counts, &x_dims, x_shape.clone())?;
    ctx.set_plain(out, y, Shape::new(&y_shape));
    if let Some(name) = counts_out {
        ctx.set_plain(name, counts, x_shape);
    }
    Ok(())
}

fn string_normalizer(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let action = node.attr_s_or("case_change_action", "NONE")?.to_owned();
    let case_sensitive = node.attr_i_or("is_case_sensitive", 0)? != 0;
    let stopwords: Vec<Vec<u8>> = node
        .attr_strings("stopwords")?
        .unwrap_or_default()
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let case_op = match action.as_str() {
        "NONE" => None,
        "LOWER" => Some("StringLower"),
        "UPPER" => Some("StringUpper"),
        other => {
            return Err(ctx.error(format!(
                "case_change_action {other:?} is not NONE, LOWER or UPPER"
            )));
        }
    };
    let rank = rank_of(ctx, x_name)?;
    let two_dims = match (rank, ctx.slot(x_name)?.shape.dims()) {
        (1, _) => false,
        (2, Some([1, _])) => true,
        _ => {
            return Err(ctx.error(format!(
                "input {x_name:?} must be [C] or [1, C], is {}",
                ctx.slot(x_name)?.shape
            )));
        }
    };
    let x = string_input(ctx, x_name)?;
    let mut b = Builder::new(ctx, node);
    let utf8 = || ("encoding", Attr::Str(b"utf-8".to_vec()));
    let change_case =
        |b: &mut Builder<'_>, op: &str, v: &Output| b.op(op, &[v], &[utf8()], v.shape().clone());
    let flat = b.reshape(&x, &[-1])?;
    let kept = if stopwords.is_empty() {
        flat
    } else {
        let stops = b.tensor(
            Tensor::strings(&[stopwords.len() as i64], &stopwords)
                .map_err(|e| b.ctx.error(e.to_string()))?,
        )?;
        let (compared, stops) = if case_sensitive {
            (flat.clone(), stops)
        } else {
            (
                change_case(&mut b, "StringLower", &flat)?,
                change_case(&mut b, "StringLower", &stops)?,
            )
        };
        let column = b.reshape(&compared, &[-1, 1])?;
        let equal = b.op(
            "Equal",
            &[&column, &stops],
            &[
                t(DType::String),
                ("incompatible_shape_error", Attr::Bool(true)),
            ],
            Shape::unknown_dims(2),
        )?;
        let axis = b.tensor(Tensor::scalar(1i32))?;
        let is_stopword = b.op(
            "Any",
            &[&equal, &axis],
            &[
                ("keep_dims", Attr::Bool(false)),
                ("Tidx", Attr::Type(DType::Int32)),
            ],
            Shape::unknown_dims(1),
        )?;
        let keep = b.op("LogicalNot", &[&is_stopword], &[], Shape::unknown_dims(1))?;
        let where_ = b.op("Where", &[&keep], &[t(DType::Bool)], Shape::unknown_dims(2))?;
        let indices = b.reshape(&where_, &[-1])?;
        let gathered = b.gather(&flat, &indices, 0, Shape::unknown_dims(1))?;
        // Nothing left: one empty string. [kept..., ""] cut to
        // max(len(kept), 1).
        let empty = b.tensor(Tensor::string_vector(&[b""]))?;
        let padded = b.concat(&[&gathered, &empty], 0)?;
        let size = b.op(
            "Size",
            &[&gathered],
            &[t(DType::String), ("out_type", Attr::Type(DType::Int64))],
            Shape::scalar(),
        )?;
        let one = b.i64(1)?;
        let length = b.bin("Maximum", &size, &one)?;
        let length = b.reshape(&length, &[1])?;
        let begin = b.i64s(&[0])?;
        b.op(
            "Slice",
            &[&padded, &begin, &length],
            &[t(DType::String), ("Index", Attr::Type(DType::Int64))],
            Shape::unknown_dims(1),
        )?
    };
    let cased = match case_op {
        Some(op) => change_case(&mut b, op, &kept)?,
        None => kept,
    };
    let (y, shape) = if two_dims {
        (b.reshape(&cased, &[1, -1])?, Shape::new(&[1, -1]))
    } else {
        (cased, Shape::unknown_dims(1))
    };
    ctx.set_plain(out, y, shape);
    Ok(())
}
