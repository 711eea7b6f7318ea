//! Recurrent layers: ONNX `RNN`, `GRU` and `LSTM`, each direction a
//! TensorFlow `While` loop over the time steps (`control.rs` builds the
//! loop: the body and condition functions in the graph's library, the
//! per-step outputs in a `TensorList`).
//!
//! Before the loop, the input's projection of every step is one
//! `BatchMatMulV2` (`X · Wᵀ + Wb + Rb`, shape `[seq, batch, gates·hidden]`);
//! the body takes step `t`'s slice of it, adds `H · Rᵀ`, applies the gates
//! and pushes the step's `H` onto the list. A reverse direction runs
//! forward over its input reversed in time (`ReverseV2`, or
//! `ReverseSequence` over each sequence's own length) and reverses its
//! output back. With `sequence_lens`, a step past a sequence's length keeps
//! its state and outputs zeros (`SelectV2` on `t < length`), so `Y_h` and
//! `Y_c` are the states at each sequence's last step. `layout = 1`
//! (batch first) is transposed to time first on the way in and back on the
//! way out.
//!
//! The equations (`onnx/defs/rnn/defs.cc`; gates in ONNX's order: `RNN` i,
//! `GRU` z r h, `LSTM` i o f c; `clip` bounds every gate's input to its
//! activation):
//!
//! - `RNN`: `H = f(x·Wᵀ + H·Rᵀ + Wb + Rb)`;
//! - `GRU`: `z = f(..)`, `r = f(..)`, `h = g(x·Whᵀ + (r ⊙ H)·Rhᵀ + Rbh +
//!   Wbh)` or, with `linear_before_reset`, `g(x·Whᵀ + r ⊙ (H·Rhᵀ + Rbh) +
//!   Wbh)`; `H = (1 - z) ⊙ h + z ⊙ H`;
//! - `LSTM`: `i = f(.. + Pi ⊙ C)`, `f = f(.. + Pf ⊙ C)` (or `1 - i` with
//!   `input_forget`), `c = g(..)`, `C = f ⊙ C + i ⊙ c`, `o = f(.. + Po ⊙
//!   C)`, `H = o ⊙ h(C)`.

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::build::{Builder, t};
use super::control::{
    LoopFunction, empty_list, next_iteration, push_back, reverse_axis0, stack_list, while_node,
};
use super::elementwise::{elu_of, hard_sigmoid_of};
use super::more::thresholded_relu_of;
use super::{Converter, input_name, output_name, required_input, sub};
use crate::convert::context::{Ctx, permute_shape};
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "RNN" => |c, n| recurrent(c, n, Cell::Rnn),
        "GRU" => |c, n| recurrent(c, n, Cell::Gru),
        "LSTM" => |c, n| recurrent(c, n, Cell::Lstm),
        _ => return None,
    };
    Some(f)
}

/// Which recurrent layer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cell {
    Rnn,
    Gru,
    Lstm,
}

impl Cell {
    /// The gates stacked in `W`, `R` and each half of `B`.
    fn gates(self) -> i64 {
        match self {
            Cell::Rnn => 1,
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }

    /// The activations of one direction when `activations` is not given.
    fn default_activations(self) -> &'static [&'static str] {
        match self {
            Cell::Rnn => &["Tanh"],
            Cell::Gru => &["Sigmoid", "Tanh"],
            Cell::Lstm => &["Sigmoid", "Tanh", "Tanh"],
        }
    }
}

/// The activation functions the recurrent ops name, with the default of
/// `alpha` and `beta` for those that take them: each such function
/// consumes the next value of `activation_alpha` (`activation_beta`), the
/// default when the list is exhausted, as onnxruntime does.
const ACTIVATIONS: &[(&str, Option<f64>, Option<f64>)] = &[
    ("Relu", None, None),
    ("Tanh", None, None),
    ("Sigmoid", None, None),
    ("Affine", Some(1.0), Some(0.0)),
    ("LeakyRelu", Some(0.01), None),
    ("ThresholdedRelu", Some(1.0), None),
    ("ScaledTanh", Some(1.0), Some(1.0)),
    ("HardSigmoid", Some(0.2), Some(0.5)),
    ("Elu", Some(1.0), None),
    ("Softsign", None, None),
    ("Softplus", None, None),
];

/// One activation function with its parameters.
#[derive(Clone, Copy)]
struct Activation {
    name: &'static str,
    alpha: f64,
    beta: f64,
}

/// The node's attributes, checked.
struct Spec {
    cell: Cell,
    hidden: i64,
    /// One entry per direction: whether it runs reversed in time.
    reversed: Vec<bool>,
    batch_first: bool,
    clip: Option<f64>,
    /// The activations of each direction.
    activations: Vec<Vec<Activation>>,
    linear_before_reset: bool,
    input_forget: bool,
}

impl Spec {
    fn read(ctx: &Ctx, node: &NodeView<'_>, cell: Cell) -> Result<Self> {
        let reversed = match node.attr_s_or("direction", "forward")? {
            "forward" => vec![false],
            "reverse" => vec![true],
            "bidirectional" => vec![false, true],
            other => {
                return Err(ctx.error(format!(
                    "direction {other:?} is not one of forward, reverse, bidirectional"
                )));
            }
        };
        let batch_first = match node.attr_i_or("layout", 0)? {
            0 => false,
            1 => true,
            other => return Err(ctx.error(format!("layout {other} is not 0 or 1"))),
        };
        let r = required_input(ctx, node, 2)?;
        let hidden = match node.attr_i("hidden_size")? {
            Some(h) => h,
            None => match ctx.slot(r)?.shape.dims() {
                Some(&[_, _, h]) if h > 0 => h,
                _ => {
                    return Err(
                        ctx.error("hidden_size is not given and R's last dimension is unknown")
                    );
                }
            },
        };
        if hidden <= 0 {
            return Err(ctx.error(format!("hidden_size {hidden} is not positive")));
        }
        let clip = node.attr_f("clip")?.map(f64::from);
        if clip.is_some_and(|c| c.is_nan() || c < 0.0) {
            return Err(ctx.error("clip must not be negative"));
        }
        let linear_before_reset = node.attr_i_or("linear_before_reset", 0)? != 0;
        let input_forget = node.attr_i_or("input_forget", 0)? != 0;
        if cell != Cell::Gru && linear_before_reset {
            return Err(ctx.error("linear_before_reset is an attribute of GRU only"));
        }
        if cell != Cell::Lstm && input_forget {
            return Err(ctx.error("input_forget is an attribute of LSTM only"));
        }
        let activations = Self::activations(ctx, node, cell, reversed.len())?;
        Ok(Self {
            cell,
            hidden,
            reversed,
            batch_first,
            clip,
            activations,
            linear_before_reset,
            input_forget,
        })
    }

    /// `activations` (with `activation_alpha` and `activation_beta`) split
    /// per direction, or the defaults.
    fn activations(
        ctx: &Ctx,
        node: &NodeView<'_>,
        cell: Cell,
        directions: usize,
    ) -> Result<Vec<Vec<Activation>>> {
        let per_direction = cell.default_activations().len();
        let names: Vec<&str> = match node.attr_strings("activations")? {
            Some(names) => {
                if names.len() != per_direction * directions {
                    return Err(ctx.error(format!(
                        "activations lists {} functions, {per_direction} per direction for {directions} direction(s) expected",
                        names.len()
                    )));
                }
                names
            }
            None => cell
                .default_activations()
                .iter()
                .copied()
                .cycle()
                .take(per_direction * directions)
                .collect(),
        };
        let alphas = node.attr_floats("activation_alpha")?.unwrap_or(&[]);
        let betas = node.attr_floats("activation_beta")?.unwrap_or(&[]);
        let (mut alphas, mut betas) = (alphas.iter(), betas.iter());
        let mut all = Vec::new();
        for name in names {
            let Some(&(known, alpha, beta)) = ACTIVATIONS
                .iter()
                .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            else {
                return Err(ctx.error(format!("activation {name:?} is not supported")));
            };
            let take = |default: Option<f64>, list: &mut std::slice::Iter<'_, f32>| {
                default.map_or(0.0, |d| list.next().map_or(d, |&v| f64::from(v)))
            };
            all.push(Activation {
                name: known,
                alpha: take(alpha, &mut alphas),
                beta: take(beta, &mut betas),
            });
        }
        Ok(all.chunks(per_direction).map(<[_]>::to_vec).collect())
    }

    fn gate_width(&self) -> i64 {
        self.cell.gates() * self.hidden
    }
}

/// The loop values of one direction's `While`, by name, in order.
#[derive(Default)]
struct LoopValues {
    names: Vec<&'static str>,
    values: Vec<Output>,
    shapes: Vec<Shape>,
}

impl LoopValues {
    fn push(&mut self, name: &'static str, value: Output, shape: Shape) {
        self.names.push(name);
        self.values.push(value);
        self.shapes.push(shape);
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| *n == name)
    }
}

/// The values every direction shares, in the main graph.
struct Inputs {
    dtype: DType,
    /// `X`, time first: `[seq, batch, input]`.
    x: Output,
    w: Output,
    r: Output,
    b: Option<Output>,
    /// `sequence_lens` as int64.
    lens: Option<Output>,
    /// `initial_h`, `initial_c` direction first: `[directions, batch, hidden]`.
    h0: Option<Output>,
    c0: Option<Output>,
    p: Option<Output>,
    /// The shape `[batch, hidden]` of one step's state.
    state: Shape,
}

fn recurrent(ctx: &mut Ctx, node: &NodeView<'_>, cell: Cell) -> Result<()> {
    let spec = Spec::read(ctx, node, cell)?;
    let mut g = Builder::new(ctx, node);
    let inputs = read_inputs(&mut g, node, &spec)?;
    let mut ys = Vec::new();
    let mut hs = Vec::new();
    let mut cs = Vec::new();
    for (d, &reversed) in spec.reversed.iter().enumerate() {
        let (y, h, c) = direction(&mut g, node, &spec, &inputs, d, reversed)?;
        ys.push(y);
        hs.push(h);
        cs.extend(c);
    }
    let n_dirs = spec.reversed.len() as i64;
    let state = inputs.state.dims().unwrap_or(&[-1, -1]).to_vec();
    let states_shape = Shape::new(&[n_dirs, state[0], state[1]]);
    // Y: [seq, directions, batch, hidden], batch first [batch, seq, ...].
    if let Some(name) = output_name(node, 0) {
        let refs: Vec<&Output> = ys.iter().collect();
        let mut y = g.stack(&refs, 1)?;
        let mut shape = Shape::new(&[-1, n_dirs, state[0], state[1]]);
        if let Some(&[seq, ..]) = inputs.x.shape().dims() {
            shape = Shape::new(&[seq, n_dirs, state[0], state[1]]);
        }
        if spec.batch_first {
            y = transpose(&mut g, &y, &[2, 0, 1, 3])?;
            shape = permute_shape(&shape, &[2, 0, 1, 3]);
        }
        g.ctx.set_plain(name, y, shape);
    }
    // Y_h, Y_c: [directions, batch, hidden], batch first [batch, directions, hidden].
    for (k, finals) in [(1, &hs), (2, &cs)] {
        let Some(name) = output_name(node, k) else {
            continue;
        };
        if finals.is_empty() {
            return Err(g.ctx.error(format!("{} has no output {k}", node.op_type())));
        }
        let refs: Vec<&Output> = finals.iter().collect();
        let mut v = g.stack(&refs, 0)?;
        let mut shape = states_shape.clone();
        if spec.batch_first {
            v = transpose(&mut g, &v, &[1, 0, 2])?;
            shape = permute_shape(&shape, &[1, 0, 2]);
        }
        g.ctx.set_plain(name, v, shape);
    }
    Ok(())
}

/// `Transpose(x, perm)`.
fn transpose(g: &mut Builder<'_>, x: &Output, perm: &[i64]) -> Result<Output> {
    let name = g.fresh("transpose");
    g.ctx.transpose(&name, x, perm)
}

/// The node's inputs in the layout the loops use (time first, direction
/// first), with their shapes checked where known.
fn read_inputs(g: &mut Builder<'_>, node: &NodeView<'_>, spec: &Spec) -> Result<Inputs> {
    let x_name = required_input(g.ctx, node, 0)?;
    let x_shape = g.ctx.slot(x_name)?.shape.clone();
    if x_shape.rank().is_some_and(|r| r != 3) {
        return Err(g.ctx.error(format!("X has shape {x_shape:?}, not rank 3")));
    }
    let mut x = g.ctx.plain(x_name)?;
    if spec.batch_first {
        x = transpose(g, &x, &[1, 0, 2])?;
    }
    let dtype = x.dtype();
    let (batch, input) = match x.shape().dims() {
        Some(&[_, b, i]) => (b, i),
        _ => (-1, -1),
    };
    let n_dirs = spec.reversed.len() as i64;
    let width = spec.gate_width();
    let expect =
        |g: &mut Builder<'_>, i: usize, what: &str, want: &[i64]| -> Result<Option<Output>> {
            let Some(name) = input_name(node, i) else {
                return Ok(None);
            };
            let shape = g.ctx.slot(name)?.shape.clone();
            if let Some(dims) = shape.dims() {
                let agrees = dims.len() == want.len()
                    && dims
                        .iter()
                        .zip(want)
                        .all(|(&d, &w)| d < 0 || w < 0 || d == w);
                if !agrees {
                    return Err(g.ctx.error(format!(
                        "{what} has shape {dims:?}, {want:?} expected (-1: any)"
                    )));
                }
            }
            Ok(Some(g.ctx.plain(name)?))
        };
    let missing = |g: &Builder<'_>, what: &str| g.ctx.error(format!("input {what} is required"));
    let w = expect(g, 1, "W", &[n_dirs, width, input])?.ok_or_else(|| missing(g, "W"))?;
    let r = expect(g, 2, "R", &[n_dirs, width, spec.hidden])?.ok_or_else(|| missing(g, "R"))?;
    let b = expect(g, 3, "B", &[n_dirs, 2 * width])?;
    let lens = match expect(g, 4, "sequence_lens", &[batch])? {
        Some(l) => Some(g.cast(&l, DType::Int64)?),
        None => None,
    };
    let state_dims = if spec.batch_first {
        [batch, n_dirs, spec.hidden]
    } else {
        [n_dirs, batch, spec.hidden]
    };
    let initial = |g: &mut Builder<'_>, i: usize, what: &str| -> Result<Option<Output>> {
        match expect(g, i, what, &state_dims)? {
            Some(v) if spec.batch_first => Ok(Some(transpose(g, &v, &[1, 0, 2])?)),
            other => Ok(other),
        }
    };
    let h0 = initial(g, 5, "initial_h")?;
    let (c0, p) = if spec.cell == Cell::Lstm {
        let c0 = initial(g, 6, "initial_c")?;
        (c0, expect(g, 7, "P", &[n_dirs, 3 * spec.hidden])?)
    } else {
        if input_name(node, 6).is_some() || input_name(node, 7).is_some() {
            return Err(g.ctx.error(format!("{} takes 6 inputs", node.op_type())));
        }
        (None, None)
    };
    for v in [&w, &r]
        .into_iter()
        .chain(&b)
        .chain(&h0)
        .chain(&c0)
        .chain(&p)
    {
        if v.dtype() != dtype {
            return Err(g.ctx.error(format!(
                "the inputs' types differ: X is {dtype}, another {}",
                v.dtype()
            )));
        }
    }
    Ok(Inputs {
        dtype,
        x,
        w,
        r,
        b,
        lens,
        h0,
        c0,
        p,
        state: Shape::new(&[batch, spec.hidden]),
    })
}

/// Row `d` of a direction-first value.
fn direction_row(g: &mut Builder<'_>, v: &Output, d: usize, shape: Shape) -> Result<Output> {
    let index = g.tensor(Tensor::scalar(d as i32))?;
    g.gather(v, &index, 0, shape)
}

/// `Split(x)` into `n` equal parts along `axis`.
fn split(g: &mut Builder<'_>, x: &Output, n: i64, axis: i32) -> Result<Vec<Output>> {
    let axis_t = g.tensor(Tensor::scalar(axis))?;
    g.op_n(
        "Split",
        &[&axis_t, x],
        &[t(x.dtype()), ("num_split", Attr::Int(n))],
        Vec::new(),
    )
}

/// `x` reversed in time (axis 0), each sequence over its own length when
/// `lens` is given (axis 1 is the batch).
fn reverse_time(g: &mut Builder<'_>, x: &Output, lens: Option<&Output>) -> Result<Output> {
    match lens {
        Some(lens) => g.op(
            "ReverseSequence",
            &[x, lens],
            &[
                ("seq_dim", Attr::Int(0)),
                ("batch_dim", Attr::Int(1)),
                t(x.dtype()),
                ("Tlen", Attr::Type(DType::Int64)),
            ],
            x.shape().clone(),
        ),
        None => reverse_axis0(g, x),
    }
}

/// Zeros of one step's state, `[batch, hidden]`, for a missing initial state.
fn zero_state(g: &mut Builder<'_>, inputs: &Inputs, hidden: i64) -> Result<Output> {
    let x_shape = g.shape(&inputs.x)?;
    let batch = g.element(&x_shape, 1)?;
    let hidden = g.i64(hidden)?;
    let dims = g.stack(&[&batch, &hidden], 0)?;
    let zero = g.scalar(inputs.dtype, 0.0)?;
    g.op(
        "Fill",
        &[&dims, &zero],
        &[t(inputs.dtype), ("index_type", Attr::Type(DType::Int64))],
        inputs.state.clone(),
    )
}

/// One direction's loop: its `Y` (`[seq, batch, hidden]`), final `H` and,
/// for `LSTM`, final `C`.
fn direction(
    g: &mut Builder<'_>,
    node: &NodeView<'_>,
    spec: &Spec,
    inputs: &Inputs,
    d: usize,
    reversed: bool,
) -> Result<(Output, Output, Option<Output>)> {
    let dtype = inputs.dtype;
    let hidden = spec.hidden;
    let width = spec.gate_width();
    let state = inputs.state.clone();
    let (seq, batch, input) = match inputs.x.shape().dims() {
        Some(&[s, b, i]) => (s, b, i),
        _ => (-1, -1, -1),
    };

    // The input's projection of every step, with both biases (but Rbh
    // when GRU applies it inside the reset).
    let w = direction_row(g, &inputs.w, d, Shape::new(&[width, input]))?;
    let mut xw = g.op(
        "BatchMatMulV2",
        &[&inputs.x, &w],
        &[
            t(dtype),
            ("adj_x", Attr::Bool(false)),
            ("adj_y", Attr::Bool(true)),
        ],
        Shape::new(&[seq, batch, width]),
    )?;
    let mut rb_h = None;
    if let Some(b) = &inputs.b {
        let b = direction_row(g, b, d, Shape::new(&[2 * width]))?;
        let halves = split(g, &b, 2, 0)?;
        let mut rb = halves[1].clone();
        if spec.cell == Cell::Gru && spec.linear_before_reset {
            let parts = split(g, &rb, 3, 0)?;
            let zeros = g.un("ZerosLike", &parts[2])?;
            rb = g.concat(&[&parts[0], &parts[1], &zeros], 0)?;
            rb_h = Some(parts[2].clone());
        }
        let bias = g.bin("AddV2", &halves[0], &rb)?;
        xw = g.op(
            "BiasAdd",
            &[&xw, &bias],
            &[t(dtype), ("data_format", Attr::Str(b"NHWC".to_vec()))],
            Shape::new(&[seq, batch, width]),
        )?;
    }
    if reversed {
        xw = reverse_time(g, &xw, inputs.lens.as_ref())?;
    }
    let xw_shape = g.shape(&xw)?;
    let steps = g.element(&xw_shape, 0)?;

    // The loop values.
    let mut lv = LoopValues::default();
    lv.push("t", g.i64(0)?, Shape::scalar());
    lv.push("steps", steps, Shape::scalar());
    let h0 = match &inputs.h0 {
        Some(h0) => direction_row(g, h0, d, state.clone())?,
        None => zero_state(g, inputs, hidden)?,
    };
    lv.push("h", h0, state.clone());
    if spec.cell == Cell::Lstm {
        let c0 = match &inputs.c0 {
            Some(c0) => direction_row(g, c0, d, state.clone())?,
            None => zero_state(g, inputs, hidden)?,
        };
        lv.push("c", c0, state.clone());
    }
    lv.push("xw", xw, Shape::new(&[seq, batch, width]));
    let r = direction_row(g, &inputs.r, d, Shape::new(&[width, hidden]))?;
    if spec.cell == Cell::Gru {
        // z and r use one product with H; h its own, after the reset.
        let parts = split(g, &r, 3, 0)?;
        let r_zr = g.concat(&[&parts[0], &parts[1]], 0)?;
        lv.push("r_zr", r_zr, Shape::new(&[2 * hidden, hidden]));
        lv.push("r_h", parts[2].clone(), Shape::new(&[hidden, hidden]));
        if let Some(rb_h) = rb_h {
            lv.push("rb_h", rb_h, Shape::new(&[hidden]));
        }
    } else {
        lv.push("r", r, Shape::new(&[width, hidden]));
    }
    if let Some(p) = &inputs.p {
        let p = direction_row(g, p, d, Shape::new(&[3 * hidden]))?;
        let parts = split(g, &p, 3, 0)?;
        for (name, part) in ["p_i", "p_o", "p_f"].into_iter().zip(parts) {
            lv.push(name, part, Shape::new(&[hidden]));
        }
    }
    if let Some(lens) = &inputs.lens {
        lv.push("lens", lens.clone(), Shape::new(&[batch]));
    }
    let what = if reversed { "reverse" } else { "forward" };
    let list = empty_list(g.ctx, &sub(&g.base, &format!("{what}_y")), dtype, &state)?;
    lv.push("y", list, Shape::scalar());

    let function = step_function(g.ctx, node, spec, &spec.activations[d], &lv)?;
    let loop_name = sub(&g.base, what);
    let outs = while_node(g.ctx, &loop_name, &lv.values, &lv.shapes, &function, false)?;
    let at = |name: &str| lv.index(name).map(|i| outs[i].clone());
    let list = at("y").ok_or_else(|| g.ctx.error("the loop has no output list"))?;
    let (mut y, _) = stack_list(g.ctx, &sub(&loop_name, "y"), &list, dtype, &state)?;
    if reversed {
        y = reverse_time(g, &y, inputs.lens.as_ref())?;
    }
    let h = at("h").ok_or_else(|| g.ctx.error("the loop has no state"))?;
    Ok((y, h, at("c")))
}

/// The loop body: one time step of one direction, over the loop values
/// `lv` (the same in and out; `t`, `h`, `c` and the list `y` change).
fn step_function(
    ctx: &Ctx,
    node: &NodeView<'_>,
    spec: &Spec,
    acts: &[Activation],
    lv: &LoopValues,
) -> Result<LoopFunction> {
    let mut b = ctx.for_body();
    b.begin_node(node);
    let mut args = Vec::new();
    for ((name, value), shape) in lv.names.iter().zip(&lv.values).zip(&lv.shapes) {
        args.push(b.add_arg(&format!("\u{0}{name}"), name, value.dtype(), shape.clone())?);
    }
    let mut results = args.clone();
    {
        let mut g = Builder::new(&mut b, node);
        let arg = |g: &Builder<'_>, name: &str| {
            lv.index(name)
                .map(|i| args[i].clone())
                .ok_or_else(|| g.ctx.error(format!("the loop has no value {name}")))
        };
        let opt = |name: &str| lv.index(name).map(|i| args[i].clone());
        let step = arg(&g, "t")?;
        let h = arg(&g, "h")?;
        let xw = arg(&g, "xw")?;
        let x_t = g.gather(&xw, &step, 0, Shape::unknown_dims(2))?;
        let (h_new, c_new) = match spec.cell {
            Cell::Rnn => {
                let r = arg(&g, "r")?;
                let hr = matmul_t(&mut g, &h, &r)?;
                let pre = g.bin("AddV2", &x_t, &hr)?;
                (activate(&mut g, spec.clip, acts[0], &pre)?, None)
            }
            Cell::Gru => {
                let x = split(&mut g, &x_t, 3, 1)?;
                let r_zr = arg(&g, "r_zr")?;
                let r_h = arg(&g, "r_h")?;
                let hzr = matmul_t(&mut g, &h, &r_zr)?;
                let hzr = split(&mut g, &hzr, 2, 1)?;
                let z = g.bin("AddV2", &x[0], &hzr[0])?;
                let z = activate(&mut g, spec.clip, acts[0], &z)?;
                let reset = g.bin("AddV2", &x[1], &hzr[1])?;
                let reset = activate(&mut g, spec.clip, acts[0], &reset)?;
                let recurrent = if spec.linear_before_reset {
                    let mut hh = matmul_t(&mut g, &h, &r_h)?;
                    if let Some(rb_h) = opt("rb_h") {
                        hh = g.bin("AddV2", &hh, &rb_h)?;
                    }
                    g.bin("Mul", &reset, &hh)?
                } else {
                    let rh = g.bin("Mul", &reset, &h)?;
                    matmul_t(&mut g, &rh, &r_h)?
                };
                let pre = g.bin("AddV2", &x[2], &recurrent)?;
                let candidate = activate(&mut g, spec.clip, acts[1], &pre)?;
                // (1 - z) ⊙ h + z ⊙ H = h + z ⊙ (H - h)
                let diff = g.bin("Sub", &h, &candidate)?;
                let kept = g.bin("Mul", &z, &diff)?;
                (g.bin("AddV2", &candidate, &kept)?, None)
            }
            Cell::Lstm => {
                let c = arg(&g, "c")?;
                let r = arg(&g, "r")?;
                let hr = matmul_t(&mut g, &h, &r)?;
                let pre = g.bin("AddV2", &x_t, &hr)?;
                let gates = split(&mut g, &pre, 4, 1)?;
                let peephole =
                    |g: &mut Builder<'_>, name: &str, gate: &Output, c: &Output| match opt(name) {
                        Some(p) => {
                            let pc = g.bin("Mul", &p, c)?;
                            g.bin("AddV2", gate, &pc)
                        }
                        None => Ok(gate.clone()),
                    };
                let i = peephole(&mut g, "p_i", &gates[0], &c)?;
                let i = activate(&mut g, spec.clip, acts[0], &i)?;
                let f = if spec.input_forget {
                    let one = g.scalar(i.dtype(), 1.0)?;
                    g.bin("Sub", &one, &i)?
                } else {
                    let f = peephole(&mut g, "p_f", &gates[2], &c)?;
                    activate(&mut g, spec.clip, acts[0], &f)?
                };
                let cell_in = activate(&mut g, spec.clip, acts[1], &gates[3])?;
                let kept = g.bin("Mul", &f, &c)?;
                let added = g.bin("Mul", &i, &cell_in)?;
                let c_new = g.bin("AddV2", &kept, &added)?;
                let o = peephole(&mut g, "p_o", &gates[1], &c_new)?;
                let o = activate(&mut g, spec.clip, acts[0], &o)?;
                let hc = activate(&mut g, None, acts[2], &c_new)?;
                (g.bin("Mul", &o, &hc)?, Some(c_new))
            }
        };
        // Past a sequence's length: the state kept, the output zero.
        let (y, h_next, c_next) = match opt("lens") {
            Some(lens) => {
                let live = g.op(
                    "Less",
                    &[&step, &lens],
                    &[t(DType::Int64)],
                    Shape::unknown_dims(1),
                )?;
                let live = g.reshape(&live, &[-1, 1])?;
                let zeros = g.un("ZerosLike", &h_new)?;
                let y = g.select(&live, &h_new, &zeros)?;
                let h_next = g.select(&live, &h_new, &h)?;
                let c_next = match (&c_new, opt("c")) {
                    (Some(c_new), Some(c)) => Some(g.select(&live, c_new, &c)?),
                    _ => None,
                };
                (y, h_next, c_next)
            }
            None => (h_new.clone(), h_new, c_new),
        };
        let list = arg(&g, "y")?;
        let name = g.fresh("push");
        let pushed = push_back(g.ctx, &name, &list, &y)?;
        let next = next_iteration(g.ctx, &step)?;
        let mut set = |name: &str, value: Output| {
            if let Some(i) = lv.index(name) {
                results[i] = value;
            }
        };
        set("t", next);
        set("h", h_next);
        if let Some(c_next) = c_next {
            set("c", c_next);
        }
        set("y", pushed);
    }
    LoopFunction::new(b, args, &results)
}

/// `a · bᵀ` for matrices.
fn matmul_t(g: &mut Builder<'_>, a: &Output, b: &Output) -> Result<Output> {
    g.op(
        "MatMul",
        &[a, b],
        &[
            t(a.dtype()),
            ("transpose_a", Attr::Bool(false)),
            ("transpose_b", Attr::Bool(true)),
        ],
        Shape::unknown_dims(2),
    )
}

/// `act(x)`, `x` first bounded to `[-clip, clip]` when `clip` is given.
fn activate(g: &mut Builder<'_>, clip: Option<f64>, act: Activation, x: &Output) -> Result<Output> {
    let dtype = x.dtype();
    let x = match clip {
        Some(c) => {
            let hi = g.scalar(dtype, c)?;
            let lo = g.scalar(dtype, -c)?;
            let below = g.bin("Minimum", x, &hi)?;
            g.bin("Maximum", &below, &lo)?
        }
        None => x.clone(),
    };
    let (alpha, beta) = (act.alpha, act.beta);
    match act.name {
        "Relu" | "Tanh" | "Sigmoid" | "Softsign" | "Softplus" => g.un(act.name, &x),
        "Affine" => {
            let a = g.scalar(dtype, alpha)?;
            let b = g.scalar(dtype, beta)?;
            let ax = g.bin("Mul", &x, &a)?;
            g.bin("AddV2", &ax, &b)
        }
        "LeakyRelu" => g.op(
            "LeakyRelu",
            &[&x],
            &[t(dtype), ("alpha", Attr::Float(alpha as f32))],
            x.shape().clone(),
        ),
        "ScaledTanh" => {
            let a = g.scalar(dtype, alpha)?;
            let b = g.scalar(dtype, beta)?;
            let bx = g.bin("Mul", &x, &b)?;
            let th = g.un("Tanh", &bx)?;
            g.bin("Mul", &th, &a)
        }
        "ThresholdedRelu" => {
            let name = g.fresh("thresholded_relu");
            thresholded_relu_of(g.ctx, &name, &x, alpha)
        }
        "HardSigmoid" => {
            let name = g.fresh("hard_sigmoid");
            hard_sigmoid_of(g.ctx, &name, &x, alpha, beta)
        }
        "Elu" => {
            let name = g.fresh("elu");
            elu_of(g.ctx, &name, &x, alpha)
        }
        other => Err(g
            .ctx
            .error(format!("activation {other:?} is not supported"))),
    }
}
