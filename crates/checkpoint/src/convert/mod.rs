//! Tensors in and out of the three formats weights travel in: TensorFlow
//! checkpoints (TensorBundle prefixes), `.safetensors` files and NumPy `.npz`
//! archives.
//!
//! [`load_tensors`] (or [`TensorFile::open`]) opens any of them, telling them
//! apart by their content; [`TensorFile::read`] returns each tensor as a
//! [`TensorView`] that borrows the memory-mapped input when the bytes can be
//! used as stored (always for `.safetensors`; for checkpoints and `.npz`
//! unless a tensor is partitioned, byte-swapped, compressed or in Fortran
//! order). [`ConvertPlan`] selects and renames tensors for a target format,
//! lists those the target cannot hold, and writes the target, one tensor at a
//! time, so memory stays bounded by the largest tensor that needs a copy.
//!
//! ```
//! use savedmodel_checkpoint::convert::{ConvertOptions, ConvertPlan, Format, load_tensors};
//! use savedmodel_checkpoint::BundleWriter;
//! # let dir = tempfile::tempdir()?;
//! let prefix = dir.path().join("model");
//! let mut writer = BundleWriter::create(&prefix)?;
//! writer.add_typed("dense/kernel", &[2], &[1.0f32, 2.0])?;
//! writer.add_strings("vocab", &[1], &["a"])?;
//! writer.finish()?;
//!
//! let source = load_tensors(&prefix)?;
//! let mut options = ConvertOptions::default();
//! options.skip_unsupported = true; // .safetensors has no strings
//! let plan = ConvertPlan::new(&source, Format::SafeTensors, &options)?;
//! assert_eq!(plan.unsupported()[0].name, "vocab");
//! let target = dir.path().join("model.safetensors");
//! plan.write(&target, &mut |_done, _total| {})?;
//!
//! let copy = load_tensors(&target)?;
//! assert_eq!(copy.format(), Format::SafeTensors);
//! assert_eq!(copy.get("dense/kernel")?.to_slice::<f32>()?[..], [1.0, 2.0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Data types
//!
//! | TensorFlow | `.safetensors` | `.npz` (NumPy `descr`) |
//! |---|---|---|
//! | `DT_FLOAT`, `DT_DOUBLE`, `DT_HALF` | `F32`, `F64`, `F16` | `<f4`, `<f8`, `<f2` |
//! | `DT_INT8/16/32/64` | `I8`, `I16`, `I32`, `I64` | `\|i1`, `<i2`, `<i4`, `<i8` |
//! | `DT_UINT8/16/32/64` | `U8`, `U16`, `U32`, `U64` | `\|u1`, `<u2`, `<u4`, `<u8` |
//! | `DT_BOOL` | `BOOL` | `\|b1` |
//! | `DT_COMPLEX64` | `C64` | `<c8` |
//! | `DT_COMPLEX128` | - | `<c16` |
//! | `DT_BFLOAT16` | `BF16` | - (see below) |
//! | `DT_FLOAT8_E5M2`, `_E4M3FN`, `_E4M3FNUZ`, `_E5M2FNUZ` | `F8_E5M2`, `F8_E4M3`, `F8_E4M3FNUZ`, `F8_E5M2FNUZ` | - |
//! | `DT_STRING` | - | `\|S<width>` (see below) |
//! | quantized, `DT_INT4`, `DT_UINT4`, `DT_INT2`, `DT_UINT2`, `DT_FLOAT4_E2M1FN`, `DT_FLOAT8_E4M3B11FNUZ` | - | - |
//!
//! A "-" means the target cannot hold the type: converting such a tensor is
//! an error naming it, unless [`ConvertOptions::skip_unsupported`] leaves it
//! out. In particular:
//!
//! * **bfloat16 and float8 in `.npz`**: NumPy has no such types; the
//!   `ml_dtypes` package adds them, but `np.save` then records them as raw
//!   void (`<V2`, `|V1`), so the type is lost and `np.load` returns `void`
//!   arrays. Rather than write something NumPy reads as `void`, or widen to
//!   float32 behind the user's back, they are unsupported: convert to
//!   `.safetensors` (which has `BF16` and float8) or a checkpoint instead.
//!   Reading, a void member is reported unsupported with this explanation.
//! * **Strings in `.npz`** are written as NumPy fixed-width bytes (`|S<w>`,
//!   `w` the longest element, at least 1), which NumPy reads without pickle.
//!   NumPy strips trailing NUL bytes from such elements, so an element that
//!   ends in a NUL byte cannot survive and makes the conversion fail, naming
//!   the tensor. Object arrays (`|O`) are pickles: they are never written,
//!   and reading one is refused (it is listed as unsupported; loading a
//!   pickle can run arbitrary code). Unicode arrays (`<U<w>`) are read as
//!   UTF-8 `DT_STRING`s.
//! * **Sub-byte types** take one byte per element in TensorFlow; the only
//!   packed 4-bit type of `.safetensors` (`F4`) packs two per byte, so they
//!   do not map. `F4`, `F6_*` and `F8_E8M0` tensors of a `.safetensors`
//!   file have no TensorFlow type and are listed as unsupported.
//! * **Quantized types** (`DT_QINT8`, ...) have the bytes of an integer type
//!   but a meaning neither target records, so they are unsupported rather
//!   than silently turned into plain integers.
//!
//! # Writing
//!
//! * **Checkpoints**: tensors are added in sorted name order, as
//!   TensorFlow's `Saver` passes them to `SaveV2`, so the files are
//!   byte-identical to what TensorFlow writes for the same tensors (one data
//!   file, little-endian, no alignment padding). Partitioned tensors of a
//!   source checkpoint are written whole.
//! * **`.safetensors`**: the header is built by the `safetensors` crate
//!   ([`safetensors::tensor::Metadata`]) and the tensors are ordered as it
//!   orders them (by descending data type, then name), so the file is
//!   byte-identical to `safetensors.numpy.save_file` of the same arrays; the
//!   data is then streamed tensor by tensor (the crate's own writers want
//!   every tensor in memory at once and cannot report a read error).
//! * **`.npz`**: one uncompressed (`ZIP_STORED`) member `<name>.npy` per
//!   tensor, in sorted name order, each with the header `np.save` writes
//!   (format 1.0, 64-byte aligned, with NumPy's spare room for growth).
//!   `.npz` input may be compressed (`np.savez_compressed`).
//!
//! Every output is written to a temporary file beside the target, synced and
//! renamed into place: a failure leaves no file under the target's name.

mod bundle;
mod npy;
mod npz;
mod safetensors_format;

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use regex::Regex;
use savedmodel_staged::{StagedFile, parent_dir};

use crate::dtype::DType;
use crate::error::{DTypeDisplay, Error, Result, io_error};
use crate::reader::BundleReader;
use crate::tensor::TensorView;

/// Bytes handed to a writer (and reported to the progress callback) at a
/// time when streaming one tensor.
const CHUNK: usize = 8 << 20;

/// A file format [`TensorFile`] reads and [`ConvertPlan`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// A TensorFlow checkpoint: `<prefix>.index` and its data files.
    TensorBundle,
    /// A `.safetensors` file.
    SafeTensors,
    /// A NumPy `.npz` archive of `.npy` arrays.
    Npz,
}

impl Format {
    /// The format to write to `path`: `.safetensors` and `.npz` by their
    /// extension (any case), a checkpoint prefix otherwise.
    pub fn for_output(path: &Path) -> Format {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("safetensors") => Format::SafeTensors,
            Some("npz") => Format::Npz,
            _ => Format::TensorBundle,
        }
    }

    /// The format of the file or checkpoint at `path`, and the path to open
    /// as that format (a checkpoint's prefix), by the rules of
    /// [`TensorFile::open`], without reading more than two bytes: a
    /// checkpoint can then be opened with [`BundleReader::open`], which
    /// reads only what its lookups need, where [`TensorFile::open`] reads
    /// every index entry to list the tensors.
    pub fn detect(path: impl AsRef<Path>) -> Result<(Format, PathBuf)> {
        detect(path.as_ref())
    }

    /// The format's name in messages: `checkpoint`, `.safetensors`, `.npz`.
    pub fn name(self) -> &'static str {
        match self {
            Format::TensorBundle => "checkpoint",
            Format::SafeTensors => ".safetensors",
            Format::Npz => ".npz",
        }
    }

    /// Whether this format can store tensors of `dtype`.
    pub fn supports(self, dtype: DType) -> bool {
        match self {
            Format::TensorBundle => dtype.is_checkpointable(),
            Format::SafeTensors => safetensors_format::to_safetensors_dtype(dtype).is_some(),
            Format::Npz => dtype == DType::String || npy::descr_for(dtype).is_some(),
        }
    }

    fn unsupported_context(self) -> &'static str {
        match self {
            Format::TensorBundle => "in checkpoints",
            Format::SafeTensors => "in .safetensors files (skip it or write a checkpoint)",
            Format::Npz => {
                "in .npz files (NumPy has no such type; skip it or write .safetensors or a checkpoint)"
            }
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a [`TensorFile`] holds about one tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorFileEntry {
    /// The tensor's name (checkpoint key, `.safetensors` key, or `.npz`
    /// member name without `.npy`).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions, row-major (empty for a scalar).
    pub shape: Vec<i64>,
    /// Bytes the tensor's data takes in the file (for progress reports).
    pub size: u64,
}

impl TensorFileEntry {
    /// Number of elements (1 for a scalar).
    pub fn num_elements(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }
}

/// A tensor of a file that cannot be read as a TensorFlow tensor, or that a
/// conversion's target cannot hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// The tensor's name in the source.
    pub name: String,
    /// Its data type as the source names it (`DT_STRING`, `F8_E8M0`,
    /// `|O`, ...).
    pub dtype: String,
    /// Why it is not supported.
    pub reason: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.name, self.dtype, self.reason)
    }
}

/// An open checkpoint, `.safetensors` or `.npz` file: the list of its
/// tensors, each readable on demand.
///
/// The `.safetensors` and `.npz` files are memory-mapped (checkpoints are
/// read through [`BundleReader`], which maps its data files), under the same
/// assumption as [`BundleReader`]: nobody modifies the files in place while
/// they are open.
#[derive(Debug)]
pub struct TensorFile {
    path: PathBuf,
    format: Format,
    tensors: Vec<TensorFileEntry>,
    unsupported: Vec<Unsupported>,
    source: Source,
}

#[derive(Debug)]
enum Source {
    Bundle(bundle::BundleSource),
    SafeTensors(safetensors_format::SafeTensorsSource),
    Npz(npz::NpzSource),
}

/// Opens the checkpoint, `.safetensors` or `.npz` file at `path` (see
/// [`TensorFile::open`]).
pub fn load_tensors(path: impl AsRef<Path>) -> Result<TensorFile> {
    TensorFile::open(path)
}

impl TensorFile {
    /// Opens `path`, telling the format from the content:
    ///
    /// * a file starting with a zip signature (`PK`) is an `.npz` archive;
    /// * a file named `*.index` is a checkpoint's index (its prefix is
    ///   opened);
    /// * any other file is read as `.safetensors`;
    /// * a path that is not a file but has a `<path>.index` is a checkpoint
    ///   prefix;
    /// * a directory with `variables/variables.index` (a SavedModel) opens
    ///   that checkpoint.
    ///
    /// Only the index or header is read: tensors are read by
    /// [`read`](Self::read).
    pub fn open(path: impl AsRef<Path>) -> Result<TensorFile> {
        let path = path.as_ref();
        let (format, target) = detect(path)?;
        Self::open_as(target, format)
    }

    /// Opens `path` as a file of `format` (for a checkpoint, `path` is the
    /// prefix).
    pub fn open_as(path: impl AsRef<Path>, format: Format) -> Result<TensorFile> {
        let path = path.as_ref().to_path_buf();
        let (source, mut tensors, unsupported) = match format {
            Format::TensorBundle => {
                let (source, tensors, unsupported) = bundle::BundleSource::open(&path)?;
                (Source::Bundle(source), tensors, unsupported)
            }
            Format::SafeTensors => {
                let (source, tensors, unsupported) =
                    safetensors_format::SafeTensorsSource::open(&path)?;
                (Source::SafeTensors(source), tensors, unsupported)
            }
            Format::Npz => {
                let (source, tensors, unsupported) = npz::NpzSource::open(&path)?;
                (Source::Npz(source), tensors, unsupported)
            }
        };
        // Every source lists its tensors in name order; sorting again is
        // cheap and keeps that a guarantee.
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(TensorFile {
            path,
            format,
            tensors,
            unsupported,
            source,
        })
    }

    /// The path opened (for a checkpoint, its prefix).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The tensors that can be read, sorted by name. (For a checkpoint: the
    /// full names of partitioned tensors, not their slices.)
    pub fn tensors(&self) -> &[TensorFileEntry] {
        &self.tensors
    }

    /// Tensors present in the file that cannot be read as TensorFlow
    /// tensors (a `.safetensors` `F8_E8M0` tensor, a NumPy object array,
    /// a checkpoint's `DT_VARIANT`, a name that is not UTF-8, ...), sorted
    /// by name.
    pub fn unsupported(&self) -> &[Unsupported] {
        &self.unsupported
    }

    /// The position of tensor `name` in [`tensors`](Self::tensors).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.tensors
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
    }

    /// The checkpoint reader, when the file is a checkpoint.
    pub fn bundle_reader(&self) -> Option<&BundleReader> {
        match &self.source {
            Source::Bundle(source) => Some(source.reader()),
            _ => None,
        }
    }

    /// Reads tensor `index` of [`tensors`](Self::tensors): its elements in
    /// row-major order and this machine's byte order, borrowed from the
    /// memory-mapped file when possible. Checksums are verified (the
    /// checkpoint's CRC32C, the `.npz` member's CRC-32; `.safetensors` has
    /// none).
    pub fn read(&self, index: usize) -> Result<TensorView<'_>> {
        let info = self.tensors.get(index).ok_or_else(|| Error::NotFound {
            path: self.path.clone(),
            tensor: format!("number {index} (of {})", self.tensors.len()),
        })?;
        let view = match &self.source {
            Source::Bundle(source) => source.read(index, info)?,
            Source::SafeTensors(source) => source.read(index, info)?,
            Source::Npz(source) => source.read(index, info)?,
        };
        Ok(view)
    }

    /// Reads the tensor called `name` (see [`read`](Self::read)).
    pub fn get(&self, name: &str) -> Result<TensorView<'_>> {
        match self.index_of(name) {
            Some(index) => self.read(index),
            None => Err(Error::NotFound {
                path: self.path.clone(),
                tensor: name.escape_default().to_string(),
            }),
        }
    }
}

/// Tells the format of `path` and the path to open (a checkpoint's prefix).
fn detect(path: &Path) -> Result<(Format, PathBuf)> {
    if path.is_file() {
        if path.extension().is_some_and(|e| e == "index") {
            return Ok((Format::TensorBundle, path.with_extension("")));
        }
        let mut magic = [0u8; 2];
        let mut file = File::open(path).map_err(|e| io_error("opening", path, e))?;
        let n = read_up_to(&mut file, &mut magic).map_err(|e| io_error("reading", path, e))?;
        if &magic[..n] == b"PK" {
            return Ok((Format::Npz, path.to_path_buf()));
        }
        return Ok((Format::SafeTensors, path.to_path_buf()));
    }
    if crate::index_file_name(path).is_file() {
        return Ok((Format::TensorBundle, path.to_path_buf()));
    }
    let saved_model_variables = path.join("variables").join("variables");
    if path.is_dir() && crate::index_file_name(&saved_model_variables).is_file() {
        return Ok((Format::TensorBundle, saved_model_variables));
    }
    Err(Error::Io {
        op: "opening",
        path: path.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::NotFound,
            "no such file, no checkpoint index <path>.index and no SavedModel variables/",
        ),
    })
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    use io::Read;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A `--rename FROM=TO` rule: every match of `pattern` in a tensor's name is
/// replaced by `replacement` (`$1`, `${name}` refer to capture groups), as
/// [`Regex::replace_all`] does.
#[derive(Clone, Debug)]
pub struct Rename {
    /// What to replace.
    pub pattern: Regex,
    /// What to put instead.
    pub replacement: String,
}

impl Rename {
    /// Parses `FROM=TO`, split at the first `=` (write `\x3d` for an `=` in
    /// the pattern).
    pub fn parse(spec: &str) -> std::result::Result<Rename, String> {
        let Some((from, to)) = spec.split_once('=') else {
            return Err(format!("{spec:?} is not FROM=TO"));
        };
        let pattern = Regex::new(from).map_err(|e| format!("pattern {from:?}: {e}"))?;
        Ok(Rename {
            pattern,
            replacement: to.to_owned(),
        })
    }
}

/// Which tensors to convert and how to name them.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ConvertOptions {
    /// When not empty, only tensors whose source name matches one of these
    /// are converted.
    pub include: Vec<Regex>,
    /// Tensors whose source name matches one of these are left out (after
    /// `include`).
    pub exclude: Vec<Regex>,
    /// Applied in order to each selected tensor's name.
    pub renames: Vec<Rename>,
    /// Leave out tensors the target cannot hold instead of failing.
    pub skip_unsupported: bool,
    /// Data files of a TensorFlow checkpoint target
    /// ([`WriterOptions::data_files`](crate::WriterOptions::data_files));
    /// 0 counts as 1, which gives the files `SaveV2` would write.
    pub data_files: usize,
}

/// A tensor a [`ConvertPlan`] will write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedTensor {
    /// Position in the source's [`TensorFile::tensors`].
    pub source_index: usize,
    /// The name in the source.
    pub source_name: String,
    /// The name in the target (after the renames).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Vec<i64>,
}

/// What [`ConvertPlan::write`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertSummary {
    /// Tensors written.
    pub tensors: usize,
    /// Bytes of tensor data read from the source.
    pub bytes: u64,
}

/// The tensors of a source to write to a target format: selected, renamed,
/// checked against what the target can hold.
#[derive(Debug)]
pub struct ConvertPlan<'s> {
    source: &'s TensorFile,
    format: Format,
    tensors: Vec<PlannedTensor>,
    unsupported: Vec<Unsupported>,
    excluded: usize,
    skip_unsupported: bool,
    data_files: usize,
}

impl<'s> ConvertPlan<'s> {
    /// Selects the tensors of `source` that `options` keeps, renames them
    /// and checks that the target names are usable: not empty, not
    /// reserved (`__metadata__` in `.safetensors`) and all different (an
    /// error names both source tensors of a clash).
    pub fn new(
        source: &'s TensorFile,
        format: Format,
        options: &ConvertOptions,
    ) -> Result<ConvertPlan<'s>> {
        let selected = |name: &str| {
            (options.include.is_empty() || options.include.iter().any(|re| re.is_match(name)))
                && !options.exclude.iter().any(|re| re.is_match(name))
        };
        let mut excluded = 0;
        let mut unsupported = Vec::new();
        for u in source.unsupported() {
            if selected(&u.name) {
                unsupported.push(u.clone());
            } else {
                excluded += 1;
            }
        }
        let mut tensors = Vec::new();
        for (index, info) in source.tensors().iter().enumerate() {
            if !selected(&info.name) {
                excluded += 1;
                continue;
            }
            if !format.supports(info.dtype) {
                unsupported.push(Unsupported {
                    name: info.name.clone(),
                    dtype: info.dtype.name().to_owned(),
                    reason: format!("not supported {}", format.unsupported_context()),
                });
                continue;
            }
            let mut name = info.name.clone();
            for rename in &options.renames {
                name = rename
                    .pattern
                    .replace_all(&name, rename.replacement.as_str())
                    .into_owned();
            }
            let bad = |what: String| Error::InvalidArgument {
                tensor: info.name.clone(),
                what,
            };
            if name.is_empty() {
                return Err(bad("renamed to the empty name".to_owned()));
            }
            if format == Format::SafeTensors && name == "__metadata__" {
                return Err(bad(
                    "renamed to __metadata__, which .safetensors reserves for its metadata"
                        .to_owned(),
                ));
            }
            tensors.push(PlannedTensor {
                source_index: index,
                source_name: info.name.clone(),
                name,
                dtype: info.dtype,
                shape: info.shape.clone(),
            });
        }
        unsupported.sort_by(|a, b| a.name.cmp(&b.name));
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        for pair in tensors.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(Error::InvalidArgument {
                    tensor: pair[1].source_name.clone(),
                    what: format!(
                        "renamed to {}, the name {} is renamed to as well",
                        pair[1].name, pair[0].source_name
                    ),
                });
            }
        }
        Ok(ConvertPlan {
            source,
            format,
            tensors,
            unsupported,
            excluded,
            skip_unsupported: options.skip_unsupported,
            data_files: options.data_files.max(1),
        })
    }

    /// The tensors to write, sorted by target name.
    pub fn tensors(&self) -> &[PlannedTensor] {
        &self.tensors
    }

    /// Selected tensors that the target cannot hold (or that the source
    /// cannot read), sorted by source name. [`write`](Self::write) fails on
    /// the first of them unless
    /// [`skip_unsupported`](ConvertOptions::skip_unsupported) is set.
    pub fn unsupported(&self) -> &[Unsupported] {
        &self.unsupported
    }

    /// Number of tensors left out by the include and exclude patterns.
    pub fn excluded(&self) -> usize {
        self.excluded
    }

    /// The target format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Total bytes the planned tensors take in the source (what
    /// [`write`](Self::write) reports progress against).
    pub fn total_bytes(&self) -> u64 {
        self.tensors
            .iter()
            .map(|t| self.source.tensors()[t.source_index].size)
            .sum()
    }

    /// Writes the planned tensors to `path` in the plan's format (for a
    /// checkpoint, `path` is the prefix), calling `progress(done, total)`
    /// with bytes of source data as it goes. Fails, writing nothing, when a
    /// selected tensor is unsupported and `skip_unsupported` is not set.
    pub fn write(
        &self,
        path: impl AsRef<Path>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ConvertSummary> {
        if !self.skip_unsupported {
            if let Some(first) = self.unsupported.first() {
                return Err(self.unsupported_error(first));
            }
        }
        let path = path.as_ref();
        let mut progress = Progress {
            done: 0,
            total: self.total_bytes(),
            callback: progress,
        };
        match self.format {
            Format::TensorBundle => bundle::write(self, path, self.data_files, &mut progress)?,
            Format::SafeTensors => safetensors_format::write(self, path, &mut progress)?,
            Format::Npz => npz::write(self, path, &mut progress)?,
        }
        Ok(ConvertSummary {
            tensors: self.tensors.len(),
            bytes: progress.done,
        })
    }

    fn unsupported_error(&self, u: &Unsupported) -> Error {
        match DType::from_name(&u.dtype) {
            Some(dtype) if !self.format.supports(dtype) => Error::UnsupportedDType {
                tensor: u.name.clone(),
                dtype: DTypeDisplay(dtype.as_i32()),
                context: self.format.unsupported_context(),
            },
            _ => Error::InvalidArgument {
                tensor: u.name.clone(),
                what: format!("data type {}: {}", u.dtype, u.reason),
            },
        }
    }

    /// The source.
    pub fn source(&self) -> &'s TensorFile {
        self.source
    }

    /// Reads planned tensor `t` from the source.
    fn read(&self, t: &PlannedTensor) -> Result<TensorView<'s>> {
        self.source.read(t.source_index)
    }
}

/// Progress reporting for the writers.
struct Progress<'a> {
    done: u64,
    total: u64,
    callback: &'a mut dyn FnMut(u64, u64),
}

impl Progress<'_> {
    fn advance(&mut self, bytes: u64) {
        self.done = self.done.saturating_add(bytes);
        (self.callback)(self.done, self.total.max(self.done));
    }
}

/// An output file: a [`StagedFile`] (`<path>.tempstate<random>`) behind a
/// 1 MiB write buffer, committed (fsynced, renamed into place, directory
/// fsynced) by [`finish`](Self::finish), removed if dropped before.
struct StagedOutput {
    out: BufWriter<StagedFile>,
}

impl StagedOutput {
    fn create(final_path: &Path) -> Result<StagedOutput> {
        // Committed with fsync, so the directories made on the way are too.
        savedmodel_staged::create_dir_all(parent_dir(final_path), true)?;
        Ok(StagedOutput {
            out: BufWriter::with_capacity(1 << 20, StagedFile::create(final_path)?),
        })
    }

    fn temp_path(&self) -> &Path {
        self.out.get_ref().temp_path()
    }

    fn io(&self, op: &'static str, e: io::Error) -> Error {
        io_error(op, self.temp_path(), e)
    }

    fn finish(self) -> Result<()> {
        let file = self.out.into_inner().map_err(|e| {
            let (error, out) = e.into_parts();
            io_error("writing", out.get_ref().temp_path(), error)
        })?;
        Ok(file.commit(true)?)
    }
}

impl Write for StagedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Seek for StagedOutput {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.out.seek(pos)
    }
}

/// Writes `bytes` to `out` in chunks, reporting progress after each.
fn write_chunked(
    out: &mut impl Write,
    bytes: &[u8],
    progress: &mut Progress<'_>,
) -> io::Result<()> {
    for chunk in bytes.chunks(CHUNK) {
        out.write_all(chunk)?;
        progress.advance(chunk.len() as u64);
    }
    Ok(())
}

/// Element bytes of a view in little-endian order (what `.safetensors` and
/// `.npz` store): the view's own bytes on a little-endian machine.
fn little_endian_bytes<'v>(view: &'v TensorView<'_>) -> Option<std::borrow::Cow<'v, [u8]>> {
    let bytes = view.bytes()?;
    if cfg!(target_endian = "little") {
        return Some(std::borrow::Cow::Borrowed(bytes));
    }
    let mut owned = bytes.to_vec();
    if let Some(unit) = view.dtype().swap_unit() {
        crate::tensor::swap_bytes(&mut owned, unit);
    }
    Some(std::borrow::Cow::Owned(owned))
}

#[cfg(test)]
mod tests;
