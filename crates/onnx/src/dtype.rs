//! ONNX's `TensorProto.DataType` and TensorFlow's `DataType`
//! ([`savedmodel_checkpoint::DType`]).

use savedmodel_checkpoint::DType;

use crate::proto::tensor_proto::DataType;

/// The TensorFlow type whose values have the same bytes as ONNX's `data_type`
/// in `raw_data` (little-endian, one element after another), or why there is
/// none.
///
/// ONNX packs 4-bit, 2-bit and 6-bit types several to a byte where
/// TensorFlow keeps one per byte, and TensorFlow has no `FLOAT8E8M0` or
/// 6-bit floats: those are errors, as are `UNDEFINED` and unknown numbers.
pub fn dtype_from_onnx(data_type: i32) -> Result<DType, String> {
    let Ok(onnx) = DataType::try_from(data_type) else {
        return Err(format!("unknown ONNX data type {data_type}"));
    };
    Ok(match onnx {
        DataType::Float => DType::Float,
        DataType::Uint8 => DType::UInt8,
        DataType::Int8 => DType::Int8,
        DataType::Uint16 => DType::UInt16,
        DataType::Int16 => DType::Int16,
        DataType::Int32 => DType::Int32,
        DataType::Int64 => DType::Int64,
        DataType::String => DType::String,
        DataType::Bool => DType::Bool,
        DataType::Float16 => DType::Half,
        DataType::Double => DType::Double,
        DataType::Uint32 => DType::UInt32,
        DataType::Uint64 => DType::UInt64,
        DataType::Complex64 => DType::Complex64,
        DataType::Complex128 => DType::Complex128,
        DataType::Bfloat16 => DType::BFloat16,
        DataType::Float8e4m3fn => DType::Float8E4M3FN,
        DataType::Float8e4m3fnuz => DType::Float8E4M3FNUZ,
        DataType::Float8e5m2 => DType::Float8E5M2,
        DataType::Float8e5m2fnuz => DType::Float8E5M2FNUZ,
        DataType::Undefined => return Err("data type UNDEFINED".to_owned()),
        DataType::Uint4
        | DataType::Int4
        | DataType::Float4e2m1
        | DataType::Uint2
        | DataType::Int2
        | DataType::Float6e2m3
        | DataType::Float6e3m2 => {
            return Err(format!(
                "ONNX data type {} packs several elements into a byte; TensorFlow has no such layout",
                onnx.as_str_name()
            ));
        }
        DataType::Float8e8m0 => {
            return Err("ONNX data type FLOAT8E8M0 has no TensorFlow equivalent".to_owned());
        }
    })
}

/// The ONNX data type number whose values TensorFlow type `dtype` holds:
/// the inverse of [`dtype_from_onnx`], derived from it.
pub fn onnx_from_dtype(dtype: DType) -> Option<i32> {
    // ONNX's data type numbers are small (0..=26 in onnx 1.23).
    (1..64).find(|&n| dtype_from_onnx(n) == Ok(dtype))
}

/// An ONNX element type that TensorFlow 2.21 cannot compute with, carried
/// through the converted graph in a TensorFlow type that can.
///
/// TensorFlow has no 2-bit types, keeps its 4-bit ones without kernels, and
/// declares `float8_e4m3fnuz`/`float8_e5m2fnuz` with no `Cast` kernel; it
/// has no `FLOAT8E8M0` or `FLOAT4E2M1` at all. Values of these types cross
/// the signature, and flow between `Cast`/`CastLike`/`Identity` nodes, one
/// element per byte:
///
/// - the integers as their values: `INT4`/`INT2` in `int8`, `UINT4`/`UINT2`
///   in `uint8`;
/// - the floats as their bit patterns in `uint8` (for `FLOAT4E2M1`, the
///   4-bit code in the low half of the byte), the layout `ml_dtypes` keeps
///   them in, so `array.view(np.uint8)` is what a client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Carried {
    /// `INT4`, values -8..=7 in `int8`.
    Int4,
    /// `UINT4`, values 0..=15 in `uint8`.
    UInt4,
    /// `INT2`, values -2..=1 in `int8`.
    Int2,
    /// `UINT2`, values 0..=3 in `uint8`.
    UInt2,
    /// `FLOAT8E4M3FNUZ` bit patterns in `uint8`.
    Float8E4M3Fnuz,
    /// `FLOAT8E5M2FNUZ` bit patterns in `uint8`.
    Float8E5M2Fnuz,
    /// `FLOAT8E8M0` bit patterns (the exponent) in `uint8`.
    Float8E8M0,
    /// `FLOAT4E2M1` codes in the low four bits of a `uint8`.
    Float4E2M1,
}

impl Carried {
    /// The carried type for ONNX `data_type`, or `None` when TensorFlow
    /// computes with the type itself (or it is not carried at all).
    pub fn from_onnx(data_type: i32) -> Option<Carried> {
        Some(match DataType::try_from(data_type).ok()? {
            DataType::Int4 => Carried::Int4,
            DataType::Uint4 => Carried::UInt4,
            DataType::Int2 => Carried::Int2,
            DataType::Uint2 => Carried::UInt2,
            DataType::Float8e4m3fnuz => Carried::Float8E4M3Fnuz,
            DataType::Float8e5m2fnuz => Carried::Float8E5M2Fnuz,
            DataType::Float8e8m0 => Carried::Float8E8M0,
            DataType::Float4e2m1 => Carried::Float4E2M1,
            _ => return None,
        })
    }

    /// ONNX's `TensorProto.DataType` number.
    pub fn onnx_type(self) -> i32 {
        (match self {
            Carried::Int4 => DataType::Int4,
            Carried::UInt4 => DataType::Uint4,
            Carried::Int2 => DataType::Int2,
            Carried::UInt2 => DataType::Uint2,
            Carried::Float8E4M3Fnuz => DataType::Float8e4m3fnuz,
            Carried::Float8E5M2Fnuz => DataType::Float8e5m2fnuz,
            Carried::Float8E8M0 => DataType::Float8e8m0,
            Carried::Float4E2M1 => DataType::Float4e2m1,
        }) as i32
    }

    /// ONNX's name of the type (`INT4`, ...).
    pub fn onnx_name(self) -> &'static str {
        DataType::try_from(self.onnx_type())
            .map(|t| t.as_str_name())
            .unwrap_or("?")
    }

    /// The TensorFlow type that carries it.
    pub fn carrier(self) -> DType {
        match self {
            Carried::Int4 | Carried::Int2 => DType::Int8,
            _ => DType::UInt8,
        }
    }

    /// For the integer types, their width in bits and signedness.
    pub fn integer_bits(self) -> Option<(u32, bool)> {
        match self {
            Carried::Int4 => Some((4, true)),
            Carried::UInt4 => Some((4, false)),
            Carried::Int2 => Some((2, true)),
            Carried::UInt2 => Some((2, false)),
            _ => None,
        }
    }

    /// How a client sends or reads it, for messages and docs:
    /// `INT4 as int8 values`, `FLOAT8E8M0 as uint8 bit patterns`.
    pub fn describe(self) -> String {
        let how = if self.integer_bits().is_some() {
            "values"
        } else {
            "bit patterns"
        };
        format!("{} as {} {how}", self.onnx_name(), self.carrier())
    }
}

/// ONNX's name for a data type number (`FLOAT`, `INT64`, ...), or the number.
pub fn onnx_type_name(data_type: i32) -> String {
    DataType::try_from(data_type)
        .map(|t| t.as_str_name().to_owned())
        .unwrap_or_else(|_| data_type.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_tensorflow_has_maps_to_the_same_element_size() {
        // (ONNX type, TensorFlow type, bytes per element).
        let cases = [
            (DataType::Float, DType::Float, 4),
            (DataType::Uint8, DType::UInt8, 1),
            (DataType::Int8, DType::Int8, 1),
            (DataType::Uint16, DType::UInt16, 2),
            (DataType::Int16, DType::Int16, 2),
            (DataType::Int32, DType::Int32, 4),
            (DataType::Int64, DType::Int64, 8),
            (DataType::Bool, DType::Bool, 1),
            (DataType::Float16, DType::Half, 2),
            (DataType::Double, DType::Double, 8),
            (DataType::Uint32, DType::UInt32, 4),
            (DataType::Uint64, DType::UInt64, 8),
            (DataType::Complex64, DType::Complex64, 8),
            (DataType::Complex128, DType::Complex128, 16),
            (DataType::Bfloat16, DType::BFloat16, 2),
            (DataType::Float8e4m3fn, DType::Float8E4M3FN, 1),
            (DataType::Float8e4m3fnuz, DType::Float8E4M3FNUZ, 1),
            (DataType::Float8e5m2, DType::Float8E5M2, 1),
            (DataType::Float8e5m2fnuz, DType::Float8E5M2FNUZ, 1),
        ];
        for (onnx, tf, size) in cases {
            assert_eq!(dtype_from_onnx(onnx as i32), Ok(tf), "{onnx:?}");
            assert_eq!(tf.element_size(), Some(size), "{onnx:?}");
        }
        assert_eq!(dtype_from_onnx(DataType::String as i32), Ok(DType::String));
    }

    #[test]
    fn types_without_a_tensorflow_layout_are_errors_naming_the_type() {
        for onnx in [DataType::Int4, DataType::Uint2, DataType::Float6e2m3] {
            let err = dtype_from_onnx(onnx as i32).unwrap_err();
            assert!(err.contains(onnx.as_str_name()), "{err}");
        }
        assert!(dtype_from_onnx(24).unwrap_err().contains("FLOAT8E8M0"));
        assert!(dtype_from_onnx(0).unwrap_err().contains("UNDEFINED"));
        assert!(dtype_from_onnx(99).unwrap_err().contains("99"));
        assert_eq!(onnx_type_name(7), "INT64");
        assert_eq!(onnx_type_name(-3), "-3");
    }
}
