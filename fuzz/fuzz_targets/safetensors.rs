//! `.safetensors` on arbitrary bytes, through `TensorFile::open_as` (what
//! `savedmodel ckpt` and `savedmodel export` open weights with) and a read
//! of every tensor.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use savedmodel_checkpoint::convert::{Format, TensorFile};
use savedmodel_fuzz::{put, scratch_dir};

fuzz_target!(|data: &[u8]| {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| scratch_dir("safetensors"));
    let path = put(dir, "fuzz.safetensors", data);
    let Ok(file) = TensorFile::open_as(&path, Format::SafeTensors) else {
        return;
    };
    for (i, entry) in file.tensors().iter().enumerate() {
        if let Ok(view) = file.read(i) {
            assert_eq!(view.shape(), &entry.shape[..]);
        }
    }
});
