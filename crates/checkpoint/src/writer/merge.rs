//! [`merge_bundles`]: several bundles into one, as TensorFlow's
//! `MergeBundles`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use prost::Message;
use savedmodel_proto::tensorflow::{BundleEntryProto, BundleHeaderProto};
use savedmodel_staged::{commit_all, parent_dir, sync_dir};

use super::write_index;
use crate::entry::{BundleHeader, Endianness, TensorEntry};
use crate::error::{Error, Result, display_key, io_error};
use crate::table::Table;
use crate::{data_file_name, index_file_name};

/// Merges bundles into one at `merged_prefix`, as TensorFlow's
/// `MergeBundles`; see [`merge_bundles_with`].
pub fn merge_bundles(prefixes: &[impl AsRef<Path>], merged_prefix: impl AsRef<Path>) -> Result<()> {
    merge_bundles_with(prefixes, merged_prefix, true)
}

/// Merges bundles into one at `merged_prefix`, as TensorFlow's
/// `MergeBundles` (docs/formats.md, section 7 "Several data files and merging"):
///
/// * every input must have the same endianness and version;
/// * a key may appear in several inputs only as the full entry of a
///   partitioned tensor (its slice lists are concatenated);
/// * each data file referenced by an entry gets a new shard id, in the order
///   first seen (inputs in order, keys in order), and is **renamed** to
///   `<merged_prefix>.data-XXXXX-of-YYYYY`;
/// * the merged index is written (staged, fsynced when `fsync`, renamed
///   last, after the data files' directories are fsynced; an index already
///   at `merged_prefix` is removed before any data file replaces one of
///   its data files); the inputs' `.index` files are deleted.
///
/// The result is byte-identical to TensorFlow's when every input contributes
/// at least one entry. When some input contributes none, TensorFlow's header
/// counts its data file anyway and then names no file after it, so its
/// bundle cannot be read; here `num_shards` is the number of data files
/// actually named. Data files of inputs that contribute nothing are left in
/// place. The merged index is written before any data file is renamed, and
/// renames are undone on failure.
pub fn merge_bundles_with(
    prefixes: &[impl AsRef<Path>],
    merged_prefix: impl AsRef<Path>,
    fsync: bool,
) -> Result<()> {
    let merged_prefix = merged_prefix.as_ref();
    let merge_error = |what: String| Error::Merge {
        prefix: merged_prefix.to_path_buf(),
        what,
    };
    savedmodel_staged::create_dir_all(parent_dir(merged_prefix), fsync)?;

    let mut first_header: Option<(BundleHeader, Vec<u8>)> = None;
    let mut num_shards_sum: u64 = 0;
    let mut entries: BTreeMap<Vec<u8>, BundleEntryProto> = BTreeMap::new();
    let mut data_files: Vec<PathBuf> = Vec::new();
    let mut shard_ids: HashMap<PathBuf, usize> = HashMap::new();

    for prefix in prefixes {
        let prefix = prefix.as_ref();
        let index_path = index_file_name(prefix);
        let bytes = fs::read(&index_path).map_err(|e| io_error("reading", &index_path, e))?;
        let table = Table::open(bytes.as_slice(), &index_path)?;
        let mut iter = table.iter();
        let header = match iter.next() {
            Some(Ok((key, value))) if key.is_empty() => BundleHeader::decode(value, &index_path)?,
            Some(Err(e)) => return Err(e),
            _ => {
                return Err(Error::CorruptTable {
                    path: index_path,
                    offset: None,
                    what: "no header entry (the empty key)".to_owned(),
                });
            }
        };
        let version_bytes = header.version.encode_to_vec();
        match &first_header {
            None => first_header = Some((header.clone(), version_bytes)),
            Some((first, first_version)) => {
                if first.endianness != header.endianness {
                    return Err(merge_error(format!(
                        "{} has a different endianness than the bundles before it",
                        prefix.display()
                    )));
                }
                if *first_version != version_bytes {
                    return Err(merge_error(format!(
                        "{} has a different format version than the bundles before it",
                        prefix.display()
                    )));
                }
            }
        }
        num_shards_sum += u64::from(header.num_shards);
        for item in iter {
            let (key, value) = item?;
            let mut proto = BundleEntryProto::decode(value).map_err(|e| Error::CorruptEntry {
                path: index_path.clone(),
                tensor: display_key(&key),
                what: format!("entry not parseable: {e}"),
            })?;
            let checked = TensorEntry::from_proto(&key, &proto, &index_path)?;
            if let Some(existing) = entries.get_mut(&key) {
                if existing.slices.is_empty() || proto.slices.is_empty() {
                    return Err(merge_error(format!(
                        "duplicate tensor {} when merging {}",
                        display_key(&key),
                        prefix.display()
                    )));
                }
                let existing_checked = TensorEntry::from_proto(&key, existing, &index_path)?;
                if existing_checked.dtype != checked.dtype
                    || existing_checked.shape != checked.shape
                {
                    return Err(merge_error(format!(
                        "partitioned tensor {} has different data types or shapes in different bundles",
                        display_key(&key)
                    )));
                }
                existing.slices.extend(proto.slices);
                continue;
            }
            let data_path = data_file_name(prefix, checked.shard_id, header.num_shards);
            let next_id = data_files.len();
            let id = *shard_ids.entry(data_path.clone()).or_insert_with(|| {
                data_files.push(data_path);
                next_id
            });
            proto.shard_id = i32::try_from(id)
                .map_err(|_| merge_error("more than 2^31 data files".to_owned()))?;
            entries.insert(key, proto);
        }
    }
    let Some((first, _)) = first_header else {
        return Err(merge_error("no bundles to merge".to_owned()));
    };
    let count = data_files.len();
    let num_shards = if count > 0 {
        count as u64
    } else {
        num_shards_sum
    };
    let num_shards = u32::try_from(num_shards)
        .ok()
        .filter(|&n| i32::try_from(n).is_ok())
        .ok_or_else(|| merge_error(format!("{num_shards} data files are too many")))?;
    let header_bytes = BundleHeaderProto {
        num_shards: num_shards as i32,
        endianness: match first.endianness {
            Endianness::Little => 0,
            Endianness::Big => 1,
        },
        version: Some(first.version.clone()),
    }
    .encode_to_vec();
    let merged_index = index_file_name(merged_prefix);
    let index = write_index(
        merged_index.clone(),
        &header_bytes,
        entries.iter().map(|(k, e)| (k.as_slice(), e)),
        |entry: &&BundleEntryProto, out| {
            // Encoding into a `Vec` cannot run out of room.
            let _ = entry.encode(out);
        },
        #[cfg(test)]
        None,
    )?;
    let index = index.close()?;
    if fsync {
        // Durable before any data file moves.
        index.sync()?;
    }
    let new_names: Vec<PathBuf> = (0..count)
        .map(|id| data_file_name(merged_prefix, id as u32, count as u32))
        .collect();
    // Replacing a bundle: its index goes first, so that no state pairs it
    // with the new data files (as `commit_all` does).
    if merged_index.exists() && new_names.iter().any(|p| p.exists()) {
        fs::remove_file(&merged_index).map_err(|e| io_error("removing", &merged_index, e))?;
        if fsync {
            sync_dir(parent_dir(&merged_index))?;
        }
    }

    // Rename the data files; undo on failure.
    let mut renamed: Vec<(PathBuf, PathBuf)> = Vec::new();
    let undo = |renamed: &[(PathBuf, PathBuf)]| {
        for (old, new) in renamed.iter().rev() {
            let _ = savedmodel_staged::rename(new, old);
        }
    };
    for (old, new) in data_files.iter().zip(&new_names) {
        if let Err(e) = savedmodel_staged::rename(old, new) {
            undo(&renamed);
            return Err(io_error("renaming", old, e.into_source()));
        }
        renamed.push((old.clone(), new.clone()));
    }
    if fsync {
        // The data files' new names are durable before the index's: a file
        // system may otherwise keep the index's rename and lose theirs.
        // (The directories they left are fsynced too, so that they are not
        // found in both places.)
        let mut dirs: Vec<&Path> = new_names
            .iter()
            .chain(&data_files)
            .map(|p| parent_dir(p))
            .collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            if let Err(e) = sync_dir(dir) {
                undo(&renamed);
                return Err(e.into());
            }
        }
    }
    // Synced above; its directory is synced below.
    if let Err(e) = commit_all(vec![index], false) {
        undo(&renamed);
        return Err(e.into());
    }
    if fsync {
        sync_dir(parent_dir(&merged_index))?;
    }
    for prefix in prefixes {
        let input_index = index_file_name(prefix.as_ref());
        if input_index != merged_index {
            let _ = fs::remove_file(input_index);
        }
    }
    Ok(())
}
