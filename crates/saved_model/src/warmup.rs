//! Warmup requests: `assets.extra/tf_serving_warmup_requests`, which
//! TensorFlow Serving replays when it loads a model (docs/formats.md
//! section 10; the rules and the TFRecord framing are in [`crate::serving`]).
//!
//! The file is an uncompressed TFRecord of serialized `PredictionLog`s, at
//! most [`MAX_WARMUP_RECORDS`](crate::serving::MAX_WARMUP_RECORDS); only predict, classify, regress and
//! multi-inference logs are replayed (the others fail the load). Every
//! request must succeed, so [`crate::builder::SavedModelBuilder`] also
//! checks each one against the signature it names.

use std::collections::BTreeMap;

use savedmodel_proto::tensorflow::Example;
use savedmodel_proto::tensorflow::serving::{
    ClassificationRequest, ClassifyLog, ExampleList, Input, ModelSpec, PredictLog, PredictRequest,
    PredictionLog, RegressLog, RegressionRequest, input, prediction_log::LogType,
};

use crate::error::{Error, Result};
use crate::graph::Tensor;
use crate::serving;

use crate::serving::write_tfrecord;

/// The warmup requests of a SavedModel, in replay order.
#[derive(Clone, Debug, Default)]
pub struct WarmupRequests {
    model_name: String,
    logs: Vec<PredictionLog>,
}

impl WarmupRequests {
    /// No requests yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the model name written in each request's `ModelSpec` (TensorFlow
    /// Serving ignores it during warmup; empty by default).
    pub fn model_name(mut self, name: &str) -> Self {
        self.model_name = name.to_owned();
        self
    }

    fn spec(&self, signature: &str) -> Option<ModelSpec> {
        Some(ModelSpec {
            name: self.model_name.clone(),
            signature_name: signature.to_owned(),
            version_choice: None,
        })
    }

    /// Adds a predict request to `signature` with `inputs` by alias.
    pub fn predict(&mut self, signature: &str, inputs: &[(&str, &Tensor)]) -> Result<()> {
        let mut map = BTreeMap::new();
        for (alias, t) in inputs {
            if map.insert((*alias).to_owned(), t.to_proto()).is_some() {
                return Err(Error::Warmup {
                    record: self.logs.len(),
                    what: format!("input '{alias}' given twice"),
                });
            }
        }
        let request = PredictRequest {
            model_spec: self.spec(signature),
            inputs: map,
            ..Default::default()
        };
        self.push(PredictionLog {
            log_metadata: None,
            log_type: Some(LogType::PredictLog(PredictLog {
                request: Some(request),
                response: None,
            })),
        })
    }

    fn examples(&self, examples: Vec<Example>) -> Result<Option<Input>> {
        if examples.is_empty() {
            return Err(Error::Warmup {
                record: self.logs.len(),
                what: "no examples (TensorFlow Serving answers \"Input is empty.\")".into(),
            });
        }
        Ok(Some(Input {
            kind: Some(input::Kind::ExampleList(ExampleList { examples })),
        }))
    }

    /// Adds a classify request to `signature` with `examples`.
    pub fn classify(&mut self, signature: &str, examples: Vec<Example>) -> Result<()> {
        let request = ClassificationRequest {
            model_spec: self.spec(signature),
            input: self.examples(examples)?,
        };
        self.push(PredictionLog {
            log_metadata: None,
            log_type: Some(LogType::ClassifyLog(ClassifyLog {
                request: Some(request),
                response: None,
            })),
        })
    }

    /// Adds a regress request to `signature` with `examples`.
    pub fn regress(&mut self, signature: &str, examples: Vec<Example>) -> Result<()> {
        let request = RegressionRequest {
            model_spec: self.spec(signature),
            input: self.examples(examples)?,
        };
        self.push(PredictionLog {
            log_metadata: None,
            log_type: Some(LogType::RegressLog(RegressLog {
                request: Some(request),
                response: None,
            })),
        })
    }

    /// Adds a log as is, if TensorFlow Serving can replay its kind
    /// (predict, classify, regress, multi-inference) and there is room.
    pub fn push(&mut self, log: PredictionLog) -> Result<()> {
        let record = self.logs.len();
        // A log without a kind is only a warning to `validate` (Serving
        // skips it), but there is no reason to write one.
        let problem =
            serving::log_kind_rules(&log).or_else(|| serving::record_count_rules(record + 1));
        if let Some(problem) = problem {
            return Err(Error::Warmup {
                record,
                what: problem.message,
            });
        }
        self.logs.push(log);
        Ok(())
    }

    /// The logs, in order.
    pub fn logs(&self) -> &[PredictionLog] {
        &self.logs
    }

    /// Number of requests.
    pub fn len(&self) -> usize {
        self.logs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty()
    }

    /// The file's bytes: one TFRecord per log.
    pub fn to_tfrecord(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for log in &self.logs {
            write_tfrecord(&mut out, &prost::Message::encode_to_vec(log));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::ExampleBuilder;
    use crate::serving::{MAX_WARMUP_RECORDS, read_tfrecords};
    use savedmodel_proto::tensorflow::serving::{PredictStreamedLog, SessionRunLog};

    #[test]
    fn records_round_trip() {
        let mut w = WarmupRequests::new();
        w.predict(
            "predict_images",
            &[("images", &Tensor::new(&[1, 2], &[0.5f32, 1.0]).unwrap())],
        )
        .unwrap();
        w.classify(
            "serving_default",
            vec![ExampleBuilder::new().floats("x", &[1.0]).build()],
        )
        .unwrap();
        let bytes = w.to_tfrecord();
        let records = read_tfrecords(&bytes).unwrap();
        assert_eq!(records.len(), 2);
        let log: PredictionLog = prost::Message::decode(records[1]).unwrap();
        assert!(matches!(log.log_type, Some(LogType::ClassifyLog(_))));
        let mut corrupt = bytes.clone();
        let last = corrupt.len() - 5;
        corrupt[last] ^= 1;
        assert!(read_tfrecords(&corrupt).is_err());
        assert!(read_tfrecords(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn forbidden_kinds_and_limits() {
        let mut w = WarmupRequests::new();
        let streamed = PredictionLog {
            log_metadata: None,
            log_type: Some(LogType::PredictStreamedLog(PredictStreamedLog::default())),
        };
        assert!(w.push(streamed).is_err());
        let session = PredictionLog {
            log_metadata: None,
            log_type: Some(LogType::SessionRunLog(SessionRunLog::default())),
        };
        assert!(w.push(session).is_err());
        assert!(w.push(PredictionLog::default()).is_err());
        assert!(w.classify("s", Vec::new()).is_err());
        let t = Tensor::scalar(1.0f32);
        for _ in 0..MAX_WARMUP_RECORDS {
            w.predict("p", &[("x", &t)]).unwrap();
        }
        let err = w.predict("p", &[("x", &t)]).unwrap_err();
        assert!(err.to_string().contains("more than 1000"), "{err}");
        assert_eq!(w.len(), MAX_WARMUP_RECORDS);
    }
}
