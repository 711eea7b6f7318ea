//! `fingerprint.pb` on arbitrary bytes inside an otherwise sound model,
//! through `validate`, the one reader of the file (Serving's C++ loader
//! only records it in a metric, so a bad one is a warning, never an error).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use savedmodel::validate::{ValidateOptions, validate};
use savedmodel_fuzz::{put, small_model};

fuzz_target!(|data: &[u8]| {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| small_model("fingerprint"));
    put(dir, "fingerprint.pb", data);
    let report = validate(dir, &ValidateOptions::default());
    assert!(!report.has_errors(), "{report}");
});
