//! Variable values that are not held in memory: a [`TensorSource`] is read
//! when the checkpoint is written, chunk by chunk, straight into the data
//! file.
//!
//! A [`VariableValue`] is what [`Graph::variable`](crate::Graph::variable)
//! takes: either an owned [`Tensor`] (shared, never copied, once in the
//! graph) or a source. Sources let a SavedModel be built from weights far
//! larger than memory: what the builder holds for a source is the source
//! itself (for a memory-mapped weights file, a reference to the map), and
//! writing streams it through the checkpoint writer's 1 MiB buffer
//! ([`savedmodel_checkpoint::DEFAULT_BUFFER_SIZE`]).

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;

use savedmodel_checkpoint::DType;

use crate::error::{Error, Result};
use crate::tensor::{Tensor, TensorElements};

/// Size of the buffer a [`SourceData::Reader`] is read through.
pub(crate) const CHUNK_SIZE: usize = savedmodel_checkpoint::DEFAULT_BUFFER_SIZE;

/// The value of a fixed-size tensor that is read when it is needed (when
/// the checkpoint is written) rather than held in memory.
///
/// Implement it to stream a variable's value from a file, a memory map or a
/// computation. It is opened once per checkpoint written (and once more per
/// comparison when two MetaGraphs save a variable under the same name from
/// two different sources), so [`open`](TensorSource::open) must give the
/// same bytes every time.
///
/// ```
/// use std::io::Read;
/// use savedmodel_graph::{SourceData, TensorSource, VariableValue};
/// use savedmodel_graph::{DType, Graph};
///
/// /// One million zeros, never in memory at once.
/// #[derive(Debug)]
/// struct Zeros;
///
/// impl TensorSource for Zeros {
///     fn dtype(&self) -> DType {
///         DType::Float
///     }
///     fn shape(&self) -> &[i64] {
///         &[1000, 1000]
///     }
///     fn open(&self) -> savedmodel_graph::Result<SourceData<'_>> {
///         Ok(SourceData::Reader(Box::new(std::io::repeat(0).take(4_000_000))))
///     }
/// }
///
/// let mut g = Graph::new();
/// let w = g.variable("w", VariableValue::from_source(Zeros))?;
/// assert_eq!(w.shape().dims(), Some(&[1000, 1000][..]));
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait TensorSource: Send + Sync + fmt::Debug {
    /// The element type: any type of fixed size (not `DT_STRING`).
    fn dtype(&self) -> DType;

    /// The dimensions (empty for a scalar).
    fn shape(&self) -> &[i64];

    /// The elements, row-major, in little-endian byte order: exactly
    /// `num_elements * element_size` bytes (more or fewer is an error when
    /// the checkpoint is written).
    fn open(&self) -> Result<SourceData<'_>>;
}

/// The bytes a [`TensorSource`] gives.
#[non_exhaustive]
pub enum SourceData<'a> {
    /// All of them at once, borrowed (from a memory map, say) or owned: a
    /// borrowed slice is written to the checkpoint without being copied.
    Bytes(Cow<'a, [u8]>),
    /// A reader of them, read 1 MiB at a time.
    Reader(Box<dyn Read + 'a>),
}

impl fmt::Debug for SourceData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceData::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            SourceData::Reader(_) => f.write_str("Reader(..)"),
        }
    }
}

/// A variable's value: an owned [`Tensor`] or a [`TensorSource`] read when
/// the checkpoint is written.
///
/// Cloning is cheap (both are reference-counted), so the graph, the
/// MetaGraph and the SavedModel builder share one value instead of copying
/// it. `From<Tensor>` makes [`Graph::variable`](crate::Graph::variable)
/// take a plain [`Tensor`].
#[derive(Clone, Debug)]
pub struct VariableValue {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    Tensor(Arc<Tensor>),
    Source(Arc<dyn TensorSource>),
}

impl From<Tensor> for VariableValue {
    fn from(tensor: Tensor) -> Self {
        VariableValue {
            repr: Repr::Tensor(Arc::new(tensor)),
        }
    }
}

impl From<Arc<Tensor>> for VariableValue {
    fn from(tensor: Arc<Tensor>) -> Self {
        VariableValue {
            repr: Repr::Tensor(tensor),
        }
    }
}

impl From<Arc<dyn TensorSource>> for VariableValue {
    fn from(source: Arc<dyn TensorSource>) -> Self {
        VariableValue {
            repr: Repr::Source(source),
        }
    }
}

/// `num_elements(shape) * element_size(dtype)` for a fixed-size dtype, or
/// what is wrong.
pub(crate) fn fixed_byte_size(dtype: DType, shape: &[i64]) -> std::result::Result<u64, String> {
    let size = dtype.element_size().ok_or_else(|| {
        format!("{dtype} has no fixed element size; a streamed value must have one")
    })?;
    let mut n = size as u64;
    for &d in shape {
        let d =
            u64::try_from(d).map_err(|_| format!("shape {shape:?} has a negative dimension"))?;
        n = n
            .checked_mul(d)
            .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    }
    Ok(n)
}

impl VariableValue {
    /// A value read from `source` when the checkpoint is written.
    pub fn from_source(source: impl TensorSource + 'static) -> Self {
        VariableValue {
            repr: Repr::Source(Arc::new(source)),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match &self.repr {
            Repr::Tensor(t) => t.dtype(),
            Repr::Source(s) => s.dtype(),
        }
    }

    /// The dimensions (empty for a scalar).
    pub fn shape(&self) -> &[i64] {
        match &self.repr {
            Repr::Tensor(t) => t.shape(),
            Repr::Source(s) => s.shape(),
        }
    }

    /// The tensor, when the value is held in memory.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match &self.repr {
            Repr::Tensor(t) => Some(t),
            Repr::Source(_) => None,
        }
    }

    /// The source, when the value is streamed.
    pub fn source(&self) -> Option<&Arc<dyn TensorSource>> {
        match &self.repr {
            Repr::Tensor(_) => None,
            Repr::Source(s) => Some(s),
        }
    }

    /// Checks that a source's dtype and shape can be streamed (a fixed-size
    /// dtype, a shape whose byte size fits in 64 bits).
    pub fn check(&self, node: &str) -> Result<()> {
        if let Repr::Source(s) = &self.repr {
            fixed_byte_size(s.dtype(), s.shape()).map_err(|what| Error::Graph {
                node: node.to_owned(),
                what,
            })?;
        }
        Ok(())
    }

    /// Calls `f` with the element bytes (little-endian, row-major) in
    /// consecutive chunks: one chunk for a tensor in memory or a source that
    /// lends all its bytes, chunks of at most 1 MiB for a reader. Fails,
    /// before `f` sees the extra bytes, when a source gives more bytes than
    /// its dtype and shape take, and at the end when it gives fewer.
    /// `name` is the variable, for errors; `f`'s own errors (a checkpoint
    /// writer's, say) are passed through as they are.
    pub fn for_each_chunk<E: From<Error>>(
        &self,
        name: &str,
        f: &mut dyn FnMut(&[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let fail = |what: String| Error::Graph {
            node: name.to_owned(),
            what,
        };
        let source = match &self.repr {
            Repr::Tensor(t) => {
                return match t.data() {
                    TensorElements::Bytes(b) => f(b),
                    TensorElements::Strings(_) => {
                        Err(fail("a DT_STRING value cannot be streamed".into()).into())
                    }
                };
            }
            Repr::Source(s) => s,
        };
        let (dtype, shape) = (source.dtype(), source.shape());
        let expected = fixed_byte_size(dtype, shape).map_err(fail)?;
        let mut chunks = Chunks::new(source.open()?);
        let mut seen = 0u64;
        loop {
            let chunk = chunks
                .fill(1)
                .map_err(|e| fail(format!("reading the variable's value failed: {e}")))?;
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len();
            seen = seen.saturating_add(n as u64);
            if seen > expected {
                return Err(fail(format!(
                    "its source gives more than the {expected} bytes {dtype} {shape:?} takes"
                ))
                .into());
            }
            f(chunk)?;
            chunks.consume(n);
        }
        if seen != expected {
            return Err(fail(format!(
                "its source gives {seen} bytes, but {dtype} {shape:?} takes {expected}"
            ))
            .into());
        }
        Ok(())
    }

    /// The value as an owned [`Tensor`]: borrowed when it is one, read into
    /// memory (the whole tensor) when it is a source.
    pub fn to_tensor(&self) -> Result<Cow<'_, Tensor>> {
        let s = match &self.repr {
            Repr::Tensor(t) => return Ok(Cow::Borrowed(t)),
            Repr::Source(s) => s,
        };
        let expected =
            fixed_byte_size(s.dtype(), s.shape()).map_err(|what| Error::InvalidTensor {
                what: format!("{what} ({s:?})"),
            })?;
        let mut data = Vec::with_capacity(usize::try_from(expected).unwrap_or(0).min(1 << 30));
        self.for_each_chunk("streamed value", &mut |c| {
            data.extend_from_slice(c);
            Ok(())
        })?;
        Tensor::from_bytes(s.dtype(), s.shape(), data).map(Cow::Owned)
    }

    /// Whether the two values hold the same dtype, shape and elements.
    /// Values that are clones of one another compare without being read;
    /// otherwise sources are read in step, 1 MiB at a time.
    pub fn same_value(&self, other: &VariableValue) -> Result<bool> {
        if self.dtype() != other.dtype() || self.shape() != other.shape() {
            return Ok(false);
        }
        match (&self.repr, &other.repr) {
            (Repr::Tensor(a), Repr::Tensor(b)) => return Ok(Arc::ptr_eq(a, b) || a == b),
            (Repr::Source(a), Repr::Source(b)) if Arc::ptr_eq(a, b) => return Ok(true),
            _ => {}
        }
        let (mut a, mut b) = (self.chunks()?, other.chunks()?);
        let read_error = |e: io::Error| Error::InvalidTensor {
            what: format!("reading a variable's value failed: {e}"),
        };
        loop {
            let ca = a.fill(1).map_err(read_error)?;
            let cb = b.fill(1).map_err(read_error)?;
            let n = ca.len().min(cb.len());
            if n == 0 {
                return Ok(ca.is_empty() && cb.is_empty());
            }
            if ca[..n] != cb[..n] {
                return Ok(false);
            }
            a.consume(n);
            b.consume(n);
        }
    }

    /// The element bytes, to read in step with another value's.
    fn chunks(&self) -> Result<Chunks<'_>> {
        Ok(Chunks::new(match &self.repr {
            Repr::Tensor(t) => match t.data() {
                TensorElements::Bytes(b) => SourceData::Bytes(Cow::Borrowed(b)),
                // A source is never a string tensor, so two values of the
                // same dtype reach here only as fixed-size ones.
                TensorElements::Strings(_) => {
                    return Err(Error::InvalidTensor {
                        what: "a DT_STRING value cannot be compared with a streamed one".into(),
                    });
                }
            },
            Repr::Source(s) => s.open()?,
        }))
    }

    /// The elements of a `DT_FLOAT` value as `f32`s (streamed from a
    /// source without an intermediate byte copy); `None` for other dtypes.
    pub fn to_f32_vec(&self) -> Result<Option<Vec<f32>>> {
        if self.dtype() != DType::Float {
            return Ok(None);
        }
        let mut values = Vec::new();
        let mut carry: Vec<u8> = Vec::with_capacity(4);
        self.for_each_chunk("value", &mut |mut c| {
            if !carry.is_empty() {
                let take = (4 - carry.len()).min(c.len());
                carry.extend_from_slice(&c[..take]);
                c = &c[take..];
                if carry.len() == 4 {
                    values.push(f32::from_le_bytes([carry[0], carry[1], carry[2], carry[3]]));
                    carry.clear();
                }
            }
            let whole = c.len() / 4 * 4;
            values.extend(
                c[..whole]
                    .chunks_exact(4)
                    .map(|e| f32::from_le_bytes([e[0], e[1], e[2], e[3]])),
            );
            carry.extend_from_slice(&c[whole..]);
            Ok(())
        })?;
        Ok(Some(values))
    }
}

/// The bytes of a [`SourceData`], consumed like a `BufRead`: a borrowed or
/// owned slice is handed out whole, a reader through a `CHUNK_SIZE`
/// buffer.
pub struct Chunks<'a> {
    data: SourceData<'a>,
    pos: usize,
    buf: Vec<u8>,
    filled: usize,
    eof: bool,
}

impl<'a> Chunks<'a> {
    /// Starts reading `data`.
    pub fn new(data: SourceData<'a>) -> Self {
        Chunks {
            data,
            pos: 0,
            buf: Vec::new(),
            filled: 0,
            eof: false,
        }
    }

    /// The bytes not consumed yet: at least `min` (at most 16) unless the
    /// data ends first; empty at the end.
    pub fn fill(&mut self, min: usize) -> io::Result<&[u8]> {
        let reader = match &mut self.data {
            SourceData::Bytes(b) => return Ok(b.get(self.pos..).unwrap_or_default()),
            SourceData::Reader(r) => r,
        };
        let min = min.clamp(1, 16);
        if self.filled - self.pos < min && !self.eof {
            if self.buf.is_empty() {
                self.buf = vec![0u8; CHUNK_SIZE];
            }
            self.buf.copy_within(self.pos..self.filled, 0);
            self.filled -= self.pos;
            self.pos = 0;
            while self.filled < min {
                match reader.read(&mut self.buf[self.filled..]) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(n) => self.filled += n.min(self.buf.len() - self.filled),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    /// Marks `n` bytes of what [`fill`](Self::fill) gave as consumed.
    pub fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most 3 bytes per call.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(3).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[derive(Debug)]
    struct Floats {
        bytes: Vec<u8>,
        shape: Vec<i64>,
        trickle: bool,
    }

    impl TensorSource for Floats {
        fn dtype(&self) -> DType {
            DType::Float
        }
        fn shape(&self) -> &[i64] {
            &self.shape
        }
        fn open(&self) -> Result<SourceData<'_>> {
            Ok(if self.trickle {
                SourceData::Reader(Box::new(Trickle(&self.bytes)))
            } else {
                SourceData::Bytes(Cow::Borrowed(&self.bytes))
            })
        }
    }

    fn floats(values: &[f32], shape: &[i64], trickle: bool) -> VariableValue {
        VariableValue::from_source(Floats {
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            shape: shape.to_vec(),
            trickle,
        })
    }

    #[test]
    fn sources_stream_and_compare_with_tensors() {
        let values = [1.0f32, -2.5, 3.25, 0.0, 7.0];
        let tensor = VariableValue::from(Tensor::new(&[5], &values).unwrap());
        for trickle in [false, true] {
            let v = floats(&values, &[5], trickle);
            assert_eq!(v.to_f32_vec().unwrap().unwrap(), values);
            assert_eq!(v.to_tensor().unwrap().as_ref(), tensor.as_tensor().unwrap());
            assert!(v.same_value(&tensor).unwrap());
            assert!(tensor.same_value(&v).unwrap());
            assert!(v.same_value(&v.clone()).unwrap());
            let other = floats(&[1.0, -2.5, 3.25, 0.0, 7.5], &[5], !trickle);
            assert!(!v.same_value(&other).unwrap());
            assert!(!v.same_value(&floats(&values, &[5, 1], trickle)).unwrap());
        }
    }

    #[test]
    fn sources_of_the_wrong_size_fail() {
        for trickle in [false, true] {
            let short = floats(&[1.0, 2.0], &[3], trickle);
            let err: Error = short.for_each_chunk("v", &mut |_| Ok(())).unwrap_err();
            assert!(err.to_string().contains("gives 8 bytes"), "{err}");
            let long = floats(&[1.0, 2.0, 3.0, 4.0], &[3], trickle);
            let mut seen = 0;
            let err: Error = long
                .for_each_chunk("v", &mut |c| {
                    seen += c.len();
                    Ok(())
                })
                .unwrap_err();
            assert!(err.to_string().contains("more than the 12 bytes"), "{err}");
            assert!(seen <= 12);
        }
        let strings = VariableValue::from(Tensor::string("x"));
        assert!(
            strings
                .for_each_chunk::<Error>("s", &mut |_| Ok(()))
                .is_err()
        );
    }

    #[test]
    fn chunks_gather_at_least_min_bytes() {
        let bytes: Vec<u8> = (0..10).collect();
        let mut c = Chunks::new(SourceData::Reader(Box::new(Trickle(&bytes))));
        assert_eq!(c.fill(8).unwrap(), &bytes[..9]);
        c.consume(8);
        assert_eq!(c.fill(8).unwrap(), &bytes[8..]);
        c.consume(2);
        assert!(c.fill(8).unwrap().is_empty());
    }
}
