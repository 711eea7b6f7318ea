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
//! - `TreeEnsemble` (opset 5), `TreeEnsembleRegressor` and
//!   `TreeEnsembleClassifier` become one
//!   `Forest` of nodes whose leaves loop to themselves; the graph steps
//!   every tree of every row at once, as many times as the deepest tree is
//!   deep (`GatherV2` of the feature with `batch_dims=1`, the node's
//!   comparison selected by its mode, `BRANCH_MEMBER` sets as rows of a
//!   NaN-padded matrix, missing values by `nodes_missing_value_tracks_true`),
//!   then gathers each leaf's per-target values and aggregates them over
//!   the trees (SUM, AVERAGE, MIN, MAX), in float64 so that splits and
//!   weights compare and add as written.

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
        "TreeEnsemble" => tree_ensemble,
        "TreeEnsembleRegressor" => tree_ensemble_regressor,
        "TreeEnsembleClassifier" => tree_ensemble_classifier,
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

/// How a tree node compares its feature with its split.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Leq = 0,
    Lt = 1,
    Gte = 2,
    Gt = 3,
    Eq = 4,
    Neq = 5,
    Member = 6,
}

/// A tree ensemble in one index space: interior nodes and leaves alike,
/// each leaf a node whose children are itself, so that stepping every
/// tree `depth` times from its root ends on its leaf.
struct Forest {
    feature: Vec<i32>,
    split: Vec<f64>,
    mode: Vec<Mode>,
    true_child: Vec<i32>,
    false_child: Vec<i32>,
    missing_true: Vec<bool>,
    /// The members of each `Member` node's set (empty for the others).
    members: Vec<Vec<f64>>,
    /// What each node adds to each target (zero but at leaves).
    leaf_values: Vec<Vec<(usize, f64)>>,
    roots: Vec<i32>,
    targets: usize,
}

impl Forest {
    fn with_nodes(count: usize) -> Self {
        Forest {
            feature: vec![0; count],
            split: vec![0.0; count],
            mode: vec![Mode::Leq; count],
            true_child: (0..count as i32).collect(),
            false_child: (0..count as i32).collect(),
            missing_true: vec![false; count],
            members: vec![Vec::new(); count],
            leaf_values: vec![Vec::new(); count],
            roots: Vec::new(),
            targets: 0,
        }
    }

    /// The most steps from a root to a leaf, or an error for a cycle or a
    /// child out of range.
    fn depth(&self) -> std::result::Result<usize, String> {
        let n = self.feature.len();
        let mut deepest = 0;
        for &root in &self.roots {
            let mut level: Vec<i32> = vec![root];
            let mut steps = 0;
            loop {
                let mut next = Vec::new();
                for &i in &level {
                    let i = usize::try_from(i)
                        .ok()
                        .filter(|&i| i < n)
                        .ok_or_else(|| format!("node index {i} is out of range"))?;
                    for c in [self.true_child[i], self.false_child[i]] {
                        if c as usize != i {
                            next.push(c);
                        }
                    }
                }
                if next.is_empty() {
                    break;
                }
                steps += 1;
                if steps > n {
                    return Err("the trees have a cycle".to_owned());
                }
                next.sort_unstable();
                next.dedup();
                level = next;
            }
            deepest = deepest.max(steps);
        }
        Ok(deepest)
    }
}

/// A float attribute that may be a tensor (`<name>`) or a list
/// (`<name>` as floats), as f64.
fn float_values(ctx: &Ctx, node: &NodeView<'_>, name: &str) -> Result<Option<Vec<f64>>> {
    if !is_tensor_attr(node, name) {
        return Ok(node
            .attr_floats(name)?
            .map(|f| f.iter().map(|&v| f64::from(v)).collect()));
    }
    if let Some(view) = node.attr_tensor(name)? {
        let t = weights::to_tensor(&view).map_err(|e| ctx.error(format!("{name}: {e}")))?;
        return crate::convert::constant::to_f64(&t)
            .map(Some)
            .map_err(|e| ctx.error(format!("{name}: {e}")));
    }
    Ok(node
        .attr_floats(name)?
        .map(|f| f.iter().map(|&v| f64::from(v)).collect()))
}

/// Whether attribute `name` is present as a `TENSOR`.
fn is_tensor_attr(node: &NodeView<'_>, name: &str) -> bool {
    node.attr(name)
        .is_some_and(|a| a.r#type() == crate::proto::attribute_proto::AttributeType::Tensor)
}

fn ints_of(ctx: &Ctx, node: &NodeView<'_>, name: &str) -> Result<Vec<i64>> {
    if !is_tensor_attr(node, name) {
        return node
            .attr_ints(name)?
            .map(<[i64]>::to_vec)
            .ok_or_else(|| ctx.error(format!("attribute {name} is required")));
    }
    if let Some(view) = node.attr_tensor(name)? {
        let t = weights::to_tensor(&view).map_err(|e| ctx.error(format!("{name}: {e}")))?;
        return crate::convert::constant::to_i64(&t).map_err(|e| ctx.error(format!("{name}: {e}")));
    }
    node.attr_ints(name)?
        .map(<[i64]>::to_vec)
        .ok_or_else(|| ctx.error(format!("attribute {name} is required")))
}

/// `TreeEnsemble` (ai.onnx.ml opset 5): interior nodes first, then the
/// leaves.
fn tree_ensemble(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let features = ints_of(ctx, node, "nodes_featureids")?;
    let interior = features.len();
    let splits = float_values(ctx, node, "nodes_splits")?
        .ok_or_else(|| ctx.error("attribute nodes_splits is required"))?;
    let modes = ints_of(ctx, node, "nodes_modes")?;
    let true_ids = ints_of(ctx, node, "nodes_truenodeids")?;
    let false_ids = ints_of(ctx, node, "nodes_falsenodeids")?;
    let true_leafs = ints_of(ctx, node, "nodes_trueleafs")?;
    let false_leafs = ints_of(ctx, node, "nodes_falseleafs")?;
    let missing = match node.attr_ints("nodes_missing_value_tracks_true")? {
        Some(m) => m.to_vec(),
        None => vec![0; interior],
    };
    let leaf_targets = ints_of(ctx, node, "leaf_targetids")?;
    let leaf_weights = float_values(ctx, node, "leaf_weights")?
        .ok_or_else(|| ctx.error("attribute leaf_weights is required"))?;
    let roots = ints_of(ctx, node, "tree_roots")?;
    let targets = node.required("n_targets", node.attr_i("n_targets")?)?;
    let members = float_values(ctx, node, "membership_values")?.unwrap_or_default();
    let lengths = [
        splits.len(),
        modes.len(),
        true_ids.len(),
        false_ids.len(),
        true_leafs.len(),
        false_leafs.len(),
        missing.len(),
    ];
    if lengths.iter().any(|&l| l != interior) || leaf_targets.len() != leaf_weights.len() {
        return Err(ctx.error(
            "the nodes_* attributes (or leaf_targetids and leaf_weights) differ in length",
        ));
    }
    let leaves = leaf_weights.len();
    let mut forest = Forest::with_nodes(interior + leaves);
    forest.targets = usize::try_from(targets).map_err(|_| ctx.error("n_targets is negative"))?;
    let child = |id: i64, leaf: i64| -> i32 {
        if leaf != 0 {
            (interior as i64 + id) as i32
        } else {
            id as i32
        }
    };
    let mut sets = members.split(|v| v.is_nan());
    for i in 0..interior {
        forest.feature[i] = features[i] as i32;
        forest.split[i] = splits[i];
        forest.mode[i] = match modes[i] {
            0 => Mode::Leq,
            1 => Mode::Lt,
            2 => Mode::Gte,
            3 => Mode::Gt,
            4 => Mode::Eq,
            5 => Mode::Neq,
            6 => Mode::Member,
            other => return Err(ctx.error(format!("node {i}: mode {other} is not a known mode"))),
        };
        if forest.mode[i] == Mode::Member {
            forest.members[i] = sets
                .next()
                .ok_or_else(|| ctx.error(format!("node {i}: no membership_values for its set")))?
                .to_vec();
        }
        forest.true_child[i] = child(true_ids[i], true_leafs[i]);
        forest.false_child[i] = child(false_ids[i], false_leafs[i]);
        forest.missing_true[i] = missing[i] != 0;
    }
    for (l, (&target, &weight)) in leaf_targets.iter().zip(&leaf_weights).enumerate() {
        let target = usize::try_from(target)
            .ok()
            .filter(|&t| t < forest.targets)
            .ok_or_else(|| ctx.error(format!("leaf {l}: target {target} is out of range")))?;
        forest.leaf_values[interior + l].push((target, weight));
    }
    for &r in &roots {
        let r = usize::try_from(r)
            .ok()
            .filter(|&r| r < interior)
            .ok_or_else(|| ctx.error(format!("tree root {r} is out of range")))?;
        // A tree of one leaf: a root whose branches are the same leaf.
        let single = true_leafs[r] != 0 && false_leafs[r] != 0 && true_ids[r] == false_ids[r];
        forest
            .roots
            .push(if single { child(r as i64, 1) } else { r as i32 });
    }
    let aggregate = match node.attr_i_or("aggregate_function", 1)? {
        0 => "AVERAGE",
        1 => "SUM",
        2 => "MIN",
        3 => "MAX",
        other => return Err(ctx.error(format!("aggregate_function {other} is not known"))),
    };
    let transform = match node.attr_i_or("post_transform", 0)? {
        0 => "NONE",
        1 => "SOFTMAX",
        2 => "LOGISTIC",
        other => {
            return Err(ctx.error(format!(
                "post_transform {other} is not supported (0, 1, 2 are)"
            )));
        }
    };
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let x = ctx.plain(x_name)?;
    let double = x.dtype() == DType::Double;
    let mut b = Builder::new(ctx, node);
    let y = evaluate_forest(&mut b, &x, &forest, aggregate, &[], transform)?;
    let y = if double { y } else { b.cast(&y, x.dtype())? };
    ctx.set_plain(out, y, Shape::new(&[-1, forest.targets as i64]));
    Ok(())
}

/// The forest of a `TreeEnsembleRegressor` or `TreeEnsembleClassifier`
/// (ai.onnx.ml opsets 1 and 3): nodes named by (tree id, node id), `LEAF`
/// nodes, and the leaves' weights listed apart as `<prefix>_treeids`,
/// `_nodeids`, `_ids`, `_weights` (`prefix` `target` or `class`), over
/// `targets` outputs.
fn classic_forest(ctx: &Ctx, node: &NodeView<'_>, prefix: &str, targets: usize) -> Result<Forest> {
    let tree_ids = ints_of(ctx, node, "nodes_treeids")?;
    let node_ids = ints_of(ctx, node, "nodes_nodeids")?;
    let features = ints_of(ctx, node, "nodes_featureids")?;
    let values = match float_values(ctx, node, "nodes_values_as_tensor")? {
        Some(v) => v,
        None => float_values(ctx, node, "nodes_values")?
            .ok_or_else(|| ctx.error("attribute nodes_values is required"))?,
    };
    let modes = node
        .attr_strings("nodes_modes")?
        .ok_or_else(|| ctx.error("attribute nodes_modes is required"))?;
    let true_ids = ints_of(ctx, node, "nodes_truenodeids")?;
    let false_ids = ints_of(ctx, node, "nodes_falsenodeids")?;
    let count = tree_ids.len();
    let missing = match node.attr_ints("nodes_missing_value_tracks_true")? {
        Some(m) => m.to_vec(),
        None => vec![0; count],
    };
    let lengths = [
        node_ids.len(),
        features.len(),
        values.len(),
        modes.len(),
        true_ids.len(),
        false_ids.len(),
        missing.len(),
    ];
    if lengths.iter().any(|&l| l != count) {
        return Err(ctx.error("the nodes_* attributes differ in length"));
    }
    let index: std::collections::HashMap<(i64, i64), usize> = tree_ids
        .iter()
        .zip(&node_ids)
        .enumerate()
        .map(|(i, (&t, &n))| ((t, n), i))
        .collect();
    let find = |t: i64, n: i64| -> Result<i32> {
        index
            .get(&(t, n))
            .map(|&i| i as i32)
            .ok_or_else(|| ctx.error(format!("tree {t} has no node {n}")))
    };
    let mut forest = Forest::with_nodes(count);
    forest.targets = targets;
    let mut roots = std::collections::BTreeMap::new();
    for i in 0..count {
        roots.entry(tree_ids[i]).or_insert(i as i32);
        forest.feature[i] = features[i] as i32;
        forest.split[i] = values[i];
        forest.missing_true[i] = missing[i] != 0;
        forest.mode[i] = match modes[i] {
            "LEAF" => continue,
            "BRANCH_LEQ" => Mode::Leq,
            "BRANCH_LT" => Mode::Lt,
            "BRANCH_GTE" => Mode::Gte,
            "BRANCH_GT" => Mode::Gt,
            "BRANCH_EQ" => Mode::Eq,
            "BRANCH_NEQ" => Mode::Neq,
            other => return Err(ctx.error(format!("node {i}: mode {other:?} is not known"))),
        };
        forest.true_child[i] = find(tree_ids[i], true_ids[i])?;
        forest.false_child[i] = find(tree_ids[i], false_ids[i])?;
    }
    // Each tree's root: the node with id 0, else its first node.
    forest.roots = roots
        .iter()
        .map(|(&t, &first)| index.get(&(t, 0)).map_or(first, |&i| i as i32))
        .collect();
    let leaf_trees = ints_of(ctx, node, &format!("{prefix}_treeids"))?;
    let leaf_nodes = ints_of(ctx, node, &format!("{prefix}_nodeids"))?;
    let leaf_targets = ints_of(ctx, node, &format!("{prefix}_ids"))?;
    let leaf_weights = match float_values(ctx, node, &format!("{prefix}_weights_as_tensor"))? {
        Some(w) => w,
        None => float_values(ctx, node, &format!("{prefix}_weights"))?
            .ok_or_else(|| ctx.error(format!("attribute {prefix}_weights is required")))?,
    };
    if [leaf_nodes.len(), leaf_targets.len(), leaf_weights.len()]
        .iter()
        .any(|&l| l != leaf_trees.len())
    {
        return Err(ctx.error(format!("the {prefix}_* attributes differ in length")));
    }
    for j in 0..leaf_trees.len() {
        let leaf = find(leaf_trees[j], leaf_nodes[j])? as usize;
        let target = usize::try_from(leaf_targets[j])
            .ok()
            .filter(|&t| t < targets)
            .ok_or_else(|| ctx.error(format!("{prefix} id {} is out of range", leaf_targets[j])))?;
        forest.leaf_values[leaf].push((target, leaf_weights[j]));
    }
    Ok(forest)
}

/// The `base_values` (or `base_values_as_tensor`), empty when absent.
fn base_values(ctx: &Ctx, node: &NodeView<'_>) -> Result<Vec<f64>> {
    Ok(float_values(ctx, node, "base_values_as_tensor")?
        .or(float_values(ctx, node, "base_values")?)
        .unwrap_or_default())
}

fn tree_ensemble_regressor(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let targets = usize::try_from(node.attr_i_or("n_targets", 1)?)
        .map_err(|_| ctx.error("n_targets is negative"))?;
    let forest = classic_forest(ctx, node, "target", targets)?;
    let aggregate = node.attr_s_or("aggregate_function", "SUM")?.to_owned();
    let transform = node.attr_s_or("post_transform", "NONE")?.to_owned();
    let base = base_values(ctx, node)?;
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let x = ctx.plain(x_name)?;
    let mut b = Builder::new(ctx, node);
    let y = evaluate_forest(&mut b, &x, &forest, &aggregate, &base, &transform)?;
    let y = b.cast(&y, DType::Float)?;
    ctx.set_plain(out, y, Shape::new(&[-1, forest.targets as i64]));
    Ok(())
}

/// `TreeEnsembleClassifier`: the classes' summed weights plus the base
/// values; with weights for one class only and two labels (a binary
/// model), the scores are `[1 - s, s]` (`[-s, s]` before `LOGISTIC` or
/// `SOFTMAX`), as ONNX's reference and onnxruntime give them; then
/// `post_transform`, and the label of the largest score.
fn tree_ensemble_classifier(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let labels: Tensor = match (
        node.attr_ints("classlabels_int64s")?,
        node.attr_strings("classlabels_strings")?,
    ) {
        (Some(i), None) => Tensor::vector(i),
        (None, Some(s)) => Tensor::string_vector(&s),
        _ => {
            return Err(
                ctx.error("exactly one of classlabels_int64s and classlabels_strings is required")
            );
        }
    };
    let classes = labels.num_elements();
    if classes < 2 {
        return Err(ctx.error(format!(
            "{classes} class label(s): at least 2 are supported"
        )));
    }
    let forest = classic_forest(ctx, node, "class", classes)?;
    let class_ids = ints_of(ctx, node, "class_ids")?;
    let binary = class_ids.windows(2).all(|w| w[0] == w[1]);
    let transform = node.attr_s_or("post_transform", "NONE")?.to_owned();
    let base = base_values(ctx, node)?;
    let x_name = required_input(ctx, node, 0)?;
    let label_out = output0(ctx, node)?;
    let scores_out = output_name(node, 1);
    let x = ctx.plain(x_name)?;
    let mut b = Builder::new(ctx, node);
    let sums = evaluate_forest(&mut b, &x, &forest, "SUM", &base, "NONE")?;
    let scores = if binary && classes == 2 {
        let first = b.tensor(Tensor::vector(&[0i32]))?;
        let s = b.gather(&sums, &first, 1, Shape::new(&[-1, 1]))?;
        let other = if matches!(transform.as_str(), "NONE" | "PROBIT") {
            let one = b.scalar(DType::Double, 1.0)?;
            b.bin("Sub", &one, &s)?
        } else {
            b.un("Neg", &s)?
        };
        b.concat(&[&other, &s], 1)?
    } else {
        sums
    };
    let scores = post_transform(&mut b, &scores, &transform)?;
    let scores = b.cast(&scores, DType::Float)?;
    let axis = b.tensor(Tensor::scalar(1i32))?;
    let best = b.op(
        "ArgMax",
        &[&scores, &axis],
        &[
            t(DType::Float),
            ("Tidx", Attr::Type(DType::Int32)),
            ("output_type", Attr::Type(DType::Int64)),
        ],
        Shape::unknown_dims(1),
    )?;
    let labels = b.tensor(labels)?;
    let label = b.gather(&labels, &best, 0, Shape::unknown_dims(1))?;
    ctx.set_plain(label_out, label, Shape::unknown_dims(1));
    if let Some(name) = scores_out {
        ctx.set_plain(name, scores, Shape::new(&[-1, classes as i64]));
    }
    Ok(())
}

/// The ensemble's `[N, targets]` output for `x [N, F]`, in float64 (every
/// split and weight exact; the caller casts): every tree stepped `depth`
/// times at once (`[N, trees]` node indices), the leaves' values gathered
/// and aggregated over the trees, `base` added, `transform` applied.
fn evaluate_forest(
    b: &mut Builder<'_>,
    x: &Output,
    forest: &Forest,
    aggregate: &str,
    base: &[f64],
    transform: &str,
) -> Result<Output> {
    let depth = forest.depth().map_err(|e| b.ctx.error(e))?;
    let nodes = forest.feature.len() as i64;
    let x = b.cast(x, DType::Double)?;
    let x = if x.shape().rank() == Some(1) {
        b.reshape(&x, &[1, -1])?
    } else {
        x
    };
    let vector_i32 = |b: &mut Builder<'_>, v: &[i32]| b.tensor(Tensor::vector(v));
    let feature = vector_i32(b, &forest.feature)?;
    let split = b.tensor(Tensor::vector(&forest.split))?;
    let true_child = vector_i32(b, &forest.true_child)?;
    let false_child = vector_i32(b, &forest.false_child)?;
    let modes: Vec<i32> = forest.mode.iter().map(|&m| m as i32).collect();
    let mode = vector_i32(b, &modes)?;
    let missing: Vec<bool> = forest.missing_true.clone();
    let missing = b.tensor(Tensor::vector(&missing))?;
    let widest = forest.members.iter().map(Vec::len).max().unwrap_or(0);
    let members = if widest > 0 {
        let mut flat = Vec::with_capacity(forest.members.len() * widest);
        for set in &forest.members {
            flat.extend(set.iter().copied());
            flat.extend(std::iter::repeat_n(f64::NAN, widest - set.len()));
        }
        let t =
            Tensor::new(&[nodes, widest as i64], &flat).map_err(|e| b.ctx.error(e.to_string()))?;
        Some(b.tensor(t)?)
    } else {
        None
    };
    // [N, trees], every tree at its root.
    let roots = b.tensor(Tensor::vector(&forest.roots))?;
    let rows = b.op(
        "Shape",
        &[&x],
        &[t(DType::Double), ("out_type", Attr::Type(DType::Int32))],
        Shape::new(&[2]),
    )?;
    let n = b.element(&rows, 0)?;
    let n = b.reshape(&n, &[1])?;
    let one = b.tensor(Tensor::vector(&[1i32]))?;
    let tile = b.concat(&[&n, &one], 0)?;
    let roots_row = b.reshape(&roots, &[1, -1])?;
    let mut at = b.op(
        "Tile",
        &[&roots_row, &tile],
        &[t(DType::Int32), ("Tmultiples", Attr::Type(DType::Int32))],
        Shape::unknown_dims(2),
    )?;
    let used: Vec<Mode> = {
        let mut m: Vec<Mode> = forest.mode.clone();
        m.sort_by_key(|&m| m as i32);
        m.dedup();
        m
    };
    for _ in 0..depth {
        let f = b.gather(&feature, &at, 0, Shape::unknown_dims(2))?;
        let axis = b.tensor(Tensor::scalar(1i32))?;
        let value = b.op(
            "GatherV2",
            &[&x, &f, &axis],
            &[
                ("Tparams", Attr::Type(DType::Double)),
                ("Tindices", Attr::Type(DType::Int32)),
                ("Taxis", Attr::Type(DType::Int32)),
                ("batch_dims", Attr::Int(1)),
            ],
            Shape::unknown_dims(2),
        )?;
        let s = b.gather(&split, &at, 0, Shape::unknown_dims(2))?;
        let m = b.gather(&mode, &at, 0, Shape::unknown_dims(2))?;
        let mut go_true: Option<Output> = None;
        for &kind in &used {
            let test = match kind {
                Mode::Leq => b.bin("LessEqual", &value, &s)?,
                Mode::Lt => b.bin("Less", &value, &s)?,
                Mode::Gte => b.bin("GreaterEqual", &value, &s)?,
                Mode::Gt => b.bin("Greater", &value, &s)?,
                Mode::Eq => b.op(
                    "Equal",
                    &[&value, &s],
                    &[
                        t(DType::Double),
                        ("incompatible_shape_error", Attr::Bool(true)),
                    ],
                    Shape::unknown_dims(2),
                )?,
                Mode::Neq => b.op(
                    "NotEqual",
                    &[&value, &s],
                    &[
                        t(DType::Double),
                        ("incompatible_shape_error", Attr::Bool(true)),
                    ],
                    Shape::unknown_dims(2),
                )?,
                Mode::Member => {
                    let Some(members) = &members else { continue };
                    let sets = b.gather(members, &at, 0, Shape::unknown_dims(3))?;
                    let last = b.tensor(Tensor::scalar(-1i32))?;
                    let column = b.op(
                        "ExpandDims",
                        &[&value, &last],
                        &[t(DType::Double), ("Tdim", Attr::Type(DType::Int32))],
                        Shape::unknown_dims(3),
                    )?;
                    let equal = b.op(
                        "Equal",
                        &[&column, &sets],
                        &[
                            t(DType::Double),
                            ("incompatible_shape_error", Attr::Bool(true)),
                        ],
                        Shape::unknown_dims(3),
                    )?;
                    b.op(
                        "Any",
                        &[&equal, &last],
                        &[
                            ("keep_dims", Attr::Bool(false)),
                            ("Tidx", Attr::Type(DType::Int32)),
                        ],
                        Shape::unknown_dims(2),
                    )?
                }
            };
            go_true = Some(match go_true {
                None => test,
                Some(previous) => {
                    let code = b.tensor(Tensor::scalar(kind as i32))?;
                    let is_kind = b.op(
                        "Equal",
                        &[&m, &code],
                        &[
                            t(DType::Int32),
                            ("incompatible_shape_error", Attr::Bool(true)),
                        ],
                        Shape::unknown_dims(2),
                    )?;
                    b.select(&is_kind, &test, &previous)?
                }
            });
        }
        let Some(mut go_true) = go_true else { break };
        // A missing value goes the way its node says.
        let is_nan = b.un("IsNan", &value)?;
        let tracks = b.gather(&missing, &at, 0, Shape::unknown_dims(2))?;
        let nan_true = b.op(
            "LogicalAnd",
            &[&is_nan, &tracks],
            &[],
            Shape::unknown_dims(2),
        )?;
        go_true = b.op(
            "LogicalOr",
            &[&go_true, &nan_true],
            &[],
            Shape::unknown_dims(2),
        )?;
        let t_next = b.gather(&true_child, &at, 0, Shape::unknown_dims(2))?;
        let f_next = b.gather(&false_child, &at, 0, Shape::unknown_dims(2))?;
        at = b.select(&go_true, &t_next, &f_next)?;
    }
    // Each node's contribution per target; what a tree that does not write
    // a target leaves for MIN and MAX is the neutral extreme.
    let neutral = match aggregate {
        "SUM" | "AVERAGE" => 0.0,
        "MIN" => f64::MAX,
        "MAX" => f64::MIN,
        other => {
            return Err(b
                .ctx
                .error(format!("aggregate_function {other:?} is not known")));
        }
    };
    let targets = forest.targets;
    let mut table = vec![neutral; forest.feature.len() * targets];
    for (i, values) in forest.leaf_values.iter().enumerate() {
        for &(target, weight) in values {
            let cell = &mut table[i * targets + target];
            *cell = if *cell == neutral {
                weight
            } else {
                *cell + weight
            };
        }
    }
    let table =
        Tensor::new(&[nodes, targets as i64], &table).map_err(|e| b.ctx.error(e.to_string()))?;
    let table = b.tensor(table)?;
    let contributions = b.gather(&table, &at, 0, Shape::unknown_dims(3))?;
    let trees_axis = b.tensor(Tensor::scalar(1i32))?;
    let reduce = |b: &mut Builder<'_>, op: &str| {
        b.op(
            op,
            &[&contributions, &trees_axis],
            &[
                t(DType::Double),
                ("keep_dims", Attr::Bool(false)),
                ("Tidx", Attr::Type(DType::Int32)),
            ],
            Shape::new(&[-1, targets as i64]),
        )
    };
    let mut y = match aggregate {
        "SUM" => reduce(b, "Sum")?,
        "AVERAGE" => {
            let sum = reduce(b, "Sum")?;
            let count = b.scalar(DType::Double, forest.roots.len() as f64)?;
            b.bin("RealDiv", &sum, &count)?
        }
        "MIN" => reduce(b, "Min")?,
        _ => reduce(b, "Max")?,
    };
    if !base.is_empty() {
        let base = b.tensor(Tensor::vector(base))?;
        y = b.bin("AddV2", &y, &base)?;
    }
    post_transform(b, &y, transform)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forests_depth_is_its_longest_path_and_a_cycle_is_an_error() {
        // 0 -> (1, 2), 1 -> (3, 4); 2, 3, 4 leaves.
        let mut forest = Forest::with_nodes(5);
        forest.true_child[0] = 1;
        forest.false_child[0] = 2;
        forest.true_child[1] = 3;
        forest.false_child[1] = 4;
        forest.roots = vec![0, 2];
        assert_eq!(forest.depth(), Ok(2));
        forest.false_child[1] = 0;
        assert!(forest.depth().unwrap_err().contains("cycle"));
        forest.false_child[1] = 9;
        assert!(forest.depth().unwrap_err().contains("out of range"));
    }
}
