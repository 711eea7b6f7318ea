//! TensorFlow Serving's rules for warmup records, written once:
//! `WarmupRequests` and `SavedModelBuilder` refuse what they find,
//! `validate` reports it.
//!
//! Sources: `tensorflow_serving/servables/tensorflow/saved_model_warmup_util.cc`
//! (the record limit, a record that is not a `PredictionLog` fails the load),
//! `saved_model_warmup.cc` (`RunWarmupRequest`: which log kinds are replayed;
//! `session_run_log` is `Unimplemented`, a log without a kind is skipped),
//! `classifier.cc` / `regressor.cc` (`GetClassificationSignatureDef`: the
//! signature must exist and have the classify method; the signature rules of
//! [`super::signatures`]), `util.cc` (`"Input is empty."`) and
//! `predict_util.cc` (`VerifyRequestInputsSize`, `GetInputValues`, the
//! output filter); docs/formats.md section 10.
//!
//! Every replayed request must succeed or the load fails, so whatever the
//! Classify or Regress API trips over is an error here, even what
//! [`super::signatures`] calls a warning.

use std::collections::BTreeSet;

use crate::graph::Shape;
use crate::proto::tensorflow::serving::prediction_log::LogType;
use crate::proto::tensorflow::serving::{Input, ModelSpec, PredictRequest, PredictionLog, input};
use crate::proto::tensorflow::{DataType, MetaGraphDef, SignatureDef};
use crate::show::dtype_name;

use super::constants::{
    CLASSIFY_METHOD_NAME, DEFAULT_SERVING_SIGNATURE_DEF_KEY, MAX_WARMUP_RECORDS,
    REGRESS_METHOD_NAME,
};
use super::problem::Problem;
use super::signatures::signature_rules;

/// Whether TensorFlow Serving replays a log of this kind: an error for the
/// kinds that fail the load, a warning for a log without a kind (skipped).
pub fn log_kind_rules(log: &PredictionLog) -> Option<Problem> {
    match &log.log_type {
        Some(
            LogType::PredictLog(_)
            | LogType::ClassifyLog(_)
            | LogType::RegressLog(_)
            | LogType::MultiInferenceLog(_),
        ) => None,
        Some(LogType::PredictStreamedLog(_)) => Some(unreplayable("predict_streamed_log")),
        Some(LogType::SessionRunLog(_)) => Some(unreplayable("session_run_log")),
        // `saved_model_warmup.cc`: `RunWarmupRequest` skips a log without a
        // kind (`default: break`), so Serving loads the model.
        None => Some(Problem::warning(
            "the record has no log type; tensorflow serving skips it",
        )),
    }
}

fn unreplayable(kind: &str) -> Problem {
    Problem::error(format!(
        "a {kind} record; tensorflow serving only replays classify, regress, predict and \
         multi_inference logs and fails the load (Unimplemented)"
    ))
}

/// Whether `records` warmup records are more than TensorFlow Serving reads.
pub fn record_count_rules(records: usize) -> Option<Problem> {
    (records > MAX_WARMUP_RECORDS).then(|| {
        Problem::error(format!(
            "{records} records, more than {MAX_WARMUP_RECORDS}: tensorflow serving fails the load \
             beyond {MAX_WARMUP_RECORDS} (\"Number of warmup records exceeds the maximum\")"
        ))
    })
}

/// Checks the request of `log` against the MetaGraph TensorFlow Serving
/// replays it on, as Serving would run it. Every problem is an error.
pub fn request_rules(log: &PredictionLog, meta_graph: &MetaGraphDef) -> Vec<Problem> {
    let mut problems = Vec::new();
    match &log.log_type {
        Some(LogType::PredictLog(l)) => match &l.request {
            Some(request) => {
                if let Some((key, def)) =
                    signature(meta_graph, request.model_spec.as_ref(), &mut problems)
                {
                    predict_rules(key, def, request, &mut problems);
                }
            }
            None => problems.push(Problem::error("a predict log without a request")),
        },
        Some(LogType::ClassifyLog(l)) => match &l.request {
            Some(r) => {
                examples_rules(
                    CLASSIFY_METHOD_NAME,
                    meta_graph,
                    r.model_spec.as_ref(),
                    r.input.as_ref(),
                    &mut problems,
                );
            }
            None => problems.push(Problem::error("a classify log without a request")),
        },
        Some(LogType::RegressLog(l)) => match &l.request {
            Some(r) => {
                examples_rules(
                    REGRESS_METHOD_NAME,
                    meta_graph,
                    r.model_spec.as_ref(),
                    r.input.as_ref(),
                    &mut problems,
                );
            }
            None => problems.push(Problem::error("a regress log without a request")),
        },
        Some(LogType::MultiInferenceLog(l)) => {
            for task in l.request.iter().flat_map(|r| &r.tasks) {
                signature(meta_graph, task.model_spec.as_ref(), &mut problems);
            }
        }
        // Not replayed: [`log_kind_rules`] tells.
        Some(LogType::PredictStreamedLog(_) | LogType::SessionRunLog(_)) | None => {}
    }
    problems
}

/// The signature a request names (`serving_default` when none), or an
/// error.
fn signature<'m>(
    meta_graph: &'m MetaGraphDef,
    spec: Option<&ModelSpec>,
    problems: &mut Vec<Problem>,
) -> Option<(&'m str, &'m SignatureDef)> {
    let key = spec
        .map(|s| s.signature_name.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SERVING_SIGNATURE_DEF_KEY);
    let found = meta_graph.signature_def.get_key_value(key);
    if found.is_none() {
        let tags = meta_graph
            .meta_info_def
            .as_ref()
            .map(|i| i.tags.clone())
            .unwrap_or_default();
        problems.push(Problem::error(format!(
            "the request uses signature '{key}', which the meta graph {} does not have \
             (tensorflow serving: \"No signature was found with the name: {key}\")",
            crate::error::tag_set(&tags)
        )));
    }
    found.map(|(k, def)| (k.as_str(), def))
}

/// A classify or regress request: the signature has that method and
/// follows its rules, and the request has examples.
fn examples_rules(
    method: &str,
    meta_graph: &MetaGraphDef,
    spec: Option<&ModelSpec>,
    input: Option<&Input>,
    problems: &mut Vec<Problem>,
) {
    if let Some((key, def)) = signature(meta_graph, spec, problems) {
        if def.method_name != method {
            problems.push(Problem::error(format!(
                "the request's signature '{key}' has method '{}', but tensorflow serving runs \
                 this request only on a {method} signature",
                def.method_name
            )));
        } else if let Some(first) = signature_rules(def, None).into_iter().next() {
            problems.push(Problem::error(format!(
                "the request's signature '{key}' cannot serve it: {}",
                first.message
            )));
        }
    }
    let examples = match input.and_then(|i| i.kind.as_ref()) {
        Some(input::Kind::ExampleList(l)) => l.examples.len(),
        Some(input::Kind::ExampleListWithContext(l)) => l.examples.len(),
        None => 0,
    };
    if examples == 0 {
        problems.push(Problem::error(
            "the request has no examples (tensorflow serving: \"Input is empty.\")",
        ));
    }
}

/// A predict request: it feeds every input without a default, nothing
/// else, each with the declared data type and a compatible shape, and its
/// output filter names outputs once each.
fn predict_rules(key: &str, def: &SignatureDef, request: &PredictRequest, out: &mut Vec<Problem>) {
    for (alias, tensor) in &request.inputs {
        let Some(info) = def.inputs.get(alias) else {
            out.push(Problem::error(format!(
                "the request feeds '{alias}', which signature '{key}' has no input for"
            )));
            continue;
        };
        if tensor.dtype == DataType::DtInvalid as i32 {
            out.push(Problem::error(format!(
                "the request's tensor for '{alias}' has no data type (DT_INVALID): tensorflow \
                 serving cannot parse it"
            )));
            continue;
        }
        if tensor.dtype != info.dtype {
            out.push(Problem::error(format!(
                "the request feeds '{alias}' as {}, but input '{alias}' of signature '{key}' is {}",
                dtype_name(tensor.dtype),
                dtype_name(info.dtype)
            )));
        }
        // An absent shape is a scalar to TensorFlow (the request's tensor)
        // but says nothing in a signature (TF1 exporters leave it out).
        let have = tensor
            .tensor_shape
            .as_ref()
            .map_or_else(Shape::scalar, Shape::from_proto);
        if let Some(want) = info.tensor_shape.as_ref().map(Shape::from_proto) {
            if !want.is_compatible_with(&have) {
                out.push(Problem::error(format!(
                    "the request feeds '{alias}' with shape {have}, but input '{alias}' of \
                     signature '{key}' has shape {want}"
                )));
            }
        }
    }
    for alias in def.inputs.keys() {
        if !request.inputs.contains_key(alias) && !def.defaults.contains_key(alias) {
            out.push(Problem::error(format!(
                "the request does not feed input '{alias}' of signature '{key}'"
            )));
        }
    }
    let mut seen = BTreeSet::new();
    for alias in &request.output_filter {
        if !def.outputs.contains_key(alias) {
            out.push(Problem::error(format!(
                "the request's output filter names '{alias}', which signature '{key}' does not \
                 have"
            )));
        } else if !seen.insert(alias) {
            out.push(Problem::error(format!(
                "the request's output filter names '{alias}' twice (tensorflow serving: \
                 \"duplicate output tensor alias\")"
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tensorflow::serving::{
        ClassificationRequest, ClassifyLog, PredictLog, SessionRunLog,
    };
    use crate::serving::Severity;

    fn predict(signature: &str) -> PredictionLog {
        PredictionLog {
            log_metadata: None,
            log_type: Some(LogType::PredictLog(PredictLog {
                request: Some(PredictRequest {
                    model_spec: Some(ModelSpec {
                        signature_name: signature.to_owned(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                response: None,
            })),
        }
    }

    #[test]
    fn more_than_1000_records_fail_the_load() {
        assert_eq!(record_count_rules(MAX_WARMUP_RECORDS), None);
        let problem = record_count_rules(MAX_WARMUP_RECORDS + 1).unwrap();
        assert_eq!(problem.severity, Severity::Error);
        assert!(
            problem.message.starts_with("1001 records, more than 1000"),
            "{problem}"
        );
    }

    #[test]
    fn only_request_logs_are_replayed() {
        assert_eq!(log_kind_rules(&predict("")), None);
        let session = PredictionLog {
            log_metadata: None,
            log_type: Some(LogType::SessionRunLog(SessionRunLog::default())),
        };
        assert!(log_kind_rules(&session).unwrap().is_error());
        let empty = log_kind_rules(&PredictionLog::default()).unwrap();
        assert_eq!(empty.severity, Severity::Warning);
    }

    #[test]
    fn requests_name_existing_signatures_of_their_method() {
        let mut meta_graph = MetaGraphDef::default();
        meta_graph.signature_def.insert(
            DEFAULT_SERVING_SIGNATURE_DEF_KEY.to_owned(),
            SignatureDef {
                method_name: crate::serving::PREDICT_METHOD_NAME.to_owned(),
                ..Default::default()
            },
        );
        assert_eq!(request_rules(&predict(""), &meta_graph), []);
        let missing = request_rules(&predict("nope"), &meta_graph);
        assert!(
            missing[0].message.contains("signature 'nope'"),
            "{missing:?}"
        );
        let classify = PredictionLog {
            log_metadata: None,
            log_type: Some(LogType::ClassifyLog(ClassifyLog {
                request: Some(ClassificationRequest::default()),
                response: None,
            })),
        };
        let problems = request_rules(&classify, &meta_graph);
        assert!(
            problems[0]
                .message
                .contains("has method 'tensorflow/serving/predict'"),
            "{problems:?}"
        );
        assert!(
            problems[1].message.contains("Input is empty"),
            "{problems:?}"
        );
    }
}
