//! `Attention` (opsets 23 to 25): scaled dot-product attention as ONNX's
//! reference computes it, on `BatchMatMulV2`; and `RotaryEmbedding`.
//!
//! - 3-D inputs `[B, S, hidden]` are split into heads (`q_num_heads`,
//!   `kv_num_heads`) and moved to `[B, heads, S, head]`; the output is moved
//!   back.
//! - `past_key`/`past_value` are prepended along the sequence (the
//!   `present_*` outputs); fewer key/value heads than query heads are
//!   repeated, each head consecutively (grouped-query attention).
//! - Q and K are each scaled by `sqrt(scale)` (default `1/sqrt(head)`)
//!   before `Q K^T`; `softcap` bounds the product with `tanh`.
//! - The bias: `attn_mask` (boolean: 0 where true, -inf where false;
//!   float: added; padded with false/-inf to the key length), the causal
//!   frontier `j <= i + offset` (offset: the past length, or per batch
//!   `nonpad_kv_seqlen - S_q`), the sliding window, and the padding mask of
//!   `nonpad_kv_seqlen`.
//! - Softmax (in `softmax_precision` when given) whose fully masked rows are
//!   0, not NaN; `qk_matmul_output_mode` picks the fourth output.

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::build::{Builder, t};
use super::{Converter, input_name, output_name, rank_of, required_input};
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "Attention" => attention,
        "RotaryEmbedding" => rotary_embedding,
        _ => return None,
    };
    Some(f)
}

/// Dimension `i` of `x` as an int64 scalar, from its static shape or the
/// graph.
fn dim(b: &mut Builder<'_>, x: &Output, i: usize) -> Result<Output> {
    match x.shape().dims() {
        Some(d) if d.get(i).is_some_and(|&v| v >= 0) => b.i64(d[i]),
        _ => {
            let s = b.shape(x)?;
            b.element(&s, i as i64)
        }
    }
}

/// `[B, S, heads * head]` to `[B, heads, S, head]`.
fn split_heads(b: &mut Builder<'_>, x: &Output, heads: i64) -> Result<Output> {
    let batch = dim(b, x, 0)?;
    let seq = dim(b, x, 1)?;
    let batch = b.reshape(&batch, &[1])?;
    let seq = b.reshape(&seq, &[1])?;
    let rest = b.i64s(&[heads, -1])?;
    let shape = b.concat(&[&batch, &seq, &rest], 0)?;
    let split = b.reshape_to(x, &shape, Shape::unknown_dims(4))?;
    transpose_0213(b, &split)
}

fn transpose_0213(b: &mut Builder<'_>, x: &Output) -> Result<Output> {
    let perm = b.i64s(&[0, 2, 1, 3])?;
    b.op(
        "Transpose",
        &[x, &perm],
        &[t(x.dtype()), ("Tperm", Attr::Type(DType::Int64))],
        Shape::unknown_dims(4),
    )
}

/// `where(allowed, 0, -inf)` in `dtype`.
fn allowed_to_bias(b: &mut Builder<'_>, allowed: &Output, dtype: DType) -> Result<Output> {
    let zero = b.scalar(dtype, 0.0)?;
    let minus_inf = b.scalar(dtype, f64::NEG_INFINITY)?;
    b.select(allowed, &zero, &minus_inf)
}

fn attention(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let q_name = required_input(ctx, node, 0)?;
    let k_name = required_input(ctx, node, 1)?;
    let v_name = required_input(ctx, node, 2)?;
    let rank = rank_of(ctx, q_name)?;
    let is_causal = node.attr_i_or("is_causal", 0)? != 0;
    let scale_attr = node.attr_f("scale")?;
    let softcap = node.attr_f_or("softcap", 0.0)?;
    let mode = node.attr_i_or("qk_matmul_output_mode", 0)?;
    let left_window = node.attr_i_or("left_window_size", -1)?;
    let right_window = node.attr_i_or("right_window_size", -1)?;
    let softmax_type = match node.attr_i("softmax_precision")? {
        None => None,
        Some(p) => Some(
            crate::dtype_from_onnx(p as i32)
                .map_err(|e| ctx.error(format!("softmax_precision: {e}")))?,
        ),
    };
    let (q_heads_attr, kv_heads_attr) = (node.attr_i("q_num_heads")?, node.attr_i("kv_num_heads")?);
    let q = ctx.plain(q_name)?;
    let k = ctx.plain(k_name)?;
    let v = ctx.plain(v_name)?;
    let optional = |ctx: &mut Ctx, i: usize| -> Result<Option<Output>> {
        match input_name(node, i) {
            Some(name) => Ok(Some(ctx.plain(name)?)),
            None => Ok(None),
        }
    };
    let mask = optional(ctx, 3)?;
    let past_key = optional(ctx, 4)?;
    let past_value = optional(ctx, 5)?;
    let nonpad = optional(ctx, 6)?;
    let dtype = q.dtype();
    let mut b = Builder::new(ctx, node);
    let (q, k, v, q_heads, kv_heads) = match rank {
        3 => {
            let (Some(qh), Some(kvh)) = (q_heads_attr, kv_heads_attr) else {
                return Err(b
                    .ctx
                    .error("3-D inputs need the q_num_heads and kv_num_heads attributes"));
            };
            (
                split_heads(&mut b, &q, qh)?,
                split_heads(&mut b, &k, kvh)?,
                split_heads(&mut b, &v, kvh)?,
                Some(qh),
                Some(kvh),
            )
        }
        4 => {
            let heads = |x: &Output| x.shape().dims().map(|d| d[1]).filter(|&h| h > 0);
            (q.clone(), k.clone(), v.clone(), heads(&q), heads(&k))
        }
        other => return Err(b.ctx.error(format!("Q has rank {other}, not 3 or 4"))),
    };
    // Q and K each scaled by sqrt(scale).
    let root_scale = match scale_attr {
        Some(s) => b.scalar(dtype, f64::from(s).sqrt())?,
        None => {
            let head = dim(&mut b, &q, 3)?;
            let head = b.cast(&head, DType::Double)?;
            let inverse = b.un("Rsqrt", &head)?;
            let root = b.un("Sqrt", &inverse)?;
            b.cast(&root, dtype)?
        }
    };
    let (present_key, present_value) = match (&past_key, &past_value) {
        (Some(pk), Some(pv)) => (b.concat(&[pk, &k], 2)?, b.concat(&[pv, &v], 2)?),
        (None, None) => (k.clone(), v.clone()),
        _ => {
            return Err(b
                .ctx
                .error("past_key and past_value must be given together"));
        }
    };
    let q_len = dim(&mut b, &q, 2)?;
    let kv_len = dim(&mut b, &present_key, 2)?;
    // The bias [.., S_q, S_kv]: zeros, then the mask, causal frontier,
    // window and padding.
    let zero64 = b.i64(0)?;
    let one64 = b.i64(1)?;
    let rows = b.range(&zero64, &q_len, &one64)?;
    let rows = b.reshape(&rows, &[-1, 1])?;
    let columns = b.range(&zero64, &kv_len, &one64)?;
    let columns = b.reshape(&columns, &[1, -1])?;
    let q_len_1 = b.reshape(&q_len, &[1])?;
    let kv_len_1 = b.reshape(&kv_len, &[1])?;
    let bias_dims = b.concat(&[&q_len_1, &kv_len_1], 0)?;
    let zero = b.scalar(dtype, 0.0)?;
    let mut bias = b.op(
        "Fill",
        &[&bias_dims, &zero],
        &[t(dtype), ("index_type", Attr::Type(DType::Int64))],
        Shape::unknown_dims(2),
    )?;
    let mut has_bias = false;
    if let Some(mask) = &mask {
        // Padded to the key length with false / -inf.
        let mask_rank = mask
            .shape()
            .rank()
            .ok_or_else(|| b.ctx.error("the rank of attn_mask is unknown"))?;
        let last = dim(&mut b, mask, mask_rank - 1)?;
        let missing = b.bin("Sub", &kv_len, &last)?;
        let missing = b.bin("Maximum", &missing, &zero64)?;
        let head = b.i64s(&vec![0i64; 2 * mask_rank - 1])?;
        let missing = b.reshape(&missing, &[1])?;
        let paddings = b.concat(&[&head, &missing], 0)?;
        let paddings = b.reshape(&paddings, &[mask_rank as i64, 2])?;
        let fill = if mask.dtype() == DType::Bool {
            b.tensor(Tensor::scalar(false))?
        } else {
            b.scalar(mask.dtype(), f64::NEG_INFINITY)?
        };
        let padded = b.op(
            "PadV2",
            &[mask, &paddings, &fill],
            &[t(mask.dtype()), ("Tpaddings", Attr::Type(DType::Int64))],
            Shape::unknown_dims(mask_rank),
        )?;
        let as_bias = if mask.dtype() == DType::Bool {
            allowed_to_bias(&mut b, &padded, dtype)?
        } else {
            b.cast(&padded, dtype)?
        };
        bias = b.bin("AddV2", &bias, &as_bias)?;
        has_bias = true;
    }
    // The offset of the causal frontier and the window: the past length,
    // or per batch nonpad_kv_seqlen - S_q.
    let offset = match (&past_key, &nonpad) {
        (Some(pk), _) => dim(&mut b, pk, 2)?,
        (None, Some(lengths)) => {
            let lengths = b.cast(lengths, DType::Int64)?;
            let per_batch = b.bin("Sub", &lengths, &q_len)?;
            b.reshape(&per_batch, &[-1, 1, 1, 1])?
        }
        (None, None) => b.i64(0)?,
    };
    let position = b.bin("AddV2", &rows, &offset)?;
    // diff = (i + offset) - j
    let diff = b.bin("Sub", &position, &columns)?;
    if is_causal {
        let allowed = b.op(
            "GreaterEqual",
            &[&diff, &zero64],
            &[t(DType::Int64)],
            Shape::unknown(),
        )?;
        let causal = allowed_to_bias(&mut b, &allowed, dtype)?;
        bias = b.bin("AddV2", &bias, &causal)?;
        has_bias = true;
    }
    for (size, left) in [(left_window, true), (right_window, false)] {
        if size < 0 {
            continue;
        }
        let bound = b.i64(size)?;
        let signed = if left {
            diff.clone()
        } else {
            b.un("Neg", &diff)?
        };
        let allowed = b.op(
            "LessEqual",
            &[&signed, &bound],
            &[t(DType::Int64)],
            Shape::unknown(),
        )?;
        let window = allowed_to_bias(&mut b, &allowed, dtype)?;
        bias = b.bin("AddV2", &bias, &window)?;
        has_bias = true;
    }
    if let Some(lengths) = &nonpad {
        let lengths = b.cast(lengths, DType::Int64)?;
        let lengths = b.reshape(&lengths, &[-1, 1, 1, 1])?;
        let allowed = b.op(
            "Less",
            &[&columns, &lengths],
            &[t(DType::Int64)],
            Shape::unknown(),
        )?;
        let padding = allowed_to_bias(&mut b, &allowed, dtype)?;
        bias = b.bin("AddV2", &bias, &padding)?;
        has_bias = true;
    }
    // Grouped-query attention: each key/value head repeated.
    let (present_k_rep, present_v_rep) = match (q_heads, kv_heads) {
        (Some(qh), Some(kvh)) if qh != kvh && kvh > 0 && qh % kvh == 0 => {
            let reps = qh / kvh;
            let repeat = |b: &mut Builder<'_>, x: &Output| -> Result<Output> {
                let two = b.tensor(Tensor::scalar(2i32))?;
                let expanded = b.op(
                    "ExpandDims",
                    &[x, &two],
                    &[t(x.dtype()), ("Tdim", Attr::Type(DType::Int32))],
                    Shape::unknown_dims(5),
                )?;
                let multiples = b.i64s(&[1, 1, reps, 1, 1])?;
                let tiled = b.op(
                    "Tile",
                    &[&expanded, &multiples],
                    &[t(x.dtype()), ("Tmultiples", Attr::Type(DType::Int64))],
                    Shape::unknown_dims(5),
                )?;
                let batch = dim(b, x, 0)?;
                let batch = b.reshape(&batch, &[1])?;
                let seq = dim(b, x, 2)?;
                let seq = b.reshape(&seq, &[1])?;
                let head = dim(b, x, 3)?;
                let head = b.reshape(&head, &[1])?;
                let heads = b.i64s(&[qh])?;
                let shape = b.concat(&[&batch, &heads, &seq, &head], 0)?;
                b.reshape_to(&tiled, &shape, Shape::unknown_dims(4))
            };
            (
                repeat(&mut b, &present_key)?,
                repeat(&mut b, &present_value)?,
            )
        }
        _ => (present_key.clone(), present_value.clone()),
    };
    let q_scaled = b.bin("Mul", &q, &root_scale)?;
    let k_scaled = b.bin("Mul", &present_k_rep, &root_scale)?;
    let mut qk = b.op(
        "BatchMatMulV2",
        &[&q_scaled, &k_scaled],
        &[
            t(dtype),
            ("adj_x", Attr::Bool(false)),
            ("adj_y", Attr::Bool(true)),
        ],
        Shape::unknown_dims(4),
    )?;
    if softcap > 0.0 {
        let cap = b.scalar(dtype, f64::from(softcap))?;
        let scaled = b.bin("RealDiv", &qk, &cap)?;
        let bounded = b.un("Tanh", &scaled)?;
        qk = b.bin("Mul", &bounded, &cap)?;
    }
    let with_bias = b.bin("AddV2", &qk, &bias)?;
    let mut qk_output = if mode == 2 {
        with_bias.clone()
    } else {
        qk.clone()
    };
    // Softmax whose fully masked rows give 0.
    let logits = match softmax_type {
        Some(st) => b.cast(&with_bias, st)?,
        None => with_bias.clone(),
    };
    let st = logits.dtype();
    let last_axis = b.tensor(Tensor::scalar(-1i32))?;
    let reduce = |b: &mut Builder<'_>, op: &str, x: &Output| {
        b.op(
            op,
            &[x, &last_axis],
            &[
                t(x.dtype()),
                ("keep_dims", Attr::Bool(true)),
                ("Tidx", Attr::Type(DType::Int32)),
            ],
            Shape::unknown(),
        )
    };
    let row_max = reduce(&mut b, "Max", &logits)?;
    let minus_inf = b.scalar(st, f64::NEG_INFINITY)?;
    let all_masked = b.op(
        "Equal",
        &[&row_max, &minus_inf],
        &[t(st), ("incompatible_shape_error", Attr::Bool(true))],
        Shape::unknown(),
    )?;
    let zero_st = b.scalar(st, 0.0)?;
    let one_st = b.scalar(st, 1.0)?;
    let safe_max = b.select(&all_masked, &zero_st, &row_max)?;
    let shifted = b.bin("Sub", &logits, &safe_max)?;
    let exp = b.un("Exp", &shifted)?;
    let sum = reduce(&mut b, "Sum", &exp)?;
    let empty = b.op(
        "Equal",
        &[&sum, &zero_st],
        &[t(st), ("incompatible_shape_error", Attr::Bool(true))],
        Shape::unknown(),
    )?;
    let sum = b.select(&empty, &one_st, &sum)?;
    let mut probabilities = b.bin("RealDiv", &exp, &sum)?;
    if has_bias {
        let bias_max = reduce(&mut b, "Max", &bias)?;
        let minus_inf_t = b.scalar(dtype, f64::NEG_INFINITY)?;
        let masked_row = b.op(
            "Equal",
            &[&bias_max, &minus_inf_t],
            &[t(dtype), ("incompatible_shape_error", Attr::Bool(true))],
            Shape::unknown(),
        )?;
        probabilities = b.select(&masked_row, &zero_st, &probabilities)?;
    }
    if mode == 3 {
        qk_output = probabilities.clone();
    }
    let probabilities = b.cast(&probabilities, dtype)?;
    let qk_output = b.cast(&qk_output, dtype)?;
    let mut y = b.op(
        "BatchMatMulV2",
        &[&probabilities, &present_v_rep],
        &[
            t(dtype),
            ("adj_x", Attr::Bool(false)),
            ("adj_y", Attr::Bool(false)),
        ],
        Shape::unknown_dims(4),
    )?;
    let y_rank = if rank == 3 {
        let moved = transpose_0213(&mut b, &y)?;
        let batch = dim(&mut b, &moved, 0)?;
        let batch = b.reshape(&batch, &[1])?;
        let seq = dim(&mut b, &moved, 1)?;
        let seq = b.reshape(&seq, &[1])?;
        let rest = b.i64s(&[-1])?;
        let shape = b.concat(&[&batch, &seq, &rest], 0)?;
        y = b.reshape_to(&moved, &shape, Shape::unknown_dims(3))?;
        3
    } else {
        4
    };
    let outputs = [
        (0, y, Shape::unknown_dims(y_rank)),
        (1, present_key, Shape::unknown_dims(4)),
        (2, present_value, Shape::unknown_dims(4)),
        (3, qk_output, Shape::unknown_dims(4)),
    ];
    for (i, value, shape) in outputs {
        if let Some(name) = output_name(node, i) {
            ctx.set_plain(name, value, shape);
        }
    }
    Ok(())
}

/// `[dim 0 of x, dim 1 of x, rest...]` as an int64 shape vector.
fn leading_two_then(b: &mut Builder<'_>, x: &Output, rest: &[i64]) -> Result<Output> {
    let first = dim(b, x, 0)?;
    let first = b.reshape(&first, &[1])?;
    let second = dim(b, x, 1)?;
    let second = b.reshape(&second, &[1])?;
    let rest = b.i64s(rest)?;
    b.concat(&[&first, &second, &rest], 0)
}

/// `Slice(x, [0, 0, 0, begin], [-1, -1, -1, size])` on the last axis.
fn last_axis_slice(b: &mut Builder<'_>, x: &Output, begin: i64, size: i64) -> Result<Output> {
    let begin = b.i64s(&[0, 0, 0, begin])?;
    let size = b.i64s(&[-1, -1, -1, size])?;
    b.op(
        "Slice",
        &[x, &begin, &size],
        &[t(x.dtype()), ("Index", Attr::Type(DType::Int64))],
        Shape::unknown_dims(4),
    )
}

/// `RotaryEmbedding` (opset 23): the first `rotary_embedding_dim` features
/// of each head rotated pairwise by the cached cosines and sines (at
/// `position_ids` when given), the pairs being the two halves, or
/// neighbours when `interleaved`; the head size must be known.
fn rotary_embedding(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let cos_name = required_input(ctx, node, 1)?;
    let sin_name = required_input(ctx, node, 2)?;
    let out = super::output0(ctx, node)?;
    let rank = rank_of(ctx, x_name)?;
    let interleaved = node.attr_i_or("interleaved", 0)? != 0;
    let num_heads = node.attr_i_or("num_heads", 0)?;
    let dims = ctx.slot(x_name)?.shape.clone();
    let head = match (rank, dims.dims()) {
        (4, Some(d)) if d[3] > 0 => d[3],
        (3, Some(d)) if d[2] > 0 && num_heads > 0 && d[2] % num_heads == 0 => d[2] / num_heads,
        _ => {
            return Err(ctx.error(format!(
                "input {x_name:?} {dims} must be [B, heads, S, head] or [B, S, hidden] with num_heads, the head size known"
            )));
        }
    };
    let rotary = match node.attr_i_or("rotary_embedding_dim", 0)? {
        0 => head,
        r if r > 0 && r <= head && r % 2 == 0 => r,
        r => {
            return Err(ctx.error(format!(
                "rotary_embedding_dim {r} does not fit head size {head}"
            )));
        }
    };
    let half = rotary / 2;
    let x = ctx.plain(x_name)?;
    let mut cos = ctx.plain(cos_name)?;
    let mut sin = ctx.plain(sin_name)?;
    let positions = match input_name(node, 3) {
        Some(name) => Some(ctx.plain(name)?),
        None => None,
    };
    let dtype = x.dtype();
    let mut b = Builder::new(ctx, node);
    // [B, S, heads, head].
    let x4 = if rank == 4 {
        transpose_0213(&mut b, &x)?
    } else {
        let shape = leading_two_then(&mut b, &x, &[num_heads, head])?;
        b.reshape_to(&x, &shape, Shape::unknown_dims(4))?
    };
    if let Some(p) = &positions {
        cos = b.gather(&cos, p, 0, Shape::unknown_dims(3))?;
        sin = b.gather(&sin, p, 0, Shape::unknown_dims(3))?;
    }
    let two = b.tensor(Tensor::scalar(2i32))?;
    let expand = |b: &mut Builder<'_>, v: &Output| {
        b.op(
            "ExpandDims",
            &[v, &two],
            &[t(v.dtype()), ("Tdim", Attr::Type(DType::Int32))],
            Shape::unknown_dims(4),
        )
    };
    let cos = expand(&mut b, &cos)?;
    let sin = expand(&mut b, &sin)?;
    let cos = b.cast(&cos, dtype)?;
    let sin = b.cast(&sin, dtype)?;
    let rotate = last_axis_slice(&mut b, &x4, 0, rotary)?;
    let (x1, x2) = if interleaved {
        let pairs = leading_two_then(&mut b, &x4, &[-1, half, 2])?;
        let pairs = b.reshape_to(&rotate, &pairs, Shape::unknown_dims(5))?;
        let four = b.tensor(Tensor::scalar(4i32))?;
        let parts = b.op_n(
            "Split",
            &[&four, &pairs],
            &[t(dtype), ("num_split", Attr::Int(2))],
            vec![Shape::unknown_dims(5); 2],
        )?;
        let squeeze = |b: &mut Builder<'_>, v: &Output| {
            b.op(
                "Squeeze",
                &[v],
                &[t(dtype), ("squeeze_dims", Attr::IntList(vec![4]))],
                Shape::unknown_dims(4),
            )
        };
        (squeeze(&mut b, &parts[0])?, squeeze(&mut b, &parts[1])?)
    } else {
        (
            last_axis_slice(&mut b, &rotate, 0, half)?,
            last_axis_slice(&mut b, &rotate, half, half)?,
        )
    };
    let cos_x1 = b.bin("Mul", &cos, &x1)?;
    let sin_x2 = b.bin("Mul", &sin, &x2)?;
    let real = b.bin("Sub", &cos_x1, &sin_x2)?;
    let sin_x1 = b.bin("Mul", &sin, &x1)?;
    let cos_x2 = b.bin("Mul", &cos, &x2)?;
    let imag = b.bin("AddV2", &sin_x1, &cos_x2)?;
    let rotated = if interleaved {
        let pairs = b.stack(&[&real, &imag], -1)?;
        let shape = leading_two_then(&mut b, &x4, &[-1, rotary])?;
        b.reshape_to(&pairs, &shape, Shape::unknown_dims(4))?
    } else {
        b.concat(&[&real, &imag], 3)?
    };
    let full = if rotary < head {
        let rest = last_axis_slice(&mut b, &x4, rotary, -1)?;
        b.concat(&[&rotated, &rest], 3)?
    } else {
        rotated
    };
    let y = if rank == 4 {
        transpose_0213(&mut b, &full)?
    } else {
        let shape = leading_two_then(&mut b, &x, &[-1])?;
        b.reshape_to(&full, &shape, Shape::unknown_dims(3))?
    };
    ctx.set_plain(out, y, dims);
    Ok(())
}
