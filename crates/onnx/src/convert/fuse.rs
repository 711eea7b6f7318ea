//! Fusions: pairs of ONNX nodes converted as one, decided before the
//! conversion starts (`ConvertOptions::optimize`).
//!
//! The converter builds each node's TensorFlow nodes once and never edits
//! them, so a fusion is planned here by looking at the whole model first,
//! and carried out by the first node of the pair, which defines the second
//! node's output itself. `ops::convert_node` then skips the second node:
//! its output is already defined, which nothing else can make happen (ONNX
//! defines every value once).
//!
//! A pair is planned only where the first node's output has exactly one
//! use in the whole model: the second node. Uses are counted over every
//! graph (subgraphs of `If`, `Loop` and `Scan` may read outer values by
//! name) and every graph output counts as a use, so the value the fusion
//! makes disappear is never needed anywhere else. Whether the fusion then
//! applies (its parameters known, float types) is decided when the first
//! node is converted; if it does not, both nodes convert as usual.
//!
//! The fusions, and what TensorFlow gains:
//!
//! - **`Conv` + `BatchNormalization`** (inference): the normalization's
//!   per-channel scale `s = gamma / sqrt(var + epsilon)` is multiplied into
//!   the filter's output channels and its shift `beta - mean * s` added to
//!   the convolution's bias, so `Conv2D` + `BiasAdd` remain (in place of
//!   `Conv2D` + `BiasAdd` + `Mul` + `AddV2`), which TensorFlow's remapper
//!   fuses, with a following `Relu`, `Relu6`, `Elu` or `LeakyRelu`, into
//!   one `_FusedConv2D` kernel. A filter held in a variable is scaled when
//!   the checkpoint is written, one tensor at a time (`weights.rs`).
//! - **`MatMul` + `Add`** of a known vector along the last axis: `MatMul`
//!   + `BiasAdd` (the form the remapper fuses into `_FusedMatMul`).
//!
//! Results are those of the unfused graph up to float rounding: the
//! products `(x * w) * s` become `x * (w * s)`, computed in f64 and
//! rounded once to the filter's type.

use std::collections::{HashMap, HashSet};

use crate::proto::{GraphProto, NodeProto};
use crate::{NodeView, OnnxModel, Result};

/// A `BatchNormalization` folded into the `Conv` whose output it reads.
#[derive(Clone, Debug)]
pub(crate) struct BatchNormFold {
    /// The normalization's output, which the convolution defines.
    pub(crate) output: String,
    /// Its `scale`, `B`, `input_mean` and `input_var` inputs.
    pub(crate) params: [String; 4],
    /// Its `epsilon`.
    pub(crate) epsilon: f64,
}

/// An `Add` of a vector folded into the `MatMul` whose output it reads, as
/// a `BiasAdd`.
#[derive(Clone, Debug)]
pub(crate) struct BiasFold {
    /// The `Add`'s output, which the `MatMul` defines.
    pub(crate) output: String,
    /// The `Add`'s other input: the bias, if it is a known vector of the
    /// product's last dimension (checked when converting).
    pub(crate) bias: String,
}

/// The fusions planned for a model, keyed by the first node's output.
#[derive(Debug, Default)]
pub(crate) struct Fusions {
    batch_norms: HashMap<String, BatchNormFold>,
    biases: HashMap<String, BiasFold>,
    /// The second nodes' outputs.
    fused_outputs: HashSet<String>,
}

impl Fusions {
    /// Plans the fusions of every graph of `model`.
    pub(crate) fn plan(model: &OnnxModel) -> Result<Self> {
        let main = model.graph().proto();
        let mut uses = HashMap::new();
        count_uses(main, &mut uses);
        let mut fusions = Fusions::default();
        fusions.plan_graph(model, main, &uses)?;
        Ok(fusions)
    }

    fn plan_graph(
        &mut self,
        model: &OnnxModel,
        graph: &GraphProto,
        uses: &HashMap<String, usize>,
    ) -> Result<()> {
        let view = crate::graph::GraphView::new(model, graph);
        // The node that produces each value of this graph.
        let mut producer: HashMap<&str, NodeView<'_>> = HashMap::new();
        for node in view.nodes() {
            for out in node.proto().output.iter().filter(|o| !o.is_empty()) {
                producer.insert(out, node);
            }
        }
        for node in view.nodes() {
            for attr in &node.proto().attribute {
                for g in attr.g.iter().chain(&attr.graphs) {
                    self.plan_graph(model, g, uses)?;
                }
            }
            if !node.domain().is_empty() {
                continue;
            }
            let only_use_of = |name: &str, op: &str| -> Option<&str> {
                let first = producer.get(name)?;
                let single = uses.get(name).copied() == Some(1);
                (single && first.op_type() == op && first.domain().is_empty())
                    .then_some(first.proto().output.first()?.as_str())
            };
            let inputs = &node.proto().input;
            match node.op_type() {
                "BatchNormalization" if is_inference_batch_norm(&node)? => {
                    let Some(x) = inputs.first() else { continue };
                    let Some(conv_out) = only_use_of(x, "Conv") else {
                        continue;
                    };
                    let params = [1, 2, 3, 4].map(|i| inputs.get(i).cloned().unwrap_or_default());
                    let Some(output) = first_output(&node) else {
                        continue;
                    };
                    if params.iter().any(String::is_empty) {
                        continue;
                    }
                    self.fused_outputs.insert(output.clone());
                    self.batch_norms.insert(
                        conv_out.to_owned(),
                        BatchNormFold {
                            output,
                            params,
                            epsilon: f64::from(node.attr_f_or("epsilon", 1e-5)?),
                        },
                    );
                }
                // Opset 7 made Add broadcast numpy's way (before, a
                // `broadcast` attribute chose).
                "Add" if inputs.len() == 2 && node.opset_version()? >= 7 => {
                    for (product, bias) in [(&inputs[0], &inputs[1]), (&inputs[1], &inputs[0])] {
                        if product == bias {
                            break;
                        }
                        if let (Some(matmul_out), Some(output)) =
                            (only_use_of(product, "MatMul"), first_output(&node))
                        {
                            self.fused_outputs.insert(output.clone());
                            self.biases.insert(
                                matmul_out.to_owned(),
                                BiasFold {
                                    output,
                                    bias: bias.clone(),
                                },
                            );
                            break;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The normalization to fold into the `Conv` whose output is `conv_output`.
    pub(crate) fn batch_norm_after(&self, conv_output: &str) -> Option<&BatchNormFold> {
        self.batch_norms.get(conv_output)
    }

    /// The bias to add to the `MatMul` whose output is `matmul_output`.
    pub(crate) fn bias_after(&self, matmul_output: &str) -> Option<&BiasFold> {
        self.biases.get(matmul_output)
    }

    /// Whether `name` is the output of the second node of a planned pair
    /// (defined by the first node when the fusion applies).
    pub(crate) fn is_fused_output(&self, name: &str) -> bool {
        self.fused_outputs.contains(name)
    }
}

/// A node's first output, when it has a non-empty one.
fn first_output(node: &NodeView<'_>) -> Option<String> {
    node.proto()
        .output
        .first()
        .filter(|o| !o.is_empty())
        .cloned()
}

/// An inference-mode `BatchNormalization` with one output. Opset 7 is the
/// first whose normalization is per channel by default with no `is_test`
/// switch; opsets 7 and 8 may still ask for per-element statistics
/// (`spatial = 0`).
fn is_inference_batch_norm(node: &NodeView<'_>) -> Result<bool> {
    Ok(node.opset_version()? >= 7
        && node.attr_i_or("spatial", 1)? == 1
        && node.attr_i_or("training_mode", 0)? == 0
        && node.proto().output.iter().skip(1).all(String::is_empty))
}

/// Adds to `uses` every read of a value by name in `graph` and its
/// subgraphs, a graph output counting as a read.
fn count_uses(graph: &GraphProto, uses: &mut HashMap<String, usize>) {
    for node in &graph.node {
        count_node_uses(node, uses);
    }
    for out in &graph.output {
        *uses.entry(out.name().to_owned()).or_default() += 1;
    }
}

fn count_node_uses(node: &NodeProto, uses: &mut HashMap<String, usize>) {
    for input in node.input.iter().filter(|i| !i.is_empty()) {
        *uses.entry(input.clone()).or_default() += 1;
    }
    for attr in &node.attribute {
        for g in attr.g.iter().chain(&attr.graphs) {
            count_uses(g, uses);
        }
    }
}
