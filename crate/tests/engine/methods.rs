//! Every method end to end on a toy problem (a residual MLP on the spiral),
//! each in seconds on a CPU: targets met, structure really removed, and each
//! method's own promise kept.

use crate::common::*;
use prunelab::base::device::OpenDevice;
use prunelab::base::events::Quiet;
use prunelab::base::host::block_on;
use prunelab::config::RunConfig;
use prunelab::model::Model;
use prunelab::model::init_model;
use prunelab::prune::flexrel::FlexRelOptions;
use prunelab::prune::imp::ImpOptions;
use prunelab::prune::lottery::{LotteryOptions, Rewind};
use prunelab::prune::polarization::PolarizationOptions;
use prunelab::prune::random::{RandomOptions, RandomUnit};
use prunelab::prune::{Granularity, METHODS, Method, Outcome, Phase, PruneOptions, by_name};
use prunelab::report::MethodResult;
use prunelab::runs::{dense, experiment};

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
    /// The dense stage a method is measured against (its row, and a fork of
    /// its model for the paired speed-up).
    fn reference(&self) -> dense::Dense {
        dense::Dense {
            model: self.trained.deep_fork(),
            result: self.dense.clone(),
        }
    }

    /// Runs `run` under `config` against this fixture's dense stage.
    fn run_with(
        &self,
        config: &RunConfig,
        run: experiment::MethodRun,
        sink: &mut dyn prunelab::base::events::Sink,
    ) -> prunelab::Result<(prunelab::prune::Outcome, MethodResult)> {
        let dense = self.reference();
        let on = experiment::Comparison {
            config,
            dense: &dense,
            opened: &self.device,
            split: &self.split,
        };
        block_on(experiment::run_method(&on, run, sink))
    }

    /// The same fixture with another test set: nothing a method chooses may change.
    fn with_other_test(&self) -> Fixture {
        let other = match self.config.model.name.as_str() {
            "cnn" => tiny_images(40, 2, 99),
            _ => toy("spiral", 300, 99).train,
        };
        Fixture {
            config: self.config.clone(),
            split: self.split.clone().with_test(other),
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
    fixture_on(config, split, 0.85)
}

/// The fixture for methods that need batch norm (slimming, Polar): the
/// small CNN on tiny random images (nothing to learn; the flows are what
/// is checked), with a validation split.
fn cnn_fixture() -> Fixture {
    let mut config = RunConfig::default();
    config.model.name = "cnn".into();
    config.data.dataset = "cifar10".into();
    config.data.augment = false;
    config.train = adam(3, 0.01);
    config.train.batch_size = 20;
    config.seed = 4;
    let split =
        prunelab::data::Split::new(tiny_images(80, 2, 1), tiny_images(40, 2, 2), None, "tiny")
            .hold_out(0.25, 4)
            .unwrap();
    fixture_on(config, split, 0.0)
}

fn fixture_on(config: RunConfig, split: prunelab::data::Split, floor: f32) -> Fixture {
    let device = OpenDevice::cpu("cpu");
    let spec = config
        .model_spec(split.train.classes, split.train.shape[0])
        .unwrap();
    let theta0 = init_model(&spec, config.seed, &device.autodiff());
    let mut trainer =
        prunelab::train::Trainer::new(theta0.deep_fork(), config.train.clone(), config.seed);
    while !trainer.finished() {
        block_on(trainer.run_epoch(&split, false, &device.autodiff(), &mut Quiet)).unwrap();
    }
    let dense = block_on(dense::dense_result(
        &trainer.model,
        vec![],
        0.0,
        &split,
        &config,
        &device,
    ))
    .unwrap();
    assert!(
        dense.test_accuracy >= floor,
        "the dense model learns: {}",
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
    f.run_with(
        &f.config,
        experiment::MethodRun::new(method, target.parse().unwrap(), options, start),
        &mut Quiet,
    )
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
        // Mostly decided at the end of the pass. The share at macs=0.7 sits
        // near the bound and moves with the float summation order of the
        // kernels (0.88 after the conv weight gradient was reoriented for
        // `gemm`, above 0.9 before); the regulariser itself is guarded by
        // `s1_polarizer_decides_the_gates_sooner` (with lambda_pol = 0 this
        // share is 1.0 here: it does not tell the two apart).
        assert!(
            decided >= 0.85,
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
        f.run_with(
            &f.config,
            experiment::MethodRun::new(method, target.parse().unwrap(), finetune(0), start),
            &mut Quiet,
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    let try_run = |method: &str, target: &str| try_on(method, target, f.trained.clone());
    assert!(try_run("magnitude", "macs=0.5").contains("sparsity"));
    assert!(try_run("lottery", "macs=0.5").contains("blocks=N"));
    assert!(try_run("lottery", "blocks=9").contains("has 4 removable blocks"));
    // All candidates at once: every criterion would remove the same blocks.
    let all = try_run("lottery", "blocks=4");
    assert!(all.contains("whatever the criterion"), "{all}");
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

/// How a registered method runs in the registry-wide tests: its target by
/// what it removes, its start by its phase (as `experiment::compare_from`
/// chooses), short schedules for the methods that train their own. A
/// method added to the registry is covered by these tests unedited.
fn registry_case(m: &dyn Method) -> (String, bool, PruneOptions) {
    let mut o = finetune(1);
    o.update("polarization", |p: &mut PolarizationOptions| {
        p.epochs = Some(4)
    });
    o.update("imp", |i: &mut ImpOptions| {
        i.rounds = 1;
        i.epochs = Some(4);
    });
    let target = match m.removes(&o).unwrap() {
        Granularity::Channels => "macs=0.4",
        Granularity::Weights => "sparsity=0.5",
        Granularity::Blocks => "blocks=1",
        Granularity::Structure => "macs=0.5",
    };
    (target.into(), m.info().phase == Phase::AfterTraining, o)
}

/// Every registered method, with the option paths that choose something
/// (FlexRel's accuracy target and drop, S1's dynamic gates, S4's
/// Algorithm 1) beside its default: `(method, label, target, trained, options)`.
fn registry_cases() -> Vec<(&'static str, String, String, bool, PruneOptions)> {
    let mut cases = Vec::new();
    for m in METHODS {
        let name = m.info().name;
        let (target, trained, o) = registry_case(*m);
        cases.push((name, name.to_string(), target.clone(), trained, o.clone()));
        let mut variant = |label: &str, o: PruneOptions| {
            cases.push((
                name,
                format!("{name} ({label})"),
                target.clone(),
                trained,
                o,
            ))
        };
        match name {
            "flexrel" => {
                let mut t = o.clone();
                t.update("flexrel", |f: &mut FlexRelOptions| {
                    f.accuracy_target = Some(0.7);
                    f.sweep = vec![0.0, 1.0];
                });
                variant("accuracy_target", t);
                // What `reproduce s2` ships: the target relative to the dense
                // model's validation accuracy.
                let mut d = o.clone();
                d.update("flexrel", |f: &mut FlexRelOptions| {
                    f.accuracy_drop = Some(0.05);
                    f.sweep = vec![0.0, 1.0];
                });
                variant("accuracy_drop", d);
            }
            "polarization" => {
                let mut d = o.clone();
                d.update("polarization", |p: &mut PolarizationOptions| {
                    p.gates = prunelab::prune::gates::GateKind::Dynamic
                });
                variant("dynamic", d);
            }
            "lottery" => {
                let mut a = o.clone();
                a.update("lottery", |l: &mut LotteryOptions| {
                    l.rewind = Rewind::Epoch;
                    l.rewind_epoch = 2;
                });
                variant("Algorithm 1", a);
            }
            _ => {}
        }
    }
    cases
}

/// The fixture a registered method can run on: the toy residual MLP, or
/// the small CNN for methods that need batch norm.
fn fixture_for<'a>(m: &dyn Method, toy: &'a Fixture, cnn: &'a Fixture) -> &'a Fixture {
    if m.check_model(&toy.trained.spec).is_ok() {
        toy
    } else {
        m.check_model(&cnn.trained.spec)
            .unwrap_or_else(|e| panic!("{}: no test fixture fits it: {e}", m.info().name));
        cnn
    }
}

/// Every registered method, and every option path that chooses something:
/// one test read per reported epoch and one for the row, and the same plan,
/// masks and weights with another test set; and the model it was handed
/// (BN running statistics included, which a shallow clone shares) is left
/// as it was.
#[test]
fn no_method_reads_the_test_set_to_choose() {
    let (toy, cnn) = (fixture(), cnn_fixture());
    let (toy_other, cnn_other) = (toy.with_other_test(), cnn.with_other_test());
    let cases = registry_cases();
    for m in METHODS {
        assert!(
            cases.iter().any(|c| c.0 == m.info().name),
            "{} is covered",
            m.info().name
        );
    }
    for (method, label, target, trained, options) in cases {
        let m = by_name(method).unwrap();
        let f = fixture_for(m, &toy, &cnn);
        let other = if std::ptr::eq(f, &toy) {
            &toy_other
        } else {
            &cnn_other
        };
        let start = if trained {
            f.trained.deep_fork()
        } else {
            f.theta0.deep_fork()
        };
        let witness = start.clone();
        let before_bits = bits(&witness.deep_fork());
        let before = f.split.test_reads();
        let (o, r) = f
            .run_with(
                &f.config,
                experiment::MethodRun::new(method, target.parse().unwrap(), options.clone(), start),
                &mut Quiet,
            )
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            f.split.test_reads() - before,
            r.history.len() + 1,
            "{label}: one test read per reported epoch and one for the row"
        );
        assert!(
            bits(&witness.deep_fork()) == before_bits,
            "{label} changed the model it was handed"
        );
        let (o2, _) = run(other, method, &target, options, trained);
        assert_eq!(o.plan, o2.plan, "{label}");
        assert_eq!(o.masks, o2.masks, "{label}");
        assert!(bits(&o.model) == bits(&o2.model), "{label}: the same model");
    }
}

/// A comparison's methods start from forks, never clones: burn's `clone`
/// shares BN running statistics, so training (or BN in training mode) on a
/// clone would move the dense model every later method prunes.
#[test]
fn a_methods_start_shares_no_batch_norm_state_with_the_model_it_came_from() {
    let f = cnn_fixture();
    let (dense, theta0) = (f.trained.deep_fork(), f.theta0.deep_fork());
    // `deep_fork` syncs pending BN updates, so snapshots read the real state.
    let snapshot = |m: &Model| bits(&m.deep_fork());
    let (d0, t0) = (snapshot(&dense), snapshot(&theta0));
    let device = f.device.autodiff();
    let x = prunelab::metrics::latency::inputs(&f.split, 20, &device);
    for phase in [
        Phase::AfterTraining,
        Phase::AtInit,
        Phase::DuringTraining,
        Phase::Iterative,
    ] {
        let start = experiment::start_for(phase, &dense, &theta0);
        // BN on an autodiff device runs in training mode: it updates its running statistics.
        for _ in 0..2 {
            let _ = start.forward(x.clone());
        }
    }
    assert!(
        snapshot(&dense) == d0,
        "an after-training start shares BN state with the dense model"
    );
    assert!(snapshot(&theta0) == t0, "a start shares BN state with θ₀");
}

/// Weight-level methods: the pruned weights are zeros *in the model*, with
/// and without fine-tuning, and the row's sizes are those of the zeros the
/// model holds — not of a mask a method might have lost on the way.
#[test]
fn weight_level_sizes_are_the_zeros_the_model_holds() {
    let f = fixture();
    for m in METHODS {
        let name = m.info().name;
        for epochs in [0, 2] {
            let mut o = finetune(epochs);
            o.update("random", |r: &mut RandomOptions| {
                r.unit = RandomUnit::Weights
            });
            o.update("imp", |i: &mut ImpOptions| {
                i.rounds = 1;
                i.epochs = Some(3);
            });
            if m.removes(&o).unwrap() != Granularity::Weights {
                continue;
            }
            let trained = m.info().phase == Phase::AfterTraining;
            let (outcome, r) = run(&f, name, "sparsity=0.5", o, trained);
            let masks = outcome
                .masks
                .as_ref()
                .unwrap_or_else(|| panic!("{name}: masks"));
            let zeros = zeros_of(&outcome.model);
            for (l, z) in masks.layers.iter().zip(&zeros) {
                let alive = l.keep.iter().zip(z).filter(|(k, z)| !**k && !**z).count();
                assert_eq!(
                    alive, 0,
                    "{name} ({epochs} epochs): {} holds {alive} pruned weights",
                    l.layer
                );
            }
            let held = held_masks(&outcome.model, masks);
            let sized = prunelab::metrics::bytes::size(&outcome.model.spec, Some(&held));
            assert_eq!(r.nonzero_params, sized.nonzero_params, "{name}");
            assert_eq!(r.bytes, sized.bytes, "{name}");
        }
    }
    // A model that lost its mask is measured as the dense model it is,
    // whatever mask comes with it.
    let (outcome, _) = run(&f, "magnitude", "sparsity=0.5", finetune(0), true);
    let masks = outcome.masks.unwrap();
    let lost = block_on(prunelab::report::measure(
        &f.trained,
        Some(&masks),
        &f.split,
        500,
        &f.device.device,
    ))
    .unwrap();
    assert_eq!(
        lost.nonzero_params, f.dense.nonzero_params,
        "sizes come from the weights"
    );
}

/// Per prunable layer, which weights `model` holds at exactly 0.
fn zeros_of(model: &Model) -> Vec<Vec<bool>> {
    model
        .prunable_weights()
        .iter()
        .map(|w| {
            block_on(prunelab::base::host::floats(w.param.flat()))
                .unwrap()
                .iter()
                .map(|&v| v == 0.0)
                .collect()
        })
        .collect()
}

/// `masks` with each layer's `keep` read off `model`'s weights.
fn held_masks(
    model: &Model,
    masks: &prunelab::model::masks::WeightMasks,
) -> prunelab::model::masks::WeightMasks {
    let zeros = zeros_of(model);
    prunelab::model::masks::WeightMasks {
        layers: masks
            .layers
            .iter()
            .zip(&zeros)
            .map(|(l, z)| prunelab::model::masks::LayerMask {
                keep: z.iter().map(|&zero| !zero).collect(),
                ..l.clone()
            })
            .collect(),
    }
}

#[test]
fn s4_algorithm_1_retrains_theta_i_with_the_schedule_resumed() {
    use prunelab::base::events::Event;
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
    let (outcome, _) = f
        .run_with(
            &config,
            experiment::MethodRun::new(
                "lottery",
                "blocks=1".parse().unwrap(),
                o,
                f.theta0.deep_fork(),
            ),
            &mut sink,
        )
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

/// Gate-epochs spent undecided (soft value in [0.1, 0.9)) before the freeze.
fn undecided_area(outcome: &Outcome) -> u64 {
    outcome.details["trajectory"]
        .as_array()
        .expect("S1 reports its trajectory")
        .iter()
        .filter(|e| e["frozen"] == false)
        .map(|e| e["undecided"].as_u64().unwrap())
        .sum()
}

/// S1's namesake, as a comparison runs it: the polarizer is on by default
/// and decides gates sooner — a pass with `lambda_pol = 0` spends more
/// gate-epochs undecided before the freeze. ("Decided at the freeze"
/// says nothing: annealing the temperature alone gets every gate there.)
#[test]
fn s1_polarizer_decides_the_gates_sooner() {
    let f = fixture();
    let on = finetune(0);
    let mut off = on.clone();
    off.update("polarization", |p: &mut PolarizationOptions| {
        p.lambda_pol = 0.0
    });
    let (a_on, _) = run(&f, "polarization", "macs=0.5", on, false);
    let (a_off, _) = run(&f, "polarization", "macs=0.5", off, false);
    let (on, off) = (undecided_area(&a_on), undecided_area(&a_off));
    println!("undecided gate-epochs before the freeze: polarizer on {on}, off {off}");
    assert!(
        (on as f64) <= 0.9 * off as f64,
        "the polarizer did not decide the gates sooner ({on} vs {off} without it)"
    );
}

/// S1's dynamic gates are input-conditioned: the heads leave their zero
/// initialisation, so gates differ from sample to sample before the
/// consensus freezes them (frozen heads would be static gates in disguise,
/// agreeing 100%).
#[test]
fn s1_dynamic_gate_heads_learn_gates_that_depend_on_the_sample() {
    use burn::module::Module;
    use prunelab::prune::polarization::PolarizationRun;
    let f = fixture();
    let mut o = finetune(0);
    o.update("polarization", |p: &mut PolarizationOptions| {
        p.gates = prunelab::prune::gates::GateKind::Dynamic;
        p.epochs = Some(5);
    });
    let options: PolarizationOptions = o.of("polarization").unwrap();
    let device = f.device.autodiff();
    let mut run = PolarizationRun::new(
        f.theta0.deep_fork(),
        "macs=0.5".parse().unwrap(),
        options,
        f.config.train.clone(),
        f.split.train.len(),
        f.config.seed,
        &device,
    )
    .unwrap();
    for _ in 0..2 {
        block_on(run.run_epoch(&f.split, false, &device, &mut Quiet)).unwrap();
    }
    assert!(!run.frozen());
    let gated = &run.trainer.model.gated;
    let moved = gated
        .gates
        .heads
        .iter()
        .flat_map(|h| {
            block_on(prunelab::base::host::floats(
                h.weight.val().flatten::<1>(0, 1),
            ))
            .unwrap()
        })
        .fold(0f32, |a, v| a.max(v.abs()));
    assert!(
        moved > 1e-6,
        "the gate heads never left W = 0: the dynamic gates are static"
    );
    let x = prunelab::metrics::latency::inputs(&f.split, 64, &f.device.device);
    let (_, v) = gated.valid().forward(x);
    let spread = v
        .surrogate_units
        .iter()
        .map(|u| {
            let [n, c] = u.dims();
            let x = block_on(prunelab::base::host::floats(u.clone().flatten::<1>(0, 1))).unwrap();
            (0..c)
                .map(|j| {
                    let col = (0..n).map(|i| x[i * c + j]);
                    col.clone().fold(f32::MIN, f32::max) - col.fold(f32::MAX, f32::min)
                })
                .fold(0f32, f32::max)
        })
        .fold(0f32, f32::max);
    assert!(spread > 1e-4, "every sample gets the same gates ({spread})");
}

/// S4's GraSP end to end: the registered lottery ranks blocks by −ΣS with
/// GraSP's S = −w⊙Hg, recomputed here from the (separately tested)
/// Hessian-gradient product, so it removes the blocks with the highest ΣS.
#[test]
fn s4_grasp_removes_the_blocks_with_the_highest_s() {
    use std::collections::BTreeMap;
    let f = fixture();
    let (outcome, _) = run(&f, "lottery", "blocks=2", finetune(0), false);
    let info = by_name("lottery").unwrap().info();
    let sampling =
        prunelab::prune::capture::Sampling::new(&finetune(0), info, false, f.config.seed);
    let (hg, _) = block_on(prunelab::prune::grasp::hessian_gradient(
        &f.theta0,
        &f.split,
        sampling,
        prunelab::prune::grasp::EPSILON,
    ))
    .unwrap();
    let mut s: BTreeMap<String, f64> = BTreeMap::new();
    for (w, hg) in f.theta0.prunable_weights().iter().zip(&hg) {
        let Some((block, _)) = w.layer.rsplit_once('.') else {
            continue;
        };
        let w = block_on(prunelab::base::host::floats(w.param.flat())).unwrap();
        let hg = block_on(prunelab::base::host::floats(hg.clone())).unwrap();
        *s.entry(block.to_string()).or_default() -= w
            .iter()
            .zip(&hg)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum::<f64>();
    }
    let reported: BTreeMap<String, f64> = outcome.details["block_scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_f64().unwrap()))
        .collect();
    let scale = s
        .iter()
        .filter(|(b, _)| reported.contains_key(*b))
        .fold(0f64, |a, (_, v)| a.max(v.abs()));
    assert!(scale > 0.0, "GraSP scores are not all zero");
    for (b, importance) in &reported {
        assert!(
            (importance + s[b]).abs() <= 1e-3 * scale,
            "{b}: importance {importance} vs −ΣS {}",
            -s[b]
        );
    }
    let mut by_s: Vec<(&String, f64)> = reported.keys().map(|b| (b, s[b])).collect();
    by_s.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut want: Vec<String> = by_s[..2].iter().map(|(b, _)| (*b).clone()).collect();
    let mut got: Vec<String> = serde_json::from_value(outcome.details["removed"].clone()).unwrap();
    want.sort();
    got.sort();
    assert_eq!(got, want, "GraSP removes the highest ΣS first");
}

/// The lab's slider prunes exactly as a run does: from the same trained
/// model, scores and target, the same plan for unit criteria (per-layer and
/// global) and the same zeros and bytes for a weight criterion — both go
/// through `prune::pruner::apply`. Data-free criteria, so both score alike.
#[test]
fn the_labs_slider_prunes_as_a_run_does() {
    let f = fixture();
    let bytes = block_on(prunelab::io::model_file::to_bytes(
        &f.trained,
        serde_json::json!({}),
    ))
    .unwrap();
    let mut lab =
        prunelab::runs::lab::Lab::new(f.config.clone(), f.device.clone(), f.split.clone()).unwrap();
    lab.import(&bytes, "trained.plm").unwrap();
    for (method, amount) in [("l1", 0.5f32), ("group-magnitude", 0.3), ("magnitude", 0.6)] {
        let options = finetune(0);
        let (outcome, row) = run(
            &f,
            method,
            &format!("sparsity={amount}"),
            options.clone(),
            true,
        );
        block_on(lab.score(method, &options)).unwrap();
        let slid = block_on(lab.prune(amount)).unwrap();
        let planned = outcome
            .plan
            .as_ref()
            .map(|p| p.describe(&f.trained.spec))
            .unwrap_or_default();
        assert!(
            outcome.plan.is_some() || outcome.masks.is_some(),
            "{method} pruned"
        );
        assert_eq!(slid.plan, planned, "{method}: the same plan");
        assert_eq!(
            (slid.pruned.params, slid.pruned.macs, slid.pruned.bytes),
            (row.nonzero_params, row.macs, row.bytes),
            "{method}: the same network"
        );
        assert!(
            slid.pruned.params < slid.dense.params,
            "{method} removed something"
        );
    }
}
