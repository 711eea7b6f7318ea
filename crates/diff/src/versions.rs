//! Two versions of a base path, found as TensorFlow Serving finds them
//! (`savedmodel-layout`'s discovery).

use std::path::{Path, PathBuf};

use savedmodel_layout::BaseListing;

use crate::error::{Error, Result};

/// The directories of versions `old` and `new` of `base`, the child Serving
/// would load for each number (`7` over `007`).
pub fn version_dirs(base: &Path, old: i64, new: i64) -> Result<(PathBuf, PathBuf)> {
    let listing = BaseListing::read(base)?;
    let dir = |version| {
        listing
            .find(version)
            .map(|child| base.join(&child.name))
            .ok_or_else(|| Error::NoSuchVersion {
                base: base.to_path_buf(),
                version,
            })
    };
    Ok((dir(old)?, dir(new)?))
}

/// The directories of the two highest versions of `base` that hold a
/// SavedModel, older first.
pub fn latest_two(base: &Path) -> Result<(PathBuf, PathBuf)> {
    let listing = BaseListing::read(base)?;
    let versions = listing.versions();
    let mut holding = versions
        .values()
        .rev()
        .filter(|child| listing.holds_saved_model(child));
    match (holding.next(), holding.next()) {
        (Some(new), Some(old)) => Ok((base.join(&old.name), base.join(&new.name))),
        (new, _) => Err(Error::NotEnoughVersions {
            base: base.to_path_buf(),
            found: usize::from(new.is_some()),
        }),
    }
}
