//! What [`BundleWriter::add_batch`](super::BundleWriter::add_batch) needs besides the writer: the tensors
//! it takes ([`TensorBytes`]), where each goes, and the threads that write
//! the data files at once.

use crate::dtype::DType;
use crate::error::{Result, invalid};
use crate::staged::StagedFile;

/// Where [`BundleWriter::add_batch`](super::BundleWriter::add_batch) puts a tensor: data file, index of its
/// bytes among that file's segments, offset in the file.
pub(super) struct Placement {
    pub(super) file: usize,
    pub(super) segment: usize,
    pub(super) offset: u64,
}

/// The data file a tensor goes to: the one with the fewest bytes, the first
/// of them on a tie (a rule of the byte layout: `add` and `add_batch` follow
/// it alike).
pub(super) fn least_filled(offsets: &[u64]) -> usize {
    offsets
        .iter()
        .enumerate()
        .min_by_key(|&(_, &offset)| offset)
        .map_or(0, |(i, _)| i)
}

/// Writes each data file's `segments` with [`StagedFile::write_segments_checksummed`],
/// up to `threads` files at a time (worker `w` takes files `w`,
/// `w + workers`, ...), while this thread runs `side_job`. Returns the
/// CRCs of each file's segments, and the job's result.
pub(super) fn write_files_at_once<R>(
    files: &mut [StagedFile],
    segments: &[Vec<&[u8]>],
    threads: usize,
    chunk: usize,
    side_job: impl FnOnce() -> R,
) -> Result<(Vec<Vec<u32>>, R)> {
    let count = files.len();
    let workers = threads.clamp(1, count.max(1));
    let mut jobs: Vec<Vec<(usize, &mut StagedFile)>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, file) in files.iter_mut().enumerate() {
        jobs[i % workers].push((i, file));
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                scope.spawn(move || {
                    job.into_iter()
                        .map(|(i, file)| {
                            let crcs = file.write_segments_checksummed(&segments[i], chunk)?;
                            Ok((i, crcs))
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let side_result = side_job();
        let mut crcs = vec![Vec::new(); count];
        let mut first_error = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(done)) => {
                    for (i, file_crcs) in done {
                        crcs[i] = file_crcs;
                    }
                }
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert_with(|| {
                        invalid(b"", "a thread writing a data file panicked")
                    });
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok((crcs, side_result)),
        }
    })
}

/// One tensor for [`BundleWriter::add_batch`](super::BundleWriter::add_batch): its name, data type, shape
/// and elements' bytes (as for [`BundleWriter::add`](super::BundleWriter::add)), all borrowed.
#[derive(Clone, Copy, Debug)]
pub struct TensorBytes<'a> {
    /// The tensor's name (its key in the index).
    pub name: &'a [u8],
    /// Its data type (a fixed-size one).
    pub dtype: DType,
    /// Its shape (empty for a scalar).
    pub shape: &'a [i64],
    /// Its elements, row-major, in this machine's byte order.
    pub data: &'a [u8],
}

impl<'a> TensorBytes<'a> {
    /// Bundles the parts of one tensor.
    pub fn new(
        name: &'a (impl AsRef<[u8]> + ?Sized),
        dtype: DType,
        shape: &'a [i64],
        data: &'a [u8],
    ) -> Self {
        TensorBytes {
            name: name.as_ref(),
            dtype,
            shape,
            data,
        }
    }
}
