//! Differential test against Torch-Pruning itself: on the same ResNet-20
//! (option B) weights, prunelab's `group-magnitude` with the residual streams
//! on must score every coupled group as Torch-Pruning's
//! `GroupMagnitudeImportance(p=2, group_reduction="mean", normalizer="mean")`
//! does and make the same global plan (`MetaPruner(global_pruning=True)`, fc
//! ignored), channel for channel.
//!
//! The fixture `tests/torch_pruning/fixtures/resnet20b.json` is written by the
//! hand-run `tests/torch_pruning/make.py` (torch 2.5.1 and PyPI's
//! torch-pruning 1.6.1, whose `tp.__version__` reads "1.6.0" — the string the
//! fixture records) and committed; its header documents the weight formula,
//! repeated here.
//!
//! Differences by design, none of which this plan reaches: prunelab keeps at
//! least one unit per group (Torch-Pruning can empty one), and breaks score
//! ties by group name and index where Torch-Pruning prunes every unit at or
//! below the threshold; the weights here have no ties and no group comes
//! near empty. Option-A ResNets have no counterpart: Torch-Pruning cannot
//! trace a zero-pad shortcut, prunelab re-points its index map.

use std::collections::BTreeMap;

use crate::common::*;
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use prunelab::base::host::block_on;
use prunelab::model::spec::{ModelSpec, Shortcut};
use prunelab::model::zoo::ModelOptions;
use prunelab::model::{Model, Net};
use prunelab::prune::group_magnitude::{self, GroupMagnitudeOptions};
use prunelab::prune::select::{
    GroupReduction, Normalize, Protection, Scope, SelectOptions, UnitScores, select_units,
};
use prunelab::prune::{Target, plan::Plan};
use serde_json::Value;

fn fixture() -> Value {
    let path = format!(
        "{}/../tests/torch_pruning/fixtures/resnet20b.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (make it with tests/torch_pruning/make.py)"));
    serde_json::from_str(&text).expect("the fixture is JSON")
}

/// `sin(1 + 1.3 k + 0.37 i + 0.00061 i²)` in f64, rounded to f32.
fn formula(k: usize, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let (k, i) = (k as f64, i as f64);
            (1.0 + 1.3 * k + 0.37 * i + 0.00061 * i * i).sin()
        })
        .collect()
}

/// Sets conv weights, BN scales and the fc weight by the formula, numbered
/// in make.py's order (stem; per block conv1, conv2, projection; fc).
struct SetWeights {
    at: Vec<String>,
    number: BTreeMap<String, usize>,
    set: usize,
}

impl ModuleMapper for SetWeights {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.at.push(name.into());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.at.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.at.join(".");
        let Some(&k) = self.number.get(&path) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        self.set += 1;
        let dims = tensor.dims();
        let n: usize = dims.iter().product();
        let s = formula(k, n);
        let values: Vec<f32> = if path.ends_with("bn.gamma") {
            s.iter().map(|v| (1.0 + 0.5 * v) as f32).collect()
        } else if path == "net.Resnet.fc.weight" {
            // PyTorch's [10, 64] formula, stored as burn's [64, 10].
            let (outs, ins) = (dims[1], dims[0]);
            let mut t = vec![0f32; n];
            for o in 0..outs {
                for i in 0..ins {
                    t[i * outs + o] = (s[o * ins + i] / 8.0) as f32;
                }
            }
            t
        } else {
            let fan_in: usize = dims[1..].iter().product();
            s.iter()
                .map(|v| (v / (fan_in as f64).sqrt()) as f32)
                .collect()
        };
        let t = Tensor::from_data(TensorData::new(values, dims), &tensor.device());
        Param::from_mapped_value(id, t, mapper)
    }
}

fn formula_model() -> Model {
    let spec = ModelSpec::named(
        "resnet20",
        &ModelOptions {
            shortcut: Shortcut::B,
            ..ModelOptions::default()
        },
    )
    .unwrap();
    let model = model(&spec, 1, &cpu());
    let Net::Resnet(r) = &model.net else {
        unreachable!()
    };
    let mut layers = vec!["net.Resnet.stem".to_string()];
    for (k, b) in r.blocks.iter().enumerate() {
        layers.push(format!("net.Resnet.blocks.{k}.conv1"));
        layers.push(format!("net.Resnet.blocks.{k}.conv2"));
        if b.projection.is_some() {
            layers.push(format!("net.Resnet.blocks.{k}.projection"));
        }
    }
    let mut number = BTreeMap::new();
    for (j, layer) in layers.iter().enumerate() {
        number.insert(format!("{layer}.conv.weight"), 2 * j);
        number.insert(format!("{layer}.bn.gamma"), 2 * j + 1);
    }
    number.insert("net.Resnet.fc.weight".into(), 2 * layers.len());
    let expected = number.len();
    let mut setter = SetWeights {
        at: Vec::new(),
        number,
        set: 0,
    };
    let model = model.map(&mut setter);
    assert_eq!(setter.set, expected, "every formula tensor is set once");
    model
}

fn options() -> SelectOptions {
    SelectOptions {
        scope: Scope::Global,
        normalize: Normalize::Mean,
        protect: Protection {
            residual_stream: true,
            group_reduction: GroupReduction::Mean,
            ..Protection::default()
        },
        ..SelectOptions::default()
    }
}

fn plan_of(model: &Model, scores: &UnitScores, ratio: f32) -> Plan {
    select_units(&model.spec, scores, &Target::Sparsity(ratio), &options()).unwrap()
}

/// Groups whose kept channels differ from Torch-Pruning's, with counts.
fn differences(plan: &Plan, tp: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (name, group) in tp.as_object().expect("groups") {
        let want: Vec<usize> = group["kept"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let size = group["size"].as_u64().unwrap() as usize;
        let got = plan
            .keep
            .get(name)
            .cloned()
            .unwrap_or_else(|| (0..size).collect());
        if got != want {
            out.push(format!("{name}: kept {} vs TP {}", got.len(), want.len()));
        }
    }
    out
}

fn scores_of(model: &Model, options: &GroupMagnitudeOptions) -> UnitScores {
    let groups = model.spec.groups(true);
    block_on(group_magnitude::scores(
        model,
        &groups,
        options,
        GroupReduction::Mean,
    ))
    .unwrap()
}

#[test]
fn group_magnitude_makes_torch_prunings_plan() {
    let fx = fixture();
    let model = formula_model();
    let scores = scores_of(&model, &GroupMagnitudeOptions::default());
    let plans = fx["plans"].as_object().expect("plans");
    assert!(!plans.is_empty());
    for (ratio, tp) in plans {
        // The scores first: TP's are normalised by the group mean.
        let mut worst = 0f64;
        for (name, group) in tp.as_object().unwrap() {
            let ours = &scores[name];
            let mean = ours.iter().map(|v| *v as f64).sum::<f64>() / ours.len() as f64;
            let theirs = group["scores"].as_array().unwrap();
            assert_eq!(ours.len(), theirs.len(), "{name}: group size");
            for (a, b) in ours.iter().zip(theirs) {
                let b = b.as_f64().unwrap();
                worst = worst.max((*a as f64 / mean - b).abs() / b.abs().max(1e-12));
            }
        }
        println!("ratio {ratio}: worst relative score difference {worst:e}");
        assert!(
            worst <= 1e-4,
            "ratio {ratio}: group scores differ by {worst:e} (relative)"
        );
        let r: f32 = ratio.parse().unwrap();
        let plan = plan_of(&model, &scores, r);
        let diff = differences(&plan, tp);
        assert!(diff.is_empty(), "ratio {ratio}: plans differ: {diff:?}");
        // The plan cuts every stream and is physically valid.
        assert!(plan.keep.contains_key("stage3.stream"));
        prunelab::prune::surgery::cut(&model, &plan).unwrap();
    }
}

#[test]
fn random_and_broken_variants_miss_torch_prunings_plan() {
    // What this comparison can catch: the random baseline, L1 instead of L2,
    // and a group that forgets its BN scales all make different plans.
    let fx = fixture();
    let model = formula_model();
    let tp = &fx["plans"]["0.5"];
    let random = prunelab::prune::random::unit_scores(&model.spec.groups(true), 3);
    assert!(!differences(&plan_of(&model, &random, 0.5), tp).is_empty());
    for broken in [
        GroupMagnitudeOptions { p: 1, bn: true },
        GroupMagnitudeOptions { p: 2, bn: false },
    ] {
        let plan = plan_of(&model, &scores_of(&model, &broken), 0.5);
        assert!(
            !differences(&plan, tp).is_empty(),
            "{broken:?} matched TP's plan"
        );
    }
}

/// The registered `group-magnitude`, scored and ranked exactly as a run of
/// `prunelab compare` ranks it (its stated defaults through
/// `pipeline::ranking`, the streams switched on as its knob says), makes
/// Torch-Pruning's plan — so a default that drifts (the normaliser, the
/// reduction) fails here, not only in a test that builds its own options.
#[test]
fn the_registered_method_ranks_as_torch_pruning_does() {
    use prunelab::base::device::OpenDevice;
    use prunelab::prune::{PruneOptions, Scores, Scoring, by_name, pipeline};
    let fx = fixture();
    let model = formula_model();
    let method = by_name("group-magnitude").unwrap();
    let mut options = PruneOptions::default();
    options.protect.residual_stream = true;
    let split =
        prunelab::data::Split::new(tiny_images(2, 10, 1), tiny_images(2, 10, 2), None, "unused");
    let device = OpenDevice::cpu("cpu");
    let scoring = Scoring {
        model: &model,
        split: &split,
        device: &device,
        options: &options,
        seed: 1,
        augment: false,
    };
    let Scores::Units(scores) = block_on(method.score(scoring)).unwrap() else {
        unreachable!("group-magnitude scores units")
    };
    let ranking = pipeline::ranking(method.info(), &options);
    for (ratio, tp) in fx["plans"].as_object().unwrap() {
        let target = Target::Sparsity(ratio.parse().unwrap());
        let plan = select_units(&model.spec, &scores, &target, &ranking).unwrap();
        let diff = differences(&plan, tp);
        assert!(
            diff.is_empty(),
            "ratio {ratio}: the registered method's plan differs: {diff:?}"
        );
    }
    // …and the comparison can tell: without the normaliser the plan differs.
    let raw = SelectOptions {
        normalize: Normalize::None,
        ..ranking
    };
    let plan = select_units(&model.spec, &scores, &Target::Sparsity(0.5), &raw).unwrap();
    assert!(
        !differences(&plan, &fx["plans"]["0.5"]).is_empty(),
        "Normalize::None matched Torch-Pruning's plan: this test could not catch it"
    );
}
