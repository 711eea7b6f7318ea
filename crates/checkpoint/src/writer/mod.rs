//! Writing bundles: [`BundleWriter`] (one data file, or several that an
//! `add_batch` fills at once), [`ShardedBundleWriter`] (one writer per
//! shard, filled from as many threads, then merged) and [`merge_bundles`].

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use savedmodel_staged::{commit_all, parent_dir};

use crate::crc;
use crate::dtype::DType;
use crate::entry::{BundleHeader, Endianness, EntryEncoder, TensorEntry, check_shape};
use crate::entry_run::EntryRun;
use crate::error::{DTypeDisplay, Error, Result, display_key, invalid, io_error};
use crate::ordered_code::encode_tensor_name_slice;
use crate::slice::TensorSlice;
use crate::staged::{PARALLEL_MIN_BYTES, StagedFile};
use crate::string_tensor;
use crate::table::{TableBuilder, TableOptions};
use crate::tensor::{Element, swap_bytes};
use crate::{data_file_name, index_file_name};

mod batch;
mod merge;
mod sharded;
mod sink;

pub use batch::TensorBytes;
use batch::{Placement, least_filled, write_files_at_once};
pub use merge::{merge_bundles, merge_bundles_with};
pub use sharded::ShardedBundleWriter;
pub use sink::TensorSink;

/// Default size of the data file's write buffer, and of the chunks
/// [`BundleWriter::add_from_reader`] reads: what the writer holds in memory
/// beyond the index entries.
pub const DEFAULT_BUFFER_SIZE: usize = 1 << 20;

/// Options for [`BundleWriter::create_with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WriterOptions {
    /// Byte order of the data written. The bytes given to the `add` methods
    /// are in this machine's order; with [`Endianness::Big`] on a
    /// little-endian machine they are byte-swapped as written, and the header
    /// says `BIG`. Default: this machine's order (what TensorFlow writes).
    pub endianness: Endianness,
    /// Pad each tensor with zero bytes so the next one starts at a multiple
    /// of this (TensorFlow's `BundleWriter::Options::data_alignment`).
    /// Default 1: no padding, byte-identical to `SaveV2`. 8 or 64 make every
    /// tensor borrowable as a typed slice when read back.
    pub data_alignment: u64,
    /// Fsync the files and their directory before and after renaming them
    /// into place (default true; TensorFlow itself does not fsync).
    pub fsync: bool,
    /// Capacity of the data file's write buffer (shared out between the
    /// data files when there are several, at least 64 KiB each) and of
    /// streaming reads.
    pub buffer_size: usize,
    /// Most threads used to write one data file. A tensor of 8 MiB or more,
    /// and an [`BundleWriter::add_batch`] of 8 MiB or more, are written by
    /// the calling thread while up to `threads - 1` others compute the CRCs
    /// of their share of it (at most one per 4 MiB) and one more builds the
    /// batch's index entries. 1 does everything on the calling thread. The
    /// file's bytes are the same either way. Default: the number of CPUs, at
    /// most 4.
    pub threads: usize,
    /// Number of data files (`<prefix>.data-00000-of-0000N`, ...; 1 to
    /// [`MAX_DATA_FILES`]); the index's entries say which file holds each
    /// tensor (whole). A tensor given to `add` or another one-tensor method
    /// goes into the file with the fewest bytes so far (the first of them
    /// on a tie); an [`BundleWriter::add_batch`] is cut into consecutive
    /// runs, one per file in order, that bring each file up to an even
    /// share of the data, and the files are written at once, a thread each
    /// (up to [`threads`](Self::threads)). That is the point of several
    /// files: Linux serialises the copy into the page cache per file, and
    /// with many small tensors that copy is most of the time. The same
    /// calls give the same bytes, whatever the number of threads.
    /// TensorFlow reads such bundles as it reads the ones its sharded
    /// savers merge. Default 1: the files `SaveV2` writes, byte for byte.
    pub data_files: usize,
}

/// Most data files a [`BundleWriter`] writes: each is an open file, with a
/// write buffer of its own, until [`BundleWriter::finish`], and processes
/// commonly may open 1,024 files in all.
pub const MAX_DATA_FILES: usize = 256;

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            endianness: Endianness::NATIVE,
            data_alignment: 1,
            fsync: true,
            buffer_size: DEFAULT_BUFFER_SIZE,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            data_files: 1,
        }
    }
}

impl WriterOptions {
    /// Sets [`endianness`](Self::endianness).
    pub fn with_endianness(mut self, endianness: Endianness) -> Self {
        self.endianness = endianness;
        self
    }

    /// Sets [`data_alignment`](Self::data_alignment).
    pub fn with_data_alignment(mut self, data_alignment: u64) -> Self {
        self.data_alignment = data_alignment;
        self
    }

    /// Sets [`fsync`](Self::fsync).
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// Sets [`threads`](Self::threads) (0 counts as 1).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Sets [`data_files`](Self::data_files) (0 counts as 1).
    pub fn with_data_files(mut self, data_files: usize) -> Self {
        self.data_files = data_files.max(1);
        self
    }

    /// Sets [`buffer_size`](Self::buffer_size).
    pub fn with_buffer_size(mut self, buffer_size: usize) -> Self {
        self.buffer_size = buffer_size;
        self
    }
}

/// Writes one bundle: `<prefix>.index` and `<prefix>.data-00000-of-00001`
/// (or several data files: [`WriterOptions::data_files`]).
///
/// Data is appended to `<prefix>.data-00000-of-00001.tempstate<random>` as
/// tensors are added, in the order they are added; the index is built in
/// memory and written at [`finish`](Self::finish), sorted by key. `finish`
/// then fsyncs the files, renames them into place (data first, index last,
/// the directory fsynced in between and after: see
/// [`savedmodel_staged::commit_all`], which also removes an existing index
/// at `prefix` first when the new data files replace its data files).
/// Directories it creates for `prefix` are fsynced into their parents. On any error, and when the writer is dropped
/// without `finish`, the temporary files are removed: no file appears under
/// the final names. After a failed `add`, the writer refuses further work.
///
/// Whatever is at the final names is replaced by the renames: a symbolic
/// link there is replaced itself, never written through (the file it
/// points to is left as it was), and a directory there makes `finish` fail
/// without leaving a new file behind.
///
/// For the same tensors added in the same order, the files are
/// byte-identical to TensorFlow 2.21's `SaveV2`.
#[derive(Debug)]
pub struct BundleWriter {
    prefix: PathBuf,
    options: WriterOptions,
    /// The data files, in shard order.
    data: Vec<StagedFile>,
    /// Bytes written to each data file so far.
    offsets: Vec<u64>,
    /// The data file the tensor being written goes to.
    current: usize,
    entries: BTreeMap<Vec<u8>, TensorEntry>,
    /// The entries of large `add_batch`es, each run in name order, sizes
    /// decreasing at least twofold (see [`add_run`](Self::add_run)); no
    /// name is in two places.
    runs: Vec<EntryRun>,
    /// Why the writer cannot go on, after a failed write.
    poisoned: Option<String>,
    scratch: Vec<u8>,
    #[cfg(test)]
    index_fault: Option<crate::staged::Fault>,
}

impl std::fmt::Debug for StagedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedFile")
            .field("temp_path", &self.temp_path())
            .finish_non_exhaustive()
    }
}

impl BundleWriter {
    /// Starts a bundle at `prefix` with default options, creating the parent
    /// directory if needed.
    pub fn create(prefix: impl AsRef<Path>) -> Result<Self> {
        Self::create_with(prefix, WriterOptions::default())
    }

    /// Starts a bundle at `prefix` with `options`.
    pub fn create_with(prefix: impl AsRef<Path>, options: WriterOptions) -> Result<Self> {
        let prefix = prefix.as_ref().to_path_buf();
        if options.data_alignment == 0 {
            return Err(invalid(b"", "data_alignment must be at least 1"));
        }
        if !(1..=MAX_DATA_FILES).contains(&options.data_files) {
            return Err(invalid(
                b"",
                format!(
                    "data_files must be 1 to {MAX_DATA_FILES}, not {}",
                    options.data_files
                ),
            ));
        }
        savedmodel_staged::create_dir_all(parent_dir(&prefix), options.fsync)?;
        let count = options.data_files as u32;
        let buffer = match options.data_files {
            1 => options.buffer_size.max(4096),
            n => (options.buffer_size / n).max(64 << 10),
        };
        let data = (0..count)
            .map(|i| StagedFile::create(data_file_name(&prefix, i, count), buffer))
            .collect::<Result<Vec<_>>>()?;
        Ok(BundleWriter {
            prefix,
            options,
            offsets: vec![0; data.len()],
            data,
            current: 0,
            entries: BTreeMap::new(),
            runs: Vec::new(),
            poisoned: None,
            scratch: Vec::new(),
            #[cfg(test)]
            index_fault: None,
        })
    }

    /// The bundle's prefix.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Number of index entries so far (tensors, slices and the full entries
    /// of partitioned tensors).
    pub fn num_entries(&self) -> usize {
        self.entries.len() + self.runs.iter().map(EntryRun::len).sum::<usize>()
    }

    /// Bytes written to the data files so far.
    pub fn data_size(&self) -> u64 {
        self.offsets.iter().sum()
    }

    /// Adds a tensor of a fixed-size type from its elements' bytes, in
    /// row-major order and this machine's byte order (`shape` empty for a
    /// scalar). `data.len()` must be the number of elements times the
    /// element size.
    pub fn add(
        &mut self,
        name: impl AsRef<[u8]>,
        dtype: DType,
        shape: &[i64],
        data: &[u8],
    ) -> Result<()> {
        let key = name.as_ref();
        self.check_new_key(key)?;
        self.add_unchecked(key, dtype, shape, data)
    }

    /// Adds a tensor from a typed slice; the data type is `T::DTYPE`
    /// (`f32` is `DT_FLOAT`, `half::bf16` is `DT_BFLOAT16`, `u8` is
    /// `DT_UINT8`: use [`add`](Self::add) for bool, quantized and other
    /// one-byte types).
    pub fn add_typed<T: Element>(
        &mut self,
        name: impl AsRef<[u8]>,
        shape: &[i64],
        data: &[T],
    ) -> Result<()> {
        self.add(name, T::DTYPE, shape, bytemuck::cast_slice(data))
    }

    /// Adds several tensors of fixed-size types, as if each were given to
    /// [`add`](Self::add) in turn (same files, byte for byte), but written by
    /// up to [`WriterOptions::threads`] threads at once: with many small
    /// tensors, where one `add` at a time leaves a single CPU to checksum
    /// and copy everything, this is the fast way. Every tensor is checked
    /// before anything is written: on an error (a duplicate or empty name, a
    /// size that does not match, a string tensor) none of them is added.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use savedmodel_checkpoint::{BundleReader, BundleWriter, DType, TensorBytes};
    /// let weights: Vec<f32> = (0..6).map(|i| i as f32).collect();
    /// let mut writer = BundleWriter::create(dir.path().join("ckpt"))?;
    /// writer.add_batch(&[
    ///     TensorBytes::new("w", DType::Float, &[2, 3], bytemuck::cast_slice(&weights)),
    ///     TensorBytes::new("step", DType::Int64, &[], &7i64.to_le_bytes()),
    /// ])?;
    /// writer.finish()?;
    /// let reader = BundleReader::open(dir.path().join("ckpt"))?;
    /// assert_eq!(reader.tensor("w")?.to_slice::<f32>()?.as_ref(), weights.as_slice());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_batch(&mut self, tensors: &[TensorBytes<'_>]) -> Result<()> {
        self.check_usable(b"")?;
        let mut total: u64 = 0;
        let writer_is_empty = self.num_entries() == 0;
        for tensor in tensors {
            if writer_is_empty {
                // Only the batch itself can hold a duplicate (checked below).
                if tensor.name.is_empty() {
                    return Err(invalid(b"", "the empty name is reserved for the header"));
                }
            } else {
                self.check_new_key(tensor.name)?;
            }
            check_size(tensor.name, tensor.dtype, tensor.shape, tensor.data)?;
            total = total.saturating_add(tensor.data.len() as u64);
        }
        // The batch in name order (free when it is sorted already, as
        // TensorFlow's savers and `convert` give it): finds duplicates, and
        // is the order the index entries are built in.
        let mut by_name: Vec<usize> = (0..tensors.len()).collect();
        if !tensors.is_sorted_by(|a, b| a.name <= b.name) {
            by_name.sort_by_key(|&i| tensors[i].name);
        }
        if let Some(pair) = by_name
            .windows(2)
            .find(|pair| tensors[pair[0]].name == tensors[pair[1]].name)
        {
            return Err(invalid(tensors[pair[0]].name, "adding duplicate key"));
        }
        // Lay the tensors out (each followed by its padding, as `add` would
        // pad it), then write the whole run from several threads. With
        // several data files, the batch is cut into consecutive runs, one
        // per file in order, each filling its file up to an even share of
        // all the data (files already past it get nothing): each thread then
        // reads its own stretch of memory.
        let alignment = self.options.data_alignment;
        let zeros = vec![0u8; usize::try_from(alignment - 1).unwrap_or(0)];
        let files = self.data.len();
        let mut segments: Vec<Vec<&[u8]>> = (0..files)
            .map(|_| Vec::with_capacity(tensors.len() * 2 / files))
            .collect();
        let mut placed: Vec<Placement> = Vec::with_capacity(tensors.len());
        let mut offsets = self.offsets.clone();
        let even_share = (offsets.iter().sum::<u64>())
            .saturating_add(total)
            .div_ceil(files as u64);
        let mut file = 0;
        for tensor in tensors {
            while file + 1 < files && offsets[file] >= even_share {
                file += 1;
            }
            let (file_segments, offset) = (&mut segments[file], &mut offsets[file]);
            placed.push(Placement {
                file,
                segment: file_segments.len(),
                offset: *offset,
            });
            file_segments.push(tensor.data);
            *offset += tensor.data.len() as u64;
            let over = *offset % alignment;
            if over != 0 {
                let padding = &zeros[..(alignment - over) as usize];
                file_segments.push(padding);
                *offset += padding.len() as u64;
            }
        }
        let parallel = self.options.threads > 1
            && self.options.endianness == Endianness::NATIVE
            && total >= PARALLEL_MIN_BYTES as u64;
        if !parallel {
            for (tensor, place) in tensors.iter().zip(&placed) {
                self.current = place.file;
                self.add_to_current(tensor.name, tensor.dtype, tensor.shape, tensor.data)?;
            }
            return Ok(());
        }
        // The index entries are made while the data is written, on another
        // thread, as a run in name order.
        let make_entries = || {
            let name_bytes = tensors.iter().map(|t| t.name.len()).sum();
            let mut run = EntryRun::with_capacity(tensors.len(), name_bytes);
            for &i in &by_name {
                let (tensor, place) = (&tensors[i], &placed[i]);
                let size = tensor.data.len() as u64;
                let shard_id = place.file as u32;
                run.push(
                    tensor.name,
                    tensor.dtype,
                    tensor.shape,
                    shard_id,
                    place.offset,
                    size,
                );
            }
            run
        };
        let (threads, chunk) = (self.options.threads, self.chunk_size());
        // One file with data (one file, or one tensor larger than the
        // others' shares): its own threads share the work, as for `add`.
        let mut with_data = (0..files).filter(|&f| offsets[f] > self.offsets[f]);
        let written = match (with_data.next(), with_data.next()) {
            (Some(only), None) => {
                let written =
                    self.data[only].write_segments(&segments[only], threads, chunk, make_entries);
                written.map(|(crcs, entries)| {
                    // The other files' segments are all empty tensors.
                    let mut all: Vec<Vec<u32>> =
                        segments.iter().map(|s| vec![0; s.len()]).collect();
                    all[only] = crcs;
                    (all, entries)
                })
            }
            _ => write_files_at_once(&mut self.data, &segments, threads, chunk, make_entries),
        };
        let (crcs, mut run) = match written {
            Ok(done) => done,
            Err(e) => {
                self.poisoned = Some(e.to_string());
                return Err(e);
            }
        };
        self.offsets = offsets;
        // The run's entries are in `by_name` order.
        for (entry, &i) in run.entries_mut().iter_mut().zip(&by_name) {
            let place = &placed[i];
            entry.set_crc32c(crc::mask(crcs[place.file][place.segment]));
        }
        self.add_run(run);
        Ok(())
    }

    /// Adds a `DT_STRING` tensor (any bytes per element).
    pub fn add_strings<S: AsRef<[u8]>>(
        &mut self,
        name: impl AsRef<[u8]>,
        shape: &[i64],
        elements: &[S],
    ) -> Result<()> {
        let key = name.as_ref();
        self.check_new_key(key)?;
        self.add_strings_unchecked(key, shape, elements)
    }

    /// Adds a tensor whose bytes (as for [`add`](Self::add)) are read from
    /// `reader`, [`WriterOptions::buffer_size`] at a time: memory stays
    /// bounded whatever the tensor's size. Reads exactly the tensor's size;
    /// a reader that ends early is an error.
    pub fn add_from_reader(
        &mut self,
        name: impl AsRef<[u8]>,
        dtype: DType,
        shape: &[i64],
        mut reader: impl Read,
    ) -> Result<()> {
        let key = name.as_ref().to_vec();
        let mut sink = self.begin_tensor(&key, dtype, shape)?;
        // No larger than the tensor: a buffer per call, zeroed, costs more
        // than writing a small tensor.
        let size = usize::try_from(sink.expected).unwrap_or(usize::MAX);
        let mut buf = vec![0u8; sink.writer.chunk_size().min(size)];
        loop {
            let want = sink.remaining().min(buf.len() as u64) as usize;
            if want == 0 {
                break;
            }
            let n = match reader.read(&mut buf[..want]) {
                Ok(0) => {
                    let what = format!(
                        "the reader ended after {} of {} bytes",
                        sink.written, sink.expected
                    );
                    return Err(sink.fail(what));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let what = format!("reading the tensor's bytes failed: {e}");
                    return Err(sink.fail(what));
                }
            };
            sink.write_chunk(&buf[..n])?;
        }
        sink.finish()
    }

    /// Starts a tensor whose bytes (as for [`add`](Self::add)) are then
    /// given in chunks of any size through the returned [`TensorSink`]
    /// (which is also an [`io::Write`]). The tensor is recorded by
    /// [`TensorSink::finish`]; dropping the sink unfinished makes the writer
    /// fail.
    pub fn begin_tensor(
        &mut self,
        name: impl AsRef<[u8]>,
        dtype: DType,
        shape: &[i64],
    ) -> Result<TensorSink<'_>> {
        let key = name.as_ref();
        self.check_new_key(key)?;
        let (expected, unit) = fixed_size(key, dtype, shape)?;
        let swap_unit = if self.options.endianness != Endianness::NATIVE {
            unit
        } else {
            1
        };
        Ok(TensorSink {
            start: self.pick_data_file(),
            writer: self,
            key: key.to_vec(),
            dtype,
            shape: shape.to_vec(),
            expected,
            written: 0,
            crc: 0,
            swap_unit,
            carry: Vec::new(),
            done: false,
        })
    }

    /// Adds one slice of a partitioned tensor, as TensorFlow's
    /// `BundleWriter::AddSlice`: a slice covering the whole tensor is stored
    /// as an ordinary tensor; otherwise its data goes under the slice key and
    /// the tensor's full entry (data type, full shape) lists it. `data` holds
    /// the slice's elements as for [`add`](Self::add).
    pub fn add_slice(
        &mut self,
        name: impl AsRef<[u8]>,
        full_shape: &[i64],
        slice: &TensorSlice,
        dtype: DType,
        data: &[u8],
    ) -> Result<()> {
        self.add_slice_with(name.as_ref(), full_shape, slice, dtype, |w, key, shape| {
            w.add_unchecked(key, dtype, shape, data)
        })
    }

    /// [`add_slice`](Self::add_slice) for a `DT_STRING` tensor.
    pub fn add_string_slice<S: AsRef<[u8]>>(
        &mut self,
        name: impl AsRef<[u8]>,
        full_shape: &[i64],
        slice: &TensorSlice,
        elements: &[S],
    ) -> Result<()> {
        self.add_slice_with(
            name.as_ref(),
            full_shape,
            slice,
            DType::String,
            |w, key, shape| w.add_strings_unchecked(key, shape, elements),
        )
    }

    /// Writes the index and moves both files into place (see the type's
    /// documentation).
    pub fn finish(mut self) -> Result<()> {
        self.check_usable(b"")?;
        let mut files = std::mem::take(&mut self.data)
            .into_iter()
            .map(StagedFile::close)
            .collect::<Result<Vec<_>>>()?;
        let header = BundleHeader::new(files.len() as u32, self.options.endianness);
        let mut encoder = EntryEncoder::default();
        let index = write_index(
            index_file_name(&self.prefix),
            &header.encode(),
            self.entries_in_order(),
            |entry, out| match *entry {
                EntryRef::Map(entry) => encoder.encode_into(entry, out),
                EntryRef::Run(run, i) => run.encode_into(i, &mut encoder, out),
            },
            #[cfg(test)]
            self.index_fault,
        )?;
        files.push(index.close()?);
        // Data files first, the index (which makes the bundle) last.
        Ok(commit_all(files, self.options.fsync)?)
    }

    #[cfg(test)]
    pub(crate) fn inject_faults(
        &mut self,
        data: Option<crate::staged::Fault>,
        index: Option<crate::staged::Fault>,
    ) {
        for file in &mut self.data {
            file.fault = data;
        }
        self.index_fault = index;
    }

    fn check_usable(&self, key: &[u8]) -> Result<()> {
        match &self.poisoned {
            Some(reason) => Err(invalid(
                key,
                format!("the bundle writer failed earlier and cannot go on: {reason}"),
            )),
            None => Ok(()),
        }
    }

    fn check_new_key(&self, key: &[u8]) -> Result<()> {
        self.check_usable(key)?;
        if key.is_empty() {
            return Err(invalid(key, "the empty name is reserved for the header"));
        }
        if self.entries.contains_key(key) || self.runs.iter().any(|run| run.contains(key)) {
            return Err(invalid(key, "adding duplicate key"));
        }
        Ok(())
    }

    fn add_unchecked(
        &mut self,
        key: &[u8],
        dtype: DType,
        shape: &[i64],
        data: &[u8],
    ) -> Result<()> {
        self.pick_data_file();
        self.add_to_current(key, dtype, shape, data)
    }

    /// Adds a tensor to the current data file.
    fn add_to_current(
        &mut self,
        key: &[u8],
        dtype: DType,
        shape: &[i64],
        data: &[u8],
    ) -> Result<()> {
        let unit = check_size(key, dtype, shape, data)?;
        let start = self.offsets[self.current];
        let mut crc = 0;
        let swap_unit = if self.options.endianness != Endianness::NATIVE {
            unit
        } else {
            1
        };
        self.emit(data, swap_unit, Some(&mut crc))?;
        self.record(key, dtype, shape, start, crc)
    }

    fn add_strings_unchecked<S: AsRef<[u8]>>(
        &mut self,
        key: &[u8],
        shape: &[i64],
        elements: &[S],
    ) -> Result<()> {
        let n = check_shape(shape).map_err(|what| invalid(key, what))?;
        if n != elements.len() as u64 {
            return Err(invalid(
                key,
                format!(
                    "{} strings given for shape {}, which holds {n}",
                    elements.len(),
                    crate::shape_string(shape)
                ),
            ));
        }
        let lengths: Vec<u64> = elements.iter().map(|e| e.as_ref().len() as u64).collect();
        let (prefix, mut crc) = string_tensor::encode_prefix(&lengths, self.options.endianness);
        let start = self.pick_data_file();
        self.emit(&prefix, 1, None)?;
        for element in elements {
            self.emit(element.as_ref(), 1, Some(&mut crc))?;
        }
        self.record(key, DType::String, shape, start, crc)
    }

    fn add_slice_with(
        &mut self,
        key: &[u8],
        full_shape: &[i64],
        slice: &TensorSlice,
        dtype: DType,
        write: impl FnOnce(&mut Self, &[u8], &[i64]) -> Result<()>,
    ) -> Result<()> {
        self.check_usable(key)?;
        if key.is_empty() {
            return Err(invalid(key, "the empty name is reserved for the header"));
        }
        check_shape(full_shape).map_err(|what| invalid(key, what))?;
        let slice_shape = slice
            .slice_shape(full_shape)
            .map_err(|e| invalid(key, e.to_string()))?;
        if slice.covers(full_shape) {
            self.check_new_key(key)?;
            return write(self, key, full_shape);
        }
        if self.runs.iter().any(|run| run.contains(key)) {
            return Err(invalid(
                key,
                "a whole tensor is already stored under this name",
            ));
        }
        if let Some(full) = self.entries.get(key) {
            if !full.is_partitioned() {
                return Err(invalid(
                    key,
                    "a whole tensor is already stored under this name",
                ));
            }
            if full.dtype != dtype || full.shape != full_shape {
                return Err(invalid(
                    key,
                    format!(
                        "slice of {} {} added to a partitioned tensor of {} {}",
                        dtype,
                        crate::shape_string(full_shape),
                        full.dtype,
                        crate::shape_string(&full.shape)
                    ),
                ));
            }
            let bounds = slice.bounds(full_shape);
            for other in &full.slices {
                let overlaps = other
                    .bounds(full_shape)
                    .iter()
                    .zip(&bounds)
                    .all(|(&(s1, l1), &(s2, l2))| s1.max(s2) < (s1 + l1).min(s2 + l2));
                if overlaps {
                    return Err(invalid(
                        key,
                        format!("slice {slice} overlaps the stored slice {other}"),
                    ));
                }
            }
        }
        let slice_key = encode_tensor_name_slice(key, slice);
        self.check_new_key(&slice_key)?;
        write(self, &slice_key, &slice_shape)?;
        let full = self
            .entries
            .entry(key.to_vec())
            .or_insert_with(|| TensorEntry {
                dtype,
                shape: full_shape.to_vec(),
                shard_id: 0,
                offset: 0,
                size: 0,
                crc32c: 0,
                slices: Vec::new(),
            });
        full.slices.push(slice.clone());
        Ok(())
    }

    /// Appends bytes to the data file, byte-swapping groups of `swap_unit`
    /// bytes (a multiple of which `bytes` holds) and extending `crc` over the
    /// bytes as written.
    fn emit(&mut self, bytes: &[u8], swap_unit: usize, crc: Option<&mut u32>) -> Result<()> {
        let result = if swap_unit > 1 {
            let chunk_len = (self.options.buffer_size.max(4096) / 16) * 16;
            let mut crc = crc;
            let mut result = Ok(());
            for chunk in bytes.chunks(chunk_len) {
                self.scratch.clear();
                self.scratch.extend_from_slice(chunk);
                swap_bytes(&mut self.scratch, swap_unit);
                if let Some(crc) = crc.as_deref_mut() {
                    *crc = crc::extend(*crc, &self.scratch);
                }
                result = self.data[self.current].write_all_bytes(&self.scratch);
                if result.is_err() {
                    break;
                }
            }
            result
        } else if bytes.len() >= PARALLEL_MIN_BYTES && self.options.threads > 1 {
            let (threads, chunk) = (self.options.threads, self.chunk_size());
            let written = self.data[self.current].write_segments(&[bytes], threads, chunk, || ());
            written.map(|(crcs, ())| {
                if let (Some(crc), Some(&part)) = (crc, crcs.first()) {
                    *crc = crc::combine(*crc, part, bytes.len());
                }
            })
        } else {
            // A chunk at a time, each checksummed just before it is written
            // while it is in cache: one pass over memory, not two.
            let mut crc = crc;
            let mut result = Ok(());
            for chunk in bytes.chunks(self.chunk_size()) {
                if let Some(crc) = crc.as_deref_mut() {
                    *crc = crc::extend(*crc, chunk);
                }
                result = self.data[self.current].write_all_bytes(chunk);
                if result.is_err() {
                    break;
                }
            }
            result
        };
        match result {
            Ok(()) => {
                self.offsets[self.current] += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.poisoned = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Keeps a batch's entries: runs are merged while the one before the
    /// newest is at most twice its size, so sizes decrease at least
    /// twofold and a lookup checks at most about log2(entries) runs; each
    /// entry is copied O(log n) times in all.
    fn add_run(&mut self, run: EntryRun) {
        self.runs.push(run);
        while let [.., before, last] = self.runs.as_slice() {
            if before.len() > 2 * last.len() {
                break;
            }
            let (Some(last), Some(before)) = (self.runs.pop(), self.runs.pop()) else {
                break;
            };
            self.runs.push(EntryRun::merge(&before, &last));
        }
    }

    /// Every entry, the map's and the runs', in key order (the index's).
    fn entries_in_order(&self) -> impl Iterator<Item = (&[u8], EntryRef<'_>)> {
        let mut map = self.entries.iter().peekable();
        let mut next_in_run = vec![0usize; self.runs.len()];
        std::iter::from_fn(move || {
            let mut smallest: Option<(&[u8], Option<usize>)> =
                map.peek().map(|(key, _)| (key.as_slice(), None));
            for (r, run) in self.runs.iter().enumerate() {
                if next_in_run[r] < run.len() {
                    let name = run.name(next_in_run[r]);
                    if smallest.is_none_or(|(key, _)| name < key) {
                        smallest = Some((name, Some(r)));
                    }
                }
            }
            match smallest? {
                (_, None) => map
                    .next()
                    .map(|(key, entry)| (key.as_slice(), EntryRef::Map(entry))),
                (name, Some(r)) => {
                    let i = next_in_run[r];
                    next_in_run[r] += 1;
                    Some((name, EntryRef::Run(&self.runs[r], i)))
                }
            }
        })
    }

    /// Makes the data file with the fewest bytes the current one; returns
    /// its size, where the next tensor starts.
    fn pick_data_file(&mut self) -> u64 {
        self.current = least_filled(&self.offsets);
        self.offsets[self.current]
    }

    /// The size of the pieces data is checksummed and written in.
    fn chunk_size(&self) -> usize {
        self.options.buffer_size.max(4096)
    }

    /// Records the entry of the tensor written since `start`, then pads.
    fn record(
        &mut self,
        key: &[u8],
        dtype: DType,
        shape: &[i64],
        start: u64,
        crc: u32,
    ) -> Result<()> {
        self.entries.insert(
            key.to_vec(),
            TensorEntry {
                dtype,
                shape: shape.to_vec(),
                shard_id: self.current as u32,
                offset: start,
                size: self.offsets[self.current] - start,
                crc32c: crc::mask(crc),
                slices: Vec::new(),
            },
        );
        let over = self.offsets[self.current] % self.options.data_alignment;
        if over != 0 {
            let padding = vec![0u8; (self.options.data_alignment - over) as usize];
            self.emit(&padding, 1, None)?;
        }
        Ok(())
    }
}

/// An entry of a [`BundleWriter`]: in its map, or entry `i` of a run.
enum EntryRef<'a> {
    Map(&'a TensorEntry),
    Run(&'a EntryRun, usize),
}

/// Checks a fixed-size tensor's type and shape; returns its byte size and
/// byte-swap unit.
fn fixed_size(key: &[u8], dtype: DType, shape: &[i64]) -> Result<(u64, usize)> {
    let n = check_shape(shape).map_err(|what| invalid(key, what))?;
    let (Some(size), Some(unit)) = (dtype.element_size(), dtype.swap_unit()) else {
        return Err(Error::UnsupportedDType {
            tensor: display_key(key),
            dtype: DTypeDisplay(dtype.as_i32()),
            context: match dtype {
                DType::String => "here (use add_strings)",
                _ => "in checkpoints written by this crate",
            },
        });
    };
    let bytes = n
        .checked_mul(size as u64)
        .ok_or_else(|| invalid(key, "the tensor has more than 2^64 bytes"))?;
    Ok((bytes, unit))
}

/// Checks that `data` is the size of a fixed-size tensor; returns its
/// byte-swap unit.
fn check_size(key: &[u8], dtype: DType, shape: &[i64], data: &[u8]) -> Result<usize> {
    let (expected, unit) = fixed_size(key, dtype, shape)?;
    if data.len() as u64 != expected {
        return Err(invalid(
            key,
            format!(
                "{} bytes given for {} of shape {}, which takes {expected}",
                data.len(),
                dtype,
                crate::shape_string(shape)
            ),
        ));
    }
    Ok(unit)
}

/// Builds an index table in a staged file: the header, then each entry's
/// key and the bytes `encode` appends for it.
fn write_index<'a, E>(
    path: PathBuf,
    header: &[u8],
    entries: impl Iterator<Item = (&'a [u8], E)>,
    mut encode: impl FnMut(&E, &mut Vec<u8>),
    #[cfg(test)] fault: Option<crate::staged::Fault>,
) -> Result<StagedFile> {
    let mut index = StagedFile::create(path, 1 << 16)?;
    #[cfg(test)]
    {
        index.fault = fault;
    }
    let temp = index.temp_path().to_path_buf();
    let fail = |e: io::Error| io_error("writing", &temp, e);
    let mut builder = TableBuilder::new(&mut index, TableOptions::default());
    builder.add(b"", header).map_err(fail)?;
    let mut value = Vec::new();
    for (key, entry) in entries {
        value.clear();
        encode(&entry, &mut value);
        builder.add(key, &value).map_err(fail)?;
    }
    builder.finish().map_err(fail)?;
    Ok(index)
}
