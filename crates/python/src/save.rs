//! `save_checkpoint`: a mapping of names to arrays written as a checkpoint
//! through `savedmodel-checkpoint`'s `BundleWriter`, whose files are
//! TensorFlow's `SaveV2`'s for the same tensors in the same order.

use std::path::PathBuf;

use std::ptr;

use numpy::npyffi::{self, NPY_TYPES};
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use savedmodel_checkpoint::{BundleWriter, DType, TensorBytes, WriterOptions};

use crate::dtypes::from_numpy_name;
use crate::errors::{checkpoint_error, invalid_argument};

/// Writes `tensors`, a mapping of names to numpy arrays or array-likes
/// (anything `numpy.asarray` takes, including objects with `__array__`, or
/// with `__dlpack__` such as a CPU `torch.Tensor`), as the checkpoint
/// `prefix` (`prefix.index` and `prefix.data-00000-of-00001`).
///
/// The files are the bytes TensorFlow's `SaveV2` writes for the same tensors
/// passed in the mapping's order. `bytes`/`str` arrays (numpy `S`/`U`, or
/// object arrays of `bytes` or `str`) become `DT_STRING` tensors (`str` as
/// UTF-8); bfloat16 and float8 arrays are `ml_dtypes`'. The files are
/// written under temporary names, fsynced, and renamed into place when
/// complete (the directory fsynced too), so that a crash leaves the old
/// checkpoint or the new one. `fsync=False` skips the fsyncs (as
/// TensorFlow's `SaveV2` and safetensors do): faster, but after a power
/// loss the files may be incomplete.
#[pyfunction]
#[pyo3(signature = (tensors, prefix, *, fsync = true))]
pub(crate) fn save_checkpoint(
    py: Python<'_>,
    tensors: &Bound<'_, PyAny>,
    prefix: PathBuf,
    fsync: bool,
) -> PyResult<()> {
    let numpy = py.import("numpy")?;
    let items = tensors.call_method0("items").map_err(|_| {
        PyTypeError::new_err(format!(
            "tensors must be a mapping of names to arrays, found {}",
            type_name(tensors)
        ))
    })?;
    let options = WriterOptions::default().with_fsync(fsync);
    let mut writer = BundleWriter::create_with(&prefix, options).map_err(checkpoint_error)?;
    let mut prepared = Vec::new();
    for item in items.try_iter()? {
        let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        let name: String = name.extract().map_err(|_| {
            invalid_argument(format!(
                "tensor names must be str, found {}",
                type_name(&name)
            ))
        })?;
        let tensor = prepare(&numpy, &name, &value)?;
        prepared.push((name, tensor));
    }
    // Consecutive numeric tensors go to the writer as one batch (written
    // from several threads, same bytes as one `add` at a time: the
    // checkpoint crate's invariant), strings one by one, in the mapping's
    // order.
    let mut batch: Vec<TensorBytes<'_>> = Vec::new();
    for (name, tensor) in &prepared {
        match tensor {
            Prepared::Strings { shape, elements } => {
                writer.add_batch(&batch).map_err(checkpoint_error)?;
                batch.clear();
                writer
                    .add_strings(name, shape, elements)
                    .map_err(checkpoint_error)?;
            }
            Prepared::Numeric {
                dtype,
                shape,
                array,
            } => {
                let bytes = array_bytes(py, name, array)?;
                batch.push(TensorBytes::new(name.as_str(), *dtype, shape, bytes));
            }
        }
    }
    writer.add_batch(&batch).map_err(checkpoint_error)?;
    py.detach(|| writer.finish()).map_err(checkpoint_error)
}

/// A tensor ready to be stored.
pub(crate) enum Prepared<'py> {
    /// `DT_STRING` elements.
    Strings {
        shape: Vec<i64>,
        elements: Vec<Vec<u8>>,
    },
    /// Fixed-size elements: a C-contiguous, native-byte-order array (kept
    /// alive here, its bytes read in place: [`array_bytes`]).
    Numeric {
        dtype: DType,
        shape: Vec<i64>,
        array: Bound<'py, PyUntypedArray>,
    },
}

/// The bytes of a numeric tensor, in place.
///
/// Not through numpy's `PyReadonlyArray`: its borrow registry keeps every
/// live borrow of a base buffer in one list, so borrowing 100,000 views of
/// one array at once (a state dict of slices) took quadratic time (34 s to
/// save 100,000 tensors, against 1.4 s for safetensors).
///
/// `_gil` is the caller's proof that it holds the GIL, which it keeps for
/// as long as it uses the slice.
pub(crate) fn array_bytes<'a>(
    _gil: Python<'_>,
    name: &str,
    array: &'a Bound<'_, PyUntypedArray>,
) -> PyResult<&'a [u8]> {
    if !array.is_c_contiguous() {
        return Err(invalid_argument(format!(
            "tensor {name}: the array is not C-contiguous"
        )));
    }
    let len = array
        .shape()
        .iter()
        .try_fold(array.dtype().itemsize(), |n, &d| n.checked_mul(d))
        .ok_or_else(|| invalid_argument(format!("tensor {name}: the array is too large")))?;
    if len == 0 {
        // The data pointer of an empty array need not point anywhere.
        return Ok(&[]);
    }
    // A native thread writing to the array without the GIL would race with
    // numpy's own readers as well: numpy's borrow checker does not cover
    // that either.
    // Why the slice is valid: `as_array_ptr` is the live array object
    // `array` holds a reference to; a C-contiguous array's `len` bytes (its
    // elements' size times the product of its dimensions, checked above)
    // start at its `data` pointer, which is non-null as `len` is not 0.
    // SAFETY: as above; the bytes stay allocated for 'a (`array` keeps the
    // array alive) and no Python code resizes or frees them under the GIL.
    let bytes = unsafe {
        let data = (*npyffi::_PyArray_GET_ITEM_DATA(array.as_array_ptr())).data;
        std::slice::from_raw_parts(data.cast::<u8>().cast_const(), len)
    };
    Ok(bytes)
}

/// Converts `value` (tensor `name`) to what a checkpoint stores: through
/// `numpy.asarray` (or `from_dlpack`), strings as bytes, numbers as their
/// native-order element bytes.
pub(crate) fn prepare<'py>(
    numpy: &Bound<'py, PyModule>,
    name: &str,
    value: &Bound<'py, PyAny>,
) -> PyResult<Prepared<'py>> {
    if let Some(prepared) = prepare_plain(value) {
        return Ok(prepared);
    }
    let array = as_array(numpy, value)?;
    let shape: Vec<i64> = array.getattr("shape")?.extract()?;
    let dtype = array.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    if matches!(kind.as_str(), "O" | "S" | "U") {
        let elements = string_elements(name, &array)?;
        return Ok(Prepared::Strings { shape, elements });
    }
    let dtype_name: String = dtype.getattr("name")?.extract()?;
    let Some(tf_dtype) = from_numpy_name(&dtype_name) else {
        return Err(invalid_argument(format!(
            "tensor {name}: numpy dtype {dtype_name} has no TensorFlow data type"
        )));
    };
    let byteorder: String = dtype.getattr("byteorder")?.extract()?;
    let foreign = if cfg!(target_endian = "little") {
        ">"
    } else {
        "<"
    };
    let array = if byteorder == foreign {
        array.call_method1("astype", (dtype.call_method1("newbyteorder", ("=",))?,))?
    } else {
        array
    };
    let array = numpy.call_method1("ascontiguousarray", (array,))?;
    Ok(Prepared::Numeric {
        dtype: tf_dtype,
        shape,
        array: array.cast_into::<PyUntypedArray>()?,
    })
}

/// The first type number of user-defined dtypes (numpy's `NPY_USERDEF`).
const NPY_USERDEF: i32 = NPY_TYPES::NPY_USERDEF as i32;

/// [`prepare`] without a Python call, for what most tensors are: a plain
/// `numpy.ndarray` (not a subclass), C-contiguous, of one of numpy's own
/// numeric dtypes in native byte order; `None` for anything else, which
/// takes the general path (the same result for these, at several Python
/// calls per tensor: 10 µs each, a second for 100,000 tensors).
fn prepare_plain<'py>(value: &Bound<'py, PyAny>) -> Option<Prepared<'py>> {
    let py = value.py();
    // SAFETY: numpy's C API table is loaded on first use (the numpy crate
    // imports it with the GIL held, which `py` proves); the pointer is only
    // compared, never dereferenced here.
    let ndarray = unsafe { npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type) };
    if !ptr::eq(value.get_type().as_type_ptr(), ndarray) {
        return None;
    }
    let array = value.cast::<PyUntypedArray>().ok()?;
    if !array.is_c_contiguous() {
        return None;
    }
    let descr = array.dtype();
    // numpy's own types only (user-defined ones, such as ml_dtypes',
    // are numbered from 256 and named by Python code); no structured or
    // sub-array dtypes, no foreign byte order.
    if descr.num() >= NPY_USERDEF || descr.has_fields() || descr.has_subarray() {
        return None;
    }
    if descr.is_native_byteorder() == Some(false) {
        return None;
    }
    let dtype_name = match (descr.kind(), descr.itemsize()) {
        (b'b', 1) => "bool",
        (b'i', 1) => "int8",
        (b'i', 2) => "int16",
        (b'i', 4) => "int32",
        (b'i', 8) => "int64",
        (b'u', 1) => "uint8",
        (b'u', 2) => "uint16",
        (b'u', 4) => "uint32",
        (b'u', 8) => "uint64",
        (b'f', 2) => "float16",
        (b'f', 4) => "float32",
        (b'f', 8) => "float64",
        (b'c', 8) => "complex64",
        (b'c', 16) => "complex128",
        _ => return None,
    };
    let shape = array
        .shape()
        .iter()
        .map(|&d| i64::try_from(d).ok())
        .collect::<Option<Vec<i64>>>()?;
    Some(Prepared::Numeric {
        dtype: from_numpy_name(dtype_name)?,
        shape,
        array: array.clone(),
    })
}

/// `value` as a numpy array: `numpy.asarray` for anything with `__array__`
/// (and lists, scalars), `numpy.from_dlpack` for DLPack-only objects.
fn as_array<'py>(
    numpy: &Bound<'py, PyModule>,
    value: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    if !value.hasattr("__array__")? && value.hasattr("__dlpack__")? {
        numpy.call_method1("from_dlpack", (value,))
    } else {
        numpy.call_method1("asarray", (value,))
    }
}

/// The elements of a string array, row-major: `bytes` as they are, `str` as
/// UTF-8.
fn string_elements(name: &str, array: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    let list = array
        .call_method1("reshape", (-1,))?
        .call_method0("tolist")?;
    let mut elements = Vec::new();
    for (index, element) in list.try_iter()?.enumerate() {
        let element = element?;
        if let Ok(bytes) = element.cast::<PyBytes>() {
            elements.push(bytes.as_bytes().to_vec());
        } else if let Ok(text) = element.cast::<PyString>() {
            elements.push(text.to_str()?.as_bytes().to_vec());
        } else {
            return Err(invalid_argument(format!(
                "tensor {name}: element {index} is a {}, expected bytes or str",
                type_name(&element)
            )));
        }
    }
    Ok(elements)
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "object".to_owned(), |n| n.to_string())
}
