//! Shared fixtures for the integration tests: small data the tests generate.
#![allow(dead_code)]

use burn::tensor::Device;
use prunelab::data::toy::{self, ToySpec};
use prunelab::data::{Dataset, Features, Split};
use prunelab::model::Model;
use prunelab::model::spec::ModelSpec;
use prunelab::model::zoo::ModelOptions;
use prunelab::train::TrainConfig;
use prunelab::train::optim::OptimizerKind;
use prunelab::train::schedule::Schedule;

pub fn cpu() -> Device {
    Device::flex()
}

pub fn toy(name: &str, train: usize, seed: u64) -> Split {
    toy::generate(
        &ToySpec {
            name: name.into(),
            train,
            test: 100,
            noise: 0.05,
            classes: 2,
        },
        seed,
    )
    .unwrap()
}

pub fn mlp_spec(hidden: &[usize]) -> ModelSpec {
    ModelSpec::named(
        "mlp",
        &ModelOptions {
            classes: 2,
            hidden: hidden.to_vec(),
            ..ModelOptions::default()
        },
    )
    .unwrap()
}

pub fn adam(epochs: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        lr,
        optimizer: OptimizerKind::Adam,
        weight_decay: 0.0,
        schedule: Schedule::Constant,
        ..TrainConfig::default()
    }
}

pub fn model(spec: &ModelSpec, seed: u64, device: &Device) -> Model {
    prunelab::model::init_model(spec, seed, device)
}

/// Random CIFAR-shaped byte images with labels `i % classes`.
pub fn tiny_images(n: usize, classes: usize, seed: u64) -> Dataset {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let pixels = (0..n * 3 * 32 * 32)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect();
    Dataset {
        features: Features::Bytes(pixels),
        labels: (0..n).map(|i| (i % classes) as u16).collect(),
        shape: [3, 32, 32],
        classes,
    }
}

/// All float tensors of a module, flattened, for comparisons.
pub fn weights(model: &Model) -> Vec<f32> {
    let mut pack = prunelab::io::pack::Pack::default();
    prunelab::base::host::block_on(prunelab::io::pack::push_module(&mut pack, "", model)).unwrap();
    pack.data
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared vectors differ in length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// BN running mean and variance: module tensors, not parameters.
pub fn bn_buffers(spec: &ModelSpec) -> usize {
    spec.layers()
        .iter()
        .map(|l| match l.op {
            prunelab::model::geometry::LayerOp::BatchNorm { channels } => 2 * channels,
            _ => 0,
        })
        .sum()
}

/// The layers a unit criterion scores for `spec`'s free groups.
#[allow(dead_code)]
pub fn layers(spec: &prunelab::model::ModelSpec) -> Vec<String> {
    prunelab::prune::contract::producers(&spec.unit_groups())
}
