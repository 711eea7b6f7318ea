//! Weights read from files: `.safetensors`, `.npz` and TensorFlow
//! checkpoints, through `savedmodel_checkpoint::convert`.

use std::fmt;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use savedmodel_checkpoint::convert::TensorFile;
use savedmodel_checkpoint::{DType, TensorData};

use super::weights::{WeightSource, WeightTensor};
use crate::error::{Error, Result};
use savedmodel_graph::Error as GraphError;
use savedmodel_graph::{SourceData, TensorSource};

/// Opens a weights file: `.safetensors`, `.npz`, or a TensorFlow
/// checkpoint prefix (told apart by content, see
/// [`savedmodel_checkpoint::convert::TensorFile::open`]). Only the header
/// or index is read; tensors are read (memory-mapped) when the export asks
/// for them, and streamed from the map into the checkpoint when the
/// SavedModel is written (see [`WeightsFile`]).
pub fn open_weights(path: impl AsRef<Path>) -> Result<WeightsFile> {
    let path = path.as_ref();
    let file = TensorFile::open(path).map_err(|e| Error::WeightsFile {
        path: path.to_path_buf(),
        source: Box::new(e),
    })?;
    Ok(WeightsFile {
        file: Arc::new(file),
    })
}

/// An open weights file ([`open_weights`]), shared by the exports made
/// from it.
///
/// An export from a `WeightsFile` holds no copy of the weights: each
/// variable keeps a reference to the file (so the file stays mapped until
/// the export is dropped, even when this value is dropped first) and its
/// tensor is read again from the map when the checkpoint is written, in
/// one piece straight into the data file for `float32`, converted 1 MiB at
/// a time for `float16`, `bfloat16` and `float64`. Tensors that the file
/// cannot lend from its map (a compressed `.npz` member, a big-endian
/// checkpoint) are decoded when the export is prepared (to check them) and
/// again when written, one at a time. The file must not be modified while
/// it is open.
#[derive(Clone)]
pub struct WeightsFile {
    file: Arc<TensorFile>,
}

impl WeightsFile {
    /// The open file.
    pub fn tensor_file(&self) -> &TensorFile {
        &self.file
    }
}

impl fmt::Debug for WeightsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeightsFile")
            .field("path", &self.file.path())
            .field("format", &self.file.format())
            .field("tensors", &self.file.tensors().len())
            .finish()
    }
}

impl Deref for WeightsFile {
    type Target = TensorFile;

    fn deref(&self) -> &TensorFile {
        &self.file
    }
}

impl From<TensorFile> for WeightsFile {
    fn from(file: TensorFile) -> Self {
        WeightsFile {
            file: Arc::new(file),
        }
    }
}

impl WeightSource for WeightsFile {
    fn origin(&self) -> &Path {
        self.file.origin()
    }

    fn names(&self) -> Vec<String> {
        self.file.names()
    }

    fn tensor(&self, name: &str) -> Result<Option<WeightTensor<'_>>> {
        self.file.tensor(name)
    }

    fn shared_tensor(&self, name: &str) -> Result<Option<Arc<dyn TensorSource>>> {
        let Some(index) = self.file.index_of(name) else {
            return Ok(None);
        };
        let Some(info) = self.file.tensors().get(index) else {
            return Ok(None);
        };
        Ok(Some(Arc::new(FileTensor {
            file: Arc::clone(&self.file),
            index,
            dtype: info.dtype,
            shape: info.shape.clone(),
        })))
    }
}

/// One tensor of a [`WeightsFile`], read from the file each time it is
/// opened.
struct FileTensor {
    file: Arc<TensorFile>,
    index: usize,
    dtype: DType,
    shape: Vec<i64>,
}

impl fmt::Debug for FileTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.file.tensors().get(self.index).map(|t| t.name.as_str());
        f.debug_struct("FileTensor")
            .field("path", &self.file.path())
            .field("name", &name)
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .finish()
    }
}

impl TensorSource for FileTensor {
    fn dtype(&self) -> DType {
        self.dtype
    }

    fn shape(&self) -> &[i64] {
        &self.shape
    }

    fn open(&self) -> savedmodel_graph::Result<SourceData<'_>> {
        let source_error = |e: Error| GraphError::Source(Box::new(e));
        let view = self.file.read(self.index).map_err(|e| {
            source_error(Error::WeightsFile {
                path: self.file.path().to_path_buf(),
                source: Box::new(e),
            })
        })?;
        if view.dtype() != self.dtype || view.shape() != self.shape.as_slice() {
            return Err(source_error(self.changed()));
        }
        match view.into_data() {
            TensorData::Bytes(data) => Ok(SourceData::Bytes(data)),
            TensorData::Strings(_) => Err(source_error(self.changed())),
        }
    }
}

impl FileTensor {
    fn changed(&self) -> Error {
        Error::Weight {
            weights: self.file.path().to_path_buf(),
            tensor: self
                .file
                .tensors()
                .get(self.index)
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            role: "weight".into(),
            what: format!(
                "is no longer {} {:?} as when the export was prepared",
                self.dtype, self.shape
            ),
        }
    }
}

impl WeightSource for TensorFile {
    fn origin(&self) -> &Path {
        self.path()
    }

    fn names(&self) -> Vec<String> {
        self.tensors().iter().map(|t| t.name.clone()).collect()
    }

    fn tensor(&self, name: &str) -> Result<Option<WeightTensor<'_>>> {
        let Some(index) = self.index_of(name) else {
            if let Some(u) = self.unsupported().iter().find(|u| u.name == name) {
                return Err(Error::Weight {
                    weights: self.path().to_path_buf(),
                    tensor: name.to_owned(),
                    role: "weight".into(),
                    what: format!("cannot be read: {} ({})", u.reason, u.dtype),
                });
            }
            return Ok(None);
        };
        let view = self.read(index).map_err(|e| Error::WeightsFile {
            path: self.path().to_path_buf(),
            source: Box::new(e),
        })?;
        let dtype = view.dtype();
        let shape = view.shape().to_vec();
        match view.into_data() {
            TensorData::Bytes(data) => Ok(Some(WeightTensor { dtype, shape, data })),
            TensorData::Strings(_) => Err(Error::Weight {
                weights: self.path().to_path_buf(),
                tensor: name.to_owned(),
                role: "weight".into(),
                what: "is a string tensor; weights must be float32, float16, bfloat16 or float64"
                    .into(),
            }),
        }
    }
}
