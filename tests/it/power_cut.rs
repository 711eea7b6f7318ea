//! Crash consistency beyond SIGKILL: for each write path, the sequence of
//! file-system operations it issues is recorded
//! (`savedmodel_tests::power_cut`, on `savedmodel_staged::trace`) and every
//! state a power cut could leave is built and checked: after any prefix of
//! the operations, with data not yet fsynced lost or torn and directory
//! entries not yet fsynced lost (in order, or one alone). The invariants:
//!
//! * TensorFlow Serving's discovery (our `BaseListing`, which follows
//!   Serving's rules) never sees an incomplete version: every numeric child
//!   is, file for file, a version as it was before the write or as it is
//!   after it;
//! * a checkpoint prefix is the old complete bundle, the new complete one,
//!   or, only while an existing bundle is being replaced, none at all
//!   (no `.index`); never an index with missing or other data files
//!   (`BundleReader` + `verify` pass on whatever is found);
//! * `models.config` (and any single output file) is the old text or the
//!   new one;
//! * once the write path has returned, the state that is on the disk for
//!   sure (everything not durable lost) is the new one.
//!
//! The docs: formats.md, "What is assumed about the disk".

use std::path::{Path, PathBuf};

use savedmodel_checkpoint::convert::{ConvertOptions, ConvertPlan, Format, load_tensors};
use savedmodel_checkpoint::{BundleWriter, ShardedBundleWriter, WriterOptions};
use savedmodel_layout::{
    BaseListing, GcOptions, ModelsConfig, NextVersion, OutsideLinks, PublishMode, collect_garbage,
    publish, publish_dir,
};
use savedmodel_tests::power_cut::{CrashState, Node, Trace, Tree, record, subtree};

/// Checks every crash state of `trace` with `invariant` and fails with the
/// broken ones (and the trace).
fn assert_consistent(
    what: &str,
    trace: &Trace,
    invariant: impl FnMut(&Path, &CrashState) -> Result<(), String>,
) {
    let scratch = tempfile::tempdir().unwrap();
    let report = trace.check(&scratch.path().join("state"), invariant);
    eprintln!(
        "{what}: {} steps, {} distinct crash states checked",
        report.steps, report.states
    );
    assert!(report.states > 0);
    assert!(
        report.failed == 0,
        "{what}: {} of {} crash states broke the invariant:\n{}\nsteps:\n{}",
        report.failed,
        report.states,
        report.failures.join("\n"),
        trace.describe()
    );
}

/// A small SavedModel-shaped directory (no TensorFlow needed: the
/// invariants compare bytes).
fn write_small_model(dir: &Path, seed: u8) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("variables"))?;
    std::fs::create_dir_all(dir.join("assets"))?;
    std::fs::write(dir.join("saved_model.pb"), vec![seed; 700])?;
    std::fs::write(dir.join("variables/variables.index"), vec![seed ^ 1; 90])?;
    std::fs::write(
        dir.join("variables/variables.data-00000-of-00001"),
        vec![seed ^ 2; 1500],
    )?;
    std::fs::write(dir.join("assets/vocab.txt"), b"a\nb\n")?;
    Ok(())
}

/// Serving's discovery of `base` never shows an incomplete version: each
/// numeric child equals that version before or after the write; after the
/// write returned, the versions are exactly those after it.
fn serving_sees_complete_versions(
    base: &Path,
    before: &Tree,
    after: &Tree,
) -> impl FnMut(&Path, &CrashState) -> Result<(), String> + use<> {
    let (base, before, after) = (base.to_path_buf(), before.clone(), after.clone());
    let versions_after: Vec<String> = {
        let mut names: Vec<String> = after
            .keys()
            .filter(|p| p.parent() == Some(base.as_path()))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .filter(|n| savedmodel_layout::parse_version(n.as_bytes()).is_some())
            .collect();
        names.sort();
        names
    };
    move |root, state| {
        if !root.join(&base).exists() {
            // Serving logs "Could not find base path" and loads nothing.
            if state.done && !versions_after.is_empty() {
                return Err("after return the base path is gone".into());
            }
            return Ok(());
        }
        let listing = BaseListing::read(&root.join(&base)).map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        for child in listing.version_children() {
            let rel = base.join(&child.name);
            let now = subtree(&state.tree, &rel);
            let was = (before.get(&rel) == Some(&Node::Dir)).then(|| subtree(&before, &rel));
            let will = (after.get(&rel) == Some(&Node::Dir)).then(|| subtree(&after, &rel));
            if state.tree.get(&rel) != Some(&Node::Dir)
                || (was.as_ref() != Some(&now) && will.as_ref() != Some(&now))
            {
                return Err(format!(
                    "Serving sees version {} incomplete or changed: {:?}",
                    child.name,
                    now.keys().collect::<Vec<_>>()
                ));
            }
            if !listing.holds_saved_model(child) {
                return Err(format!("version {} holds no saved_model.pb", child.name));
            }
            seen.push(child.name.clone());
        }
        seen.sort();
        if state.done && seen != versions_after {
            return Err(format!(
                "after return the disk holds versions {seen:?}, not {versions_after:?}"
            ));
        }
        Ok(())
    }
}

/// The bundle files of `prefix` in `tree`: `<prefix>.index` and the data
/// files.
fn bundle_files(tree: &Tree, prefix: &Path) -> (Option<Node>, Vec<(PathBuf, Node)>) {
    let dir = prefix.parent().unwrap();
    let name = prefix.file_name().unwrap().to_str().unwrap();
    let data = format!("{name}.data-");
    let index = tree.get(&dir.join(format!("{name}.index"))).cloned();
    let files = tree
        .iter()
        .filter(|(p, _)| {
            p.parent() == Some(dir)
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&data) && !n.contains(".tempstate"))
        })
        .map(|(p, n)| (p.clone(), n.clone()))
        .collect();
    (index, files)
}

/// The checkpoint at `prefix` is the old complete one, the new complete
/// one, or absent (no index); the reader and `verify` agree.
fn checkpoint_is_old_or_new(
    prefix: &Path,
    before: &Tree,
    after: &Tree,
) -> impl FnMut(&Path, &CrashState) -> Result<(), String> + use<> {
    let prefix = prefix.to_path_buf();
    let old = bundle_files(before, &prefix);
    let new = bundle_files(after, &prefix);
    assert!(new.0.is_some(), "the write made no index");
    move |root, state| {
        let (index, files) = bundle_files(&state.tree, &prefix);
        let Some(index) = index else {
            if state.done {
                return Err("after return the disk holds no checkpoint".into());
            }
            return Ok(());
        };
        let matches = |(want_index, want_files): &(Option<Node>, Vec<(PathBuf, Node)>)| {
            want_index.as_ref() == Some(&index) && want_files.iter().all(|f| files.contains(f))
        };
        let is_new = matches(&new);
        if !is_new && !matches(&old) {
            return Err(format!(
                "the index is there but the bundle is neither the old nor the new one: {:?}",
                files.iter().map(|(p, _)| p).collect::<Vec<_>>()
            ));
        }
        if state.done && !is_new {
            return Err("after return the disk holds the old checkpoint".into());
        }
        let report = savedmodel_checkpoint::verify(root.join(&prefix))
            .map_err(|e| format!("the reader refuses the checkpoint: {e}"))?;
        if !report.passed() {
            return Err(format!("verify finds {} faults", report.faults()));
        }
        Ok(())
    }
}

/// The file at `path` holds its old content (or is absent, when it was
/// before) or its new content.
fn file_is_old_or_new(
    path: &Path,
    before: &Tree,
    after: &Tree,
) -> impl FnMut(&Path, &CrashState) -> Result<(), String> + use<> {
    let path = path.to_path_buf();
    let old = before.get(&path).cloned();
    let new = after.get(&path).cloned();
    assert!(matches!(new, Some(Node::File(_))), "the write made no file");
    move |_, state| {
        let now = state.tree.get(&path).cloned();
        if state.done && now != new {
            return Err(format!(
                "after return {} is not the new one",
                path.display()
            ));
        }
        if now != old && now != new {
            let len = match &now {
                Some(Node::File(b)) => b.data().len().to_string(),
                other => format!("{other:?}"),
            };
            return Err(format!(
                "{} is neither the old nor the new one ({len} bytes)",
                path.display()
            ));
        }
        Ok(())
    }
}

fn rel(p: &str) -> PathBuf {
    PathBuf::from(p)
}

#[test]
fn publish_survives_a_power_cut() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("models/m");
    std::fs::create_dir_all(&base).unwrap();
    publish(&base, NextVersion::Increment, |d| write_small_model(d, 1)).unwrap();
    let (published, trace) = record(root.path(), || {
        publish(&base, NextVersion::Increment, |d| write_small_model(d, 2))
    });
    assert_eq!(published.unwrap().version, 2);
    let check =
        serving_sees_complete_versions(&rel("models/m"), trace.initial(), trace.final_tree());
    assert_consistent("publish", &trace, check);
}

#[test]
fn publish_dir_survives_a_power_cut() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("models/m");
    std::fs::create_dir_all(&base).unwrap();
    for (mode, seed) in [(PublishMode::Copy, 3), (PublishMode::Move, 4)] {
        let src = root.path().join(format!("export-{seed}"));
        write_small_model(&src, seed).unwrap();
        let (published, trace) = record(root.path(), || {
            publish_dir(
                &src,
                &base,
                NextVersion::Increment,
                mode,
                OutsideLinks::Refuse,
            )
        });
        published.unwrap();
        let check =
            serving_sees_complete_versions(&rel("models/m"), trace.initial(), trace.final_tree());
        assert_consistent(&format!("publish_dir {mode:?}"), &trace, check);
    }
}

#[test]
fn models_config_edits_survive_a_power_cut() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("models.config");
    // Created, then edited.
    for name in ["a", "b"] {
        let (edited, trace) = record(root.path(), || {
            ModelsConfig::edit(&config, true, |c| {
                c.add_model(name, &format!("/models/{name}"), "tensorflow")
            })
        });
        edited.unwrap();
        let check = file_is_old_or_new(&rel("models.config"), trace.initial(), trace.final_tree());
        assert_consistent(&format!("models.config add {name}"), &trace, check);
    }
}

fn write_bundle(prefix: &Path, seed: f32) -> savedmodel_checkpoint::Result<()> {
    let mut writer = BundleWriter::create(prefix)?;
    writer.add_typed("bias", &[4], &[seed, seed + 1.0, seed + 2.0, seed + 3.0])?;
    writer.add_typed("kernel", &[8, 8], &[seed; 64])?;
    writer.add_strings("vocab", &[2], &["a", "b"])?;
    writer.finish()
}

#[test]
fn the_checkpoint_writer_survives_a_power_cut() {
    let root = tempfile::tempdir().unwrap();
    let prefix = root.path().join("ckpt/model");
    // A new bundle in a new directory, then one replacing it.
    for seed in [1.0, 2.0] {
        let (written, trace) = record(root.path(), || write_bundle(&prefix, seed));
        written.unwrap();
        let check =
            checkpoint_is_old_or_new(&rel("ckpt/model"), trace.initial(), trace.final_tree());
        assert_consistent(&format!("BundleWriter (seed {seed})"), &trace, check);
    }
}

#[test]
fn the_sharded_checkpoint_writer_survives_a_power_cut() {
    let root = tempfile::tempdir().unwrap();
    let prefix = root.path().join("ckpt/sharded");
    for seed in [1.0f32, 2.0] {
        let (written, trace) = record(root.path(), || {
            let mut writer = ShardedBundleWriter::create(&prefix, 2, WriterOptions::default())?;
            for (i, shard) in writer.shards_mut().iter_mut().enumerate() {
                shard.add_typed(format!("w{i}"), &[3], &[seed; 3])?;
            }
            writer.finish()
        });
        written.unwrap();
        let check =
            checkpoint_is_old_or_new(&rel("ckpt/sharded"), trace.initial(), trace.final_tree());
        assert_consistent(&format!("ShardedBundleWriter (seed {seed})"), &trace, check);
    }
}

#[test]
fn the_saved_model_builder_survives_a_power_cut() {
    use savedmodel::{DType, Graph, MetaGraphBuilder, SavedModelBuilder, Tensor};
    let root = tempfile::tempdir().unwrap();
    let vocab = root.path().join("vocab.txt");
    std::fs::write(&vocab, "a\nb\n").unwrap();
    let mut g = Graph::new();
    let x = g.placeholder("x", DType::Float, [-1, 4]).unwrap();
    let w = g
        .variable("w", Tensor::new(&[4, 2], &[0.5f32; 8]).unwrap())
        .unwrap();
    let y = g.matmul("y", &x, w.value()).unwrap();
    let a = g.asset("vocab", &vocab).unwrap();
    let t = g.string_to_index_table_from_asset("t", &a, -1).unwrap();
    let words = g.placeholder("words", DType::String, [-1]).unwrap();
    let ids = g.lookup("ids", &t, &words).unwrap();
    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature(
        "serving_default",
        &[("x", &x), ("words", &words)],
        &[("y", &y), ("ids", &ids)],
    )
    .unwrap();
    let mut builder = SavedModelBuilder::new();
    builder
        .add_meta_graph(meta)
        .unwrap()
        .asset_extra("notes/deep/readme.txt", "nested")
        .unwrap()
        .fingerprint(true);
    let (written, trace) = record(root.path(), || {
        builder.write_to(root.path().join("models/m/1"))
    });
    written.unwrap();
    let check =
        serving_sees_complete_versions(&rel("models/m"), trace.initial(), trace.final_tree());
    assert_consistent("SavedModelBuilder::write_to", &trace, check);
}

#[test]
fn convert_survives_a_power_cut() {
    let root = tempfile::tempdir().unwrap();
    let source = root.path().join("source/model");
    write_bundle(&source, 5.0).unwrap();
    let tensors = load_tensors(&source).unwrap();
    let mut options = ConvertOptions::default();
    options.skip_unsupported = true; // .safetensors has no strings
    for (format, target) in [
        (Format::SafeTensors, "out/model.safetensors"),
        (Format::Npz, "out/model.npz"),
        (Format::TensorBundle, "out/ckpt/model"),
    ] {
        let plan = ConvertPlan::new(&tensors, format, &options).unwrap();
        let (written, trace) = record(root.path(), || {
            plan.write(root.path().join(target), &mut |_, _| {})
        });
        written.unwrap();
        let what = format!("convert to {}", format.name());
        if format == Format::TensorBundle {
            let check = checkpoint_is_old_or_new(&rel(target), trace.initial(), trace.final_tree());
            assert_consistent(&what, &trace, check);
        } else {
            let check = file_is_old_or_new(&rel(target), trace.initial(), trace.final_tree());
            assert_consistent(&what, &trace, check);
        }
    }
}

#[test]
fn gc_survives_a_power_cut() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("models/m");
    std::fs::create_dir_all(&base).unwrap();
    for seed in 1..=3 {
        publish(&base, NextVersion::Increment, |d| {
            write_small_model(d, seed)
        })
        .unwrap();
    }
    // What a killed exporter left.
    let dead = base.join(".savedmodel-staging-1-00000000deadbeef");
    write_small_model(&dead, 9).unwrap();
    let options = GcOptions {
        keep_latest: Some(1),
        ..GcOptions::default()
    };
    let (report, trace) = record(root.path(), || collect_garbage(&base, &options));
    let report = report.unwrap();
    assert_eq!(report.removed_versions.len(), 2);
    assert_eq!(report.removed_leftovers, [dead]);
    let check =
        serving_sees_complete_versions(&rel("models/m"), trace.initial(), trace.final_tree());
    assert_consistent("versions gc", &trace, check);
}

/// The simulator finds what it should: a writer that renames before it
/// fsyncs, and one that never fsyncs the directory.
#[test]
fn the_simulator_catches_a_careless_writer() {
    let root = tempfile::tempdir().unwrap();
    let target = root.path().join("config.txt");
    std::fs::write(&target, b"old").unwrap();
    // Renamed without fsyncing the file first: the new name may come with
    // empty or torn content.
    let (_, trace) = record(root.path(), || {
        let temp = root.path().join("config.txt.tmp");
        std::fs::write(&temp, b"new content").unwrap();
        savedmodel_staged::rename(&temp, &target).unwrap();
        savedmodel_staged::sync_dir(root.path()).unwrap();
    });
    let scratch = tempfile::tempdir().unwrap();
    let report = trace.check(
        scratch.path(),
        file_is_old_or_new(&rel("config.txt"), trace.initial(), trace.final_tree()),
    );
    assert!(report.failed > 0, "{report:?}");
    // Fsynced, renamed, but the directory never fsynced: after return the
    // rename may still be lost.
    let (_, trace) = record(root.path(), || {
        let temp = root.path().join("config.txt.tmp");
        std::fs::write(&temp, b"newer").unwrap();
        let file = std::fs::File::open(&temp).unwrap();
        savedmodel_staged::sync_file(&file, &temp).unwrap();
        savedmodel_staged::rename(&temp, &target).unwrap();
    });
    let report = trace.check(
        scratch.path(),
        file_is_old_or_new(&rel("config.txt"), trace.initial(), trace.final_tree()),
    );
    assert_eq!(report.failed, 1, "{report:?}");
    assert!(report.failures[0].contains("after return"), "{report:?}");
}
