//! TFRecord framing, the format of the warmup file (docs/formats.md section
//! 10; TensorFlow `third_party/xla/xla/tsl/lib/io/record_writer.cc`,
//! `record_reader.cc`):
//!
//! ```text
//! record = length: u64le | masked crc32c(those 8 bytes): u32le | data[length] | masked crc32c(data): u32le
//! ```
//!
//! The checksums are the workspace's one CRC32C, `savedmodel_checkpoint::crc`.

use savedmodel_checkpoint::crc;

use crate::error::{Error, Result};

/// Bytes before a record's data: the length and its checksum.
const HEADER_LEN: usize = 12;
/// Bytes after a record's data: its checksum.
const FOOTER_LEN: usize = 4;

/// The masked CRC32C TFRecord stores.
fn masked_crc32c(data: &[u8]) -> u32 {
    crc::mask(crc::crc32c(data))
}

/// Appends one record holding `data` to `out`.
pub fn write_tfrecord(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

/// Splits a TFRecord file into its records, checking both checksums of
/// each; the first framing error ends it.
pub fn read_tfrecords(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    TfRecords::new(bytes).collect()
}

/// The records of a TFRecord file, in order: each a slice of the input, or
/// the error that stops the reading (after which the iterator ends), so
/// that a caller can keep the records before a corrupt one.
#[derive(Debug, Clone)]
pub struct TfRecords<'a> {
    bytes: &'a [u8],
    offset: usize,
    record: usize,
    failed: bool,
}

impl<'a> TfRecords<'a> {
    /// The records of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: 0,
            record: 0,
            failed: false,
        }
    }

    fn next_record(&mut self) -> Result<&'a [u8]> {
        let offset = self.offset;
        let bad = |what: String| Error::TfRecord {
            record: self.record,
            offset,
            what,
        };
        let rest = &self.bytes[offset..];
        let Some((header, rest)) = rest.split_first_chunk::<HEADER_LEN>() else {
            return Err(bad(format!(
                "truncated header: {} byte(s) left, a record starts with {HEADER_LEN}",
                rest.len()
            )));
        };
        let (len_bytes, stored) = header.split_at(8);
        let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
        let computed = masked_crc32c(len_bytes);
        if stored != computed {
            return Err(bad(format!(
                "length checksum mismatch (stored {stored:#010x}, computed {computed:#010x}); \
                 not a TFRecord file, or corrupt"
            )));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(len_bytes);
        let len = u64::from_le_bytes(len);
        let data = usize::try_from(len)
            .ok()
            .filter(|&l| l <= rest.len())
            .map(|l| &rest[..l])
            .ok_or_else(|| {
                bad(format!(
                    "the record claims {len} bytes, more than the file holds ({} left)",
                    rest.len()
                ))
            })?;
        let Some(footer) = rest[data.len()..].first_chunk::<FOOTER_LEN>() else {
            return Err(bad("truncated data checksum".to_owned()));
        };
        let stored = u32::from_le_bytes(*footer);
        let computed = masked_crc32c(data);
        if stored != computed {
            return Err(bad(format!(
                "data checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): \
                 the record is corrupt"
            )));
        }
        self.offset = offset + HEADER_LEN + data.len() + FOOTER_LEN;
        self.record += 1;
        Ok(data)
    }
}

impl<'a> Iterator for TfRecords<'a> {
    type Item = Result<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.bytes.len() {
            return None;
        }
        let item = self.next_record();
        self.failed = item.is_err();
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_records() -> Vec<u8> {
        let mut bytes = Vec::new();
        write_tfrecord(&mut bytes, b"abc");
        write_tfrecord(&mut bytes, b"");
        bytes
    }

    #[test]
    fn framing_matches_tensorflow() {
        // "a": its length, the masked crc32c of those 8 bytes, the data and
        // its masked crc32c; the mask of the CRC of nothing is the delta.
        let mut out = Vec::new();
        write_tfrecord(&mut out, b"a");
        assert_eq!(out.len(), 8 + 4 + 1 + 4);
        assert_eq!(&out[..8], &1u64.to_le_bytes());
        assert_eq!(masked_crc32c(b""), crc::MASK_DELTA);
        assert_eq!(read_tfrecords(&out).unwrap(), [b"a"]);
    }

    #[test]
    fn records_round_trip() {
        let bytes = two_records();
        assert_eq!(
            read_tfrecords(&bytes).unwrap(),
            [b"abc".as_slice(), b"".as_slice()]
        );
        assert_eq!(read_tfrecords(&[]).unwrap(), Vec::<&[u8]>::new());
    }

    #[test]
    fn a_bad_data_crc_is_a_clear_error_after_the_good_records() {
        let mut bytes = two_records();
        // The first record's data.
        bytes[13] ^= 1;
        let err = read_tfrecords(&bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "TFRecord record 0 at offset 0: data checksum mismatch (stored {:#010x}, \
                 computed {:#010x}): the record is corrupt",
                masked_crc32c(b"abc"),
                masked_crc32c(b"acc")
            )
        );
        // The second record's length checksum: the first one is kept.
        let mut bytes = two_records();
        bytes[19 + 8] ^= 1;
        let items: Vec<_> = TfRecords::new(&bytes).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap(), b"abc");
        let err = items[1].as_ref().unwrap_err().to_string();
        assert!(
            err.starts_with("TFRecord record 1 at offset 19: length checksum mismatch"),
            "{err}"
        );
    }

    #[test]
    fn truncation_and_huge_lengths_are_errors() {
        let bytes = two_records();
        let err = read_tfrecords(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = read_tfrecords(&bytes[..5]).unwrap_err();
        assert!(err.to_string().contains("truncated header"), "{err}");
        let mut huge = bytes;
        let len = u64::MAX.to_le_bytes();
        huge[..8].copy_from_slice(&len);
        huge[8..12].copy_from_slice(&masked_crc32c(&len).to_le_bytes());
        let err = read_tfrecords(&huge).unwrap_err();
        assert!(
            err.to_string().contains("more than the file holds"),
            "{err}"
        );
    }
}
