//! The sorted string table (LevelDB's SSTable format, TensorFlow's flavour)
//! that holds a bundle's `.index`.
//!
//! Layout (docs/formats.md, section 2 "The index: a LevelDB-style sorted
//! table"; TensorFlow `xla/tsl/lib/io/{table_builder,
//! block_builder,format}.cc`):
//!
//! ```text
//! [data block][trailer] ... [data block][trailer]
//! [metaindex block][trailer]      always empty in TensorFlow tables
//! [index block][trailer]          one entry per data block
//! [footer: 48 bytes]              two BlockHandles, zero padding, magic
//!
//! block   = entry* restart_offset:u32le* num_restarts:u32le
//! entry   = shared:varint32 non_shared:varint32 value_len:varint32
//!           key[shared..] value
//! trailer = type:u8 (0 none, 1 snappy)  masked_crc32c(block ++ type):u32le
//! handle  = offset:varint64 size:varint64   (size excludes the trailer)
//! ```
//!
//! [`TableBuilder`] writes byte for byte what TensorFlow 2.21's builder
//! writes for the same keys, values and options. [`Table`] reads a table
//! held in any `AsRef<[u8]>` (a memory map, a `Vec`): it decodes the footer
//! and the index block when opened, and data blocks only when a lookup or an
//! iteration reaches them (each block is checked and decoded once, then
//! cached). Every block checksum is verified; every varint, offset and length
//! is checked against the bytes that hold it; a data block's entries are all
//! walked when it is first loaded (decodable, restart points at entries, keys
//! strictly increasing up to the block's index key), so that lookups and
//! iteration always agree.

use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::crc;
use crate::error::{Error, Result};
use crate::varint::{get_varint32, get_varint64, put_varint32, put_varint64};

/// Length of the footer at the end of every table.
pub const FOOTER_LEN: usize = 48;
/// Length of the trailer (type byte and masked CRC) after every block.
pub const BLOCK_TRAILER_LEN: usize = 5;
/// The footer's magic number (stored as two little-endian `u32`s, low half
/// first: bytes `57 fb 80 8b 24 75 47 db`).
pub const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// TensorFlow's data block size: a block is closed once it reaches this size.
pub const DEFAULT_BLOCK_SIZE: usize = 256 * 1024;
/// TensorFlow's restart interval for data blocks (the index block uses 1).
pub const DEFAULT_BLOCK_RESTART_INTERVAL: usize = 16;
/// Default bound on the decompressed size of one snappy block, see
/// [`TableReadOptions::max_decompressed_block`].
pub const DEFAULT_MAX_DECOMPRESSED_BLOCK: usize = 64 << 20;
/// No snappy stream expands more than this (its densest element, a 3-byte
/// copy, produces 64 bytes), so a larger claimed length is a lie.
const MAX_SNAPPY_EXPANSION: usize = 22;
/// The footer's block handles are zero-padded to this many bytes.
const FOOTER_HANDLES_LEN: usize = 40;

/// How a block's bytes are stored (the block trailer's type byte).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Type 0: stored as is. What TensorFlow 2.21's `BundleWriter` writes.
    #[default]
    None,
    /// Type 1: raw (unframed) snappy, kept only when it saves more than an
    /// eighth of the block. Older TensorFlow releases wrote such blocks.
    Snappy,
}

impl Compression {
    fn type_byte(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Snappy => 1,
        }
    }
}

/// Options for [`TableBuilder`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TableOptions {
    /// Close a data block once its estimated size reaches this many bytes.
    pub block_size: usize,
    /// Store a full key (a restart point) every this many entries in data
    /// blocks. Must be at least 1.
    pub block_restart_interval: usize,
    /// How to store blocks.
    pub compression: Compression,
}

impl Default for TableOptions {
    /// What TensorFlow's `BundleWriter` uses: 256 KiB blocks, restart interval
    /// 16, no compression.
    fn default() -> Self {
        TableOptions {
            block_size: DEFAULT_BLOCK_SIZE,
            block_restart_interval: DEFAULT_BLOCK_RESTART_INTERVAL,
            compression: Compression::None,
        }
    }
}

impl TableOptions {
    /// Sets [`block_size`](Self::block_size).
    pub fn with_block_size(mut self, block_size: usize) -> Self {
        self.block_size = block_size;
        self
    }

    /// Sets [`block_restart_interval`](Self::block_restart_interval).
    pub fn with_block_restart_interval(mut self, interval: usize) -> Self {
        self.block_restart_interval = interval;
        self
    }

    /// Sets [`compression`](Self::compression).
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }
}

/// Where a block lies in the file: offset and size, the size excluding the
/// 5-byte trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHandle {
    /// Offset of the block's first byte.
    pub offset: u64,
    /// Length of the stored block (compressed if compressed), without trailer.
    pub size: u64,
}

impl BlockHandle {
    fn encode_to(self, out: &mut Vec<u8>) {
        put_varint64(out, self.offset);
        put_varint64(out, self.size);
    }

    fn decode(buf: &[u8], pos: &mut usize) -> Option<BlockHandle> {
        let offset = get_varint64(buf, pos)?;
        let size = get_varint64(buf, pos)?;
        Some(BlockHandle { offset, size })
    }
}

// ---------------------------------------------------------------------------
// Writing

/// Accumulates one block: prefix-compressed entries, then the restart array.
struct BlockBuilder {
    buffer: Vec<u8>,
    restarts: Vec<u32>,
    counter: usize,
    restart_interval: usize,
    last_key: Vec<u8>,
}

impl BlockBuilder {
    fn new(restart_interval: usize) -> Self {
        BlockBuilder {
            buffer: Vec::new(),
            restarts: vec![0],
            counter: 0,
            restart_interval: restart_interval.max(1),
            last_key: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// Bytes the block would take if finished now.
    fn size_estimate(&self) -> usize {
        self.buffer.len() + 4 * self.restarts.len() + 4
    }

    fn add(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        let mut shared = 0;
        if self.counter < self.restart_interval {
            shared = self
                .last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count();
        } else {
            self.restarts.push(fits_u32(self.buffer.len())?);
            self.counter = 0;
        }
        let non_shared = &key[shared..];
        put_varint32(&mut self.buffer, fits_u32(shared)?);
        put_varint32(&mut self.buffer, fits_u32(non_shared.len())?);
        put_varint32(&mut self.buffer, fits_u32(value.len())?);
        self.buffer.extend_from_slice(non_shared);
        self.buffer.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(non_shared);
        self.counter += 1;
        Ok(())
    }

    /// Appends the restart array and returns the finished block.
    fn finish(&mut self) -> io::Result<&[u8]> {
        let count = fits_u32(self.restarts.len())?;
        for restart in &self.restarts {
            self.buffer.extend_from_slice(&restart.to_le_bytes());
        }
        self.buffer.extend_from_slice(&count.to_le_bytes());
        Ok(&self.buffer)
    }

    fn reset(&mut self) {
        self.buffer.clear();
        self.restarts.clear();
        self.restarts.push(0);
        self.counter = 0;
        self.last_key.clear();
    }
}

fn fits_u32(n: usize) -> io::Result<u32> {
    u32::try_from(n).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "table entry or block larger than 4 GiB",
        )
    })
}

/// Shortens `start` to a key `k` with `start <= k < limit` when a single
/// incremented byte does it (LevelDB's bytewise `FindShortestSeparator`).
fn shortest_separator(start: &mut Vec<u8>, limit: &[u8]) {
    let common = start.iter().zip(limit).take_while(|(a, b)| a == b).count();
    if common >= start.len().min(limit.len()) {
        return; // one is a prefix of the other: keep start
    }
    let byte = start[common];
    if byte < 0xff && byte + 1 < limit[common] {
        start[common] = byte + 1;
        start.truncate(common + 1);
    }
}

/// Shortens `key` to a short key `>= key` (LevelDB's bytewise
/// `FindShortSuccessor`): increments the first byte that is not `0xff` and
/// drops the rest; a key of only `0xff` bytes is kept.
fn short_successor(key: &mut Vec<u8>) {
    if let Some(i) = key.iter().position(|&b| b != 0xff) {
        key[i] += 1;
        key.truncate(i + 1);
    }
}

/// Writes a table, byte-identical to TensorFlow's `table::TableBuilder` for
/// the same options and the same sequence of [`add`](Self::add) calls.
pub struct TableBuilder<W: Write> {
    out: W,
    options: TableOptions,
    offset: u64,
    data_block: BlockBuilder,
    index_block: BlockBuilder,
    last_key: Vec<u8>,
    num_entries: u64,
    /// Handle of the last data block written, waiting for the next key so
    /// that its index entry can use a short separator.
    pending_handle: Option<BlockHandle>,
    compressed: Vec<u8>,
}

impl<W: Write> TableBuilder<W> {
    /// A builder writing to `out`.
    pub fn new(out: W, options: TableOptions) -> Self {
        TableBuilder {
            data_block: BlockBuilder::new(options.block_restart_interval),
            index_block: BlockBuilder::new(1),
            out,
            options,
            offset: 0,
            last_key: Vec::new(),
            num_entries: 0,
            pending_handle: None,
            compressed: Vec::new(),
        }
    }

    /// Adds an entry. Keys must be strictly increasing (bytewise); an
    /// out-of-order key is an [`io::ErrorKind::InvalidInput`] error.
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        if self.num_entries > 0 {
            if key <= self.last_key.as_slice() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "table keys must be added in strictly increasing order",
                ));
            }
            // TensorFlow's addition to LevelDB: an entry at least twice the
            // block size starts a block of its own.
            let entry_bytes = key.len().saturating_add(value.len());
            if entry_bytes >= self.options.block_size.saturating_mul(2) {
                self.flush()?;
            }
        }
        if let Some(handle) = self.pending_handle.take() {
            shortest_separator(&mut self.last_key, key);
            let mut encoded = Vec::with_capacity(20);
            handle.encode_to(&mut encoded);
            self.index_block.add(&self.last_key, &encoded)?;
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.num_entries += 1;
        self.data_block.add(key, value)?;
        if self.data_block.size_estimate() >= self.options.block_size {
            self.flush()?;
        }
        Ok(())
    }

    /// Number of entries added so far.
    pub fn num_entries(&self) -> u64 {
        self.num_entries
    }

    /// Bytes written to the output so far.
    pub fn file_size(&self) -> u64 {
        self.offset
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.data_block.is_empty() {
            return Ok(());
        }
        let handle = write_block(
            &mut self.out,
            &mut self.offset,
            self.options.compression,
            &mut self.compressed,
            &mut self.data_block,
        )?;
        self.pending_handle = Some(handle);
        Ok(())
    }

    /// Writes the last data block, the metaindex and index blocks and the
    /// footer, flushes the output and returns it.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush()?;
        let mut metaindex = BlockBuilder::new(self.options.block_restart_interval);
        let metaindex_handle = write_block(
            &mut self.out,
            &mut self.offset,
            self.options.compression,
            &mut self.compressed,
            &mut metaindex,
        )?;
        if let Some(handle) = self.pending_handle.take() {
            short_successor(&mut self.last_key);
            let mut encoded = Vec::with_capacity(20);
            handle.encode_to(&mut encoded);
            self.index_block.add(&self.last_key, &encoded)?;
        }
        let index_handle = write_block(
            &mut self.out,
            &mut self.offset,
            self.options.compression,
            &mut self.compressed,
            &mut self.index_block,
        )?;
        let mut footer = Vec::with_capacity(FOOTER_LEN);
        metaindex_handle.encode_to(&mut footer);
        index_handle.encode_to(&mut footer);
        footer.resize(FOOTER_HANDLES_LEN, 0);
        footer.extend_from_slice(&(TABLE_MAGIC as u32).to_le_bytes());
        footer.extend_from_slice(&((TABLE_MAGIC >> 32) as u32).to_le_bytes());
        self.out.write_all(&footer)?;
        self.offset += footer.len() as u64;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Finishes `block`, compresses it if asked and worthwhile, writes it and its
/// trailer, and resets it.
fn write_block<W: Write>(
    out: &mut W,
    offset: &mut u64,
    compression: Compression,
    compressed: &mut Vec<u8>,
    block: &mut BlockBuilder,
) -> io::Result<BlockHandle> {
    let raw = block.finish()?;
    let mut kind = Compression::None;
    let mut contents: &[u8] = raw;
    if compression == Compression::Snappy {
        compressed.resize(snap::raw::max_compress_len(raw.len()), 0);
        if let Ok(n) = snap::raw::Encoder::new().compress(raw, compressed) {
            // Keep the compressed form only when it saves more than 1/8.
            if n < raw.len() - raw.len() / 8 {
                compressed.truncate(n);
                contents = compressed;
                kind = Compression::Snappy;
            }
        }
    }
    let handle = BlockHandle {
        offset: *offset,
        size: contents.len() as u64,
    };
    let type_byte = kind.type_byte();
    let checksum = crc::mask(crc::extend(crc::crc32c(contents), &[type_byte]));
    let mut trailer = [0u8; BLOCK_TRAILER_LEN];
    trailer[0] = type_byte;
    trailer[1..].copy_from_slice(&checksum.to_le_bytes());
    out.write_all(contents)?;
    out.write_all(&trailer)?;
    *offset += (contents.len() + BLOCK_TRAILER_LEN) as u64;
    compressed.clear();
    block.reset();
    Ok(handle)
}

// ---------------------------------------------------------------------------
// Reading

/// Options for [`Table::open_with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TableReadOptions {
    /// A snappy block claiming to decompress to more than this many bytes is
    /// rejected before anything is allocated. TensorFlow's blocks are about
    /// [`DEFAULT_BLOCK_SIZE`]; only a single huge entry makes one larger. The
    /// claim is also bounded by the compressed length times snappy's maximum
    /// expansion, so no allocation exceeds what the file can justify.
    pub max_decompressed_block: usize,
}

impl Default for TableReadOptions {
    fn default() -> Self {
        TableReadOptions {
            max_decompressed_block: DEFAULT_MAX_DECOMPRESSED_BLOCK,
        }
    }
}

impl TableReadOptions {
    /// Sets [`max_decompressed_block`](Self::max_decompressed_block).
    pub fn with_max_decompressed_block(mut self, max: usize) -> Self {
        self.max_decompressed_block = max;
        self
    }
}

enum Storage {
    /// Uncompressed: a range of the table's bytes.
    InSource(Range<usize>),
    /// Decompressed into memory.
    Owned(Box<[u8]>),
}

/// A data block that passed its checksum and structure checks.
struct LoadedBlock {
    storage: Storage,
    /// Length of the entries region (before the restart array).
    entries_len: usize,
    restarts: Box<[u32]>,
}

struct IndexEntry {
    key: Vec<u8>,
    handle: BlockHandle,
}

/// A table opened for reading from bytes held by `S` (a memory map, a
/// `Vec<u8>`, a `&[u8]`).
///
/// `Table` is `Sync` when `S` is: lookups take `&self`, and each data block is
/// verified and decoded at most once (the result is cached).
pub struct Table<S> {
    source: S,
    path: PathBuf,
    options: TableReadOptions,
    index: Vec<IndexEntry>,
    blocks: Box<[OnceLock<LoadedBlock>]>,
}

impl<S: AsRef<[u8]>> Table<S> {
    /// Opens a table with default options. `path` only names the file in
    /// errors.
    pub fn open(source: S, path: &Path) -> Result<Self> {
        Self::open_with(source, path, TableReadOptions::default())
    }

    /// Opens a table: checks the footer, reads and checks the index block.
    /// Data blocks are read on demand.
    pub fn open_with(source: S, path: &Path, options: TableReadOptions) -> Result<Self> {
        let bytes = source.as_ref();
        let len = bytes.len();
        let corrupt = |offset: Option<u64>, what: String| Error::CorruptTable {
            path: path.to_path_buf(),
            offset,
            what,
        };
        if len < FOOTER_LEN {
            return Err(corrupt(
                None,
                format!("file is too short to be an sstable ({len} bytes)"),
            ));
        }
        let footer_start = len - FOOTER_LEN;
        let footer = &bytes[footer_start..];
        let magic_lo = read_u32_le(footer, FOOTER_HANDLES_LEN).unwrap_or(0);
        let magic_hi = read_u32_le(footer, FOOTER_HANDLES_LEN + 4).unwrap_or(0);
        if (u64::from(magic_hi) << 32 | u64::from(magic_lo)) != TABLE_MAGIC {
            return Err(corrupt(
                Some((footer_start + FOOTER_HANDLES_LEN) as u64),
                "not an sstable (bad magic number)".to_owned(),
            ));
        }
        let mut pos = 0;
        let handles = &footer[..FOOTER_HANDLES_LEN];
        let _metaindex = BlockHandle::decode(handles, &mut pos)
            .ok_or_else(|| corrupt(Some(footer_start as u64), "bad block handle".to_owned()))?;
        let index_handle = BlockHandle::decode(handles, &mut pos)
            .ok_or_else(|| corrupt(Some(footer_start as u64), "bad block handle".to_owned()))?;

        // The index block, like every block, lies before the footer (a
        // block running into the footer's unchecked padding could carry a
        // valid checksum there).
        if !block_fits(index_handle, footer_start) {
            return Err(corrupt(
                Some(footer_start as u64),
                format!(
                    "the index block (offset {}, size {}) runs beyond the data area ({footer_start} bytes)",
                    index_handle.offset, index_handle.size
                ),
            ));
        }
        let index_block = read_block(bytes, index_handle, path, &options)?;
        let index_bytes = match &index_block.storage {
            Storage::InSource(range) => &bytes[range.clone()],
            Storage::Owned(owned) => owned,
        };
        let mut index: Vec<IndexEntry> = Vec::new();
        let mut cursor = BlockCursor::new(index_bytes, &index_block);
        while let Some(item) = cursor.next_entry() {
            let (key, value) = item.map_err(|what| {
                corrupt(Some(index_handle.offset), format!("index block: {what}"))
            })?;
            let mut p = 0;
            let handle = BlockHandle::decode(value, &mut p).ok_or_else(|| {
                corrupt(
                    Some(index_handle.offset),
                    "bad block handle in index block".to_owned(),
                )
            })?;
            // A lookup's binary search over unsorted index keys would miss
            // entries that iteration finds.
            if let Some(last) = index.last().filter(|last| key <= last.key.as_slice()) {
                return Err(corrupt(
                    Some(index_handle.offset),
                    format!(
                        "index block: key {} does not sort after the previous key {}",
                        key.escape_ascii(),
                        last.key.escape_ascii()
                    ),
                ));
            }
            if !block_fits(handle, footer_start) {
                return Err(corrupt(
                    Some(index_handle.offset),
                    format!(
                        "index entry points at a block (offset {}, size {}) beyond the data area ({footer_start} bytes)",
                        handle.offset, handle.size
                    ),
                ));
            }
            index.push(IndexEntry {
                key: key.to_vec(),
                handle,
            });
        }
        let blocks = std::iter::repeat_with(OnceLock::new)
            .take(index.len())
            .collect();
        Ok(Table {
            source,
            path: path.to_path_buf(),
            options,
            index,
            blocks,
        })
    }

    /// The file name used in errors.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes the table was opened from.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Number of data blocks.
    pub fn num_blocks(&self) -> usize {
        self.index.len()
    }

    /// The handle of data block `i` (in key order), if there is one.
    pub fn block_handle(&self, i: usize) -> Option<BlockHandle> {
        self.index.get(i).map(|entry| entry.handle)
    }

    fn block(&self, i: usize) -> Result<(&[u8], &LoadedBlock)> {
        let cell = &self.blocks[i];
        let loaded = match cell.get() {
            Some(loaded) => loaded,
            None => {
                let entry = &self.index[i];
                let loaded = read_block(
                    self.source.as_ref(),
                    entry.handle,
                    &self.path,
                    &self.options,
                )?;
                check_entries(self.block_bytes(&loaded), &loaded, &entry.key)
                    .map_err(|what| self.block_error(i, what))?;
                cell.get_or_init(|| loaded)
            }
        };
        Ok((self.block_bytes(loaded), loaded))
    }

    fn block_bytes<'a>(&'a self, loaded: &'a LoadedBlock) -> &'a [u8] {
        match &loaded.storage {
            Storage::InSource(range) => &self.source.as_ref()[range.clone()],
            Storage::Owned(owned) => owned,
        }
    }

    /// The value stored under exactly `key`, or `None`.
    pub fn get(&self, key: &[u8]) -> Result<Option<&[u8]>> {
        let i = self.index.partition_point(|e| e.key.as_slice() < key);
        if i >= self.index.len() {
            return Ok(None);
        }
        let (bytes, loaded) = self.block(i)?;
        let found = seek_in_block(bytes, loaded, key).map_err(|what| self.block_error(i, what))?;
        Ok(found.and_then(|(found_key, value)| (found_key == key).then_some(value)))
    }

    fn block_error(&self, i: usize, what: String) -> Error {
        Error::CorruptTable {
            path: self.path.clone(),
            offset: Some(self.index[i].handle.offset),
            what: format!("data block {i}: {what}"),
        }
    }

    /// Iterates over all entries in key order, checking that keys strictly
    /// increase. After an error the iterator ends.
    pub fn iter(&self) -> TableIter<'_, S> {
        TableIter {
            table: self,
            block: 0,
            cursor: None,
            last_key: None,
            done: false,
        }
    }
}

/// Iterator over a [`Table`]'s entries: `(key, value)`.
pub struct TableIter<'t, S> {
    table: &'t Table<S>,
    block: usize,
    cursor: Option<BlockCursor<'t>>,
    last_key: Option<Vec<u8>>,
    done: bool,
}

impl<'t, S: AsRef<[u8]>> Iterator for TableIter<'t, S> {
    type Item = Result<(Vec<u8>, &'t [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            if self.cursor.is_none() {
                if self.block >= self.table.index.len() {
                    self.done = true;
                    return None;
                }
                match self.table.block(self.block) {
                    Ok((bytes, loaded)) => self.cursor = Some(BlockCursor::new(bytes, loaded)),
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            }
            let cursor = self.cursor.as_mut()?;
            match cursor.next_entry() {
                None => {
                    self.cursor = None;
                    self.block += 1;
                }
                Some(Err(what)) => {
                    self.done = true;
                    return Some(Err(self.table.block_error(self.block, what)));
                }
                Some(Ok((key, value))) => {
                    let key = key.to_vec();
                    if let Some(last) = &self.last_key {
                        if key <= *last {
                            self.done = true;
                            return Some(Err(self.table.block_error(
                                self.block,
                                format!(
                                    "key {} does not sort after the previous key {}",
                                    key.escape_ascii(),
                                    last.escape_ascii()
                                ),
                            )));
                        }
                    }
                    let index_key = &self.table.index[self.block].key;
                    if key.as_slice() > index_key.as_slice() {
                        self.done = true;
                        return Some(Err(self.table.block_error(
                            self.block,
                            format!(
                                "key {} sorts after the block's index key {}",
                                key.escape_ascii(),
                                index_key.escape_ascii()
                            ),
                        )));
                    }
                    self.last_key = Some(key.clone());
                    return Some(Ok((key, value)));
                }
            }
        }
    }
}

/// Whether the block at `handle` and its trailer end at or before `limit`.
fn block_fits(handle: BlockHandle, limit: usize) -> bool {
    handle
        .offset
        .checked_add(handle.size)
        .and_then(|end| end.checked_add(BLOCK_TRAILER_LEN as u64))
        .is_some_and(|end| end <= limit as u64)
}

fn read_u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    let b: [u8; 4] = bytes.get(at..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Reads, checks and (if needed) decompresses the block at `handle`, then
/// checks its restart array.
fn read_block(
    bytes: &[u8],
    handle: BlockHandle,
    path: &Path,
    options: &TableReadOptions,
) -> Result<LoadedBlock> {
    let corrupt = |what: String| Error::CorruptTable {
        path: path.to_path_buf(),
        offset: Some(handle.offset),
        what,
    };
    let range = usize::try_from(handle.offset)
        .ok()
        .zip(usize::try_from(handle.size).ok())
        .and_then(|(start, size)| {
            let end = start.checked_add(size)?;
            (end.checked_add(BLOCK_TRAILER_LEN)? <= bytes.len()).then_some(start..end)
        })
        .ok_or_else(|| {
            corrupt(format!(
                "truncated block read: block of {} bytes at offset {} does not fit in the file ({} bytes)",
                handle.size,
                handle.offset,
                bytes.len()
            ))
        })?;
    let end = range.end;
    let contents = &bytes[range.clone()];
    let type_byte = bytes[end];
    let expected = crc::unmask(read_u32_le(bytes, end + 1).unwrap_or(0));
    let actual = crc::crc32c(&bytes[range.start..end + 1]);
    if expected != actual {
        return Err(Error::BlockChecksum {
            path: path.to_path_buf(),
            offset: handle.offset,
            expected,
            actual,
        });
    }
    let storage = match type_byte {
        0 => Storage::InSource(range),
        1 => {
            let claimed = snap::raw::decompress_len(contents)
                .map_err(|e| corrupt(format!("corrupted compressed block contents: {e}")))?;
            let bound = options
                .max_decompressed_block
                .min(contents.len().saturating_mul(MAX_SNAPPY_EXPANSION));
            if claimed > bound {
                return Err(corrupt(format!(
                    "snappy block claims {claimed} decompressed bytes, more than the limit of {bound} for {} compressed bytes",
                    contents.len()
                )));
            }
            let mut out = vec![0u8; claimed];
            let n = snap::raw::Decoder::new()
                .decompress(contents, &mut out)
                .map_err(|e| corrupt(format!("corrupted compressed block contents: {e}")))?;
            if n != claimed {
                return Err(corrupt(
                    "corrupted compressed block contents: length mismatch".to_owned(),
                ));
            }
            Storage::Owned(out.into_boxed_slice())
        }
        other => return Err(corrupt(format!("bad block type {other}"))),
    };
    let block_bytes: &[u8] = match &storage {
        Storage::InSource(range) => &bytes[range.clone()],
        Storage::Owned(owned) => owned,
    };
    let (entries_len, restarts) = parse_restarts(block_bytes).map_err(corrupt)?;
    Ok(LoadedBlock {
        storage,
        entries_len,
        restarts,
    })
}

/// Checks a block's restart array: returns the length of the entries region
/// and the restart offsets (first 0, strictly increasing, inside the region).
fn parse_restarts(block: &[u8]) -> BlockResult<(usize, Box<[u32]>)> {
    if block.len() < 4 {
        return Err(format!("bad block contents: {} bytes", block.len()));
    }
    let count_at = block.len() - 4;
    let count = read_u32_le(block, count_at).unwrap_or(0) as usize;
    let max = count_at / 4;
    if count > max {
        return Err(format!(
            "bad block contents: {count} restart points in a {}-byte block",
            block.len()
        ));
    }
    let entries_len = count_at - 4 * count;
    if count == 0 {
        if entries_len != 0 {
            return Err("bad block contents: entries without restart points".to_owned());
        }
        return Ok((0, Box::new([])));
    }
    let mut restarts = Vec::with_capacity(count);
    for i in 0..count {
        let r = read_u32_le(block, entries_len + 4 * i).unwrap_or(0);
        let ok = if i == 0 {
            r == 0
        } else {
            restarts.last().is_some_and(|&prev| r > prev) && (r as usize) < entries_len
        };
        if !ok {
            return Err(format!("bad block contents: restart point {i} at {r}"));
        }
        restarts.push(r);
    }
    Ok((entries_len, restarts.into_boxed_slice()))
}

/// A block-level problem, described for the caller to place in the file.
type BlockResult<T> = std::result::Result<T, String>;

/// One decoded entry header: (shared, key delta, value, next offset).
type RawEntry<'a> = (usize, &'a [u8], &'a [u8], usize);

/// Decodes the entry at `pos` of the entries region `entries`.
fn decode_entry(entries: &[u8], pos: usize) -> BlockResult<RawEntry<'_>> {
    let bad = || format!("bad entry at block offset {pos}");
    let mut p = pos;
    let shared = get_varint32(entries, &mut p).ok_or_else(bad)? as usize;
    let non_shared = get_varint32(entries, &mut p).ok_or_else(bad)? as usize;
    let value_len = get_varint32(entries, &mut p).ok_or_else(bad)? as usize;
    let key_end = p.checked_add(non_shared).ok_or_else(bad)?;
    let value_end = key_end.checked_add(value_len).ok_or_else(bad)?;
    if value_end > entries.len() {
        return Err(bad());
    }
    Ok((
        shared,
        &entries[p..key_end],
        &entries[key_end..value_end],
        value_end,
    ))
}

/// Sequential reader over one block's entries, rebuilding full keys.
struct BlockCursor<'a> {
    entries: &'a [u8],
    restarts: &'a [u32],
    pos: usize,
    next_restart: usize,
    key: Vec<u8>,
    failed: bool,
    /// Fail on a key that does not sort after the one before it.
    require_ascending: bool,
}

impl<'a> BlockCursor<'a> {
    fn new(block: &'a [u8], loaded: &'a LoadedBlock) -> Self {
        BlockCursor {
            entries: &block[..loaded.entries_len],
            restarts: &loaded.restarts,
            pos: 0,
            next_restart: 0,
            key: Vec::new(),
            failed: false,
            require_ascending: false,
        }
    }

    fn next_entry(&mut self) -> Option<BlockResult<(&[u8], &'a [u8])>> {
        if self.failed || self.pos >= self.entries.len() {
            return None;
        }
        let result = self.step();
        if result.is_err() {
            self.failed = true;
        }
        Some(result.map(|value| (self.key.as_slice(), value)))
    }

    fn step(&mut self) -> BlockResult<&'a [u8]> {
        let at_restart = self
            .restarts
            .get(self.next_restart)
            .is_some_and(|&r| r as usize == self.pos);
        let (shared, delta, value, next) = decode_entry(self.entries, self.pos)?;
        if at_restart {
            self.next_restart += 1;
            if shared != 0 {
                return Err(format!(
                    "entry at restart point {} shares a key prefix",
                    self.pos
                ));
            }
        }
        // Every restart point is the start of an entry: one inside this
        // entry would let a lookup start from bytes iteration never reads.
        if self
            .restarts
            .get(self.next_restart)
            .is_some_and(|&r| (r as usize) < next)
        {
            return Err(format!("entry at {} overlaps a restart point", self.pos));
        }
        if shared > self.key.len() {
            return Err(format!(
                "entry at {} shares {shared} bytes of a {}-byte key",
                self.pos,
                self.key.len()
            ));
        }
        // The new key is the old one's first `shared` bytes then `delta`, so
        // it sorts after the old one exactly when `delta` sorts after the
        // rest of the old one: no copy of the old key needed.
        if self.require_ascending && self.pos > 0 && delta <= &self.key[shared..] {
            let mut key = self.key[..shared].to_vec();
            key.extend_from_slice(delta);
            return Err(format!(
                "key {} does not sort after the previous key {}",
                key.escape_ascii(),
                self.key.escape_ascii()
            ));
        }
        self.key.truncate(shared);
        self.key.extend_from_slice(delta);
        self.pos = next;
        Ok(value)
    }
}

/// Walks every entry of a data block once, when it is first loaded: each
/// entry decodes, every restart point starts an entry that shares nothing,
/// keys strictly increase and none sorts after the block's index key. So a
/// lookup (which starts at a restart point) finds exactly what iteration
/// lists.
fn check_entries(block: &[u8], loaded: &LoadedBlock, index_key: &[u8]) -> BlockResult<()> {
    let mut cursor = BlockCursor::new(block, loaded);
    cursor.require_ascending = true;
    while let Some(item) = cursor.next_entry() {
        item?;
    }
    // The keys strictly increase, so the last one is the largest: only it
    // needs comparing with the index key.
    if cursor.key.as_slice() > index_key {
        return Err(format!(
            "key {} sorts after the block's index key {}",
            cursor.key.escape_ascii(),
            index_key.escape_ascii()
        ));
    }
    Ok(())
}

/// The first entry of the block whose key is `>= target`, found by binary
/// search over the restart points then a linear scan.
fn seek_in_block<'a>(
    block: &'a [u8],
    loaded: &'a LoadedBlock,
    target: &[u8],
) -> BlockResult<Option<(Vec<u8>, &'a [u8])>> {
    let entries = &block[..loaded.entries_len];
    let restarts = &loaded.restarts;
    if restarts.is_empty() {
        return Ok(None);
    }
    // Find the last restart point whose key is < target.
    let (mut lo, mut hi) = (0usize, restarts.len() - 1);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        let (shared, key, _, _) = decode_entry(entries, restarts[mid] as usize)?;
        if shared != 0 {
            return Err(format!(
                "entry at restart point {} shares a key prefix",
                restarts[mid]
            ));
        }
        if key < target {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut cursor = BlockCursor {
        entries,
        restarts,
        pos: restarts[lo] as usize,
        next_restart: lo,
        key: Vec::new(),
        failed: false,
        require_ascending: false,
    };
    while let Some(item) = cursor.next_entry() {
        let (key, value) = item?;
        if key >= target {
            return Ok(Some((key.to_vec(), value)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(entries: &[(&[u8], &[u8])], options: TableOptions) -> Vec<u8> {
        let mut builder = TableBuilder::new(Vec::new(), options);
        for (k, v) in entries {
            builder.add(k, v).unwrap();
        }
        builder.finish().unwrap()
    }

    /// TF 2.21's bytes for the keys "", "W", "b" (docs/formats.md, section 2): 146 bytes,
    /// data block at 0 (61 bytes), metaindex at 66 (8), index at 79 (14).
    #[test]
    fn layout_matches_formats_example() {
        let header = [0x08, 0x01, 0x1a, 0x02, 0x08, 0x01];
        let w = [
            0x08, 0x01, 0x12, 0x08, 0x12, 0x02, 0x08, 0x02, 0x12, 0x02, 0x08, 0x03, 0x28, 0x18,
            0x35, 0x7a, 0xeb, 0xf5, 0xab,
        ];
        // `b`: float[3] at offset 24 with some CRC; only lengths matter here.
        let b = [
            0x08, 0x01, 0x12, 0x04, 0x12, 0x02, 0x08, 0x03, 0x20, 0x18, 0x28, 0x0c, 0x35, 0x01,
            0x02, 0x03, 0x04,
        ];
        let table = build(
            &[(b"", &header), (b"W", &w), (b"b", &b)],
            TableOptions::default(),
        );
        assert_eq!(table.len(), 146);
        // data block: 3 entries (3*3 varint bytes + 0+1+1 key + 6+19+17 value) + 8.
        assert_eq!(3 * 3 + 2 + header.len() + w.len() + b.len() + 8, 61);
        assert_eq!(table[61], 0); // type byte
        // metaindex: an empty block at 66.
        assert_eq!(&table[66..74], &[0, 0, 0, 0, 1, 0, 0, 0]);
        // index block at 79: one entry, key "c" (successor of "b"), handle (0, 61).
        assert_eq!(&table[79..85], &[0, 1, 2, b'c', 0, 61]);
        // footer
        assert_eq!(&table[98..102], &[66, 8, 79, 14]);
        assert!(table[102..138].iter().all(|&b| b == 0));
        assert_eq!(
            &table[138..],
            &[0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]
        );

        let t = Table::open(&table[..], Path::new("t")).unwrap();
        assert_eq!(t.get(b"").unwrap(), Some(&header[..]));
        assert_eq!(t.get(b"W").unwrap(), Some(&w[..]));
        assert_eq!(t.get(b"b").unwrap(), Some(&b[..]));
        assert_eq!(t.get(b"a").unwrap(), None);
        assert_eq!(t.get(b"c").unwrap(), None);
        assert_eq!(t.get(b"zz").unwrap(), None);
    }

    #[test]
    fn separators_match_leveldb() {
        let sep = |a: &[u8], b: &[u8]| {
            let mut s = a.to_vec();
            shortest_separator(&mut s, b);
            s
        };
        assert_eq!(sep(b"abcd", b"abzz"), b"abd");
        assert_eq!(sep(b"abc", b"abd"), b"abc"); // c+1 == d: keep
        assert_eq!(sep(b"ab", b"abc"), b"ab"); // prefix: keep
        assert_eq!(sep(b"a\xff", b"b"), b"a\xff"); // a+1 == b
        assert_eq!(sep(b"\xff\x01", b"\xff\x05"), b"\xff\x02");
        let succ = |a: &[u8]| {
            let mut s = a.to_vec();
            short_successor(&mut s);
            s
        };
        assert_eq!(succ(b"b"), b"c");
        assert_eq!(succ(b"strs"), b"t");
        assert_eq!(succ(b"\xff\xffa"), b"\xff\xffb");
        assert_eq!(succ(b"\xff\xff"), b"\xff\xff");
        assert_eq!(succ(b""), b"");
    }

    fn many(n: usize, value_len: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n)
            .map(|i| {
                (
                    format!("key/{i:08}").into_bytes(),
                    vec![(i % 251) as u8; value_len],
                )
            })
            .collect()
    }

    fn roundtrip(entries: &[(Vec<u8>, Vec<u8>)], options: TableOptions) -> Vec<u8> {
        let mut builder = TableBuilder::new(Vec::new(), options);
        for (k, v) in entries {
            builder.add(k, v).unwrap();
        }
        let bytes = builder.finish().unwrap();
        let table = Table::open(bytes.as_slice(), Path::new("t")).unwrap();
        let all: Vec<_> = table.iter().map(|r| r.unwrap()).collect();
        assert_eq!(all.len(), entries.len());
        for ((k, v), (rk, rv)) in entries.iter().zip(&all) {
            assert_eq!(k, rk);
            assert_eq!(v.as_slice(), *rv);
        }
        for (k, v) in entries.iter().step_by(7) {
            assert_eq!(table.get(k).unwrap(), Some(v.as_slice()));
            let mut missing = k.clone();
            missing.push(0);
            assert_eq!(table.get(&missing).unwrap(), None);
        }
        bytes
    }

    #[test]
    fn multi_block_tables_roundtrip() {
        let entries = many(20_000, 40);
        let bytes = roundtrip(&entries, TableOptions::default());
        let table = Table::open(bytes.as_slice(), Path::new("t")).unwrap();
        assert!(table.num_blocks() > 3);
    }

    #[test]
    fn small_blocks_and_snappy_roundtrip() {
        let entries = many(3_000, 30);
        let options = TableOptions {
            block_size: 1024,
            block_restart_interval: 3,
            compression: Compression::Snappy,
        };
        let bytes = roundtrip(&entries, options);
        // Repetitive values compress: at least one block must be type 1.
        let table = Table::open(bytes.as_slice(), Path::new("t")).unwrap();
        let snappy_blocks = (0..table.num_blocks())
            .filter(|&i| {
                let h = table.block_handle(i).unwrap();
                bytes[(h.offset + h.size) as usize] == 1
            })
            .count();
        assert!(snappy_blocks > 0);
    }

    #[test]
    fn overly_large_entry_gets_its_own_block() {
        let big = vec![7u8; 2 * 1024];
        let options = TableOptions {
            block_size: 1024,
            ..TableOptions::default()
        };
        let entries = vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), big.clone()),
            (b"c".to_vec(), b"3".to_vec()),
        ];
        let bytes = roundtrip(&entries, options);
        let table = Table::open(bytes.as_slice(), Path::new("t")).unwrap();
        // "a" alone, "b" alone (flushed by size), "c" alone.
        assert_eq!(table.num_blocks(), 3);
        assert_eq!(table.block_handle(0).unwrap().size, 3 + 1 + 1 + 8);
    }

    #[test]
    fn out_of_order_keys_are_rejected() {
        let mut builder = TableBuilder::new(Vec::new(), TableOptions::default());
        builder.add(b"b", b"").unwrap();
        let err = builder.add(b"a", b"").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(builder.add(b"b", b"").is_err());
    }

    #[test]
    fn snappy_claims_are_bounded() {
        // Worst-case expansion of real snappy output stays under the bound.
        let zeros = vec![0u8; 1 << 20];
        let compressed = snap::raw::Encoder::new().compress_vec(&zeros).unwrap();
        assert!(compressed.len() * MAX_SNAPPY_EXPANSION >= zeros.len());

        // A hand-made block claiming 1 GiB from a few bytes is refused.
        let mut block = Vec::new();
        put_varint64(&mut block, 1 << 30);
        block.extend_from_slice(&[0, 0, 0, 0]);
        let mut file = block.clone();
        let crc = crc::mask(crc::extend(crc::crc32c(&block), &[1]));
        file.push(1);
        file.extend_from_slice(&crc.to_le_bytes());
        let handle = BlockHandle {
            offset: 0,
            size: block.len() as u64,
        };
        let err = read_block(&file, handle, Path::new("t"), &TableReadOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("claims"), "{err}");
    }

    #[test]
    fn corruption_is_detected() {
        let entries = many(50, 10);
        let bytes = roundtrip(&entries, TableOptions::default());
        // Too short.
        let e = Table::open(&bytes[..47], Path::new("t")).err().unwrap();
        assert!(e.to_string().contains("too short"), "{e}");
        // Bad magic.
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() ^= 1;
        let e = Table::open(bad.as_slice(), Path::new("t")).err().unwrap();
        assert!(e.to_string().contains("bad magic"), "{e}");
        // Flipped data byte: block checksum.
        let mut bad = bytes.clone();
        bad[5] ^= 0x40;
        let t = Table::open(bad.as_slice(), Path::new("t")).unwrap();
        let e = t.get(b"key/00000001").err().unwrap();
        assert!(matches!(e, Error::BlockChecksum { .. }), "{e}");
        assert!(t.iter().any(|r| r.is_err()));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Random multi-byte damage, and random bytes behind a valid footer:
        /// errors or data, never a panic.
        #[test]
        fn random_damage_never_panics(
            edits in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..8),
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let entries = many(60, 7);
            let options = TableOptions {
                block_size: 200,
                block_restart_interval: 3,
                compression: Compression::Snappy,
            };
            let mut builder = TableBuilder::new(Vec::new(), options);
            for (k, v) in &entries {
                builder.add(k, v).unwrap();
            }
            let mut bytes = builder.finish().unwrap();
            let len = bytes.len();
            for (at, value) in &edits {
                bytes[at % len] = *value;
            }
            if let Ok(table) = Table::open(bytes.as_slice(), Path::new("t")) {
                for (key, value) in table.iter().flatten() {
                    let _ = crate::entry::TensorEntry::decode(&key, value, Path::new("t"));
                    let _ = table.get(&key);
                }
            }
            let mut forged = noise.clone();
            forged.extend_from_slice(&bytes[len - FOOTER_LEN..]);
            if let Ok(table) = Table::open(forged.as_slice(), Path::new("t")) {
                let _ = table.iter().count();
                let _ = table.get(b"key/00000001");
            }
        }
    }

    /// Every truncation and every single-byte flip of a small table yields
    /// an error or exactly the original entries.
    #[test]
    fn hostile_truncations_and_flips() {
        let entries = many(40, 5);
        let options = TableOptions {
            block_size: 128,
            block_restart_interval: 4,
            compression: Compression::Snappy,
        };
        let bytes = roundtrip(&entries, options);
        let expected: Vec<(Vec<u8>, Vec<u8>)> = entries;
        let check = |data: &[u8]| {
            let Ok(table) = Table::open(data, Path::new("t")) else {
                return;
            };
            let mut got = Vec::new();
            for item in table.iter() {
                match item {
                    Ok((k, v)) => got.push((k, v.to_vec())),
                    Err(_) => return,
                }
            }
            assert_eq!(got, expected);
            for (k, v) in &expected {
                if let Ok(found) = table.get(k) {
                    assert_eq!(found, Some(v.as_slice()));
                }
            }
        };
        for len in 0..bytes.len() {
            check(&bytes[..len]);
        }
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                check(&bad);
            }
        }
    }
}
