//! Every method end to end on a toy problem (a residual MLP on the spiral),
//! each in seconds on a CPU: targets met, structure really removed, and each
//! method's own promise kept.

mod common;

use common::*;
use prunelab::config::RunConfig;
use prunelab::device::OpenDevice;
use prunelab::events::Quiet;
use prunelab::experiment;
use prunelab::host::block_on;
use prunelab::model::Model;
use prunelab::model::init_model;
use prunelab::prune::flexrel::FlexRelOptions;
use prunelab::prune::imp::ImpOptions;
use prunelab::prune::lottery::{LotteryOptions, Rewind};
use prunelab::prune::polarization::PolarizationOptions;
use prunelab::prune::random::{RandomOptions, RandomUnit};
use prunelab::prune::{Outcome, PruneOptions};
use prunelab::report::MethodResult;

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

impl Fixture {
    /// The same fixture with another test set: nothing a method chooses may change.
    fn with_other_test(&self) -> Fixture {
        Fixture {
            config: self.config.clone(),
            split: self.split.clone().with_test(toy("spiral", 300, 99).train),
            device: self.device.clone(),
            theta0: self.theta0.deep_fork(),
            trained: self.trained.deep_fork(),
            dense: self.dense.clone(),
        }
    }
}

fn bits(model: &Model) -> Vec<u32> {
    weights(model).iter().map(|v| v.to_bits()).collect()
}

fn fixture() -> Fixture {
    let config = config();
    let split = config.data.load(config.seed).unwrap();
    let device = OpenDevice::cpu("cpu");
    let spec = config.model_spec(2, 2).unwrap();
    let theta0 = init_model(&spec, config.seed, &device.autodiff());
    let mut trainer =
        prunelab::train::Trainer::new(theta0.deep_fork(), config.train.clone(), config.seed);
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
        f.trained.deep_fork()
    } else {
        f.theta0.deep_fork()
    };
    block_on(experiment::run_method(
        &f.config, method, target, method, options, start, &f.dense, &f.device, &f.split,
        &mut Quiet,
    ))
    .unwrap()
}

fn finetune(epochs: usize) -> PruneOptions {
    PruneOptions {
        finetune_epochs: Some(epochs),
        score_batches: Some(2),
        score_batch_size: 100,
        ..PruneOptions::default()
    }
}

fn learned(outcome: &Outcome) -> (f64, f64) {
    let l = &outcome.details["learned"];
    (
        l["removed"].as_f64().expect("S1 reports what it learned"),
        l["decided_share"].as_f64().unwrap(),
    )
}

#[test]
fn s1_learns_its_target_without_settle_and_cuts_the_gated_network() {
    let f = fixture();
    for target in [0.3f32, 0.5, 0.7] {
        let (outcome, r) = run(
            &f,
            "polarization",
            &format!("macs={target}"),
            finetune(0),
            false,
        );
        let (removed, decided) = learned(&outcome);
        assert!(
            (removed - target as f64).abs() <= 0.05,
            "target {target}: the regulariser alone removed {removed:.3}"
        );
        assert!(
            decided >= 0.9,
            "target {target}: {decided:.2} of gates decided"
        );
        let settle = &outcome.details["settle"];
        assert_eq!(settle["enabled"], false);
        assert_eq!(settle["flipped_units"], 0);
        // Without settle the cut is what was learned (up to a revived unit).
        assert!(
            (r.macs_reduction - removed).abs() <= 0.02,
            "cut {:.3} vs learned {removed:.3}",
            r.macs_reduction
        );
        // The cut network is the frozen gated one: its accuracy is the last gated epoch's, exactly.
        let gated = outcome.history.last().unwrap().test_accuracy;
        assert!(
            (r.test_accuracy - gated).abs() < 1e-6,
            "cut {} vs gated {}",
            r.test_accuracy,
            gated
        );
        assert_eq!(outcome.history.len(), 25, "one pass, no fine-tuning");
        assert!(r.test_accuracy > 0.75, "{}", r.test_accuracy);
    }
}

#[test]
fn s1_settle_is_a_reported_last_resort_and_short_passes_freeze() {
    let f = fixture();
    // Two epochs: the schedule runs by step, so the gates still freeze
    // (mid-pass) and settle still meets the budget.
    let mut o = finetune(0);
    o.update("polarization", |p: &mut PolarizationOptions| {
        p.epochs = Some(2);
        p.settle = true;
    });
    let (outcome, r) = run(&f, "polarization", "macs=0.5", o, false);
    let d = &outcome.details;
    assert!(
        d["learned"]["step"].as_u64().unwrap() > 0,
        "froze mid-pass: {d}"
    );
    assert!(
        (r.macs_reduction - 0.5).abs() <= 0.02,
        "settled: {}",
        r.macs_reduction
    );
    let flips = d["settle"]["flipped_units"].as_u64().unwrap()
        + d["settle"]["flipped_blocks"].as_u64().unwrap();
    let learned_removed = d["learned"]["removed"].as_f64().unwrap();
    assert!(
        flips > 0 || (learned_removed - 0.5).abs() <= 0.02,
        "settle reports its flips: {d}"
    );
    assert_eq!(outcome.history.len(), 2);
}

#[test]
fn s1_dynamic_gates_settle_on_a_consensus() {
    let f = fixture();
    let mut o = finetune(0);
    o.update("polarization", |p: &mut PolarizationOptions| {
        p.gates = prunelab::prune::gates::GateKind::Dynamic
    });
    let (outcome, r) = run(&f, "polarization", "macs=0.5", o, false);
    let (removed, decided) = learned(&outcome);
    let agreement = outcome.details["learned"]["agreement"].as_f64().unwrap();
    assert!((removed - 0.5).abs() <= 0.05, "{removed}");
    assert!(
        decided >= 0.9 && agreement >= 0.9,
        "decided {decided}, agreement {agreement}"
    );
    let gated = outcome.history.last().unwrap().test_accuracy;
    assert!(
        (r.test_accuracy - gated).abs() < 1e-6,
        "the cut network is the frozen gated one"
    );
}

#[test]
fn s2_flexrel_prunes_weights_and_blends_to_magnitude_at_delta_zero() {
    let f = fixture();
    let (outcome, _) = run(&f, "flexrel", "sparsity=0.6", finetune(0), true);
    let masks = outcome.masks.expect("weight masks");
    assert!((masks.sparsity() - 0.6).abs() < 0.01);
    let mut zero = finetune(0);
    zero.update("flexrel", |f: &mut FlexRelOptions| f.delta = 0.0);
    let (a, _) = run(&f, "flexrel", "sparsity=0.6", zero, true);
    let (b, _) = run(&f, "magnitude", "sparsity=0.6", finetune(0), true);
    let magnitude = b.masks.unwrap();
    assert_eq!(a.masks.unwrap(), magnitude, "δ = 0 is magnitude pruning");
    // The relevance term changes which weights go (δ = 1: relevance only).
    let mut one = finetune(0);
    one.update("flexrel", |f: &mut FlexRelOptions| f.delta = 1.0);
    let (c, _) = run(&f, "flexrel", "sparsity=0.6", one, true);
    assert_ne!(c.masks.unwrap(), magnitude, "δ = 1 ranks by relevance");
}

#[test]
fn s2_flexrel_chooses_its_factor_on_the_validation_split_and_returns_that_model() {
    let f = fixture();
    let mut sweep = finetune(0);
    sweep.update("flexrel", |f: &mut FlexRelOptions| {
        f.accuracy_target = Some(0.8);
        f.sweep = vec![0.0, 0.5];
    });
    let (o, r) = run(&f, "flexrel", "sparsity=0.5", sweep.clone(), true);
    assert_eq!(
        o.details["sweep"].as_array().unwrap().len(),
        2 * prunelab::prune::flexrel::SWEEP_FACTORS.len()
    );
    assert_eq!(o.details["best"].as_array().unwrap().len(), 2);
    let selected = &o.details["selected"];
    let sparsity = selected["sparsity"].as_f64().unwrap();
    // The returned model is the selected one: its sparsity and bytes.
    let masks = o.masks.as_ref().unwrap();
    assert!(
        (masks.sparsity() - sparsity).abs() < 0.01,
        "{} vs {sparsity}",
        masks.sparsity()
    );
    assert_eq!(r.bytes, selected["bytes"].as_u64().unwrap());
    let point = o.details["sweep"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["delta"] == selected["delta"] && p["sparsity"] == selected["sparsity"])
        .unwrap();
    assert!(point["valid_accuracy"].as_f64().unwrap() >= 0.8);
    // Nothing it chose depends on the test set.
    let other = f.with_other_test();
    let (o2, _) = run(&other, "flexrel", "sparsity=0.5", sweep, true);
    assert_eq!(o2.details["selected"], o.details["selected"]);
    assert_eq!(o2.masks, o.masks);
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
        o.update("lottery", |l: &mut LotteryOptions| {
            l.criterion = serde_json::from_value(serde_json::json!(criterion)).unwrap()
        });
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
    rewind.update("lottery", |l: &mut LotteryOptions| {
        l.rewind = Rewind::Epoch;
        l.rewind_epoch = 5;
    });
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
        o.update("random", |r: &mut RandomOptions| {
            r.unit = RandomUnit::Weights
        });
        let (outcome, r) = run(&f, method, "sparsity=0.5", o, trained);
        let m = outcome.masks.unwrap_or_else(|| panic!("{method} masks"));
        assert!((m.sparsity() - 0.5).abs() < 0.01, "{method}");
        assert!(r.nonzero_params < f.dense.params, "{method}");
    }
    let mut o = finetune(0);
    o.update("imp", |i: &mut ImpOptions| {
        i.rounds = 2;
        i.epochs = Some(6);
    });
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
    assert!(try_run("lottery", "blocks=9").contains("has 4 removable blocks"));
    assert!(try_run("lottery", "blocks=0").contains("blocks=1 to 4"));
    assert!(try_run("l1", "blocks=2").contains("block-removal methods"));
    assert!(try_run("l1", "macs=0.99").contains("unreachable"));
    assert!(try_run("polarization", "sparsity=0.5").contains("macs=F or params=F"));
    // A latency target runs end to end: the plan meets it by the measured
    // per-layer times, and the row carries what the clock says after.
    let (outcome, row) = run(&f, "l1", "latency=0.4", finetune(0), true);
    let predicted = outcome.details["predicted_latency_reduction"]
        .as_f64()
        .unwrap();
    assert!(predicted >= 0.4 - 1e-6, "{predicted}");
    assert!(
        outcome.details["latency_table_ms"]
            .as_object()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(row.latency.is_some() && row.speedup.is_some());
    // … and is calibrated on the clock: each round aims higher by what the
    // measured cut still missed, until it is within 0.02 or 4 rounds.
    let rounds = outcome.details["latency_calibration"].as_array().unwrap();
    assert!((1..=4).contains(&rounds.len()), "{rounds:?}");
    let aims: Vec<f64> = rounds.iter().map(|r| r["aim"].as_f64().unwrap()).collect();
    assert!(
        (aims[0] - 0.4).abs() < 1e-6 && aims.windows(2).all(|w| w[1] > w[0]),
        "{aims:?}"
    );
    for (r, next) in rounds.iter().zip(&aims[1..]) {
        let measured = r["measured"].as_f64().unwrap();
        let aim = r["aim"].as_f64().unwrap();
        assert!(
            measured + 0.02 < 0.4,
            "a round that met the target is the last"
        );
        assert!(
            (next - (aim + 0.4 - measured).min(0.99)).abs() < 1e-6,
            "{next} after {r}"
        );
    }
    assert!(try_run("pruneit", "macs=0.5").contains("choose one of"));
    let mlp = init_model(&mlp_spec(&[8]), 1, &cpu().autodiff());
    let e = try_on("lottery", "blocks=1", mlp.deep_fork());
    assert!(e.contains("residual blocks"), "{e}");
    let e = try_on("slimming", "macs=0.5", mlp);
    assert!(e.contains("no batch norm"), "{e}");
}

#[test]
fn no_method_reads_the_test_set_to_choose() {
    let f = fixture();
    let other = f.with_other_test();
    let mut flexrel = finetune(1);
    flexrel.update("flexrel", |f: &mut FlexRelOptions| {
        f.accuracy_target = Some(0.7);
        f.sweep = vec![0.0, 1.0];
    });
    let mut imp = finetune(0);
    imp.update("imp", |i: &mut ImpOptions| {
        i.rounds = 1;
        i.epochs = Some(4);
    });
    let mut short = finetune(0);
    short.update("polarization", |p: &mut PolarizationOptions| {
        p.epochs = Some(4)
    });
    let cases = [
        ("polarization", "macs=0.5", false, short),
        ("flexrel", "sparsity=0.5", true, flexrel),
        ("energy", "macs=0.4", true, finetune(1)),
        ("hrank", "macs=0.4", true, finetune(1)),
        ("l1", "macs=0.4", true, finetune(1)),
        ("random", "macs=0.4", true, finetune(1)),
        ("magnitude", "sparsity=0.5", true, finetune(1)),
        ("snip", "sparsity=0.5", false, finetune(0)),
        ("imp", "sparsity=0.5", false, imp),
    ];
    for (method, target, trained, options) in cases {
        let before = f.split.test_reads();
        let (o, r) = run(&f, method, target, options.clone(), trained);
        assert_eq!(
            f.split.test_reads() - before,
            r.history.len() + 1,
            "{method}: one test read per reported epoch and one for the row"
        );
        let (o2, _) = run(&other, method, target, options, trained);
        assert_eq!(o.plan, o2.plan, "{method}");
        assert_eq!(o.masks, o2.masks, "{method}");
        assert!(
            bits(&o.model) == bits(&o2.model),
            "{method}: the same model"
        );
    }
}

#[test]
fn s4_algorithm_1_retrains_theta_i_with_the_schedule_resumed() {
    use prunelab::events::Event;
    let f = fixture();
    let mut o = finetune(0);
    o.update("lottery", |l: &mut LotteryOptions| {
        l.rewind = Rewind::Epoch;
        l.rewind_epoch = 5;
    });
    let mut lrs = Vec::new();
    let mut sink = |e: Event| {
        if let Event::Step { lr, .. } = e {
            lrs.push(lr)
        }
    };
    // A decaying schedule, so where it resumes shows.
    let mut config = f.config.clone();
    config.train.schedule = prunelab::train::schedule::Schedule::Cosine;
    let augment = config.data.augment;
    let (outcome, _) = block_on(experiment::run_method(
        &config,
        "lottery",
        "blocks=1",
        "lottery",
        o,
        f.theta0.deep_fork(),
        &f.dense,
        &f.device,
        &f.split,
        &mut sink,
    ))
    .unwrap();
    // The reference: the dense schedule to epoch 5, the same cut, then the
    // last 20 epochs with the schedule resumed at epoch 5.
    let device = f.device.autodiff();
    let mut dense =
        prunelab::train::Trainer::new(f.theta0.deep_fork(), config.train.clone(), config.seed);
    while dense.progress.epoch < 5 {
        block_on(dense.run_epoch(&f.split, augment, &device, &mut Quiet)).unwrap();
    }
    let plan = outcome.plan.clone().unwrap();
    let ticket = prunelab::prune::surgery::cut(&dense.model, &plan).unwrap();
    let mut retrain = prunelab::train::Trainer::new(ticket, config.train.clone(), config.seed);
    retrain.progress.epoch = 5;
    while !retrain.finished() {
        block_on(retrain.run_epoch(&f.split, augment, &device, &mut Quiet)).unwrap();
    }
    assert!(
        bits(&outcome.model) == bits(&retrain.model),
        "restarted from θ₅"
    );
    let per_epoch = f.split.train.len().div_ceil(config.train.batch_size);
    let first_retrain_step = 25 * per_epoch;
    assert_eq!(lrs.len(), (25 + 20) * per_epoch);
    assert!(
        (lrs[first_retrain_step] - config.train.lr_at(5, 0, per_epoch)).abs() < 1e-12,
        "LR rewinding: {} vs {}",
        lrs[first_retrain_step],
        config.train.lr_at(5, 0, per_epoch)
    );
    assert!(
        (lrs[first_retrain_step] - lrs[0]).abs() > 1e-9,
        "the schedule did not restart at epoch 0"
    );
}

/// Iterative schedules: N rounds of select → cut → fine-tune → re-score
/// reach the same target as one shot, with the one-shot fine-tuning budget
/// split across the rounds, intermediate targets on the schedule, a plan for
/// the dense network that rebuilds the final architecture, and layer caps
/// held against the dense sizes.
#[test]
fn iterative_schedules_reach_the_target_in_rounds_with_the_same_budget() {
    use prunelab::prune::IterativeSchedule;
    use prunelab::prune::select::Protection;
    let f = fixture();
    for (method, schedule) in [
        ("l1", IterativeSchedule::Geometric),
        ("taylor", IterativeSchedule::Linear),
    ] {
        let mut o = finetune(3);
        o.iterative_steps = 3;
        o.iterative_schedule = schedule;
        o.protect = Protection {
            max_layer_ratio: 0.75,
            ..Protection::default()
        };
        let (outcome, row) = run(&f, method, "macs=0.5", o, true);
        assert!(
            row.macs_reduction >= 0.5 - 1e-6,
            "{method}: {}",
            row.macs_reduction
        );
        assert!(
            row.macs_reduction < 0.6,
            "{method}: overshoot {}",
            row.macs_reduction
        );
        assert_eq!(
            outcome.history.len(),
            3,
            "{method}: one epoch per round, three in all"
        );
        let aims: Vec<f64> =
            serde_json::from_value(outcome.details["iterative"]["targets"].clone()).unwrap();
        let want: Vec<f64> = (1..=3).map(|k| schedule.at(0.5, k, 3)).collect();
        assert_eq!(aims, want, "{method}");
        assert!(aims[0] < aims[1] && aims[1] < aims[2]);
        let plan = outcome.plan.unwrap();
        plan.validate(&f.trained.spec).unwrap();
        let rebuilt = prunelab::prune::surgery::cut(&f.trained, &plan).unwrap();
        assert_eq!(
            rebuilt.spec, outcome.model.spec,
            "{method}: the plan is for the dense network"
        );
        for g in f.trained.spec.unit_groups() {
            let kept = plan.keep.get(&g.name).map_or(g.size, Vec::len);
            assert!(
                4 * kept >= g.size,
                "{method}: {} keeps {kept} of {}",
                g.name,
                g.size
            );
        }
    }
}

#[test]
fn latency_tables_are_kept_on_disk_between_runs() {
    use prunelab::prune::pipeline::{latency_key, latency_table};
    let dir = std::env::temp_dir().join(format!("prunelab-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let device = OpenDevice::cpu("cpu");
    let spec = mlp_spec(&[8]);
    // A measured table is written under its key …
    let measured = block_on(latency_table(&spec, 5, &device, Some(&dir))).unwrap();
    let stored: prunelab::prune::select::LatencyTable =
        prunelab::io::cache::read(&dir, "latency", &latency_key(&spec, 5, &device)).unwrap();
    // serde_json (without `float_roundtrip`) may read a float back one ulp off.
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        measured.keys().collect::<Vec<_>>()
    );
    for (layer, ms) in &measured {
        assert!(
            (stored[layer] - ms).abs() <= 1e-12 * ms.abs(),
            "{layer}: {} vs {ms}",
            stored[layer]
        );
    }
    // … and a stored one is read, not measured again (another process's).
    let fake: prunelab::prune::select::LatencyTable =
        [("fc1".to_string(), 42.0), ("out".to_string(), 7.0)].into();
    prunelab::io::cache::write(&dir, "latency", &latency_key(&spec, 6, &device), &fake);
    assert_eq!(
        block_on(latency_table(&spec, 6, &device, Some(&dir))).unwrap(),
        fake
    );
    // A different architecture is a different entry.
    assert!(
        prunelab::io::cache::read::<prunelab::prune::select::LatencyTable>(
            &dir,
            "latency",
            &latency_key(&mlp_spec(&[9]), 6, &device)
        )
        .is_none()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
