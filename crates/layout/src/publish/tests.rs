use super::*;
use crate::listing::ChildKind;

fn write_model(dir: &Path) -> io::Result<()> {
    fs::write(dir.join("saved_model.pb"), b"graph")?;
    fs::create_dir(dir.join("variables"))?;
    fs::write(dir.join("variables/variables.index"), b"index")?;
    fs::write(dir.join("variables/variables.data-00000-of-00001"), b"data")
}

fn children(base: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(base)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn next_version_policies_parse() {
    assert_eq!(
        "next".parse::<NextVersion>().unwrap(),
        NextVersion::Increment
    );
    assert_eq!(
        "unix".parse::<NextVersion>().unwrap(),
        NextVersion::UnixSeconds
    );
    assert_eq!(
        "-3".parse::<NextVersion>().unwrap(),
        NextVersion::Explicit(-3)
    );
    let err = "latest".parse::<NextVersion>().unwrap_err();
    assert!(err.to_string().contains("expected next, unix"), "{err}");
}

#[test]
fn increments_from_one_and_past_the_highest() {
    let base = tempfile::tempdir().unwrap();
    let first = publish(base.path(), NextVersion::Increment, write_model).unwrap();
    assert_eq!(first.version, 1);
    assert_eq!(first.path, base.path().join("1"));
    fs::create_dir(base.path().join("0041")).unwrap();
    fs::write(base.path().join("0041/saved_model.pb"), b"x").unwrap();
    let next = publish(base.path(), NextVersion::Increment, write_model).unwrap();
    assert_eq!(next.version, 42);
    assert_eq!(
        fs::read(next.path.join("variables/variables.index")).unwrap(),
        b"index"
    );
    assert_eq!(children(base.path()), ["0041", "1", "42"]);
}

#[test]
fn explicit_version_is_taken_or_refused() {
    let base = tempfile::tempdir().unwrap();
    let published = publish(base.path(), NextVersion::Explicit(7), write_model).unwrap();
    assert_eq!(published.version, 7);
    let mut called = false;
    let err = publish(base.path(), NextVersion::Explicit(7), |dir| {
        called = true;
        write_model(dir)
    })
    .unwrap_err();
    assert!(!called, "the writer must not run for an existing version");
    assert!(
        matches!(err, Error::VersionExists { version: 7, .. }),
        "{err}"
    );
    // A duplicate spelling counts as existing too.
    fs::create_dir(base.path().join("008")).unwrap();
    let err = publish(base.path(), NextVersion::Explicit(8), write_model).unwrap_err();
    assert!(err.to_string().contains("\"008\""), "{err}");
    assert_eq!(children(base.path()), ["008", "7"]);
}

#[test]
fn unix_seconds_is_now_but_never_below_the_highest() {
    let base = tempfile::tempdir().unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let a = publish(base.path(), NextVersion::UnixSeconds, write_model).unwrap();
    let b = publish(base.path(), NextVersion::UnixSeconds, write_model).unwrap();
    assert!(
        a.version >= before && a.version <= before + 60,
        "{}",
        a.version
    );
    assert!(b.version > a.version);
    let far = i64::MAX - 1;
    fs::create_dir(base.path().join(far.to_string())).unwrap();
    let c = publish(base.path(), NextVersion::UnixSeconds, write_model).unwrap();
    assert_eq!(c.version, i64::MAX);
    let err = publish(base.path(), NextVersion::Increment, write_model).unwrap_err();
    assert!(matches!(err, Error::VersionOverflow { .. }), "{err}");
    // The failed publish left nothing behind.
    assert!(!children(base.path()).iter().any(|n| n.starts_with('.')));
}

#[test]
fn failing_writer_leaves_nothing() {
    let base = tempfile::tempdir().unwrap();
    let err = publish(base.path(), NextVersion::Increment, |dir| {
        fs::write(dir.join("saved_model.pb"), b"half")?;
        Err::<(), _>(io::Error::other("disk full"))
    })
    .unwrap_err();
    let Error::Write { staging, source } = &err else {
        panic!("unexpected error {err}");
    };
    assert!(staging.starts_with(base.path()));
    assert_eq!(source.to_string(), "disk full");
    assert!(err.to_string().contains(".savedmodel-staging-"), "{err}");
    assert!(children(base.path()).is_empty());
}

#[test]
fn panicking_writer_leaves_nothing() {
    let base = tempfile::tempdir().unwrap();
    let result = std::panic::catch_unwind(|| {
        let _ = publish(
            base.path(),
            NextVersion::Increment,
            |dir| -> io::Result<()> {
                fs::write(dir.join("saved_model.pb"), b"half")?;
                panic!("writer bug");
            },
        );
    });
    assert!(result.is_err());
    assert!(children(base.path()).is_empty());
}

/// The base path may be a symbolic link to a directory (the fsync of the
/// base follows it, as listing it does).
#[cfg(unix)]
#[test]
fn a_base_path_behind_a_symbolic_link_is_published_into() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    fs::create_dir(&real).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let published = publish(&link, NextVersion::Increment, write_model).unwrap();
    assert_eq!(published.version, 1);
    assert_eq!(children(&real), ["1"]);
    assert_eq!(fs::read(real.join("1/saved_model.pb")).unwrap(), b"graph");
}

#[test]
fn empty_version_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let err = publish(base.path(), NextVersion::Increment, |_| {
        Ok::<(), io::Error>(())
    })
    .unwrap_err();
    assert!(matches!(err, Error::EmptyVersion { .. }), "{err}");
    assert!(children(base.path()).is_empty());
}

#[test]
fn base_path_problems_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = publish(&missing, NextVersion::Increment, write_model).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("base path {} does not exist", missing.display())
    );
    let file = dir.path().join("file");
    fs::write(&file, b"").unwrap();
    let err = publish(&file, NextVersion::Increment, write_model).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("base path {} is not a directory", file.display())
    );
}

#[test]
fn permission_problems_are_the_base_paths() {
    let base = Path::new("/srv/models/m");
    let staging = base.join(".savedmodel-staging-1-0");
    for kind in [
        io::ErrorKind::PermissionDenied,
        io::ErrorKind::ReadOnlyFilesystem,
    ] {
        let err = staging_create_error(base, staging.clone(), io::Error::from(kind));
        assert!(matches!(err, Error::BaseNotWritable { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("base path /srv/models/m is not writable: "),
            "{err}"
        );
    }
    let err = staging_create_error(base, staging, io::Error::from(io::ErrorKind::StorageFull));
    assert!(
        err.to_string()
            .starts_with("cannot create staging directory /srv/models/m/.savedmodel-staging-1-0: "),
        "{err}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn unwritable_base_is_named() {
    // sysfs refuses mkdir to everyone, root included: EPERM, EACCES, or
    // EROFS where it is mounted read-only. (A chmod 555 directory would
    // not do: these tests may run as root, which ignores mode bits.)
    let base = Path::new("/sys/kernel");
    let err = publish(base, NextVersion::Increment, write_model).unwrap_err();
    assert!(matches!(err, Error::BaseNotWritable { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("base path /sys/kernel is not writable: "),
        "{err}"
    );
}

#[test]
fn explicit_version_taken_at_the_rename_is_refused() {
    // Another exporter takes the number between the check and the
    // rename: the rename must fail, not replace or renumber.
    let base = tempfile::tempdir().unwrap();
    fs::create_dir(base.path().join("3")).unwrap();
    fs::write(base.path().join("3/saved_model.pb"), b"theirs").unwrap();
    let ours = base.path().join(".savedmodel-staging-0-ours");
    fs::create_dir(&ours).unwrap();
    write_model(&ours).unwrap();
    let err = rename_into_place(base.path(), &ours, NextVersion::Explicit(3)).unwrap_err();
    assert!(
        matches!(err, Error::VersionExists { version: 3, .. }),
        "{err}"
    );
    assert_eq!(
        fs::read(base.path().join("3/saved_model.pb")).unwrap(),
        b"theirs"
    );
    assert!(ours.join("saved_model.pb").exists());
}

#[cfg(unix)]
#[test]
fn publish_dir_copies_and_moves() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    fs::create_dir(&base).unwrap();
    let shared = dir.path().join("shared_assets");
    fs::create_dir(&shared).unwrap();
    fs::write(shared.join("vocab.txt"), b"a\nb\n").unwrap();
    let src = dir.path().join("model");
    fs::create_dir(&src).unwrap();
    write_model(&src).unwrap();
    // A relative link inside the directory, and an absolute one out of it
    // (followed only when asked).
    symlink("saved_model.pb", src.join("link")).unwrap();
    symlink(&shared, src.join("assets")).unwrap();
    let err = publish_dir(
        &src,
        &base,
        NextVersion::Increment,
        PublishMode::Copy,
        OutsideLinks::Refuse,
    )
    .unwrap_err();
    assert!(matches!(err, Error::LinkLeadsOutside { .. }), "{err}");

    let copied = publish_dir(
        &src,
        &base,
        NextVersion::Increment,
        PublishMode::Copy,
        OutsideLinks::Follow,
    )
    .unwrap();
    assert_eq!(copied.version, 1);
    assert!(src.join("saved_model.pb").exists());
    assert_eq!(
        fs::read(copied.path.join("variables/variables.data-00000-of-00001")).unwrap(),
        b"data"
    );
    // Links are followed: the version is self-contained.
    let link = copied.path.join("link");
    assert!(fs::symlink_metadata(&link).unwrap().is_file());
    assert_eq!(fs::read(&link).unwrap(), b"graph");
    assert!(
        fs::symlink_metadata(copied.path.join("assets"))
            .unwrap()
            .is_dir()
    );
    assert_eq!(
        fs::read(copied.path.join("assets/vocab.txt")).unwrap(),
        b"a\nb\n"
    );

    // Both links mean the same from the new place, so a move is fine.
    let err = publish_dir(
        &src,
        &base,
        NextVersion::Explicit(5),
        PublishMode::Move,
        OutsideLinks::Refuse,
    )
    .unwrap_err();
    assert!(matches!(err, Error::LinkLeadsOutside { .. }), "{err}");
    let moved = publish_dir(
        &src,
        &base,
        NextVersion::Explicit(5),
        PublishMode::Move,
        OutsideLinks::Follow,
    )
    .unwrap();
    assert_eq!(moved.version, 5);
    assert!(!src.exists());
    assert!(moved.path.join("variables/variables.index").exists());
    assert_eq!(fs::read(moved.path.join("link")).unwrap(), b"graph");
    assert_eq!(
        fs::read(moved.path.join("assets/vocab.txt")).unwrap(),
        b"a\nb\n"
    );
    let listing = BaseListing::read(&base).unwrap();
    assert_eq!(
        listing
            .version_children()
            .iter()
            .map(|c| (c.version, c.kind))
            .collect::<Vec<_>>(),
        [(1, ChildKind::Directory), (5, ChildKind::Directory)]
    );
    assert!(listing.leftovers().is_empty());
}

#[cfg(target_os = "linux")]
#[test]
fn move_across_file_systems_copies_then_removes() {
    // /dev/shm is a tmpfs of its own, so the rename fails with EXDEV.
    let src_dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let src = src_dir.path().join("model");
    fs::create_dir(&src).unwrap();
    write_model(&src).unwrap();
    let base = tempfile::tempdir().unwrap();
    let moved = publish_dir(
        &src,
        base.path(),
        NextVersion::Increment,
        PublishMode::Move,
        OutsideLinks::Refuse,
    )
    .unwrap();
    assert_eq!(moved.version, 1);
    assert!(!src.exists());
    assert_eq!(
        fs::read(moved.path.join("variables/variables.index")).unwrap(),
        b"index"
    );
    assert_eq!(children(base.path()), ["1"]);
}

#[cfg(unix)]
#[test]
fn publish_dir_refuses_links_that_would_break() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    fs::create_dir(&base).unwrap();
    let src = dir.path().join("model");
    fs::create_dir(&src).unwrap();
    write_model(&src).unwrap();
    let is_link_error = |err: &Error, reason: &str| {
        matches!(err, Error::UnpublishableSymlink { .. }) && err.to_string().contains(reason)
    };

    // A dangling link: copying it would publish a hole.
    symlink("nowhere", src.join("variables/extra")).unwrap();
    let err = publish_dir(
        &src,
        &base,
        NextVersion::Increment,
        PublishMode::Copy,
        OutsideLinks::Refuse,
    )
    .unwrap_err();
    assert!(is_link_error(&err, "dangles"), "{err}");
    let err = publish_dir(
        &src,
        &base,
        NextVersion::Increment,
        PublishMode::Move,
        OutsideLinks::Refuse,
    )
    .unwrap_err();
    assert!(is_link_error(&err, "dangles"), "{err}");
    fs::remove_file(src.join("variables/extra")).unwrap();

    // A loop.
    symlink("..", src.join("variables/up")).unwrap();
    let err = publish_dir(
        &src,
        &base,
        NextVersion::Increment,
        PublishMode::Copy,
        OutsideLinks::Refuse,
    )
    .unwrap_err();
    assert!(is_link_error(&err, "already being copied"), "{err}");
    fs::remove_file(src.join("variables/up")).unwrap();

    // Moving would change what these point at.
    fs::write(dir.path().join("outside"), b"o").unwrap();
    symlink("../outside", src.join("rel")).unwrap();
    let err = publish_dir(
        &src,
        &base,
        NextVersion::Increment,
        PublishMode::Move,
        OutsideLinks::Follow,
    )
    .unwrap_err();
    assert!(
        is_link_error(&err, "leads out of the source directory"),
        "{err}"
    );
    fs::remove_file(src.join("rel")).unwrap();
    symlink(src.join("saved_model.pb"), src.join("abs")).unwrap();
    let err = publish_dir(
        &src,
        &base,
        NextVersion::Increment,
        PublishMode::Move,
        OutsideLinks::Refuse,
    )
    .unwrap_err();
    assert!(is_link_error(&err, "by an absolute path"), "{err}");
    fs::remove_file(src.join("abs")).unwrap();

    // None of this left anything behind.
    assert!(children(&base).is_empty());
    assert!(src.join("saved_model.pb").exists());

    // Moving a version onto another number of the same base is refused.
    let published = publish_dir(
        &src,
        &base,
        NextVersion::Increment,
        PublishMode::Copy,
        OutsideLinks::Refuse,
    )
    .unwrap();
    let err = publish_dir(
        &published.path,
        &base,
        NextVersion::Increment,
        PublishMode::Move,
        OutsideLinks::Refuse,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::SourceIsVersion { version: 1, .. }),
        "{err}"
    );
    assert_eq!(children(&base), ["1"]);
}

#[test]
fn publish_dir_refuses_non_models_and_loops() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("model");
    fs::create_dir(&src).unwrap();
    let base = src.join("versions");
    fs::create_dir(&base).unwrap();
    let err = publish_dir(
        &src,
        &base,
        NextVersion::Increment,
        PublishMode::Copy,
        OutsideLinks::Refuse,
    )
    .unwrap_err();
    assert!(matches!(err, Error::NotSavedModel { .. }), "{err}");
    assert!(err.to_string().contains("saved_model.pb"), "{err}");
    fs::write(src.join("saved_model.pb"), b"x").unwrap();
    let err = publish_dir(
        &src,
        &base,
        NextVersion::Increment,
        PublishMode::Copy,
        OutsideLinks::Refuse,
    )
    .unwrap_err();
    assert!(matches!(err, Error::BaseInsideSource { .. }), "{err}");
    let err = publish_dir(
        &src,
        &src,
        NextVersion::Increment,
        PublishMode::Move,
        OutsideLinks::Refuse,
    )
    .unwrap_err();
    assert!(matches!(err, Error::BaseInsideSource { .. }), "{err}");
}

#[test]
fn concurrent_threads_get_distinct_versions() {
    let base = tempfile::tempdir().unwrap();
    let versions: Vec<i64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    (0..5)
                        .map(|_| {
                            publish(base.path(), NextVersion::Increment, write_model)
                                .unwrap()
                                .version
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut sorted = versions.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, (1..=20).collect::<Vec<_>>());
}

#[cfg(unix)]
#[test]
fn links_out_of_the_source_are_refused_unless_followed_on_request() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    fs::create_dir(&base).unwrap();
    // A hostile model: an asset that is a link to a file outside the model
    // (as it might be to /etc/passwd), and one by a relative path up.
    let secret = dir.path().join("secret.txt");
    fs::write(&secret, b"root:x:0:0").unwrap();
    let src = dir.path().join("model");
    fs::create_dir(&src).unwrap();
    write_model(&src).unwrap();
    fs::create_dir(src.join("assets")).unwrap();
    for link in [secret.clone(), PathBuf::from("../../secret.txt")] {
        symlink(&link, src.join("assets/vocab.txt")).unwrap();
        for mode in [PublishMode::Copy, PublishMode::Move] {
            let err = publish_dir(
                &src,
                &base,
                NextVersion::Increment,
                mode,
                OutsideLinks::Refuse,
            )
            .unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(&err, Error::LinkLeadsOutside { target, .. } if *target == fs::canonicalize(&secret).unwrap()),
                "{text}"
            );
            assert!(
                text.contains("assets/vocab.txt") && text.contains("--follow-outside-links"),
                "{text}"
            );
        }
        fs::remove_file(src.join("assets/vocab.txt")).unwrap();
    }
    // Nothing was published, and the source is untouched.
    assert!(children(&base).is_empty());
    assert!(src.join("saved_model.pb").exists());
    // A link that stays inside is fine.
    symlink("../saved_model.pb", src.join("assets/graph")).unwrap();
    let published = publish_dir(
        &src,
        &base,
        NextVersion::Increment,
        PublishMode::Copy,
        OutsideLinks::Refuse,
    )
    .unwrap();
    assert_eq!(
        fs::read(published.path.join("assets/graph")).unwrap(),
        b"graph"
    );
    // Asked for, the outside file is copied.
    symlink(&secret, src.join("assets/vocab.txt")).unwrap();
    let published = publish_dir(
        &src,
        &base,
        NextVersion::Increment,
        PublishMode::Copy,
        OutsideLinks::Follow,
    )
    .unwrap();
    assert_eq!(
        fs::read(published.path.join("assets/vocab.txt")).unwrap(),
        b"root:x:0:0"
    );
}
