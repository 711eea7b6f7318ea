#![doc = include_str!("../README.md")]

mod aws_profile;
mod error;
mod gc;
mod listing;
mod publish;
mod remote;
mod sync;
mod transfer;

pub use error::{Error, Result};
pub use gc::{RemoteGcOptions, RemoteGcReport, collect_remote_garbage};
pub use listing::{CLAIMS_DIR, COMMIT_FILE, RemoteFile, RemoteListing, RemoteVersion};
pub use publish::{Manifest, ManifestFile, RemotePublished, publish_remote};
pub use remote::{RETRY_TIMEOUT_ENV, RemoteBase, Scheme, is_remote};
pub use sync::{SYNC_PREFIX, SyncOptions, SyncReport, download_saved_model, sync_down, sync_up};
pub use transfer::{NoProgress, Progress, TransferOptions};

/// The `object_store` this crate is built on, for building a
/// [`RemoteBase`] over another store.
pub use object_store;
