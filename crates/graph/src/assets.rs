//! Asset files: copied into the SavedModel's `assets/` directory and fed to
//! the graph by the loader.
//!
//! An asset is a string `Const` in the graph whose value the loader replaces
//! with `<export_dir>/assets/<filename>` (docs/formats.md, section 16 "Loading a SavedModel: the loader's steps",
//! step 4): the
//! SavedModel lists it once in `asset_file_def` and in the
//! `saved_model_assets` collection. File names are plain names: anything
//! that could escape `assets/` (`..`, an absolute path, a path separator) is
//! refused, and so is a source that is a symbolic link. Copying the files
//! and resolving clashing names is the SavedModel writer's job
//! (`savedmodel`'s `assets` module).

use std::path::Path;

use savedmodel_checkpoint::DType;

use crate::error::{Error, Result};
use crate::graph::{AssetRecord, Graph, Output};
use crate::tensor::Tensor;

/// An asset file referenced by the graph.
#[derive(Clone, Debug)]
pub struct Asset {
    tensor: Output,
    filename: String,
}

impl Asset {
    /// The scalar string tensor that holds the asset's path when the model
    /// runs.
    pub fn tensor(&self) -> &Output {
        &self.tensor
    }

    /// The requested file name in `assets/` (the stored name may get a
    /// `_1` suffix if another file already has it).
    pub fn filename(&self) -> &str {
        &self.filename
    }
}

/// Checks that `name` is a plain file name that stays inside `assets/`.
pub fn check_asset_filename(name: &str) -> Result<()> {
    let bad = |what: &str| {
        Err(Error::Asset {
            name: name.to_owned(),
            what: what.to_owned(),
        })
    };
    if name.is_empty() {
        return bad("empty file name");
    }
    if name == "." || name == ".." {
        return bad("file name would escape assets/");
    }
    if name.contains('/') || name.contains('\\') {
        return bad("file name contains a path separator (it must be a plain name inside assets/)");
    }
    if name.contains('\0') {
        return bad("file name contains a NUL byte");
    }
    if Path::new(name).is_absolute() {
        return bad("absolute path");
    }
    Ok(())
}

/// Checks that `source` is a regular file and not a symbolic link.
pub fn check_asset_source(source: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(source).map_err(|e| Error::Io {
        op: "reading asset",
        path: source.to_owned(),
        source: e,
    })?;
    if meta.file_type().is_symlink() {
        return Err(Error::Asset {
            name: source.display().to_string(),
            what: "is a symbolic link; give the file it points to".into(),
        });
    }
    if !meta.is_file() {
        return Err(Error::Asset {
            name: source.display().to_string(),
            what: "is not a regular file".into(),
        });
    }
    Ok(())
}

impl Graph {
    /// Adds the file `source` as an asset, stored in `assets/` under its
    /// own file name; `name` names the string tensor that holds its path.
    pub fn asset(&mut self, name: &str, source: impl AsRef<Path>) -> Result<Asset> {
        let source = source.as_ref();
        let filename = source
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Asset {
                name: source.display().to_string(),
                what: "has no UTF-8 file name".into(),
            })?
            .to_owned();
        self.asset_named(name, source, &filename)
    }

    /// Adds the file `source` as an asset stored in `assets/` as `filename`.
    pub fn asset_named(
        &mut self,
        name: &str,
        source: impl AsRef<Path>,
        filename: &str,
    ) -> Result<Asset> {
        check_asset_filename(filename)?;
        let source = source.as_ref();
        check_asset_source(source)?;
        let tensor = self.constant(name, Tensor::string(filename))?;
        debug_assert_eq!(tensor.dtype(), DType::String);
        self.assets.push(AssetRecord {
            tensor: tensor.clone(),
            source: source.to_path_buf(),
            filename: filename.to_owned(),
        });
        Ok(Asset {
            tensor,
            filename: filename.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_are_refused() {
        for bad in ["", ".", "..", "../x", "a/b", "/etc/passwd", "a\\b", "a\0b"] {
            assert!(check_asset_filename(bad).is_err(), "{bad:?}");
        }
        for good in ["vocab.txt", "..vocab", "v.txt_1"] {
            assert!(check_asset_filename(good).is_ok(), "{good:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_and_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t.txt");
        std::fs::write(&target, "x").unwrap();
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let mut g = Graph::new();
        let err = g.asset("a", &link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(g.asset("a", dir.path()).is_err());
        assert!(g.asset_named("a", &target, "../t.txt").is_err());
        assert!(g.asset("a", dir.path().join("missing")).is_err());
    }
}
