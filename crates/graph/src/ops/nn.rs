//! Activations, bias and top-k (`tensorflow/core/ops/nn_ops.cc`).

use savedmodel_checkpoint::DType;

use super::{FLOATS, NUMBERS, TopK, expect_dtype, expect_same_dtype, type_error};
use crate::error::Result;
use crate::graph::{Graph, Output, Shape};
use crate::tensor::Tensor;

impl Graph {
    /// `value + bias`, `bias` (1-D) added along the last dimension
    /// (`BiasAdd`, NHWC).
    pub fn bias_add(&mut self, name: &str, value: &Output, bias: &Output) -> Result<Output> {
        expect_same_dtype("BiasAdd", name, value, bias)?;
        expect_dtype("BiasAdd", name, value, NUMBERS)?;
        if bias.shape().rank().is_some_and(|r| r != 1) {
            return Err(type_error(
                name,
                format!(
                    "BiasAdd bias {} must be 1-D, has shape {}",
                    bias.name(),
                    bias.shape()
                ),
            ));
        }
        let mut shape = value.shape().clone();
        if let Some(dims) = value.shape().dims() {
            if dims.len() < 2 {
                return Err(type_error(
                    name,
                    format!("BiasAdd value {} must be at least 2-D", value.name()),
                ));
            }
            let last = dims[dims.len() - 1];
            let b = bias.shape().dim(0);
            if last >= 0 && b >= 0 && last != b {
                return Err(type_error(
                    name,
                    format!("BiasAdd: bias has {b} elements, value's last dimension is {last}"),
                ));
            }
            let mut d = dims.to_vec();
            let n = d.len();
            if d[n - 1] < 0 {
                d[n - 1] = b;
            }
            shape = Shape::new(&d);
        }
        self.op("BiasAdd", name)
            .input(value)
            .input(bias)
            .attr("T", value.dtype())
            .output(value.dtype(), shape)
            .build_output()
    }

    fn activation(
        &mut self,
        op: &str,
        name: &str,
        x: &Output,
        allowed: &[DType],
    ) -> Result<Output> {
        expect_dtype(op, name, x, allowed)?;
        self.op(op, name)
            .input(x)
            .attr("T", x.dtype())
            .output(x.dtype(), x.shape().clone())
            .build_output()
    }

    /// `max(x, 0)` (`Relu`).
    pub fn relu(&mut self, name: &str, x: &Output) -> Result<Output> {
        self.activation("Relu", name, x, NUMBERS)
    }

    /// `min(max(x, 0), 6)` (`Relu6`).
    pub fn relu6(&mut self, name: &str, x: &Output) -> Result<Output> {
        self.activation("Relu6", name, x, NUMBERS)
    }

    /// Softmax over the last dimension (`Softmax`).
    pub fn softmax(&mut self, name: &str, logits: &Output) -> Result<Output> {
        self.activation("Softmax", name, logits, FLOATS)
    }

    /// Log-softmax over the last dimension (`LogSoftmax`).
    pub fn log_softmax(&mut self, name: &str, logits: &Output) -> Result<Output> {
        self.activation("LogSoftmax", name, logits, FLOATS)
    }

    /// The `k` largest entries of the last dimension, sorted (`TopKV2`).
    pub fn top_k(&mut self, name: &str, input: &Output, k: i32) -> Result<TopK> {
        expect_dtype("TopKV2", name, input, NUMBERS)?;
        if k < 0 {
            return Err(type_error(
                name,
                format!("TopKV2 k must be non-negative, is {k}"),
            ));
        }
        let shape = match input.shape().dims() {
            None => Shape::unknown(),
            Some([]) => {
                return Err(type_error(
                    name,
                    format!("TopKV2 input {} must be at least 1-D", input.name()),
                ));
            }
            Some(dims) => {
                let last = dims[dims.len() - 1];
                if last >= 0 && i64::from(k) > last {
                    return Err(type_error(
                        name,
                        format!("TopKV2 k = {k} exceeds the last dimension ({last})"),
                    ));
                }
                let mut d = dims.to_vec();
                let n = d.len();
                d[n - 1] = i64::from(k);
                Shape::new(&d)
            }
        };
        let op_name = self.unique_name(name);
        let k_t = self.aux_constant(&op_name, "k", Tensor::scalar(k))?;
        let op = self
            .op("TopKV2", &op_name)
            .exact_name()
            .input(input)
            .input(&k_t)
            .attr("T", input.dtype())
            .output(input.dtype(), shape.clone())
            .output(DType::Int32, shape)
            .build()?;
        Ok(TopK {
            values: op.output(0)?,
            indices: op.output(1)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_shapes() {
        let mut g = Graph::new();
        let x = g.placeholder("x", DType::Float, [-1, 10]).unwrap();
        let t = g.top_k("TopKV2", &x, 3).unwrap();
        assert_eq!(t.values.shape(), &Shape::new(&[-1, 3]));
        assert_eq!(
            (t.indices.dtype(), t.indices.name()),
            (DType::Int32, "TopKV2:1".to_owned())
        );
        assert!(g.top_k("TopKV2", &x, 11).is_err());
        assert_eq!(g.node("TopKV2").unwrap().input, vec!["x", "TopKV2/k"]);
    }

    #[test]
    fn bias_add_checks_sizes() {
        let mut g = Graph::new();
        let x = g.placeholder("x", DType::Float, [-1, 10]).unwrap();
        let b = g
            .constant("b", Tensor::new(&[10], &[0f32; 10]).unwrap())
            .unwrap();
        assert_eq!(
            g.bias_add("add", &x, &b).unwrap().shape(),
            &Shape::new(&[-1, 10])
        );
        let b3 = g
            .constant("b3", Tensor::new(&[3], &[0f32; 3]).unwrap())
            .unwrap();
        assert!(g.bias_add("add", &x, &b3).is_err());
        assert_eq!(g.softmax("s", &x).unwrap().shape(), &Shape::new(&[-1, 10]));
    }
}
