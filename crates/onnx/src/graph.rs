//! Views of a graph and its nodes: the topological order check, the operator
//! set in force for a node, and typed attribute getters whose errors name
//! the node and the attribute.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::model::OnnxModel;
use crate::proto::attribute_proto::AttributeType;
use crate::proto::{AttributeProto, GraphProto, NodeProto, TensorProto};
use crate::tensor::TensorView;

/// A graph of a model (the main graph or a subgraph).
#[derive(Clone, Copy, Debug)]
pub struct GraphView<'m> {
    model: &'m OnnxModel,
    graph: &'m GraphProto,
}

impl<'m> GraphView<'m> {
    pub(crate) fn new(model: &'m OnnxModel, graph: &'m GraphProto) -> Self {
        GraphView { model, graph }
    }

    /// The decoded message.
    pub fn proto(&self) -> &'m GraphProto {
        self.graph
    }

    /// The graph's name.
    pub fn name(&self) -> &'m str {
        self.graph.name()
    }

    /// The nodes, in the file's order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeView<'m>> + use<'m> {
        let model = self.model;
        self.graph
            .node
            .iter()
            .enumerate()
            .map(move |(index, node)| NodeView { model, node, index })
    }

    /// The initializer named `name`.
    pub fn initializer(&self, name: &str) -> Option<&'m TensorProto> {
        self.graph.initializer.iter().find(|t| t.name() == name)
    }

    /// Checks that the nodes are in topological order (ONNX requires it):
    /// every non-empty input of a node is a graph input, an initializer, an
    /// output of an earlier node, or (in a subgraph) a value of an enclosing
    /// graph defined before the node that owns the subgraph; and no value is
    /// defined twice. Subgraphs are checked too. The error names the graph,
    /// the node and the value.
    pub fn check_topological_order(&self) -> Result<()> {
        self.check_scope(&mut Vec::new())
    }

    fn check_scope<'s>(&self, outer: &mut Vec<HashSet<&'s str>>) -> Result<()>
    where
        'm: 's,
    {
        let mut scope: HashSet<&str> = HashSet::new();
        let sparse_names = self
            .graph
            .sparse_initializer
            .iter()
            .filter_map(|s| s.values.as_ref().map(|v| v.name()));
        let declared = self
            .graph
            .input
            .iter()
            .map(|v| v.name())
            .chain(self.graph.initializer.iter().map(|t| t.name()))
            .chain(sparse_names);
        // An initializer may also be listed as an input: both declare it.
        scope.extend(declared);
        for node in self.nodes() {
            for input in &node.node.input {
                let input = input.as_str();
                if !input.is_empty()
                    && !scope.contains(input)
                    && !outer.iter().any(|s| s.contains(input))
                {
                    return Err(self.graph_error(
                        &node,
                        format!(
                            "input {input:?} is not defined before the node (not a graph input, initializer or earlier node's output)"
                        ),
                    ));
                }
            }
            for attribute in &node.node.attribute {
                for subgraph in attribute.g.iter().chain(&attribute.graphs) {
                    outer.push(scope.clone());
                    let checked = GraphView::new(self.model, subgraph).check_scope(outer);
                    outer.pop();
                    checked?;
                }
            }
            for output in &node.node.output {
                if !output.is_empty() && !scope.insert(output.as_str()) {
                    return Err(
                        self.graph_error(&node, format!("output {output:?} is already defined"))
                    );
                }
            }
        }
        Ok(())
    }

    fn graph_error(&self, node: &NodeView<'_>, detail: String) -> Error {
        Error::Graph {
            model: self.model.name().to_owned(),
            graph: self.name().to_owned(),
            node: node.label(),
            detail,
        }
    }
}

/// One node of a graph.
#[derive(Clone, Copy, Debug)]
pub struct NodeView<'m> {
    model: &'m OnnxModel,
    node: &'m NodeProto,
    index: usize,
}

impl<'m> NodeView<'m> {
    /// The decoded message.
    pub fn proto(&self) -> &'m NodeProto {
        self.node
    }

    /// The node's position in its graph.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The operator's name (`Conv`, `Gemm`, ...).
    pub fn op_type(&self) -> &'m str {
        self.node.op_type()
    }

    /// The operator set domain, `""` for the default one.
    pub fn domain(&self) -> &'m str {
        self.node.domain()
    }

    /// How errors name the node: `"name" (OpType)`, or `#index (OpType)`
    /// for an unnamed node.
    pub fn label(&self) -> String {
        match self.node.name() {
            "" => format!("#{} ({})", self.index, self.op_type()),
            name => format!("{name:?} ({})", self.op_type()),
        }
    }

    /// The version of the node's operator set the model imports.
    pub fn opset_version(&self) -> Result<i64> {
        self.model
            .opset_version(self.domain())
            .ok_or_else(|| Error::Opset {
                model: self.model.name().to_owned(),
                detail: format!(
                    "node {}: the model does not import operator set domain {:?}",
                    self.label(),
                    self.domain()
                ),
            })
    }

    fn attr_error(&self, attribute: &str, detail: String) -> Error {
        Error::Attribute {
            model: self.model.name().to_owned(),
            node: self.label(),
            attribute: attribute.to_owned(),
            detail,
        }
    }

    /// The attribute named `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&'m AttributeProto> {
        self.node.attribute.iter().find(|a| a.name() == name)
    }

    /// The attribute `name` if present, checked to be of type `expected`.
    fn typed(&self, name: &str, expected: AttributeType) -> Result<Option<&'m AttributeProto>> {
        let Some(attr) = self.attr(name) else {
            return Ok(None);
        };
        if !attr.ref_attr_name().is_empty() {
            return Err(self.attr_error(
                name,
                format!(
                    "refers to function attribute {:?}, which only a function body may do",
                    attr.ref_attr_name()
                ),
            ));
        }
        let found = attr.r#type();
        if found != expected {
            return Err(self.attr_error(
                name,
                format!(
                    "is of type {}, expected {}",
                    found.as_str_name(),
                    expected.as_str_name()
                ),
            ));
        }
        Ok(Some(attr))
    }

    /// `value`, or an error saying the required attribute `name` is missing.
    pub fn required<T>(&self, name: &str, value: Option<T>) -> Result<T> {
        value.ok_or_else(|| self.attr_error(name, "is required and missing".to_owned()))
    }

    /// An `INT` attribute.
    pub fn attr_i(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.typed(name, AttributeType::Int)?.map(|a| a.i()))
    }

    /// An `INT` attribute, `default` when absent.
    pub fn attr_i_or(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.attr_i(name)?.unwrap_or(default))
    }

    /// A `FLOAT` attribute.
    pub fn attr_f(&self, name: &str) -> Result<Option<f32>> {
        Ok(self.typed(name, AttributeType::Float)?.map(|a| a.f()))
    }

    /// A `FLOAT` attribute, `default` when absent.
    pub fn attr_f_or(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self.attr_f(name)?.unwrap_or(default))
    }

    /// A `STRING` attribute, which must be UTF-8.
    pub fn attr_s(&self, name: &str) -> Result<Option<&'m str>> {
        let Some(attr) = self.typed(name, AttributeType::String)? else {
            return Ok(None);
        };
        std::str::from_utf8(attr.s())
            .map(Some)
            .map_err(|e| self.attr_error(name, format!("is not UTF-8: {e}")))
    }

    /// A `STRING` attribute, `default` when absent.
    pub fn attr_s_or(&self, name: &str, default: &'m str) -> Result<&'m str> {
        Ok(self.attr_s(name)?.unwrap_or(default))
    }

    /// An `INTS` attribute.
    pub fn attr_ints(&self, name: &str) -> Result<Option<&'m [i64]>> {
        Ok(self
            .typed(name, AttributeType::Ints)?
            .map(|a| a.ints.as_slice()))
    }

    /// A `FLOATS` attribute.
    pub fn attr_floats(&self, name: &str) -> Result<Option<&'m [f32]>> {
        Ok(self
            .typed(name, AttributeType::Floats)?
            .map(|a| a.floats.as_slice()))
    }

    /// A `STRINGS` attribute, each UTF-8.
    pub fn attr_strings(&self, name: &str) -> Result<Option<Vec<&'m str>>> {
        let Some(attr) = self.typed(name, AttributeType::Strings)? else {
            return Ok(None);
        };
        attr.strings
            .iter()
            .enumerate()
            .map(|(i, s)| {
                std::str::from_utf8(s)
                    .map_err(|e| self.attr_error(name, format!("string {i} is not UTF-8: {e}")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// A `TENSOR` attribute's type, shape and bytes.
    pub fn attr_tensor(&self, name: &str) -> Result<Option<TensorView<'m>>> {
        let Some(attr) = self.typed(name, AttributeType::Tensor)? else {
            return Ok(None);
        };
        let Some(tensor) = &attr.t else {
            return Err(self.attr_error(name, "is of type TENSOR but has no tensor".to_owned()));
        };
        self.model.tensor(tensor).map(Some)
    }

    /// A `GRAPH` attribute (the body of `If`, `Loop`, `Scan`).
    pub fn attr_graph(&self, name: &str) -> Result<Option<GraphView<'m>>> {
        let Some(attr) = self.typed(name, AttributeType::Graph)? else {
            return Ok(None);
        };
        let Some(graph) = &attr.g else {
            return Err(self.attr_error(name, "is of type GRAPH but has no graph".to_owned()));
        };
        Ok(Some(GraphView::new(self.model, graph)))
    }
}
