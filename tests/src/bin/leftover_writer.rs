//! A writer process for the leftover tests (`tests/it/leftovers.rs`): runs
//! one of the workspace's writers in a loop until killed, so that a test
//! can stop it (SIGSTOP) while its temporary exists, check that `versions
//! gc` leaves a live writer's temporary alone, then kill it (SIGKILL) and
//! check that gc collects what it left.
//!
//! ```text
//! leftover_writer bundle DIR SEED      BundleWriter: DIR/model-<i> (the one before last removed)
//! leftover_writer sharded DIR SEED     ShardedBundleWriter, 2 shards: DIR/sharded-<i>
//! leftover_writer builder DIR SEED     SavedModelBuilder::write_to(DIR/1), then removes it
//! leftover_writer config FILE MODELS   ModelsConfig::edit of FILE (MODELS models), changing
//!                                      one model's policy
//! leftover_writer publish BASE SEED    savedmodel_layout::publish into BASE
//! ```
//!
//! Each prints `ready` once its first write is complete, then loops.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use savedmodel::{DType, Graph, MetaGraphBuilder, SavedModelBuilder, Tensor};
use savedmodel_checkpoint::{BundleWriter, ShardedBundleWriter, WriterOptions};
use savedmodel_layout::{ModelsConfig, NextVersion, VersionPolicy, publish};
use savedmodel_tests::layout_model::{XorShift, write_model};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("leftover_writer: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `n` pseudo-random floats.
fn floats(rng: &mut XorShift, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.range(0, 1 << 20) as f32).collect()
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> anyhow::Result<&str> {
        args.get(i)
            .map(String::as_str)
            .with_context(|| format!("missing argument {i}"))
    };
    let dir = Path::new(arg(1)?);
    let number: u64 = arg(2)?.parse()?;
    let mut rng = XorShift::new(number ^ u64::from(std::process::id()));
    let mut step: Box<dyn FnMut(u64) -> anyhow::Result<()>> = match arg(0)? {
        "bundle" => Box::new(|i| {
            let mut writer = BundleWriter::create(dir.join(format!("model-{i}")))?;
            for t in 0..4 {
                writer.add_typed(format!("w{t}"), &[256, 256], &floats(&mut rng, 256 * 256))?;
            }
            writer.finish()?;
            if i >= 2 {
                remove_bundle(&dir.join(format!("model-{}", i - 2)))?;
            }
            Ok(())
        }),
        "sharded" => Box::new(|i| {
            let prefix = dir.join(format!("sharded-{i}"));
            let mut writer = ShardedBundleWriter::create(&prefix, 2, WriterOptions::default())?;
            for (s, shard) in writer.shards_mut().iter_mut().enumerate() {
                shard.add_typed(format!("s{s}"), &[256, 256], &floats(&mut rng, 256 * 256))?;
            }
            writer.finish()?;
            if i >= 2 {
                remove_bundle(&dir.join(format!("sharded-{}", i - 2)))?;
            }
            Ok(())
        }),
        "builder" => {
            let mut g = Graph::new();
            let x = g.placeholder("x", DType::Float, [-1, 512])?;
            let w = g.variable("w", Tensor::new(&[512, 512], &floats(&mut rng, 512 * 512))?)?;
            let y = g.matmul("y", &x, w.value())?;
            let mut meta = MetaGraphBuilder::new(g, &["serve"]);
            meta.predict_signature("serving_default", &[("x", &x)], &[("y", &y)])?;
            let mut builder = SavedModelBuilder::new();
            builder.add_meta_graph(meta)?;
            Box::new(move |_| {
                let target = dir.join("1");
                builder.write_to(&target)?;
                std::fs::remove_dir_all(&target)?;
                Ok(())
            })
        }
        "config" => {
            let path = dir.to_path_buf();
            ModelsConfig::edit(&path, true, |config| {
                for m in 0..number {
                    config.add_model(&format!("m{m}"), &format!("/models/m{m}"), "tensorflow")?;
                }
                Ok(())
            })?;
            Box::new(move |i| {
                let policy = VersionPolicy::Latest {
                    num_versions: 1 + (i % 3) as u32,
                };
                ModelsConfig::edit(&path, false, |config| config.set_policy("m0", &policy))?;
                Ok(())
            })
        }
        "publish" => Box::new(|i| {
            publish(dir, NextVersion::Increment, |staging| {
                write_model(staging, number ^ i)
            })?;
            Ok(())
        }),
        other => bail!("unknown mode {other}"),
    };
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        step(i)?;
        if i == 0 {
            writeln!(out, "ready")?;
            out.flush()?;
        }
    }
    Ok(())
}

/// Removes the bundle at `prefix` (its index and data files).
fn remove_bundle(prefix: &Path) -> anyhow::Result<()> {
    let name = prefix
        .file_name()
        .and_then(|n| n.to_str())
        .context("prefix without a name")?;
    let dir = prefix.parent().context("prefix without a directory")?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file == format!("{name}.index") || file.starts_with(&format!("{name}.data-")) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}
