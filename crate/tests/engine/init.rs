//! The MLP's `playground` initialisation (TensorFlow Playground's start) is
//! what it says, and it is why the toy lab learns Playground's spiral in a
//! few hundred epochs where the default start stalls (docs/benchmarks.md).

use crate::common::*;
use prunelab::base::host::block_on;
use prunelab::data::toy::{self, ToySpec};
use prunelab::model::Net;
use prunelab::model::spec::{Activation, Init, ModelSpec, PLAYGROUND_SCALE};
use prunelab::model::zoo::ModelOptions;
use prunelab::train::Trainer;

fn spec(init: Init) -> ModelSpec {
    ModelSpec::named(
        "mlp",
        &ModelOptions {
            classes: 2,
            hidden: vec![8, 8],
            activation: Activation::Relu,
            init,
            ..ModelOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn playground_weights_are_uniform_halves_with_biases_of_a_tenth() {
    let built = model(&spec(Init::Playground), 4, &cpu());
    let Net::Mlp(mlp) = &built.net else {
        panic!("an MLP")
    };
    let layers: Vec<_> = mlp.hidden.iter().chain([&mlp.out]).collect();
    for (i, layer) in layers.iter().enumerate() {
        let w: Vec<f32> = layer.weight.val().into_data().try_to_vec().unwrap();
        let bound = if i == 0 { 0.5 * PLAYGROUND_SCALE } else { 0.5 };
        let largest = w.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
        assert!(
            largest <= bound,
            "layer {i}: |w| up to {largest}, bound {bound}"
        );
        assert!(
            largest > 0.6 * bound,
            "layer {i}: |w| only up to {largest} of {bound}"
        );
        let b: Vec<f32> = layer
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_to_vec()
            .unwrap();
        assert!(b.iter().all(|&v| v == 0.1), "layer {i} biases: {b:?}");
    }
    // The default start is burn's: biases drawn, not constant.
    let fresh = model(&spec(Init::Default), 4, &cpu());
    let Net::Mlp(mlp) = &fresh.net else {
        panic!("an MLP")
    };
    let b: Vec<f32> = mlp.hidden[0]
        .bias
        .as_ref()
        .unwrap()
        .val()
        .into_data()
        .try_to_vec()
        .unwrap();
    assert!(b.iter().any(|&v| v != 0.1));
}

#[test]
fn a_spec_without_init_reads_as_the_default_and_writes_without_it() {
    let old = r#"{"family":"mlp","inputs":2,"hidden":[8],"classes":2,"activation":"relu"}"#;
    let spec: ModelSpec = serde_json::from_str(old).unwrap();
    assert_eq!(spec, self::spec_with(&[8], Init::Default));
    assert!(!serde_json::to_string(&spec).unwrap().contains("init"));
    let playground = serde_json::to_string(&self::spec_with(&[8], Init::Playground)).unwrap();
    assert!(
        playground.contains(r#""init":"playground""#),
        "{playground}"
    );
}

fn spec_with(hidden: &[usize], init: Init) -> ModelSpec {
    ModelSpec::named(
        "mlp",
        &ModelOptions {
            classes: 2,
            hidden: hidden.to_vec(),
            init,
            ..ModelOptions::default()
        },
    )
    .unwrap()
}

/// The first epoch (1-based) at which test accuracy reaches 90%, within `epochs`.
fn epochs_to_90(init: Init, seed: u64, epochs: usize) -> Option<usize> {
    let split = toy::generate(
        &ToySpec {
            name: "tfp-spiral".into(),
            train: 250,
            test: 250,
            noise: 0.0,
            classes: 2,
        },
        seed,
    )
    .unwrap();
    let device = cpu().autodiff();
    let mut config = adam(epochs, 0.01);
    config.batch_size = 10;
    let mut trainer = Trainer::new(model(&spec(init), seed, &device), config, seed);
    (1..=epochs).find(|_| {
        let m =
            block_on(trainer.run_epoch(&split, false, &device, &mut prunelab::base::events::Quiet));
        m.unwrap().test_accuracy >= 0.9
    })
}

/// Playground's start learns Playground's spiral (2×8 relu, batch 10, Adam
/// 0.01) to 90% test accuracy within 150 epochs on each of seeds 1–8
/// (measured: 47–134); the default start misses 300 epochs on some of them
/// (measured: seeds 4 and 6; the others 51–219).
#[test]
fn playground_start_learns_the_spiral_where_the_default_stalls() {
    let playground: Vec<_> = (1..=8)
        .map(|s| epochs_to_90(Init::Playground, s, 150))
        .collect();
    assert!(
        playground.iter().all(Option::is_some),
        "playground start: {playground:?}"
    );
    let default: Vec<_> = (1..=8)
        .map(|s| epochs_to_90(Init::Default, s, 300))
        .collect();
    assert!(
        default.iter().any(Option::is_none),
        "default start: {default:?}"
    );
}
