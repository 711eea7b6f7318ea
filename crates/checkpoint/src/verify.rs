//! Checking a whole bundle: every block of the index and every tensor's bytes
//! (`savedmodel ckpt verify`), as a report a caller prints or inspects.

use std::path::{Path, PathBuf};

use crate::entry::TensorEntry;
use crate::error::{Error, Result};
use crate::ordered_code::{decode_tensor_name_slice, encode_tensor_name_slice};
use crate::reader::{BundleReader, ReaderOptions};
use crate::slice::TensorSlice;
use crate::table::TableReadOptions;

/// Options for [`verify_with`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Limits for reading the index table.
    pub table: TableReadOptions,
}

impl VerifyOptions {
    /// Sets [`table`](Self::table).
    pub fn with_table(mut self, table: TableReadOptions) -> Self {
        self.table = table;
        self
    }
}

/// What [`verify`] found: the index, then one result per index entry in key
/// order.
#[derive(Debug)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The prefix checked.
    pub prefix: PathBuf,
    /// Whether the index could be read to its end.
    pub index: IndexCheck,
    /// Every entry read from the index but the header, in key order (none
    /// when the index could not be opened).
    pub entries: Vec<EntryReport>,
    /// The data files the header names, `<prefix>.data-XXXXX-of-YYYYY` (none
    /// when the index could not be opened).
    pub data_files: Vec<PathBuf>,
}

/// The index's own check.
#[derive(Debug)]
pub enum IndexCheck {
    /// Every block was read and its CRC32C matched.
    Ok,
    /// The index could not be opened (a corrupt footer, index block or
    /// header entry): nothing else was checked.
    Corrupt(Error),
    /// Reading the entries stopped at this error: the entries before it
    /// were checked, the ones after it were not.
    Stopped(Error),
}

/// One index entry and what its check found.
#[derive(Debug)]
#[non_exhaustive]
pub struct EntryReport {
    /// The key: a tensor name, or the slice key a slice of a partitioned
    /// tensor is stored under.
    pub key: Vec<u8>,
    /// For a slice key (one starting with `0x00` that decodes as one): the
    /// tensor's name and the slice.
    pub slice_of: Option<(Vec<u8>, TensorSlice)>,
    /// The entry as stored: data type, shape, data file, offset, size.
    pub entry: TensorEntry,
    /// What the check found.
    pub check: EntryCheck,
}

/// The check of one entry.
#[derive(Debug)]
pub enum EntryCheck {
    /// The bytes were read: their size matches the data type and shape, they
    /// lie inside the data file, string framing holds, the CRC32C matches.
    Ok,
    /// A partitioned tensor every listed slice of which has an entry of its
    /// own (checked as such).
    Partitioned {
        /// How many slices it lists.
        slices: usize,
    },
    /// A partitioned tensor listing slices that have no entry.
    MissingSlices(Vec<TensorSlice>),
    /// Reading the bytes failed: the reason (a checksum mismatch, bytes past
    /// the end of the data file, a data file that cannot be opened, ...).
    Fault(Error),
}

impl EntryCheck {
    /// Whether the check passed.
    pub fn passed(&self) -> bool {
        matches!(self, EntryCheck::Ok | EntryCheck::Partitioned { .. })
    }
}

impl VerifyReport {
    /// Faults found: entries that failed plus, when the index could not be
    /// read to its end or at all, one for the index.
    pub fn faults(&self) -> u64 {
        let index = u64::from(!matches!(self.index, IndexCheck::Ok));
        self.entries
            .iter()
            .filter(|e| !e.check.passed())
            .fold(index, |n, _| n + 1)
    }

    /// Bytes of the tensors that were read and passed (partitioned tensors
    /// count under their slices).
    pub fn bytes_checked(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| matches!(e.check, EntryCheck::Ok))
            .fold(0u64, |n, e| n.saturating_add(e.entry.size))
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.faults() == 0
    }
}

/// Checks the bundle at `prefix` with the default options (see
/// [`verify_with`]).
///
/// ```
/// use savedmodel_checkpoint::{EntryCheck, IndexCheck, verify};
/// use savedmodel_checkpoint::{BundleWriter, DType};
///
/// let dir = tempfile::tempdir()?;
/// let prefix = dir.path().join("model.ckpt");
/// let mut writer = BundleWriter::create(&prefix)?;
/// writer.add_typed("bias", &[2], &[0.5f32, -1.0])?;
/// writer.add("global_step", DType::Int64, &[], &7i64.to_ne_bytes())?;
/// writer.finish()?;
///
/// // Flip a byte of `global_step` (stored after the 8 bytes of `bias`).
/// let data = savedmodel_checkpoint::data_file_name(&prefix, 0, 1);
/// let mut bytes = std::fs::read(&data)?;
/// bytes[8] ^= 1;
/// std::fs::write(&data, bytes)?;
///
/// let report = verify(&prefix)?;
/// assert!(matches!(report.index, IndexCheck::Ok));
/// assert_eq!(report.entries.len(), 2);
/// assert!(matches!(report.entries[0].check, EntryCheck::Ok));
/// assert_eq!(report.entries[1].key, b"global_step");
/// assert!(matches!(report.entries[1].check, EntryCheck::Fault(_)));
/// assert_eq!((report.faults(), report.bytes_checked()), (1, 8));
/// assert!(!report.passed());
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify(prefix: impl AsRef<Path>) -> Result<VerifyReport> {
    verify_with(prefix, &VerifyOptions::default())
}

/// Checks the bundle at `prefix`: reads the whole index (every block's
/// CRC32C) and every tensor's bytes (the size against the data type and
/// shape, the offset against the data file's length, string framing, the
/// CRC32C against the entry); a partitioned tensor must have an entry for
/// every slice it lists, and each slice is checked under its own key.
///
/// Faults are in the report. The error is for an index that cannot be read
/// at all ([`Error::Io`]: no such file, unreadable); a data file that cannot
/// be opened is a fault of each entry stored in it.
pub fn verify_with(prefix: impl AsRef<Path>, options: &VerifyOptions) -> Result<VerifyReport> {
    let prefix = prefix.as_ref().to_path_buf();
    let reader_options = ReaderOptions::default()
        .with_verify_checksums(true)
        .with_table(options.table.clone());
    let reader = match BundleReader::open_with(&prefix, reader_options) {
        Ok(reader) => reader,
        Err(e @ Error::Io { .. }) => return Err(e),
        Err(e) => {
            return Ok(VerifyReport {
                prefix,
                index: IndexCheck::Corrupt(e),
                entries: Vec::new(),
                data_files: Vec::new(),
            });
        }
    };
    let mut index = IndexCheck::Ok;
    let mut entries = Vec::new();
    for item in reader.entries() {
        match item {
            Ok((key, entry)) => {
                let check = check_entry(&reader, &key, &entry);
                let slice_of = decode_tensor_name_slice(&key).filter(|_| key.first() == Some(&0));
                entries.push(EntryReport {
                    key,
                    slice_of,
                    entry,
                    check,
                });
            }
            // `entries` ends after its first error.
            Err(e) => index = IndexCheck::Stopped(e),
        }
    }
    let data_files = (0..reader.header().num_shards)
        .map(|shard| reader.data_path(shard))
        .collect();
    Ok(VerifyReport {
        prefix,
        index,
        entries,
        data_files,
    })
}

fn check_entry(reader: &BundleReader, key: &[u8], entry: &TensorEntry) -> EntryCheck {
    if entry.is_partitioned() {
        // A lookup that fails counts as missing: the block holding it is
        // corrupt, which the walk over the index reports too.
        let missing: Vec<TensorSlice> = entry
            .slices
            .iter()
            .filter(|slice| {
                !reader
                    .contains(encode_tensor_name_slice(key, slice))
                    .unwrap_or(false)
            })
            .cloned()
            .collect();
        return if missing.is_empty() {
            EntryCheck::Partitioned {
                slices: entry.slices.len(),
            }
        } else {
            EntryCheck::MissingSlices(missing)
        };
    }
    match reader.tensor_for_entry(key, entry) {
        Ok(_) => EntryCheck::Ok,
        Err(e) => EntryCheck::Fault(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slice::Extent;
    use crate::{BundleWriter, DType, WriterOptions, data_file_name, index_file_name};

    /// `a` (4 floats), `b` (3 int32), `c` (2 int64) in one data file, or
    /// `b` alone in the second of two (the emptiest when it is added).
    fn three_tensors(prefix: &Path, data_files: usize) {
        let options = WriterOptions::default().with_data_files(data_files);
        let mut writer = BundleWriter::create_with(prefix, options).unwrap();
        writer
            .add_typed("a", &[4], &[1.0f32, 2.0, 3.0, 4.0])
            .unwrap();
        writer.add_typed("b", &[3], &[5i32, 6, 7]).unwrap();
        writer.add_typed("c", &[2], &[8i64, 9]).unwrap();
        writer.finish().unwrap();
    }

    fn names_and_checks(report: &VerifyReport) -> Vec<(String, bool)> {
        report
            .entries
            .iter()
            .map(|e| {
                (
                    String::from_utf8_lossy(&e.key).into_owned(),
                    e.check.passed(),
                )
            })
            .collect()
    }

    #[test]
    fn an_intact_bundle_passes_with_its_totals() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("ckpt");
        three_tensors(&prefix, 1);
        let report = verify(&prefix).unwrap();
        assert!(report.passed(), "{report:?}");
        assert!(matches!(report.index, IndexCheck::Ok));
        assert_eq!(
            names_and_checks(&report),
            [("a".into(), true), ("b".into(), true), ("c".into(), true)]
        );
        assert_eq!(report.bytes_checked(), 16 + 12 + 16);
        assert_eq!(report.data_files, [data_file_name(&prefix, 0, 1)]);
        assert_eq!(report.entries[1].entry.dtype, DType::Int32);
        assert_eq!(report.entries[1].entry.size, 12);
        assert_eq!(report.prefix, prefix);
    }

    #[test]
    fn a_corrupted_data_byte_is_reported_on_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("ckpt");
        three_tensors(&prefix, 1);
        let data = data_file_name(&prefix, 0, 1);
        let mut bytes = std::fs::read(&data).unwrap();
        // `b` occupies bytes 16..28.
        bytes[20] ^= 0x40;
        std::fs::write(&data, bytes).unwrap();
        let report = verify(&prefix).unwrap();
        assert_eq!(
            names_and_checks(&report),
            [("a".into(), true), ("b".into(), false), ("c".into(), true)]
        );
        match &report.entries[1].check {
            EntryCheck::Fault(Error::TensorChecksum { tensor, path, .. }) => {
                assert_eq!(tensor, "b");
                assert_eq!(path, &data);
            }
            other => panic!("expected a checksum fault, got {other:?}"),
        }
        assert_eq!(report.faults(), 1);
        assert_eq!(report.bytes_checked(), 16 + 16);
        assert!(!report.passed());
    }

    #[test]
    fn a_truncated_data_file_faults_the_entries_past_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("ckpt");
        three_tensors(&prefix, 1);
        let data = data_file_name(&prefix, 0, 1);
        let file = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
        // Cut in the middle of `b`: `b` and `c` lie past the end.
        file.set_len(22).unwrap();
        drop(file);
        let report = verify(&prefix).unwrap();
        assert_eq!(
            names_and_checks(&report),
            [("a".into(), true), ("b".into(), false), ("c".into(), false)]
        );
        for (entry, name, offset) in [(&report.entries[1], "b", 16), (&report.entries[2], "c", 28)]
        {
            match &entry.check {
                EntryCheck::Fault(Error::DataOutOfBounds {
                    tensor,
                    offset: at,
                    file_len,
                    ..
                }) => {
                    assert_eq!((tensor.as_str(), *at, *file_len), (name, offset, 22));
                }
                other => panic!("expected bytes out of bounds for {name}, got {other:?}"),
            }
        }
        assert_eq!(report.faults(), 2);
    }

    #[test]
    fn a_missing_data_file_faults_the_entries_stored_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("ckpt");
        three_tensors(&prefix, 2);
        let report = verify(&prefix).unwrap();
        assert!(report.passed(), "{report:?}");
        assert_eq!(report.data_files.len(), 2);
        let in_second: Vec<&[u8]> = report
            .entries
            .iter()
            .filter(|e| e.entry.shard_id == 1)
            .map(|e| &e.key[..])
            .collect();
        assert!(
            !in_second.is_empty() && in_second.len() < 3,
            "{in_second:?}"
        );

        let second = data_file_name(&prefix, 1, 2);
        std::fs::remove_file(&second).unwrap();
        let report = verify(&prefix).unwrap();
        for entry in &report.entries {
            match (&entry.check, entry.entry.shard_id) {
                (EntryCheck::Ok, 0) => {}
                (EntryCheck::Fault(Error::Io { path, .. }), 1) => assert_eq!(path, &second),
                (check, shard) => panic!("{:?} in file {shard}: {check:?}", entry.key),
            }
        }
        assert_eq!(report.faults(), in_second.len() as u64);
    }

    #[test]
    fn partitioned_tensors_are_checked_slice_by_slice() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("ckpt");
        let rows = |start, length| TensorSlice::new(vec![Extent::Range { start, length }]);
        let mut writer = BundleWriter::create(&prefix).unwrap();
        writer
            .add_slice("p", &[3], &rows(0, 1), DType::Int32, &1i32.to_ne_bytes())
            .unwrap();
        let two = [2i32.to_ne_bytes(), 3i32.to_ne_bytes()].concat();
        writer
            .add_slice("p", &[3], &rows(1, 2), DType::Int32, &two)
            .unwrap();
        writer.finish().unwrap();
        let report = verify(&prefix).unwrap();
        assert!(report.passed(), "{report:?}");
        // Two slice keys (sorting first), then the full entry.
        assert_eq!(report.entries.len(), 3);
        let slices: Vec<String> = report.entries[..2]
            .iter()
            .map(|e| {
                let (name, slice) = e.slice_of.as_ref().unwrap();
                format!("{}:{slice}", String::from_utf8_lossy(name))
            })
            .collect();
        assert_eq!(slices, ["p:0,1", "p:1,2"]);
        assert_eq!(report.entries[2].key, b"p");
        assert!(report.entries[2].slice_of.is_none());
        assert!(matches!(
            report.entries[2].check,
            EntryCheck::Partitioned { slices: 2 }
        ));
        assert_eq!(report.bytes_checked(), 12);
    }

    #[test]
    fn a_missing_index_is_an_error_and_a_corrupt_one_a_fault() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("ckpt");
        assert!(matches!(verify(&prefix), Err(Error::Io { .. })));
        three_tensors(&prefix, 1);
        let index = index_file_name(&prefix);
        let mut bytes = std::fs::read(&index).unwrap();
        // The footer's magic number is the file's last 8 bytes.
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&index, bytes).unwrap();
        let report = verify(&prefix).unwrap();
        assert!(matches!(report.index, IndexCheck::Corrupt(_)), "{report:?}");
        assert!(report.entries.is_empty() && report.data_files.is_empty());
        assert_eq!(report.faults(), 1);
    }
}
