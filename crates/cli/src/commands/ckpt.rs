//! `savedmodel ckpt`: list, print, verify and convert TensorFlow checkpoints
//! (TensorBundle prefixes), `.safetensors` and `.npz` files.

use std::collections::HashSet;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Args, Subcommand};
use regex::Regex;
use savedmodel_checkpoint::convert::{ConvertOptions, ConvertPlan, Format, Rename, load_tensors};
use savedmodel_checkpoint::{
    BundleReader, DType, Error as CkptError, TensorData, TensorEntry, TensorView, shape_string,
};
use savedmodel_checkpoint::{decode_tensor_name_slice, encode_tensor_name_slice};
use serde::Serialize;

/// Conversions at least this large get a progress bar (on a terminal).
const PROGRESS_THRESHOLD: u64 = 64 << 20;

/// Checkpoint subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CkptCommand {
    /// List a checkpoint's tensors: name, data type and shape, as
    /// TensorFlow's inspect_checkpoint prints them.
    Ls(LsArgs),
    /// Print one tensor's values (or, with --json, its bytes in base64).
    Cat(CatArgs),
    /// Check every tensor's checksum and size; exit 1 on any fault.
    Verify(VerifyArgs),
    /// Convert between checkpoints, .safetensors and .npz files.
    Convert(ConvertArgs),
}

const PREFIX_HELP: &str = "Checkpoint prefix: the path without `.index` (`model.ckpt-1000`,
`export/variables/variables`). The `.index` file itself, or a SavedModel
directory (meaning its variables/variables), are accepted too.";

/// `savedmodel ckpt ls`.
#[derive(Debug, Args)]
#[command(after_help = "\
Without --json the output is the same, line for line, as TensorFlow's
`python -m tensorflow.python.tools.inspect_checkpoint --file_name=PREFIX`:
one `NAME (DT_TYPE) [d0,d1]` line per index entry in key order (the slices of
a partitioned tensor appear under their binary slice keys, the tensor itself
does not), a blank line, then `# Total number of params: N` (N counts the
elements of every tensor, partitioned ones once, strings included).

--json prints an array with one object per tensor (partitioned tensors once,
under their name), in key order:
  {\"name\", \"dtype\": \"DT_FLOAT\", \"shape\": [2, 3], \"shard\", \"offset\",
   \"size\", \"crc32c\", \"slices\": []}
shard/offset/size locate the bytes in data file <PREFIX>.data-<shard>-of-N;
crc32c is the masked CRC32C stored in the entry. For a partitioned tensor
those four are null and \"slices\" lists each stored slice as
{\"slice\": \"0,3:-\", \"shape\", \"shard\", \"offset\", \"size\", \"crc32c\"}.

Examples:
  savedmodel ckpt ls /tmp/model.ckpt-1000
  savedmodel ckpt ls export/1/variables/variables --json | jq '.[].name'")]
pub(crate) struct LsArgs {
    #[arg(help = PREFIX_HELP)]
    prefix: PathBuf,
    /// Print a JSON array instead of inspect_checkpoint's lines.
    #[arg(long)]
    json: bool,
}

/// `savedmodel ckpt cat`.
#[derive(Debug, Args)]
#[command(after_help = "\
The tensor is read whole (a partitioned tensor is assembled from its slices)
and its checksum verified. SOURCE may also be a .safetensors or .npz file.

Without --json: a `NAME (DT_TYPE) [d0,d1]` line, then the elements in
row-major order on one line (strings as escaped bytes, 8-bit floats and
sub-byte types as their raw bytes in hex).

With --json, one object:
  {\"name\": \"w\", \"dtype\": \"DT_FLOAT\", \"shape\": [2, 3], \"data\": \"<base64>\"}
where data is the elements as little-endian bytes in row-major order, or for
DT_STRING tensors \"strings\": [\"<base64>\", ...], one per element.

Examples:
  savedmodel ckpt cat /tmp/model.ckpt-1000 dense/kernel
  savedmodel ckpt cat /tmp/model.ckpt-1000 global_step --json
  savedmodel ckpt cat weights.safetensors dense/kernel --json | jq -r .data | base64 -d")]
pub(crate) struct CatArgs {
    /// Checkpoint prefix (see `ckpt ls --help`), .safetensors or .npz file.
    source: PathBuf,
    /// Tensor name (checkpoint key).
    name: String,
    /// Print JSON with the raw bytes in base64.
    #[arg(long)]
    json: bool,
}

/// `savedmodel ckpt verify`.
#[derive(Debug, Args)]
#[command(after_help = "\
Reads the whole index (every block's CRC32C) and every tensor's bytes in the
data files: the size against the data type and shape, the offset against the
file's length, string framing, and the CRC32C against the entry. Partitioned
tensors are checked slice by slice, and every slice they list must exist.
Prints one line per index entry (`ok` or `FAULT` with the reason) and a
summary.

Exit status: 0 when every check passed, 1 when any failed, 2 when the
checkpoint could not be opened at all (no such file, unreadable).

Examples:
  savedmodel ckpt verify /tmp/model.ckpt-1000
  savedmodel ckpt verify export/1 --quiet && echo intact")]
pub(crate) struct VerifyArgs {
    #[arg(help = PREFIX_HELP)]
    prefix: PathBuf,
    /// Print only the faults and the summary.
    #[arg(long, short)]
    quiet: bool,
}

/// `savedmodel ckpt convert`.
#[derive(Debug, Args)]
#[command(after_help = "\
SRC's format is told from its content: a checkpoint prefix (or .index file,
or SavedModel directory), a .safetensors file or a .npz archive. DST's from
its name: *.safetensors, *.npz, anything else is a checkpoint prefix
(writing DST.index and DST.data-00000-of-00001).

--include and --exclude match the source names (a tensor is kept when it
matches some --include, or there is none, and no --exclude). --rename rules
then apply in order, each replacing every match (`$1` refers to a group).

A checkpoint is written with its tensors in sorted name order, as
TensorFlow's Saver does, so it is byte-identical to what TensorFlow writes for
the same tensors. .npz holds no bfloat16, float8, quantized or sub-byte types
(NumPy has none) and strings only as fixed-width bytes (no element may end in
a NUL byte); .safetensors holds no strings, complex128, quantized or
sub-byte types. Tensors DST cannot hold are an error naming them all, unless
--skip-unsupported leaves them out. Files are written under a temporary name
and renamed into place: a failure leaves nothing at DST.

Examples:
  savedmodel ckpt convert model.ckpt-1000 model.safetensors
  savedmodel ckpt convert export/1 weights.npz --exclude '^_CHECKPOINTABLE'
  savedmodel ckpt convert model.safetensors ckpt/model --rename '^model\\.=bert/'
  savedmodel ckpt convert model.ckpt-1000 enc.npz --include '^encoder/' --exclude 'Adam'")]
pub(crate) struct ConvertArgs {
    /// Source: checkpoint prefix, .safetensors or .npz file.
    src: PathBuf,
    /// Destination: *.safetensors, *.npz, or a checkpoint prefix.
    dst: PathBuf,
    /// Rename tensors: replace every match of regex FROM by TO (repeatable).
    #[arg(long = "rename", value_name = "FROM=TO", value_parser = Rename::parse)]
    renames: Vec<Rename>,
    /// Convert only tensors whose name matches REGEX (repeatable).
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    include: Vec<Regex>,
    /// Leave out tensors whose name matches REGEX (repeatable).
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    exclude: Vec<Regex>,
    /// Leave out tensors DST cannot hold instead of failing.
    #[arg(long)]
    skip_unsupported: bool,
    /// Write a checkpoint DST as N data files, filled at once by as many
    /// threads (faster with many small tensors; 1, the default, gives the
    /// files TensorFlow's SaveV2 would write).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    data_files: u16,
}

fn parse_regex(text: &str) -> Result<Regex, String> {
    Regex::new(text).map_err(|e| e.to_string())
}

/// Runs a checkpoint subcommand.
pub(crate) fn run(command: CkptCommand) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let code = match command {
        CkptCommand::Ls(args) => ls(&args, &mut out)?,
        CkptCommand::Cat(args) => cat(&args, &mut out)?,
        CkptCommand::Verify(args) => verify(&args, &mut out)?,
        CkptCommand::Convert(args) => convert(&args)?,
    };
    out.flush()?;
    Ok(code)
}

/// The checkpoint prefix a user's path means: the path itself, the prefix
/// of an `.index` file, or a SavedModel directory's `variables/variables`.
fn resolve_prefix(path: &Path) -> PathBuf {
    if path.is_file() && path.extension().is_some_and(|e| e == "index") {
        return path.with_extension("");
    }
    let variables = path.join("variables").join("variables");
    if path.is_dir() && savedmodel_checkpoint::index_file_name(&variables).is_file() {
        return variables;
    }
    path.to_path_buf()
}

fn open_bundle(path: &Path) -> anyhow::Result<BundleReader> {
    let prefix = resolve_prefix(path);
    BundleReader::open(&prefix).with_context(|| format!("opening checkpoint {}", prefix.display()))
}

/// A key as Python prints it after `.decode("utf-8", errors="ignore")`:
/// invalid UTF-8 sequences dropped.
fn utf8_ignoring_errors(bytes: &[u8]) -> String {
    bytes.utf8_chunks().map(|chunk| chunk.valid()).collect()
}

/// A key for JSON and reports: itself when UTF-8, escaped otherwise.
fn display_name(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(name) => name.to_owned(),
        Err(_) => key.escape_ascii().to_string(),
    }
}

/// The keys under which partitioned tensors store their slices (what
/// TensorFlow's `CheckpointReader` leaves out of its variable maps).
fn slice_keys(entries: &[(Vec<u8>, TensorEntry)]) -> HashSet<Vec<u8>> {
    entries
        .iter()
        .flat_map(|(key, entry)| {
            entry
                .slices
                .iter()
                .map(move |slice| encode_tensor_name_slice(key, slice))
        })
        .collect()
}

#[derive(Serialize)]
struct LsJson {
    name: String,
    dtype: &'static str,
    shape: Vec<i64>,
    shard: Option<u32>,
    offset: Option<u64>,
    size: Option<u64>,
    crc32c: Option<u32>,
    slices: Vec<SliceJson>,
}

#[derive(Serialize)]
struct SliceJson {
    slice: String,
    shape: Vec<i64>,
    shard: u32,
    offset: u64,
    size: u64,
    crc32c: u32,
}

fn ls(args: &LsArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let reader = open_bundle(&args.prefix)?;
    let entries = reader
        .entries()
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {}", reader.index_path().display()))?;
    let hidden = slice_keys(&entries);
    if args.json {
        let mut list = Vec::new();
        for (key, entry) in entries.iter().filter(|(k, _)| !hidden.contains(k)) {
            let partitioned = entry.is_partitioned();
            let mut slices = Vec::with_capacity(entry.slices.len());
            for slice in &entry.slices {
                let slice_key = encode_tensor_name_slice(key, slice);
                let stored = reader
                    .entry(&slice_key)
                    .with_context(|| format!("reading slice {slice} of {}", display_name(key)))?;
                slices.push(SliceJson {
                    slice: slice.to_string(),
                    shape: stored.shape,
                    shard: stored.shard_id,
                    offset: stored.offset,
                    size: stored.size,
                    crc32c: stored.crc32c,
                });
            }
            let whole = !partitioned;
            list.push(LsJson {
                name: display_name(key),
                dtype: entry.dtype.name(),
                shape: entry.shape.clone(),
                shard: whole.then_some(entry.shard_id),
                offset: whole.then_some(entry.offset),
                size: whole.then_some(entry.size),
                crc32c: whole.then_some(entry.crc32c),
                slices,
            });
        }
        serde_json::to_writer_pretty(&mut *out, &list)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut total: u64 = 0;
    for (key, entry) in &entries {
        if !hidden.contains(key) {
            total = total.saturating_add(entry.num_elements());
        }
        if entry.slices.is_empty() {
            writeln!(
                out,
                "{} ({}) {}",
                utf8_ignoring_errors(key),
                entry.dtype.name(),
                shape_string(&entry.shape)
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "# Total number of params: {total}")?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct CatJson<'a> {
    name: &'a str,
    dtype: &'static str,
    shape: &'a [i64],
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strings: Option<Vec<String>>,
}

fn cat(args: &CatArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let file =
        load_tensors(&args.source).with_context(|| format!("opening {}", args.source.display()))?;
    let view = match file.bundle_reader() {
        Some(reader) => reader.tensor(args.name.as_bytes()),
        None => file.get(&args.name),
    }
    .with_context(|| format!("reading tensor {} of {}", args.name, file.path().display()))?;
    if args.json {
        let (data, strings) = match view.data() {
            TensorData::Bytes(_) => (Some(BASE64.encode(little_endian(&view))), None),
            TensorData::Strings(strings) => (
                None,
                Some(strings.iter().map(|s| BASE64.encode(s)).collect()),
            ),
        };
        let json = CatJson {
            name: &args.name,
            dtype: view.dtype().name(),
            shape: view.shape(),
            data,
            strings,
        };
        serde_json::to_writer(&mut *out, &json)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{} ({}) {}",
            args.name,
            view.dtype().name(),
            shape_string(view.shape())
        )?;
        write_values(&view, out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A view's element bytes in little-endian order.
fn little_endian<'v>(view: &'v TensorView<'_>) -> std::borrow::Cow<'v, [u8]> {
    let bytes = view.bytes().unwrap_or_default();
    match view.dtype().swap_unit() {
        Some(unit) if unit > 1 && cfg!(target_endian = "big") => {
            let mut owned = bytes.to_vec();
            owned.chunks_exact_mut(unit).for_each(<[u8]>::reverse);
            std::borrow::Cow::Owned(owned)
        }
        _ => std::borrow::Cow::Borrowed(bytes),
    }
}

/// Prints the elements of `view` as `[e0, e1, ...]` on one line.
fn write_values(view: &TensorView<'_>, out: &mut impl Write) -> io::Result<()> {
    let bytes = match view.data() {
        TensorData::Strings(strings) => {
            let items: Vec<String> = strings
                .iter()
                .map(|s| format!("b\"{}\"", s.escape_ascii()))
                .collect();
            return writeln!(out, "[{}]", items.join(", "));
        }
        TensorData::Bytes(bytes) => bytes,
    };
    let dtype = view.dtype();
    let size = dtype.element_size().unwrap_or(1).max(1);
    write!(out, "[")?;
    for (i, e) in bytes.chunks_exact(size).enumerate() {
        if i > 0 {
            write!(out, ", ")?;
        }
        write_element(dtype, e, out)?;
    }
    writeln!(out, "]")
}

fn write_element(dtype: DType, e: &[u8], out: &mut impl Write) -> io::Result<()> {
    macro_rules! ne {
        ($t:ty) => {
            <$t>::from_ne_bytes(e.try_into().unwrap_or_default())
        };
    }
    match dtype {
        DType::Float => write!(out, "{}", ne!(f32)),
        DType::Double => write!(out, "{}", ne!(f64)),
        DType::Half => write!(out, "{}", half::f16::from_bits(ne!(u16))),
        DType::BFloat16 => write!(out, "{}", half::bf16::from_bits(ne!(u16))),
        DType::Int8 | DType::QInt8 => write!(out, "{}", ne!(i8)),
        DType::UInt8 | DType::QUInt8 => write!(out, "{}", ne!(u8)),
        DType::Int16 | DType::QInt16 => write!(out, "{}", ne!(i16)),
        DType::UInt16 | DType::QUInt16 => write!(out, "{}", ne!(u16)),
        DType::Int32 | DType::QInt32 => write!(out, "{}", ne!(i32)),
        DType::UInt32 => write!(out, "{}", ne!(u32)),
        DType::Int64 => write!(out, "{}", ne!(i64)),
        DType::UInt64 => write!(out, "{}", ne!(u64)),
        DType::Bool => write!(out, "{}", e.first().is_some_and(|&b| b != 0)),
        DType::Complex64 => {
            let (re, im) = e.split_at(4);
            let part = |b: &[u8]| f32::from_ne_bytes(b.try_into().unwrap_or_default());
            write!(out, "({}{:+}j)", part(re), part(im))
        }
        DType::Complex128 => {
            let (re, im) = e.split_at(8);
            let part = |b: &[u8]| f64::from_ne_bytes(b.try_into().unwrap_or_default());
            write!(out, "({}{:+}j)", part(re), part(im))
        }
        _ => {
            let hex: String = e.iter().map(|b| format!("{b:02x}")).collect();
            write!(out, "0x{hex}")
        }
    }
}

fn verify(args: &VerifyArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let prefix = resolve_prefix(&args.prefix);
    let reader = match BundleReader::open(&prefix) {
        Ok(reader) => reader,
        // Missing or unreadable files are errors (exit 2); a corrupt index
        // is a fault found (exit 1).
        Err(e @ CkptError::Io { .. }) => {
            return Err(
                anyhow::Error::new(e).context(format!("opening checkpoint {}", prefix.display()))
            );
        }
        Err(e) => {
            writeln!(out, "FAULT  index: {e}")?;
            writeln!(out, "{}: the index is corrupt", prefix.display())?;
            return Ok(ExitCode::from(1));
        }
    };
    let (mut checked, mut faults, mut bytes) = (0u64, 0u64, 0u64);
    let mut entries = Vec::new();
    for item in reader.entries() {
        match item {
            Ok(entry) => entries.push(entry),
            Err(e) => {
                faults += 1;
                writeln!(
                    out,
                    "FAULT  index: {e} (entries after this point not checked)"
                )?;
            }
        }
    }
    for (key, entry) in &entries {
        checked += 1;
        let label = match decode_tensor_name_slice(key) {
            Some((name, slice)) if key.first() == Some(&0) => {
                format!("{} (slice {slice})", display_name(&name))
            }
            _ => display_name(key),
        };
        let description = format!(
            "{label} ({}) {}",
            entry.dtype.name(),
            shape_string(&entry.shape)
        );
        if entry.is_partitioned() {
            let missing: Vec<String> = entry
                .slices
                .iter()
                .filter(|slice| {
                    !reader
                        .contains(encode_tensor_name_slice(key, slice))
                        .unwrap_or(false)
                })
                .map(ToString::to_string)
                .collect();
            if missing.is_empty() {
                if !args.quiet {
                    writeln!(
                        out,
                        "ok     {description}: partitioned in {} slices",
                        entry.slices.len()
                    )?;
                }
            } else {
                faults += 1;
                writeln!(
                    out,
                    "FAULT  {description}: slices listed but missing: {}",
                    missing.join(", ")
                )?;
            }
            continue;
        }
        match reader.tensor_for_entry(key, entry) {
            Ok(_) => {
                bytes = bytes.saturating_add(entry.size);
                if !args.quiet {
                    writeln!(out, "ok     {description}: {} bytes", entry.size)?;
                }
            }
            Err(e) => {
                faults += 1;
                writeln!(out, "FAULT  {description}: {e}")?;
            }
        }
    }
    let shards = reader.header().num_shards;
    if faults == 0 {
        writeln!(
            out,
            "{}: {checked} entries, {bytes} bytes in {shards} data file(s): all checks passed",
            prefix.display()
        )?;
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(
            out,
            "{}: {faults} fault(s) in {checked} entries",
            prefix.display()
        )?;
        Ok(ExitCode::from(1))
    }
}

fn convert(args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    let source =
        load_tensors(&args.src).with_context(|| format!("opening {}", args.src.display()))?;
    let format = Format::for_output(&args.dst);
    if args.data_files != 1 && format != Format::TensorBundle {
        bail!(
            "--data-files is for a TensorFlow checkpoint destination; {} is written as {format}",
            args.dst.display()
        );
    }
    let mut options = ConvertOptions::default();
    options.data_files = args.data_files.into();
    options.include = args.include.clone();
    options.exclude = args.exclude.clone();
    options.renames = args.renames.clone();
    options.skip_unsupported = args.skip_unsupported;
    let plan = ConvertPlan::new(&source, format, &options)?;
    let unsupported = plan.unsupported();
    if !unsupported.is_empty() && !args.skip_unsupported {
        let list: Vec<String> = unsupported.iter().map(|u| format!("  {u}")).collect();
        bail!(
            "{} tensor(s) of {} cannot be written to {} ({}):\n{}\npass --skip-unsupported to leave them out, or --exclude them",
            unsupported.len(),
            args.src.display(),
            args.dst.display(),
            format,
            list.join("\n")
        );
    }
    let total = plan.total_bytes();
    let bar = (io::stderr().is_terminal() && total >= PROGRESS_THRESHOLD).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    });
    let result = plan.write(&args.dst, &mut |done, _total| {
        if let Some(bar) = &bar {
            bar.set_position(done);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let summary = result.with_context(|| {
        format!(
            "converting {} to {} ({format})",
            args.src.display(),
            args.dst.display()
        )
    })?;
    eprintln!(
        "wrote {} tensor(s), {} bytes, to {} ({format})",
        summary.tensors,
        summary.bytes,
        args.dst.display()
    );
    if !unsupported.is_empty() {
        let names: Vec<&str> = unsupported.iter().map(|u| u.name.as_str()).collect();
        eprintln!(
            "skipped {} unsupported tensor(s): {}",
            names.len(),
            names.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
