//! Every method end to end on a toy problem (a residual MLP on the spiral),
//! each in seconds on a CPU: targets met, structure really removed, and each
//! method's own promise kept.

mod common;

use common::*;
use prunelab::config::RunConfig;
use prunelab::device::OpenDevice;
use prunelab::events::Quiet;
use prunelab::experiment::{self, MethodResult};
use prunelab::host::block_on;
use prunelab::model::Model;
use prunelab::prune::{Outcome, PruneOptions};
use prunelab::run::init_model;

fn config() -> RunConfig {
    let mut c = RunConfig::default();
    c.model.name = "resmlp".into();
    c.model.hidden = vec![16, 16, 16, 16];
    c.data.dataset = "spiral".into();
    c.data.train_points = 400;
    c.data.noise = 0.05;
    c.train = adam(25, 0.02);
    c.train.batch_size = 50;
    c.seed = 3;
    c
}

struct Fixture {
    config: RunConfig,
    split: prunelab::data::Split,
    device: OpenDevice,
    theta0: Model,
    trained: Model,
    dense: MethodResult,
}

fn fixture() -> Fixture {
    let config = config();
    let split = config.data.load(config.seed).unwrap();
    let device = OpenDevice::cpu("cpu");
    let spec = config.model_spec(2, 2).unwrap();
    let theta0 = init_model(&spec, config.seed, &device.autodiff());
    let mut trainer =
        prunelab::train::Trainer::new(theta0.clone(), config.train.clone(), config.seed);
    while !trainer.finished() {
        block_on(trainer.run_epoch(&split, false, &device.autodiff(), &mut Quiet)).unwrap();
    }
    let dense = block_on(experiment::dense_result(
        &trainer.model,
        vec![],
        0.0,
        &split,
        &config,
        &device,
    ))
    .unwrap();
    assert!(
        dense.test_accuracy > 0.85,
        "the dense model learns the spiral: {}",
        dense.test_accuracy
    );
    Fixture {
        config,
        split,
        device,
        theta0,
        trained: trainer.model,
        dense,
    }
}

fn run(
    f: &Fixture,
    method: &str,
    target: &str,
    options: PruneOptions,
    trained: bool,
) -> (Outcome, MethodResult) {
    let start = if trained {
        f.trained.clone()
    } else {
        f.theta0.clone()
    };
    block_on(experiment::run_method(
        &f.config, method, target, method, options, start, &f.dense, &f.device, &f.split,
        &mut Quiet,
    ))
    .unwrap()
}

fn finetune(epochs: usize) -> PruneOptions {
    PruneOptions {
        finetune_epochs: epochs,
        score_batches: 2,
        score_batch_size: 100,
        ..PruneOptions::default()
    }
}

#[test]
fn s1_polarization_meets_the_target_with_decided_gates_and_no_fine_tuning() {
    let f = fixture();
    for target in [0.3f32, 0.5] {
        let (outcome, r) = run(
            &f,
            "polarization",
            &format!("macs={target}"),
            finetune(0),
            false,
        );
        assert!(
            (r.macs_reduction - target as f64).abs() <= 0.02,
            "target {target}: removed {:.3}",
            r.macs_reduction
        );
        let d = &outcome.details;
        let last = d["trajectory"].as_array().unwrap().last().unwrap();
        let undecided =
            last["undecided"].as_u64().unwrap() as f64 / last["gates"].as_u64().unwrap() as f64;
        assert!(
            undecided <= 0.05,
            "gates end near 0/1: {undecided:.2} undecided"
        );
        // The cut network is the gated one: its accuracy is the last gated epoch's, exactly.
        let gated = outcome.history.last().unwrap().test_accuracy;
        assert!(
            (r.test_accuracy - gated).abs() < 1e-6,
            "cut {} vs gated {}",
            r.test_accuracy,
            gated
        );
        assert_eq!(outcome.history.len(), 25, "one pass, no fine-tuning");
        assert!(r.test_accuracy > 0.8, "{}", r.test_accuracy);
    }
}

#[test]
fn s2_flexrel_prunes_weights_and_blends_to_magnitude_at_delta_zero() {
    let f = fixture();
    let (outcome, r) = run(&f, "flexrel", "sparsity=0.6", finetune(0), true);
    let masks = outcome.masks.expect("weight masks");
    assert!((masks.sparsity() - 0.6).abs() < 0.01);
    assert_eq!(
        r.macs_reduction, 0.0,
        "unstructured pruning keeps dense MACs"
    );
    assert!(r.bytes < f.dense.bytes, "sparse encodings shrink the model");
    let mut zero = finetune(0);
    zero.flexrel.delta = 0.0;
    let (a, _) = run(&f, "flexrel", "sparsity=0.6", zero, true);
    let (b, _) = run(&f, "magnitude", "sparsity=0.6", finetune(0), true);
    assert_eq!(
        a.masks.unwrap(),
        b.masks.unwrap(),
        "δ = 0 is magnitude pruning"
    );
    let mut sweep = finetune(0);
    sweep.flexrel.accuracy_target = Some(0.8);
    sweep.flexrel.sweep = vec![0.0, 0.5];
    let (o, _) = run(&f, "flexrel", "sparsity=0.5", sweep, true);
    assert_eq!(
        o.details["sweep"].as_array().unwrap().len(),
        2 * prunelab::prune::flexrel::SWEEP_FACTORS.len()
    );
    assert_eq!(o.details["best"].as_array().unwrap().len(), 2);
}

#[test]
fn s3_energy_and_the_channel_baselines_cut_the_requested_macs() {
    let f = fixture();
    for method in ["energy", "l1", "hrank", "random"] {
        let (outcome, r) = run(&f, method, "macs=0.4", finetune(5), true);
        assert!(
            r.macs_reduction >= 0.4 - 1e-9 && r.macs_reduction < 0.45,
            "{method}: {:.3}",
            r.macs_reduction
        );
        assert!(
            outcome.plan.is_some() && r.params < f.dense.params,
            "{method}: physically smaller"
        );
        assert_eq!(outcome.history.len(), 5, "{method}: fine-tuned");
    }
    let mut iterative = finetune(0);
    iterative.step = Some(0.1);
    let (_, r) = run(&f, "energy", "macs=0.4", iterative, true);
    assert!(r.macs_reduction >= 0.4 - 1e-9);
}

#[test]
fn s4_lottery_removes_blocks_at_init_and_trains_the_ticket() {
    let f = fixture();
    for criterion in ["grasp", "snip", "random"] {
        let mut o = finetune(0);
        o.lottery.criterion = serde_json::from_value(serde_json::json!(criterion)).unwrap();
        let (outcome, r) = run(&f, "lottery", "blocks=2", o, false);
        assert_eq!(
            outcome.plan.as_ref().unwrap().remove_blocks.len(),
            2,
            "{criterion}"
        );
        assert!(
            (r.macs_reduction - 0.45).abs() < 0.06,
            "{criterion}: two of four blocks are ~half the MACs: {}",
            r.macs_reduction
        );
        assert_eq!(
            outcome.history.len(),
            25,
            "{criterion}: trained for the full budget"
        );
        assert!(r.test_accuracy > 0.7, "{criterion}: {}", r.test_accuracy);
    }
    let mut rewind = finetune(0);
    rewind.lottery.rewind = prunelab::prune::options::Rewind::Epoch;
    rewind.lottery.rewind_epoch = 5;
    let (outcome, _) = run(&f, "lottery", "blocks=1", rewind, false);
    assert_eq!(
        outcome.history.len(),
        25 + 20,
        "Algorithm 1: n epochs, then n − i after rewinding"
    );
}

#[test]
fn weight_level_baselines_and_imp_reach_their_sparsity() {
    let f = fixture();
    for (method, trained) in [("magnitude", true), ("snip", false), ("random", true)] {
        let mut o = finetune(3);
        o.unit = prunelab::prune::options::RandomUnit::Weights;
        let (outcome, r) = run(&f, method, "sparsity=0.5", o, trained);
        let m = outcome.masks.unwrap_or_else(|| panic!("{method} masks"));
        assert!((m.sparsity() - 0.5).abs() < 0.01, "{method}");
        assert!(r.nonzero_params < f.dense.params, "{method}");
    }
    let mut o = finetune(0);
    o.imp.rounds = 2;
    o.imp.epochs = Some(6);
    let (outcome, _) = run(&f, "imp", "sparsity=0.75", o, false);
    assert!((outcome.masks.unwrap().sparsity() - 0.75).abs() < 0.01);
    assert_eq!(
        outcome.history.len(),
        6 * 3,
        "dense round plus two prune-retrain rounds"
    );
}

#[test]
fn unfit_targets_and_methods_are_refused_clearly() {
    let f = fixture();
    let try_on = |method: &str, target: &str, start: prunelab::model::Model| {
        block_on(experiment::run_method(
            &f.config,
            method,
            target,
            method,
            finetune(0),
            start,
            &f.dense,
            &f.device,
            &f.split,
            &mut Quiet,
        ))
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    let try_run = |method: &str, target: &str| try_on(method, target, f.trained.clone());
    assert!(try_run("magnitude", "macs=0.5").contains("sparsity"));
    assert!(try_run("lottery", "macs=0.5").contains("blocks=N"));
    assert!(try_run("lottery", "blocks=9").contains("only 4"));
    assert!(try_run("pruneit", "macs=0.5").contains("choose one of"));
    let mlp = init_model(&mlp_spec(&[8]), 1, &cpu().autodiff());
    let e = try_on("lottery", "blocks=1", mlp);
    assert!(e.contains("residual blocks"), "{e}");
}
