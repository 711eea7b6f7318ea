//! Checkpoint I/O and the string ops the saver uses
//! (`tensorflow/core/ops/io_ops.cc`, `string_ops.cc`, `no_op.cc`).

use savedmodel_checkpoint::DType;

use super::{expect_dtype, type_error};
use crate::error::Result;
use crate::graph::{Graph, Operation, Output, Shape};

impl Graph {
    /// An op that does nothing (`NoOp`); with control dependencies it groups
    /// other ops (see [`Graph::group`]).
    pub fn no_op(&mut self, name: &str) -> Result<Operation> {
        self.op("NoOp", name).build()
    }

    /// Writes `tensors` to the checkpoint `prefix` under `tensor_names`, each
    /// whole (`""`) or as a slice of a larger tensor
    /// (`shape_and_slices`, e.g. `"5 3 0,3:0,3"`) (`SaveV2`).
    pub fn save_v2(
        &mut self,
        name: &str,
        prefix: &Output,
        tensor_names: &Output,
        shape_and_slices: &Output,
        tensors: &[Output],
    ) -> Result<Operation> {
        for x in [prefix, tensor_names, shape_and_slices] {
            expect_dtype("SaveV2", name, x, &[DType::String])?;
        }
        if tensors.is_empty() {
            return Err(type_error(name, "SaveV2 needs at least one tensor".into()));
        }
        self.op("SaveV2", name)
            .input(prefix)
            .input(tensor_names)
            .input(shape_and_slices)
            .inputs(tensors)
            .attr(
                "dtypes",
                tensors.iter().map(Output::dtype).collect::<Vec<_>>(),
            )
            .build()
    }

    /// Reads tensors of `dtypes` from the checkpoint `prefix` (`RestoreV2`).
    /// `shapes` are the static shapes to give the outputs (one per dtype).
    pub fn restore_v2(
        &mut self,
        name: &str,
        prefix: &Output,
        tensor_names: &Output,
        shape_and_slices: &Output,
        dtypes_and_shapes: &[(DType, Shape)],
    ) -> Result<Vec<Output>> {
        for x in [prefix, tensor_names, shape_and_slices] {
            expect_dtype("RestoreV2", name, x, &[DType::String])?;
        }
        if dtypes_and_shapes.is_empty() {
            return Err(type_error(
                name,
                "RestoreV2 needs at least one tensor".into(),
            ));
        }
        let mut b = self
            .op("RestoreV2", name)
            .input(prefix)
            .input(tensor_names)
            .input(shape_and_slices)
            .attr(
                "dtypes",
                dtypes_and_shapes
                    .iter()
                    .map(|(d, _)| *d)
                    .collect::<Vec<_>>(),
            );
        for (dtype, shape) in dtypes_and_shapes {
            b = b.output(*dtype, shape.clone());
        }
        Ok(b.build()?.outputs().to_vec())
    }

    /// Merges the checkpoints `checkpoint_prefixes` (a 1-D string tensor)
    /// into `destination_prefix` (`MergeV2Checkpoints`).
    pub fn merge_v2_checkpoints(
        &mut self,
        name: &str,
        checkpoint_prefixes: &Output,
        destination_prefix: &Output,
    ) -> Result<Operation> {
        for x in [checkpoint_prefixes, destination_prefix] {
            expect_dtype("MergeV2Checkpoints", name, x, &[DType::String])?;
        }
        self.op("MergeV2Checkpoints", name)
            .input(checkpoint_prefixes)
            .input(destination_prefix)
            .build()
    }

    /// `"<basename>-<shard>-of-<num_shards>"` with 5-digit numbers
    /// (`ShardedFilename`).
    pub fn sharded_filename(
        &mut self,
        name: &str,
        basename: &Output,
        shard: &Output,
        num_shards: &Output,
    ) -> Result<Output> {
        expect_dtype("ShardedFilename", name, basename, &[DType::String])?;
        expect_dtype("ShardedFilename", name, shard, &[DType::Int32])?;
        expect_dtype("ShardedFilename", name, num_shards, &[DType::Int32])?;
        self.op("ShardedFilename", name)
            .input(basename)
            .input(shard)
            .input(num_shards)
            .output(DType::String, Shape::scalar())
            .build_output()
    }

    /// The concatenation of string tensors (`StringJoin`).
    pub fn string_join(
        &mut self,
        name: &str,
        inputs: &[Output],
        separator: &str,
    ) -> Result<Output> {
        let mut shape = Shape::scalar();
        for x in inputs {
            expect_dtype("StringJoin", name, x, &[DType::String])?;
            shape = shape.broadcast(x.shape()).unwrap_or_default();
        }
        self.op("StringJoin", name)
            .inputs(inputs)
            .attr("N", inputs.len() as i64)
            .attr("separator", separator)
            .output(DType::String, shape)
            .build_output()
    }

    /// Whether each string matches the regular expression `pattern` whole
    /// (`StaticRegexFullMatch`).
    pub fn static_regex_full_match(
        &mut self,
        name: &str,
        input: &Output,
        pattern: &str,
    ) -> Result<Output> {
        expect_dtype("StaticRegexFullMatch", name, input, &[DType::String])?;
        self.op("StaticRegexFullMatch", name)
            .input(input)
            .attr("pattern", pattern)
            .output(DType::Bool, input.shape().clone())
            .build_output()
    }

    /// Numbers formatted as strings (`AsString`, default formatting).
    pub fn as_string(&mut self, name: &str, input: &Output) -> Result<Output> {
        self.op("AsString", name)
            .input(input)
            .attr("T", input.dtype())
            .output(DType::String, input.shape().clone())
            .build_output()
    }
}
