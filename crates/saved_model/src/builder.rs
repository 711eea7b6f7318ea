//! `SavedModelBuilder`: MetaGraphs, variables, assets, `assets.extra/`,
//! warmup requests and fingerprint, written into a directory that
//! TensorFlow's loaders (and so TensorFlow Serving) load. What each
//! MetaGraph gets is listed on [`SavedModelBuilder`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::path::Path;

use savedmodel_proto::prost_types::Any;
use savedmodel_proto::tensorflow::{
    AssetFileDef, CollectionDef, MetaGraphDef, SavedModel, SignatureDef, TensorInfo, attr_value,
    collection_def, meta_graph_def::MetaInfoDef, tensor_info,
};
use savedmodel_proto::{deterministic, text_format};
use savedmodel_staged::{StagedDir, random_u64, sync_dir};

use crate::assets::AssetPlan;
use crate::error::{Error, Result};
use crate::fingerprint;
use crate::graph::Tensor;
use crate::graph::{Graph, Operation, Output, VariableRecord};
use crate::reader::INIT_OP_SIGNATURE_KEY;
use crate::saver;
use crate::serving::{self, SERVE_TAG, WARMUP_FILE};
use crate::signature::{self, check_classify, check_regress, init_op_signature, tensor_info};
use crate::warmup::WarmupRequests;
use savedmodel_graph::{Error as GraphError, check_asset_filename};

/// `SavedModel.saved_model_schema_version` (`kSavedModelSchemaVersion`).
pub const SAVED_MODEL_SCHEMA_VERSION: i64 = 1;
/// The collection listing assets (`kSavedModelAssetsKey`).
pub use crate::reader::ASSETS_KEY as ASSETS_COLLECTION;
/// The collection naming the init op (`kSavedModelMainOpKey`).
pub use crate::reader::MAIN_OP_KEY as MAIN_OP_COLLECTION;
/// The tag of GPU MetaGraphs.
pub const GPU_TAG: &str = "gpu";

/// One MetaGraph under construction: a graph, its tags, its signatures and
/// the ops to run once after the variables are restored.
#[derive(Clone, Debug)]
pub struct MetaGraphBuilder {
    graph: Graph,
    tags: Vec<String>,
    signatures: BTreeMap<String, SignatureDef>,
    init_ops: Vec<Operation>,
}

fn meta_error(tags: &[String], what: String) -> Error {
    Error::MetaGraph {
        tags: tags.to_vec(),
        what,
    }
}

impl MetaGraphBuilder {
    /// A MetaGraph for `graph` with tag set `tags` (e.g. `["serve"]`, or
    /// `["serve", "gpu"]`).
    pub fn new(graph: Graph, tags: &[&str]) -> Self {
        MetaGraphBuilder {
            graph,
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            signatures: BTreeMap::new(),
            init_ops: Vec::new(),
        }
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The graph, to add to it.
    pub fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }

    /// The tags.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// Adds a signature built elsewhere, after checking that each of its
    /// tensors is an output of the graph with the declared dtype.
    pub fn signature(&mut self, key: &str, def: SignatureDef) -> Result<&mut Self> {
        let fail = |what: String| Error::Signature {
            signature: key.to_owned(),
            what,
        };
        if key.is_empty() {
            return Err(fail("empty signature key".into()));
        }
        if key == INIT_OP_SIGNATURE_KEY {
            return Err(fail(
                "this key is reserved for the init op (use MetaGraphBuilder::init_op)".into(),
            ));
        }
        if self.signatures.contains_key(key) {
            return Err(fail("a signature with this key was already added".into()));
        }
        for (side, map) in [("input", &def.inputs), ("output", &def.outputs)] {
            for (alias, info) in map {
                let Some(tensor_info::Encoding::Name(name)) = &info.encoding else {
                    return Err(fail(format!("{side} '{alias}' is not a named tensor")));
                };
                let output = self
                    .graph
                    .output_by_name(name)
                    .map_err(|e| fail(format!("{side} '{alias}': {e}")))?;
                if output.dtype().as_i32() != info.dtype {
                    return Err(fail(format!(
                        "{side} '{alias}' declares dtype {}, but {name} is {}",
                        info.dtype,
                        output.dtype()
                    )));
                }
            }
        }
        match def.method_name.as_str() {
            serving::CLASSIFY_METHOD_NAME => check_classify(key, &def)?,
            serving::REGRESS_METHOD_NAME => check_regress(key, &def)?,
            _ => {}
        }
        self.signatures.insert(key.to_owned(), def);
        Ok(self)
    }

    /// Adds a predict signature (see [`signature::predict_signature`]).
    pub fn predict_signature(
        &mut self,
        key: &str,
        inputs: &[(&str, &Output)],
        outputs: &[(&str, &Output)],
    ) -> Result<&mut Self> {
        let def = signature::predict_signature(key, inputs, outputs)?;
        self.signature(key, def)
    }

    /// Adds a classify signature (see [`signature::classify_signature`]).
    pub fn classify_signature(
        &mut self,
        key: &str,
        input: &Output,
        classes: Option<&Output>,
        scores: Option<&Output>,
    ) -> Result<&mut Self> {
        let def = signature::classify_signature(key, input, classes, scores)?;
        self.signature(key, def)
    }

    /// Adds a regress signature (see [`signature::regress_signature`]).
    pub fn regress_signature(
        &mut self,
        key: &str,
        input: &Output,
        output: &Output,
    ) -> Result<&mut Self> {
        let def = signature::regress_signature(key, input, output)?;
        self.signature(key, def)
    }

    /// Adds an op to run once when the model is loaded, after the variables
    /// are restored (besides the table initializers, which always run).
    pub fn init_op(&mut self, op: &Operation) -> &mut Self {
        self.init_ops.push(op.clone());
        self
    }

    /// The signatures added so far.
    pub fn signatures(&self) -> &BTreeMap<String, SignatureDef> {
        &self.signatures
    }
}

/// How `saved_model.pb` / `saved_model.pbtxt` are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SavedModelFormat {
    /// `saved_model.pb` (binary, deterministic).
    #[default]
    Binary,
    /// `saved_model.pbtxt` only (text format; TensorFlow reads it when there
    /// is no `.pb`).
    Text,
    /// Both files (loaders read the `.pb`).
    BinaryAndText,
}

/// A MetaGraph ready to be written.
#[derive(Clone, Debug)]
struct FinishedMetaGraph {
    def: MetaGraphDef,
}

/// Builds a SavedModel directory (the crate's README has a complete
/// example).
///
/// What a MetaGraph gets (docs/formats.md, sections 9 "The SavedModel
/// directory", 13 "GraphDef nodes: attrs, defaults and the op registry", 15
/// "Variables and the saver subgraph" and 16 "Loading a SavedModel: the
/// loader's steps"):
///
/// * its graph, with default-valued attrs stripped and
///   `meta_info_def.stripped_default_attrs` set;
/// * when it has variables, the sharded V2 saver subgraph and `SaverDef`
///   ([`add_saver`](crate::add_saver)); all MetaGraphs share one checkpoint in
///   `variables/variables`, so a variable present in several graphs must
///   have the same value in each;
/// * when it has table initializers or init ops, one init op, named by the
///   `__saved_model_init_op` signature and the `saved_model_main_op`
///   collection, as `tf.saved_model.save` writes them;
/// * its assets, each tensor once, in `asset_file_def` and in the
///   `saved_model_assets` collection, the files copied into `assets/`;
/// * its signatures, each checked against the graph (every tensor exists
///   with the declared dtype) and, for classify and regress, against
///   TensorFlow Serving's rules.
///
/// [`SavedModelBuilder::write_to`] refuses a non-empty directory and never
/// leaves a half-written SavedModel: it writes everything into a staging
/// sibling whose name is not a number (TensorFlow Serving ignores it) and
/// renames it into place once complete and synced.
///
/// Variables' values are shared, never copied: the builder keeps the
/// graphs' [`VariableValue`](crate::graph::VariableValue)s (reference
/// counted), and writing streams each into the checkpoint (see
/// [`add_saver`](crate::add_saver)). Beyond the values the caller gave (a
/// [`TensorSource`](crate::graph::TensorSource) holds none in memory), the
/// builder needs the encoded MetaGraphs and the checkpoint writer's 1 MiB
/// buffer and index entries.
#[derive(Clone, Debug)]
pub struct SavedModelBuilder {
    meta_graphs: Vec<FinishedMetaGraph>,
    variables: Vec<VariableRecord>,
    assets: AssetPlan,
    extra: BTreeMap<String, Vec<u8>>,
    warmup: Option<WarmupRequests>,
    fingerprint: bool,
    format: SavedModelFormat,
    fsync: bool,
}

impl Default for SavedModelBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// What a record is saved under: the checkpoint name, and the offsets of a
/// partitioned variable's part.
fn var_key(r: &VariableRecord) -> (&str, Option<&[i64]>) {
    (
        &r.checkpoint_name,
        r.partition.as_ref().map(|p| p.offsets.as_slice()),
    )
}

/// The positions in `records` (a new MetaGraph's variables) of the records
/// the checkpoint does not hold yet, in order. A record saved under the
/// same key as one in `known` (or an earlier one of `records`) must have
/// the same partition and value; a checkpoint name may not be used by a
/// whole variable and a partitioned one, or with two dtypes.
fn new_variables(
    tags: &[String],
    known: &[VariableRecord],
    records: &[VariableRecord],
) -> Result<Vec<usize>> {
    let mut by_key: HashMap<(&str, Option<&[i64]>), &VariableRecord> = HashMap::new();
    let mut by_name: HashMap<&str, Vec<&VariableRecord>> = HashMap::new();
    for r in known {
        by_key.entry(var_key(r)).or_insert(r);
        by_name.entry(&r.checkpoint_name).or_default().push(r);
    }
    let mut added = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if let Some(m) = by_key.get(&var_key(r)) {
            if m.partition != r.partition || !m.value.same_value(&r.value)? {
                return Err(meta_error(
                    tags,
                    format!(
                        "variable '{}' differs from the one another meta graph saves under that name",
                        r.checkpoint_name
                    ),
                ));
            }
            continue;
        }
        let same_name = by_name.entry(&r.checkpoint_name).or_default();
        let clash = same_name.iter().any(|m| {
            m.partition.is_some() != r.partition.is_some() || m.value.dtype() != r.value.dtype()
        });
        if clash {
            return Err(meta_error(
                tags,
                format!(
                    "checkpoint key '{}' is used by two different variables",
                    r.checkpoint_name
                ),
            ));
        }
        same_name.push(r);
        by_key.insert(var_key(r), r);
        added.push(i);
    }
    Ok(added)
}

impl SavedModelBuilder {
    /// An empty SavedModel: binary `saved_model.pb`, no fingerprint, files
    /// synced to disk.
    pub fn new() -> Self {
        SavedModelBuilder {
            meta_graphs: Vec::new(),
            variables: Vec::new(),
            assets: AssetPlan::default(),
            extra: BTreeMap::new(),
            warmup: None,
            fingerprint: false,
            format: SavedModelFormat::Binary,
            fsync: true,
        }
    }

    /// Whether to write `fingerprint.pb` (default false, as TensorFlow 1's
    /// `SavedModelBuilder`; `tf.saved_model.save` writes one).
    pub fn fingerprint(&mut self, write: bool) -> &mut Self {
        self.fingerprint = write;
        self
    }

    /// Which of `saved_model.pb` / `saved_model.pbtxt` to write.
    pub fn format(&mut self, format: SavedModelFormat) -> &mut Self {
        self.format = format;
        self
    }

    /// Whether to fsync files and directories (default true).
    pub fn fsync(&mut self, fsync: bool) -> &mut Self {
        self.fsync = fsync;
        self
    }

    /// Adds a MetaGraph: builds its saver and init op, places its assets and
    /// merges its variables into the shared checkpoint.
    pub fn add_meta_graph(&mut self, meta: MetaGraphBuilder) -> Result<&mut Self> {
        let MetaGraphBuilder {
            mut graph,
            tags,
            mut signatures,
            init_ops,
        } = meta;
        let tag_set: BTreeSet<&String> = tags.iter().collect();
        for other in &self.meta_graphs {
            let other_tags = other.def.meta_info_def.as_ref().map(|m| &m.tags);
            if other_tags.is_some_and(|t| t.iter().collect::<BTreeSet<_>>() == tag_set) {
                return Err(meta_error(
                    &tags,
                    "a meta graph with this tag set was already added".into(),
                ));
            }
        }

        // Variables: one checkpoint for every MetaGraph. The records this
        // graph adds are picked out here and moved into the builder once
        // the whole MetaGraph is accepted; no value is copied (values are
        // shared, and compared without a copy when two graphs save the same
        // name).
        let added = new_variables(&tags, &self.variables, graph.variables())?;
        check_partitions(
            &tags,
            self.variables
                .iter()
                .chain(added.iter().map(|&i| &graph.variables()[i])),
        )?;

        let saver_def = saver::add_saver(&mut graph)?;
        let init_name = build_init_op(&mut graph, &init_ops)?;
        if let Some(name) = &init_name {
            signatures.insert(INIT_OP_SIGNATURE_KEY.to_owned(), init_op_signature(name));
        }

        // Assets: each tensor once; files placed across all MetaGraphs.
        let mut plan = self.assets.clone();
        let mut asset_defs: Vec<AssetFileDef> = Vec::new();
        let mut renamed: Vec<(String, String)> = Vec::new();
        for record in graph.assets() {
            let name = record.tensor.name();
            let filename = plan.place(record)?;
            if asset_defs
                .iter()
                .any(|a| matches!(&a.tensor_info, Some(TensorInfo { encoding: Some(tensor_info::Encoding::Name(n)), .. }) if *n == name))
            {
                continue;
            }
            asset_defs.push(AssetFileDef {
                tensor_info: Some(tensor_info(&record.tensor)),
                filename: filename.clone(),
            });
            renamed.push((record.tensor.node_name().to_owned(), filename));
        }

        let mut graph_def = graph.to_graph_def();
        for (node, filename) in &renamed {
            if let Some(n) = graph_def.node.iter_mut().find(|n| n.name == *node) {
                if let Some(v) = n.attr.get_mut("value") {
                    v.value = Some(attr_value::Value::Tensor(
                        Tensor::string(filename).to_proto(),
                    ));
                }
            }
        }

        let mut collections = BTreeMap::new();
        if let Some(name) = &init_name {
            collections.insert(
                MAIN_OP_COLLECTION.to_owned(),
                CollectionDef {
                    kind: Some(collection_def::Kind::NodeList(collection_def::NodeList {
                        value: vec![name.clone()],
                    })),
                },
            );
        }
        if !asset_defs.is_empty() {
            let value = asset_defs
                .iter()
                .map(|a| Any {
                    type_url: "type.googleapis.com/tensorflow.AssetFileDef".to_owned(),
                    value: prost::Message::encode_to_vec(a),
                })
                .collect();
            collections.insert(
                ASSETS_COLLECTION.to_owned(),
                CollectionDef {
                    kind: Some(collection_def::Kind::AnyList(collection_def::AnyList {
                        value,
                    })),
                },
            );
        }

        let def = MetaGraphDef {
            meta_info_def: Some(MetaInfoDef {
                tags: tags.clone(),
                stripped_default_attrs: true,
                ..Default::default()
            }),
            graph_def: Some(graph_def),
            saver_def,
            collection_def: collections,
            signature_def: signatures,
            asset_file_def: asset_defs,
            object_graph_def: None,
        };
        let mut records = graph.take_variables();
        let mut position = 0;
        records.retain(|_| {
            let keep = added.binary_search(&position).is_ok();
            position += 1;
            keep
        });
        self.variables.extend(records);
        self.assets = plan;
        self.meta_graphs.push(FinishedMetaGraph { def });
        Ok(self)
    }

    /// Adds a file under `assets.extra/` (ignored by TensorFlow, read by
    /// TensorFlow Serving and other tools). `path` is relative, `/`
    /// separated, and may not leave `assets.extra/`.
    pub fn asset_extra(&mut self, path: &str, contents: impl Into<Vec<u8>>) -> Result<&mut Self> {
        for component in path.split('/') {
            check_asset_filename(component).map_err(|_| GraphError::Asset {
                name: path.to_owned(),
                what: "assets.extra path must be relative, with plain names between '/'".into(),
            })?;
        }
        let full = format!("assets.extra/{path}");
        if full == WARMUP_FILE {
            return Err(GraphError::Asset {
                name: path.to_owned(),
                what: "use SavedModelBuilder::warmup for the warmup file".into(),
            }
            .into());
        }
        if self
            .extra
            .keys()
            .any(|k| k.starts_with(&format!("{path}/")) || path.starts_with(&format!("{k}/")))
        {
            return Err(GraphError::Asset {
                name: path.to_owned(),
                what: "a file and a directory of assets.extra would have the same name".into(),
            }
            .into());
        }
        self.extra.insert(path.to_owned(), contents.into());
        Ok(self)
    }

    /// Sets the warmup requests (`assets.extra/tf_serving_warmup_requests`).
    /// They are checked when written against the MetaGraph TensorFlow
    /// Serving loads by default (tag set `{serve}`, else the first).
    pub fn warmup(&mut self, requests: WarmupRequests) -> &mut Self {
        self.warmup = Some(requests);
        self
    }

    /// The `SavedModel` proto as it will be written.
    pub fn saved_model(&self) -> SavedModel {
        SavedModel {
            saved_model_schema_version: SAVED_MODEL_SCHEMA_VERSION,
            meta_graphs: self.meta_graphs.iter().map(|m| m.def.clone()).collect(),
        }
    }

    fn check(&self) -> Result<()> {
        if self.meta_graphs.is_empty() {
            return Err(meta_error(
                &[],
                "a SavedModel needs at least one meta graph".into(),
            ));
        }
        if let Some(warmup) = &self.warmup {
            let serve: BTreeSet<&str> = [SERVE_TAG].into_iter().collect();
            let target = self
                .meta_graphs
                .iter()
                .find(|m| {
                    m.def.meta_info_def.as_ref().is_some_and(|i| {
                        i.tags.iter().map(String::as_str).collect::<BTreeSet<_>>() == serve
                    })
                })
                .unwrap_or(&self.meta_graphs[0]);
            for (record, log) in warmup.logs().iter().enumerate() {
                let problems = serving::log_kind_rules(log)
                    .into_iter()
                    .chain(serving::request_rules(log, &target.def));
                if let Some(problem) = problems.into_iter().next() {
                    return Err(Error::Warmup {
                        record,
                        what: problem.message,
                    });
                }
            }
        }
        Ok(())
    }

    /// Writes the SavedModel to `dir`, which must not exist or be an empty
    /// directory: everything is written into a staging sibling, synced, and
    /// renamed to `dir`. On failure nothing is left behind.
    pub fn write_to(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        self.check()?;
        match fs::symlink_metadata(dir) {
            Ok(meta) if meta.is_dir() => {
                if !is_empty_dir(dir)? {
                    return Err(Error::ExportDirNotEmpty {
                        path: dir.to_owned(),
                    });
                }
            }
            Ok(_) => {
                return Err(Error::ExportDirNotEmpty {
                    path: dir.to_owned(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Io {
                    op: "inspecting",
                    path: dir.to_owned(),
                    source,
                });
            }
        }
        if dir.file_name().and_then(|n| n.to_str()).is_none() {
            return Err(Error::Io {
                op: "writing",
                path: dir.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the export path has no UTF-8 final component",
                ),
            });
        }
        let parent = savedmodel_staged::parent_dir(dir);
        savedmodel_staged::create_dir_all(parent, self.fsync)
            .map_err(|e| e.into_source())
            .map_err(io("creating", parent))?;
        // Removed with what is in it if anything below fails.
        let staging = StagedDir::create(dir)?;
        self.write_into_empty_dir(staging.path())?;
        staging.commit(dir, self.fsync)?;
        Ok(())
    }

    /// Writes the SavedModel into `dir`, an existing empty directory (for a
    /// caller that stages and publishes the directory itself, such as
    /// `savedmodel-layout`). On failure, what was written is removed again.
    pub fn write_into_empty_dir(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        self.check()?;
        if !is_empty_dir(dir)? {
            return Err(Error::ExportDirNotEmpty {
                path: dir.to_owned(),
            });
        }
        let result = self.write_files(dir);
        if result.is_err() {
            if let Ok(entries) = fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    let _ = if path.is_dir() {
                        fs::remove_dir_all(&path)
                    } else {
                        fs::remove_file(&path)
                    };
                }
            }
        }
        result
    }

    fn write_files(&self, dir: &Path) -> Result<()> {
        let model = self.saved_model();
        let pb = deterministic::encode(&model).map_err(|source| Error::Encode {
            message: "tensorflow.SavedModel",
            source,
        })?;
        if matches!(
            self.format,
            SavedModelFormat::Binary | SavedModelFormat::BinaryAndText
        ) {
            write_file(
                &dir.join(savedmodel_proto::SAVED_MODEL_FILENAME_PB),
                &pb,
                self.fsync,
            )?;
        }
        if matches!(
            self.format,
            SavedModelFormat::Text | SavedModelFormat::BinaryAndText
        ) {
            let text = text_format::print(&model).map_err(|source| Error::Encode {
                message: "tensorflow.SavedModel",
                source,
            })?;
            write_file(
                &dir.join(savedmodel_proto::SAVED_MODEL_FILENAME_PBTXT),
                text.as_bytes(),
                self.fsync,
            )?;
        }

        let variables = dir.join("variables");
        fs::create_dir(&variables).map_err(io("creating", &variables))?;
        let prefix = variables.join("variables");
        if !self.variables.is_empty() {
            saver::write_checkpoint(&self.variables, &prefix, self.fsync)?;
        }

        if !self.assets.files.is_empty() {
            let assets = dir.join("assets");
            fs::create_dir(&assets).map_err(io("creating", &assets))?;
            for (name, source) in &self.assets.files {
                savedmodel_graph::check_asset_source(source)?;
                let bytes = fs::read(source).map_err(io("reading asset", source))?;
                write_file(&assets.join(name), &bytes, self.fsync)?;
            }
            if self.fsync {
                sync_dir(&assets)?;
            }
        }

        let warmup = self.warmup.as_ref().filter(|w| !w.is_empty());
        if !self.extra.is_empty() || warmup.is_some() {
            let extra = dir.join("assets.extra");
            fs::create_dir(&extra).map_err(io("creating", &extra))?;
            for (path, bytes) in &self.extra {
                let target = extra.join(path);
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(io("creating", parent))?;
                }
                write_file(&target, bytes, self.fsync)?;
            }
            if let Some(w) = warmup {
                write_file(&dir.join(WARMUP_FILE), &w.to_tfrecord(), self.fsync)?;
            }
            if self.fsync {
                // Every directory under it (`asset_extra("a/b/c")`), the
                // deepest first, then itself.
                sync_dirs_under(&extra)?;
            }
        }

        if self.fingerprint {
            let index = if self.variables.is_empty() {
                None
            } else {
                let path = savedmodel_checkpoint::index_file_name(&prefix);
                Some(fs::read(&path).map_err(io("reading", &path))?)
            };
            let mut def = fingerprint::fingerprint_from_bytes(&pb, index.as_deref())?;
            def.uuid = (u128::from(random_u64()) << 64 | u128::from(random_u64())).to_string();
            let bytes = deterministic::encode(&def).map_err(|source| Error::Encode {
                message: "tensorflow.FingerprintDef",
                source,
            })?;
            write_file(&dir.join("fingerprint.pb"), &bytes, self.fsync)?;
        }
        if self.fsync {
            // A one-shard checkpoint writer syncs `variables/` last, after
            // renaming its files into it; an empty `variables/`, or one a
            // sharded writer has removed its temporary directory from, is
            // synced here.
            let one_shard = self
                .variables
                .first()
                .is_some_and(|first| self.variables.iter().all(|r| r.shard == first.shard));
            if !one_shard {
                sync_dir(&variables)?;
            }
            sync_dir(dir)?;
        }
        Ok(())
    }
}

/// Partitioned variables: every part of one name agrees on dtype and full
/// shape, and the parts tile the full tensor without overlap.
fn check_partitions<'a>(
    tags: &[String],
    records: impl IntoIterator<Item = &'a VariableRecord>,
) -> Result<()> {
    let mut by_name: BTreeMap<&str, Vec<&VariableRecord>> = BTreeMap::new();
    for r in records.into_iter().filter(|r| r.partition.is_some()) {
        by_name.entry(&r.checkpoint_name).or_default().push(r);
    }
    for (name, parts) in by_name {
        let first = parts[0];
        let full = first
            .partition
            .as_ref()
            .map(|p| p.full_shape.clone())
            .unwrap_or_default();
        let mut covered: i128 = 0;
        for p in &parts {
            let part = p.partition.as_ref().map(|q| &q.full_shape);
            if p.value.dtype() != first.value.dtype() || part != Some(&full) {
                return Err(meta_error(
                    tags,
                    format!("parts of variable '{name}' disagree on dtype or full shape"),
                ));
            }
            covered += p
                .value
                .shape()
                .iter()
                .map(|&d| i128::from(d))
                .product::<i128>();
        }
        let total: i128 = full.iter().map(|&d| i128::from(d)).product();
        if covered != total {
            return Err(meta_error(
                tags,
                format!("the parts of variable '{name}' cover {covered} of its {total} elements"),
            ));
        }
    }
    Ok(())
}

/// Builds the init op: `init_all_tables` (a `NoOp` after every table
/// initializer, as `tf.compat.v1.tables_initializer` builds), grouped with
/// the extra init ops into `main_op` when there are both. Returns its name.
fn build_init_op(graph: &mut Graph, extra: &[Operation]) -> Result<Option<String>> {
    let tables: Vec<Operation> = graph.table_initializers().to_vec();
    let mut ops: Vec<Operation> = Vec::new();
    if !tables.is_empty() {
        let refs: Vec<&Operation> = tables.iter().collect();
        ops.push(graph.at_root(|g| g.group("init_all_tables", &refs))?);
    }
    for op in extra {
        if graph
            .operation(op.name())
            .is_none_or(|o| o.op_type() != op.op_type())
        {
            return Err(GraphError::Graph {
                node: op.name().to_owned(),
                what: "init op is not a node of this meta graph's graph".into(),
            }
            .into());
        }
    }
    ops.extend(extra.iter().cloned());
    match ops.len() {
        0 => Ok(None),
        1 => Ok(Some(ops[0].name().to_owned())),
        _ => {
            let refs: Vec<&Operation> = ops.iter().collect();
            Ok(Some(
                graph
                    .at_root(|g| g.group("main_op", &refs))?
                    .name()
                    .to_owned(),
            ))
        }
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn is_empty_dir(dir: &Path) -> Result<bool> {
    let mut entries = fs::read_dir(dir).map_err(io("listing", dir))?;
    Ok(entries.next().is_none())
}

/// Fsyncs every directory under `root` (not following symbolic links),
/// deepest first, then `root`.
fn sync_dirs_under(root: &Path) -> Result<()> {
    let mut dirs = vec![root.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        let entries = fs::read_dir(&dirs[i]).map_err(io("listing", &dirs[i]))?;
        for entry in entries {
            let entry = entry.map_err(io("listing", &dirs[i]))?;
            if entry.file_type().map_err(io("listing", &dirs[i]))?.is_dir() {
                dirs.push(entry.path());
            }
        }
        i += 1;
    }
    for dir in dirs.iter().rev() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8], fsync: bool) -> Result<()> {
    let mut file = fs::File::create(path).map_err(io("creating", path))?;
    file.write_all(bytes).map_err(io("writing", path))?;
    if fsync {
        savedmodel_staged::sync_file(&file, path)
            .map_err(|e| e.into_source())
            .map_err(io("syncing", path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
