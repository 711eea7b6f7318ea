//! A tensor's type, shape and bytes, wherever the `TensorProto` keeps them:
//! `raw_data` (borrowed from the mapped model), an external file (borrowed
//! from its map), or a typed field (`float_data`, `int64_data`, ...),
//! converted to little-endian bytes (facts: `proto/onnx/onnx.proto`,
//! `TensorProto`, which field holds which type).

use std::borrow::Cow;

use savedmodel_checkpoint::DType;

use crate::dtype::{dtype_from_onnx, onnx_type_name};
use crate::external::{ExternalFiles, parse_entries};
use crate::proto::TensorProto;
use crate::proto::tensor_proto::{DataLocation, DataType};

/// A tensor's values.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData<'a> {
    /// The elements of a fixed-size type, little-endian, row-major, as a
    /// TensorFlow tensor of the same [`DType`] holds them. Borrowed when
    /// they come from `raw_data` or an external file; owned when converted
    /// from a typed field.
    Bytes(Cow<'a, [u8]>),
    /// The elements of a `STRING` tensor.
    Strings(&'a [Vec<u8>]),
}

/// One tensor: name, TensorFlow type, shape, values.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorView<'a> {
    /// The tensor's name (empty for an unnamed attribute value).
    pub name: &'a str,
    /// The TensorFlow type with the same element bytes.
    pub dtype: DType,
    /// The shape (`dims`), every dimension known.
    pub shape: Vec<u64>,
    /// The values.
    pub data: TensorData<'a>,
}

impl TensorView<'_> {
    /// The number of elements (the product of the shape; 1 for a scalar).
    pub fn num_elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// The element bytes of a fixed-size type (`None` for strings).
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.data {
            TensorData::Bytes(bytes) => Some(bytes),
            TensorData::Strings(_) => None,
        }
    }

    /// Whether the bytes are borrowed from a memory map (`raw_data` or
    /// external data) rather than converted from a typed field.
    pub fn is_borrowed(&self) -> bool {
        matches!(self.data, TensorData::Bytes(Cow::Borrowed(_)))
    }
}

/// The view of `tensor`; errors are the text of an [`crate::Error::Tensor`].
pub(crate) fn view<'a>(
    tensor: &'a TensorProto,
    external: &'a ExternalFiles,
) -> Result<TensorView<'a>, String> {
    let data_type = tensor.data_type();
    let dtype = dtype_from_onnx(data_type)?;
    if tensor.segment.is_some() {
        return Err("segmented tensors (the `segment` field) are not supported".to_owned());
    }
    let mut shape = Vec::with_capacity(tensor.dims.len());
    for &dim in &tensor.dims {
        let dim = u64::try_from(dim).map_err(|_| format!("negative dimension {dim}"))?;
        shape.push(dim);
    }
    let count = shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .ok_or("the number of elements overflows 64 bits")?;
    let type_name = onnx_type_name(data_type);

    if dtype == DType::String {
        if tensor.data_location() == DataLocation::External || tensor.raw_data.is_some() {
            return Err("STRING tensors keep their values in string_data only".to_owned());
        }
        check_count(tensor.string_data.len(), count, "string_data")?;
        return Ok(TensorView {
            name: tensor.name(),
            dtype,
            shape,
            data: TensorData::Strings(&tensor.string_data),
        });
    }

    // Fixed-size types: every one `dtype_from_onnx` returns has a size.
    let element_size = dtype.element_size().unwrap_or(1) as u64;
    let expected = count
        .checked_mul(element_size)
        .ok_or("the byte size overflows 64 bits")?;
    let check_len = |len: usize, source: &str| -> Result<(), String> {
        if len as u64 == expected {
            Ok(())
        } else {
            Err(format!(
                "{source} has {len} bytes; {count} {type_name} elements need {expected}"
            ))
        }
    };

    let data: Cow<'a, [u8]> = if tensor.data_location() == DataLocation::External {
        let entry = parse_entries(tensor)?;
        let bytes = external
            .slice(&entry)
            .map_err(|e| format!("external data {:?}: {e}", entry.location))?;
        check_len(bytes.len(), "the external data")?;
        Cow::Borrowed(bytes)
    } else if let Some(raw) = &tensor.raw_data {
        check_len(raw.len(), "raw_data")?;
        Cow::Borrowed(&raw[..])
    } else {
        let bytes = typed_bytes(tensor, count)?;
        check_len(bytes.len(), "the typed data")?;
        Cow::Owned(bytes)
    };
    Ok(TensorView {
        name: tensor.name(),
        dtype,
        shape,
        data: TensorData::Bytes(data),
    })
}

/// Fails unless a typed field has `count` entries.
fn check_count(len: usize, count: u64, field: &str) -> Result<(), String> {
    if len as u64 == count {
        Ok(())
    } else {
        Err(format!(
            "{field} has {len} entries; the shape has {count} elements"
        ))
    }
}

/// The little-endian bytes of a tensor kept in a typed field.
fn typed_bytes(tensor: &TensorProto, count: u64) -> Result<Vec<u8>, String> {
    let Ok(data_type) = DataType::try_from(tensor.data_type()) else {
        return Err(format!("unknown data type {}", tensor.data_type()));
    };
    let complex = matches!(data_type, DataType::Complex64 | DataType::Complex128);
    let values = if complex {
        count.checked_mul(2)
    } else {
        Some(count)
    }
    .ok_or("the number of values overflows 64 bits")?;
    // Values kept in `int32_data`, one element per entry, narrowed to
    // `bits` bits: the value range each type allows.
    let narrow = |bits: u32, signed: bool| -> Result<Vec<u8>, String> {
        check_count(tensor.int32_data.len(), values, "int32_data")?;
        let (min, max) = if signed {
            (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
        } else {
            (0, (1i64 << bits) - 1)
        };
        let width = bits.div_ceil(8) as usize;
        let mut out = Vec::with_capacity(tensor.int32_data.len() * width);
        for &v in &tensor.int32_data {
            if !(min..=max).contains(&i64::from(v)) {
                return Err(format!(
                    "int32_data value {v} is out of range for {}",
                    data_type.as_str_name()
                ));
            }
            out.extend_from_slice(&v.to_le_bytes()[..width]);
        }
        Ok(out)
    };
    match data_type {
        DataType::Float | DataType::Complex64 => {
            check_count(tensor.float_data.len(), values, "float_data")?;
            Ok(tensor
                .float_data
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect())
        }
        DataType::Double | DataType::Complex128 => {
            check_count(tensor.double_data.len(), values, "double_data")?;
            Ok(tensor
                .double_data
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect())
        }
        DataType::Int32 => narrow(32, true),
        DataType::Int16 => narrow(16, true),
        DataType::Int8 => narrow(8, true),
        // Bit patterns of the 16-bit and 8-bit floats, and the unsigned types.
        DataType::Uint16 | DataType::Float16 | DataType::Bfloat16 => narrow(16, false),
        DataType::Uint8
        | DataType::Float8e4m3fn
        | DataType::Float8e4m3fnuz
        | DataType::Float8e5m2
        | DataType::Float8e5m2fnuz => narrow(8, false),
        // One byte per element, 0 or 1.
        DataType::Bool => narrow(1, false),
        DataType::Int64 => {
            check_count(tensor.int64_data.len(), values, "int64_data")?;
            Ok(tensor
                .int64_data
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect())
        }
        DataType::Uint64 => {
            check_count(tensor.uint64_data.len(), values, "uint64_data")?;
            Ok(tensor
                .uint64_data
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect())
        }
        DataType::Uint32 => {
            check_count(tensor.uint64_data.len(), values, "uint64_data")?;
            let mut out = Vec::with_capacity(tensor.uint64_data.len() * 4);
            for &v in &tensor.uint64_data {
                let v = u32::try_from(v)
                    .map_err(|_| format!("uint64_data value {v} is out of range for UINT32"))?;
                out.extend_from_slice(&v.to_le_bytes());
            }
            Ok(out)
        }
        other => Err(format!(
            "no typed field holds {} values",
            other.as_str_name()
        )),
    }
}
