//! Reading checkpoints: `open_checkpoint`, `load_checkpoint`, and the numpy
//! arrays that are views into the data files' memory maps.
//!
//! A [`Checkpoint`] owns a [`MappedCheckpoint`], which owns the
//! [`BundleReader`] (through an `Arc`) and with it the memory maps. Every
//! array that views a map has the `MappedCheckpoint` as its numpy `base`, so
//! the maps live as long as any array does, whether or not the checkpoint is
//! closed; closing only drops the checkpoint's own reference.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use std::ffi::c_int;
use std::ptr;

use numpy::npyffi::{self, PY_ARRAY_API, npy_intp};
use numpy::{PyArray1, PyArrayDescr, PyArrayDescrMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use savedmodel_checkpoint::{
    BundleReader, DType, Endianness, ReaderOptions, TensorData, TensorEntry, TensorView,
};

use crate::dtypes::{numpy_dtype, tf_name};
use crate::errors::checkpoint_error;

/// The memory-mapped files of an open checkpoint: the numpy `base` of every
/// array that views them, keeping them mapped while any such array lives.
#[pyclass(frozen, module = "savedmodel")]
pub(crate) struct MappedCheckpoint {
    reader: Arc<BundleReader>,
}

#[pymethods]
impl MappedCheckpoint {
    fn __repr__(&self) -> String {
        format!(
            "MappedCheckpoint({:?})",
            self.reader.prefix().display().to_string()
        )
    }
}

/// A checkpoint opened by `open_checkpoint`: tensors are read on demand.
///
/// Use it as a context manager (`with open_checkpoint(prefix) as ckpt:`);
/// arrays it returned stay valid after it is closed.
#[pyclass(frozen, module = "savedmodel")]
pub(crate) struct Checkpoint {
    prefix: PathBuf,
    mapping: Mutex<Option<Py<MappedCheckpoint>>>,
}

impl Checkpoint {
    /// Opens the checkpoint at `prefix` (the path without `.index`).
    pub(crate) fn open(py: Python<'_>, prefix: PathBuf, verify_checksums: bool) -> PyResult<Self> {
        let options = ReaderOptions::default().with_verify_checksums(verify_checksums);
        let reader = py
            .detach(|| BundleReader::open_with(&prefix, options))
            .map_err(checkpoint_error)?;
        Self::from_reader(py, reader)
    }

    /// Wraps a reader opened elsewhere (a SavedModel's variables).
    pub(crate) fn from_reader(py: Python<'_>, reader: BundleReader) -> PyResult<Self> {
        let prefix = reader.prefix().to_path_buf();
        let mapping = Py::new(
            py,
            MappedCheckpoint {
                reader: Arc::new(reader),
            },
        )?;
        Ok(Checkpoint {
            prefix,
            mapping: Mutex::new(Some(mapping)),
        })
    }

    fn mapping<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, MappedCheckpoint>> {
        let guard = self.mapping.lock().unwrap_or_else(PoisonError::into_inner);
        match guard.as_ref() {
            Some(mapping) => Ok(mapping.bind(py).clone()),
            None => Err(PyValueError::new_err(format!(
                "checkpoint {} is closed",
                self.prefix.display()
            ))),
        }
    }

    /// The tensor keys, in key order (TensorFlow's `get_variable_to_shape_map`
    /// keys): no header, no per-slice entries of partitioned tensors.
    fn key_list(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let mapping = self.mapping(py)?;
        let reader = &mapping.get().reader;
        let mut keys = Vec::new();
        for item in reader.entries() {
            let (key, _) = item.map_err(checkpoint_error)?;
            if key.first() == Some(&0) {
                continue;
            }
            keys.push(String::from_utf8_lossy(&key).into_owned());
        }
        Ok(keys)
    }

    fn entry(&self, py: Python<'_>, name: &str) -> PyResult<TensorEntry> {
        let mapping = self.mapping(py)?;
        mapping.get().reader.entry(name).map_err(checkpoint_error)
    }

    fn read<'py>(&self, py: Python<'py>, name: &str, copy: bool) -> PyResult<Bound<'py, PyAny>> {
        let mapping = self.mapping(py)?;
        let reader = &*mapping.get().reader;
        let view = py
            .detach(|| reader.tensor(name))
            .map_err(checkpoint_error)?;
        to_array(py, &mapping, view, name, copy)
    }
}

#[pymethods]
impl Checkpoint {
    /// The tensor names, sorted (as `tf.train.load_checkpoint(...)
    /// .get_variable_to_shape_map()` has them, including a TensorFlow 2
    /// object checkpoint's `_CHECKPOINTABLE_OBJECT_GRAPH`).
    fn keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.key_list(py)
    }

    /// Reads tensor `name` as a numpy array. Numeric tensors are read-only
    /// views into the memory-mapped data file (no copy) unless `copy=True`,
    /// which returns a writable copy; strings are object arrays of `bytes`.
    /// The tensor's checksum is verified unless the checkpoint was opened
    /// with `verify_checksums=False`.
    #[pyo3(signature = (name, *, copy = false))]
    fn get_tensor<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        copy: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.read(py, name, copy)
    }

    /// A lazy handle on tensor `name`: `dtype` and `shape` without reading,
    /// and `[...]` indexing that reads only what it touches.
    fn get_slice(&self, py: Python<'_>, name: &str) -> PyResult<CheckpointSlice> {
        let mapping = self.mapping(py)?;
        let entry = mapping.get().reader.entry(name).map_err(checkpoint_error)?;
        Ok(CheckpointSlice {
            mapping: mapping.unbind(),
            name: name.to_owned(),
            entry,
        })
    }

    /// TensorFlow's name of tensor `name`'s data type (`float32`,
    /// `bfloat16`, `string`), read from the index without touching the data.
    fn dtype(&self, py: Python<'_>, name: &str) -> PyResult<String> {
        Ok(tf_name(self.entry(py, name)?.dtype))
    }

    /// Tensor `name`'s shape, read from the index without touching the data.
    fn shape<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.entry(py, name)?.shape)
    }

    /// The bundle header: `num_shards`, `endianness` (`"little"` or
    /// `"big"`), and the format `version` (`producer`, `min_consumer`,
    /// `bad_consumers`).
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mapping = self.mapping(py)?;
        let header = mapping.get().reader.header();
        let dict = PyDict::new(py);
        dict.set_item("num_shards", header.num_shards)?;
        let endianness = match header.endianness {
            Endianness::Little => "little",
            Endianness::Big => "big",
        };
        dict.set_item("endianness", endianness)?;
        let version = PyDict::new(py);
        version.set_item("producer", header.version.producer)?;
        version.set_item("min_consumer", header.version.min_consumer)?;
        version.set_item("bad_consumers", header.version.bad_consumers.clone())?;
        dict.set_item("version", version)?;
        Ok(dict)
    }

    /// For a TensorFlow 2 object checkpoint, the name each saved value had in
    /// the program (its variable's name, `dense/kernel`), by checkpoint key
    /// (`layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`), read from
    /// the object graph; empty for a checkpoint without one (TensorFlow 1's
    /// keys are the variables' names already).
    fn variable_names(&self, py: Python<'_>) -> PyResult<BTreeMap<String, String>> {
        let mapping = self.mapping(py)?;
        let reader = &*mapping.get().reader;
        let graph = py
            .detach(|| reader.object_graph())
            .map_err(checkpoint_error)?;
        let mut names = BTreeMap::new();
        for node in graph.iter().flat_map(|g| &g.nodes) {
            for attribute in &node.attributes {
                if !attribute.full_name.is_empty() {
                    names.insert(
                        attribute.checkpoint_key.clone(),
                        attribute.full_name.clone(),
                    );
                }
            }
        }
        Ok(names)
    }

    /// The checkpoint's prefix (the path without `.index`).
    #[getter]
    fn prefix(&self) -> PathBuf {
        self.prefix.clone()
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.mapping
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// Drops this object's hold on the memory maps; arrays already returned
    /// keep theirs.
    fn close(&self) {
        self.mapping
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> bool {
        self.close();
        false
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.key_list(py)?.len())
    }

    fn __contains__(&self, py: Python<'_>, name: &str) -> PyResult<bool> {
        let mapping = self.mapping(py)?;
        mapping
            .get()
            .reader
            .contains(name)
            .map_err(checkpoint_error)
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PyList::new(py, self.key_list(py)?)?
            .try_iter()
            .map(Bound::into_any)
    }

    fn __repr__(&self) -> String {
        format!("Checkpoint({:?})", self.prefix.display().to_string())
    }
}

/// A lazy handle on one tensor (from `Checkpoint.get_slice`).
///
/// `slice[...]` indexes a read-only view of the stored tensor, so only the
/// pages the selection touches are read; the checksum is not verified (it
/// covers the whole tensor). Partitioned, string and other-byte-order
/// tensors are read whole first.
#[pyclass(frozen, module = "savedmodel")]
pub(crate) struct CheckpointSlice {
    mapping: Py<MappedCheckpoint>,
    name: String,
    entry: TensorEntry,
}

#[pymethods]
impl CheckpointSlice {
    /// TensorFlow's name of the data type (`float32`, `bfloat16`, `string`).
    #[getter]
    fn dtype(&self) -> String {
        tf_name(self.entry.dtype)
    }

    /// The shape.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.entry.shape)
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mapping = self.mapping.bind(py);
        let reader = &*mapping.get().reader;
        let native = match reader.header().endianness {
            Endianness::Little => cfg!(target_endian = "little"),
            Endianness::Big => cfg!(target_endian = "big"),
        };
        let whole = if native
            && !self.entry.is_partitioned()
            && self.entry.dtype.element_size().is_some()
        {
            let bytes = reader
                .stored_bytes(self.name.as_bytes(), &self.entry)
                .map_err(checkpoint_error)?;
            let view = TensorView::new(
                &self.name,
                self.entry.dtype,
                self.entry.shape.clone(),
                TensorData::Bytes(Cow::Borrowed(bytes)),
            );
            to_array(py, mapping, view, &self.name, false)?
        } else {
            let view = py
                .detach(|| reader.tensor(&self.name))
                .map_err(checkpoint_error)?;
            to_array(py, mapping, view, &self.name, false)?
        };
        whole.get_item(index)
    }

    fn __repr__(&self) -> String {
        format!(
            "CheckpointSlice({:?}, dtype={}, shape={:?})",
            self.name,
            tf_name(self.entry.dtype),
            self.entry.shape
        )
    }
}

/// A tensor as a numpy array: a read-only view of the map when its bytes
/// are borrowed from it, an array owning them otherwise; `copy` gives a
/// writable copy.
fn to_array<'py>(
    py: Python<'py>,
    mapping: &Bound<'py, MappedCheckpoint>,
    view: TensorView<'_>,
    name: &str,
    copy: bool,
) -> PyResult<Bound<'py, PyAny>> {
    to_array_cached(py, mapping, view, name, copy, &mut DtypeCache::default())
}

/// The numpy dtypes already looked up (by `numpy.dtype(...)`, a handful of
/// Python calls each), for reading many tensors.
#[derive(Default)]
struct DtypeCache<'py> {
    dtypes: Vec<(DType, Bound<'py, PyAny>)>,
}

impl<'py> DtypeCache<'py> {
    fn get(&mut self, py: Python<'py>, dtype: DType, name: &str) -> PyResult<Bound<'py, PyAny>> {
        if let Some((_, found)) = self.dtypes.iter().find(|(d, _)| *d == dtype) {
            return Ok(found.clone());
        }
        let found = numpy_dtype(py, dtype, &format!("tensor {name}"))?;
        self.dtypes.push((dtype, found.clone()));
        Ok(found)
    }
}

/// [`to_array`], with the dtypes looked up through `dtypes`.
fn to_array_cached<'py>(
    py: Python<'py>,
    mapping: &Bound<'py, MappedCheckpoint>,
    view: TensorView<'_>,
    name: &str,
    copy: bool,
    dtypes: &mut DtypeCache<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let shape = view.shape().to_vec();
    let dtype = view.dtype();
    match view.into_data() {
        TensorData::Strings(elements) => {
            let list = PyList::new(py, elements.iter().map(|e| PyBytes::new(py, e)))?;
            let numpy = py.import("numpy")?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("dtype", numpy.getattr("object_")?)?;
            let array = numpy.getattr("array")?.call((list,), Some(&kwargs))?;
            array.call_method1("reshape", (PyTuple::new(py, &shape)?,))
        }
        TensorData::Bytes(bytes) => {
            let numpy_dtype = dtypes.get(py, dtype, name)?;
            let array = match bytes {
                Cow::Borrowed(bytes) => map_view(py, mapping, bytes, &numpy_dtype, &shape, name)?,
                Cow::Owned(bytes) => {
                    let raw = PyArray1::from_vec(py, bytes);
                    raw.getattr("flags")?.setattr("writeable", false)?;
                    raw.call_method1("view", (numpy_dtype,))?
                        .call_method1("reshape", (PyTuple::new(py, &shape)?,))?
                }
            };
            if copy {
                array.call_method0("copy")
            } else {
                Ok(array)
            }
        }
    }
}

/// A read-only numpy array of `dtype` and `shape` over `bytes`, which lie in
/// a data file's memory map owned by `mapping`; its base is `mapping`.
fn map_view<'py>(
    py: Python<'py>,
    mapping: &Bound<'py, MappedCheckpoint>,
    bytes: &[u8],
    dtype: &Bound<'py, PyAny>,
    shape: &[i64],
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let descr = dtype.cast::<PyArrayDescr>()?;
    let mut dims = shape
        .iter()
        .map(|&d| npy_intp::try_from(d).ok().filter(|d| *d >= 0))
        .collect::<Option<Vec<npy_intp>>>()
        .ok_or_else(|| corrupt(name, format!("shape {shape:?} is not a numpy shape")))?;
    let expected = dims
        .iter()
        .try_fold(descr.itemsize(), |n, &d| n.checked_mul(d.unsigned_abs()));
    if expected != Some(bytes.len()) {
        return Err(corrupt(
            name,
            format!(
                "{} bytes do not hold shape {shape:?} of {}-byte elements",
                bytes.len(),
                descr.itemsize()
            ),
        ));
    }
    let ndim = c_int::try_from(dims.len())
        .map_err(|_| corrupt(name, format!("rank {} is too large", dims.len())))?;
    // `bytes` lies in a data file's memory map, which the `BundleReader`
    // inside `mapping` owns (through an `Arc`) and unmaps only when it is
    // dropped. The flags leave out `NPY_ARRAY_WRITEABLE`, so the array is
    // read-only from the start, and numpy refuses to make it writable later
    // because its base exposes no writable buffer: nothing writes to the
    // (read-only) map.
    // SAFETY: the map outlives the array (its base, set below, is `mapping`);
    // `bytes.len()` is the array's size, `dims` has `ndim` entries, null
    // strides are C-contiguous; the call steals `into_dtype_ptr`'s reference.
    let array = unsafe {
        PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            descr.clone().into_dtype_ptr(),
            ndim,
            dims.as_mut_ptr(),
            ptr::null_mut(),
            bytes.as_ptr().cast_mut().cast(),
            npyffi::NPY_ARRAY_C_CONTIGUOUS,
            ptr::null_mut(),
        )
    };
    if array.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: `array` is the new, non-null array object we own a reference
    // to; `from_owned_ptr` takes that reference, so it is released on every
    // path below.
    let array = unsafe { Bound::from_owned_ptr(py, array) };
    // The base keeps the map alive as long as the array and every view numpy
    // derives from it (their bases are collapsed to `mapping`).
    // SAFETY: `array` is an ndarray without a base; `PyArray_SetBaseObject`
    // steals the new reference to `mapping` (also when it fails).
    let status = unsafe {
        PY_ARRAY_API.PyArray_SetBaseObject(
            py,
            array.as_ptr().cast::<npyffi::PyArrayObject>(),
            mapping.clone().into_any().into_ptr(),
        )
    };
    if status < 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(array)
}

fn corrupt(name: &str, what: String) -> PyErr {
    crate::errors::CorruptDataError::new_err(format!("tensor {name}: {what}"))
}

/// Opens the checkpoint at `prefix` (the path without `.index`, as
/// `tf.train.load_checkpoint` takes it) for reading tensors on demand.
///
/// Use it as a context manager: `with open_checkpoint(prefix) as ckpt:`.
/// `verify_checksums=False` skips the per-tensor CRC32C check (the index is
/// always checked).
#[pyfunction]
#[pyo3(signature = (prefix, *, verify_checksums = true))]
pub(crate) fn open_checkpoint(
    py: Python<'_>,
    prefix: PathBuf,
    verify_checksums: bool,
) -> PyResult<Checkpoint> {
    Checkpoint::open(py, prefix, verify_checksums)
}

/// Reads every tensor of the checkpoint at `prefix` into a dict of numpy
/// arrays, keyed and sorted as `tf.train.load_checkpoint` lists them.
///
/// Numeric arrays are read-only views into the memory-mapped data files (no
/// copy); `copy=True` gives writable copies. Partitioned tensors are
/// assembled whole; strings are object arrays of `bytes`.
#[pyfunction]
#[pyo3(signature = (prefix, *, copy = false, verify_checksums = true))]
pub(crate) fn load_checkpoint<'py>(
    py: Python<'py>,
    prefix: PathBuf,
    copy: bool,
    verify_checksums: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let checkpoint = Checkpoint::open(py, prefix, verify_checksums)?;
    let mapping = checkpoint.mapping(py)?;
    let reader = &*mapping.get().reader;
    // One pass over the index, then every tensor read with the entry the
    // iteration decoded (not looked up again by name), all without the GIL:
    // the checksums of the whole checkpoint are verified on every CPU at
    // once, and all of them before any array exists.
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let (entries, views) = py
        .detach(|| {
            let entries = reader
                .entries()
                .filter(|item| !matches!(item, Ok((key, _)) if key.first() == Some(&0)))
                .collect::<savedmodel_checkpoint::Result<Vec<_>>>()?;
            let views = reader.tensors_for_entries(&entries, threads)?;
            Ok::<_, savedmodel_checkpoint::Error>((entries, views))
        })
        .map_err(checkpoint_error)?;
    let dict = PyDict::new(py);
    let mut dtypes = DtypeCache::default();
    for ((key, _), view) in entries.iter().zip(views) {
        let name = String::from_utf8_lossy(key);
        let array = to_array_cached(py, &mapping, view, &name, copy, &mut dtypes)?;
        dict.set_item(&*name, array)?;
    }
    Ok(dict)
}
