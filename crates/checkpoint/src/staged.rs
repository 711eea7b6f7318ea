//! Checkpoint files on top of the workspace's one staged file
//! ([`savedmodel_staged::StagedFile`]: temporary sibling, fsync, rename,
//! removed unless committed): a write buffer, the threaded `pwritev` path
//! and ext4 preallocation.

use std::fs::File;
use std::io::{self, BufWriter, IoSlice, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::crc;
use crate::error::{Result, io_error};

/// Smallest amount of data worth splitting between threads: below this,
/// starting a thread costs more than it saves.
pub(crate) const PARALLEL_MIN_BYTES: usize = 8 << 20;

/// Most buffers given to one `pwritev` (Linux's `IOV_MAX`).
const MAX_IOVECS: usize = 1024;

/// Largest step of speculative preallocation.
const MAX_PREALLOCATION_STEP: u64 = 128 << 20;

/// A failure to inject into writes (tests of disk-full handling).
#[cfg(test)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fault {
    /// Bytes that may still be written before the failure.
    pub(crate) after: u64,
    /// The error to fail with.
    pub(crate) kind: io::ErrorKind,
}

/// A checkpoint file being written as `<final>.tempstate<random>` (a
/// [`savedmodel_staged::StagedFile`] behind a write buffer); removed on drop
/// unless [`close`](Self::close)d and committed.
pub(crate) struct StagedFile {
    out: BufWriter<savedmodel_staged::StagedFile>,
    /// Bytes written so far, buffered ones included: the file's final length.
    len: u64,
    /// Whether to allocate the file's blocks ahead of the data (see
    /// [`reserve`](Self::reserve)).
    preallocate: bool,
    /// The file has blocks allocated up to here.
    allocated: u64,
    #[cfg(test)]
    pub(crate) fault: Option<Fault>,
}

impl StagedFile {
    /// Creates `<final_path>.tempstate<random>` (never an existing file).
    pub(crate) fn create(final_path: PathBuf, buffer_size: usize) -> Result<Self> {
        let file = savedmodel_staged::StagedFile::create(final_path)?;
        let preallocate = preallocation_helps(file.file());
        Ok(StagedFile {
            out: BufWriter::with_capacity(buffer_size, file),
            len: 0,
            preallocate,
            allocated: 0,
            #[cfg(test)]
            fault: None,
        })
    }

    pub(crate) fn temp_path(&self) -> &Path {
        self.out.get_ref().temp_path()
    }

    /// Writes all of `buf`; the error names the temporary file.
    pub(crate) fn write_all_bytes(&mut self, buf: &[u8]) -> Result<()> {
        self.write_all(buf)
            .map_err(|e| io_error("writing", self.temp_path(), e))
    }

    /// Makes sure the file has blocks allocated up to `end`, allocating
    /// ahead of the data in growing steps (up to 128 MiB) with `fallocate`
    /// past the end of the file (`FALLOC_FL_KEEP_SIZE`: the size stays that
    /// of the data; [`close`](Self::close) releases what was not used).
    /// Only on ext4, where it spares the per-page delayed-allocation work as
    /// data arrives: measured on this project's machine, 1 GiB went into the
    /// page cache in 0.16 s with it against 0.22 s without
    /// (`docs/performance.md`). Best effort: any failure (no room for the
    /// speculative part, no `fallocate`) turns it off and the writes go on as
    /// they would have; a real lack of space is reported by the write itself.
    fn reserve(&mut self, end: u64) {
        if !self.preallocate || end <= self.allocated {
            return;
        }
        let step = self.allocated.clamp(1 << 20, MAX_PREALLOCATION_STEP);
        let new_end = end.max(self.allocated.saturating_add(step));
        let file = self.out.get_ref().file();
        match allocate(file, self.allocated, new_end - self.allocated) {
            Ok(()) => self.allocated = new_end,
            Err(_) => self.preallocate = false,
        }
    }

    /// Appends `segments` one after the other and returns each one's
    /// CRC32C, using up to `threads` threads: this one writes everything
    /// (`pwritev`, about `chunk` bytes per call, straight from the segments:
    /// no copy into the write buffer) while the others checksum their share
    /// of the bytes. One writer because the kernel serialises writes to one
    /// file anyway (ext4 takes the inode's lock for each): a second writer
    /// only spins on it. Copying into the page cache costs more than the
    /// CRC, so the write is what remains on the clock. The byte layout is
    /// the one writing the segments in turn would give.
    ///
    /// `side_job` (work of the caller's that does not need the CRCs) runs
    /// meanwhile on the first checksumming thread; its result is returned
    /// with them.
    pub(crate) fn write_segments<R: Send>(
        &mut self,
        segments: &[&[u8]],
        threads: usize,
        chunk: usize,
        side_job: impl FnOnce() -> R + Send,
    ) -> Result<(Vec<u32>, R)> {
        let total: u64 = segments.iter().map(|s| s.len() as u64).sum();
        if total == 0 {
            return Ok((vec![0; segments.len()], side_job()));
        }
        let start = self.begin_direct_write(total)?;
        let staged = self.out.get_ref();
        let temp_path = staged.temp_path();
        let parts = split_parts(segments, total, threads.saturating_sub(1).max(1));
        let file = staged.file();
        let chunk = chunk.max(4096);
        // The side job runs first on the first checksumming thread: the
        // CRCs take far less time than the copy, so both fit in its shadow
        // without a thread of their own (nor one spawned for `|| ()`).
        let mut side_job = Some(side_job);
        let (written, checksums) = std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .iter()
                .map(|part| {
                    let job = side_job.take();
                    scope
                        .spawn(move || (job.map(|job| job()), checksum_part(segments, part, chunk)))
                })
                .collect();
            let written = write_all_segments_at(file, segments, start, chunk, |_| ());
            let checksums: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
            (written, checksums)
        });
        written.map_err(|e| io_error("writing", temp_path, e))?;
        let panicked = || io_error("writing", temp_path, io::Error::other("a thread panicked"));
        let mut side_result = None;
        let mut all_pieces = Vec::with_capacity(checksums.len());
        for checksum in checksums {
            let (side, pieces) = checksum.map_err(|_| panicked())?;
            side_result = side_result.or(side);
            all_pieces.push(pieces);
        }
        // `split_parts` gives at least one part, so the job has run.
        let side_result = match (side_result, side_job) {
            (Some(result), _) => result,
            (None, Some(job)) => job(),
            (None, None) => return Err(panicked()),
        };
        let crcs = join_pieces(segments.len(), all_pieces);
        self.end_direct_write(start + total)?;
        Ok((crcs, side_result))
    }

    /// Appends `segments` one after the other, as
    /// [`write_segments`](Self::write_segments) does, but on this thread
    /// alone: each `pwritev` of about `chunk` bytes is preceded by the CRCs
    /// of its pieces, computed while they are in cache. For writing several
    /// files at once, a thread each: the kernel's lock is per file, so their
    /// copies into the page cache run side by side. Returns each segment's
    /// CRC32C.
    pub(crate) fn write_segments_checksummed(
        &mut self,
        segments: &[&[u8]],
        chunk: usize,
    ) -> Result<Vec<u32>> {
        let mut crcs = vec![0u32; segments.len()];
        let total: u64 = segments.iter().map(|s| s.len() as u64).sum();
        if total == 0 {
            return Ok(crcs);
        }
        let start = self.begin_direct_write(total)?;
        let staged = self.out.get_ref();
        let checksum = |pieces: &[(usize, &[u8])]| {
            for &(segment, bytes) in pieces {
                crcs[segment] = crc::extend(crcs[segment], bytes);
            }
        };
        write_all_segments_at(staged.file(), segments, start, chunk.max(4096), checksum)
            .map_err(|e| io_error("writing", staged.temp_path(), e))?;
        self.end_direct_write(start + total)?;
        Ok(crcs)
    }

    /// Before writing `total` bytes with `pwritev` past the buffer: flushes
    /// the buffer, allocates ahead; returns the offset to write at.
    fn begin_direct_write(&mut self, total: u64) -> Result<u64> {
        #[cfg(test)]
        if let Some(fault) = &mut self.fault {
            if total > fault.after {
                let e = io::Error::from(fault.kind);
                return Err(io_error("writing", self.out.get_ref().temp_path(), e));
            }
            fault.after -= total;
        }
        let start = self.len;
        self.reserve(start + total);
        self.out
            .flush()
            .map_err(|e| io_error("writing", self.out.get_ref().temp_path(), e))?;
        Ok(start)
    }

    /// After a direct write: the buffer goes on at `end`.
    fn end_direct_write(&mut self, end: u64) -> Result<()> {
        self.len = end;
        self.out
            .seek(SeekFrom::Start(end))
            .map_err(|e| io_error("writing", self.out.get_ref().temp_path(), e))?;
        Ok(())
    }

    /// Flushes the buffer and releases the blocks allocated ahead of the
    /// data and not used; the file is then ready to commit
    /// ([`savedmodel_staged::commit_all`], which fsyncs it).
    pub(crate) fn close(self) -> Result<savedmodel_staged::StagedFile> {
        let file = self.out.into_inner().map_err(|e| {
            let (error, out) = e.into_parts();
            io_error("writing", out.get_ref().temp_path(), error)
        })?;
        if self.allocated > self.len {
            // Setting the size it already has frees the blocks past it.
            file.file()
                .set_len(self.len)
                .map_err(|e| io_error("truncating", file.temp_path(), e))?;
        }
        Ok(file)
    }
}

impl Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        #[cfg(test)]
        if let Some(fault) = &mut self.fault {
            if buf.len() as u64 > fault.after {
                return Err(io::Error::from(fault.kind));
            }
            fault.after -= buf.len() as u64;
        }
        self.reserve(self.len + buf.len() as u64);
        let n = self.out.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Whether allocating ahead pays on the file system holding `file` (ext4).
#[cfg(target_os = "linux")]
fn preallocation_helps(file: &File) -> bool {
    /// `EXT4_SUPER_MAGIC` (`linux/magic.h`; ext2 and ext3 share it).
    const EXT4_SUPER_MAGIC: u64 = 0xEF53;
    rustix::fs::fstatfs(file).is_ok_and(|s| u64::try_from(s.f_type) == Ok(EXT4_SUPER_MAGIC))
}

#[cfg(not(target_os = "linux"))]
fn preallocation_helps(_file: &File) -> bool {
    false
}

/// Allocates `len` bytes of blocks at `offset`, leaving the file's size as
/// it is.
#[cfg(target_os = "linux")]
fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    rustix::fs::fallocate(file, rustix::fs::FallocateFlags::KEEP_SIZE, offset, len)
        .map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn allocate(_file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// One checksumming thread's share of [`StagedFile::write_segments`] (or of
/// [`crc::crc32c_all`]): the
/// bytes from `(segment, offset)` `from` to `to` (exclusive).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Part {
    from: (usize, usize),
    to: (usize, usize),
}

/// The CRC of the piece of a segment that one part covers.
pub(crate) struct PieceCrc {
    segment: usize,
    crc: u32,
    len: usize,
}

/// Cuts the `total` bytes of `segments` into at most `count` parts of
/// about equal size (none under [`PARALLEL_MIN_BYTES`] / 2).
pub(crate) fn split_parts(segments: &[&[u8]], total: u64, count: usize) -> Vec<Part> {
    let count = (total / (PARALLEL_MIN_BYTES as u64 / 2)).clamp(1, count.max(1) as u64);
    let cuts = (1..=count).map(|k| total * k / count);
    // Walk the segments once to turn byte positions into (segment, offset).
    let mut parts = Vec::with_capacity(count as usize);
    let (mut segment, mut seg_start, mut from) = (0usize, 0u64, (0, 0));
    for cut in cuts {
        while segment < segments.len() && seg_start + segments[segment].len() as u64 <= cut {
            seg_start += segments[segment].len() as u64;
            segment += 1;
        }
        let to = (segment, (cut - seg_start) as usize);
        parts.push(Part { from, to });
        from = to;
    }
    parts
}

/// The CRC of each piece of a segment in `part`.
pub(crate) fn checksum_part(segments: &[&[u8]], part: &Part, chunk: usize) -> Vec<PieceCrc> {
    let mut crcs = Vec::new();
    let last = part.to.0.min(segments.len().saturating_sub(1));
    for (segment, bytes) in segments.iter().enumerate().take(last + 1).skip(part.from.0) {
        let begin = if segment == part.from.0 {
            part.from.1
        } else {
            0
        };
        let end = if segment == part.to.0 {
            part.to.1
        } else {
            bytes.len()
        };
        if begin >= end {
            continue;
        }
        // Chunk by chunk, which the CPU's CRC runs through at the same speed
        // and which keeps the other threads' memory traffic smooth.
        let crc = bytes[begin..end].chunks(chunk).fold(0, crc::extend);
        crcs.push(PieceCrc {
            segment,
            crc,
            len: end - begin,
        });
    }
    crcs
}

/// Each segment's CRC from the parts' pieces (in part order).
pub(crate) fn join_pieces(segments: usize, all_pieces: Vec<Vec<PieceCrc>>) -> Vec<u32> {
    let mut crcs = vec![0u32; segments];
    let mut seen = vec![false; segments];
    for pieces in all_pieces {
        for piece in pieces {
            let crc = &mut crcs[piece.segment];
            // Only a segment split between parts needs combining (which
            // costs microseconds: not something to do 100,000 times).
            *crc = if seen[piece.segment] {
                crc::combine(*crc, piece.crc, piece.len)
            } else {
                piece.crc
            };
            seen[piece.segment] = true;
        }
    }
    crcs
}

/// Writes the segments one after the other at `offset`, gathering about
/// `chunk` bytes (or [`MAX_IOVECS`] pieces) per `pwritev`; `before_write`
/// sees each call's pieces, with the index of the segment each belongs to,
/// just before they are written.
fn write_all_segments_at<'a>(
    file: &File,
    segments: &[&'a [u8]],
    mut offset: u64,
    chunk: usize,
    mut before_write: impl FnMut(&[(usize, &'a [u8])]),
) -> io::Result<()> {
    let mut pieces: Vec<(usize, &[u8])> = Vec::with_capacity(MAX_IOVECS);
    let mut iovecs: Vec<IoSlice<'_>> = Vec::with_capacity(MAX_IOVECS);
    let mut pending = 0usize;
    let all_pieces = segments
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.chunks(chunk).map(move |piece| (i, piece)));
    for (segment, piece) in all_pieces {
        pieces.push((segment, piece));
        pending += piece.len();
        if pending >= chunk || pieces.len() == MAX_IOVECS {
            before_write(&pieces);
            iovecs.extend(pieces.drain(..).map(|(_, piece)| IoSlice::new(piece)));
            write_all_vectored_at(file, &mut iovecs, offset)?;
            offset += pending as u64;
            pending = 0;
            iovecs.clear();
        }
    }
    before_write(&pieces);
    iovecs.extend(pieces.drain(..).map(|(_, piece)| IoSlice::new(piece)));
    write_all_vectored_at(file, &mut iovecs, offset)
}

/// `pwritev` until every byte of `bufs` is written at `offset`.
fn write_all_vectored_at(file: &File, bufs: &mut [IoSlice<'_>], mut offset: u64) -> io::Result<()> {
    let mut bufs = bufs;
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match rustix::io::pwritev(file, bufs, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                offset += n as u64;
                IoSlice::advance_slices(&mut bufs, n);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
