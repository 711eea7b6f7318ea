//! `savedmodel versions gc` and the temporaries of killed writers: for each
//! writer (checkpoint `BundleWriter`, `ShardedBundleWriter`,
//! `SavedModelBuilder::write_to`, `models.config` edits, `publish`), a real
//! writer process (`tests/src/bin/leftover_writer.rs`) is frozen with
//! SIGSTOP while its temporary exists: gc with no grace period leaves it
//! (the writer holds its lock). Then the writer is killed with SIGKILL:
//! gc with a grace period of an hour still leaves the now dead temporary
//! (it is young), and gc with `--grace 0` removes it, and only it.
//!
//! Also: eight concurrent `savedmodel config add-model` processes keep all
//! eight models (the lock half of issue 17's point 5).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use savedmodel_layout::{BaseListing, LeftoverKind, ModelsConfig, leftover_in_use};
use savedmodel_tests::paths::savedmodel_bin;
use savedmodel_tests::process::{resume, stop};

const WRITER: &str = env!("CARGO_BIN_EXE_leftover_writer");

fn savedmodel(args: &[&str]) -> Output {
    Command::new(savedmodel_bin())
        .args(args)
        .output()
        .expect("running savedmodel")
}

/// Runs `savedmodel ARGS`, asserts it succeeded, returns its stdout.
fn savedmodel_ok(args: &[&str]) -> String {
    let output = savedmodel(args);
    assert!(
        output.status.success(),
        "savedmodel {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The leftover temporaries directly in `dir`.
fn leftovers(dir: &Path) -> BTreeSet<PathBuf> {
    BaseListing::read(dir)
        .unwrap()
        .leftovers()
        .iter()
        .map(|l| dir.join(&l.name))
        .collect()
}

/// Starts `leftover_writer MODE DIR ARG` and waits for its first complete
/// write.
fn start_writer(mode: &str, dir: &Path, arg: &str) -> Child {
    let mut child = Command::new(WRITER)
        .args([mode, dir.to_str().unwrap(), arg])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n", "{mode} writer did not start");
    child
}

/// Freezes `child` at a moment when at least one temporary in `dir` is
/// locked (by it: nothing else writes there); returns those temporaries.
fn freeze_with_a_live_temporary(child: &Child, dir: &Path, mode: &str) -> BTreeSet<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut attempts = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "{mode}: never caught the writer with a temporary ({attempts} tries)"
        );
        if leftovers(dir).is_empty() {
            continue;
        }
        attempts += 1;
        stop(child).unwrap();
        let live: BTreeSet<PathBuf> = leftovers(dir)
            .into_iter()
            .filter(|p| leftover_in_use(p).unwrap())
            .collect();
        if !live.is_empty() {
            return live;
        }
        // Stopped just after the rename, or between creation and lock.
        resume(child).unwrap();
    }
}

/// What `dir` holds, leftovers aside: names and sizes of files, directory
/// names.
fn settled(dir: &Path) -> BTreeSet<String> {
    let temps = leftovers(dir);
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !temps.contains(p))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn check_gc_collects_only_dead_temporaries(mode: &str, dir: &Path, arg: &str) {
    let d = dir.to_str().unwrap();
    let mut child = start_writer(mode, dir, arg);
    let live = freeze_with_a_live_temporary(&child, dir, mode);
    let before = settled(dir);

    // A frozen writer is alive: no grace period, and still nothing of it
    // goes.
    let text = savedmodel_ok(&["versions", "gc", d, "--grace", "0"]);
    for path in &live {
        assert!(path.exists(), "{mode}: gc removed a live writer's {path:?}");
        assert!(
            text.contains(&format!(
                "kept {} (in use by a running process)",
                path.display()
            )),
            "{mode}: {text}"
        );
    }
    let listing = savedmodel_ok(&["versions", d]);
    assert!(listing.contains("in use by a running process"), "{listing}");

    // Killed: dead, but young.
    child.kill().unwrap();
    child.wait().unwrap();
    let dead = leftovers(dir);
    assert!(dead.is_superset(&live), "{mode}: {dead:?} {live:?}");
    for path in &dead {
        assert!(!leftover_in_use(path).unwrap(), "{path:?}");
    }
    let text = savedmodel_ok(&["versions", "gc", d, "--grace", "3600"]);
    for path in &dead {
        assert!(path.exists(), "{mode}: gc removed the young {path:?}");
        assert!(
            text.contains(&format!("kept {} (its writer is gone", path.display())),
            "{mode}: {text}"
        );
    }
    let listing = savedmodel_ok(&["versions", d]);
    assert!(listing.contains("dead, last written"), "{listing}");

    // No grace: exactly the dead temporaries go.
    let text = savedmodel_ok(&["versions", "gc", d, "--grace", "0"]);
    for path in &dead {
        assert!(!path.exists(), "{mode}: gc left {path:?}: {text}");
        assert!(
            text.contains(&format!("removed {} (its writer is gone)", path.display())),
            "{mode}: {text}"
        );
    }
    assert!(leftovers(dir).is_empty(), "{mode}: {:?}", leftovers(dir));
    assert_eq!(settled(dir), before, "{mode}: gc touched something else");
    eprintln!(
        "{mode}: caught {} live, collected {} dead",
        live.len(),
        dead.len()
    );
}

#[test]
fn gc_collects_a_killed_checkpoint_writers_files() {
    let dir = tempfile::tempdir().unwrap();
    check_gc_collects_only_dead_temporaries("bundle", dir.path(), "1");
    // What the writer finished is intact.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(prefix) = name.strip_suffix(".index") {
            let report = savedmodel_checkpoint::verify(dir.path().join(prefix)).unwrap();
            assert!(report.passed(), "{prefix}");
        }
    }
}

#[test]
fn gc_collects_a_killed_sharded_checkpoint_writers_directory() {
    let dir = tempfile::tempdir().unwrap();
    check_gc_collects_only_dead_temporaries("sharded", dir.path(), "2");
}

#[test]
fn gc_collects_a_killed_saved_model_builders_directory() {
    let dir = tempfile::tempdir().unwrap();
    check_gc_collects_only_dead_temporaries("builder", dir.path(), "3");
}

#[test]
fn gc_collects_a_killed_config_save() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("models.config");
    check_gc_collects_only_dead_temporaries_of_config(&config);
    // The config is one of the texts the editor saved, complete.
    let config = ModelsConfig::load(&config).unwrap();
    assert_eq!(config.models().len(), 2000);
}

/// [`check_gc_collects_only_dead_temporaries`] for the `config` writer,
/// whose argument is the config file rather than the directory.
fn check_gc_collects_only_dead_temporaries_of_config(config: &Path) {
    let dir = config.parent().unwrap();
    let d = dir.to_str().unwrap();
    let mut child = start_writer("config", config, "2000");
    let live = freeze_with_a_live_temporary(&child, dir, "config");
    assert!(live.iter().all(|p| {
        let name = p.file_name().unwrap().to_str().unwrap();
        LeftoverKind::from_name(name) == Some(LeftoverKind::ConfigSave)
    }));
    let text = savedmodel_ok(&["versions", "gc", d, "--grace", "0"]);
    assert!(live.iter().all(|p| p.exists()), "{text}");
    child.kill().unwrap();
    child.wait().unwrap();
    let text = savedmodel_ok(&["versions", "gc", d, "--grace", "3600"]);
    assert!(live.iter().all(|p| p.exists()), "{text}");
    let text = savedmodel_ok(&["versions", "gc", d, "--grace", "0"]);
    assert!(live.iter().all(|p| !p.exists()), "{text}");
    assert!(leftovers(dir).is_empty());
    // The lock file is not a leftover: it stays.
    assert!(dir.join(".models.config.lock").exists());
}

#[test]
fn gc_collects_a_killed_publishs_staging_directory() {
    let dir = tempfile::tempdir().unwrap();
    check_gc_collects_only_dead_temporaries("publish", dir.path(), "4");
    let listing = BaseListing::read(dir.path()).unwrap();
    assert!(!listing.version_children().is_empty());
    for child in listing.version_children() {
        savedmodel_tests::layout_model::check_model(&dir.path().join(&child.name)).unwrap();
    }
}

#[test]
fn concurrent_config_add_model_processes_lose_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("models.config");
    let c = config.to_str().unwrap();
    let children: Vec<Child> = (0..8)
        .map(|i| {
            Command::new(savedmodel_bin())
                .args([
                    "config",
                    "add-model",
                    c,
                    &format!("m{i}"),
                    &format!("/models/m{i}"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let names: BTreeSet<String> = ModelsConfig::load(&config)
        .unwrap()
        .models()
        .iter()
        .map(|m| m.name.clone())
        .collect();
    assert_eq!(names, (0..8).map(|i| format!("m{i}")).collect());
}
