//! A converted model as a SavedModel: one MetaGraph tagged `serve` with a
//! predict signature whose inputs and outputs carry the ONNX graph's names
//! (made TensorFlow-legal), and optional warmup requests.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use savedmodel::WarmupRequests;
use savedmodel::serving::{DEFAULT_SERVING_SIGNATURE_DEF_KEY, SERVE_TAG};
use savedmodel::{MetaGraphBuilder, SavedModelBuilder, Tensor};

use crate::convert::{ConvertOptions, Converted, SignatureTensor, convert};
use crate::{Error, OnnxModel, Result};

/// What to build from an ONNX model.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// How to convert the graph.
    pub convert: ConvertOptions,
    /// The predict signature's key (`serving_default` by default).
    pub signature_name: String,
    /// Warmup requests: one predict request per entry, each a map from the
    /// ONNX input name to its value.
    pub warmup: Vec<Vec<(String, Tensor)>>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            convert: ConvertOptions::default(),
            signature_name: DEFAULT_SERVING_SIGNATURE_DEF_KEY.to_owned(),
            warmup: Vec::new(),
        }
    }
}

/// An ONNX model converted and ready to write.
#[derive(Debug)]
pub struct OnnxExport {
    builder: SavedModelBuilder,
    /// The signature's inputs (ONNX name, key, tensor).
    pub inputs: Vec<SignatureTensor>,
    /// The signature's outputs.
    pub outputs: Vec<SignatureTensor>,
    /// Nodes in the TensorFlow graph.
    pub nodes: usize,
    /// `Transpose` nodes among them.
    pub transposes: usize,
    /// Variables (initializers too large to be constants).
    pub variables: usize,
    /// How many nodes of each TensorFlow op type the graph has.
    pub op_counts: BTreeMap<String, usize>,
}

impl OnnxExport {
    /// Converts `model` and builds the SavedModel in memory (the weights
    /// stay in the mapped model until [`write_to`](Self::write_to)).
    pub fn new(model: &Arc<OnnxModel>, options: &ExportOptions) -> Result<Self> {
        let Converted {
            graph,
            inputs,
            outputs,
            transposes,
        } = convert(model, &options.convert)?;
        let nodes = graph.nodes().len();
        let mut op_counts = BTreeMap::new();
        for node in graph.nodes() {
            *op_counts.entry(node.op.clone()).or_insert(0) += 1;
        }
        let variables = graph.variables().len();
        let mut meta = MetaGraphBuilder::new(graph, &[SERVE_TAG]);
        let ins: Vec<(&str, &savedmodel::Output)> =
            inputs.iter().map(|s| (s.key.as_str(), &s.tensor)).collect();
        let outs: Vec<(&str, &savedmodel::Output)> = outputs
            .iter()
            .map(|s| (s.key.as_str(), &s.tensor))
            .collect();
        meta.predict_signature(&options.signature_name, &ins, &outs)?;
        let mut builder = SavedModelBuilder::new();
        builder.add_meta_graph(meta)?;
        if !options.warmup.is_empty() {
            let mut requests = WarmupRequests::new();
            for (i, request) in options.warmup.iter().enumerate() {
                let mut feeds = Vec::new();
                for (name, value) in request {
                    let input = inputs
                        .iter()
                        .find(|s| &s.onnx_name == name)
                        .ok_or_else(|| Error::Convert {
                            model: model.name().to_owned(),
                            node: format!("warmup request {i}"),
                            detail: format!("the model has no input {name:?}"),
                        })?;
                    feeds.push((input.key.as_str(), value));
                }
                requests.predict(&options.signature_name, &feeds)?;
            }
            builder.warmup(requests);
        }
        Ok(Self {
            builder,
            inputs,
            outputs,
            nodes,
            transposes,
            variables,
            op_counts,
        })
    }

    /// Writes the SavedModel into `dir`, which must not exist or be empty
    /// (staged and renamed into place: nothing is left on failure).
    pub fn write_to(&self, dir: impl AsRef<Path>) -> Result<()> {
        Ok(self.builder.write_to(dir)?)
    }

    /// Writes the SavedModel into the existing empty directory `dir` (a
    /// staging directory someone else publishes).
    pub fn write_into_empty_dir(&self, dir: impl AsRef<Path>) -> Result<()> {
        Ok(self.builder.write_into_empty_dir(dir)?)
    }
}
