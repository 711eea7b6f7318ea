//! `assets/` and `assets.extra/`: files added, removed or changed, compared
//! by size and then content (streamed, a block at a time).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::report::{Area, Change, ChangeKind};

/// How deep [`diff`](crate::diff) walks `assets/` and `assets.extra/`: real
/// models nest a level or two; a deeper tree is refused rather than walked
/// without bound (a symbolic link loop is not followed at all).
pub const MAX_DEPTH: usize = 32;

pub(crate) fn compare(area: Area, old: &Path, new: &Path, out: &mut Vec<Change>) -> Result<()> {
    let (a, b) = (list(old)?, list(new)?);
    for (rel, old_path) in &a {
        match b.get(rel) {
            None => out.push(Change::new(area, ChangeKind::Removed, rel)),
            Some(new_path) => {
                if let Some(detail) = differ(old_path, new_path)? {
                    out.push(Change::new(area, ChangeKind::Changed, rel).detail(detail));
                }
            }
        }
    }
    for rel in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(Change::new(area, ChangeKind::Added, rel));
    }
    Ok(())
}

/// Every file under `dir` (none when `dir` does not exist), by its
/// `/`-separated path relative to `dir`. Symbolic links are followed for
/// files and not for directories.
fn list(dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let mut files = BTreeMap::new();
    if !dir.is_dir() {
        return Ok(files);
    }
    let mut stack = vec![(dir.to_path_buf(), String::new(), 0usize)];
    while let Some((path, rel, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep {
                path,
                limit: MAX_DEPTH,
            });
        }
        let io_err = |source| Error::Io {
            op: "listing",
            path: path.clone(),
            source,
        };
        for entry in fs::read_dir(&path).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry.file_type().map_err(io_err)?;
            if kind.is_dir() {
                stack.push((entry.path(), child_rel, depth + 1));
            } else {
                files.insert(child_rel, entry.path());
            }
        }
    }
    Ok(files)
}

/// `None` when the two files hold the same bytes, else what differs.
fn differ(a: &Path, b: &Path) -> Result<Option<String>> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            op: "reading",
            path,
            source,
        }
    };
    let (len_a, len_b) = (
        fs::metadata(a).map_err(io_err(a))?.len(),
        fs::metadata(b).map_err(io_err(b))?.len(),
    );
    if len_a != len_b {
        return Ok(Some(format!("{len_a} -> {len_b} bytes")));
    }
    let mut fa = File::open(a).map_err(io_err(a))?;
    let mut fb = File::open(b).map_err(io_err(b))?;
    let mut ba = vec![0u8; 64 << 10];
    let mut bb = vec![0u8; 64 << 10];
    loop {
        let n = read_full(&mut fa, &mut ba).map_err(io_err(a))?;
        let m = read_full(&mut fb, &mut bb).map_err(io_err(b))?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(Some(format!("content changed ({len_a} bytes)")));
        }
        if n == 0 {
            return Ok(None);
        }
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
