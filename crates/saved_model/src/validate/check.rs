//! What the checks of one MetaGraph share: [`MetaGraphCheck`], how an op
//! type resolves, and small helpers on names and types.

use std::collections::HashSet;
use std::fmt;

use crate::op_registry::OpRegistry;
use crate::proto::tensorflow::attr_value::Value;
use crate::proto::tensorflow::tensor_info::Encoding;
use crate::proto::tensorflow::{DataType, NodeDef, OpDef};
use crate::reader::{INIT_OP_SIGNATURE_KEY, MetaGraph, TensorName};

use super::Report;

pub(super) use crate::serving::shape_string;

/// The data type without its `_REF` variant.
pub(super) fn base_type(dtype: i32) -> i32 {
    if dtype > 100 { dtype - 100 } else { dtype }
}

pub(super) fn dims_string(dims: &[i64]) -> String {
    savedmodel_checkpoint::shape_string(dims)
}

/// The strings of a `Const` node's value.
pub(super) fn const_strings(node: &NodeDef) -> Option<&[Vec<u8>]> {
    if node.op != "Const" {
        return None;
    }
    match node.attr.get("value").and_then(|a| a.value.as_ref()) {
        Some(Value::Tensor(t)) if t.dtype == DataType::DtString as i32 => Some(&t.string_val),
        _ => None,
    }
}

/// The node name an input refers to: `x`, `x:1`, `^x` in a graph; `x`,
/// `x:out:0`, `^x` or an argument name in a function body.
pub(super) fn input_node(input: &str, in_function: bool) -> &str {
    let input = input.strip_prefix('^').unwrap_or(input);
    if in_function {
        input.split(':').next().unwrap_or(input)
    } else {
        TensorName::parse(input).map_or(input, |t| t.node)
    }
}

/// The checks of one MetaGraph, each adding its findings to `report`
/// (their `impl` blocks are in the sibling modules, one per concern).
pub(super) struct MetaGraphCheck<'r, 'a> {
    pub(super) meta_graph: &'r MetaGraph<'a>,
    pub(super) registry: &'static OpRegistry,
    pub(super) prefix: String,
    pub(super) report: &'r mut Report,
}

/// An op definition: registered, or a function of the library.
pub(super) enum OpKind<'a> {
    Registered(&'a OpDef),
    Function,
    Unknown,
}

impl<'a> MetaGraphCheck<'_, 'a> {
    pub(super) fn at(&self, what: impl fmt::Display) -> String {
        format!("{}{what}", self.prefix)
    }

    pub(super) fn error(&mut self, what: impl fmt::Display, message: impl Into<String>) {
        let location = self.at(what);
        self.report.error(location, message);
    }

    pub(super) fn warning(&mut self, what: impl fmt::Display, message: impl Into<String>) {
        let location = self.at(what);
        self.report.warning(location, message);
    }

    pub(super) fn op_kind(&self, op: &str) -> OpKind<'a> {
        if let Some(def) = self.registry.get(op) {
            // The registry is 'static, which outlives 'a.
            OpKind::Registered(def)
        } else if self.meta_graph.function(op).is_some() {
            OpKind::Function
        } else {
            OpKind::Unknown
        }
    }

    /// The graph nodes a signature (other than the init op's) reaches
    /// through data and control inputs: what running its tensors runs or
    /// reads. Library function bodies are not entered; their calls take the
    /// variables and tables they use as inputs.
    pub(super) fn signature_nodes(&self) -> HashSet<&'a str> {
        let mut seen: HashSet<&'a str> = HashSet::new();
        let mut stack: Vec<&'a NodeDef> = Vec::new();
        for signature in self.meta_graph.signatures() {
            if signature.key() == INIT_OP_SIGNATURE_KEY {
                continue;
            }
            let def = signature.def();
            for info in def.inputs.values().chain(def.outputs.values()) {
                let names: Vec<&str> = match &info.encoding {
                    Some(Encoding::Name(name)) => vec![name],
                    Some(Encoding::CooSparse(coo)) => vec![
                        &coo.values_tensor_name,
                        &coo.indices_tensor_name,
                        &coo.dense_shape_tensor_name,
                    ],
                    _ => Vec::new(),
                };
                stack.extend(
                    names
                        .into_iter()
                        .filter_map(|n| self.meta_graph.node(input_node(n, false))),
                );
            }
        }
        while let Some(node) = stack.pop() {
            if !seen.insert(node.name.as_str()) {
                continue;
            }
            for input in &node.input {
                if let Some(next) = self.meta_graph.node(input_node(input, false)) {
                    stack.push(next);
                }
            }
        }
        seen
    }
}
