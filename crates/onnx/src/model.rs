//! [`OnnxModel`]: a decoded `ModelProto` with its versions checked and its
//! external data mapped.

use std::path::Path;

use bytes::Bytes;
use prost::Message;

use crate::error::{Error, Result, io_error};
use crate::external::ExternalFiles;
use crate::graph::GraphView;
use crate::limits::{
    Limits, MAX_IR_VERSION, MAX_ONNX_OPSET, MIN_IR_VERSION, MIN_ONNX_OPSET, is_default_domain,
};
use crate::mmap::MappedFile;
use crate::proto::tensor_proto::DataLocation;
use crate::proto::{AttributeProto, GraphProto, ModelProto, TensorProto};
use crate::scan::scan;
use crate::tensor::{TensorView, view};

/// An ONNX model, read and checked.
///
/// Opening checks, in order: the file size, the message counts and nesting
/// depth ([`Limits`]), that the bytes decode, the IR version
/// ([`crate::MIN_IR_VERSION`] to [`crate::MAX_IR_VERSION`]), the operator set
/// imports (one per domain; the default domain's from
/// [`crate::MIN_ONNX_OPSET`] to [`crate::MAX_ONNX_OPSET`]), that there is a
/// graph, and every external data entry (confined to the model's directory,
/// within its file). Graph structure is checked by
/// [`GraphView::check_topological_order`].
pub struct OnnxModel {
    /// The path, or `<bytes>`: the name errors give.
    name: String,
    /// The whole encoded model; `raw_data` fields are slices of it.
    buffer: Bytes,
    proto: ModelProto,
    external: ExternalFiles,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("name", &self.name)
            .field("bytes", &self.buffer.len())
            .field("ir_version", &self.ir_version())
            .finish_non_exhaustive()
    }
}

impl OnnxModel {
    /// Memory-maps and reads the model at `path` with the default
    /// [`Limits`]. External data files are found in `path`'s directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &Limits::default())
    }

    /// [`OnnxModel::open`] with `limits`.
    pub fn open_with(path: impl AsRef<Path>, limits: &Limits) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let size = std::fs::metadata(path)
            .map_err(|e| io_error("reading the size of", path, e))?
            .len();
        check_size(&name, size, limits)?;
        let canonical = path
            .canonicalize()
            .map_err(|e| io_error("resolving", path, e))?;
        let dir = canonical.parent().map(Path::to_path_buf).ok_or_else(|| {
            io_error(
                "finding the directory of",
                path,
                std::io::ErrorKind::NotFound.into(),
            )
        })?;
        let buffer = Bytes::from_owner(MappedFile::open(path)?);
        // The file may have grown between the size check and the map.
        check_size(&name, buffer.len() as u64, limits)?;
        Self::from_buffer(name, buffer, ExternalFiles::new(Some(dir)), limits)
    }

    /// Reads a model from `bytes` (copied once into a shared buffer) with the
    /// default [`Limits`]. A model with external data cannot be read this
    /// way: there is no directory to find the files in.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_bytes_with(bytes, &Limits::default())
    }

    /// [`OnnxModel::from_bytes`] with `limits`.
    pub fn from_bytes_with(bytes: &[u8], limits: &Limits) -> Result<Self> {
        let name = "<bytes>".to_owned();
        check_size(&name, bytes.len() as u64, limits)?;
        Self::from_buffer(
            name,
            Bytes::copy_from_slice(bytes),
            ExternalFiles::new(None),
            limits,
        )
    }

    fn from_buffer(
        name: String,
        buffer: Bytes,
        mut external: ExternalFiles,
        limits: &Limits,
    ) -> Result<Self> {
        scan(&buffer, limits, &name)?;
        // Decoding from `Bytes` makes every `raw_data` a slice of `buffer`.
        let proto = ModelProto::decode(buffer.clone()).map_err(|e| Error::Malformed {
            model: name.clone(),
            detail: e.to_string(),
        })?;
        check_versions(&name, &proto)?;
        if proto.graph.is_none() {
            return Err(Error::NoGraph { model: name });
        }
        for_each_tensor(&proto, &mut |tensor| {
            if tensor.data_location() != DataLocation::External {
                return Ok(());
            }
            external
                .resolve(tensor)
                .map_err(|(location, detail)| Error::ExternalData {
                    model: name.clone(),
                    tensor: tensor.name().to_owned(),
                    location,
                    detail,
                })
        })?;
        Ok(OnnxModel {
            name,
            buffer,
            proto,
            external,
        })
    }

    /// The name errors give: the path, or `<bytes>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The decoded message.
    pub fn proto(&self) -> &ModelProto {
        &self.proto
    }

    /// The model's IR version (checked to be supported).
    pub fn ir_version(&self) -> i64 {
        self.proto.ir_version()
    }

    /// The operator set version imported for `domain` (`""` and `"ai.onnx"`
    /// are the same domain), if the model imports it.
    pub fn opset_version(&self, domain: &str) -> Option<i64> {
        let default = is_default_domain(domain);
        self.proto
            .opset_import
            .iter()
            .find(|o| {
                if default {
                    is_default_domain(o.domain())
                } else {
                    o.domain() == domain
                }
            })
            .map(|o| o.version())
    }

    /// The main graph.
    pub fn graph(&self) -> GraphView<'_> {
        // `from_buffer` refuses a model without a graph.
        let graph = self.proto.graph.as_ref().unwrap_or(&EMPTY_GRAPH);
        GraphView::new(self, graph)
    }

    /// The type, shape and bytes of `tensor` (an initializer, an attribute
    /// value, ... of this model).
    pub fn tensor<'a>(&'a self, tensor: &'a TensorProto) -> Result<TensorView<'a>> {
        view(tensor, &self.external).map_err(|detail| Error::Tensor {
            model: self.name.clone(),
            tensor: tensor.name().to_owned(),
            detail,
        })
    }

    /// How many distinct external data files are mapped.
    pub fn external_files(&self) -> usize {
        self.external.mapped_files()
    }

    /// The encoded model the tensors' `raw_data` borrow from.
    pub fn buffer(&self) -> &[u8] {
        &self.buffer
    }
}

/// What [`OnnxModel::graph`] falls back on (never, once opened).
static EMPTY_GRAPH: GraphProto = GraphProto {
    node: Vec::new(),
    name: None,
    initializer: Vec::new(),
    sparse_initializer: Vec::new(),
    doc_string: None,
    input: Vec::new(),
    output: Vec::new(),
    value_info: Vec::new(),
    quantization_annotation: Vec::new(),
    metadata_props: Vec::new(),
};

fn check_size(name: &str, size: u64, limits: &Limits) -> Result<()> {
    if size > limits.max_file_size {
        return Err(Error::FileTooLarge {
            model: name.to_owned(),
            size,
            limit: limits.max_file_size,
        });
    }
    Ok(())
}

/// The IR version and operator set imports.
fn check_versions(name: &str, proto: &ModelProto) -> Result<()> {
    let version = proto.ir_version();
    if !(MIN_IR_VERSION..=MAX_IR_VERSION).contains(&version) {
        return Err(Error::IrVersion {
            model: name.to_owned(),
            version,
            min: MIN_IR_VERSION,
            max: MAX_IR_VERSION,
        });
    }
    let opset_error = |detail: String| Error::Opset {
        model: name.to_owned(),
        detail,
    };
    if proto.opset_import.is_empty() {
        return Err(opset_error("the model imports no operator set".to_owned()));
    }
    for (i, import) in proto.opset_import.iter().enumerate() {
        let domain = import.domain();
        let same = |other: &str| {
            other == domain || (is_default_domain(other) && is_default_domain(domain))
        };
        let version = import.version();
        // skl2onnx 1.20 imports the default domain twice at the same
        // version; only two versions of one domain are ambiguous.
        if let Some(earlier) = proto.opset_import[..i]
            .iter()
            .find(|o| same(o.domain()) && o.version() != version)
        {
            return Err(opset_error(format!(
                "operator set domain {domain:?} is imported twice, at versions {} and {version}",
                earlier.version()
            )));
        }
        if is_default_domain(domain) {
            if !(MIN_ONNX_OPSET..=MAX_ONNX_OPSET).contains(&version) {
                return Err(opset_error(format!(
                    "opset {version} of the default domain {domain:?} is not supported (supported: {MIN_ONNX_OPSET} to {MAX_ONNX_OPSET})"
                )));
            }
        } else if version < 1 {
            return Err(opset_error(format!(
                "operator set domain {domain:?} has version {version}; versions start at 1"
            )));
        }
    }
    Ok(())
}

/// Calls `f` on every tensor of the model: initializers, sparse
/// initializers' parts, attribute values, in every graph, subgraph,
/// function and training graph.
pub(crate) fn for_each_tensor(
    model: &ModelProto,
    f: &mut impl FnMut(&TensorProto) -> Result<()>,
) -> Result<()> {
    fn graph(g: &GraphProto, f: &mut impl FnMut(&TensorProto) -> Result<()>) -> Result<()> {
        g.initializer.iter().try_for_each(&mut *f)?;
        for sparse in &g.sparse_initializer {
            sparse
                .values
                .iter()
                .chain(&sparse.indices)
                .try_for_each(&mut *f)?;
        }
        for node in &g.node {
            node.attribute.iter().try_for_each(|a| attribute(a, f))?;
        }
        Ok(())
    }
    fn attribute(a: &AttributeProto, f: &mut impl FnMut(&TensorProto) -> Result<()>) -> Result<()> {
        a.t.iter().chain(&a.tensors).try_for_each(&mut *f)?;
        for sparse in a.sparse_tensor.iter().chain(&a.sparse_tensors) {
            sparse
                .values
                .iter()
                .chain(&sparse.indices)
                .try_for_each(&mut *f)?;
        }
        a.g.iter().chain(&a.graphs).try_for_each(|g| graph(g, f))
    }
    model.graph.iter().try_for_each(|g| graph(g, f))?;
    for function in &model.functions {
        for node in &function.node {
            node.attribute.iter().try_for_each(|a| attribute(a, f))?;
        }
        function
            .attribute_proto
            .iter()
            .try_for_each(|a| attribute(a, f))?;
    }
    for info in &model.training_info {
        info.initialization
            .iter()
            .chain(&info.algorithm)
            .try_for_each(|g| graph(g, f))?;
    }
    Ok(())
}
