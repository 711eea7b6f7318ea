//! The text `saved_model_cli show` prints, reproduced line for line.
//!
//! Layout from `tensorflow/python/tools/saved_model_cli.py` (2.21) and
//! docs/formats.md, section 18 "`saved_model_cli show` output": two spaces per indentation level, inputs and outputs sorted
//! by alias, signatures by key, MetaGraphs by their tag list; Python `repr`
//! for the tag sets and the op set. Two things may differ: the op set is
//! printed sorted (Python prints a `set` in hash order, which changes from run
//! to run), and the TensorFlow 2 "Concrete Functions" section, which
//! `saved_model_cli` produces by loading the model into TensorFlow, is
//! rebuilt from the object graph on a best-effort basis
//! ([`concrete_functions`]).
//!
//! ```
//! use savedmodel::proto::tensorflow;
//! use savedmodel::reader::{ModelFileFormat, SavedModel};
//! use savedmodel::show;
//!
//! let mut meta_graph = tensorflow::MetaGraphDef::default();
//! meta_graph.meta_info_def = Some(tensorflow::meta_graph_def::MetaInfoDef {
//!     tags: vec!["serve".to_owned()],
//!     ..Default::default()
//! });
//! let proto = tensorflow::SavedModel { saved_model_schema_version: 1, meta_graphs: vec![meta_graph] };
//! let model = SavedModel::from_proto("m", "m/saved_model.pb", ModelFileFormat::Binary, proto);
//! assert_eq!(
//!     show::tag_sets(&model),
//!     "The given SavedModel contains the following tag-sets:\n'serve'\n"
//! );
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;

use crate::error::Result;
use crate::proto::tensorflow::{
    DataType, StructuredValue, TensorInfo, TensorShapeProto, TensorSpecProto, saved_object,
    structured_value,
};
use crate::reader::{MetaGraph, SavedModel};

/// `saved_model_cli show --dir D`: every tag set, sorted, each as the Python
/// `repr` of its sorted tags joined with `", "`.
pub fn tag_sets(model: &SavedModel) -> String {
    let mut sets: Vec<Vec<String>> = model.tag_sets();
    sets.sort();
    let mut out = String::from("The given SavedModel contains the following tag-sets:\n");
    for mut tags in sets {
        tags.sort();
        out.push_str(&python_repr(&tags.join(", ")));
        out.push('\n');
    }
    out
}

/// `saved_model_cli show --dir D --tag_set T`: the signature keys, sorted.
pub fn signature_keys(meta_graph: &MetaGraph<'_>) -> String {
    let mut out = String::from(
        "The given SavedModel MetaGraphDef contains SignatureDefs with the following keys:\n",
    );
    for key in meta_graph.signature_keys() {
        let _ = writeln!(out, "SignatureDef key: \"{key}\"");
    }
    out
}

/// `saved_model_cli show --dir D --tag_set T --signature_def K`: inputs,
/// outputs and method name of signature `key`.
pub fn signature(meta_graph: &MetaGraph<'_>, key: &str) -> Result<String> {
    let mut out = String::new();
    write_signature(&mut out, meta_graph, key, 0)?;
    Ok(out)
}

/// `saved_model_cli show --dir D --tag_set T --list_ops`: the line listing
/// the ops the MetaGraph uses (sorted; see the module docs).
pub fn ops(meta_graph: &MetaGraph<'_>) -> String {
    let ops: Vec<String> = meta_graph.ops_used().into_iter().collect();
    let set = if ops.is_empty() {
        "set()".to_owned()
    } else {
        let items: Vec<String> = ops.iter().map(|op| python_repr(op)).collect();
        format!("{{{}}}", items.join(", "))
    };
    let tags: Vec<String> = meta_graph.tags().iter().map(|t| python_repr(t)).collect();
    format!(
        "The MetaGraph with tag set [{}] contains the following ops: {set}\n",
        tags.join(", ")
    )
}

/// `saved_model_cli show --dir D --all`, ending with [`concrete_functions`]
/// for a TensorFlow 2 model.
pub fn all(model: &SavedModel) -> String {
    let mut meta_graphs = model.meta_graphs();
    // Stable, like Python's sorted(): equal tag lists keep file order.
    meta_graphs.sort_by(|a, b| a.tags().cmp(b.tags()));
    let mut out = String::new();
    for meta_graph in &meta_graphs {
        let _ = writeln!(
            out,
            "\nMetaGraphDef with tag-set: '{}' contains the following SignatureDefs:",
            meta_graph.tags().join(", ")
        );
        for signature in meta_graph.signatures() {
            let _ = writeln!(out, "\nsignature_def['{}']:", signature.key());
            // The key comes from the map itself, so it is always found.
            let _ = write_signature(&mut out, meta_graph, signature.key(), 1);
        }
        out.push_str(&ops(meta_graph));
    }
    if let Some(functions) = concrete_functions(model) {
        out.push_str(&functions);
    }
    out
}

/// Whether any MetaGraph has an object graph (a TensorFlow 2 SavedModel), for
/// which `saved_model_cli show --all` ends with a "Concrete Functions"
/// section that needs TensorFlow to produce.
pub fn has_object_graph(model: &SavedModel) -> bool {
    model
        .proto()
        .meta_graphs
        .iter()
        .any(|m| m.object_graph_def.is_some())
}

/// The "Concrete Functions" section `saved_model_cli show --all` ends with
/// for a TensorFlow 2 SavedModel, rebuilt from the object graph instead of by
/// loading the model: the functions among the root object's children, sorted
/// by name, each concrete function's canonicalized input signature printed
/// the way `_print_args` in `saved_model_cli.py` prints it. `None` when no
/// MetaGraph has an object graph (TensorFlow 1 models print nothing).
///
/// Best effort: `saved_model_cli` lists the children of the object it
/// loaded, which for some Keras models includes functions that are not in
/// the object graph, and prints argument kinds this rendering may not know.
pub fn concrete_functions(model: &SavedModel) -> Option<String> {
    let graph = model
        .proto()
        .meta_graphs
        .iter()
        .find_map(|m| m.object_graph_def.as_ref())?;
    let mut out = String::from("\nConcrete Functions:");
    let Some(root) = graph.nodes.first() else {
        return Some(out);
    };
    let mut children: Vec<_> = root.children.iter().collect();
    children.sort_by(|a, b| a.local_name.cmp(&b.local_name));
    for child in children {
        let node = usize::try_from(child.node_id)
            .ok()
            .and_then(|i| graph.nodes.get(i));
        let mut names: Vec<&str> = match node.and_then(|n| n.kind.as_ref()) {
            Some(saved_object::Kind::Function(f)) => {
                f.concrete_functions.iter().map(String::as_str).collect()
            }
            Some(saved_object::Kind::BareConcreteFunction(f)) => {
                vec![f.concrete_function_name.as_str()]
            }
            _ => continue,
        };
        let _ = writeln!(out, "\n  Function Name: '{}'", child.local_name);
        names.sort_unstable();
        for (index, name) in names.iter().enumerate() {
            let signature = graph
                .concrete_functions
                .get(*name)
                .and_then(|f| f.canonicalized_input_signature.as_ref());
            let (args, kwargs) = match signature.and_then(|s| s.kind.as_ref()) {
                Some(structured_value::Kind::TupleValue(t)) if t.values.len() == 2 => {
                    (items(&t.values[0]), items(&t.values[1]))
                }
                _ => (Vec::new(), Vec::new()),
            };
            if !args.is_empty() {
                let _ = writeln!(out, "    Option #{}\n      Callable with:", index + 1);
                write_args(&mut out, &args, "Argument");
            }
            if !kwargs.is_empty() {
                write_args(&mut out, &kwargs, "Named Argument");
            }
        }
    }
    Some(out)
}

/// One printed argument: a Python `str` (dict keys print as such) or a value.
enum Arg<'a> {
    Key(&'a str),
    Value(&'a StructuredValue),
}

/// The elements of a tuple or list, or the keys of a dict (iterating a
/// Python dict yields its keys).
fn items(value: &StructuredValue) -> Vec<Arg<'_>> {
    match &value.kind {
        Some(structured_value::Kind::TupleValue(t)) => t.values.iter().map(Arg::Value).collect(),
        Some(structured_value::Kind::ListValue(l)) => l.values.iter().map(Arg::Value).collect(),
        Some(structured_value::Kind::DictValue(d)) => {
            d.fields.keys().map(|k| Arg::Key(k.as_str())).collect()
        }
        _ => Vec::new(),
    }
}

fn write_args(out: &mut String, args: &[Arg<'_>], kind: &str) {
    let pad = "        ";
    for (index, arg) in args.iter().enumerate() {
        let _ = writeln!(out, "{pad}{kind} #{}", index + 1);
        match arg {
            Arg::Key(key) => {
                let _ = writeln!(out, "{pad}  {key}");
            }
            Arg::Value(value) => match &value.kind {
                Some(structured_value::Kind::StringValue(text)) => {
                    let _ = writeln!(out, "{pad}  {text}");
                }
                Some(structured_value::Kind::TensorSpecValue(spec)) => {
                    let name = if spec.name.is_empty() {
                        "None"
                    } else {
                        &spec.name
                    };
                    let _ = writeln!(out, "{pad}  {name}: {}", tensor_spec_repr(spec));
                }
                Some(structured_value::Kind::NoneValue(_)) => {
                    let _ = writeln!(out, "{pad}  DType: NoneType\n{pad}  Value: None");
                }
                Some(structured_value::Kind::BoolValue(b)) => {
                    let shown = if *b { "True" } else { "False" };
                    let _ = writeln!(out, "{pad}  DType: bool\n{pad}  Value: {shown}");
                }
                Some(structured_value::Kind::Int64Value(i)) => {
                    let _ = writeln!(out, "{pad}  DType: int\n{pad}  Value: {i}");
                }
                Some(structured_value::Kind::Float64Value(f)) => {
                    let _ = writeln!(out, "{pad}  DType: float\n{pad}  Value: {f:?}");
                }
                _ => {
                    let _ = writeln!(out, "{pad}  DType: unknown\n{pad}  Value: unknown");
                }
            },
        }
    }
}

/// `TensorSpec(shape=(None, 784), dtype=tf.float32, name='x')`, as Python's
/// `repr` of a `tf.TensorSpec`.
pub fn tensor_spec_repr(spec: &TensorSpecProto) -> String {
    let shape = match &spec.shape {
        Some(s) if s.unknown_rank => "<unknown>".to_owned(),
        Some(s) => {
            let dims: Vec<String> = s
                .dim
                .iter()
                .map(|d| {
                    if d.size < 0 {
                        "None".to_owned()
                    } else {
                        d.size.to_string()
                    }
                })
                .collect();
            match dims.as_slice() {
                [one] => format!("({one},)"),
                _ => format!("({})", dims.join(", ")),
            }
        }
        None => "()".to_owned(),
    };
    let name = if spec.name.is_empty() {
        "None".to_owned()
    } else {
        python_repr(&spec.name)
    };
    format!(
        "TensorSpec(shape={shape}, dtype=tf.{}, name={name})",
        python_dtype_name(spec.dtype)
    )
}

/// TensorFlow's Python name of a data type: `float32`, `string`, `int64`.
pub fn python_dtype_name(dtype: i32) -> String {
    let Ok(t) = DataType::try_from(dtype % 100) else {
        return dtype.to_string();
    };
    let base = match t {
        DataType::DtFloat => "float32".to_owned(),
        DataType::DtDouble => "float64".to_owned(),
        DataType::DtHalf => "float16".to_owned(),
        other => other
            .as_str_name()
            .trim_start_matches("DT_")
            .to_ascii_lowercase(),
    };
    if dtype > 100 {
        format!("{base}_ref")
    } else {
        base
    }
}

fn write_signature(
    out: &mut String,
    meta_graph: &MetaGraph<'_>,
    key: &str,
    indent: usize,
) -> Result<()> {
    let signature = meta_graph.signature(key)?;
    let pad = "  ".repeat(indent);
    let def = signature.def();
    let _ = writeln!(
        out,
        "{pad}The given SavedModel SignatureDef contains the following input(s):"
    );
    for (alias, info) in &def.inputs {
        let _ = writeln!(out, "{pad}  inputs['{alias}'] tensor_info:");
        write_tensor_info(out, info, indent + 1);
    }
    let _ = writeln!(
        out,
        "{pad}The given SavedModel SignatureDef contains the following output(s):"
    );
    for (alias, info) in &def.outputs {
        let _ = writeln!(out, "{pad}  outputs['{alias}'] tensor_info:");
        write_tensor_info(out, info, indent + 1);
    }
    let _ = writeln!(out, "{pad}Method name is: {}", def.method_name);
    Ok(())
}

fn write_tensor_info(out: &mut String, info: &TensorInfo, indent: usize) {
    let pad = "  ".repeat(indent);
    let _ = writeln!(out, "{pad}    dtype: {}", dtype_name(info.dtype));
    let _ = writeln!(
        out,
        "{pad}    shape: {}",
        shape_text(info.tensor_shape.as_ref())
    );
    let name = match &info.encoding {
        Some(crate::proto::tensorflow::tensor_info::Encoding::Name(name)) => name.as_str(),
        _ => "",
    };
    let _ = writeln!(out, "{pad}    name: {name}");
}

/// The `DataType` enum name (`DT_FLOAT`), or the number when it has none.
pub fn dtype_name(dtype: i32) -> String {
    DataType::try_from(dtype).map_or_else(|_| dtype.to_string(), |t| t.as_str_name().to_owned())
}

/// A shape as `saved_model_cli` prints it: `unknown_rank`, or the dims in
/// parentheses joined by `", "` (`(-1, 784)`, `(-1)`, `()` for a scalar or an
/// absent shape).
pub fn shape_text(shape: Option<&TensorShapeProto>) -> String {
    match shape {
        Some(shape) if shape.unknown_rank => "unknown_rank".to_owned(),
        Some(shape) => {
            let dims: Vec<String> = shape.dim.iter().map(|d| d.size.to_string()).collect();
            format!("({})", dims.join(", "))
        }
        None => "()".to_owned(),
    }
}

/// Python's `repr` of a `str`: single quotes unless the text holds a single
/// quote and no double quote; backslash, the quote, `\t`, `\n`, `\r` escaped,
/// other control characters as `\xNN` (C1 controls included).
pub fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if u32::from(c) < 0x20 || (0x7f..=0xa0).contains(&u32::from(c)) || c == '\u{ad}' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tensorflow::tensor_shape_proto::Dim;

    #[test]
    fn python_repr_matches_python() {
        assert_eq!(python_repr("serve"), "'serve'");
        assert_eq!(python_repr("serve, gpu"), "'serve, gpu'");
        assert_eq!(python_repr("it's"), "\"it's\"");
        assert_eq!(python_repr("'\""), "'\\'\"'");
        assert_eq!(python_repr("a\\b\n\x01"), "'a\\\\b\\n\\x01'");
        assert_eq!(python_repr("é"), "'é'");
    }

    #[test]
    fn shapes_print_as_tuples() {
        let dim = |size| Dim {
            size,
            name: String::new(),
        };
        assert_eq!(shape_text(None), "()");
        assert_eq!(
            shape_text(Some(&TensorShapeProto {
                dim: vec![dim(-1)],
                unknown_rank: false
            })),
            "(-1)"
        );
        assert_eq!(
            shape_text(Some(&TensorShapeProto {
                dim: vec![dim(-1), dim(784)],
                unknown_rank: false
            })),
            "(-1, 784)"
        );
        assert_eq!(
            shape_text(Some(&TensorShapeProto {
                dim: vec![],
                unknown_rank: true
            })),
            "unknown_rank"
        );
        assert_eq!(dtype_name(1), "DT_FLOAT");
        assert_eq!(dtype_name(107), "DT_STRING_REF");
        assert_eq!(dtype_name(999), "999");
    }
}
