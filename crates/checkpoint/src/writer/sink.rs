//! [`TensorSink`]: one tensor's bytes streamed into a [`BundleWriter`].

use std::io::{self, Write};

use super::BundleWriter;
use crate::dtype::DType;
use crate::error::{Error, Result, display_key, invalid};

/// Streams one tensor's bytes into a [`BundleWriter`]; see
/// [`BundleWriter::begin_tensor`].
#[derive(Debug)]
pub struct TensorSink<'w> {
    pub(super) writer: &'w mut BundleWriter,
    pub(super) key: Vec<u8>,
    pub(super) dtype: DType,
    pub(super) shape: Vec<i64>,
    pub(super) start: u64,
    pub(super) expected: u64,
    pub(super) written: u64,
    pub(super) crc: u32,
    pub(super) swap_unit: usize,
    /// Bytes of an element split across chunks (only when byte-swapping).
    pub(super) carry: Vec<u8>,
    pub(super) done: bool,
}

impl TensorSink<'_> {
    /// Bytes still expected.
    pub fn remaining(&self) -> u64 {
        self.expected - self.written
    }

    /// Writes the next chunk of the tensor's bytes.
    pub fn write_chunk(&mut self, mut chunk: &[u8]) -> Result<()> {
        if chunk.len() as u64 > self.remaining() {
            let what = format!(
                "{} more bytes given but the tensor holds {} in all",
                chunk.len(),
                self.expected
            );
            return Err(self.fail(what));
        }
        self.written += chunk.len() as u64;
        let unit = self.swap_unit;
        if unit > 1 {
            if !self.carry.is_empty() {
                let take = (unit - self.carry.len()).min(chunk.len());
                self.carry.extend_from_slice(&chunk[..take]);
                chunk = &chunk[take..];
                if self.carry.len() == unit {
                    let element = std::mem::take(&mut self.carry);
                    self.writer.emit(&element, unit, Some(&mut self.crc))?;
                }
            }
            let whole = chunk.len() / unit * unit;
            self.writer
                .emit(&chunk[..whole], unit, Some(&mut self.crc))?;
            self.carry.extend_from_slice(&chunk[whole..]);
            Ok(())
        } else {
            self.writer.emit(chunk, 1, Some(&mut self.crc))
        }
    }

    /// Records the tensor; an error if fewer bytes than its size were given.
    pub fn finish(mut self) -> Result<()> {
        self.done = true;
        if self.written != self.expected {
            let what = format!(
                "only {} of the tensor's {} bytes were given",
                self.written, self.expected
            );
            return Err(self.fail(what));
        }
        let (key, shape) = (
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.shape),
        );
        self.writer
            .record(&key, self.dtype, &shape, self.start, self.crc)
    }

    /// Marks the writer failed and returns the error.
    pub(super) fn fail(&mut self, what: String) -> Error {
        self.done = true;
        let error = invalid(&self.key, what);
        self.writer.poisoned = Some(error.to_string());
        error
    }
}

impl Write for TensorSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_chunk(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for TensorSink<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.writer.poisoned = Some(format!(
                "tensor {} was begun but not finished",
                display_key(&self.key)
            ));
        }
    }
}
