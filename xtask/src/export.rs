//! `cargo xtask export`: the whole product in one command.
//!
//! Trains a softmax regression on Fisher's iris data (shipped as
//! `xtask/data/iris.csv`, see `xtask/data/README.md`) in plain Rust, reports
//! its accuracy on a held-out fifth of the flowers, exports it through the
//! `savedmodel` library with the classifier signatures of
//! `savedmodel export` (`predict` takes the four measurements as `inputs`,
//! float `[-1, 4]`, and returns `scores` in the order setosa, versicolor,
//! virginica), publishes it atomically to `./models/iris/<version>/` (the
//! next version each run), prints the `savedmodel show --all` of the result
//! and how to serve it with TensorFlow Serving.
//!
//! The integration tests include this file (`tests/it/export.rs`) to check
//! that TensorFlow measures the same held-out accuracy as reported here.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use savedmodel_export::{ExportOptions, ExportSpec, PreparedModel, WarmupExamples, Weights};
use savedmodel_layout::{NextVersion, publish};

/// The dataset, compiled in: no download, no path to find at run time.
const IRIS_CSV: &str = include_str!("../data/iris.csv");

/// The model's name: its base path is `<models>/iris`.
pub(crate) const MODEL_NAME: &str = "iris";

/// Gradient-descent epochs (full batch).
const EPOCHS: usize = 2000;
/// Learning rate.
const LEARNING_RATE: f64 = 0.5;
/// L2 penalty on the kernel.
const L2: f64 = 1e-4;
/// Every `HOLD_OUT_EVERY`-th flower of each species (the last of each
/// group of five, in file order) is held out from training.
const HOLD_OUT_EVERY: usize = 5;

/// The iris measurements and species.
#[derive(Clone, Debug)]
pub(crate) struct Iris {
    /// Species names, in label order (setosa, versicolor, virginica).
    pub(crate) species: Vec<String>,
    /// Four measurements per flower (sepal length and width, petal length
    /// and width, in cm).
    pub(crate) features: Vec<[f32; 4]>,
    /// Species index of each flower.
    pub(crate) labels: Vec<usize>,
}

/// Parses `iris.csv`: a header `150,4,setosa,versicolor,virginica`, then
/// `f1,f2,f3,f4,label` lines.
pub(crate) fn load_iris() -> anyhow::Result<Iris> {
    let mut lines = IRIS_CSV.lines();
    let header: Vec<&str> = lines
        .next()
        .context("iris.csv is empty")?
        .split(',')
        .collect();
    let [rows, width, species @ ..] = header.as_slice() else {
        bail!("iris.csv: bad header");
    };
    let rows: usize = rows.parse()?;
    if *width != "4" || species.len() != 3 {
        bail!("iris.csv: expected 4 features and 3 species");
    }
    let mut features = Vec::with_capacity(rows);
    let mut labels = Vec::with_capacity(rows);
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        let [a, b, c, d, label] = fields.as_slice() else {
            bail!("iris.csv line {}: expected 5 fields", i + 2);
        };
        features.push([a.parse()?, b.parse()?, c.parse()?, d.parse()?]);
        let label: usize = label.parse()?;
        if label >= species.len() {
            bail!("iris.csv line {}: species {label} out of range", i + 2);
        }
        labels.push(label);
    }
    if features.len() != rows {
        bail!(
            "iris.csv: header says {rows} rows, found {}",
            features.len()
        );
    }
    Ok(Iris {
        species: species.iter().map(|s| (*s).to_owned()).collect(),
        features,
        labels,
    })
}

/// The deterministic split: indices of the training and held-out flowers.
/// Within each species, in file order, every fifth flower is held out.
pub(crate) fn split(iris: &Iris) -> (Vec<usize>, Vec<usize>) {
    let mut seen = vec![0usize; iris.species.len()];
    let (mut train, mut held_out) = (Vec::new(), Vec::new());
    for (i, &label) in iris.labels.iter().enumerate() {
        seen[label] += 1;
        if seen[label] % HOLD_OUT_EVERY == 0 {
            held_out.push(i);
        } else {
            train.push(i);
        }
    }
    (train, held_out)
}

/// A trained softmax regression over standardized inputs.
#[derive(Clone, Debug)]
pub(crate) struct Trained {
    /// Per-feature mean of the training set.
    pub(crate) mean: [f32; 4],
    /// Per-feature standard deviation of the training set.
    pub(crate) std: [f32; 4],
    /// `[4, 3]` row-major kernel.
    pub(crate) kernel: Vec<f32>,
    /// `[3]` bias.
    pub(crate) bias: Vec<f32>,
    /// Mean cross-entropy on the training set after the last epoch.
    pub(crate) loss: f64,
}

/// Trains by full-batch gradient descent on the cross-entropy, in `f64`,
/// from zero weights: the same data gives the same weights every time.
pub(crate) fn train(iris: &Iris, rows: &[usize]) -> Trained {
    let k = iris.species.len();
    let n = rows.len().max(1) as f64;
    let mut mean = [0f64; 4];
    let mut var = [0f64; 4];
    for &r in rows {
        for (m, &x) in mean.iter_mut().zip(&iris.features[r]) {
            *m += f64::from(x) / n;
        }
    }
    for &r in rows {
        for j in 0..4 {
            let d = f64::from(iris.features[r][j]) - mean[j];
            var[j] += d * d / n;
        }
    }
    let mean32 = mean.map(|m| m as f32);
    let std32 = var.map(|v| v.sqrt().max(1e-6) as f32);
    // Standardize exactly as the exported graph will (in f32), then train
    // in f64.
    let xs: Vec<[f64; 4]> = rows
        .iter()
        .map(|&r| {
            let mut x = [0f64; 4];
            for j in 0..4 {
                x[j] = f64::from((iris.features[r][j] - mean32[j]) / std32[j]);
            }
            x
        })
        .collect();
    let mut w = vec![0f64; 4 * k];
    let mut b = vec![0f64; k];
    let mut loss = 0.0;
    for _ in 0..EPOCHS {
        let mut gw = vec![0f64; 4 * k];
        let mut gb = vec![0f64; k];
        loss = 0.0;
        for (x, &r) in xs.iter().zip(rows) {
            let mut z: Vec<f64> = (0..k)
                .map(|c| b[c] + (0..4).map(|j| x[j] * w[j * k + c]).sum::<f64>())
                .collect();
            let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = z
                .iter_mut()
                .map(|v| {
                    *v = (*v - max).exp();
                    *v
                })
                .sum();
            let y = iris.labels[r];
            loss -= (z[y] / sum).ln() / n;
            for c in 0..k {
                let g = z[c] / sum - if c == y { 1.0 } else { 0.0 };
                gb[c] += g / n;
                for j in 0..4 {
                    gw[j * k + c] += g * x[j] / n;
                }
            }
        }
        for (wi, gi) in w.iter_mut().zip(&gw) {
            *wi -= LEARNING_RATE * (gi + L2 * *wi);
        }
        for (bi, gi) in b.iter_mut().zip(&gb) {
            *bi -= LEARNING_RATE * gi;
        }
    }
    Trained {
        mean: mean32,
        std: std32,
        kernel: w.iter().map(|&v| v as f32).collect(),
        bias: b.iter().map(|&v| v as f32).collect(),
        loss,
    }
}

/// The model spec `cargo xtask export` exports with: what a user would
/// write in `iris.toml` for these weights.
pub(crate) fn spec_toml(iris: &Iris, trained: &Trained) -> String {
    let list = |v: &[f32]| {
        v.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let labels = iris
        .species
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"[model]
name = "{MODEL_NAME}"
architecture = "softmax_classifier"
input_width = 4
feature = "x"

[classes]
labels = [{labels}]

[normalization]
mean = [{}]
std = [{}]

[[layers]]
kernel = "dense/kernel"
bias = "dense/bias"
"#,
        list(&trained.mean),
        list(&trained.std)
    )
}

/// What `cargo xtask export` did.
#[derive(Clone, Debug)]
pub(crate) struct IrisExport {
    /// The version published.
    pub(crate) version: i64,
    /// `<models>/iris/<version>`.
    pub(crate) path: PathBuf,
    /// Held-out flowers classified correctly (by the exported model's
    /// computation, in `f32`).
    pub(crate) correct: usize,
    /// Held-out flowers (indices into [`load_iris`]'s rows).
    pub(crate) held_out: Vec<usize>,
}

impl IrisExport {
    /// Held-out accuracy, `correct / held_out`.
    pub(crate) fn accuracy(&self) -> f64 {
        self.correct as f64 / self.held_out.len().max(1) as f64
    }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Trains, evaluates, exports and publishes; writes the report to `out`.
pub(crate) fn train_and_export(
    models_dir: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<IrisExport> {
    let iris = load_iris()?;
    let (train_rows, held_out) = split(&iris);
    writeln!(
        out,
        "iris: {} flowers of 3 species ({}); {} to train, {} held out (every {}th of each species)",
        iris.features.len(),
        iris.species.join(", "),
        train_rows.len(),
        held_out.len(),
        HOLD_OUT_EVERY
    )?;
    let trained = train(&iris, &train_rows);
    writeln!(
        out,
        "trained softmax regression on standardized inputs: {EPOCHS} epochs of full-batch gradient descent, training loss {:.4}",
        trained.loss
    )?;

    let spec = ExportSpec::from_toml(
        &spec_toml(&iris, &trained),
        format!("<cargo xtask export: {MODEL_NAME}.toml>"),
    )?;
    let mut weights = Weights::new();
    weights.insert_f32("dense/kernel", &[4, 3], &trained.kernel)?;
    weights.insert_f32("dense/bias", &[3], &trained.bias)?;
    let model = PreparedModel::prepare(&spec, &weights)?;

    let rows: Vec<f32> = held_out.iter().flat_map(|&r| iris.features[r]).collect();
    let scores = model.predict(&rows)?;
    let correct = held_out
        .iter()
        .zip(scores.chunks_exact(3))
        .filter(|&(&r, s)| argmax(s) == iris.labels[r])
        .count();
    writeln!(
        out,
        "held-out accuracy: {correct}/{} = {:.2}%",
        held_out.len(),
        100.0 * correct as f64 / held_out.len().max(1) as f64
    )?;

    // Warm up with the first held-out flower of each species.
    let warmup: Vec<Vec<f32>> = (0..3)
        .filter_map(|c| held_out.iter().find(|&&r| iris.labels[r] == c))
        .map(|&r| iris.features[r].to_vec())
        .collect();
    let mut options = ExportOptions::default();
    // `publish` fsyncs every file and directory of the staging tree before
    // the rename, so the builder need not sync them a first time.
    options.no_fsync = true;
    options.warmup = WarmupExamples::Given(warmup);
    options.model_name = Some(MODEL_NAME.to_owned());
    let export = model.into_export(&options)?;
    let base = models_dir.join(MODEL_NAME);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let published = publish(&base, NextVersion::Increment, |dir| {
        export.write_into_empty_dir(dir)
    })?;
    writeln!(
        out,
        "published version {} at {}",
        published.version,
        published.path.display()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "$ savedmodel show --dir {} --all",
        published.path.display()
    )?;
    let opened = savedmodel::SavedModel::open(&published.path)?;
    write!(out, "{}", savedmodel::show::all(&opened))?;
    writeln!(out)?;
    let abs = std::fs::canonicalize(&base).unwrap_or_else(|_| base.clone());
    writeln!(
        out,
        r#"Serve it with TensorFlow Serving (it loads the highest version under the base path):

  docker run --rm -p 8500:8500 -p 8501:8501 \
    --mount type=bind,source={base},target=/models/{name} \
    -e MODEL_NAME={name} -t tensorflow/serving

  or, with the model server installed:
  tensorflow_model_server --port=8500 --rest_api_port=8501 \
    --model_name={name} --model_base_path={base}

Then ask it (REST):

  curl -d '{{"signature_name": "predict", "instances": [[5.1, 3.5, 1.4, 0.2]]}}' \
    http://localhost:8501/v1/models/{name}:predict
  curl -d '{{"examples": [{{"x": [6.3, 3.3, 6.0, 2.5]}}]}}' \
    http://localhost:8501/v1/models/{name}:classify

predict returns "scores" in the order {species} and "classes" (the index of
the highest); classify returns [label, score] pairs, highest score first."#,
        base = abs.display(),
        name = MODEL_NAME,
        species = iris.species.join(", "),
    )?;
    Ok(IrisExport {
        version: published.version,
        path: published.path,
        correct,
        held_out,
    })
}

/// `cargo xtask export [--models-dir DIR]` (default `./models`).
#[allow(dead_code)] // Not used where the tests include this file.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let models_dir = match args {
        [] => PathBuf::from("models"),
        [flag, dir] if flag == "--models-dir" => PathBuf::from(dir),
        _ => bail!("usage: cargo xtask export [--models-dir DIR]"),
    };
    let stdout = std::io::stdout();
    let done = train_and_export(&models_dir, &mut stdout.lock())?;
    println!(
        "\ndone: {MODEL_NAME} version {} at {} (held-out accuracy {:.2}%)",
        done.version,
        done.path.display(),
        100.0 * done.accuracy()
    );
    Ok(())
}
