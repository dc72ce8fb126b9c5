//! Physical surgery computes exactly what the masked model computes, and the
//! cut model has exactly the params and MACs the counter predicts.

use crate::common::*;
use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use prunelab::base::host::{block_on, floats};
use prunelab::metrics::count::count;
use prunelab::model::spec::{ModelSpec, Shortcut};
use prunelab::model::zoo::ModelOptions;
use prunelab::model::{Ctx, Model};
use prunelab::prune::plan::Plan;
use prunelab::prune::surgery::cut;
use rand::Rng;

fn spec(name: &str, shortcut: Shortcut) -> ModelSpec {
    ModelSpec::named(
        name,
        &ModelOptions {
            shortcut,
            // resmlp takes one equal width per block.
            hidden: if name == "resmlp" {
                vec![12; 3]
            } else {
                vec![12, 9]
            },
            ..ModelOptions::default()
        },
    )
    .unwrap()
}

/// A model whose BN running statistics are not the defaults: a few
/// training-mode passes on random data move them.
fn warmed(spec: &ModelSpec, seed: u64) -> Model {
    let device = cpu().autodiff();
    let model = model(spec, seed, &device);
    let [c, h, w] = spec.input_shape();
    for _ in 0..3 {
        let x = Tensor::<4>::random([8, c, h, w], Distribution::Normal(0.5, 2.0), &device);
        let _ = model.forward(x);
    }
    model.valid()
}

/// A random plan: each group keeps a random non-empty subset (the residual
/// streams too when `streams`); ResNets also lose some removable blocks.
fn random_plan_of(spec: &ModelSpec, seed: u64, streams: bool) -> Plan {
    let mut rng = prunelab::base::rng::stream(seed, "test-plan", 0);
    let mut plan = Plan::default();
    for g in spec.groups(streams) {
        let mut kept: Vec<usize> = (0..g.size).filter(|_| rng.random::<f32>() < 0.6).collect();
        if kept.is_empty() {
            kept.push(rng.random_range(0..g.size));
        }
        plan.keep.insert(g.name, kept);
    }
    plan.remove_blocks = spec
        .removable_blocks()
        .into_iter()
        .filter(|_| rng.random::<f32>() < 0.4)
        .map(|b| b.name)
        .collect();
    plan
}

fn outputs(model: &Model, x: Tensor<4>, ctx: &mut Ctx) -> Vec<f32> {
    block_on(floats(model.forward_ctx(x, ctx))).unwrap()
}

fn check_equivalence(name: &str, shortcut: Shortcut) {
    check_equivalence_of(name, shortcut, false, 3)
}

fn check_equivalence_of(name: &str, shortcut: Shortcut, streams: bool, plans: u64) {
    let spec = spec(name, shortcut);
    let model = warmed(&spec, 11);
    let [c, h, w] = spec.input_shape();
    for seed in 0..plans {
        let plan = random_plan_of(&spec, seed, streams);
        let smaller = cut(&model, &plan).unwrap();
        let x = Tensor::<4>::random([5, c, h, w], Distribution::Normal(0.0, 1.0), &cpu());
        let masked = outputs(&model, x.clone(), &mut plan.masked_ctx(&spec, &cpu()));
        let physical = outputs(&smaller, x, &mut Ctx::default());
        let diff = max_abs_diff(&masked, &physical);
        assert!(
            diff <= 1e-4,
            "{name} {shortcut:?} plan {seed}: cut and masked differ by {diff}"
        );
        // The counter's prediction is what was built.
        let predicted = count(&plan.apply_to_spec(&spec));
        assert_eq!(count(&smaller.spec), predicted);
        assert_eq!(
            smaller.num_params(),
            predicted.params as usize + crate::common::bn_buffers(&smaller.spec),
            "{name}: built params"
        );
        assert!(
            predicted.macs < count(&spec).macs,
            "{name}: the plan removes work"
        );
    }
}

#[test]
fn mlp_surgery_equals_masking() {
    check_equivalence("mlp", Shortcut::A);
}

#[test]
fn cnn_surgery_equals_masking() {
    check_equivalence("cnn", Shortcut::A);
}

#[test]
fn resnet20_surgery_equals_masking_with_either_shortcut() {
    check_equivalence("resnet20", Shortcut::A);
    check_equivalence("resnet20", Shortcut::B);
}

#[test]
fn vgg16_surgery_equals_masking() {
    check_equivalence("vgg16", Shortcut::A);
}

#[test]
fn residual_stream_cuts_equal_masking_with_either_shortcut() {
    // Stream channels go from the stem or projection, every conv2, every
    // reader's inputs and fc; option A's pad becomes an index map.
    check_equivalence_of("resnet20", Shortcut::A, true, 3);
    check_equivalence_of("resnet20", Shortcut::B, true, 3);
    check_equivalence_of("resmlp", Shortcut::A, true, 3);
}

#[test]
fn resnet56_stream_cuts_equal_masking() {
    check_equivalence_of("resnet56", Shortcut::A, true, 1);
    check_equivalence_of("resnet56", Shortcut::B, true, 1);
}

#[test]
fn a_cut_network_cuts_again_as_the_composed_plan() {
    // Iterative schedules cut a cut network: its option-A maps and streams
    // must compose, so two cuts equal one cut by `first.then(second)`.
    for shortcut in [Shortcut::A, Shortcut::B] {
        let spec = spec("resnet20", shortcut);
        let model = warmed(&spec, 7);
        let first = random_plan_of(&spec, 1, true);
        let once = cut(&model, &first).unwrap();
        let mut second = random_plan_of(&once.spec, 2, true);
        second.remove_blocks.clear();
        let twice = cut(&once, &second).unwrap();
        let composed = first.then(&second);
        assert_eq!(twice.spec, composed.apply_to_spec(&spec), "{shortcut:?}");
        let x = Tensor::<4>::random([3, 3, 32, 32], Distribution::Normal(0.0, 1.0), &cpu());
        let masked = outputs(&model, x.clone(), &mut composed.masked_ctx(&spec, &cpu()));
        let physical = outputs(&twice, x, &mut Ctx::default());
        let diff = max_abs_diff(&masked, &physical);
        assert!(
            diff <= 1e-4,
            "{shortcut:?}: twice-cut and masked differ by {diff}"
        );
    }
}

#[test]
fn stream_groups_are_derived_for_every_resnet() {
    // ResNet-20, option B: three streams; stage 2's is written by its first
    // block's conv2 and projection and by the other conv2s, read by stage
    // 3's entry (conv1 and projection) and by its own blocks' conv1s.
    let groups = spec("resnet20", Shortcut::B).stream_groups();
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["stage1.stream", "stage2.stream", "stage3.stream"]);
    let s2 = &groups[1];
    assert_eq!(s2.size, 32);
    assert_eq!(
        s2.producers,
        [
            "stage2.block0.conv2",
            "stage2.block0.shortcut",
            "stage2.block1.conv2",
            "stage2.block2.conv2"
        ]
    );
    assert_eq!(
        s2.consumers,
        [
            "stage2.block1.conv1",
            "stage2.block2.conv1",
            "stage3.block0.conv1",
            "stage3.block0.shortcut"
        ]
    );
    assert_eq!(groups[0].producers[0], "stem");
    assert_eq!(groups[2].consumers.last().unwrap(), "fc");
    // Option A has no projection: the map is the only link between streams.
    let a = spec("resnet20", Shortcut::A).stream_groups();
    assert!(
        a.iter()
            .flat_map(|g| &g.producers)
            .all(|p| !p.ends_with("shortcut"))
    );
    // Every layer of a ResNet-56 is in exactly one group as a producer.
    let spec56 = spec("resnet56", Shortcut::B);
    let mut produced: Vec<String> = spec56
        .groups(true)
        .into_iter()
        .flat_map(|g| g.producers)
        .collect();
    produced.sort();
    let mut convs: Vec<String> = spec56
        .layers()
        .into_iter()
        .filter(|l| matches!(l.op, prunelab::model::geometry::LayerOp::Conv { .. }))
        .map(|l| l.name)
        .collect();
    convs.sort();
    assert_eq!(produced, convs);
}

#[test]
fn an_empty_plan_changes_nothing() {
    let spec = spec("resnet20", Shortcut::A);
    let model = warmed(&spec, 3);
    let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &cpu());
    let same = cut(&model, &Plan::default()).unwrap();
    assert_eq!(same.spec, spec);
    let diff = max_abs_diff(
        &outputs(&model, x.clone(), &mut Ctx::default()),
        &outputs(&same, x, &mut Ctx::default()),
    );
    assert!(diff <= 1e-6, "{diff}");
}

#[test]
fn removed_units_contribute_exactly_zero() {
    // Zeroing a unit's outgoing weights changes nothing once it is masked.
    let spec = spec("mlp", Shortcut::A);
    let model = warmed(&spec, 5);
    let plan = Plan {
        keep: [("fc1".to_string(), vec![0, 2, 4])].into(),
        remove_blocks: vec![],
    };
    let x = Tensor::<4>::random([4, 2, 1, 1], Distribution::Normal(0.0, 1.0), &cpu());
    let masked = outputs(&model, x.clone(), &mut plan.masked_ctx(&spec, &cpu()));
    let smaller = cut(&model, &plan).unwrap();
    assert_eq!(smaller.spec.unit_groups()[0].size, 3);
    assert!(max_abs_diff(&masked, &outputs(&smaller, x, &mut Ctx::default())) <= 1e-5);
}

#[test]
fn plans_that_would_empty_a_layer_or_cut_a_shape_changing_block_are_refused() {
    let spec = spec("resnet20", Shortcut::A);
    let model = warmed(&spec, 1);
    let empty = Plan {
        keep: [("stage1.block0.conv1".to_string(), vec![])].into(),
        remove_blocks: vec![],
    };
    let e = cut(&model, &empty).unwrap_err().to_string();
    assert!(e.contains("every unit"), "{e}");
    let transition = Plan {
        keep: Default::default(),
        remove_blocks: vec!["stage2.block0".into()],
    };
    let e = cut(&model, &transition).unwrap_err().to_string();
    assert!(e.contains("identity shortcut"), "{e}");
    assert_eq!(
        spec.removable_blocks().len(),
        7,
        "ResNet-20: 9 blocks, 2 change shape"
    );
}

#[test]
fn resnet56_cut_through_its_streams_runs_on_2_1x_fewer_macs() {
    // Torch-Pruning's ResNet-56 rows sit at ~2.1x fewer MACs, reached by
    // cutting the streams as well as the blocks' insides.
    use prunelab::prune::select::{Protection, SelectOptions, select_units};
    let spec = spec("resnet56", Shortcut::A);
    let model = warmed(&spec, 5);
    let layers = prunelab::prune::contract::producers(&spec.groups(true));
    let scores = block_on(prunelab::prune::l1::scores(&model, &layers)).unwrap();
    let target = prunelab::prune::Target::Macs(0.53);
    // L1's paper ranks per layer: every group, the streams included, loses the same share.
    let mut options = SelectOptions {
        scope: prunelab::prune::select::Scope::PerLayer,
        protect: Protection {
            residual_stream: true,
            max_layer_ratio: 0.9,
            ..Protection::default()
        },
        ..SelectOptions::default()
    };
    let plan = select_units(&spec, &scores, &target, &options).unwrap();
    let smaller = cut(&model, &plan).unwrap();
    let ratio = count(&spec).macs as f64 / count(&smaller.spec).macs as f64;
    assert!(ratio >= 2.1, "{ratio:.3}x");
    for stream in ["stage1.stream", "stage2.stream", "stage3.stream"] {
        assert!(
            plan.keep[stream].len()
                < spec
                    .groups(true)
                    .iter()
                    .find(|g| g.name == stream)
                    .unwrap()
                    .size,
            "{stream} is cut"
        );
    }
    let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &cpu());
    let masked = outputs(&model, x.clone(), &mut plan.masked_ctx(&spec, &cpu()));
    let diff = max_abs_diff(&masked, &outputs(&smaller, x, &mut Ctx::default()));
    assert!(diff <= 1e-4, "cut and masked differ by {diff}");
    // Without the streams the same target empties the blocks instead: the
    // conv1s keep far fewer channels, and the streams none less.
    let conv1_share = |plan: &Plan| {
        let groups = spec.unit_groups();
        let kept: usize = groups
            .iter()
            .map(|g| plan.keep.get(&g.name).map_or(g.size, Vec::len))
            .sum();
        kept as f64 / groups.iter().map(|g| g.size).sum::<usize>() as f64
    };
    options.protect.residual_stream = false;
    let alone = select_units(&spec, &scores, &target, &options).unwrap();
    assert!(alone.keep.keys().all(|k| !k.ends_with(".stream")));
    assert!(
        conv1_share(&alone) < conv1_share(&plan) - 0.1,
        "conv1 kept {:.2} alone vs {:.2} with the streams",
        conv1_share(&alone),
        conv1_share(&plan)
    );
}

#[test]
fn a_stream_cut_model_saves_and_loads_as_it_computes() {
    // The spec carries the option-A index maps, so a cut model file is
    // rebuilt with the same shortcuts.
    let spec = spec("resnet20", Shortcut::A);
    let model = warmed(&spec, 9);
    let plan = random_plan_of(&spec, 4, true);
    let smaller = cut(&model, &plan).unwrap();
    let prunelab::model::spec::ModelSpec::Resnet(r) = &smaller.spec else {
        unreachable!()
    };
    assert!(r.stages[1].shortcut_map.is_some(), "stage 2 has a map");
    let bytes = block_on(prunelab::io::model_file::to_bytes(
        &smaller,
        serde_json::Value::Null,
    ))
    .unwrap();
    let (loaded, _) =
        prunelab::io::model_file::from_bytes(&bytes, std::path::Path::new("cut.plm"), &cpu())
            .unwrap();
    assert_eq!(loaded.spec, smaller.spec);
    let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &cpu());
    let diff = max_abs_diff(
        &outputs(&smaller, x.clone(), &mut Ctx::default()),
        &outputs(&loaded, x, &mut Ctx::default()),
    );
    assert!(diff <= 1e-6, "{diff}");
}
