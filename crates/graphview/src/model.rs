//! From a MetaGraph to the nodes and edges to draw: the subgraph a signature
//! runs, shapes on edges, signature inputs and outputs, name scopes
//! collapsed into boxes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use savedmodel::proto::tensorflow::{
    AttrValue, NodeDef, TensorInfo, TensorShapeProto, attr_value, tensor_info::Encoding,
};
use savedmodel::reader::{MetaGraph, TensorName};
use savedmodel_checkpoint::DType;

use crate::error::{Error, Result};

/// The signature drawn when none is named and the MetaGraph has it.
pub const DEFAULT_SIGNATURE: &str = "serving_default";

/// When no depth is given, name scopes are collapsed until at most this
/// many boxes remain.
pub const AUTO_COLLAPSE_NODES: usize = 300;

/// Which part of the graph to draw.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Selection {
    /// The signature whose outputs' dependencies are drawn (default
    /// `serving_default`, else the first signature).
    pub signature: Option<String>,
    /// Every node of the graph, not only what the signature runs.
    pub all: bool,
    /// Collapse name scopes deeper than this many `/`-separated parts into
    /// one box each (`None`: collapse only when the graph has more than
    /// [`AUTO_COLLAPSE_NODES`] nodes).
    pub depth: Option<usize>,
}

impl Selection {
    /// Sets [`signature`](Self::signature).
    pub fn with_signature(mut self, key: impl Into<String>) -> Self {
        self.signature = Some(key.into());
        self
    }

    /// Sets [`all`](Self::all).
    pub fn with_all(mut self, all: bool) -> Self {
        self.all = all;
        self
    }

    /// Sets [`depth`](Self::depth).
    pub fn with_depth(mut self, depth: usize) -> Self {
        self.depth = Some(depth);
        self
    }
}

/// What a drawn node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// An operation.
    Op,
    /// A variable (`VarHandleOp`, `VariableV2`, `Variable`).
    Variable,
    /// A signature input (the node feeding it), with its aliases.
    Input(Vec<String>),
    /// A signature output, drawn as its own node after the tensor.
    Output(String),
    /// A collapsed name scope and how many nodes it holds.
    Scope(usize),
}

/// A box of the drawing.
#[derive(Debug, Clone)]
pub struct ViewNode {
    /// The node (or scope) name, unique in the view.
    pub name: String,
    /// The op type (`MatMul`), `scope` or `output`.
    pub op: String,
    /// What it is.
    pub kind: NodeKind,
    /// The node's attrs in words, for the HTML panel and tooltips.
    pub attrs: Vec<(String, String)>,
}

/// An arrow of the drawing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewEdge {
    /// Index of the producing node.
    pub from: usize,
    /// Index of the consuming node.
    pub to: usize,
    /// The tensor's shape (`(-1, 784)`), or empty when unknown.
    pub label: String,
    /// A control dependency (`^name`).
    pub control: bool,
}

/// The nodes and edges to draw.
#[derive(Debug, Clone, Default)]
pub struct GraphView {
    /// The boxes.
    pub nodes: Vec<ViewNode>,
    /// The arrows.
    pub edges: Vec<ViewEdge>,
    /// A title: the signature drawn, or `all nodes`.
    pub title: String,
}

impl GraphView {
    /// The view of `meta` that `selection` asks for.
    pub fn from_meta_graph(meta: &MetaGraph<'_>, selection: &Selection) -> Result<Self> {
        let graph = meta.graph_def();
        let by_name: HashMap<&str, &NodeDef> =
            graph.node.iter().map(|n| (n.name.as_str(), n)).collect();
        let signatures = &meta.def().signature_def;
        let key = match &selection.signature {
            Some(key) => Some(key.clone()),
            None if signatures.contains_key(DEFAULT_SIGNATURE) => {
                Some(DEFAULT_SIGNATURE.to_owned())
            }
            None => signatures.keys().find(|k| !k.starts_with("__")).cloned(),
        };
        let signature = match &key {
            Some(key) => Some(signatures.get(key).ok_or_else(|| Error::NoSignature {
                key: key.clone(),
                available: signatures.keys().cloned().collect::<Vec<_>>().join(", "),
            })?),
            None => None,
        };

        // Which nodes: everything, or what the signature's outputs need.
        let keep: BTreeSet<&str> = match signature {
            Some(sig) if !selection.all => {
                let mut keep = BTreeSet::new();
                let mut stack = Vec::new();
                for info in sig.outputs.values() {
                    for tensor in savedmodel::reader::tensor_names(info) {
                        let node = node_of(tensor);
                        if !by_name.contains_key(node) {
                            return Err(Error::MissingNode {
                                signature: key.clone().unwrap_or_default(),
                                tensor: tensor.to_owned(),
                            });
                        }
                        stack.push(node);
                    }
                }
                while let Some(name) = stack.pop() {
                    let Some(node) = by_name.get(name) else {
                        continue;
                    };
                    if keep.insert(node.name.as_str()) {
                        stack.extend(node.input.iter().map(|i| node_of(i)));
                    }
                }
                keep
            }
            _ => graph.node.iter().map(|n| n.name.as_str()).collect(),
        };

        // Signature inputs by the node feeding them.
        let mut inputs: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        if let Some(sig) = signature {
            for (alias, info) in &sig.inputs {
                for tensor in savedmodel::reader::tensor_names(info) {
                    inputs
                        .entry(node_of(tensor))
                        .or_default()
                        .push(alias.clone());
                }
            }
        }

        let mut view = GraphView {
            title: match (&key, selection.all) {
                (Some(key), false) => format!("signature {key}"),
                _ => "all nodes".to_owned(),
            },
            ..GraphView::default()
        };
        let mut index: HashMap<&str, usize> = HashMap::new();
        for node in graph.node.iter().filter(|n| keep.contains(n.name.as_str())) {
            let kind = if let Some(aliases) = inputs.get(node.name.as_str()) {
                NodeKind::Input(aliases.clone())
            } else if matches!(node.op.as_str(), "VarHandleOp" | "VariableV2" | "Variable") {
                NodeKind::Variable
            } else {
                NodeKind::Op
            };
            index.insert(node.name.as_str(), view.nodes.len());
            view.nodes.push(ViewNode {
                name: node.name.clone(),
                op: node.op.clone(),
                kind,
                attrs: node
                    .attr
                    .iter()
                    .filter(|(k, _)| !k.starts_with('_') || *k == "_output_shapes")
                    .map(|(k, v)| (k.clone(), attr_text(v)))
                    .collect(),
            });
        }
        for node in graph.node.iter().filter(|n| keep.contains(n.name.as_str())) {
            let to = index[node.name.as_str()];
            for input in &node.input {
                let control = input.starts_with('^');
                let Some(&from) = index.get(node_of(input)) else {
                    continue;
                };
                let label = if control {
                    String::new()
                } else {
                    edge_shape(&by_name, input, signature.map(|s| &s.inputs))
                };
                view.edges.push(ViewEdge {
                    from,
                    to,
                    label,
                    control,
                });
            }
        }
        if let Some(sig) = signature {
            for (alias, info) in &sig.outputs {
                let to = view.nodes.len();
                view.nodes.push(ViewNode {
                    name: format!("output:{alias}"),
                    op: "output".to_owned(),
                    kind: NodeKind::Output(alias.clone()),
                    attrs: vec![("tensor".to_owned(), info_text(info))],
                });
                for tensor in savedmodel::reader::tensor_names(info) {
                    if let Some(&from) = index.get(node_of(tensor)) {
                        view.edges.push(ViewEdge {
                            from,
                            to,
                            label: shape_text(info.tensor_shape.as_ref()),
                            control: false,
                        });
                    }
                }
            }
        }
        let depth = match selection.depth {
            Some(depth) => Some(depth),
            None if view.nodes.len() > AUTO_COLLAPSE_NODES => Some(auto_depth(&view)),
            None => None,
        };
        Ok(match depth {
            Some(depth) => view.collapse(depth),
            None => view,
        })
    }

    /// Each node whose name has more than `depth` `/`-separated parts goes
    /// into the box of its first `depth` parts; edges between boxes are
    /// merged. Signature inputs and outputs are never collapsed.
    pub fn collapse(self, depth: usize) -> GraphView {
        let depth = depth.max(1);
        let mut out = GraphView {
            title: self.title,
            ..GraphView::default()
        };
        let mut group_of = Vec::with_capacity(self.nodes.len());
        let mut groups: HashMap<String, usize> = HashMap::new();
        for node in self.nodes {
            let parts: Vec<&str> = node.name.split('/').collect();
            let keep = parts.len() <= depth
                || matches!(node.kind, NodeKind::Input(_) | NodeKind::Output(_));
            if keep {
                group_of.push(out.nodes.len());
                out.nodes.push(node);
                continue;
            }
            let scope = parts[..depth].join("/");
            let i = *groups.entry(scope.clone()).or_insert_with(|| {
                out.nodes.push(ViewNode {
                    name: format!("{scope}/"),
                    op: "scope".to_owned(),
                    kind: NodeKind::Scope(0),
                    attrs: Vec::new(),
                });
                out.nodes.len() - 1
            });
            let group = &mut out.nodes[i];
            if let NodeKind::Scope(n) = &mut group.kind {
                *n += 1;
            }
            if group.attrs.len() < 40 {
                group.attrs.push((node.name.clone(), node.op.clone()));
            }
            group_of.push(i);
        }
        let mut seen = BTreeSet::new();
        for edge in self.edges {
            let (from, to) = (group_of[edge.from], group_of[edge.to]);
            if from != to && seen.insert((from, to, edge.control)) {
                out.edges.push(ViewEdge { from, to, ..edge });
            }
        }
        out
    }
}

/// The largest depth that leaves at most [`AUTO_COLLAPSE_NODES`] boxes (1
/// when none does).
fn auto_depth(view: &GraphView) -> usize {
    let max_depth = view
        .nodes
        .iter()
        .map(|n| n.name.split('/').count())
        .max()
        .unwrap_or(1);
    (1..=max_depth)
        .rev()
        .find(|&d| {
            let boxes: BTreeSet<String> = view
                .nodes
                .iter()
                .map(|n| n.name.split('/').take(d).collect::<Vec<_>>().join("/"))
                .collect();
            boxes.len() <= AUTO_COLLAPSE_NODES
        })
        .unwrap_or(1)
}

/// The node an input or tensor name refers to (`^a` -> `a`, `a:1` -> `a`).
fn node_of(input: &str) -> &str {
    let name = input.strip_prefix('^').unwrap_or(input);
    TensorName::parse(name).map_or(name, |t| t.node)
}

/// The shape of tensor `input`, when the graph says: `_output_shapes`, a
/// signature input's shape, a placeholder's or variable's `shape` attr, a
/// constant's value, a `ReadVariableOp` of a known variable.
fn edge_shape(
    by_name: &HashMap<&str, &NodeDef>,
    input: &str,
    signature_inputs: Option<&BTreeMap<String, TensorInfo>>,
) -> String {
    let Some(tensor) = TensorName::parse(input) else {
        return String::new();
    };
    if let Some(info) = signature_inputs.and_then(|inputs| {
        inputs.values().find(|info| {
            matches!(&info.encoding, Some(Encoding::Name(n)) if TensorName::parse(n) == Some(tensor))
        })
    }) {
        return shape_text(info.tensor_shape.as_ref());
    }
    let Some(node) = by_name.get(tensor.node) else {
        return String::new();
    };
    if let Some(attr_value::Value::List(list)) = attr(node, "_output_shapes") {
        let shape = usize::try_from(tensor.output)
            .ok()
            .and_then(|i| list.shape.get(i));
        return shape_text(shape);
    }
    if tensor.output != 0 {
        return String::new();
    }
    match node.op.as_str() {
        "Placeholder" | "PlaceholderWithDefault" | "VarHandleOp" | "VariableV2" => {
            match attr(node, "shape") {
                Some(attr_value::Value::Shape(s)) => shape_text(Some(s)),
                _ => String::new(),
            }
        }
        "Const" => match attr(node, "value") {
            Some(attr_value::Value::Tensor(t)) => shape_text(t.tensor_shape.as_ref()),
            _ => String::new(),
        },
        "ReadVariableOp" | "Identity" => node
            .input
            .first()
            .filter(|i| !i.starts_with('^'))
            .map(|i| edge_shape(by_name, i, None))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn attr<'n>(node: &'n NodeDef, key: &str) -> Option<&'n attr_value::Value> {
    node.attr.get(key).and_then(|a| a.value.as_ref())
}

fn shape_text(shape: Option<&TensorShapeProto>) -> String {
    match shape {
        None => String::new(),
        Some(s) if s.unknown_rank => "?".to_owned(),
        Some(s) => {
            let dims: Vec<String> = s.dim.iter().map(|d| d.size.to_string()).collect();
            format!("({})", dims.join(", "))
        }
    }
}

fn dtype_text(dtype: i32) -> String {
    DType::from_i32(dtype).map_or_else(|| format!("DataType {dtype}"), |d| d.name().to_owned())
}

fn info_text(info: &TensorInfo) -> String {
    let names = savedmodel::reader::tensor_names(info).join(", ");
    format!(
        "{names} {} {}",
        dtype_text(info.dtype),
        shape_text(info.tensor_shape.as_ref())
    )
}

/// An attr value in words, at most 200 characters.
fn attr_text(value: &AttrValue) -> String {
    use attr_value::Value;
    let mut text = match &value.value {
        None => String::new(),
        Some(Value::S(s)) => format!("\"{}\"", String::from_utf8_lossy(s)),
        Some(Value::I(i)) => i.to_string(),
        Some(Value::F(f)) => f.to_string(),
        Some(Value::B(b)) => b.to_string(),
        Some(Value::Type(t)) => dtype_text(*t),
        Some(Value::Shape(s)) => shape_text(Some(s)),
        Some(Value::Tensor(t)) => format!(
            "tensor {} {}",
            dtype_text(t.dtype),
            shape_text(t.tensor_shape.as_ref())
        ),
        Some(Value::List(l)) => {
            let mut items: Vec<String> = Vec::new();
            items.extend(
                l.s.iter()
                    .map(|s| format!("\"{}\"", String::from_utf8_lossy(s))),
            );
            items.extend(l.i.iter().map(i64::to_string));
            items.extend(l.f.iter().map(f32::to_string));
            items.extend(l.b.iter().map(bool::to_string));
            items.extend(l.r#type.iter().map(|t| dtype_text(*t)));
            items.extend(l.shape.iter().map(|s| shape_text(Some(s))));
            format!("[{}]", items.join(", "))
        }
        Some(Value::Func(f)) => f.name.clone(),
        Some(Value::Placeholder(p)) => format!("${p}"),
    };
    if text.len() > 200 {
        let mut cut = 200;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}
