//! The files of a SavedModel's `assets/` directory: which file each asset
//! tensor of each MetaGraph gets (the graph side, [`Asset`] and
//! [`Graph::asset`], is in `savedmodel-graph`).
//!
//! When two different files share a name, the later one is renamed as
//! TensorFlow's `SavedModelBuilder` does (`vocab.txt`, `vocab.txt_1`, ...);
//! the same file (same path or same bytes) added twice is stored once.

use std::path::{Path, PathBuf};

use savedmodel_graph::{AssetRecord, check_asset_filename, check_asset_source};

use crate::error::{Error, Result};

/// The files of `assets/` and which file each asset tensor gets, across all
/// MetaGraphs of a SavedModel.
#[derive(Clone, Debug, Default)]
pub(crate) struct AssetPlan {
    /// Final file name -> source.
    pub(crate) files: Vec<(String, PathBuf)>,
}

impl AssetPlan {
    /// The final file name for `record`, adding it to the plan: TensorFlow's
    /// `get_asset_filename_to_add` (`python/saved_model/builder_impl.py`):
    /// a name already taken by a different file gets `_1`, `_2`, ...
    /// appended to the whole name; the same path or identical bytes reuse
    /// the existing name.
    pub(crate) fn place(&mut self, record: &AssetRecord) -> Result<String> {
        check_asset_filename(&record.filename)?;
        check_asset_source(&record.source)?;
        let existing = |plan: &AssetPlan, name: &str| {
            plan.files
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p.clone())
        };
        let Some(other) = existing(self, &record.filename) else {
            self.files
                .push((record.filename.clone(), record.source.clone()));
            return Ok(record.filename.clone());
        };
        if other == record.source || same_contents(&other, &record.source)? {
            return Ok(record.filename.clone());
        }
        // A different file under a taken name: the first free `name_i`,
        // unless the same file was already placed under one of them.
        let mut i = 1;
        loop {
            let candidate = format!("{}_{i}", record.filename);
            match existing(self, &candidate) {
                None => {
                    self.files.push((candidate.clone(), record.source.clone()));
                    return Ok(candidate);
                }
                Some(p) if p == record.source || same_contents(&p, &record.source)? => {
                    return Ok(candidate);
                }
                Some(_) => i += 1,
            }
        }
    }
}

fn same_contents(a: &Path, b: &Path) -> Result<bool> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| Error::Io {
            op: "reading asset",
            path: p.to_owned(),
            source: e,
        })
    };
    let (ma, mb) = (std::fs::metadata(a), std::fs::metadata(b));
    if let (Ok(ma), Ok(mb)) = (ma, mb) {
        if ma.len() != mb.len() {
            return Ok(false);
        }
    }
    Ok(read(a)? == read(b)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use savedmodel_graph::{Asset, Graph};

    #[test]
    fn colliding_names_get_suffixes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(a.join("vocab.txt"), "x\n").unwrap();
        std::fs::write(b.join("vocab.txt"), "y\n").unwrap();
        std::fs::write(c.join("vocab.txt"), "x\n").unwrap();
        let mut g = Graph::new();
        let assets: Vec<Asset> = [&a, &b, &c, &a]
            .iter()
            .map(|d| g.asset("vocab", d.join("vocab.txt")).unwrap())
            .collect();
        assert_eq!(assets[1].tensor().name(), "vocab_1:0");
        let mut plan = AssetPlan::default();
        let names: Vec<String> = g.assets().iter().map(|r| plan.place(r).unwrap()).collect();
        assert_eq!(
            names,
            vec!["vocab.txt", "vocab.txt_1", "vocab.txt", "vocab.txt"]
        );
        assert_eq!(plan.files.len(), 2);
    }
}
