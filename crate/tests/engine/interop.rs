//! Models that travel, proven both ways (issue 18):
//! - PyTorch-made networks (`tests/interop/fixtures/`, written by the
//!   hand-run `tests/interop/make.py`: fixed random weights, nothing trained)
//!   load through `interop::read_model` and give PyTorch's logits within 1e-4;
//! - prunelab's exports — dense, physically cut (blocks removed, channels and
//!   residual streams cut) and weight-masked — are left with prunelab's own
//!   logits in `target/interop/`, where `tests/onnx-check` (run by
//!   `./build.sh test` after this test) runs them in tract, an ONNX runtime
//!   independent of prunelab and of burn, and holds them within 1e-4;
//!   safetensors exports reload as the same network;
//! - a file that does not fit says which keys are missing, unexpected or
//!   mis-shaped, in its own names.
//!
//! The same files serve `make.py --check-onnx` (ONNX Runtime, by hand).
//! The fixtures are committed: a missing one is a failure, never a skip.

use std::path::{Path, PathBuf};

use crate::common::*;
use burn::module::Module;
use burn::tensor::{Distribution, Tensor, TensorData};
use prunelab::base::host::{block_on, floats};
use prunelab::interop::{self, Format, StateDict};
use prunelab::model::masks::WeightMasks;
use prunelab::model::spec::{ModelSpec, Shortcut};
use prunelab::model::zoo::ModelOptions;
use prunelab::model::{Ctx, Model};
use prunelab::prune::plan::Plan;
use prunelab::prune::surgery::cut;
use rand::Rng;
use serde_json::Value;

const TOL: f32 = 1e-4;

/// Where the ONNX exports and prunelab's logits go for `onnx-check`.
fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/interop")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/fixtures")
}

/// THE INPUT of make.py: image `n`, flat index `j`: `sin(0.013 j (1 + 0.1 n) + 0.7 n)`.
fn the_input(n: usize) -> Vec<f32> {
    (0..n)
        .flat_map(|k| {
            (0..3 * 32 * 32).map(move |j| {
                (0.013 * j as f64 * (1.0 + 0.1 * k as f64) + 0.7 * k as f64).sin() as f32
            })
        })
        .collect()
}

fn logits(model: &Model, x: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let x = Tensor::<4>::from_data(TensorData::new(x.to_vec(), shape), &cpu());
    block_on(floats(model.forward_ctx(x, &mut Ctx::default()))).unwrap()
}

fn read(name: &str, configured: Option<&ModelSpec>) -> interop::Loaded {
    let path = fixtures().join(name);
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the fixtures are committed)", path.display()));
    interop::read_model(&bytes, &path, configured, &cpu()).unwrap()
}

fn expected(name: &str) -> Vec<f32> {
    let text = std::fs::read_to_string(fixtures().join("logits.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    json["models"][name]["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
        })
        .collect()
}

fn cnn() -> ModelSpec {
    ModelSpec::named("cnn", &ModelOptions::default()).unwrap()
}

#[test]
fn pytorch_models_load_with_pytorchs_logits() {
    let x = the_input(4);
    for (name, file, configured) in [
        // No architecture given: read off the keys and shapes.
        ("resnet20-a", "resnet20-a.safetensors", None),
        // torchvision names, option B, a nested DataParallel checkpoint.
        ("resnet20-b", "resnet20-b.pt", None),
        // CIFAR-VGG names, conv biases folded into BN.
        ("cnn", "cnn.safetensors", Some(cnn())),
    ] {
        let loaded = read(file, configured.as_ref());
        let got = logits(&loaded.model, &x, [4, 3, 32, 32]);
        let want = expected(name);
        let diff = max_abs_diff(&got, &want);
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        println!(
            "{file}: read as {}; max |prunelab − PyTorch| = {diff:.2e} (largest |logit| {scale:.2})",
            loaded.read_as.as_deref().unwrap_or("-")
        );
        assert!(
            diff <= TOL,
            "{file}: logits differ from PyTorch's by {diff}"
        );
        assert!(scale > 0.1, "{file}: the logits are not trivially small");
    }
    let b = read("resnet20-b.pt", None);
    let ModelSpec::Resnet(r) = &b.model.spec else {
        panic!("resnet20-b.pt read as {:?}", b.model.spec.name())
    };
    assert_eq!(r.shortcut, Shortcut::B);
    assert_eq!(b.model.spec.name(), "resnet20");
}

/// The fixture's tensors, to edit.
fn dict(file: &str) -> StateDict {
    let bytes = std::fs::read(fixtures().join(file)).unwrap();
    interop::safetensors::read(&bytes).unwrap()
}

#[test]
fn a_file_that_does_not_fit_names_every_problem() {
    let resnet20 = ModelSpec::named("resnet20", &ModelOptions::default()).unwrap();
    let mut d = dict("resnet20-a.safetensors");
    // One key gone, one renamed, one reshaped; the classifier dropped so the
    // keys no longer describe a network prunelab could guess instead.
    d.floats
        .retain(|t| t.name != "layer2.1.bn1.running_var" && t.name != "linear.weight");
    for t in &mut d.floats {
        if t.name == "layer3.2.conv2.weight" {
            t.name = "layer3.2.conv_two.weight".into();
        }
        if t.name == "conv1.weight" {
            t.shape = vec![16, 1, 3, 9];
        }
    }
    let error = interop::import(&d, Path::new("x.safetensors"), Some(&resnet20), &cpu())
        .err()
        .expect("a damaged file is refused")
        .to_string();
    println!("{error}");
    for needle in [
        "x.safetensors",
        "resnet20",
        "missing 3 key(s)",
        "layer2.1.bn1.running_var",
        "linear.weight",
        "layer3.2.conv2.weight",
        "unexpected 1 key(s): layer3.2.conv_two.weight",
        "1 shape mismatch(es): conv1.weight is [16, 1, 3, 9] in the file, [16, 3, 3, 3] in prunelab",
        "--model",
    ] {
        assert!(error.contains(needle), "`{needle}` not in: {error}");
    }
    // Without an architecture and without one to read off the keys.
    let error = interop::import(&d, Path::new("x.safetensors"), None, &cpu())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("pass --model"), "{error}");
    // A file that is no model at all.
    let error = interop::read_model(b"hello", Path::new("x.bin"), None, &cpu())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("not a prunelab model"), "{error}");
}

/// Exports `model` to ONNX and leaves it with its input and prunelab's
/// logits for `onnx-check` (tract) and `make.py --check-onnx`.
fn export_onnx(
    name: &str,
    model: &Model,
    masks: Option<&WeightMasks>,
    x: &[f32],
    shape: [usize; 4],
) {
    let bytes = block_on(interop::export(model, masks, Value::Null, Format::Onnx)).unwrap();
    assert_eq!(
        &bytes[..2],
        &[0x08, 0x07],
        "{name}: an ONNX model of IR version 7"
    );
    // A model recording its normalisation takes raw pixels: the graph's
    // leading Sub/Div must do what the data loader does for prunelab.
    let fed: Vec<f32> = match model.spec.input() {
        Some(n) => {
            let plane = shape[2] * shape[3];
            let c = shape[1];
            x.iter()
                .enumerate()
                .map(|(i, v)| {
                    let ch = (i / plane) % c;
                    (v - n.mean[ch]) / n.std[ch]
                })
                .collect()
        }
        None => x.to_vec(),
    };
    let ours = logits(
        &masks.map_or(model.clone(), |m| m.apply(model)),
        &fed,
        shape,
    );
    assert!(
        ours.iter().all(|v| v.is_finite()),
        "{name}: prunelab's logits are finite"
    );
    let onnx_shape: Vec<usize> = match &model.spec {
        ModelSpec::Mlp(_) => vec![shape[0], shape[1] * shape[2] * shape[3]],
        _ => shape.to_vec(),
    };
    println!("{name}: {} bytes of ONNX", bytes.len());
    let out = interop_dir();
    std::fs::write(out.join(format!("{name}.onnx")), &bytes).unwrap();
    let json = serde_json::json!({ "input_shape": onnx_shape, "input": x, "logits": ours });
    std::fs::write(out.join(format!("{name}.json")), json.to_string()).unwrap();
}

/// A plan that cuts channels of every group, the residual streams too (so
/// option-A shortcuts carry a channel map), and removes a block.
fn plan(spec: &ModelSpec, seed: u64) -> Plan {
    let mut rng = prunelab::base::rng::stream(seed, "interop-plan", 0);
    let mut plan = Plan::default();
    for g in spec.groups(true) {
        let mut kept: Vec<usize> = (0..g.size).filter(|_| rng.random::<f32>() < 0.5).collect();
        if kept.is_empty() {
            kept.push(0);
        }
        plan.keep.insert(g.name, kept);
    }
    plan.remove_blocks = spec
        .removable_blocks()
        .into_iter()
        .take(1)
        .map(|b| b.name)
        .collect();
    plan
}

#[test]
fn pruned_models_export_to_onnx_for_tract() {
    // A fresh folder: onnx-check must never pass on an earlier run's files.
    let _ = std::fs::remove_dir_all(interop_dir());
    std::fs::create_dir_all(interop_dir()).unwrap();
    let x = the_input(4);
    let shape = [4, 3, 32, 32];
    let a = read("resnet20-a.safetensors", None).model;
    let b = read("resnet20-b.pt", None).model;
    export_onnx("resnet20-a-dense", &a, None, &x, shape);
    // The published checkpoints' normalisation, as a model file records it:
    // raw [0, 1] pixels in, the mean/std applied inside the graph.
    let mut normalised = a.clone();
    normalised.spec = a
        .spec
        .clone()
        .with_input(Some(prunelab::data::augment::Normalization::IMAGENET));
    let pixels: Vec<f32> = x.iter().map(|v| 0.5 + 0.5 * v).collect();
    export_onnx("resnet20-a-raw-pixels", &normalised, None, &pixels, shape);
    for (name, model) in [("resnet20-a", &a), ("resnet20-b", &b)] {
        let p = plan(&model.spec, 1);
        let cut_model = cut(model, &p).unwrap();
        assert!(
            prunelab::metrics::count::count(&cut_model.spec).macs
                < prunelab::metrics::count::count(&model.spec).macs / 2,
            "{name}: the plan cuts more than half the MACs"
        );
        export_onnx(&format!("{name}-cut"), &cut_model, None, &x, shape);
    }
    // Weight-masked: half of every layer's weights zeroed, exported with its zeros.
    let mut masks = WeightMasks::dense(&a);
    let mut rng = prunelab::base::rng::stream(3, "interop-masks", 0);
    for layer in &mut masks.layers {
        for keep in &mut layer.keep {
            *keep = rng.random::<f32>() < 0.5;
        }
    }
    export_onnx("resnet20-a-masked", &a, Some(&masks), &x, shape);
    let cnn = read("cnn.safetensors", Some(&cnn())).model;
    export_onnx("cnn", &cnn, None, &x, shape);
    export_onnx(
        "cnn-cut",
        &cut(&cnn, &plan(&cnn.spec, 2)).unwrap(),
        None,
        &x,
        shape,
    );
    // The toy models: an MLP per activation and a residual MLP.
    for (name, activation) in [
        ("mlp-relu", "relu"),
        ("mlp-tanh", "tanh"),
        ("mlp-sigmoid", "sigmoid"),
    ] {
        let spec = ModelSpec::named(
            "mlp",
            &ModelOptions {
                hidden: vec![8, 6],
                activation: serde_json::from_value(Value::String(activation.into())).unwrap(),
                ..ModelOptions::default()
            },
        )
        .unwrap();
        let model = model(&spec, 5, &cpu());
        let points: Vec<f32> = Tensor::<1>::random([16], Distribution::Normal(0.0, 1.5), &cpu())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        export_onnx(name, &model, None, &points, [8, 2, 1, 1]);
    }
    let resmlp = ModelSpec::named(
        "resmlp",
        &ModelOptions {
            hidden: vec![8; 3],
            ..ModelOptions::default()
        },
    )
    .unwrap();
    let warmed = warm(&model(&resmlp, 6, &cpu().autodiff()), [2, 1, 1]);
    let points: Vec<f32> = (0..16).map(|i| (i as f32 * 0.7).sin() * 2.0).collect();
    export_onnx(
        "resmlp-cut",
        &cut(&warmed, &plan(&resmlp, 4)).unwrap(),
        None,
        &points,
        [8, 2, 1, 1],
    );
}

/// A few training-mode passes move BN's running statistics off their defaults.
fn warm(model: &Model, [c, h, w]: [usize; 3]) -> Model {
    for _ in 0..3 {
        let x = Tensor::<4>::random(
            [8, c, h, w],
            Distribution::Normal(0.5, 2.0),
            &model.devices()[0],
        );
        let _ = model.forward(x);
    }
    model.valid()
}

#[test]
fn safetensors_exports_reload_as_the_same_network() {
    let x = the_input(2);
    let a = read("resnet20-a.safetensors", None).model;
    let cut_model = cut(&a, &plan(&a.spec, 7)).unwrap();
    let export = || {
        block_on(interop::export(
            &cut_model,
            None,
            serde_json::json!({ "method": "random plan" }),
            Format::Safetensors,
        ))
        .unwrap()
    };
    let bytes = export();
    // Byte for byte reproducible: the metadata map came out in `HashMap`
    // order, different on each export (probe 2, L7).
    for _ in 0..4 {
        assert!(export() == bytes, "two exports of one model differ");
    }
    // No architecture given: the file's metadata carries the cut one.
    let back = interop::read_model(&bytes, Path::new("cut.safetensors"), None, &cpu()).unwrap();
    assert_eq!(
        back.model.spec, cut_model.spec,
        "the pruned architecture travels in the metadata"
    );
    assert_eq!(back.notes["method"], "random plan");
    assert_eq!(
        logits(&back.model, &x, [2, 3, 32, 32]),
        logits(&cut_model, &x, [2, 3, 32, 32]),
        "the same weights, bit for bit"
    );
    // A dense export is what PyTorch saved: the same names, shapes and values.
    let dense = block_on(interop::export(&a, None, Value::Null, Format::Safetensors)).unwrap();
    let ours = interop::safetensors::read(&dense).unwrap();
    let theirs = dict("resnet20-a.safetensors");
    assert_eq!(ours.floats.len(), theirs.floats.len());
    assert_eq!(
        ours.others, theirs.others,
        "num_batches_tracked, for strict load_state_dict"
    );
    for t in &theirs.floats {
        let o = ours
            .floats
            .iter()
            .find(|o| o.name == t.name)
            .unwrap_or_else(|| panic!("{} not exported", t.name));
        assert_eq!(o.shape, t.shape, "{}", t.name);
        assert_eq!(o.values, t.values, "{}", t.name);
    }
    // Masked weights leave as zeros, and the metadata says what is left.
    let mut masks = WeightMasks::dense(&a);
    for layer in &mut masks.layers {
        for (i, keep) in layer.keep.iter_mut().enumerate() {
            *keep = i % 4 == 0;
        }
    }
    let sparse = block_on(interop::export(
        &a,
        Some(&masks),
        Value::Null,
        Format::Safetensors,
    ))
    .unwrap();
    let read_back = interop::safetensors::read(&sparse).unwrap();
    let conv = read_back
        .floats
        .iter()
        .find(|t| t.name == "layer1.0.conv1.weight")
        .unwrap();
    let zeros = conv.values.iter().filter(|v| **v == 0.0).count();
    assert_eq!(
        zeros,
        conv.values.len() * 3 / 4,
        "three in four weights exported as zeros"
    );
    let nonzero: u64 = read_back.metadata["prunelab.nonzero_params"]
        .parse()
        .unwrap();
    assert!(nonzero < prunelab::metrics::count::count(&a.spec).params / 3);
    let line = interop::size_line(&a, Some(&masks));
    assert!(line.contains("sparse"), "{line}");
}

/// The pinned hashes are the bytes people have: the copies in
/// `../shared/data/pretrained/` hash to what `interop::pretrained` pins
/// (skipped, saying so, where that folder is absent).
#[test]
fn the_pinned_checkpoint_hashes_match_the_shared_copies() {
    use sha2::Digest;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/pretrained");
    let mut checked = 0;
    for c in prunelab::interop::pretrained::CHECKPOINTS {
        let Ok(bytes) = std::fs::read(dir.join(c.file)) else {
            continue;
        };
        let got: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, c.sha256, "{}", c.file);
        checked += 1;
    }
    if checked == 0 {
        eprintln!("SKIPPED: no pretrained checkpoint in {}", dir.display());
    }
}
