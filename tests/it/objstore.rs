//! Base paths in object storage (`s3://`), against a real S3 server on
//! loopback (`moto_server`, started per test on a free port and stopped
//! after; `savedmodel_tests::moto`), through the `savedmodel` binary:
//!
//! - every command that takes a base path or a SavedModel directory, round
//!   trips (publish, versions, versions next, versions gc, show, validate,
//!   config, export from a spec and from ONNX, sync both ways), a multipart
//!   upload among them;
//! - 8 concurrent publishers get 8 distinct complete versions;
//! - 50 publishers killed with SIGKILL at random moments leave no version
//!   that a lister would load (one holding `saved_model.pb`) incomplete;
//! - the server gone in the middle of an upload (a relay cut): a clear
//!   error naming the bucket and key, nothing committed;
//! - `sync --watch` picks up new versions and a poller of the local base
//!   path never sees half of one.
//! - `gs://` paths through object_store's GCS client, against moto
//!   speaking GCS's XML API (`tests/python/gcs_xml_moto.py`);
//! - a named AWS profile (`AWS_PROFILE`, `~/.aws/credentials` and
//!   `~/.aws/config`) alone reaches the bucket; a missing one is an error.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use savedmodel_layout::BaseListing;
use savedmodel_onnx::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto};
use savedmodel_tests::layout_model::{XorShift, check_model, write_model_with_extra_files};
use savedmodel_tests::moto::{MotoServer, Relay};
use savedmodel_tests::onnx_build::float_value;
use savedmodel_tests::paths::{files_under, savedmodel_bin, serving_fixtures};

const BUCKET: &str = "models";

/// `savedmodel ARGS` against the S3 server at `endpoint`.
fn savedmodel(endpoint: &str, args: &[&str]) -> Command {
    let mut command = Command::new(savedmodel_bin());
    command
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("SAVEDMODEL_RETRY_TIMEOUT", "5")
        .stdin(Stdio::null());
    command
}

/// Runs it and returns stdout, panicking with stderr on failure.
fn ok(endpoint: &str, args: &[&str]) -> String {
    let out = savedmodel(endpoint, args).output().unwrap();
    assert!(
        out.status.success(),
        "savedmodel {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(endpoint: &str, args: &[&str]) -> Output {
    let out = savedmodel(endpoint, args).output().unwrap();
    assert!(
        !out.status.success(),
        "savedmodel {args:?} succeeded:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// The version number `savedmodel publish` printed (`... as version N ...`).
fn published_version(stdout: &str) -> i64 {
    stdout
        .split("as version ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no version in {stdout:?}"))
}

fn half_plus_two() -> PathBuf {
    serving_fixtures().join("saved_model_half_plus_two_cpu/00000123")
}

/// Every file under `dir`, relative, with its bytes.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p.strip_prefix(dir).unwrap().to_path_buf(), bytes)
        })
        .collect()
}

fn local_versions(base: &Path) -> BTreeSet<i64> {
    BaseListing::read(base)
        .unwrap()
        .version_children()
        .iter()
        .map(|c| c.version)
        .collect()
}

fn relu_onnx(path: &Path) {
    let model = ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(21),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: vec![NodeProto {
                op_type: Some("Relu".into()),
                domain: Some(String::new()),
                name: Some("relu".into()),
                input: vec!["x".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            input: vec![float_value("x", &[1, 2])],
            output: vec![float_value("y", &[1, 2])],
            ..Default::default()
        }),
        ..Default::default()
    };
    std::fs::write(path, model.encode_to_vec()).unwrap();
}

#[test]
fn every_command_round_trips_through_a_bucket() {
    let server = MotoServer::start();
    server.create_bucket(BUCKET);
    let s3 = server.endpoint();
    let e = s3.as_str();
    let fixture = half_plus_two();
    let f = fixture.to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let base = format!("s3://{BUCKET}/serving/hp");

    // publish, twice; an explicit existing number is refused.
    let text = ok(e, &["publish", f, &base]);
    assert!(
        text.contains(&format!("as version 1 at {base}/1")),
        "{text}"
    );
    let text = ok(e, &["publish", f, &base]);
    assert!(text.contains("as version 2"), "{text}");
    let out = fails(e, &["publish", f, &base, "--version", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("version 2 already exists in s3://models/serving/hp"),
        "{stderr}"
    );

    // versions, versions next.
    let text = ok(e, &["versions", &base]);
    assert!(
        text.contains("policy latest:1: Serving would load 2"),
        "{text}"
    );
    assert!(text.contains("complete, loaded"), "{text}");
    assert_eq!(ok(e, &["versions", "next", &base]).trim(), "3");

    // show and validate read the version as the local directory reads.
    let remote_show = ok(e, &["show", &format!("{base}/1"), "--all"]);
    let local_show = ok(e, &["show", f, "--all"]);
    assert_eq!(remote_show, local_show);
    let remote_validate = savedmodel(e, &["validate", &format!("{base}/2")])
        .output()
        .unwrap();
    let local_validate = savedmodel(e, &["validate", f]).output().unwrap();
    assert_eq!(remote_validate.status.code(), local_validate.status.code());
    let out = fails(e, &["show", &format!("{base}/9")]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("s3://models/serving/hp/9"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // sync down: byte-identical versions; then up into another prefix and
    // down again.
    let local = work.path().join("local");
    let text = ok(e, &["sync", &base, local.to_str().unwrap()]);
    assert!(
        text.contains("copied version 1") && text.contains("copied version 2"),
        "{text}"
    );
    assert_eq!(local_versions(&local), BTreeSet::from([1, 2]));
    assert_eq!(tree(&local.join("1")), tree(&fixture));
    assert_eq!(tree(&local.join("2")), tree(&fixture));
    let text = ok(e, &["sync", &base, local.to_str().unwrap()]);
    assert!(text.contains("is up to date (2 versions)"), "{text}");
    let mirror = format!("s3://{BUCKET}/mirror/hp");
    let text = ok(e, &["sync", local.to_str().unwrap(), &mirror]);
    assert!(text.contains("copied version 2"), "{text}");
    let again = work.path().join("again");
    ok(e, &["sync", &mirror, again.to_str().unwrap()]);
    assert_eq!(tree(&again.join("2")), tree(&fixture));

    // config: a model in the bucket, what Serving would load from it.
    let config = work.path().join("models.config");
    let c = config.to_str().unwrap();
    ok(e, &["config", "add-model", c, "hp", &base]);
    let text = ok(e, &["config", "show", c]);
    assert!(text.contains("loads:     2"), "{text}");

    // gc: --keep-config keeps what the config pins (a label on 1); keep 1
    // alone removes version 1.
    ok(
        e,
        &["config", "set-label", c, "hp", "stable", "1", "--force"],
    );
    let text = ok(
        e,
        &["versions", "gc", &base, "--keep", "1", "--keep-config", c],
    );
    assert!(text.contains("kept versions: 1, 2"), "{text}");
    let text = ok(e, &["versions", "gc", &base, "--keep", "1"]);
    assert!(
        text.contains(&format!("removed version {base}/1")),
        "{text}"
    );
    let text = ok(e, &["versions", &base]);
    assert!(!text.contains("\n1 "), "{text}");
    // sync --delete removes the local version 1 that vanished at the source.
    let text = ok(e, &["sync", &base, local.to_str().unwrap(), "--delete"]);
    assert!(text.contains("deleted version 1"), "{text}");
    assert_eq!(local_versions(&local), BTreeSet::from([2]));

    // export from a spec and from ONNX, straight into the bucket.
    let spec = work.path().join("linear.toml");
    std::fs::write(
        &spec,
        "[model]\narchitecture = \"linear_regression\"\ninput_width = 2\n\n[[layers]]\nkernel = \"w\"\nbias = \"b\"\n",
    )
    .unwrap();
    let weights = work.path().join("weights.safetensors");
    write_safetensors(&weights);
    let exported = format!("s3://{BUCKET}/exported/linear");
    let text = ok(
        e,
        &[
            "export",
            "--spec",
            spec.to_str().unwrap(),
            "--weights",
            weights.to_str().unwrap(),
            "--base",
            &exported,
        ],
    );
    assert!(text.contains(&format!("path: {exported}/1")), "{text}");
    let onnx = work.path().join("relu.onnx");
    relu_onnx(&onnx);
    let text = ok(
        e,
        &[
            "export",
            "--onnx",
            onnx.to_str().unwrap(),
            "--base",
            &exported,
        ],
    );
    assert!(text.contains(&format!("path: {exported}/2")), "{text}");
    let text = ok(e, &["validate", &format!("{exported}/2")]);
    assert!(!text.contains("error"), "{text}");

    // A multipart upload (8 MiB parts) and its download, byte for byte.
    let big = work.path().join("big");
    std::fs::create_dir_all(big.join("variables")).unwrap();
    std::fs::write(big.join("saved_model.pb"), b"not a graph").unwrap();
    let mut rng = XorShift::new(7);
    let data: Vec<u8> = (0..(21 << 20) / 8)
        .flat_map(|_| rng.next_u64().to_le_bytes())
        .collect();
    std::fs::write(big.join("variables/variables.data-00000-of-00001"), &data).unwrap();
    let big_base = format!("s3://{BUCKET}/big");
    ok(e, &["publish", big.to_str().unwrap(), &big_base]);
    let big_local = work.path().join("big-local");
    ok(e, &["sync", &big_base, big_local.to_str().unwrap()]);
    assert_eq!(tree(&big_local.join("1")), tree(&big));
}

/// A user whose only AWS setup is a named profile in `~/.aws/credentials`
/// and `~/.aws/config` (keys, region and `endpoint_url`), as `aws
/// configure` writes it: no AWS variable but `AWS_PROFILE`. Without the
/// profile nothing would name the server; a profile that is in neither file
/// is a clear error, sent nowhere.
#[test]
fn a_named_aws_profile_alone_reaches_the_bucket() {
    let server = MotoServer::start();
    server.create_bucket(BUCKET);
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        "[default]\naws_access_key_id = unused\naws_secret_access_key = unused\n\n\
         [staging]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .unwrap();
    std::fs::write(
        aws.join("config"),
        format!(
            "[profile staging]\nregion = us-east-1\nendpoint_url = {}\n",
            server.endpoint()
        ),
    )
    .unwrap();
    let fixture = half_plus_two();
    let base = format!("s3://{BUCKET}/profiled/hp");
    let run = |profile: &str, args: &[&str]| {
        let mut command = savedmodel("unused", args);
        for variable in [
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_CONFIG_FILE",
        ] {
            command.env_remove(variable);
        }
        command
            .env("HOME", home.path())
            .env("AWS_PROFILE", profile)
            .output()
            .unwrap()
    };
    let out = run("staging", &["publish", fixture.to_str().unwrap(), &base]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("as version 1 at {base}/1")),
        "{stdout}"
    );
    let out = run("staging", &["versions", &base]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Serving would load 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run("production", &["versions", &base]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AWS profile \"production\"") && stderr.contains("no such profile"),
        "{stderr}"
    );
}

/// `savedmodel ARGS` with `gs://` paths sent to the GCS-dialect server at
/// `endpoint`, through a service account file as a GCS user has one.
fn savedmodel_gcs(work: &Path, endpoint: &str, args: &[&str]) -> Command {
    let account = work.join("service-account.json");
    if !account.exists() {
        let key = serde_json::json!({
            "private_key": "",
            "private_key_id": "",
            "client_email": "publisher@example.iam.gserviceaccount.com",
            "gcs_base_url": endpoint,
            "disable_oauth": true,
        });
        std::fs::write(&account, key.to_string()).unwrap();
    }
    let mut command = savedmodel("unused", args);
    command
        .env("GOOGLE_SERVICE_ACCOUNT", &account)
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS");
    command
}

/// `gs://` base paths through object_store's GCS client (its XML API)
/// against moto behind `tests/python/gcs_xml_moto.py`: concurrent
/// publishers (conditional creates as `x-goog-if-generation-match: 0`), a
/// multipart upload, an existing version refused, versions, show, validate,
/// sync both ways and gc. What the shim leaves untested is in
/// docs/formats.md, section 22.
#[test]
fn gs_base_paths_round_trip_through_the_xml_api() {
    let server = MotoServer::start_gcs_xml();
    server.create_bucket(BUCKET);
    let endpoint = server.endpoint();
    let work = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = savedmodel_gcs(work.path(), &endpoint, args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ok = |args: &[&str]| {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, Some(0), "savedmodel {args:?}:\n{stdout}{stderr}");
        stdout
    };
    let base = format!("gs://{BUCKET}/serving/gcs");
    let models: Vec<PathBuf> = (1..=4)
        .map(|seed| synthetic_model(work.path(), 100 + seed, 2))
        .collect();
    // 9 MiB: above the 8 MiB part size, so a multipart upload.
    let large: Vec<u8> = (0..9u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::create_dir_all(models[0].join("assets")).unwrap();
    std::fs::write(models[0].join("assets/large.bin"), &large).unwrap();

    let children: Vec<_> = models
        .iter()
        .map(|m| {
            savedmodel_gcs(
                work.path(),
                &endpoint,
                &["publish", m.to_str().unwrap(), &base],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut versions = BTreeSet::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(&format!("at {base}/")), "{stdout}");
        versions.insert(published_version(&stdout));
    }
    assert_eq!(versions, (1..=4).collect::<BTreeSet<i64>>());

    let fixture = half_plus_two();
    let fixture = fixture.to_str().unwrap();
    let (code, _, stderr) = run(&["publish", fixture, &base, "--version", "2"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("version 2 already exists in {base}")),
        "{stderr}"
    );
    // A real SavedModel as version 5, for show and validate.
    assert!(ok(&["publish", fixture, &base]).contains("as version 5"));
    let text = ok(&["versions", &base]);
    assert!(text.contains("Serving would load 5"), "{text}");
    assert_eq!(text.matches("complete").count(), 5, "{text}");
    let text = ok(&["show", &format!("{base}/5")]);
    assert!(text.contains("'serve'"), "{text}");
    let text = ok(&["validate", &format!("{base}/5")]);
    assert!(text.contains("0 error(s)"), "{text}");

    // Down: every version complete, the multipart file's bytes intact.
    let local = work.path().join("local");
    ok(&["sync", &base, local.to_str().unwrap()]);
    assert_eq!(local_versions(&local), (1..=5).collect::<BTreeSet<i64>>());
    assert_eq!(tree(&local.join("5")), tree(&half_plus_two()));
    let mut large_copies = 0;
    for version in 1..=4 {
        let dir = local.join(version.to_string());
        let large_path = dir.join("assets/large.bin");
        if let Ok(bytes) = std::fs::read(&large_path) {
            assert!(bytes == large, "version {version}'s large.bin differs");
            large_copies += 1;
            // check_model knows the synthetic model's own files only.
            std::fs::remove_file(&large_path).unwrap();
        }
        check_model(&dir).unwrap();
    }
    assert_eq!(large_copies, 1);

    // Up, into another base path; then gc keeps the newest.
    let copy = format!("gs://{BUCKET}/copy");
    ok(&["sync", local.to_str().unwrap(), &copy]);
    let text = ok(&["versions", &copy]);
    assert!(text.contains("Serving would load 5"), "{text}");
    ok(&["versions", "gc", &copy, "--keep", "1"]);
    let text = ok(&["versions", &copy]);
    assert_eq!(text.matches("complete").count(), 1, "{text}");
}

/// weights.safetensors with `w` [2, 1] and `b` [1], float32.
fn write_safetensors(path: &Path) {
    let header = r#"{"w":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    for v in [0.5f32, -1.0, 2.0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).unwrap();
}

/// Writes the synthetic model of `seed` into a new directory under `root`.
fn synthetic_model(root: &Path, seed: u64, extra: usize) -> PathBuf {
    let dir = root.join(format!("model-{seed}"));
    std::fs::create_dir(&dir).unwrap();
    write_model_with_extra_files(&dir, seed, extra).unwrap();
    dir
}

#[test]
fn eight_concurrent_publishers_get_eight_distinct_complete_versions() {
    let server = MotoServer::start();
    server.create_bucket(BUCKET);
    let e = server.endpoint();
    let work = tempfile::tempdir().unwrap();
    let base = format!("s3://{BUCKET}/concurrent");
    let models: Vec<PathBuf> = (1..=8)
        .map(|seed| synthetic_model(work.path(), seed, 4))
        .collect();
    let children: Vec<_> = models
        .iter()
        .map(|m| {
            savedmodel(&e, &["publish", m.to_str().unwrap(), &base])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut versions = BTreeSet::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        versions.insert(published_version(&stdout));
    }
    assert_eq!(versions, (1..=8).collect::<BTreeSet<i64>>());
    let local = work.path().join("local");
    ok(&e, &["sync", &base, local.to_str().unwrap()]);
    let mut manifests = BTreeSet::new();
    for version in 1..=8 {
        let dir = local.join(version.to_string());
        check_model(&dir).unwrap();
        manifests.insert(std::fs::read(dir.join("MANIFEST")).unwrap());
    }
    assert_eq!(manifests.len(), 8, "two versions hold the same model");
}

#[test]
fn publishers_killed_at_random_moments_leave_nothing_loadable_and_incomplete() {
    let server = MotoServer::start();
    server.create_bucket(BUCKET);
    let e = server.endpoint();
    let work = tempfile::tempdir().unwrap();
    let base = format!("s3://{BUCKET}/killed");
    let seed = std::env::var("OBJSTORE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("OBJSTORE_SEED={seed}");
    let mut rng = XorShift::new(seed);
    let models: Vec<PathBuf> = (0..5)
        .map(|i| synthetic_model(work.path(), 100 + i, 24))
        .collect();
    let mut killed = 0;
    // 50 publishers, 10 at a time, each killed after 0-1.5 s (most during
    // their uploads; some finish first).
    for round in 0..5 {
        let mut children: Vec<_> = (0..10)
            .map(|i| {
                let model = &models[(round * 10 + i) % models.len()];
                let child = savedmodel(&e, &["publish", model.to_str().unwrap(), &base])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                (child, Duration::from_millis(rng.range(0, 1500)))
            })
            .collect();
        let start = Instant::now();
        children.sort_by_key(|(_, delay)| *delay);
        for (mut child, delay) in children {
            if let Some(left) = delay.checked_sub(start.elapsed()) {
                std::thread::sleep(left);
            }
            let _ = child.kill();
            let status = child.wait().unwrap();
            if status.signal() == Some(9) {
                killed += 1;
            }
        }
    }
    eprintln!("{killed} of 50 publishers were killed before they finished");
    assert!(killed > 0, "no publisher was killed: nothing was tested");

    // What a lister loads: the versions holding saved_model.pb, downloaded
    // by `sync` (which copies exactly those), each complete.
    let local = work.path().join("local");
    ok(&e, &["sync", &base, local.to_str().unwrap()]);
    for version in local_versions(&local) {
        check_model(&local.join(version.to_string())).unwrap();
    }
    // The others are incomplete, and gc with no grace period removes them
    // and nothing else.
    let listing = ok(&e, &["versions", &base]);
    let complete_before = listing.matches("  complete").count();
    ok(&e, &["versions", "gc", &base, "--grace", "0"]);
    let listing = ok(&e, &["versions", &base]);
    assert!(!listing.contains("incomplete"), "{listing}");
    assert_eq!(
        listing.matches("  complete").count(),
        complete_before,
        "{listing}"
    );
}

#[test]
fn the_server_gone_mid_upload_is_a_clear_error_and_commits_nothing() {
    let server = MotoServer::start();
    server.create_bucket(BUCKET);
    let relay = Relay::start(server.port());
    let e = relay.endpoint();
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    std::fs::create_dir_all(model.join("variables")).unwrap();
    std::fs::write(model.join("saved_model.pb"), b"graph").unwrap();
    std::fs::write(model.join("variables/variables.index"), b"index").unwrap();
    let mut rng = XorShift::new(11);
    let data: Vec<u8> = (0..(160 << 20) / 8)
        .flat_map(|_| rng.next_u64().to_le_bytes())
        .collect();
    std::fs::write(model.join("variables/variables.data-00000-of-00001"), &data).unwrap();
    let base = format!("s3://{BUCKET}/cut");
    // The server goes away after 64 MiB of the 160 MiB went up.
    relay.cut_after(64 << 20);
    let child = savedmodel(&e, &["publish", model.to_str().unwrap(), &base])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(relay.is_cut());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: cannot "), "{stderr}");
    assert!(stderr.contains(&format!("{base}/1/")), "{stderr}");
    relay.restore();
    let listing = ok(&e, &["versions", &base]);
    assert!(
        listing.contains("Serving would load nothing") || listing.contains("incomplete"),
        "{listing}"
    );
    assert!(!listing.contains("  complete"), "{listing}");
    let local = work.path().join("local");
    ok(&e, &["sync", &base, local.to_str().unwrap()]);
    assert!(local_versions(&local).is_empty());
}

#[test]
fn sync_watch_picks_up_new_versions_and_never_exposes_half_of_one() {
    let server = MotoServer::start();
    server.create_bucket(BUCKET);
    let e = server.endpoint();
    let work = tempfile::tempdir().unwrap();
    let base = format!("s3://{BUCKET}/watched");
    let local = work.path().join("local");
    std::fs::create_dir(&local).unwrap();
    let mut sync = savedmodel(
        &e,
        &["sync", &base, local.to_str().unwrap(), "--watch", "1"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // A poller of the local base path, as Serving's: every version it sees
    // must be complete.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (stop, local) = (Arc::clone(&stop), local.clone());
        std::thread::spawn(move || {
            let mut problems = Vec::new();
            let mut polls = 0u64;
            while !stop.load(Ordering::SeqCst) {
                for version in local_versions(&local) {
                    if let Err(e) = check_model(&local.join(version.to_string())) {
                        problems.push(e);
                    }
                }
                polls += 1;
            }
            (problems, polls)
        })
    };
    for (seed, version) in [(21, 1), (22, 2)] {
        let model = synthetic_model(work.path(), seed, 24);
        ok(&e, &["publish", model.to_str().unwrap(), &base]);
        let deadline = Instant::now() + Duration::from_secs(120);
        while !local_versions(&local).contains(&version) {
            assert!(Instant::now() < deadline, "version {version} never arrived");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    stop.store(true, Ordering::SeqCst);
    let (problems, polls) = poller.join().unwrap();
    let _ = sync.kill();
    let _ = sync.wait();
    assert!(polls > 0);
    assert!(problems.is_empty(), "{problems:?}");
    check_model(&local.join("1")).unwrap();
    check_model(&local.join("2")).unwrap();
}
