//! Control flow: `Loop` and `Scan` as TensorFlow's functional `While`,
//! `If` as its `If` (or, on a condition known at conversion, the branch
//! taken, inline); and the `While` machinery other loops reuse
//! ([`while_node`], [`LoopFunction`], the `TensorList` helpers; `rnn.rs`).
//!
//! ONNX's `Loop(M, cond, v...)` runs its `body` subgraph
//! `(iteration_num, cond, v...) -> (cond, v..., scan...)` while the
//! iteration count is below `M` (when given) and `cond` holds (when
//! given), and returns the final `v...` and each scan output's values of
//! every iteration stacked along a new first axis
//! (`onnx/defs/controlflow/defs.cc`, `Loop`).
//!
//! ONNX's `Scan(v..., x...)` runs its body `(v..., x_t...) -> (v...,
//! scan...)` once per step of the scan inputs `x` (along each one's
//! `scan_input_axes` entry, in its direction) and stacks the scan outputs
//! along their `scan_output_axes` entries (`Scan`, same file): the same
//! `While` with `M` the number of steps, `cond` always true, the scan
//! inputs carried (time first, forward) and step `i` of each gathered in
//! the body ([`BodyKind`]).
//!
//! The `While` built here carries `(i, M, cond, v..., captured..., scan
//! inputs..., lists...)`:
//!
//! - the body is converted by a context of its own ([`Ctx::for_body`]) into
//!   a graph whose `Placeholder`s are the function's arguments, then added
//!   to the graph's function library (`Graph::add_function`);
//! - values of the enclosing graph that the body uses are *captured*:
//!   constants are copied into the body, anything else is carried through
//!   the loop unchanged;
//! - each scan output is appended to a `TensorList` (`TensorListPushBack`)
//!   and stacked after the loop (`TensorListStack`), as TensorFlow's own
//!   `tf.while_loop` accumulators are;
//! - the condition function is `i < M && cond` (`i < M` for `Scan`).
//!
//! A carried value's shape may change from one iteration to the next: the
//! body is converted with the initial values' shapes, and again with the
//! dimensions that changed made unknown, until they agree.

use std::collections::BTreeSet;

use savedmodel_graph::{Attr, DType, Graph, Output, Shape, Tensor};

use super::build::Builder;
use super::{Converter, input_name, output_name, sub};
use crate::convert::context::{Ctx, permute_shape};
use crate::{GraphView, NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "Loop" => loop_,
        "If" => if_,
        "Scan" => scan,
        _ => return None,
    };
    Some(f)
}

/// Why a node with subgraphs cannot be converted: the first unsupported
/// node of its bodies, or `None`.
pub(super) fn unsupported_in_bodies(node: &NodeView<'_>) -> Result<Option<String>> {
    for attr in node.proto().attribute.iter().filter(|a| a.g.is_some()) {
        let Some(body) = node.attr_graph(attr.name())? else {
            continue;
        };
        for inner in body.nodes() {
            if let Some(why) = super::unsupported(&inner)? {
                return Ok(Some(format!(
                    "its {} subgraph's node {} ({}): {why}",
                    attr.name(),
                    inner.label(),
                    inner.op_type()
                )));
            }
        }
    }
    Ok(None)
}

/// The values `body` uses that it does not define (its inputs,
/// initializers and node outputs are its own): the enclosing graph's, in
/// first-use order.
fn captured(body: &GraphView<'_>) -> Result<Vec<String>> {
    let proto = body.proto();
    let mut own: BTreeSet<&str> = proto.input.iter().map(|v| v.name()).collect();
    own.extend(proto.initializer.iter().map(|t| t.name()));
    let mut out: Vec<String> = Vec::new();
    for node in body.nodes() {
        // A nested body's captures are this body's uses too.
        let mut uses: Vec<String> = node.proto().input.clone();
        for attr in node.proto().attribute.iter().filter(|a| a.g.is_some()) {
            if let Some(inner) = node.attr_graph(attr.name())? {
                uses.extend(captured(&inner)?);
            }
        }
        for input in uses {
            if !input.is_empty() && !own.contains(input.as_str()) && !out.contains(&input) {
                out.push(input);
            }
        }
        own.extend(node.proto().output.iter().map(String::as_str));
    }
    Ok(out)
}

/// One loop-carried value of the `While`: its dtype and shape.
#[derive(Clone)]
struct Carried {
    dtype: DType,
    shape: Shape,
}

fn loop_(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let body = node
        .attr_graph("body")?
        .ok_or_else(|| ctx.error("the body attribute is required"))?;
    let base = ctx.node_name(node);
    let bproto = body.proto();
    let v_names: Vec<&str> = node
        .proto()
        .input
        .iter()
        .skip(2)
        .map(String::as_str)
        .collect();
    let n_v = v_names.len();
    if bproto.input.len() != n_v + 2 {
        return Err(ctx.error(format!(
            "the body takes {} inputs, the node gives {} loop-carried values (+2)",
            bproto.input.len(),
            n_v
        )));
    }
    if v_names.iter().any(|v| v.is_empty()) {
        return Err(ctx.error("an omitted loop-carried input is not supported"));
    }

    // The While's initial values.
    let trip = input_name(node, 0);
    let cond = input_name(node, 1);
    let max_trip = match trip {
        Some(m) => {
            if ctx.slot(m)?.dtype != DType::Int64 {
                return Err(ctx.error("M must be int64"));
            }
            reshape_scalar(ctx, &sub(&base, "max_trip"), m)?
        }
        None => ctx.const_tensor(&sub(&base, "max_trip"), Tensor::scalar(i64::MAX))?,
    };
    let cond0 = match cond {
        Some(c) => reshape_scalar(ctx, &sub(&base, "cond0"), c)?,
        None => ctx.const_tensor(&sub(&base, "cond0"), Tensor::scalar(true))?,
    };
    let mut states = Vec::new();
    for v in &v_names {
        states.push((ctx.plain(v)?, ctx.slot(v)?.shape.clone()));
    }
    let looped = functional_loop(
        ctx,
        node,
        &body,
        BodyKind::Loop,
        max_trip,
        cond0,
        &states,
        &[],
    )?;
    define_loop_outputs(ctx, node, &looped, &base, |_, _, stacked, shape| {
        Ok((stacked, shape))
    })
}

/// `Scan`: a `While` over the scan inputs' steps. Each scan input is
/// brought time first (a `Transpose` when its `scan_input_axes` entry is not
/// 0) and forward (`ReverseV2` when its direction is 1); the body sees step
/// `i` of each (`GatherV2`); each scan output is stacked time first, then
/// reversed and moved to its `scan_output_axes` entry as asked. Opset 8's
/// `Scan` has a batch axis 0 on every state and scan input (time is axis 1)
/// and runs the body per batch entry: a batch of 1 is squeezed away and
/// restored; a larger one, or `sequence_lens`, is refused.
fn scan(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let body = node
        .attr_graph("body")?
        .ok_or_else(|| ctx.error("the body attribute is required"))?;
    let base = ctx.node_name(node);
    let batched = node.opset_version()? < 9;
    let inputs: Vec<&str> = node.proto().input.iter().map(String::as_str).collect();
    let rest = if batched {
        if input_name(node, 0).is_some() {
            return Err(ctx.error("sequence_lens (Scan-8) is not supported"));
        }
        inputs.get(1..).unwrap_or(&[])
    } else {
        &inputs[..]
    };
    let m = node
        .attr_i("num_scan_inputs")?
        .ok_or_else(|| ctx.error("the num_scan_inputs attribute is required"))?;
    let m = usize::try_from(m)
        .ok()
        .filter(|&m| m >= 1 && m <= rest.len())
        .ok_or_else(|| {
            ctx.error(format!(
                "num_scan_inputs {m} is not between 1 and the {} inputs",
                rest.len()
            ))
        })?;
    if rest.iter().any(|v| v.is_empty()) {
        return Err(ctx.error("an omitted state or scan input is not supported"));
    }
    let n_v = rest.len() - m;
    let k_out = body.proto().output.len().saturating_sub(n_v);
    let list = |name: &str, n: usize, default: i64| -> Result<Vec<i64>> {
        match node.attr_ints(name)? {
            Some(v) if v.len() == n => Ok(v.to_vec()),
            Some(v) => Err(ctx.error(format!("{name} has {} entries, {n} expected", v.len()))),
            None => Ok(vec![default; n]),
        }
    };
    let (in_axes, in_dirs, out_axes, out_dirs) = if batched {
        (
            vec![0; m],
            list("directions", m, 0)?,
            vec![0; k_out],
            vec![0; k_out],
        )
    } else {
        (
            list("scan_input_axes", m, 0)?,
            list("scan_input_directions", m, 0)?,
            list("scan_output_axes", k_out, 0)?,
            list("scan_output_directions", k_out, 0)?,
        )
    };
    for (name, dirs) in [
        ("directions", &in_dirs),
        ("scan_output_directions", &out_dirs),
    ] {
        if let Some(d) = dirs.iter().find(|&&d| d != 0 && d != 1) {
            return Err(ctx.error(format!("{name} holds {d}, not 0 or 1")));
        }
    }

    let mut g = Builder::new(ctx, node);
    let mut states = Vec::new();
    for v in &rest[..n_v] {
        let (x, shape) = (g.ctx.plain(v)?, g.ctx.slot(v)?.shape.clone());
        states.push(if batched {
            unbatch(&mut g, v, &x, &shape)?
        } else {
            (x, shape)
        });
    }
    let mut scan_inputs = Vec::new();
    for (k, v) in rest[n_v..].iter().enumerate() {
        let (mut x, mut shape) = (g.ctx.plain(v)?, g.ctx.slot(v)?.shape.clone());
        if batched {
            (x, shape) = unbatch(&mut g, v, &x, &shape)?;
        }
        let (rank, axis) = rank_and_axis(g.ctx, &shape, in_axes[k], "scan_input_axes")?;
        if axis != 0 {
            let mut perm: Vec<i64> = vec![axis as i64];
            perm.extend((0..rank as i64).filter(|&a| a != axis as i64));
            let name = g.fresh("scan_input_transpose");
            x = g.ctx.transpose(&name, &x, &perm)?;
            shape = permute_shape(&shape, &perm);
        }
        if in_dirs[k] == 1 {
            x = reverse_axis0(&mut g, &x)?;
        }
        scan_inputs.push((x, shape));
    }
    let first = &scan_inputs[0].0;
    let first_shape = g.shape(first)?;
    let steps = g.element(&first_shape, 0)?;
    let cond0 = g.tensor(Tensor::scalar(true))?;
    let ctx = g.ctx;
    let looped = functional_loop(
        ctx,
        node,
        &body,
        BodyKind::Scan,
        steps,
        cond0,
        &states,
        &scan_inputs,
    )?;
    define_loop_outputs(ctx, node, &looped, &base, |ctx, k, stacked, shape| {
        let mut g = Builder::new(ctx, node);
        let (mut y, mut shape) = (stacked, shape);
        if out_dirs[k] == 1 {
            y = reverse_axis0(&mut g, &y)?;
        }
        if batched {
            return rebatch(&mut g, &y, &shape);
        }
        let (rank, axis) = rank_and_axis(g.ctx, &shape, out_axes[k], "scan_output_axes")?;
        if axis != 0 {
            let perm: Vec<i64> = (0..rank as i64)
                .map(|p| match (p as usize).cmp(&axis) {
                    std::cmp::Ordering::Less => p + 1,
                    std::cmp::Ordering::Equal => 0,
                    std::cmp::Ordering::Greater => p,
                })
                .collect();
            let name = g.fresh("scan_output_transpose");
            y = g.ctx.transpose(&name, &y, &perm)?;
            shape = permute_shape(&shape, &perm);
        }
        Ok((y, shape))
    })?;
    if batched {
        let mut g = Builder::new(ctx, node);
        for name in node
            .proto()
            .output
            .iter()
            .take(n_v)
            .filter(|n| !n.is_empty())
        {
            let (x, shape) = (g.ctx.plain(name)?, g.ctx.slot(name)?.shape.clone());
            let (y, shape) = rebatch(&mut g, &x, &shape)?;
            g.ctx.set_plain(name, y, shape);
        }
    }
    Ok(())
}

/// The rank of a value of `shape` and `axis` (an entry of attribute
/// `attr`) made non-negative for it.
fn rank_and_axis(ctx: &Ctx, shape: &Shape, axis: i64, attr: &str) -> Result<(usize, usize)> {
    let rank = shape
        .rank()
        .ok_or_else(|| ctx.error(format!("{attr}: the value's rank is unknown")))?;
    Ok((rank, super::normalize_axis(ctx, axis, rank)?))
}

/// A Scan-8 value `name` (`x`, of `shape`) without its batch axis 0, which
/// must be 1.
fn unbatch(g: &mut Builder<'_>, name: &str, x: &Output, shape: &Shape) -> Result<(Output, Shape)> {
    match shape.dims() {
        Some([1, rest @ ..]) => {
            let rest = rest.to_vec();
            let y = g.reshape(x, &rest)?;
            Ok((y, Shape::new(&rest)))
        }
        _ => Err(g.ctx.error(format!(
            "Scan-8 runs its body per batch entry: {name:?} has shape {shape:?}, only a batch of 1 is supported"
        ))),
    }
}

/// `x` (of `shape`) with a batch axis 0 of 1 again.
fn rebatch(g: &mut Builder<'_>, x: &Output, shape: &Shape) -> Result<(Output, Shape)> {
    let axis = g.tensor(Tensor::scalar(0i32))?;
    let shape = match shape.dims() {
        Some(d) => {
            let mut dims = vec![1];
            dims.extend_from_slice(d);
            Shape::new(&dims)
        }
        None => Shape::unknown(),
    };
    let y = g.op(
        "ExpandDims",
        &[x, &axis],
        &[
            ("T", Attr::Type(x.dtype())),
            ("Tdim", Attr::Type(DType::Int32)),
        ],
        shape.clone(),
    )?;
    Ok((y, shape))
}

/// `x` reversed along axis 0 (`ReverseV2`).
pub(super) fn reverse_axis0(g: &mut Builder<'_>, x: &Output) -> Result<Output> {
    let axis = g.tensor(Tensor::vector(&[0i32]))?;
    g.op(
        "ReverseV2",
        &[x, &axis],
        &[
            ("T", Attr::Type(x.dtype())),
            ("Tidx", Attr::Type(DType::Int32)),
        ],
        x.shape().clone(),
    )
}

/// How an ONNX body's inputs and outputs map to the `While`'s values.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    /// `Loop`: the body is `(i, cond, v...) -> (cond, v..., scan...)`.
    Loop,
    /// `Scan`: the body is `(v..., x...) -> (v..., scan...)`, each `x`
    /// step `i` of a scan input.
    Scan,
}

impl BodyKind {
    /// The index of the first loop-carried value among the body's inputs.
    fn first_state_input(self) -> usize {
        match self {
            BodyKind::Loop => 2,
            BodyKind::Scan => 0,
        }
    }

    /// The index of the first loop-carried value among the body's outputs.
    fn first_state_output(self) -> usize {
        match self {
            BodyKind::Loop => 1,
            BodyKind::Scan => 0,
        }
    }
}

/// A `Loop`'s or `Scan`'s `While`, built: its outputs, the carried values'
/// final dtypes and shapes (`i, M, cond, v..., captured..., scan inputs...`,
/// then a list per scan output) and the scan outputs' elements.
struct Looped {
    outs: Vec<Output>,
    carried: Vec<Carried>,
    n_v: usize,
    scans: Vec<Carried>,
}

/// The `While` running ONNX `body` (of `kind`) over `(i, M, cond, v...,
/// captured..., scan inputs...)`, starting from `i = 0`, `max_trip`,
/// `cond0`, the loop-carried `states` and the `scan_inputs` (time first,
/// forward), each with its shape: the body's outer values are captured (constants copied in,
/// the rest carried), it is converted until the carried shapes are a fixed
/// point, and each scan output is accumulated in a `TensorList`.
#[allow(clippy::too_many_arguments)]
fn functional_loop(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    body: &GraphView<'_>,
    kind: BodyKind,
    max_trip: Output,
    cond0: Output,
    states: &[(Output, Shape)],
    scan_inputs: &[(Output, Shape)],
) -> Result<Looped> {
    let base = ctx.node_name(node);
    let n_v = states.len();
    let n_outputs = body.proto().output.len();
    let n_scan = n_outputs
        .checked_sub(kind.first_state_output() + n_v)
        .ok_or_else(|| {
            ctx.error(format!(
                "the body gives {n_outputs} outputs, fewer than {} + {n_v} loop-carried values",
                kind.first_state_output()
            ))
        })?;

    // Captured values: constants are copied into the body, the rest carried.
    let mut const_captures: Vec<(String, Tensor)> = Vec::new();
    let mut carried_captures: Vec<String> = Vec::new();
    for name in captured(body)? {
        if !ctx.is_defined(&name) {
            return Err(ctx.error(format!("the body uses {name:?}, which is not defined")));
        }
        match ctx.constant(&name) {
            Some(t) => const_captures.push((name, t.clone())),
            None => carried_captures.push(name),
        }
    }

    let zero = ctx.const_tensor(&sub(&base, "i0"), Tensor::scalar(0i64))?;
    let scalar = |dtype| Carried {
        dtype,
        shape: Shape::new(&[]),
    };
    let mut initial: Vec<Output> = vec![zero, max_trip, cond0];
    let mut carried: Vec<Carried> = vec![
        scalar(DType::Int64),
        scalar(DType::Int64),
        scalar(DType::Bool),
    ];
    let mut captures = Vec::new();
    for name in &carried_captures {
        captures.push((ctx.plain(name)?, ctx.slot(name)?.shape.clone()));
    }
    for (x, shape) in states.iter().chain(&captures).chain(scan_inputs) {
        initial.push(x.clone());
        carried.push(Carried {
            dtype: x.dtype(),
            shape: shape.clone(),
        });
    }

    // The body, converted until the carried shapes are a fixed point.
    let layout = BodyLayout {
        kind,
        n_v,
        n_scan,
        carried_captures: &carried_captures,
        const_captures: &const_captures,
    };
    let mut attempt = 0;
    let built = loop {
        attempt += 1;
        let built = build_body(ctx, node, body, &carried, &layout)?;
        let mut changed = false;
        for (c, out) in carried.iter_mut().zip(&built.carried_out).skip(3) {
            let relaxed = relax(&c.shape, out);
            if relaxed != c.shape {
                c.shape = relaxed;
                changed = true;
            }
        }
        if !changed {
            break built;
        }
        if attempt >= 3 {
            // A third pass has every changing dimension unknown already.
            break built;
        }
    };

    // Scan accumulators: empty lists of the scan elements.
    for (k, scan) in built.scans.iter().enumerate() {
        initial.push(empty_list(
            ctx,
            &sub(&base, &format!("scan{k}_list")),
            scan.dtype,
            &scan.shape,
        )?);
    }
    let mut shapes: Vec<Shape> = carried.iter().map(|c| c.shape.clone()).collect();
    shapes.extend(std::iter::repeat_n(Shape::new(&[]), n_scan));
    let with_cond = kind == BodyKind::Loop;
    let outs = while_node(ctx, &base, &initial, &shapes, &built.function, with_cond)?;
    Ok(Looped {
        outs,
        carried,
        n_v,
        scans: built.scans,
    })
}

/// Defines the node's outputs from its `While`: the final loop-carried
/// values, then each scan output stacked along a new first axis and passed
/// through `place` (given the scan's index, the stacked value and its
/// shape).
fn define_loop_outputs(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    looped: &Looped,
    base: &str,
    mut place: impl FnMut(&mut Ctx, usize, Output, Shape) -> Result<(Output, Shape)>,
) -> Result<()> {
    let n_v = looped.n_v;
    for (i, name) in node.proto().output.iter().enumerate().take(n_v) {
        if !name.is_empty() {
            let shape = looped.carried[3 + i].shape.clone();
            ctx.set_plain(name, looped.outs[3 + i].clone(), shape);
        }
    }
    let first_list = looped.carried.len();
    for (k, scan) in looped.scans.iter().enumerate() {
        let Some(name) = output_name(node, n_v + k) else {
            continue;
        };
        let (stacked, stacked_shape) = stack_list(
            ctx,
            &sub(base, &format!("scan{k}")),
            &looped.outs[first_list + k],
            scan.dtype,
            &scan.shape,
        )?;
        let (placed, shape) = place(ctx, k, stacked, stacked_shape)?;
        ctx.set_plain(name, placed, shape);
    }
    Ok(())
}

/// Where a body's values are among the `While`'s: see [`functional_loop`].
struct BodyLayout<'a> {
    kind: BodyKind,
    n_v: usize,
    n_scan: usize,
    carried_captures: &'a [String],
    const_captures: &'a [(String, Tensor)],
}

/// A converted body: its graph, arguments and results in the `While`'s
/// order, and what it found out about the carried values and scans.
struct Body {
    function: LoopFunction,
    /// The shape of each carried value at the end of an iteration.
    carried_out: Vec<Shape>,
    /// The scan outputs' element dtypes and shapes.
    scans: Vec<Carried>,
}

fn build_body(
    ctx: &Ctx,
    node: &NodeView<'_>,
    body: &GraphView<'_>,
    carried: &[Carried],
    layout: &BodyLayout<'_>,
) -> Result<Body> {
    let BodyLayout {
        kind,
        n_v,
        n_scan,
        carried_captures,
        const_captures,
    } = *layout;
    let proto = body.proto();
    let mut b = ctx.for_body();
    b.begin_node(node);
    let mut args = Vec::new();
    // i, M, cond: a Loop's body sees i and cond.
    let i = b.add_arg("\u{0}i", "iteration", DType::Int64, Shape::new(&[]))?;
    let m = b.add_arg("\u{0}m", "max_trip", DType::Int64, Shape::new(&[]))?;
    let cond_arg = b.add_arg("\u{0}cond", "cond", DType::Bool, Shape::new(&[]))?;
    args.extend([i.clone(), m.clone(), cond_arg.clone()]);
    let body_inputs: Vec<&str> = proto.input.iter().map(|v| v.name()).collect();
    let n_scan_in = carried.len() - 3 - n_v - carried_captures.len();
    let want_inputs = kind.first_state_input() + n_v + n_scan_in;
    if body_inputs.len() != want_inputs {
        return Err(b.error(format!(
            "the body takes {} inputs, {want_inputs} expected",
            body_inputs.len()
        )));
    }
    if kind == BodyKind::Loop {
        b.set_plain(body_inputs[0], i.clone(), Shape::new(&[]));
        b.set_plain(body_inputs[1], cond_arg.clone(), Shape::new(&[]));
    }
    for (k, c) in carried.iter().enumerate().skip(3) {
        let j = k - 3;
        let n_cap = carried_captures.len();
        let arg = if j < n_v {
            let name = body_inputs[kind.first_state_input() + j];
            b.add_arg(name, &format!("v{j}"), c.dtype, c.shape.clone())?
        } else if j < n_v + n_cap {
            let name = &carried_captures[j - n_v];
            b.add_arg(
                name,
                &format!("captured{}", j - n_v),
                c.dtype,
                c.shape.clone(),
            )?
        } else {
            // A scan input: the body sees its step i.
            let s = j - n_v - n_cap;
            let whole = b.add_arg(
                &format!("\u{0}scan_input{s}"),
                &format!("scan_input{s}"),
                c.dtype,
                c.shape.clone(),
            )?;
            let axis = b.const_tensor(&format!("scan_input{s}_axis"), Tensor::scalar(0i32))?;
            let element_shape = match c.shape.dims() {
                Some(d) => Shape::new(&d[1..]),
                None => Shape::unknown(),
            };
            let step = b.op1(
                "GatherV2",
                &format!("scan_input{s}_step"),
                &[&whole, &i, &axis],
                &[
                    ("Tparams", Attr::Type(c.dtype)),
                    ("Tindices", Attr::Type(DType::Int64)),
                    ("Taxis", Attr::Type(DType::Int32)),
                    ("batch_dims", Attr::Int(0)),
                ],
                element_shape.clone(),
            )?;
            b.set_plain(body_inputs[n_v + s], step, element_shape);
            whole
        };
        args.push(arg);
    }
    let mut lists = Vec::new();
    for k in 0..n_scan {
        let list = b.add_arg(
            &format!("\u{0}list{k}"),
            &format!("scan{k}"),
            DType::Variant,
            Shape::new(&[]),
        )?;
        args.push(list.clone());
        lists.push(list);
    }
    for (name, value) in const_captures {
        b.set_constant(name, value.clone());
    }
    for init in &proto.initializer {
        b.add_initializer(init)?;
    }
    for inner in body.nodes() {
        super::convert_node(&mut b, &inner)?;
    }
    b.begin_node(node);

    // Results: i + 1, M, cond, v..., captured..., lists with this
    // iteration's scan values appended. Each through an Identity, so that
    // no result is an argument itself.
    let out_names: Vec<&str> = proto.output.iter().map(|v| v.name()).collect();
    let next = next_iteration(&mut b, &i)?;
    let cond_out = match kind {
        BodyKind::Loop => reshape_scalar(&mut b, "cond_out_scalar", out_names[0])?,
        BodyKind::Scan => cond_arg,
    };
    if cond_out.dtype() != DType::Bool {
        return Err(b.error("the body's condition output must be bool"));
    }
    let first_out = kind.first_state_output();
    let mut results = vec![next, m, cond_out];
    let mut carried_out = vec![Shape::new(&[]); 3];
    for j in 0..(carried.len() - 3) {
        let value = if j < n_v {
            let name = out_names[first_out + j];
            let slot = b.slot(name)?.clone();
            if slot.dtype != carried[3 + j].dtype {
                return Err(b.error(format!(
                    "loop-carried value {j} changes dtype from {} to {}",
                    carried[3 + j].dtype,
                    slot.dtype
                )));
            }
            carried_out.push(slot.shape.clone());
            b.plain(name)?
        } else {
            carried_out.push(carried[3 + j].shape.clone());
            args[3 + j].clone()
        };
        results.push(value);
    }
    let mut scans = Vec::new();
    for (k, list) in lists.iter().enumerate() {
        let name = out_names[first_out + n_v + k];
        let slot = b.slot(name)?.clone();
        let value = b.plain(name)?;
        let pushed = push_back(&mut b, &format!("scan{k}_push"), list, &value)?;
        scans.push(Carried {
            dtype: slot.dtype,
            shape: slot.shape,
        });
        results.push(pushed);
    }
    Ok(Body {
        function: LoopFunction::new(b, args, &results)?,
        carried_out,
        scans,
    })
}

/// A loop body converted into a graph of its own: its arguments and
/// results in the `While`'s order.
pub(super) struct LoopFunction {
    graph: Graph,
    args: Vec<Output>,
    results: Vec<Output>,
}

impl LoopFunction {
    /// The function of body context `b`, returning `results` in order,
    /// each through an `Identity`, so that no result is an argument itself.
    pub(super) fn new(mut b: Ctx, args: Vec<Output>, results: &[Output]) -> Result<Self> {
        let mut named = Vec::new();
        for (r, result) in results.iter().enumerate() {
            named.push(b.op1(
                "Identity",
                &format!("result{r}"),
                &[result],
                &[("T", Attr::Type(result.dtype()))],
                result.shape().clone(),
            )?);
        }
        Ok(Self {
            graph: b.into_graph(),
            args,
            results: named,
        })
    }
}

/// `i + 1` for the int64 iteration counter `i`, inside a body.
pub(super) fn next_iteration(b: &mut Ctx, i: &Output) -> Result<Output> {
    let one = b.const_tensor("one", Tensor::scalar(1i64))?;
    b.op1(
        "AddV2",
        "next_iteration",
        &[i, &one],
        &[("T", Attr::Type(DType::Int64))],
        Shape::new(&[]),
    )
}

/// A `While` node `base` running `body` over the loop values `initial`
/// (declared with `shapes`) while `i < M`, the first two values (int64
/// scalars), and, when `with_cond`, the third (a bool scalar) holds. The
/// body and condition functions are added to the graph's library; the
/// result is the final loop values.
pub(super) fn while_node(
    ctx: &mut Ctx,
    base: &str,
    initial: &[Output],
    shapes: &[Shape],
    body: &LoopFunction,
    with_cond: bool,
) -> Result<Vec<Output>> {
    let types: Vec<DType> = initial.iter().map(Output::dtype).collect();
    let body_fn = function_name(ctx.graph(), base, "body");
    ctx.graph_mut()
        .add_function(&body_fn, &body.graph, &body.args, &body.results)
        .map_err(|e| ctx.build_error(e))?;
    let cond_fn = function_name(ctx.graph(), base, "cond");
    let (cond_graph, cond_args, cond_result) = condition(ctx, &types, shapes, with_cond)?;
    ctx.graph_mut()
        .add_function(&cond_fn, &cond_graph, &cond_args, &[cond_result])
        .map_err(|e| ctx.build_error(e))?;
    let refs: Vec<&Output> = initial.iter().collect();
    ctx.op(
        "While",
        base,
        &refs,
        &[
            ("T", Attr::TypeList(types)),
            ("cond", Attr::Func(cond_fn)),
            ("body", Attr::Func(body_fn)),
            ("output_shapes", Attr::ShapeList(shapes.to_vec())),
            ("parallel_iterations", Attr::Int(1)),
        ],
        shapes.to_vec(),
    )
}

/// An empty `TensorList` (`EmptyTensorList`, no size bound) for elements
/// of `dtype` and `shape`, to accumulate one value per iteration.
pub(super) fn empty_list(ctx: &mut Ctx, base: &str, dtype: DType, shape: &Shape) -> Result<Output> {
    let element_shape =
        ctx.const_tensor(&sub(base, "element_shape"), element_shape_tensor(shape))?;
    let max = ctx.const_tensor(&sub(base, "max"), Tensor::scalar(-1i32))?;
    ctx.op1(
        "EmptyTensorList",
        base,
        &[&element_shape, &max],
        &[
            ("element_dtype", Attr::Type(dtype)),
            ("shape_type", Attr::Type(DType::Int32)),
        ],
        Shape::new(&[]),
    )
}

/// `list` with `value` appended (`TensorListPushBack`), inside a body.
pub(super) fn push_back(b: &mut Ctx, name: &str, list: &Output, value: &Output) -> Result<Output> {
    b.op1(
        "TensorListPushBack",
        name,
        &[list, value],
        &[("element_dtype", Attr::Type(value.dtype()))],
        Shape::new(&[]),
    )
}

/// The elements of `list` (of `dtype` and `shape`) stacked along a new
/// first axis (`TensorListStack`), and the stacked shape.
pub(super) fn stack_list(
    ctx: &mut Ctx,
    base: &str,
    list: &Output,
    dtype: DType,
    shape: &Shape,
) -> Result<(Output, Shape)> {
    let element_shape =
        ctx.const_tensor(&sub(base, "element_shape"), element_shape_tensor(shape))?;
    let stacked_shape = match shape.dims() {
        Some(d) => {
            let mut dims = vec![-1i64];
            dims.extend_from_slice(d);
            Shape::new(&dims)
        }
        None => Shape::unknown(),
    };
    let stacked = ctx.op1(
        "TensorListStack",
        base,
        &[list, &element_shape],
        &[("element_dtype", Attr::Type(dtype))],
        stacked_shape.clone(),
    )?;
    Ok((stacked, stacked_shape))
}

/// The condition function's graph: `i < M` (`&& cond` when `with_cond`)
/// over all loop values.
fn condition(
    ctx: &Ctx,
    types: &[DType],
    shapes: &[Shape],
    with_cond: bool,
) -> Result<(Graph, Vec<Output>, Output)> {
    let mut c = ctx.for_body();
    let mut args = Vec::new();
    for (k, (dtype, shape)) in types.iter().zip(shapes).enumerate() {
        args.push(c.add_arg(
            &format!("\u{0}{k}"),
            &format!("arg{k}"),
            *dtype,
            shape.clone(),
        )?);
    }
    let below = c.op1(
        "Less",
        "below_max_trip",
        &[&args[0], &args[1]],
        &[("T", Attr::Type(DType::Int64))],
        Shape::new(&[]),
    )?;
    let go = if with_cond {
        c.op1(
            "LogicalAnd",
            "continue",
            &[&below, &args[2]],
            &[],
            Shape::new(&[]),
        )?
    } else {
        below
    };
    Ok((c.into_graph(), args, go))
}

/// ONNX value `name` (a scalar or a one-element tensor) as a TensorFlow
/// scalar.
fn reshape_scalar(ctx: &mut Ctx, base: &str, name: &str) -> Result<Output> {
    let slot = ctx.slot(name)?.clone();
    let x = ctx.plain(name)?;
    if slot.shape.dims() == Some(&[]) {
        return Ok(x);
    }
    let empty = ctx.const_i32(&sub(base, "shape"), &[])?;
    ctx.op1(
        "Reshape",
        base,
        &[&x, &empty],
        &[
            ("T", Attr::Type(slot.dtype)),
            ("Tshape", Attr::Type(DType::Int32)),
        ],
        Shape::new(&[]),
    )
}

/// `a` with every dimension that differs from `b`'s unknown (and an
/// unknown rank when the ranks differ).
fn relax(a: &Shape, b: &Shape) -> Shape {
    match (a.dims(), b.dims()) {
        (Some(x), Some(y)) if x.len() == y.len() => {
            let dims: Vec<i64> = x
                .iter()
                .zip(y)
                .map(|(p, q)| if p == q { *p } else { -1 })
                .collect();
            Shape::new(&dims)
        }
        _ => Shape::unknown(),
    }
}

/// A `TensorList`'s element shape as the int32 tensor its ops take: the
/// dims (-1 unknown), or -1 for an unknown rank.
fn element_shape_tensor(shape: &Shape) -> Tensor {
    match shape.dims() {
        Some(d) => Tensor::vector(&d.iter().map(|&x| x as i32).collect::<Vec<i32>>()),
        None => Tensor::scalar(-1i32),
    }
}

/// A function name not yet in `graph`'s library: `{base}_{what}`, made a
/// legal op name.
fn function_name(graph: &Graph, base: &str, what: &str) -> String {
    let stem: String = format!("f_{base}_{what}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let taken = |n: &str| {
        graph
            .functions()
            .iter()
            .any(|f| f.signature.as_ref().is_some_and(|s| s.name == n))
    };
    let mut name = stem.clone();
    let mut k = 1;
    while taken(&name) {
        name = format!("{stem}_{k}");
        k += 1;
    }
    name
}

/// `If(cond)`: with `cond` known, the branch taken, converted in place;
/// otherwise TensorFlow's `If` over two functions that take the values
/// either branch captures.
fn if_(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let cond = super::required_input(ctx, node, 0)?;
    let then_g = node
        .attr_graph("then_branch")?
        .ok_or_else(|| ctx.error("the then_branch attribute is required"))?;
    let else_g = node
        .attr_graph("else_branch")?
        .ok_or_else(|| ctx.error("the else_branch attribute is required"))?;
    let outputs: Vec<&str> = node.proto().output.iter().map(String::as_str).collect();
    for branch in [&then_g, &else_g] {
        if branch.proto().output.len() != outputs.len() {
            return Err(ctx.error(format!(
                "a branch gives {} outputs, the node has {}",
                branch.proto().output.len(),
                outputs.len()
            )));
        }
    }
    if let Some(known) = ctx
        .constant(cond)
        .and_then(|t| crate::convert::constant::to_i64(t).ok())
    {
        let taken = if known.first().is_some_and(|&c| c != 0) {
            &then_g
        } else {
            &else_g
        };
        for init in &taken.proto().initializer {
            ctx.add_initializer(init)?;
        }
        for inner in taken.nodes() {
            super::convert_node(ctx, &inner)?;
        }
        ctx.begin_node(node);
        for (out, result) in outputs.iter().zip(&taken.proto().output) {
            if !out.is_empty() {
                ctx.alias(out, result.name())?;
            }
        }
        return Ok(());
    }

    let base = ctx.node_name(node);
    let mut const_captures: Vec<(String, Tensor)> = Vec::new();
    let mut carried_captures: Vec<String> = Vec::new();
    for branch in [&then_g, &else_g] {
        for name in captured(branch)? {
            if const_captures.iter().any(|(n, _)| *n == name) || carried_captures.contains(&name) {
                continue;
            }
            if !ctx.is_defined(&name) {
                return Err(ctx.error(format!("a branch uses {name:?}, which is not defined")));
            }
            match ctx.constant(&name) {
                Some(t) => const_captures.push((name, t.clone())),
                None => carried_captures.push(name),
            }
        }
    }
    let mut inputs = vec![reshape_scalar(ctx, &sub(&base, "cond"), cond)?];
    let mut captured_types = Vec::new();
    let mut captured_shapes = Vec::new();
    for name in &carried_captures {
        let slot = ctx.slot(name)?.clone();
        inputs.push(ctx.plain(name)?);
        captured_types.push(slot.dtype);
        captured_shapes.push(slot.shape);
    }
    let mut branches = Vec::new();
    for branch in [&then_g, &else_g] {
        let mut b = ctx.for_body();
        b.begin_node(node);
        let mut args = Vec::new();
        for (j, name) in carried_captures.iter().enumerate() {
            args.push(b.add_arg(
                name,
                &format!("captured{j}"),
                captured_types[j],
                captured_shapes[j].clone(),
            )?);
        }
        for (name, value) in &const_captures {
            b.set_constant(name, value.clone());
        }
        for init in &branch.proto().initializer {
            b.add_initializer(init)?;
        }
        for inner in branch.nodes() {
            super::convert_node(&mut b, &inner)?;
        }
        b.begin_node(node);
        let mut results = Vec::new();
        let mut shapes = Vec::new();
        for (r, out) in branch.proto().output.iter().enumerate() {
            let slot = b.slot(out.name())?.clone();
            let value = b.plain(out.name())?;
            results.push(b.op1(
                "Identity",
                &format!("result{r}"),
                &[&value],
                &[("T", Attr::Type(slot.dtype))],
                slot.shape.clone(),
            )?);
            shapes.push(slot.shape);
        }
        branches.push((b.into_graph(), args, results, shapes));
    }
    let (then_graph, then_args, then_results, then_shapes) = &branches[0];
    let (else_graph, else_args, else_results, else_shapes) = &branches[1];
    let tout: Vec<DType> = then_results.iter().map(Output::dtype).collect();
    let else_types: Vec<DType> = else_results.iter().map(Output::dtype).collect();
    if tout != else_types {
        return Err(ctx.error(format!(
            "the branches give different dtypes: {tout:?} and {else_types:?}"
        )));
    }
    let shapes: Vec<Shape> = then_shapes
        .iter()
        .zip(else_shapes)
        .map(|(a, b)| relax(a, b))
        .collect();
    let then_fn = function_name(ctx.graph(), &base, "then");
    ctx.graph_mut()
        .add_function(&then_fn, then_graph, then_args, then_results)
        .map_err(|e| ctx.build_error(e))?;
    let else_fn = function_name(ctx.graph(), &base, "else");
    ctx.graph_mut()
        .add_function(&else_fn, else_graph, else_args, else_results)
        .map_err(|e| ctx.build_error(e))?;
    let refs: Vec<&Output> = inputs.iter().collect();
    let outs = ctx.op(
        "If",
        &base,
        &refs,
        &[
            ("Tcond", Attr::Type(DType::Bool)),
            ("Tin", Attr::TypeList(captured_types)),
            ("Tout", Attr::TypeList(tout)),
            ("then_branch", Attr::Func(then_fn)),
            ("else_branch", Attr::Func(else_fn)),
            ("output_shapes", Attr::ShapeList(shapes.clone())),
        ],
        shapes.clone(),
    )?;
    for ((name, value), shape) in outputs.iter().zip(outs).zip(shapes) {
        if !name.is_empty() {
            ctx.set_plain(name, value, shape);
        }
    }
    Ok(())
}
