//! A pass over a `ModelProto`'s wire format that counts what decoding would
//! allocate (messages, nodes, tensors, attributes, dims, packed integers)
//! and how deep messages nest, and stops at the first limit crossed.
//!
//! prost decodes straight into `Vec`s and has no hook to refuse a message
//! part-way, so the counts are taken before decoding, by walking the bytes
//! with a table of which fields of which message hold sub-messages
//! ([`child`], facts from `proto/onnx/onnx.proto`). Fields not in the table
//! are skipped by their wire type; bytes and strings are skipped by length
//! without being read, so the scan of a model with 2 GiB of `raw_data` costs
//! a few microseconds per tensor.

use crate::error::{Error, Result};
use crate::limits::Limits;

/// The messages the scan descends into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Model,
    Graph,
    Node,
    Attribute,
    Tensor,
    SparseTensor,
    ValueInfo,
    TensorAnnotation,
    Type,
    TypeTensor,
    TypeElement,
    TypeMap,
    Shape,
    TrainingInfo,
    Function,
    NodeDeviceConfiguration,
    ShardingSpec,
    ShardedDim,
    /// A message with no message fields below it that the scan needs to
    /// count (string pairs, opset ids, segments, dimensions, ...).
    Leaf,
    /// `TensorShapeProto.Dimension`: a leaf counted as a dim.
    Dimension,
}

/// The kind of message in field `field` of a `kind` message, if that field
/// holds messages.
fn child(kind: Kind, field: u32) -> Option<Kind> {
    use Kind::*;
    Some(match (kind, field) {
        (Model, 7) => Graph,
        (Model, 8 | 14 | 26) => Leaf,
        (Model, 20) => TrainingInfo,
        (Model, 25) => Function,
        (Graph, 1) => Node,
        (Graph, 5) => Tensor,
        (Graph, 15) => SparseTensor,
        (Graph, 11..=13) => ValueInfo,
        (Graph, 14) => TensorAnnotation,
        (Graph, 16) => Leaf,
        (Node, 5) => Attribute,
        (Node, 9) => Leaf,
        (Node, 10) => NodeDeviceConfiguration,
        (NodeDeviceConfiguration, 2) => ShardingSpec,
        (ShardingSpec, 3) => Leaf,
        (ShardingSpec, 4) => ShardedDim,
        (ShardedDim, 2) => Leaf,
        (Attribute, 5 | 10) => Tensor,
        (Attribute, 6 | 11) => Graph,
        (Attribute, 22 | 23) => SparseTensor,
        (Attribute, 14 | 15) => Type,
        (Tensor, 3 | 13 | 16) => Leaf,
        (SparseTensor, 1 | 2) => Tensor,
        (ValueInfo, 2) => Type,
        (ValueInfo, 4) => Leaf,
        (TensorAnnotation, 2) => Leaf,
        // tensor_type and sparse_tensor_type have the same layout.
        (Type, 1 | 8) => TypeTensor,
        (Type, 4 | 9) => TypeElement,
        (Type, 5) => TypeMap,
        (Type, 7) => Leaf,
        (TypeTensor, 2) => Shape,
        (TypeElement, 1) => Type,
        (TypeMap, 2) => Type,
        (Shape, 1) => Dimension,
        (TrainingInfo, 1 | 2) => Graph,
        (TrainingInfo, 3 | 4) => Leaf,
        (Function, 7) => Node,
        (Function, 11) => Attribute,
        (Function, 9 | 14) => Leaf,
        (Function, 12) => ValueInfo,
        _ => return None,
    })
}

/// What a packed or repeated integer field counts towards.
fn integer_count(kind: Kind, field: u32) -> Option<Counter> {
    match (kind, field) {
        (Kind::Tensor, 1) | (Kind::SparseTensor, 3) => Some(Counter::Dims),
        (Kind::Tensor, 5 | 7 | 11) | (Kind::Attribute, 8) => Some(Counter::Integers),
        _ => None,
    }
}

/// The counters, indexing [`Counts::values`].
#[derive(Clone, Copy)]
enum Counter {
    Messages,
    Nodes,
    Tensors,
    Attributes,
    Dims,
    Integers,
}

/// Totals found by [`scan`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    values: [u64; 6],
}

impl Counts {
    /// How many nodes the model has, in all graphs and functions.
    #[cfg(test)]
    pub(crate) fn nodes(&self) -> u64 {
        self.values[Counter::Nodes as usize]
    }
}

/// The scan's state: the bytes, the limits, the totals so far.
struct Scanner<'a> {
    bytes: &'a [u8],
    limits: &'a Limits,
    model: &'a str,
    counts: Counts,
}

/// Scans `bytes` as a `ModelProto`, checking `limits`.
pub(crate) fn scan(bytes: &[u8], limits: &Limits, model: &str) -> Result<Counts> {
    let mut scanner = Scanner {
        bytes,
        limits,
        model,
        counts: Counts::default(),
    };
    scanner.message(Kind::Model, 0, bytes.len(), 0)?;
    Ok(scanner.counts)
}

impl Scanner<'_> {
    fn malformed(&self, offset: usize, what: &str) -> Error {
        Error::Malformed {
            model: self.model.to_owned(),
            detail: format!("{what} at byte {offset}"),
        }
    }

    /// Adds `n` to a counter, failing when it goes over its limit.
    fn count(&mut self, counter: Counter, n: u64) -> Result<()> {
        let (item, limit) = match counter {
            Counter::Messages => ("messages", self.limits.max_messages),
            Counter::Nodes => ("nodes", self.limits.max_nodes),
            Counter::Tensors => ("tensors", self.limits.max_tensors),
            Counter::Attributes => ("attributes", self.limits.max_attributes),
            Counter::Dims => ("dims", self.limits.max_dims),
            Counter::Integers => ("packed integers", self.limits.max_integers),
        };
        let value = &mut self.counts.values[counter as usize];
        *value = value.saturating_add(n);
        if *value > limit {
            return Err(Error::TooMany {
                model: self.model.to_owned(),
                item,
                count: *value,
                limit,
            });
        }
        Ok(())
    }

    /// Reads a varint at `*pos`, advancing it.
    fn varint(&self, pos: &mut usize, end: usize) -> Result<u64> {
        let start = *pos;
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.bytes.get(*pos).filter(|_| *pos < end) else {
                return Err(self.malformed(start, "truncated varint"));
            };
            *pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.malformed(start, "varint longer than 10 bytes"))
    }

    /// Scans the message of kind `kind` in `bytes[start..end]`, nested
    /// `depth` levels below the model.
    fn message(&mut self, kind: Kind, start: usize, end: usize, depth: u32) -> Result<()> {
        if depth > self.limits.max_depth {
            return Err(Error::TooMany {
                model: self.model.to_owned(),
                item: "nesting levels",
                count: u64::from(depth),
                limit: u64::from(self.limits.max_depth),
            });
        }
        self.count(Counter::Messages, 1)?;
        match kind {
            Kind::Node => self.count(Counter::Nodes, 1)?,
            Kind::Tensor => self.count(Counter::Tensors, 1)?,
            Kind::Attribute => self.count(Counter::Attributes, 1)?,
            Kind::Dimension => self.count(Counter::Dims, 1)?,
            _ => {}
        }
        let mut pos = start;
        while pos < end {
            let key_at = pos;
            let key = self.varint(&mut pos, end)?;
            let field = u32::try_from(key >> 3).unwrap_or(u32::MAX);
            if field == 0 {
                return Err(self.malformed(key_at, "field number 0"));
            }
            match key & 7 {
                0 => {
                    self.varint(&mut pos, end)?;
                    if let Some(counter) = integer_count(kind, field) {
                        self.count(counter, 1)?;
                    }
                }
                1 => pos = self.skip(key_at, pos, 8, end)?,
                5 => pos = self.skip(key_at, pos, 4, end)?,
                2 => {
                    let len = self.varint(&mut pos, end)?;
                    let body = pos;
                    pos = self.skip(key_at, pos, len, end)?;
                    if let Some(sub) = child(kind, field) {
                        self.message(sub, body, pos, depth + 1)?;
                    } else if let Some(counter) = integer_count(kind, field) {
                        // A packed list: one element per byte without the
                        // continuation bit.
                        let n = self.bytes[body..pos].iter().filter(|b| *b & 0x80 == 0);
                        self.count(counter, n.count() as u64)?;
                    }
                }
                wire => {
                    return Err(self.malformed(key_at, &format!("unsupported wire type {wire}")));
                }
            }
        }
        Ok(())
    }

    /// The position `len` bytes after `pos`, if that is within `end`.
    fn skip(&self, key_at: usize, pos: usize, len: u64, end: usize) -> Result<usize> {
        usize::try_from(len)
            .ok()
            .and_then(|len| pos.checked_add(len))
            .filter(|next| *next <= end)
            .ok_or_else(|| self.malformed(key_at, "field runs past the end of its message"))
    }
}
