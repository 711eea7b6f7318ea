//! Where an export's weights come from: the [`WeightSource`] trait, an
//! in-memory implementation ([`Weights`]) for weights computed in Rust, and
//! the conversions to `float32` that every model here computes in.
//!
//! A source that can share its tensors ([`WeightSource::shared_tensor`]:
//! [`WeightsFile`](super::WeightsFile) and [`Weights`] do) has them streamed
//! into the checkpoint when the SavedModel is written, converted to
//! `float32` chunk by chunk when they are `float16`, `bfloat16` or
//! `float64`: the export then holds no copy of any weight.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use savedmodel_checkpoint::DType;

use crate::error::Result;
use savedmodel_graph::Error as GraphError;
use savedmodel_graph::{Chunks, SourceData, TensorSource, VariableValue};

/// One tensor of a weights file: dtype, shape and little-endian row-major
/// element bytes (borrowed from a memory map where the source can).
#[derive(Clone, Debug, PartialEq)]
pub struct WeightTensor<'a> {
    /// The element type.
    pub dtype: DType,
    /// The dimensions.
    pub shape: Vec<i64>,
    /// The element bytes.
    pub data: Cow<'a, [u8]>,
}

/// A set of named tensors to export from: a safetensors file, an `.npz`
/// archive, a TensorFlow checkpoint, or tensors in memory.
pub trait WeightSource {
    /// The file (or prefix) the tensors come from, for messages.
    fn origin(&self) -> &Path;

    /// Every tensor name, sorted (used to suggest a name when the spec's
    /// is not found).
    fn names(&self) -> Vec<String>;

    /// The tensor `name`, or `None` when there is no such tensor.
    fn tensor(&self, name: &str) -> Result<Option<WeightTensor<'_>>>;

    /// The tensor `name` as a [`TensorSource`] that stays valid after
    /// `self` is gone (holding, say, a reference to a memory map), for the
    /// export to stream into the checkpoint instead of copying it into
    /// memory. `None` (the default) when the source cannot share its
    /// tensors: the export then copies each weight it uses.
    fn shared_tensor(&self, name: &str) -> Result<Option<Arc<dyn TensorSource>>> {
        let _ = name;
        Ok(None)
    }
}

/// Tensors held in memory, e.g. weights trained in Rust.
///
/// ```
/// use savedmodel_export::{Weights, WeightSource};
///
/// let mut weights = Weights::new();
/// weights.insert_f32("dense/kernel", &[2, 1], &[0.5, -1.0])?;
/// assert_eq!(weights.names(), ["dense/kernel"]);
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Weights {
    origin: PathBuf,
    tensors: BTreeMap<String, Arc<MemoryTensor>>,
}

/// One tensor of [`Weights`], shared with the exports made from them.
#[derive(Debug)]
struct MemoryTensor {
    dtype: DType,
    shape: Vec<i64>,
    data: Vec<u8>,
}

impl TensorSource for MemoryTensor {
    fn dtype(&self) -> DType {
        self.dtype
    }

    fn shape(&self) -> &[i64] {
        &self.shape
    }

    fn open(&self) -> savedmodel_graph::Result<SourceData<'_>> {
        Ok(SourceData::Bytes(Cow::Borrowed(&self.data)))
    }
}

/// The origin [`Weights`] report: they come from no file.
pub const IN_MEMORY_ORIGIN: &str = "<in memory>";

impl Weights {
    /// No tensors yet.
    pub fn new() -> Self {
        Weights {
            origin: PathBuf::from(IN_MEMORY_ORIGIN),
            tensors: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a `float32` tensor.
    pub fn insert_f32(&mut self, name: &str, shape: &[i64], values: &[f32]) -> Result<()> {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.insert_bytes(name, DType::Float, shape, bytes)
    }

    /// Adds (or replaces) a tensor of any fixed-size dtype from its
    /// little-endian element bytes.
    pub fn insert_bytes(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[i64],
        data: Vec<u8>,
    ) -> Result<()> {
        let expected = byte_size(dtype, shape).ok_or_else(|| GraphError::InvalidTensor {
            what: format!("{name}: {dtype} tensor of shape {shape:?} has no fixed byte size"),
        })?;
        if expected != data.len() {
            return Err(GraphError::InvalidTensor {
                what: format!(
                    "{name}: {dtype} tensor of shape {shape:?} needs {expected} bytes, got {}",
                    data.len()
                ),
            }
            .into());
        }
        let tensor = MemoryTensor {
            dtype,
            shape: shape.to_vec(),
            data,
        };
        self.tensors.insert(name.to_owned(), Arc::new(tensor));
        Ok(())
    }
}

impl WeightSource for Weights {
    fn origin(&self) -> &Path {
        &self.origin
    }

    fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    fn tensor(&self, name: &str) -> Result<Option<WeightTensor<'_>>> {
        Ok(self.tensors.get(name).map(|t| WeightTensor {
            dtype: t.dtype,
            shape: t.shape.clone(),
            data: Cow::Borrowed(&t.data),
        }))
    }

    fn shared_tensor(&self, name: &str) -> Result<Option<Arc<dyn TensorSource>>> {
        Ok(self
            .tensors
            .get(name)
            .map(|t| Arc::clone(t) as Arc<dyn TensorSource>))
    }
}

/// `num_elements(shape) * element_size(dtype)`, `None` on a negative
/// dimension, an overflow or a dtype without fixed size.
pub(crate) fn byte_size(dtype: DType, shape: &[i64]) -> Option<usize> {
    let mut n = dtype.element_size()?;
    for &d in shape {
        n = n.checked_mul(usize::try_from(d).ok()?)?;
    }
    Some(n)
}

/// The dtypes a weight may have; all are converted to `float32`.
pub const SUPPORTED_DTYPES: &[DType] = &[DType::Float, DType::Half, DType::BFloat16, DType::Double];

/// Checks that `t` can be read as `float32`: a floating-point dtype and as
/// many bytes as its shape takes. `Err` says what is wrong.
pub(crate) fn check_f32(t: &WeightTensor<'_>) -> std::result::Result<(), String> {
    let expected = byte_size(t.dtype, &t.shape).ok_or_else(|| {
        format!(
            "has dtype {} and shape {:?}, which has no fixed size",
            t.dtype, t.shape
        )
    })?;
    if expected != t.data.len() {
        return Err(format!(
            "holds {} bytes, but {} {:?} needs {expected}",
            t.data.len(),
            t.dtype,
            t.shape
        ));
    }
    if !SUPPORTED_DTYPES.contains(&t.dtype) {
        return Err(format!(
            "has dtype {}; weights must be float32, float16, bfloat16 or float64",
            t.dtype
        ));
    }
    Ok(())
}

/// `float32` bytes of elements of `from` (`float16`, `bfloat16`, `float64`
/// or `float32`): converts the whole elements of `input` that fit in `out`,
/// returns `(input bytes used, output bytes written)`. Rounds to nearest as
/// `half`'s and Rust's conversions do (the same values as [`to_f32`]).
fn convert_to_f32(from: DType, input: &[u8], out: &mut [u8]) -> (usize, usize) {
    /// Elements converted per block (`float16` goes through typed arrays so
    /// that `half` converts a whole slice with F16C where the CPU has it).
    const BLOCK: usize = 1024;
    let size = from.element_size().unwrap_or(4);
    let n = (input.len() / size).min(out.len() / 4);
    let (input, out) = (&input[..n * size], &mut out[..n * 4]);
    match from {
        DType::Half => {
            use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
            let mut bits = [0u16; BLOCK];
            let mut floats = [0f32; BLOCK];
            for (i, o) in input.chunks(BLOCK * 2).zip(out.chunks_mut(BLOCK * 4)) {
                let k = i.len() / 2;
                for (b, e) in bits.iter_mut().zip(i.chunks_exact(2)) {
                    *b = u16::from_le_bytes([e[0], e[1]]);
                }
                let halves: &[half::f16] = bits[..k].reinterpret_cast();
                halves.convert_to_f32_slice(&mut floats[..k]);
                for (o, f) in o.chunks_exact_mut(4).zip(&floats[..k]) {
                    o.copy_from_slice(&f.to_le_bytes());
                }
            }
        }
        DType::BFloat16 => {
            for (o, e) in out.chunks_exact_mut(4).zip(input.chunks_exact(2)) {
                let f = half::bf16::from_le_bytes([e[0], e[1]]).to_f32();
                o.copy_from_slice(&f.to_le_bytes());
            }
        }
        DType::Double => {
            for (o, e) in out.chunks_exact_mut(4).zip(input.chunks_exact(8)) {
                let d = f64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]);
                o.copy_from_slice(&(d as f32).to_le_bytes());
            }
        }
        _ => out.copy_from_slice(input),
    }
    (n * size, n * 4)
}

/// A shared `float16`, `bfloat16` or `float64` tensor seen as `float32`:
/// converted chunk by chunk as it is read, never whole.
#[derive(Debug)]
pub(crate) struct AsF32 {
    inner: Arc<dyn TensorSource>,
}

impl AsF32 {
    /// The tensor `inner` as `float32` (as is when it already is).
    pub(crate) fn value(inner: Arc<dyn TensorSource>) -> VariableValue {
        if inner.dtype() == DType::Float {
            VariableValue::from(inner)
        } else {
            VariableValue::from_source(AsF32 { inner })
        }
    }
}

impl TensorSource for AsF32 {
    fn dtype(&self) -> DType {
        DType::Float
    }

    fn shape(&self) -> &[i64] {
        self.inner.shape()
    }

    fn open(&self) -> savedmodel_graph::Result<SourceData<'_>> {
        Ok(SourceData::Reader(Box::new(F32Reader {
            from: self.inner.dtype(),
            input: Chunks::new(self.inner.open()?),
            stash: [0; 4],
            stash_len: 0,
        })))
    }
}

/// Reads elements of `from` from `input` as `float32` bytes.
struct F32Reader<'a> {
    from: DType,
    input: Chunks<'a>,
    /// A converted element not yet given out whole (when asked for fewer
    /// than 4 bytes), its last `stash_len` bytes pending.
    stash: [u8; 4],
    stash_len: usize,
}

impl Read for F32Reader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.stash_len > 0 {
            let n = self.stash_len.min(out.len());
            let from = 4 - self.stash_len;
            out[..n].copy_from_slice(&self.stash[from..from + n]);
            self.stash_len -= n;
            return Ok(n);
        }
        if out.is_empty() {
            return Ok(0);
        }
        let size = self.from.element_size().unwrap_or(4);
        let chunk = self.input.fill(size)?;
        if chunk.is_empty() {
            return Ok(0);
        }
        if chunk.len() < size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the data ends inside a {} element", self.from),
            ));
        }
        if out.len() < 4 {
            let mut element = [0u8; 4];
            convert_to_f32(self.from, &chunk[..size], &mut element);
            self.input.consume(size);
            self.stash = element;
            self.stash_len = 4;
            return self.read(out);
        }
        let (used, written) = convert_to_f32(self.from, chunk, out);
        self.input.consume(used);
        Ok(written)
    }
}

/// The elements of `t` as `float32`, converting `float16`, `bfloat16` and
/// `float64` (rounding to nearest). `Err` names the dtype when it is not a
/// floating-point type.
pub(crate) fn to_f32(t: &WeightTensor<'_>) -> std::result::Result<Vec<f32>, String> {
    let d = &t.data;
    check_f32(t)?;
    Ok(match t.dtype {
        DType::Float => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DType::Half => d
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::BFloat16 => d
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::Double => d
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        other => {
            return Err(format!(
                "has dtype {other}; weights must be float32, float16, bfloat16 or float64"
            ));
        }
    })
}

/// Names in `names` that look like `wanted` (same last component, or one
/// contains the other), as `; did you mean 'a', 'b'?`, or the first few
/// names when none is close, or nothing.
pub(crate) fn suggest(wanted: &str, names: &[String]) -> String {
    let last = |s: &str| {
        s.rsplit(['/', '.'])
            .next()
            .unwrap_or(s)
            .to_ascii_lowercase()
    };
    let w = wanted.to_ascii_lowercase();
    let close: Vec<&String> = names
        .iter()
        .filter(|n| {
            let l = n.to_ascii_lowercase();
            l.contains(&w) || w.contains(&l) || last(n) == last(wanted)
        })
        .take(5)
        .collect();
    let quote = |v: &[&String]| {
        v.iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !close.is_empty() {
        return format!("; did you mean {}?", quote(&close));
    }
    if names.is_empty() {
        return "; the file holds no tensors".into();
    }
    let first: Vec<&String> = names.iter().take(8).collect();
    let more = if names.len() > first.len() {
        format!(" and {} more", names.len() - first.len())
    } else {
        String::new()
    };
    format!("; it has {}{more}", quote(&first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_to_f32() {
        let t = |dtype, data: Vec<u8>| WeightTensor {
            dtype,
            shape: vec![2],
            data: Cow::Owned(data),
        };
        let half: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        assert_eq!(to_f32(&t(DType::Half, half)).unwrap(), [1.5, -2.0]);
        let bf: Vec<u8> = [0.5f32, 3.0]
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect();
        assert_eq!(to_f32(&t(DType::BFloat16, bf)).unwrap(), [0.5, 3.0]);
        let dbl: Vec<u8> = [0.25f64, 1e-3]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            to_f32(&t(DType::Double, dbl)).unwrap(),
            [0.25, 1e-3f64 as f32]
        );
        let e = to_f32(&t(DType::Int32, vec![0; 8])).unwrap_err();
        assert!(e.contains("has dtype"), "{e}");
        let e = to_f32(&t(DType::Float, vec![0; 7])).unwrap_err();
        assert!(e.contains("holds 7 bytes"), "{e}");
    }

    /// A source of `bytes` as `dtype`, handed out 3 bytes at a time or
    /// whole.
    #[derive(Debug)]
    struct Raw {
        dtype: DType,
        shape: Vec<i64>,
        bytes: Vec<u8>,
        trickle: bool,
    }

    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(3).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    impl TensorSource for Raw {
        fn dtype(&self) -> DType {
            self.dtype
        }
        fn shape(&self) -> &[i64] {
            &self.shape
        }
        fn open(&self) -> savedmodel_graph::Result<SourceData<'_>> {
            Ok(if self.trickle {
                SourceData::Reader(Box::new(Trickle(&self.bytes)))
            } else {
                SourceData::Bytes(Cow::Borrowed(&self.bytes))
            })
        }
    }

    #[test]
    fn shared_tensors_convert_to_f32_chunk_by_chunk() {
        let mut values: Vec<f32> = (0..700_000)
            .map(|i| (i as f32 * 0.37).sin() * 100.0)
            .collect();
        let specials = [f32::NAN, f32::INFINITY, -0.0, 1e-7, -6e-8, 70000.0, 3e38];
        for (i, v) in specials.into_iter().enumerate() {
            values[i * 1021 + 5] = v;
        }
        for dtype in [DType::Half, DType::BFloat16, DType::Double, DType::Float] {
            let bytes: Vec<u8> = match dtype {
                DType::Half => values
                    .iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                    .collect(),
                DType::BFloat16 => values
                    .iter()
                    .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                    .collect(),
                DType::Double => values
                    .iter()
                    .flat_map(|&v| (f64::from(v) * 1.000001).to_le_bytes())
                    .collect(),
                _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            };
            let shape = vec![700, 1000];
            let expected = to_f32(&WeightTensor {
                dtype,
                shape: shape.clone(),
                data: Cow::Borrowed(&bytes),
            })
            .unwrap();
            for trickle in [false, true] {
                let raw = Raw {
                    dtype,
                    shape: shape.clone(),
                    bytes: bytes.clone(),
                    trickle,
                };
                let value = AsF32::value(Arc::new(raw));
                assert_eq!(value.dtype(), DType::Float);
                assert_eq!(value.shape(), &shape[..]);
                let got = value.to_f32_vec().unwrap().unwrap();
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert!(bits(&got) == bits(&expected), "{dtype} trickle={trickle}");
            }
            // Read through buffers smaller than an element.
            let raw = Raw {
                dtype,
                shape: vec![3],
                bytes: bytes[..3 * dtype.element_size().unwrap()].to_vec(),
                trickle: true,
            };
            let value = AsF32::value(Arc::new(raw));
            let source = value.source().unwrap();
            let mut out = Vec::new();
            match source.open().unwrap() {
                SourceData::Reader(mut r) => loop {
                    let mut buf = [0u8; 3];
                    let n = r.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(&buf[..n]);
                },
                SourceData::Bytes(b) => out.extend_from_slice(&b),
                other => panic!("unexpected source data {other:?}"),
            }
            let want: Vec<u8> = expected[..3].iter().flat_map(|v| v.to_le_bytes()).collect();
            assert_eq!(out, want, "{dtype}");
        }
        // A float16 source cut inside an element.
        let cut = Raw {
            dtype: DType::Half,
            shape: vec![2],
            bytes: vec![0; 3],
            trickle: true,
        };
        let err = AsF32::value(Arc::new(cut)).to_f32_vec().unwrap_err();
        assert!(err.to_string().contains("inside a"), "{err}");
    }

    #[test]
    fn suggestions() {
        let names: Vec<String> = ["fc1.weight", "fc1.bias", "fc2.weight"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            suggest("fc3.weight", &names),
            "; did you mean 'fc1.weight', 'fc2.weight'?"
        );
        assert_eq!(
            suggest("kernel", &names),
            "; it has 'fc1.weight', 'fc1.bias', 'fc2.weight'"
        );
        assert_eq!(suggest("x", &[]), "; the file holds no tensors");
    }

    #[test]
    fn in_memory_weights_check_sizes() {
        let mut w = Weights::new();
        w.insert_f32("a", &[2, 2], &[1.0; 4]).unwrap();
        assert!(w.insert_f32("b", &[3], &[1.0; 4]).is_err());
        let a = w.tensor("a").unwrap().unwrap();
        assert_eq!(a.shape, [2, 2]);
        assert!(w.tensor("b").unwrap().is_none());
        assert_eq!(w.origin(), Path::new(IN_MEMORY_ORIGIN));
    }
}
