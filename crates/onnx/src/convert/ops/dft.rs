//! `DFT` (opsets 17 to 20) on TensorFlow's `FFT`, `IFFT`, `RFFT` and
//! `IRFFT`, which transform the last axis of a complex (or real) tensor.
//!
//! ONNX keeps a signal's real and imaginary parts in a last dimension of 2
//! (or 1 for a real signal) and transforms along `axis` (an attribute up to
//! opset 19, an input since 20, so it may be known only at run time): the
//! parts become one complex tensor, the axis is swapped with the last one
//! by a permutation computed in the graph, and swapped back after.
//! A real signal's forward transform is `RFFT` (its other half mirrored
//! and conjugated unless `onesided`, so the DC and Nyquist bins are exactly
//! real, as numpy's); a complex one's `onesided` forward keeps the first
//! `n / 2 + 1` frequencies; `onesided` inverse is `IRFFT` to `dft_length` or
//! `2 * (n - 1)` real samples. Inverse transforms are scaled by `1 / n` on
//! both sides. `dft_length` pads with zeros or crops the signal.

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::build::{Builder, t};
use super::{Converter, input_name, output0, rank_of, required_input};
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "DFT" => dft,
        _ => return None,
    };
    Some(f)
}

/// The permutation of `rank` axes that swaps run-time `axis` with the last.
fn swap_with_last(b: &mut Builder<'_>, axis: &Output, rank: usize) -> Result<Output> {
    let zero = b.tensor(Tensor::scalar(0i32))?;
    let one = b.tensor(Tensor::scalar(1i32))?;
    let n = b.tensor(Tensor::scalar(rank as i32))?;
    let range = b.range(&zero, &n, &one)?;
    let last = b.tensor(Tensor::scalar(rank as i32 - 1))?;
    let is_axis = b.op(
        "Equal",
        &[&range, axis],
        &[
            t(DType::Int32),
            ("incompatible_shape_error", Attr::Bool(true)),
        ],
        Shape::unknown_dims(1),
    )?;
    let is_last = b.op(
        "Equal",
        &[&range, &last],
        &[
            t(DType::Int32),
            ("incompatible_shape_error", Attr::Bool(true)),
        ],
        Shape::unknown_dims(1),
    )?;
    let last_vec = b.op(
        "OnesLike",
        &[&range],
        &[t(DType::Int32)],
        Shape::unknown_dims(1),
    )?;
    let last_vec = b.bin("Mul", &last_vec, &last)?;
    let axis_vec = b.op(
        "OnesLike",
        &[&range],
        &[t(DType::Int32)],
        Shape::unknown_dims(1),
    )?;
    let axis_vec = b.bin("Mul", &axis_vec, axis)?;
    let step = b.select(&is_last, &axis_vec, &range)?;
    b.select(&is_axis, &last_vec, &step)
}

fn transpose(b: &mut Builder<'_>, x: &Output, perm: &Output, rank: usize) -> Result<Output> {
    b.op(
        "Transpose",
        &[x, perm],
        &[t(x.dtype()), ("Tperm", Attr::Type(DType::Int32))],
        Shape::unknown_dims(rank),
    )
}

/// The last dimension of `x` as an int32 vector `[n]`.
fn last_dim(b: &mut Builder<'_>, x: &Output, rank: usize) -> Result<Output> {
    let shape = b.op(
        "Shape",
        &[x],
        &[t(x.dtype()), ("out_type", Attr::Type(DType::Int32))],
        Shape::unknown_dims(1),
    )?;
    let last = b.tensor(Tensor::vector(&[rank as i32 - 1]))?;
    b.gather(&shape, &last, 0, Shape::new(&[1]))
}

/// `z` (complex, signal last) zero-padded or cropped to `length` `[1]`.
fn fit_length(b: &mut Builder<'_>, z: &Output, length: &Output, rank: usize) -> Result<Output> {
    let n = last_dim(b, z, rank)?;
    let missing = b.bin("Sub", length, &n)?;
    let zero = b.tensor(Tensor::vector(&[0i32]))?;
    let missing = b.bin("Maximum", &missing, &zero)?;
    let head = b.tensor(Tensor::vector(&vec![0i32; 2 * rank - 1]))?;
    let paddings = b.concat(&[&head, &missing], 0)?;
    let paddings = b.reshape(&paddings, &[rank as i64, 2])?;
    let padded = b.op(
        "Pad",
        &[z, &paddings],
        &[t(z.dtype()), ("Tpaddings", Attr::Type(DType::Int32))],
        Shape::unknown_dims(rank),
    )?;
    let begin = b.tensor(Tensor::vector(&vec![0i32; rank]))?;
    let minus = b.tensor(Tensor::vector(&vec![-1i32; rank - 1]))?;
    let size = b.concat(&[&minus, length], 0)?;
    b.op(
        "Slice",
        &[&padded, &begin, &size],
        &[t(z.dtype()), ("Index", Attr::Type(DType::Int32))],
        Shape::unknown_dims(rank),
    )
}

fn dft(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let rank = rank_of(ctx, x_name)?;
    let parts = ctx
        .slot(x_name)?
        .shape
        .dims()
        .and_then(|d| d.last().copied())
        .filter(|&c| c == 1 || c == 2)
        .ok_or_else(|| ctx.error(format!("the last dimension of {x_name:?} must be 1 or 2")))?;
    if rank < 3 {
        return Err(ctx.error(format!(
            "{x_name:?} has rank {rank}: [batch, signal..., 1 or 2] needs 3"
        )));
    }
    let inverse = node.attr_i_or("inverse", 0)? != 0;
    let onesided = node.attr_i_or("onesided", 0)? != 0;
    let opset = node.opset_version()?;
    let x = ctx.plain(x_name)?;
    let length_input = match input_name(node, 1) {
        Some(name) => Some(ctx.plain(name)?),
        None => None,
    };
    let axis_input = if opset >= 20 {
        match input_name(node, 2) {
            Some(name) => Some(ctx.plain(name)?),
            None => None,
        }
    } else {
        None
    };
    let (real, complex) = match x.dtype() {
        DType::Double => (DType::Double, DType::Complex128),
        _ => (DType::Float, DType::Complex64),
    };
    let mut b = Builder::new(ctx, node);
    let x = b.cast(&x, real)?;
    // The axis, normalized against the rank with the parts dimension.
    let axis = match axis_input {
        Some(a) => {
            let a = b.reshape(&a, &[])?;
            b.cast(&a, DType::Int32)?
        }
        None => {
            let default = if opset >= 20 { -2 } else { 1 };
            let a = node.attr_i_or("axis", default)?;
            b.tensor(Tensor::scalar(a as i32))?
        }
    };
    let rank_t = b.tensor(Tensor::scalar(rank as i32))?;
    let shifted = b.bin("AddV2", &axis, &rank_t)?;
    let zero = b.tensor(Tensor::scalar(0i32))?;
    let negative = b.bin("Less", &axis, &zero)?;
    let axis = b.select(&negative, &shifted, &axis)?;
    // The signal without its parts dimension: rank - 1 axes.
    let signal_rank = rank - 1;
    let last = b.tensor(Tensor::scalar(-1i32))?;
    let pieces = b.op_n(
        "Split",
        &[&last, &x],
        &[t(real), ("num_split", Attr::Int(parts))],
        vec![Shape::unknown_dims(rank); parts as usize],
    )?;
    let squeeze = |b: &mut Builder<'_>, v: &Output| {
        b.op(
            "Squeeze",
            &[v],
            &[
                t(real),
                ("squeeze_dims", Attr::IntList(vec![rank as i64 - 1])),
            ],
            Shape::unknown_dims(signal_rank),
        )
    };
    let re = squeeze(&mut b, &pieces[0])?;
    let im = if parts == 2 {
        squeeze(&mut b, &pieces[1])?
    } else {
        b.op(
            "ZerosLike",
            &[&re],
            &[t(real)],
            Shape::unknown_dims(signal_rank),
        )?
    };
    let perm = swap_with_last(&mut b, &axis, signal_rank)?;
    let re_t = transpose(&mut b, &re, &perm, signal_rank)?;
    let im_t = transpose(&mut b, &im, &perm, signal_rank)?;
    let z = b.op(
        "Complex",
        &[&re_t, &im_t],
        &[t(real), ("Tout", Attr::Type(complex))],
        Shape::unknown_dims(signal_rank),
    )?;
    let n = last_dim(&mut b, &z, signal_rank)?;
    let length = match &length_input {
        Some(l) => {
            let l = b.cast(l, DType::Int32)?;
            b.reshape(&l, &[1])?
        }
        None if inverse && onesided => {
            // 2 * (n - 1) real samples.
            let one = b.tensor(Tensor::vector(&[1i32]))?;
            let two = b.tensor(Tensor::vector(&[2i32]))?;
            let m = b.bin("Sub", &n, &one)?;
            b.bin("Mul", &m, &two)?
        }
        None => n.clone(),
    };
    let fft_attrs = |real: DType, complex: DType| {
        vec![
            ("Treal", Attr::Type(real)),
            ("Tcomplex", Attr::Type(complex)),
        ]
    };
    // (result, whether it is real)
    let (y, is_real) = if inverse && onesided {
        let y = b.op(
            "IRFFT",
            &[&z, &length],
            &fft_attrs(real, complex),
            Shape::unknown_dims(signal_rank),
        )?;
        (y, true)
    } else if inverse {
        let fitted = fit_length(&mut b, &z, &length, signal_rank)?;
        let y = b.op(
            "IFFT",
            &[&fitted],
            &[("Tcomplex", Attr::Type(complex))],
            Shape::unknown_dims(signal_rank),
        )?;
        (y, false)
    } else if parts == 1 {
        // A real signal: RFFT (whose DC and Nyquist bins have exactly zero
        // imaginary parts, as numpy's), the other half mirrored and
        // conjugated unless onesided.
        let half = b.op(
            "RFFT",
            &[&re_t, &length],
            &fft_attrs(real, complex),
            Shape::unknown_dims(signal_rank),
        )?;
        if onesided {
            (half, false)
        } else {
            // X[k] = conj(X[n - k]) for k past n / 2: half[1 .. n - n / 2],
            // reversed.
            let two = b.tensor(Tensor::vector(&[2i32]))?;
            let one = b.tensor(Tensor::vector(&[1i32]))?;
            let floor_half = b.bin("FloorDiv", &length, &two)?;
            let upper = b.bin("Sub", &length, &floor_half)?;
            let count = b.bin("Sub", &upper, &one)?;
            let mut begin = vec![0i32; signal_rank];
            begin[signal_rank - 1] = 1;
            let begin = b.tensor(Tensor::vector(&begin))?;
            let minus = b.tensor(Tensor::vector(&vec![-1i32; signal_rank - 1]))?;
            let size = b.concat(&[&minus, &count], 0)?;
            let middle = b.op(
                "Slice",
                &[&half, &begin, &size],
                &[t(complex), ("Index", Attr::Type(DType::Int32))],
                Shape::unknown_dims(signal_rank),
            )?;
            let axis = b.tensor(Tensor::vector(&[signal_rank as i32 - 1]))?;
            let reversed = b.op(
                "ReverseV2",
                &[&middle, &axis],
                &[t(complex), ("Tidx", Attr::Type(DType::Int32))],
                Shape::unknown_dims(signal_rank),
            )?;
            let mirrored = b.un("Conj", &reversed)?;
            (
                b.concat(&[&half, &mirrored], signal_rank as i64 - 1)?,
                false,
            )
        }
    } else {
        let fitted = fit_length(&mut b, &z, &length, signal_rank)?;
        let y = b.op(
            "FFT",
            &[&fitted],
            &[("Tcomplex", Attr::Type(complex))],
            Shape::unknown_dims(signal_rank),
        )?;
        let y = if onesided {
            // The first n / 2 + 1 frequencies.
            let two = b.tensor(Tensor::vector(&[2i32]))?;
            let one = b.tensor(Tensor::vector(&[1i32]))?;
            let half = b.bin("FloorDiv", &length, &two)?;
            let keep = b.bin("AddV2", &half, &one)?;
            let begin = b.tensor(Tensor::vector(&vec![0i32; signal_rank]))?;
            let minus = b.tensor(Tensor::vector(&vec![-1i32; signal_rank - 1]))?;
            let size = b.concat(&[&minus, &keep], 0)?;
            b.op(
                "Slice",
                &[&y, &begin, &size],
                &[t(complex), ("Index", Attr::Type(DType::Int32))],
                Shape::unknown_dims(signal_rank),
            )?
        } else {
            y
        };
        (y, false)
    };
    let y = transpose(&mut b, &y, &perm, signal_rank)?;
    let y = if is_real {
        let last = b.tensor(Tensor::scalar(-1i32))?;
        b.op(
            "ExpandDims",
            &[&y, &last],
            &[t(real), ("Tdim", Attr::Type(DType::Int32))],
            Shape::unknown_dims(rank),
        )?
    } else {
        let parts_attrs = [t(complex), ("Tout", Attr::Type(real))];
        let re = b.op(
            "Real",
            &[&y],
            &parts_attrs,
            Shape::unknown_dims(signal_rank),
        )?;
        let im = b.op(
            "Imag",
            &[&y],
            &parts_attrs,
            Shape::unknown_dims(signal_rank),
        )?;
        b.stack(&[&re, &im], -1)?
    };
    ctx.set_plain(out, y, Shape::unknown_dims(rank));
    Ok(())
}
