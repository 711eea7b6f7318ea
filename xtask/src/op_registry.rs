//! `cargo xtask op-registry`: the list of ops TensorFlow registers, for the
//! validator.
//!
//! Runs `tests/python/op_registry.py` with the project's virtualenv (made or
//! refreshed by `tf-env` first) and writes its output, a compact, sorted,
//! deterministically serialized `OpList`, to
//! `crates/saved_model/src/op_registry.binpb`, which `savedmodel` embeds with
//! `include_bytes!`. The integration test `saved_model_read::op_registry_is_fresh`
//! runs the same script and fails when the checked-in file is stale.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::tf_env;

/// The script that dumps the registry, relative to the workspace root.
const SCRIPT: &str = "tests/python/op_registry.py";

/// The checked-in output, relative to the workspace root.
pub(crate) const OUTPUT: &str = "crates/saved_model/src/op_registry.binpb";

/// Regenerates [`OUTPUT`] from the installed TensorFlow.
pub(crate) fn write(root: &Path) -> anyhow::Result<()> {
    let python = tf_env::python(root)?;
    let output = root.join(OUTPUT);
    let status = Command::new(&python)
        .arg(root.join(SCRIPT))
        .arg(&output)
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .env("TF_ENABLE_ONEDNN_OPTS", "0")
        .status()
        .with_context(|| format!("starting {} {SCRIPT}", python.display()))?;
    if !status.success() {
        bail!("{SCRIPT} failed ({status})");
    }
    println!("op-registry: wrote {}", output.display());
    Ok(())
}
