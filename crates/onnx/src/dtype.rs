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
