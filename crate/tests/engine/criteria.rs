//! The math of the criteria and the pruner, on fixtures small enough to check
//! by hand.

use std::collections::BTreeMap;

use crate::common::*;
use burn::module::{Module, Param};
use burn::tensor::{Tensor, TensorData};
use prunelab::base::host::{block_on, floats};
use prunelab::metrics::count::count;
use prunelab::model::spec::ModelSpec;
use prunelab::model::zoo::ModelOptions;
use prunelab::model::{Ctx, Model, Net};
use prunelab::prune::capture::Sampling;
use prunelab::prune::masks::{LayerScores, masks_from_scores};
use prunelab::prune::plan::Plan;
use prunelab::prune::polarization::{Cost, Gates, Measure};
use prunelab::prune::select::{self, Normalize, Scope, SelectOptions, UnitScores};
use prunelab::prune::target::Target;
use rand::Rng;

fn mlp(hidden: &[usize]) -> ModelSpec {
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

fn scores(pairs: &[(&str, &[f32])]) -> UnitScores {
    pairs
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_vec()))
        .collect()
}

#[test]
fn global_selection_removes_the_lowest_scores() {
    let spec = mlp(&[4, 4]);
    let s = scores(&[
        ("fc1", &[0.9, 0.1, 0.5, 0.3]),
        ("fc2", &[0.2, 0.8, 0.05, 0.7]),
    ]);
    let plan = select::select_units(
        &spec,
        &s,
        &Target::Sparsity(0.375),
        &SelectOptions::default(),
    )
    .unwrap();
    // 3 of 8 units go: 0.05 (fc2#2), 0.1 (fc1#1), 0.2 (fc2#0).
    assert_eq!(plan.keep["fc1"], vec![0, 2, 3]);
    assert_eq!(plan.keep["fc2"], vec![1, 3]);
}

#[test]
fn l1_normalisation_compares_layers_by_share() {
    let spec = mlp(&[2, 2]);
    // fc1's scores are 100× larger; raw ranking would strip fc2 first.
    let s = scores(&[("fc1", &[100.0, 300.0]), ("fc2", &[2.0, 1.0])]);
    let raw = select::select_units(
        &spec,
        &s,
        &Target::Sparsity(0.25),
        &SelectOptions::default(),
    )
    .unwrap();
    assert_eq!(raw.keep["fc2"], vec![0]);
    let l1 = SelectOptions {
        normalize: Normalize::L1,
        ..SelectOptions::default()
    };
    // Shares: fc1 0.25/0.75, fc2 0.667/0.333 → fc1#0 (0.25) goes first.
    let plan = select::select_units(&spec, &s, &Target::Sparsity(0.25), &l1).unwrap();
    assert_eq!(plan.keep["fc1"], vec![1]);
    assert_eq!(plan.keep["fc2"], vec![0, 1]);
}

#[test]
fn macs_targets_are_met_by_the_shortest_removal() {
    let spec = ModelSpec::named("resnet20", &ModelOptions::default()).unwrap();
    let mut rng = prunelab::base::rng::stream(1, "t", 0);
    let s: UnitScores = spec
        .unit_groups()
        .into_iter()
        .map(|g| (g.name, (0..g.size).map(|_| rng.random()).collect()))
        .collect();
    for target in [0.1f32, 0.3, 0.45] {
        let plan =
            select::select_units(&spec, &s, &Target::Macs(target), &SelectOptions::default())
                .unwrap();
        let achieved = select::achieved(&spec, &plan, &Target::Macs(target));
        assert!(achieved >= target as f64 - 1e-9, "{achieved} < {target}");
        assert!(
            achieved < target as f64 + 0.01,
            "overshoot: {achieved} for {target}"
        );
    }
    // ResNets keep their residual stream and one channel per block: 99% is out of reach.
    let e = select::select_units(&spec, &s, &Target::Macs(0.99), &SelectOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("unreachable"), "{e}");
}

#[test]
fn per_layer_and_iterative_selection_and_fixed_rates() {
    let spec = mlp(&[10, 10]);
    let s = scores(&[
        ("fc1", &[1., 2., 3., 4., 5., 6., 7., 8., 9., 10.]),
        ("fc2", &[10., 20., 30., 40., 50., 60., 70., 80., 90., 100.]),
    ]);
    let per = SelectOptions {
        scope: Scope::PerLayer,
        ..SelectOptions::default()
    };
    let plan = select::select_units(&spec, &s, &Target::Sparsity(0.3), &per).unwrap();
    assert_eq!(plan.keep["fc1"], (3..10).collect::<Vec<_>>());
    assert_eq!(plan.keep["fc2"], (3..10).collect::<Vec<_>>());
    let iterative = SelectOptions {
        normalize: Normalize::L1,
        step: Some(0.1),
        ..SelectOptions::default()
    };
    let plan = select::select_units(&spec, &s, &Target::Sparsity(0.4), &iterative).unwrap();
    let kept: usize = plan.keep.values().map(Vec::len).sum();
    assert_eq!(kept, 12, "40% of 20 units removed in rounds of 10%");
    let plan = select::select_by_rates(&spec, &s, &[0.5, 0.2], &Default::default()).unwrap();
    assert_eq!(plan.keep["fc1"].len(), 5);
    assert_eq!(plan.keep["fc2"], (2..10).collect::<Vec<_>>());
    assert!(
        select::select_by_rates(&spec, &s, &[0.5], &Default::default())
            .unwrap_err()
            .to_string()
            .contains("one rate per prunable layer")
    );
}

/// Layer-collapse protection: a global ranking whose scores run low in one
/// layer would empty it; the caps, ignored layers and rounding hold, and the
/// target is still met from the other layers.
#[test]
fn layer_caps_ignored_layers_and_rounding_hold_under_a_global_ranking() {
    use prunelab::prune::select::Protection;
    let spec = mlp(&[8, 8, 8]);
    // fc2's scores are all lower than everything else's.
    let s = scores(&[
        ("fc1", &[5., 6., 7., 8., 9., 10., 11., 12.]),
        ("fc2", &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]),
        ("fc3", &[1., 2., 3., 4., 13., 14., 15., 16.]),
    ]);
    let with = |protect: Protection| SelectOptions {
        protect,
        ..SelectOptions::default()
    };
    let target = Target::Sparsity(0.375); // 9 of 24 units
    let plain = select::select_units(&spec, &s, &target, &SelectOptions::default()).unwrap();
    assert_eq!(
        plain.keep["fc2"].len(),
        1,
        "unprotected, fc2 keeps only its floor"
    );
    let capped = with(Protection {
        max_layer_ratio: 0.5,
        ..Protection::default()
    });
    let plan = select::select_units(&spec, &s, &target, &capped).unwrap();
    let kept = |p: &prunelab::prune::plan::Plan, g: &str| p.keep[g].len();
    assert_eq!(kept(&plan, "fc2"), 4, "at most half of fc2 goes");
    assert_eq!(plan.keep["fc2"], vec![4, 5, 6, 7], "its four best stay");
    assert_eq!(
        kept(&plan, "fc1") + kept(&plan, "fc3"),
        16 - 5,
        "the rest comes from elsewhere"
    );
    let ignored = with(Protection {
        ignore_layers: vec!["fc2".into()],
        layer_ratios: [("fc3".to_string(), 0.25)].into(),
        ..Protection::default()
    });
    let plan = select::select_units(&spec, &s, &target, &ignored).unwrap();
    assert_eq!(kept(&plan, "fc2"), 8);
    assert_eq!(kept(&plan, "fc3"), 6, "fc3 capped at a quarter");
    assert_eq!(kept(&plan, "fc1"), 1);
    let rounded = with(Protection {
        round_to: 4,
        ..Protection::default()
    });
    let plan = select::select_units(&spec, &s, &Target::Sparsity(0.3), &rounded).unwrap();
    for g in ["fc1", "fc2", "fc3"] {
        assert_eq!(kept(&plan, g) % 4, 0, "{g}: {:?}", plan.keep[g]);
    }
    // A pattern that names no layer is a typo, refused with the layer names.
    let e = prunelab::prune::select::check_reachable(
        &spec,
        &target,
        &Protection {
            ignore_layers: vec!["conv9".into()],
            ..Protection::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("fc1, fc2, fc3"), "{e}");
    // The caps bound what is reachable.
    let e = prunelab::prune::select::check_reachable(
        &spec,
        &Target::Sparsity(0.6),
        &Protection {
            max_layer_ratio: 0.5,
            ..Protection::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unreachable"), "{e}");
}

/// A `latency=` target is predicted from per-layer times: each layer's time
/// scales with the share of its MACs a plan keeps. By hand on fc1 (2→4),
/// fc2 (4→4), out (4→2) timed 1, 1, 2 ms: keeping 2 of fc1's 4 units halves
/// fc1 and fc2 → (0.5 + 0.5 + 2) / 4 kept, 25% removed — where the MACs say
/// 37.5%, so the selection follows the times, not the MACs.
#[test]
fn latency_targets_follow_the_per_layer_times() {
    let spec = mlp(&[4, 4]);
    let table: select::LatencyTable = [("fc1", 1.0), ("fc2", 1.0), ("out", 2.0)]
        .into_iter()
        .map(|(n, t)| (n.to_string(), t))
        .collect();
    let plan = Plan {
        keep: [("fc1".to_string(), vec![0, 2])].into(),
        remove_blocks: vec![],
    };
    let predicted = select::predicted_latency_reduction(&spec, &plan, &table);
    assert!((predicted - 0.25).abs() < 1e-9, "{predicted}");
    let macs = select::achieved(&spec, &plan, &Target::Macs(0.0));
    assert!((macs - 0.375).abs() < 1e-9, "{macs}");
    // Selection meets a latency target by the table.
    let s = scores(&[
        ("fc1", &[0.1, 0.2, 0.3, 0.4]),
        ("fc2", &[0.5, 0.6, 0.7, 0.8]),
    ]);
    let options = SelectOptions {
        latency: Some(table.clone()),
        ..SelectOptions::default()
    };
    let plan = select::select_units(&spec, &s, &Target::Latency(0.25), &options).unwrap();
    let got = select::predicted_latency_reduction(&spec, &plan, &table);
    assert!(got >= 0.25 - 1e-9, "{got}");
    assert_eq!(
        plan.keep["fc1"],
        vec![2, 3],
        "the two lowest go: exactly 25% of the time"
    );
}

#[test]
fn block_selection_takes_the_lowest_and_checks_the_count() {
    let s = vec![
        ("a".to_string(), 0.3),
        ("b".to_string(), -1.0),
        ("c".to_string(), 0.1),
    ];
    assert_eq!(select::select_blocks(&s, 2).unwrap(), vec!["b", "c"]);
    assert!(
        select::select_blocks(&s, 4)
            .unwrap_err()
            .to_string()
            .contains("only 3")
    );
}

#[test]
fn weight_masks_global_per_layer_and_never_empty() {
    let layer = |name: &str, v: &[f32]| LayerScores {
        layer: name.into(),
        path: name.into(),
        shape: vec![v.len()],
        rows: 1,
        scores: v.to_vec(),
    };
    let s = vec![layer("a", &[0.1, 0.2, 0.3, 0.4]), layer("b", &[5.0, 6.0])];
    let m = masks_from_scores(&s, 0.5, Scope::Global).unwrap();
    assert_eq!(
        m.layers[0].keep,
        vec![false, false, false, true],
        "a keeps its best weight"
    );
    assert_eq!(m.layers[1].keep, vec![true, true]);
    let m = masks_from_scores(&s, 0.5, Scope::PerLayer).unwrap();
    assert_eq!(m.layers[0].keep, vec![false, false, true, true]);
    assert_eq!(m.layers[1].keep, vec![false, true]);
    assert!((m.sparsity() - 0.5).abs() < 1e-9);
}

#[test]
fn l1_scores_are_filter_norms() {
    let device = cpu();
    let mut model = crate::common::model(
        &ModelSpec::named("cnn", &ModelOptions::default()).unwrap(),
        1,
        &device,
    );
    if let Net::Plain(p) = &mut model.net {
        let mut w = vec![0.0f32; 16 * 3 * 9];
        for (i, v) in w.iter_mut().enumerate() {
            *v = if i / 27 == 5 { -2.0 } else { 0.5 };
        }
        p.convs[0].conv.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(w, [16, 3, 3, 3]),
            &device,
        ));
    }
    let s = block_on(prunelab::prune::l1::scores(&model, &["conv1".to_string()])).unwrap();
    assert_eq!(s["conv1"].len(), 16);
    assert!(
        (s["conv1"][5] - 54.0).abs() < 1e-4 && (s["conv1"][0] - 13.5).abs() < 1e-4,
        "{:?}",
        &s["conv1"][..6]
    );
}

/// The gated cost is exactly the counter's MACs (and params) of the network
/// the hard gates describe, for every family.
#[test]
fn gate_cost_equals_the_count_of_the_gated_network() {
    let device = cpu();
    for name in ["mlp", "cnn", "resnet20"] {
        let spec = ModelSpec::named(
            name,
            &ModelOptions {
                hidden: vec![6, 5],
                ..ModelOptions::default()
            },
        )
        .unwrap();
        let gates = Gates::new(
            &spec,
            prunelab::prune::gates::GateKind::Static,
            3.0,
            1.0,
            true,
            &device,
        );
        let mut rng = prunelab::base::rng::stream(7, name, 0);
        for _ in 0..4 {
            let units: Vec<Vec<f32>> = spec
                .unit_groups()
                .iter()
                .map(|g| {
                    let mut v: Vec<f32> = (0..g.size)
                        .map(|_| if rng.random::<f32>() < 0.5 { 1.0 } else { 0.0 })
                        .collect();
                    v[0] = 1.0;
                    v
                })
                .collect();
            let blocks: Vec<f32> = gates
                .block_names
                .iter()
                .map(|_| if rng.random::<f32>() < 0.3 { 0.0 } else { 1.0 })
                .collect();
            let plan = prunelab::prune::polarization::plan_from_gates(&gates, &units, &blocks);
            let expected = count(&plan.apply_to_spec(&spec));
            let t = |v: &Vec<f32>| {
                Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &device)
            };
            let ut: Vec<Tensor<1>> = units.iter().map(t).collect();
            let bt: Vec<Tensor<1>> = blocks.iter().map(|&b| t(&vec![b])).collect();
            for (measure, want) in [
                (Measure::Macs, expected.macs),
                (Measure::Params, expected.params),
            ] {
                let got = block_on(floats(
                    Cost::new(&spec, &gates, measure).of(&ut, &bt, &device),
                ))
                .unwrap()[0];
                assert!(
                    (got as f64 - want as f64).abs() <= 1e-4 * want as f64,
                    "{name} {measure:?}: {got} vs {want}"
                );
            }
        }
    }
}

/// LRP-0 on a bias-free ReLU network conserves relevance: the input
/// relevance sums to the explained logit; gradient×input gives the same.
#[test]
fn lrp_conserves_relevance_without_biases() {
    let device = cpu().autodiff();
    let spec = mlp(&[8, 6]);
    let model = crate::common::model(&spec, 3, &device);
    let model = zero_biases(model);
    let x = Tensor::<4>::from_data(
        TensorData::new(vec![0.7f32, -1.2, 0.3, 0.9], [2, 2, 1, 1]),
        &device,
    );
    for eps in [Some(1e-7f32), None] {
        let mut ctx = Ctx::probing(eps);
        let logits = model.forward_ctx(x.clone(), &mut ctx);
        let picked = logits.clone().slice([0..2, 1..2]);
        let target = block_on(floats(picked.clone())).unwrap();
        let grads = picked.sum().backward();
        let first = &ctx.probes[0];
        let r_in = first.input.clone().detach().inner() * first.input_leaf.grad(&grads).unwrap();
        let r = block_on(floats(r_in.sum_dims(&[1, 2, 3]).flatten::<1>(0, 3))).unwrap();
        for i in 0..2 {
            assert!(
                (r[i] - target[i]).abs() < 1e-4 * target[i].abs().max(1.0),
                "eps {eps:?}: {} vs {}",
                r[i],
                target[i]
            );
        }
    }
}

fn zero_biases(model: Model) -> Model {
    struct Zero;
    impl burn::module::ModuleMapper for Zero {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, t, mapper) = param.consume();
            let t = if D == 1 {
                (t.clone() * 0.0).detach().require_grad()
            } else {
                t
            };
            Param::from_mapped_value(id, t, mapper)
        }
    }
    model.map(&mut Zero)
}

#[test]
fn flexrel_blends_magnitude_and_relevance() {
    let m = vec![LayerScores {
        layer: "a".into(),
        path: "a".into(),
        shape: vec![3],
        rows: 1,
        scores: vec![1.0, 3.0, 2.0],
    }];
    let r = vec![vec![30.0, 10.0, 20.0]];
    use prunelab::prune::flexrel::NormScope;
    let at = |d, scope| {
        prunelab::prune::flexrel::combine(&m, &r, d, scope)[0]
            .scores
            .clone()
    };
    assert_eq!(at(0.0, NormScope::Layer), vec![0.0, 1.0, 0.5]);
    assert_eq!(at(1.0, NormScope::Layer), vec![1.0, 0.0, 0.5]);
    assert_eq!(at(0.5, NormScope::Layer), vec![0.5, 0.5, 0.5]);
    // Global scope: a second layer's larger weights and relevance set the range.
    let m2 = vec![
        m[0].clone(),
        LayerScores {
            scores: vec![5.0],
            ..m[0].clone()
        },
    ];
    let r2 = vec![r[0].clone(), vec![50.0]];
    let global = prunelab::prune::flexrel::combine(&m2, &r2, 0.0, NormScope::Global);
    assert_eq!(
        global[0].scores,
        vec![0.0, 0.5, 0.25],
        "δ = 0 ranks by |w| across layers"
    );
}

#[test]
fn block_scores_aggregate_their_convs() {
    let device = cpu();
    let spec = ModelSpec::named("resnet20", &ModelOptions::default()).unwrap();
    let model = crate::common::model(&spec, 1, &device);
    let weights: Vec<LayerScores> = model
        .prunable_weights()
        .into_iter()
        .map(|w| {
            let n: usize = w.param.shape().iter().product();
            let v = if w.layer.starts_with("stage1.block1.") {
                2.0
            } else {
                1.0
            };
            LayerScores {
                layer: w.layer,
                path: w.path,
                shape: w.param.shape(),
                rows: 1,
                scores: vec![v; n],
            }
        })
        .collect();
    let blocks = model.spec.removable_blocks();
    let sum = prunelab::prune::lottery::block_scores(
        &blocks,
        &weights,
        prunelab::prune::lottery::Aggregate::Sum,
    );
    let mean = prunelab::prune::lottery::block_scores(
        &blocks,
        &weights,
        prunelab::prune::lottery::Aggregate::Mean,
    );
    let find = |v: &Vec<(String, f32)>, n: &str| v.iter().find(|(b, _)| b == n).unwrap().1;
    assert_eq!(find(&sum, "stage1.block1"), 2.0 * 2.0 * 2304.0);
    assert_eq!(find(&mean, "stage1.block1"), 2.0);
    assert_eq!(find(&mean, "stage3.block2"), 1.0);
    assert_eq!(sum.len(), 7);
}

#[test]
fn snip_scores_are_weight_times_gradient() {
    let split = toy("gaussians", 64, 1);
    let device = cpu().autodiff();
    let model = crate::common::model(&mlp(&[4]), 2, &device);
    let sampling = Sampling {
        batches: 1,
        batch_size: 64,
        augment: false,
        seed: 1,
    };
    let s = block_on(prunelab::prune::snip::scores(&model, &split, sampling)).unwrap();
    // Finite differences of the loss along one weight of fc1 (layer 0, index 3).
    let loss_at = |delta: f32| -> f32 {
        let shifted = shift_weight(model.clone(), 0, 3, delta);
        let order: Vec<usize> = prunelab::data::loader::Loader {
            data: &split.train,
            norm: None,
            batch_size: 64,
            shuffle: true,
            augment: false,
            seed: 1 ^ 0x9a4d,
        }
        .order(0);
        let batch =
            prunelab::data::loader::make_batch(&split.train, &order[..64], None, None, &device);
        block_on(floats(prunelab::train::cross_entropy(
            shifted.forward(batch.x),
            batch.y,
        )))
        .unwrap()[0]
    };
    let h = 1e-2;
    let grad = (loss_at(h) - loss_at(-h)) / (2.0 * h);
    let w = block_on(floats(model.prunable_weights()[0].param.flat())).unwrap()[3];
    assert!(
        (s[0].scores[3] - (w * grad).abs()).abs() < 2e-3,
        "{} vs {}",
        s[0].scores[3],
        (w * grad).abs()
    );
}

fn shift_weight(model: Model, layer: usize, index: usize, delta: f32) -> Model {
    let path = model.prunable_weights()[layer].path.clone();
    struct Shift {
        path: String,
        at: Vec<String>,
        index: usize,
        delta: f32,
    }
    impl burn::module::ModuleMapper for Shift {
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
            Param::from_mapped_value(
                id,
                Tensor::from_data(TensorData::new(v, dims), &t.device()).require_grad(),
                mapper,
            )
        }
    }
    model.map(&mut Shift {
        path,
        at: vec![],
        index,
        delta,
    })
}

/// GraSP's finite-difference `H g` matches the curvature of the loss along g:
/// `gᵀ(Hg) ≈ d²/dt² L(θ + t·g)` at t = 0, from loss values alone.
#[test]
fn grasp_hessian_gradient_product_matches_the_loss_curvature() {
    let split = toy("moons", 64, 2);
    let device = cpu().autodiff();
    let model = crate::common::model(&mlp(&[6]), 4, &device);
    let sampling = Sampling {
        batches: 1,
        batch_size: 64,
        augment: false,
        seed: 3,
    };
    let (hg, g) = block_on(prunelab::prune::grasp::hessian_gradient(
        &model, &split, sampling, 1e-3,
    ))
    .unwrap();
    let dot = |a: &[Tensor<1>], b: &[Tensor<1>]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| block_on(floats((x.clone() * y.clone()).sum())).unwrap()[0] as f64)
            .sum()
    };
    let ghg = dot(&g, &hg);
    let order: Vec<usize> = prunelab::data::loader::Loader {
        data: &split.train,
        norm: None,
        batch_size: 64,
        shuffle: true,
        augment: false,
        seed: 3 ^ 0x9a4d,
    }
    .order(0);
    let batch = prunelab::data::loader::make_batch(&split.train, &order[..64], None, None, &device);
    let loss_at = |t: f32| -> f64 {
        let moved = move_along(model.clone(), &g, t);
        block_on(floats(prunelab::train::cross_entropy(
            moved.forward(batch.x.clone()),
            batch.y.clone(),
        )))
        .unwrap()[0] as f64
    };
    let t = 0.05f32;
    let curvature = (loss_at(t) - 2.0 * loss_at(0.0) + loss_at(-t)) / (t as f64 * t as f64);
    assert!(ghg.abs() > 1e-6, "non-trivial curvature");
    assert!(
        (ghg - curvature).abs() < 0.1 * curvature.abs().max(1e-3),
        "gᵀHg {ghg} vs d²L/dt² {curvature}"
    );
}

fn move_along(model: Model, direction: &[Tensor<1>], t: f32) -> Model {
    let paths: Vec<String> = model
        .prunable_weights()
        .into_iter()
        .map(|w| w.path)
        .collect();
    struct Move<'a> {
        paths: Vec<String>,
        dir: &'a [Tensor<1>],
        at: Vec<String>,
        t: f32,
    }
    impl burn::module::ModuleMapper for Move<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.at.push(name.into());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.at.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(i) = self.paths.iter().position(|p| *p == self.at.join(".")) else {
                return param;
            };
            let (id, x, mapper) = param.consume();
            let dims = x.dims();
            let moved = x.inner() + self.dir[i].clone().reshape(dims) * self.t;
            Param::from_mapped_value(id, Tensor::from_inner(moved).require_grad(), mapper)
        }
    }
    model.map(&mut Move {
        paths,
        dir: direction,
        at: vec![],
        t,
    })
}

#[test]
fn random_scores_follow_the_seed() {
    let spec = ModelSpec::named("resnet20", &ModelOptions::default()).unwrap();
    assert_eq!(
        prunelab::prune::random::unit_scores(&spec.unit_groups(), 3),
        prunelab::prune::random::unit_scores(&spec.unit_groups(), 3)
    );
    assert_ne!(
        prunelab::prune::random::unit_scores(&spec.unit_groups(), 3),
        prunelab::prune::random::unit_scores(&spec.unit_groups(), 4)
    );
    let blocks: BTreeMap<String, f32> = prunelab::prune::random::block_scores(&spec, 1)
        .into_iter()
        .collect();
    assert_eq!(blocks.len(), 7);
    let _ = Plan::default();
}

#[test]
fn a_streams_score_reduces_its_members_and_single_groups_pass_through() {
    // stage1.stream of ResNet-20 has four producers (stem, three conv2s):
    // member j scores unit i as j + i, so mean = 1.5 + i, sum = 6 + 4i,
    // max = 3 + i. A conv1 group is its own producer and passes unchanged.
    use prunelab::prune::select::{GroupReduction, group_scores};
    let spec = ModelSpec::named("resnet20", &ModelOptions::default()).unwrap();
    let groups = spec.groups(true);
    let stream = groups.iter().find(|g| g.name == "stage1.stream").unwrap();
    assert_eq!(stream.producers.len(), 4);
    let mut scores = UnitScores::new();
    for (j, p) in stream.producers.iter().enumerate() {
        scores.insert(p.clone(), (0..16).map(|i| (j + i) as f32).collect());
    }
    let only: Vec<_> = groups
        .iter()
        .filter(|g| g.name == "stage1.stream" || g.name == "stage1.block0.conv1")
        .cloned()
        .collect();
    scores.insert("stage1.block0.conv1".into(), vec![7.0; 16]);
    for (how, f) in [
        (GroupReduction::Mean, (|i: f32| 1.5 + i) as fn(f32) -> f32),
        (GroupReduction::Sum, |i| 6.0 + 4.0 * i),
        (GroupReduction::Max, |i| 3.0 + i),
    ] {
        let reduced = group_scores(&only, &scores, how).unwrap();
        let want: Vec<f32> = (0..16).map(|i| f(i as f32)).collect();
        assert_eq!(reduced["stage1.stream"], want, "{how:?}");
        assert_eq!(reduced["stage1.block0.conv1"], vec![7.0; 16]);
    }
    // A missing member is named.
    scores.remove("stage1.block2.conv2");
    let err = group_scores(&only, &scores, GroupReduction::Mean).unwrap_err();
    assert!(err.to_string().contains("stage1.block2.conv2"), "{err}");
}

#[test]
fn residual_stream_is_refused_where_there_is_no_stream_or_no_unit_ranking() {
    use prunelab::prune::{PruneOptions, by_name, check_feasible};
    let mut options = PruneOptions::default();
    options.protect.residual_stream = true;
    let mlp = ModelSpec::named("mlp", &ModelOptions::default()).unwrap();
    let resnet = ModelSpec::named("resnet20", &ModelOptions::default()).unwrap();
    let target = Target::Macs(0.5);
    let err = check_feasible(by_name("l1").unwrap(), &options, &mlp, &target).unwrap_err();
    assert!(err.to_string().contains("no residual stream"), "{err}");
    let err =
        check_feasible(by_name("magnitude").unwrap(), &options, &resnet, &target).unwrap_err();
    assert!(err.to_string().contains("channel"), "{err}");
    // The channel criteria it names come from the registry.
    for name in ["l1", "energy", "group-magnitude"] {
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
    check_feasible(by_name("l1").unwrap(), &options, &resnet, &target).unwrap();
}
