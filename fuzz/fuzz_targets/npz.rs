//! `.npz` (a zip of `.npy` arrays) on arbitrary bytes, through
//! `TensorFile::open` (content detection, as the CLI opens weights) and a
//! read of every tensor (inflating, CRC-32, byte order, Fortran order).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use savedmodel_checkpoint::convert::{Format, TensorFile};
use savedmodel_fuzz::{put, scratch_dir};

fuzz_target!(|data: &[u8]| {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| scratch_dir("npz"));
    let path = put(dir, "fuzz.npz", data);
    let Ok(file) = TensorFile::open_as(&path, Format::Npz) else {
        return;
    };
    for i in 0..file.tensors().len() {
        let _ = file.read(i);
    }
});
