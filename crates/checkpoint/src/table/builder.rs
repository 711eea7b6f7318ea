//! Writing a table: [`TableBuilder`], the blocks, the index and the footer.

use std::io::{self, Write};

use super::{
    BLOCK_TRAILER_LEN, BlockHandle, Compression, FOOTER_HANDLES_LEN, FOOTER_LEN, TABLE_MAGIC,
    TableOptions,
};
use crate::crc;
use crate::varint::put_varint32;

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
pub(super) fn shortest_separator(start: &mut Vec<u8>, limit: &[u8]) {
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
pub(super) fn short_successor(key: &mut Vec<u8>) {
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
