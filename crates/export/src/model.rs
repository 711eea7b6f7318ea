//! A spec resolved against its weights ([`PreparedModel`]): every tensor
//! found, every shape checked, labels and normalization read, all before
//! anything is written. Then the serving graph built from it.

use std::path::{Path, PathBuf};

use savedmodel_checkpoint::DType;

use super::spec::{
    Activation, ClassLabels, ExportSpec, Normalization, Task, Values, WeightLayout, check_labels,
    check_values, is_binary,
};
use super::weights::{AsF32, WeightSource, WeightTensor, check_f32, suggest, to_f32};
use crate::error::{Error, Result};
use savedmodel_graph::Error as GraphError;
use savedmodel_graph::ops::ExampleSpec;
use savedmodel_graph::{Graph, Output};
use savedmodel_graph::{Tensor, VariableValue};

/// The largest vocabulary file read for class labels (64 MiB).
pub const MAX_VOCABULARY_BYTES: u64 = 64 << 20;

/// One dense layer with its weights checked.
#[derive(Clone, Debug)]
pub struct PreparedLayer {
    name: Option<String>,
    label: String,
    inputs: usize,
    units: usize,
    activation: Activation,
    layout: WeightLayout,
    /// `float32` `[in, out]` or `[out, in]` as stored (the graph's `MatMul`
    /// transposes an `out_in` kernel; the bytes are not rearranged):
    /// streamed from the weights when they can share it, else a copy.
    kernel: VariableValue,
    bias: Option<VariableValue>,
}

impl PreparedLayer {
    /// The spec's name for the layer, if it gave one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Number of units (outputs).
    pub fn units(&self) -> usize {
        self.units
    }

    /// The activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The kernel's layout, as stored in the checkpoint too.
    pub fn layout(&self) -> WeightLayout {
        self.layout
    }

    /// Whether the layer has a bias.
    pub fn has_bias(&self) -> bool {
        self.bias.is_some()
    }
}

/// A model spec resolved against its weights: ready to be written.
///
/// Everything that can be wrong with the spec and the weights is found by
/// [`PreparedModel::prepare`], so that an export fails before any file is
/// written.
#[derive(Clone, Debug)]
pub struct PreparedModel {
    spec: ExportSpec,
    weights_origin: PathBuf,
    layers: Vec<PreparedLayer>,
    normalization: Option<(Vec<f32>, Vec<f32>)>,
    labels: Vec<String>,
    vocabulary: Option<PathBuf>,
    output_width: usize,
}

/// The serving graph of an export and the tensors its signatures use.
#[derive(Debug)]
pub struct ExportGraph {
    /// The graph, with the model's variables.
    pub graph: Graph,
    /// `tf_example:0`: `DT_STRING [-1]` serialized `tf.Example`s (the
    /// classify/regress input).
    pub examples: Output,
    /// `x:0`: `DT_FLOAT [-1, n]`, the parsed (or directly fed) inputs (the
    /// predict input).
    pub inputs: Output,
    /// The outputs.
    pub head: Head,
    /// Each layer's name scope, input first: its variables are
    /// `<scope>/kernel` and `<scope>/bias`.
    pub layer_scopes: Vec<String>,
}

/// What the model computes, by task.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Head {
    /// A classifier's outputs.
    Classifier {
        /// `DT_FLOAT [-1, K]`: scores in label order (predict `scores`).
        scores: Output,
        /// `DT_INT64 [-1]`: the index of the highest score (predict
        /// `classes`).
        class_ids: Output,
        /// `DT_STRING [-1, K]`: labels sorted by score, highest first
        /// (classify `classes`).
        top_classes: Output,
        /// `DT_FLOAT [-1, K]`: scores sorted, highest first (classify
        /// `scores`).
        top_scores: Output,
    },
    /// A regressor's output.
    Regressor {
        /// `DT_FLOAT [-1]`: one number per example (regress and predict
        /// `outputs`).
        outputs: Output,
    },
}

fn role_kernel(label: &str) -> String {
    format!("kernel of {label}")
}

fn role_bias(label: &str) -> String {
    format!("bias of {label}")
}

fn dims(shape: &[i64]) -> String {
    let d: Vec<String> = shape.iter().map(i64::to_string).collect();
    format!("[{}]", d.join(", "))
}

impl PreparedModel {
    /// Resolves `spec` against `weights`: finds every tensor the spec names,
    /// checks its dtype and shape, reads the class labels and the
    /// normalization vectors. Errors name the tensor, what the spec uses it
    /// for and what was expected.
    pub fn prepare(spec: &ExportSpec, weights: &dyn WeightSource) -> Result<Self> {
        let origin = weights.origin().to_path_buf();
        let fetch = |name: &str, role: &str| -> Result<WeightTensor<'_>> {
            match weights.tensor(name)? {
                Some(t) => Ok(t),
                None => Err(Error::MissingWeight {
                    weights: origin.clone(),
                    tensor: name.to_owned(),
                    role: role.to_owned(),
                    hint: suggest(name, &weights.names()),
                }),
            }
        };
        let weight_error = |name: &str, role: &str, what: String| Error::Weight {
            weights: origin.clone(),
            tensor: name.to_owned(),
            role: role.to_owned(),
            what,
        };

        let mut layers = Vec::with_capacity(spec.layers.len());
        let mut inputs = spec.input_width;
        for (i, layer) in spec.layers.iter().enumerate() {
            let label = match &layer.name {
                Some(name) => format!("layer {} ({name})", i + 1),
                None => format!("layer {}", i + 1),
            };
            let role = role_kernel(&label);
            let kernel = fetch(&layer.kernel, &role)?;
            if kernel.shape.len() != 2 {
                return Err(weight_error(
                    &layer.kernel,
                    &role,
                    format!(
                        "has shape {}, but a kernel is a matrix",
                        dims(&kernel.shape)
                    ),
                ));
            }
            let (rows, cols) = (kernel.shape[0], kernel.shape[1]);
            let (k_in, k_out) = match layer.layout {
                WeightLayout::InOut => (rows, cols),
                WeightLayout::OutIn => (cols, rows),
            };
            let expected_in = inputs as i64;
            if k_in != expected_in {
                let what = if layer.layout == WeightLayout::InOut && cols == expected_in {
                    format!(
                        "has shape {} but {label} takes {inputs} inputs, so layout \"in_out\" needs [{inputs}, units]; it looks like PyTorch's [out, in]: set layout = \"out_in\"",
                        dims(&kernel.shape)
                    )
                } else if layer.layout == WeightLayout::OutIn && rows == expected_in {
                    format!(
                        "has shape {} but {label} takes {inputs} inputs, so layout \"out_in\" needs [units, {inputs}]; it looks like [in, out]: set layout = \"in_out\"",
                        dims(&kernel.shape)
                    )
                } else {
                    let want = match layer.layout {
                        WeightLayout::InOut => format!("[{inputs}, units]"),
                        WeightLayout::OutIn => format!("[units, {inputs}]"),
                    };
                    let from = if i == 0 {
                        "input_width".to_owned()
                    } else {
                        format!("the {} units of layer {i}", inputs)
                    };
                    format!(
                        "has shape {} but {label} takes {inputs} inputs ({from}): layout \"{}\" needs {want}",
                        dims(&kernel.shape),
                        layer.layout.name()
                    )
                };
                return Err(weight_error(&layer.kernel, &role, what));
            }
            let units = usize::try_from(k_out)
                .ok()
                .filter(|&u| (1..=super::spec::MAX_WIDTH).contains(&u))
                .ok_or_else(|| {
                    weight_error(
                        &layer.kernel,
                        &role,
                        format!("has shape {}: no units", dims(&kernel.shape)),
                    )
                })?;
            if let Some(want) = layer.units {
                if want != units {
                    return Err(weight_error(
                        &layer.kernel,
                        &role,
                        format!(
                            "has shape {}, which is {units} units, but the spec says units = {want}",
                            dims(&kernel.shape)
                        ),
                    ));
                }
            }
            let kernel_value = f32_value(weights, &layer.kernel, kernel)
                .map_err(|what| weight_error(&layer.kernel, &role, what))?;
            let bias = match &layer.bias {
                None => None,
                Some(name) => {
                    let role = role_bias(&label);
                    let bias = fetch(name, &role)?;
                    if bias.shape != [units as i64] {
                        return Err(weight_error(
                            name,
                            &role,
                            format!(
                                "has shape {} but {label} has {units} units: expected [{units}]",
                                dims(&bias.shape)
                            ),
                        ));
                    }
                    Some(
                        f32_value(weights, name, bias)
                            .map_err(|what| weight_error(name, &role, what))?,
                    )
                }
            };
            layers.push(PreparedLayer {
                name: layer.name.clone(),
                label,
                inputs,
                units,
                activation: layer.activation,
                layout: layer.layout,
                kernel: kernel_value,
                bias,
            });
            inputs = units;
        }

        let last = layers.last().ok_or_else(|| Error::Spec {
            path: spec.path.clone(),
            what: "no [[layers]]: a model needs at least one dense layer".into(),
        })?;
        let output_width = match spec.task {
            Task::Regressor => {
                if last.units != 1 {
                    return Err(Error::Spec {
                        path: spec.path.clone(),
                        what: format!(
                            "a regressor outputs one number per example, but {} has {} units",
                            last.label, last.units
                        ),
                    });
                }
                1
            }
            Task::Classifier if is_binary(last.activation, last.units) => 2,
            Task::Classifier if last.units == 1 && last.activation == Activation::Softmax => {
                return Err(Error::Spec {
                    path: spec.path.clone(),
                    what: format!(
                        "{} has one unit, and a softmax over one unit is always 1: for a binary classifier use one sigmoid unit (logistic_regression) or two softmax units",
                        last.label
                    ),
                });
            }
            Task::Classifier => {
                if spec.architecture == super::spec::Architecture::LogisticRegression {
                    return Err(Error::Spec {
                        path: spec.path.clone(),
                        what: format!(
                            "a logistic_regression has one output unit, {} has {} (use softmax_classifier for more classes)",
                            last.label, last.units
                        ),
                    });
                }
                last.units
            }
        };

        let (labels, vocabulary) = match (spec.task, &spec.classes) {
            (Task::Regressor, _) => (Vec::new(), None),
            (Task::Classifier, ClassLabels::Default) => {
                ((0..output_width).map(|i| i.to_string()).collect(), None)
            }
            (Task::Classifier, ClassLabels::Inline(labels)) => (labels.clone(), None),
            (Task::Classifier, ClassLabels::Vocabulary(path)) => {
                (read_vocabulary(spec, path)?, Some(path.clone()))
            }
        };
        if spec.task == Task::Classifier && labels.len() != output_width {
            let source = match &vocabulary {
                Some(path) => format!("vocabulary {} has {} lines", path.display(), labels.len()),
                None => format!("[classes] has {} labels", labels.len()),
            };
            return Err(Error::Spec {
                path: spec.path.clone(),
                what: format!("{source} but the model scores {output_width} classes"),
            });
        }

        let normalization = match &spec.normalization {
            None => None,
            Some(Normalization { mean, std }) => {
                let resolve = |v: &Values, what: &str, positive: bool| -> Result<Vec<f32>> {
                    let values = match v {
                        Values::Inline(v) => v.clone(),
                        Values::Tensor(name) => {
                            let role = format!("normalization {what}");
                            let t = fetch(name, &role)?;
                            let n = spec.input_width as i64;
                            if t.shape != [n] && t.shape != [1, n] {
                                return Err(weight_error(
                                    name,
                                    &role,
                                    format!(
                                        "has shape {} but input_width is {n}: expected [{n}]",
                                        dims(&t.shape)
                                    ),
                                ));
                            }
                            let values =
                                to_f32(&t).map_err(|what| weight_error(name, &role, what))?;
                            check_values(&values, what, positive)
                                .map_err(|what| weight_error(name, &role, what))?;
                            values
                        }
                    };
                    Ok(values)
                };
                Some((resolve(mean, "mean", false)?, resolve(std, "std", true)?))
            }
        };

        Ok(PreparedModel {
            spec: spec.clone(),
            weights_origin: weights.origin().to_path_buf(),
            layers,
            normalization,
            labels,
            vocabulary,
            output_width,
        })
    }

    /// The spec.
    pub fn spec(&self) -> &ExportSpec {
        &self.spec
    }

    /// Where the weights came from.
    pub fn weights_origin(&self) -> &Path {
        &self.weights_origin
    }

    /// The layers, input first.
    pub fn layers(&self) -> &[PreparedLayer] {
        &self.layers
    }

    /// The class labels in score order (empty for a regressor).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The vocabulary file shipped as an asset, if the labels come from one.
    pub fn vocabulary(&self) -> Option<&Path> {
        self.vocabulary.as_deref()
    }

    /// The normalization `(mean, std)`, resolved, if the spec has one.
    pub fn normalization(&self) -> Option<(&[f32], &[f32])> {
        self.normalization
            .as_ref()
            .map(|(m, s)| (m.as_slice(), s.as_slice()))
    }

    /// K, the number of scores of a classifier; 1 for a regressor.
    pub fn output_width(&self) -> usize {
        self.output_width
    }

    /// The number of parameters (kernel and bias elements).
    pub fn num_parameters(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| {
                let k = (l.inputs as u64).saturating_mul(l.units as u64);
                k.saturating_add(if l.bias.is_some() { l.units as u64 } else { 0 })
            })
            .fold(0u64, u64::saturating_add)
    }

    /// Computes the model in Rust, in `float32`, for `rows` (row-major,
    /// `input_width` values each): a classifier's scores in label order
    /// (`K` per row), or a regressor's outputs (one per row). Meant for
    /// small models (evaluation, warmup inputs); the graph is what serves.
    pub fn predict(&self, rows: &[f32]) -> Result<Vec<f32>> {
        let n = self.spec.input_width;
        if n == 0 || rows.len() % n != 0 {
            return Err(GraphError::InvalidTensor {
                what: format!(
                    "{} values are not a whole number of rows of {n}",
                    rows.len()
                ),
            }
            .into());
        }
        let batch = rows.len() / n;
        let mut x: Vec<f32> = rows.to_vec();
        if let Some((mean, std)) = &self.normalization {
            for row in x.chunks_exact_mut(n) {
                for ((v, m), s) in row.iter_mut().zip(mean).zip(std) {
                    *v = (*v - m) / s;
                }
            }
        }
        for layer in &self.layers {
            let kernel = layer.kernel.to_f32_vec()?.unwrap_or_default();
            let bias = match &layer.bias {
                Some(b) => b.to_f32_vec()?,
                None => None,
            };
            let (inputs, units) = (layer.inputs, layer.units);
            let mut y = vec![0f32; batch * units];
            for (xr, yr) in x.chunks_exact(inputs).zip(y.chunks_exact_mut(units)) {
                for (j, out) in yr.iter_mut().enumerate() {
                    let mut acc = 0f32;
                    for (i, xv) in xr.iter().enumerate() {
                        let w = match layer.layout {
                            WeightLayout::InOut => kernel[i * units + j],
                            WeightLayout::OutIn => kernel[j * inputs + i],
                        };
                        acc += xv * w;
                    }
                    if let Some(b) = &bias {
                        acc += b[j];
                    }
                    *out = acc;
                }
            }
            for row in y.chunks_exact_mut(units) {
                activate(layer.activation, row);
            }
            x = y;
        }
        let last = self.layers.last().map(|l| (l.activation, l.units));
        if self.spec.task == Task::Classifier && last.is_some_and(|(a, u)| is_binary(a, u)) {
            return Ok(x.iter().flat_map(|&p| [1.0 - p, p]).collect());
        }
        Ok(x)
    }

    /// Builds the serving graph: parsing of `tf.Example`s, normalization,
    /// the dense layers (variables `<scope>/kernel`, `<scope>/bias`), and
    /// the classifier's or regressor's outputs. Consumes the model so that
    /// the weights move into the graph without a copy.
    pub fn into_graph(self) -> Result<ExportGraph> {
        let mut g = Graph::new();
        let n = self.spec.input_width as i64;
        let examples = g.placeholder("tf_example", DType::String, [-1])?;
        let parsed = g.parse_example(
            "ParseExample",
            &examples,
            &ExampleSpec::new().dense(&self.spec.feature, DType::Float, &[n]),
        )?;
        let feature =
            parsed
                .dense(&self.spec.feature)
                .cloned()
                .ok_or_else(|| GraphError::Graph {
                    node: "ParseExample".into(),
                    what: format!("no dense output for feature {:?}", self.spec.feature),
                })?;
        let inputs = g.identity("x", &feature)?;
        let mut x = inputs.clone();
        if let Some((mean, std)) = &self.normalization {
            x = g.name_scope("normalize", |g| -> Result<Output> {
                let m = g.constant("mean", Tensor::vector(mean))?;
                let s = g.constant("std", Tensor::vector(std))?;
                let centered = g.sub("sub", &x, &m)?;
                Ok(g.div("truediv", &centered, &s)?)
            })?;
        }
        let mut last_activation = Activation::None;
        let mut last_units = 0;
        let mut layer_scopes = Vec::with_capacity(self.layers.len());
        for layer in self.layers {
            last_activation = layer.activation;
            last_units = layer.units;
            let name = layer.name.clone().unwrap_or_else(|| "dense".to_owned());
            let (scope, y) = g.name_scope(&name, |g| -> Result<(String, Output)> {
                let scope = g.current_name_scope().to_owned();
                Ok((scope, dense(g, layer, &x)?))
            })?;
            layer_scopes.push(scope);
            x = y;
        }
        let head = match self.spec.task {
            Task::Regressor => Head::Regressor {
                outputs: g.reshape("outputs", &x, &[-1])?,
            },
            Task::Classifier => {
                let probabilities = if is_binary(last_activation, last_units) {
                    g.name_scope("binary", |g| -> Result<Output> {
                        let one = g.constant("one", Tensor::scalar(1f32))?;
                        let negative = g.sub("sub", &one, &x)?;
                        Ok(g.concat("concat", &[negative, x.clone()], 1)?)
                    })?
                } else {
                    x
                };
                let k = self.output_width as i64;
                let scores = g.identity("scores", &probabilities)?;
                let class_ids = g.arg_max("class_ids", &scores, 1)?;
                let k32 = i32::try_from(k).map_err(|_| GraphError::Graph {
                    node: "top_k".into(),
                    what: format!("{k} classes is more than TopKV2 takes"),
                })?;
                let top = g.top_k("top_k", &scores, k32)?;
                let top_classes = match &self.vocabulary {
                    None => {
                        let labels = g.constant("labels", Tensor::string_vector(&self.labels))?;
                        g.gather("classes", &labels, &top.indices, 0)?
                    }
                    Some(path) => {
                        let asset = g.asset("labels_vocabulary", path)?;
                        let table =
                            g.index_to_string_table_from_asset("labels_table", &asset, "UNK")?;
                        let ids = g.cast("class_indices", &top.indices, DType::Int64)?;
                        let looked_up = g.lookup("labels_lookup", &table, &ids)?;
                        g.identity("classes", &looked_up)?
                    }
                };
                let top_scores = g.identity("top_scores", &top.values)?;
                Head::Classifier {
                    scores,
                    class_ids,
                    top_classes,
                    top_scores,
                }
            }
        };
        Ok(ExportGraph {
            graph: g,
            examples,
            inputs,
            head,
            layer_scopes,
        })
    }
}

/// `activation(x · kernel + bias)` inside the layer's name scope.
fn dense(g: &mut Graph, layer: PreparedLayer, x: &Output) -> Result<Output> {
    let kernel = g.variable("kernel", layer.kernel)?;
    let bias = layer.bias.map(|b| g.variable("bias", b)).transpose()?;
    let transpose_b = layer.layout == WeightLayout::OutIn;
    let mut y = g.matmul_transposed("MatMul", x, kernel.value(), false, transpose_b)?;
    if let Some(bias) = &bias {
        y = g.bias_add("BiasAdd", &y, bias.value())?;
    }
    let y = match layer.activation {
        Activation::Relu => g.relu("Relu", &y)?,
        Activation::Relu6 => g.relu6("Relu6", &y)?,
        Activation::Sigmoid => g.sigmoid("Sigmoid", &y)?,
        Activation::Tanh => g.tanh("Tanh", &y)?,
        Activation::Softmax => g.softmax("Softmax", &y)?,
        Activation::None => y,
    };
    Ok(y)
}

/// Applies `activation` to one row of a layer's outputs, in place.
fn activate(activation: Activation, row: &mut [f32]) {
    match activation {
        Activation::Relu => row.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Relu6 => row.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
        Activation::Sigmoid => row.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
        Activation::Tanh => row.iter_mut().for_each(|v| *v = v.tanh()),
        Activation::Softmax => {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            row.iter_mut().for_each(|v| *v /= sum);
        }
        Activation::None => {}
    }
}

/// The weight `name` (already read as `t`) as a `float32` variable value:
/// shared with `weights` and streamed (converted chunk by chunk when it is
/// not `float32`) when the source can share it, else copied (converted)
/// into memory. `Err` says what is wrong with the tensor.
fn f32_value(
    weights: &dyn WeightSource,
    name: &str,
    t: WeightTensor<'_>,
) -> std::result::Result<VariableValue, String> {
    check_f32(&t)?;
    let shared = weights.shared_tensor(name).map_err(|e| e.to_string())?;
    if let Some(shared) = shared {
        if shared.dtype() == t.dtype && shared.shape() == t.shape.as_slice() {
            return Ok(AsF32::value(shared));
        }
    }
    f32_tensor(t).map(VariableValue::from)
}

/// The tensor as `float32` (moved when it already is, converted otherwise).
fn f32_tensor(t: WeightTensor<'_>) -> std::result::Result<Tensor, String> {
    if t.dtype == DType::Float {
        let shape = t.shape.clone();
        return Tensor::from_bytes(DType::Float, &shape, t.data.into_owned())
            .map_err(|e| e.to_string());
    }
    let values = to_f32(&t)?;
    Tensor::new(&t.shape, &values).map_err(|e| e.to_string())
}

/// Reads a vocabulary file of class labels, one per line.
fn read_vocabulary(spec: &ExportSpec, path: &Path) -> Result<Vec<String>> {
    let spec_error = |what: String| Error::Spec {
        path: spec.path.clone(),
        what,
    };
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        op: "reading class vocabulary",
        path: path.to_path_buf(),
        source,
    })?;
    if !spec.allow_paths_outside_spec_dir {
        let resolve = |p: &Path| {
            std::fs::canonicalize(p).map_err(|source| Error::Io {
                op: "resolving",
                path: p.to_path_buf(),
                source,
            })
        };
        let (dir, file) = (resolve(spec.dir())?, resolve(path)?);
        if !file.starts_with(&dir) {
            return Err(spec_error(format!(
                "vocabulary {} resolves to {}, outside the spec's directory {}: move it there, \
                 or pass --allow-paths-outside-spec",
                path.display(),
                file.display(),
                dir.display()
            )));
        }
    }
    if !meta.is_file() {
        return Err(spec_error(format!(
            "vocabulary {} is not a file",
            path.display()
        )));
    }
    if meta.len() > MAX_VOCABULARY_BYTES {
        return Err(spec_error(format!(
            "vocabulary {} is {} bytes, more than the {MAX_VOCABULARY_BYTES} allowed",
            path.display(),
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        op: "reading class vocabulary",
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| spec_error(format!("vocabulary {} is not UTF-8 text", path.display())))?;
    if text.contains('\r') {
        return Err(spec_error(format!(
            "vocabulary {} has CRLF line endings: TensorFlow's table keeps the \\r in each label; save it with \\n line endings",
            path.display()
        )));
    }
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let labels: Vec<String> = body.split('\n').map(str::to_owned).collect();
    check_labels(&labels, &format!("vocabulary {}", path.display())).map_err(spec_error)?;
    Ok(labels)
}
