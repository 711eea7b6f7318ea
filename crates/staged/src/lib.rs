//! Files and directories that appear under their final name only complete:
//! written under a temporary sibling name, fsynced, renamed into place, the
//! directory holding them fsynced; removed again on an error or when dropped
//! before they are committed.
//!
//! Architecture Invariant: nothing in this workspace is written in place.
//! Every file the libraries produce (checkpoint data and index files,
//! `convert`'s outputs, a SavedModel directory, a published version) is made
//! by this crate's [`StagedFile`] or [`StagedDir`], or sits inside a
//! [`StagedDir`] while it is written (`models.config` is replaced the same
//! way):
//!
//! 1. the content goes to a sibling of the target whose name no reader takes
//!    for the real thing ([`temp_file_name`], [`temp_dir_name`], or a name
//!    the caller chooses: [`StagedFile::create_as`], [`StagedDir::adopt`]),
//!    created anew (never an existing file);
//! 2. it is fsynced (when the caller asks for durability);
//! 3. one `rename(2)` moves it to the target: readers see the old name or
//!    the complete new one, nothing in between. [`StagedDir::commit_no_replace`]
//!    and [`rename_no_replace`] never replace an existing target
//!    (`renameat2(RENAME_NOREPLACE)` on Linux);
//! 4. the directory holding the target is fsynced ([`sync_dir`]), so the new
//!    name survives a power loss (for a set of files, [`commit_all`] also
//!    fsyncs between the members' renames and the last one's, and removes
//!    an old last file first when replacing a set; directories made on the
//!    way are fsynced into their parents by [`create_dir_all`]);
//! 5. until committed, dropping the value (an error returned with `?`, a
//!    panic) removes the temporary name. A killed process leaves it behind,
//!    under a name that is never mistaken for the target.
//!
//! Every fsync and rename of the workspace's write paths goes through this
//! crate ([`sync_file`], [`sync_dir`], [`rename`], [`rename_no_replace`],
//! the commits), which is what lets the crash tests record them
//! ([`trace`]).
//!
//! The crate knows nothing about what is written: checkpoint-specific
//! writing (threaded `pwritev`, ext4 preallocation) is built on
//! [`StagedFile::file`] by `savedmodel-checkpoint`, the version numbering and
//! locking of a published version by `savedmodel-layout`.
//!
//! ```
//! use std::io::Write;
//! use savedmodel_staged::{StagedDir, StagedFile};
//!
//! let dir = tempfile::tempdir()?;
//! let target = dir.path().join("weights.bin");
//! let mut file = StagedFile::create(&target)?;
//! file.write_all(b"complete")?;
//! assert!(!target.exists()); // not there until committed
//! file.commit(true)?;
//! assert_eq!(std::fs::read(&target)?, b"complete");
//!
//! // Dropped before the commit: nothing is left.
//! let mut file = StagedFile::create(dir.path().join("half.bin"))?;
//! file.write_all(b"half")?;
//! drop(file);
//! assert!(!dir.path().join("half.bin").exists());
//!
//! let version = dir.path().join("1");
//! let staged = StagedDir::create(&version)?;
//! std::fs::write(staged.path().join("saved_model.pb"), b"...")?;
//! staged.commit(&version, true)?;
//! assert!(version.join("saved_model.pb").is_file());
//! assert_eq!(std::fs::read_dir(dir.path())?.count(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod dir;
mod error;
mod file;
mod lock;
mod sys;
pub mod trace;

pub use dir::StagedDir;
pub use error::{Error, Result};
pub use file::{StagedFile, commit_all};
pub use lock::{same_file, try_lock_exclusive};
pub use sys::{
    create_dir_all, is_temp_dir_name, is_temp_file_name, parent_dir, random_u64, rename,
    rename_no_replace, sync_dir, sync_file, temp_dir_name, temp_file_name, with_suffix,
};
