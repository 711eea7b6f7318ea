//! `savedmodel ckpt`: list, print, verify and convert TensorFlow checkpoints
//! (TensorBundle prefixes), `.safetensors` and `.npz` files.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Args, Subcommand};
use regex::Regex;
use savedmodel_checkpoint::convert::{
    ConvertOptions, ConvertPlan, Format, Rename, TensorFile, load_tensors,
};
use savedmodel_checkpoint::encode_tensor_name_slice;
use savedmodel_checkpoint::{
    BundleReader, DType, EntryCheck, EntryReport, IndexCheck, TensorData, TensorView, VerifyReport,
    shape_string,
};
use serde::Serialize;
use serde::ser::{SerializeSeq as _, Serializer as _};

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

/// Walks the index once, in key order, printing as it goes: a slice key is
/// told from a tensor by looking up the tensor it names
/// ([`BundleReader::is_listed_slice`]), not by collecting the entries first.
fn ls(args: &LsArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let reader = open_bundle(&args.prefix)?;
    let reading = || format!("reading {}", reader.index_path().display());
    if args.json {
        let mut json = serde_json::Serializer::pretty(&mut *out);
        let mut list = json.serialize_seq(None)?;
        for item in reader.entries() {
            let (key, entry) = item.with_context(reading)?;
            if reader.is_listed_slice(&key).with_context(reading)? {
                continue;
            }
            let partitioned = entry.is_partitioned();
            let mut slices = Vec::with_capacity(entry.slices.len());
            for slice in &entry.slices {
                let slice_key = encode_tensor_name_slice(&key, slice);
                let stored = reader
                    .entry(&slice_key)
                    .with_context(|| format!("reading slice {slice} of {}", display_name(&key)))?;
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
            list.serialize_element(&LsJson {
                name: display_name(&key),
                dtype: entry.dtype.name(),
                shape: entry.shape,
                shard: whole.then_some(entry.shard_id),
                offset: whole.then_some(entry.offset),
                size: whole.then_some(entry.size),
                crc32c: whole.then_some(entry.crc32c),
                slices,
            })?;
        }
        list.end()?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut total: u64 = 0;
    for item in reader.entries() {
        let (key, entry) = item.with_context(reading)?;
        if !reader.is_listed_slice(&key).with_context(reading)? {
            total = total.saturating_add(entry.num_elements());
        }
        if entry.slices.is_empty() {
            writeln!(
                out,
                "{} ({}) {}",
                utf8_ignoring_errors(&key),
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

/// A checkpoint is opened with [`BundleReader`], whose lookup reads one
/// block of the index (a `TensorFile` would read every entry to list them).
fn cat(args: &CatArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let opening = || format!("opening {}", args.source.display());
    let (format, path) = Format::detect(&args.source).with_context(opening)?;
    let reading = || format!("reading tensor {} of {}", args.name, path.display());
    if format == Format::TensorBundle {
        let reader = BundleReader::open(&path).with_context(opening)?;
        let view = reader.tensor(args.name.as_bytes()).with_context(reading)?;
        print_tensor(args, &view, out)?;
    } else {
        let file = TensorFile::open_as(&path, format).with_context(opening)?;
        let view = file.get(&args.name).with_context(reading)?;
        print_tensor(args, &view, out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what `ckpt cat` prints of a tensor read.
fn print_tensor(args: &CatArgs, view: &TensorView<'_>, out: &mut impl Write) -> anyhow::Result<()> {
    if args.json {
        let (data, strings) = match view.data() {
            TensorData::Bytes(_) => (Some(BASE64.encode(little_endian(view))), None),
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
        write_values(view, out)?;
    }
    Ok(())
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

/// Prints [`savedmodel_checkpoint::verify`]'s report.
fn verify(args: &VerifyArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let prefix = resolve_prefix(&args.prefix);
    // Missing or unreadable files are errors (exit 2); a corrupt index is a
    // fault found (exit 1).
    let report = savedmodel_checkpoint::verify(&prefix)
        .with_context(|| format!("opening checkpoint {}", prefix.display()))?;
    print_verify_report(&report, args.quiet, out)?;
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One line per fault (and, unless `quiet`, per entry that passed), then
/// the summary.
fn print_verify_report(report: &VerifyReport, quiet: bool, out: &mut impl Write) -> io::Result<()> {
    let prefix = report.prefix.display();
    match &report.index {
        IndexCheck::Ok => {}
        IndexCheck::Corrupt(e) => {
            writeln!(out, "FAULT  index: {e}")?;
            return writeln!(out, "{prefix}: the index is corrupt");
        }
        IndexCheck::Stopped(e) => writeln!(
            out,
            "FAULT  index: {e} (entries after this point not checked)"
        )?,
    }
    for entry in &report.entries {
        let description = describe_entry(entry);
        match &entry.check {
            EntryCheck::Ok if !quiet => {
                writeln!(out, "ok     {description}: {} bytes", entry.entry.size)?;
            }
            EntryCheck::Partitioned { slices } if !quiet => {
                writeln!(out, "ok     {description}: partitioned in {slices} slices")?;
            }
            EntryCheck::MissingSlices(missing) => {
                let missing: Vec<String> = missing.iter().map(ToString::to_string).collect();
                writeln!(
                    out,
                    "FAULT  {description}: slices listed but missing: {}",
                    missing.join(", ")
                )?;
            }
            EntryCheck::Fault(e) => writeln!(out, "FAULT  {description}: {e}")?,
            _ => {}
        }
    }
    let (checked, faults) = (report.entries.len(), report.faults());
    if faults == 0 {
        writeln!(
            out,
            "{prefix}: {checked} entries, {} bytes in {} data file(s): all checks passed",
            report.bytes_checked(),
            report.data_files.len()
        )
    } else {
        writeln!(out, "{prefix}: {faults} fault(s) in {checked} entries")
    }
}

/// `NAME (DT_TYPE) [d0,d1]`, a slice key as `NAME (slice S) ...`.
fn describe_entry(entry: &EntryReport) -> String {
    let label = match &entry.slice_of {
        Some((name, slice)) => format!("{} (slice {slice})", display_name(name)),
        None => display_name(&entry.key),
    };
    format!(
        "{label} ({}) {}",
        entry.entry.dtype.name(),
        shape_string(&entry.entry.shape)
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use savedmodel_checkpoint::{BundleWriter, TensorSlice};

    fn bundle(dir: &Path) -> PathBuf {
        let prefix = dir.join("model.ckpt");
        let mut writer = BundleWriter::create(&prefix).unwrap();
        writer.add_typed("bias", &[2], &[0.5f32, -1.0]).unwrap();
        writer.add_typed("global_step", &[], &[7i64]).unwrap();
        let rows = |start, length| {
            TensorSlice::new(vec![savedmodel_checkpoint::Extent::Range { start, length }])
        };
        writer
            .add_slice("part", &[3], &rows(0, 1), DType::Int32, &1i32.to_ne_bytes())
            .unwrap();
        let two = [2i32.to_ne_bytes(), 3i32.to_ne_bytes()].concat();
        writer
            .add_slice("part", &[3], &rows(1, 2), DType::Int32, &two)
            .unwrap();
        writer.finish().unwrap();
        prefix
    }

    fn cat_text(source: &Path, name: &str) -> anyhow::Result<String> {
        let args = CatArgs {
            source: source.to_path_buf(),
            name: name.to_owned(),
            json: false,
        };
        let mut out = Vec::new();
        cat(&args, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn cat_reads_one_tensor_from_any_spelling_of_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = bundle(dir.path());
        let index = savedmodel_checkpoint::index_file_name(&prefix);
        for source in [&prefix, &index] {
            assert_eq!(
                cat_text(source, "bias").unwrap(),
                "bias (DT_FLOAT) [2]\n[0.5, -1]\n"
            );
            assert_eq!(
                cat_text(source, "part").unwrap(),
                "part (DT_INT32) [3]\n[1, 2, 3]\n"
            );
        }
    }

    /// The message `savedmodel ckpt cat` printed when it read the whole
    /// index first (`TensorFile::open`), and prints now that it looks the
    /// one tensor up.
    #[test]
    fn cat_of_a_missing_name_names_the_tensor_and_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = bundle(dir.path());
        let err = cat_text(&prefix, "kernel").unwrap_err();
        assert_eq!(
            crate::error_message(&err),
            format!(
                "reading tensor kernel of {0}: tensor kernel not found in {0}.index",
                prefix.display()
            )
        );
        let missing = dir.path().join("nothing");
        let err = cat_text(&missing, "bias").unwrap_err();
        assert!(
            crate::error_message(&err).starts_with(&format!("opening {}: ", missing.display())),
            "{err:#}"
        );
    }

    #[test]
    fn ls_lists_entries_as_it_walks_them() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = bundle(dir.path());
        let args = LsArgs {
            prefix: prefix.clone(),
            json: false,
        };
        let mut out = Vec::new();
        ls(&args, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Two slice keys (binary, sorted first, bytes that are not UTF-8
        // dropped), then the tensors but the partitioned one; its 3
        // elements counted once.
        assert_eq!(lines.len(), 6, "{text}");
        assert!(lines[0].ends_with("(DT_INT32) [1]"), "{text}");
        assert!(lines[1].ends_with("(DT_INT32) [2]"), "{text}");
        assert_eq!(
            lines[2..],
            [
                "bias (DT_FLOAT) [2]",
                "global_step (DT_INT64) []",
                "",
                "# Total number of params: 6"
            ]
        );
    }

    fn verify_text(prefix: &Path, quiet: bool) -> (String, ExitCode) {
        let args = VerifyArgs {
            prefix: prefix.to_path_buf(),
            quiet,
        };
        let mut out = Vec::new();
        let code = verify(&args, &mut out).unwrap();
        (String::from_utf8(out).unwrap(), code)
    }

    #[test]
    fn verify_prints_one_line_per_entry_and_a_summary() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = bundle(dir.path());
        let p = prefix.display();
        let (text, code) = verify_text(&prefix, false);
        assert_eq!(code, ExitCode::SUCCESS);
        assert_eq!(
            text,
            format!(
                "ok     part (slice 0,1) (DT_INT32) [1]: 4 bytes\n\
                 ok     part (slice 1,2) (DT_INT32) [2]: 8 bytes\n\
                 ok     bias (DT_FLOAT) [2]: 8 bytes\n\
                 ok     global_step (DT_INT64) []: 8 bytes\n\
                 ok     part (DT_INT32) [3]: partitioned in 2 slices\n\
                 {p}: 5 entries, 28 bytes in 1 data file(s): all checks passed\n"
            )
        );
        // `bias` is stored first: flip one of its bytes.
        let data = savedmodel_checkpoint::data_file_name(&prefix, 0, 1);
        let mut bytes = std::fs::read(&data).unwrap();
        bytes[3] ^= 1;
        std::fs::write(&data, bytes).unwrap();
        let (text, code) = verify_text(&prefix, true);
        assert_eq!(code, ExitCode::from(1));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with("FAULT  bias (DT_FLOAT) [2]: ") && lines[0].contains("checksum"),
            "{text}"
        );
        assert_eq!(lines[1], format!("{p}: 1 fault(s) in 5 entries"));
    }
}
