//! What the reader accepts: versions and the limits on a model's size and
//! shape, checked before anything is decoded.

/// The oldest IR version read: 3 (`IR_VERSION_2017_11_3`), the first with
/// `opset_import` (`proto/onnx/onnx.proto`, enum `Version`).
pub const MIN_IR_VERSION: i64 = 3;

/// The newest IR version read: `IR_VERSION` of the onnx 1.23 release (14).
pub const MAX_IR_VERSION: i64 = 14;

/// The oldest opset of the default domain (`""` or `"ai.onnx"`) read: 1.
/// Operators of opsets 1 to 6 convert where they compute what opset 7's
/// do, or where the difference has a rule (`convert/ops/legacy.rs`); the
/// rest are refused by name.
pub const MIN_ONNX_OPSET: i64 = 1;

/// The newest opset of the default domain read: the last released version
/// of onnx 1.23 (`last_release_version_map_[ONNX_DOMAIN]` in
/// `onnx/defs/schema.h`, `onnx.defs.onnx_opset_version()`: 28).
pub const MAX_ONNX_OPSET: i64 = 28;

/// The default domain's two spellings.
pub(crate) fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// Bounds on a model, checked by a scan of the wire format before prost
/// decodes it, so that a hostile file cannot make the decoder allocate far
/// more memory than the file's size (every empty message on the wire is two
/// bytes; decoded, it is a struct of a few hundred bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest model file, in bytes. Default: 2 GiB - 1, protobuf's own
    /// limit on a message; larger weights live in external data files,
    /// which have no limit.
    pub max_file_size: u64,
    /// Deepest nesting of messages (the `ModelProto` is level 0; a subgraph
    /// of a node of the main graph is level 4). Default: 64. prost stops
    /// at 100 levels whatever this says (`RECURSION_LIMIT` in prost 0.14),
    /// so values above 99 leave the check to prost's decode error.
    pub max_depth: u32,
    /// Most messages of any kind in the whole model. Default: 16 Mi.
    pub max_messages: u64,
    /// Most nodes (`NodeProto`), in all graphs and functions. Default: 4 Mi.
    pub max_nodes: u64,
    /// Most tensors (`TensorProto`: initializers, attribute values, sparse
    /// parts). Default: 4 Mi.
    pub max_tensors: u64,
    /// Most attributes (`AttributeProto`). Default: 8 Mi.
    pub max_attributes: u64,
    /// Most dimensions: tensor `dims` entries plus shape `Dimension`s.
    /// Default: 16 Mi.
    pub max_dims: u64,
    /// Most integers in packed integer lists (`int32_data`, `int64_data`,
    /// `uint64_data`, attribute `ints`), each decoded to 4 or 8 bytes
    /// however short its varint. Default: 256 Mi (2 GiB decoded).
    pub max_integers: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_size: i32::MAX as u64,
            max_depth: 64,
            max_messages: 16 << 20,
            max_nodes: 4 << 20,
            max_tensors: 4 << 20,
            max_attributes: 8 << 20,
            max_dims: 16 << 20,
            max_integers: 256 << 20,
        }
    }
}
