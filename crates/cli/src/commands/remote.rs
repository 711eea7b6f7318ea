//! Base paths and SavedModel directories in object storage (`s3://`,
//! `gs://`) for every command that takes one: the runtime the transfers run
//! on, the progress bars, and the local stand-ins (a temporary directory)
//! for commands that read a SavedModel.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use savedmodel_layout::NextVersion;
use savedmodel_objstore::{Progress, RemoteBase, TransferOptions, is_remote};

/// The base path or directory `path` when it is an object storage URL.
pub(crate) fn remote_url(path: &Path) -> Option<&str> {
    path.to_str().filter(|text| is_remote(text))
}

/// Opens an object storage base path or directory.
pub(crate) fn open(url: &str) -> anyhow::Result<RemoteBase> {
    Ok(RemoteBase::open(url)?)
}

/// Runs `future` to completion on a multi-threaded runtime made for it.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    Ok(runtime.block_on(future))
}

/// Progress on stderr when it is a terminal: bytes, rate, files; nothing
/// when piped.
pub(crate) struct Bars {
    bar: Option<indicatif::ProgressBar>,
}

impl Bars {
    /// `verb` is shown before the bar (`uploading`, `downloading`).
    pub(crate) fn new(verb: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{prefix} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} files {msg} eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar.set_prefix(verb);
            bar
        });
        Bars { bar }
    }
}

impl Progress for Bars {
    fn start(&self, files: u64, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
            bar.set_position(0);
            // Files done / files; `file_done` counts up the first number.
            bar.set_message(format!("0/{files}"));
        }
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn file_done(&self) {
        if let Some(bar) = &self.bar {
            let message = bar.message();
            let (done, total) = message.split_once('/').unwrap_or(("0", "?"));
            let done = done.parse::<u64>().unwrap_or(0) + 1;
            bar.set_message(format!("{done}/{total}"));
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Where a publish into a local or remote base path ended up.
pub(crate) struct Destination {
    /// The version number.
    pub(crate) version: i64,
    /// The version directory: a path or a URL.
    pub(crate) location: String,
}

/// Publishes what `write` puts into an empty directory as a new version of
/// `base`: layout's atomic publish for a local path; for a bucket, written
/// into a local temporary directory first, then published with the object
/// storage protocol.
pub(crate) fn publish_to<F, E>(
    base: &Path,
    next: NextVersion,
    write: F,
) -> anyhow::Result<Destination>
where
    F: FnOnce(&Path) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(url) = remote_url(base) else {
        let published = savedmodel_layout::publish(base, next, write)?;
        return Ok(Destination {
            version: published.version,
            location: published.path.display().to_string(),
        });
    };
    let remote = open(url)?;
    let scratch = tempfile::tempdir().context("creating a temporary directory")?;
    let dir = scratch.path().join("model");
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    write(&dir).map_err(|e| anyhow::anyhow!(e.into()))?;
    let bars = Bars::new("uploading");
    let published = block_on(savedmodel_objstore::publish_remote(
        &dir,
        &remote,
        next,
        TransferOptions::default(),
        &bars,
    ))??;
    Ok(Destination {
        version: published.version,
        location: published.url,
    })
}

/// A local SavedModel directory for `dir`: `dir` itself, or for a URL a
/// download into a temporary directory (kept alive by the returned guard).
pub(crate) fn local_saved_model(
    dir: &Path,
) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    let Some(url) = remote_url(dir) else {
        return Ok((dir.to_path_buf(), None));
    };
    let remote = open(url)?;
    let scratch = tempfile::tempdir().context("creating a temporary directory")?;
    let local = scratch.path().join("model");
    let bars = Bars::new("downloading");
    block_on(savedmodel_objstore::download_saved_model(
        &remote,
        &local,
        TransferOptions::default(),
        &bars,
    ))??;
    Ok((local, Some(scratch)))
}
