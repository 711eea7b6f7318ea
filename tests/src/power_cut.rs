//! A power-cut simulator in the spirit of ALICE (Pillai et al., OSDI 2014)
//! and CrashMonkey (Mohan et al., OSDI 2018), for the workspace's write
//! paths.
//!
//! [`record`] runs a write path with a recorder installed in
//! `savedmodel-staged` ([`savedmodel_staged::trace`]): every fsync of a
//! file or directory and every rename under a root directory is reported
//! just before and just after it happens. Before each one the recorder
//! compares the tree under the root with what it last saw and logs the
//! differences as the operations that made them (mkdir, create, write,
//! symlink, unlink); after it, it logs the operation itself. The result is
//! a [`Trace`]: the starting tree and the sequence of steps.
//!
//! [`Trace::crash_states`] then lists every state a power cut could leave
//! on the disk, under this model of the file system (what POSIX promises
//! and Linux file systems deliver, without ext4's extra ordering):
//!
//! * the cut comes after any prefix of the steps (every point `k`);
//! * a file's content as of its last fsync survives; content written since
//!   may be lost or torn: the file then holds its durable content, its
//!   newest content, the newest truncated to half, or the newest with its
//!   second half zeroed (never-fsynced files are empty when lost);
//! * a namespace step (mkdir, create, symlink, unlink, rename) survives for
//!   sure once the directory it changed (for a rename, the target's
//!   directory) has been fsynced after it. The ones not yet made durable
//!   may be lost: all of them kept, any prefix of them kept (a journaling
//!   file system that commits in order), or any one of them lost alone
//!   (reordering, as POSIX allows). A step whose source or parent was lost
//!   is lost with it (a rename of a file whose creation was lost, a file in
//!   a directory whose mkdir was lost);
//! * a rename is atomic: the old name or the new one, never both or
//!   neither.
//!
//! The initial tree counts as durable. States that come out identical are
//! checked once. [`Trace::check`] writes each state into a scratch
//! directory and runs the caller's invariant on it.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use savedmodel_staged::trace::{Op, Recorder, register};

/// A file's bytes, shared, with a hash that identifies them.
#[derive(Clone, Debug)]
pub struct Bytes {
    data: Arc<[u8]>,
    id: u64,
}

impl Bytes {
    fn new(data: Vec<u8>) -> Self {
        let mut h = DefaultHasher::new();
        data.hash(&mut h);
        Bytes {
            id: h.finish(),
            data: data.into(),
        }
    }

    /// The bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

impl PartialEq for Bytes {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.data == other.data
    }
}

/// What a path in a tree is.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A directory.
    Dir,
    /// A regular file and its bytes.
    File(Bytes),
    /// A symbolic link and its target.
    Symlink(PathBuf),
}

/// A tree of files: relative path to node (directories included, the root
/// not).
pub type Tree = BTreeMap<PathBuf, Node>;

/// Reads the tree under `root` (symbolic links not followed).
pub fn read_tree(root: &Path) -> Tree {
    let mut tree = Tree::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let rel = dir.join(entry.file_name());
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let node = if kind.is_dir() {
                dirs.push(rel.clone());
                Node::Dir
            } else if kind.is_symlink() {
                match std::fs::read_link(entry.path()) {
                    Ok(target) => Node::Symlink(target),
                    Err(_) => continue,
                }
            } else {
                match std::fs::read(entry.path()) {
                    Ok(data) => Node::File(Bytes::new(data)),
                    Err(_) => continue,
                }
            };
            tree.insert(rel, node);
        }
    }
    tree
}

/// The part of `tree` under `dir`, with paths relative to `dir`.
pub fn subtree(tree: &Tree, dir: &Path) -> Tree {
    tree.iter()
        .filter_map(|(p, n)| {
            let rel = p.strip_prefix(dir).ok()?;
            (!rel.as_os_str().is_empty()).then(|| (rel.to_path_buf(), n.clone()))
        })
        .collect()
}

type Ino = usize;
/// The root directory's inode.
const ROOT: Ino = 0;

/// What an inode is.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
}

/// One logged operation.
#[derive(Clone, Debug)]
enum Step {
    /// `mkdir`.
    Mkdir {
        /// Where.
        path: PathBuf,
        /// The new directory's inode.
        ino: Ino,
    },
    /// A new, empty regular file.
    Create {
        /// Where.
        path: PathBuf,
        /// The new file's inode.
        ino: Ino,
    },
    /// A new symbolic link.
    Symlink {
        /// Where.
        path: PathBuf,
        /// Its inode.
        ino: Ino,
    },
    /// A file's content became `bytes` (written, not yet durable).
    Write {
        /// The file.
        ino: Ino,
        /// Its whole new content.
        bytes: Bytes,
    },
    /// `unlink` or `rmdir` (a directory with everything under it).
    Remove {
        /// The name removed.
        path: PathBuf,
    },
    /// `rename`.
    Rename {
        /// The old name.
        from: PathBuf,
        /// The new name (replacing what was there).
        to: PathBuf,
    },
    /// `fsync` of a file.
    SyncFile {
        /// The file.
        ino: Ino,
    },
    /// `fsync` of a directory.
    SyncDir {
        /// The directory.
        ino: Ino,
    },
}

impl Step {
    fn describe(&self) -> String {
        match self {
            Step::Mkdir { path, .. } => format!("mkdir {}", path.display()),
            Step::Create { path, .. } => format!("create {}", path.display()),
            Step::Symlink { path, .. } => format!("symlink {}", path.display()),
            Step::Write { ino, bytes } => format!("write #{ino} ({} bytes)", bytes.data.len()),
            Step::Remove { path } => format!("remove {}", path.display()),
            Step::Rename { from, to } => format!("rename {} -> {}", from.display(), to.display()),
            Step::SyncFile { ino } => format!("fsync file #{ino}"),
            Step::SyncDir { ino } => format!("fsync dir #{ino}"),
        }
    }
}

/// The namespace of a file system: names to inodes.
#[derive(Clone, Debug, Default)]
struct Names {
    map: BTreeMap<PathBuf, Ino>,
}

impl Names {
    fn parent_ino(&self, path: &Path) -> Option<Ino> {
        match path.parent() {
            Some(p) if p.as_os_str().is_empty() => Some(ROOT),
            Some(p) => self.map.get(p).copied(),
            None => None,
        }
    }

    fn is_dir(&self, ino: Ino, kinds: &[Kind]) -> bool {
        ino == ROOT || kinds[ino] == Kind::Dir
    }

    /// Removes `path` and everything under it.
    fn remove_tree(&mut self, path: &Path) {
        let doomed: Vec<PathBuf> = self
            .map
            .range(path.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(path))
            .map(|(p, _)| p.clone())
            .collect();
        for p in doomed {
            self.map.remove(&p);
        }
    }

    /// Applies a namespace step; `false` (and no change) when it cannot
    /// apply (a parent or source is missing).
    fn apply(&mut self, step: &Step, kinds: &[Kind]) -> bool {
        match step {
            Step::Mkdir { path, ino }
            | Step::Create { path, ino }
            | Step::Symlink { path, ino } => match self.parent_ino(path) {
                Some(parent) if self.is_dir(parent, kinds) && !self.map.contains_key(path) => {
                    self.map.insert(path.clone(), *ino);
                    true
                }
                _ => false,
            },
            Step::Remove { path } => {
                if !self.map.contains_key(path) {
                    return false;
                }
                self.remove_tree(path);
                true
            }
            Step::Rename { from, to } => {
                if !self.map.contains_key(from) || from == to {
                    return false;
                }
                match self.parent_ino(to) {
                    Some(parent) if self.is_dir(parent, kinds) => {}
                    _ => return false,
                }
                if to.starts_with(from) {
                    return false;
                }
                let moved: Vec<(PathBuf, Ino)> = self
                    .map
                    .range(from.clone()..)
                    .take_while(|(p, _)| p.starts_with(from))
                    .map(|(p, i)| (p.clone(), *i))
                    .collect();
                self.remove_tree(to);
                for (p, _) in &moved {
                    self.map.remove(p);
                }
                for (p, i) in moved {
                    let rest = p.strip_prefix(from).unwrap_or(Path::new(""));
                    let new = if rest.as_os_str().is_empty() {
                        to.clone()
                    } else {
                        to.join(rest)
                    };
                    self.map.insert(new, i);
                }
                true
            }
            Step::Write { .. } | Step::SyncFile { .. } | Step::SyncDir { .. } => true,
        }
    }
}

/// The recorder's view of the volatile file system.
#[derive(Default)]
struct Live {
    names: Names,
    kinds: Vec<Kind>,
    content: HashMap<Ino, Bytes>,
    steps: Vec<Step>,
    /// For each namespace step, the directory whose fsync makes it
    /// durable.
    durable_by: Vec<Option<Ino>>,
}

impl Live {
    fn new_ino(&mut self, kind: Kind) -> Ino {
        self.kinds.push(kind);
        self.kinds.len() - 1
    }

    fn push(&mut self, step: Step) {
        let durable_by = match &step {
            Step::Mkdir { path, .. }
            | Step::Create { path, .. }
            | Step::Symlink { path, .. }
            | Step::Remove { path } => self.names.parent_ino(path),
            Step::Rename { to, .. } => self.names.parent_ino(to),
            _ => None,
        };
        if let Step::Write { ino, bytes } = &step {
            self.content.insert(*ino, bytes.clone());
        }
        self.names.apply(&step, &self.kinds);
        self.steps.push(step);
        self.durable_by.push(durable_by);
    }

    /// Logs the differences between what was last seen and `disk`.
    fn catch_up(&mut self, disk: &Tree) {
        // Removals, deepest first.
        let mut gone: Vec<PathBuf> = self
            .names
            .map
            .iter()
            .filter(|(p, ino)| match disk.get(*p) {
                None => true,
                Some(node) => !same_kind(node, &self.kinds[**ino]),
            })
            .map(|(p, _)| p.clone())
            .collect();
        gone.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for path in gone {
            if self.names.map.contains_key(&path) {
                self.push(Step::Remove { path });
            }
        }
        // Additions, shallowest first (a BTreeMap lists parents first);
        // then content changes.
        for (path, node) in disk {
            if self.names.map.contains_key(path) {
                continue;
            }
            match node {
                Node::Dir => {
                    let ino = self.new_ino(Kind::Dir);
                    self.push(Step::Mkdir {
                        path: path.clone(),
                        ino,
                    });
                }
                Node::Symlink(target) => {
                    let ino = self.new_ino(Kind::Symlink(target.clone()));
                    self.push(Step::Symlink {
                        path: path.clone(),
                        ino,
                    });
                }
                Node::File(_) => {
                    let ino = self.new_ino(Kind::File);
                    self.content.insert(ino, Bytes::new(Vec::new()));
                    self.push(Step::Create {
                        path: path.clone(),
                        ino,
                    });
                }
            }
        }
        for (path, node) in disk {
            if let (Node::File(bytes), Some(&ino)) = (node, self.names.map.get(path)) {
                if self.content.get(&ino) != Some(bytes) {
                    self.push(Step::Write {
                        ino,
                        bytes: bytes.clone(),
                    });
                }
            }
        }
    }
}

fn same_kind(node: &Node, kind: &Kind) -> bool {
    match (node, kind) {
        (Node::Dir, Kind::Dir) | (Node::File(_), Kind::File) => true,
        (Node::Symlink(a), Kind::Symlink(b)) => a == b,
        _ => false,
    }
}

/// The [`Recorder`] behind [`record`].
struct Recording {
    root: PathBuf,
    live: Mutex<Live>,
}

impl Recording {
    fn rel(&self, path: &Path) -> Option<PathBuf> {
        let abs = std::path::absolute(path).ok()?;
        abs.strip_prefix(&self.root).ok().map(Path::to_path_buf)
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Recorder for Recording {
    fn before(&self, _op: &Op<'_>) {
        let disk = read_tree(&self.root);
        self.live().catch_up(&disk);
    }

    fn after(&self, op: &Op<'_>) {
        let mut live = self.live();
        let ino_of = |live: &Live, p: Option<PathBuf>| -> Option<Ino> {
            let p = p?;
            if p.as_os_str().is_empty() {
                Some(ROOT)
            } else {
                live.names.map.get(&p).copied()
            }
        };
        match *op {
            Op::SyncFile(p) => {
                if let Some(ino) = ino_of(&live, self.rel(p)) {
                    live.push(Step::SyncFile { ino });
                }
            }
            Op::SyncDir(p) => {
                if let Some(ino) = ino_of(&live, self.rel(p)) {
                    live.push(Step::SyncDir { ino });
                }
            }
            Op::Rename { from, to } => {
                if let (Some(from), Some(to)) = (self.rel(from), self.rel(to)) {
                    live.push(Step::Rename { from, to });
                }
            }
        }
    }
}

/// Runs `write` (a write path acting on files under `root`) and returns
/// what it returned with the [`Trace`] of what it did. Only operations on
/// paths under `root` are recorded, so tests running side by side do not
/// see each other's.
pub fn record<T>(root: &Path, write: impl FnOnce() -> T) -> (T, Trace) {
    let root = std::path::absolute(root).unwrap();
    let initial = read_tree(&root);
    let mut live = Live::default();
    live.kinds.push(Kind::Dir); // ROOT
    for (path, node) in &initial {
        let kind = match node {
            Node::Dir => Kind::Dir,
            Node::File(_) => Kind::File,
            Node::Symlink(t) => Kind::Symlink(t.clone()),
        };
        let ino = live.new_ino(kind);
        live.names.map.insert(path.clone(), ino);
        if let Node::File(bytes) = node {
            live.content.insert(ino, bytes.clone());
        }
    }
    let start = live.names.clone();
    let start_content = live.content.clone();
    let recording = Arc::new(Recording {
        root: root.clone(),
        live: Mutex::new(live),
    });
    let registration = register(&root, recording.clone());
    let result = write();
    drop(registration);
    let final_tree = read_tree(&root);
    let mut live = recording.live();
    live.catch_up(&final_tree);
    let live = std::mem::take(&mut *live);
    (
        result,
        Trace {
            initial,
            final_tree,
            start,
            start_content,
            kinds: live.kinds,
            steps: live.steps,
            durable_by: live.durable_by,
        },
    )
}

/// What [`record`] logged.
#[derive(Debug)]
pub struct Trace {
    initial: Tree,
    final_tree: Tree,
    start: Names,
    start_content: HashMap<Ino, Bytes>,
    kinds: Vec<Kind>,
    steps: Vec<Step>,
    durable_by: Vec<Option<Ino>>,
}

/// How the data not yet fsynced is found after the cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum DataLoss {
    /// Everything written reached the disk.
    None,
    /// Nothing written since the last fsync did.
    All,
    /// The newest content, truncated to half its length.
    Truncated,
    /// The newest content, its second half zeroed.
    Zeroed,
}

/// One state a power cut could leave.
#[derive(Clone, Debug)]
pub struct CrashState {
    /// The tree on the disk.
    pub tree: Tree,
    /// After how many steps the cut came.
    pub point: usize,
    /// Which steps were lost and how data was lost, for messages.
    pub how: String,
    /// Whether this is what the disk holds for sure once the write path
    /// has returned (the cut after the last step, everything not durable
    /// lost): it must hold the new state.
    pub done: bool,
}

/// What [`Trace::check`] found.
#[derive(Debug, Default)]
pub struct Report {
    /// Steps in the trace.
    pub steps: usize,
    /// Distinct crash states checked.
    pub states: usize,
    /// The states that broke the invariant, with why (the first few).
    pub failures: Vec<String>,
    /// How many states broke it.
    pub failed: usize,
}

impl Trace {
    /// The tree before the write path ran.
    pub fn initial(&self) -> &Tree {
        &self.initial
    }

    /// The tree after it returned.
    pub fn final_tree(&self) -> &Tree {
        &self.final_tree
    }

    /// The steps, one per line, for failure messages.
    pub fn describe(&self) -> String {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{i:3} {}\n", s.describe()))
            .collect()
    }

    /// Every distinct state a power cut could leave (see the module
    /// documentation for the model).
    pub fn crash_states(&self) -> Vec<CrashState> {
        let n = self.steps.len();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut states = Vec::new();
        // The content of each file after each step, and as of its last
        // fsync, walking forward once.
        let mut current: HashMap<Ino, Bytes> = self.start_content.clone();
        let mut durable: HashMap<Ino, Bytes> = self.start_content.clone();
        let mut last_dir_sync: HashMap<Ino, usize> = HashMap::new();
        for k in 0..=n {
            if k > 0 {
                match &self.steps[k - 1] {
                    Step::Write { ino, bytes } => {
                        current.insert(*ino, bytes.clone());
                    }
                    Step::Create { ino, .. } => {
                        current.insert(*ino, Bytes::new(Vec::new()));
                    }
                    Step::SyncFile { ino } => {
                        if let Some(bytes) = current.get(ino) {
                            durable.insert(*ino, bytes.clone());
                        }
                    }
                    Step::SyncDir { ino } => {
                        last_dir_sync.insert(*ino, k - 1);
                    }
                    _ => {}
                }
            }
            // The namespace steps before k not yet durable.
            let pending: Vec<usize> = (0..k)
                .filter(|&j| self.is_namespace(j))
                .filter(|&j| {
                    let synced_after = self.durable_by[j]
                        .and_then(|dir| last_dir_sync.get(&dir))
                        .is_some_and(|&s| s > j);
                    !synced_after
                })
                .collect();
            let mut variants: Vec<(Vec<usize>, String)> = vec![(Vec::new(), "nothing lost".into())];
            for m in 0..pending.len() {
                variants.push((
                    pending[m..].to_vec(),
                    format!("lost steps {:?} (in-order prefix kept)", &pending[m..]),
                ));
            }
            for &j in &pending {
                variants.push((vec![j], format!("lost step {j} alone")));
            }
            for (lost, how) in variants {
                let names = self.replay(k, &lost);
                for loss in [
                    DataLoss::None,
                    DataLoss::All,
                    DataLoss::Truncated,
                    DataLoss::Zeroed,
                ] {
                    let tree = self.tree(&names, &current, &durable, loss);
                    let mut h = DefaultHasher::new();
                    for (p, node) in &tree {
                        p.hash(&mut h);
                        match node {
                            Node::Dir => 0u8.hash(&mut h),
                            Node::File(b) => (1u8, b.id).hash(&mut h),
                            Node::Symlink(t) => (2u8, t).hash(&mut h),
                        }
                    }
                    let done = k == n && lost.len() == pending.len() && loss == DataLoss::All;
                    (done, h.finish()).hash(&mut h);
                    if seen.insert(h.finish()) {
                        states.push(CrashState {
                            tree,
                            point: k,
                            how: format!("{how}, data loss {loss:?}"),
                            done,
                        });
                    }
                }
            }
        }
        states
    }

    fn is_namespace(&self, j: usize) -> bool {
        matches!(
            self.steps[j],
            Step::Mkdir { .. }
                | Step::Create { .. }
                | Step::Symlink { .. }
                | Step::Remove { .. }
                | Step::Rename { .. }
        )
    }

    /// The names after the first `k` steps, without the steps in `lost`.
    fn replay(&self, k: usize, lost: &[usize]) -> Names {
        let mut names = self.start.clone();
        for (j, step) in self.steps[..k].iter().enumerate() {
            if !lost.contains(&j) {
                names.apply(step, &self.kinds);
            }
        }
        names
    }

    fn tree(
        &self,
        names: &Names,
        current: &HashMap<Ino, Bytes>,
        durable: &HashMap<Ino, Bytes>,
        loss: DataLoss,
    ) -> Tree {
        names
            .map
            .iter()
            .map(|(path, &ino)| {
                let node = match &self.kinds[ino] {
                    Kind::Dir => Node::Dir,
                    Kind::Symlink(t) => Node::Symlink(t.clone()),
                    Kind::File => {
                        let empty = || Bytes::new(Vec::new());
                        let now = current.get(&ino).cloned().unwrap_or_else(empty);
                        let kept = durable.get(&ino).cloned().unwrap_or_else(empty);
                        Node::File(if now == kept {
                            now
                        } else {
                            match loss {
                                DataLoss::None => now,
                                DataLoss::All => kept,
                                DataLoss::Truncated => {
                                    Bytes::new(now.data[..now.data.len() / 2].to_vec())
                                }
                                DataLoss::Zeroed => {
                                    let mut data = now.data.to_vec();
                                    let half = data.len() / 2;
                                    data[half..].fill(0);
                                    Bytes::new(data)
                                }
                            }
                        })
                    }
                };
                (path.clone(), node)
            })
            .collect()
    }

    /// Writes every crash state into `scratch` (emptied first each time)
    /// and runs `invariant` on it; an `Err` is a broken invariant.
    pub fn check(
        &self,
        scratch: &Path,
        mut invariant: impl FnMut(&Path, &CrashState) -> Result<(), String>,
    ) -> Report {
        let states = self.crash_states();
        let mut report = Report {
            steps: self.steps.len(),
            states: states.len(),
            ..Report::default()
        };
        for state in &states {
            materialize(&state.tree, scratch);
            if let Err(why) = invariant(scratch, state) {
                report.failed += 1;
                if report.failures.len() < 5 {
                    report.failures.push(format!(
                        "cut after step {} ({}{}): {why}",
                        state.point,
                        state.how,
                        if state.done { ", after return" } else { "" }
                    ));
                }
            }
        }
        report
    }
}

/// Makes `dir` hold exactly `tree`.
pub fn materialize(tree: &Tree, dir: &Path) {
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    std::fs::create_dir_all(dir).unwrap();
    for (path, node) in tree {
        let at = dir.join(path);
        match node {
            Node::Dir => std::fs::create_dir(&at).unwrap(),
            Node::File(bytes) => std::fs::write(&at, bytes.data()).unwrap(),
            Node::Symlink(target) => std::os::unix::fs::symlink(target, &at).unwrap(),
        }
    }
}
