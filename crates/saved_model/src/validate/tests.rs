//! Unit tests of the validator's parts; the integration tests
//! (`tests/it/saved_model_read.rs`) validate real and broken models.

use savedmodel_checkpoint::crc;

use super::assets::asset_name_problem;
use super::*;
use crate::proto::tensorflow::tensor_info::Encoding;
use crate::proto::tensorflow::{DataType, TensorInfo, TensorShapeProto};
use crate::serving::TfRecords;

/// The records before the first framing error, and that error.
fn tfrecords(bytes: &[u8]) -> (Vec<&[u8]>, Option<String>) {
    let mut records = Vec::new();
    for item in TfRecords::new(bytes) {
        match item {
            Ok(record) => records.push(record),
            Err(e) => return (records, Some(e.to_string())),
        }
    }
    (records, None)
}

#[test]
fn asset_names_that_escape_are_caught() {
    assert!(asset_name_problem("vocab.txt").is_none());
    assert!(asset_name_problem("sub/vocab.txt").is_none());
    for bad in [
        "",
        "..",
        "../x",
        "a/../../x",
        "/etc/passwd",
        "a\\..\\b",
        "x\0",
    ] {
        assert!(asset_name_problem(bad).is_some(), "{bad:?} accepted");
    }
}

fn record(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc::mask(crc::crc32c(&len)).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc::mask(crc::crc32c(data)).to_le_bytes());
    out
}

#[test]
fn tfrecord_framing_is_checked() {
    let mut bytes = record(b"abc");
    bytes.extend(record(b""));
    let (records, problem) = tfrecords(&bytes);
    assert_eq!(records, vec![b"abc".as_slice(), b"".as_slice()]);
    assert_eq!(problem, None);
    let mut flipped = bytes.clone();
    flipped[13] ^= 1;
    let (records, problem) = tfrecords(&flipped);
    assert!(records.is_empty());
    assert!(problem.unwrap().contains("data checksum mismatch"));
    let (records, problem) = tfrecords(&bytes[..bytes.len() - 1]);
    assert_eq!(records.len(), 1);
    assert!(problem.unwrap().contains("truncated"));
    let mut huge = bytes.clone();
    let len = u64::MAX.to_le_bytes();
    huge[..8].copy_from_slice(&len);
    huge[8..12].copy_from_slice(&crc::mask(crc::crc32c(&len)).to_le_bytes());
    assert!(
        tfrecords(&huge)
            .1
            .unwrap()
            .contains("more than the file holds")
    );
}

#[test]
fn classify_rules_follow_tensorflow_serving() {
    let info = |dtype: DataType, dims: &[i64]| TensorInfo {
        dtype: dtype as i32,
        tensor_shape: Some(TensorShapeProto {
            dim: dims
                .iter()
                .map(|&size| crate::proto::tensorflow::tensor_shape_proto::Dim {
                    size,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        }),
        encoding: Some(Encoding::Name("t:0".to_owned())),
    };
    let mut def = SignatureDef {
        method_name: CLASSIFY_METHOD_NAME.to_owned(),
        ..Default::default()
    };
    def.inputs
        .insert("inputs".to_owned(), info(DataType::DtString, &[-1]));
    def.outputs
        .insert("classes".to_owned(), info(DataType::DtString, &[-1, 3]));
    def.outputs
        .insert("scores".to_owned(), info(DataType::DtFloat, &[-1, 3]));
    assert!(classify_problems(&def).is_empty());
    let first = |p: Vec<(Severity, String)>| p.into_iter().next().unwrap().1;
    let mut two_inputs = def.clone();
    two_inputs
        .inputs
        .insert("extra".to_owned(), info(DataType::DtString, &[-1]));
    assert!(first(classify_problems(&two_inputs)).contains("exactly one input"));
    let mut mismatch = def.clone();
    mismatch
        .outputs
        .insert("scores".to_owned(), info(DataType::DtFloat, &[-1, 4]));
    assert!(first(classify_problems(&mismatch)).contains("agree in dimension 1"));
    let mut rank1 = def.clone();
    rank1
        .outputs
        .insert("scores".to_owned(), info(DataType::DtFloat, &[-1]));
    assert!(first(classify_problems(&rank1)).contains("[batch_size, num_classes]"));
    let mut regress = SignatureDef {
        method_name: REGRESS_METHOD_NAME.to_owned(),
        ..Default::default()
    };
    regress
        .inputs
        .insert("inputs".to_owned(), info(DataType::DtString, &[-1]));
    regress
        .outputs
        .insert("outputs".to_owned(), info(DataType::DtFloat, &[-1, 1]));
    assert!(regress_problems(&regress).is_empty());
    regress
        .outputs
        .insert("outputs".to_owned(), info(DataType::DtFloat, &[-1, 2]));
    assert!(first(regress_problems(&regress)).contains("[batch_size] or [batch_size, 1]"));
}

/// One rule, two callers: the builder refuses a classify signature whose
/// outputs disagree in batch size, and `validate` reports the same finding
/// on a model that has one.
#[test]
fn the_builder_and_validate_share_the_classify_batch_size_rule() {
    use crate::builder::{MetaGraphBuilder, SavedModelBuilder};
    use crate::{DType, Graph};
    use prost::Message;

    let mut g = Graph::new();
    let examples = g.placeholder("examples", DType::String, [-1]).unwrap();
    let classes = g.placeholder("classes", DType::String, [8, 3]).unwrap();
    let scores = g.placeholder("scores", DType::Float, [4, 3]).unwrap();
    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    let refused = meta
        .classify_signature("k", &examples, Some(&classes), Some(&scores))
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("differ in batch size (8 vs 4)"),
        "{refused}"
    );
    // The same signature handed to the builder whole is refused the same way.
    let mut def = crate::signature::predict_signature(
        "k",
        &[("inputs", &examples)],
        &[("classes", &classes), ("scores", &scores)],
    )
    .unwrap();
    def.method_name = CLASSIFY_METHOD_NAME.to_owned();
    let refused_whole = meta.signature("k", def).unwrap_err().to_string();
    assert_eq!(refused_whole, refused);

    // Written as a predict signature, then turned into a classify one.
    meta.predict_signature(
        DEFAULT_SERVING_SIGNATURE_DEF_KEY,
        &[("inputs", &examples)],
        &[("classes", &classes), ("scores", &scores)],
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("1");
    let mut builder = SavedModelBuilder::new();
    builder.add_meta_graph(meta).unwrap();
    builder.write_to(&dir).unwrap();
    assert!(validate(&dir, &ValidateOptions::default()).is_clean());
    let pb = dir.join(crate::proto::SAVED_MODEL_FILENAME_PB);
    let mut model =
        crate::proto::tensorflow::SavedModel::decode(std::fs::read(&pb).unwrap().as_slice())
            .unwrap();
    model.meta_graphs[0]
        .signature_def
        .get_mut(DEFAULT_SERVING_SIGNATURE_DEF_KEY)
        .unwrap()
        .method_name = CLASSIFY_METHOD_NAME.to_owned();
    std::fs::write(&pb, model.encode_to_vec()).unwrap();

    let report = validate(&dir, &ValidateOptions::default());
    let findings: Vec<&Finding> = report.findings.iter().collect();
    assert_eq!(findings.len(), 1, "{report}");
    assert_eq!(findings[0].severity, Severity::Warning);
    assert_eq!(findings[0].location, "signature 'serving_default'");
    assert_eq!(refused, format!("signature 'k': {}", findings[0].message));
}

/// Writes `meta` as a SavedModel into a new directory under `tmp`, applies
/// `edit` to its `saved_model.pb`, and validates it.
fn written_and_edited(
    tmp: &std::path::Path,
    name: &str,
    meta: crate::builder::MetaGraphBuilder,
    edit: impl FnOnce(&mut crate::proto::tensorflow::MetaGraphDef),
) -> Report {
    use prost::Message;
    let dir = tmp.join(name);
    let mut builder = crate::builder::SavedModelBuilder::new();
    builder.add_meta_graph(meta).unwrap();
    builder.write_to(&dir).unwrap();
    let pb = dir.join(crate::proto::SAVED_MODEL_FILENAME_PB);
    let mut model =
        crate::proto::tensorflow::SavedModel::decode(std::fs::read(&pb).unwrap().as_slice())
            .unwrap();
    edit(&mut model.meta_graphs[0]);
    std::fs::write(&pb, model.encode_to_vec()).unwrap();
    validate(&dir, &ValidateOptions::default())
}

/// Removes the init op (signature and collection), as a hand-made exporter
/// might forget it.
fn without_init_op(m: &mut crate::proto::tensorflow::MetaGraphDef) {
    m.signature_def.remove(crate::reader::INIT_OP_SIGNATURE_KEY);
    m.collection_def.remove(crate::reader::MAIN_OP_KEY);
}

#[test]
fn tables_a_signature_reads_without_an_init_op_are_an_error() {
    use crate::{DType, Graph};
    let tmp = tempfile::tempdir().unwrap();
    let mut g = Graph::new();
    let index = g.placeholder("index", DType::Int64, [-1]).unwrap();
    let table = g
        .index_to_string_table("labels", &["no", "yes"], "UNK")
        .unwrap();
    let label = g.lookup("label", &table, &index).unwrap();
    let mut meta = crate::builder::MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature(
        "serving_default",
        &[("index", &index)],
        &[("label", &label)],
    )
    .unwrap();
    let report = written_and_edited(tmp.path(), "read", meta.clone(), without_init_op);
    let errors: Vec<&Finding> = report.errors().collect();
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0].location, "init op");
    assert!(
        errors[0].message.contains("signatures read table(s)")
            && errors[0].message.contains("Table not initialized"),
        "{report}"
    );
    // The same graph whose signature does not read the table: a warning.
    let mut g = meta.graph().clone();
    let other = g.placeholder("other", DType::Float, [-1]).unwrap();
    let mut unread = crate::builder::MetaGraphBuilder::new(g, &["serve"]);
    unread
        .predict_signature("serving_default", &[("x", &other)], &[("y", &other)])
        .unwrap();
    let report = written_and_edited(tmp.path(), "unread", unread, without_init_op);
    assert!(!report.has_errors(), "{report}");
    assert!(
        report
            .warnings()
            .any(|w| w.message.contains("no signature reads those tables")),
        "{report}"
    );
}

#[test]
fn variables_a_signature_reads_that_nothing_restores_are_an_error() {
    use crate::{DType, Graph, Tensor};
    let tmp = tempfile::tempdir().unwrap();
    let mut g = Graph::new();
    let w = g.variable("w", Tensor::scalar(2.0f32)).unwrap();
    let x = g.placeholder("x", DType::Float, [-1]).unwrap();
    let y = g.mul("y", &x, w.value()).unwrap();
    let mut meta = crate::builder::MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature("serving_default", &[("x", &x)], &[("y", &y)])
        .unwrap();
    let no_saver = |m: &mut crate::proto::tensorflow::MetaGraphDef| m.saver_def = None;
    let report = written_and_edited(tmp.path(), "no_saver", meta.clone(), no_saver);
    let errors: Vec<&Finding> = report.errors().collect();
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0].location, "saver");
    assert!(
        errors[0].message.contains("signatures read 'w'"),
        "{report}"
    );
}
