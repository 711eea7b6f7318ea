use super::*;
use crate::DType;
use crate::graph::{SourceData, TensorSource, VariableValue};

#[test]
fn meta_graph_def_carries_saver_init_op_and_assets_like_tensorflow() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("vocab.txt");
    fs::write(&vocab, "a\nb\n").unwrap();
    let mut g = Graph::new();
    let v = g.variable("v", Tensor::scalar(1.0f32)).unwrap();
    let asset = g.asset("vocab_path", &vocab).unwrap();
    let table = g
        .string_to_index_table_from_asset("table", &asset, -1)
        .unwrap();
    let words = g.placeholder("words", DType::String, [-1]).unwrap();
    let ids = g.lookup("ids", &table, &words).unwrap();
    let extra = g.no_op("extra_init").unwrap();
    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature(
        "serving_default",
        &[("words", &words)],
        &[("ids", &ids), ("v", v.value())],
    )
    .unwrap()
    .init_op(&extra);
    let mut builder = SavedModelBuilder::new();
    builder.add_meta_graph(meta).unwrap();
    let model = builder.saved_model();
    assert_eq!(model.saved_model_schema_version, 1);
    let m = &model.meta_graphs[0];
    assert!(m.meta_info_def.as_ref().unwrap().stripped_default_attrs);
    let saver = m.saver_def.as_ref().unwrap();
    assert_eq!(
        (
            &saver.filename_tensor_name[..],
            &saver.save_tensor_name[..],
            &saver.restore_op_name[..]
        ),
        ("save/Const:0", "save/Identity:0", "save/restore_all")
    );
    assert!(saver.sharded);
    assert_eq!(saver.version, 2);
    // Tables and the extra op grouped into one init op, named both ways.
    let Some(collection_def::Kind::NodeList(list)) = &m.collection_def[MAIN_OP_COLLECTION].kind
    else {
        panic!("main op collection is not a node list");
    };
    assert_eq!(list.value, vec!["main_op".to_owned()]);
    let init = &m.signature_def[INIT_OP_SIGNATURE_KEY].outputs[INIT_OP_SIGNATURE_KEY];
    assert_eq!(
        init.encoding,
        Some(tensor_info::Encoding::Name("main_op".into()))
    );
    let graph = m.graph_def.as_ref().unwrap();
    let main = graph.node.iter().find(|n| n.name == "main_op").unwrap();
    assert_eq!(main.input, vec!["^init_all_tables", "^extra_init"]);
    // The asset: one AssetFileDef and one collection entry.
    assert_eq!(m.asset_file_def.len(), 1);
    assert_eq!(m.asset_file_def[0].filename, "vocab.txt");
    let Some(collection_def::Kind::AnyList(any)) = &m.collection_def[ASSETS_COLLECTION].kind else {
        panic!("assets collection is not an any list");
    };
    assert_eq!(any.value.len(), 1);
    assert_eq!(
        any.value[0].type_url,
        "type.googleapis.com/tensorflow.AssetFileDef"
    );
    // Restore assigns v from the checkpoint.
    let restore = graph.node.iter().find(|n| n.op == "RestoreV2").unwrap();
    assert_eq!(restore.input[0], "save/Const");
}

#[test]
fn init_ops_must_belong_to_the_graph() {
    let mut other = Graph::new();
    let foreign = other.no_op("elsewhere").unwrap();
    let mut meta = MetaGraphBuilder::new(Graph::new(), &["serve"]);
    meta.init_op(&foreign);
    let err = SavedModelBuilder::new().add_meta_graph(meta).unwrap_err();
    assert!(err.to_string().contains("not a node"), "{err}");
}

#[test]
fn a_model_needs_a_meta_graph() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        SavedModelBuilder::new()
            .write_to(dir.path().join("1"))
            .is_err()
    );
    assert!(!dir.path().join("1").exists());
}

/// A float32 source that hands out its bytes 3 at a time, or whole.
#[derive(Debug)]
struct Floats {
    bytes: Vec<u8>,
    trickle: bool,
}

struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(3).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

impl TensorSource for Floats {
    fn dtype(&self) -> DType {
        DType::Float
    }
    fn shape(&self) -> &[i64] {
        &[300, 1000]
    }
    fn open(&self) -> savedmodel_graph::Result<SourceData<'_>> {
        Ok(if self.trickle {
            SourceData::Reader(Box::new(Trickle(&self.bytes)))
        } else {
            SourceData::Bytes(std::borrow::Cow::Borrowed(&self.bytes))
        })
    }
}

fn model_with(values: Vec<VariableValue>) -> SavedModelBuilder {
    let mut builder = SavedModelBuilder::new();
    builder.fsync(false);
    for (i, value) in values.into_iter().enumerate() {
        let mut g = Graph::new();
        g.variable("w", value).unwrap();
        g.variable("b", Tensor::vector(&[1.5f32, -2.0])).unwrap();
        let tags: [&[&str]; 3] = [&["serve"], &["serve", "gpu"], &["train"]];
        builder
            .add_meta_graph(MetaGraphBuilder::new(g, tags[i]))
            .unwrap();
    }
    builder
}

#[test]
fn streamed_variables_write_the_same_checkpoint_as_tensors() {
    // 1.2 MB: more than one 1 MiB chunk when read through a reader.
    let values: Vec<f32> = (0..300_000).map(|i| (i as f32).sin()).collect();
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensor = Tensor::new(&[300, 1000], &values).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = |name: &str, builder: SavedModelBuilder| {
        let out = dir.path().join(name);
        builder.write_to(&out).unwrap();
        let read = |f: &str| fs::read(out.join("variables").join(f)).unwrap();
        (
            read("variables.index"),
            read("variables.data-00000-of-00001"),
        )
    };
    let expected = files("tensor", model_with(vec![tensor.clone().into()]));
    assert!(expected.1.len() > 1_200_000);
    for trickle in [false, true] {
        let source = VariableValue::from_source(Floats {
            bytes: bytes.clone(),
            trickle,
        });
        // Two MetaGraphs share the source (a clone) and the tensor
        // (compared by value): one checkpoint, same bytes.
        let shared = model_with(vec![source.clone(), source.clone(), tensor.clone().into()]);
        assert_eq!(shared.variables.len(), 2);
        assert_eq!(files(&format!("source-{trickle}"), shared), expected);
    }
}

#[test]
fn streamed_variables_are_compared_and_checked() {
    let values: Vec<f32> = (0..300_000).map(|i| i as f32).collect();
    let mut bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let a = VariableValue::from_source(Floats {
        bytes: bytes.clone(),
        trickle: false,
    });
    bytes[1_100_000] ^= 1;
    let b = VariableValue::from_source(Floats {
        bytes: bytes.clone(),
        trickle: true,
    });
    let mut builder = model_with(vec![a]);
    let mut g = Graph::new();
    g.variable("w", b).unwrap();
    let err = builder
        .add_meta_graph(MetaGraphBuilder::new(g, &["serve", "gpu"]))
        .unwrap_err();
    assert!(err.to_string().contains("variable 'w' differs"), "{err}");
    assert_eq!(builder.variables.len(), 2);

    // A source shorter than its shape fails the write, which leaves
    // nothing behind.
    bytes.truncate(1000);
    let short = VariableValue::from_source(Floats {
        bytes,
        trickle: true,
    });
    let dir = tempfile::tempdir().unwrap();
    let err = model_with(vec![short])
        .write_to(dir.path().join("1"))
        .unwrap_err();
    assert!(err.to_string().contains("gives 1000 bytes"), "{err}");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}
