//! The model spec: a TOML file naming the architecture, which tensors of the
//! weights file hold each layer, the input, the class labels and an optional
//! input normalization. `docs/spec.md` documents every key with examples.
//!
//! Parsing is two steps: serde reads the TOML into `Raw*` structs (unknown
//! keys are refused, so a typo is an error rather than a silently ignored
//! setting), then [`ExportSpec::from_toml`] checks what serde cannot
//! (architecture and activation names, widths, label lists) and resolves
//! defaults, so that a [`ExportSpec`] always describes a buildable model
//! apart from the weights themselves.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The largest input width, number of units or classes a spec may ask for:
/// far beyond any dense model, small enough that products of two widths
/// cannot overflow.
pub const MAX_WIDTH: usize = 1 << 31;

/// The model families `savedmodel export` builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Architecture {
    /// `y = x·W + b` with one output: a regressor.
    LinearRegression,
    /// `p = sigmoid(x·W + b)` with one output unit: a binary classifier
    /// whose scores are `[1 - p, p]`.
    LogisticRegression,
    /// `softmax(x·W + b)` over K units: a K-class classifier.
    SoftmaxClassifier,
    /// Any number of dense layers, each with its own activation; a
    /// classifier or a regressor (`model.task`).
    Mlp,
}

impl Architecture {
    /// Every architecture, as written in a spec.
    pub const NAMES: &'static [&'static str] = &[
        "linear_regression",
        "logistic_regression",
        "softmax_classifier",
        "mlp",
    ];

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "linear_regression" => Architecture::LinearRegression,
            "logistic_regression" => Architecture::LogisticRegression,
            "softmax_classifier" => Architecture::SoftmaxClassifier,
            "mlp" => Architecture::Mlp,
            _ => return None,
        })
    }

    /// The name used in a spec, e.g. `softmax_classifier`.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::LinearRegression => "linear_regression",
            Architecture::LogisticRegression => "logistic_regression",
            Architecture::SoftmaxClassifier => "softmax_classifier",
            Architecture::Mlp => "mlp",
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the model's output means, which decides its signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Task {
    /// Scores over classes: `classify` and `predict` signatures.
    Classifier,
    /// One number per example: `regress` and `predict` signatures.
    Regressor,
}

impl Task {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "classifier" | "classification" => Some(Task::Classifier),
            "regressor" | "regression" => Some(Task::Regressor),
            _ => None,
        }
    }

    /// `classifier` or `regressor`.
    pub fn name(self) -> &'static str {
        match self {
            Task::Classifier => "classifier",
            Task::Regressor => "regressor",
        }
    }
}

/// A layer's activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Activation {
    /// `max(x, 0)` (`Relu`).
    Relu,
    /// `min(max(x, 0), 6)` (`Relu6`).
    Relu6,
    /// `1 / (1 + e^-x)` (`Sigmoid`).
    Sigmoid,
    /// `tanh(x)` (`Tanh`).
    Tanh,
    /// Softmax over the layer's units (`Softmax`).
    Softmax,
    /// The identity: the layer is affine only.
    None,
}

impl Activation {
    /// Every activation, as written in a spec.
    pub const NAMES: &'static [&'static str] =
        &["relu", "relu6", "sigmoid", "tanh", "softmax", "none"];

    /// Parses a spec name (`linear` and `identity` are accepted for `none`,
    /// as Keras calls it).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "relu" => Activation::Relu,
            "relu6" => Activation::Relu6,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax,
            "none" | "linear" | "identity" => Activation::None,
            _ => return None,
        })
    }

    /// The name used in a spec.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::None => "none",
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a kernel is laid out in the weights file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WeightLayout {
    /// `[in, out]`: TensorFlow, Keras, JAX/Flax, `x @ W` conventions.
    #[default]
    InOut,
    /// `[out, in]`: PyTorch's `nn.Linear.weight` (`x @ W.T`).
    OutIn,
}

impl WeightLayout {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "in_out" | "[in, out]" | "tensorflow" | "keras" | "jax" | "flax" => {
                Some(WeightLayout::InOut)
            }
            "out_in" | "[out, in]" | "pytorch" | "torch" => Some(WeightLayout::OutIn),
            _ => None,
        }
    }

    /// `in_out` or `out_in`.
    pub fn name(self) -> &'static str {
        match self {
            WeightLayout::InOut => "in_out",
            WeightLayout::OutIn => "out_in",
        }
    }

    /// The kernel shape this layout stores for a layer from `inputs` to
    /// `units`.
    pub fn kernel_shape(self, inputs: usize, units: usize) -> [usize; 2] {
        match self {
            WeightLayout::InOut => [inputs, units],
            WeightLayout::OutIn => [units, inputs],
        }
    }
}

/// One dense layer: `activation(x · kernel + bias)`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LayerSpec {
    /// A name for messages and the graph's name scope (`dense`, `dense_1`
    /// when not given).
    pub name: Option<String>,
    /// The kernel's tensor name in the weights file.
    pub kernel: String,
    /// The bias's tensor name; `None` for a layer without bias.
    pub bias: Option<String>,
    /// The number of units, when the spec states it (checked against the
    /// kernel).
    pub units: Option<usize>,
    /// The activation.
    pub activation: Activation,
    /// The kernel's layout.
    pub layout: WeightLayout,
}

/// A vector of `input_width` numbers, given in the spec or read from the
/// weights file.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Values {
    /// Written in the spec.
    Inline(Vec<f32>),
    /// A tensor of the weights file (shape `[n]`, or `[1, n]`).
    Tensor(String),
}

/// Input normalization applied before the first layer: `(x - mean) / std`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Normalization {
    /// Subtracted from each input column.
    pub mean: Values,
    /// Each column is divided by it (must be positive and finite).
    pub std: Values,
}

/// Where a classifier's class labels come from.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ClassLabels {
    /// Not given: `"0"`, `"1"`, ... (what TensorFlow's canned estimators
    /// use).
    Default,
    /// Given in the spec, in score order.
    Inline(Vec<String>),
    /// A text file with one label per line, in score order, shipped in the
    /// SavedModel as an asset and read by a lookup table (the path is
    /// relative to the spec file).
    Vocabulary(PathBuf),
}

/// A parsed and checked model spec.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ExportSpec {
    /// Where the spec came from (`<inline>` for text).
    pub path: PathBuf,
    /// The model's name (`model.name`), used by `cargo xtask export` and in
    /// messages; not needed for the export itself.
    pub name: Option<String>,
    /// The architecture.
    pub architecture: Architecture,
    /// Classifier or regressor.
    pub task: Task,
    /// Number of input features.
    pub input_width: usize,
    /// The `tf.Example` float feature that holds the `input_width` inputs
    /// in the classify/regress signature.
    pub feature: String,
    /// The dense layers, input first.
    pub layers: Vec<LayerSpec>,
    /// The class labels (classifiers).
    pub classes: ClassLabels,
    /// Optional input normalization.
    pub normalization: Option<Normalization>,
    /// Whether files the spec names (the class vocabulary) may lie outside
    /// the spec's directory. False unless the user asks
    /// (`savedmodel export --allow-paths-outside-spec`): a spec handed to
    /// us could otherwise name `/etc/passwd` or `../../secrets` and ship
    /// the file in the SavedModel's `assets/`. Checked when the file is
    /// read, after symbolic links are resolved.
    pub allow_paths_outside_spec_dir: bool,
}

// ---- the TOML as written ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    model: RawModel,
    #[serde(default)]
    classes: Option<RawClasses>,
    #[serde(default)]
    normalization: Option<RawNormalization>,
    #[serde(default)]
    layers: Vec<RawLayer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    #[serde(default)]
    name: Option<String>,
    architecture: String,
    #[serde(default)]
    task: Option<String>,
    input_width: i64,
    #[serde(default)]
    feature: Option<String>,
    #[serde(default)]
    layout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClasses {
    #[serde(default)]
    labels: Option<Vec<String>>,
    #[serde(default)]
    vocabulary: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNormalization {
    mean: RawValues,
    std: RawValues,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawValues {
    Inline(Vec<f64>),
    Tensor(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    #[serde(default)]
    name: Option<String>,
    kernel: String,
    #[serde(default)]
    bias: Option<String>,
    #[serde(default)]
    units: Option<i64>,
    #[serde(default)]
    activation: Option<String>,
    #[serde(default)]
    layout: Option<String>,
}

/// The default `tf.Example` feature name.
pub const DEFAULT_FEATURE: &str = "x";

/// The path recorded for a spec given as text.
pub const INLINE_SPEC_PATH: &str = "<inline>";

fn one_of(names: &[&str]) -> String {
    names.join(", ")
}

fn width(value: i64, what: &str) -> std::result::Result<usize, String> {
    match usize::try_from(value) {
        Ok(w) if (1..=MAX_WIDTH).contains(&w) => Ok(w),
        _ => Err(format!(
            "{what} must be between 1 and {MAX_WIDTH}, not {value}"
        )),
    }
}

impl ExportSpec {
    /// Reads and checks the spec file at `path`. A vocabulary file it names
    /// is resolved relative to the spec's directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            op: "reading model spec",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and checks a spec given as TOML text; `path` is where it came
    /// from (for messages, and the directory a vocabulary path is relative
    /// to).
    pub fn from_toml(text: &str, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let spec_error = |what: String| Error::Spec {
            path: path.to_path_buf(),
            what,
        };
        let raw: RawSpec =
            toml::from_str(text).map_err(|e| spec_error(e.to_string().trim_end().to_owned()))?;
        Self::from_raw(raw, path).map_err(spec_error)
    }

    fn from_raw(raw: RawSpec, path: &Path) -> std::result::Result<Self, String> {
        let model = raw.model;
        let architecture = Architecture::parse(&model.architecture).ok_or_else(|| {
            format!(
                "unknown architecture {:?} in [model]: expected one of {}",
                model.architecture,
                one_of(Architecture::NAMES)
            )
        })?;
        let implied_task = match architecture {
            Architecture::LinearRegression => Some(Task::Regressor),
            Architecture::LogisticRegression | Architecture::SoftmaxClassifier => {
                Some(Task::Classifier)
            }
            Architecture::Mlp => None,
        };
        let task = match (&model.task, implied_task) {
            (None, Some(task)) => task,
            (None, None) => {
                return Err(
                    "[model] task is required for an mlp: \"classifier\" or \"regressor\"".into(),
                );
            }
            (Some(name), implied) => {
                let task = Task::parse(name).ok_or_else(|| {
                    format!(
                        "unknown task {name:?} in [model]: expected \"classifier\" or \"regressor\""
                    )
                })?;
                if let Some(implied) = implied {
                    if implied != task {
                        return Err(format!(
                            "a {architecture} is a {}, but [model] says task = {name:?}",
                            implied.name()
                        ));
                    }
                }
                task
            }
        };
        let input_width = width(model.input_width, "[model] input_width")?;
        let feature = model.feature.unwrap_or_else(|| DEFAULT_FEATURE.to_owned());
        if feature.is_empty() {
            return Err("[model] feature (the tf.Example feature name) must not be empty".into());
        }
        let default_layout = match &model.layout {
            None => WeightLayout::default(),
            Some(name) => WeightLayout::parse(name).ok_or_else(|| {
                format!("unknown layout {name:?} in [model]: expected \"in_out\" or \"out_in\" (PyTorch)")
            })?,
        };

        if raw.layers.is_empty() {
            return Err("no [[layers]]: a model needs at least one dense layer".into());
        }
        let single = architecture != Architecture::Mlp;
        if single && raw.layers.len() != 1 {
            return Err(format!(
                "a {architecture} has exactly one [[layers]] entry, this spec has {} (use architecture = \"mlp\")",
                raw.layers.len()
            ));
        }
        let mut layers = Vec::with_capacity(raw.layers.len());
        let mut names = BTreeSet::new();
        for (i, layer) in raw.layers.into_iter().enumerate() {
            let number = i + 1;
            let label = match &layer.name {
                Some(name) => format!("layer {number} ({name})"),
                None => format!("layer {number}"),
            };
            if let Some(name) = &layer.name {
                if !savedmodel_graph::is_valid_node_name(name) || name.contains('/') {
                    return Err(format!(
                        "{label}: name {name:?} is not usable as a graph name scope (letters, digits, '_', '.', '-'; not starting with '_' or '-')"
                    ));
                }
                if !names.insert(name.to_lowercase()) {
                    return Err(format!("{label}: another layer has the name {name:?}"));
                }
            }
            if layer.kernel.is_empty() {
                return Err(format!("{label}: kernel (a tensor name) must not be empty"));
            }
            if layer.bias.as_deref() == Some("") {
                return Err(format!(
                    "{label}: bias must be a tensor name; leave it out for a layer without bias"
                ));
            }
            let activation = match &layer.activation {
                Some(name) => Activation::parse(name).ok_or_else(|| {
                    format!(
                        "{label}: unknown activation {name:?}: expected one of {}",
                        one_of(Activation::NAMES)
                    )
                })?,
                None if single => match architecture {
                    Architecture::LinearRegression => Activation::None,
                    Architecture::LogisticRegression => Activation::Sigmoid,
                    _ => Activation::Softmax,
                },
                None => {
                    return Err(format!(
                        "{label}: activation is required in an mlp: one of {}",
                        one_of(Activation::NAMES)
                    ));
                }
            };
            let implied = match architecture {
                Architecture::LinearRegression => Some(Activation::None),
                Architecture::LogisticRegression => Some(Activation::Sigmoid),
                Architecture::SoftmaxClassifier => Some(Activation::Softmax),
                Architecture::Mlp => None,
            };
            if let Some(implied) = implied {
                if implied != activation {
                    return Err(format!(
                        "{label}: a {architecture} uses activation {implied:?}, not {:?} (leave activation out, or use architecture = \"mlp\")",
                        activation.name(),
                        implied = implied.name()
                    ));
                }
            }
            let units = layer
                .units
                .map(|u| width(u, &format!("{label}: units")))
                .transpose()?;
            let layout = match &layer.layout {
                None => default_layout,
                Some(name) => WeightLayout::parse(name).ok_or_else(|| {
                    format!("{label}: unknown layout {name:?}: expected \"in_out\" or \"out_in\" (PyTorch)")
                })?,
            };
            layers.push(LayerSpec {
                name: layer.name,
                kernel: layer.kernel,
                bias: layer.bias,
                units,
                activation,
                layout,
            });
        }
        let last = layers.last().ok_or("no [[layers]]")?;
        match architecture {
            Architecture::LinearRegression | Architecture::LogisticRegression => {
                if let Some(units) = last.units.filter(|&u| u != 1) {
                    return Err(format!(
                        "a {architecture} has one output unit, the layer says units = {units}"
                    ));
                }
            }
            _ => {}
        }
        if task == Task::Regressor {
            if let Some(units) = last.units.filter(|&u| u != 1) {
                return Err(format!(
                    "a regressor's last layer has one unit (the regress signature outputs one number per example), it says units = {units}"
                ));
            }
            if last.activation == Activation::Softmax {
                return Err("a regressor's last layer cannot use softmax: softmax over one unit is always 1".into());
            }
        }

        let classes = match (task, raw.classes) {
            (Task::Regressor, Some(_)) => {
                return Err("[classes] is only for classifiers; this model is a regressor".into());
            }
            (_, None) => ClassLabels::Default,
            (
                Task::Classifier,
                Some(RawClasses {
                    labels: Some(_),
                    vocabulary: Some(_),
                }),
            ) => {
                return Err("[classes] has both labels and vocabulary: give one of them".into());
            }
            (
                Task::Classifier,
                Some(RawClasses {
                    labels: Some(labels),
                    vocabulary: None,
                }),
            ) => {
                check_labels(&labels, "[classes] labels")?;
                ClassLabels::Inline(labels)
            }
            (
                Task::Classifier,
                Some(RawClasses {
                    labels: None,
                    vocabulary: Some(file),
                }),
            ) => {
                if file.as_os_str().is_empty() {
                    return Err("[classes] vocabulary must name a file".into());
                }
                let resolved = if file.is_absolute() {
                    file
                } else {
                    path.parent().unwrap_or(Path::new("")).join(file)
                };
                ClassLabels::Vocabulary(resolved)
            }
            (
                Task::Classifier,
                Some(RawClasses {
                    labels: None,
                    vocabulary: None,
                }),
            ) => {
                return Err("[classes] needs labels = [...] or vocabulary = \"file\"".into());
            }
        };
        if let (ClassLabels::Inline(labels), Some(units)) = (&classes, last.units) {
            let k = if architecture == Architecture::LogisticRegression
                || is_binary(last.activation, units)
            {
                2
            } else {
                units
            };
            if labels.len() != k {
                return Err(format!(
                    "[classes] has {} labels but the model scores {k} classes",
                    labels.len()
                ));
            }
        }

        let normalization = match raw.normalization {
            None => None,
            Some(n) => Some(Normalization {
                mean: values(n.mean, input_width, "mean", false)?,
                std: values(n.std, input_width, "std", true)?,
            }),
        };
        if let Some(name) = &model.name {
            if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
                return Err(format!(
                    "[model] name {name:?} must be a plain directory name (it names the model's base path)"
                ));
            }
        }

        Ok(ExportSpec {
            path: path.to_path_buf(),
            name: model.name,
            architecture,
            task,
            input_width,
            feature,
            layers,
            classes,
            normalization,
            allow_paths_outside_spec_dir: false,
        })
    }

    /// The directory the spec's relative paths are resolved against, and
    /// that the files it names must lie in: the spec file's directory (the
    /// current directory for a spec given as text).
    pub fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        }
    }
}

/// Whether a last layer with `activation` and `units` is a binary
/// classifier scored as `[1 - p, p]`: one sigmoid unit.
pub(crate) fn is_binary(activation: Activation, units: usize) -> bool {
    activation == Activation::Sigmoid && units == 1
}

/// Class labels must be non-empty, distinct, and one line each (so the
/// same list can be written as a vocabulary file).
pub(crate) fn check_labels(labels: &[String], what: &str) -> std::result::Result<(), String> {
    if labels.is_empty() {
        return Err(format!("{what} is empty"));
    }
    let mut seen = BTreeSet::new();
    for (i, label) in labels.iter().enumerate() {
        if label.is_empty() {
            return Err(format!("{what}: label {} is empty", i + 1));
        }
        if label.contains(['\n', '\r']) {
            return Err(format!(
                "{what}: label {} ({label:?}) contains a line break",
                i + 1
            ));
        }
        if !seen.insert(label.as_str()) {
            return Err(format!("{what}: label {label:?} appears twice"));
        }
    }
    Ok(())
}

fn values(
    raw: RawValues,
    n: usize,
    what: &str,
    positive: bool,
) -> std::result::Result<Values, String> {
    match raw {
        RawValues::Tensor(name) if name.is_empty() => Err(format!(
            "[normalization] {what} must be a list of numbers or a tensor name"
        )),
        RawValues::Tensor(name) => Ok(Values::Tensor(name)),
        RawValues::Inline(v) => {
            if v.len() != n {
                return Err(format!(
                    "[normalization] {what} has {} values but input_width is {n}",
                    v.len()
                ));
            }
            let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
            check_values(&v, what, positive)?;
            Ok(Values::Inline(v))
        }
    }
}

/// Normalization values must be finite, and standard deviations positive.
pub(crate) fn check_values(
    v: &[f32],
    what: &str,
    positive: bool,
) -> std::result::Result<(), String> {
    for (i, x) in v.iter().enumerate() {
        if !x.is_finite() {
            return Err(format!(
                "[normalization] {what}[{i}] is {x}, not a finite number"
            ));
        }
        if positive && *x <= 0.0 {
            return Err(format!(
                "[normalization] {what}[{i}] is {x}: a standard deviation must be positive"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ExportSpec> {
        ExportSpec::from_toml(text, "/specs/model.toml")
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(spec) => panic!("accepted: {spec:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn softmax_classifier_with_defaults() {
        let spec = parse(
            r#"
            [model]
            architecture = "softmax_classifier"
            input_width = 4
            [classes]
            labels = ["setosa", "versicolor", "virginica"]
            [[layers]]
            kernel = "w"
            bias = "b"
            "#,
        )
        .unwrap();
        assert_eq!(spec.architecture, Architecture::SoftmaxClassifier);
        assert_eq!(spec.task, Task::Classifier);
        assert_eq!(spec.feature, "x");
        assert_eq!(spec.layers[0].activation, Activation::Softmax);
        assert_eq!(spec.layers[0].layout, WeightLayout::InOut);
        assert_eq!(
            spec.classes,
            ClassLabels::Inline(vec![
                "setosa".into(),
                "versicolor".into(),
                "virginica".into()
            ])
        );
        assert!(spec.normalization.is_none());
    }

    #[test]
    fn mlp_with_pytorch_layout_vocabulary_and_normalization() {
        let spec = parse(
            r#"
            [model]
            architecture = "mlp"
            task = "classifier"
            input_width = 3
            feature = "pixels"
            layout = "out_in"
            [classes]
            vocabulary = "labels.txt"
            [normalization]
            mean = [0.5, 0, 1]
            std = "scaler.scale"
            [[layers]]
            kernel = "fc1.weight"
            bias = "fc1.bias"
            activation = "relu6"
            [[layers]]
            name = "head"
            kernel = "fc2.weight"
            activation = "linear"
            layout = "in_out"
            units = 5
            "#,
        )
        .unwrap();
        assert_eq!(spec.feature, "pixels");
        assert_eq!(spec.layers[0].layout, WeightLayout::OutIn);
        assert_eq!(spec.layers[1].layout, WeightLayout::InOut);
        assert_eq!(spec.layers[1].activation, Activation::None);
        assert_eq!(spec.layers[1].bias, None);
        assert_eq!(
            spec.classes,
            ClassLabels::Vocabulary(PathBuf::from("/specs/labels.txt"))
        );
        let n = spec.normalization.unwrap();
        assert_eq!(n.mean, Values::Inline(vec![0.5, 0.0, 1.0]));
        assert_eq!(n.std, Values::Tensor("scaler.scale".into()));
    }

    #[test]
    fn clear_errors() {
        let base = |layers: &str| {
            format!(
                "[model]\narchitecture = \"mlp\"\ntask = \"regressor\"\ninput_width = 2\n{layers}"
            )
        };
        let e = err(&base("[[layers]]\nkernel = \"w\"\nactivation = \"gelu\"\n"));
        assert!(
            e.contains("layer 1: unknown activation \"gelu\": expected one of relu, relu6, sigmoid, tanh, softmax, none"),
            "{e}"
        );
        assert!(e.starts_with("model spec /specs/model.toml: "), "{e}");
        let e = err(&base("[[layers]]\nkernel = \"w\"\n"));
        assert!(e.contains("activation is required in an mlp"), "{e}");
        let e = err(&base(""));
        assert!(e.contains("no [[layers]]"), "{e}");
        let e = err(&base(
            "[[layers]]\nkernel = \"w\"\nactivation = \"none\"\nunits = 3\n",
        ));
        assert!(e.contains("regressor's last layer has one unit"), "{e}");
        let e = err(&base("[[layers]]\nkernal = \"w\"\n"));
        assert!(e.contains("unknown field `kernal`"), "{e}");
        let e =
            err("[model]\narchitecture = \"cnn\"\ninput_width = 2\n[[layers]]\nkernel = \"w\"\n");
        assert!(e.contains("unknown architecture \"cnn\""), "{e}");
        let e = err(
            "[model]\narchitecture = \"mlp\"\ninput_width = 2\n[[layers]]\nkernel = \"w\"\nactivation = \"relu\"\n",
        );
        assert!(e.contains("task is required"), "{e}");
        let e = err(
            "[model]\narchitecture = \"linear_regression\"\ninput_width = 0\n[[layers]]\nkernel = \"w\"\n",
        );
        assert!(e.contains("input_width must be between 1"), "{e}");
        let e = err(
            "[model]\narchitecture = \"softmax_classifier\"\ninput_width = 2\n[[layers]]\nkernel = \"w\"\nactivation = \"relu\"\n",
        );
        assert!(
            e.contains("uses activation \"softmax\", not \"relu\""),
            "{e}"
        );
        let e = err(
            "[model]\narchitecture = \"linear_regression\"\ninput_width = 2\n[classes]\nlabels=[\"a\"]\n[[layers]]\nkernel = \"w\"\n",
        );
        assert!(e.contains("only for classifiers"), "{e}");
        let e = err(
            "[model]\narchitecture = \"softmax_classifier\"\ninput_width = 2\n[classes]\nlabels=[\"a\",\"a\"]\n[[layers]]\nkernel = \"w\"\n",
        );
        assert!(e.contains("appears twice"), "{e}");
        let e = err(
            "[model]\narchitecture = \"softmax_classifier\"\ninput_width = 2\n[normalization]\nmean=[1,2]\nstd=[1,0]\n[[layers]]\nkernel = \"w\"\n",
        );
        assert!(
            e.contains("std[1] is 0: a standard deviation must be positive"),
            "{e}"
        );
        let e = err(
            "[model]\narchitecture = \"softmax_classifier\"\ninput_width = 2\n[normalization]\nmean=[1]\nstd=[1,1]\n[[layers]]\nkernel = \"w\"\n",
        );
        assert!(e.contains("mean has 1 values but input_width is 2"), "{e}");
        let e = err(
            "[model]\narchitecture = \"logistic_regression\"\ninput_width = 2\n[classes]\nlabels=[\"a\",\"b\",\"c\"]\n[[layers]]\nkernel = \"w\"\nunits = 1\n",
        );
        assert!(e.contains("3 labels but the model scores 2 classes"), "{e}");
        let e = err(
            "[model]\narchitecture = \"softmax_classifier\"\ninput_width = 2\n[[layers]]\nkernel = \"a\"\n[[layers]]\nkernel = \"b\"\n",
        );
        assert!(e.contains("exactly one [[layers]] entry"), "{e}");
        let e = err(
            "[model]\narchitecture = \"linear_regression\"\ninput_width = 2\nlayout = \"columns\"\n[[layers]]\nkernel = \"w\"\n",
        );
        assert!(e.contains("unknown layout \"columns\""), "{e}");
        let e = err(
            "[model]\narchitecture = \"mlp\"\ntask=\"classifier\"\ninput_width = 2\n[[layers]]\nname=\"a b\"\nkernel = \"w\"\nactivation=\"relu\"\n",
        );
        assert!(e.contains("not usable as a graph name scope"), "{e}");
        let e = err("not toml [");
        assert!(e.starts_with("model spec /specs/model.toml: "), "{e}");
    }
}
