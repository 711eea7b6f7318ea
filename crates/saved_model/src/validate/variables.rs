//! The saver and the variables: restore op and filename tensor; every tensor
//! the restore reads present in the checkpoint with its data type and
//! shape; variables nothing initializes; the checkpoint's own checksums.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use savedmodel_checkpoint::BundleReader;

use crate::proto::tensorflow::attr_value::Value;
use crate::proto::tensorflow::{FunctionDef, NodeDef};
use crate::reader::{MetaGraph, SavedModel, TensorName};
use crate::show::dtype_name;

use super::check::{MetaGraphCheck, const_strings, dims_string, input_node, shape_string};
use super::{Report, ValidateOptions};

impl<'a> MetaGraphCheck<'_, 'a> {
    pub(super) fn saver(&mut self, checkpoint: &Checkpoint) {
        let variables = self.meta_graph.variables();
        let Some(saver) = self.meta_graph.saver_def() else {
            if !variables.is_empty() {
                let read = self.uninitialized_but_read(variables.iter().map(|v| v.node));
                if read.is_empty() {
                    self.warning(
                        "saver",
                        format!(
                            "the graph has {} variable(s) but no saver_def, so tensorflow \
                             restores none of them from variables/",
                            variables.len()
                        ),
                    );
                } else {
                    self.error(
                        "saver",
                        format!(
                            "the graph has {} variable(s) but no saver_def, so tensorflow \
                             restores none of them from variables/, and signatures read {} \
                             without the init op initializing it: tensorflow serving fails \
                             those requests (uninitialized variable)",
                            variables.len(),
                            quoted(&read)
                        ),
                    );
                }
            }
            return;
        };
        if saver.restore_op_name.is_empty() {
            self.error("saver", "saver_def has no restore_op_name");
        } else if self.meta_graph.node(&saver.restore_op_name).is_none() {
            self.error(
                "saver",
                format!(
                    "restore op '{}' is not a node of the graph",
                    saver.restore_op_name
                ),
            );
        }
        if saver.filename_tensor_name.is_empty() {
            self.error("saver", "saver_def has no filename_tensor_name");
        } else if let Err(e) = self.meta_graph.resolve(&saver.filename_tensor_name) {
            self.error("saver", format!("filename tensor: {e}"));
        }
        // Warnings: the C++ loader Serving runs uses only `restore_op_name`
        // and `filename_tensor_name` and ignores `version`
        // (`tensorflow/cc/saved_model/loader.cc`: `RunRestore`); the Python
        // loaders are stricter.
        if saver.save_tensor_name.is_empty() {
            self.warning(
                "saver",
                "saver_def has no save_tensor_name; tensorflow's python loaders refuse the \
                 model (\"saver_def must specify the save_tensor_name\")",
            );
        }
        if saver.version == 1 {
            self.warning(
                "saver",
                "saver_def asks for the V1 checkpoint format; variables/ is read as V2",
            );
        }
        let plan = self.restore_plan(&saver.restore_op_name);
        if plan.restores.is_empty() {
            return;
        }
        let bundle = match checkpoint {
            Checkpoint::Missing => {
                self.error(
                    "variables/variables.index",
                    format!(
                        "missing, but the restore op reads {} tensor(s): tensorflow's c++ loader \
                         skips the restore and every request that reads a variable fails",
                        plan.restores.len()
                    ),
                );
                return;
            }
            // Already reported.
            Checkpoint::Unreadable => return,
            Checkpoint::Open(bundle) => bundle,
        };
        let mut assigned: HashSet<&str> = HashSet::new();
        for restore in &plan.restores {
            let location = format!("restore '{}'", restore.key);
            let entry = match bundle.entry(restore.key.as_bytes()) {
                Ok(entry) => entry,
                Err(savedmodel_checkpoint::Error::NotFound { .. }) => {
                    self.error(
                        &location,
                        format!(
                            "the saver restores tensor '{}' (node '{}'), but the checkpoint has \
                             no such tensor",
                            restore.key, restore.node
                        ),
                    );
                    continue;
                }
                Err(e) => {
                    self.error(&location, format!("reading its index entry: {e}"));
                    continue;
                }
            };
            if let Some(dtype) = restore.dtype {
                if entry.dtype.as_i32() != dtype {
                    self.error(
                        &location,
                        format!(
                            "the saver restores it as {}, but the checkpoint holds {}",
                            dtype_name(dtype),
                            entry.dtype.name()
                        ),
                    );
                }
            }
            let restored_shape = if restore.slice.is_empty() {
                Some(entry.shape.clone())
            } else {
                match savedmodel_checkpoint::parse_shape_and_slice(&restore.slice) {
                    Ok((full, slice)) => {
                        if full != entry.shape {
                            self.error(
                                &location,
                                format!(
                                    "the saver restores a slice of shape {} ('{}'), but the \
                                     checkpoint's tensor has shape {}",
                                    dims_string(&full),
                                    restore.slice,
                                    dims_string(&entry.shape)
                                ),
                            );
                        }
                        slice.slice_shape(&full).ok()
                    }
                    Err(e) => {
                        self.error(
                            &location,
                            format!("shape_and_slice '{}' is invalid: {e}", restore.slice),
                        );
                        None
                    }
                }
            };
            if let (Some(variable), Some(shape)) = (restore.variable, &restored_shape) {
                assigned.insert(variable.name.as_str());
                let declared = match variable.attr.get("shape").and_then(|a| a.value.as_ref()) {
                    Some(Value::Shape(s)) => Some(s),
                    _ => None,
                };
                if let Some(declared_dims) = declared.filter(|s| !s.unknown_rank) {
                    let fits = declared_dims.dim.len() == shape.len()
                        && declared_dims
                            .dim
                            .iter()
                            .zip(shape)
                            .all(|(d, s)| d.size < 0 || d.size == *s);
                    if !fits {
                        self.error(
                            &location,
                            format!(
                                "variable '{}' is declared with shape {}, but the checkpoint \
                                 holds {}",
                                variable.name,
                                shape_string(declared),
                                dims_string(shape)
                            ),
                        );
                    }
                }
            } else if let Some(variable) = restore.variable {
                assigned.insert(variable.name.as_str());
            }
        }
        if plan.top_level {
            let unrestored: Vec<&NodeDef> = variables
                .iter()
                .map(|v| v.node)
                .filter(|v| !assigned.contains(v.name.as_str()))
                .collect();
            let read = self.uninitialized_but_read(unrestored.iter().copied());
            for variable in unrestored {
                let name = variable.name.as_str();
                if read.contains(&name) {
                    self.error(
                        format_args!("node '{name}'"),
                        format!(
                            "variable '{name}' is not restored by the saver nor initialized by \
                             the init op, and a signature reads it: tensorflow serving fails \
                             those requests (uninitialized variable)"
                        ),
                    );
                } else if !self.init_op_assigns().contains(name) {
                    self.warning(
                        format_args!("node '{name}'"),
                        format!(
                            "variable '{name}' is not restored by the saver; it stays \
                             uninitialized unless the init op initializes it"
                        ),
                    );
                }
            }
        }
    }

    /// The variables the init op assigns (TF1's `main_op` or
    /// `legacy_init_op`), which the loader runs after the restore.
    fn init_op_assigns(&self) -> HashSet<&'a str> {
        match self.meta_graph.init_op() {
            Ok(Some(init)) => self.assigned_from(init.name),
            _ => HashSet::new(),
        }
    }

    /// Of `variables`, which nothing restores, those the init op does not
    /// initialize and a signature reads (sorted): the loader leaves them
    /// uninitialized and TensorFlow Serving fails every request that reads
    /// one (`tensorflow/cc/saved_model/loader.cc`: no `saver_def`, no
    /// restore; only the init op runs after it).
    fn uninitialized_but_read(&self, variables: impl Iterator<Item = &'a NodeDef>) -> Vec<&'a str> {
        let initialized = self.init_op_assigns();
        let read = self.signature_nodes();
        let mut out: Vec<&'a str> = variables
            .map(|v| v.name.as_str())
            .filter(|v| read.contains(v) && !initialized.contains(v))
            .collect();
        out.sort_unstable();
        out
    }

    /// The variables that `Assign` / `AssignVariableOp` nodes reachable from
    /// node `start` (through data and control inputs) write to.
    fn assigned_from(&self, start: &str) -> HashSet<&'a str> {
        let mut out = HashSet::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack: Vec<&'a NodeDef> = self.meta_graph.node(start).into_iter().collect();
        while let Some(node) = stack.pop() {
            if !seen.insert(node.name.as_str()) {
                continue;
            }
            if matches!(node.op.as_str(), "Assign" | "AssignVariableOp") {
                if let Some(target) = node.input.first() {
                    out.insert(input_node(target, false));
                }
            }
            for input in &node.input {
                if let Some(next) = self.meta_graph.node(input_node(input, false)) {
                    stack.push(next);
                }
            }
        }
        out
    }

    /// The tensors the restore op reads: every `RestoreV2` reachable from it,
    /// through graph inputs and the library functions it calls.
    fn restore_plan(&mut self, restore_op: &str) -> RestorePlan<'a> {
        let mut plan = RestorePlan::default();
        let Some(start) = self.meta_graph.node(restore_op) else {
            return plan;
        };
        let graph = self.meta_graph.graph_def();
        // Consumers of each node, for finding what a restored tensor is
        // assigned to.
        let mut consumers: HashMap<&str, Vec<&NodeDef>> = HashMap::new();
        for node in &graph.node {
            for input in &node.input {
                if !input.starts_with('^') {
                    consumers
                        .entry(input_node(input, false))
                        .or_default()
                        .push(node);
                }
            }
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack = vec![start];
        let mut functions: Vec<&FunctionDef> = Vec::new();
        let mut seen_functions: HashSet<&str> = HashSet::new();
        while let Some(node) = stack.pop() {
            if !seen.insert(node.name.as_str()) {
                continue;
            }
            self.called_functions(node, &mut functions, &mut seen_functions);
            if node.op == "RestoreV2" {
                plan.top_level = true;
                self.restores_of(node, false, &[], Some(&consumers), &mut plan);
            }
            for input in &node.input {
                if let Some(next) = self.meta_graph.node(input_node(input, false)) {
                    stack.push(next);
                }
            }
        }
        while let Some(function) = functions.pop() {
            for node in &function.node_def {
                self.called_functions(node, &mut functions, &mut seen_functions);
                if node.op == "RestoreV2" {
                    self.restores_of(node, true, &function.node_def, None, &mut plan);
                }
            }
        }
        plan
    }

    fn called_functions(
        &self,
        node: &'a NodeDef,
        functions: &mut Vec<&'a FunctionDef>,
        seen: &mut HashSet<&'a str>,
    ) {
        let mut names: Vec<&'a str> = vec![node.op.as_str()];
        for attr in node.attr.values() {
            match &attr.value {
                Some(Value::Func(f)) => names.push(&f.name),
                Some(Value::List(list)) => names.extend(list.func.iter().map(|f| f.name.as_str())),
                _ => {}
            }
        }
        for name in names {
            if let Some(function) = self.meta_graph.function(name) {
                if seen.insert(name) {
                    functions.push(function);
                }
            }
        }
    }

    fn restores_of(
        &self,
        node: &'a NodeDef,
        in_function: bool,
        body: &'a [NodeDef],
        consumers: Option<&HashMap<&str, Vec<&'a NodeDef>>>,
        plan: &mut RestorePlan<'a>,
    ) {
        let find = |input: Option<&String>| -> Option<&'a NodeDef> {
            let name = input_node(input?, in_function);
            if in_function {
                body.iter().find(|n| n.name == name)
            } else {
                self.meta_graph.node(name)
            }
        };
        let Some(names) = find(node.input.get(1)).and_then(const_strings) else {
            return;
        };
        let slices = find(node.input.get(2)).and_then(const_strings);
        let dtypes: &[i32] = match node.attr.get("dtypes").and_then(|a| a.value.as_ref()) {
            Some(Value::List(list)) => &list.r#type,
            _ => &[],
        };
        for (i, key) in names.iter().enumerate() {
            let variable = consumers.and_then(|c| assigned_variable(self.meta_graph, c, node, i));
            plan.restores.push(Restore {
                key: String::from_utf8_lossy(key).into_owned(),
                slice: slices
                    .and_then(|s| s.get(i))
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .unwrap_or_default(),
                dtype: dtypes.get(i).copied(),
                node: node.name.clone(),
                variable,
            });
        }
    }
}

/// The variable that output `index` of a top-level `RestoreV2` node is
/// assigned to (`Assign` / `AssignVariableOp`, possibly through `Identity`).
fn assigned_variable<'a>(
    meta_graph: &MetaGraph<'a>,
    consumers: &HashMap<&str, Vec<&'a NodeDef>>,
    restore: &'a NodeDef,
    index: usize,
) -> Option<&'a NodeDef> {
    let index = u64::try_from(index).ok()?;
    let mut frontier: Vec<(&'a NodeDef, &'a str, u64)> = consumers
        .get(restore.name.as_str())?
        .iter()
        .map(|n| (*n, restore.name.as_str(), index))
        .collect();
    let mut steps = 0;
    while let Some((node, from, output)) = frontier.pop() {
        steps += 1;
        if steps > 64 {
            return None;
        }
        let fed = |k: usize| {
            node.input
                .get(k)
                .and_then(|i| TensorName::parse(i))
                .is_some_and(|t| t.node == from && t.output == output)
        };
        match node.op.as_str() {
            "Assign" | "AssignVariableOp" if fed(1) => {
                let mut target = meta_graph.node(input_node(node.input.first()?, false))?;
                // Reference variables may be reached through Identity.
                let mut hops = 0;
                while target.op == "Identity" && hops < 8 {
                    target = meta_graph.node(input_node(target.input.first()?, false))?;
                    hops += 1;
                }
                return matches!(
                    target.op.as_str(),
                    "VarHandleOp" | "VariableV2" | "Variable"
                )
                .then_some(target);
            }
            "Identity" if fed(0) => {
                if let Some(next) = consumers.get(node.name.as_str()) {
                    frontier.extend(next.iter().map(|n| (*n, node.name.as_str(), 0)));
                }
            }
            _ => {}
        }
    }
    None
}

#[derive(Default)]
struct RestorePlan<'a> {
    restores: Vec<Restore<'a>>,
    /// Restores happen in the graph itself (TF1), so variables can be matched.
    top_level: bool,
}

struct Restore<'a> {
    key: String,
    slice: String,
    dtype: Option<i32>,
    node: String,
    variable: Option<&'a NodeDef>,
}

// ---- checkpoint ----

pub(super) enum Checkpoint {
    /// `variables/variables.index` does not exist.
    Missing,
    /// It exists but could not be opened (reported).
    Unreadable,
    Open(Box<BundleReader>),
}

impl Checkpoint {
    pub(super) fn open(model: &SavedModel, options: &ValidateOptions, report: &mut Report) -> Self {
        let index = model.variables_index();
        if !index.exists() {
            return Checkpoint::Missing;
        }
        let bundle = match BundleReader::open(model.variables_prefix()) {
            Ok(bundle) => bundle,
            Err(e) => {
                report.error("variables/variables.index", e.to_string());
                return Checkpoint::Unreadable;
            }
        };
        if model
            .proto()
            .meta_graphs
            .iter()
            .all(|m| m.saver_def.is_none())
        {
            // A warning: whether it matters is judged per MetaGraph and variable
            // (`MetaGraphCheck::saver`: an error when a signature reads a variable
            // nothing initializes).
            report.warning(
                "variables/",
                "the savedmodel has variables but no meta graph has a saver_def, so tensorflow \
                 never restores them",
            );
        }
        let mut bad = 0usize;
        for item in bundle.entries() {
            let (key, entry) = match item {
                Ok(item) => item,
                Err(e) => {
                    report.error("variables/variables.index", e.to_string());
                    return Checkpoint::Unreadable;
                }
            };
            if !options.verify_checksums || entry.is_partitioned() {
                continue;
            }
            if let Err(e) = bundle.tensor_for_entry(&key, &entry) {
                bad += 1;
                if bad <= 20 {
                    let location = data_location(&bundle, entry.shard_id, model.dir());
                    report.error(location, e.to_string());
                }
            }
        }
        if bad > 20 {
            report.error(
                "variables/",
                format!("{} more tensor(s) could not be read", bad - 20),
            );
        }
        Checkpoint::Open(Box::new(bundle))
    }
}

fn data_location(bundle: &BundleReader, shard: u32, dir: &Path) -> String {
    let path = bundle.data_path(shard);
    path.strip_prefix(dir)
        .map_or_else(|_| path.display().to_string(), |p| p.display().to_string())
}

/// `'a', 'b'`.
fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
