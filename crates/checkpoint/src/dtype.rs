//! TensorFlow's `DataType` numbers (`tensorflow/core/framework/types.proto`),
//! with how each is stored in a checkpoint.

use std::fmt;

/// A tensor's element type, numbered as TensorFlow's `DataType` enum.
///
/// Sub-byte and 8-bit float types (`Int4`, `Float8E4M3FN`, ...) take one byte
/// per element in checkpoints; quantized types are stored like their base
/// integer type (docs/formats.md, section 4 "Data files").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[repr(i32)]
#[allow(missing_docs)] // each variant is TensorFlow's DT_<NAME>, see `name`
pub enum DType {
    Float = 1,
    Double = 2,
    Int32 = 3,
    UInt8 = 4,
    Int16 = 5,
    Int8 = 6,
    String = 7,
    Complex64 = 8,
    Int64 = 9,
    Bool = 10,
    QInt8 = 11,
    QUInt8 = 12,
    QInt32 = 13,
    BFloat16 = 14,
    QInt16 = 15,
    QUInt16 = 16,
    UInt16 = 17,
    Complex128 = 18,
    Half = 19,
    Resource = 20,
    Variant = 21,
    UInt32 = 22,
    UInt64 = 23,
    Float8E5M2 = 24,
    Float8E4M3FN = 25,
    Float8E4M3FNUZ = 26,
    Float8E4M3B11FNUZ = 27,
    Float8E5M2FNUZ = 28,
    Int4 = 29,
    UInt4 = 30,
    Int2 = 31,
    UInt2 = 32,
    Float4E2M1FN = 33,
}

/// Every data type, in number order.
pub const ALL_DTYPES: [DType; 33] = {
    use DType::*;
    [
        Float,
        Double,
        Int32,
        UInt8,
        Int16,
        Int8,
        String,
        Complex64,
        Int64,
        Bool,
        QInt8,
        QUInt8,
        QInt32,
        BFloat16,
        QInt16,
        QUInt16,
        UInt16,
        Complex128,
        Half,
        Resource,
        Variant,
        UInt32,
        UInt64,
        Float8E5M2,
        Float8E4M3FN,
        Float8E4M3FNUZ,
        Float8E4M3B11FNUZ,
        Float8E5M2FNUZ,
        Int4,
        UInt4,
        Int2,
        UInt2,
        Float4E2M1FN,
    ]
};

impl DType {
    /// The type numbered `n` (`DT_INVALID` = 0 and the `_REF` types, `n + 100`,
    /// are `None`: they never appear in checkpoints).
    pub fn from_i32(n: i32) -> Option<DType> {
        let index = usize::try_from(n).ok()?.checked_sub(1)?;
        ALL_DTYPES.get(index).copied()
    }

    /// The `DataType` number.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// Bytes per element in a checkpoint's data file; `None` for the
    /// variable-length types (string, variant, resource).
    pub fn element_size(self) -> Option<usize> {
        use DType::*;
        Some(match self {
            UInt8 | Int8 | Bool | QInt8 | QUInt8 | Float8E5M2 | Float8E4M3FN | Float8E4M3FNUZ
            | Float8E4M3B11FNUZ | Float8E5M2FNUZ | Int4 | UInt4 | Int2 | UInt2 | Float4E2M1FN => 1,
            Int16 | BFloat16 | QInt16 | QUInt16 | UInt16 | Half => 2,
            Float | Int32 | QInt32 | UInt32 => 4,
            Double | Int64 | UInt64 | Complex64 => 8,
            Complex128 => 16,
            String | Resource | Variant => return None,
        })
    }

    /// The unit a byte swap reverses for this type (TensorFlow's
    /// `ByteSwapTensor`): the element size, or half of it for complex types;
    /// 1 for one-byte types (nothing to swap); `None` when the type has no
    /// fixed layout.
    pub fn swap_unit(self) -> Option<usize> {
        match self {
            DType::Complex64 => Some(4),
            DType::Complex128 => Some(8),
            other => other.element_size(),
        }
    }

    /// Whether tensors of this type can be written to and read from a
    /// checkpoint by this crate (everything but resource and variant).
    pub fn is_checkpointable(self) -> bool {
        !matches!(self, DType::Resource | DType::Variant)
    }

    /// TensorFlow's enum name, e.g. `DT_FLOAT` (what `inspect_checkpoint`
    /// prints).
    pub fn name(self) -> &'static str {
        use DType::*;
        match self {
            Float => "DT_FLOAT",
            Double => "DT_DOUBLE",
            Int32 => "DT_INT32",
            UInt8 => "DT_UINT8",
            Int16 => "DT_INT16",
            Int8 => "DT_INT8",
            String => "DT_STRING",
            Complex64 => "DT_COMPLEX64",
            Int64 => "DT_INT64",
            Bool => "DT_BOOL",
            QInt8 => "DT_QINT8",
            QUInt8 => "DT_QUINT8",
            QInt32 => "DT_QINT32",
            BFloat16 => "DT_BFLOAT16",
            QInt16 => "DT_QINT16",
            QUInt16 => "DT_QUINT16",
            UInt16 => "DT_UINT16",
            Complex128 => "DT_COMPLEX128",
            Half => "DT_HALF",
            Resource => "DT_RESOURCE",
            Variant => "DT_VARIANT",
            UInt32 => "DT_UINT32",
            UInt64 => "DT_UINT64",
            Float8E5M2 => "DT_FLOAT8_E5M2",
            Float8E4M3FN => "DT_FLOAT8_E4M3FN",
            Float8E4M3FNUZ => "DT_FLOAT8_E4M3FNUZ",
            Float8E4M3B11FNUZ => "DT_FLOAT8_E4M3B11FNUZ",
            Float8E5M2FNUZ => "DT_FLOAT8_E5M2FNUZ",
            Int4 => "DT_INT4",
            UInt4 => "DT_UINT4",
            Int2 => "DT_INT2",
            UInt2 => "DT_UINT2",
            Float4E2M1FN => "DT_FLOAT4_E2M1FN",
        }
    }

    /// The name Python's `tf.DType.name` gives (the NumPy / `ml_dtypes` name
    /// for numeric types: `float32`, `float16`, `bfloat16`, `float8_e4m3fn`,
    /// ...; `string`, `qint8`, `resource`, `variant` otherwise).
    pub fn numpy_name(self) -> &'static str {
        use DType::*;
        match self {
            Float => "float32",
            Double => "float64",
            Int32 => "int32",
            UInt8 => "uint8",
            Int16 => "int16",
            Int8 => "int8",
            String => "string",
            Complex64 => "complex64",
            Int64 => "int64",
            Bool => "bool",
            QInt8 => "qint8",
            QUInt8 => "quint8",
            QInt32 => "qint32",
            BFloat16 => "bfloat16",
            QInt16 => "qint16",
            QUInt16 => "quint16",
            UInt16 => "uint16",
            Complex128 => "complex128",
            Half => "float16",
            Resource => "resource",
            Variant => "variant",
            UInt32 => "uint32",
            UInt64 => "uint64",
            Float8E5M2 => "float8_e5m2",
            Float8E4M3FN => "float8_e4m3fn",
            Float8E4M3FNUZ => "float8_e4m3fnuz",
            Float8E4M3B11FNUZ => "float8_e4m3b11fnuz",
            Float8E5M2FNUZ => "float8_e5m2fnuz",
            Int4 => "int4",
            UInt4 => "uint4",
            Int2 => "int2",
            UInt2 => "uint2",
            Float4E2M1FN => "float4_e2m1fn",
        }
    }

    /// The type whose [`name`](Self::name) (`DT_FLOAT`) or
    /// [`numpy_name`](Self::numpy_name) (`float32`) is `name`.
    pub fn from_name(name: &str) -> Option<DType> {
        ALL_DTYPES
            .iter()
            .copied()
            .find(|d| d.name() == name || d.numpy_name() == name)
    }
}

impl fmt::Display for DType {
    /// The `DT_` name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<DType> for i32 {
    fn from(dtype: DType) -> i32 {
        dtype.as_i32()
    }
}

impl TryFrom<i32> for DType {
    type Error = i32;

    /// The type numbered `n`, or `n` back when there is none.
    fn try_from(n: i32) -> Result<DType, i32> {
        DType::from_i32(n).ok_or(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use savedmodel_proto::tensorflow::DataType;

    #[test]
    fn numbers_and_names_agree_with_the_proto_enum() {
        for (i, dtype) in ALL_DTYPES.iter().enumerate() {
            assert_eq!(dtype.as_i32(), i as i32 + 1);
            assert_eq!(DType::from_i32(dtype.as_i32()), Some(*dtype));
            let proto = DataType::try_from(dtype.as_i32()).unwrap();
            assert_eq!(proto.as_str_name(), dtype.name());
            assert_eq!(DType::from_name(dtype.name()), Some(*dtype));
            assert_eq!(DType::from_name(dtype.numpy_name()), Some(*dtype));
        }
        assert_eq!(DType::from_i32(0), None);
        assert_eq!(DType::from_i32(34), None);
        assert_eq!(DType::from_i32(101), None);
        assert_eq!(DType::from_i32(-1), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(DType::Float.element_size(), Some(4));
        assert_eq!(DType::Complex128.element_size(), Some(16));
        assert_eq!(DType::Complex128.swap_unit(), Some(8));
        assert_eq!(DType::Int4.element_size(), Some(1));
        assert_eq!(DType::QInt32.element_size(), Some(4));
        assert_eq!(DType::String.element_size(), None);
        assert!(!DType::Variant.is_checkpointable());
        assert!(DType::String.is_checkpointable());
    }
}
