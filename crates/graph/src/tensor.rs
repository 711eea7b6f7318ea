//! Owned tensor values: what a `Const` node holds, what a variable is
//! initialized with, and what warmup requests carry; and streamed values
//! ([`TensorSource`], [`VariableValue`]) for variables too large to hold in
//! memory.
//!
//! A [`Tensor`] is a dtype, a fully defined shape and the row-major
//! elements: little-endian bytes for numeric types, one byte string per
//! element for `DT_STRING`. It converts to and from TensorFlow's
//! `TensorProto` following `Tensor::FromProto` (`tensorflow/core/framework/tensor.cc`,
//! docs/formats.md, section 14 "TensorProto: constant values").

use savedmodel_checkpoint::DType;
use savedmodel_proto::tensorflow::{TensorProto, TensorShapeProto, tensor_shape_proto::Dim};

use crate::error::{Error, Result};

mod source;
pub use source::Chunks;
pub use source::{SourceData, TensorSource, VariableValue};

/// A Rust number type that is the element type of a TensorFlow dtype, byte
/// for byte (little-endian).
pub trait ElementType: Copy + sealed::Sealed {
    /// The dtype whose elements this type holds.
    const DTYPE: DType;
    /// Appends the little-endian bytes of `self`.
    fn put(self, out: &mut Vec<u8>);
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! element {
    ($t:ty, $dtype:ident) => {
        impl sealed::Sealed for $t {}
        impl ElementType for $t {
            const DTYPE: DType = DType::$dtype;
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}

element!(f32, Float);
element!(f64, Double);
element!(i8, Int8);
element!(u8, UInt8);
element!(i16, Int16);
element!(u16, UInt16);
element!(i32, Int32);
element!(u32, UInt32);
element!(i64, Int64);
element!(u64, UInt64);

impl sealed::Sealed for bool {}
impl ElementType for bool {
    const DTYPE: DType = DType::Bool;
    fn put(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

/// The elements of a [`Tensor`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TensorElements {
    /// Fixed-size elements, row-major, little-endian.
    Bytes(Vec<u8>),
    /// `DT_STRING` elements, row-major.
    Strings(Vec<Vec<u8>>),
}

/// A tensor value with a fully defined shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tensor {
    dtype: DType,
    shape: Vec<i64>,
    data: TensorElements,
}

fn element_count(shape: &[i64]) -> Result<usize> {
    let mut count: usize = 1;
    for &d in shape {
        let d = usize::try_from(d).map_err(|_| Error::InvalidTensor {
            what: format!("dimension {d} of shape {shape:?} is negative"),
        })?;
        count = count.checked_mul(d).ok_or_else(|| Error::InvalidTensor {
            what: format!("shape {shape:?} has too many elements"),
        })?;
    }
    Ok(count)
}

impl Tensor {
    /// A numeric tensor of shape `shape` holding `values` (row-major).
    ///
    /// Fails when the number of values is not the product of the dimensions.
    pub fn new<T: ElementType>(shape: &[i64], values: &[T]) -> Result<Self> {
        let mut data = Vec::with_capacity(values.len().saturating_mul(8));
        for v in values {
            v.put(&mut data);
        }
        Self::from_bytes(T::DTYPE, shape, data)
    }

    /// A scalar.
    pub fn scalar<T: ElementType>(value: T) -> Self {
        let mut data = Vec::new();
        value.put(&mut data);
        Tensor {
            dtype: T::DTYPE,
            shape: Vec::new(),
            data: TensorElements::Bytes(data),
        }
    }

    /// A 1-D tensor of `values`.
    pub fn vector<T: ElementType>(values: &[T]) -> Self {
        let mut data = Vec::with_capacity(values.len().saturating_mul(8));
        for v in values {
            v.put(&mut data);
        }
        Tensor {
            dtype: T::DTYPE,
            shape: vec![values.len() as i64],
            data: TensorElements::Bytes(data),
        }
    }

    /// A tensor of any fixed-size dtype from its raw little-endian row-major
    /// element bytes (for `DT_HALF`, `DT_BFLOAT16`, quantized and float8
    /// types, which have no [`ElementType`] type here).
    pub fn from_bytes(dtype: DType, shape: &[i64], data: Vec<u8>) -> Result<Self> {
        let size = dtype.element_size().ok_or_else(|| Error::InvalidTensor {
            what: format!("{dtype} has no fixed element size; use Tensor::strings for DT_STRING"),
        })?;
        let count = element_count(shape)?;
        let expected = count
            .checked_mul(size)
            .ok_or_else(|| Error::InvalidTensor {
                what: format!("shape {shape:?} is too large"),
            })?;
        if data.len() != expected {
            return Err(Error::InvalidTensor {
                what: format!(
                    "{dtype} tensor of shape {shape:?} needs {expected} bytes, got {}",
                    data.len()
                ),
            });
        }
        Ok(Tensor {
            dtype,
            shape: shape.to_vec(),
            data: TensorElements::Bytes(data),
        })
    }

    /// A `DT_STRING` tensor of shape `shape`.
    pub fn strings<S: AsRef<[u8]>>(shape: &[i64], values: &[S]) -> Result<Self> {
        let count = element_count(shape)?;
        if values.len() != count {
            return Err(Error::InvalidTensor {
                what: format!(
                    "DT_STRING tensor of shape {shape:?} needs {count} elements, got {}",
                    values.len()
                ),
            });
        }
        Ok(Tensor {
            dtype: DType::String,
            shape: shape.to_vec(),
            data: TensorElements::Strings(values.iter().map(|s| s.as_ref().to_vec()).collect()),
        })
    }

    /// A scalar `DT_STRING` tensor.
    pub fn string(value: impl AsRef<[u8]>) -> Self {
        Tensor {
            dtype: DType::String,
            shape: Vec::new(),
            data: TensorElements::Strings(vec![value.as_ref().to_vec()]),
        }
    }

    /// A 1-D `DT_STRING` tensor.
    pub fn string_vector<S: AsRef<[u8]>>(values: &[S]) -> Self {
        Tensor {
            dtype: DType::String,
            shape: vec![values.len() as i64],
            data: TensorElements::Strings(values.iter().map(|s| s.as_ref().to_vec()).collect()),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The dimensions (empty for a scalar).
    pub fn shape(&self) -> &[i64] {
        &self.shape
    }

    /// Number of elements (1 for a scalar).
    pub fn num_elements(&self) -> usize {
        match &self.data {
            TensorElements::Strings(s) => s.len(),
            TensorElements::Bytes(b) => b.len() / self.dtype.element_size().unwrap_or(1).max(1),
        }
    }

    /// The elements.
    pub fn data(&self) -> &TensorElements {
        &self.data
    }

    /// The element bytes of a numeric tensor.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.data {
            TensorElements::Bytes(b) => Some(b),
            TensorElements::Strings(_) => None,
        }
    }

    /// The elements of a string tensor.
    pub fn string_values(&self) -> Option<&[Vec<u8>]> {
        match &self.data {
            TensorElements::Strings(s) => Some(s),
            TensorElements::Bytes(_) => None,
        }
    }

    /// The elements as `i64`, for integer tensors (used to read constant
    /// shapes, axes and `k`s during shape inference).
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        let bytes = self.bytes()?;
        match self.dtype {
            DType::Int32 => Some(
                bytes
                    .chunks_exact(4)
                    .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect(),
            ),
            DType::Int64 => Some(
                bytes
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The elements as `f32`, for `DT_FLOAT` tensors.
    pub fn to_f32_vec(&self) -> Option<Vec<f32>> {
        if self.dtype != DType::Float {
            return None;
        }
        Some(
            self.bytes()?
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }

    /// The `TensorProto` TensorFlow's Python writes for this value: the typed
    /// repeated field for a single element, `tensor_content` for several
    /// numeric elements, `string_val` for strings (docs/formats.md, section 14).
    pub fn to_proto(&self) -> TensorProto {
        let mut proto = TensorProto {
            dtype: self.dtype.as_i32(),
            tensor_shape: Some(shape_proto(&self.shape)),
            ..Default::default()
        };
        match &self.data {
            TensorElements::Strings(s) => proto.string_val = s.clone(),
            TensorElements::Bytes(b) if self.num_elements() == 1 => {
                fill_typed(&mut proto, self.dtype, b)
            }
            TensorElements::Bytes(b) => proto.tensor_content = b.clone(),
        }
        proto
    }

    /// Reads a `TensorProto` as `Tensor::FromProto` does: `tensor_content`
    /// if non-empty, else the typed field, the last value repeated when
    /// there are fewer values than elements and zeros when there are none.
    pub fn from_proto(proto: &TensorProto) -> Result<Self> {
        let dtype = DType::from_i32(proto.dtype).ok_or_else(|| Error::InvalidTensor {
            what: format!("unsupported dtype number {}", proto.dtype),
        })?;
        let shape_proto = proto.tensor_shape.clone().unwrap_or_default();
        if shape_proto.unknown_rank {
            return Err(Error::InvalidTensor {
                what: "tensor shape has unknown rank".into(),
            });
        }
        let shape: Vec<i64> = shape_proto.dim.iter().map(|d| d.size).collect();
        let count = element_count(&shape)?;
        if dtype == DType::String {
            let values = repeat_last(&proto.string_val, count, Vec::new())?;
            return Tensor::strings(&shape, &values);
        }
        let size = dtype.element_size().ok_or_else(|| Error::InvalidTensor {
            what: format!("{dtype} constants are not supported"),
        })?;
        if !proto.tensor_content.is_empty() {
            return Tensor::from_bytes(dtype, &shape, proto.tensor_content.clone());
        }
        // Refuse before allocating: the typed fields cannot justify more
        // than a bounded amount of memory when they are empty.
        let bytes = count
            .checked_mul(size)
            .ok_or_else(|| Error::InvalidTensor {
                what: format!("shape {shape:?} is too large"),
            })?;
        let mut data = Vec::with_capacity(bytes.min(1 << 20));
        macro_rules! typed {
            ($field:expr, $conv:expr) => {{
                let values = repeat_last(&$field, count, Default::default())?;
                for v in values {
                    #[allow(clippy::redundant_closure_call)]
                    data.extend_from_slice(&($conv)(v));
                }
            }};
        }
        match dtype {
            DType::Float => typed!(proto.float_val, |v: f32| v.to_le_bytes()),
            DType::Double => typed!(proto.double_val, |v: f64| v.to_le_bytes()),
            DType::Int32 | DType::QInt32 => typed!(proto.int_val, |v: i32| v.to_le_bytes()),
            DType::Int16 | DType::QInt16 => {
                typed!(proto.int_val, |v: i32| (v as i16).to_le_bytes())
            }
            DType::UInt16 | DType::QUInt16 => {
                typed!(proto.int_val, |v: i32| (v as u16).to_le_bytes())
            }
            DType::Int8 | DType::QInt8 => typed!(proto.int_val, |v: i32| (v as i8).to_le_bytes()),
            DType::UInt8 | DType::QUInt8 => typed!(proto.int_val, |v: i32| (v as u8).to_le_bytes()),
            DType::Int64 => typed!(proto.int64_val, |v: i64| v.to_le_bytes()),
            DType::UInt32 => typed!(proto.uint32_val, |v: u32| v.to_le_bytes()),
            DType::UInt64 => typed!(proto.uint64_val, |v: u64| v.to_le_bytes()),
            DType::Bool => typed!(proto.bool_val, |v: bool| [u8::from(v)]),
            DType::Half | DType::BFloat16 => {
                typed!(proto.half_val, |v: i32| (v as u16).to_le_bytes())
            }
            other => {
                return Err(Error::InvalidTensor {
                    what: format!("{other} constants without tensor_content are not supported"),
                });
            }
        }
        Tensor::from_bytes(dtype, &shape, data)
    }
}

/// `values` stretched to `count` elements the way `Tensor::FromProto` does.
fn repeat_last<T: Clone>(values: &[T], count: usize, zero: T) -> Result<Vec<T>> {
    if values.len() > count {
        return Err(Error::InvalidTensor {
            what: format!("{} values for {count} elements", values.len()),
        });
    }
    let fill = values.last().cloned().unwrap_or(zero);
    let mut out = values.to_vec();
    out.resize(count, fill);
    Ok(out)
}

fn fill_typed(proto: &mut TensorProto, dtype: DType, b: &[u8]) {
    let u16le = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
    let u32le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let u64le = |b: &[u8]| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    match dtype {
        DType::Float => proto.float_val = vec![f32::from_bits(u32le(b))],
        DType::Double => proto.double_val = vec![f64::from_bits(u64le(b))],
        DType::Int32 | DType::QInt32 => proto.int_val = vec![u32le(b) as i32],
        DType::Int16 | DType::QInt16 => proto.int_val = vec![i32::from(u16le(b) as i16)],
        DType::UInt16 | DType::QUInt16 => proto.int_val = vec![i32::from(u16le(b))],
        DType::Int8 | DType::QInt8 => proto.int_val = vec![i32::from(b[0] as i8)],
        DType::UInt8 | DType::QUInt8 => proto.int_val = vec![i32::from(b[0])],
        DType::Int64 => proto.int64_val = vec![u64le(b) as i64],
        DType::UInt32 => proto.uint32_val = vec![u32le(b)],
        DType::UInt64 => proto.uint64_val = vec![u64le(b)],
        DType::Bool => proto.bool_val = vec![b[0] != 0],
        DType::Half | DType::BFloat16 => proto.half_val = vec![i32::from(u16le(b))],
        // Everything else (complex, float8, sub-byte types) uses the raw
        // buffer, which `Tensor::FromProto` accepts for every fixed-size type.
        _ => proto.tensor_content = b.to_vec(),
    }
}

/// A `TensorShapeProto` with these dimensions (`-1` = unknown).
pub fn shape_proto(dims: &[i64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: dims
            .iter()
            .map(|&size| Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_use_the_typed_field_and_arrays_the_content() {
        let s = Tensor::scalar(2.5f32).to_proto();
        assert_eq!(s.float_val, vec![2.5]);
        assert!(s.tensor_content.is_empty());
        let v = Tensor::new(&[2], &[1i64, 2]).unwrap().to_proto();
        assert_eq!(v.tensor_content.len(), 16);
        assert!(v.int64_val.is_empty());
        let t = Tensor::string_vector(&["a", "bc"]).to_proto();
        assert_eq!(t.string_val, vec![b"a".to_vec(), b"bc".to_vec()]);
    }

    #[test]
    fn protos_round_trip() {
        for t in [
            Tensor::scalar(-3i32),
            Tensor::scalar(true),
            Tensor::scalar(7u8),
            Tensor::scalar(-7i16),
            Tensor::new(&[2, 2], &[1.0f64, 2.0, 3.0, 4.0]).unwrap(),
            Tensor::strings(&[1, 2], &["x", ""]).unwrap(),
            Tensor::string("model"),
        ] {
            assert_eq!(Tensor::from_proto(&t.to_proto()).unwrap(), t);
        }
    }

    #[test]
    fn from_proto_repeats_the_last_value() {
        let mut p = Tensor::scalar(1.5f32).to_proto();
        p.tensor_shape = Some(shape_proto(&[3]));
        assert_eq!(
            Tensor::from_proto(&p).unwrap().to_f32_vec().unwrap(),
            vec![1.5; 3]
        );
        p.float_val.clear();
        assert_eq!(
            Tensor::from_proto(&p).unwrap().to_f32_vec().unwrap(),
            vec![0.0; 3]
        );
    }

    #[test]
    fn sizes_are_checked() {
        assert!(Tensor::new(&[3], &[1.0f32, 2.0]).is_err());
        assert!(Tensor::strings(&[2], &["a"]).is_err());
        assert!(Tensor::new(&[-1], &[1.0f32]).is_err());
        assert!(Tensor::from_bytes(DType::String, &[], vec![]).is_err());
    }
}
