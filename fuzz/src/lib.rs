//! What the fuzz targets share: a scratch directory per process (for the
//! entry points that read files by path, as the CLI does), a small
//! SavedModel written once by the library's own builder (for the targets
//! that fuzz one file inside a model), and the checks `savedmodel validate`
//! and `savedmodel show` run on a model directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use savedmodel::ops::ExampleSpec;
use savedmodel::show;
use savedmodel::validate::{ValidateOptions, validate};
use savedmodel::{DType, Graph, MetaGraphBuilder, SavedModel, SavedModelBuilder, Tensor};

/// A directory of this process's own under the system temporary directory,
/// created on first use (`name` keeps targets apart). Left behind at exit:
/// libFuzzer ends a process without unwinding.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("savedmodel-fuzz-{name}-{}", std::process::id()));
    if !dir.is_dir() {
        fs::create_dir_all(&dir).expect("creating the fuzz scratch directory");
    }
    dir
}

/// Writes `data` to `dir/relative`, creating the directories on the way.
pub fn put(dir: &Path, relative: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(relative);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("creating a fuzz scratch directory");
    }
    fs::write(&path, data).expect("writing a fuzz scratch file");
    path
}

/// A small SavedModel, written once per process into a scratch directory by
/// `SavedModelBuilder`: `y = 0.5 x + 2` with a variable, a predict signature
/// (`serving_default`), a classify and a regress signature over serialized
/// `tf.Example`s, and a fingerprint. Returns the directory of a fresh copy
/// named `name`, so each target can replace one file in it.
pub fn small_model(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let original = BUILT.get_or_init(|| {
        let dir = scratch_dir("model").join("original");
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("removing an old fuzz model");
        }
        build_small_model()
            .write_to(&dir)
            .expect("writing the fuzz model");
        dir
    });
    let copy = scratch_dir("model").join(name);
    if copy.exists() {
        fs::remove_dir_all(&copy).expect("removing an old fuzz model copy");
    }
    copy_tree(original, &copy);
    copy
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("creating a fuzz model copy");
    for entry in fs::read_dir(from).expect("listing the fuzz model") {
        let entry = entry.expect("listing the fuzz model");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copying the fuzz model");
        }
    }
}

fn build_small_model() -> SavedModelBuilder {
    let build = || -> savedmodel::Result<SavedModelBuilder> {
        let mut g = Graph::new();
        let x = g.placeholder("x", DType::Float, [-1])?;
        let a = g.variable("a", Tensor::new(&[], &[0.5f32])?)?;
        let b = g.constant("b", Tensor::new(&[], &[2.0f32])?)?;
        let ax = g.mul("mul", &x, a.value())?;
        let y = g.add("y", &ax, &b)?;
        let serialized = g.placeholder("tf_example", DType::String, [-1])?;
        let spec = ExampleSpec::new().dense("x", DType::Float, &[1]);
        let parsed = g.parse_example("ParseExample", &serialized, &spec)?;
        let px = g.identity("px", parsed.dense("x").expect("x was parsed"))?;
        let pax = g.mul("pmul", &px, a.value())?;
        let py = g.add("py", &pax, &b)?;
        let mut meta = MetaGraphBuilder::new(g, &["serve"]);
        meta.predict_signature("serving_default", &[("x", &x)], &[("y", &y)])?
            .regress_signature("regress_x_to_y", &serialized, &py)?
            .classify_signature("classify_x_to_y", &serialized, None, Some(&py))?;
        let mut builder = SavedModelBuilder::new();
        builder.add_meta_graph(meta)?.fingerprint(true).fsync(false);
        Ok(builder)
    };
    build().expect("building the fuzz model")
}

/// What `savedmodel validate` and `savedmodel show` do with the model in
/// `dir`: validate it, then open it and print every view of it.
pub fn validate_and_show(dir: &Path) {
    let report = validate(dir, &ValidateOptions::default());
    // Every finding prints.
    let _ = report.to_string();
    let Ok(model) = SavedModel::open(dir) else {
        return;
    };
    let _ = show::tag_sets(&model);
    let _ = show::all(&model);
    let _ = show::concrete_functions(&model);
    for meta_graph in model.meta_graphs() {
        let _ = show::ops(&meta_graph);
        let _ = show::signature_keys(&meta_graph);
        for key in meta_graph.signature_keys() {
            let _ = show::signature(&meta_graph, &key);
        }
        let _ = meta_graph.assets();
        let _ = meta_graph.init_op();
        let _ = meta_graph.variables();
    }
}
