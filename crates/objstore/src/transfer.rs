//! Moving one file to or from the store: multipart uploads and ranged
//! downloads in parallel parts, with the memory in flight bounded by one
//! semaphore of part-sized buffers shared by every file of a transfer.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::remote::RemoteBase;

/// Reports a transfer's progress (the CLI draws it with indicatif). Every
/// method has an empty default.
pub trait Progress: Send + Sync {
    /// A transfer of `files` files and `bytes` bytes starts.
    fn start(&self, files: u64, bytes: u64) {
        let _ = (files, bytes);
    }
    /// `bytes` more bytes went over the wire (or were found done).
    fn advance(&self, bytes: u64) {
        let _ = bytes;
    }
    /// One more file is done.
    fn file_done(&self) {}
}

/// A [`Progress`] that reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// How transfers are cut up and how much runs at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferOptions {
    /// Part size of multipart uploads and ranged downloads (S3 accepts 5 MiB
    /// to 5 GiB, and at most 10,000 parts; larger files get larger parts).
    pub part_size: usize,
    /// Parts in flight across all files: the memory a transfer holds is
    /// about `part_size * parts_in_flight`.
    pub parts_in_flight: usize,
    /// Files transferred at once.
    pub files_in_flight: usize,
}

impl Default for TransferOptions {
    /// 8 MiB parts, 10 in flight (80 MiB), 8 files at once: awscli's part
    /// size and its 10 concurrent requests.
    fn default() -> Self {
        TransferOptions {
            part_size: 8 << 20,
            parts_in_flight: 10,
            files_in_flight: 8,
        }
    }
}

/// The shared state of one transfer.
pub(crate) struct Transfer<'a> {
    pub(crate) base: &'a RemoteBase,
    pub(crate) options: TransferOptions,
    pub(crate) memory: Arc<Semaphore>,
    pub(crate) progress: &'a dyn Progress,
}

impl<'a> Transfer<'a> {
    pub(crate) fn new(
        base: &'a RemoteBase,
        options: TransferOptions,
        progress: &'a dyn Progress,
    ) -> Self {
        let options = TransferOptions {
            part_size: options.part_size.max(5 << 20),
            parts_in_flight: options.parts_in_flight.max(1),
            files_in_flight: options.files_in_flight.max(1),
        };
        Transfer {
            base,
            options,
            memory: Arc::new(Semaphore::new(options.parts_in_flight)),
            progress,
        }
    }

    /// The part size for a file of `size` bytes: the configured one, grown
    /// so that the file fits in S3's 10,000 parts.
    fn part_size_for(&self, size: u64) -> u64 {
        let configured = self.options.part_size as u64;
        configured.max(size.div_ceil(10_000))
    }

    /// The range size of a download of `size` bytes: large ranges (fewer
    /// requests; streamed, so memory does not grow with them), but at least
    /// as many ranges as streams allowed.
    fn download_range_for(&self, size: u64) -> u64 {
        let streams = self.options.parts_in_flight as u64;
        let configured = self.options.part_size as u64;
        size.div_ceil(streams).clamp(configured, 8 * configured)
    }

    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.memory)
            .acquire_owned()
            .await
            .map_err(|e| Error::Task(e.to_string()))
    }
}

/// What an upload wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Uploaded {
    /// Bytes uploaded.
    pub(crate) size: u64,
    /// The ETag S3 gives these bytes sent this way: MD5 hex, or for a
    /// multipart upload the MD5 of the parts' MD5s, `-`, the part count.
    pub(crate) md5_etag: String,
}

/// `"abc"` and `abc` compare equal: S3 quotes its ETags.
pub(crate) fn etag_matches(store_etag: Option<&str>, md5_etag: &str) -> bool {
    store_etag.is_some_and(|e| e.trim_matches('"') == md5_etag)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Reads `len` bytes of `path` at `offset`, off the async threads.
async fn read_part(path: &Path, offset: u64, len: u64) -> Result<Bytes> {
    let owned = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let file = File::open(&owned)?;
        let mut buffer = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
        file.read_exact_at(&mut buffer, offset)?;
        Ok(buffer)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?;
    read.map(Bytes::from).map_err(io_error("read", path))
}

/// Uploads the local file `path` (of `size` bytes) to `key`: one request
/// up to the part size, a multipart upload with parallel parts above it.
/// `create` makes the request conditional (`If-None-Match: *`) and is only
/// allowed for a single-request upload.
pub(crate) async fn upload_file(
    transfer: &Transfer<'_>,
    path: &Path,
    size: u64,
    key: &ObjectPath,
    create: bool,
) -> Result<Uploaded> {
    let base = transfer.base;
    let part_size = transfer.part_size_for(size);
    if size <= part_size || create {
        let permit = transfer.permit().await?;
        let data = read_part(path, 0, size).await?;
        let md5_etag = hex(&Md5::digest(&data));
        let mode = if create {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let result = base
            .store()
            .put_opts(key, PutPayload::from_bytes(data), options)
            .await
            .map_err(|e| base.store_error("upload", key, e))?;
        drop(permit);
        if base.etag_is_md5() && !etag_matches(result.e_tag.as_deref(), &md5_etag) {
            return Err(Error::VerifyFailed {
                url: base.url_of(key),
                path: path.to_path_buf(),
                what: format!(
                    "the server's ETag {:?} is not the MD5 of the bytes sent, {md5_etag}",
                    result.e_tag
                ),
            });
        }
        transfer.progress.advance(size);
        return Ok(Uploaded { size, md5_etag });
    }
    let mut upload = base
        .store()
        .put_multipart(key)
        .await
        .map_err(|e| base.store_error("start multipart upload of", key, e))?;
    let parts = size.div_ceil(part_size);
    let mut handles = Vec::new();
    let mut part_md5s: Vec<u8> = Vec::new();
    let mut failure = None;
    for index in 0..parts {
        let offset = index * part_size;
        let len = part_size.min(size - offset);
        let permit = match transfer.permit().await {
            Ok(permit) => permit,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        let data = match read_part(path, offset, len).await {
            Ok(data) => data,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        part_md5s.extend_from_slice(&Md5::digest(&data));
        let part = upload.put_part(PutPayload::from_bytes(data));
        handles.push(tokio::spawn(async move {
            let result = part.await;
            drop(permit);
            result.map(|()| len)
        }));
        // Fail early: a finished part that failed stops the reading.
        if let Some(done) = handles.iter().position(|h| h.is_finished()) {
            let handle = handles.swap_remove(done);
            match handle.await {
                Ok(Ok(len)) => transfer.progress.advance(len),
                Ok(Err(e)) => {
                    failure = Some(base.store_error("upload part of", key, e));
                    break;
                }
                Err(e) => {
                    failure = Some(Error::Task(e.to_string()));
                    break;
                }
            }
        }
    }
    for handle in handles {
        match handle.await {
            Ok(Ok(len)) => transfer.progress.advance(len),
            Ok(Err(e)) => {
                failure.get_or_insert(base.store_error("upload part of", key, e));
            }
            Err(e) => {
                failure.get_or_insert(Error::Task(e.to_string()));
            }
        }
    }
    if let Some(failure) = failure {
        // Best effort: the server may be the thing that failed.
        let _ = upload.abort().await;
        return Err(failure);
    }
    let result = upload
        .complete()
        .await
        .map_err(|e| base.store_error("complete multipart upload of", key, e))?;
    let md5_etag = format!("{}-{parts}", hex(&Md5::digest(&part_md5s)));
    if base.etag_is_md5() && !etag_matches(result.e_tag.as_deref(), &md5_etag) {
        return Err(Error::VerifyFailed {
            url: base.url_of(key),
            path: path.to_path_buf(),
            what: format!(
                "the server's ETag {:?} is not the MD5 of the parts sent, {md5_etag}",
                result.e_tag
            ),
        });
    }
    Ok(Uploaded { size, md5_etag })
}

/// The ETag S3 would give `path` uploaded by [`upload_file`] with this
/// transfer's part size (for resuming: a file already there with this ETag
/// need not be sent again).
pub(crate) async fn local_md5_etag(
    transfer: &Transfer<'_>,
    path: &Path,
    size: u64,
) -> Result<String> {
    md5_etag_of(path, size, transfer.part_size_for(size)).await
}

/// The part size [`upload_file`] uses for a file of `size` bytes, recorded
/// in the manifest beside the ETag form.
pub(crate) fn upload_part_size(transfer: &Transfer<'_>, size: u64) -> u64 {
    transfer.part_size_for(size)
}

/// The S3 ETag form of the file `path` (of `size` bytes) cut into
/// `part_size` parts: the MD5 hex for one part, else the MD5 of the parts'
/// MD5s, `-`, the part count. The manifest records it, so that uploads hash
/// each byte once and downloads check with one pass too.
pub(crate) async fn md5_etag_of(path: &Path, size: u64, part_size: u64) -> Result<String> {
    let part_size = part_size.max(1);
    let owned = path.to_path_buf();
    let computed = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut file = File::open(&owned)?;
        let mut buffer = vec![0u8; 1 << 20];
        let mut whole = Md5::new();
        let mut part = Md5::new();
        let mut in_part = 0u64;
        let mut part_md5s = Vec::new();
        loop {
            let want = usize::try_from((part_size - in_part).min(buffer.len() as u64))
                .map_err(std::io::Error::other)?;
            let slice = buffer.get_mut(..want).unwrap_or_default();
            let n = file.read(slice)?;
            if n == 0 {
                break;
            }
            let chunk = slice.get(..n).unwrap_or_default();
            if size <= part_size {
                whole.update(chunk);
            } else {
                part.update(chunk);
            }
            in_part += n as u64;
            if in_part == part_size {
                part_md5s.extend_from_slice(&std::mem::take(&mut part).finalize());
                in_part = 0;
            }
        }
        if in_part > 0 && size > part_size {
            part_md5s.extend_from_slice(&part.finalize());
        }
        Ok(if size <= part_size {
            hex(&whole.finalize())
        } else {
            let parts = part_md5s.len() / 16;
            format!("{}-{parts}", hex(&Md5::digest(&part_md5s)))
        })
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?;
    computed.map_err(io_error("read", path))
}

/// Downloads `key` (of `size` bytes) to `target`: into `<target>.partial`,
/// in parallel ranges, fsynced, checked against `size` (and `expected`,
/// the manifest's ETag form and its part size, when known), then renamed
/// to `target`.
pub(crate) async fn download_file(
    transfer: &Transfer<'_>,
    key: &ObjectPath,
    size: u64,
    expected: Option<(&str, u64)>,
    target: &Path,
) -> Result<()> {
    let base = transfer.base;
    let partial = PathBuf::from(format!("{}.partial", target.display()));
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io_error("create directory", parent))?;
    }
    let file = Arc::new(File::create(&partial).map_err(io_error("create", &partial))?);
    file.set_len(size).map_err(io_error("allocate", &partial))?;
    // Ranges are streamed to the file as they arrive, so a range holds no
    // more memory than the chunks in flight: ranges can be large (fewer
    // requests), and the semaphore bounds the number of streams.
    let range_size = transfer.download_range_for(size);
    let parts = size.div_ceil(range_size).max(1);
    let mut handles = Vec::new();
    let mut failure = None;
    for index in 0..parts {
        let offset = index * range_size;
        let len = range_size.min(size - offset);
        if len == 0 {
            break;
        }
        let permit = match transfer.permit().await {
            Ok(permit) => permit,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        let store = Arc::clone(base.store());
        let key = key.clone();
        let file = Arc::clone(&file);
        handles.push(tokio::spawn(async move {
            let result = download_range(store, key, file, offset, len).await;
            drop(permit);
            Ok::<_, Error>(result)
        }));
    }
    for handle in handles {
        let outcome = handle
            .await
            .map_err(|e| Error::Task(e.to_string()))
            .and_then(|r| r);
        match outcome {
            Ok(Ok(len)) => transfer.progress.advance(len),
            Ok(Err(PartError::Store(e))) => {
                failure.get_or_insert(base.store_error("download", key, e));
            }
            Ok(Err(PartError::Io(e))) => {
                failure.get_or_insert(Error::Io {
                    action: "write",
                    path: partial.clone(),
                    source: e,
                });
            }
            Ok(Err(PartError::Short(got, want))) => {
                failure.get_or_insert(Error::VerifyFailed {
                    url: base.url_of(key),
                    path: partial.clone(),
                    what: format!("a range of {want} bytes came back with {got}"),
                });
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    file.sync_all().map_err(io_error("fsync", &partial))?;
    drop(file);
    let written = std::fs::metadata(&partial)
        .map_err(io_error("read", &partial))?
        .len();
    if written != size {
        return Err(Error::VerifyFailed {
            url: base.url_of(key),
            path: partial,
            what: format!("size {written} != {size}"),
        });
    }
    if let Some((md5, part_size)) = expected {
        let actual = md5_etag_of(&partial, size, part_size).await?;
        if actual != md5 {
            return Err(Error::VerifyFailed {
                url: base.url_of(key),
                path: partial,
                what: format!("MD5 {actual} != {md5} (the manifest's)"),
            });
        }
    }
    std::fs::rename(&partial, target).map_err(io_error("rename", &partial))?;
    Ok(())
}

enum PartError {
    Store(object_store::Error),
    Io(std::io::Error),
    Short(u64, u64),
}

/// Streams `len` bytes of `key` from `offset` into `file` at the same
/// offset. Each chunk is written where it arrives: a page cache write,
/// short enough to do on the runtime's thread.
async fn download_range(
    store: Arc<dyn object_store::ObjectStore>,
    key: ObjectPath,
    file: Arc<File>,
    offset: u64,
    len: u64,
) -> Result<u64, PartError> {
    let options = GetOptions {
        range: Some(GetRange::Bounded(offset..offset + len)),
        ..GetOptions::default()
    };
    let got = store
        .get_opts(&key, options)
        .await
        .map_err(PartError::Store)?;
    let mut stream = got.into_stream();
    let mut at = offset;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(PartError::Store)?;
        if at + chunk.len() as u64 > offset + len {
            return Err(PartError::Short(at + chunk.len() as u64 - offset, len));
        }
        file.write_all_at(&chunk, at).map_err(PartError::Io)?;
        at += chunk.len() as u64;
    }
    if at != offset + len {
        return Err(PartError::Short(at - offset, len));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_compare_without_quotes() {
        assert!(etag_matches(Some("\"abc\""), "abc"));
        assert!(etag_matches(Some("abc-2"), "abc-2"));
        assert!(!etag_matches(None, "abc"));
        assert!(!etag_matches(Some("\"abd\""), "abc"));
    }
}
