//! The bench's report: statistics over the samples, the machine's
//! description, the markdown tables and targets, and `docs/performance.md`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::Context;

use super::{
    BEGIN_MARKER, CAT_PROCESS_TARGET, END_MARKER, LayoutResult, MEMORY_BOUND, Met, Operation,
    Options, Sample, Tool,
};

/// (min, median, max) of the wall times.
pub(super) fn stats(samples: &[Sample]) -> (f64, f64, f64) {
    let times: Vec<f64> = samples.iter().map(|s| s.seconds).collect();
    min_median_max(&times)
}

/// (min, median, max) of `values` (the median of an even count is the mean
/// of the middle two); NaNs when empty.
pub(crate) fn min_median_max(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    (sorted[0], median, sorted[n - 1])
}

/// Medians of the CPU and run-queue waiting times, when measured.
pub(super) fn cpu_medians(samples: &[Sample]) -> Option<(f64, f64)> {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let pairs: Vec<(f64, f64)> = samples.iter().filter_map(|s| s.cpu).collect();
    if pairs.is_empty() || pairs.len() != samples.len() {
        return None;
    }
    Some((
        median(pairs.iter().map(|p| p.0).collect()),
        median(pairs.iter().map(|p| p.1).collect()),
    ))
}

pub(crate) fn format_seconds(s: f64) -> String {
    if s == 0.0 {
        "0".to_owned()
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.1 {
        format!("{:.0} ms", s * 1e3)
    } else if s >= 0.01 {
        format!("{:.1} ms", s * 1e3)
    } else if s >= 0.001 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

pub(crate) fn format_bytes(bytes: f64) -> String {
    let mib = bytes / f64::from(1 << 20);
    if mib.abs() >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else if mib.abs() >= 10.0 {
        format!("{mib:.0} MiB")
    } else {
        format!("{mib:.1} MiB")
    }
}

pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) fn layout_label(bytes: u64, count: usize) -> String {
    let each = bytes as f64 / count as f64;
    let size = if each >= f64::from(1 << 30) {
        format!("{:.1} GiB", each / f64::from(1 << 30))
    } else if each >= f64::from(1 << 20) {
        format!("{:.1} MiB", each / f64::from(1 << 20))
    } else if each >= 1024.0 {
        format!("{:.1} KiB", each / 1024.0)
    } else {
        format!("{each:.0} B")
    };
    format!("{} x {}", thousands(count as u64), size.replace(".0 ", " "))
}

pub(crate) fn ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}x")
    } else {
        format!("{r:.1}x")
    }
}

pub(super) struct Machine {
    pub(super) date: String,
    pub(super) memory_start: String,
    pub(super) uptime_start: String,
    pub(super) load_start: f64,
    pub(super) load_end: f64,
    pub(super) load_max: f64,
    pub(super) versions: String,
    pub(super) rustc: String,
    pub(super) fs: String,
    pub(super) comparison_seconds: f64,
}

/// `MemFree` and `Cached` from `/proc/meminfo`, formatted.
pub(super) fn memory_state() -> String {
    let info = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or_else(|| "?".to_owned(), |kib| format_bytes(kib * 1024.0))
    };
    format!(
        "{} free, {} page cache",
        field("MemFree:"),
        field("Cached:")
    )
}

pub(super) fn meminfo_total() -> String {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or_else(|| "?".to_owned(), |kib| format_bytes(kib * 1024.0))
}

pub(crate) fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// Criterion's median estimate (seconds) for each benchmark, when present.
pub(super) fn criterion_medians(
    root: &Path,
    options: &Options,
) -> Vec<(usize, &'static str, Option<f64>)> {
    let base = root.join("target").join("criterion");
    let mut out = Vec::new();
    for count in [1, 64, options.small_tensors] {
        for bench in ["write", "read_all_crc", "open_read_small"] {
            let path = base
                .join(format!("checkpoint_{count}_tensors"))
                .join(bench)
                .join("new")
                .join("estimates.json");
            let median = fs::read_to_string(&path)
                .ok()
                .and_then(|json| json_median_ns(&json))
                .map(|ns| ns / 1e9);
            out.push((count, bench, median));
        }
    }
    out
}

/// `median.point_estimate` of a criterion `estimates.json`, without a JSON
/// library: the first `"point_estimate":` after `"median":`.
pub(super) fn json_median_ns(json: &str) -> Option<f64> {
    let rest = &json[json.find("\"median\"")?..];
    let rest = &rest[rest.find("\"point_estimate\"")? + "\"point_estimate\"".len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

pub(super) fn render(
    options: &Options,
    command_line: &str,
    machine: &Machine,
    results: &[LayoutResult],
    criterion: Option<Vec<(usize, &'static str, Option<f64>)>>,
) -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "## Results of `{command_line}`\n");
    let _ = writeln!(
        w,
        "- Date: {}; {} of data per layout ({} float32 elements), {} measured rounds (min / median / max below).",
        machine.date,
        format_bytes(options.bytes as f64),
        thousands(options.bytes / 4),
        options.repeats
    );
    let _ = writeln!(
        w,
        "- Machine: {nproc} CPUs ({}), {} of memory ({} at the start), kernel {}, file system {}; {}; {}.",
        cpu_model(),
        meminfo_total(),
        machine.memory_start,
        fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        machine.fs,
        machine.rustc,
        machine.versions
    );
    // The measured process itself counts for about 1.
    let busy = machine.load_max > 1.0 + nproc as f64 * 0.5;
    let _ = writeln!(
        w,
        "- Load: 1-minute load average {:.2} at the start (`uptime`: {}), {:.2} at the end, up to {:.2} during the run{}. The comparison took {:.0} s.",
        machine.load_start,
        machine.uptime_start,
        machine.load_end,
        machine.load_max,
        if busy {
            format!(
                ": **other processes were using the {nproc} CPUs, so the timings are noisy** (the rounds interleave all tools, so ratios are fairer than absolute times)"
            )
        } else {
            ": the measured process itself counts for about 1, so the CPUs were otherwise mostly free (the *waiting for a CPU* column shows how much each measurement lost to other processes)".to_owned()
        },
        machine.comparison_seconds
    );
    let _ = writeln!(
        w,
        "- Page cache: **warm**. Every measurement runs once untimed before the measured rounds; each round runs every tool in turn. Before each measurement, the output path is deleted, `sync` runs, the files the measurement reads are read once through the page cache, and {} (none of it timed): this machine's kernel evicts page cache idle for a few seconds (DAMON `pageout`), so warmth is made right before each run. No write pays for writing back or freeing an earlier one. Writers do not fsync (neither `SaveV2` nor `save_file` does) except the row marked fsync. Readers read the bundle our writer wrote; TensorFlow's own files were compared with it byte for byte (below).",
        if options.prime {
            "a scratch file is written and deleted (1.25x the data before a write, 2.25x before a read; before an open, first, then `sync`, so that freeing it is over when the 0.1 ms open runs), because this virtual machine hands free memory back to its host and touching it again is slow (`cp` of 1 GiB after 8 s idle: 1.1 to 2.3 s without this, 0.24 to 0.26 s with it)"
        } else {
            "memory is not primed (`--no-prime`): a write or read that allocates memory free for a few seconds pays for the host backing it again"
        }
    );
    let _ = writeln!(
        w,
        "- Memory, from `/proc/self/status` of the process doing the work (ours: a fresh `checkpoint-bench` process per measurement; TensorFlow and safetensors: one Python process that has imported TensorFlow and holds the input): *peak RSS* is `VmHWM` (reset through `/proc/self/clear_refs` just before the operation, so it is the peak during the operation); *peak growth* is that minus the RSS just before; *anon. growth* is the growth of anonymous memory (`RssAnon`: heap, copies) measured with the results still alive. *CPU / waiting for a CPU*: medians of the time the process's threads spent running and waiting on a run queue during the operation (ours: CPU from `getrusage(RUSAGE_SELF)`, which counts the writer's threads that have ended too, so CPU above the wall time means several CPUs at work; waiting, and both for Python, from `/proc/self/task/*/schedstat` of the threads alive, updated at scheduler ticks, so meaningless below a few ms); a large wait means other processes held the CPUs, a wall time far above both means waiting for I/O or for memory. Pages of a memory-mapped file count in the RSS (`RssFile`) but are the page cache's, not a copy. Largest value over the rounds.\n"
    );

    for result in results {
        let label = layout_label(options.bytes, result.count);
        let _ = writeln!(
            w,
            "### {label}: {} float32 tensor{} + the int64 scalar `global_step`\n",
            thousands(result.count as u64),
            if result.count == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            w,
            "| operation | implementation | min | median | max | CPU / waiting for a CPU | ours: x faster than TF | ours: x faster than safetensors | peak RSS | peak growth | anon. growth, results kept |"
        );
        let _ = writeln!(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (task, samples) in &result.rows {
            let (min, median, max) = stats(samples);
            let is_ours_main = matches!(
                task.tool,
                Tool::Ours | Tool::OursTwoFiles | Tool::Python | Tool::PythonNoFsync
            );
            let (vs_tf, vs_st) = if is_ours_main {
                (
                    result.speedups(task.tool, task.operation, Tool::TensorFlow),
                    result.speedups(task.tool, task.operation, Tool::Safetensors),
                )
            } else {
                (String::new(), String::new())
            };
            let max_of = |f: fn(&Sample) -> Option<f64>| {
                samples
                    .iter()
                    .filter_map(f)
                    .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
                    .map_or_else(|| "–".to_owned(), format_bytes)
            };
            let cpu = cpu_medians(samples).map_or_else(
                || "–".to_owned(),
                |(cpu, wait)| format!("{} / {}", format_seconds(cpu), format_seconds(wait)),
            );
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {cpu} | {vs_tf} | {vs_st} | {} | {} | {} |",
                task.operation.title(),
                task.label(),
                format_seconds(min),
                format_seconds(median),
                format_seconds(max),
                max_of(|s| s.peak.map(|v| v as f64)),
                max_of(|s| s.peak_growth.map(|v| v as f64)),
                max_of(|s| s.anon_growth.map(|v| v as f64)),
            );
        }
        let _ = writeln!(
            w,
            "\nTensorFlow's `SaveV2` files byte-identical to ours: **{}**. Load average {:.2} → {:.2} during this layout.\n",
            match result.identical_to_tf {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "not compared (`--only` left out a write row)",
            },
            result.load.0,
            result.load.1
        );
    }

    if options.only.is_empty() {
        render_targets(w, options, results);
    }

    if let Some(criterion) = criterion {
        let _ = writeln!(
            w,
            "### Criterion (`cargo bench -p savedmodel-benches --bench checkpoint`, same data size, medians)\n"
        );
        let _ = writeln!(
            w,
            "Writes stream every tensor from one 1 MiB buffer (no input held in memory); reads check every CRC.\n"
        );
        let _ = writeln!(
            w,
            "| layout | write | read all (CRC) | open + small tensor |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|");
        for count in [1, 64, options.small_tensors] {
            let cell = |bench: &str| {
                criterion
                    .iter()
                    .find(|(c, b, _)| *c == count && *b == bench)
                    .and_then(|(_, _, m)| *m)
                    .map_or_else(|| "–".to_owned(), format_seconds)
            };
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} |",
                layout_label(options.bytes, count),
                cell("write"),
                cell("read_all_crc"),
                cell("open_read_small")
            );
        }
        let _ = writeln!(w);
    }
    out
}

pub(super) fn render_targets(w: &mut String, options: &Options, results: &[LayoutResult]) {
    let find = |count: usize| results.iter().find(|r| r.count == count);
    let mut rows: Vec<(String, String, Met)> = Vec::new();
    let small = options.small_tensors;
    let small_label = layout_label(options.bytes, small);
    for (count, factor) in [(1, 2.0), (64, 2.0), (small, 5.0)] {
        if let Some(r) = find(count) {
            let (measured, met) =
                r.speedup_target(Tool::Ours, Operation::Write, Tool::TensorFlow, factor);
            rows.push((
                format!(
                    "write {}: at least {factor:.0}x faster than `SaveV2`",
                    layout_label(options.bytes, count)
                ),
                measured,
                met,
            ));
        }
    }
    if let Some(r) = find(small) {
        let (measured, met) =
            r.speedup_target(Tool::OursTwoFiles, Operation::Write, Tool::TensorFlow, 5.0);
        rows.push((
            format!("write {small_label} into 2 data files: at least 5x faster than `SaveV2`"),
            measured,
            met,
        ));
    }
    for count in [1, 64, small] {
        if let Some(r) = find(count) {
            let (measured, met) =
                r.speedup_target(Tool::Ours, Operation::Write, Tool::Safetensors, 1.0);
            rows.push((
                format!(
                    "write {}: no slower than `safetensors.save_file`",
                    layout_label(options.bytes, count)
                ),
                format!("{measured} as fast"),
                met,
            ));
        }
    }
    // The Python package (issue 14): loading at least 5x faster than
    // safetensors' numpy loader and 10x faster than TensorFlow, saving at
    // least as fast as safetensors.
    for count in [1, 64, small] {
        let Some(r) = find(count) else { continue };
        let label = layout_label(options.bytes, count);
        for (operation, tool, factor, what) in [
            (
                Operation::Read,
                Tool::Safetensors,
                5.0,
                "`savedmodel.load_checkpoint`: at least 5x faster than `safetensors.numpy.load_file`",
            ),
            (
                Operation::Read,
                Tool::TensorFlow,
                10.0,
                "`savedmodel.load_checkpoint`: at least 10x faster than TensorFlow",
            ),
            (
                Operation::Write,
                Tool::Safetensors,
                1.0,
                "`savedmodel.save_checkpoint`: no slower than `safetensors.numpy.save_file`",
            ),
        ] {
            if r.samples(operation, Tool::Python).is_none() {
                continue;
            }
            let (measured, met) = r.speedup_target(Tool::Python, operation, tool, factor);
            rows.push((format!("Python, {label}: {what}"), measured, met));
        }
        // Not the targets: the same comparison with the same
        // durability on both sides (safetensors does not fsync; our writer
        // does by default).
        for (mine, tool, what) in [
            (
                Tool::Python,
                Tool::SafetensorsFsync,
                "(for comparison) `save_checkpoint` no slower than `save_file` + fsync",
            ),
            (
                Tool::PythonNoFsync,
                Tool::Safetensors,
                "(for comparison) `save_checkpoint(fsync=False)` no slower than `save_file`",
            ),
        ] {
            if r.samples(Operation::Write, mine).is_none()
                || r.samples(Operation::Write, tool).is_none()
            {
                continue;
            }
            let (measured, met) = r.speedup_target(mine, Operation::Write, tool, 1.0);
            rows.push((format!("Python, {label}: {what}"), measured, met));
        }
    }
    for (count, factor) in [(1, 5.0), (small, 8.0)] {
        if let Some(r) = find(count) {
            let (measured, met) =
                r.speedup_target(Tool::Ours, Operation::Read, Tool::TensorFlow, factor);
            rows.push((
                format!(
                    "read everything with CRCs, {}: at least {factor:.0}x faster than TensorFlow",
                    layout_label(options.bytes, count)
                ),
                measured,
                met,
            ));
        }
    }
    if let Some(r) = find(small) {
        if let Some(samples) = r.samples(Operation::Open, Tool::Ours) {
            let (min, median, max) = stats(samples);
            rows.push((
                format!("open + first tensor with {small_label}: under 1 ms"),
                format!(
                    "median {}, max {} (TensorFlow: median {})",
                    format_seconds(median),
                    format_seconds(max),
                    r.median(Operation::Open, Tool::TensorFlow)
                        .map_or_else(|| "?".to_owned(), format_seconds)
                ),
                Met {
                    median: median < 1e-3,
                    min: min < 1e-3,
                },
            ));
        }
    }
    if let Some(r) = find(small) {
        if let Some(samples) = r.samples(Operation::Cat, Tool::Ours) {
            let (min, median, max) = stats(samples);
            rows.push((
                format!(
                    "`ckpt cat` one tensor of {small_label} as a whole process: a few milliseconds (under {}, issue 11)",
                    format_seconds(CAT_PROCESS_TARGET)
                ),
                format!(
                    "median {}, max {} (TensorFlow as a process: median {})",
                    format_seconds(median),
                    format_seconds(max),
                    r.median(Operation::Cat, Tool::TensorFlow)
                        .map_or_else(|| "?".to_owned(), format_seconds)
                ),
                Met {
                    median: median < CAT_PROCESS_TARGET,
                    min: min < CAT_PROCESS_TARGET,
                },
            ));
        }
    }
    let max_over = |operation: Operation, tool: Tool, f: fn(&Sample) -> Option<f64>| {
        results
            .iter()
            .filter_map(|r| r.samples(operation, tool))
            .flatten()
            .filter_map(f)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    };
    let streamed_peak = max_over(Operation::Write, Tool::OursStreamed, |s| {
        s.peak.map(|v| v as f64)
    });
    rows.push((
        "streaming write: resident memory under 64 MiB (whole process, input not in memory)"
            .to_owned(),
        streamed_peak.map_or_else(|| "?".to_owned(), |v| format!("peak {}", format_bytes(v))),
        Met::both(streamed_peak.is_some_and(|v| v < MEMORY_BOUND as f64)),
    ));
    let write_growth = max_over(Operation::Write, Tool::Ours, |s| {
        s.peak_growth.map(|v| v as f64)
    });
    rows.push((
        "write from memory: under 64 MiB above the input".to_owned(),
        write_growth.map_or_else(
            || "?".to_owned(),
            |v| format!("peak growth {}", format_bytes(v)),
        ),
        Met::both(write_growth.is_some_and(|v| v < MEMORY_BOUND as f64)),
    ));
    let read_anon = max_over(Operation::Read, Tool::Ours, |s| {
        s.anon_growth.map(|v| v as f64)
    });
    let copied: u64 = results
        .iter()
        .filter_map(|r| r.samples(Operation::Read, Tool::Ours))
        .flatten()
        .filter_map(|s| s.copied)
        .sum();
    let tf_anon = max_over(Operation::Read, Tool::TensorFlow, |s| {
        s.anon_growth.map(|v| v as f64)
    });
    let st_peak = max_over(Operation::Read, Tool::Safetensors, |s| {
        s.peak_growth.map(|v| v as f64)
    });
    rows.push((
        "read everything: no copy of the data (anonymous memory growth, all tensors alive)"
            .to_owned(),
        format!(
            "{}, {copied} tensors copied (TensorFlow: {}; safetensors peak growth {})",
            read_anon.map_or_else(|| "?".to_owned(), format_bytes),
            tf_anon.map_or_else(|| "?".to_owned(), format_bytes),
            st_peak.map_or_else(|| "?".to_owned(), format_bytes),
        ),
        Met::both(read_anon.is_some_and(|v| v < MEMORY_BOUND as f64) && copied == 0),
    ));

    let _ = writeln!(
        w,
        "### Targets (issue 3, point 15)\n\nSpeed-ups are medians over medians of this run, with fastest run over fastest run in parentheses; a target counts as met on the medians.\n"
    );
    if options.bytes != 1 << 30 {
        let _ = writeln!(
            w,
            "The targets are stated for 1 GiB; this run used {}.\n",
            format_bytes(options.bytes as f64)
        );
    }
    let _ = writeln!(w, "| target | measured | met |");
    let _ = writeln!(w, "|---|---|---|");
    for (target, measured, met) in rows {
        let _ = writeln!(w, "| {target} | {measured} | {} |", met.text());
    }
    let _ = writeln!(w);
}

pub(super) fn write_doc(path: &Path, report: &str) -> anyhow::Result<()> {
    let generated = format!("{BEGIN_MARKER}\n{report}{END_MARKER}\n");
    let text = match fs::read_to_string(path) {
        Ok(existing) => match (existing.find(BEGIN_MARKER), existing.find(END_MARKER)) {
            (Some(begin), Some(end)) if begin < end => {
                let after = &existing[end + END_MARKER.len()..];
                format!(
                    "{}{generated}{}",
                    &existing[..begin],
                    after.strip_prefix('\n').unwrap_or(after)
                )
            }
            _ => format!("{existing}\n{generated}"),
        },
        Err(_) => format!("# Performance\n\n{generated}"),
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
