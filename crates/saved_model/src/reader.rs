//! Reading SavedModels: [`SavedModel::open`] and what a MetaGraph holds.
//!
//! The steps follow TensorFlow's C++ loader (`tensorflow/cc/saved_model/
//! reader.cc`, `loader.cc`, `loader_util.cc`; docs/formats.md, section 16
//! "Loading a SavedModel: the loader's steps"):
//!
//! 1. read `saved_model.pb` if it exists, else `saved_model.pbtxt` (text
//!    format);
//! 2. pick the first MetaGraph whose tags, as a set, equal the requested set
//!    ([`SavedModel::meta_graph`]);
//! 3. assets come from `asset_file_def`, or when that is empty from the
//!    `saved_model_assets` collection of `Any`s holding
//!    `tensorflow.AssetFileDef` ([`MetaGraph::assets`]);
//! 4. the init op is the `__saved_model_init_op` signature's output, else the
//!    one node of collection `saved_model_main_op`, else of `legacy_init_op`
//!    ([`MetaGraph::init_op`]);
//! 5. variables are the TensorBundle at `variables/variables`
//!    ([`SavedModel::open_variables`]).
//!
//! Nothing here runs a graph: tensors named by signatures are resolved to
//! their node and output ([`MetaGraph::resolve`]), with the output's data
//! type computed from the op registry of TensorFlow 2.21
//! ([`crate::op_registry`]).
//!
//! ```no_run
//! use savedmodel::reader::SavedModel;
//!
//! let model = SavedModel::open("/models/half_plus_two/1")?;
//! let serve = model.meta_graph(&["serve"])?;
//! for signature in serve.signatures() {
//!     for (alias, info) in &signature.def().inputs {
//!         let tensor = serve.resolve_info(info)?;
//!         println!("{} input {alias}: node {}", signature.key(), tensor.node.name);
//!     }
//! }
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use prost::Message;
use savedmodel_checkpoint::BundleReader;

use crate::error::{Error, Result};
use crate::op_registry::{self, OpRegistry};
use crate::proto::tensorflow::collection_def::Kind;
use crate::proto::tensorflow::tensor_info::Encoding;
use crate::proto::tensorflow::{
    AssetFileDef, FunctionDef, GraphDef, MetaGraphDef, NodeDef, SaverDef, SignatureDef, TensorInfo,
    TensorShapeProto,
};
use crate::proto::{SAVED_MODEL_FILENAME_PB, SAVED_MODEL_FILENAME_PBTXT, tensorflow};

/// `variables/`: where the checkpoint lives (`kSavedModelVariablesDirectory`).
pub const VARIABLES_DIRECTORY: &str = "variables";
/// `variables`: the checkpoint's file name prefix (`kSavedModelVariablesFilename`).
pub const VARIABLES_FILENAME: &str = "variables";
/// `assets/` (`kSavedModelAssetsDirectory`).
pub const ASSETS_DIRECTORY: &str = "assets";
/// `assets.extra/` (`kSavedModelAssetsExtraDirectory`): ignored by TensorFlow,
/// read by TensorFlow Serving.
pub const ASSETS_EXTRA_DIRECTORY: &str = "assets.extra";
/// `fingerprint.pb` (`kFingerprintFilenamePb`).
pub const FINGERPRINT_FILENAME: &str = "fingerprint.pb";
/// Collection of `Any(AssetFileDef)` (`kSavedModelAssetsKey`).
pub const ASSETS_KEY: &str = "saved_model_assets";
/// Collection naming the main op (`kSavedModelMainOpKey`).
pub const MAIN_OP_KEY: &str = "saved_model_main_op";
/// Collection naming the legacy init op (`kSavedModelLegacyInitOpKey`).
pub const LEGACY_INIT_OP_KEY: &str = "legacy_init_op";
/// Signature (and its output) naming the init op (`kSavedModelInitOpSignatureKey`).
pub const INIT_OP_SIGNATURE_KEY: &str = "__saved_model_init_op";
/// The `Any` type name of an asset in [`ASSETS_KEY`].
pub const ASSET_FILE_DEF_TYPE: &str = "tensorflow.AssetFileDef";

/// Which file the SavedModel was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFileFormat {
    /// `saved_model.pb`, binary protobuf.
    Binary,
    /// `saved_model.pbtxt`, protobuf text format.
    Text,
}

/// A SavedModel directory, its `SavedModel` message read.
#[derive(Debug, Clone)]
pub struct SavedModel {
    dir: PathBuf,
    path: PathBuf,
    format: ModelFileFormat,
    proto: tensorflow::SavedModel,
}

impl SavedModel {
    /// Reads `dir/saved_model.pb`, or when it does not exist
    /// `dir/saved_model.pbtxt`, as TensorFlow's loader does.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let pb = dir.join(SAVED_MODEL_FILENAME_PB);
        match fs::read(&pb) {
            Ok(bytes) => {
                let proto = tensorflow::SavedModel::decode(bytes.as_slice()).map_err(|source| {
                    Error::Decode {
                        path: pb.clone(),
                        message: "tensorflow.SavedModel",
                        source,
                    }
                })?;
                return Ok(Self::from_proto(dir, pb, ModelFileFormat::Binary, proto));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Io {
                    op: "reading",
                    path: pb,
                    source,
                });
            }
        }
        let pbtxt = dir.join(SAVED_MODEL_FILENAME_PBTXT);
        let text = match fs::read(&pbtxt) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotASavedModel {
                    dir: dir.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(Error::Io {
                    op: "reading",
                    path: pbtxt,
                    source,
                });
            }
        };
        let text = String::from_utf8(text).map_err(|e| Error::Io {
            op: "reading",
            path: pbtxt.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, e.utf8_error()),
        })?;
        let proto = savedmodel_proto::text_format::parse::<tensorflow::SavedModel>(&text).map_err(
            |source| Error::TextFormat {
                path: pbtxt.clone(),
                message: "tensorflow.SavedModel",
                source,
            },
        )?;
        Ok(Self::from_proto(dir, pbtxt, ModelFileFormat::Text, proto))
    }

    /// A SavedModel already in memory, as if read from `path` in `dir`.
    pub fn from_proto(
        dir: impl Into<PathBuf>,
        path: impl Into<PathBuf>,
        format: ModelFileFormat,
        proto: tensorflow::SavedModel,
    ) -> Self {
        Self {
            dir: dir.into(),
            path: path.into(),
            format,
            proto,
        }
    }

    /// The SavedModel directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file the `SavedModel` message was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether that file was binary or text.
    pub fn format(&self) -> ModelFileFormat {
        self.format
    }

    /// The `SavedModel` message.
    pub fn proto(&self) -> &tensorflow::SavedModel {
        &self.proto
    }

    /// The `SavedModel` message, taken out.
    pub fn into_proto(self) -> tensorflow::SavedModel {
        self.proto
    }

    /// The tags of each MetaGraph, in file order.
    pub fn tag_sets(&self) -> Vec<Vec<String>> {
        self.proto
            .meta_graphs
            .iter()
            .map(|m| tags_of(m).to_vec())
            .collect()
    }

    /// Every MetaGraph, in file order.
    pub fn meta_graphs(&self) -> Vec<MetaGraph<'_>> {
        (0..self.proto.meta_graphs.len())
            .filter_map(|i| self.meta_graph_at(i))
            .collect()
    }

    /// MetaGraph number `index` in file order.
    pub fn meta_graph_at(&self, index: usize) -> Option<MetaGraph<'_>> {
        self.proto
            .meta_graphs
            .get(index)
            .map(|def| MetaGraph::new(self, index, def))
    }

    /// The first MetaGraph whose tags, as a set, equal `tags` as a set (order
    /// and repetitions do not matter; a superset does not match), as
    /// TensorFlow's loader picks it.
    pub fn meta_graph<S: AsRef<str>>(&self, tags: &[S]) -> Result<MetaGraph<'_>> {
        let wanted: BTreeSet<&str> = tags.iter().map(AsRef::as_ref).collect();
        for (index, def) in self.proto.meta_graphs.iter().enumerate() {
            let have: BTreeSet<&str> = tags_of(def).iter().map(String::as_str).collect();
            if have == wanted {
                return Ok(MetaGraph::new(self, index, def));
            }
        }
        Err(Error::NoMetaGraph {
            path: self.path.clone(),
            tags: wanted.into_iter().map(str::to_owned).collect(),
            available: self.tag_sets(),
        })
    }

    /// `dir/variables/variables`, the checkpoint prefix TensorFlow restores.
    pub fn variables_prefix(&self) -> PathBuf {
        self.dir.join(VARIABLES_DIRECTORY).join(VARIABLES_FILENAME)
    }

    /// `dir/variables/variables.index`; TensorFlow's loader skips the restore
    /// when it does not exist.
    pub fn variables_index(&self) -> PathBuf {
        self.dir
            .join(VARIABLES_DIRECTORY)
            .join(format!("{VARIABLES_FILENAME}.index"))
    }

    /// Opens the variables (`dir/variables/variables`, a TensorBundle) with
    /// the checkpoint crate; `None` when `variables/variables.index` does not
    /// exist (TensorFlow then restores nothing).
    pub fn open_variables(&self) -> Result<Option<BundleReader>> {
        if !self.variables_index().exists() {
            return Ok(None);
        }
        let prefix = self.variables_prefix();
        BundleReader::open(&prefix)
            .map(Some)
            .map_err(|source| Error::Checkpoint { prefix, source })
    }

    /// `dir/assets`.
    pub fn assets_dir(&self) -> PathBuf {
        self.dir.join(ASSETS_DIRECTORY)
    }

    /// `dir/assets.extra`.
    pub fn assets_extra_dir(&self) -> PathBuf {
        self.dir.join(ASSETS_EXTRA_DIRECTORY)
    }
}

fn tags_of(def: &MetaGraphDef) -> &[String] {
    def.meta_info_def
        .as_ref()
        .map_or(&[], |m| m.tags.as_slice())
}

static EMPTY_GRAPH: LazyLock<GraphDef> = LazyLock::new(GraphDef::default);

/// One MetaGraph of a [`SavedModel`], with its nodes and library functions
/// indexed by name.
#[derive(Debug, Clone)]
pub struct MetaGraph<'a> {
    model: &'a SavedModel,
    index: usize,
    def: &'a MetaGraphDef,
    nodes: HashMap<&'a str, &'a NodeDef>,
    functions: HashMap<&'a str, &'a FunctionDef>,
}

impl<'a> MetaGraph<'a> {
    fn new(model: &'a SavedModel, index: usize, def: &'a MetaGraphDef) -> Self {
        let graph = def.graph_def.as_ref().unwrap_or(&EMPTY_GRAPH);
        let mut nodes = HashMap::with_capacity(graph.node.len());
        for node in &graph.node {
            // The first of duplicate names wins; validation reports duplicates.
            nodes.entry(node.name.as_str()).or_insert(node);
        }
        let mut functions = HashMap::new();
        if let Some(library) = &graph.library {
            for function in &library.function {
                if let Some(signature) = &function.signature {
                    functions.entry(signature.name.as_str()).or_insert(function);
                }
            }
        }
        Self {
            model,
            index,
            def,
            nodes,
            functions,
        }
    }

    /// The SavedModel this MetaGraph belongs to.
    pub fn model(&self) -> &'a SavedModel {
        self.model
    }

    /// Position in the SavedModel's `meta_graphs`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The `MetaGraphDef` message.
    pub fn def(&self) -> &'a MetaGraphDef {
        self.def
    }

    /// The tags, in stored order.
    pub fn tags(&self) -> &'a [String] {
        tags_of(self.def)
    }

    /// The graph (empty when the MetaGraph has none).
    pub fn graph_def(&self) -> &'a GraphDef {
        self.def.graph_def.as_ref().unwrap_or(&EMPTY_GRAPH)
    }

    /// The node called `name` (the first one, if the name is repeated).
    pub fn node(&self, name: &str) -> Option<&'a NodeDef> {
        self.nodes.get(name).copied()
    }

    /// The library function called `name`.
    pub fn function(&self, name: &str) -> Option<&'a FunctionDef> {
        self.functions.get(name).copied()
    }

    /// The saver, if the MetaGraph has one (without it TensorFlow restores no
    /// variables).
    pub fn saver_def(&self) -> Option<&'a SaverDef> {
        self.def.saver_def.as_ref()
    }

    /// Every signature, sorted by key.
    pub fn signatures(&self) -> impl Iterator<Item = Signature<'a>> + 'a {
        self.def
            .signature_def
            .iter()
            .map(|(key, def)| Signature { key, def })
    }

    /// The signature keys, sorted.
    pub fn signature_keys(&self) -> Vec<String> {
        self.def.signature_def.keys().cloned().collect()
    }

    /// The signature with key `key`.
    pub fn signature(&self, key: &str) -> Result<Signature<'a>> {
        self.def
            .signature_def
            .get_key_value(key)
            .map(|(key, def)| Signature { key, def })
            .ok_or_else(|| Error::NoSignature {
                key: key.to_owned(),
                tags: self.tags().to_vec(),
                available: self.signature_keys(),
            })
    }

    /// The data types of `node`'s outputs, from its op's registration in
    /// TensorFlow 2.21 (or its library function's signature) and its attrs;
    /// `None` when the op is unknown or an attr it needs is missing.
    pub fn output_types(&self, node: &NodeDef) -> Option<Vec<i32>> {
        if let Some(op) = OpRegistry::tensorflow().get(&node.op) {
            return op_registry::output_types(op, &node.attr).ok();
        }
        let signature = self.function(&node.op)?.signature.as_ref()?;
        op_registry::output_types(signature, &node.attr).ok()
    }

    /// The node and output a tensor name (`node` or `node:k`) refers to,
    /// with the output's data type when it can be computed.
    pub fn resolve(&self, tensor: &str) -> Result<ResolvedTensor<'a>> {
        let parsed = TensorName::parse(tensor).ok_or_else(|| Error::BadTensorName {
            tensor: tensor.to_owned(),
        })?;
        let node = self.node(parsed.node).ok_or_else(|| Error::NoSuchNode {
            tensor: tensor.to_owned(),
            node: parsed.node.to_owned(),
        })?;
        let mut dtype = None;
        if let Some(types) = self.output_types(node) {
            let index = usize::try_from(parsed.output).ok();
            match index.and_then(|i| types.get(i)) {
                Some(&t) => dtype = Some(t),
                None => {
                    return Err(Error::NoSuchOutput {
                        tensor: tensor.to_owned(),
                        node: node.name.clone(),
                        op: node.op.clone(),
                        output: parsed.output,
                        outputs: types.len(),
                    });
                }
            }
        }
        Ok(ResolvedTensor {
            node,
            output: parsed.output,
            dtype,
        })
    }

    /// Resolves a `TensorInfo` that names one tensor ([`Encoding::Name`]).
    /// A sparse or composite `TensorInfo` is reported as a bad name; use
    /// [`tensor_names`] for those.
    pub fn resolve_info(&self, info: &TensorInfo) -> Result<ResolvedTensor<'a>> {
        match &info.encoding {
            Some(Encoding::Name(name)) => self.resolve(name),
            _ => Err(Error::BadTensorName {
                tensor: String::new(),
            }),
        }
    }

    /// The assets TensorFlow's loader feeds: `asset_file_def` when it is not
    /// empty, else the `saved_model_assets` collection (`Any`s of
    /// `tensorflow.AssetFileDef`).
    pub fn assets(&self) -> Result<Vec<ModelAsset>> {
        let dir = self.model.assets_dir();
        if !self.def.asset_file_def.is_empty() {
            return Ok(self
                .def
                .asset_file_def
                .iter()
                .enumerate()
                .map(|(i, a)| ModelAsset::new(&dir, a, AssetSource::AssetFileDef(i)))
                .collect());
        }
        let Some(collection) = self.def.collection_def.get(ASSETS_KEY) else {
            return Ok(Vec::new());
        };
        // Like TensorFlow, a collection of another kind reads as no assets.
        let Some(Kind::AnyList(list)) = &collection.kind else {
            return Ok(Vec::new());
        };
        let mut assets = Vec::with_capacity(list.value.len());
        for (i, any) in list.value.iter().enumerate() {
            let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
            if type_name != ASSET_FILE_DEF_TYPE {
                return Err(Error::BadCollection {
                    collection: ASSETS_KEY.to_owned(),
                    problem: format!(
                        "entry {i} is an Any of type '{}', expected {ASSET_FILE_DEF_TYPE}",
                        any.type_url
                    ),
                });
            }
            let def =
                AssetFileDef::decode(any.value.as_slice()).map_err(|e| Error::BadCollection {
                    collection: ASSETS_KEY.to_owned(),
                    problem: format!("entry {i} does not parse as an AssetFileDef: {e}"),
                })?;
            assets.push(ModelAsset::new(&dir, &def, AssetSource::Collection(i)));
        }
        Ok(assets)
    }

    /// The init op TensorFlow's loader runs after restoring: the output of
    /// signature `__saved_model_init_op`, else the one node of collection
    /// `saved_model_main_op`, else of `legacy_init_op`; `None` when there is
    /// none of these.
    pub fn init_op(&self) -> Result<Option<InitOp<'a>>> {
        if let Some(signature) = self.def.signature_def.get(INIT_OP_SIGNATURE_KEY) {
            let info = signature
                .outputs
                .get(INIT_OP_SIGNATURE_KEY)
                .ok_or_else(|| Error::BadInitOp {
                    problem: format!(
                        "signature '{INIT_OP_SIGNATURE_KEY}' has no output \
                         '{INIT_OP_SIGNATURE_KEY}'"
                    ),
                })?;
            let name = match &info.encoding {
                Some(Encoding::Name(name)) => name.as_str(),
                _ => "",
            };
            return Ok(Some(InitOp {
                name,
                source: InitOpSource::Signature,
            }));
        }
        for (key, source) in [
            (MAIN_OP_KEY, InitOpSource::MainOp),
            (LEGACY_INIT_OP_KEY, InitOpSource::LegacyInitOp),
        ] {
            let Some(collection) = self.def.collection_def.get(key) else {
                continue;
            };
            let names: &[String] = match &collection.kind {
                Some(Kind::NodeList(list)) => &list.value,
                _ => &[],
            };
            return match names {
                [name] => Ok(Some(InitOp { name, source })),
                _ => Err(Error::BadCollection {
                    collection: key.to_owned(),
                    problem: format!(
                        "expected exactly one main op, found {} (tensorflow refuses the model: \
                         \"Expected exactly one main op\")",
                        names.len()
                    ),
                }),
            };
        }
        Ok(None)
    }

    /// The variables declared in the graph (not inside functions):
    /// `VarHandleOp` (resource) and `VariableV2` / `Variable` (reference).
    pub fn variables(&self) -> Vec<GraphVariable<'a>> {
        self.graph_def()
            .node
            .iter()
            .filter_map(|node| {
                let resource = match node.op.as_str() {
                    "VarHandleOp" => true,
                    "VariableV2" | "Variable" => false,
                    _ => return None,
                };
                let dtype = match node.attr.get("dtype").and_then(|a| a.value.as_ref()) {
                    Some(tensorflow::attr_value::Value::Type(t)) => *t,
                    _ => 0,
                };
                let shape = match node.attr.get("shape").and_then(|a| a.value.as_ref()) {
                    Some(tensorflow::attr_value::Value::Shape(s)) => Some(s),
                    _ => None,
                };
                Some(GraphVariable {
                    node,
                    resource,
                    dtype,
                    shape,
                })
            })
            .collect()
    }

    /// The ops the graph uses, as `saved_model_cli show` lists them
    /// (`ops_used_by_graph_def` in `tensorflow/python/framework/
    /// meta_graph.py`): node ops, plus the ops of library functions reached
    /// through a node's op or the `f` attr of a (Stateful)PartitionedCall,
    /// recursively; function names themselves left out.
    pub fn ops_used(&self) -> BTreeSet<String> {
        let mut used: BTreeSet<&str> = BTreeSet::new();
        let mut pending: Vec<&FunctionDef> = Vec::new();
        let mut nodes: Vec<&NodeDef> = self.graph_def().node.iter().collect();
        loop {
            for node in nodes.drain(..) {
                let mut ops = vec![node.op.as_str()];
                if node.op == "PartitionedCall" || node.op == "StatefulPartitionedCall" {
                    // A missing `f` counts as the op "", as in TensorFlow.
                    ops.push(match node.attr.get("f").and_then(|a| a.value.as_ref()) {
                        Some(tensorflow::attr_value::Value::Func(f)) => f.name.as_str(),
                        _ => "",
                    });
                }
                for op in ops {
                    if used.insert(op) {
                        if let Some(function) = self.function(op) {
                            pending.push(function);
                        }
                    }
                }
            }
            match pending.pop() {
                Some(function) => nodes.extend(&function.node_def),
                None => break,
            }
        }
        used.into_iter()
            .filter(|op| self.function(op).is_none())
            .map(str::to_owned)
            .collect()
    }
}

/// A signature of a MetaGraph.
#[derive(Debug, Clone, Copy)]
pub struct Signature<'a> {
    key: &'a str,
    def: &'a SignatureDef,
}

impl<'a> Signature<'a> {
    /// The signature key, e.g. `serving_default`.
    pub fn key(&self) -> &'a str {
        self.key
    }

    /// The `SignatureDef` (inputs and outputs are sorted by alias).
    pub fn def(&self) -> &'a SignatureDef {
        self.def
    }

    /// The method name, e.g. `tensorflow/serving/predict`.
    pub fn method_name(&self) -> &'a str {
        &self.def.method_name
    }
}

/// A tensor name split into node and output: `x:1` is output 1 of node `x`,
/// `x` is output 0 (TensorFlow's `ParseTensorName`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorName<'a> {
    /// The node name.
    pub node: &'a str,
    /// The output index.
    pub output: u64,
}

impl<'a> TensorName<'a> {
    /// Splits `name` at its last `:` when digits follow it. `None` for an
    /// empty node name, a control input (`^x`) or an index that overflows.
    pub fn parse(name: &'a str) -> Option<Self> {
        if name.starts_with('^') {
            return None;
        }
        let parsed = match name.rsplit_once(':') {
            Some((node, index))
                if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Self {
                    node,
                    output: index.parse().ok()?,
                }
            }
            _ => Self {
                node: name,
                output: 0,
            },
        };
        (!parsed.node.is_empty()).then_some(parsed)
    }
}

/// A tensor name resolved against the graph.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedTensor<'a> {
    /// The node producing the tensor.
    pub node: &'a NodeDef,
    /// Which of its outputs.
    pub output: u64,
    /// The output's data type (`DataType` value, `_REF` variants for
    /// reference outputs), when the op is known.
    pub dtype: Option<i32>,
}

/// Every tensor name a `TensorInfo` refers to: its name, the three tensors
/// of a sparse encoding, or the components of a composite one.
pub fn tensor_names(info: &TensorInfo) -> Vec<&str> {
    let mut out = Vec::new();
    collect_tensor_names(info, &mut out, 0);
    out
}

fn collect_tensor_names<'a>(info: &'a TensorInfo, out: &mut Vec<&'a str>, depth: usize) {
    // Composite components nest; real ones are shallow, so stop at a depth no
    // model needs rather than recursing without bound.
    if depth > 32 {
        return;
    }
    match &info.encoding {
        Some(Encoding::Name(name)) => out.push(name),
        Some(Encoding::CooSparse(coo)) => {
            out.push(&coo.indices_tensor_name);
            out.push(&coo.values_tensor_name);
            out.push(&coo.dense_shape_tensor_name);
        }
        Some(Encoding::CompositeTensor(composite)) => {
            for component in &composite.components {
                collect_tensor_names(component, out, depth + 1);
            }
        }
        None => {}
    }
}

/// Where an asset was listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetSource {
    /// `MetaGraphDef.asset_file_def[i]`.
    AssetFileDef(usize),
    /// Entry `i` of collection `saved_model_assets`.
    Collection(usize),
}

/// An asset file a MetaGraph lists (not the graph side,
/// [`savedmodel_graph::Asset`]): the loader feeds `path` to tensor `tensor_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAsset {
    /// The file name under `assets/`, as stored.
    pub filename: String,
    /// The tensor fed with the file's path.
    pub tensor_name: String,
    /// `<dir>/assets/<filename>`.
    pub path: PathBuf,
    /// Where it was listed.
    pub source: AssetSource,
}

impl ModelAsset {
    fn new(assets_dir: &Path, def: &AssetFileDef, source: AssetSource) -> Self {
        let tensor_name = match def.tensor_info.as_ref().and_then(|t| t.encoding.as_ref()) {
            Some(Encoding::Name(name)) => name.clone(),
            _ => String::new(),
        };
        Self {
            filename: def.filename.clone(),
            tensor_name,
            path: assets_dir.join(&def.filename),
            source,
        }
    }
}

/// Where the init op was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOpSource {
    /// Signature `__saved_model_init_op` (TensorFlow 2 and this crate write it).
    Signature,
    /// Collection `saved_model_main_op`.
    MainOp,
    /// Collection `legacy_init_op`.
    LegacyInitOp,
}

/// The init op TensorFlow's loader runs after the restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitOp<'a> {
    /// The target node name, as stored.
    pub name: &'a str,
    /// Where it was found.
    pub source: InitOpSource,
}

/// A variable node of the graph.
#[derive(Debug, Clone, Copy)]
pub struct GraphVariable<'a> {
    /// The node (`VarHandleOp`, `VariableV2` or `Variable`).
    pub node: &'a NodeDef,
    /// `VarHandleOp` (resource variable) rather than a reference variable.
    pub resource: bool,
    /// Its `dtype` attr (0 when missing).
    pub dtype: i32,
    /// Its `shape` attr.
    pub shape: Option<&'a TensorShapeProto>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_names_split_like_tensorflow() {
        assert_eq!(
            TensorName::parse("x:1"),
            Some(TensorName {
                node: "x",
                output: 1
            })
        );
        assert_eq!(
            TensorName::parse("a/b"),
            Some(TensorName {
                node: "a/b",
                output: 0
            })
        );
        assert_eq!(
            TensorName::parse("a:b"),
            Some(TensorName {
                node: "a:b",
                output: 0
            })
        );
        assert_eq!(
            TensorName::parse("a:b:12"),
            Some(TensorName {
                node: "a:b",
                output: 12
            })
        );
        assert_eq!(TensorName::parse(""), None);
        assert_eq!(TensorName::parse(":0"), None);
        assert_eq!(TensorName::parse("^x"), None);
        assert_eq!(TensorName::parse("x:99999999999999999999999"), None);
    }

    fn model_with_tags(sets: &[&[&str]]) -> SavedModel {
        let meta_graphs = sets
            .iter()
            .map(|tags| MetaGraphDef {
                meta_info_def: Some(tensorflow::meta_graph_def::MetaInfoDef {
                    tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        SavedModel::from_proto(
            "/m",
            "/m/saved_model.pb",
            ModelFileFormat::Binary,
            tensorflow::SavedModel {
                saved_model_schema_version: 1,
                meta_graphs,
            },
        )
    }

    #[test]
    fn meta_graphs_are_picked_by_set_equality() {
        let model = model_with_tags(&[&["serve", "gpu"], &["serve"], &["serve", "serve"]]);
        assert_eq!(model.meta_graph(&["serve"]).unwrap().index(), 1);
        assert_eq!(model.meta_graph(&["gpu", "serve"]).unwrap().index(), 0);
        assert_eq!(
            model.meta_graph(&["gpu", "serve", "gpu"]).unwrap().index(),
            0
        );
        let err = model.meta_graph(&["train"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no meta graph with tag set { train } in /m/saved_model.pb \
             (it has { serve, gpu }, { serve }, { serve, serve })"
        );
    }
}
