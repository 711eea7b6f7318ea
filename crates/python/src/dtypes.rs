//! TensorFlow data types and numpy dtypes, both ways.
//!
//! numpy has the IEEE and integer types; `bfloat16`, the float8 family and
//! the sub-byte integers come from the `ml_dtypes` package (the one JAX and
//! TensorFlow use), imported only when a tensor of such a type is read or
//! written. Every one of them takes one or more whole bytes per element, as
//! in a checkpoint's data file (docs/formats.md, section 4 "Data files"), so
//! a tensor's bytes are viewed as its dtype without conversion. Quantized
//! types are read as their base integer type.

use pyo3::exceptions::PyImportError;
use pyo3::prelude::*;
use savedmodel_checkpoint::DType;

use crate::errors::invalid_argument;

/// Where a data type's numpy dtype comes from.
enum Source {
    Numpy(&'static str),
    MlDtypes(&'static str),
}

fn source(dtype: DType) -> Option<Source> {
    use DType::*;
    use Source::{MlDtypes, Numpy};
    Some(match dtype {
        Float => Numpy("float32"),
        Double => Numpy("float64"),
        Half => Numpy("float16"),
        Int8 | QInt8 => Numpy("int8"),
        UInt8 | QUInt8 => Numpy("uint8"),
        Int16 | QInt16 => Numpy("int16"),
        UInt16 | QUInt16 => Numpy("uint16"),
        Int32 | QInt32 => Numpy("int32"),
        UInt32 => Numpy("uint32"),
        Int64 => Numpy("int64"),
        UInt64 => Numpy("uint64"),
        Bool => Numpy("bool"),
        Complex64 => Numpy("complex64"),
        Complex128 => Numpy("complex128"),
        BFloat16 => MlDtypes("bfloat16"),
        Float8E5M2 => MlDtypes("float8_e5m2"),
        Float8E4M3FN => MlDtypes("float8_e4m3fn"),
        Float8E4M3FNUZ => MlDtypes("float8_e4m3fnuz"),
        Float8E4M3B11FNUZ => MlDtypes("float8_e4m3b11fnuz"),
        Float8E5M2FNUZ => MlDtypes("float8_e5m2fnuz"),
        Int4 => MlDtypes("int4"),
        UInt4 => MlDtypes("uint4"),
        Int2 => MlDtypes("int2"),
        UInt2 => MlDtypes("uint2"),
        Float4E2M1FN => MlDtypes("float4_e2m1fn"),
        _ => return None,
    })
}

/// TensorFlow's Python name of `dtype` (`float32`, `bfloat16`, `string`),
/// the name `dtype` and `shape` queries and signatures report.
pub(crate) fn tf_name(dtype: DType) -> String {
    savedmodel::show::python_dtype_name(dtype.as_i32())
}

/// The numpy dtype for a numeric data type; `what` names the tensor for
/// messages.
pub(crate) fn numpy_dtype<'py>(
    py: Python<'py>,
    dtype: DType,
    what: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let numpy = py.import("numpy")?;
    match source(dtype) {
        Some(Source::Numpy(name)) => numpy.getattr("dtype")?.call1((name,)),
        Some(Source::MlDtypes(name)) => {
            let module = py.import("ml_dtypes").map_err(|_| {
                PyImportError::new_err(format!(
                    "{what} has data type {}, which numpy represents through the \
                     ml_dtypes package: pip install ml_dtypes",
                    tf_name(dtype)
                ))
            })?;
            numpy.getattr("dtype")?.call1((module.getattr(name)?,))
        }
        None => Err(invalid_argument(format!(
            "{what} has data type {}, which has no numpy equivalent",
            tf_name(dtype)
        ))),
    }
}

/// The data type to store a numpy array of dtype `name` (`dtype.name`) as;
/// `None` for strings and objects, which the caller handles.
pub(crate) fn from_numpy_name(name: &str) -> Option<DType> {
    use DType::*;
    Some(match name {
        "float32" => Float,
        "float64" => Double,
        "float16" => Half,
        "int8" => Int8,
        "uint8" => UInt8,
        "int16" => Int16,
        "uint16" => UInt16,
        "int32" => Int32,
        "uint32" => UInt32,
        "int64" => Int64,
        "uint64" => UInt64,
        "bool" => Bool,
        "complex64" => Complex64,
        "complex128" => Complex128,
        "bfloat16" => BFloat16,
        "float8_e5m2" => Float8E5M2,
        "float8_e4m3fn" => Float8E4M3FN,
        "float8_e4m3fnuz" => Float8E4M3FNUZ,
        "float8_e4m3b11fnuz" => Float8E4M3B11FNUZ,
        "float8_e5m2fnuz" => Float8E5M2FNUZ,
        "int4" => Int4,
        "uint4" => UInt4,
        "int2" => Int2,
        "uint2" => UInt2,
        "float4_e2m1fn" => Float4E2M1FN,
        _ => return None,
    })
}
