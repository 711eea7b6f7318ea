//! External data: tensor bytes in side files next to the model
//! (`TensorProto.data_location = EXTERNAL`; facts from
//! `proto/onnx/onnx.proto`, `TensorProto.external_data`, and onnx's
//! `onnx/external_data_helper.py`).
//!
//! Each entry names a file by a path relative to the model's directory. The
//! rules: the path is relative, has no `..` component, and once symlinks are
//! resolved (`canonicalize`) it is still inside the model's directory and is
//! a regular file. Each file is memory-mapped once, however many tensors and
//! spellings of its path point into it; `offset` and `length` must lie
//! within it. The SHA-1 `checksum` key is accepted and not verified (onnx's
//! own loader does not verify it either).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;

use crate::mmap::MappedFile;
use crate::proto::TensorProto;

/// Where one tensor's bytes are, as its `external_data` entries say.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ExternalRef<'a> {
    /// The `location` entry, as written.
    pub(crate) location: &'a str,
    /// The `offset` entry (0 when absent).
    pub(crate) offset: u64,
    /// The `length` entry (the rest of the file when absent).
    pub(crate) length: Option<u64>,
}

/// Reads a tensor's `external_data` entries. Unknown keys are ignored, as
/// onnx's loader does; a key given twice is an error.
pub(crate) fn parse_entries(tensor: &TensorProto) -> Result<ExternalRef<'_>, String> {
    let mut location = None;
    let mut offset = None;
    let mut length = None;
    for entry in &tensor.external_data {
        let key = entry.key();
        let value = entry.value();
        let slot = match key {
            "location" => &mut location,
            "offset" => &mut offset,
            "length" => &mut length,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(format!("key {key:?} is given twice"));
        }
    }
    let location = location.ok_or("has no \"location\" entry")?;
    let number = |key: &str, value: Option<&str>| -> Result<Option<u64>, String> {
        value
            .map(|v| {
                // Decimal digits only: `u64::from_str` would also take "+1".
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("{key} {v:?} is not a non-negative decimal integer"));
                }
                v.parse::<u64>()
                    .map_err(|_| format!("{key} {v:?} is too large"))
            })
            .transpose()
    };
    Ok(ExternalRef {
        location,
        offset: number("offset", offset)?.unwrap_or(0),
        length: number("length", length)?,
    })
}

/// The path `location` names inside `dir` (a canonical directory), after
/// checking the confinement rules (module docs).
fn confined_path(dir: &Path, location: &str) -> Result<PathBuf, String> {
    if location.is_empty() {
        return Err("the location is empty".to_owned());
    }
    if location.contains('\0') {
        return Err("the location contains a NUL byte".to_owned());
    }
    for component in Path::new(location).components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err("the location has a \"..\" component".to_owned());
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err("the location is an absolute path".to_owned());
            }
        }
    }
    let joined = dir.join(location);
    let canonical = joined
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", joined.display()))?;
    if !canonical.starts_with(dir) {
        return Err(format!(
            "resolves to {}, outside the model's directory {} (a symlink leads out)",
            canonical.display(),
            dir.display()
        ));
    }
    let metadata = std::fs::metadata(&canonical)
        .map_err(|e| format!("cannot read {}: {e}", canonical.display()))?;
    if !metadata.is_file() {
        return Err(format!("{} is not a regular file", canonical.display()));
    }
    Ok(canonical)
}

/// The external data files of one model, each mapped once.
#[derive(Default)]
pub(crate) struct ExternalFiles {
    /// The model's directory, canonical; `None` for a model read from bytes.
    dir: Option<PathBuf>,
    /// Mapped files by `location` as written (several spellings may share
    /// one map: the `Bytes` are clones of the same buffer).
    by_location: HashMap<String, Bytes>,
    /// Mapped files by canonical path.
    by_path: HashMap<PathBuf, Bytes>,
}

impl ExternalFiles {
    /// No files yet; locations resolve inside `dir` (canonical).
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        ExternalFiles {
            dir,
            ..ExternalFiles::default()
        }
    }

    /// Checks `tensor`'s entries, maps its file if not yet mapped, and checks
    /// that `offset` and `length` lie within it.
    pub(crate) fn resolve(&mut self, tensor: &TensorProto) -> Result<(), (String, String)> {
        let entry = parse_entries(tensor).map_err(|detail| (String::new(), detail))?;
        let fail = |detail: String| (entry.location.to_owned(), detail);
        if !self.by_location.contains_key(entry.location) {
            let Some(dir) = &self.dir else {
                return Err(fail(
                    "the model was read from bytes, so there is no directory to find it in (use OnnxModel::open)"
                        .to_owned(),
                ));
            };
            let path = confined_path(dir, entry.location).map_err(fail)?;
            let bytes = match self.by_path.get(&path) {
                Some(bytes) => bytes.clone(),
                None => {
                    let map = MappedFile::open(&path).map_err(|e| fail(e.to_string()))?;
                    let bytes = Bytes::from_owner(map);
                    self.by_path.insert(path, bytes.clone());
                    bytes
                }
            };
            self.by_location.insert(entry.location.to_owned(), bytes);
        }
        self.slice(&entry).map(|_| ()).map_err(fail)
    }

    /// The bytes `entry` points at, in a file [`ExternalFiles::resolve`]
    /// has mapped.
    pub(crate) fn slice(&self, entry: &ExternalRef<'_>) -> Result<&[u8], String> {
        let file = self
            .by_location
            .get(entry.location)
            .ok_or("was not resolved when the model was opened")?;
        let size = file.len() as u64;
        if entry.offset > size {
            return Err(format!(
                "offset {} is past the end of the {size}-byte file",
                entry.offset
            ));
        }
        let length = entry.length.unwrap_or(size - entry.offset);
        let end = entry
            .offset
            .checked_add(length)
            .filter(|end| *end <= size)
            .ok_or_else(|| {
                format!(
                    "offset {} + length {length} is past the end of the {size}-byte file",
                    entry.offset
                )
            })?;
        // Both bounds are at most `size`, which is a `usize`.
        Ok(&file[entry.offset as usize..end as usize])
    }

    /// How many distinct files are mapped.
    pub(crate) fn mapped_files(&self) -> usize {
        self.by_path.len()
    }
}
