//! Versioned export directories: discovery on TensorFlow Serving's own test
//! fixtures, concurrent exporters, and SIGKILL at random moments.
//!
//! The exporter processes are the `layout_exporter` binary of this package
//! (`tests/src/bin/layout_exporter.rs`); Cargo builds it for this test and
//! passes its path in `CARGO_BIN_EXE_layout_exporter`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use savedmodel_layout::{
    BaseListing, GcOptions, NextVersion, OutsideLinks, PublishMode, REMOVING_PREFIX, VersionPolicy,
    collect_garbage, next_version, publish_dir,
};
use savedmodel_tests::layout_model::{XorShift, check_model, write_model_with_extra_files};
use savedmodel_tests::paths::{files_under, serving_fixtures};

const EXPORTER: &str = env!("CARGO_BIN_EXE_layout_exporter");

fn exporter(args: &[&str]) -> Command {
    let mut command = Command::new(EXPORTER);
    command.args(args);
    command
}

/// Numeric children of `base` (by name).
fn version_names(base: &Path) -> BTreeSet<String> {
    BaseListing::read(base)
        .unwrap()
        .version_children()
        .iter()
        .map(|c| c.name.clone())
        .collect()
}

fn leftover_names(base: &Path) -> BTreeSet<PathBuf> {
    BaseListing::read(base)
        .unwrap()
        .leftovers()
        .iter()
        .map(|c| base.join(&c.name))
        .collect()
}

fn seed_from_clock() -> u64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    std::env::var("LAYOUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(seed)
}

#[test]
fn fixture_versions_are_discovered_as_serving_does() {
    let base = serving_fixtures().join("saved_model_half_plus_two_2_versions");
    let listing = BaseListing::read(&base).unwrap();
    let names = |policy: &str| -> Vec<String> {
        listing
            .aspired(&policy.parse::<VersionPolicy>().unwrap())
            .iter()
            .map(|c| c.name.clone())
            .collect()
    };
    // Serving's tests load these as versions 123 and 124 (leading zeros).
    assert_eq!(names("latest"), ["00000124"]);
    assert_eq!(names("latest:2"), ["00000124", "00000123"]);
    assert_eq!(names("all"), ["00000123", "00000124"]);
    assert_eq!(names("specific:123"), ["00000123"]);
    assert_eq!(listing.highest(), Some(124));
    assert_eq!(next_version(&listing, NextVersion::Increment).unwrap(), 125);
    let err = next_version(&listing, NextVersion::Explicit(123)).unwrap_err();
    assert!(err.to_string().contains("\"00000123\""), "{err}");
}

#[test]
fn publish_dir_copies_a_fixture_byte_for_byte() {
    let src = serving_fixtures().join("saved_model_half_plus_two_2_versions/00000124");
    let base = tempfile::tempdir().unwrap();
    let published = publish_dir(
        &src,
        base.path(),
        NextVersion::Explicit(124),
        PublishMode::Copy,
        OutsideLinks::Refuse,
    )
    .unwrap();
    assert_eq!(published.path, base.path().join("124"));
    let relative = |root: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        files_under(root)
            .into_iter()
            .map(|p| {
                (
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect()
    };
    let copied = relative(&published.path);
    assert!(!copied.is_empty());
    assert_eq!(copied, relative(&src));
    assert!(
        BaseListing::read(base.path())
            .unwrap()
            .leftovers()
            .is_empty()
    );
}

/// Reads the version numbers an exporter printed, one per line.
fn printed_versions(child: Child) -> Vec<i64> {
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "exporter failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn concurrent_exporters_get_distinct_complete_versions() {
    const PROCESSES: usize = 8;
    const PUBLISHES: usize = 10;
    let base = tempfile::tempdir().unwrap();
    let b = base.path().to_str().unwrap();
    let started = Instant::now();
    let done = AtomicBool::new(false);
    let (versions, gc_runs) = std::thread::scope(|scope| {
        // A gc running all the time must never disturb a live exporter.
        let gc = scope.spawn(|| {
            let mut runs = 0;
            while !done.load(Ordering::Relaxed) {
                collect_garbage(base.path(), &GcOptions::default()).unwrap();
                runs += 1;
            }
            runs
        });
        let children: Vec<Child> = (0..PROCESSES)
            .map(|i| {
                exporter(&["publish", b, &PUBLISHES.to_string(), &i.to_string()])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let versions: Vec<i64> = children.into_iter().flat_map(printed_versions).collect();
        done.store(true, Ordering::Relaxed);
        (versions, gc.join().unwrap())
    });
    let distinct: BTreeSet<i64> = versions.iter().copied().collect();
    assert_eq!(versions.len(), PROCESSES * PUBLISHES);
    assert_eq!(distinct.len(), PROCESSES * PUBLISHES, "{versions:?}");
    assert_eq!(distinct, (1..=80).collect());
    let names = version_names(base.path());
    assert_eq!(names.len(), PROCESSES * PUBLISHES);
    for name in &names {
        check_model(&base.path().join(name)).unwrap();
    }
    assert!(leftover_names(base.path()).is_empty());
    eprintln!(
        "{PROCESSES} exporters x {PUBLISHES} publishes with {gc_runs} concurrent gc runs: {:?}",
        started.elapsed()
    );
}

#[test]
fn unix_seconds_exporters_get_distinct_versions() {
    let base = tempfile::tempdir().unwrap();
    let b = base.path().to_str().unwrap();
    let children: Vec<Child> = (0..4)
        .map(|i| {
            exporter(&["publish", b, "3", &i.to_string(), "unix"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let versions: Vec<i64> = children.into_iter().flat_map(printed_versions).collect();
    let distinct: BTreeSet<i64> = versions.iter().copied().collect();
    assert_eq!(distinct.len(), 12, "{versions:?}");
    assert!(distinct.iter().all(|&v| v > 1_700_000_000), "{versions:?}");
}

/// Kills exporters with SIGKILL at random moments; after every kill each
/// numeric child must be a complete model. Then gc removes exactly the dead
/// exporters' staging directories, not a live one's, and no version.
#[test]
fn sigkill_never_exposes_a_partial_version() {
    const KILLS: usize = 120;
    const MAX_DELAY_MS: u64 = 25;
    let seed = seed_from_clock();
    eprintln!("crash test seed {seed} (rerun with LAYOUT_SEED={seed})");
    let mut rng = XorShift::new(seed);
    let base = tempfile::tempdir().unwrap();
    let b = base.path().to_str().unwrap();
    let started = Instant::now();
    let mut checked = BTreeSet::new();
    let mut kills_leaving_staging = 0;
    let mut leftovers_after_last_kill = 0;
    for kill in 0..KILLS {
        let mut child = exporter(&["loop", b, &rng.next_u64().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Mostly short lives, so kills land in every phase of a publish
        // (startup, mkdir, writing, fsync, rename); every eighth exporter
        // lives long enough to finish publishes even on a loaded machine.
        let max_delay_ms = if kill % 8 == 0 {
            4 * MAX_DELAY_MS
        } else {
            MAX_DELAY_MS
        };
        std::thread::sleep(Duration::from_micros(rng.range(0, max_delay_ms * 1000)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if status.signal() != Some(9) {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("exporter {kill} was not killed but ended with {status:?}: {stderr}");
        }
        let leftovers = leftover_names(base.path()).len();
        if leftovers > leftovers_after_last_kill {
            kills_leaving_staging += 1;
        }
        leftovers_after_last_kill = leftovers;
        for name in version_names(base.path()) {
            if checked.contains(&name) {
                continue;
            }
            let dir = base.path().join(&name);
            if let Err(problem) = check_model(&dir) {
                panic!("after kill {kill} (seed {seed}): incomplete version {problem}");
            }
            checked.insert(name);
        }
    }
    let kill_phase = started.elapsed();
    // Published versions never change after the fact: check them all again.
    let versions = version_names(base.path());
    for name in &versions {
        check_model(&base.path().join(name)).unwrap();
    }
    let dead = leftover_names(base.path());
    eprintln!(
        "{KILLS} kills in {kill_phase:?}: {} versions published, {} kills left a staging \
         directory, {} dead staging directories",
        versions.len(),
        kills_leaving_staging,
        dead.len()
    );
    assert!(!versions.is_empty(), "no exporter ever finished a publish");
    assert!(!dead.is_empty(), "no kill landed inside a publish");

    // A live exporter, stopped inside its publish.
    let mut live = exporter(&["hold", b])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(live.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let live_staging = PathBuf::from(line.trim().strip_prefix("staging ").unwrap());
    assert!(live_staging.is_dir());

    let dry = collect_garbage(
        base.path(),
        &GcOptions {
            dry_run: true,
            ..GcOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        dry.removed_leftovers
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
        dead
    );
    assert_eq!(leftover_names(base.path()).len(), dead.len() + 1);

    let report = collect_garbage(base.path(), &GcOptions::default()).unwrap();
    assert_eq!(
        report
            .removed_leftovers
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
        dead
    );
    assert_eq!(report.live_leftovers, std::slice::from_ref(&live_staging));
    assert!(report.removed_versions.is_empty());
    assert_eq!(version_names(base.path()), versions);
    assert_eq!(leftover_names(base.path()), [live_staging.clone()].into());

    // The live exporter finishes its publish undisturbed.
    drop(live.stdin.take());
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let version: i64 = line.trim().parse().unwrap();
    assert!(live.wait().unwrap().success());
    check_model(&base.path().join(version.to_string())).unwrap();
    assert!(leftover_names(base.path()).is_empty());
    eprintln!("crash test total {:?}", started.elapsed());
}

/// Kills `savedmodel_layout::collect_garbage` (in the exporter binary's `gc`
/// mode) with SIGKILL at random moments while it removes versions of many
/// files: a version must never be seen half-deleted under its numeric name,
/// and the next gc removes what the killed one left.
#[test]
fn sigkill_during_gc_never_exposes_a_half_deleted_version() {
    const KILLS: usize = 30;
    const KEEP: usize = 2;
    const EXTRA_FILES: usize = 300;
    let seed = seed_from_clock();
    eprintln!("gc crash test seed {seed} (rerun with LAYOUT_SEED={seed})");
    let mut rng = XorShift::new(seed);
    let base = tempfile::tempdir().unwrap();
    let b = base.path().to_str().unwrap();
    let mut next = 1u64;
    // Versions are made here without fsync (only gc is under test): written
    // under a name Serving ignores, then renamed.
    let mut add_versions = |count: usize| {
        for _ in 0..count {
            let temp = base.path().join(format!("temp-{next}"));
            std::fs::create_dir(&temp).unwrap();
            write_model_with_extra_files(&temp, seed ^ next, EXTRA_FILES).unwrap();
            std::fs::rename(&temp, base.path().join(next.to_string())).unwrap();
            next += 1;
        }
    };
    let removing = |base: &Path| -> BTreeSet<PathBuf> {
        leftover_names(base)
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(REMOVING_PREFIX))
            })
            .collect()
    };
    let started = Instant::now();
    let mut kills_mid_removal = 0;
    let mut finished_before_kill = 0;
    for kill in 0..KILLS {
        let have = version_names(base.path()).len();
        add_versions((KEEP + 4).saturating_sub(have).max(1));
        let before = removing(base.path());
        let mut gc = exporter(&["gc", b, &KEEP.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.range(0, 60_000)));
        gc.kill().unwrap();
        let status = gc.wait().unwrap();
        match status.signal() {
            Some(9) => {}
            _ if status.success() => finished_before_kill += 1,
            _ => {
                let mut stderr = String::new();
                gc.stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                panic!("gc {kill} failed with {status:?}: {stderr}");
            }
        }
        // Each gc first removes the dead removal directories it finds, so
        // count the new ones.
        if !removing(base.path()).is_subset(&before) {
            kills_mid_removal += 1;
        }
        for name in version_names(base.path()) {
            if let Err(problem) = check_model(&base.path().join(&name)) {
                panic!("after gc kill {kill} (seed {seed}): half-deleted version {problem}");
            }
        }
    }
    let dead = removing(base.path()).len();
    eprintln!(
        "{KILLS} gc kills in {:?}: {kills_mid_removal} landed mid-removal, {finished_before_kill} \
         gc runs finished first, {dead} removal directories left",
        started.elapsed()
    );
    assert!(kills_mid_removal > 0, "no kill landed inside a removal");

    // The next gc finishes the job: the dead removal directories go, the
    // latest KEEP versions stay complete.
    let report = collect_garbage(
        base.path(),
        &GcOptions {
            keep_latest: Some(KEEP),
            ..GcOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.removed_leftovers.len(), dead);
    assert!(leftover_names(base.path()).is_empty());
    let names = version_names(base.path());
    assert_eq!(names.len(), KEEP);
    for name in &names {
        check_model(&base.path().join(name)).unwrap();
    }
}
