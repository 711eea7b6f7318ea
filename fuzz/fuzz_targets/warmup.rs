//! The warmup file (`assets.extra/tf_serving_warmup_requests`: TFRecord
//! framing around `PredictionLog`s) on arbitrary bytes inside an otherwise
//! sound model, through `validate`, which checks the framing and judges
//! each request against the model's signatures by Serving's rules; and
//! through the library's TFRecord reader.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use savedmodel::serving::read_tfrecords;
use savedmodel::validate::{ValidateOptions, validate};
use savedmodel_fuzz::{put, small_model};

fuzz_target!(|data: &[u8]| {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| small_model("warmup"));
    put(dir, "assets.extra/tf_serving_warmup_requests", data);
    let report = validate(dir, &ValidateOptions::default());
    let _ = report.to_string();
    // Unframed input is always reported.
    if read_tfrecords(data).is_err() {
        assert!(report.has_errors(), "bad framing not reported");
    }
});
