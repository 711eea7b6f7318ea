//! `savedmodel graph`: the SVG parses as XML and has the signature's nodes,
//! shapes, variables and labels; DOT and HTML are written; and, checked as
//! a person would see it, the HTML of a small model and of a CNN converted
//! from ONNX is opened in headless Chromium (Debian's `chromium`, installed
//! by `.ci/run`): the screenshot is not blank and the node labels are in
//! the DOM.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use savedmodel::{DType, Graph, MetaGraphBuilder, SavedModelBuilder, Tensor};
use savedmodel_onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
};
use savedmodel_tests::onnx_build::float_value;
use savedmodel_tests::paths::savedmodel_bin;

const CHROMIUM: &str = "/usr/bin/chromium";

/// `y = relu(x W + b)`, plus a node the signature does not run.
fn small_model(dir: &Path) {
    let mut g = Graph::new();
    let x = g.placeholder("x", DType::Float, [-1, 2]).unwrap();
    let w = g
        .variable(
            "dense/kernel",
            Tensor::new(&[2, 3], &[1.0f32, 0.0, 1.0, 0.0, 1.0, 1.0]).unwrap(),
        )
        .unwrap();
    let b = g
        .variable(
            "dense/bias",
            Tensor::new(&[3], &[0.5f32, 0.5, 0.5]).unwrap(),
        )
        .unwrap();
    let xw = g.matmul("dense/MatMul", &x, w.value()).unwrap();
    let z = g.bias_add("dense/BiasAdd", &xw, b.value()).unwrap();
    let y = g.relu("dense/Relu", &z).unwrap();
    g.identity("unused", &x).unwrap();
    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature("serving_default", &[("x", &x)], &[("y", &y)])
        .unwrap();
    let mut builder = SavedModelBuilder::new();
    builder.add_meta_graph(meta).unwrap();
    builder.write_to(dir).unwrap();
}

fn graph(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(savedmodel_bin())
        .arg("graph")
        .args(args)
        .output()
        .unwrap()
}

fn draw(dir: &Path, out: &Path, extra: &[&str]) {
    let mut args: Vec<&std::ffi::OsStr> = vec![dir.as_os_str(), "-o".as_ref(), out.as_os_str()];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    let output = graph(&args);
    assert!(
        output.status.success(),
        "savedmodel graph: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn graph_svg_is_xml_with_the_signature_subgraph() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("1");
    small_model(&dir);
    let svg_path = tmp.path().join("g.svg");
    draw(&dir, &svg_path, &[]);
    let text = fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let nodes: Vec<(String, String)> = doc
        .descendants()
        .filter(|n| n.attribute("data-name").is_some())
        .map(|n| {
            (
                n.attribute("data-name").unwrap().to_owned(),
                n.attribute("class").unwrap().to_owned(),
            )
        })
        .collect();
    let class_of = |name: &str| {
        nodes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.as_str())
    };
    assert_eq!(class_of("x"), Some("node input"), "{nodes:?}");
    assert_eq!(class_of("dense/kernel"), Some("node variable"));
    assert_eq!(class_of("dense/MatMul"), Some("node op"));
    assert_eq!(class_of("output:y"), Some("node output"));
    assert_eq!(class_of("unused"), None, "not on the signature's path");
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    for label in [
        "input x", "MatMul", "BiasAdd", "output y", "(-1, 2)", "(2, 3)",
    ] {
        assert!(texts.contains(&label), "{label} not in {texts:?}");
    }
    let edges = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("edge"))
        .count();
    assert!(edges >= 8, "{edges} edges");

    // --all draws the unused node; --depth 1 collapses `dense/`.
    let all = tmp.path().join("all.svg");
    draw(&dir, &all, &["--all", "--depth", "1"]);
    let text = fs::read_to_string(&all).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let names: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute("data-name"))
        .collect();
    assert!(
        names.contains(&"unused") && names.contains(&"dense/"),
        "{names:?}"
    );
    assert!(!names.contains(&"dense/MatMul"), "{names:?}");

    let dot = tmp.path().join("g.dot");
    draw(&dir, &dot, &[]);
    let dot = fs::read_to_string(&dot).unwrap();
    assert!(dot.starts_with("digraph savedmodel {") && dot.trim_end().ends_with('}'));
    assert!(dot.contains("label=\"(-1, 2)\""), "{dot}");

    let bad = graph(&[
        dir.as_os_str(),
        "--signature".as_ref(),
        "nope".as_ref(),
        "-o".as_ref(),
        tmp.path().join("x.svg").as_os_str(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no signature 'nope'"));
    assert!(!tmp.path().join("x.svg").exists());
}

// ---------------------------------------------------------------------------
// A small CNN in ONNX, converted by `savedmodel export --onnx`.

fn weights(name: &str, dims: &[i64]) -> TensorProto {
    let count: i64 = dims.iter().product();
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(1),
        float_data: (0..count).map(|i| ((i % 7) as f32 - 3.0) / 10.0).collect(),
        ..Default::default()
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(7),
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: vec![output.to_owned()],
        attribute: attrs,
        ..Default::default()
    }
}

/// conv 3x3 -> relu -> max pool -> conv 3x3 -> relu -> global average pool
/// -> flatten -> gemm -> softmax, written to `path`.
fn onnx_cnn(path: &Path) {
    let conv = |name: &str, x: &str, w: &str, b: &str, y: &str| {
        node(
            "Conv",
            name,
            &[x, w, b],
            y,
            vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1])],
        )
    };
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("cnn".into()),
            node: vec![
                conv("conv1", "image", "w1", "b1", "c1"),
                node("Relu", "relu1", &["c1"], "r1", vec![]),
                node(
                    "MaxPool",
                    "pool1",
                    &["r1"],
                    "p1",
                    vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
                ),
                conv("conv2", "p1", "w2", "b2", "c2"),
                node("Relu", "relu2", &["c2"], "r2", vec![]),
                node("GlobalAveragePool", "gap", &["r2"], "g", vec![]),
                node("Flatten", "flatten", &["g"], "f", vec![]),
                node("Gemm", "fc", &["f", "w3", "b3"], "logits", vec![]),
                node("Softmax", "softmax", &["logits"], "probs", vec![]),
            ],
            initializer: vec![
                weights("w1", &[8, 3, 3, 3]),
                weights("b1", &[8]),
                weights("w2", &[16, 8, 3, 3]),
                weights("b2", &[16]),
                weights("w3", &[16, 10]),
                weights("b3", &[10]),
            ],
            input: vec![float_value("image", &[1, 3, 16, 16])],
            output: vec![float_value("probs", &[1, 10])],
            ..Default::default()
        }),
        ..Default::default()
    };
    fs::write(path, model.encode_to_vec()).unwrap();
}

/// Opens `html` in headless Chromium: a screenshot and the DOM after the
/// page's script ran.
fn chromium(html: &Path, work: &Path) -> (PathBuf, String) {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} not found: install Debian's chromium (`apt-get install -y chromium`, as .ci/run does)"
    );
    let url = format!("file://{}", html.display());
    let common = |profile: &str| {
        let mut c = Command::new(CHROMIUM);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,800",
        ])
        .arg(format!("--user-data-dir={}", work.join(profile).display()));
        c
    };
    let png = work.join("shot.png");
    let shot = common("profile-shot")
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        png.is_file(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let dom = common("profile-dom")
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    (png, String::from_utf8(dom.stdout).unwrap())
}

/// Distinct colours and the share of pixels that are not white.
fn picture_stats(png: &Path) -> (usize, f64) {
    let decoder = png::Decoder::new(fs::File::open(png).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let pixels = &buf[..info.buffer_size()];
    let mut colours = std::collections::BTreeSet::new();
    let mut not_white = 0usize;
    let mut total = 0usize;
    for px in pixels.chunks_exact(channels) {
        colours.insert((px[0], px[1], px[2]));
        total += 1;
        if px[..3] != [255, 255, 255] {
            not_white += 1;
        }
    }
    (colours.len(), not_white as f64 / total.max(1) as f64)
}

#[test]
fn graph_html_renders_in_headless_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small/1");
    small_model(&small);
    let cnn_onnx = tmp.path().join("cnn.onnx");
    onnx_cnn(&cnn_onnx);
    let base = tmp.path().join("models/cnn");
    let export = Command::new(savedmodel_bin())
        .args(["export", "--onnx"])
        .arg(&cnn_onnx)
        .arg("--base")
        .arg(&base)
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );

    let cases: [(&str, PathBuf, &[&str]); 2] = [
        (
            "small",
            small,
            &["input x", "MatMul", "BiasAdd", "output y"],
        ),
        ("cnn", base.join("1"), &["Conv2D", "MaxPool", "Softmax"]),
    ];
    for (name, dir, labels) in cases {
        let work = tmp.path().join(format!("browser-{name}"));
        fs::create_dir_all(&work).unwrap();
        let html = work.join("graph.html");
        draw(&dir, &html, &[]);
        let page = fs::read_to_string(&html).unwrap();
        assert!(
            !page.contains("src=") && !page.contains("href=\"http"),
            "{name}: the page must load nothing"
        );
        let (png, dom) = chromium(&html, &work);
        let (colours, ink) = picture_stats(&png);
        assert!(colours >= 8, "{name}: {colours} colours: blank screenshot?");
        assert!(
            ink > 0.01,
            "{name}: only {ink:.4} of the pixels are not white"
        );
        for label in labels {
            assert!(
                dom.contains(&format!(">{label}<")),
                "{name}: label {label} not in the DOM"
            );
        }
        // The script ran: it took the fixed size off the SVG to pan and
        // zoom through its viewBox.
        let at = dom.find("<svg").unwrap();
        let tag = &dom[at..at + dom[at..].find('>').unwrap()];
        assert!(
            tag.contains("viewBox=") && !tag.contains(" width="),
            "{name}: {tag}"
        );
    }
}
