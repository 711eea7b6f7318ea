//! The mutation sweep: byte flips and truncations of every TensorFlow
//! Serving fixture's `saved_model.pb`, `variables/variables.index` and data
//! files, each mutant checked by what `savedmodel validate`, `savedmodel
//! show` and `savedmodel ckpt verify` run. Every mutant must give a clean
//! result or a clean error: no panic, and no single allocation above
//! [`MAX_ALLOCATION`] (the fixtures are under 40 KB). A flipped or cut data
//! file must be reported by `validate` itself (it checks every tensor's
//! CRC32C), not only by `ckpt verify`.
//!
//! Mutants are copies in a temporary directory, never the fixtures. Data
//! files get every byte flipped (they are at most a few hundred bytes);
//! the other files a sample drawn by a seeded generator, so every run
//! checks the same mutants.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use savedmodel::validate::{Report, ValidateOptions, validate};
use savedmodel::{SavedModel, show};
use savedmodel_tests::paths::{files_under, serving_fixtures};

/// The largest single allocation a mutant may cause.
const MAX_ALLOCATION: usize = 4 << 20;

/// Sampled flips and truncations per `saved_model.pb` and `.index` file.
const SAMPLED_FLIPS: usize = 24;
const SAMPLED_TRUNCATIONS: usize = 8;

thread_local! {
    /// `Some(largest request so far)` while [`largest_allocation`] runs on
    /// this thread. A `const` `Cell` has no destructor and needs no
    /// allocation, so the allocator may touch it.
    static LARGEST: Cell<Option<usize>> = const { Cell::new(None) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|largest| {
        if let Some(max) = largest.get() {
            largest.set(Some(max.max(size)));
        }
    });
}

/// The test binary's allocator: the system's, noting the largest request
/// on threads running [`largest_allocation`]. (The same probe as
/// `savedmodel-checkpoint`'s unit tests, `crates/checkpoint/src/tests/
/// alloc_probe.rs`: a test binary has one allocator, declared in it.)
struct Probe;

// SAFETY: every method forwards its arguments unchanged to `System`, which
// implements `GlobalAlloc` correctly; `note` only reads and writes a
// thread-local `Cell` and never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Probe {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which
        // is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `ptr` was allocated by this allocator, that is by `System`,
        // with `layout`; the caller upholds the rest of `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this allocator)
        // with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static PROBE: Probe = Probe;

/// Runs `f` and returns its result with the size of the largest single
/// allocation (or reallocation) it requested on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let outer = LARGEST.with(|largest| largest.replace(Some(0)));
    let result = f();
    let inner = LARGEST.with(|largest| largest.replace(outer)).unwrap_or(0);
    if let Some(outer) = outer {
        LARGEST.with(|largest| largest.set(Some(outer.max(inner))));
    }
    (result, inner)
}

/// splitmix64: a fixed sequence from a fixed seed, without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A non-zero XOR mask.
    fn mask(&mut self) -> u8 {
        (self.next() % 255) as u8 + 1
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Model,
    Index,
    Data,
}

#[derive(Debug)]
enum Mutation {
    Flip { offset: usize, mask: u8 },
    Truncate { len: usize },
}

impl Mutation {
    fn apply(&self, original: &[u8]) -> Vec<u8> {
        match *self {
            Mutation::Flip { offset, mask } => {
                let mut bytes = original.to_vec();
                bytes[offset] ^= mask;
                bytes
            }
            Mutation::Truncate { len } => original[..len].to_vec(),
        }
    }
}

/// The mutants of one file of `len` bytes.
fn mutations(kind: Kind, len: usize, rng: &mut Rng) -> Vec<Mutation> {
    if len == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    if kind == Kind::Data {
        for offset in 0..len {
            out.push(Mutation::Flip {
                offset,
                mask: rng.mask(),
            });
        }
    } else {
        for _ in 0..SAMPLED_FLIPS {
            out.push(Mutation::Flip {
                offset: rng.below(len),
                mask: rng.mask(),
            });
        }
    }
    out.push(Mutation::Truncate { len: 0 });
    out.push(Mutation::Truncate { len: len - 1 });
    for _ in 0..SAMPLED_TRUNCATIONS {
        out.push(Mutation::Truncate {
            len: rng.below(len),
        });
    }
    out
}

/// What the three commands made of one model directory.
struct Outcome {
    report: Report,
    verify_passed: bool,
}

/// `savedmodel validate`, `savedmodel show` (every view) and `savedmodel
/// ckpt verify` on `dir`.
fn check(dir: &Path) -> Outcome {
    let report = validate(dir, &ValidateOptions::default());
    let _ = report.to_string();
    if let Ok(model) = SavedModel::open(dir) {
        let _ = show::tag_sets(&model);
        let _ = show::all(&model);
        let _ = show::concrete_functions(&model);
        for meta_graph in model.meta_graphs() {
            let _ = show::ops(&meta_graph);
            let _ = show::signature_keys(&meta_graph);
            for key in meta_graph.signature_keys() {
                let _ = show::signature(&meta_graph, &key);
            }
        }
    }
    let prefix = dir.join("variables/variables");
    let verify_passed = match savedmodel_checkpoint::verify(&prefix) {
        Ok(report) => report.passed(),
        Err(_) => false,
    };
    Outcome {
        report,
        verify_passed,
    }
}

fn copy_model(from: &Path, to: &Path) {
    for file in files_under(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(&file, &target).unwrap();
    }
}

/// The fixture directories holding a `saved_model.pb`.
fn fixture_models() -> Vec<PathBuf> {
    let mut models: Vec<PathBuf> = files_under(&serving_fixtures())
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "saved_model.pb"))
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    models.sort();
    models
}

#[test]
fn mutated_fixtures_give_clean_results_or_clean_errors() {
    let models = fixture_models();
    assert!(models.len() >= 12, "only {} fixture models", models.len());
    let scratch = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5eed_f122_0017_0007);
    let mut failures = Vec::new();
    let mut mutants = 0usize;
    let mut data_mutants = 0usize;
    let mut largest_seen = 0usize;
    for (m, fixture) in models.iter().enumerate() {
        let name = fixture
            .strip_prefix(serving_fixtures())
            .unwrap()
            .display()
            .to_string();
        let dir = scratch.path().join(format!("model{m}"));
        copy_model(fixture, &dir);
        // Unmutated first: it loads the op registry and other lazy state
        // outside the probe, and the fixtures' own data verifies.
        let baseline = check(&dir);
        if dir.join("variables/variables.index").exists() {
            assert!(
                baseline.verify_passed,
                "{name}: the fixture does not verify"
            );
            assert!(
                !baseline
                    .report
                    .errors()
                    .any(|f| f.location.starts_with("variables/")),
                "{name}: the unmutated fixture has variable errors:\n{}",
                baseline.report
            );
        }
        let mut files: Vec<(Kind, PathBuf)> = vec![(Kind::Model, dir.join("saved_model.pb"))];
        let variables = dir.join("variables");
        if variables.is_dir() {
            for file in files_under(&variables) {
                let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
                if file_name.ends_with(".index") {
                    files.push((Kind::Index, file));
                } else if file_name.contains(".data-") {
                    files.push((Kind::Data, file));
                }
            }
        }
        for (kind, path) in files {
            let original = fs::read(&path).unwrap();
            let relative = path.strip_prefix(&dir).unwrap().display().to_string();
            for mutation in mutations(kind, original.len(), &mut rng) {
                fs::write(&path, mutation.apply(&original)).unwrap();
                mutants += 1;
                let what = format!("{name}/{relative} {mutation:?}");
                let (outcome, largest) =
                    largest_allocation(|| catch_unwind(AssertUnwindSafe(|| check(&dir))));
                largest_seen = largest_seen.max(largest);
                if largest > MAX_ALLOCATION {
                    failures.push(format!("{what}: allocated {largest} bytes at once"));
                }
                let outcome = match outcome {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        failures.push(format!("{what}: panicked"));
                        continue;
                    }
                };
                if kind == Kind::Data {
                    data_mutants += 1;
                    // Every byte of a data file belongs to a tensor, so any
                    // flip or cut breaks a CRC or a size.
                    let reported = outcome
                        .report
                        .errors()
                        .any(|f| f.location.starts_with("variables/"));
                    if !reported {
                        failures.push(format!(
                            "{what}: validate does not report it:\n{}",
                            outcome.report
                        ));
                    }
                    if outcome.verify_passed {
                        failures.push(format!("{what}: ckpt verify passes"));
                    }
                }
            }
            fs::write(&path, &original).unwrap();
        }
    }
    println!(
        "{mutants} mutants of {} fixture models ({data_mutants} of data files); \
         largest single allocation {largest_seen} bytes",
        models.len()
    );
    assert!(data_mutants > 500, "only {data_mutants} data-file mutants");
    assert!(
        failures.is_empty(),
        "{} of {mutants} mutants failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
