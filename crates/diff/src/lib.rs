#![doc = include_str!("../README.md")]

mod error;
mod files;
mod graph;
mod report;
mod variables;
mod versions;

use std::path::Path;

use savedmodel::SavedModel;

pub use error::{Error, Result};
pub use files::MAX_DEPTH;
pub use report::{Area, Change, ChangeKind, DiffReport, ValueDifference, Verdict};
pub use versions::{latest_two, version_dirs};

/// What [`diff`] compares beyond the indexes.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct DiffOptions {
    /// Read both data files (memory-mapped) and report each changed
    /// tensor's largest absolute and relative difference.
    pub values: bool,
}

impl DiffOptions {
    /// Sets [`values`](Self::values).
    pub fn with_values(mut self, values: bool) -> Self {
        self.values = values;
        self
    }
}

/// Compares the SavedModel in `old` with the one in `new`.
///
/// Reads both `saved_model.pb` files and both checkpoint indexes, lists
/// `assets/` and `assets.extra/`, and reads tensor data only with
/// [`DiffOptions::values`].
pub fn diff(old: &Path, new: &Path, options: DiffOptions) -> Result<DiffReport> {
    let open = |dir: &Path| {
        SavedModel::open(dir).map_err(|source| Error::Model {
            dir: dir.to_path_buf(),
            source: Box::new(source),
        })
    };
    let (a, b) = (open(old)?, open(new)?);
    let mut changes = Vec::new();
    graph::compare(&a, &b, &mut changes);
    variables::compare(&a, &b, options.values, &mut changes)?;
    files::compare(Area::Asset, &a.assets_dir(), &b.assets_dir(), &mut changes)?;
    files::compare(
        Area::AssetExtra,
        &a.assets_extra_dir(),
        &b.assets_extra_dir(),
        &mut changes,
    )?;
    Ok(DiffReport::new(
        old.to_path_buf(),
        new.to_path_buf(),
        changes,
    ))
}
