//! `assets.extra/`: the warmup file, judged by the rules of
//! [`crate::serving`] against the MetaGraph TensorFlow Serving replays it
//! on, and the files Serving or TensorFlow read beside it.

use std::fs;
use std::io;

use prost::Message;

use crate::proto::tensorflow::FingerprintDef;
use crate::proto::tensorflow::serving::{PredictionLog, SavedModelConfig};
use crate::reader::{FINGERPRINT_FILENAME, MetaGraph, SavedModel};
use crate::serving::{self, MAX_WARMUP_RECORDS, SAVED_MODEL_CONFIG_FILE, TfRecords, WARMUP_FILE};

use super::Report;

/// Checks the warmup file: its framing, its record count, and each record
/// against `meta_graph`, the MetaGraph TensorFlow Serving loads (none: the
/// requests are not checked, the missing MetaGraph is reported already).
pub(super) fn check_warmup(
    model: &SavedModel,
    meta_graph: Option<&MetaGraph<'_>>,
    report: &mut Report,
) {
    let path = model.dir().join(WARMUP_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => {
            report.error(WARMUP_FILE, format!("cannot read it: {e}"));
            return;
        }
    };
    let mut records = Vec::new();
    for item in TfRecords::new(&bytes) {
        match item {
            Ok(record) => records.push(record),
            // Serving replays the records before it, then fails the load
            // (`saved_model_warmup_util.cc`: "Please verify your warmup
            // data is in TFRecord format").
            Err(e) => report.error(
                WARMUP_FILE,
                format!("{e} (tensorflow serving fails the load)"),
            ),
        }
    }
    if let Some(problem) = serving::record_count_rules(records.len()) {
        report.push(problem.severity, WARMUP_FILE, problem.message);
    }
    // Serving stops at the first record past the limit.
    for (i, record) in records.iter().take(MAX_WARMUP_RECORDS + 1).enumerate() {
        let location = format!("{WARMUP_FILE} record {i}");
        let log = match PredictionLog::decode(*record) {
            Ok(log) => log,
            Err(e) => {
                report.error(
                    location,
                    format!("not a tensorflow.serving.PredictionLog: {e}"),
                );
                continue;
            }
        };
        if let Some(problem) = serving::log_kind_rules(&log) {
            report.push(problem.severity, location, problem.message);
            continue;
        }
        let Some(meta_graph) = meta_graph else {
            continue;
        };
        for problem in serving::request_rules(&log, meta_graph.def()) {
            report.push(problem.severity, &location, problem.message);
        }
    }
}

pub(super) fn check_extra_files(model: &SavedModel, report: &mut Report) {
    let fingerprint = model.dir().join(FINGERPRINT_FILENAME);
    match fs::read(&fingerprint) {
        Ok(bytes) => {
            if let Err(e) = FingerprintDef::decode(bytes.as_slice()) {
                // Warnings: the C++ loader only reads the fingerprint for a metric and
                // goes on when it cannot (`tensorflow/cc/saved_model/loader.cc`,
                // `bundle_v2.cc`: `ReadSavedModelFingerprint`).
                report.warning(
                    FINGERPRINT_FILENAME,
                    format!(
                        "not a tensorflow.FingerprintDef ({e}); tensorflow's python loader reads \
                         it (the c++ loader, which tensorflow serving runs, only records it in a \
                         metric when it parses: tensorflow/cc/saved_model/loader.cc)"
                    ),
                );
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => report.warning(FINGERPRINT_FILENAME, format!("cannot read it: {e}")),
    }
    let config = model.dir().join(SAVED_MODEL_CONFIG_FILE);
    match fs::read(&config) {
        Ok(bytes) => {
            if let Err(e) = SavedModelConfig::decode(bytes.as_slice()) {
                report.error(
                    SAVED_MODEL_CONFIG_FILE,
                    format!("not a tensorflow.serving.SavedModelConfig: {e}"),
                );
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => report.error(SAVED_MODEL_CONFIG_FILE, format!("cannot read it: {e}")),
    }
}
