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

use crate::varint::{get_varint64, put_varint64};

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

mod builder;
mod reader;

pub use builder::TableBuilder;
pub use reader::{Table, TableIter, TableReadOptions};

#[cfg(test)]
mod tests;
