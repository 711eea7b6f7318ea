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
    let (meta_a, meta_b) = (
        fs::metadata(a).map_err(io_err(a))?,
        fs::metadata(b).map_err(io_err(b))?,
    );
    // Only regular files are read (a FIFO or `/dev/zero` behind a symbolic
    // link would block or never end); anything else compares by its kind.
    match (meta_a.is_file(), meta_b.is_file()) {
        (true, true) => {}
        (false, false) if meta_a.file_type() == meta_b.file_type() => return Ok(None),
        _ => return Ok(Some("not a regular file on one side".to_owned())),
    }
    let (len_a, len_b) = (meta_a.len(), meta_b.len());
    if len_a != len_b {
        return Ok(Some(format!("{len_a} -> {len_b} bytes")));
    }
    // Read no further than the length seen, should a file grow meanwhile.
    let mut fa = File::open(a).map_err(io_err(a))?.take(len_a);
    let mut fb = File::open(b).map_err(io_err(b))?.take(len_b);
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

fn read_full(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_compare_by_content_and_special_files_are_not_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        for (dir, text) in [(&a, "one"), (&b, "two")] {
            fs::create_dir_all(dir.join("sub")).expect("mkdir");
            fs::write(dir.join("sub/vocab.txt"), text).expect("write");
            fs::write(dir.join("same.txt"), "same").expect("write");
            // Would never end if read.
            std::os::unix::fs::symlink("/dev/zero", dir.join("zero")).expect("symlink");
        }
        fs::write(a.join("gone.txt"), "x").expect("write");
        let mut changes = Vec::new();
        compare(Area::Asset, &a, &b, &mut changes).expect("compare");
        let got: Vec<(ChangeKind, &str, &str)> = changes
            .iter()
            .map(|c| (c.kind, c.subject.as_str(), c.detail.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (ChangeKind::Removed, "gone.txt", ""),
                (
                    ChangeKind::Changed,
                    "sub/vocab.txt",
                    "content changed (3 bytes)"
                ),
            ]
        );
    }
}
