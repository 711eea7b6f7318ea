//! Reading bundles: the index through a memory-mapped [`Table`], the data
//! files memory-mapped on first use.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use prost::Message;
use savedmodel_proto::tensorflow::TrackableObjectGraph;

use crate::crc;
use crate::dtype::DType;
use crate::entry::{BundleHeader, Endianness, TensorEntry};
use crate::error::{DTypeDisplay, Error, Result, display_key};
use crate::mmap::MappedFile;
use crate::ordered_code::{decode_tensor_name_slice, encode_tensor_name_slice};
use crate::slice::TensorSlice;
use crate::string_tensor;
use crate::table::{Table, TableReadOptions};
use crate::tensor::{TensorData, TensorView, swap_bytes};
use crate::{data_file_name, index_file_name};

/// The key of a TensorFlow 2 object checkpoint's object graph: a scalar
/// `DT_STRING` holding a serialized `TrackableObjectGraph`.
pub const OBJECT_GRAPH_KEY: &str = "_CHECKPOINTABLE_OBJECT_GRAPH";

/// A header claiming more data files than this is rejected (TensorFlow's
/// file names have room for 99,999; this bounds the per-shard state a
/// reader allocates up front).
pub const MAX_NUM_SHARDS: u32 = 1 << 16;

/// Options for [`BundleReader::open_with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReaderOptions {
    /// Compare each tensor's CRC32C with its entry when reading it (on by
    /// default; table blocks are always checked).
    pub verify_checksums: bool,
    /// Limits for reading the index table.
    pub table: TableReadOptions,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            verify_checksums: true,
            table: TableReadOptions::default(),
        }
    }
}

impl ReaderOptions {
    /// Sets [`verify_checksums`](Self::verify_checksums).
    pub fn with_verify_checksums(mut self, verify_checksums: bool) -> Self {
        self.verify_checksums = verify_checksums;
        self
    }

    /// Sets [`table`](Self::table).
    pub fn with_table(mut self, table: TableReadOptions) -> Self {
        self.table = table;
        self
    }
}

/// A bundle opened for reading.
///
/// Opening maps `<prefix>.index` and reads its footer, index block and the
/// header entry, nothing else: looking a tensor up reads one data block of
/// the index (checked and cached), and reading a tensor maps its data file
/// (once) and returns a view borrowing the map.
///
/// `BundleReader` is `Send` and `Sync`: lookups take `&self`.
///
/// **Memory maps.** The views borrow memory-mapped files, which is sound as
/// long as nobody modifies or truncates a bundle's files in place while the
/// reader is alive. TensorFlow and this crate never do (they write a new
/// file and rename it over the old one, which leaves existing maps intact);
/// do not point a reader at files another program rewrites in place.
pub struct BundleReader {
    prefix: PathBuf,
    index_path: PathBuf,
    table: Table<MappedFile>,
    header: BundleHeader,
    shards: Box<[OnceLock<MappedFile>]>,
    options: ReaderOptions,
}

impl std::fmt::Debug for BundleReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleReader")
            .field("prefix", &self.prefix)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl BundleReader {
    /// Opens the bundle at `prefix` (the path without `.index`).
    pub fn open(prefix: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(prefix, ReaderOptions::default())
    }

    /// Opens the bundle at `prefix` with `options`.
    pub fn open_with(prefix: impl AsRef<Path>, options: ReaderOptions) -> Result<Self> {
        let prefix = prefix.as_ref().to_path_buf();
        let index_path = index_file_name(&prefix);
        let map = MappedFile::open(&index_path)?;
        let table = Table::open_with(map, &index_path, options.table.clone())?;
        let header_value = table.get(b"")?.ok_or_else(|| Error::CorruptTable {
            path: index_path.clone(),
            offset: None,
            what: "no header entry (the empty key)".to_owned(),
        })?;
        let header = BundleHeader::decode(header_value, &index_path)?;
        if header.num_shards > MAX_NUM_SHARDS {
            return Err(Error::Limit {
                path: index_path,
                what: "number of data files",
                value: header.num_shards.into(),
                limit: MAX_NUM_SHARDS.into(),
            });
        }
        let shards = std::iter::repeat_with(OnceLock::new)
            .take(header.num_shards as usize)
            .collect();
        Ok(BundleReader {
            prefix,
            index_path,
            table,
            header,
            shards,
            options,
        })
    }

    /// The prefix the bundle was opened with.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The `.index` file.
    pub fn index_path(&self) -> &Path {
        &self.index_path
    }

    /// The path of data file `shard_id`.
    pub fn data_path(&self, shard_id: u32) -> PathBuf {
        data_file_name(&self.prefix, shard_id, self.header.num_shards)
    }

    /// The header entry.
    pub fn header(&self) -> &BundleHeader {
        &self.header
    }

    /// The entry stored under `name` (a tensor name or a slice key), or
    /// [`Error::NotFound`].
    pub fn entry(&self, name: impl AsRef<[u8]>) -> Result<TensorEntry> {
        let key = name.as_ref();
        match self.table.get(key)? {
            Some(value) if !key.is_empty() => TensorEntry::decode(key, value, &self.index_path),
            _ => Err(Error::NotFound {
                path: self.index_path.clone(),
                tensor: display_key(key),
            }),
        }
    }

    /// Whether `name` has an entry.
    pub fn contains(&self, name: impl AsRef<[u8]>) -> Result<bool> {
        let key = name.as_ref();
        Ok(!key.is_empty() && self.table.get(key)?.is_some())
    }

    /// Whether `key` is the slice key of a slice that a partitioned tensor of
    /// this bundle lists: what TensorFlow's `CheckpointReader` leaves out of
    /// its variable maps, the tensor being listed under its own name. Looks
    /// the tensor up (one lazy lookup) only for keys that decode as slice
    /// keys, so a walk over [`entries`](Self::entries) can tell them apart
    /// as it goes, without collecting the entries first.
    pub fn is_listed_slice(&self, key: &[u8]) -> Result<bool> {
        if key.first() != Some(&0) {
            return Ok(false);
        }
        let Some((name, _)) = decode_tensor_name_slice(key) else {
            return Ok(false);
        };
        match self.entry(&name) {
            // Compared as encoded: the key is listed exactly when one of the
            // tensor's slices encodes to it.
            Ok(entry) => Ok(entry
                .slices
                .iter()
                .any(|slice| encode_tensor_name_slice(&name, slice) == key)),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every entry but the header, in key order: tensors, the full-tensor
    /// entries of partitioned tensors, and their slices (whose keys start with
    /// `0x00` and sort first; see
    /// [`decode_tensor_name_slice`](crate::ordered_code::decode_tensor_name_slice)).
    /// Iteration stops after the first error.
    pub fn entries(&self) -> impl Iterator<Item = Result<(Vec<u8>, TensorEntry)>> + '_ {
        self.table.iter().filter_map(move |item| match item {
            Ok((key, _)) if key.is_empty() => None,
            Ok((key, value)) => {
                Some(TensorEntry::decode(&key, value, &self.index_path).map(|e| (key, e)))
            }
            Err(e) => Some(Err(e)),
        })
    }

    /// Reads the tensor `name`: a view borrowing the data file when the
    /// tensor is stored in one piece in this machine's byte order; assembled
    /// from its slices (a copy) when it is partitioned.
    pub fn tensor(&self, name: impl AsRef<[u8]>) -> Result<TensorView<'_>> {
        let key = name.as_ref();
        let entry = self.entry(key)?;
        self.tensor_for_entry(key, &entry)
    }

    /// Reads the tensor of an entry obtained from [`entry`](Self::entry) or
    /// [`entries`](Self::entries) (saves the lookup).
    pub fn tensor_for_entry(&self, name: &[u8], entry: &TensorEntry) -> Result<TensorView<'_>> {
        if entry.is_partitioned() {
            let full = TensorSlice::full(entry.shape.len());
            self.assemble(name, entry, &full)
        } else {
            self.read_stored(name, entry, self.options.verify_checksums)
        }
    }

    /// Reads the tensor of every entry in `entries` (from
    /// [`entries`](Self::entries)), in order: what
    /// [`tensor_for_entry`](Self::tensor_for_entry) of each in turn returns,
    /// and the same first error, but with the checksums of the tensors stored
    /// in one piece (all but strings and partitioned tensors) computed
    /// afterwards on up to `threads` threads at once, cutting large tensors
    /// into parts (`crc::combine` joins them). Every checksum is verified
    /// before this returns (unless the reader was opened without
    /// [`verify_checksums`](ReaderOptions::verify_checksums)): no view of a
    /// corrupted tensor is ever handed out.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use savedmodel_checkpoint::{BundleReader, BundleWriter, DType};
    /// let mut writer = BundleWriter::create(dir.path().join("ckpt"))?;
    /// writer.add("a", DType::Float, &[2], bytemuck::cast_slice(&[1.0f32, 2.0]))?;
    /// writer.add("b", DType::Int64, &[], &7i64.to_le_bytes())?;
    /// writer.finish()?;
    /// let reader = BundleReader::open(dir.path().join("ckpt"))?;
    /// let entries = reader.entries().collect::<Result<Vec<_>, _>>()?;
    /// let views = reader.tensors_for_entries(&entries, 2)?;
    /// assert_eq!(views[1].to_slice::<i64>()?.as_ref(), &[7]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tensors_for_entries(
        &self,
        entries: &[(Vec<u8>, TensorEntry)],
        threads: usize,
    ) -> Result<Vec<TensorView<'_>>> {
        let verify = self.options.verify_checksums;
        let mut views = Vec::with_capacity(entries.len());
        // The stored bytes still to be checked, and their entries' indices.
        let mut unchecked: Vec<&[u8]> = Vec::new();
        let mut unchecked_index: Vec<usize> = Vec::new();
        let mut first_error = None;
        for (i, (name, entry)) in entries.iter().enumerate() {
            let deferred = verify && !entry.is_partitioned() && entry.dtype != DType::String;
            let read = if deferred {
                self.read_stored(name, entry, false).and_then(|view| {
                    unchecked.push(self.stored_bytes(name, entry)?);
                    unchecked_index.push(i);
                    Ok(view)
                })
            } else {
                self.tensor_for_entry(name, entry)
            };
            match read {
                Ok(view) => views.push(view),
                Err(e) => {
                    first_error = Some(e);
                    break;
                }
            }
        }
        // A checksum mismatch before the first other error is reported
        // first, as reading one tensor after the other would.
        let crcs = crc::crc32c_all(&unchecked, threads);
        for (&i, actual) in unchecked_index.iter().zip(crcs) {
            let (name, entry) = &entries[i];
            let expected = crc::unmask(entry.crc32c);
            if actual != expected {
                return Err(Error::TensorChecksum {
                    path: self.data_path(entry.shard_id),
                    tensor: display_key(name),
                    expected,
                    actual,
                });
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(views),
        }
    }

    /// The slices a partitioned tensor is stored as (empty when it is stored
    /// whole).
    pub fn stored_slices(&self, name: impl AsRef<[u8]>) -> Result<Vec<TensorSlice>> {
        Ok(self.entry(name)?.slices)
    }

    /// Reads `slice` of tensor `name` (partitioned or not). A slice that is
    /// stored as such is borrowed like a whole tensor; any other is assembled
    /// from the stored slices that intersect it.
    pub fn slice(&self, name: impl AsRef<[u8]>, slice: &TensorSlice) -> Result<TensorView<'_>> {
        let key = name.as_ref();
        let entry = self.entry(key)?;
        self.assemble(key, &entry, slice)
    }

    /// The bytes of an entry exactly as stored in its data file (not
    /// checked, not byte-swapped).
    pub fn stored_bytes(&self, name: &[u8], entry: &TensorEntry) -> Result<&[u8]> {
        let shard =
            self.shards
                .get(entry.shard_id as usize)
                .ok_or_else(|| Error::CorruptEntry {
                    path: self.index_path.clone(),
                    tensor: display_key(name),
                    what: format!(
                        "shard id {} but the bundle has {} data files",
                        entry.shard_id, self.header.num_shards
                    ),
                })?;
        let data = match shard.get() {
            Some(map) => map.as_ref(),
            None => {
                let map = MappedFile::open(&self.data_path(entry.shard_id))?;
                shard.get_or_init(|| map).as_ref()
            }
        };
        let range = usize::try_from(entry.offset)
            .ok()
            .zip(usize::try_from(entry.size).ok())
            .and_then(|(start, size)| Some(start..start.checked_add(size)?))
            .filter(|range| range.end <= data.len());
        match range {
            Some(range) => Ok(&data[range]),
            None => Err(Error::DataOutOfBounds {
                path: self.data_path(entry.shard_id),
                tensor: display_key(name),
                offset: entry.offset,
                size: entry.size,
                file_len: data.len() as u64,
            }),
        }
    }

    /// The object graph of a TensorFlow 2 object checkpoint (`None` for a
    /// checkpoint without one, such as a TF1 `Saver`'s).
    pub fn object_graph(&self) -> Result<Option<TrackableObjectGraph>> {
        let key = OBJECT_GRAPH_KEY.as_bytes();
        if !self.contains(key)? {
            return Ok(None);
        }
        let tensor = self.tensor(key)?;
        let bad = |what: String| Error::CorruptEntry {
            path: self.index_path.clone(),
            tensor: OBJECT_GRAPH_KEY.to_owned(),
            what,
        };
        let value = match tensor.strings() {
            Some([value]) => value,
            _ => {
                return Err(bad(format!(
                    "expected a scalar DT_STRING, found {} of shape {}",
                    tensor.dtype(),
                    crate::shape_string(tensor.shape())
                )));
            }
        };
        TrackableObjectGraph::decode(&value[..])
            .map(Some)
            .map_err(|e| bad(format!("not a TrackableObjectGraph: {e}")))
    }

    /// Reads an entry stored in one piece; checks its checksum when `verify`.
    fn read_stored(
        &self,
        name: &[u8],
        entry: &TensorEntry,
        verify: bool,
    ) -> Result<TensorView<'_>> {
        let n = entry.num_elements();
        let bad_size = |what: String| Error::CorruptEntry {
            path: self.index_path.clone(),
            tensor: display_key(name),
            what,
        };
        let check_crc = |actual: u32| {
            let expected = crc::unmask(entry.crc32c);
            if actual == expected {
                Ok(())
            } else {
                Err(Error::TensorChecksum {
                    path: self.data_path(entry.shard_id),
                    tensor: display_key(name),
                    expected,
                    actual,
                })
            }
        };
        let swap = self.header.endianness != Endianness::NATIVE;
        let (data, swapped) = match entry.dtype {
            DType::String => {
                if entry.size < n {
                    return Err(bad_size(format!(
                        "invalid size in bundle entry: stored {}, expected at least {n}",
                        entry.size
                    )));
                }
                let bytes = self.stored_bytes(name, entry)?;
                let decoded = string_tensor::decode(bytes, n, self.header.endianness, verify)
                    .map_err(|e| self.locate(e, name, entry))?;
                if let Some(actual) = decoded.crc32c {
                    check_crc(actual)?;
                }
                let strings = decoded.elements.into_iter().map(Cow::Borrowed).collect();
                (TensorData::Strings(strings), false)
            }
            dtype => {
                let (Some(size), Some(unit)) = (dtype.element_size(), dtype.swap_unit()) else {
                    return Err(Error::UnsupportedDType {
                        tensor: display_key(name),
                        dtype: DTypeDisplay(dtype.as_i32()),
                        context: "for reading (its layout is TensorFlow-internal)",
                    });
                };
                let expected = n.checked_mul(size as u64);
                if expected != Some(entry.size) {
                    return Err(bad_size(format!(
                        "invalid size in bundle entry: stored {}, expected {} ({n} elements of {size} bytes)",
                        entry.size,
                        expected.map_or("more than 2^64".to_owned(), |e| e.to_string())
                    )));
                }
                let bytes = self.stored_bytes(name, entry)?;
                if verify {
                    check_crc(crc::crc32c(bytes))?;
                }
                if swap && unit > 1 {
                    let mut owned = bytes.to_vec();
                    swap_bytes(&mut owned, unit);
                    (TensorData::Bytes(Cow::Owned(owned)), true)
                } else {
                    (TensorData::Bytes(Cow::Borrowed(bytes)), false)
                }
            }
        };
        Ok(TensorView {
            name: display_key(name),
            dtype: entry.dtype,
            shape: entry.shape.clone(),
            data,
            file_offset: Some(entry.offset),
            swapped,
        })
    }

    /// Fills in the location of an error from a parser that works on the
    /// tensor's bytes alone.
    fn locate(&self, error: Error, name: &[u8], entry: &TensorEntry) -> Error {
        match error {
            Error::CorruptTensor { offset, what, .. } => Error::CorruptTensor {
                path: self.data_path(entry.shard_id),
                tensor: display_key(name),
                offset: entry.offset.saturating_add(offset),
                what,
            },
            other => other,
        }
    }

    /// Reads `request` of the tensor whose full entry is `full_entry`,
    /// copying the intersections of the stored slices (TensorFlow's
    /// `GetSliceValue`).
    fn assemble(
        &self,
        name: &[u8],
        full_entry: &TensorEntry,
        request: &TensorSlice,
    ) -> Result<TensorView<'_>> {
        let full_shape = &full_entry.shape;
        let slices_error = |what: String| Error::Slices {
            path: self.index_path.clone(),
            tensor: display_key(name),
            what,
        };
        let out_shape = request
            .slice_shape(full_shape)
            .map_err(|e| Error::InvalidArgument {
                tensor: display_key(name),
                what: e.to_string(),
            })?;

        // The stored pieces: the tensor itself, or its slices.
        let mut pieces: Vec<(TensorSlice, Cow<'_, [u8]>, TensorEntry)> = Vec::new();
        if full_entry.slices.is_empty() {
            pieces.push((
                TensorSlice::full(full_shape.len()),
                Cow::Borrowed(name),
                full_entry.clone(),
            ));
        } else {
            for slice in &full_entry.slices {
                let key = encode_tensor_name_slice(name, slice);
                let entry = match self.entry(&key) {
                    Ok(entry) => entry,
                    Err(Error::NotFound { .. }) => {
                        return Err(slices_error(format!(
                            "slice {slice} is listed but has no entry"
                        )));
                    }
                    Err(e) => return Err(e),
                };
                let expected_shape = slice.slice_shape(full_shape)?;
                if entry.dtype != full_entry.dtype
                    || entry.shape != expected_shape
                    || entry.is_partitioned()
                {
                    return Err(slices_error(format!(
                        "the entry of slice {slice} has {} {} (expected {} {})",
                        entry.dtype,
                        crate::shape_string(&entry.shape),
                        full_entry.dtype,
                        crate::shape_string(&expected_shape)
                    )));
                }
                pieces.push((slice.clone(), Cow::Owned(key), entry));
            }
        }

        // Stored exactly as requested: no copy.
        let whole_request = request.covers(full_shape);
        for (slice, key, entry) in &pieces {
            if slice == request || (whole_request && slice.covers(full_shape)) {
                let mut view = self.read_stored(key, entry, self.options.verify_checksums)?;
                view.name = display_key(name);
                view.shape = out_shape;
                return Ok(view);
            }
        }

        let request_bounds = request.bounds(full_shape);
        let volume = check_volume(&out_shape);
        let mut used = Vec::new();
        let mut covered: u64 = 0;
        for (slice, key, entry) in &pieces {
            let bounds = slice.bounds(full_shape);
            let Some(inter) = intersect(&bounds, &request_bounds) else {
                continue;
            };
            covered = covered.saturating_add(check_volume(
                &inter.iter().map(|&(_, len)| len).collect::<Vec<_>>(),
            ));
            used.push((key, entry, bounds, inter));
        }
        if covered < volume {
            return Err(slices_error(format!(
                "does not have sufficient slices to restore slice {request}"
            )));
        }
        if covered > volume {
            return Err(slices_error("stored slices overlap".to_owned()));
        }
        // Two slices never share data bytes in a well-formed bundle; refusing
        // it bounds the output by the data files' size.
        let mut regions: Vec<(u32, u64, u64)> = used
            .iter()
            .filter(|(_, e, _, _)| e.size > 0)
            .map(|(_, e, _, _)| (e.shard_id, e.offset, e.size))
            .collect();
        regions.sort_unstable();
        for pair in regions.windows(2) {
            let ((shard_a, off_a, size_a), (shard_b, off_b, _)) = (pair[0], pair[1]);
            if shard_a == shard_b && off_a.saturating_add(size_a) > off_b {
                return Err(slices_error("two slices share data bytes".to_owned()));
            }
        }
        // Read (and check) every piece before allocating the output.
        let mut views = Vec::with_capacity(used.len());
        for (key, entry, bounds, inter) in &used {
            views.push((
                self.read_stored(key, entry, self.options.verify_checksums)?,
                bounds,
                inter,
            ));
        }
        let volume = usize::try_from(volume)
            .map_err(|_| slices_error("the requested slice does not fit in memory".to_owned()))?;
        let mut written = vec![0u64; volume.div_ceil(64)];
        let mut mark = |dst: usize, run: usize| -> Result<()> {
            for i in dst..dst + run {
                let (word, bit) = (i / 64, 1u64 << (i % 64));
                if written[word] & bit != 0 {
                    return Err(slices_error("stored slices overlap".to_owned()));
                }
                written[word] |= bit;
            }
            Ok(())
        };
        let data = match full_entry.dtype {
            DType::String => {
                let mut out: Vec<Cow<'_, [u8]>> = vec![Cow::Borrowed(&[][..]); volume];
                for (view, bounds, inter) in views {
                    let TensorData::Strings(strings) = view.data else {
                        continue;
                    };
                    for_each_run(bounds, &request_bounds, inter, |src, dst, run| {
                        mark(dst, run)?;
                        out[dst..dst + run].clone_from_slice(&strings[src..src + run]);
                        Ok(())
                    })?;
                }
                TensorData::Strings(out)
            }
            dtype => {
                let size = dtype.element_size().unwrap_or(1);
                let mut out = vec![0u8; volume * size];
                for (view, bounds, inter) in views {
                    let Some(bytes) = view.bytes() else {
                        continue;
                    };
                    for_each_run(bounds, &request_bounds, inter, |src, dst, run| {
                        mark(dst, run)?;
                        out[dst * size..(dst + run) * size]
                            .copy_from_slice(&bytes[src * size..(src + run) * size]);
                        Ok(())
                    })?;
                }
                TensorData::Bytes(Cow::Owned(out))
            }
        };
        Ok(TensorView {
            name: display_key(name),
            dtype: full_entry.dtype,
            shape: out_shape,
            data,
            file_offset: None,
            swapped: false,
        })
    }
}

/// Number of elements of a shape known to be valid.
fn check_volume(shape: &[i64]) -> u64 {
    shape.iter().map(|&d| d as u64).product()
}

/// Per-dimension intersection of two boxes, `None` when it is empty.
fn intersect(a: &[(i64, i64)], b: &[(i64, i64)]) -> Option<Vec<(i64, i64)>> {
    a.iter()
        .zip(b)
        .map(|(&(sa, la), &(sb, lb))| {
            let start = sa.max(sb);
            let end = (sa + la).min(sb + lb);
            (end > start).then_some((start, end - start))
        })
        .collect()
}

/// Row-major strides (in elements) of a box.
fn strides(bounds: &[(i64, i64)]) -> Vec<usize> {
    let mut strides = vec![1usize; bounds.len()];
    for d in (0..bounds.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * bounds[d + 1].1 as usize;
    }
    strides
}

/// Calls `f(src_index, dst_index, run)` for each contiguous run (along the
/// last dimension) of the box `inter`, with element indices into row-major
/// buffers holding the boxes `src` and `dst`.
fn for_each_run(
    src: &[(i64, i64)],
    dst: &[(i64, i64)],
    inter: &[(i64, i64)],
    mut f: impl FnMut(usize, usize, usize) -> Result<()>,
) -> Result<()> {
    let rank = inter.len();
    if rank == 0 {
        return f(0, 0, 1);
    }
    let (src_strides, dst_strides) = (strides(src), strides(dst));
    let run = inter[rank - 1].1 as usize;
    let mut index = vec![0i64; rank];
    loop {
        let (mut s, mut d) = (0usize, 0usize);
        for dim in 0..rank {
            let at = inter[dim].0 + index[dim];
            s += (at - src[dim].0) as usize * src_strides[dim];
            d += (at - dst[dim].0) as usize * dst_strides[dim];
        }
        f(s, d, run)?;
        // Advance the odometer over all but the last dimension.
        let mut dim = rank - 1;
        loop {
            if dim == 0 {
                return Ok(());
            }
            dim -= 1;
            index[dim] += 1;
            if index[dim] < inter[dim].1 {
                break;
            }
            index[dim] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_the_intersection() {
        // 4x5 tensor; src holds rows 1..3, all columns; request rows 0..4, cols 1..3.
        let src = [(1, 2), (0, 5)];
        let dst = [(0, 4), (1, 2)];
        let inter = intersect(&src, &dst).unwrap();
        assert_eq!(inter, [(1, 2), (1, 2)]);
        let mut runs = Vec::new();
        for_each_run(&src, &dst, &inter, |s, d, r| {
            runs.push((s, d, r));
            Ok(())
        })
        .unwrap();
        assert_eq!(runs, [(1, 2, 2), (6, 4, 2)]);
        assert_eq!(intersect(&[(0, 2)], &[(2, 2)]), None);
    }
}
