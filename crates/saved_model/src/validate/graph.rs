//! The graph and its library functions: ops TensorFlow 2.21 registers,
//! their attrs, inputs (order, existence, count, data types), unique node
//! names, `Const` values, GraphDef versions and removed ops; devices.

use std::collections::{BTreeSet, HashMap};

use crate::op_registry;
use crate::proto::tensorflow::NodeDef;
use crate::proto::tensorflow::attr_value::Value;
use crate::show::dtype_name;

use super::check::{MetaGraphCheck, OpKind, base_type, shape_string};

impl<'a> MetaGraphCheck<'_, 'a> {
    pub(super) fn graph(&mut self) {
        let graph = self.meta_graph.graph_def();
        let producer = graph.versions.as_ref().map_or(0, |v| v.producer);
        if let Some(versions) = &graph.versions {
            if versions.producer < op_registry::GRAPH_DEF_VERSION_MIN_PRODUCER {
                self.error(
                    "graph",
                    format!(
                        "graphdef producer version {} is below the {} tensorflow {} accepts",
                        versions.producer,
                        op_registry::GRAPH_DEF_VERSION_MIN_PRODUCER,
                        op_registry::TENSORFLOW_VERSION
                    ),
                );
            }
            if versions.min_consumer > op_registry::GRAPH_DEF_VERSION {
                self.error(
                    "graph",
                    format!(
                        "graphdef min consumer version {} is above the version of tensorflow {} \
                         ({}): it refuses the graph",
                        versions.min_consumer,
                        op_registry::TENSORFLOW_VERSION,
                        op_registry::GRAPH_DEF_VERSION
                    ),
                );
            }
            if versions
                .bad_consumers
                .contains(&op_registry::GRAPH_DEF_VERSION)
            {
                self.error(
                    "graph",
                    format!(
                        "graphdef lists version {} of tensorflow {} as a bad consumer",
                        op_registry::GRAPH_DEF_VERSION,
                        op_registry::TENSORFLOW_VERSION
                    ),
                );
            }
        }
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for node in &graph.node {
            *counts.entry(node.name.as_str()).or_default() += 1;
        }
        let mut duplicates: Vec<(&str, usize)> =
            counts.into_iter().filter(|(_, n)| *n > 1).collect();
        duplicates.sort_unstable();
        for (name, n) in duplicates {
            self.error(
                format_args!("node '{name}'"),
                format!(
                    "{n} nodes are named '{name}' (tensorflow: \"Node '{name}' is not unique\")"
                ),
            );
        }
        let mut pinned: BTreeSet<&str> = BTreeSet::new();
        for node in &graph.node {
            let location = format!("node '{}'", node.name);
            self.node(node, &location, producer);
            self.graph_inputs(node, &location);
            let device = node.device.to_ascii_lowercase();
            if device.contains("gpu") || device.contains("tpu") {
                pinned.insert(&node.device);
            }
        }
        // A warning: whether Serving loads this depends on the machine, not the
        // model. Serving with default flags does not allow soft placement
        // (`tensorflow_serving/model_servers/server.cc` sets only the GPU memory
        // fraction and thread counts of the session config), so it loads the graph
        // where the device exists and fails elsewhere.
        if !pinned.is_empty() {
            let devices: Vec<&str> = pinned.into_iter().collect();
            self.warning(
                "graph",
                format!(
                    "nodes are pinned to {}: tensorflow's c++ loader fails on a machine without \
                     that device unless the session allows soft placement",
                    devices.join(", ")
                ),
            );
        }
        if let Some(library) = &graph.library {
            for function in &library.function {
                let name = function.signature.as_ref().map_or("", |s| s.name.as_str());
                for node in &function.node_def {
                    let location = format!("function '{name}' node '{}'", node.name);
                    self.node(node, &location, producer);
                }
            }
        }
    }

    /// Checks a node's op and attrs (graph or function body).
    fn node(&mut self, node: &'a NodeDef, location: &str, producer: i32) {
        // A tensor-valued attr with an undefined shape fails at session
        // creation (ValidateSavedTensors in loader.cc), for any op.
        if let Some(Value::Tensor(t)) = node.attr.get("value").and_then(|a| a.value.as_ref()) {
            let shape = t.tensor_shape.as_ref();
            if shape.is_some_and(|s| s.unknown_rank || s.dim.iter().any(|d| d.size < 0)) {
                self.error(
                    location,
                    format!(
                        "its value tensor has shape {}, which is not fully defined",
                        shape_string(shape)
                    ),
                );
            }
        } else if node.op == "Const" {
            self.error(location, "a Const node without a tensor 'value' attr");
        }
        let op = match self.op_kind(&node.op) {
            OpKind::Registered(op) => op,
            // Calls of library functions carry the function's attrs.
            OpKind::Function => return,
            OpKind::Unknown => {
                let what = if node.op.is_empty() {
                    "the node has no op".to_owned()
                } else {
                    format!(
                        "op type '{}' is not registered in tensorflow {} (tensorflow: \"Op type \
                         not registered '{}'\")",
                        node.op,
                        op_registry::TENSORFLOW_VERSION,
                        node.op
                    )
                };
                self.error(location, what);
                return;
            }
        };
        if let Some(deprecation) = &op.deprecation {
            if deprecation.version > 0 && producer >= deprecation.version {
                self.error(
                    location,
                    format!(
                        "op {} was removed in graphdef version {}, and the graph's producer \
                         version is {producer}",
                        op.name, deprecation.version
                    ),
                );
            }
        }
        for name in node.attr.keys() {
            if name.starts_with('_') || op_registry::attr_def(op, name).is_some() {
                continue;
            }
            self.error(
                location,
                format!(
                    "attr '{name}' is not an attr of op {} in tensorflow {} (tensorflow 1.x and \
                     older tensorflow serving builds refuse it: \"NodeDef mentions attr '{name}' \
                     not in Op\")",
                    op.name,
                    op_registry::TENSORFLOW_VERSION
                ),
            );
        }
        for attr in &op.attr {
            if attr.default_value.is_none() && !node.attr.contains_key(&attr.name) {
                self.error(
                    location,
                    format!(
                        "required attr '{}' of op {} is missing (tensorflow: \"No attr named \
                         '{}' in NodeDef\")",
                        attr.name, op.name, attr.name
                    ),
                );
            }
        }
    }

    /// Checks a graph node's inputs: order, existence, count and data types.
    fn graph_inputs(&mut self, node: &'a NodeDef, location: &str) {
        let mut seen_control = false;
        let mut data_inputs: Vec<(&str, Option<i32>)> = Vec::new();
        let mut resolvable = true;
        for input in &node.input {
            if let Some(control) = input.strip_prefix('^') {
                seen_control = true;
                if self.meta_graph.node(control).is_none() {
                    self.error(
                        location,
                        format!("control input '{input}' names node '{control}', which is not in the graph"),
                    );
                }
                continue;
            }
            if seen_control {
                self.error(
                    location,
                    format!(
                        "data input '{input}' comes after a control input (tensorflow: \"Control \
                         dependencies must come after regular dependencies\")"
                    ),
                );
            }
            match self.meta_graph.resolve(input) {
                Ok(tensor) => data_inputs.push((input, tensor.dtype)),
                Err(e) => {
                    resolvable = false;
                    self.error(location, format!("input: {e}"));
                }
            }
        }
        let OpKind::Registered(op) = self.op_kind(&node.op) else {
            return;
        };
        let Ok(expected) = op_registry::input_types(op, &node.attr) else {
            return;
        };
        if !resolvable {
            return;
        }
        if expected.len() != data_inputs.len() {
            self.error(
                location,
                format!(
                    "{} has {} data input(s), but op {} with these attrs takes {}",
                    node.name,
                    data_inputs.len(),
                    op.name,
                    expected.len()
                ),
            );
            return;
        }
        for (i, ((input, actual), want)) in data_inputs.iter().zip(&expected).enumerate() {
            let Some(actual) = actual else { continue };
            if base_type(*actual) != base_type(*want) {
                self.error(
                    location,
                    format!(
                        "input {i} ('{input}') is {}, but op {} expects {} there (tensorflow: \
                         \"Input {i} of node {} was passed {} from {input} incompatible with \
                         expected {}\")",
                        dtype_name(base_type(*actual)),
                        op.name,
                        dtype_name(base_type(*want)),
                        node.name,
                        dtype_name(base_type(*actual)),
                        dtype_name(base_type(*want)),
                    ),
                );
            }
        }
    }
}
