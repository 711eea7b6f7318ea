//! The ops TensorFlow 2.21 registers, for checking graphs without TensorFlow.
//!
//! `op_registry.binpb` is a compact `OpList` (names, argument types, attrs
//! with their defaults, minimums and allowed values; no documentation) that
//! `cargo xtask op-registry` dumps from the C++ op registry of the installed
//! TensorFlow (`TF_GetAllOpList`). An integration test fails when it no longer
//! matches the TensorFlow in `.tf-venv`.
//!
//! Besides lookups, this module computes the data types of a node's inputs
//! and outputs from its op's argument list and the node's attrs (defaults
//! filled in), the way TensorFlow's `InOutTypesForNode`
//! (`tensorflow/core/framework/node_def_util.cc`) does: an argument has a
//! fixed `type`, or the type in attr `type_attr` (repeated `number_attr`
//! times), or the list of types in attr `type_list_attr`; reference
//! arguments carry the `_REF` variant.
//!
//! ```
//! use savedmodel_graph::op_registry::OpRegistry;
//!
//! let ops = OpRegistry::tensorflow();
//! let matmul = ops.get("MatMul").ok_or("MatMul is registered")?;
//! assert!(matmul.attr.iter().any(|a| a.name == "transpose_a"));
//! assert!(ops.get("NoSuchOp").is_none());
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use prost::Message;

use crate::proto::tensorflow::attr_value::Value;
use crate::proto::tensorflow::op_def::{ArgDef, AttrDef};
use crate::proto::tensorflow::{AttrValue, OpDef, OpList};

/// The TensorFlow release the embedded op list was taken from.
pub const TENSORFLOW_VERSION: &str = "2.21.0";

/// `TF_GRAPH_DEF_VERSION` of that release: the `producer` it writes and the
/// newest `min_consumer` it accepts.
pub const GRAPH_DEF_VERSION: i32 = 2474;

/// `TF_GRAPH_DEF_VERSION_MIN_PRODUCER`: graphs whose `producer` is older are
/// refused.
pub const GRAPH_DEF_VERSION_MIN_PRODUCER: i32 = 0;

/// `TF_GRAPH_DEF_VERSION_MIN_CONSUMER` of that release.
pub const GRAPH_DEF_VERSION_MIN_CONSUMER: i32 = 0;

/// The serialized op list, as `cargo xtask op-registry` wrote it.
pub const TENSORFLOW_OP_LIST: &[u8] = include_bytes!("op_registry.binpb");

/// More repetitions of one argument than any real graph has; a larger
/// `number_attr` is treated as corrupt rather than allocated.
const MAX_ARG_REPEAT: i64 = 1 << 20;

/// A set of op definitions, looked up by op name.
#[derive(Debug, Clone, Default)]
pub struct OpRegistry {
    ops: HashMap<String, OpDef>,
}

impl OpRegistry {
    /// The ops TensorFlow [`TENSORFLOW_VERSION`] registers (embedded).
    pub fn tensorflow() -> &'static OpRegistry {
        static REGISTRY: OnceLock<OpRegistry> = OnceLock::new();
        REGISTRY.get_or_init(|| {
            // The bytes are ours, checked in by `cargo xtask op-registry` and
            // decoded by a unit test; failing here means a corrupted build,
            // not anything a user supplied.
            #[allow(clippy::expect_used)]
            let list = OpList::decode(TENSORFLOW_OP_LIST)
                .expect("the embedded op registry is a valid OpList");
            OpRegistry::from_op_list(list)
        })
    }

    /// A registry holding the ops of `list` (a later duplicate replaces an
    /// earlier one).
    pub fn from_op_list(list: OpList) -> Self {
        let ops = list
            .op
            .into_iter()
            .map(|op| (op.name.clone(), op))
            .collect();
        Self { ops }
    }

    /// The definition of op `name`.
    pub fn get(&self, name: &str) -> Option<&OpDef> {
        self.ops.get(name)
    }

    /// Whether op `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.ops.contains_key(name)
    }

    /// Number of registered ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the registry is empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Every registered op name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.ops.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

/// The definition of attr `name` in `op`.
pub fn attr_def<'a>(op: &'a OpDef, name: &str) -> Option<&'a AttrDef> {
    op.attr.iter().find(|a| a.name == name)
}

/// Why the types of a node's arguments could not be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgTypeError {
    /// An attr the argument list depends on is neither set nor defaulted.
    MissingAttr(String),
    /// An attr holds the wrong kind of value (or a function-attr placeholder).
    BadAttr(String),
}

impl std::fmt::Display for ArgTypeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingAttr(name) => write!(f, "attr '{name}' is missing"),
            Self::BadAttr(name) => write!(f, "attr '{name}' does not hold a usable value"),
        }
    }
}

/// The value of attr `name` for a node with `attrs` running `op`: the node's
/// own value, else the op's default.
pub fn attr_value<'a>(
    op: &'a OpDef,
    attrs: &'a BTreeMap<String, AttrValue>,
    name: &str,
) -> Option<&'a AttrValue> {
    attrs
        .get(name)
        .or_else(|| attr_def(op, name).and_then(|d| d.default_value.as_ref()))
}

/// The data types (enum values, `_REF` variants for reference arguments) of
/// the flattened input arguments of a node running `op` with `attrs`.
pub fn input_types(
    op: &OpDef,
    attrs: &BTreeMap<String, AttrValue>,
) -> Result<Vec<i32>, ArgTypeError> {
    arg_types(op, &op.input_arg, attrs)
}

/// The data types of the flattened outputs of a node running `op` with
/// `attrs`; output `k` of the node is element `k`.
pub fn output_types(
    op: &OpDef,
    attrs: &BTreeMap<String, AttrValue>,
) -> Result<Vec<i32>, ArgTypeError> {
    arg_types(op, &op.output_arg, attrs)
}

/// The argument name of each flattened input of a node running `op` with
/// `attrs` (an argument repeated `N` times appears `N` times).
pub fn input_arg_names<'a>(
    op: &'a OpDef,
    attrs: &BTreeMap<String, AttrValue>,
) -> Result<Vec<&'a str>, ArgTypeError> {
    let mut out = Vec::new();
    for arg in &op.input_arg {
        let n = arg_types(op, std::slice::from_ref(arg), attrs)?.len();
        out.extend(std::iter::repeat_n(arg.name.as_str(), n));
    }
    Ok(out)
}

fn arg_types(
    op: &OpDef,
    args: &[ArgDef],
    attrs: &BTreeMap<String, AttrValue>,
) -> Result<Vec<i32>, ArgTypeError> {
    let mut out = Vec::new();
    for arg in args {
        let reference = if arg.is_ref { 100 } else { 0 };
        if !arg.type_list_attr.is_empty() {
            let value = attr_value(op, attrs, &arg.type_list_attr)
                .ok_or_else(|| ArgTypeError::MissingAttr(arg.type_list_attr.clone()))?;
            match &value.value {
                Some(Value::List(list)) => {
                    out.extend(list.r#type.iter().map(|t| t + reference));
                }
                // An empty list attr may be written as an AttrValue without a value.
                None => {}
                Some(_) => return Err(ArgTypeError::BadAttr(arg.type_list_attr.clone())),
            }
            continue;
        }
        let dtype = if !arg.type_attr.is_empty() {
            let value = attr_value(op, attrs, &arg.type_attr)
                .ok_or_else(|| ArgTypeError::MissingAttr(arg.type_attr.clone()))?;
            match value.value {
                Some(Value::Type(t)) => t,
                _ => return Err(ArgTypeError::BadAttr(arg.type_attr.clone())),
            }
        } else {
            arg.r#type
        };
        let repeat = if arg.number_attr.is_empty() {
            1
        } else {
            let value = attr_value(op, attrs, &arg.number_attr)
                .ok_or_else(|| ArgTypeError::MissingAttr(arg.number_attr.clone()))?;
            match value.value {
                Some(Value::I(n)) if (0..=MAX_ARG_REPEAT).contains(&n) => n,
                _ => return Err(ArgTypeError::BadAttr(arg.number_attr.clone())),
            }
        };
        for _ in 0..repeat {
            out.push(dtype + reference);
        }
    }
    Ok(out)
}

/// Whether `value` is a value of an attr declared with type `attr_type`
/// (`"int"`, `"list(type)"`, ...; the types of `AttrDef.type`,
/// `tensorflow/core/framework/op_def.proto`). An empty list fits every list
/// type, and a function-body placeholder (`$T`) fits anything: both are
/// what TensorFlow's own `ValidateAttrValue` accepts.
pub fn attr_value_fits(attr_type: &str, value: &AttrValue) -> bool {
    let Some(value) = &value.value else {
        // An AttrValue without a value is how an empty list may be written.
        return attr_type.starts_with("list(");
    };
    if let Some(element) = attr_type
        .strip_prefix("list(")
        .and_then(|t| t.strip_suffix(')'))
    {
        let Value::List(list) = value else {
            return matches!(value, Value::Placeholder(_));
        };
        let counts = [
            ("string", list.s.len()),
            ("int", list.i.len()),
            ("float", list.f.len()),
            ("bool", list.b.len()),
            ("type", list.r#type.len()),
            ("shape", list.shape.len()),
            ("tensor", list.tensor.len()),
            ("func", list.func.len()),
        ];
        return counts.iter().all(|(kind, n)| *n == 0 || *kind == element);
    }
    matches!(
        (attr_type, value),
        ("string", Value::S(_))
            | ("int", Value::I(_))
            | ("float", Value::F(_))
            | ("bool", Value::B(_))
            | ("type", Value::Type(_))
            | ("shape", Value::Shape(_))
            | ("tensor", Value::Tensor(_))
            | ("func", Value::Func(_))
            | (_, Value::Placeholder(_))
    )
}

/// Why `value` is not allowed for attr `def`, or `None` when it is: the
/// attr's type, its `allowed_values` (for `type`, `list(type)` and
/// `string` attrs) and its `minimum` (for `int` attrs and list lengths), as
/// TensorFlow checks them when a node is added to a graph
/// (`ValidateAttrValue`, `tensorflow/core/framework/op_def_util.cc`).
pub fn attr_value_problem(def: &AttrDef, value: &AttrValue) -> Option<String> {
    if !attr_value_fits(&def.r#type, value) {
        return Some(format!(
            "holds {}, but the op declares it as {}",
            describe_value(value),
            def.r#type
        ));
    }
    let Some(v) = &value.value else {
        return None;
    };
    if def.has_minimum {
        match v {
            Value::I(i) if *i < def.minimum => {
                return Some(format!("is {i}, below its minimum {}", def.minimum));
            }
            Value::List(list) => {
                let len = [
                    list.s.len(),
                    list.i.len(),
                    list.f.len(),
                    list.b.len(),
                    list.r#type.len(),
                    list.shape.len(),
                    list.tensor.len(),
                    list.func.len(),
                ]
                .into_iter()
                .max()
                .unwrap_or(0);
                if (len as i64) < def.minimum {
                    return Some(format!(
                        "has {len} elements, fewer than its minimum {}",
                        def.minimum
                    ));
                }
            }
            _ => {}
        }
    }
    let allowed = def.allowed_values.as_ref().and_then(|a| a.value.as_ref());
    if let Some(Value::List(allowed)) = allowed {
        match v {
            Value::Type(t) if !allowed.r#type.is_empty() && !allowed.r#type.contains(t) => {
                return Some(format!(
                    "is {}, which the op does not allow (allowed: {})",
                    type_name(*t),
                    type_names(&allowed.r#type)
                ));
            }
            Value::List(list) if !allowed.r#type.is_empty() => {
                if let Some(t) = list.r#type.iter().find(|t| !allowed.r#type.contains(t)) {
                    return Some(format!(
                        "lists {}, which the op does not allow (allowed: {})",
                        type_name(*t),
                        type_names(&allowed.r#type)
                    ));
                }
            }
            Value::S(s) if !allowed.s.is_empty() && !allowed.s.contains(s) => {
                let names: Vec<String> = allowed
                    .s
                    .iter()
                    .map(|a| format!("{:?}", String::from_utf8_lossy(a)))
                    .collect();
                return Some(format!(
                    "is {:?}, which the op does not allow (allowed: {})",
                    String::from_utf8_lossy(s),
                    names.join(", ")
                ));
            }
            _ => {}
        }
    }
    None
}

fn type_name(t: i32) -> String {
    crate::proto::tensorflow::DataType::try_from(t)
        .map(|d| d.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("data type {t}"))
}

fn type_names(types: &[i32]) -> String {
    types
        .iter()
        .map(|t| type_name(*t))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_value(value: &AttrValue) -> &'static str {
    match &value.value {
        None => "no value",
        Some(Value::S(_)) => "a string",
        Some(Value::I(_)) => "an int",
        Some(Value::F(_)) => "a float",
        Some(Value::B(_)) => "a bool",
        Some(Value::Type(_)) => "a type",
        Some(Value::Shape(_)) => "a shape",
        Some(Value::Tensor(_)) => "a tensor",
        Some(Value::List(_)) => "a list",
        Some(Value::Func(_)) => "a function",
        Some(Value::Placeholder(_)) => "a placeholder",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tensorflow::DataType;

    fn attrs(pairs: &[(&str, Value)]) -> BTreeMap<String, AttrValue> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    AttrValue {
                        value: Some(v.clone()),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn the_embedded_registry_holds_tensorflow_s_ops() {
        let ops = OpRegistry::tensorflow();
        assert!(ops.len() > 1500, "only {} ops", ops.len());
        for name in [
            "Placeholder",
            "Const",
            "MatMul",
            "VarHandleOp",
            "RestoreV2",
            "ParseExampleV2",
            "StatefulPartitionedCall",
            "HashTableV2",
            "InitializeTableFromTextFileV2",
        ] {
            assert!(ops.contains(name), "{name} missing");
        }
        let names = ops.names();
        assert!(names.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn output_types_follow_attrs_and_defaults() {
        let ops = OpRegistry::tensorflow();
        let argmax = ops.get("ArgMax").unwrap();
        // output_type defaults to int64.
        let a = attrs(&[("T", Value::Type(DataType::DtFloat as i32))]);
        assert_eq!(
            output_types(argmax, &a).unwrap(),
            vec![DataType::DtInt64 as i32]
        );
        assert_eq!(
            input_types(argmax, &a).unwrap(),
            vec![DataType::DtFloat as i32, DataType::DtInt32 as i32]
        );
        // number_attr repeats, type_list_attr lists.
        let restore = ops.get("RestoreV2").unwrap();
        let a = attrs(&[(
            "dtypes",
            Value::List(crate::proto::tensorflow::attr_value::ListValue {
                r#type: vec![DataType::DtFloat as i32, DataType::DtString as i32],
                ..Default::default()
            }),
        )]);
        assert_eq!(
            output_types(restore, &a).unwrap(),
            vec![DataType::DtFloat as i32, DataType::DtString as i32]
        );
        let pack = ops.get("Pack").unwrap();
        let a = attrs(&[("T", Value::Type(1)), ("N", Value::I(3))]);
        assert_eq!(input_types(pack, &a).unwrap(), vec![1, 1, 1]);
        assert_eq!(
            input_arg_names(pack, &a).unwrap(),
            vec!["values", "values", "values"]
        );
        let init = ops.get("InitializeTableFromTextFileV2").unwrap();
        assert_eq!(
            input_arg_names(init, &BTreeMap::new()).unwrap(),
            vec!["table_handle", "filename"]
        );
        // A reference output carries the _REF variant.
        let var = ops.get("VariableV2").unwrap();
        let a = attrs(&[("dtype", Value::Type(1))]);
        assert_eq!(output_types(var, &a).unwrap(), vec![101]);
        // A required attr missing.
        assert_eq!(
            output_types(ops.get("Identity").unwrap(), &BTreeMap::new()),
            Err(ArgTypeError::MissingAttr("T".to_owned()))
        );
        let a = attrs(&[("N", Value::I(-1)), ("T", Value::Type(1))]);
        assert_eq!(
            input_types(pack, &a),
            Err(ArgTypeError::BadAttr("N".to_owned()))
        );
    }
}
