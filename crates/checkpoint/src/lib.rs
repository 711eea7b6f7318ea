#![doc = include_str!("../README.md")]

// Public modules are the ones whose path names a family the user works
// with as such: the converters' API, the masked CRC32C, the DT_STRING
// codec, the SSTable. Everything else is private and its public items are
// re-exported here.
pub mod convert;
pub mod crc;
mod dtype;
mod entry;
mod entry_run;
mod error;
mod mmap;
mod ordered_code;
mod reader;
mod slice;
mod staged;
pub mod string_tensor;
pub mod table;
mod tensor;
mod varint;
mod verify;
mod writer;

use std::path::{Path, PathBuf};

pub use dtype::{ALL_DTYPES, DType};
pub use entry::{
    BundleHeader, Endianness, MAX_RANK, TENSOR_BUNDLE_MIN_CONSUMER, TENSOR_BUNDLE_MIN_PRODUCER,
    TENSOR_BUNDLE_VERSION, TensorEntry, check_version, shape_to_proto,
};
pub use error::{DTypeDisplay, Error, Result};
pub use ordered_code::{decode_tensor_name_slice, encode_tensor_name_slice};
pub use reader::{BundleReader, MAX_NUM_SHARDS, OBJECT_GRAPH_KEY, ReaderOptions};
pub use slice::{Extent, TensorSlice, parse_shape_and_slice};
pub use tensor::{Element, TensorData, TensorView};
pub use verify::{
    EntryCheck, EntryReport, IndexCheck, VerifyOptions, VerifyReport, verify, verify_with,
};
pub use writer::{
    BundleWriter, DEFAULT_BUFFER_SIZE, MAX_DATA_FILES, ShardedBundleWriter, TensorBytes,
    TensorSink, WriterOptions, merge_bundles, merge_bundles_with,
};

/// `<prefix>.index`, the bundle's index file (TensorFlow's `MetaFilename`).
pub fn index_file_name(prefix: &Path) -> PathBuf {
    savedmodel_staged::with_suffix(prefix, ".index")
}

/// `<prefix>.data-XXXXX-of-YYYYY`, data file `shard_id` of `num_shards`
/// (TensorFlow's `DataFilename`: zero-padded to five digits).
pub fn data_file_name(prefix: &Path, shard_id: u32, num_shards: u32) -> PathBuf {
    savedmodel_staged::with_suffix(prefix, &format!(".data-{shard_id:05}-of-{num_shards:05}"))
}

/// A shape as TensorFlow prints it: `[2,3]`, `[]` for a scalar.
pub fn shape_string(shape: &[i64]) -> String {
    let dims: Vec<String> = shape.iter().map(i64::to_string).collect();
    format!("[{}]", dims.join(","))
}

#[cfg(test)]
mod tests;
