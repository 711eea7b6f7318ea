//! Functions: graphs in the `GraphDef`'s function library, called by
//! functional control flow (`While`, `If`, ...) through `func` attrs.
//!
//! A function's body is built as an ordinary [`Graph`], its arguments as
//! `Placeholder`s; [`Graph::add_function`] turns it into a `FunctionDef`
//! (`tensorflow/core/framework/function.proto`). The two differ in how a
//! node names its inputs (docs/formats.md, section 20 "Functions"):
//!
//! - in a `GraphDef`: `node` or `node:k`, `k` counting every output of
//!   `node`;
//! - in a `FunctionDef`: an argument by its name (`arg`), a node's output
//!   as `node:out_arg:j`, where `out_arg` is the name of one of the op's
//!   output arguments (`OpDef.output_arg`) and `j` counts within it (an
//!   argument with `number_attr` or `type_list_attr` holds several
//!   tensors); the function's results are mapped from its output
//!   arguments' names in `ret`.
//!
//! The body's variables, table initializers and assets are not carried
//! over (a function that needs a value captures it as an argument):
//! [`Graph::add_function`] refuses a body that has any.

use std::collections::{BTreeMap, HashMap};

use savedmodel_proto::tensorflow::{FunctionDef, NodeDef, OpDef, op_def::ArgDef};

use super::{Graph, Output};
use crate::error::{Error, Result};
use crate::op_registry::OpRegistry;

impl Graph {
    /// Adds the function `name` to this graph's library: `body`'s nodes,
    /// taking `args` (outputs of `Placeholder`s of `body`, in order) and
    /// returning `results` (outputs of `body`). Functions of `body`'s own
    /// library come along. A `func` attr (`Attr::Func(name)`) then calls
    /// it.
    pub fn add_function(
        &mut self,
        name: &str,
        body: &Graph,
        args: &[Output],
        results: &[Output],
    ) -> Result<()> {
        let error = |what: String| Error::Graph {
            node: format!("function {name}"),
            what,
        };
        if self.functions.iter().any(|f| signature_name(f) == name) {
            return Err(error("a function of this name exists".into()));
        }
        if !body.variables.is_empty() || !body.table_initializers.is_empty() {
            return Err(error(
                "a function body cannot hold variables or tables".into(),
            ));
        }
        // Argument placeholders become the signature's input args.
        let mut arg_names: HashMap<&str, String> = HashMap::new();
        let mut input_arg = Vec::new();
        for (i, arg) in args.iter().enumerate() {
            let node = body
                .node(arg.node_name())
                .filter(|n| n.op == "Placeholder" && arg.index() == 0)
                .ok_or_else(|| error(format!("argument {i} is not a Placeholder's output")))?;
            let arg_name = format!("arg{i}");
            arg_names.insert(node.name.as_str(), arg_name.clone());
            input_arg.push(ArgDef {
                name: arg_name,
                r#type: arg.dtype().as_i32(),
                ..Default::default()
            });
        }
        let registry = OpRegistry::tensorflow();
        let by_name: HashMap<&str, &NodeDef> =
            body.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
        let rewrite = |reference: &str| -> Result<String> {
            if let Some(control) = reference.strip_prefix('^') {
                if arg_names.contains_key(control) {
                    return Err(error(format!("a control input on argument {control:?}")));
                }
                return Ok(reference.to_owned());
            }
            let (node, index) = match reference.rsplit_once(':') {
                Some((n, k)) => (
                    n,
                    k.parse::<usize>()
                        .map_err(|_| error(format!("input {reference:?} is malformed")))?,
                ),
                None => (reference, 0),
            };
            if let Some(arg) = arg_names.get(node) {
                return Ok(arg.clone());
            }
            let def = by_name
                .get(node)
                .ok_or_else(|| error(format!("input {reference:?} names no node of the body")))?;
            let op = registry
                .get(&def.op)
                .ok_or_else(|| error(format!("op {:?} is not registered", def.op)))?;
            let (arg, j) = output_arg_of(op, def, index)
                .ok_or_else(|| error(format!("{} has no output {index}", def.name)))?;
            Ok(format!("{node}:{arg}:{j}"))
        };
        let mut node_def = Vec::new();
        for node in &body.nodes {
            if arg_names.contains_key(node.name.as_str()) {
                continue;
            }
            let mut node = node.clone();
            node.input = node
                .input
                .iter()
                .map(|i| rewrite(i))
                .collect::<Result<_>>()?;
            node_def.push(node);
        }
        let mut output_arg = Vec::new();
        let mut ret = BTreeMap::new();
        for (i, result) in results.iter().enumerate() {
            let out_name = format!("output{i}");
            ret.insert(out_name.clone(), rewrite(&result.name())?);
            output_arg.push(ArgDef {
                name: out_name,
                r#type: result.dtype().as_i32(),
                ..Default::default()
            });
        }
        for f in &body.functions {
            if !self
                .functions
                .iter()
                .any(|g| signature_name(g) == signature_name(f))
            {
                self.functions.push(f.clone());
            }
        }
        self.functions.push(FunctionDef {
            signature: Some(OpDef {
                name: name.to_owned(),
                input_arg,
                output_arg,
                ..Default::default()
            }),
            node_def,
            ret,
            ..Default::default()
        });
        Ok(())
    }

    /// The functions of the graph's library, in the order added.
    pub fn functions(&self) -> &[FunctionDef] {
        &self.functions
    }
}

fn signature_name(f: &FunctionDef) -> &str {
    f.signature.as_ref().map_or("", |s| s.name.as_str())
}

/// Output `index` of `node` (op `op`) as (output arg name, index within
/// the arg): each output arg holds one tensor, or `number_attr`'s value, or
/// as many as `type_list_attr`'s list has types.
fn output_arg_of<'a>(op: &'a OpDef, node: &NodeDef, index: usize) -> Option<(&'a str, usize)> {
    let mut first = 0usize;
    for arg in &op.output_arg {
        let count = if !arg.number_attr.is_empty() {
            let n = node
                .attr
                .get(&arg.number_attr)
                .and_then(|v| match v.value {
                    Some(savedmodel_proto::tensorflow::attr_value::Value::I(i)) => Some(i),
                    _ => None,
                })
                .or_else(|| {
                    crate::op_registry::attr_def(op, &arg.number_attr)
                        .and_then(|d| d.default_value.as_ref())
                        .and_then(|v| match v.value {
                            Some(savedmodel_proto::tensorflow::attr_value::Value::I(i)) => Some(i),
                            _ => None,
                        })
                })?;
            usize::try_from(n).ok()?
        } else if !arg.type_list_attr.is_empty() {
            match node
                .attr
                .get(&arg.type_list_attr)
                .and_then(|v| v.value.as_ref())
            {
                Some(savedmodel_proto::tensorflow::attr_value::Value::List(l)) => l.r#type.len(),
                _ => 0,
            }
        } else {
            1
        };
        if index < first + count {
            return Some((arg.name.as_str(), index - first));
        }
        first += count;
    }
    None
}
