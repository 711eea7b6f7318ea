//! A builder of TensorFlow `GraphDef`s.
//!
//! [`Graph`] appends `NodeDef`s the way TensorFlow's Python graph
//! construction does: node names are made unique with TensorFlow's rule
//! (`MatMul`, `MatMul_1`, compared case-insensitively), name scopes prefix
//! them (`dense/MatMul`), control dependencies are written as `^name` after
//! the data inputs, and every output carries its dtype and static shape so
//! that signatures get exact `TensorInfo`s.
//!
//! The typed constructors (`graph.matmul(..)`, `graph.placeholder(..)`, ...)
//! live in [`crate::ops`]; [`Graph::op`] builds any other op type when its
//! output types are given explicitly.
//!
//! Every node is checked against TensorFlow 2.21's definition of its op
//! ([`crate::op_registry`]), and only attrs that differ from the registered
//! default are written, so the graph also loads in TensorFlow builds older
//! than the attrs (docs/formats.md, section 13 "GraphDef nodes: attrs,
//! defaults and the op registry").
//!
//! Variables' values are not part of the `GraphDef`: the graph keeps each
//! one as a [`VariableValue`] (an owned [`Tensor`] moved in without a copy,
//! or a [`TensorSource`](crate::tensor::TensorSource) read only when the
//! checkpoint is written), and cloning a graph shares the values.

mod function;
mod shape;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use savedmodel_checkpoint::DType;
use savedmodel_proto::tensorflow::{
    AttrValue, FunctionDef, FunctionDefLibrary, GraphDef, NameAttrList, NodeDef, OpDef, VersionDef,
    attr_value,
};

pub use shape::Shape;

use crate::error::{Error, Result};
use crate::op_registry::{self, OpRegistry};
use crate::tensor::{Tensor, VariableValue};

/// One output of a node: a tensor flowing through the graph.
///
/// Its [`name`](Output::name) (`node:index`) is what `TensorInfo`s and
/// session feeds and fetches use.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Output {
    node: String,
    index: usize,
    dtype: DType,
    shape: Shape,
}

impl Output {
    /// The node producing this output.
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// The output index within the node.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The static shape inferred when the node was built.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The tensor name, `node:index` (e.g. `x:0`).
    pub fn name(&self) -> String {
        format!("{}:{}", self.node, self.index)
    }

    /// How a `NodeDef` input refers to this output: `node` for output 0,
    /// `node:k` otherwise.
    pub fn input_ref(&self) -> String {
        if self.index == 0 {
            self.node.clone()
        } else {
            self.name()
        }
    }
}

/// A node of the graph, as a handle for control dependencies and targets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operation {
    name: String,
    op_type: String,
    outputs: Vec<Output>,
}

impl Operation {
    /// The node name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The op type (`MatMul`, `NoOp`, ...).
    pub fn op_type(&self) -> &str {
        &self.op_type
    }

    /// The outputs, in order.
    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// Output `index`.
    pub fn output(&self, index: usize) -> Result<Output> {
        self.outputs
            .get(index)
            .cloned()
            .ok_or_else(|| Error::Graph {
                node: self.name.clone(),
                what: format!(
                    "{} has {} outputs, no output {index}",
                    self.op_type,
                    self.outputs.len()
                ),
            })
    }
}

/// An attr value for [`OpBuilder::attr`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Attr {
    /// `b`.
    Bool(bool),
    /// `i`.
    Int(i64),
    /// `f`.
    Float(f32),
    /// `s`.
    Str(Vec<u8>),
    /// `type`.
    Type(DType),
    /// `shape`.
    Shape(Shape),
    /// `tensor`.
    Tensor(Tensor),
    /// `list { i }`.
    IntList(Vec<i64>),
    /// `list { type }`.
    TypeList(Vec<DType>),
    /// `list { shape }`.
    ShapeList(Vec<Shape>),
    /// `list { s }`.
    StrList(Vec<Vec<u8>>),
    /// `func`.
    Func(String),
    /// Any `AttrValue`, as is.
    Raw(Box<AttrValue>),
}

impl Attr {
    /// The `AttrValue` proto.
    pub fn to_proto(&self) -> AttrValue {
        use attr_value::{ListValue, Value};
        let list = |l: ListValue| Value::List(l);
        let value = match self {
            Attr::Bool(b) => Value::B(*b),
            Attr::Int(i) => Value::I(*i),
            Attr::Float(f) => Value::F(*f),
            Attr::Str(s) => Value::S(s.clone()),
            Attr::Type(t) => Value::Type(t.as_i32()),
            Attr::Shape(s) => Value::Shape(s.to_proto()),
            Attr::Tensor(t) => Value::Tensor(t.to_proto()),
            Attr::IntList(v) => list(ListValue {
                i: v.clone(),
                ..Default::default()
            }),
            Attr::TypeList(v) => list(ListValue {
                r#type: v.iter().map(|t| t.as_i32()).collect(),
                ..Default::default()
            }),
            Attr::ShapeList(v) => list(ListValue {
                shape: v.iter().map(Shape::to_proto).collect(),
                ..Default::default()
            }),
            Attr::StrList(v) => list(ListValue {
                s: v.clone(),
                ..Default::default()
            }),
            Attr::Func(name) => Value::Func(NameAttrList {
                name: name.clone(),
                attr: BTreeMap::new(),
            }),
            Attr::Raw(v) => return (**v).clone(),
        };
        AttrValue { value: Some(value) }
    }
}

macro_rules! attr_from {
    ($t:ty, $v:ident => $e:expr) => {
        impl From<$t> for Attr {
            fn from($v: $t) -> Attr {
                $e
            }
        }
    };
}
attr_from!(bool, v => Attr::Bool(v));
attr_from!(i64, v => Attr::Int(v));
attr_from!(f32, v => Attr::Float(v));
attr_from!(&str, v => Attr::Str(v.as_bytes().to_vec()));
attr_from!(String, v => Attr::Str(v.into_bytes()));
attr_from!(DType, v => Attr::Type(v));
attr_from!(Shape, v => Attr::Shape(v));
attr_from!(Tensor, v => Attr::Tensor(v));
attr_from!(Vec<i64>, v => Attr::IntList(v));
attr_from!(Vec<DType>, v => Attr::TypeList(v));
attr_from!(Vec<Shape>, v => Attr::ShapeList(v));
attr_from!(AttrValue, v => Attr::Raw(Box::new(v)));

/// What the saver needs to know about one variable (or one part of a
/// partitioned variable).
#[derive(Clone, Debug)]
pub struct VariableRecord {
    /// The `VarHandleOp` node.
    pub handle: Output,
    /// The variable's `ReadVariableOp` (what `SaveV2` saves).
    pub read: Output,
    /// The checkpoint key: the variable name, or the full name of a
    /// partitioned variable.
    pub checkpoint_name: String,
    /// For a part of a partitioned variable: the full shape and this part's
    /// offsets; `None` for a whole variable.
    pub partition: Option<Partition>,
    /// The value written to the checkpoint (shared, not copied, with the
    /// caller and with every builder the record is merged into).
    pub value: VariableValue,
    /// Which saver shard (data file) holds it.
    pub shard: usize,
}

/// Where one part sits in a partitioned variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// The shape of the whole (unpartitioned) variable.
    pub full_shape: Vec<i64>,
    /// Where this part starts in the whole variable, per dimension.
    pub offsets: Vec<i64>,
}

impl Partition {
    /// The `SaveV2`/`RestoreV2` `shape_and_slices` spec: `"5 3 0,3:0,3"`
    /// (docs/formats.md, section 6 "Partitioned tensors and slice keys").
    pub fn spec(&self, part_shape: &[i64]) -> String {
        let dims: Vec<String> = self.full_shape.iter().map(i64::to_string).collect();
        let slices: Vec<String> = self
            .offsets
            .iter()
            .zip(part_shape)
            .map(|(o, l)| format!("{o},{l}"))
            .collect();
        format!("{} {}", dims.join(" "), slices.join(":"))
    }
}

/// An asset file the graph refers to through a string tensor.
#[derive(Clone, Debug)]
pub struct AssetRecord {
    /// The string `Const` whose value the loader replaces with the asset's
    /// path (`node:0`).
    pub tensor: Output,
    /// The file to copy into `assets/`.
    pub source: PathBuf,
    /// The requested file name in `assets/` (the source's basename unless
    /// given).
    pub filename: String,
}

/// Checks a node's attrs against TensorFlow's definition of its op (the
/// embedded [`OpRegistry`]) and leaves out those equal to their registered
/// default, as `strip_default_attrs` does (docs/formats.md, section 13): an
/// unregistered op type, an attr the op does not declare, a value of the
/// wrong type or outside `allowed_values`, and a missing required attr are
/// errors here rather than when TensorFlow imports the graph. Attrs whose
/// name starts with `_` are TensorFlow's internal ones (`_class`,
/// `_output_shapes`) and are not declared by ops; they pass unchecked.
fn registered_attrs(
    node: &str,
    op_type: &str,
    given: BTreeMap<String, AttrValue>,
) -> Result<(&'static OpDef, BTreeMap<String, AttrValue>)> {
    let error = |what: String| Error::Graph {
        node: node.to_owned(),
        what,
    };
    let version = op_registry::TENSORFLOW_VERSION;
    let Some(def) = OpRegistry::tensorflow().get(op_type) else {
        return Err(error(format!(
            "op type {op_type:?} is not registered in TensorFlow {version}"
        )));
    };
    let mut attrs = BTreeMap::new();
    for (attr, value) in given {
        if attr.starts_with('_') {
            attrs.insert(attr, value);
            continue;
        }
        let Some(attr_def) = op_registry::attr_def(def, &attr) else {
            return Err(error(format!(
                "op {op_type} has no attr {attr:?} in TensorFlow {version}"
            )));
        };
        if let Some(problem) = op_registry::attr_value_problem(attr_def, &value) {
            return Err(error(format!("attr {attr:?} of op {op_type} {problem}")));
        }
        if attr_def.default_value.as_ref() != Some(&value) {
            attrs.insert(attr, value);
        }
    }
    for attr_def in &def.attr {
        if attr_def.default_value.is_none() && !attrs.contains_key(&attr_def.name) {
            return Err(error(format!(
                "op {op_type} needs attr {:?}",
                attr_def.name
            )));
        }
    }
    Ok((def, attrs))
}

/// The node's outputs: with `infer`, their dtypes as TensorFlow's op
/// definition gives them for these attrs (`shapes` unknown beyond those
/// given); otherwise the declared ones, which must be what TensorFlow
/// computes, so that a signature's dtype is always the one Serving sees.
fn registered_outputs(
    node: &str,
    def: &OpDef,
    attrs: &BTreeMap<String, AttrValue>,
    declared: Vec<(DType, Shape)>,
    infer: Option<Vec<Shape>>,
) -> Result<Vec<(DType, Shape)>> {
    let error = |what: String| Error::Graph {
        node: node.to_owned(),
        what,
    };
    let types = op_registry::output_types(def, attrs);
    let Some(mut shapes) = infer else {
        if let Ok(types) = types {
            let declared_types: Vec<i32> = declared.iter().map(|(d, _)| d.as_i32()).collect();
            if declared_types != types {
                return Err(error(format!(
                    "declares outputs {declared_types:?}, but TensorFlow's {} gives {types:?} for these attrs",
                    def.name
                )));
            }
        }
        return Ok(declared);
    };
    let types = types.map_err(|e| {
        error(format!(
            "the output types of {} cannot be computed: {e}",
            def.name
        ))
    })?;
    shapes.resize(types.len(), Shape::unknown());
    types
        .into_iter()
        .zip(shapes)
        .map(|(t, shape)| {
            DType::from_i32(t)
                .map(|d| (d, shape))
                .ok_or_else(|| error(format!("output data type {t} has no DType")))
        })
        .collect()
}

#[derive(Clone, Debug)]
struct NodeInfo {
    index: usize,
    outputs: Vec<(DType, Shape)>,
    constant: Option<Tensor>,
}

/// A TensorFlow graph under construction.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<NodeDef>,
    info: HashMap<String, NodeInfo>,
    /// Lower-cased names (and name scopes) in use, with the next suffix to
    /// try (TensorFlow's `Graph._names_in_use`).
    names_in_use: HashMap<String, usize>,
    name_stack: String,
    control_stack: Vec<Vec<String>>,
    device_stack: Vec<String>,
    pub(crate) variables: Vec<VariableRecord>,
    pub(crate) table_initializers: Vec<Operation>,
    pub(crate) assets: Vec<AssetRecord>,
    /// The function library ([`Graph::add_function`]).
    pub(crate) functions: Vec<FunctionDef>,
}

/// Whether `name` is a valid node name: `[A-Za-z0-9.][A-Za-z0-9_.\-/>]*`
/// (`tensorflow/core/graph/graph_def_builder.cc`, Python's
/// `_VALID_OP_NAME_REGEX`).
pub fn is_valid_node_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() || c == '.' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | '>'))
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `name` unique the way TensorFlow's `Graph.unique_name` does,
    /// with the current name scope prefixed, and marks it used: `MatMul`,
    /// then `MatMul_1`, `MatMul_2`, ... Names are compared
    /// case-insensitively; the returned name keeps the given case.
    pub fn unique_name(&mut self, name: &str) -> String {
        let name = if self.name_stack.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{}", self.name_stack, name)
        };
        let key = name.to_lowercase();
        let mut i = self.names_in_use.get(&key).copied().unwrap_or(0);
        self.names_in_use.insert(key.clone(), i + 1);
        if i == 0 {
            return name;
        }
        let mut candidate = format!("{key}_{i}");
        while self.names_in_use.contains_key(&candidate) {
            i += 1;
            candidate = format!("{key}_{i}");
        }
        self.names_in_use.insert(candidate, 1);
        format!("{name}_{i}")
    }

    /// Runs `f` inside name scope `name`: nodes built there are named
    /// `name/...`. Like TensorFlow, a scope name already in use gets a
    /// suffix (`dense_1`). Scopes nest.
    pub fn name_scope<R>(&mut self, name: &str, f: impl FnOnce(&mut Graph) -> R) -> R {
        let scope = self.unique_name(name);
        let saved = std::mem::replace(&mut self.name_stack, scope);
        let result = f(self);
        self.name_stack = saved;
        result
    }

    /// Runs `f` outside every name scope (for names that already carry
    /// their full scope).
    pub fn at_root<R>(&mut self, f: impl FnOnce(&mut Graph) -> R) -> R {
        let saved = std::mem::take(&mut self.name_stack);
        let result = f(self);
        self.name_stack = saved;
        result
    }

    /// The current name scope (`""` at the top).
    pub fn current_name_scope(&self) -> &str {
        &self.name_stack
    }

    /// Runs `f` with control dependencies on `ops`: every node built there
    /// runs after them.
    pub fn with_control_dependencies<R>(
        &mut self,
        ops: &[&Operation],
        f: impl FnOnce(&mut Graph) -> R,
    ) -> R {
        self.control_stack
            .push(ops.iter().map(|o| o.name.clone()).collect());
        let result = f(self);
        self.control_stack.pop();
        result
    }

    /// Runs `f` outside every enclosing `with_control_dependencies`.
    pub fn without_control_dependencies<R>(&mut self, f: impl FnOnce(&mut Graph) -> R) -> R {
        let saved = std::mem::take(&mut self.control_stack);
        let result = f(self);
        self.control_stack = saved;
        result
    }

    /// Runs `f` with nodes placed on `device` (e.g. `/device:GPU:0`) unless
    /// they name a device themselves.
    pub fn with_device<R>(&mut self, device: &str, f: impl FnOnce(&mut Graph) -> R) -> R {
        self.device_stack.push(device.to_owned());
        let result = f(self);
        self.device_stack.pop();
        result
    }

    /// Starts a node of any op type, for ops without a typed constructor.
    /// The output dtypes and shapes must be given with
    /// [`OpBuilder::output`]; attrs are written as given (stripped of
    /// defaults when the op is one this crate knows).
    pub fn op(&mut self, op_type: &str, name: &str) -> OpBuilder<'_> {
        OpBuilder {
            graph: self,
            op_type: op_type.to_owned(),
            name: name.to_owned(),
            inputs: Vec::new(),
            input_nodes: Vec::new(),
            control: Vec::new(),
            attrs: BTreeMap::new(),
            outputs: Vec::new(),
            infer_outputs: None,
            device: None,
            error: None,
            exact: false,
        }
    }

    /// The nodes built so far, in order.
    pub fn nodes(&self) -> &[NodeDef] {
        &self.nodes
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&NodeDef> {
        self.info.get(name).and_then(|i| self.nodes.get(i.index))
    }

    /// The node named `name` as an [`Operation`] handle.
    pub fn operation(&self, name: &str) -> Option<Operation> {
        let info = self.info.get(name)?;
        let node = self.nodes.get(info.index)?;
        Some(Operation {
            name: name.to_owned(),
            op_type: node.op.clone(),
            outputs: info
                .outputs
                .iter()
                .enumerate()
                .map(|(index, (dtype, shape))| Output {
                    node: name.to_owned(),
                    index,
                    dtype: *dtype,
                    shape: shape.clone(),
                })
                .collect(),
        })
    }

    /// The output named `node:index` (or `node` for output 0).
    pub fn output_by_name(&self, name: &str) -> Result<Output> {
        let (node, index) = match name.rsplit_once(':') {
            Some((node, index)) => (node, index.parse::<usize>().ok()),
            None => (name, Some(0)),
        };
        let op = self.operation(node).ok_or_else(|| Error::Graph {
            node: node.to_owned(),
            what: "no such node in the graph".into(),
        })?;
        let index = index.ok_or_else(|| Error::Graph {
            node: name.to_owned(),
            what: "not a tensor name (node:index)".into(),
        })?;
        op.output(index)
    }

    /// The value of a `Const` node, for shape inference.
    pub fn constant_value(&self, output: &Output) -> Option<&Tensor> {
        if output.index != 0 {
            return None;
        }
        self.info.get(&output.node)?.constant.as_ref()
    }

    /// Remembers the value of the `Const` producing `output`, for later
    /// shape inference.
    pub(crate) fn record_constant(&mut self, output: &Output, value: Tensor) {
        if let Some(info) = self.info.get_mut(&output.node) {
            info.constant = Some(value);
        }
    }

    /// The `GraphDef`, with `versions.producer` set to TensorFlow 2.21's.
    pub fn to_graph_def(&self) -> GraphDef {
        GraphDef {
            node: self.nodes.clone(),
            versions: Some(VersionDef {
                // 2.21's value asks for 2.21's semantics from kernels whose
                // behaviour changed over time.
                producer: op_registry::GRAPH_DEF_VERSION,
                min_consumer: 0,
                bad_consumers: Vec::new(),
            }),
            library: (!self.functions.is_empty()).then(|| FunctionDefLibrary {
                function: self.functions.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Creates an op that runs after every op in `ops` and does nothing
    /// (`NoOp` with control inputs), like `tf.group`.
    pub fn group(&mut self, name: &str, ops: &[&Operation]) -> Result<Operation> {
        let mut b = self.op("NoOp", name);
        for op in ops {
            b = b.control_input(op);
        }
        b.build()
    }

    /// The ops that initialize lookup tables, in creation order; the
    /// SavedModel's init op runs them.
    pub fn table_initializers(&self) -> &[Operation] {
        &self.table_initializers
    }

    /// The variables created in this graph, in creation order (what the
    /// saver saves and the SavedModel writer puts in `variables/`).
    pub fn variables(&self) -> &[VariableRecord] {
        &self.variables
    }

    /// Takes the variables' records out of the graph (a SavedModel builder
    /// that has consumed the graph keeps them), leaving none.
    pub fn take_variables(&mut self) -> Vec<VariableRecord> {
        std::mem::take(&mut self.variables)
    }

    /// The asset files the graph refers to, in creation order.
    pub fn assets(&self) -> &[AssetRecord] {
        &self.assets
    }

    /// Registers `op` as a table initializer, run by the SavedModel's init op
    /// (`tf.compat.v1.tables_initializer`'s collection).
    pub fn add_table_initializer(&mut self, op: &Operation) {
        self.table_initializers.push(op.clone());
    }

    fn add_node(&mut self, b: NodeSpec) -> Result<Operation> {
        if !is_valid_node_name(&b.name) {
            return Err(Error::Graph {
                node: b.name,
                what: "invalid node name (must match [A-Za-z0-9.][A-Za-z0-9_.\\-/>]*)".into(),
            });
        }
        let name = if b.exact {
            // A name reserved earlier with `unique_name` (TensorFlow's
            // `name_scope(name) as scope` idiom): used as is.
            if self.info.contains_key(&b.name) {
                return Err(Error::Graph {
                    node: b.name,
                    what: "a node with this name already exists".into(),
                });
            }
            self.names_in_use.entry(b.name.to_lowercase()).or_insert(1);
            b.name
        } else {
            self.unique_name(&b.name)
        };
        let (def, attrs) = registered_attrs(&name, &b.op_type, b.attrs)?;
        let outputs = registered_outputs(&name, def, &attrs, b.outputs, b.infer_outputs)?;
        // Control inputs: explicit ones, then the enclosing
        // `with_control_dependencies` scopes; never a node that is already a
        // data input (as TensorFlow's `_control_dependencies_for_inputs`).
        let mut control: Vec<String> = Vec::new();
        for c in b.control.iter().chain(self.control_stack.iter().flatten()) {
            if !b.input_nodes.contains(c) && !control.contains(c) {
                control.push(c.clone());
            }
        }
        for c in &control {
            if !self.info.contains_key(c) {
                return Err(Error::Graph {
                    node: name,
                    what: format!("control input {c:?} is not a node of this graph"),
                });
            }
        }
        let mut input = b.inputs;
        input.extend(control.iter().map(|c| format!("^{c}")));
        let device = b
            .device
            .or_else(|| self.device_stack.last().cloned())
            .unwrap_or_default();
        let node = NodeDef {
            name: name.clone(),
            op: b.op_type.clone(),
            input,
            device,
            attr: attrs,
            ..Default::default()
        };
        let info = NodeInfo {
            index: self.nodes.len(),
            outputs: outputs.clone(),
            constant: None,
        };
        self.nodes.push(node);
        self.info.insert(name.clone(), info);
        Ok(Operation {
            outputs: outputs
                .into_iter()
                .enumerate()
                .map(|(index, (dtype, shape))| Output {
                    node: name.clone(),
                    index,
                    dtype,
                    shape,
                })
                .collect(),
            name,
            op_type: b.op_type,
        })
    }

    /// Builds a `Const` node holding `value`.
    pub fn constant(&mut self, name: &str, value: Tensor) -> Result<Output> {
        let shape = Shape::new(value.shape());
        let dtype = value.dtype();
        let op = self
            .op("Const", name)
            .attr("value", value.clone())
            .attr("dtype", dtype)
            .output(dtype, shape)
            .build_output()?;
        self.record_constant(&op, value);
        Ok(op)
    }

    /// Checks that `output` belongs to this graph (same node, index and
    /// dtype), so a handle from another graph is not wired in by mistake.
    pub fn check_output(&self, output: &Output) -> Result<()> {
        let ok = self
            .info
            .get(&output.node)
            .and_then(|i| i.outputs.get(output.index))
            .is_some_and(|(dtype, _)| *dtype == output.dtype);
        if ok {
            Ok(())
        } else {
            Err(Error::Graph {
                node: output.node.clone(),
                what: format!(
                    "{} ({}) is not an output of this graph",
                    output.name(),
                    output.dtype
                ),
            })
        }
    }
}

struct NodeSpec {
    op_type: String,
    name: String,
    inputs: Vec<String>,
    input_nodes: Vec<String>,
    control: Vec<String>,
    attrs: BTreeMap<String, AttrValue>,
    outputs: Vec<(DType, Shape)>,
    infer_outputs: Option<Vec<Shape>>,
    device: Option<String>,
    exact: bool,
}

/// A node under construction: inputs, attrs and outputs, then
/// [`build`](OpBuilder::build).
#[must_use = "an OpBuilder does nothing until build() is called"]
pub struct OpBuilder<'g> {
    graph: &'g mut Graph,
    op_type: String,
    name: String,
    inputs: Vec<String>,
    input_nodes: Vec<String>,
    control: Vec<String>,
    attrs: BTreeMap<String, AttrValue>,
    outputs: Vec<(DType, Shape)>,
    infer_outputs: Option<Vec<Shape>>,
    device: Option<String>,
    error: Option<Error>,
    exact: bool,
}

impl OpBuilder<'_> {
    /// Appends a data input.
    pub fn input(mut self, output: &Output) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.graph.check_output(output) {
                self.error = Some(e);
            }
        }
        self.inputs.push(output.input_ref());
        self.input_nodes.push(output.node.clone());
        self
    }

    /// Appends a list input (e.g. the `values` of `ConcatV2`).
    pub fn inputs(mut self, outputs: &[Output]) -> Self {
        for o in outputs {
            self = self.input(o);
        }
        self
    }

    /// Adds a control input: this node runs after `op`.
    pub fn control_input(mut self, op: &Operation) -> Self {
        self.control.push(op.name.clone());
        self
    }

    /// Sets an attr.
    pub fn attr(mut self, name: &str, value: impl Into<Attr>) -> Self {
        self.attrs.insert(name.to_owned(), value.into().to_proto());
        self
    }

    /// Declares the next output's dtype and static shape.
    pub fn output(mut self, dtype: DType, shape: impl Into<Shape>) -> Self {
        self.outputs.push((dtype, shape.into()));
        self
    }

    /// Places the node on `device`.
    pub fn device(mut self, device: &str) -> Self {
        self.device = Some(device.to_owned());
        self
    }

    /// Adds the node to the graph.
    pub fn build(self) -> Result<Operation> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.graph.add_node(NodeSpec {
            op_type: self.op_type,
            name: self.name,
            inputs: self.inputs,
            input_nodes: self.input_nodes,
            control: self.control,
            attrs: self.attrs,
            outputs: self.outputs,
            infer_outputs: self.infer_outputs,
            device: self.device,
            exact: self.exact,
        })
    }

    /// Takes the outputs' dtypes from TensorFlow's definition of the op
    /// (for the attrs given, defaults filled in) instead of declaring them;
    /// `shapes` are the outputs' static shapes where known (missing ones
    /// are unknown). Outputs declared with [`output`](Self::output) are
    /// ignored.
    pub fn infer_outputs(mut self, shapes: Vec<Shape>) -> Self {
        self.infer_outputs = Some(shapes);
        self
    }

    /// Uses the name as given, without scope prefix or suffix: for names
    /// reserved beforehand with [`Graph::unique_name`].
    pub fn exact_name(mut self) -> Self {
        self.exact = true;
        self
    }

    /// Adds the node and returns its only output.
    pub fn build_output(self) -> Result<Output> {
        self.build()?.output(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_names_outputs_by_output_arg_and_arguments_by_name() {
        let mut body = Graph::new();
        let x = body
            .placeholder("x", DType::Float, Shape::new(&[4]))
            .unwrap();
        let axis = body.constant("axis", Tensor::scalar(0i32)).unwrap();
        let parts = body
            .op("Split", "split")
            .input(&axis)
            .input(&x)
            .attr("T", DType::Float)
            .attr("num_split", 2i64)
            .infer_outputs(vec![Shape::new(&[2]), Shape::new(&[2])])
            .build()
            .unwrap();
        let second = parts.output(1).unwrap();
        let mut g = Graph::new();
        g.add_function("second_half", &body, std::slice::from_ref(&x), &[second])
            .unwrap();
        let f = &g.functions()[0];
        let split = f.node_def.iter().find(|n| n.name == "split").unwrap();
        assert_eq!(split.input, ["axis:output:0", "arg0"]);
        assert_eq!(f.ret["output0"], "split:output:1");
        assert!(f.node_def.iter().all(|n| n.op != "Placeholder"));
        assert_eq!(g.to_graph_def().library.unwrap().function.len(), 1);
        // The same name twice, or an argument that is no Placeholder, is
        // an error naming the function.
        let err = g.add_function("second_half", &body, &[x], &[]).unwrap_err();
        assert!(err.to_string().contains("function second_half"), "{err}");
        let err = g.add_function("other", &body, &[axis], &[]).unwrap_err();
        assert!(err.to_string().contains("not a Placeholder"), "{err}");
    }

    #[test]
    fn unique_names_follow_tensorflow() {
        let mut g = Graph::new();
        assert_eq!(g.unique_name("MatMul"), "MatMul");
        assert_eq!(g.unique_name("MatMul"), "MatMul_1");
        assert_eq!(g.unique_name("matmul"), "matmul_2");
        assert_eq!(g.unique_name("MatMul_1"), "MatMul_1_1");
        assert_eq!(g.unique_name("a_1"), "a_1");
        assert_eq!(g.unique_name("a"), "a");
        assert_eq!(g.unique_name("a"), "a_2");
    }

    #[test]
    fn scopes_and_control_dependencies() {
        let mut g = Graph::new();
        let c = g.constant("c", Tensor::scalar(1.0f32)).unwrap();
        let (m1, m2) = g.name_scope("dense", |g| {
            let m1 = g
                .op("Identity", "MatMul")
                .input(&c)
                .attr("T", DType::Float)
                .output(DType::Float, Shape::scalar())
                .build()
                .unwrap();
            let m2 = g
                .op("Identity", "MatMul")
                .input(&c)
                .attr("T", DType::Float)
                .output(DType::Float, Shape::scalar())
                .build()
                .unwrap();
            (m1, m2)
        });
        assert_eq!(m1.name(), "dense/MatMul");
        assert_eq!(m2.name(), "dense/MatMul_1");
        let s = g.name_scope("dense", |g| g.current_name_scope().to_owned());
        assert_eq!(s, "dense_1");
        let n = g
            .with_control_dependencies(&[&m1, &m2], |g| {
                g.op("Identity", "after")
                    .input(&m1.output(0).unwrap())
                    .attr("T", DType::Float)
                    .output(DType::Float, Shape::scalar())
                    .build()
            })
            .unwrap();
        assert_eq!(
            g.node(n.name()).unwrap().input,
            vec!["dense/MatMul", "^dense/MatMul_1"]
        );
    }

    #[test]
    fn defaults_are_stripped_and_required_attrs_checked() {
        let mut g = Graph::new();
        let x = g
            .constant("x", Tensor::new(&[1, 1], &[1.0f32]).unwrap())
            .unwrap();
        let m = g
            .op("MatMul", "m")
            .input(&x)
            .input(&x)
            .attr("T", DType::Float)
            .attr("transpose_a", false)
            .attr("transpose_b", true)
            .output(DType::Float, [1, 1])
            .build()
            .unwrap();
        let node = g.node(m.name()).unwrap();
        assert_eq!(
            node.attr.keys().collect::<Vec<_>>(),
            vec!["T", "transpose_b"]
        );
        let err = g.op("MatMul", "m").input(&x).input(&x).build().unwrap_err();
        assert!(err.to_string().contains("needs attr \"T\""), "{err}");
        let err = g
            .op("MatMul", "m")
            .attr("T", DType::Float)
            .attr("bogus", 1i64)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("no attr \"bogus\""), "{err}");
        // An op type TensorFlow does not register is refused when built,
        // not when TensorFlow Serving loads the model.
        let err = g.op("MyOp", "mine").attr("k", 0i64).build().unwrap_err();
        assert!(
            err.to_string()
                .contains("op type \"MyOp\" is not registered in TensorFlow 2.21"),
            "{err}"
        );
        // Attr types, allowed values and minimums come from the registry.
        let err = g
            .op("MatMul", "m")
            .attr("T", DType::Float)
            .attr("transpose_a", 1i64)
            .build()
            .unwrap_err();
        assert!(
            err.to_string().contains(
                "attr \"transpose_a\" of op MatMul holds an int, but the op declares it as bool"
            ),
            "{err}"
        );
        let err = g
            .op("MatMul", "m")
            .attr("T", DType::String)
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("is DT_STRING, which the op does not allow"),
            "{err}"
        );
        let err = g
            .op("ConcatV2", "c")
            .attr("T", DType::Float)
            .attr("N", 1i64)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("below its minimum 2"), "{err}");
        let err = g
            .op("BiasAdd", "b")
            .attr("T", DType::Float)
            .attr("data_format", "NWHC")
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("\"NWHC\", which the op does not allow"),
            "{err}"
        );
        // Internal attrs (a leading underscore) are not declared by ops.
        let op = g
            .op("NoOp", "n")
            .attr("_class", Attr::StrList(vec![b"loc:@x".to_vec()]))
            .build()
            .unwrap();
        assert_eq!(g.node(op.name()).unwrap().attr.len(), 1);
    }

    #[test]
    fn names_are_validated() {
        assert!(is_valid_node_name("dense/MatMul_1"));
        assert!(is_valid_node_name(".a"));
        assert!(!is_valid_node_name("_a"));
        assert!(!is_valid_node_name(""));
        assert!(!is_valid_node_name("a b"));
        let mut g = Graph::new();
        assert!(g.constant("bad name", Tensor::scalar(1i32)).is_err());
    }

    #[test]
    fn foreign_outputs_are_refused() {
        let mut a = Graph::new();
        let mut b = Graph::new();
        let x = a.constant("x", Tensor::scalar(1.0f32)).unwrap();
        let err = b
            .op("Identity", "y")
            .input(&x)
            .attr("T", DType::Float)
            .build()
            .unwrap_err();
        assert!(
            err.to_string().contains("not an output of this graph"),
            "{err}"
        );
    }
}
