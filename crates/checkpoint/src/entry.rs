//! The index's values: the header (`BundleHeaderProto`, under the empty key)
//! and one `BundleEntryProto` per tensor or slice. docs/formats.md, section 3
//! "Index values: header and entries".

use std::path::Path;

use prost::Message;
use savedmodel_proto::tensorflow::{
    BundleEntryProto, BundleHeaderProto, TensorShapeProto, VersionDef,
    bundle_header_proto::Endianness as EndiannessProto, tensor_shape_proto::Dim,
};

use crate::dtype::DType;
use crate::error::{Error, Result, display_key};
use crate::slice::TensorSlice;

/// `kTensorBundleVersion`: the format version this crate writes and reads.
pub const TENSOR_BUNDLE_VERSION: i32 = 1;
/// `kTensorBundleMinConsumer`: the oldest reader that can read what we write.
pub const TENSOR_BUNDLE_MIN_CONSUMER: i32 = 0;
/// `kTensorBundleMinProducer`: the oldest writer whose files we read.
pub const TENSOR_BUNDLE_MIN_PRODUCER: i32 = 0;
/// TensorFlow's `TensorShape` limit on the number of dimensions.
pub const MAX_RANK: usize = 254;

/// Byte order of the numbers in a bundle's data files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Endianness {
    /// Little-endian (what every TensorFlow platform in use writes).
    #[default]
    Little,
    /// Big-endian (s390x and the like).
    Big,
}

impl Endianness {
    /// The byte order of the machine running this code.
    pub const NATIVE: Endianness = if cfg!(target_endian = "big") {
        Endianness::Big
    } else {
        Endianness::Little
    };

    fn to_proto(self) -> i32 {
        match self {
            Endianness::Little => EndiannessProto::Little as i32,
            Endianness::Big => EndiannessProto::Big as i32,
        }
    }
}

/// The bundle's header entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleHeader {
    /// Number of data files, `<prefix>.data-XXXXX-of-<num_shards>`.
    pub num_shards: u32,
    /// Byte order of the data files.
    pub endianness: Endianness,
    /// Format version: producer, minimum consumer, bad consumers.
    pub version: VersionDef,
}

impl BundleHeader {
    /// The header TensorFlow's `BundleWriter` writes: 1 shard, producer 1,
    /// min consumer 0.
    pub fn new(num_shards: u32, endianness: Endianness) -> Self {
        BundleHeader {
            num_shards,
            endianness,
            version: VersionDef {
                producer: TENSOR_BUNDLE_VERSION,
                min_consumer: TENSOR_BUNDLE_MIN_CONSUMER,
                bad_consumers: Vec::new(),
            },
        }
    }

    /// Serializes the header (`08 01 1a 02 08 01` for one little-endian
    /// shard).
    pub fn encode(&self) -> Vec<u8> {
        BundleHeaderProto {
            num_shards: self.num_shards as i32,
            endianness: self.endianness.to_proto(),
            version: Some(self.version.clone()),
        }
        .encode_to_vec()
    }

    /// Parses and checks a header value read from `path`: known endianness,
    /// a non-negative shard count, and a version this reader accepts.
    pub fn decode(value: &[u8], path: &Path) -> Result<Self> {
        let corrupt = |what: String| Error::CorruptEntry {
            path: path.to_path_buf(),
            tensor: "header".to_owned(),
            what,
        };
        let proto = BundleHeaderProto::decode(value)
            .map_err(|e| corrupt(format!("unable to parse header: {e}")))?;
        let endianness = match EndiannessProto::try_from(proto.endianness) {
            Ok(EndiannessProto::Little) => Endianness::Little,
            Ok(EndiannessProto::Big) => Endianness::Big,
            Err(_) => return Err(corrupt(format!("unknown endianness {}", proto.endianness))),
        };
        let num_shards = u32::try_from(proto.num_shards)
            .map_err(|_| corrupt(format!("negative shard count {}", proto.num_shards)))?;
        let version = proto.version.unwrap_or_default();
        check_version(&version, path)?;
        Ok(BundleHeader {
            num_shards,
            endianness,
            version,
        })
    }
}

/// TensorFlow's `CheckVersions` for consumer [`TENSOR_BUNDLE_VERSION`] and
/// min producer [`TENSOR_BUNDLE_MIN_PRODUCER`].
pub fn check_version(version: &VersionDef, path: &Path) -> Result<()> {
    let fail = |what: String| {
        Err(Error::Version {
            path: path.to_path_buf(),
            what,
        })
    };
    if version.producer < TENSOR_BUNDLE_MIN_PRODUCER {
        return fail(format!(
            "producer version {} is below the minimum {TENSOR_BUNDLE_MIN_PRODUCER} this reader supports",
            version.producer
        ));
    }
    if version.min_consumer > TENSOR_BUNDLE_VERSION {
        return fail(format!(
            "the bundle needs a reader of version {} or newer, this one is {TENSOR_BUNDLE_VERSION}",
            version.min_consumer
        ));
    }
    if version.bad_consumers.contains(&TENSOR_BUNDLE_VERSION) {
        return fail(format!(
            "reader version {TENSOR_BUNDLE_VERSION} is listed as a bad consumer"
        ));
    }
    Ok(())
}

/// A tensor's (or a slice's) index entry, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorEntry {
    /// Element type.
    pub dtype: DType,
    /// Dimensions (empty for a scalar); each non-negative.
    pub shape: Vec<i64>,
    /// Which data file holds the bytes.
    pub shard_id: u32,
    /// Offset of the bytes in that file.
    pub offset: u64,
    /// Number of bytes.
    pub size: u64,
    /// The masked CRC32C of the bytes, as stored.
    pub crc32c: u32,
    /// For a partitioned tensor's full-tensor entry: the stored slices (their
    /// data lives under the slice keys). Empty otherwise.
    pub slices: Vec<TensorSlice>,
}

impl TensorEntry {
    /// Number of elements (1 for a scalar).
    pub fn num_elements(&self) -> u64 {
        // Checked when the entry was built or decoded.
        num_elements(&self.shape).unwrap_or(0)
    }

    /// Whether this is the full-tensor entry of a partitioned tensor.
    pub fn is_partitioned(&self) -> bool {
        !self.slices.is_empty()
    }

    /// The proto form. The shape is always present (a scalar encodes as
    /// `12 00`), as TensorFlow's writer does.
    pub fn to_proto(&self) -> BundleEntryProto {
        BundleEntryProto {
            dtype: self.dtype.as_i32(),
            shape: Some(shape_to_proto(&self.shape)),
            shard_id: self.shard_id as i32,
            offset: self.offset as i64,
            size: self.size as i64,
            crc32c: self.crc32c,
            slices: self.slices.iter().map(TensorSlice::to_proto).collect(),
        }
    }

    /// Serializes the entry.
    pub fn encode(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    /// Parses and checks the entry stored under `key` in `path`: a known
    /// data type, a valid shape (dimensions >= 0, rank <= 254, element count
    /// within `i64`), non-negative shard, offset and size, and slices that fit
    /// the shape.
    pub fn decode(key: &[u8], value: &[u8], path: &Path) -> Result<Self> {
        let proto = BundleEntryProto::decode(value).map_err(|e| Error::CorruptEntry {
            path: path.to_path_buf(),
            tensor: display_key(key),
            what: format!("entry not parseable: {e}"),
        })?;
        Self::from_proto(key, &proto, path)
    }

    /// Checks a decoded proto (see [`decode`](Self::decode)).
    pub fn from_proto(key: &[u8], proto: &BundleEntryProto, path: &Path) -> Result<Self> {
        let corrupt = |what: String| Error::CorruptEntry {
            path: path.to_path_buf(),
            tensor: display_key(key),
            what,
        };
        let dtype = DType::from_i32(proto.dtype)
            .ok_or_else(|| corrupt(format!("unknown data type {}", proto.dtype)))?;
        let shape = match &proto.shape {
            None => Vec::new(),
            Some(shape) => shape_from_proto(shape).map_err(corrupt)?,
        };
        let shard_id = u32::try_from(proto.shard_id)
            .map_err(|_| corrupt(format!("negative shard id {}", proto.shard_id)))?;
        let offset = u64::try_from(proto.offset)
            .map_err(|_| corrupt(format!("negative offset {}", proto.offset)))?;
        let size = u64::try_from(proto.size)
            .map_err(|_| corrupt(format!("negative size {}", proto.size)))?;
        let mut slices = Vec::with_capacity(proto.slices.len());
        for slice in &proto.slices {
            let slice = TensorSlice::from_proto(slice);
            slice
                .slice_shape(&shape)
                .map_err(|e| corrupt(format!("invalid slice: {e}")))?;
            slices.push(slice);
        }
        Ok(TensorEntry {
            dtype,
            shape,
            shard_id,
            offset,
            size,
            crc32c: proto.crc32c,
            slices,
        })
    }
}

/// The `TensorShapeProto` TensorFlow writes for `shape` (one `Dim` per
/// dimension, no names).
pub fn shape_to_proto(shape: &[i64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: shape
            .iter()
            .map(|&size| Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

/// Serializes entry after entry as [`TensorEntry::encode`] does, through
/// one proto that it keeps: writing an index of 100,000 entries otherwise
/// allocates and frees a proto, its shape and the bytes for each.
#[derive(Default)]
pub(crate) struct EntryEncoder {
    proto: BundleEntryProto,
}

impl EntryEncoder {
    /// Appends the entry's bytes to `out`.
    pub(crate) fn encode_into(&mut self, entry: &TensorEntry, out: &mut Vec<u8>) {
        self.encode_fields(
            entry.dtype,
            &entry.shape,
            entry.shard_id,
            entry.offset,
            entry.size,
            entry.crc32c,
            &entry.slices,
            out,
        );
    }

    /// Appends the bytes of the entry with these fields to `out`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn encode_fields(
        &mut self,
        dtype: DType,
        shape: &[i64],
        shard_id: u32,
        offset: u64,
        size: u64,
        crc32c: u32,
        slices: &[TensorSlice],
        out: &mut Vec<u8>,
    ) {
        let proto = &mut self.proto;
        proto.dtype = dtype.as_i32();
        let dims = &mut proto
            .shape
            .get_or_insert_with(TensorShapeProto::default)
            .dim;
        dims.truncate(shape.len());
        for (dim, &size) in dims.iter_mut().zip(shape) {
            dim.size = size;
        }
        let have = dims.len();
        dims.extend(shape[have..].iter().map(|&size| Dim {
            size,
            name: String::new(),
        }));
        proto.shard_id = shard_id as i32;
        proto.offset = offset as i64;
        proto.size = size as i64;
        proto.crc32c = crc32c;
        proto.slices.clear();
        proto
            .slices
            .extend(slices.iter().map(TensorSlice::to_proto));
        // Encoding into a `Vec` cannot run out of room.
        let _ = proto.encode(out);
    }
}

/// A fully known shape from its proto, with TensorFlow's `TensorShape`
/// validity rules.
fn shape_from_proto(proto: &TensorShapeProto) -> std::result::Result<Vec<i64>, String> {
    if proto.unknown_rank {
        return Err("shape has unknown rank".to_owned());
    }
    let shape: Vec<i64> = proto.dim.iter().map(|d| d.size).collect();
    check_shape(&shape)?;
    Ok(shape)
}

/// Checks that `shape` is a valid fully defined shape and returns its number
/// of elements.
pub(crate) fn check_shape(shape: &[i64]) -> std::result::Result<u64, String> {
    if shape.len() > MAX_RANK {
        return Err(format!(
            "shape has {} dimensions, more than {MAX_RANK}",
            shape.len()
        ));
    }
    if let Some(d) = shape.iter().find(|&&d| d < 0) {
        return Err(format!(
            "shape {} has a negative dimension {d}",
            crate::shape_string(shape)
        ));
    }
    num_elements(shape).ok_or_else(|| {
        format!(
            "shape {} has more than 2^63 elements",
            crate::shape_string(shape)
        )
    })
}

/// The product of the dimensions, `None` on overflow of `i64`.
fn num_elements(shape: &[i64]) -> Option<u64> {
    shape
        .iter()
        .try_fold(1i64, |acc, &d| acc.checked_mul(d))
        .and_then(|n| u64::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slice::Extent;

    #[test]
    fn header_bytes_match_tensorflow() {
        let header = BundleHeader::new(1, Endianness::Little);
        assert_eq!(header.encode(), [0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]);
        let big = BundleHeader::new(1, Endianness::Big);
        assert_eq!(
            big.encode(),
            [0x08, 0x01, 0x10, 0x01, 0x1a, 0x02, 0x08, 0x01]
        );
        let p = Path::new("x.index");
        assert_eq!(BundleHeader::decode(&big.encode(), p).unwrap(), big);
    }

    #[test]
    fn the_reusing_encoder_gives_the_same_bytes() {
        let slice = TensorSlice::new(vec![
            Extent::Range {
                start: 1,
                length: 2,
            },
            Extent::Full,
        ]);
        // Ranks that grow and shrink, an entry with slices then one
        // without, empty and negative-free values: the kept proto must
        // carry nothing over.
        let entries = [
            (vec![2, 3], vec![], 0, 24, 7),
            (vec![], vec![], 1, 8, 0),
            (vec![5, 0, 4, 1], vec![slice.clone()], 0, 0, 0),
            (vec![1 << 40], vec![], 3, 1 << 41, u32::MAX),
            (vec![4, 3], vec![slice], 0, 0, 0),
            (vec![7], vec![], 0, 28, 1),
        ];
        let mut encoder = EntryEncoder::default();
        let mut out = Vec::new();
        for (shape, slices, shard_id, size, crc32c) in entries {
            let entry = TensorEntry {
                dtype: if slices.is_empty() {
                    DType::Double
                } else {
                    DType::Float
                },
                shape,
                shard_id,
                offset: size / 2,
                size,
                crc32c,
                slices,
            };
            out.clear();
            encoder.encode_into(&entry, &mut out);
            assert_eq!(out, entry.encode(), "{entry:?}");
        }
    }

    #[test]
    fn entry_bytes_match_tensorflow() {
        let expected = [
            0x08, 0x01, 0x12, 0x08, 0x12, 0x02, 0x08, 0x02, 0x12, 0x02, 0x08, 0x03, 0x28, 0x18,
            0x35, 0x7a, 0xeb, 0xf5, 0xab,
        ];
        let entry = TensorEntry {
            dtype: DType::Float,
            shape: vec![2, 3],
            shard_id: 0,
            offset: 0,
            size: 24,
            crc32c: 0xabf5_eb7a,
            slices: Vec::new(),
        };
        assert_eq!(entry.encode(), expected);
        assert_eq!(
            TensorEntry::decode(b"W", &expected, Path::new("i")).unwrap(),
            entry
        );

        let scalar = TensorEntry {
            dtype: DType::Int64,
            shape: vec![],
            shard_id: 0,
            offset: 24,
            size: 8,
            crc32c: 1,
            slices: Vec::new(),
        };
        assert_eq!(
            scalar.encode(),
            [
                0x08, 0x09, 0x12, 0x00, 0x20, 0x18, 0x28, 0x08, 0x35, 1, 0, 0, 0
            ]
        );
    }

    #[test]
    fn full_entry_of_partitioned_tensor() {
        let entry = TensorEntry {
            dtype: DType::Float,
            shape: vec![5, 3],
            shard_id: 0,
            offset: 0,
            size: 0,
            crc32c: 0,
            slices: vec![TensorSlice::new(vec![
                Extent::Range {
                    start: 0,
                    length: 3,
                },
                Extent::Full,
            ])],
        };
        let bytes = entry.encode();
        assert_eq!(
            bytes,
            [
                0x08, 0x01, 0x12, 0x08, 0x12, 0x02, 0x08, 0x05, 0x12, 0x02, 0x08, 0x03, 0x3a, 0x06,
                0x0a, 0x02, 0x10, 0x03, 0x0a, 0x00
            ]
        );
        assert_eq!(
            TensorEntry::decode(b"p", &bytes, Path::new("i")).unwrap(),
            entry
        );
    }

    #[test]
    fn invalid_entries_are_rejected() {
        let p = Path::new("i");
        let mut proto = TensorEntry {
            dtype: DType::Float,
            shape: vec![2],
            shard_id: 0,
            offset: 0,
            size: 8,
            crc32c: 0,
            slices: Vec::new(),
        }
        .to_proto();
        proto.dtype = 99;
        assert!(TensorEntry::from_proto(b"x", &proto, p).is_err());
        proto.dtype = 1;
        proto.offset = -1;
        assert!(TensorEntry::from_proto(b"x", &proto, p).is_err());
        proto.offset = 0;
        proto.shape = Some(shape_to_proto(&[-1]));
        assert!(TensorEntry::from_proto(b"x", &proto, p).is_err());
        proto.shape = Some(shape_to_proto(&[1 << 40, 1 << 40]));
        assert!(TensorEntry::from_proto(b"x", &proto, p).is_err());
        proto.shape = Some(shape_to_proto(&[1; 255]));
        assert!(TensorEntry::from_proto(b"x", &proto, p).is_err());
        proto.shape = Some(shape_to_proto(&[2]));
        proto.slices = vec![TensorSlice::full(2).to_proto()];
        assert!(TensorEntry::from_proto(b"x", &proto, p).is_err());
        assert!(TensorEntry::decode(b"x", &[0xff], p).is_err());
    }

    #[test]
    fn version_checks() {
        let p = Path::new("i");
        let mut v = BundleHeader::new(1, Endianness::Little).version;
        assert!(check_version(&v, p).is_ok());
        v.producer = -1;
        assert!(check_version(&v, p).is_err());
        v.producer = 1;
        v.min_consumer = 2;
        assert!(check_version(&v, p).is_err());
        v.min_consumer = 0;
        v.bad_consumers = vec![1];
        assert!(check_version(&v, p).is_err());
        v.bad_consumers = vec![2];
        assert!(check_version(&v, p).is_ok());
    }
}
