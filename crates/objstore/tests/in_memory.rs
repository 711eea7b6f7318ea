//! The protocol against `object_store::memory::InMemory`: numbering,
//! refusal of taken numbers, gc's grace period, sync both ways, and a
//! resumed download that does not fetch finished files again.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use savedmodel_layout::NextVersion;
use savedmodel_objstore::object_store::memory::InMemory;
use savedmodel_objstore::object_store::path::Path as ObjectPath;
use savedmodel_objstore::object_store::{ObjectStoreExt, PutPayload};
use savedmodel_objstore::{
    Error, NoProgress, RemoteBase, RemoteGcOptions, RemoteListing, SYNC_PREFIX, Scheme,
    SyncOptions, TransferOptions, collect_remote_garbage, publish_remote, sync_down, sync_up,
};

fn model(dir: &Path, seed: u8) {
    std::fs::create_dir_all(dir.join("variables")).unwrap();
    std::fs::write(dir.join("saved_model.pb"), [seed; 100]).unwrap();
    std::fs::write(dir.join("variables/variables.index"), [seed; 10]).unwrap();
    std::fs::write(
        dir.join("variables/variables.data-00000-of-00001"),
        vec![seed; 3000],
    )
    .unwrap();
}

fn base() -> RemoteBase {
    RemoteBase::new(Arc::new(InMemory::new()), Scheme::Other, "bucket", "m")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

#[test]
fn numbers_increase_and_taken_ones_are_refused() {
    let work = tempfile::tempdir().unwrap();
    model(work.path(), 1);
    let base = base();
    runtime().block_on(async {
        let opts = TransferOptions::default();
        let one = publish_remote(
            work.path(),
            &base,
            NextVersion::Increment,
            opts,
            &NoProgress,
        );
        assert_eq!(one.await.unwrap().version, 1);
        let seven = publish_remote(
            work.path(),
            &base,
            NextVersion::Explicit(7),
            opts,
            &NoProgress,
        );
        assert_eq!(seven.await.unwrap().version, 7);
        let again = publish_remote(
            work.path(),
            &base,
            NextVersion::Explicit(7),
            opts,
            &NoProgress,
        );
        assert!(matches!(
            again.await,
            Err(Error::VersionExists { version: 7, .. })
        ));
        let next = publish_remote(
            work.path(),
            &base,
            NextVersion::Increment,
            opts,
            &NoProgress,
        );
        assert_eq!(next.await.unwrap().version, 8);
        let listing = RemoteListing::read(&base).await.unwrap();
        assert_eq!(
            listing.complete().keys().copied().collect::<Vec<_>>(),
            [1, 7, 8]
        );
        assert_eq!(listing.claims().len(), 3);
    });
}

#[test]
fn gc_waits_out_the_grace_period() {
    let base = base();
    runtime().block_on(async {
        // A publish that died after one file: no saved_model.pb.
        let key = ObjectPath::from("m/3/variables/variables.index");
        base.store()
            .put(&key, PutPayload::from_static(b"x"))
            .await
            .unwrap();
        let listing = RemoteListing::read(&base).await.unwrap();
        assert!(listing.find(3).is_some_and(|v| !v.complete));

        let young = RemoteGcOptions {
            grace: Duration::from_secs(3600),
            ..RemoteGcOptions::default()
        };
        let report = collect_remote_garbage(&base, &young).await.unwrap();
        assert_eq!(report.young_incomplete, ["3"]);
        assert!(RemoteListing::read(&base).await.unwrap().find(3).is_some());

        let now = RemoteGcOptions {
            grace: Duration::ZERO,
            ..RemoteGcOptions::default()
        };
        let report = collect_remote_garbage(&base, &now).await.unwrap();
        assert_eq!(report.removed_incomplete, ["3"]);
        assert!(RemoteListing::read(&base).await.unwrap().find(3).is_none());
    });
}

#[test]
fn sync_round_trips_and_a_resumed_download_skips_finished_files() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    model(&src, 5);
    let base = base();
    let local = work.path().join("local");
    std::fs::create_dir(&local).unwrap();
    runtime().block_on(async {
        let opts = TransferOptions::default();
        publish_remote(&src, &base, NextVersion::Explicit(4), opts, &NoProgress)
            .await
            .unwrap();

        // A sync that stopped after the data file: it is in the partial
        // directory. Then the store's copy changes (same size, other
        // bytes, which the manifest's checksum would refuse): the resumed
        // sync succeeds only if it does not fetch that file again.
        let partial = local.join(format!("{SYNC_PREFIX}4/variables"));
        std::fs::create_dir_all(&partial).unwrap();
        let data = "variables/variables.data-00000-of-00001";
        std::fs::copy(src.join(data), local.join(format!("{SYNC_PREFIX}4/{data}"))).unwrap();
        base.store()
            .put(
                &ObjectPath::from(format!("m/4/{data}")),
                PutPayload::from(vec![9u8; 3000]),
            )
            .await
            .unwrap();
        let report = sync_down(&base, &local, SyncOptions::default(), &NoProgress)
            .await
            .unwrap();
        assert_eq!(report.copied, [4]);
        assert_eq!(
            std::fs::read(local.join("4").join(data)).unwrap(),
            vec![5u8; 3000]
        );
        assert!(!local.join(format!("{SYNC_PREFIX}4")).exists());

        // And up again into another base path, then --delete there.
        let mirror = RemoteBase::new(Arc::new(InMemory::new()), Scheme::Other, "b", "mirror");
        let report = sync_up(&local, &mirror, SyncOptions::default(), &NoProgress)
            .await
            .unwrap();
        assert_eq!(report.copied, [4]);
        let extra = work.path().join("extra");
        model(&extra, 6);
        publish_remote(&extra, &mirror, NextVersion::Explicit(9), opts, &NoProgress)
            .await
            .unwrap();
        let delete = SyncOptions {
            delete: true,
            ..SyncOptions::default()
        };
        let report = sync_up(&local, &mirror, delete, &NoProgress).await.unwrap();
        assert_eq!(report.deleted, [9]);
        let listing = RemoteListing::read(&mirror).await.unwrap();
        assert_eq!(listing.complete().keys().copied().collect::<Vec<_>>(), [4]);
    });
}
