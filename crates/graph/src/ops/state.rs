//! Resource variables (`tensorflow/core/ops/resource_variable_ops.cc`) and
//! partitioned variables, as TensorFlow's `ResourceVariable` and
//! `tf.compat.v1.get_variable(partitioner=...)` build them (docs/formats.md, section 15
//! "Variables and the saver subgraph").
//!
//! A variable is a `VarHandleOp` whose `shared_name` is its node name (an
//! empty `shared_name` would make every such handle alias one variable), read
//! through `<name>/Read/ReadVariableOp`. Its value is not in the graph: the
//! SavedModel builder writes it to the checkpoint under the node name, and
//! the saver subgraph restores it when TensorFlow loads the model.
//!
//! The value is a [`VariableValue`]: a [`Tensor`] (moved into the graph, not
//! copied) or a [`TensorSource`](crate::tensor::TensorSource) streamed into
//! the checkpoint when the SavedModel is written, so that a model far larger
//! than memory can be exported.

use savedmodel_checkpoint::DType;

use super::type_error;
use crate::error::Result;
use crate::graph::{Graph, Operation, Output, Partition, Shape, VariableRecord};
use crate::tensor::{Tensor, TensorElements, VariableValue};

/// Options for [`Graph::variable_with`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VariableOptions {
    /// The saver shard, i.e. the checkpoint data file
    /// (`variables.data-<shard>-of-<n>`), that holds the variable. Shards
    /// are numbered from 0 with none left empty.
    pub shard: usize,
}

impl VariableOptions {
    /// Options with the variable in `shard`.
    pub fn shard(shard: usize) -> Self {
        VariableOptions { shard }
    }
}

/// A resource variable.
#[derive(Clone, Debug)]
pub struct Variable {
    name: String,
    handle: Output,
    read: Output,
}

impl Variable {
    /// The variable's name: its `VarHandleOp` node and checkpoint key (for a
    /// part of a partitioned variable, the part's node name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The resource handle (`DT_RESOURCE`).
    pub fn handle(&self) -> &Output {
        &self.handle
    }

    /// The variable's value (`<name>/Read/ReadVariableOp:0`).
    pub fn value(&self) -> &Output {
        &self.read
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.read.dtype()
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        self.read.shape()
    }
}

/// A variable stored as several parts split along its first dimension, each
/// a resource variable, saved in the checkpoint as slices of one tensor.
#[derive(Clone, Debug)]
pub struct PartitionedVariable {
    name: String,
    parts: Vec<Variable>,
    value: Output,
}

impl PartitionedVariable {
    /// The full name (the checkpoint key).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The parts, `<name>/part_0`, `<name>/part_1`, ...
    pub fn parts(&self) -> &[Variable] {
        &self.parts
    }

    /// The whole value, the parts concatenated
    /// (`<name>/ConcatPartitions/concat`).
    pub fn value(&self) -> &Output {
        &self.value
    }
}

/// Rows `[start, start + len)` of `value` (split along dimension 0).
fn rows(value: &Tensor, start: i64, len: i64) -> Result<Tensor> {
    let shape = value.shape();
    let per_row: i64 = shape[1..].iter().product();
    let (from, to) = (
        (start * per_row) as usize,
        ((start + len) * per_row) as usize,
    );
    let mut part_shape = shape.to_vec();
    part_shape[0] = len;
    match value.data() {
        TensorElements::Strings(s) => Tensor::strings(&part_shape, &s[from..to]),
        TensorElements::Bytes(b) => {
            let size = value.dtype().element_size().unwrap_or(1);
            Tensor::from_bytes(
                value.dtype(),
                &part_shape,
                b[from * size..to * size].to_vec(),
            )
        }
    }
}

impl Graph {
    /// A resource variable named `name` holding `initial` (written to the
    /// checkpoint, restored by the saver): a [`Tensor`], or a
    /// [`VariableValue`] streamed from a
    /// [`TensorSource`](crate::tensor::TensorSource).
    pub fn variable(&mut self, name: &str, initial: impl Into<VariableValue>) -> Result<Variable> {
        self.variable_with(name, initial, VariableOptions::default())
    }

    /// [`variable`](Graph::variable) with options (the saver shard).
    pub fn variable_with(
        &mut self,
        name: &str,
        initial: impl Into<VariableValue>,
        options: VariableOptions,
    ) -> Result<Variable> {
        let full = self.unique_name(name);
        self.variable_node(&full, full.clone(), None, initial.into(), options.shard)
    }

    fn variable_node(
        &mut self,
        node: &str,
        checkpoint_name: String,
        partition: Option<Partition>,
        value: VariableValue,
        shard: usize,
    ) -> Result<Variable> {
        let dtype = value.dtype();
        if !dtype.is_checkpointable() {
            return Err(type_error(node, format!("a variable cannot hold {dtype}")));
        }
        value.check(node)?;
        let shape = Shape::new(value.shape());
        // Like TensorFlow's `init_scope`: a variable does not depend on the
        // control dependencies around its creation.
        let handle = self.without_control_dependencies(|g| {
            g.op("VarHandleOp", node)
                .exact_name()
                .attr("dtype", dtype)
                .attr("shape", shape.clone())
                .attr("shared_name", node)
                .output(DType::Resource, Shape::scalar())
                .build_output()
        })?;
        let read = self.without_control_dependencies(|g| {
            g.op("ReadVariableOp", &format!("{node}/Read/ReadVariableOp"))
                .exact_name()
                .input(&handle)
                .attr("dtype", dtype)
                .output(dtype, shape)
                .build_output()
        })?;
        self.variables.push(VariableRecord {
            handle: handle.clone(),
            read: read.clone(),
            checkpoint_name,
            partition,
            value,
            shard,
        });
        Ok(Variable {
            name: node.to_owned(),
            handle,
            read,
        })
    }

    /// A variable split along its first dimension into `num_parts` parts
    /// (the first `rows % num_parts` parts one row longer, like
    /// `tf.compat.v1.fixed_size_partitioner`), saved as slices of one
    /// checkpoint tensor named `name`.
    pub fn partitioned_variable(
        &mut self,
        name: &str,
        initial: Tensor,
        num_parts: usize,
        options: VariableOptions,
    ) -> Result<PartitionedVariable> {
        let full = self.unique_name(name);
        let shape = initial.shape().to_vec();
        let Some(&rows_total) = shape.first() else {
            return Err(type_error(&full, "a scalar cannot be partitioned".into()));
        };
        let n = num_parts as i64;
        if n < 1 || n > rows_total {
            return Err(type_error(
                &full,
                format!("cannot split {rows_total} rows into {num_parts} parts"),
            ));
        }
        let mut parts = Vec::with_capacity(num_parts);
        let mut start = 0i64;
        for i in 0..n {
            let len = rows_total / n + i64::from(i < rows_total % n);
            let mut offsets = vec![0i64; shape.len()];
            offsets[0] = start;
            let part = rows(&initial, start, len)?;
            let partition = Partition {
                full_shape: shape.clone(),
                offsets,
            };
            parts.push(self.variable_node(
                &format!("{full}/part_{i}"),
                full.clone(),
                Some(partition),
                part.into(),
                options.shard,
            )?);
            start += len;
        }
        let reads: Vec<Output> = parts.iter().map(|p| p.value().clone()).collect();
        let concat_name = format!("{full}/ConcatPartitions/concat");
        let value = self.at_root(|g| g.concat(&concat_name, &reads, 0));
        Ok(PartitionedVariable {
            name: full,
            parts,
            value: value?,
        })
    }

    /// Another read of `variable`'s current value (`ReadVariableOp`).
    pub fn read_variable(&mut self, name: &str, variable: &Variable) -> Result<Output> {
        self.op("ReadVariableOp", name)
            .input(variable.handle())
            .attr("dtype", variable.dtype())
            .output(variable.dtype(), variable.shape().clone())
            .build_output()
    }

    /// Assigns `value` to `variable` (`AssignVariableOp`).
    pub fn assign_variable(
        &mut self,
        name: &str,
        variable: &Variable,
        value: &Output,
    ) -> Result<Operation> {
        if value.dtype() != variable.dtype() {
            return Err(type_error(
                name,
                format!(
                    "cannot assign {} to variable {} of {}",
                    value.dtype(),
                    variable.name(),
                    variable.dtype()
                ),
            ));
        }
        self.op("AssignVariableOp", name)
            .input(variable.handle())
            .input(value)
            .attr("dtype", value.dtype())
            .build()
    }

    /// The variables (and variable parts) created so far, by node name.
    pub fn variable_names(&self) -> Vec<&str> {
        self.variables
            .iter()
            .map(|v| v.handle.node_name())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_resource_handles_with_shared_names() {
        let mut g = Graph::new();
        let w = g
            .name_scope("dense", |g| {
                g.variable("kernel", Tensor::new(&[2, 2], &[1f32, 2., 3., 4.]).unwrap())
            })
            .unwrap();
        assert_eq!(w.name(), "dense/kernel");
        assert_eq!(w.value().name(), "dense/kernel/Read/ReadVariableOp:0");
        let node = g.node("dense/kernel").unwrap();
        assert_eq!(node.op, "VarHandleOp");
        let shared = node.attr.get("shared_name").unwrap();
        assert_eq!(crate::graph::Attr::from("dense/kernel").to_proto(), *shared);
        assert!(!node.attr.contains_key("container"));
        assert_eq!(g.variable_names(), vec!["dense/kernel"]);
    }

    #[test]
    fn variables_ignore_enclosing_control_dependencies() {
        let mut g = Graph::new();
        let first = g.no_op("first").unwrap();
        let v = g
            .with_control_dependencies(&[&first], |g| g.variable("v", Tensor::scalar(1i32)))
            .unwrap();
        assert!(g.node(v.name()).unwrap().input.is_empty());
        assert_eq!(g.node("v/Read/ReadVariableOp").unwrap().input, vec!["v"]);
    }

    #[derive(Debug)]
    struct Bad(DType, Vec<i64>);

    impl crate::tensor::TensorSource for Bad {
        fn dtype(&self) -> DType {
            self.0
        }
        fn shape(&self) -> &[i64] {
            &self.1
        }
        fn open(&self) -> Result<crate::tensor::SourceData<'_>> {
            Ok(crate::tensor::SourceData::Bytes(Vec::new().into()))
        }
    }

    #[test]
    fn streamed_values_need_a_fixed_size() {
        let mut g = Graph::new();
        for (dtype, shape, what) in [
            (DType::String, vec![2], "no fixed element size"),
            (DType::Float, vec![-1, 2], "negative dimension"),
            (DType::Double, vec![1 << 40, 1 << 40], "too large"),
        ] {
            let err = g
                .variable("v", VariableValue::from_source(Bad(dtype, shape)))
                .unwrap_err();
            assert!(err.to_string().contains(what), "{err}");
        }
        let v = g
            .variable("v", VariableValue::from_source(Bad(DType::Half, vec![])))
            .unwrap();
        assert_eq!(v.dtype(), DType::Half);
        assert!(g.variables[0].value.as_tensor().is_none());
    }

    #[test]
    fn partitions_follow_fixed_size_partitioner() {
        let mut g = Graph::new();
        let values: Vec<f32> = (0..15).map(|v| v as f32).collect();
        let p = g
            .partitioned_variable(
                "p",
                Tensor::new(&[5, 3], &values).unwrap(),
                2,
                VariableOptions::default(),
            )
            .unwrap();
        assert_eq!(p.parts()[0].shape(), &Shape::new(&[3, 3]));
        assert_eq!(p.parts()[1].shape(), &Shape::new(&[2, 3]));
        assert_eq!(p.value().shape(), &Shape::new(&[5, 3]));
        assert_eq!(p.value().node_name(), "p/ConcatPartitions/concat");
        let specs: Vec<String> = g
            .variables
            .iter()
            .map(|v| v.partition.as_ref().unwrap().spec(v.value.shape()))
            .collect();
        assert_eq!(specs, vec!["5 3 0,3:0,3", "5 3 3,2:0,3"]);
        let part = g.variables[1].value.as_tensor().unwrap();
        assert_eq!(part.to_f32_vec().unwrap()[0], 9.0);
        assert!(
            g.partitioned_variable("q", Tensor::scalar(1f32), 2, VariableOptions::default())
                .is_err()
        );
    }
}
