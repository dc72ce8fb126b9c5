//! The playground's engine, driven natively: the same calls the page makes.

use prunelab::base::device::OpenDevice;
use prunelab::base::host::block_on;
use prunelab::config::RunConfig;
use prunelab::prune::polarization::PolarizationOptions;
use prunelab::prune::{PruneOptions, Target};
use prunelab::runs::lab::Lab;

fn lab(model: &str, hidden: &[usize]) -> Lab {
    let mut c = RunConfig::default();
    c.model.name = model.into();
    c.model.hidden = hidden.to_vec();
    c.data.dataset = "gaussians".into();
    c.train = crate::common::adam(6, 0.03);
    c.train.batch_size = 40;
    let split = c.data.load(c.seed).unwrap();
    Lab::new(c, OpenDevice::cpu("cpu"), split).unwrap()
}

#[test]
fn train_then_slide_the_pruning_amount_then_fine_tune() {
    let mut lab = lab("mlp", &[12, 8]);
    let per_epoch = lab.steps_per_epoch();
    let r = block_on(lab.train(per_epoch * 6)).unwrap();
    assert!(r.finished && r.epochs().len() == 6);
    block_on(lab.score("l1", &PruneOptions::default())).unwrap();
    let light = block_on(lab.prune(0.2)).unwrap();
    let heavy = block_on(lab.prune(0.6)).unwrap();
    assert!(heavy.pruned.params < light.pruned.params && light.pruned.params < light.dense.params);
    assert!(
        heavy.plan.iter().any(|l| l.contains('→')),
        "{:?}",
        heavy.plan
    );
    // The drawing shows the dense architecture with removed units greyed.
    let net = block_on(lab.network()).unwrap();
    assert_eq!(net[0].outputs, 12);
    let removed: usize = net
        .iter()
        .map(|l| l.unit_alive.iter().filter(|&&a| !a).count())
        .sum();
    assert!(removed >= 10, "60% of 20 hidden units removed: {removed}");
    assert_eq!(net[0].magnitude.len(), 2 * 12);
    // The boundary changes with the slider.
    let b_heavy = block_on(lab.boundary(16, 1.5)).unwrap();
    block_on(lab.prune(0.0)).unwrap();
    let b_none = block_on(lab.boundary(16, 1.5)).unwrap();
    assert!(crate::common::max_abs_diff(&b_heavy, &b_none) > 1e-3);
    // Weight-level: masks, and bytes that shrink.
    block_on(lab.score("magnitude", &PruneOptions::default())).unwrap();
    let w = block_on(lab.prune(0.5)).unwrap();
    assert!(w.pruned.bytes < w.dense.bytes && w.pruned.macs == w.dense.macs);
    assert!(block_on(lab.network()).unwrap()[0].weight_alive.is_some());
    lab.finetune(2).unwrap();
    let r = block_on(lab.train(per_epoch * 2)).unwrap();
    assert_eq!(r.epochs().len(), 2);
    let bytes = block_on(lab.model_file()).unwrap();
    let (m, _) = prunelab::io::model_file::from_bytes(
        &bytes,
        std::path::Path::new("page.plm"),
        &crate::common::cpu(),
    )
    .unwrap();
    assert_eq!(m.spec.name(), "mlp-12-8");
}

#[test]
fn the_slider_reuses_scores_until_training_moves_the_model() {
    let mut lab = lab("mlp", &[12, 8]);
    let per_epoch = lab.steps_per_epoch();
    let first = block_on(lab.train(per_epoch)).unwrap();
    let options = PruneOptions::default();
    block_on(lab.score("l1", &options)).unwrap();
    let a = serde_json::to_value(block_on(lab.prune(0.5)).unwrap()).unwrap();
    // Asking again (the page does on every click) reuses the same scores.
    block_on(lab.score("l1", &options)).unwrap();
    let b = serde_json::to_value(block_on(lab.prune(0.5)).unwrap()).unwrap();
    assert_eq!(a, b);
    // Training on makes the old reference and scores stale.
    let second = block_on(lab.train(per_epoch * 3)).unwrap();
    let (before, now) = (
        first.epochs().last().unwrap().test_accuracy,
        second.epochs().last().unwrap().test_accuracy,
    );
    assert_ne!(
        before, now,
        "the model must have changed for this test to mean anything"
    );
    block_on(lab.score("l1", &options)).unwrap();
    let c = block_on(lab.prune(0.0)).unwrap();
    let dense = c.dense.test_accuracy.unwrap();
    assert!(
        (dense - now).abs() < 1e-6,
        "the slider's reference is the model trained so far ({now}), not the one scored before ({before}): {dense}"
    );
}

#[test]
fn s1_runs_epoch_by_epoch_with_gates_then_cuts() {
    let mut lab = lab("resmlp", &[12, 12, 12]);
    // A dense model first: S1's result is compared with it.
    let dense = block_on(lab.train(lab.steps_per_epoch() * 6)).unwrap();
    let dense_accuracy = dense.epochs().last().unwrap().test_accuracy;
    let mut options = PruneOptions::default();
    options.update("polarization", |p: &mut PolarizationOptions| {
        p.epochs = Some(6);
        p.settle = true;
    });
    lab.start_gated(Target::Macs(0.5), &options).unwrap();
    let mut reports = Vec::new();
    let mut epochs = Vec::new();
    let mut cut = None;
    let mut details = None;
    for _ in 0..20 {
        let r = block_on(lab.train(lab.steps_per_epoch())).unwrap();
        epochs.extend(r.epochs());
        reports.extend(r.gates);
        if let Some(c) = r.cut {
            cut = Some(c);
            details = r.gated_details;
            break;
        }
        let net = block_on(lab.network()).unwrap();
        assert!(
            net.iter().any(|l| l.gates.is_some()),
            "gate values are drawn while gated"
        );
    }
    assert_eq!(reports.len(), 6);
    assert!(reports.last().unwrap().frozen);
    let cut = cut.expect("the pass ends with a cut");
    let removed = 1.0 - cut.pruned.macs as f64 / cut.dense.macs as f64;
    assert!((removed - 0.5).abs() < 0.03, "{removed}");
    // The dense side is the model trained before, not the gated network.
    assert_eq!(cut.dense.test_accuracy, Some(dense_accuracy));
    let gated = epochs.last().unwrap().test_accuracy;
    assert!(
        (cut.pruned.test_accuracy.unwrap() - gated).abs() < 1e-6,
        "the cut network is the frozen gated one"
    );
    let details = details.expect("S1 says what it learned");
    assert!(details["learned"]["removed"].is_number() && details["settle"]["enabled"] == true);
}

#[test]
fn s1_from_scratch_has_no_dense_accuracy_to_compare() {
    let mut lab = lab("resmlp", &[8, 8]);
    let mut options = PruneOptions::default();
    options.update("polarization", |p: &mut PolarizationOptions| {
        p.epochs = Some(2)
    });
    lab.start_gated(Target::Macs(0.3), &options).unwrap();
    let r = block_on(lab.train(lab.steps_per_epoch() * 2)).unwrap();
    let cut = r.cut.expect("two epochs, then the cut");
    assert_eq!(cut.dense.test_accuracy, None, "nothing was trained densely");
    assert!(cut.pruned.test_accuracy.is_some());
}

#[test]
fn unit_maps_show_one_neuron() {
    let mut lab = lab("mlp", &[6]);
    block_on(lab.train(lab.steps_per_epoch() * 2)).unwrap();
    let map = block_on(lab.unit_map("fc1", 3, 8, 1.5)).unwrap();
    assert_eq!(map.len(), 64);
    assert!(map.iter().any(|v| *v != map[0]));
    assert!(block_on(lab.unit_map("fc9", 0, 8, 1.5)).is_err());
    assert!(block_on(lab.unit_map("fc1", 6, 8, 1.5)).is_err());
}

/// The page's snapshot upload goes through `Lab::restore`: a shared `.plm`
/// that declares a huge architecture, holds NaN weights or was made for
/// other data is refused with its reason, and the lab keeps its model (the
/// probe's M1 and M3, for a browser tab).
#[test]
fn a_hostile_or_mismatched_snapshot_is_refused_and_the_lab_keeps_its_model() {
    let mut c = RunConfig::default();
    c.model.hidden = vec![6];
    c.data.dataset = "gaussians".into();
    c.data.classes = 3;
    let split = c.data.load(c.seed).unwrap();
    let mut lab = Lab::new(c, OpenDevice::cpu("cpu"), split).unwrap();
    let own = block_on(lab.model_file()).unwrap();
    let forged = |name: &str| {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fuzz/regressions/checkpoint")
                .join(name),
        )
        .unwrap()
    };
    for (bytes, says) in [
        (forged("model-huge-hidden"), "hidden width"),
        (forged("model-huge-classes"), "classes"),
        (forged("model-nan-weight"), "NaN"),
        // A two-class moons model, for this three-class lab.
        (
            std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../fuzz/regressions/valid/moons-1-epoch.plm"),
            )
            .unwrap(),
            "the data has 3 classes",
        ),
    ] {
        let e = lab.restore(&bytes).unwrap_err().to_string();
        assert!(e.contains(says), "{says}: {e}");
    }
    assert_eq!(block_on(lab.model_file()).unwrap(), own);
    lab.restore(&own).unwrap();
}

/// The CIFAR lab's latency lists every conv and linear layer of the dense
/// model, timed alone, beside the pruned model's (0 where a layer is gone);
/// what the times are is a benchmark's business, not a test's.
#[test]
fn latency_lists_each_layer_of_the_dense_and_the_pruned_model() {
    let mut c = RunConfig::default();
    c.model.name = "cnn".into();
    c.data.dataset = "cifar10".into();
    c.train = crate::common::adam(1, 0.01);
    c.train.batch_size = 16;
    let data = crate::common::tiny_images(32, 10, 5);
    let split = prunelab::data::Split::new(data.clone(), data, None, "tiny");
    let mut lab = Lab::new(c, OpenDevice::cpu("cpu"), split).unwrap();
    let per_epoch = lab.steps_per_epoch();
    block_on(lab.train(per_epoch)).unwrap();
    block_on(lab.score("l1", &PruneOptions::default())).unwrap();
    block_on(lab.prune(0.5)).unwrap();
    let l = block_on(lab.latency(8, 1)).unwrap();
    let timed: Vec<String> = prunelab::model::ModelSpec::named("cnn", &Default::default())
        .unwrap()
        .layers()
        .into_iter()
        .filter(|g| !matches!(g.op, prunelab::model::geometry::LayerOp::BatchNorm { .. }))
        .map(|g| g.name)
        .collect();
    let names: Vec<&str> = l.layers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, timed.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        l.layers
            .iter()
            .all(|t| t.dense_ms.is_finite() && t.shown_ms.is_finite())
    );
}

/// At-initialisation methods (S4's lottery, SNIP) rank θ₀ as in a run, not
/// the trained model: after training, their plan is the plan an untrained
/// lab of the same seed makes, and an after-training method scored next
/// ranks the trained model again.
#[test]
fn at_initialisation_methods_rank_theta0_even_after_training() {
    let blocks = |lab: &mut Lab| {
        block_on(lab.score("lottery", &PruneOptions::default())).unwrap();
        block_on(lab.prune(0.5)).unwrap()
    };
    let mut fresh = lab("resmlp", &[8, 8, 8, 8]);
    let untrained = blocks(&mut fresh);
    let mut trained = lab("resmlp", &[8, 8, 8, 8]);
    let per_epoch = trained.steps_per_epoch();
    block_on(trained.train(per_epoch * 6)).unwrap();
    let after = blocks(&mut trained);
    assert_eq!(after.plan, untrained.plan, "the same blocks, from θ₀");
    assert_eq!(
        after.dense.test_accuracy, untrained.dense.test_accuracy,
        "measured against θ₀"
    );
    block_on(trained.score("l1", &PruneOptions::default())).unwrap();
    let l1 = block_on(trained.prune(0.3)).unwrap();
    assert!(
        l1.dense.test_accuracy.unwrap() > untrained.dense.test_accuracy.unwrap() + 0.2,
        "l1 ranks the trained model: {:?} vs θ₀ {:?}",
        l1.dense.test_accuracy,
        untrained.dense.test_accuracy
    );
}

/// The page hands the engine bytes (an uploaded CSV) or nothing (a toy
/// problem); the CLI hands it paths. Both take one route, so the same config
/// gives the same split — subsets and validation hold-out included.
#[test]
fn the_page_and_the_cli_route_data_the_same_way() {
    let fingerprint = |s: &prunelab::data::Split| {
        let part = |d: &prunelab::data::Dataset| (format!("{:?}", d.features), d.labels.clone());
        (part(&s.train), part(&s.valid), part(&s.test()))
    };
    let mut c = RunConfig::default();
    c.data.dataset = "moons".into();
    c.data.valid_fraction = 0.2;
    let cli = c.data.load(c.seed).unwrap();
    let page = c
        .data
        .load_given(prunelab::data::Given::Nothing, c.seed)
        .unwrap();
    assert!(!cli.valid.is_empty(), "the hold-out applies");
    assert_eq!(fingerprint(&cli), fingerprint(&page));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("points.csv");
    let text: String = (0..60)
        .map(|i| format!("{},{},{}\n", i as f32 / 7.0, (i * i % 11) as f32, i % 3))
        .collect();
    std::fs::write(&path, &text).unwrap();
    let mut c = RunConfig::default();
    c.data.dataset = "csv".into();
    c.data.path = Some(path.display().to_string());
    c.data.valid_fraction = 0.2;
    let cli = c.data.load(c.seed).unwrap();
    let name = path.display().to_string();
    let page = c
        .data
        .load_given(
            prunelab::data::Given::Csv {
                name: &name,
                bytes: text.as_bytes(),
            },
            c.seed,
        )
        .unwrap();
    assert!(!cli.valid.is_empty());
    assert_eq!(fingerprint(&cli), fingerprint(&page));

    // CIFAR is where the two routes read differently: the CLI names files in
    // a folder, the page hands their bytes over. (For a toy problem and a CSV
    // the CLI's `load` calls `load_given` itself, so above only the hold-out
    // can fail.)
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, salt) in (1..=5)
        .map(|b| (format!("data_batch_{b}.bin"), b))
        .chain([("test_batch.bin".to_string(), 9)])
    {
        let bytes: Vec<u8> = (0..12usize)
            .flat_map(|i| {
                std::iter::once((i % 10) as u8)
                    .chain((0..3072).map(move |j| ((i * 31 + j * 7 + salt) % 256) as u8))
            })
            .collect();
        std::fs::write(dir.path().join(&name), &bytes).unwrap();
        files.push((name, bytes));
    }
    let mut c = RunConfig::default();
    c.data.dataset = "cifar10".into();
    c.data.dir = Some(dir.path().display().to_string());
    c.data.train_subset = Some(40);
    c.data.valid_fraction = 0.2;
    let cli = c.data.load(c.seed).unwrap();
    let page = c
        .data
        .load_given(prunelab::data::Given::Cifar(&files), c.seed)
        .unwrap();
    assert!(!cli.valid.is_empty() && cli.train.len() + cli.valid.len() == 40);
    assert_eq!(fingerprint(&cli), fingerprint(&page));
}
