//! The export spec (TOML) on arbitrary bytes, through
//! `ExportSpec::from_toml`, what `savedmodel export` reads the spec with.
#![no_main]

use libfuzzer_sys::fuzz_target;
use savedmodel_export::ExportSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ExportSpec::from_toml(text, "/nonexistent/fuzz/spec.toml");
});
