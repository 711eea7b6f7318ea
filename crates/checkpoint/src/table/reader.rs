//! Reading a table: [`Table`], its lazily checked data blocks, [`TableIter`].

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::{
    BLOCK_TRAILER_LEN, BlockHandle, DEFAULT_MAX_DECOMPRESSED_BLOCK, FOOTER_HANDLES_LEN, FOOTER_LEN,
    MAX_SNAPPY_EXPANSION, TABLE_MAGIC,
};
use crate::crc;
use crate::error::{Error, Result};
use crate::varint::get_varint32;

/// Options for [`Table::open_with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TableReadOptions {
    /// A snappy block claiming to decompress to more than this many bytes is
    /// rejected before anything is allocated. TensorFlow's blocks are about
    /// [`DEFAULT_BLOCK_SIZE`](super::DEFAULT_BLOCK_SIZE); only a single huge entry makes one larger. The
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
pub(super) struct LoadedBlock {
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
pub(super) fn read_block(
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
