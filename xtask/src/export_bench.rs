//! `cargo xtask export-bench`: `savedmodel export` of an MLP with about
//! 100 M float32 parameters (403 MB) from a `.safetensors` file, against
//! copying that file, time and peak memory.
//!
//! Each measurement runs in a fresh child process (this program, with the
//! hidden `--one` flag) so that its peak resident memory (`VmHWM`) is its
//! own. The weights file is written once and read from a warm page cache
//! by every run. Both sides fsync what they write: the export publishes
//! with `savedmodel_layout::publish` (every file and directory synced,
//! then renamed), the copy is `std::fs::copy` followed by `fsync`.
//!
//! `cargo xtask bench` can call [`measure`] and print its [`Report`].

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

/// The MLP's layer widths: 4096 -> 8192 -> 8192 -> 10 (100,745,216
/// parameters with biases).
pub(crate) const WIDTHS: [usize; 4] = [4096, 8192, 8192, 10];

/// One kind of run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `savedmodel export` through the library, published atomically.
    Export,
    /// `std::fs::copy` of the weights file, then fsync.
    Copy,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Export => "export",
            Kind::Copy => "copy",
        }
    }
}

/// Times and peak memory of the runs of one kind.
#[derive(Clone, Debug)]
pub(crate) struct Runs {
    /// The kind.
    pub(crate) kind: Kind,
    /// Wall-clock seconds of each run.
    pub(crate) seconds: Vec<f64>,
    /// Peak resident memory of each run's process, bytes.
    pub(crate) peak_rss: Vec<u64>,
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let min = s.first().copied().unwrap_or(0.0);
    let max = s.last().copied().unwrap_or(0.0);
    let median = s.get(s.len() / 2).copied().unwrap_or(0.0);
    (min, median, max)
}

impl Runs {
    /// Median seconds.
    pub(crate) fn median_seconds(&self) -> f64 {
        stats(&self.seconds).1
    }

    /// Largest peak RSS, bytes.
    pub(crate) fn max_peak_rss(&self) -> u64 {
        self.peak_rss.iter().copied().max().unwrap_or(0)
    }
}

/// What [`measure`] found.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    /// Parameters in the MLP.
    pub(crate) parameters: u64,
    /// Size of the `.safetensors` file.
    pub(crate) weights_bytes: u64,
    /// The export runs.
    pub(crate) export: Runs,
    /// The copy runs.
    pub(crate) copy: Runs,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        writeln!(
            f,
            "export of an MLP {:?} ({} float32 parameters, {:.0} MiB .safetensors), warm page cache, fsync on both sides",
            WIDTHS,
            self.parameters,
            mib(self.weights_bytes)
        )?;
        writeln!(
            f,
            "{:<8} {:>9} {:>9} {:>9} {:>15}",
            "", "min s", "median s", "max s", "peak RSS MiB"
        )?;
        for runs in [&self.export, &self.copy] {
            let (min, median, max) = stats(&runs.seconds);
            writeln!(
                f,
                "{:<8} {min:>9.3} {median:>9.3} {max:>9.3} {:>15.1}",
                runs.kind.name(),
                mib(runs.max_peak_rss())
            )?;
        }
        let ratio = self.export.median_seconds() / self.copy.median_seconds().max(1e-9);
        let above = self
            .export
            .max_peak_rss()
            .saturating_sub(self.copy.max_peak_rss());
        write!(
            f,
            "export / copy time: {ratio:.2}x (target <= 1.5x); export peak RSS above copy's: {:.1} MiB",
            mib(above)
        )
    }
}

/// Writes the MLP's weights as a `.safetensors` file (PyTorch names and
/// `[out, in]` layout: `fc1.weight`, `fc1.bias`, ...), streaming a
/// deterministic pattern, and returns the parameter count.
pub(crate) fn write_weights(path: &Path) -> anyhow::Result<u64> {
    let mut entries = Vec::new();
    let mut offset = 0u64;
    let mut json = String::from("{");
    for (i, pair) in WIDTHS.windows(2).enumerate() {
        let (inputs, units) = (pair[0] as u64, pair[1] as u64);
        for (suffix, shape, count) in [
            ("weight", vec![units, inputs], units * inputs),
            ("bias", vec![units], units),
        ] {
            let name = format!("fc{}.{suffix}", i + 1);
            let end = offset + count * 4;
            if json.len() > 1 {
                json.push(',');
            }
            json.push_str(&format!(
                "\"{name}\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[{offset},{end}]}}"
            ));
            entries.push(count);
            offset = end;
        }
    }
    json.push('}');
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    let mut out = BufWriter::with_capacity(
        8 << 20,
        File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    out.write_all(&(json.len() as u64).to_le_bytes())?;
    out.write_all(json.as_bytes())?;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut chunk = Vec::with_capacity(1 << 20);
    let mut total = 0u64;
    for count in entries {
        let mut left = count;
        while left > 0 {
            chunk.clear();
            let n = left.min(1 << 18);
            for _ in 0..n {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let v = ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.02;
                chunk.extend_from_slice(&v.to_le_bytes());
            }
            out.write_all(&chunk)?;
            left -= n;
        }
        total += count;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(total)
}

/// The spec for [`write_weights`]' file.
pub(crate) fn spec_toml() -> String {
    let mut s = format!(
        "[model]\narchitecture = \"mlp\"\ntask = \"classifier\"\ninput_width = {}\nlayout = \"out_in\"\n",
        WIDTHS[0]
    );
    let last = WIDTHS.len() - 2;
    for i in 0..=last {
        let activation = if i == last { "softmax" } else { "relu" };
        s.push_str(&format!(
            "\n[[layers]]\nkernel = \"fc{n}.weight\"\nbias = \"fc{n}.bias\"\nactivation = \"{activation}\"\n",
            n = i + 1
        ));
    }
    s
}

/// One export of `weights` into a new version under `base`.
pub(crate) fn export_once(spec: &Path, weights: &Path, base: &Path) -> anyhow::Result<()> {
    use savedmodel_export::{ExportOptions, ExportSpec, PreparedModel, open_weights};
    let started = Instant::now();
    let spec = ExportSpec::from_file(spec)?;
    let source = open_weights(weights)?;
    let model = PreparedModel::prepare(&spec, &source)?;
    let prepared = started.elapsed();
    let rss_after_prepare = peak_rss();
    let mut options = ExportOptions::default();
    // As `savedmodel export` does: `publish` fsyncs the whole staging tree.
    options.no_fsync = true;
    let export = model.into_export(&options)?;
    drop(source);
    let built = started.elapsed();
    let rss_after_build = peak_rss();
    savedmodel_layout::publish(base, savedmodel_layout::NextVersion::Increment, |dir| {
        export.write_into_empty_dir(dir)
    })?;
    // Phases, for whoever looks at the measurement process's stderr.
    eprintln!(
        "prepare {:.3} s (peak RSS then {} MiB), build {:.3} s (peak {} MiB), write+publish {:.3} s",
        prepared.as_secs_f64(),
        rss_after_prepare >> 20,
        (built - prepared).as_secs_f64(),
        rss_after_build >> 20,
        (started.elapsed() - built).as_secs_f64()
    );
    Ok(())
}

fn copy_once(weights: &Path, target: &Path) -> anyhow::Result<()> {
    std::fs::copy(weights, target)?;
    File::open(target)?.sync_all()?;
    Ok(())
}

/// This process's peak resident set (`VmHWM`), bytes.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Runs one measurement in a child process: `(seconds, peak RSS)`.
fn child(kind: Kind, dir: &Path) -> anyhow::Result<(f64, u64)> {
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .args(["export-bench", "--one", kind.name()])
        .arg(dir)
        .output()
        .context("starting a measurement process")?;
    if !output.status.success() {
        bail!(
            "{} run failed: {}",
            kind.name(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.split_whitespace();
    let seconds: f64 = fields.next().context("no time")?.parse()?;
    let rss: u64 = fields.next().context("no rss")?.parse()?;
    Ok((seconds, rss))
}

/// Writes the weights under `dir` (if not there yet) and measures
/// `repeats` exports and copies, alternating.
pub(crate) fn measure(dir: &Path, repeats: usize) -> anyhow::Result<Report> {
    std::fs::create_dir_all(dir)?;
    let weights = dir.join("mlp.safetensors");
    let parameters = match std::fs::metadata(&weights) {
        Ok(m) if m.len() > 0 => WIDTHS.windows(2).map(|w| (w[0] * w[1] + w[1]) as u64).sum(),
        _ => write_weights(&weights)?,
    };
    std::fs::write(dir.join("mlp.toml"), spec_toml())?;
    let weights_bytes = std::fs::metadata(&weights)?.len();
    let mut export = Runs {
        kind: Kind::Export,
        seconds: Vec::new(),
        peak_rss: Vec::new(),
    };
    let mut copy = Runs {
        kind: Kind::Copy,
        seconds: Vec::new(),
        peak_rss: Vec::new(),
    };
    // One untimed run of each to warm the page cache and the disk.
    child(Kind::Copy, dir)?;
    child(Kind::Export, dir)?;
    for _ in 0..repeats.max(1) {
        for runs in [&mut export, &mut copy] {
            let (s, rss) = child(runs.kind, dir)?;
            runs.seconds.push(s);
            runs.peak_rss.push(rss);
        }
    }
    let _ = std::fs::remove_dir_all(dir.join("base"));
    let _ = std::fs::remove_file(dir.join("copy.safetensors"));
    Ok(Report {
        parameters,
        weights_bytes,
        export,
        copy,
    })
}

/// `cargo xtask export-bench [--dir DIR] [--repeats N]`, and the hidden
/// `--one export|copy DIR` of a measurement process.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    if let [flag, kind, dir] = args {
        if flag == "--one" {
            let dir = PathBuf::from(dir);
            let started = Instant::now();
            match kind.as_str() {
                "export" => {
                    let base = dir.join("base");
                    let _ = std::fs::remove_dir_all(&base);
                    std::fs::create_dir_all(&base)?;
                    let started = Instant::now();
                    export_once(&dir.join("mlp.toml"), &dir.join("mlp.safetensors"), &base)?;
                    println!("{} {}", started.elapsed().as_secs_f64(), peak_rss());
                    return Ok(());
                }
                "copy" => {
                    let target = dir.join("copy.safetensors");
                    let _ = std::fs::remove_file(&target);
                    copy_once(&dir.join("mlp.safetensors"), &target)?;
                }
                other => bail!("unknown measurement {other:?}"),
            }
            println!("{} {}", started.elapsed().as_secs_f64(), peak_rss());
            return Ok(());
        }
    }
    let mut dir = std::env::temp_dir().join("savedmodel-export-bench");
    let mut repeats = 3;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        match (flag.as_str(), rest.next()) {
            ("--dir", Some(d)) => dir = PathBuf::from(d),
            ("--repeats", Some(n)) => repeats = n.parse()?,
            _ => bail!("usage: cargo xtask export-bench [--dir DIR] [--repeats N]"),
        }
    }
    let report = measure(&dir, repeats)?;
    println!("{report}");
    Ok(())
}
