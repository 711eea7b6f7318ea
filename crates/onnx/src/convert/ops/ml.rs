//! Operators of the `ai.onnx.ml` domain, the ones scikit-learn pipelines
//! exported by `skl2onnx` use around their models: `Binarizer`,
//! `ArrayFeatureExtractor`, `LabelEncoder`, `Scaler`, `Normalizer`,
//! `LinearRegressor` and `LinearClassifier`, as ONNX's reference and
//! onnxruntime compute them.
//!
//! - `LabelEncoder` compares each element with every key (`Equal` against
//!   the key vector, `Any` for a match, `ArgMax` for which) and gathers the
//!   value, else the default: exact for strings, integers and floats, and
//!   small (label encoders have tens of keys, not millions).
//! - The linear models are a `MatMul` by the transposed coefficients plus
//!   the intercepts; a binary `LinearClassifier` (one coefficient row, two
//!   labels) scores `[-s, s]`; `post_transform` is applied to the scores
//!   (`LOGISTIC`, `SOFTMAX`; `SOFTMAX_ZERO` and `PROBIT` are refused by
//!   name), and the label is the class of the largest score.

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::build::{Builder, t};
use super::{Converter, output_name, output0, rank_of, required_input};
use crate::convert::context::Ctx;
use crate::convert::weights;
use crate::{NodeView, Result};

/// The converter of `op_type` in domain `ai.onnx.ml`.
pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "Binarizer" => binarizer,
        "ArrayFeatureExtractor" => array_feature_extractor,
        "LabelEncoder" => label_encoder,
        "Scaler" => scaler,
        "Normalizer" => normalizer,
        "LinearRegressor" => linear_regressor,
        "LinearClassifier" => linear_classifier,
        _ => return None,
    };
    Some(f)
}

fn binarizer(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let threshold = f64::from(node.attr_f_or("threshold", 0.0)?);
    let x = ctx.plain(x_name)?;
    let shape = ctx.slot(x_name)?.shape.clone();
    let dtype = x.dtype();
    let mut b = Builder::new(ctx, node);
    let limit = b.scalar(dtype, threshold)?;
    let above = b.op("Greater", &[&x, &limit], &[t(dtype)], shape.clone())?;
    let y = b.cast(&above, dtype)?;
    ctx.set_plain(out, y, shape);
    Ok(())
}

/// The elements of the last axis at the indices, as onnxruntime does (a
/// vector input gives one row).
fn array_feature_extractor(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let i_name = required_input(ctx, node, 1)?;
    let out = output0(ctx, node)?;
    let rank = rank_of(ctx, x_name)?;
    let x = ctx.plain(x_name)?;
    let indices = ctx.plain(i_name)?;
    let mut b = Builder::new(ctx, node);
    let indices = b.reshape(&indices, &[-1])?;
    let x = if rank == 1 {
        b.reshape(&x, &[1, -1])?
    } else {
        x
    };
    let axis = rank.max(2) - 1;
    let y = b.gather(&x, &indices, axis, Shape::unknown_dims(rank.max(2)))?;
    ctx.set_plain(out, y, Shape::unknown_dims(rank.max(2)));
    Ok(())
}

/// A `LabelEncoder` side (keys or values): from `<what>_tensor`, else
/// `<what>_strings`, `<what>_int64s` or `<what>_floats`.
fn label_table(ctx: &Ctx, node: &NodeView<'_>, what: &str) -> Result<Option<Tensor>> {
    if let Some(view) = node.attr_tensor(&format!("{what}_tensor"))? {
        return weights::to_tensor(&view)
            .map(Some)
            .map_err(|e| ctx.error(format!("{what}_tensor: {e}")));
    }
    if let Some(s) = node.attr_strings(&format!("{what}_strings"))? {
        return Ok(Some(Tensor::string_vector(&s)));
    }
    if let Some(i) = node.attr_ints(&format!("{what}_int64s"))? {
        return Ok(Some(Tensor::vector(i)));
    }
    if let Some(f) = node.attr_floats(&format!("{what}_floats"))? {
        return Ok(Some(Tensor::vector(f)));
    }
    Ok(None)
}

fn label_encoder(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let keys = label_table(ctx, node, "keys")?.ok_or_else(|| {
        ctx.error("no keys (keys_tensor, keys_strings, keys_int64s, keys_floats)")
    })?;
    let values = label_table(ctx, node, "values")?.ok_or_else(|| {
        ctx.error("no values (values_tensor, values_strings, values_int64s, values_floats)")
    })?;
    if keys.num_elements() != values.num_elements() {
        return Err(ctx.error(format!(
            "{} keys but {} values",
            keys.num_elements(),
            values.num_elements()
        )));
    }
    let default = match node.attr_tensor("default_tensor")? {
        Some(view) => {
            weights::to_tensor(&view).map_err(|e| ctx.error(format!("default_tensor: {e}")))?
        }
        None => match values.dtype() {
            DType::String => Tensor::string(node.attr_s_or("default_string", "_Unused")?),
            DType::Int64 => Tensor::scalar(node.attr_i_or("default_int64", -1)?),
            DType::Float => Tensor::scalar(node.attr_f_or("default_float", -0.0)?),
            other => {
                return Err(ctx.error(format!("values of {other} need a default_tensor")));
            }
        },
    };
    if default.dtype() != values.dtype() {
        return Err(ctx.error(format!(
            "the default is {}, the values {}",
            default.dtype(),
            values.dtype()
        )));
    }
    let x = ctx.plain(x_name)?;
    if x.dtype() != keys.dtype() {
        return Err(ctx.error(format!(
            "input {x_name:?} is {}, the keys {}",
            x.dtype(),
            keys.dtype()
        )));
    }
    let shape = ctx.slot(x_name)?.shape.clone();
    let dtype = values.dtype();
    let mut b = Builder::new(ctx, node);
    let keys = b.tensor(keys)?;
    let keys = b.reshape(&keys, &[-1])?;
    let values = b.tensor(values)?;
    let values = b.reshape(&values, &[-1])?;
    let default = b.tensor(default)?;
    let default = b.reshape(&default, &[])?;
    let last = b.tensor(Tensor::scalar(-1i32))?;
    let column = b.op(
        "ExpandDims",
        &[&x, &last],
        &[t(x.dtype()), ("Tdim", Attr::Type(DType::Int32))],
        Shape::unknown(),
    )?;
    let equal = b.op(
        "Equal",
        &[&column, &keys],
        &[t(x.dtype()), ("incompatible_shape_error", Attr::Bool(true))],
        Shape::unknown(),
    )?;
    let found = b.op(
        "Any",
        &[&equal, &last],
        &[
            ("keep_dims", Attr::Bool(false)),
            ("Tidx", Attr::Type(DType::Int32)),
        ],
        shape.clone(),
    )?;
    let as_int = b.cast(&equal, DType::Int32)?;
    let which = b.op(
        "ArgMax",
        &[&as_int, &last],
        &[
            t(DType::Int32),
            ("Tidx", Attr::Type(DType::Int32)),
            ("output_type", Attr::Type(DType::Int64)),
        ],
        shape.clone(),
    )?;
    let value = b.gather(&values, &which, 0, shape.clone())?;
    let y = b.op(
        "SelectV2",
        &[&found, &value, &default],
        &[t(dtype)],
        shape.clone(),
    )?;
    ctx.set_plain(out, y, shape);
    Ok(())
}

/// A float attribute list as a float32 vector of length 1 or `width`.
fn float_list(ctx: &Ctx, node: &NodeView<'_>, name: &str) -> Result<Vec<f32>> {
    node.attr_floats(name)?
        .map(<[f32]>::to_vec)
        .ok_or_else(|| ctx.error(format!("attribute {name} is required")))
}

/// `x` as float32 (the ml operators compute in float unless given double).
fn float_input(b: &mut Builder<'_>, x: &Output) -> Result<Output> {
    match x.dtype() {
        DType::Float | DType::Double => Ok(x.clone()),
        _ => b.cast(x, DType::Float),
    }
}

fn scaler(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let offset = float_list(ctx, node, "offset")?;
    let scale = float_list(ctx, node, "scale")?;
    let x = ctx.plain(x_name)?;
    let shape = ctx.slot(x_name)?.shape.clone();
    let mut b = Builder::new(ctx, node);
    let x = float_input(&mut b, &x)?;
    let dtype = x.dtype();
    let offset = b.tensor(Tensor::vector(&offset))?;
    let offset = b.cast(&offset, dtype)?;
    let scale = b.tensor(Tensor::vector(&scale))?;
    let scale = b.cast(&scale, dtype)?;
    let centered = b.bin("Sub", &x, &offset)?;
    let y = b.op("Mul", &[&centered, &scale], &[t(dtype)], shape.clone())?;
    ctx.set_plain(out, y, shape);
    Ok(())
}

fn normalizer(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let norm = node.attr_s_or("norm", "MAX")?.to_owned();
    let x = ctx.plain(x_name)?;
    let shape = ctx.slot(x_name)?.shape.clone();
    let mut b = Builder::new(ctx, node);
    let x = float_input(&mut b, &x)?;
    let dtype = x.dtype();
    let x = if shape.rank() == Some(1) {
        b.reshape(&x, &[1, -1])?
    } else {
        x
    };
    let axis = b.tensor(Tensor::scalar(1i32))?;
    let reduce = |b: &mut Builder<'_>, op: &str, v: &Output| {
        b.op(
            op,
            &[v, &axis],
            &[
                t(dtype),
                ("keep_dims", Attr::Bool(true)),
                ("Tidx", Attr::Type(DType::Int32)),
            ],
            Shape::unknown_dims(2),
        )
    };
    let divisor = match norm.as_str() {
        "MAX" => {
            let magnitude = b.un("Abs", &x)?;
            reduce(&mut b, "Max", &magnitude)?
        }
        "L1" => {
            let magnitude = b.un("Abs", &x)?;
            reduce(&mut b, "Sum", &magnitude)?
        }
        "L2" => {
            let squares = b.un("Square", &x)?;
            let sum = reduce(&mut b, "Sum", &squares)?;
            b.un("Sqrt", &sum)?
        }
        other => return Err(b.ctx.error(format!("norm {other:?} is not MAX, L1 or L2"))),
    };
    let floor = b.scalar(dtype, 1e-30)?;
    let divisor = b.bin("Maximum", &divisor, &floor)?;
    let y = b.bin("RealDiv", &x, &divisor)?;
    let y = if shape.rank() == Some(1) {
        b.reshape(&y, &[-1])?
    } else {
        y
    };
    ctx.set_plain(out, y, shape);
    Ok(())
}

/// `x [N, C] x coefficients^T + intercepts`: the scores `[N, rows]` of a
/// linear model whose coefficients are `rows` rows of `C`.
fn linear_scores(
    b: &mut Builder<'_>,
    x: &Output,
    coefficients: &[f32],
    intercepts: Option<&[f32]>,
) -> Result<(Output, usize)> {
    let x = float_input(b, x)?;
    let dtype = x.dtype();
    let x = if x.shape().rank() == Some(1) {
        b.reshape(&x, &[1, -1])?
    } else {
        x
    };
    let features = match x.shape().dims() {
        Some([_, c]) if *c > 0 => *c as usize,
        _ => {
            return Err(b
                .ctx
                .error("the input must be [N, C] with C known at conversion"));
        }
    };
    if coefficients.is_empty() || coefficients.len() % features != 0 {
        return Err(b.ctx.error(format!(
            "{} coefficients are not rows of the input's {features} features",
            coefficients.len()
        )));
    }
    let rows = coefficients.len() / features;
    let w = Tensor::new(&[rows as i64, features as i64], coefficients)
        .map_err(|e| b.ctx.error(e.to_string()))?;
    let w = b.tensor(w)?;
    let w = b.cast(&w, dtype)?;
    let scores = b.op(
        "MatMul",
        &[&x, &w],
        &[
            t(dtype),
            ("transpose_a", Attr::Bool(false)),
            ("transpose_b", Attr::Bool(true)),
        ],
        Shape::new(&[-1, rows as i64]),
    )?;
    let scores = match intercepts {
        Some(i) if !i.is_empty() => {
            if i.len() != rows && i.len() != 1 {
                return Err(b
                    .ctx
                    .error(format!("{} intercepts for {rows} score columns", i.len())));
            }
            let i = b.tensor(Tensor::vector(i))?;
            let i = b.cast(&i, dtype)?;
            b.op(
                "AddV2",
                &[&scores, &i],
                &[t(dtype)],
                Shape::new(&[-1, rows as i64]),
            )?
        }
        _ => scores,
    };
    Ok((scores, rows))
}

/// Applies `post_transform` to scores `[N, K]`.
fn post_transform(b: &mut Builder<'_>, scores: &Output, transform: &str) -> Result<Output> {
    match transform {
        "NONE" => Ok(scores.clone()),
        "LOGISTIC" => b.un("Sigmoid", scores),
        "SOFTMAX" => b.op(
            "Softmax",
            &[scores],
            &[t(scores.dtype())],
            scores.shape().clone(),
        ),
        other => Err(b.ctx.error(format!(
            "post_transform {other:?} is not supported (NONE, LOGISTIC, SOFTMAX are)"
        ))),
    }
}

fn linear_regressor(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let coefficients = float_list(ctx, node, "coefficients")?;
    let intercepts = node.attr_floats("intercepts")?.map(<[f32]>::to_vec);
    let targets = node.attr_i_or("targets", 1)?;
    let transform = node.attr_s_or("post_transform", "NONE")?.to_owned();
    let x = ctx.plain(x_name)?;
    let mut b = Builder::new(ctx, node);
    let (scores, rows) = linear_scores(&mut b, &x, &coefficients, intercepts.as_deref())?;
    if rows as i64 != targets {
        return Err(b.ctx.error(format!(
            "targets is {targets} but the coefficients make {rows} rows"
        )));
    }
    let y = post_transform(&mut b, &scores, &transform)?;
    ctx.set_plain(out, y, Shape::new(&[-1, rows as i64]));
    Ok(())
}

fn linear_classifier(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let label_out = output0(ctx, node)?;
    let scores_out = output_name(node, 1);
    let coefficients = float_list(ctx, node, "coefficients")?;
    let intercepts = node.attr_floats("intercepts")?.map(<[f32]>::to_vec);
    let transform = node.attr_s_or("post_transform", "NONE")?.to_owned();
    let labels: Tensor = match (
        node.attr_ints("classlabels_ints")?,
        node.attr_strings("classlabels_strings")?,
    ) {
        (Some(i), None) => Tensor::vector(i),
        (None, Some(s)) => Tensor::string_vector(&s),
        _ => {
            return Err(
                ctx.error("exactly one of classlabels_ints and classlabels_strings is required")
            );
        }
    };
    let classes = labels.num_elements();
    let x = ctx.plain(x_name)?;
    let mut b = Builder::new(ctx, node);
    let (scores, rows) = linear_scores(&mut b, &x, &coefficients, intercepts.as_deref())?;
    let (scores, columns) = match (rows, classes) {
        (1, 2) => {
            // Binary: one row of coefficients scores the second class; the
            // first scores its negation.
            let negated = b.un("Neg", &scores)?;
            let both = b.concat(&[&negated, &scores], 1)?;
            (both, 2)
        }
        (r, c) if r == c => (scores, r),
        (r, c) => {
            return Err(b
                .ctx
                .error(format!("{r} rows of coefficients for {c} class labels")));
        }
    };
    let scores = post_transform(&mut b, &scores, &transform)?;
    let axis = b.tensor(Tensor::scalar(1i32))?;
    let best = b.op(
        "ArgMax",
        &[&scores, &axis],
        &[
            t(scores.dtype()),
            ("Tidx", Attr::Type(DType::Int32)),
            ("output_type", Attr::Type(DType::Int64)),
        ],
        Shape::unknown_dims(1),
    )?;
    let labels = b.tensor(labels)?;
    let label = b.gather(&labels, &best, 0, Shape::unknown_dims(1))?;
    ctx.set_plain(label_out, label, Shape::unknown_dims(1));
    if let Some(name) = scores_out {
        ctx.set_plain(name, scores, Shape::new(&[-1, columns as i64]));
    }
    Ok(())
}
