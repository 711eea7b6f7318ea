#![doc = include_str!("../README.md")]
//!
//! The module's one `unsafe` function is the numpy view of a memory map
//! (`checkpoint.rs`, `map_view`). There are no Rust doctests: the crate is
//! an extension module, which cannot link a test binary (see `Cargo.toml`);
//! the example above is Python, run by the pytest suite's equivalents.

// `#[pymodule]`/`#[pyclass]` expand to `unsafe` FFI glue, and the numpy view
// of a memory map needs one `unsafe` call (with its `// SAFETY:` comment).
#![allow(unsafe_code)]
// PyO3's macros generate items the workspace's `unreachable_pub` lint
// flags in a cdylib, whose only public surface is the Python module.
#![allow(unreachable_pub)]

mod checkpoint;
mod dtypes;
mod errors;
mod export;
mod model;
mod save;

use std::ffi::OsString;

use pyo3::prelude::*;

/// Runs the `savedmodel` command line on `sys.argv` and returns its exit
/// code (the wheel's `savedmodel` console script).
#[pyfunction]
fn main(py: Python<'_>) -> PyResult<u8> {
    let argv: Vec<OsString> = py.import("sys")?.getattr("argv")?.extract()?;
    Ok(py.detach(|| savedmodel_cli::run(argv)))
}

/// TensorFlow checkpoints and SavedModels without TensorFlow (the extension
/// module; use the `savedmodel` package).
#[pymodule]
fn _savedmodel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(main, m)?)?;
    m.add_function(wrap_pyfunction!(checkpoint::open_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(checkpoint::load_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(save::save_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(export::export, m)?)?;
    m.add_function(wrap_pyfunction!(export::export_onnx, m)?)?;
    m.add_function(wrap_pyfunction!(model::publish, m)?)?;
    m.add_function(wrap_pyfunction!(model::versions, m)?)?;
    m.add_class::<checkpoint::Checkpoint>()?;
    m.add_class::<checkpoint::CheckpointSlice>()?;
    m.add_class::<checkpoint::MappedCheckpoint>()?;
    m.add_class::<model::PySavedModel>()?;
    m.add_class::<model::Signature>()?;
    m.add_class::<model::TensorSpec>()?;
    m.add_class::<model::Finding>()?;
    m.add("SavedModelError", py.get_type::<errors::SavedModelError>())?;
    m.add(
        "CorruptDataError",
        py.get_type::<errors::CorruptDataError>(),
    )?;
    m.add("NotFoundError", py.get_type::<errors::NotFoundError>())?;
    m.add(
        "InvalidArgumentError",
        py.get_type::<errors::InvalidArgumentError>(),
    )?;
    Ok(())
}
