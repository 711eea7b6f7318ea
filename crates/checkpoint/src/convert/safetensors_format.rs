//! `.safetensors` files: an 8-byte little-endian header length, a JSON
//! header, then the tensors' bytes (little-endian, row-major). The header is
//! parsed and validated by the `safetensors` crate, on the memory map.

use std::borrow::Cow;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Metadata, TensorInfo as StInfo};
use safetensors::{Dtype, SafeTensors};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::mmap::MappedFile;
use crate::tensor::{TensorData, TensorView};

use super::{ConvertPlan, Progress, StagedOutput, TensorFileEntry, Unsupported, write_chunked};

/// The `.safetensors` type of a TensorFlow type (see the table in the
/// module documentation), `None` when there is none.
pub(super) fn to_safetensors_dtype(dtype: DType) -> Option<Dtype> {
    Some(match dtype {
        DType::Bool => Dtype::BOOL,
        DType::UInt8 => Dtype::U8,
        DType::Int8 => Dtype::I8,
        DType::Float8E5M2 => Dtype::F8_E5M2,
        DType::Float8E4M3FN => Dtype::F8_E4M3,
        DType::Float8E4M3FNUZ => Dtype::F8_E4M3FNUZ,
        DType::Float8E5M2FNUZ => Dtype::F8_E5M2FNUZ,
        DType::Int16 => Dtype::I16,
        DType::UInt16 => Dtype::U16,
        DType::Half => Dtype::F16,
        DType::BFloat16 => Dtype::BF16,
        DType::Int32 => Dtype::I32,
        DType::UInt32 => Dtype::U32,
        DType::Float => Dtype::F32,
        DType::Complex64 => Dtype::C64,
        DType::Double => Dtype::F64,
        DType::Int64 => Dtype::I64,
        DType::UInt64 => Dtype::U64,
        _ => return None,
    })
}

/// The TensorFlow type of a `.safetensors` type, `None` when there is none
/// (`F4` and `F6_*` are packed below a byte, `F8_E8M0` has no TensorFlow
/// counterpart).
fn from_safetensors_dtype(dtype: Dtype) -> Option<DType> {
    Some(match dtype {
        Dtype::BOOL => DType::Bool,
        Dtype::U8 => DType::UInt8,
        Dtype::I8 => DType::Int8,
        Dtype::F8_E5M2 => DType::Float8E5M2,
        Dtype::F8_E4M3 => DType::Float8E4M3FN,
        Dtype::F8_E4M3FNUZ => DType::Float8E4M3FNUZ,
        Dtype::F8_E5M2FNUZ => DType::Float8E5M2FNUZ,
        Dtype::I16 => DType::Int16,
        Dtype::U16 => DType::UInt16,
        Dtype::F16 => DType::Half,
        Dtype::BF16 => DType::BFloat16,
        Dtype::I32 => DType::Int32,
        Dtype::U32 => DType::UInt32,
        Dtype::F32 => DType::Float,
        Dtype::C64 => DType::Complex64,
        Dtype::F64 => DType::Double,
        Dtype::I64 => DType::Int64,
        Dtype::U64 => DType::UInt64,
        _ => return None,
    })
}

/// A memory-mapped `.safetensors` file: where each readable tensor's bytes
/// are.
pub(super) struct SafeTensorsSource {
    path: PathBuf,
    map: MappedFile,
    ranges: Vec<Range<usize>>,
}

impl std::fmt::Debug for SafeTensorsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeTensorsSource")
            .field("path", &self.path)
            .field("tensors", &self.ranges.len())
            .finish_non_exhaustive()
    }
}

impl SafeTensorsSource {
    pub(super) fn open(
        path: &Path,
    ) -> Result<(SafeTensorsSource, Vec<TensorFileEntry>, Vec<Unsupported>)> {
        let map = MappedFile::open(path)?;
        let corrupt = |what: String| Error::CorruptForeignFile {
            path: path.to_path_buf(),
            format: "safetensors",
            tensor: None,
            what,
        };
        // Validates the JSON, that the offsets tile the data exactly, and
        // that each tensor's byte count matches its type and shape.
        let (header_len, metadata) = SafeTensors::read_metadata(map.as_ref())
            .map_err(|e| corrupt(format!("not a valid .safetensors file: {e}")))?;
        let data_start = 8usize
            .checked_add(header_len)
            .ok_or_else(|| corrupt("header length overflows".to_owned()))?;
        let mut listed: Vec<(String, &StInfo)> = metadata.tensors().into_iter().collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut tensors = Vec::with_capacity(listed.len());
        let mut ranges = Vec::with_capacity(listed.len());
        let mut unsupported = Vec::new();
        for (name, info) in listed {
            let (start, end) = info.data_offsets;
            let range = data_start
                .checked_add(start)
                .zip(data_start.checked_add(end))
                .filter(|&(s, e)| s <= e && e <= map.as_ref().len())
                .map(|(s, e)| s..e)
                .ok_or_else(|| corrupt(format!("tensor {name}: data offsets out of range")))?;
            let Some(dtype) = from_safetensors_dtype(info.dtype) else {
                unsupported.push(Unsupported {
                    name,
                    dtype: format!("{:?}", info.dtype),
                    reason: "TensorFlow has no such data type".to_owned(),
                });
                continue;
            };
            let mut shape = Vec::with_capacity(info.shape.len());
            for &d in &info.shape {
                shape.push(
                    i64::try_from(d)
                        .map_err(|_| corrupt(format!("tensor {name}: dimension {d} too large")))?,
                );
            }
            tensors.push(TensorFileEntry {
                name,
                dtype,
                shape,
                size: range.len() as u64,
            });
            ranges.push(range);
        }
        let source = SafeTensorsSource {
            path: path.to_path_buf(),
            map,
            ranges,
        };
        Ok((source, tensors, unsupported))
    }

    pub(super) fn read(&self, index: usize, info: &TensorFileEntry) -> Result<TensorView<'_>> {
        let bytes = self
            .ranges
            .get(index)
            .and_then(|r| self.map.as_ref().get(r.clone()))
            .ok_or_else(|| Error::NotFound {
                path: self.path.clone(),
                tensor: info.name.clone(),
            })?;
        let data = if cfg!(target_endian = "little") {
            Cow::Borrowed(bytes)
        } else {
            let mut owned = bytes.to_vec();
            if let Some(unit) = info.dtype.swap_unit() {
                crate::tensor::swap_bytes(&mut owned, unit);
            }
            Cow::Owned(owned)
        };
        Ok(TensorView::new(
            &info.name,
            info.dtype,
            info.shape.clone(),
            TensorData::Bytes(data),
        ))
    }
}

/// Writes the plan's tensors as a `.safetensors` file at `path`.
///
/// The header comes from the `safetensors` crate ([`Metadata`] and its
/// serializer, padded with spaces to a multiple of 8 as the crate pads it),
/// with the tensors in the crate's order: descending data type, then name.
/// The data is streamed tensor by tensor.
pub(super) fn write(
    plan: &ConvertPlan<'_>,
    path: &Path,
    progress: &mut Progress<'_>,
) -> Result<()> {
    let bad = |tensor: &str, what: String| Error::InvalidArgument {
        tensor: tensor.to_owned(),
        what,
    };
    let mut order: Vec<(Dtype, &super::PlannedTensor)> = Vec::with_capacity(plan.tensors().len());
    for t in plan.tensors() {
        let dtype = to_safetensors_dtype(t.dtype)
            .ok_or_else(|| bad(&t.name, format!(".safetensors cannot hold {}", t.dtype)))?;
        order.push((dtype, t));
    }
    order.sort_by(|(da, a), (db, b)| db.cmp(da).then_with(|| a.name.cmp(&b.name)));

    let mut infos = Vec::with_capacity(order.len());
    let mut offset = 0usize;
    for (dtype, t) in &order {
        let too_large = || {
            bad(
                &t.name,
                "too large for this machine's address space".to_owned(),
            )
        };
        let shape = t
            .shape
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| too_large()))
            .collect::<Result<Vec<usize>>>()?;
        let size = shape
            .iter()
            .try_fold(t.dtype.element_size().unwrap_or(0), |acc, &d| {
                acc.checked_mul(d)
            })
            .ok_or_else(too_large)?;
        let end = offset.checked_add(size).ok_or_else(too_large)?;
        infos.push((
            t.name.clone(),
            StInfo {
                dtype: *dtype,
                shape,
                data_offsets: (offset, end),
            },
        ));
        offset = end;
    }
    let metadata = Metadata::new(None, infos)
        .map_err(|e| bad("", format!("building the .safetensors header: {e}")))?;
    let mut header = serde_json::to_vec(&metadata)
        .map_err(|e| bad("", format!("serializing the .safetensors header: {e}")))?;
    header.resize(header.len().next_multiple_of(8), b' ');

    let mut out = StagedOutput::create(path)?;
    out.write_all(&(header.len() as u64).to_le_bytes())
        .and_then(|()| out.write_all(&header))
        .map_err(|e| out.io("writing", e))?;
    for (_, t) in &order {
        let view = plan.read(t)?;
        let bytes = super::little_endian_bytes(&view)
            .ok_or_else(|| bad(&t.name, "expected numeric data".to_owned()))?;
        write_chunked(&mut out, &bytes, progress).map_err(|e| out.io("writing", e))?;
    }
    out.finish()
}
