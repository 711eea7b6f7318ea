//! NumPy `.npz` archives: a zip file with one `<name>.npy` member per array
//! (`np.savez` stores them uncompressed, `np.savez_compressed` deflates
//! them).
//!
//! The `zip` crate reads the central directory and the local headers (zip64
//! included); the members' bytes are then taken straight from the memory
//! map: an uncompressed member is borrowed in place, a deflated one is
//! inflated into memory. Each member's CRC-32 is checked when it is read.

use std::borrow::Cow;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use crate::dtype::DType;
use crate::error::{Error, Result, io_error};
use crate::mmap::MappedFile;
use crate::tensor::{TensorData, TensorView};

use super::npy::{self, Header, NpyType};
use super::{ConvertPlan, Progress, StagedOutput, TensorFileEntry, Unsupported, write_chunked};

/// Deflate cannot expand data by more than about 1032 to 1: a member that
/// claims more is corrupt (and we never allocate more than the file
/// justifies).
const MAX_DEFLATE_RATIO: u64 = 1032;

#[derive(Debug)]
enum Stored {
    Plain,
    Deflated,
}

#[derive(Debug)]
struct Member {
    /// Offset of the member's (possibly compressed) bytes in the file.
    start: usize,
    /// Compressed length.
    compressed: usize,
    /// Uncompressed length (the whole `.npy`).
    size: u64,
    crc32: u32,
    method: Stored,
    header: Header,
    kind: NpyType,
    /// Bytes of array data after the header.
    data_len: usize,
}

/// A memory-mapped `.npz` archive.
pub(super) struct NpzSource {
    path: PathBuf,
    map: MappedFile,
    members: Vec<Member>,
}

impl std::fmt::Debug for NpzSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpzSource")
            .field("path", &self.path)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

impl NpzSource {
    pub(super) fn open(path: &Path) -> Result<(NpzSource, Vec<TensorFileEntry>, Vec<Unsupported>)> {
        let map = MappedFile::open(path)?;
        let bytes = map.as_ref();
        let corrupt = |tensor: &str, what: String| Error::CorruptForeignFile {
            path: path.to_path_buf(),
            format: "npz",
            tensor: (tensor != "header").then(|| tensor.to_owned()),
            what,
        };
        let mut archive = ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| corrupt("header", format!("not a readable .npz (zip) archive: {e}")))?;
        let mut found: Vec<(TensorFileEntry, Member)> = Vec::new();
        let mut unsupported = Vec::new();
        for i in 0..archive.len() {
            let file = archive
                .by_index_raw(i)
                .map_err(|e| corrupt("header", format!("zip member {i}: {e}")))?;
            if file.is_dir() {
                continue;
            }
            let member_name = file.name().to_owned();
            let Some(name) = member_name.strip_suffix(".npy").map(str::to_owned) else {
                unsupported.push(Unsupported {
                    name: member_name,
                    dtype: "-".to_owned(),
                    reason: "the archive member is not a .npy array".to_owned(),
                });
                continue;
            };
            let method = match file.compression() {
                CompressionMethod::Stored => Stored::Plain,
                CompressionMethod::Deflated => Stored::Deflated,
                other => {
                    unsupported.push(Unsupported {
                        name,
                        dtype: "-".to_owned(),
                        reason: format!("the member is compressed with {other}; only stored and deflated members are read"),
                    });
                    continue;
                }
            };
            if file.encrypted() {
                unsupported.push(Unsupported {
                    name,
                    dtype: "-".to_owned(),
                    reason: "the member is encrypted".to_owned(),
                });
                continue;
            }
            let (start, compressed, size, crc32) = (
                file.data_start(),
                file.compressed_size(),
                file.size(),
                file.crc32(),
            );
            drop(file);
            let range = usize::try_from(start)
                .ok()
                .zip(usize::try_from(compressed).ok())
                .and_then(|(s, c)| Some((s, c, s.checked_add(c)?)))
                .filter(|&(_, _, end)| end <= bytes.len());
            let Some((start, compressed, end)) = range else {
                return Err(corrupt(
                    &name,
                    format!("member bytes {start}+{compressed} lie beyond the end of the file"),
                ));
            };
            let raw = &bytes[start..end];
            if matches!(method, Stored::Deflated) && !plausible_inflated_size(compressed, size) {
                return Err(corrupt(
                    &name,
                    format!("deflated member of {compressed} bytes claims {size} uncompressed"),
                ));
            }
            let header = match method {
                Stored::Plain => {
                    if size != compressed as u64 {
                        return Err(corrupt(
                            &name,
                            format!(
                                "stored member of {compressed} bytes claims {size} uncompressed"
                            ),
                        ));
                    }
                    npy::parse_header(raw)
                }
                Stored::Deflated => inflate_header(raw),
            }
            .map_err(|what| corrupt(&name, what))?;
            let kind = match header.kind.clone() {
                Ok(kind) => kind,
                Err(reason) => {
                    unsupported.push(Unsupported {
                        name,
                        dtype: header.descr.clone(),
                        reason,
                    });
                    continue;
                }
            };
            let data_len = header.shape.iter().try_fold(kind.item_size(), |acc, &d| {
                acc.checked_mul(usize::try_from(d).ok()?)
            });
            let expected = data_len.and_then(|d| d.checked_add(header.data_offset));
            let (Some(data_len), Some(expected)) = (data_len, expected) else {
                return Err(corrupt(&name, "the array's size overflows".to_owned()));
            };
            if expected as u64 != size {
                return Err(corrupt(
                    &name,
                    format!(
                        "the .npy holds {size} bytes but its header ({} {}) needs {expected}",
                        header.descr,
                        crate::shape_string(&header.shape)
                    ),
                ));
            }
            let info = TensorFileEntry {
                name,
                dtype: kind.dtype(),
                shape: header.shape.clone(),
                size: data_len as u64,
            };
            found.push((
                info,
                Member {
                    start,
                    compressed,
                    size,
                    crc32,
                    method,
                    header,
                    kind,
                    data_len,
                },
            ));
        }
        found.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        for pair in found.windows(2) {
            if pair[0].0.name == pair[1].0.name {
                return Err(corrupt(
                    &pair[0].0.name,
                    "the archive holds two members of this name".to_owned(),
                ));
            }
        }
        unsupported.sort_by(|a, b| a.name.cmp(&b.name));
        let (tensors, members) = found.into_iter().unzip();
        let source = NpzSource {
            path: path.to_path_buf(),
            map,
            members,
        };
        Ok((source, tensors, unsupported))
    }

    pub(super) fn read(&self, index: usize, info: &TensorFileEntry) -> Result<TensorView<'_>> {
        let member = self.members.get(index).ok_or_else(|| Error::NotFound {
            path: self.path.clone(),
            tensor: info.name.clone(),
        })?;
        let corrupt = |what: String| Error::CorruptTensor {
            path: self.path.clone(),
            tensor: info.name.clone(),
            offset: member.start as u64,
            what,
        };
        let raw = self
            .map
            .as_ref()
            .get(member.start..member.start + member.compressed)
            .ok_or_else(|| corrupt("the member lies beyond the end of the file".to_owned()))?;
        let check = |npy: &[u8]| {
            let actual = crc32fast::hash(npy);
            if actual == member.crc32 {
                Ok(())
            } else {
                Err(Error::TensorChecksum {
                    path: self.path.clone(),
                    tensor: info.name.clone(),
                    expected: member.crc32,
                    actual,
                })
            }
        };
        let range = member.header.data_offset..member.header.data_offset + member.data_len;
        let data: Cow<'_, [u8]> = match member.method {
            Stored::Plain => {
                check(raw)?;
                Cow::Borrowed(
                    raw.get(range)
                        .ok_or_else(|| corrupt("the array data is truncated".to_owned()))?,
                )
            }
            Stored::Deflated => {
                let mut npy = Vec::with_capacity(usize::try_from(member.size).unwrap_or(0));
                flate2::read::DeflateDecoder::new(raw)
                    .take(member.size.saturating_add(1))
                    .read_to_end(&mut npy)
                    .map_err(|e| corrupt(format!("inflating the member: {e}")))?;
                if npy.len() as u64 != member.size {
                    return Err(corrupt(format!(
                        "the member inflates to {} bytes, not the {} its header says",
                        npy.len(),
                        member.size
                    )));
                }
                check(&npy)?;
                npy.drain(..range.start);
                Cow::Owned(npy)
            }
        };
        let data = npy::elements(&member.kind, member.header.fortran_order, &info.shape, data)
            .map_err(corrupt)?;
        Ok(TensorView::new(
            &info.name,
            info.dtype,
            info.shape.clone(),
            data,
        ))
    }
}

/// Inflates the start of a deflated member far enough to parse its `.npy`
/// header.
fn inflate_header(raw: &[u8]) -> Result<Header, String> {
    let mut decoder = flate2::read::DeflateDecoder::new(raw);
    let mut prefix = Vec::with_capacity(12);
    (&mut decoder)
        .take(12)
        .read_to_end(&mut prefix)
        .map_err(|e| format!("inflating the member: {e}"))?;
    let total = npy::header_total_len(&prefix)?;
    let mut header = prefix;
    if total > header.len() {
        (&mut decoder)
            .take((total - header.len()) as u64)
            .read_to_end(&mut header)
            .map_err(|e| format!("inflating the member: {e}"))?;
    }
    npy::parse_header(&header)
}

/// Checks that a deflated member's claimed size is possible; called before
/// allocating for it.
fn plausible_inflated_size(compressed: usize, size: u64) -> bool {
    size <= (compressed as u64)
        .saturating_mul(MAX_DEFLATE_RATIO)
        .saturating_add(1024)
}

/// Why `name` would be a dangerous zip member name, if it would: members
/// are paths to unzip tools, so a name with a `..` component, a leading `/`,
/// a backslash or a NUL could write outside the extraction directory.
/// (`dense/kernel` stays allowed: NumPy's own `savez` writes such names.)
fn unsafe_member_name(name: &str) -> Option<&'static str> {
    if name.starts_with('/') {
        Some("it is an absolute path")
    } else if name.split('/').any(|part| part == "..") {
        Some("it has a `..` path component")
    } else if name.contains('\\') {
        Some("it contains a backslash")
    } else if name.contains('\0') {
        Some("it contains a NUL byte")
    } else {
        None
    }
}

/// Writes the plan's tensors as an uncompressed `.npz` at `path`, one
/// `<name>.npy` member per tensor in sorted name order.
pub(super) fn write(
    plan: &ConvertPlan<'_>,
    path: &Path,
    progress: &mut Progress<'_>,
) -> Result<()> {
    let out = StagedOutput::create(path)?;
    let temp_path = out.temp_path().to_path_buf();
    let zip_error = |e: zip::result::ZipError| match e {
        zip::result::ZipError::Io(e) => io_error("writing", &temp_path, e),
        other => io_error("writing", &temp_path, std::io::Error::other(other)),
    };
    let io = |e: std::io::Error| io_error("writing", &temp_path, e);
    let mut zip = ZipWriter::new(out);
    for t in plan.tensors() {
        let bad = |what: String| Error::InvalidArgument {
            tensor: t.name.clone(),
            what,
        };
        if let Some(why) = unsafe_member_name(&t.name) {
            return Err(bad(format!(
                "cannot be an .npz member name: {why} (rename it with --rename)"
            )));
        }
        let view = plan.read(t)?;
        let member = format!("{}.npy", t.name);
        let options = |size: u64| {
            SimpleFileOptions::default()
                .compression_method(CompressionMethod::Stored)
                .last_modified_time(DateTime::default())
                .unix_permissions(0o644)
                .large_file(size >= u64::from(u32::MAX))
        };
        match view.data() {
            TensorData::Bytes(_) => {
                let descr = npy::descr_for(t.dtype)
                    .ok_or_else(|| bad(format!(".npz files cannot hold {}", t.dtype)))?;
                let header = npy::write_header(descr, &t.shape);
                let bytes = super::little_endian_bytes(&view)
                    .ok_or_else(|| bad("expected numeric data".to_owned()))?;
                zip.start_file(member, options((header.len() + bytes.len()) as u64))
                    .map_err(zip_error)?;
                zip.write_all(&header).map_err(io)?;
                write_chunked(&mut zip, &bytes, progress).map_err(io)?;
            }
            TensorData::Strings(strings) => {
                debug_assert_eq!(t.dtype, DType::String);
                if let Some(i) = strings.iter().position(|s| s.last() == Some(&0)) {
                    return Err(bad(format!(
                        "element {i} ends with a NUL byte, which NumPy's fixed-width bytes ('S') arrays drop: it cannot be stored in .npz"
                    )));
                }
                let width = strings.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
                let header = npy::write_header(&format!("|S{width}"), &t.shape);
                let size = (strings.len() as u64)
                    .checked_mul(width as u64)
                    .and_then(|d| d.checked_add(header.len() as u64))
                    .ok_or_else(|| bad("too large for .npz".to_owned()))?;
                zip.start_file(member, options(size)).map_err(zip_error)?;
                zip.write_all(&header).map_err(io)?;
                let zeros = vec![0u8; width];
                for s in strings {
                    zip.write_all(s).map_err(io)?;
                    zip.write_all(&zeros[s.len()..]).map_err(io)?;
                }
                progress.advance(plan.source().tensors()[t.source_index].size);
            }
        }
    }
    let out = zip.finish().map_err(zip_error)?;
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflated_sizes_are_bounded() {
        assert!(plausible_inflated_size(10, 10_000));
        assert!(!plausible_inflated_size(10, 1 << 40));
    }
}
