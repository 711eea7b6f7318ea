//! Signatures (every tensor names an existing node output of the declared
//! data type; TensorFlow Serving's rules for classify and regress, from
//! [`crate::serving`]) and the init op.

use crate::proto::tensorflow::tensor_info::Encoding;
use crate::proto::tensorflow::{DataType, NodeDef, TensorInfo};
use crate::reader::{INIT_OP_SIGNATURE_KEY, TensorName, tensor_names};
use crate::serving::{self, CLASSIFY_INPUTS, CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME};
use crate::show::dtype_name;

use super::check::{MetaGraphCheck, base_type, input_node};

impl<'a> MetaGraphCheck<'_, 'a> {
    pub(super) fn signatures(&mut self) {
        for signature in self.meta_graph.signatures() {
            let key = signature.key();
            if key == INIT_OP_SIGNATURE_KEY {
                continue;
            }
            let def = signature.def();
            let examples_input = matches!(
                def.method_name.as_str(),
                CLASSIFY_METHOD_NAME | REGRESS_METHOD_NAME
            );
            for (alias, info) in &def.inputs {
                let fed_examples = examples_input && alias == CLASSIFY_INPUTS;
                self.tensor_info(
                    &format!("signature '{key}' input '{alias}'"),
                    info,
                    fed_examples,
                );
            }
            for (alias, info) in &def.outputs {
                self.tensor_info(&format!("signature '{key}' output '{alias}'"), info, false);
            }
            let location = format!("signature '{key}'");
            // TensorFlow Serving feeds the graph tensor, whatever the
            // signature declares: judge the input by the tensor when known.
            let input_dtype = def
                .inputs
                .get(CLASSIFY_INPUTS)
                .and_then(|info| self.meta_graph.resolve_info(info).ok())
                .and_then(|t| t.dtype)
                .map(base_type);
            for problem in serving::signature_rules(def, input_dtype) {
                let location = self.at(&location);
                self.report
                    .push(problem.severity, location, problem.message);
            }
            for alias in def.defaults.keys() {
                if !def.inputs.contains_key(alias) {
                    self.error(
                        &location,
                        format!("a default is given for '{alias}', which is not an input"),
                    );
                }
            }
        }
    }

    /// Checks one tensor of a signature. `fed_examples`: the `inputs` of a
    /// classify or regress signature, which TensorFlow Serving feeds with
    /// serialized examples whatever the declared type says.
    fn tensor_info(&mut self, location: &str, info: &TensorInfo, fed_examples: bool) {
        let names = tensor_names(info);
        if info.encoding.is_none() || names.iter().any(|n| n.is_empty()) {
            self.error(location, "the tensor info names no tensor");
            return;
        }
        if info.dtype == DataType::DtInvalid as i32 {
            self.error(location, "the tensor info has no data type (DT_INVALID)");
        }
        for name in &names {
            if let Err(e) = self.meta_graph.resolve(name) {
                self.error(location, e.to_string());
            }
        }
        // The declared type is that of the named tensor, or of the values of
        // a sparse tensor.
        let typed = match &info.encoding {
            Some(Encoding::Name(name)) => Some(name.as_str()),
            Some(Encoding::CooSparse(coo)) => Some(coo.values_tensor_name.as_str()),
            _ => None,
        };
        let Some(name) = typed else { return };
        let Ok(tensor) = self.meta_graph.resolve(name) else {
            return;
        };
        let Some(actual) = tensor.dtype.map(base_type) else {
            return;
        };
        if actual == base_type(info.dtype) || info.dtype == DataType::DtInvalid as i32 {
            return;
        }
        let message = format!(
            "declared {}, but '{name}' ({} node '{}') is {}",
            dtype_name(info.dtype),
            tensor.node.op,
            tensor.node.name,
            dtype_name(actual)
        );
        // A warning: Serving feeds this input the serialized examples itself
        // (`tensorflow_serving/servables/tensorflow/classifier.cc`,
        // `regressor.cc`), so Classify and Regress work; only clients that
        // follow the declared type fail.
        if fed_examples && actual == DataType::DtString as i32 {
            self.warning(
                location,
                format!(
                    "{message}: the Classify and Regress APIs work (they feed serialized \
                     examples), but Predict clients that follow the signature, and \
                     tf.saved_model.load, fail"
                ),
            );
        } else {
            self.error(location, message);
        }
    }

    pub(super) fn init_op(&mut self) {
        match self.meta_graph.init_op() {
            Err(e) => self.error("init op", e.to_string()),
            Ok(Some(init)) => {
                if init.name.is_empty() {
                    self.error("init op", "the init op name is empty");
                } else if self.meta_graph.node(init.name).is_none() {
                    let hint = match TensorName::parse(init.name) {
                        Some(t)
                            if t.node != init.name && self.meta_graph.node(t.node).is_some() =>
                        {
                            format!(
                                "; it names a tensor, but the loader needs the node name '{}'",
                                t.node
                            )
                        }
                        _ => String::new(),
                    };
                    self.error(
                        "init op",
                        format!(
                            "init op '{}' is not a node of the graph (tensorflow: \
                             \"PruneForTargets: Some target nodes not found: {}\"){hint}",
                            init.name, init.name
                        ),
                    );
                }
            }
            Ok(None) => self.tables_without_init_op(),
        }
    }

    /// Table initializers with no init op to run them: the C++ loader runs
    /// only the init op (`tensorflow/cc/saved_model/loader.cc`: `RunInitOp`),
    /// so every lookup in those tables fails ("Table not initialized"). An
    /// error when a signature reads one of the tables, since TensorFlow
    /// Serving then fails every request on it; a warning otherwise.
    fn tables_without_init_op(&mut self) {
        let initializers: Vec<&NodeDef> = self
            .meta_graph
            .graph_def()
            .node
            .iter()
            .filter(|n| {
                matches!(
                    n.op.as_str(),
                    "InitializeTableV2"
                        | "InitializeTableFromTextFileV2"
                        | "LookupTableImportV2"
                        | "InitializeTable"
                        | "InitializeTableFromTextFile"
                )
            })
            .collect();
        if initializers.is_empty() {
            return;
        }
        let read = self.signature_nodes();
        let mut tables: Vec<&str> = initializers
            .iter()
            .filter_map(|n| n.input.first())
            .map(|t| input_node(t, false))
            .filter(|t| read.contains(t))
            .collect();
        tables.sort_unstable();
        tables.dedup();
        let n = initializers.len();
        if tables.is_empty() {
            self.warning(
                "init op",
                format!(
                    "the graph initializes lookup tables ({n} initializer node(s)) but has no \
                     init op, so the loader never runs them; no signature reads those tables"
                ),
            );
        } else {
            self.error(
                "init op",
                format!(
                    "the graph initializes lookup tables ({n} initializer node(s)) but has no \
                     init op, so the loader never runs them, and signatures read table(s) {}: \
                     tensorflow serving fails those requests (\"Table not initialized\")",
                    tables.join(", ")
                ),
            );
        }
    }
}
