//! Hostile inputs to the SavedModel side (threats.md sections 6 and 10):
//! protos nested past the recursion limit, and assets that are symbolic
//! links, on the way in (`assets.rs: check_asset_source`, checked again in
//! `builder.rs: write_files`) and in a model being validated
//! (`validate/assets.rs: MetaGraphCheck::assets`).

use std::fs;
use std::path::{Path, PathBuf};

use prost::Message;
use savedmodel_proto::tensorflow::{
    self, AssetFileDef, AttrValue, GraphDef, MetaGraphDef, NameAttrList, NodeDef, attr_value,
};

use crate::reader::{ASSET_FILE_DEF_TYPE, ASSETS_KEY};
use crate::validate::{Report, ValidateOptions, validate};
use crate::{DType, Error, Graph, MetaGraphBuilder, SavedModel, SavedModelBuilder};

// ---------------------------------------------------------------------------
// Recursion depth

/// A `SavedModel` whose one node has an attr nesting `AttrValue.func.attr`
/// `links` times (three message levels each), below the five levels of
/// `SavedModel.meta_graphs`, `MetaGraphDef.graph_def`, `GraphDef.node`,
/// the attr map entry and the `AttrValue`.
fn deep_saved_model(links: usize) -> Vec<u8> {
    let mut value = AttrValue {
        value: Some(attr_value::Value::S(b"leaf".to_vec())),
    };
    for _ in 0..links {
        let mut list = NameAttrList {
            name: "f".into(),
            ..NameAttrList::default()
        };
        list.attr.insert("a".into(), value);
        value = AttrValue {
            value: Some(attr_value::Value::Func(list)),
        };
    }
    let mut node = NodeDef {
        name: "deep".into(),
        op: "Const".into(),
        ..NodeDef::default()
    };
    node.attr.insert("value".into(), value);
    tensorflow::SavedModel {
        saved_model_schema_version: 1,
        meta_graphs: vec![MetaGraphDef {
            graph_def: Some(GraphDef {
                node: vec![node],
                ..GraphDef::default()
            }),
            ..MetaGraphDef::default()
        }],
    }
    .encode_to_vec()
}

#[test]
fn saved_models_nested_past_the_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // 5 + 3 * 31 = 98 levels below the SavedModel: read, and fingerprinted.
    fs::write(dir.path().join("saved_model.pb"), deep_saved_model(31)).unwrap();
    let model = SavedModel::open(dir.path()).unwrap();
    assert_eq!(model.proto().meta_graphs.len(), 1);
    crate::fingerprint::fingerprint_from_bytes(&deep_saved_model(31), None).unwrap();

    // 101 levels, and 3,005: refused with the file named, no stack overflow.
    for links in [32, 1000] {
        let bytes = deep_saved_model(links);
        let path = dir.path().join("saved_model.pb");
        fs::write(&path, &bytes).unwrap();
        let e = SavedModel::open(dir.path()).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
        let message = e.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("recursion limit reached"), "{message}");
        // The canonicalizer (which runs first) stops at the same depth.
        let e = crate::fingerprint::fingerprint_from_bytes(&bytes, None).unwrap_err();
        let message = format!("{e}: {:?}", std::error::Error::source(&e));
        assert!(message.contains("recursion limit exceeded"), "{message}");
        // And validation reports it as the model's error.
        let report = validate(dir.path(), &ValidateOptions::default());
        assert!(
            report
                .errors()
                .any(|f| f.message.contains("recursion limit reached")),
            "{report}"
        );
    }
}

// ---------------------------------------------------------------------------
// Symlinked asset sources, when writing

/// A model whose table reads the vocabulary asset at `source`.
fn builder_with_asset(source: &Path) -> crate::Result<SavedModelBuilder> {
    let mut g = Graph::new();
    let asset = g.asset("vocab_path", source)?;
    let table = g.string_to_index_table_from_asset("table", &asset, -1)?;
    let words = g.placeholder("words", DType::String, [-1])?;
    let ids = g.lookup("ids", &table, &words)?;
    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature("serving_default", &[("words", &words)], &[("ids", &ids)])?;
    let mut builder = SavedModelBuilder::new();
    builder.add_meta_graph(meta)?;
    Ok(builder)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(unix)]
#[test]
fn a_source_replaced_by_a_symlink_before_writing_is_refused() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("vocab.txt");
    fs::write(&source, "a\nb\n").unwrap();
    let secret = tmp.path().join("secret.txt");
    fs::write(&secret, "not for the model\n").unwrap();

    // A symlink is refused when the asset is added...
    let link = tmp.path().join("link.txt");
    symlink(&secret, &link).unwrap();
    let e = builder_with_asset(&link).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(e.to_string().contains(&link.display().to_string()), "{e}");

    // ...and again when the files are copied, if the source became one in
    // between: nothing is written.
    let builder = builder_with_asset(&source).unwrap();
    fs::remove_file(&source).unwrap();
    symlink(&secret, &source).unwrap();
    let export = tmp.path().join("models/1");
    let e = builder.write_to(&export).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(e.to_string().contains(&source.display().to_string()), "{e}");
    assert!(!export.exists());
    assert_eq!(names_in(&tmp.path().join("models")), Vec::<String>::new());
}

/// A directory on the way to the source may be a symlink: the path is the
/// caller's (`/tmp` itself is one on macOS). What is copied is the file's
/// bytes, into a regular file under `assets/`; nothing is written through
/// the link.
#[cfg(unix)]
#[test]
fn sources_through_a_symlinked_directory_are_copied() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    fs::create_dir(&real).unwrap();
    fs::write(real.join("vocab.txt"), "a\nb\n").unwrap();
    let linked = tmp.path().join("linked");
    symlink(&real, &linked).unwrap();

    let builder = builder_with_asset(&linked.join("vocab.txt")).unwrap();
    let export = tmp.path().join("models/1");
    builder.write_to(&export).unwrap();
    let stored = export.join("assets/vocab.txt");
    let meta = fs::symlink_metadata(&stored).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(fs::read_to_string(&stored).unwrap(), "a\nb\n");
    assert_eq!(names_in(&real), ["vocab.txt"]);
    assert_clean(&validate(&export, &ValidateOptions::default()));
}

// ---------------------------------------------------------------------------
// Symlinked assets in a model being validated

fn assert_clean(report: &Report) {
    assert!(!report.has_errors(), "{report}");
}

/// The error about asset `name` in `report`, which must say `expected`.
fn assert_asset_error(report: &Report, name: &str, expected: &str) {
    assert!(
        report.errors().any(|f| f.location.contains("asset")
            && f.message.contains(&format!("assets/{name}"))
            && f.message.contains(expected)),
        "no error about assets/{name} saying {expected:?}:\n{report}"
    );
}

/// A valid model with the asset `vocab.txt` in `tmp/<name>`.
fn model_with_asset(tmp: &Path, name: &str) -> PathBuf {
    let sources = tmp.join(format!("{name}.sources"));
    fs::create_dir(&sources).unwrap();
    let source = sources.join("vocab.txt");
    fs::write(&source, "a\nb\n").unwrap();
    let mut builder = builder_with_asset(&source).unwrap();
    builder.fingerprint(false);
    let export = tmp.join(name);
    builder.write_to(&export).unwrap();
    let names = names_in(&export.join("assets"));
    assert_eq!(names, ["vocab.txt"]);
    assert_clean(&validate(&export, &ValidateOptions::default()));
    export
}

/// Renames the model's asset to `filename` in `asset_file_def` and in the
/// `saved_model_assets` collection.
fn rename_asset(export: &Path, filename: &str) {
    let pb = export.join("saved_model.pb");
    let mut model = tensorflow::SavedModel::decode(fs::read(&pb).unwrap().as_slice()).unwrap();
    let meta = &mut model.meta_graphs[0];
    for def in &mut meta.asset_file_def {
        def.filename = filename.into();
    }
    if let Some(tensorflow::collection_def::Kind::AnyList(list)) = meta
        .collection_def
        .get_mut(ASSETS_KEY)
        .and_then(|c| c.kind.as_mut())
    {
        for any in &mut list.value {
            assert!(any.type_url.ends_with(ASSET_FILE_DEF_TYPE));
            let mut def = AssetFileDef::decode(any.value.as_slice()).unwrap();
            def.filename = filename.into();
            any.value = def.encode_to_vec();
        }
    }
    fs::write(&pb, model.encode_to_vec()).unwrap();
}

#[cfg(unix)]
#[test]
fn asset_files_that_are_symlinks_out_of_the_model_are_errors() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside.txt");
    fs::write(&outside, "a\nb\n").unwrap();
    let message = "leads outside assets/";

    // The asset is a symlink to a file outside the model.
    let export = model_with_asset(tmp.path(), "absolute");
    let asset = export.join("assets/vocab.txt");
    fs::remove_file(&asset).unwrap();
    symlink(&outside, &asset).unwrap();
    assert_asset_error(
        &validate(&export, &ValidateOptions::default()),
        "vocab.txt",
        message,
    );

    // A relative one climbing out.
    let export = model_with_asset(tmp.path(), "relative");
    let asset = export.join("assets/vocab.txt");
    fs::remove_file(&asset).unwrap();
    symlink("../../outside.txt", &asset).unwrap();
    assert_eq!(fs::read_to_string(&asset).unwrap(), "a\nb\n");
    assert_asset_error(
        &validate(&export, &ValidateOptions::default()),
        "vocab.txt",
        message,
    );

    // A dangling one.
    let export = model_with_asset(tmp.path(), "dangling");
    let asset = export.join("assets/vocab.txt");
    fs::remove_file(&asset).unwrap();
    symlink(tmp.path().join("missing.txt"), &asset).unwrap();
    assert_asset_error(
        &validate(&export, &ValidateOptions::default()),
        "vocab.txt",
        "(or nowhere)",
    );

    // A symlink to another file inside assets/ is fine.
    let export = model_with_asset(tmp.path(), "inside");
    let assets = export.join("assets");
    fs::rename(assets.join("vocab.txt"), assets.join("real.txt")).unwrap();
    symlink("real.txt", assets.join("vocab.txt")).unwrap();
    assert_clean(&validate(&export, &ValidateOptions::default()));
}

#[cfg(unix)]
#[test]
fn asset_directories_that_are_symlinks_out_of_the_model_are_errors() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::write(elsewhere.join("vocab.txt"), "a\nb\n").unwrap();
    let message = "leads outside assets/";

    // `assets/sub` is a symlink out of the model and the asset is
    // `sub/vocab.txt`: the file itself is no link.
    let export = model_with_asset(tmp.path(), "sub_dir");
    let assets = export.join("assets");
    symlink(&elsewhere, assets.join("sub")).unwrap();
    rename_asset(&export, "sub/vocab.txt");
    assert_asset_error(
        &validate(&export, &ValidateOptions::default()),
        "sub/vocab.txt",
        message,
    );
    // The same layout with a real directory is fine.
    fs::remove_file(assets.join("sub")).unwrap();
    fs::create_dir(assets.join("sub")).unwrap();
    fs::rename(assets.join("vocab.txt"), assets.join("sub/vocab.txt")).unwrap();
    assert_clean(&validate(&export, &ValidateOptions::default()));

    // `assets/` itself is a symlink out of the model.
    let export = model_with_asset(tmp.path(), "assets_dir");
    fs::remove_dir_all(export.join("assets")).unwrap();
    symlink(&elsewhere, export.join("assets")).unwrap();
    assert_asset_error(
        &validate(&export, &ValidateOptions::default()),
        "vocab.txt",
        message,
    );

    // A model reached through a symlinked directory is not affected.
    let export = model_with_asset(tmp.path(), "through_link");
    let alias = tmp.path().join("alias");
    symlink(&export, &alias).unwrap();
    assert_clean(&validate(&alias, &ValidateOptions::default()));
}
