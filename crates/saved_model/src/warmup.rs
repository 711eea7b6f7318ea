//! Warmup requests: `assets.extra/tf_serving_warmup_requests`, which
//! TensorFlow Serving replays when it loads a model (FORMATS.md 5.3;
//! `tensorflow_serving/servables/tensorflow/saved_model_warmup.cc`,
//! `saved_model_warmup_util.cc`).
//!
//! The file is an uncompressed TFRecord of serialized `PredictionLog`s, at
//! most [`MAX_WARMUP_RECORDS`]; only predict, classify, regress and
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

/// The warmup file's path inside a SavedModel.
pub const WARMUP_FILE: &str = "assets.extra/tf_serving_warmup_requests";

/// The most records TensorFlow Serving accepts (`kMaxNumRecords`): the
/// 1001st fails the load.
pub const MAX_WARMUP_RECORDS: usize = 1000;

/// CRC32C masked as TFRecord (and LevelDB) store it
/// (`tsl/lib/hash/crc32c.h`: rotate right by 15, add `0xa282ead8`).
fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Appends one TFRecord: `u64 length` ‖ `u32 masked crc32c(length bytes)`
/// ‖ `data` ‖ `u32 masked crc32c(data)`, all little-endian
/// (`tsl/lib/io/record_writer.cc`).
pub fn write_tfrecord(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

/// Splits a TFRecord file into its records, checking both checksums of
/// each.
pub fn read_tfrecords(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let record = out.len();
        let bad = |what: &str| Error::Warmup {
            record,
            what: what.to_owned(),
        };
        if rest.len() < 12 {
            return Err(bad("truncated record header"));
        }
        let (header, tail) = rest.split_at(12);
        let len_bytes = &header[..8];
        let stored = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if stored != masked_crc32c(len_bytes) {
            return Err(bad("length checksum mismatch"));
        }
        let mut l = [0u8; 8];
        l.copy_from_slice(len_bytes);
        let len =
            usize::try_from(u64::from_le_bytes(l)).map_err(|_| bad("record length too large"))?;
        let need = len
            .checked_add(4)
            .ok_or_else(|| bad("record length too large"))?;
        if tail.len() < need {
            return Err(bad("truncated record"));
        }
        let (data, after) = tail.split_at(len);
        let crc = u32::from_le_bytes([after[0], after[1], after[2], after[3]]);
        if crc != masked_crc32c(data) {
            return Err(bad("data checksum mismatch"));
        }
        out.push(data);
        rest = &after[4..];
    }
    Ok(out)
}

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
        match &log.log_type {
            Some(
                LogType::PredictLog(_)
                | LogType::ClassifyLog(_)
                | LogType::RegressLog(_)
                | LogType::MultiInferenceLog(_),
            ) => {}
            Some(LogType::PredictStreamedLog(_)) | Some(LogType::SessionRunLog(_)) => {
                return Err(Error::Warmup {
                    record,
                    what: "TensorFlow Serving cannot replay predict_streamed_log or session_run_log (the load fails)".into(),
                });
            }
            None => {
                return Err(Error::Warmup {
                    record,
                    what: "the log has no request (TensorFlow Serving would skip it)".into(),
                });
            }
        }
        if record >= MAX_WARMUP_RECORDS {
            return Err(Error::Warmup {
                record,
                what: format!(
                    "more than {MAX_WARMUP_RECORDS} warmup records (TensorFlow Serving fails the load)"
                ),
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
    fn framing_matches_tensorflow() {
        // A record of "a": length 1, masked crc32c of the 8 length bytes,
        // then the data and its masked crc32c.
        let mut out = Vec::new();
        write_tfrecord(&mut out, b"a");
        assert_eq!(out.len(), 8 + 4 + 1 + 4);
        assert_eq!(&out[..8], &1u64.to_le_bytes());
        assert_eq!(masked_crc32c(b""), 0xa282_ead8);
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
