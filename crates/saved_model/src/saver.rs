//! The saver subgraph and the variables checkpoint.
//!
//! [`add_saver`] builds, for the variables of a graph, the nodes
//! `tf.compat.v1.train.Saver(sharded=True, write_version=V2)` builds
//! (`_AddShardedSaveOpsForV2` and `_AddShardedRestoreOps` in
//! `tensorflow/python/training/saver.py`; node by node in docs/formats.md,
//! section 15 "Variables and the saver subgraph"),
//! and the matching `SaverDef`. TensorFlow's loaders run its restore op to
//! load the variables, and TensorFlow can run its save path to write them
//! again (`save/Identity:0` fed with a prefix): `SaveV2` per shard into
//! `<prefix>_temp/part-XXXXX-of-YYYYY`, then `MergeV2Checkpoints` into
//! `<prefix>`. Partitioned variables are saved as slices of one tensor:
//! `tensor_names` repeats the full name and `shape_and_slices` carries each
//! part's `"5 3 0,3:0,3"` spec.
//!
//! The builder then writes the same variables with
//! `savedmodel-checkpoint`, one data file per shard, in the order the
//! `SaveV2` ops list them (so the files match what TensorFlow would write).
//! Each value is written from where it is: a tensor's bytes in one piece, a
//! [`TensorSource`](crate::graph::TensorSource) streamed through the
//! writer's 1 MiB buffer (a borrowed slice, such as a memory-mapped weights
//! file, goes to the data file without an intermediate copy). Writing holds
//! no copy of any value: besides the values themselves, memory is the
//! writer's buffer and about 100 bytes of index entry per variable.

use std::collections::BTreeMap;
use std::path::Path;

use savedmodel_checkpoint::{
    BundleWriter, DType, Extent, ShardedBundleWriter, TensorSlice, WriterOptions,
};
use savedmodel_proto::tensorflow::{SaverDef, saver_def::CheckpointFormatVersion};

use crate::error::{Error, Result};
use crate::graph::{Graph, Operation, Output, Shape, VariableRecord};
use crate::graph::{Tensor, TensorElements};

type CheckpointResult<T> = std::result::Result<T, savedmodel_checkpoint::Error>;

/// `SaverDef.max_to_keep` as `tf.compat.v1.train.Saver` sets it.
const MAX_TO_KEEP: i32 = 5;
/// `SaverDef.keep_checkpoint_every_n_hours` as `tf.compat.v1.train.Saver` sets it.
const KEEP_EVERY_N_HOURS: f32 = 10000.0;

/// The device TensorFlow's saver pins its file-name ops to.
const CPU_ANY: &str = "/device:CPU:*";
/// The device TensorFlow's saver pins its save and restore ops to.
const CPU_0: &str = "/device:CPU:0";

/// One tensor the saver writes: a whole variable or one part.
struct Saved<'a> {
    record: &'a VariableRecord,
    spec: String,
}

/// The records of each shard, shards numbered densely in order, each
/// shard's tensors sorted by (checkpoint name, slice offsets) as
/// TensorFlow's saver sorts saveables.
fn shards(records: &[VariableRecord]) -> Vec<Vec<Saved<'_>>> {
    let mut by_shard: BTreeMap<usize, Vec<Saved<'_>>> = BTreeMap::new();
    for r in records {
        let spec = r
            .partition
            .as_ref()
            .map(|p| p.spec(r.value.shape()))
            .unwrap_or_default();
        by_shard
            .entry(r.shard)
            .or_default()
            .push(Saved { record: r, spec });
    }
    by_shard
        .into_values()
        .map(|mut v| {
            v.sort_by(|a, b| {
                (
                    &a.record.checkpoint_name,
                    a.record.partition.as_ref().map(|p| &p.offsets),
                )
                    .cmp(&(
                        &b.record.checkpoint_name,
                        b.record.partition.as_ref().map(|p| &p.offsets),
                    ))
            });
            v
        })
        .collect()
}

fn strings(values: Vec<String>) -> Tensor {
    Tensor::string_vector(&values)
}

/// The `tensor_names` and `shape_and_slices` constants of the `SaveV2` or
/// `RestoreV2` node named `op` for one shard (both ops take the same lists).
fn names_and_specs(g: &mut Graph, op: &str, shard: &[Saved<'_>]) -> Result<(Output, Output)> {
    let names = g.aux_constant(
        op,
        "tensor_names",
        strings(
            shard
                .iter()
                .map(|s| s.record.checkpoint_name.clone())
                .collect(),
        ),
    )?;
    let specs = g.aux_constant(
        op,
        "shape_and_slices",
        strings(shard.iter().map(|s| s.spec.clone()).collect()),
    )?;
    Ok((names, specs))
}

/// Adds the sharded V2 saver for the graph's variables under a `save` name
/// scope and returns its `SaverDef`, or `None` when the graph has no
/// variables.
pub fn add_saver(graph: &mut Graph) -> Result<Option<SaverDef>> {
    if graph.variables().is_empty() {
        return Ok(None);
    }
    // The saver's nodes create no variables; the records are shared values,
    // so this copy is a list of handles.
    let records = graph.variables().to_vec();
    Ok(Some(build_saver(graph, &records)?))
}

fn build_saver(graph: &mut Graph, records: &[VariableRecord]) -> Result<SaverDef> {
    let shards = shards(records);
    let num_shards = shards.len();
    let def = graph.name_scope("save", |g| -> Result<SaverDef> {
        let scope = g.current_name_scope().to_owned();
        // The checkpoint prefix: "model" unless fed.
        let input = g.constant("filename/input", Tensor::string("model"))?;
        let filename = g.placeholder_with_default("filename", &input, Shape::scalar())?;
        let prefix = g.placeholder_with_default("Const", &filename, Shape::scalar())?;
        // `<prefix>_temp/part` (`<prefix>.part` on s3://), as TensorFlow
        // chooses where shards are written before the merge.
        let joined = g.with_device(CPU_ANY, |g| -> Result<Output> {
            let is_s3 = g.static_regex_full_match("StaticRegexFullMatch", &prefix, "^s3://.*")?;
            let part = g.constant("Const", Tensor::string(".part"))?;
            let temp = g.constant("Const", Tensor::string("_temp/part"))?;
            let suffix = g.select("Select", &is_s3, &part, &temp)?;
            Ok(g.string_join("StringJoin", &[prefix.clone(), suffix], "")?)
        })?;
        let num_shards_t = g.constant("num_shards", Tensor::scalar(num_shards as i32))?;

        // Save path: one SaveV2 per shard, then the merge.
        let mut sharded_names = Vec::with_capacity(num_shards);
        let mut save_deps: Vec<Operation> = Vec::with_capacity(num_shards);
        g.with_device(CPU_0, |g| -> Result<()> {
            for (k, shard) in shards.iter().enumerate() {
                let sf = g.unique_name("ShardedFilename");
                let shard_t = g.aux_constant(&sf, "shard", Tensor::scalar(k as i32))?;
                let sharded = g
                    .op("ShardedFilename", &sf)
                    .exact_name()
                    .input(&joined)
                    .input(&shard_t)
                    .input(&num_shards_t)
                    .output(DType::String, Shape::scalar())
                    .build_output()?;
                let sv = g.unique_name("SaveV2");
                let (names, specs) = names_and_specs(g, &sv, shard)?;
                let tensors: Vec<Output> = shard.iter().map(|s| s.record.read.clone()).collect();
                let save = g
                    .op("SaveV2", &sv)
                    .exact_name()
                    .input(&sharded)
                    .input(&names)
                    .input(&specs)
                    .inputs(&tensors)
                    .attr(
                        "dtypes",
                        tensors.iter().map(Output::dtype).collect::<Vec<_>>(),
                    )
                    .build()?;
                let dep = g
                    .op("Identity", "control_dependency")
                    .input(&sharded)
                    .control_input(&save)
                    .attr("T", DType::String)
                    .output(DType::String, Shape::scalar())
                    .build()?;
                sharded_names.push(sharded);
                save_deps.push(dep);
            }
            Ok(())
        })?;
        let save_tensor = g.with_device(CPU_0, |g| -> Result<Output> {
            let deps: Vec<&Operation> = save_deps.iter().collect();
            let prefixes = g.with_control_dependencies(&deps, |g| {
                g.op("Pack", "MergeV2Checkpoints/checkpoint_prefixes")
                    .inputs(&sharded_names)
                    .attr("N", sharded_names.len() as i64)
                    .attr("T", DType::String)
                    .output(DType::String, Shape::new(&[sharded_names.len() as i64]))
                    .build_output()
            })?;
            let merge = g
                .op("MergeV2Checkpoints", "MergeV2Checkpoints")
                .input(&prefixes)
                .input(&prefix)
                .build()?;
            let mut deps_all = vec![&merge];
            deps_all.extend(save_deps.iter());
            Ok(g.with_control_dependencies(&deps_all, |g| g.identity("Identity", &prefix))?)
        })?;

        // Restore path: one RestoreV2 per shard, each tensor assigned to
        // its variable, grouped per shard and then in `restore_all`.
        let mut restore_shards = Vec::with_capacity(num_shards);
        for shard in &shards {
            let rv = g.unique_name("RestoreV2");
            let restored = g.with_device(CPU_0, |g| -> Result<Vec<Output>> {
                let (names, specs) = names_and_specs(g, &rv, shard)?;
                let mut b = g
                    .op("RestoreV2", &rv)
                    .exact_name()
                    .input(&prefix)
                    .input(&names)
                    .input(&specs)
                    .attr(
                        "dtypes",
                        shard
                            .iter()
                            .map(|s| s.record.value.dtype())
                            .collect::<Vec<_>>(),
                    );
                for s in shard {
                    b = b.output(s.record.value.dtype(), Shape::new(s.record.value.shape()));
                }
                Ok(b.build()?.outputs().to_vec())
            })?;
            let mut assigns = Vec::with_capacity(shard.len());
            for (s, value) in shard.iter().zip(&restored) {
                let value = g.identity("Identity", value)?;
                let assign = g
                    .op("AssignVariableOp", "AssignVariableOp")
                    .input(&s.record.handle)
                    .input(&value)
                    .attr("dtype", value.dtype())
                    .build()?;
                assigns.push(assign);
            }
            let refs: Vec<&Operation> = assigns.iter().collect();
            restore_shards.push(g.with_device(CPU_0, |g| g.group("restore_shard", &refs))?);
        }
        let refs: Vec<&Operation> = restore_shards.iter().collect();
        let restore_all = g.group("restore_all", &refs)?;
        debug_assert!(prefix.node_name().starts_with(&scope));
        Ok(SaverDef {
            filename_tensor_name: prefix.name(),
            save_tensor_name: save_tensor.name(),
            restore_op_name: restore_all.name().to_owned(),
            max_to_keep: MAX_TO_KEEP,
            sharded: true,
            keep_checkpoint_every_n_hours: KEEP_EVERY_N_HOURS,
            version: CheckpointFormatVersion::V2 as i32,
        })
    })?;
    Ok(def)
}

/// The slice a partitioned part occupies.
fn part_slice(record: &VariableRecord) -> Option<(Vec<i64>, TensorSlice)> {
    let p = record.partition.as_ref()?;
    let extents = p
        .offsets
        .iter()
        .zip(record.value.shape())
        .map(|(&start, &length)| Extent::Range { start, length })
        .collect();
    Some((p.full_shape.clone(), TensorSlice::new(extents)))
}

/// Writes one record: a tensor in memory with one `add`, a streamed value
/// chunk by chunk through `begin_tensor` (a part of a partitioned variable
/// is always a tensor in memory, see `Graph::partitioned_variable`; a
/// streamed one would be read into memory first).
fn add_record(writer: &mut BundleWriter, record: &VariableRecord, prefix: &Path) -> Result<()> {
    let wrap = |source| Error::Checkpoint {
        prefix: prefix.to_owned(),
        source,
    };
    let name = record.checkpoint_name.as_bytes();
    let value = &record.value;
    let Some(tensor) = value.as_tensor() else {
        if let Some((full, slice)) = part_slice(record) {
            let tensor = value.to_tensor()?;
            let bytes = tensor.bytes().unwrap_or_default();
            return writer
                .add_slice(name, &full, &slice, value.dtype(), bytes)
                .map_err(wrap);
        }
        let mut sink = writer
            .begin_tensor(name, value.dtype(), value.shape())
            .map_err(wrap)?;
        value.for_each_chunk(&record.checkpoint_name, &mut |chunk| {
            sink.write_chunk(chunk).map_err(wrap)
        })?;
        return sink.finish().map_err(wrap);
    };
    let added: CheckpointResult<()> = match (part_slice(record), tensor.data()) {
        (None, TensorElements::Bytes(b)) => writer.add(name, tensor.dtype(), tensor.shape(), b),
        (None, TensorElements::Strings(s)) => writer.add_strings(name, tensor.shape(), s),
        (Some((full, slice)), TensorElements::Bytes(b)) => {
            writer.add_slice(name, &full, &slice, tensor.dtype(), b)
        }
        (Some((full, slice)), TensorElements::Strings(s)) => {
            writer.add_string_slice(name, &full, &slice, s)
        }
    };
    added.map_err(wrap)
}

/// Writes `records` as the checkpoint `prefix` (`<prefix>.index` and one
/// `<prefix>.data-XXXXX-of-YYYYY` per shard), each shard's tensors in the
/// order its `SaveV2` lists them.
pub(crate) fn write_checkpoint(
    records: &[VariableRecord],
    prefix: &Path,
    fsync: bool,
) -> Result<()> {
    let shards = shards(records);
    let mut options = WriterOptions::default();
    options.fsync = fsync;
    let wrap = |source| Error::Checkpoint {
        prefix: prefix.to_owned(),
        source,
    };
    if shards.len() == 1 {
        let mut writer = BundleWriter::create_with(prefix, options).map_err(wrap)?;
        for s in &shards[0] {
            add_record(&mut writer, s.record, prefix)?;
        }
        return writer.finish().map_err(wrap);
    }
    let mut writer = ShardedBundleWriter::create(prefix, shards.len(), options).map_err(wrap)?;
    for (shard, writer) in shards.iter().zip(writer.shards_mut()) {
        for s in shard {
            add_record(writer, s.record, prefix)?;
        }
    }
    writer.finish().map_err(wrap)
}
