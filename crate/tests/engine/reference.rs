//! Differential test against PyTorch: prunelab's ResNet-20, with every weight
//! and BatchNorm buffer set by a formula, must compute what the same network
//! computes in PyTorch (float64) — logits, loss, gradients, SNIP, GraSP's
//! `H g`, S3's nuclear norms and LRP-ε relevances.
//!
//! The fixtures in `tests/reference/fixtures/` are written by hand-run
//! `tests/reference/make.py` (torch 2.15.0, float64; see its header and
//! `tests/reference/README.md`) and committed, so this test always runs: a
//! missing or malformed fixture is a failure, never a skip.
//!
//! THE WEIGHTS (identical in `make.py`). Tensor `k`, in the order
//! `for L in [stem, blocks.0.conv1, blocks.0.conv2, ..., blocks.8.conv2]:
//! L.conv.weight, L.bn.gamma, L.bn.beta, L.bn.running_mean, L.bn.running_var`
//! then `fc.weight, fc.bias` (module paths under `net.Resnet.`); element at flat
//! index `i` of the PyTorch layout (conv `[out, in, 3, 3]`, fc `[10, 64]` —
//! burn's `[64, 10]` transposed); `s = sin(1 + 1.3 k + 0.37 i + 0.00061 i²)`,
//! computed in f64 and rounded to f32; `B = 4`:
//! conv weight `s / sqrt(in·9)`, fc weight `s / 32`, fc bias `0.1 s`,
//! gamma `1 + 0.1 s`, beta `0.1 s ± B` (stem and conv1: `−B` where
//! `i % 4 == 3`, else `+B`; conv2: `+B`), running_mean `0.1 s`, running_var
//! `1 + 0.25 (1 + s)`.
//! THE INPUTS: 8 images, image `n`, flat index `j` of `[3, 32, 32]`:
//! `sin(0.013 j (1 + 0.1 n) + 0.7 n)`; labels `n % 10`, given to prunelab as
//! `Features::Floats` (used as they are).
//!
//! Why the offsets `±B`: with BN β ≈ 0 (as at initialisation) a few of the
//! ~1.8M ReLU inputs lie within float32 rounding of 0 and change sign between
//! a float32 and a float64 forward; each such flip moves a training-mode
//! weight gradient by ~1/√(positions) of its size, so no float32
//! implementation matches float64 there (measured with β = 0.1 s: PyTorch's
//! own float32 gradients are off by up to 4.6e-2, prunelab's by 7.7e-3, both
//! against float64 PyTorch). With the offsets,
//! every training-mode ReLU input is ≥ 2.4e-4 from 0 (make.py asserts ≥ 1e-4)
//! and float32 PyTorch is within 3.5e-5 of float64.
//!
//! THE TOLERANCE RULE. Every comparison is `|rust − torch| ≤ tol · scale`,
//! with the scale of the quantity compared:
//! - logits: the largest |logit| of that mode (eval or train), per entry;
//! - loss: |loss|;
//! - a per-layer tensor (gradient, SNIP, `H g`, relevance) is compared through
//!   its summary: the 8 sampled entries and `max_abs` against the layer's
//!   `max_abs`; `sum` and `sum_abs` against `sum_abs` (a sum may cancel to
//!   ~0, its rounding error scales with Σ|x|); `sum_sq` against `sum_sq`;
//! - nuclear norms: per channel, against the layer's largest channel value.
//!
//! `tol` is 1e-4 ([`TOL`]) for everything except GraSP's finite difference
//! and S3's Gram route, whose own accuracy limits are documented at their
//! tests. This suite found three disagreements, all fixed in the engine:
//! GraSP's step was too large (1e-3 → 3e-5), its difference crossed ReLU
//! kinks (now taken on θ's activation pattern), and S3's Gram route lost the
//! small singular values of mean-dominated maps (the full SVD is the default). Each test prints its worst
//! error (`-- --nocapture`), and `every_comparison_detects_a_perturbed_weight`
//! checks that each comparison fails when one stem weight is moved.

use std::collections::{BTreeMap, BTreeSet};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Int, Tensor, TensorData};
use prunelab::base::device::OpenDevice;
use prunelab::base::host::{block_on, floats};
use prunelab::data::{Dataset, Features, Split};
use prunelab::model::spec::ModelSpec;
use prunelab::model::zoo::ModelOptions;
use prunelab::model::{Ctx, Model, Net};
use prunelab::prune::capture::Sampling;
use prunelab::prune::energy::{self, EnergyMeasure, Svd};
use prunelab::prune::lrp::Relevance;
use serde_json::Value;

/// The tolerance of every comparison but GraSP's finite difference and S3's Gram
/// route (see the module docs).
const TOL: f64 = 1e-4;
const N: usize = 8;
const CLASSES: usize = 10;
const SAMPLING: Sampling = Sampling {
    batches: 1,
    batch_size: N,
    augment: false,
    seed: 1,
};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../tests/reference/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{path}: {e} (fixtures are committed; regenerate with tests/reference/make.py)")
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn num(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number in a fixture, got {v}"))
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array in a fixture, got {v}"))
        .iter()
        .map(num)
        .collect()
}

// ---------------------------------------------------------------------------
// The deterministic network and data (same formulas as make.py)
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Kind {
    Conv,
    Fc,
    Gamma,
    Beta1,
    Beta2,
    Mean,
    Var,
    Bias,
}

/// `(path under net.Resnet., PyTorch shape, kind, fan_in)` in the order `k`.
fn tensor_list() -> Vec<(String, Vec<usize>, Kind, usize)> {
    let mut convs = vec![("stem".to_string(), 3, 16)];
    let mut c_in = 16;
    for b in 0..9 {
        let width = [16, 32, 64][b / 3];
        convs.push((format!("blocks.{b}.conv1"), c_in, width));
        convs.push((format!("blocks.{b}.conv2"), width, width));
        c_in = width;
    }
    let mut out = Vec::new();
    for (path, c_in, c_out) in convs {
        out.push((
            format!("{path}.conv.weight"),
            vec![c_out, c_in, 3, 3],
            Kind::Conv,
            c_in * 9,
        ));
        let beta = if path.ends_with("conv2") {
            Kind::Beta2
        } else {
            Kind::Beta1
        };
        for (field, kind) in [
            ("gamma", Kind::Gamma),
            ("beta", beta),
            ("running_mean", Kind::Mean),
            ("running_var", Kind::Var),
        ] {
            out.push((format!("{path}.bn.{field}"), vec![c_out], kind, 0));
        }
    }
    out.push(("fc.weight".into(), vec![CLASSES, 64], Kind::Fc, 64));
    out.push(("fc.bias".into(), vec![CLASSES], Kind::Bias, 0));
    out
}

/// The BN offset `B` of the reference network.
const BETA_OFFSET: f64 = 4.0;

/// Tensor `k`'s values in PyTorch layout, f64 then rounded to f32.
fn formula(kind: Kind, k: usize, n: usize, fan_in: usize, offset: f64) -> Vec<f32> {
    let k = k as f64;
    (0..n)
        .map(|i| {
            let i = i as f64;
            let s = (1.0 + 1.3 * k + 0.37 * i + 0.00061 * i * i).sin();
            let v = match kind {
                Kind::Conv => s / (fan_in as f64).sqrt(),
                Kind::Fc => s / 32.0,
                Kind::Gamma => 1.0 + 0.1 * s,
                Kind::Beta1 => 0.1 * s + if i as usize % 4 == 3 { -offset } else { offset },
                Kind::Beta2 => 0.1 * s + offset,
                Kind::Mean | Kind::Bias => 0.1 * s,
                Kind::Var => 1.0 + 0.25 * (1.0 + s),
            };
            v as f32
        })
        .collect()
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

/// A prunable weight's flat values (burn layout) in PyTorch layout: only the
/// linear layer differs (`[d_in, d_out]` in burn, `[out, in]` in PyTorch).
fn torch_layout(layer: &str, v: Vec<f32>) -> Vec<f32> {
    if layer == "fc" {
        assert_eq!(v.len(), 64 * CLASSES, "fc weight size");
        transpose(&v, 64, CLASSES)
    } else {
        v
    }
}

/// Sets every float tensor (parameters and BN running statistics) from the
/// formula, keyed by module path; a tensor the formula does not name panics.
struct SetWeights {
    at: Vec<String>,
    offset: f64,
    order: BTreeMap<String, (usize, Vec<usize>, Kind, usize)>,
    seen: BTreeSet<String>,
}

impl ModuleMapper for SetWeights {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.at.push(name.into());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.at.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.at.join(".");
        let name = path
            .strip_prefix("net.Resnet.")
            .unwrap_or_else(|| panic!("unexpected module path {path}"));
        let (k, shape, kind, fan_in) = self
            .order
            .get(name)
            .unwrap_or_else(|| panic!("{path} is not in the documented tensor list"))
            .clone();
        assert!(self.seen.insert(name.to_string()), "{path} mapped twice");
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims();
        let n: usize = shape.iter().product();
        let mut values = formula(kind, k, n, fan_in, self.offset);
        if name == "fc.weight" {
            assert_eq!(dims.to_vec(), vec![shape[1], shape[0]], "{path}");
            values = transpose(&values, shape[0], shape[1]);
        } else {
            assert_eq!(dims.to_vec(), shape, "{path}");
        }
        let require_grad = tensor.is_require_grad();
        let mut t = Tensor::from_data(TensorData::new(values, dims), &tensor.device());
        if require_grad {
            t = t.require_grad();
        }
        Param::from_mapped_value(id, t, mapper)
    }
}

/// Every float tensor of a module by path (under `net.Resnet.`), in PyTorch layout.
struct ReadAll {
    at: Vec<String>,
    out: BTreeMap<String, Vec<f32>>,
}

impl ModuleVisitor for ReadAll {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.at.push(name.into());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.at.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.at.join(".");
        let name = path
            .strip_prefix("net.Resnet.")
            .unwrap_or(&path)
            .to_string();
        let t = param.val();
        let dims = t.dims();
        let mut v = block_on(floats(t)).unwrap();
        if name == "fc.weight" {
            v = transpose(&v, dims[0], dims[1]);
        }
        self.out.insert(name, v);
    }
}

/// ResNet-20 on the autodiff CPU device with the documented weights.
fn reference_model() -> Model {
    reference_model_with(BETA_OFFSET)
}

/// The same with BN offset `offset` (0: make.py's "generic" network).
fn reference_model_with(offset: f64) -> Model {
    let spec = ModelSpec::named("resnet20", &ModelOptions::default()).unwrap();
    let model = prunelab::model::init_model(&spec, 0, &burn::tensor::Device::flex().autodiff());
    let mut setter = SetWeights {
        at: Vec::new(),
        offset,
        order: tensor_list()
            .into_iter()
            .enumerate()
            .map(|(k, (name, shape, kind, fan_in))| (name, (k, shape, kind, fan_in)))
            .collect(),
        seen: BTreeSet::new(),
    };
    let model = model.map(&mut setter);
    let missing: Vec<_> = setter
        .order
        .keys()
        .filter(|name| !setter.seen.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "tensors the model does not have: {missing:?}"
    );
    model
}

fn images() -> Vec<f32> {
    let size = 3 * 32 * 32;
    (0..N)
        .flat_map(|n| {
            let n = n as f64;
            (0..size).map(move |j| {
                let j = j as f64;
                (0.013 * j * (1.0 + 0.1 * n) + 0.7 * n).sin() as f32
            })
        })
        .collect()
}

fn labels() -> Vec<u16> {
    (0..N).map(|n| (n % CLASSES) as u16).collect()
}

fn split() -> Split {
    let train = Dataset {
        features: Features::Floats(images()),
        labels: labels(),
        shape: [3, 32, 32],
        classes: CLASSES,
    };
    Split::new(train.clone(), train, None, "reference")
}

fn batch(device: &burn::tensor::Device) -> (Tensor<4>, Tensor<1, Int>) {
    let x = Tensor::from_data(TensorData::new(images(), [N, 3, 32, 32]), device);
    let y: Vec<i64> = labels().iter().map(|&l| l as i64).collect();
    (x, Tensor::from_data(TensorData::new(y, [N]), device))
}

fn prunable_layers(model: &Model) -> Vec<String> {
    model
        .prunable_weights()
        .into_iter()
        .map(|w| w.layer)
        .collect()
}

// ---------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------

/// Worst normalised errors, `(what, |Δ| / scale)`.
type Errors = Vec<(String, f64)>;

fn worst(errors: &Errors) -> (String, f64) {
    errors
        .iter()
        .cloned()
        .fold((String::from("nothing"), 0.0), |a, b| {
            if b.1 > a.1 { b } else { a }
        })
}

/// Asserts every error is within `tol`, after printing the worst.
fn assert_within(quantity: &str, errors: &Errors, tol: f64) {
    assert!(!errors.is_empty(), "{quantity}: nothing was compared");
    let (at, max) = worst(errors);
    println!("{quantity}: max normalised error {max:.3e} at {at} (tolerance {tol:.1e})");
    let bad: Vec<String> = errors
        .iter()
        .filter(|(_, e)| !(*e <= tol))
        .map(|(w, e)| format!("{w}: {e:.3e}"))
        .collect();
    assert!(
        bad.is_empty(),
        "{quantity}: {} comparisons beyond {tol:.1e} (|rust − torch| / scale):\n  {}",
        bad.len(),
        bad.join("\n  ")
    );
}

/// Elementwise, against the largest |reference|.
fn compare_all(what: &str, rust: &[f32], reference: &[f64]) -> Errors {
    assert_eq!(rust.len(), reference.len(), "{what}: length");
    let scale = reference
        .iter()
        .fold(0.0f64, |a, &b| a.max(b.abs()))
        .max(1e-30);
    rust.iter()
        .zip(reference)
        .enumerate()
        .map(|(i, (&r, &t))| (format!("{what}[{i}]"), (r as f64 - t).abs() / scale))
        .collect()
}

/// A tensor (PyTorch layout) against its fixture summary (see the module docs).
fn compare_summary(what: &str, rust: &[f32], summary: &Value) -> Errors {
    let shape: Vec<usize> = nums(&summary["shape"])
        .iter()
        .map(|&d| d as usize)
        .collect();
    assert_eq!(
        rust.len(),
        shape.iter().product::<usize>(),
        "{what}: size against fixture shape {shape:?}"
    );
    let v: Vec<f64> = rust.iter().map(|&x| x as f64).collect();
    let sum: f64 = v.iter().sum();
    let sum_sq: f64 = v.iter().map(|x| x * x).sum();
    let sum_abs: f64 = v.iter().map(|x| x.abs()).sum();
    let max_abs = v.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
    let t_sum_abs = num(&summary["sum_abs"]).max(1e-30);
    let t_sum_sq = num(&summary["sum_sq"]).max(1e-30);
    let t_max = num(&summary["max_abs"]).max(1e-30);
    let mut out = vec![
        (
            format!("{what}.sum"),
            (sum - num(&summary["sum"])).abs() / t_sum_abs,
        ),
        (
            format!("{what}.sum_abs"),
            (sum_abs - t_sum_abs).abs() / t_sum_abs,
        ),
        (
            format!("{what}.sum_sq"),
            (sum_sq - t_sum_sq).abs() / t_sum_sq,
        ),
        (format!("{what}.max_abs"), (max_abs - t_max).abs() / t_max),
    ];
    let index = nums(&summary["index"]);
    let values = nums(&summary["values"]);
    assert_eq!(index.len(), values.len(), "{what}: fixture index/values");
    for (&i, &t) in index.iter().zip(&values) {
        out.push((
            format!("{what}[{}]", i as usize),
            (v[i as usize] - t).abs() / t_max,
        ));
    }
    out
}

/// Per-layer tensors (burn layout, prunable-weight order) against a fixture map.
fn compare_layers(what: &str, layers: &[String], rust: Vec<Vec<f32>>, fixture: &Value) -> Errors {
    let names: BTreeSet<&str> = fixture
        .as_object()
        .unwrap_or_else(|| panic!("{what}: fixture is not a map"))
        .keys()
        .map(|k| k.as_str())
        .collect();
    let ours: BTreeSet<&str> = layers.iter().map(|l| l.as_str()).collect();
    assert_eq!(
        names, ours,
        "{what}: fixture layers differ from the model's"
    );
    assert_eq!(rust.len(), layers.len(), "{what}: one tensor per layer");
    layers
        .iter()
        .zip(rust)
        .flat_map(|(layer, v)| {
            compare_summary(
                &format!("{what} {layer}"),
                &torch_layout(layer, v),
                &fixture[layer.as_str()],
            )
        })
        .collect()
}

fn to_host(tensors: Vec<Tensor<1>>) -> Vec<Vec<f32>> {
    tensors
        .into_iter()
        .map(|t| block_on(floats(t)).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------
// The quantities, each for any model (the perturbation test reuses them)
// ---------------------------------------------------------------------------

fn check_params(model: &Model) -> Errors {
    let fx = fixture("forward.json");
    let documented: Vec<String> = tensor_list().into_iter().map(|t| t.0).collect();
    let listed: Vec<String> = fx["tensors"]
        .as_array()
        .expect("forward.json: tensors")
        .iter()
        .map(|v| v.as_str().expect("tensor name").to_string())
        .collect();
    assert_eq!(
        documented, listed,
        "make.py and this test document different tensor orders"
    );
    let mut reader = ReadAll {
        at: Vec::new(),
        out: BTreeMap::new(),
    };
    model.visit(&mut reader);
    let read: BTreeSet<&String> = reader.out.keys().collect();
    let expected: BTreeSet<&String> = documented.iter().collect();
    assert_eq!(
        read, expected,
        "the model's float tensors are not the documented ones"
    );
    let mut errors = Errors::new();
    for name in &documented {
        errors.extend(compare_summary(
            name,
            &reader.out[name],
            &fx["params"][name.as_str()],
        ));
    }
    errors.extend(compare_summary("inputs", &images(), &fx["inputs"]));
    let fixture_labels: Vec<u16> = nums(&fx["labels"]).iter().map(|&l| l as u16).collect();
    assert_eq!(fixture_labels, labels(), "labels");
    errors
}

fn check_logits(model: &Model) -> (Errors, Errors) {
    let fx = fixture("forward.json");
    let eval = model.valid();
    let (x, _) = batch(&eval.device());
    let logits_eval = block_on(floats(eval.forward(x))).unwrap();
    // Training mode on a fork: BN uses batch statistics (and updates the
    // fork's running statistics, not the model's).
    let train = model.deep_fork();
    let (x, _) = batch(&train.device());
    let logits_train = block_on(floats(train.forward(x))).unwrap();
    (
        compare_all("eval logits", &logits_eval, &nums(&fx["logits_eval"])),
        compare_all("train logits", &logits_train, &nums(&fx["logits_train"])),
    )
}

fn check_loss(model: &Model) -> Errors {
    let fx = fixture("gradients.json");
    let train = model.deep_fork();
    let (x, y) = batch(&train.device());
    let loss = block_on(floats(prunelab::train::cross_entropy(train.forward(x), y))).unwrap()[0];
    let reference = num(&fx["loss"]);
    vec![(
        "loss".into(),
        (loss as f64 - reference).abs() / reference.abs(),
    )]
}

fn check_gradients(model: &Model, split: &Split) -> Errors {
    let fx = fixture("gradients.json");
    let grads = prunelab::prune::gradients::weight_grads(model, split, SAMPLING).unwrap();
    compare_layers("grad", &prunable_layers(model), to_host(grads), &fx["grad"])
}

fn check_snip(model: &Model, split: &Split) -> Errors {
    let fx = fixture("gradients.json");
    let scores = block_on(prunelab::prune::snip::scores(model, split, SAMPLING)).unwrap();
    let layers: Vec<String> = scores.iter().map(|s| s.layer.clone()).collect();
    assert_eq!(layers, prunable_layers(model), "SNIP layers");
    compare_layers(
        "snip",
        &layers,
        scores.into_iter().map(|s| s.scores).collect(),
        &fx["snip"],
    )
}

/// GraSP's finite-difference `H g` (`grasp::hessian_gradient`) at relative
/// step `epsilon`, per prunable layer, burn layout.
fn grasp_hg(model: &Model, split: &Split, epsilon: f64) -> Vec<Vec<f32>> {
    let (hg, _) = block_on(prunelab::prune::grasp::hessian_gradient(
        model,
        split,
        SAMPLING,
        epsilon as f32,
    ))
    .unwrap();
    to_host(hg)
}

/// GraSP's `H g` at `epsilon` against PyTorch's double backward (`exact`)
/// and against the same central difference evaluated in float64 (`fd`).
fn check_grasp(model: &Model, split: &Split, epsilon: f64) -> (Errors, Errors) {
    let fx = fixture("grasp.json");
    let hg = grasp_hg(model, split, epsilon);
    let layers = prunable_layers(model);
    let exact = compare_layers(
        &format!("Hg(ε={epsilon:e}) vs double backward"),
        &layers,
        hg.clone(),
        &fx["hg"],
    );
    let entry = fx["hg_fd"]
        .as_array()
        .expect("grasp.json: hg_fd")
        .iter()
        // ε reaches prunelab as f32: match to f32 precision.
        .find(|e| (num(&e["epsilon"]) - epsilon).abs() <= 1e-6 * epsilon)
        .unwrap_or_else(|| panic!("grasp.json has no hg_fd for ε = {epsilon:e}"));
    let fd = compare_layers(
        &format!("Hg(ε={epsilon:e}) vs f64 FD"),
        &layers,
        hg,
        &entry["layers"],
    );
    (exact, fd)
}

/// S3 comparisons: nuclear norms by the Gram route (prunelab's default) and
/// by the full SVD, and `energy::scores` (÷ images) by each route.
struct EnergyErrors {
    gram: Errors,
    full: Errors,
    scores_gram: Errors,
    scores_full: Errors,
}

/// S3: per-channel nuclear norms of the BN outputs (eval mode) of the stem
/// (computed here with the model's own `stem`) and of every block's conv1
/// (captured with `Ctx::capturing`, which also records the stream's
/// producers; the fixture holds the conv1s).
fn check_energy(model: &Model, split: &Split) -> EnergyErrors {
    let fx = fixture("energy.json");
    let layers = fx["layers"].as_object().expect("energy.json: layers");
    let eval = model.valid();
    let (x, _) = batch(&eval.device());
    let mut ctx = Ctx::capturing();
    let _ = eval.forward_ctx(x.clone(), &mut ctx);
    let Net::Resnet(resnet) = &eval.net else {
        panic!("resnet20 is a ResNet")
    };
    let mut maps = vec![("stem".to_string(), resnet.stem.forward(x))];
    maps.extend(
        ctx.captured
            .into_iter()
            .filter(|(n, _)| n.ends_with(".conv1")),
    );
    let names: BTreeSet<&str> = maps.iter().map(|(n, _)| n.as_str()).collect();
    let expected: BTreeSet<&str> = layers.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, expected, "captured groups differ from the fixture's");
    let mut out = EnergyErrors {
        gram: Errors::new(),
        full: Errors::new(),
        scores_gram: Errors::new(),
        scores_full: Errors::new(),
    };
    for (name, fm) in maps {
        let reference = nums(&layers[&name]["nuclear"]);
        for (svd, errors, label) in [
            (Svd::Gram, &mut out.gram, "gram"),
            (Svd::Full, &mut out.full, "full"),
        ] {
            let e = block_on(energy::channel_energies(
                fm.clone(),
                svd,
                EnergyMeasure::Nuclear,
            ))
            .unwrap();
            let e: Vec<f32> = e.iter().map(|&v| v as f32).collect();
            errors.extend(compare_all(
                &format!("nuclear ({label}) {name}"),
                &e,
                &reference,
            ));
        }
    }
    for (svd, errors, label) in [
        (Svd::Gram, &mut out.scores_gram, "gram"),
        (Svd::Full, &mut out.scores_full, "full"),
    ] {
        let scores = block_on(energy::scores(
            model,
            split,
            SAMPLING,
            svd,
            EnergyMeasure::Nuclear,
            &prunelab::prune::contract::producers(&model.spec.unit_groups()),
        ))
        .unwrap();
        assert_eq!(
            scores.len(),
            layers.len() - 1,
            "energy::scores: one group per block conv1"
        );
        for (name, values) in &scores {
            let reference: Vec<f64> = nums(&layers[name.as_str()]["nuclear"])
                .iter()
                .map(|v| v / N as f64)
                .collect();
            errors.extend(compare_all(
                &format!("energy::scores ({label}) {name}"),
                values,
                &reference,
            ));
        }
    }
    out
}

fn check_lrp(model: &Model, split: &Split) -> Errors {
    let fx = fixture("lrp.json");
    let epsilon = num(&fx["epsilon"]);
    let relevance = prunelab::prune::lrp::weight_relevance(
        model,
        split,
        &OpenDevice::cpu("reference test"),
        N,
        N,
        Relevance::LrpEpsilon,
        epsilon as f32,
    )
    .unwrap();
    compare_layers(
        "lrp",
        &prunable_layers(model),
        to_host(relevance),
        &fx["relevance"],
    )
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

#[test]
fn parameters_and_inputs_follow_the_documented_formula() {
    // Both sides round the same f64 values to f32: identical up to the
    // summaries' own f64 rounding.
    assert_within(
        "parameters and inputs",
        &check_params(&reference_model()),
        1e-9,
    );
}

#[test]
fn forward_logits_match_in_eval_and_training_mode() {
    let (eval, train) = check_logits(&reference_model());
    assert_within("eval logits", &eval, TOL);
    assert_within("train logits", &train, TOL);
}

#[test]
fn loss_and_weight_gradients_match() {
    let model = reference_model();
    assert_within("loss", &check_loss(&model), TOL);
    assert_within("weight gradients", &check_gradients(&model, &split()), TOL);
}

#[test]
fn snip_scores_match() {
    assert_within("SNIP |w·g|", &check_snip(&reference_model(), &split()), TOL);
}

/// `(ε, tolerance)`: prunelab's float32 `H g` against the same central
/// difference evaluated in float64 by make.py, at each step. Float32 rounding
/// of the two gradients enters divided by 2r, so the floor grows as ε
/// shrinks. Measured worst errors: 1e-2: 9.3e-6, 3e-3: 7.6e-5, 1e-3: 8.5e-5,
/// 3e-4: 2.1e-4, 1e-4: 4.3e-4, 3e-5: 2.7e-3, 1e-5: 4.8e-3; each tolerance is
/// ~3× the measured figure, rounded up.
const GRASP_FD_TOL: &[(f64, f64)] = &[
    (1e-2, 3e-5),
    (3e-3, 2.5e-4),
    (1e-3, 2.5e-4),
    (3e-4, 6e-4),
    (1e-4, 1.3e-3),
    (3e-5, 8e-3),
    (1e-5, 1.5e-2),
];

/// The step at which prunelab's `H g` is closest to the double backward, and
/// the tolerance that holds there: measured 2.9e-3 (truncation 3.6e-4 plus
/// float32 rounding 2.7e-3), ~3× rounded up.
const GRASP_BEST: (f64, f64) = (3e-5, 8e-3);

/// GraSP's `H g` is a central finite difference; PyTorch's is a double
/// backward. A finite difference cannot reach 1e-4 here: its truncation
/// error (make.py evaluates the same difference in float64: `hg_fd` in
/// grasp.json) is, as max over layers of max|FD − Hg| / max|Hg|:
/// ε = 1e-2: 0.94, 3e-3: 0.71, 1e-3 (prunelab's default `grasp::EPSILON`):
/// 0.28 (cosine 0.995), 3e-4: 4.0e-2, 1e-4: 4.0e-3, 3e-5: 3.6e-4, 1e-5:
/// 4.0e-5 — shrinking as ε², while float32 rounding grows as 1/ε (the
/// tolerances above). prunelab's float32 result against the double backward,
/// measured with this test's rule (which also compares sums and Σx², so reads
/// higher): 1e-2: 0.99, 3e-3: 0.89, 1e-3: 0.46, 3e-4: 6.8e-2, 1e-4: 8.0e-3,
/// 3e-5: 2.9e-3, 1e-5: 4.8e-3 — never 1e-4; best at 3e-5.
///
/// So this test holds prunelab (1) to its documented formula at every ε
/// (against the float64 difference, `GRASP_FD_TOL`), and (2) to the double
/// backward at the best step (`GRASP_BEST`). The default step's 28 % error is
/// a finding: `grasp_default_epsilon_matches_double_backward` (ignored).
#[test]
fn grasp_hessian_gradient_matches_its_formula_and_double_backward() {
    let model = reference_model();
    let split = split();
    let mut fd_results = Vec::new();
    for &(epsilon, tol) in GRASP_FD_TOL {
        let (exact, fd) = check_grasp(&model, &split, epsilon);
        let (at, e) = worst(&exact);
        println!("GraSP ε = {epsilon:e}: against double backward {e:.3e} at {at}");
        fd_results.push((epsilon, tol, fd, exact));
    }
    for (epsilon, tol, fd, exact) in fd_results {
        assert_within(
            &format!("GraSP Hg (ε = {epsilon:e}) against f64 FD"),
            &fd,
            tol,
        );
        if epsilon == GRASP_BEST.0 {
            assert_within(
                &format!("GraSP Hg (ε = {epsilon:e}) against double backward"),
                &exact,
                GRASP_BEST.1,
            );
        }
    }
}

/// At prunelab's default step (`grasp::EPSILON` = 3e-5) the finite
/// difference matches the double backward within [`GRASP_BEST`]. (At the
/// old default, 1e-3, it was 0.46 off — truncation: the float64 difference
/// at that step is as far off, make.py `hg_fd`; the default moved to the
/// step this test measures best.)
#[test]
fn grasp_default_epsilon_matches_double_backward() {
    let (exact, _) = check_grasp(
        &reference_model(),
        &split(),
        prunelab::prune::grasp::EPSILON as f64,
    );
    assert_within(
        "GraSP Hg (default ε) against double backward",
        &exact,
        GRASP_BEST.1,
    );
}

/// The same network without the BN offsets (β = 0.1 s, as at
/// initialisation; make.py's "generic" network): of its ~1.8M training-mode
/// ReLU inputs ~200 lie within 1e-4 of 0, and gradients at θ ± r ĝ taken
/// with free ReLUs differ by the jumps of ReLU's derivative wherever an input
/// changes sign inside the step — which swamped `H g` (cosine with the double
/// backward −0.04 to 0.16 at every step; prunelab was 32× off at the old
/// default). prunelab now takes both gradients with θ's ReLU masks and
/// max-pool choices (`Pattern::Replay`), so the difference sees the piece θ
/// is on, as double backward does (ReLU'' = 0): it must match here too.
#[test]
fn grasp_matches_double_backward_without_bn_offsets() {
    let fx = fixture("grasp.json");
    let model = reference_model_with(0.0);
    let hg = grasp_hg(&model, &split(), prunelab::prune::grasp::EPSILON as f64);
    let exact = compare_layers(
        "generic network Hg (default ε) vs double backward",
        &prunable_layers(&model),
        hg,
        &fx["generic"]["hg"],
    );
    assert_within(
        "GraSP Hg without BN offsets against double backward",
        &exact,
        GRASP_BEST.1,
    );
}

/// S3's default route is the full SVD, held to 1e-4. The Gram route
/// (`energy.svd = "gram"`, faster) squares the map (`M Mᵀ`, float32) and zeroes eigenvalues
/// below `n·λ_max·ε_f32` (energy.rs): each of a channel's `n = 8` singular
/// values may be off by up to `√(n·ε_f32)·σ_max`, so its nuclear norm by up
/// to `n·√(n·ε_f32) = 7.8e-3` of σ_max ≤ the norm. That documented bound is
/// what the Gram route is held to here. On these mean-dominated maps
/// (β = ±4: σ_min/σ_max is 9e-5 to 9e-4, below the √(n·ε_f32) ≈ 9.8e-4
/// cut-off) it loses the small singular values: 88 of 352 channels are
/// beyond 1e-4, worst 2.9e-3 — why the full SVD became the default. Strictly the float32 Gram
/// matrix's own rounding (sums over H·W up to 1024) can exceed that noise
/// level, so the bound is the documented scale, not a proof. Measured: Gram
/// 2.9e-3, full SVD 1.2e-7.
const GRAM_BOUND: f64 = 7.8e-3;

#[test]
fn s3_nuclear_norms_match() {
    let e = check_energy(&reference_model(), &split());
    assert_within("S3 nuclear norms, full SVD", &e.full, TOL);
    assert_within(
        "S3 energy::scores (full SVD, per image)",
        &e.scores_full,
        TOL,
    );
    assert_within(
        "S3 nuclear norms, Gram route (documented bound)",
        &e.gram,
        GRAM_BOUND,
    );
    assert_within(
        "S3 energy::scores (Gram route, per image)",
        &e.scores_gram,
        GRAM_BOUND,
    );
}

#[test]
fn lrp_epsilon_relevances_match() {
    assert_within(
        "LRP-ε relevance",
        &check_lrp(&reference_model(), &split()),
        TOL,
    );
}

/// Each comparison can fail: with one stem weight moved by 0.3 (it is 0.053;
/// the stem's largest is 0.19), every quantity leaves its tolerance, by ×3.1
/// (loss: 3.1e-4) to ×3.9 (eval logits: 3.9e-4) for the least sensitive and
/// by far more for the rest. (0.01 moves the eval logits and the loss by only
/// 1.3e-5: one of 432 stem weights behind BN matters little at the output.)
#[test]
fn every_comparison_detects_a_perturbed_weight() {
    let model = perturbed(reference_model(), "net.Resnet.stem.conv.weight", 5, 0.3);
    let split = split();
    let (eval, train) = check_logits(&model);
    let energy = check_energy(&model, &split);
    let (best_exact, best_fd) = check_grasp(&model, &split, GRASP_BEST.0);
    let (_, first_fd) = check_grasp(&model, &split, GRASP_FD_TOL[0].0);
    let checks: Vec<(&str, Errors, f64)> = vec![
        ("parameters", check_params(&model), 1e-9),
        ("eval logits", eval, TOL),
        ("train logits", train, TOL),
        ("loss", check_loss(&model), TOL),
        ("gradients", check_gradients(&model, &split), TOL),
        ("SNIP", check_snip(&model, &split), TOL),
        (
            "GraSP against f64 FD (first ε)",
            first_fd,
            GRASP_FD_TOL[0].1,
        ),
        (
            "GraSP against f64 FD (best ε)",
            best_fd,
            tol_at(GRASP_BEST.0),
        ),
        (
            "GraSP against double backward (best ε)",
            best_exact,
            GRASP_BEST.1,
        ),
        ("S3 full SVD", energy.full, TOL),
        ("S3 scores, full SVD", energy.scores_full, TOL),
        ("S3 Gram", energy.gram, GRAM_BOUND),
        ("S3 scores, Gram", energy.scores_gram, GRAM_BOUND),
        ("LRP", check_lrp(&model, &split), TOL),
    ];
    let mut unnoticed = Vec::new();
    for (quantity, errors, tol) in checks {
        let (at, e) = worst(&errors);
        println!("perturbed: {quantity}: {e:.3e} at {at} (tolerance {tol:.1e})");
        if !(e > tol) {
            unnoticed.push(format!("{quantity}: {e:.3e} ≤ {tol:.1e}"));
        }
    }
    assert!(
        unnoticed.is_empty(),
        "comparisons that do not notice a perturbed weight:\n  {}",
        unnoticed.join("\n  ")
    );
}

fn tol_at(epsilon: f64) -> f64 {
    GRASP_FD_TOL
        .iter()
        .find(|(e, _)| *e == epsilon)
        .map(|(_, t)| *t)
        .expect("a tolerance for every ε")
}

/// `model` with element `index` of the tensor at `path` moved by `delta`.
fn perturbed(model: Model, path: &str, index: usize, delta: f32) -> Model {
    struct Shift<'a> {
        path: &'a str,
        at: Vec<String>,
        index: usize,
        delta: f32,
        done: bool,
    }
    impl ModuleMapper for Shift<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.at.push(name.into());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.at.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if self.at.join(".") != self.path {
                return param;
            }
            let (id, t, mapper) = param.consume();
            let dims = t.dims();
            let mut v = block_on(floats(t.clone())).unwrap();
            v[self.index] += self.delta;
            self.done = true;
            Param::from_mapped_value(
                id,
                Tensor::from_data(TensorData::new(v, dims), &t.device()).require_grad(),
                mapper,
            )
        }
    }
    let mut shift = Shift {
        path,
        at: Vec::new(),
        index,
        delta,
        done: false,
    };
    let model = model.map(&mut shift);
    assert!(shift.done, "no tensor at {path}");
    model
}
