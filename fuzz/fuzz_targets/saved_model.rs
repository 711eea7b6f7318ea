//! `saved_model.pb` on arbitrary bytes, through what `savedmodel validate`
//! and `savedmodel show` run (`SavedModel::open`, `validate`, every `show`
//! view), and the fingerprint's canonical re-encoding of the same bytes. The
//! model directory around it (a checkpoint, a fingerprint) is the small
//! model `SavedModelBuilder` writes.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use savedmodel_fuzz::{put, small_model, validate_and_show};

fuzz_target!(|data: &[u8]| {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| small_model("saved_model"));
    put(dir, "saved_model.pb", data);
    let index = std::fs::read(dir.join("variables/variables.index")).ok();
    let _ = savedmodel::fingerprint_from_bytes(data, index.as_deref());
    validate_and_show(dir);
});
