//! Times one checkpoint operation per invocation, for `cargo xtask bench`.
//!
//! ```text
//! checkpoint-bench gen DATA BYTES                 write BYTES of benchmark data to DATA
//! checkpoint-bench write DATA PREFIX COUNT [--stream|--each] [--fsync] [--data-files N]
//! checkpoint-bench read PREFIX                    open and read every tensor, CRCs checked
//! checkpoint-bench open PREFIX                    open and read the small tensor
//! ```
//!
//! `write` splits DATA into COUNT float32 tensors plus the small tensor (see
//! `savedmodel_benches::checkpoint`). Without `--stream` it first maps DATA
//! into memory and faults every page in (not timed), as TensorFlow and
//! safetensors have their tensors in memory, and gives all the tensors to
//! `BundleWriter::add_batch` at once (with `--each`, to `BundleWriter::add`
//! one at a time); with `--stream` it feeds each
//! tensor from the file, in chunks of at most 1 MiB read through a 1 MiB
//! `BufReader`, to `BundleWriter::begin_tensor`/`write_chunk`, so nothing
//! the size of the data is ever resident. The writer does not fsync unless
//! `--fsync` is given (TensorFlow's `SaveV2` and `safetensors` do not).
//! `--data-files N` writes N data files (`WriterOptions::data_files`)
//! instead of one.
//!
//! Prints one line of `key=value` pairs: `seconds` (wall time of the
//! operation alone), `cpu_seconds` and `wait_seconds` (time on a CPU and
//! waiting on a run queue for one, from `/proc/self/task/*/schedstat`), and
//! from `/proc/self/status`: `rss_before`,
//! `anon_before`, `peak` (`VmHWM`, reset just before the operation),
//! `anon_after` and `file_after` (with the results still alive), in bytes.

use std::error::Error;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

use savedmodel_benches::checkpoint::{
    SMALL_TENSOR, SMALL_TENSOR_VALUE, add_small_tensor, parse_size, tensor_specs, write_data,
};
use savedmodel_benches::memory::{Memory, cpu_times, memory, reset_peak};
use savedmodel_checkpoint::{BundleReader, BundleWriter, DType, TensorBytes, WriterOptions};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const USAGE: &str = "usage: checkpoint-bench gen DATA BYTES | write DATA PREFIX COUNT [--stream|--each] [--fsync] [--data-files N] | read PREFIX | open PREFIX";

/// How `write` gives the tensors to the writer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Feed {
    /// All at once, `add_batch`, from memory.
    Batch,
    /// One `add` per tensor, from memory.
    Each,
    /// `begin_tensor`/`write_chunk` from the file.
    Stream,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["gen", data, bytes] => {
            let bytes = parse_size(bytes).ok_or(USAGE)?;
            let file = File::create(data)?;
            write_data(std::io::BufWriter::new(file), bytes)?;
            Ok(())
        }
        ["write", data, prefix, count, flags @ ..] => {
            let count: usize = count.parse().map_err(|_| USAGE)?;
            let mut feed = Feed::Batch;
            let mut options = WriterOptions::default().with_fsync(false);
            let mut flags = flags.iter();
            while let Some(flag) = flags.next() {
                match *flag {
                    "--stream" => feed = Feed::Stream,
                    "--each" => feed = Feed::Each,
                    "--fsync" => options.fsync = true,
                    "--data-files" => {
                        let n = flags.next().and_then(|n| n.parse().ok()).ok_or(USAGE)?;
                        options.data_files = n;
                    }
                    _ => return Err(USAGE.into()),
                }
            }
            write(Path::new(data), Path::new(prefix), count, feed, options)
        }
        ["read", prefix] => read(Path::new(prefix)),
        ["open", prefix] => open(Path::new(prefix)),
        _ => Err(USAGE.into()),
    }
}

/// Runs `operation` between two memory snapshots and prints the line.
fn measure<T>(operation: impl FnOnce() -> Result<(T, String)>) -> Result<()> {
    let peak_reset = reset_peak();
    let before = memory();
    let (cpu_before, wait_before) = cpu_times();
    let started = Instant::now();
    let (results, extra) = operation()?;
    let seconds = started.elapsed().as_secs_f64();
    let (cpu_after, wait_after) = cpu_times();
    let after = memory();
    drop(results);
    let Memory { rss, anon, .. } = before;
    println!(
        "seconds={seconds:.9} cpu_seconds={:.9} wait_seconds={:.9} rss_before={rss} anon_before={anon} peak={} anon_after={} file_after={} peak_reset={peak_reset} {extra}",
        cpu_after - cpu_before,
        wait_after - wait_before,
        after.peak,
        after.anon,
        after.file
    );
    Ok(())
}

fn write(
    data: &Path,
    prefix: &Path,
    count: usize,
    feed: Feed,
    options: WriterOptions,
) -> Result<()> {
    let total = std::fs::metadata(data)?.len();
    let specs = tensor_specs(total, count);
    if feed == Feed::Stream {
        let mut file = std::io::BufReader::with_capacity(1 << 20, File::open(data)?);
        measure(|| {
            let mut buf = vec![0u8; 1 << 20];
            let mut input_seconds = 0.0;
            let mut writer = BundleWriter::create_with(prefix, options)?;
            for spec in &specs {
                let mut sink = writer.begin_tensor(&spec.name, DType::Float, &spec.shape())?;
                let mut left = spec.bytes();
                while left > 0 {
                    let n = left.min(buf.len() as u64) as usize;
                    let read_started = Instant::now();
                    file.read_exact(&mut buf[..n])?;
                    input_seconds += read_started.elapsed().as_secs_f64();
                    sink.write_chunk(&buf[..n])?;
                    left -= n as u64;
                }
                sink.finish()?;
            }
            add_small_tensor(&mut writer)?;
            writer.finish()?;
            let extra = format!(
                "tensors={} bytes={total} input_seconds={input_seconds:.9}",
                specs.len() + 1
            );
            Ok(((), extra))
        })
    } else {
        let input = map_input(data)?;
        let bytes: &[u8] = &input;
        measure(|| {
            let mut writer = BundleWriter::create_with(prefix, options)?;
            let shapes: Vec<[i64; 1]> = specs.iter().map(|spec| spec.shape()).collect();
            let tensors = specs.iter().zip(&shapes).map(|(spec, shape)| {
                let start = spec.byte_offset as usize;
                let end = start + spec.bytes() as usize;
                TensorBytes::new(&spec.name, DType::Float, shape, &bytes[start..end])
            });
            let started = Instant::now();
            if feed == Feed::Batch {
                writer.add_batch(&tensors.collect::<Vec<_>>())?;
            } else {
                for tensor in tensors {
                    writer.add(tensor.name, tensor.dtype, tensor.shape, tensor.data)?;
                }
            }
            add_small_tensor(&mut writer)?;
            let added = started.elapsed().as_secs_f64();
            writer.finish()?;
            let finished = started.elapsed().as_secs_f64() - added;
            let extra = format!(
                "tensors={} bytes={total} add_seconds={added:.9} finish_seconds={finished:.9}",
                specs.len() + 1
            );
            Ok(((), extra))
        })
    }
}

/// The input file mapped into memory, every page faulted in (not timed).
///
/// Mapping rather than reading into a fresh buffer keeps the input resident
/// without allocating 1 GiB of new memory before every measurement: on a
/// virtual machine, fresh memory can be slow to touch the first time (the
/// host backs it lazily), which would be charged to the write that follows.
#[allow(unsafe_code)]
fn map_input(data: &Path) -> Result<memmap2::Mmap> {
    let file = File::open(data)?;
    // SAFETY: the data file is written once by `gen` before any measurement
    // and nobody modifies or truncates it while this short-lived process maps
    // it.
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file)? };
    Ok(map)
}

fn read(prefix: &Path) -> Result<()> {
    // Opening is part of the timed work.
    let mut reader_slot = None;
    measure(|| {
        let reader = reader_slot.insert(BundleReader::open(prefix)?);
        let mut views = Vec::new();
        let mut bytes = 0u64;
        let mut copied = 0usize;
        for item in reader.entries() {
            let (key, entry) = item?;
            let view = reader.tensor_for_entry(&key, &entry)?;
            bytes += view.bytes().map_or(0, |b| b.len() as u64);
            copied += usize::from(!view.is_borrowed());
            views.push(view);
        }
        let extra = format!("tensors={} bytes={bytes} copied={copied}", views.len());
        Ok((views, extra))
    })
}

fn open(prefix: &Path) -> Result<()> {
    measure(|| {
        let reader = BundleReader::open(prefix)?;
        let view = reader.tensor(SMALL_TENSOR)?;
        if view.bytes() != Some(&SMALL_TENSOR_VALUE.to_ne_bytes()[..]) {
            return Err(format!("{SMALL_TENSOR} does not hold {SMALL_TENSOR_VALUE}").into());
        }
        drop(view);
        Ok((reader, "tensors=1".to_owned()))
    })
}
