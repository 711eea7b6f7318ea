//! Placeholders, identities and shape manipulation
//! (`tensorflow/core/ops/array_ops.cc`).

use savedmodel_checkpoint::DType;

use super::{INDICES, expect_dtype, normalize_axis, type_error};
use crate::error::Result;
use crate::graph::{Graph, Output, Shape};
use crate::tensor::Tensor;

impl Graph {
    /// A value fed at run time (`Placeholder`); `-1` dimensions are unknown
    /// (e.g. `[-1, 784]` for a batch of images).
    pub fn placeholder(
        &mut self,
        name: &str,
        dtype: DType,
        shape: impl Into<Shape>,
    ) -> Result<Output> {
        let shape = shape.into();
        self.op("Placeholder", name)
            .attr("dtype", dtype)
            .attr("shape", shape.clone())
            .output(dtype, shape)
            .build_output()
    }

    /// `input` unless fed (`PlaceholderWithDefault`).
    pub fn placeholder_with_default(
        &mut self,
        name: &str,
        input: &Output,
        shape: impl Into<Shape>,
    ) -> Result<Output> {
        let shape = shape.into();
        if !shape.is_compatible_with(input.shape())
            && shape.rank().is_some()
            && input.shape().rank() == shape.rank()
        {
            return Err(type_error(
                name,
                format!(
                    "default {} has shape {}, not compatible with {shape}",
                    input.name(),
                    input.shape()
                ),
            ));
        }
        self.op("PlaceholderWithDefault", name)
            .input(input)
            .attr("dtype", input.dtype())
            .attr("shape", shape.clone())
            .output(input.dtype(), shape)
            .build_output()
    }

    /// `x` unchanged (`Identity`): a stable name for a tensor.
    pub fn identity(&mut self, name: &str, x: &Output) -> Result<Output> {
        self.op("Identity", name)
            .input(x)
            .attr("T", x.dtype())
            .output(x.dtype(), x.shape().clone())
            .build_output()
    }

    /// `x` unchanged, with no gradient (`StopGradient`).
    pub fn stop_gradient(&mut self, name: &str, x: &Output) -> Result<Output> {
        self.op("StopGradient", name)
            .input(x)
            .attr("T", x.dtype())
            .output(x.dtype(), x.shape().clone())
            .build_output()
    }

    /// `x` with a new shape (`Reshape`); one dimension may be `-1`, inferred
    /// from the others.
    pub fn reshape(&mut self, name: &str, x: &Output, shape: &[i64]) -> Result<Output> {
        if shape.iter().filter(|&&d| d == -1).count() > 1 || shape.iter().any(|&d| d < -1) {
            return Err(type_error(
                name,
                format!("Reshape to {shape:?}: at most one -1 and no other negative size"),
            ));
        }
        let mut out: Vec<i64> = shape.to_vec();
        if let (Some(n), Some(pos)) = (
            x.shape().num_elements(),
            shape.iter().position(|&d| d == -1),
        ) {
            let known: i64 = shape.iter().filter(|&&d| d != -1).product();
            if known > 0 && n % known == 0 {
                out[pos] = n / known;
            }
        } else if let Some(n) = x.shape().num_elements() {
            let total: i64 = shape.iter().product();
            if total != n {
                return Err(type_error(
                    name,
                    format!("cannot reshape {} ({n} elements) to {shape:?}", x.shape()),
                ));
            }
        }
        let op_name = self.unique_name(name);
        let dims: Vec<i32> = shape.iter().map(|&d| d as i32).collect();
        let target = self.aux_constant(&op_name, "shape", Tensor::vector(&dims))?;
        self.op("Reshape", &op_name)
            .exact_name()
            .input(x)
            .input(&target)
            .attr("T", x.dtype())
            .output(x.dtype(), Shape::new(&out))
            .build_output()
    }

    /// Concatenation of `values` along `axis` (`ConcatV2`).
    pub fn concat(&mut self, name: &str, values: &[Output], axis: i64) -> Result<Output> {
        let first = values
            .first()
            .ok_or_else(|| type_error(name, "ConcatV2 needs at least one input".into()))?;
        for v in values {
            super::expect_same_dtype("ConcatV2", name, first, v)?;
        }
        let rank = values.iter().find_map(|v| v.shape().rank());
        let a = normalize_axis(name, axis, rank)?;
        let shape = match (rank, a) {
            (Some(rank), Some(a)) => {
                let mut dims = vec![-1i64; rank];
                let mut total = Some(0i64);
                for v in values {
                    match v.shape().dims() {
                        Some(d) if d.len() == rank => {
                            for (i, &x) in d.iter().enumerate() {
                                if i == a {
                                    total = total
                                        .and_then(|t| if x < 0 { None } else { t.checked_add(x) });
                                } else if dims[i] < 0 {
                                    dims[i] = x;
                                } else if x >= 0 && x != dims[i] {
                                    return Err(type_error(
                                        name,
                                        format!(
                                            "ConcatV2 inputs differ in dimension {i}: {} vs {x}",
                                            dims[i]
                                        ),
                                    ));
                                }
                            }
                        }
                        Some(d) => {
                            return Err(type_error(
                                name,
                                format!("ConcatV2 inputs have ranks {rank} and {}", d.len()),
                            ));
                        }
                        None => total = None,
                    }
                }
                dims[a] = total.unwrap_or(-1);
                Shape::new(&dims)
            }
            _ => Shape::unknown(),
        };
        let op_name = self.unique_name(name);
        let axis_t = self.aux_constant(&op_name, "axis", Tensor::scalar(axis as i32))?;
        self.op("ConcatV2", &op_name)
            .exact_name()
            .inputs(values)
            .input(&axis_t)
            .attr("N", values.len() as i64)
            .attr("T", first.dtype())
            .output(first.dtype(), shape)
            .build_output()
    }

    /// `x` without the size-1 dimensions `axes` (all size-1 dimensions when
    /// empty) (`Squeeze`).
    pub fn squeeze(&mut self, name: &str, x: &Output, axes: &[i64]) -> Result<Output> {
        let shape = match x.shape().dims() {
            None => Shape::unknown(),
            Some(dims) => {
                let mut drop = Vec::new();
                for &a in axes {
                    let i = normalize_axis(name, a, Some(dims.len()))?.unwrap_or(0);
                    if dims[i] > 1 {
                        return Err(type_error(
                            name,
                            format!("cannot squeeze dimension {a} of size {}", dims[i]),
                        ));
                    }
                    drop.push(i);
                }
                if axes.is_empty() {
                    if dims.contains(&-1) {
                        Shape::unknown()
                    } else {
                        Shape::new(&dims.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>())
                    }
                } else {
                    Shape::new(
                        &dims
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| !drop.contains(i))
                            .map(|(_, &d)| d)
                            .collect::<Vec<_>>(),
                    )
                }
            }
        };
        self.op("Squeeze", name)
            .input(x)
            .attr("T", x.dtype())
            .attr("squeeze_dims", axes.to_vec())
            .output(x.dtype(), shape)
            .build_output()
    }

    /// `x` with a size-1 dimension inserted at `axis` (`ExpandDims`).
    pub fn expand_dims(&mut self, name: &str, x: &Output, axis: i64) -> Result<Output> {
        let shape = match x.shape().dims() {
            None => Shape::unknown(),
            Some(dims) => {
                let i = normalize_axis(name, axis, Some(dims.len() + 1))?.unwrap_or(0);
                let mut out = dims.to_vec();
                out.insert(i, 1);
                Shape::new(&out)
            }
        };
        let op_name = self.unique_name(name);
        let dim = self.aux_constant(&op_name, "dim", Tensor::scalar(axis as i32))?;
        self.op("ExpandDims", &op_name)
            .exact_name()
            .input(x)
            .input(&dim)
            .attr("T", x.dtype())
            .output(x.dtype(), shape)
            .build_output()
    }

    /// Slices of `params` at `indices` along `axis` (`GatherV2`).
    pub fn gather(
        &mut self,
        name: &str,
        params: &Output,
        indices: &Output,
        axis: i64,
    ) -> Result<Output> {
        expect_dtype("GatherV2", name, indices, INDICES)?;
        let a = normalize_axis(name, axis, params.shape().rank())?;
        let shape = match (params.shape().dims(), indices.shape().dims(), a) {
            (Some(p), Some(i), Some(a)) => {
                let mut out = p[..a].to_vec();
                out.extend_from_slice(i);
                out.extend_from_slice(&p[a + 1..]);
                Shape::new(&out)
            }
            _ => Shape::unknown(),
        };
        let op_name = self.unique_name(name);
        let axis_t = self.aux_constant(&op_name, "axis", Tensor::scalar(axis as i32))?;
        self.op("GatherV2", &op_name)
            .exact_name()
            .input(params)
            .input(indices)
            .input(&axis_t)
            .attr("Tparams", params.dtype())
            .attr("Tindices", indices.dtype())
            .attr("Taxis", DType::Int32)
            .output(params.dtype(), shape)
            .build_output()
    }

    /// Stacks same-shaped `values` into one tensor along a new first
    /// dimension (`Pack`).
    pub fn stack(&mut self, name: &str, values: &[Output]) -> Result<Output> {
        let first = values
            .first()
            .ok_or_else(|| type_error(name, "Pack needs at least one input".into()))?;
        let mut shape = first.shape().clone();
        for v in values {
            super::expect_same_dtype("Pack", name, first, v)?;
            shape = shape.merge(v.shape()).ok_or_else(|| {
                type_error(
                    name,
                    format!(
                        "Pack inputs have shapes {} and {}",
                        first.shape(),
                        v.shape()
                    ),
                )
            })?;
        }
        let shape = match shape.dims() {
            Some(d) => {
                let mut out = vec![values.len() as i64];
                out.extend_from_slice(d);
                Shape::new(&out)
            }
            None => Shape::unknown(),
        };
        self.op("Pack", name)
            .inputs(values)
            .attr("N", values.len() as i64)
            .attr("T", first.dtype())
            .output(first.dtype(), shape)
            .build_output()
    }

    /// The shape of `x` at run time as a 1-D `DT_INT32` tensor (`Shape`).
    pub fn shape_of(&mut self, name: &str, x: &Output) -> Result<Output> {
        let rank = x.shape().rank().map_or(-1, |r| r as i64);
        self.op("Shape", name)
            .input(x)
            .attr("T", x.dtype())
            .output(DType::Int32, Shape::new(&[rank]))
            .build_output()
    }

    /// A tensor of shape `dims` (a 1-D `DT_INT32` tensor) filled with the
    /// scalar `value` (`Fill`).
    pub fn fill(&mut self, name: &str, dims: &Output, value: &Output) -> Result<Output> {
        expect_dtype("Fill", name, dims, &[DType::Int32])?;
        let shape = match self.constant_value(dims).and_then(Tensor::to_i64_vec) {
            Some(d) => Shape::new(&d),
            None => match usize::try_from(dims.shape().dim(0)) {
                Ok(rank) => Shape::unknown_dims(rank),
                Err(_) => Shape::unknown(),
            },
        };
        self.op("Fill", name)
            .input(dims)
            .input(value)
            .attr("T", value.dtype())
            .output(value.dtype(), shape)
            .build_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_write_their_shape() {
        let mut g = Graph::new();
        let x = g.placeholder("x", DType::Float, [-1, 784]).unwrap();
        assert_eq!(x.shape(), &Shape::new(&[-1, 784]));
        let u = g.placeholder("u", DType::String, Shape::unknown()).unwrap();
        // The default (unknown rank) is not written.
        assert!(!g.node(u.node_name()).unwrap().attr.contains_key("shape"));
        assert!(g.node("x").unwrap().attr.contains_key("shape"));
    }

    #[test]
    fn shape_ops() {
        let mut g = Graph::new();
        let x = g.placeholder("x", DType::Float, [-1, 28, 28]).unwrap();
        let r = g.reshape("Reshape", &x, &[-1, 784]).unwrap();
        assert_eq!(r.shape(), &Shape::new(&[-1, 784]));
        assert!(g.node("Reshape/shape").is_some());
        let c = g
            .constant("c", Tensor::new(&[2, 3], &[0f32; 6]).unwrap())
            .unwrap();
        assert_eq!(
            g.reshape("r", &c, &[3, -1]).unwrap().shape(),
            &Shape::new(&[3, 2])
        );
        assert!(g.reshape("r", &c, &[4]).is_err());
        let cc = g.concat("concat", &[c.clone(), c.clone()], 0).unwrap();
        assert_eq!(cc.shape(), &Shape::new(&[4, 3]));
        let e = g.expand_dims("e", &c, -1).unwrap();
        assert_eq!(e.shape(), &Shape::new(&[2, 3, 1]));
        let s = g.squeeze("s", &e, &[2]).unwrap();
        assert_eq!(s.shape(), &Shape::new(&[2, 3]));
        let idx = g.placeholder("idx", DType::Int64, [-1]).unwrap();
        let ga = g.gather("g", &c, &idx, 1).unwrap();
        assert_eq!(ga.shape(), &Shape::new(&[2, -1]));
        let p = g.stack("p", &[c.clone(), c]).unwrap();
        assert_eq!(p.shape(), &Shape::new(&[2, 2, 3]));
    }
}
