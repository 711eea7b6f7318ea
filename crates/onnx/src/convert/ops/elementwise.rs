//! Elementwise operators: math, activations, comparisons, logic.
//!
//! They keep their inputs' layout: applied to a channels-last value they
//! give a channels-last value, so a convolution, its activation and a
//! residual `Add` stay channels last with no transpose between them.
//! Known inputs are folded where the arithmetic is exact
//! ([`super::super::constant::binary`]).

use savedmodel_graph::{Attr, DType, Output, Shape};

use super::{Converter, input_name, legacy, output0, required_input, sub};
use crate::convert::constant;
use crate::convert::context::{Ctx, permute_shape, to_channels_last};
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "Abs" => |c, n| unary(c, n, "Abs"),
        "Neg" => |c, n| unary(c, n, "Neg"),
        "Exp" => |c, n| unary(c, n, "Exp"),
        "Log" => |c, n| unary(c, n, "Log"),
        "Sqrt" => |c, n| unary(c, n, "Sqrt"),
        "Reciprocal" => |c, n| unary(c, n, "Reciprocal"),
        "Floor" => |c, n| unary(c, n, "Floor"),
        "Ceil" => |c, n| unary(c, n, "Ceil"),
        // TensorFlow's Round rounds half to even, as ONNX's does.
        "Round" => |c, n| unary(c, n, "Round"),
        "Relu" => |c, n| unary(c, n, "Relu"),
        "Sigmoid" => |c, n| unary(c, n, "Sigmoid"),
        "Tanh" => |c, n| unary(c, n, "Tanh"),
        "Erf" => |c, n| unary(c, n, "Erf"),
        "Softplus" => |c, n| unary(c, n, "Softplus"),
        "Softsign" => |c, n| unary(c, n, "Softsign"),
        "Sin" => |c, n| unary(c, n, "Sin"),
        "Cos" => |c, n| unary(c, n, "Cos"),
        "Tan" => |c, n| unary(c, n, "Tan"),
        "Asin" => |c, n| unary(c, n, "Asin"),
        "Acos" => |c, n| unary(c, n, "Acos"),
        "Atan" => |c, n| unary(c, n, "Atan"),
        "Sinh" => |c, n| unary(c, n, "Sinh"),
        "Cosh" => |c, n| unary(c, n, "Cosh"),
        "Asinh" => |c, n| unary(c, n, "Asinh"),
        "Acosh" => |c, n| unary(c, n, "Acosh"),
        "Atanh" => |c, n| unary(c, n, "Atanh"),
        "Sign" => |c, n| unary(c, n, "Sign"),
        "Not" => |c, n| unary(c, n, "LogicalNot"),
        "IsNaN" => |c, n| unary(c, n, "IsNan"),
        "Add" => |c, n| binary(c, n, "AddV2"),
        "Sub" => |c, n| binary(c, n, "Sub"),
        "Mul" => |c, n| binary(c, n, "Mul"),
        "Div" => div,
        "Pow" => pow,
        "Equal" => |c, n| binary(c, n, "Equal"),
        "Less" => |c, n| binary(c, n, "Less"),
        "Greater" => |c, n| binary(c, n, "Greater"),
        "LessOrEqual" => |c, n| binary(c, n, "LessEqual"),
        "GreaterOrEqual" => |c, n| binary(c, n, "GreaterEqual"),
        "And" => |c, n| binary(c, n, "LogicalAnd"),
        "Or" => |c, n| binary(c, n, "LogicalOr"),
        "Xor" => |c, n| binary(c, n, "NotEqual"),
        "Min" => |c, n| variadic(c, n, "Minimum", false),
        "Max" => |c, n| variadic(c, n, "Maximum", false),
        "Sum" => |c, n| variadic(c, n, "AddV2", false),
        "Mean" => |c, n| variadic(c, n, "AddV2", true),
        "LeakyRelu" => leaky_relu,
        "Elu" => elu,
        "Selu" => selu,
        "HardSigmoid" => hard_sigmoid,
        "HardSwish" => hard_swish,
        "PRelu" => prelu,
        "Gelu" => gelu,
        "Clip" => clip,
        "Where" => where_,
        _ => return None,
    };
    Some(f)
}

/// Whether TensorFlow's `op_type` declares attr `attr` (the logical ops
/// have no `T`).
pub(super) fn has_attr(op_type: &str, attr: &str) -> bool {
    savedmodel_graph::op_registry::OpRegistry::tensorflow()
        .get(op_type)
        .is_some_and(|d| savedmodel_graph::op_registry::attr_def(d, attr).is_some())
}

/// How the operands of an elementwise op are laid out.
pub(super) enum Layout {
    Plain,
    ChannelsLast,
}

/// The operands `names` as TensorFlow tensors in one layout: channels last
/// when a non-constant operand exists only channels last and every other
/// operand can follow it (a constant broadcast to it, or a value of the
/// same rank); ONNX layout otherwise.
fn operands(ctx: &mut Ctx, names: &[&str], base: &str) -> Result<(Vec<Output>, Layout, usize)> {
    let ranks: Vec<Option<usize>> = names
        .iter()
        .map(|n| ctx.slot(n).ok().and_then(|s| s.shape.rank()))
        .collect::<Vec<_>>();
    let full = ranks.iter().flatten().copied().max().unwrap_or(0);
    let any_cl = names.iter().any(|n| ctx.is_channels_last(n));
    let can_follow = names.iter().zip(&ranks).all(|(n, r)| {
        ctx.is_channels_last(n) || (ctx.constant(n).is_some() && r.is_some()) || *r == Some(full)
    });
    if any_cl && full >= 3 && can_follow {
        let perm = to_channels_last(full);
        let mut outs = Vec::new();
        for (i, (n, r)) in names.iter().zip(&ranks).enumerate() {
            if let (Some(value), Some(r)) = (ctx.constant(n).cloned(), r) {
                if *r < full || !ctx.is_channels_last(n) {
                    // Broadcast the constant to full rank, then lay it out
                    // as its partner is.
                    let mut dims = vec![1i64; full - r];
                    dims.extend_from_slice(value.shape());
                    let v = constant::reshape(&value, &dims).map_err(|e| ctx.error(e))?;
                    let v = constant::transpose(&v, &perm).map_err(|e| ctx.error(e))?;
                    outs.push(ctx.const_tensor(&sub(base, &format!("operand{i}")), v)?);
                    continue;
                }
            }
            outs.push(ctx.channels_last(n)?);
        }
        return Ok((outs, Layout::ChannelsLast, full));
    }
    let outs = names.iter().map(|n| ctx.plain(n)).collect::<Result<_>>()?;
    Ok((outs, Layout::Plain, full))
}

/// The logical shape of an elementwise result.
pub(super) fn broadcast_shape(ctx: &Ctx, names: &[&str]) -> Shape {
    let mut out: Option<Vec<i64>> = Some(Vec::new());
    for n in names {
        let dims = ctx
            .slot(n)
            .ok()
            .and_then(|s| s.shape.dims().map(<[i64]>::to_vec));
        out = match (out, dims) {
            (Some(a), Some(b)) => constant::broadcast_dims(&a, &b).ok(),
            _ => None,
        };
    }
    out.map_or_else(Shape::unknown, |d| Shape::new(&d))
}

/// Defines the node's output from `out` in `layout`.
pub(super) fn define(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    out: Output,
    layout: Layout,
    shape: Shape,
) -> Result<()> {
    let name = output0(ctx, node)?;
    match layout {
        Layout::Plain => ctx.set_plain(name, out, shape),
        Layout::ChannelsLast => ctx.set_channels_last(name, out, shape),
    }
    Ok(())
}

/// The stored (TensorFlow) shape of a result in `layout`.
fn stored(shape: &Shape, layout: &Layout) -> Shape {
    match (layout, shape.rank()) {
        (Layout::ChannelsLast, Some(r)) if r >= 3 => permute_shape(shape, &to_channels_last(r)),
        _ => shape.clone(),
    }
}

/// Builds `op_type` over `names` (elementwise, numpy broadcasting) with
/// `attrs`, keeping the layout.
fn elementwise(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    op_type: &str,
    names: &[&str],
    attrs: &[(&str, Attr)],
) -> Result<()> {
    let base = ctx.node_name(node);
    let (inputs, layout, _) = operands(ctx, names, &base)?;
    let shape = broadcast_shape(ctx, names);
    let refs: Vec<&Output> = inputs.iter().collect();
    let mut all: Vec<(&str, Attr)> = Vec::new();
    if has_attr(op_type, "T") {
        all.push(("T", Attr::Type(inputs[0].dtype())));
    }
    all.extend(attrs.iter().cloned());
    let out = ctx.op1(op_type, &base, &refs, &all, stored(&shape, &layout))?;
    define(ctx, node, out, layout, shape)
}

pub(super) fn unary(ctx: &mut Ctx, node: &NodeView<'_>, op_type: &str) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    if fold_integer_unary(ctx, node, op_type, x)? {
        return Ok(());
    }
    elementwise(ctx, node, op_type, &[x], &[])
}

/// Folds `Neg`, `Abs` and `Sign` of a known integer tensor (the axis and
/// shape arithmetic of function bodies, e.g. `LayerNormalization`'s
/// `ConstantOfShape(Neg(axis))`) and `Not` of a known bool tensor (an
/// exporter's `If` condition on a rank, `Not(Equal(Size(Shape(x)), 2))`):
/// `false` when `x` is not such a known tensor.
fn fold_integer_unary(ctx: &mut Ctx, node: &NodeView<'_>, op_type: &str, x: &str) -> Result<bool> {
    let Some(value) = ctx.constant(x).cloned() else {
        return Ok(false);
    };
    let dtype = value.dtype();
    if op_type == "LogicalNot" && dtype == DType::Bool {
        let Some(bytes) = value.bytes() else {
            return Ok(false);
        };
        let flipped = bytes.iter().map(|&b| u8::from(b == 0)).collect();
        let Ok(t) = savedmodel_graph::Tensor::from_bytes(DType::Bool, value.shape(), flipped)
        else {
            return Ok(false);
        };
        let name = output0(ctx, node)?;
        ctx.set_constant(name, t);
        return Ok(true);
    }
    if !matches!(
        dtype,
        DType::Int8 | DType::Int16 | DType::Int32 | DType::Int64
    ) {
        return Ok(false);
    }
    let f: fn(i64) -> Option<i64> = match op_type {
        "Neg" => i64::checked_neg,
        "Abs" => i64::checked_abs,
        "Sign" => |v| Some(v.signum()),
        _ => return Ok(false),
    };
    let Ok(values) = constant::to_i64(&value) else {
        return Ok(false);
    };
    let Some(folded) = values.into_iter().map(f).collect::<Option<Vec<i64>>>() else {
        return Ok(false);
    };
    // A value the dtype cannot hold (Neg of i8::MIN) wraps, as TensorFlow's
    // kernels and ONNX's reference compute it.
    let Ok(t) = constant::from_i64(dtype, value.shape(), &folded) else {
        return Ok(false);
    };
    let name = output0(ctx, node)?;
    ctx.set_constant(name, t);
    Ok(true)
}

/// Folds a binary op of two constants when the arithmetic is exact.
fn fold_binary(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    op_type: &str,
    a: &str,
    b: &str,
) -> Result<bool> {
    let (Some(x), Some(y)) = (ctx.constant(a).cloned(), ctx.constant(b).cloned()) else {
        return Ok(false);
    };
    if x.dtype() != y.dtype() || !(constant::is_int(x.dtype()) || constant::is_float(x.dtype())) {
        return Ok(false);
    }
    let dt = x.dtype();
    let folded = match op_type {
        "AddV2" => constant::binary(&x, &y, dt, i64::checked_add, |p, q| p + q),
        "Sub" => constant::binary(&x, &y, dt, i64::checked_sub, |p, q| p - q),
        "Mul" => constant::binary(&x, &y, dt, i64::checked_mul, |p, q| p * q),
        "TruncateDiv" | "RealDiv" => constant::binary(&x, &y, dt, i64::checked_div, |p, q| p / q),
        "Equal" => constant::binary(
            &x,
            &y,
            DType::Bool,
            |p, q| Some(i64::from(p == q)),
            |p, q| f64::from(u8::from(p == q)),
        ),
        "Less" => constant::binary(
            &x,
            &y,
            DType::Bool,
            |p, q| Some(i64::from(p < q)),
            |p, q| f64::from(u8::from(p < q)),
        ),
        "Greater" => constant::binary(
            &x,
            &y,
            DType::Bool,
            |p, q| Some(i64::from(p > q)),
            |p, q| f64::from(u8::from(p > q)),
        ),
        _ => return Ok(false),
    };
    // Floats are folded only for float32 and float64, where f64 arithmetic
    // rounded back gives the correctly rounded result.
    if constant::is_float(dt) && !matches!(dt, DType::Float | DType::Double) {
        return Ok(false);
    }
    match folded {
        Ok(t) => {
            let name = output0(ctx, node)?;
            ctx.set_constant(name, t);
            Ok(true)
        }
        Err(_) => Ok(false),
    }
}

/// The two operands of a binary node (`B` reshaped for an opset-1-to-6
/// node's `broadcast`/`axis`, see `legacy.rs`).
fn binary_operands<'n>(ctx: &mut Ctx, node: &NodeView<'n>) -> Result<(&'n str, String)> {
    let a = required_input(ctx, node, 0)?;
    let b = required_input(ctx, node, 1)?;
    let b = legacy::broadcast_operand(ctx, node, a, b)?;
    Ok((a, b))
}

pub(super) fn binary(ctx: &mut Ctx, node: &NodeView<'_>, op_type: &str) -> Result<()> {
    let (a, b) = binary_operands(ctx, node)?;
    if fold_binary(ctx, node, op_type, a, &b)? {
        return Ok(());
    }
    elementwise(ctx, node, op_type, &[a, &b], &[])
}

fn div(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let a = required_input(ctx, node, 0)?;
    let dtype = ctx.slot(a)?.dtype;
    // ONNX divides integers truncating toward zero, as C does.
    let op = if constant::is_int(dtype) {
        "TruncateDiv"
    } else {
        "RealDiv"
    };
    binary(ctx, node, op)
}

fn pow(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let (a, b) = binary_operands(ctx, node)?;
    let b = b.as_str();
    let (ta, tb) = (ctx.slot(a)?.dtype, ctx.slot(b)?.dtype);
    if ta == tb {
        return elementwise(ctx, node, "Pow", &[a, b], &[]);
    }
    // ONNX allows an exponent of another type; TensorFlow's Pow does not.
    let base = ctx.node_name(node);
    let exponent = ctx.plain(b)?;
    let cast = ctx.op1(
        "Cast",
        &sub(&base, "exponent"),
        &[&exponent],
        &[("SrcT", Attr::Type(tb)), ("DstT", Attr::Type(ta))],
        exponent.shape().clone(),
    )?;
    let x = ctx.plain(a)?;
    let shape = broadcast_shape(ctx, &[a, b]);
    let out = ctx.op1(
        "Pow",
        &base,
        &[&x, &cast],
        &[("T", Attr::Type(ta))],
        shape.clone(),
    )?;
    define(ctx, node, out, Layout::Plain, shape)
}

fn variadic(ctx: &mut Ctx, node: &NodeView<'_>, op_type: &str, mean: bool) -> Result<()> {
    let names: Vec<&str> = (0..node.proto().input.len())
        .filter_map(|i| input_name(node, i))
        .collect();
    if names.is_empty() {
        return Err(ctx.error("needs at least one input"));
    }
    let base = ctx.node_name(node);
    let (inputs, layout, _) = operands(ctx, &names, &base)?;
    let shape = broadcast_shape(ctx, &names);
    let dtype = inputs[0].dtype();
    let mut acc = inputs[0].clone();
    if inputs.len() == 1 {
        acc = ctx.op1(
            "Identity",
            &base,
            &[&acc],
            &[("T", Attr::Type(dtype))],
            stored(&shape, &layout),
        )?;
    }
    for (i, x) in inputs.iter().enumerate().skip(1) {
        acc = ctx.op1(
            op_type,
            &sub(&base, &format!("{i}")),
            &[&acc, x],
            &[("T", Attr::Type(dtype))],
            stored(&shape, &layout),
        )?;
    }
    if mean {
        let n = ctx.const_scalar(&sub(&base, "count"), dtype, inputs.len() as f64)?;
        acc = ctx.op1(
            "RealDiv",
            &base,
            &[&acc, &n],
            &[("T", Attr::Type(dtype))],
            stored(&shape, &layout),
        )?;
    }
    define(ctx, node, acc, layout, shape)
}

/// Input 0 as a TensorFlow tensor in its current layout, with its stored
/// and logical shapes.
pub(super) fn input0(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<(Output, Layout, Shape)> {
    let x = required_input(ctx, node, 0)?;
    let shape = ctx.slot(x)?.shape.clone();
    if ctx.is_channels_last(x) {
        Ok((ctx.channels_last(x)?, Layout::ChannelsLast, shape))
    } else {
        Ok((ctx.plain(x)?, Layout::Plain, shape))
    }
}

fn leaky_relu(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let alpha = node.attr_f_or("alpha", 0.01)?;
    let x = required_input(ctx, node, 0)?;
    elementwise(
        ctx,
        node,
        "LeakyRelu",
        &[x],
        &[("alpha", Attr::Float(alpha))],
    )
}

/// `x < 0 ? f(x) : x` for an activation `f` built by `negative`.
fn piecewise(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    negative: impl FnOnce(&mut Ctx, &str, &Output) -> Result<Output>,
    positive_scale: Option<f64>,
) -> Result<()> {
    let base = ctx.node_name(node);
    let (x, layout, shape) = input0(ctx, node)?;
    let out = piecewise_of(ctx, &base, &x, negative, positive_scale)?;
    define(ctx, node, out, layout, shape)
}

/// `x < 0 ? negative(x) : x` (times `positive_scale` when given), named
/// under `base`.
fn piecewise_of(
    ctx: &mut Ctx,
    base: &str,
    x: &Output,
    negative: impl FnOnce(&mut Ctx, &str, &Output) -> Result<Output>,
    positive_scale: Option<f64>,
) -> Result<Output> {
    let dtype = x.dtype();
    let t = [("T", Attr::Type(dtype))];
    let st = x.shape().clone();
    let zero = ctx.const_scalar(&sub(base, "zero"), dtype, 0.0)?;
    let is_neg = ctx.op1(
        "Less",
        &sub(base, "is_negative"),
        &[x, &zero],
        &t,
        st.clone(),
    )?;
    let neg = negative(ctx, base, x)?;
    let pos = match positive_scale {
        Some(s) => {
            let k = ctx.const_scalar(&sub(base, "scale"), dtype, s)?;
            ctx.op1("Mul", &sub(base, "positive"), &[x, &k], &t, st.clone())?
        }
        None => x.clone(),
    };
    ctx.op1("SelectV2", base, &[&is_neg, &neg, &pos], &t, st)
}

fn elu(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let alpha = f64::from(node.attr_f_or("alpha", 1.0)?);
    let base = ctx.node_name(node);
    let (x, layout, shape) = input0(ctx, node)?;
    let out = elu_of(ctx, &base, &x, alpha)?;
    define(ctx, node, out, layout, shape)
}

/// `x < 0 ? alpha * (exp(x) - 1) : x`, named under `base`.
pub(super) fn elu_of(ctx: &mut Ctx, base: &str, x: &Output, alpha: f64) -> Result<Output> {
    piecewise_of(
        ctx,
        base,
        x,
        |ctx, base, x| {
            let t = [("T", Attr::Type(x.dtype()))];
            let st = x.shape().clone();
            let e = ctx.op1("Expm1", &sub(base, "expm1"), &[x], &t, st.clone())?;
            let a = ctx.const_scalar(&sub(base, "alpha"), x.dtype(), alpha)?;
            ctx.op1("Mul", &sub(base, "negative"), &[&e, &a], &t, st)
        },
        None,
    )
}

fn selu(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let alpha = f64::from(node.attr_f_or("alpha", 1.673_263_2)?);
    let gamma = f64::from(node.attr_f_or("gamma", 1.050_701)?);
    piecewise(
        ctx,
        node,
        |ctx, base, x| {
            let t = [("T", Attr::Type(x.dtype()))];
            let st = x.shape().clone();
            let e = ctx.op1("Exp", &sub(base, "exp"), &[x], &t, st.clone())?;
            let one = ctx.const_scalar(&sub(base, "one"), x.dtype(), 1.0)?;
            let e = ctx.op1(
                "Sub",
                &sub(base, "exp_minus_one"),
                &[&e, &one],
                &t,
                st.clone(),
            )?;
            let k = ctx.const_scalar(&sub(base, "alpha_gamma"), x.dtype(), alpha * gamma)?;
            ctx.op1("Mul", &sub(base, "negative"), &[&e, &k], &t, st)
        },
        Some(gamma),
    )
}

/// `max(0, min(1, alpha * x + beta))`.
pub(super) fn hard_sigmoid_of(
    ctx: &mut Ctx,
    base: &str,
    x: &Output,
    alpha: f64,
    beta: f64,
) -> Result<Output> {
    let dtype = x.dtype();
    let t = [("T", Attr::Type(dtype))];
    let st = x.shape().clone();
    let a = ctx.const_scalar(&sub(base, "alpha"), dtype, alpha)?;
    let b = ctx.const_scalar(&sub(base, "beta"), dtype, beta)?;
    let zero = ctx.const_scalar(&sub(base, "zero"), dtype, 0.0)?;
    let one = ctx.const_scalar(&sub(base, "one"), dtype, 1.0)?;
    let ax = ctx.op1("Mul", &sub(base, "scaled"), &[x, &a], &t, st.clone())?;
    let y = ctx.op1("AddV2", &sub(base, "shifted"), &[&ax, &b], &t, st.clone())?;
    let y = ctx.op1("Minimum", &sub(base, "upper"), &[&y, &one], &t, st.clone())?;
    ctx.op1("Maximum", &sub(base, "lower"), &[&y, &zero], &t, st)
}

fn hard_sigmoid(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let alpha = f64::from(node.attr_f_or("alpha", 0.2)?);
    let beta = f64::from(node.attr_f_or("beta", 0.5)?);
    let base = ctx.node_name(node);
    let (x, layout, shape) = input0(ctx, node)?;
    let out = hard_sigmoid_of(ctx, &base, &x, alpha, beta)?;
    define(ctx, node, out, layout, shape)
}

fn hard_swish(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let base = ctx.node_name(node);
    let (x, layout, shape) = input0(ctx, node)?;
    let gate = hard_sigmoid_of(ctx, &base, &x, 1.0 / 6.0, 0.5)?;
    let t = [("T", Attr::Type(x.dtype()))];
    let out = ctx.op1("Mul", &base, &[&x, &gate], &t, x.shape().clone())?;
    define(ctx, node, out, layout, shape)
}

fn prelu(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let slope = required_input(ctx, node, 1)?;
    let slope = legacy::prelu_slope(ctx, node, x, slope)?;
    let slope = slope.as_str();
    let base = ctx.node_name(node);
    let (inputs, layout, _) = operands(ctx, &[x, slope], &base)?;
    let shape = broadcast_shape(ctx, &[x, slope]);
    let dtype = inputs[0].dtype();
    let t = [("T", Attr::Type(dtype))];
    let st = stored(&shape, &layout);
    let zero = ctx.const_scalar(&sub(&base, "zero"), dtype, 0.0)?;
    let is_neg = ctx.op1(
        "Less",
        &sub(&base, "is_negative"),
        &[&inputs[0], &zero],
        &t,
        inputs[0].shape().clone(),
    )?;
    let scaled = ctx.op1(
        "Mul",
        &sub(&base, "negative"),
        &[&inputs[0], &inputs[1]],
        &t,
        st.clone(),
    )?;
    let out = ctx.op1("SelectV2", &base, &[&is_neg, &scaled, &inputs[0]], &t, st)?;
    define(ctx, node, out, layout, shape)
}

fn gelu(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let approximate = node.attr_s_or("approximate", "none")?;
    let base = ctx.node_name(node);
    let (x, layout, shape) = input0(ctx, node)?;
    let dtype = x.dtype();
    let t = [("T", Attr::Type(dtype))];
    let st = x.shape().clone();
    let half = ctx.const_scalar(&sub(&base, "half"), dtype, 0.5)?;
    let one = ctx.const_scalar(&sub(&base, "one"), dtype, 1.0)?;
    let inner = match approximate {
        "none" => {
            let k = ctx.const_scalar(
                &sub(&base, "rsqrt2"),
                dtype,
                std::f64::consts::FRAC_1_SQRT_2,
            )?;
            let y = ctx.op1("Mul", &sub(&base, "scaled"), &[&x, &k], &t, st.clone())?;
            ctx.op1("Erf", &sub(&base, "erf"), &[&y], &t, st.clone())?
        }
        "tanh" => {
            let c = ctx.const_scalar(&sub(&base, "c"), dtype, 0.044_715)?;
            let k = ctx.const_scalar(
                &sub(&base, "sqrt_2_over_pi"),
                dtype,
                (2.0 / std::f64::consts::PI).sqrt(),
            )?;
            let x3 = ctx.op1("Mul", &sub(&base, "x2"), &[&x, &x], &t, st.clone())?;
            let x3 = ctx.op1("Mul", &sub(&base, "x3"), &[&x3, &x], &t, st.clone())?;
            let y = ctx.op1("Mul", &sub(&base, "cx3"), &[&x3, &c], &t, st.clone())?;
            let y = ctx.op1("AddV2", &sub(&base, "sum"), &[&x, &y], &t, st.clone())?;
            let y = ctx.op1("Mul", &sub(&base, "scaled"), &[&y, &k], &t, st.clone())?;
            ctx.op1("Tanh", &sub(&base, "tanh"), &[&y], &t, st.clone())?
        }
        other => return Err(ctx.error(format!("approximate={other:?} is not defined by Gelu"))),
    };
    let y = ctx.op1(
        "AddV2",
        &sub(&base, "one_plus"),
        &[&inner, &one],
        &t,
        st.clone(),
    )?;
    let y = ctx.op1("Mul", &sub(&base, "times_x"), &[&x, &y], &t, st.clone())?;
    let out = ctx.op1("Mul", &base, &[&y, &half], &t, st)?;
    define(ctx, node, out, layout, shape)
}

fn clip(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let base = ctx.node_name(node);
    let (x, layout, shape) = input0(ctx, node)?;
    let dtype = x.dtype();
    let t = [("T", Attr::Type(dtype))];
    let st = x.shape().clone();
    // Clip to [0, 6] (PyTorch's ReLU6) and to [0, inf) are TensorFlow's
    // Relu6 and Relu: one kernel, which the remapper fuses into a
    // preceding convolution or product with its bias (`fuse.rs`).
    if ctx.options.optimize
        && matches!(
            dtype,
            DType::Float | DType::Double | DType::Half | DType::BFloat16
        )
    {
        let activation = match (
            known_bound(ctx, node, 1, "min")?,
            known_bound(ctx, node, 2, "max")?,
        ) {
            (Some(Some(lo)), Some(Some(hi))) if lo == 0.0 && hi == 6.0 => Some("Relu6"),
            (Some(Some(0.0)), Some(None)) => Some("Relu"),
            _ => None,
        };
        if let Some(op) = activation {
            let y = ctx.op1(op, &base, &[&x], &t, st)?;
            return define(ctx, node, y, layout, shape);
        }
    }
    let mut y = x.clone();
    // Opset 11 moved min and max from attributes to optional inputs.
    let bound = |ctx: &mut Ctx, i: usize, attr: &str, what: &str| -> Result<Option<Output>> {
        if node.opset_version()? < 11 {
            return match node.attr_f(attr)? {
                Some(v) => Ok(Some(ctx.const_scalar(
                    &sub(&base, what),
                    dtype,
                    f64::from(v),
                )?)),
                None => Ok(None),
            };
        }
        match input_name(node, i) {
            Some(n) => Ok(Some(ctx.plain(n)?)),
            None => Ok(None),
        }
    };
    if let Some(lo) = bound(ctx, 1, "min", "min")? {
        y = ctx.op1("Maximum", &sub(&base, "lower"), &[&y, &lo], &t, st.clone())?;
    }
    if let Some(hi) = bound(ctx, 2, "max", "max")? {
        y = ctx.op1("Minimum", &sub(&base, "upper"), &[&y, &hi], &t, st.clone())?;
    }
    if y == x {
        y = ctx.op1("Identity", &base, &[&x], &t, st)?;
    }
    define(ctx, node, y, layout, shape)
}

/// Clip's bound `i` (attribute `attr` before opset 11) when known at
/// conversion time: `Some(None)` when there is none, `None` when it is
/// computed at run time.
fn known_bound(
    ctx: &Ctx,
    node: &NodeView<'_>,
    i: usize,
    attr: &str,
) -> Result<Option<Option<f64>>> {
    if node.opset_version()? < 11 {
        return Ok(Some(node.attr_f(attr)?.map(f64::from)));
    }
    let Some(name) = input_name(node, i) else {
        return Ok(Some(None));
    };
    Ok(ctx
        .constant(name)
        .and_then(|t| constant::to_f64(t).ok())
        .and_then(|v| (v.len() == 1).then(|| Some(v[0]))))
}

fn where_(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let c = required_input(ctx, node, 0)?;
    let x = required_input(ctx, node, 1)?;
    let y = required_input(ctx, node, 2)?;
    let base = ctx.node_name(node);
    let (inputs, layout, _) = operands(ctx, &[c, x, y], &base)?;
    let shape = broadcast_shape(ctx, &[c, x, y]);
    let out = ctx.op1(
        "SelectV2",
        &base,
        &[&inputs[0], &inputs[1], &inputs[2]],
        &[("T", Attr::Type(inputs[1].dtype()))],
        stored(&shape, &layout),
    )?;
    define(ctx, node, out, layout, shape)
}
