//! Arithmetic, comparisons, casts, matrix products and reductions
//! (`tensorflow/core/ops/math_ops.cc`).

use savedmodel_checkpoint::DType;

use super::{FLOATS, NUMBERS, expect_dtype, expect_same_dtype, normalize_axis, type_error};
use crate::error::Result;
use crate::graph::{Graph, Output, Shape};
use crate::tensor::Tensor;

impl Graph {
    fn binary(
        &mut self,
        op: &str,
        name: &str,
        x: &Output,
        y: &Output,
        allowed: &[DType],
        out: Option<DType>,
    ) -> Result<Output> {
        expect_same_dtype(op, name, x, y)?;
        expect_dtype(op, name, x, allowed)?;
        let shape = x.shape().broadcast(y.shape()).ok_or_else(|| {
            type_error(
                name,
                format!(
                    "{op}: shapes {} and {} cannot be broadcast",
                    x.shape(),
                    y.shape()
                ),
            )
        })?;
        self.op(op, name)
            .input(x)
            .input(y)
            .attr("T", x.dtype())
            .output(out.unwrap_or(x.dtype()), shape)
            .build_output()
    }

    fn unary(&mut self, op: &str, name: &str, x: &Output, allowed: &[DType]) -> Result<Output> {
        expect_dtype(op, name, x, allowed)?;
        self.op(op, name)
            .input(x)
            .attr("T", x.dtype())
            .output(x.dtype(), x.shape().clone())
            .build_output()
    }

    /// `x + y` with broadcasting (`AddV2`). Strings concatenate.
    pub fn add(&mut self, name: &str, x: &Output, y: &Output) -> Result<Output> {
        let mut allowed = NUMBERS.to_vec();
        allowed.push(DType::String);
        self.binary("AddV2", name, x, y, &allowed, None)
    }

    /// `x - y` with broadcasting (`Sub`).
    pub fn sub(&mut self, name: &str, x: &Output, y: &Output) -> Result<Output> {
        self.binary("Sub", name, x, y, NUMBERS, None)
    }

    /// `x * y` with broadcasting (`Mul`).
    pub fn mul(&mut self, name: &str, x: &Output, y: &Output) -> Result<Output> {
        self.binary("Mul", name, x, y, NUMBERS, None)
    }

    /// `x / y` with broadcasting (`RealDiv`).
    pub fn div(&mut self, name: &str, x: &Output, y: &Output) -> Result<Output> {
        self.binary("RealDiv", name, x, y, NUMBERS, None)
    }

    /// Elementwise maximum (`Maximum`).
    pub fn maximum(&mut self, name: &str, x: &Output, y: &Output) -> Result<Output> {
        self.binary("Maximum", name, x, y, NUMBERS, None)
    }

    /// Elementwise minimum (`Minimum`).
    pub fn minimum(&mut self, name: &str, x: &Output, y: &Output) -> Result<Output> {
        self.binary("Minimum", name, x, y, NUMBERS, None)
    }

    /// `x > y` (`Greater`), a `DT_BOOL` tensor.
    pub fn greater(&mut self, name: &str, x: &Output, y: &Output) -> Result<Output> {
        self.binary("Greater", name, x, y, NUMBERS, Some(DType::Bool))
    }

    /// `x >= y` (`GreaterEqual`).
    pub fn greater_equal(&mut self, name: &str, x: &Output, y: &Output) -> Result<Output> {
        self.binary("GreaterEqual", name, x, y, NUMBERS, Some(DType::Bool))
    }

    /// `x < y` (`Less`).
    pub fn less(&mut self, name: &str, x: &Output, y: &Output) -> Result<Output> {
        self.binary("Less", name, x, y, NUMBERS, Some(DType::Bool))
    }

    /// `x <= y` (`LessEqual`).
    pub fn less_equal(&mut self, name: &str, x: &Output, y: &Output) -> Result<Output> {
        self.binary("LessEqual", name, x, y, NUMBERS, Some(DType::Bool))
    }

    /// `x == y` (`Equal`).
    pub fn equal(&mut self, name: &str, x: &Output, y: &Output) -> Result<Output> {
        let mut allowed = NUMBERS.to_vec();
        allowed.extend([DType::String, DType::Bool]);
        self.binary("Equal", name, x, y, &allowed, Some(DType::Bool))
    }

    /// `sigmoid(x)` (`Sigmoid`).
    pub fn sigmoid(&mut self, name: &str, x: &Output) -> Result<Output> {
        self.unary("Sigmoid", name, x, FLOATS)
    }

    /// `tanh(x)` (`Tanh`).
    pub fn tanh(&mut self, name: &str, x: &Output) -> Result<Output> {
        self.unary("Tanh", name, x, FLOATS)
    }

    /// `e^x` (`Exp`).
    pub fn exp(&mut self, name: &str, x: &Output) -> Result<Output> {
        self.unary("Exp", name, x, FLOATS)
    }

    /// Natural logarithm (`Log`).
    pub fn log(&mut self, name: &str, x: &Output) -> Result<Output> {
        self.unary("Log", name, x, FLOATS)
    }

    /// `-x` (`Neg`).
    pub fn neg(&mut self, name: &str, x: &Output) -> Result<Output> {
        self.unary("Neg", name, x, NUMBERS)
    }

    /// `|x|` (`Abs`).
    pub fn abs(&mut self, name: &str, x: &Output) -> Result<Output> {
        self.unary("Abs", name, x, NUMBERS)
    }

    /// Square root (`Sqrt`).
    pub fn sqrt(&mut self, name: &str, x: &Output) -> Result<Output> {
        self.unary("Sqrt", name, x, FLOATS)
    }

    /// `x * x` (`Square`).
    pub fn square(&mut self, name: &str, x: &Output) -> Result<Output> {
        self.unary("Square", name, x, NUMBERS)
    }

    /// Matrix product `a · b` of two rank-2 tensors (`MatMul`).
    pub fn matmul(&mut self, name: &str, a: &Output, b: &Output) -> Result<Output> {
        self.matmul_transposed(name, a, b, false, false)
    }

    /// Matrix product with either operand transposed first (`MatMul` with
    /// `transpose_a` / `transpose_b`).
    pub fn matmul_transposed(
        &mut self,
        name: &str,
        a: &Output,
        b: &Output,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<Output> {
        expect_same_dtype("MatMul", name, a, b)?;
        expect_dtype("MatMul", name, a, NUMBERS)?;
        for x in [a, b] {
            if x.shape().rank().is_some_and(|r| r != 2) {
                return Err(type_error(
                    name,
                    format!(
                        "MatMul input {} must be rank 2, has shape {}",
                        x.name(),
                        x.shape()
                    ),
                ));
            }
        }
        let (m, ka) = if transpose_a {
            (a.shape().dim(1), a.shape().dim(0))
        } else {
            (a.shape().dim(0), a.shape().dim(1))
        };
        let (kb, n) = if transpose_b {
            (b.shape().dim(1), b.shape().dim(0))
        } else {
            (b.shape().dim(0), b.shape().dim(1))
        };
        if ka >= 0 && kb >= 0 && ka != kb {
            return Err(type_error(
                name,
                format!(
                    "MatMul inner dimensions differ: {} has {ka}, {} has {kb}",
                    a.name(),
                    b.name()
                ),
            ));
        }
        self.op("MatMul", name)
            .input(a)
            .input(b)
            .attr("T", a.dtype())
            .attr("transpose_a", transpose_a)
            .attr("transpose_b", transpose_b)
            .output(a.dtype(), Shape::new(&[m, n]))
            .build_output()
    }

    /// Converts `x` to `dtype` (`Cast`).
    pub fn cast(&mut self, name: &str, x: &Output, dtype: DType) -> Result<Output> {
        self.op("Cast", name)
            .input(x)
            .attr("SrcT", x.dtype())
            .attr("DstT", dtype)
            .output(dtype, x.shape().clone())
            .build_output()
    }

    /// `condition ? t : e` elementwise (`Select`).
    pub fn select(
        &mut self,
        name: &str,
        condition: &Output,
        t: &Output,
        e: &Output,
    ) -> Result<Output> {
        expect_dtype("Select", name, condition, &[DType::Bool])?;
        expect_same_dtype("Select", name, t, e)?;
        let shape = t.shape().merge(e.shape()).ok_or_else(|| {
            type_error(
                name,
                format!(
                    "Select branches have shapes {} and {}",
                    t.shape(),
                    e.shape()
                ),
            )
        })?;
        self.op("Select", name)
            .input(condition)
            .input(t)
            .input(e)
            .attr("T", t.dtype())
            .output(t.dtype(), shape)
            .build_output()
    }

    fn reduction(
        &mut self,
        op: &str,
        name: &str,
        x: &Output,
        axes: &[i64],
        keep_dims: bool,
    ) -> Result<Output> {
        expect_dtype(op, name, x, NUMBERS)?;
        let mut reduced = Vec::with_capacity(axes.len());
        for &a in axes {
            if let Some(a) = normalize_axis(name, a, x.shape().rank())? {
                reduced.push(a);
            }
        }
        let shape = match x.shape().dims() {
            None => Shape::unknown(),
            Some(dims) => Shape::new(
                &dims
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &d)| match (reduced.contains(&i), keep_dims) {
                        (false, _) => Some(d),
                        (true, true) => Some(1),
                        (true, false) => None,
                    })
                    .collect::<Vec<_>>(),
            ),
        };
        let op_name = self.unique_name(name);
        let indices: Vec<i32> = axes.iter().map(|&a| a as i32).collect();
        let axes = self.aux_constant(&op_name, "reduction_indices", Tensor::vector(&indices))?;
        self.op(op, &op_name)
            .exact_name()
            .input(x)
            .input(&axes)
            .attr("T", x.dtype())
            .attr("keep_dims", keep_dims)
            .output(x.dtype(), shape)
            .build_output()
    }

    /// Sum over `axes` (`Sum`); `keep_dims` keeps them as size 1.
    pub fn sum(&mut self, name: &str, x: &Output, axes: &[i64], keep_dims: bool) -> Result<Output> {
        self.reduction("Sum", name, x, axes, keep_dims)
    }

    /// Mean over `axes` (`Mean`).
    pub fn mean(
        &mut self,
        name: &str,
        x: &Output,
        axes: &[i64],
        keep_dims: bool,
    ) -> Result<Output> {
        self.reduction("Mean", name, x, axes, keep_dims)
    }

    /// Maximum over `axes` (`Max`).
    pub fn reduce_max(
        &mut self,
        name: &str,
        x: &Output,
        axes: &[i64],
        keep_dims: bool,
    ) -> Result<Output> {
        self.reduction("Max", name, x, axes, keep_dims)
    }

    /// Minimum over `axes` (`Min`).
    pub fn reduce_min(
        &mut self,
        name: &str,
        x: &Output,
        axes: &[i64],
        keep_dims: bool,
    ) -> Result<Output> {
        self.reduction("Min", name, x, axes, keep_dims)
    }

    /// Index of the largest value along `axis` (`ArgMax`), as `DT_INT64`.
    pub fn arg_max(&mut self, name: &str, x: &Output, axis: i64) -> Result<Output> {
        self.arg_max_typed(name, x, axis, DType::Int64)
    }

    /// `ArgMax` with the index type chosen (`DT_INT32` or `DT_INT64`).
    pub fn arg_max_typed(
        &mut self,
        name: &str,
        x: &Output,
        axis: i64,
        output_type: DType,
    ) -> Result<Output> {
        expect_dtype("ArgMax", name, x, NUMBERS)?;
        if !matches!(output_type, DType::Int32 | DType::Int64) {
            return Err(type_error(
                name,
                format!("ArgMax output_type must be DT_INT32 or DT_INT64, not {output_type}"),
            ));
        }
        let axis_index = normalize_axis(name, axis, x.shape().rank())?;
        let shape = match (x.shape().dims(), axis_index) {
            (Some(dims), Some(a)) => Shape::new(
                &dims
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != a)
                    .map(|(_, &d)| d)
                    .collect::<Vec<_>>(),
            ),
            _ => Shape::unknown(),
        };
        let op_name = self.unique_name(name);
        let dim = self.aux_constant(&op_name, "dimension", Tensor::scalar(axis as i32))?;
        self.op("ArgMax", &op_name)
            .exact_name()
            .input(x)
            .input(&dim)
            .attr("T", x.dtype())
            .attr("output_type", output_type)
            .output(output_type, shape)
            .build_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_infers_and_checks() {
        let mut g = Graph::new();
        let x = g.placeholder("x", DType::Float, [-1, 784]).unwrap();
        let w = g
            .constant("w", Tensor::new(&[784, 10], &vec![0f32; 7840]).unwrap())
            .unwrap();
        let y = g.matmul("MatMul", &x, &w).unwrap();
        assert_eq!(y.shape(), &Shape::new(&[-1, 10]));
        assert_eq!(y.name(), "MatMul:0");
        assert!(g.matmul("MatMul", &w, &w).is_err());
        let i = g.placeholder("i", DType::Int32, [-1, 784]).unwrap();
        assert!(g.matmul("MatMul", &i, &w).is_err());
    }

    #[test]
    fn reductions_name_their_axes() {
        let mut g = Graph::new();
        let x = g.placeholder("x", DType::Float, [-1, 3, 4]).unwrap();
        let s = g.sum("Sum", &x, &[1], false).unwrap();
        assert_eq!(s.shape(), &Shape::new(&[-1, 4]));
        let m = g.mean("Sum", &x, &[-1], true).unwrap();
        assert_eq!(m.shape(), &Shape::new(&[-1, 3, 1]));
        assert_eq!(m.node_name(), "Sum_1");
        assert!(g.node("Sum_1/reduction_indices").is_some());
        let node = g.node("Sum_1").unwrap();
        assert_eq!(node.input, vec!["x", "Sum_1/reduction_indices"]);
        let a = g.arg_max("ArgMax", &x, 2).unwrap();
        assert_eq!(
            (a.dtype(), a.shape()),
            (DType::Int64, &Shape::new(&[-1, 3]))
        );
        assert!(!g.node("ArgMax").unwrap().attr.contains_key("output_type"));
    }

    #[test]
    fn comparisons_are_bool() {
        let mut g = Graph::new();
        let x = g.placeholder("x", DType::Float, [-1, 1]).unwrap();
        let c = g.constant("c", Tensor::scalar(2.5f32)).unwrap();
        let gt = g.greater("gt", &x, &c).unwrap();
        assert_eq!(
            (gt.dtype(), gt.shape()),
            (DType::Bool, &Shape::new(&[-1, 1]))
        );
        let i = g.constant("i", Tensor::scalar(1i64)).unwrap();
        assert!(g.greater("gt", &x, &i).is_err());
    }
}
