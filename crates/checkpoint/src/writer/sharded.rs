//! [`ShardedBundleWriter`]: one [`BundleWriter`] per shard, filled from as
//! many threads, then merged.

use std::path::{Path, PathBuf};

use savedmodel_staged::StagedDir;

use super::{BundleWriter, WriterOptions, merge_bundles_with};
use crate::error::{Result, invalid};

/// Writes a bundle with several data files in parallel: each shard is a
/// [`BundleWriter`] under a temporary directory beside the prefix
/// (`.<prefix name>.tmp-<16 hex>/part-XXXXX-of-YYYYY`, a
/// [`StagedDir`] that is never committed: locked while the writer lives,
/// removed when it is dropped or finished, left unlocked for a collector
/// when the process is killed), and
/// [`finish`](Self::finish) finishes them all (in parallel threads) and
/// merges them into `<prefix>` with [`merge_bundles`](super::merge_bundles), as TensorFlow's
/// sharded `Saver` does with `MergeV2Checkpoints`.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let prefix = dir.path().join("model");
/// use savedmodel_checkpoint::{ShardedBundleWriter, WriterOptions};
/// let mut writer = ShardedBundleWriter::create(&prefix, 2, WriterOptions::default())?;
/// std::thread::scope(|s| {
///     let handles: Vec<_> = writer
///         .shards_mut()
///         .iter_mut()
///         .enumerate()
///         .map(|(i, shard)| s.spawn(move || shard.add_typed(format!("w{i}"), &[2], &[1.0f32, 2.0])))
///         .collect();
///     handles.into_iter().try_for_each(|h| h.join().expect("no panic"))
/// })?;
/// writer.finish()?;
/// assert!(prefix.with_extension("data-00001-of-00002").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ShardedBundleWriter {
    prefix: PathBuf,
    /// The shards' directory; removed when dropped.
    temp_dir: StagedDir,
    shards: Vec<BundleWriter>,
    fsync: bool,
}

impl ShardedBundleWriter {
    /// Starts `num_shards` (at least 1) shard writers for a bundle at
    /// `prefix`.
    pub fn create(
        prefix: impl AsRef<Path>,
        num_shards: usize,
        options: WriterOptions,
    ) -> Result<Self> {
        let prefix = prefix.as_ref().to_path_buf();
        if num_shards == 0 {
            return Err(invalid(b"", "a sharded bundle needs at least one shard"));
        }
        savedmodel_staged::create_dir_all(savedmodel_staged::parent_dir(&prefix), options.fsync)?;
        let temp_dir = StagedDir::create(&prefix)?;
        let mut writer = ShardedBundleWriter {
            prefix,
            temp_dir,
            shards: Vec::with_capacity(num_shards),
            fsync: options.fsync,
        };
        for i in 0..num_shards {
            let part = writer
                .temp_dir
                .path()
                .join(format!("part-{i:05}-of-{num_shards:05}"));
            writer
                .shards
                .push(BundleWriter::create_with(part, options.clone())?);
        }
        Ok(writer)
    }

    /// The shard writers, to fill (from several threads if you like).
    pub fn shards_mut(&mut self) -> &mut [BundleWriter] {
        &mut self.shards
    }

    /// Finishes every shard in parallel, merges them into the prefix and
    /// removes the temporary directory.
    pub fn finish(mut self) -> Result<()> {
        let shards = std::mem::take(&mut self.shards);
        let parts: Vec<PathBuf> = shards.iter().map(|s| s.prefix.clone()).collect();
        let result = std::thread::scope(|s| {
            let handles: Vec<_> = shards
                .into_iter()
                .map(|shard| s.spawn(move || shard.finish()))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(invalid(b"", "a thread finishing a shard panicked"))
                    })
                })
                .collect::<Result<Vec<()>>>()
        })
        .and_then(|_| merge_bundles_with(&parts, &self.prefix, self.fsync));
        // Dropping `self` removes the temporary directory.
        result
    }
}

impl Drop for ShardedBundleWriter {
    fn drop(&mut self) {
        // The shards' temporary files go before their directory.
        self.shards.clear();
    }
}
