//! Finding what would make TensorFlow Serving fail to load or to serve a
//! SavedModel, before it does.
//!
//! [`validate`] opens a SavedModel directory and reports [`Finding`]s, each
//! with a [`Severity`], the place it concerns and a message. An error is
//! something that makes TensorFlow's C++ loader (the one TensorFlow Serving
//! runs) or TensorFlow Serving itself refuse the model, or a request fail
//! that the model advertises; a warning is something that works with
//! TensorFlow 2.21 but is fragile (other loaders, other TensorFlow versions,
//! a GPU-less server).
//!
//! What is checked (docs/formats.md, sections 9, 10, 16 and 19; the C++ loader's
//! steps are in `tensorflow/cc/saved_model/loader.cc`, TensorFlow Serving's
//! in `tensorflow_serving/servables/tensorflow/`, its rules in
//! [`crate::serving`]):
//!
//! - files: `saved_model.pb`/`.pbtxt` present and parseable, no legacy
//!   `export.meta`, the tag set the server loads present (`{ serve }` unless
//!   [`ValidateOptions::tags`] says otherwise), `variables/` readable with
//!   every tensor's checksum intact, `fingerprint.pb` and
//!   `assets.extra/saved_model_config.pb` parseable;
//! - the graph, and every function of its library: ops that TensorFlow 2.21
//!   registers, attrs the op has, required attrs present, inputs that exist
//!   and have the data type the op expects, unique node names, control
//!   inputs last, `Const` values with fully defined shapes, GraphDef versions
//!   2.21 accepts, ops not removed for the graph's producer version;
//! - signatures: every tensor names an existing node output of the declared
//!   data type; classify and regress signatures follow TensorFlow Serving's
//!   rules;
//! - the saver: restore op and filename tensor exist; every tensor the
//!   restore reads exists in the checkpoint with the right data type and
//!   shape; variables that nothing initializes (an error when a signature
//!   reads one);
//! - the init op: found the way the loader looks for it, exactly one, and a
//!   node of the graph;
//! - assets: each file exists inside `assets/`, no tensor listed twice, no
//!   name that escapes `assets/`;
//! - the warmup file `assets.extra/tf_serving_warmup_requests`: TFRecord
//!   framing and checksums, at most 1000 records, each a `PredictionLog` of an
//!   allowed kind whose request names an existing signature and its inputs.
//!
//! ```
//! use savedmodel::validate::{validate, Severity, ValidateOptions};
//!
//! let dir = std::env::temp_dir().join("savedmodel-validate-doc-empty");
//! std::fs::create_dir_all(&dir)?;
//! let report = validate(&dir, &ValidateOptions::default());
//! assert!(report.has_errors());
//! assert_eq!(report.findings[0].severity, Severity::Error);
//! assert!(report.findings[0].message.contains("no saved_model.pb or saved_model.pbtxt"));
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::Path;

use crate::error::tag_set;
use crate::op_registry::OpRegistry;
use crate::proto::tensorflow::SignatureDef;
use crate::reader::SavedModel;
use crate::serving;

mod assets;
mod check;
mod graph;
mod signatures;
mod variables;
mod warmup;

use check::MetaGraphCheck;
use variables::Checkpoint;

/// The tag set TensorFlow Serving loads unless started with
/// `--saved_model_tags` ([`crate::serving::SERVE_TAG`]).
pub use crate::serving::SERVE_TAG as SERVING_TAG;
pub use crate::serving::{
    CLASSIFY_METHOD_NAME, DEFAULT_SERVING_SIGNATURE_DEF_KEY, MAX_WARMUP_RECORDS,
    PREDICT_METHOD_NAME, REGRESS_METHOD_NAME, SAVED_MODEL_CONFIG_FILE, Severity, WARMUP_FILE,
};

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// What it is about: a file (`variables/variables.index`), or a part of a
    /// MetaGraph (`signature 'serving_default' input 'x'`, `node 'y'`,
    /// `function 'f' node 'n'`), prefixed with the tag set when the model has
    /// several MetaGraphs.
    pub location: String,
    /// What is wrong, lowercase, naming the tensor, node or file.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.severity, self.location, self.message)
    }
}

/// Everything [`validate`] found, in the order it was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The findings.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }

    /// Whether there is at least one error.
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// Whether there is nothing at all to report.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    fn push(
        &mut self,
        severity: Severity,
        location: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding {
            severity,
            location: location.into(),
            message: message.into(),
        });
    }

    fn error(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, location, message);
    }

    fn warning(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, location, message);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        Ok(())
    }
}

/// What [`validate`] checks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ValidateOptions {
    /// The tag set of the server to validate for: TensorFlow Serving
    /// started with `--saved_model_tags=a,b` loads the MetaGraph whose tags
    /// are exactly `{ a, b }`. `Some`: only that MetaGraph is checked (an
    /// error if there is none). `None`: a server with default flags, which
    /// loads `{ serve }`: an error when no MetaGraph has exactly that tag
    /// set, and every MetaGraph is checked.
    pub tags: Option<Vec<String>>,
    /// Read every tensor of the checkpoint and compare its checksum (on by
    /// default; off reads only the index).
    pub verify_checksums: bool,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        Self {
            tags: None,
            verify_checksums: true,
        }
    }
}

impl ValidateOptions {
    /// Validate for a server started with `--saved_model_tags` set to
    /// `tags` ([`ValidateOptions::tags`]).
    pub fn with_tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Whether to read every tensor and compare checksums.
    pub fn verify_checksums(mut self, verify: bool) -> Self {
        self.verify_checksums = verify;
        self
    }
}

/// Validates the SavedModel in `dir`.
pub fn validate(dir: impl AsRef<Path>, options: &ValidateOptions) -> Report {
    let dir = dir.as_ref();
    let mut report = Report::default();
    if dir.join("export.meta").exists() {
        report.error(
            "export.meta",
            "this is a legacy session bundle, which tensorflow serving no longer loads \
             (\"Session Bundle is deprecated and removed\"); export a savedmodel instead",
        );
    }
    match SavedModel::open(dir) {
        Ok(model) => validate_model(&model, options, &mut report),
        Err(e) => report.error(model_file_location(dir), e.to_string()),
    }
    report
}

/// Validates an opened SavedModel, adding to `report`.
pub fn validate_model(model: &SavedModel, options: &ValidateOptions, report: &mut Report) {
    let file = file_name(model.path());
    if model.proto().meta_graphs.is_empty() {
        report.error(file, "the savedmodel holds no meta graph");
        return;
    }
    let meta_graphs = match &options.tags {
        Some(tags) => match model.meta_graph(tags) {
            Ok(meta_graph) => vec![meta_graph],
            Err(e) => {
                report.error(file, e.to_string());
                return;
            }
        },
        None => {
            // TensorFlow Serving loads the MetaGraph whose tag set is
            // exactly its --saved_model_tags, "serve" by default
            // (`tensorflow_serving/model_servers/server.cc`:
            // `Server::Options`), and refuses the model without one.
            if model.meta_graph(&[SERVING_TAG]).is_err() {
                report.error(
                    file,
                    format!(
                        "no meta graph has exactly the tag set {{ {SERVING_TAG} }}, so \
                         tensorflow serving started with default flags refuses the model (the \
                         model has {}); a server started with --saved_model_tags loads another \
                         tag set: validate with --tags to check for one",
                        crate::error::tag_sets(&model.tag_sets())
                    ),
                );
            }
            model.meta_graphs()
        }
    };
    let several = model.proto().meta_graphs.len() > 1;
    let checkpoint = Checkpoint::open(model, options, report);
    for meta_graph in &meta_graphs {
        let mut check = MetaGraphCheck {
            meta_graph,
            registry: OpRegistry::tensorflow(),
            prefix: if several {
                format!("{} ", tag_set(meta_graph.tags()))
            } else {
                String::new()
            },
            report: &mut *report,
        };
        check.graph();
        check.signatures();
        check.init_op();
        check.assets();
        check.saver(&checkpoint);
    }
    // TensorFlow Serving replays warmup requests against the MetaGraph it
    // loaded: the requested one, else { serve }.
    let serving = match &options.tags {
        Some(_) => meta_graphs.first().cloned(),
        None => model.meta_graph(&[SERVING_TAG]).ok(),
    };
    warmup::check_warmup(model, serving.as_ref(), report);
    warmup::check_extra_files(model, report);
}

fn model_file_location(dir: &Path) -> String {
    if dir.join(crate::proto::SAVED_MODEL_FILENAME_PB).exists()
        || !dir.join(crate::proto::SAVED_MODEL_FILENAME_PBTXT).exists()
    {
        crate::proto::SAVED_MODEL_FILENAME_PB.to_owned()
    } else {
        crate::proto::SAVED_MODEL_FILENAME_PBTXT.to_owned()
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// TensorFlow Serving's rules for a classify signature
/// ([`crate::serving::classify_rules`]), judging the declared types.
pub fn classify_problems(def: &SignatureDef) -> Vec<(Severity, String)> {
    pairs(serving::classify_rules(def, None))
}

/// TensorFlow Serving's rules for a regress signature
/// ([`crate::serving::regress_rules`]), with the same severities as
/// [`classify_problems`].
pub fn regress_problems(def: &SignatureDef) -> Vec<(Severity, String)> {
    pairs(serving::regress_rules(def, None))
}

fn pairs(problems: Vec<serving::Problem>) -> Vec<(Severity, String)> {
    problems
        .into_iter()
        .map(|p| (p.severity, p.message))
        .collect()
}

#[cfg(test)]
mod tests;
