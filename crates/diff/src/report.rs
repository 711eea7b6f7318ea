//! The report: every change, whether it breaks clients of the old version,
//! and the exit status it maps to.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// What part of the model a change is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    /// A MetaGraph, by its tag set.
    TagSet,
    /// A signature of a MetaGraph.
    Signature,
    /// A checkpoint tensor (`variables/`).
    Variable,
    /// An op type the graph uses.
    Op,
    /// A file under `assets/`.
    Asset,
    /// A file under `assets.extra/`.
    AssetExtra,
    /// The init op TensorFlow's loader runs after restoring.
    InitOp,
}

impl Area {
    fn label(self) -> &'static str {
        match self {
            Area::TagSet => "tag set",
            Area::Signature => "signature",
            Area::Variable => "variable",
            Area::Op => "op",
            Area::Asset => "asset",
            Area::AssetExtra => "assets.extra",
            Area::InitOp => "init op",
        }
    }
}

/// Added, removed or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Only in the new model.
    Added,
    /// Only in the old model.
    Removed,
    /// In both, different.
    Changed,
}

/// How far a changed tensor's values moved (`--values`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ValueDifference {
    /// Number of elements compared.
    pub elements: u64,
    /// Number of elements that differ.
    pub differing: u64,
    /// The largest `|new - old|` (0 for string tensors).
    pub max_abs: f64,
    /// The largest `|new - old| / max(|old|, |new|)` (0 where both are 0;
    /// 1 for differing strings).
    pub max_rel: f64,
}

/// One difference between the two models.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Where.
    pub area: Area,
    /// Added, removed or changed.
    pub kind: ChangeKind,
    /// What: a tag set (`serve`), `tags/signature`, `tags/signature input x`,
    /// a variable name, an op type, a file path.
    pub subject: String,
    /// The change in words (`dtype DT_FLOAT -> DT_INT32`); empty for a plain
    /// addition or removal.
    pub detail: String,
    /// Whether a client of the old version can break on it (see the crate
    /// docs for the rules).
    pub breaking: bool,
    /// Value differences of a changed variable, with `--values`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<ValueDifference>,
}

impl Change {
    pub(crate) fn new(area: Area, kind: ChangeKind, subject: impl Into<String>) -> Self {
        Change {
            area,
            kind,
            subject: subject.into(),
            detail: String::new(),
            breaking: false,
            values: None,
        }
    }

    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    pub(crate) fn breaking(mut self, breaking: bool) -> Self {
        self.breaking = breaking;
        self
    }
}

/// How two models compare, and the `savedmodel diff` exit status for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No difference found: exit status 0.
    Identical,
    /// Different, but every client of the old version keeps working:
    /// exit status 1.
    Compatible,
    /// At least one change can break a client of the old version: exit
    /// status 3. (Status 2 is an error, as for every `savedmodel` command.)
    Breaking,
}

impl Verdict {
    /// The process exit status: 0 identical, 1 compatible, 3 breaking.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Identical => 0,
            Verdict::Compatible => 1,
            Verdict::Breaking => 3,
        }
    }
}

/// Everything [`diff`](crate::diff) found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffReport {
    /// The old SavedModel directory.
    pub old: PathBuf,
    /// The new SavedModel directory.
    pub new: PathBuf,
    /// The overall verdict.
    pub verdict: Verdict,
    /// Every change, grouped by area, in a stable order.
    pub changes: Vec<Change>,
}

impl DiffReport {
    pub(crate) fn new(old: PathBuf, new: PathBuf, mut changes: Vec<Change>) -> Self {
        changes.sort_by(|a, b| a.area.cmp(&b.area).then_with(|| a.subject.cmp(&b.subject)));
        let verdict = if changes.is_empty() {
            Verdict::Identical
        } else if changes.iter().any(|c| c.breaking) {
            Verdict::Breaking
        } else {
            Verdict::Compatible
        };
        DiffReport {
            old,
            new,
            verdict,
            changes,
        }
    }

    /// The changes in one area.
    pub fn in_area(&self, area: Area) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.area == area)
    }
}

/// The short human report: one line per change (`!` marks a breaking one),
/// then the verdict.
impl fmt::Display for DiffReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "old: {}", self.old.display())?;
        writeln!(f, "new: {}", self.new.display())?;
        for c in &self.changes {
            let sign = match c.kind {
                ChangeKind::Added => '+',
                ChangeKind::Removed => '-',
                ChangeKind::Changed => '~',
            };
            let mark = if c.breaking { '!' } else { ' ' };
            write!(f, "{mark}{sign} {:<12} {}", c.area.label(), c.subject)?;
            if !c.detail.is_empty() {
                write!(f, ": {}", c.detail)?;
            }
            if let Some(v) = &c.values {
                write!(
                    f,
                    " ({} of {} elements differ, max abs {:.6e}, max rel {:.6e})",
                    v.differing, v.elements, v.max_abs, v.max_rel
                )?;
            }
            writeln!(f)?;
        }
        let breaking = self.changes.iter().filter(|c| c.breaking).count();
        match self.verdict {
            Verdict::Identical => writeln!(f, "identical"),
            Verdict::Compatible => writeln!(
                f,
                "{} change(s), none breaking for clients of the old version",
                self.changes.len()
            ),
            Verdict::Breaking => writeln!(
                f,
                "{} change(s), {breaking} breaking for clients of the old version (marked !)",
                self.changes.len()
            ),
        }
    }
}
