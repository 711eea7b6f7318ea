//! The one place this crate maps a file into memory.

use std::fs::File;
use std::path::Path;

use crate::error::{Result, io_error};

/// A read-only memory map of a whole file (a model or an external data
/// file). It is the owner behind the [`bytes::Bytes`] the model is decoded
/// from, so tensors' `raw_data` slices keep it alive.
pub(crate) struct MappedFile {
    map: memmap2::Mmap,
}

impl MappedFile {
    /// Maps the file at `path` read-only.
    ///
    /// The map is only sound while no one modifies or truncates the file in
    /// place: a `&[u8]` borrowed from it must not change under the borrower,
    /// and reading a page past a truncated end raises `SIGBUS`. Model files
    /// are inputs that exporters write once; the crate documentation states
    /// the assumption for users ("Files must not change while open").
    #[allow(unsafe_code)]
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| io_error("opening", path, e))?;
        // The file is opened read-only and mapped privately (`MAP_PRIVATE`
        // via `Mmap::map`).
        // SAFETY: the one remaining requirement, that the file is not modified
        // or truncated in place while mapped, is the documented contract of
        // `OnnxModel::open` (crate docs, "Files must not change while open").
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_error("mapping", path, e))?;
        Ok(MappedFile { map })
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}
