//! One `.npy` array on arbitrary bytes: stored (uncompressed) as the only
//! member of an `.npz`, so the header parser and the element decoding get
//! the input without zip framing in the way, through the same
//! `TensorFile` entry point as any `.npz`.
#![no_main]

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use savedmodel_checkpoint::convert::{Format, TensorFile};
use savedmodel_fuzz::{put, scratch_dir};
use zip::write::SimpleFileOptions;

fuzz_target!(|data: &[u8]| {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| scratch_dir("npy"));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("x.npy", options).expect("zip member");
    zip.write_all(data).expect("zip member data");
    let archive = zip.finish().expect("zip archive").into_inner();
    let path = put(dir, "fuzz.npz", &archive);
    let Ok(file) = TensorFile::open_as(&path, Format::Npz) else {
        return;
    };
    for i in 0..file.tensors().len() {
        let _ = file.read(i);
    }
});
