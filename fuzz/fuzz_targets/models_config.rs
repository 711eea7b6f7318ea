//! `models.config` (TensorFlow Serving's `ModelServerConfig` in text format)
//! on arbitrary bytes, through `ModelsConfig::parse`, which every
//! `savedmodel config` command reads it with; what parses prints and parses
//! again.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use savedmodel_layout::ModelsConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("models.config");
    let Ok(config) = ModelsConfig::parse(path, text) else {
        return;
    };
    for model in config.models() {
        let _ = config.model(&model.name);
    }
    if let Ok(printed) = config.to_text() {
        let again = ModelsConfig::parse(path, &printed);
        assert!(
            again.is_ok(),
            "printed config does not parse: {again:?}\n{printed}"
        );
    }
});
