//! TensorFlow checkpoints as a source and a target of conversions.

use std::path::Path;

use crate::dtype::DType;
use crate::entry::TensorEntry;
use crate::error::{Error, Result, display_key};
use crate::ordered_code::decode_tensor_name_slice;
use crate::reader::BundleReader;
use crate::tensor::{TensorData, TensorView};
use crate::writer::{BundleWriter, TensorBytes, WriterOptions};

use super::{CHUNK, ConvertPlan, PlannedTensor, Progress, TensorFileEntry, Unsupported};

/// A checkpoint opened for conversion: the reader and, per readable
/// tensor, its key and entry.
#[derive(Debug)]
pub(super) struct BundleSource {
    reader: BundleReader,
    entries: Vec<(Vec<u8>, TensorEntry)>,
}

impl BundleSource {
    pub(super) fn open(
        prefix: &Path,
    ) -> Result<(BundleSource, Vec<TensorFileEntry>, Vec<Unsupported>)> {
        let reader = BundleReader::open(prefix)?;
        let mut entries = Vec::new();
        let mut tensors = Vec::new();
        let mut unsupported = Vec::new();
        for item in reader.entries() {
            let (key, entry) = item?;
            // The data of partitioned tensors is stored under slice keys;
            // the tensor itself is listed under its full name.
            if key.first() == Some(&0) && decode_tensor_name_slice(&key).is_some() {
                continue;
            }
            let Ok(name) = String::from_utf8(key.clone()) else {
                unsupported.push(Unsupported {
                    name: display_key(&key),
                    dtype: entry.dtype.name().to_owned(),
                    reason: "the name is not UTF-8".to_owned(),
                });
                continue;
            };
            if entry.dtype.element_size().is_none() && entry.dtype != DType::String {
                unsupported.push(Unsupported {
                    name,
                    dtype: entry.dtype.name().to_owned(),
                    reason: "its layout is TensorFlow-internal".to_owned(),
                });
                continue;
            }
            let size = match entry.dtype.element_size() {
                Some(element) if entry.is_partitioned() => {
                    entry.num_elements().saturating_mul(element as u64)
                }
                _ => entry.size,
            };
            tensors.push(TensorFileEntry {
                name,
                dtype: entry.dtype,
                shape: entry.shape.clone(),
                size,
            });
            entries.push((key, entry));
        }
        Ok((BundleSource { reader, entries }, tensors, unsupported))
    }

    pub(super) fn reader(&self) -> &BundleReader {
        &self.reader
    }

    pub(super) fn read(&self, index: usize, info: &TensorFileEntry) -> Result<TensorView<'_>> {
        let (key, entry) = self
            .entries
            .get(index)
            .ok_or_else(|| Error::InvalidArgument {
                tensor: info.name.clone(),
                what: "no such tensor index".to_owned(),
            })?;
        self.reader.tensor_for_entry(key, entry)
    }
}

/// Tensors smaller than [`CHUNK`] are gathered into runs of about this many
/// bytes, each given to [`BundleWriter::add_batch`] at once (written by
/// several threads, and into several data files at once when asked); the
/// views a run holds are what may be copies (byte-swapped or assembled
/// tensors), so this bounds the memory they take.
const RUN_BYTES: usize = 64 << 20;

/// Writes the plan's tensors as a checkpoint at `prefix`, in sorted name
/// order (the plan's order), with TensorFlow's default layout, in
/// `data_files` data files: with one, the files `SaveV2` would write for
/// the same tensors.
pub(super) fn write(
    plan: &ConvertPlan<'_>,
    prefix: &Path,
    data_files: usize,
    progress: &mut Progress<'_>,
) -> Result<()> {
    let options = WriterOptions::default().with_data_files(data_files);
    let mut writer = BundleWriter::create_with(prefix, options)?;
    // A run of small tensors not written yet, and its size in bytes.
    let mut run: Vec<(&PlannedTensor, TensorView<'_>)> = Vec::new();
    let mut run_bytes = 0usize;
    let flush = |writer: &mut BundleWriter,
                 run: &mut Vec<(&PlannedTensor, TensorView<'_>)>,
                 run_bytes: &mut usize,
                 progress: &mut Progress<'_>| {
        let batch: Vec<TensorBytes<'_>> = run
            .iter()
            .filter_map(|(t, view)| {
                let bytes = view.bytes()?;
                Some(TensorBytes::new(&t.name, t.dtype, &t.shape, bytes))
            })
            .collect();
        writer.add_batch(&batch)?;
        progress.advance(*run_bytes as u64);
        run.clear();
        *run_bytes = 0;
        Ok::<(), Error>(())
    };
    for t in plan.tensors() {
        let view = plan.read(t)?;
        match view.data() {
            TensorData::Bytes(bytes) if bytes.len() < CHUNK => {
                run_bytes += bytes.len();
                run.push((t, view));
                if run_bytes >= RUN_BYTES {
                    flush(&mut writer, &mut run, &mut run_bytes, progress)?;
                }
            }
            TensorData::Bytes(bytes) => {
                flush(&mut writer, &mut run, &mut run_bytes, progress)?;
                let mut sink = writer.begin_tensor(&t.name, t.dtype, &t.shape)?;
                for chunk in bytes.chunks(CHUNK) {
                    sink.write_chunk(chunk)?;
                    progress.advance(chunk.len() as u64);
                }
                sink.finish()?;
            }
            TensorData::Strings(strings) => {
                flush(&mut writer, &mut run, &mut run_bytes, progress)?;
                writer.add_strings(&t.name, &t.shape, strings)?;
                progress.advance(plan.source().tensors()[t.source_index].size);
            }
        }
    }
    flush(&mut writer, &mut run, &mut run_bytes, progress)?;
    writer.finish()
}
