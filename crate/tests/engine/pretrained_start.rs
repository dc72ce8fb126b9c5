//! A comparison that starts from a trained network (`[model] from`, issue
//! 32): the data are normalised as that network records, its dense row is
//! measured (not trained), and an explicit `normalize` wins over the record.

use prunelab::base::device::{self, DeviceChoice};
use prunelab::base::host::block_on;
use prunelab::config::RunConfig;
use prunelab::data::augment::Normalization;
use prunelab::model::ModelSpec;
use prunelab::model::config::NormalizeArg;
use prunelab::runs::dense::{open_split, train_dense};
use prunelab::train::evaluate;
use rand::Rng;

use crate::common::*;

/// A CIFAR-10 folder in the official layout: `n` records a file, labels
/// `i % 10`, random pixels (so the normalisation changes what a network sees).
fn fake_cifar(dir: &std::path::Path, n: usize) {
    let mut rng = prunelab::base::rng::stream(9, "fake-cifar", 0);
    let mut file = |name: &str| {
        let mut bytes = Vec::new();
        for i in 0..n {
            bytes.push((i % 10) as u8);
            bytes.extend((0..3072).map(|_| rng.random::<u8>()));
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    for name in prunelab::data::cifar::Variant::Cifar10.train_files() {
        file(name);
    }
    file("test_batch.bin");
}

fn config(dir: &std::path::Path, from: &std::path::Path) -> RunConfig {
    let mut c = RunConfig::default();
    c.device = DeviceChoice::Cpu;
    c.model.name = "cnn".into();
    c.model.from = Some(from.display().to_string());
    c.data.dataset = "cifar10".into();
    c.data.dir = Some(dir.display().to_string());
    c.train.epochs = 3;
    c
}

#[test]
fn a_comparison_from_a_trained_file_is_measured_on_the_files_normalisation() {
    let tmp = tempfile::tempdir().unwrap();
    fake_cifar(tmp.path(), 20);
    // A "trained" network recording ImageNet's normalisation (a published
    // checkpoint's), where the data set's own would be CIFAR-10's.
    let spec = ModelSpec::named("cnn", &Default::default())
        .unwrap()
        .with_input(Some(Normalization::IMAGENET));
    let trained = model(&spec, 4, &cpu());
    let file = tmp.path().join("trained.plm");
    std::fs::write(
        &file,
        block_on(prunelab::io::model_file::to_bytes(
            &trained,
            serde_json::Value::Null,
        ))
        .unwrap(),
    )
    .unwrap();
    let base = config(tmp.path(), &file);

    let split = open_split(&base, 1).unwrap();
    assert_eq!(
        split.norm,
        Some(Normalization::IMAGENET),
        "the file's record"
    );
    let opened = device::open(DeviceChoice::Cpu).unwrap();
    let mut sink = |_: prunelab::base::events::Event| {};
    let mut save = |_: Vec<u8>| Ok(String::new());
    let dense = block_on(train_dense(
        &base, &opened, &split, None, &mut sink, &mut save,
    ))
    .unwrap();
    assert!(dense.result.history.is_empty(), "measured, not trained");
    assert_eq!(weights(&dense.model), weights(&trained));
    let (_, accuracy) = block_on(evaluate(
        &trained,
        split.test(),
        Some(Normalization::IMAGENET),
        64,
        &cpu(),
    ))
    .unwrap();
    assert_eq!(dense.result.test_accuracy, accuracy);

    // An explicit normalisation wins over the record, for data and model.
    let mut explicit = base.clone();
    explicit.model.normalize = Some(NormalizeArg(Normalization::CIFAR10));
    let split = open_split(&explicit, 1).unwrap();
    assert_eq!(split.norm, Some(Normalization::CIFAR10));
    let dense = block_on(train_dense(
        &explicit, &opened, &split, None, &mut sink, &mut save,
    ))
    .unwrap();
    assert_eq!(dense.model.spec.input(), Some(Normalization::CIFAR10));

    // A file holding another network than `[model] name` says is refused.
    let mut other = base.clone();
    other.model.name = "vgg16".into();
    let e = open_split(&other, 1).unwrap_err().to_string();
    assert!(e.contains("holds a cnn") && e.contains("vgg16"), "{e}");
}

/// Files from before the normalisation was recorded read as recording none;
/// a hostile one cannot record a zero std.
#[test]
fn a_spec_without_a_recorded_normalisation_reads_and_a_zero_std_is_refused() {
    let spec = ModelSpec::named("cnn", &Default::default()).unwrap();
    let mut json = serde_json::to_value(&spec).unwrap();
    assert!(json.get("input").is_none(), "not written when absent");
    let read: ModelSpec = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(read.input(), None);
    json["input"] = serde_json::json!({ "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.0, 0.2] });
    let hostile: ModelSpec = serde_json::from_value(json).unwrap();
    let e = hostile.validate().unwrap_err().to_string();
    assert!(e.contains("std"), "{e}");
}

/// The page's lab feeds an imported model the normalisation it records
/// (the "Start from a trained ResNet-20" file records ImageNet's), where its
/// data were opened with CIFAR-10's own.
#[test]
fn the_lab_feeds_an_imported_model_its_recorded_normalisation() {
    let tmp = tempfile::tempdir().unwrap();
    fake_cifar(tmp.path(), 10);
    let mut c = config(tmp.path(), tmp.path());
    c.model.from = None;
    c.train.batch_size = 16;
    let split = c.data.load(c.seed).unwrap();
    assert_eq!(split.norm, Some(Normalization::CIFAR10));
    let mut lab = prunelab::runs::lab::Lab::new(c, device::OpenDevice::cpu("cpu"), split).unwrap();
    let spec = ModelSpec::named("cnn", &Default::default())
        .unwrap()
        .with_input(Some(Normalization::IMAGENET));
    let bytes = block_on(prunelab::io::model_file::to_bytes(
        &model(&spec, 2, &cpu()),
        serde_json::Value::Null,
    ))
    .unwrap();
    lab.import(&bytes, "trained.plm").unwrap();
    assert_eq!(lab.split.norm, Some(Normalization::IMAGENET));
}
