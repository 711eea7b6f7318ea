//! A small builder for the helper nodes of one ONNX node: each gets a
//! fresh name under the node's name, so converters that compute indices,
//! masks or weights in the graph read as the arithmetic they do.

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use crate::convert::context::Ctx;
use crate::{NodeView, Result};

/// The `T` attribute.
pub(super) fn t(dtype: DType) -> (&'static str, Attr) {
    ("T", Attr::Type(dtype))
}

/// Builds helper nodes named `base/what<n>` for one ONNX node.
pub(super) struct Builder<'c> {
    pub(super) ctx: &'c mut Ctx,
    pub(super) base: String,
    count: usize,
}

impl<'c> Builder<'c> {
    pub(super) fn new(ctx: &'c mut Ctx, node: &NodeView<'_>) -> Self {
        let base = ctx.node_name(node);
        Self {
            ctx,
            base,
            count: 0,
        }
    }

    /// A fresh node name `base/what<n>`, for helpers built outside the
    /// builder (shared `*_of` constructors).
    /// A builder for helper nodes of ONNX value `name` (a graph input or
    /// output), not of a node.
    pub(super) fn for_value(ctx: &'c mut Ctx, name: &str) -> Self {
        let base = format!("{}/value", crate::convert::signature_key(name));
        Self {
            ctx,
            base,
            count: 0,
        }
    }

    pub(super) fn fresh(&mut self, what: &str) -> String {
        self.count += 1;
        format!("{}/{what}{}", self.base, self.count)
    }

    /// One node with one output.
    pub(super) fn op(
        &mut self,
        op_type: &str,
        inputs: &[&Output],
        attrs: &[(&str, Attr)],
        shape: Shape,
    ) -> Result<Output> {
        let name = self.fresh(&op_type.to_ascii_lowercase());
        self.ctx.op1(op_type, &name, inputs, attrs, shape)
    }

    /// One node with several outputs.
    pub(super) fn op_n(
        &mut self,
        op_type: &str,
        inputs: &[&Output],
        attrs: &[(&str, Attr)],
        shapes: Vec<Shape>,
    ) -> Result<Vec<Output>> {
        let name = self.fresh(&op_type.to_ascii_lowercase());
        self.ctx.op(op_type, &name, inputs, attrs, shapes)
    }

    /// A `Const`.
    pub(super) fn tensor(&mut self, value: Tensor) -> Result<Output> {
        let name = self.fresh("const");
        self.ctx.const_tensor(&name, value)
    }

    /// An int64 `Const` vector.
    pub(super) fn i64s(&mut self, values: &[i64]) -> Result<Output> {
        self.tensor(Tensor::vector(values))
    }

    /// An int64 `Const` scalar.
    pub(super) fn i64(&mut self, value: i64) -> Result<Output> {
        self.tensor(Tensor::scalar(value))
    }

    /// A scalar `Const` of `dtype`.
    pub(super) fn scalar(&mut self, dtype: DType, value: f64) -> Result<Output> {
        let name = self.fresh("const");
        self.ctx.const_scalar(&name, dtype, value)
    }

    /// `x` cast to `to` (itself when it already is).
    pub(super) fn cast(&mut self, x: &Output, to: DType) -> Result<Output> {
        if x.dtype() == to {
            return Ok(x.clone());
        }
        self.op(
            "Cast",
            &[x],
            &[("SrcT", Attr::Type(x.dtype())), ("DstT", Attr::Type(to))],
            x.shape().clone(),
        )
    }

    /// ONNX value `name` in ONNX layout, cast to int64.
    pub(super) fn int64_input(&mut self, name: &str) -> Result<Output> {
        let v = self.ctx.plain(name)?;
        self.cast(&v, DType::Int64)
    }

    /// A binary op whose inputs and output share `T`.
    pub(super) fn bin(&mut self, op_type: &str, a: &Output, b: &Output) -> Result<Output> {
        self.op(op_type, &[a, b], &[t(a.dtype())], Shape::unknown())
    }

    /// A unary op with attr `T`.
    pub(super) fn un(&mut self, op_type: &str, a: &Output) -> Result<Output> {
        self.op(op_type, &[a], &[t(a.dtype())], a.shape().clone())
    }

    /// `SelectV2(cond, a, b)`.
    pub(super) fn select(&mut self, cond: &Output, a: &Output, b: &Output) -> Result<Output> {
        self.op("SelectV2", &[cond, a, b], &[t(a.dtype())], Shape::unknown())
    }

    /// The shape of `x` as int64.
    pub(super) fn shape(&mut self, x: &Output) -> Result<Output> {
        let shape = x
            .shape()
            .rank()
            .map_or_else(Shape::unknown, |r| Shape::new(&[r as i64]));
        self.op(
            "Shape",
            &[x],
            &[t(x.dtype()), ("out_type", Attr::Type(DType::Int64))],
            shape,
        )
    }

    /// Element `i` of vector `v`, a scalar.
    pub(super) fn element(&mut self, v: &Output, i: i64) -> Result<Output> {
        let index = self.tensor(Tensor::scalar(i as i32))?;
        self.gather(v, &index, 0, Shape::scalar())
    }

    /// `GatherV2(x, indices, axis)`.
    pub(super) fn gather(
        &mut self,
        x: &Output,
        indices: &Output,
        axis: usize,
        shape: Shape,
    ) -> Result<Output> {
        let axis_t = self.tensor(Tensor::scalar(axis as i32))?;
        self.op(
            "GatherV2",
            &[x, indices, &axis_t],
            &[
                ("Tparams", Attr::Type(x.dtype())),
                ("Tindices", Attr::Type(indices.dtype())),
                ("Taxis", Attr::Type(DType::Int32)),
                ("batch_dims", Attr::Int(0)),
            ],
            shape,
        )
    }

    /// `Reshape(x, shape)` with a tensor shape.
    pub(super) fn reshape_to(
        &mut self,
        x: &Output,
        shape: &Output,
        logical: Shape,
    ) -> Result<Output> {
        self.op(
            "Reshape",
            &[x, shape],
            &[t(x.dtype()), ("Tshape", Attr::Type(shape.dtype()))],
            logical,
        )
    }

    /// `Reshape(x, dims)` with known dims (one may be -1).
    pub(super) fn reshape(&mut self, x: &Output, dims: &[i64]) -> Result<Output> {
        let shape = self.i64s(dims)?;
        let logical = if dims.iter().all(|&d| d >= 0) {
            Shape::new(dims)
        } else {
            Shape::unknown_dims(dims.len())
        };
        self.reshape_to(x, &shape, logical)
    }

    /// `Range(start, limit, delta)`, all of the same dtype.
    pub(super) fn range(
        &mut self,
        start: &Output,
        limit: &Output,
        delta: &Output,
    ) -> Result<Output> {
        self.op(
            "Range",
            &[start, limit, delta],
            &[("Tidx", Attr::Type(start.dtype()))],
            Shape::unknown_dims(1),
        )
    }

    /// `ConcatV2` along `axis`.
    pub(super) fn concat(&mut self, parts: &[&Output], axis: i64) -> Result<Output> {
        let axis_t = self.tensor(Tensor::scalar(axis as i32))?;
        let mut inputs: Vec<&Output> = parts.to_vec();
        inputs.push(&axis_t);
        let dtype = parts.first().map_or(DType::Float, |p| p.dtype());
        self.op(
            "ConcatV2",
            &inputs,
            &[
                t(dtype),
                ("N", Attr::Int(parts.len() as i64)),
                ("Tidx", Attr::Type(DType::Int32)),
            ],
            Shape::unknown(),
        )
    }

    /// `Pack` (stack) along `axis`.
    pub(super) fn stack(&mut self, parts: &[&Output], axis: i64) -> Result<Output> {
        let dtype = parts.first().map_or(DType::Float, |p| p.dtype());
        self.op(
            "Pack",
            parts,
            &[
                t(dtype),
                ("N", Attr::Int(parts.len() as i64)),
                ("axis", Attr::Int(axis)),
            ],
            Shape::unknown(),
        )
    }
}

/// Where ONNX axis `a` of a rank-`rank` value is stored: itself in ONNX
/// layout; channels last, the channels (1) last and the spatial axes one
/// earlier (see [`crate::convert::context::Slot`]).
pub(super) fn stored_axis(channels_last: bool, rank: usize, a: usize) -> usize {
    match (channels_last, a) {
        (false, _) | (true, 0) => a,
        (true, 1) => rank - 1,
        (true, _) => a - 1,
    }
}
