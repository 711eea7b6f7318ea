//! Assets: each tensor fed once, with a `DT_STRING` path; each file inside
//! `assets/`, existing when an op reads it.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Component, Path};

use crate::op_registry;
use crate::proto::tensorflow::{DataType, NodeDef};
use crate::reader::{ASSETS_DIRECTORY, AssetSource, TensorName};
use crate::show::dtype_name;

use super::check::{MetaGraphCheck, OpKind, base_type, input_node};

impl<'a> MetaGraphCheck<'_, 'a> {
    pub(super) fn assets(&mut self) {
        let assets = match self.meta_graph.assets() {
            Ok(assets) => assets,
            Err(e) => {
                self.error("assets", e.to_string());
                return;
            }
        };
        let model = self.meta_graph.model();
        let mut listed: HashMap<&str, usize> = HashMap::new();
        for asset in &assets {
            *listed.entry(asset.tensor_name.as_str()).or_default() += 1;
        }
        let mut reported: HashSet<&str> = HashSet::new();
        for asset in &assets {
            let location = match asset.source {
                AssetSource::AssetFileDef(i) => {
                    format!("asset_file_def[{i}] '{}'", asset.filename)
                }
                AssetSource::Collection(i) => {
                    format!("collection saved_model_assets[{i}] '{}'", asset.filename)
                }
            };
            if asset.tensor_name.is_empty() {
                self.error(&location, "the asset names no tensor to feed");
            } else {
                match self.meta_graph.resolve(&asset.tensor_name) {
                    Err(e) => self.error(
                        &location,
                        format!("{e} (tensorflow cannot feed the asset path)"),
                    ),
                    Ok(t) => {
                        if t.dtype
                            .is_some_and(|d| base_type(d) != DataType::DtString as i32)
                        {
                            self.error(
                                &location,
                                format!(
                                    "tensor '{}' is {}, but asset paths are fed as DT_STRING",
                                    asset.tensor_name,
                                    dtype_name(t.dtype.map_or(0, base_type))
                                ),
                            );
                        }
                    }
                }
                let n = listed.get(asset.tensor_name.as_str()).copied().unwrap_or(0);
                if n > 1 && reported.insert(asset.tensor_name.as_str()) {
                    self.error(
                        &location,
                        format!(
                            "tensor '{}' is listed as an asset {n} times; tensorflow's c++ loader \
                             fails (\"Endpoint {} fed more than once\")",
                            asset.tensor_name, asset.tensor_name
                        ),
                    );
                }
            }
            if let Some(problem) = asset_name_problem(&asset.filename) {
                self.error(&location, problem);
                continue;
            }
            match fs::symlink_metadata(&asset.path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if self.may_read_file(&asset.tensor_name) {
                        self.error(
                            &location,
                            format!(
                                "asset file {ASSETS_DIRECTORY}/{} does not exist (tensorflow: \
                                 \"{}; No such file or directory\")",
                                asset.filename,
                                asset.path.display()
                            ),
                        );
                    } else {
                        // A warning: the C++ loader feeds each asset's path to its tensor
                        // and never opens the file itself (`tensorflow/cc/saved_model/
                        // loader.cc`: `RunRestore`, `RunInitOp` with the asset feeds), so
                        // when no op reads the path, Serving loads and serves the model.
                        self.warning(
                            &location,
                            format!(
                                "asset file {ASSETS_DIRECTORY}/{} does not exist; no op of the \
                                 graph reads the path fed to '{}', so the model still loads",
                                asset.filename, asset.tensor_name
                            ),
                        );
                    }
                }
                Err(e) => self.error(
                    &location,
                    format!("cannot read {ASSETS_DIRECTORY}/{}: {e}", asset.filename),
                ),
                Ok(meta) => {
                    // Resolve every link on the way: the asset itself,
                    // a directory under `assets/` or `assets/` itself may
                    // be one. The file must end up under the model's own
                    // `assets/` (the model directory resolved, `assets`
                    // not).
                    let inside = fs::canonicalize(&asset.path)
                        .ok()
                        .zip(fs::canonicalize(model.dir()).ok())
                        .is_some_and(|(target, dir)| {
                            target.starts_with(dir.join(ASSETS_DIRECTORY))
                        });
                    if !inside {
                        self.error(
                            &location,
                            format!(
                                "{ASSETS_DIRECTORY}/{} leads outside {ASSETS_DIRECTORY}/ \
                                 through a symlink (or nowhere): the model is not \
                                 self-contained",
                                asset.filename
                            ),
                        );
                    } else if !meta.file_type().is_symlink() && !meta.is_file() {
                        self.error(
                            &location,
                            format!("{ASSETS_DIRECTORY}/{} is not a file", asset.filename),
                        );
                    }
                }
            }
        }
    }

    /// Whether the path fed to `tensor` may reach an op that opens it: a
    /// `filename`-like input of a registered op, or anything this check
    /// cannot see into (a function call, an unknown op), following
    /// `Identity`-like ops and variables the path is assigned to.
    fn may_read_file(&self, tensor: &str) -> bool {
        let Some(start) = TensorName::parse(tensor).and_then(|t| self.meta_graph.node(t.node))
        else {
            return true;
        };
        let graph = self.meta_graph.graph_def();
        let mut consumers: HashMap<&str, Vec<(&NodeDef, usize)>> = HashMap::new();
        for node in &graph.node {
            let mut index = 0;
            for input in &node.input {
                if input.starts_with('^') {
                    continue;
                }
                consumers
                    .entry(input_node(input, false))
                    .or_default()
                    .push((node, index));
                index += 1;
            }
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            if !seen.insert(node.name.as_str()) {
                continue;
            }
            for &(consumer, index) in consumers.get(node.name.as_str()).into_iter().flatten() {
                match consumer.op.as_str() {
                    "Identity" | "IdentityN" | "Snapshot" | "StopGradient" | "ReadVariableOp" => {
                        stack.push(consumer);
                    }
                    "Assign" | "AssignVariableOp" if index == 1 => {
                        if let Some(variable) = consumer
                            .input
                            .first()
                            .and_then(|i| self.meta_graph.node(input_node(i, false)))
                        {
                            stack.push(variable);
                        }
                    }
                    _ => match self.op_kind(&consumer.op) {
                        OpKind::Registered(op) => {
                            let names = op_registry::input_arg_names(op, &consumer.attr);
                            let Ok(names) = names else { return true };
                            let reads = names.get(index).is_none_or(|name| {
                                name.contains("filename") || name.contains("pattern")
                            });
                            if reads {
                                return true;
                            }
                        }
                        OpKind::Function | OpKind::Unknown => return true,
                    },
                }
            }
        }
        false
    }
}

/// Why a stored asset file name would not stay inside `assets/`.
pub(super) fn asset_name_problem(filename: &str) -> Option<String> {
    if filename.is_empty() {
        return Some("the asset has an empty file name".to_owned());
    }
    let path = Path::new(filename);
    let escapes = path.is_absolute()
        || filename.starts_with('/')
        || filename.starts_with('\\')
        || filename.contains('\0')
        || path.components().any(|c| {
            matches!(
                c,
                Component::ParentDir | Component::RootDir | Component::Prefix(_)
            )
        })
        || filename.split(['/', '\\']).any(|part| part == "..");
    escapes.then(|| {
        format!(
            "asset file name '{filename}' escapes {ASSETS_DIRECTORY}/: the loader would feed a \
             path outside the savedmodel"
        )
    })
}
