//! `saved_model.pbtxt` (protobuf text format) on arbitrary bytes, through
//! `SavedModel::open`, `validate` and every `show` view, as
//! `savedmodel validate` and `savedmodel show` run them on a model that
//! only has the text file.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use savedmodel_fuzz::{put, small_model, validate_and_show};

fuzz_target!(|data: &[u8]| {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = small_model("saved_model_text");
        std::fs::remove_file(dir.join("saved_model.pb")).expect("removing saved_model.pb");
        dir
    });
    put(dir, "saved_model.pbtxt", data);
    validate_and_show(dir);
});
