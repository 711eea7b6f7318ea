//! SavedModels (`SavedModel`) and TensorFlow Serving's base paths
//! (`publish`, `versions`), over `savedmodel` and `savedmodel-layout`.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use savedmodel::proto::tensorflow::TensorInfo;
use savedmodel::reader::{MetaGraph, tensor_names};
use savedmodel::show;
use savedmodel::validate::{ValidateOptions, validate};
use savedmodel_layout::{BaseListing, NextVersion, OutsideLinks, PublishMode, publish_dir};

use crate::checkpoint::Checkpoint;
use crate::errors::{invalid_argument, layout_error, saved_model_error};

/// One input or output of a signature.
#[pyclass(frozen, module = "savedmodel", get_all)]
pub(crate) struct TensorSpec {
    /// The graph tensor it feeds or fetches (`x:0`; a sparse or composite
    /// tensor's component names joined by `,`).
    name: String,
    /// TensorFlow's name of the data type (`float32`, `string`).
    dtype: String,
    /// The dimensions, `None` for an unknown one; `None` for an unknown rank.
    shape: Option<Vec<Option<i64>>>,
}

#[pymethods]
impl TensorSpec {
    fn __repr__(&self) -> String {
        let shape = match &self.shape {
            None => "None".to_owned(),
            Some(dims) => {
                let dims: Vec<String> = dims
                    .iter()
                    .map(|d| d.map_or_else(|| "None".to_owned(), |d| d.to_string()))
                    .collect();
                if dims.len() == 1 {
                    format!("({},)", dims[0])
                } else {
                    format!("({})", dims.join(", "))
                }
            }
        };
        format!(
            "TensorSpec(name={:?}, dtype={:?}, shape={shape})",
            self.name, self.dtype
        )
    }
}

fn tensor_spec(info: &TensorInfo) -> TensorSpec {
    let shape = info
        .tensor_shape
        .as_ref()
        .filter(|shape| !shape.unknown_rank)
        .map(|shape| {
            shape
                .dim
                .iter()
                .map(|d| (d.size >= 0).then_some(d.size))
                .collect()
        });
    TensorSpec {
        name: tensor_names(info).join(","),
        dtype: show::python_dtype_name(info.dtype),
        shape,
    }
}

/// A signature: its key, method name, and inputs and outputs by alias.
#[pyclass(frozen, module = "savedmodel", get_all)]
pub(crate) struct Signature {
    /// The signature key (`serving_default`).
    name: String,
    /// The method name (`tensorflow/serving/predict`).
    method_name: String,
    /// The inputs, by alias.
    inputs: Py<PyDict>,
    /// The outputs, by alias.
    outputs: Py<PyDict>,
}

#[pymethods]
impl Signature {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Signature(name={:?}, method_name={:?}, inputs={}, outputs={})",
            self.name,
            self.method_name,
            self.inputs.bind(py).repr()?,
            self.outputs.bind(py).repr()?
        ))
    }
}

/// One problem `SavedModel.validate()` found.
#[pyclass(frozen, module = "savedmodel", get_all)]
pub(crate) struct Finding {
    /// `"error"` (TensorFlow Serving would fail to load or serve the model)
    /// or `"warning"`.
    severity: String,
    /// What it is about: a file or a part of a MetaGraph.
    location: String,
    /// What is wrong.
    message: String,
}

#[pymethods]
impl Finding {
    fn __repr__(&self) -> String {
        format!(
            "Finding(severity={:?}, location={:?}, message={:?})",
            self.severity, self.location, self.message
        )
    }

    fn __str__(&self) -> String {
        format!("{}: {}: {}", self.severity, self.location, self.message)
    }
}

/// A SavedModel directory opened for reading (`saved_model.pb` or
/// `saved_model.pbtxt` parsed; variables opened on demand).
#[pyclass(frozen, module = "savedmodel", name = "SavedModel")]
pub(crate) struct PySavedModel {
    model: savedmodel::SavedModel,
}

impl PySavedModel {
    /// The MetaGraph with exactly `tags`, or with no tags given, the only
    /// one, or else `serve`'s.
    fn meta_graph(&self, tags: Option<Vec<String>>) -> PyResult<MetaGraph<'_>> {
        let tags = match tags {
            Some(tags) => tags,
            None => match self.model.meta_graphs().as_slice() {
                [only] => return Ok(only.clone()),
                _ => vec!["serve".to_owned()],
            },
        };
        self.model.meta_graph(&tags).map_err(saved_model_error)
    }
}

#[pymethods]
impl PySavedModel {
    /// Opens the SavedModel in directory `path`.
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let model = py
            .detach(|| savedmodel::SavedModel::open(&path))
            .map_err(saved_model_error)?;
        Ok(PySavedModel { model })
    }

    /// The directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.model.dir().to_path_buf()
    }

    /// The tag sets of the MetaGraphs, in file order (`[["serve"]]`).
    #[getter]
    fn tags(&self) -> Vec<Vec<String>> {
        self.model.tag_sets()
    }

    /// The signatures of the MetaGraph with exactly `tags` (by default the
    /// only MetaGraph, or `serve`'s), by key.
    #[pyo3(signature = (tags = None))]
    fn signatures<'py>(
        &self,
        py: Python<'py>,
        tags: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let meta_graph = self.meta_graph(tags)?;
        let result = PyDict::new(py);
        for signature in meta_graph.signatures() {
            let inputs = PyDict::new(py);
            for (alias, info) in &signature.def().inputs {
                inputs.set_item(alias, tensor_spec(info))?;
            }
            let outputs = PyDict::new(py);
            for (alias, info) in &signature.def().outputs {
                outputs.set_item(alias, tensor_spec(info))?;
            }
            let value = Signature {
                name: signature.key().to_owned(),
                method_name: signature.method_name().to_owned(),
                inputs: inputs.unbind(),
                outputs: outputs.unbind(),
            };
            result.set_item(signature.key(), value)?;
        }
        Ok(result)
    }

    /// The variables as a lazy `Checkpoint` (`variables/variables`), or
    /// `None` for a model without variables.
    #[pyo3(signature = (*, verify_checksums = true))]
    fn variables(&self, py: Python<'_>, verify_checksums: bool) -> PyResult<Option<Checkpoint>> {
        if !self.model.variables_index().exists() {
            return Ok(None);
        }
        Checkpoint::open(py, self.model.variables_prefix(), verify_checksums).map(Some)
    }

    /// The asset files the MetaGraph with `tags` (as for `signatures`)
    /// lists, as `(filename, path)` pairs.
    #[pyo3(signature = (tags = None))]
    fn assets(&self, tags: Option<Vec<String>>) -> PyResult<Vec<(String, PathBuf)>> {
        let meta_graph = self.meta_graph(tags)?;
        let assets = meta_graph.assets().map_err(saved_model_error)?;
        Ok(assets
            .into_iter()
            .map(|asset| (asset.filename, asset.path))
            .collect())
    }

    /// What `savedmodel show` (and `saved_model_cli show`) prints for the
    /// same flags: the tag sets; with `tag_set` (comma-separated tags) its
    /// signature keys, or with `signature_def` that signature's inputs and
    /// outputs; `list_ops` adds the ops; `all=True` everything.
    #[pyo3(signature = (*, tag_set = None, signature_def = None, all = false, list_ops = false))]
    fn show(
        &self,
        tag_set: Option<&str>,
        signature_def: Option<&str>,
        all: bool,
        list_ops: bool,
    ) -> PyResult<String> {
        if all {
            return Ok(show::all(&self.model));
        }
        let Some(tag_set) = tag_set else {
            if signature_def.is_some() {
                return Err(invalid_argument("signature_def needs tag_set"));
            }
            let mut text = String::new();
            if list_ops {
                text.push_str("--list_ops must be paired with a tag-set or with --all.\n");
            }
            text.push_str(&show::tag_sets(&self.model));
            return Ok(text);
        };
        let tags: Vec<&str> = tag_set
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if tags.is_empty() {
            return Err(invalid_argument(
                "tag_set must contain at least one non-empty tag",
            ));
        }
        let meta_graph = self.model.meta_graph(&tags).map_err(saved_model_error)?;
        let mut text = String::new();
        if list_ops {
            text.push_str(&show::ops(&meta_graph));
        }
        match signature_def {
            None => text.push_str(&show::signature_keys(&meta_graph)),
            Some(key) => {
                text.push_str(&show::signature(&meta_graph, key).map_err(saved_model_error)?)
            }
        }
        Ok(text)
    }

    /// Checks the model as TensorFlow Serving would load it (`savedmodel
    /// validate`): the findings, errors and warnings, empty when clean.
    /// `tags` is the tag set Serving is started with (default `serve`).
    #[pyo3(signature = (*, tags = None, verify_checksums = true))]
    fn validate(
        &self,
        py: Python<'_>,
        tags: Option<Vec<String>>,
        verify_checksums: bool,
    ) -> Vec<Finding> {
        let mut options = ValidateOptions::default().verify_checksums(verify_checksums);
        if let Some(tags) = tags {
            options = options.with_tags(tags);
        }
        let dir = self.model.dir().to_path_buf();
        let report = py.detach(|| validate(&dir, &options));
        report
            .findings
            .into_iter()
            .map(|f| Finding {
                severity: f.severity.to_string(),
                location: f.location,
                message: f.message,
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("SavedModel({:?})", self.model.dir().display().to_string())
    }
}

/// Publishes the SavedModel directory `src` under TensorFlow Serving's base
/// path `base` as a new version, atomically (as `savedmodel publish`): the
/// next number after the highest, or `version`; `move=True` renames `src`
/// instead of copying it. Symbolic links leading out of `src` are refused
/// unless `follow_outside_links=True` (`--follow-outside-links`). Returns
/// `(version, path)`.
#[pyfunction]
#[pyo3(signature = (src, base, *, version = None, r#move = false, follow_outside_links = false))]
pub(crate) fn publish(
    py: Python<'_>,
    src: PathBuf,
    base: PathBuf,
    version: Option<i64>,
    r#move: bool,
    follow_outside_links: bool,
) -> PyResult<(i64, PathBuf)> {
    let outside_links = if follow_outside_links {
        OutsideLinks::Follow
    } else {
        OutsideLinks::Refuse
    };
    let next = version.map_or(NextVersion::Increment, NextVersion::Explicit);
    let mode = if r#move {
        PublishMode::Move
    } else {
        PublishMode::Copy
    };
    let published = py
        .detach(|| publish_dir(&src, &base, next, mode, outside_links))
        .map_err(layout_error)?;
    Ok((published.version, published.path))
}

/// The version numbers TensorFlow Serving sees under base path `base`,
/// ascending.
#[pyfunction]
pub(crate) fn versions<'py>(py: Python<'py>, base: PathBuf) -> PyResult<Bound<'py, PyTuple>> {
    let listing = BaseListing::read(&base).map_err(layout_error)?;
    PyTuple::new(py, listing.versions().into_keys())
}
