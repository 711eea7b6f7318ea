//! Parsing serialized `tf.Example`s (`ParseExampleV2`,
//! `tensorflow/core/ops/parsing_ops.cc`): what classify and regress
//! signatures feed.

use savedmodel_checkpoint::DType;

use super::{expect_dtype, type_error};
use crate::error::Result;
use crate::graph::{Attr, Graph, Output, Shape};
use crate::tensor::Tensor;

/// The feature types a `tf.Example` can carry.
const FEATURE_TYPES: &[DType] = &[DType::Float, DType::Int64, DType::String];

/// A fixed-length feature (`tf.io.FixedLenFeature`).
#[derive(Clone, Debug, PartialEq)]
pub struct DenseFeature {
    /// The feature name in the `Example`.
    pub key: String,
    /// `DT_FLOAT`, `DT_INT64` or `DT_STRING`.
    pub dtype: DType,
    /// The shape of one example's value (fully defined).
    pub shape: Vec<i64>,
    /// The value used when an example lacks the feature; `None` makes the
    /// feature required.
    pub default: Option<Tensor>,
}

/// A variable-length feature (`tf.io.VarLenFeature`), parsed into a
/// [`SparseTensor`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseFeature {
    /// The feature name in the `Example`.
    pub key: String,
    /// `DT_FLOAT`, `DT_INT64` or `DT_STRING`.
    pub dtype: DType,
}

/// The features to parse out of serialized `tf.Example`s.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExampleSpec {
    dense: Vec<DenseFeature>,
    sparse: Vec<SparseFeature>,
}

impl ExampleSpec {
    /// No features yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a required fixed-length feature.
    pub fn dense(mut self, key: &str, dtype: DType, shape: &[i64]) -> Self {
        self.dense.push(DenseFeature {
            key: key.to_owned(),
            dtype,
            shape: shape.to_vec(),
            default: None,
        });
        self
    }

    /// Adds a fixed-length feature with a default value (its dtype and
    /// shape are the feature's).
    pub fn dense_with_default(mut self, key: &str, default: Tensor) -> Self {
        self.dense.push(DenseFeature {
            key: key.to_owned(),
            dtype: default.dtype(),
            shape: default.shape().to_vec(),
            default: Some(default),
        });
        self
    }

    /// Adds a variable-length feature.
    pub fn sparse(mut self, key: &str, dtype: DType) -> Self {
        self.sparse.push(SparseFeature {
            key: key.to_owned(),
            dtype,
        });
        self
    }

    /// The fixed-length features.
    pub fn dense_features(&self) -> &[DenseFeature] {
        &self.dense
    }

    /// The variable-length features.
    pub fn sparse_features(&self) -> &[SparseFeature] {
        &self.sparse
    }
}

/// A sparse tensor: the three outputs `ParseExampleV2` gives per
/// variable-length feature.
#[derive(Clone, Debug)]
pub struct SparseTensor {
    /// `DT_INT64 [nnz, rank]`.
    pub indices: Output,
    /// `[nnz]` values.
    pub values: Output,
    /// `DT_INT64 [rank]`.
    pub dense_shape: Output,
}

/// The outputs of [`Graph::parse_example`], by feature name.
#[derive(Clone, Debug, Default)]
pub struct ParsedExample {
    /// Dense features, in the order of the spec.
    pub dense: Vec<(String, Output)>,
    /// Sparse features, in the order of the spec.
    pub sparse: Vec<(String, SparseTensor)>,
}

impl ParsedExample {
    /// The dense feature `key`.
    pub fn dense(&self, key: &str) -> Option<&Output> {
        self.dense.iter().find(|(k, _)| k == key).map(|(_, o)| o)
    }

    /// The sparse feature `key`.
    pub fn sparse(&self, key: &str) -> Option<&SparseTensor> {
        self.sparse.iter().find(|(k, _)| k == key).map(|(_, o)| o)
    }
}

impl Graph {
    /// Parses `serialized` (a `DT_STRING` scalar or vector of serialized
    /// `tf.Example`s) into the features of `spec` (`ParseExampleV2`). A
    /// dense feature of shape `S` comes out with shape
    /// `serialized.shape + S`.
    pub fn parse_example(
        &mut self,
        name: &str,
        serialized: &Output,
        spec: &ExampleSpec,
    ) -> Result<ParsedExample> {
        expect_dtype("ParseExampleV2", name, serialized, &[DType::String])?;
        let batch: Vec<i64> = match serialized.shape().dims() {
            Some(d) if d.len() <= 1 => d.to_vec(),
            Some(d) => {
                return Err(type_error(
                    name,
                    format!(
                        "ParseExampleV2 input must be a scalar or a vector, has rank {}",
                        d.len()
                    ),
                ));
            }
            None => vec![-1],
        };
        let mut keys: Vec<&str> = Vec::new();
        for f in &spec.dense {
            if !FEATURE_TYPES.contains(&f.dtype) {
                return Err(type_error(
                    name,
                    format!("feature {:?}: {} is not a tf.Example type", f.key, f.dtype),
                ));
            }
            if f.shape.iter().any(|&d| d < 0) {
                return Err(type_error(
                    name,
                    format!(
                        "feature {:?}: shape {:?} must be fully defined",
                        f.key, f.shape
                    ),
                ));
            }
            if let Some(d) = &f.default {
                if d.dtype() != f.dtype || d.shape() != f.shape.as_slice() {
                    return Err(type_error(
                        name,
                        format!(
                            "feature {:?}: default does not match dtype and shape",
                            f.key
                        ),
                    ));
                }
            }
            keys.push(&f.key);
        }
        for f in &spec.sparse {
            if !FEATURE_TYPES.contains(&f.dtype) {
                return Err(type_error(
                    name,
                    format!("feature {:?}: {} is not a tf.Example type", f.key, f.dtype),
                ));
            }
            keys.push(&f.key);
        }
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(type_error(
                name,
                format!("feature {:?} is listed twice", w[0]),
            ));
        }

        let op_name = self.unique_name(name);
        let strings = |v: Vec<&str>| Tensor::string_vector(&v);
        let names = self.aux_constant(&op_name, "names", strings(Vec::new()))?;
        let sparse_keys = self.aux_constant(
            &op_name,
            "sparse_keys",
            strings(spec.sparse.iter().map(|f| f.key.as_str()).collect()),
        )?;
        let dense_keys = self.aux_constant(
            &op_name,
            "dense_keys",
            strings(spec.dense.iter().map(|f| f.key.as_str()).collect()),
        )?;
        let ragged_keys = self.aux_constant(&op_name, "ragged_keys", strings(Vec::new()))?;
        let mut defaults = Vec::with_capacity(spec.dense.len());
        for (i, f) in spec.dense.iter().enumerate() {
            let value = match &f.default {
                Some(d) => d.clone(),
                None if f.dtype == DType::String => Tensor::strings(&[0], &[] as &[&[u8]])?,
                None => Tensor::from_bytes(f.dtype, &[0], Vec::new())?,
            };
            defaults.push(self.aux_constant(&op_name, &format!("dense_default_{i}"), value)?);
        }

        let sparse_rank = batch.len() as i64 + 1;
        let mut b = self
            .op("ParseExampleV2", &op_name)
            .exact_name()
            .input(serialized)
            .input(&names)
            .input(&sparse_keys)
            .input(&dense_keys)
            .input(&ragged_keys)
            .inputs(&defaults)
            .attr(
                "Tdense",
                spec.dense.iter().map(|f| f.dtype).collect::<Vec<_>>(),
            )
            .attr("num_sparse", spec.sparse.len() as i64)
            .attr(
                "sparse_types",
                spec.sparse.iter().map(|f| f.dtype).collect::<Vec<_>>(),
            )
            .attr("ragged_value_types", Attr::TypeList(Vec::new()))
            .attr("ragged_split_types", Attr::TypeList(Vec::new()))
            .attr(
                "dense_shapes",
                spec.dense
                    .iter()
                    .map(|f| Shape::new(&f.shape))
                    .collect::<Vec<_>>(),
            );
        for _ in &spec.sparse {
            b = b.output(DType::Int64, [-1, sparse_rank]);
        }
        for f in &spec.sparse {
            b = b.output(f.dtype, [-1]);
        }
        for _ in &spec.sparse {
            b = b.output(DType::Int64, [sparse_rank]);
        }
        for f in &spec.dense {
            let mut dims = batch.clone();
            dims.extend_from_slice(&f.shape);
            b = b.output(f.dtype, Shape::new(&dims));
        }
        let op = b.build()?;
        let n = spec.sparse.len();
        let mut parsed = ParsedExample::default();
        for (i, f) in spec.sparse.iter().enumerate() {
            parsed.sparse.push((
                f.key.clone(),
                SparseTensor {
                    indices: op.output(i)?,
                    values: op.output(n + i)?,
                    dense_shape: op.output(2 * n + i)?,
                },
            ));
        }
        for (i, f) in spec.dense.iter().enumerate() {
            parsed.dense.push((f.key.clone(), op.output(3 * n + i)?));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_sparse_outputs() {
        let mut g = Graph::new();
        let s = g.placeholder("tf_example", DType::String, [-1]).unwrap();
        let spec = ExampleSpec::new()
            .dense("x", DType::Float, &[784])
            .sparse("tags", DType::String)
            .dense_with_default("w", Tensor::scalar(1.0f32));
        let p = g.parse_example("ParseExample", &s, &spec).unwrap();
        let x = p.dense("x").unwrap();
        assert_eq!(
            (x.name(), x.shape()),
            ("ParseExample:3".to_owned(), &Shape::new(&[-1, 784]))
        );
        assert_eq!(p.dense("w").unwrap().shape(), &Shape::new(&[-1]));
        let t = p.sparse("tags").unwrap();
        assert_eq!(t.values.name(), "ParseExample:1");
        assert_eq!(t.dense_shape.name(), "ParseExample:2");
        let node = g.node("ParseExample").unwrap();
        // Required list attrs are written even when empty.
        assert!(node.attr.contains_key("ragged_value_types"));
        assert_eq!(node.input.len(), 7);
        let dup = ExampleSpec::new()
            .dense("x", DType::Float, &[1])
            .sparse("x", DType::Float);
        assert!(g.parse_example("p", &s, &dup).is_err());
        let bad = ExampleSpec::new().dense("x", DType::Int32, &[1]);
        assert!(g.parse_example("p", &s, &bad).is_err());
    }
}
