//! Models: output shapes, parameter counts that match the counter, and the
//! model file format (round trip and corruption).

use crate::common::*;
use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use prunelab::base::host::block_on;
use prunelab::io::{model_file, pack::Pack};
use prunelab::metrics::count::count;
use prunelab::model::spec::{ModelSpec, Shortcut};
use prunelab::model::zoo::ModelOptions;

fn spec(name: &str, shortcut: Shortcut) -> ModelSpec {
    ModelSpec::named(
        name,
        &ModelOptions {
            shortcut,
            ..ModelOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn every_model_maps_a_batch_to_logits_and_has_the_counted_parameters() {
    let device = cpu();
    for (name, shortcut) in [
        ("mlp", Shortcut::A),
        ("cnn", Shortcut::A),
        ("resnet20", Shortcut::A),
        ("resnet20", Shortcut::B),
        ("vgg16", Shortcut::A),
    ] {
        let spec = spec(name, shortcut);
        let model = model(&spec, 1, &device);
        let [c, h, w] = spec.input_shape();
        let x = Tensor::<4>::random([3, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let logits = model.valid().forward(x);
        assert_eq!(logits.dims(), [3, 10], "{name}");
        let values = block_on(prunelab::base::host::floats(logits)).unwrap();
        assert!(
            values.iter().all(|v| v.is_finite()),
            "{name} gives finite logits"
        );
        assert_eq!(
            model.num_params(),
            count(&spec).params as usize + crate::common::bn_buffers(&spec),
            "{name} {shortcut:?}: built model and counter agree"
        );
    }
}

#[test]
fn model_files_round_trip_exactly() {
    let device = cpu();
    let spec = spec("resnet20", Shortcut::A);
    let model = model(&spec, 3, &device);
    let bytes = block_on(model_file::to_bytes(
        &model,
        serde_json::json!({"note": "test"}),
    ))
    .unwrap();
    let (loaded, notes) =
        model_file::from_bytes(&bytes, std::path::Path::new("m.plm"), &device).unwrap();
    assert_eq!(notes["note"], "test");
    assert_eq!(loaded.spec, spec);
    assert_eq!(max_abs_diff(&weights(&model), &weights(&loaded)), 0.0);
    let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let a = block_on(prunelab::base::host::floats(
        model.valid().forward(x.clone()),
    ))
    .unwrap();
    let b = block_on(prunelab::base::host::floats(loaded.valid().forward(x))).unwrap();
    assert!(max_abs_diff(&a, &b) <= 1e-6);
}

#[test]
fn damaged_model_files_are_refused_with_a_reason() {
    let device = cpu();
    let model = model(&mlp_spec(&[4]), 1, &device);
    let bytes = block_on(model_file::to_bytes(&model, serde_json::Value::Null)).unwrap();
    let path = std::path::Path::new("m.plm");
    let err = |b: &[u8]| {
        model_file::from_bytes(b, path, &device)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };

    let mut flipped = bytes.clone();
    let n = flipped.len();
    flipped[n - 20] ^= 0x40;
    assert!(err(&flipped).contains("checksum"), "{}", err(&flipped));
    assert!(err(&bytes[..bytes.len() / 2]).contains("checksum"));
    assert!(err(b"hello").contains("not a prunelab"));
    let mut newer = bytes.clone();
    newer[8] = 99;
    assert!(err(&newer).contains("newer prunelab"), "{}", err(&newer));

    // A file for another architecture names the tensor that does not fit.
    let other = crate::common::model(&mlp_spec(&[5]), 1, &device);
    let other = block_on(model_file::to_bytes(&other, serde_json::Value::Null)).unwrap();
    let mut pack = Pack::from_bytes(&other, path).unwrap();
    pack.meta["spec"] = serde_json::to_value(mlp_spec(&[4])).unwrap();
    let e = err(&pack.to_bytes());
    assert!(e.contains("shape") && e.contains("does not match"), "{e}");
}

#[test]
fn option_a_shortcut_pads_channels_and_subsamples() {
    let device = cpu();
    let spec = spec("resnet20", Shortcut::A);
    let model = model(&spec, 1, &device);
    let prunelab::model::Net::Resnet(net) = &model.net else {
        panic!("a resnet")
    };
    let block = net
        .blocks
        .iter()
        .find(|b| b.name == "stage2.block0")
        .unwrap();
    assert_eq!(block.zero_pad, [8, 8]);
    let x = Tensor::<4>::random([1, 16, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let y = block.shortcut(x.clone());
    assert_eq!(y.dims(), [1, 32, 16, 16]);
    let y = block_on(prunelab::base::host::floats(y)).unwrap();
    let x = block_on(prunelab::base::host::floats(x)).unwrap();
    // Channel 8 of the output is input channel 0 at even rows and columns.
    assert_eq!(y[8 * 256 + 16 + 1], x[2 * 32 + 2]);
    assert!(y[..8 * 256].iter().all(|&v| v == 0.0), "padding is zero");
}

/// The reliability probe's M1: a model file is small, but its header
/// declares the architecture. A hand-made file (with a valid checksum) that
/// declares a huge or inconsistent one is refused before anything is built.
#[test]
fn a_file_declaring_a_huge_architecture_is_refused_before_allocating() {
    let device = cpu();
    let m = model(&mlp_spec(&[8]), 1, &device);
    let bytes = block_on(model_file::to_bytes(&m, serde_json::json!({}))).unwrap();
    let path = std::path::Path::new("evil.plm");
    let original = Pack::from_bytes(&bytes, path).unwrap();
    let forge = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut pack = Pack::from_bytes(&bytes, path).unwrap();
        edit(&mut pack.meta["spec"]);
        pack.to_bytes()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "hidden 1e9",
            forge(&|s| s["hidden"] = serde_json::json!([1_000_000_000u64])),
            "between 1 and",
        ),
        (
            "classes 1e8",
            forge(&|s| s["classes"] = serde_json::json!(100_000_000u64)),
            "between 1 and",
        ),
        (
            "inputs 0",
            forge(&|s| s["inputs"] = serde_json::json!(0)),
            "between 1 and",
        ),
        (
            "in bounds, more than stored",
            forge(&|s| s["hidden"] = serde_json::json!([4096, 4096])),
            "parameters but the file stores",
        ),
    ];
    for (what, forged, says) in cases {
        let err = model_file::from_bytes(&forged, path, &device)
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"))
            .to_string();
        assert!(err.contains(says), "{what}: {err}");
    }
    // The unforged file still loads (the forging itself is sound).
    assert!(model_file::from_bytes(&original.to_bytes(), path, &device).is_ok());
}
