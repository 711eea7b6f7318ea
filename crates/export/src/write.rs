//! From a [`PreparedModel`] to a [`SavedModelBuilder`]: the signatures
//! TensorFlow Serving calls, and warmup requests.

use std::fmt;

use savedmodel_checkpoint::DType;
use savedmodel_proto::tensorflow::{SignatureDef, TensorInfo};

use super::model::{ExportGraph, Head, PreparedModel};
use super::spec::Task;
use crate::error::Result;
use savedmodel::Error as SavedModelError;
use savedmodel::serving::{DEFAULT_SERVING_SIGNATURE_DEF_KEY, MAX_WARMUP_RECORDS, SERVE_TAG};
use savedmodel::{ExampleBuilder, MetaGraphBuilder, SavedModelBuilder, WarmupRequests};
use savedmodel_graph::Shape;
use savedmodel_graph::Tensor;

/// The predict signature's key.
pub const PREDICT_SIGNATURE_KEY: &str = "predict";

/// Warmup records written per warmup example: one request to
/// `serving_default` (classify or regress) and one to `predict`.
pub const WARMUP_RECORDS_PER_EXAMPLE: usize = 2;

/// The most warmup examples an export writes (TensorFlow Serving refuses
/// more than 1000 records).
pub const MAX_WARMUP_EXAMPLES: usize = MAX_WARMUP_RECORDS / WARMUP_RECORDS_PER_EXAMPLE;

/// Which inputs the warmup requests carry.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum WarmupExamples {
    /// No warmup file.
    #[default]
    None,
    /// This many inputs generated deterministically: around the
    /// normalization mean, one standard deviation wide, when the spec has
    /// one; uniform in `[-1, 1]` otherwise.
    Generated(usize),
    /// These inputs, each `input_width` numbers.
    Given(Vec<Vec<f32>>),
}

/// Options of an export.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Warmup requests (`assets.extra/tf_serving_warmup_requests`).
    pub warmup: WarmupExamples,
    /// The model name written in the warmup requests' `ModelSpec`
    /// (TensorFlow Serving ignores it in warmup).
    pub model_name: Option<String>,
    /// Whether to fsync what is written (default true; turning it off is
    /// for tests and benchmarks of throwaway models).
    pub no_fsync: bool,
}

/// One input or output of a signature, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSummary {
    /// The alias (`inputs`, `scores`, ...).
    pub alias: String,
    /// The graph tensor (`x:0`).
    pub tensor: String,
    /// The dtype.
    pub dtype: DType,
    /// The shape, `-1` for an unknown dimension.
    pub shape: Vec<i64>,
}

/// One signature of an export, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureSummary {
    /// The key (`serving_default`, `predict`).
    pub key: String,
    /// The method (`tensorflow/serving/classify`, ...).
    pub method: String,
    /// Inputs, by alias.
    pub inputs: Vec<TensorSummary>,
    /// Outputs, by alias.
    pub outputs: Vec<TensorSummary>,
}

impl fmt::Display for SignatureSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[TensorSummary]| {
            v.iter()
                .map(|t| format!("{}: {} {}", t.alias, t.dtype, Shape::new(&t.shape)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "{} ({}): {} -> {}",
            self.key,
            self.method,
            list(&self.inputs),
            list(&self.outputs)
        )
    }
}

/// What an export holds, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportSummary {
    /// The signatures, sorted by key.
    pub signatures: Vec<SignatureSummary>,
    /// The variables (checkpoint keys) and their shapes, in graph order.
    pub variables: Vec<(String, Vec<i64>)>,
    /// Number of parameters.
    pub num_parameters: u64,
    /// Number of warmup records written.
    pub warmup_records: usize,
    /// The class labels, in score order (empty for a regressor).
    pub labels: Vec<String>,
}

/// A SavedModel ready to be written: the builder, and what it holds.
///
/// It refers to the weights rather than holding them (see the [module
/// documentation](super)): an export from a weights file keeps the file
/// mapped until the `Export` is dropped, and each write reads it again.
#[derive(Debug)]
pub struct Export {
    builder: SavedModelBuilder,
    summary: ExportSummary,
}

impl Export {
    /// What the SavedModel holds.
    pub fn summary(&self) -> &ExportSummary {
        &self.summary
    }

    /// The builder (e.g. to write `saved_model.pbtxt` too, or add files
    /// under `assets.extra/`).
    pub fn builder_mut(&mut self) -> &mut SavedModelBuilder {
        &mut self.builder
    }

    /// Writes the SavedModel into `dir`, an existing empty directory (the
    /// staging directory of `savedmodel_layout::publish`).
    pub fn write_into_empty_dir(&self, dir: impl AsRef<std::path::Path>) -> Result<()> {
        Ok(self.builder.write_into_empty_dir(dir)?)
    }

    /// Writes the SavedModel to `dir`, which must not exist or be empty
    /// (written beside it and renamed into place).
    pub fn write_to(&self, dir: impl AsRef<std::path::Path>) -> Result<()> {
        Ok(self.builder.write_to(dir)?)
    }
}

fn summarize(key: &str, def: &SignatureDef) -> SignatureSummary {
    let list = |m: &std::collections::BTreeMap<String, TensorInfo>| {
        m.iter()
            .map(|(alias, info)| TensorSummary {
                alias: alias.clone(),
                tensor: match &info.encoding {
                    Some(savedmodel_proto::tensorflow::tensor_info::Encoding::Name(n)) => n.clone(),
                    _ => String::new(),
                },
                dtype: DType::from_i32(info.dtype).unwrap_or(DType::Float),
                shape: info
                    .tensor_shape
                    .as_ref()
                    .map(|s| s.dim.iter().map(|d| d.size).collect())
                    .unwrap_or_default(),
            })
            .collect()
    };
    SignatureSummary {
        key: key.to_owned(),
        method: def.method_name.clone(),
        inputs: list(&def.inputs),
        outputs: list(&def.outputs),
    }
}

/// A small deterministic generator (SplitMix64) for warmup inputs: the same
/// spec gives the same warmup file.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`.
    fn next_unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

impl PreparedModel {
    /// The warmup inputs `warmup` asks for, each `input_width` numbers.
    pub fn warmup_inputs(&self, warmup: &WarmupExamples) -> Result<Vec<Vec<f32>>> {
        let n = self.spec().input_width;
        let rows = match warmup {
            WarmupExamples::None => Vec::new(),
            WarmupExamples::Generated(count) => {
                let mut rng = SplitMix64(0x5eed_5a7e_d0f0_0001);
                let norm = self.normalization();
                (0..*count)
                    .map(|_| {
                        (0..n)
                            .map(|j| {
                                let u = rng.next_unit();
                                match norm {
                                    Some((mean, std)) => mean[j] + std[j] * u,
                                    None => u,
                                }
                            })
                            .collect()
                    })
                    .collect()
            }
            WarmupExamples::Given(rows) => {
                for (i, row) in rows.iter().enumerate() {
                    if row.len() != n {
                        return Err(SavedModelError::Warmup {
                            record: i * WARMUP_RECORDS_PER_EXAMPLE,
                            what: format!(
                                "warmup input {} has {} values, the model takes {n}",
                                i + 1,
                                row.len()
                            ),
                        }
                        .into());
                    }
                }
                rows.clone()
            }
        };
        if rows.len() > MAX_WARMUP_EXAMPLES {
            return Err(SavedModelError::Warmup {
                record: MAX_WARMUP_RECORDS,
                what: format!(
                    "{} warmup examples make {} records; TensorFlow Serving allows {MAX_WARMUP_RECORDS} (at most {MAX_WARMUP_EXAMPLES} examples)",
                    rows.len(),
                    rows.len().saturating_mul(WARMUP_RECORDS_PER_EXAMPLE)
                ),
            }
            .into());
        }
        Ok(rows)
    }

    /// Builds the SavedModel: one MetaGraph tagged `serve` with the
    /// signatures of the model's task, the variables, the label vocabulary
    /// asset and the warmup requests.
    ///
    /// A classifier gets `serving_default` (classify: `inputs` serialized
    /// `tf.Example`s -> `classes` `DT_STRING [-1, K]` and `scores`
    /// `DT_FLOAT [-1, K]`, sorted by score) and `predict` (`inputs`
    /// `DT_FLOAT [-1, n]` -> `scores` `[-1, K]` in label order and
    /// `classes` `DT_INT64 [-1]`, the argmax). A regressor gets
    /// `serving_default` (regress -> `outputs` `DT_FLOAT [-1]`) and
    /// `predict` (`inputs` -> `outputs`).
    pub fn into_export(self, options: &ExportOptions) -> Result<Export> {
        let warmup_rows = self.warmup_inputs(&options.warmup)?;
        let task = self.spec().task;
        let feature = self.spec().feature.clone();
        let input_width = self.spec().input_width as i64;
        let labels = self.labels().to_vec();
        let num_parameters = self.num_parameters();
        let ExportGraph {
            graph,
            examples,
            inputs,
            head,
            layer_scopes: _,
        } = self.into_graph()?;
        let variables: Vec<(String, Vec<i64>)> = graph
            .variable_names()
            .iter()
            .filter_map(|name| {
                let op = graph.operation(name)?;
                let shape =
                    graph
                        .node(name)
                        .and_then(|n| n.attr.get("shape"))
                        .and_then(|a| match &a.value {
                            Some(savedmodel_proto::tensorflow::attr_value::Value::Shape(s)) => {
                                Some(s.dim.iter().map(|d| d.size).collect())
                            }
                            _ => None,
                        });
                Some((op.name().to_owned(), shape.unwrap_or_default()))
            })
            .collect();
        let mut meta = MetaGraphBuilder::new(graph, &[SERVE_TAG]);
        match &head {
            Head::Classifier {
                scores,
                class_ids,
                top_classes,
                top_scores,
            } => {
                meta.classify_signature(
                    DEFAULT_SERVING_SIGNATURE_DEF_KEY,
                    &examples,
                    Some(top_classes),
                    Some(top_scores),
                )?;
                meta.predict_signature(
                    PREDICT_SIGNATURE_KEY,
                    &[("inputs", &inputs)],
                    &[("scores", scores), ("classes", class_ids)],
                )?;
            }
            Head::Regressor { outputs } => {
                meta.regress_signature(DEFAULT_SERVING_SIGNATURE_DEF_KEY, &examples, outputs)?;
                meta.predict_signature(
                    PREDICT_SIGNATURE_KEY,
                    &[("inputs", &inputs)],
                    &[("outputs", outputs)],
                )?;
            }
        }
        let signatures = meta
            .signatures()
            .iter()
            .map(|(k, d)| summarize(k, d))
            .collect();

        let mut builder = SavedModelBuilder::new();
        builder.fsync(!options.no_fsync);
        builder.add_meta_graph(meta)?;

        let mut warmup = WarmupRequests::new();
        if let Some(name) = &options.model_name {
            warmup = warmup.model_name(name);
        }
        for row in &warmup_rows {
            let example = ExampleBuilder::new().floats(&feature, row).build();
            match task {
                Task::Classifier => {
                    warmup.classify(DEFAULT_SERVING_SIGNATURE_DEF_KEY, vec![example])?
                }
                Task::Regressor => {
                    warmup.regress(DEFAULT_SERVING_SIGNATURE_DEF_KEY, vec![example])?
                }
            }
            let tensor = Tensor::new(&[1, input_width], row)?;
            warmup.predict(PREDICT_SIGNATURE_KEY, &[("inputs", &tensor)])?;
        }
        let warmup_records = warmup.len();
        if !warmup.is_empty() {
            builder.warmup(warmup);
        }
        Ok(Export {
            builder,
            summary: ExportSummary {
                signatures,
                variables,
                num_parameters,
                warmup_records,
                labels,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_deterministic_and_in_range() {
        let mut a = SplitMix64(1);
        let mut b = SplitMix64(1);
        for _ in 0..1000 {
            let x = a.next_unit();
            assert_eq!(x, b.next_unit());
            assert!((-1.0..1.0).contains(&x), "{x}");
        }
    }
}
