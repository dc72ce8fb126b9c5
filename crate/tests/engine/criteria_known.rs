//! Criteria against values known in closed form: planted feature maps with
//! known nuclear norms and ranks (S3, HRank), GraSP's Hessian-gradient
//! product against the analytic Hessian of a softmax regression, its block
//! sign convention, SNIP against finite differences on several weights, and
//! IMP masks that nest across rounds. Each of these fails for `random`
//! scores and for the broken variants named beside it.

use crate::common::*;
use burn::module::{Module, Param};
use burn::tensor::{Tensor, TensorData};
use prunelab::base::host::{block_on, floats};
use prunelab::data::{Dataset, Features, Split};
use prunelab::model::spec::ModelSpec;
use prunelab::model::zoo::ModelOptions;
use prunelab::model::{Model, Net};
use prunelab::prune::capture::Sampling;
use prunelab::prune::energy::{EnergyMeasure, Svd};

const H: usize = 32;
const B: usize = 8;
/// BN in eval mode at its initial state divides by √(1 + ε).
const BN: f64 = 1.000_005;

/// Eight 3×32×32 images whose three channels are planted:
/// - channel 0: `a_i · u vᵀ` — every map rank 1, and the batch × pixels
///   matrix rank 1 with nuclear norm `‖a‖·‖u‖·‖v‖`;
/// - channel 1: `c_i · D`, `D` diagonal with entries `1/(1+h)` — every map
///   full rank (32) with unequal singular values, the batch matrix rank 1
///   with nuclear norm `‖c‖·‖D‖_F`;
/// - channel 2: `s_i` on one pixel of its own — every map rank 1, the batch
///   matrix's rows orthogonal, nuclear norm `Σ s_i`.
fn planted() -> (Dataset, [f64; 3], [f64; 3]) {
    let u: Vec<f64> = (0..H).map(|h| 1.0 + h as f64 / 32.0).collect();
    let v: Vec<f64> = (0..H).map(|w| 1.0 + (w % 5) as f64 / 5.0).collect();
    let a: Vec<f64> = (0..B).map(|i| (i + 1) as f64).collect();
    let c: Vec<f64> = (0..B).map(|i| 0.5 + 0.25 * i as f64).collect();
    let s: Vec<f64> = (0..B).map(|i| 1.0 + i as f64).collect();
    let diag: Vec<f64> = (0..H).map(|h| 1.0 / (1.0 + h as f64)).collect();
    let mut x = vec![0f32; B * 3 * H * H];
    for i in 0..B {
        let at = |ch: usize, h: usize, w: usize| ((i * 3 + ch) * H + h) * H + w;
        for h in 0..H {
            for w in 0..H {
                x[at(0, h, w)] = (a[i] * u[h] * v[w]) as f32;
            }
            x[at(1, h, h)] = (c[i] * diag[h]) as f32;
        }
        x[at(2, i, 2 * i)] = s[i] as f32;
    }
    let norm = |z: &[f64]| z.iter().map(|t| t * t).sum::<f64>().sqrt();
    let nuclear = [
        norm(&a) * norm(&u) * norm(&v),
        norm(&c) * norm(&diag),
        s.iter().sum(),
    ];
    let ranks = [1.0, H as f64, 1.0];
    let data = Dataset {
        features: Features::Floats(x),
        labels: (0..B as u16).map(|i| i % 10).collect(),
        shape: [3, H, H],
        classes: 10,
    };
    (data, nuclear, ranks)
}

/// The small CNN with `conv1` copying input channel c to output channel c
/// (c < 3, centre tap 1) and every other channel dead (zero filter).
fn copying_cnn() -> Model {
    let device = cpu();
    let spec = ModelSpec::named("cnn", &ModelOptions::default()).unwrap();
    let mut model = crate::common::model(&spec, 1, &device);
    let Net::Plain(p) = &mut model.net else {
        unreachable!()
    };
    let mut w = vec![0f32; 16 * 3 * 3 * 3];
    for c in 0..3 {
        w[((c * 3 + c) * 3 + 1) * 3 + 1] = 1.0;
    }
    p.convs[0].conv.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(w, [16, 3, 3, 3]),
        &device,
    ));
    model
}

fn one_batch() -> Sampling {
    Sampling {
        batches: 1,
        batch_size: B,
        augment: false,
        seed: 5,
    }
}

fn planted_split() -> (Split, [f64; 3], [f64; 3]) {
    let (data, nuclear, ranks) = planted();
    (
        Split::new(data.clone(), data, None, "planted"),
        nuclear,
        ranks,
    )
}

#[test]
fn s3_scores_planted_channels_by_their_nuclear_norms_on_both_routes() {
    let (split, nuclear, _) = planted_split();
    let model = copying_cnn();
    for svd in [Svd::Gram, Svd::Full] {
        let scores = block_on(prunelab::prune::energy::scores(
            &model,
            &split,
            one_batch(),
            svd,
            EnergyMeasure::Nuclear,
            &layers(&model.spec),
        ))
        .unwrap();
        let conv1 = &scores["conv1"];
        for c in 0..3 {
            // Σσ of the batch matrix, divided by the images seen.
            let want = nuclear[c] / BN / B as f64;
            let got = conv1[c] as f64;
            assert!(
                (got - want).abs() <= 1e-4 * want,
                "{svd:?} channel {c}: {got} vs {want}"
            );
        }
        for (c, &dead) in conv1.iter().enumerate().skip(3) {
            assert!(dead.abs() < 1e-6, "{svd:?}: dead channel {c} scores {dead}");
        }
    }
}

/// Where each criterion reads its map, as its authors hook it: S3 the BN
/// output *before* the ReLU, HRank the activation *after* it. With the
/// planted images negated, S3's nuclear norms are unchanged (a map taken
/// after the ReLU would be all zeros) and HRank's ranks are all zero (a map
/// taken before it would keep them). Scored through the registry, as a run
/// scores.
#[test]
fn s3_reads_the_map_before_the_relu_and_hrank_after_it() {
    use prunelab::base::device::OpenDevice;
    use prunelab::prune::{PruneOptions, Scores, Scoring, by_name};
    let (mut data, nuclear, ranks) = planted();
    let Features::Floats(x) = &mut data.features else {
        unreachable!()
    };
    x.iter_mut().for_each(|v| *v = -*v);
    let split = Split::new(data.clone(), data, None, "negated");
    let model = copying_cnn();
    let options = PruneOptions {
        score_batches: Some(1),
        score_batch_size: B,
        ..PruneOptions::default()
    };
    let device = OpenDevice::cpu("cpu");
    let score = |name: &str| {
        let scoring = Scoring {
            model: &model,
            split: &split,
            device: &device,
            options: &options,
            seed: 5,
            augment: false,
        };
        match block_on(by_name(name).unwrap().score(scoring)).unwrap() {
            Scores::Units(s) => s,
            _ => unreachable!("{name} scores units"),
        }
    };
    let (s3, hrank) = (score("energy"), score("hrank"));
    for c in 0..3 {
        let want = nuclear[c] / BN / B as f64;
        let got = s3["conv1"][c] as f64;
        assert!(
            (got - want).abs() <= 1e-4 * want,
            "S3 channel {c}: {got} vs {want}"
        );
        let got = hrank["conv1"][c] as f64;
        assert!(
            got == 0.0 && ranks[c] > 0.0,
            "HRank channel {c}: rank {got} of a map that is all negative before the ReLU"
        );
    }
}

#[test]
fn the_gram_route_is_exact_for_rank_deficient_batches() {
    // A rank-1 batch of 64 rows: 63 eigenvalues of the Gram matrix are zero
    // up to f32 rounding, and must not add their square roots.
    let (rows, cols) = (64, 200);
    let m: Vec<f32> = (0..rows * cols)
        .map(|k| ((k / cols) as f32 + 1.0) * (1.0 + (k % cols) as f32 / 50.0))
        .collect();
    let mut gram = vec![0f32; rows * rows];
    for i in 0..rows {
        for j in 0..rows {
            gram[i * rows + j] = (0..cols).map(|k| m[i * cols + k] * m[j * cols + k]).sum();
        }
    }
    let exact: f64 = prunelab::prune::energy::singular_values(rows, cols, &m)
        .unwrap()
        .iter()
        .sum();
    let via_gram: f64 = prunelab::prune::energy::singular_values_from_gram(rows, &gram)
        .iter()
        .sum();
    assert!(
        (via_gram - exact).abs() <= 1e-5 * exact,
        "{via_gram} vs {exact}"
    );
}

#[test]
fn hrank_scores_planted_channels_by_the_rank_of_each_map() {
    let (split, _, ranks) = planted_split();
    let model = copying_cnn();
    let scores = block_on(prunelab::prune::hrank::scores(
        &model,
        &split,
        one_batch(),
        &layers(&model.spec),
    ))
    .unwrap();
    let conv1 = &scores["conv1"];
    for c in 0..3 {
        assert!(
            (conv1[c] as f64 - ranks[c]).abs() < 1e-6,
            "channel {c}: {} vs rank {}",
            conv1[c],
            ranks[c]
        );
    }
    assert!(
        conv1[3..].iter().all(|&r| r == 0.0),
        "dead maps have rank 0"
    );
}

#[test]
fn random_scores_fail_the_planted_checks() {
    // The floor: random channel scores do not reproduce the planted order
    // (S3: 2 > 0 > 1 ≫ dead, HRank: 1 > 0 = 2 > dead).
    let spec = ModelSpec::named("cnn", &ModelOptions::default()).unwrap();
    let (_, nuclear, ranks) = planted();
    for seed in 0..20 {
        let r = &prunelab::prune::random::unit_scores(&spec.unit_groups(), seed)["conv1"];
        let s3 = (0..3).all(|c| ((r[c] as f64) - nuclear[c] / BN / B as f64).abs() < 1e-3);
        let hr = (0..3).all(|c| ((r[c] as f64) - ranks[c]).abs() < 1e-6);
        assert!(!s3 && !hr, "seed {seed}");
    }
}

/// `H_WW · g_W` of a softmax regression `z = xW + b` with mean cross-entropy,
/// in f64: `(1/N) Σ x_n (J_n (x_nᵀ G))ᵀ` with `J = diag(p) − p pᵀ`.
fn analytic_hg(
    x: &[[f64; 2]],
    y: &[usize],
    w: &[f64],
    b: &[f64],
    k: usize,
) -> (Vec<f64>, Vec<f64>) {
    let n = x.len() as f64;
    let probs: Vec<Vec<f64>> = x
        .iter()
        .map(|xi| {
            let z: Vec<f64> = (0..k)
                .map(|j| xi[0] * w[j] + xi[1] * w[k + j] + b[j])
                .collect();
            let m = z.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        })
        .collect();
    // g[d][j] (burn's [d_in, d_out] layout, flattened row-major).
    let mut g = vec![0.0; 2 * k];
    for ((xi, &yi), p) in x.iter().zip(y).zip(&probs) {
        for d in 0..2 {
            for j in 0..k {
                g[d * k + j] += xi[d] * (p[j] - f64::from(u8::from(j == yi))) / n;
            }
        }
    }
    let mut hg = vec![0.0; 2 * k];
    for (xi, p) in x.iter().zip(&probs) {
        let dz: Vec<f64> = (0..k).map(|j| xi[0] * g[j] + xi[1] * g[k + j]).collect();
        let pdz: f64 = p.iter().zip(&dz).map(|(a, b)| a * b).sum();
        for d in 0..2 {
            for j in 0..k {
                hg[d * k + j] += xi[d] * p[j] * (dz[j] - pdz) / n;
            }
        }
    }
    (hg, g)
}

#[test]
fn grasp_hessian_gradient_matches_the_analytic_softmax_regression() {
    let split = toy("gaussians", 64, 4);
    let device = cpu().autodiff();
    // No hidden layer: logistic (softmax) regression, whose Hessian is known.
    let spec = ModelSpec::named(
        "mlp",
        &ModelOptions {
            classes: 2,
            hidden: vec![],
            ..ModelOptions::default()
        },
    )
    .unwrap();
    let model = crate::common::model(&spec, 9, &device);
    let sampling = Sampling {
        batches: 1,
        batch_size: 64,
        augment: false,
        seed: 2,
    };
    let (hg, g) = block_on(prunelab::prune::grasp::hessian_gradient(
        &model, &split, sampling, 1e-3,
    ))
    .unwrap();
    let Net::Mlp(m) = &model.net else {
        unreachable!()
    };
    let w: Vec<f64> = block_on(floats(m.out.weight.val()))
        .unwrap()
        .iter()
        .map(|&v| v as f64)
        .collect();
    let b: Vec<f64> = block_on(floats(m.out.bias.as_ref().unwrap().val()))
        .unwrap()
        .iter()
        .map(|&v| v as f64)
        .collect();
    let Features::Floats(xy) = &split.train.features else {
        unreachable!()
    };
    let x: Vec<[f64; 2]> = xy.chunks(2).map(|p| [p[0] as f64, p[1] as f64]).collect();
    let y: Vec<usize> = split.train.labels.iter().map(|&l| l as usize).collect();
    let (want_hg, want_g) = analytic_hg(&x, &y, &w, &b, 2);
    let got_hg = block_on(floats(hg[0].clone())).unwrap();
    let got_g = block_on(floats(g[0].clone())).unwrap();
    let scale = want_hg.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    for i in 0..4 {
        assert!((got_g[i] as f64 - want_g[i]).abs() < 1e-5, "g[{i}]");
        assert!(
            (got_hg[i] as f64 - want_hg[i]).abs() < 1e-3 * scale,
            "Hg[{i}]: {} vs {} (scale {scale})",
            got_hg[i],
            want_hg[i]
        );
    }
}

#[test]
fn grasp_removes_the_block_with_the_highest_s_first() {
    // Per-block sums of GraSP's S = −w⊙Hg: GraSP removes the highest first.
    let s = vec![
        ("stage1.block1".to_string(), 5.0f32),
        ("stage1.block2".to_string(), -5.0),
        ("stage3.block3".to_string(), 0.5),
    ];
    let importance = prunelab::prune::lottery::grasp_importance(s.clone(), false);
    assert_eq!(
        prunelab::prune::select::select_blocks(&importance, 1).unwrap(),
        vec!["stage1.block1"]
    );
    let flipped = prunelab::prune::lottery::grasp_importance(s, true);
    assert_eq!(
        prunelab::prune::select::select_blocks(&flipped, 1).unwrap(),
        vec!["stage1.block2"],
        "grasp_flip ranks by S instead"
    );
}

#[test]
fn the_lottery_candidates_are_the_papers_by_default() {
    use prunelab::prune::lottery::Candidates;
    let spec = ModelSpec::named("resnet20", &ModelOptions::default()).unwrap();
    let names = |c| -> Vec<String> {
        prunelab::prune::lottery::candidates(&spec, c)
            .into_iter()
            .map(|b| b.name)
            .collect()
    };
    // Stages 2 and 3 start with a down-sampling block (stage2.block0,
    // stage3.block0); the blocks beside them stay too.
    assert_eq!(
        names(Candidates::Paper),
        ["stage1.block0", "stage1.block1", "stage3.block2"]
    );
    assert_eq!(
        names(Candidates::Identity),
        [
            "stage1.block0",
            "stage1.block1",
            "stage1.block2",
            "stage2.block1",
            "stage2.block2",
            "stage3.block1",
            "stage3.block2"
        ]
    );
    let r56 = ModelSpec::named("resnet56", &ModelOptions::default()).unwrap();
    assert_eq!(
        prunelab::prune::lottery::candidates(&r56, Candidates::Paper).len(),
        27 - 2 - 4,
        "ResNet-56: 27 blocks, 2 down-sampling, 4 beside them"
    );
}

#[test]
fn snip_matches_finite_differences_on_weights_of_every_layer() {
    let split = toy("moons", 64, 3);
    let device = cpu().autodiff();
    // tanh: smooth, so central differences are accurate to O(h²) (ReLU kinks are not).
    let spec = ModelSpec::named(
        "mlp",
        &ModelOptions {
            classes: 2,
            hidden: vec![5, 4],
            activation: prunelab::model::spec::Activation::Tanh,
            ..ModelOptions::default()
        },
    )
    .unwrap();
    let model = crate::common::model(&spec, 6, &device);
    let sampling = Sampling {
        batches: 1,
        batch_size: 64,
        augment: false,
        seed: 8,
    };
    let s = block_on(prunelab::prune::snip::scores(&model, &split, sampling)).unwrap();
    let batch = {
        let loader = sampling.loader(&split, 0x9a4d);
        let order = loader.order(0);
        prunelab::data::loader::make_batch(&split.train, &order[..64], None, None, &device)
    };
    let weights = model.prunable_weights();
    let mut checked = 0;
    for (layer, w) in weights.iter().enumerate() {
        let values = block_on(floats(w.param.flat())).unwrap();
        for index in [0, values.len() / 2, values.len() - 1] {
            let loss_at = |delta: f32| -> f64 {
                let shifted = shift(model.deep_fork(), &w.path, index, delta);
                block_on(floats(prunelab::train::cross_entropy(
                    shifted.forward(batch.x.clone()),
                    batch.y.clone(),
                )))
                .unwrap()[0] as f64
            };
            let h = 1e-2;
            let grad = (loss_at(h) - loss_at(-h)) / (2.0 * h as f64);
            let want = (values[index] as f64 * grad).abs();
            let got = s[layer].scores[index] as f64;
            assert!(
                (got - want).abs() < 2e-3 * want + 1e-6,
                "{} [{index}]: {got} vs {want}",
                w.layer
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 9, "three weights in each of three layers");
}

fn shift(model: Model, path: &str, index: usize, delta: f32) -> Model {
    edit(model, path, &|v, _| v[index] += delta)
}

#[test]
fn imp_masks_nest_even_when_removed_weights_are_large() {
    use prunelab::model::masks::WeightMasks;
    use prunelab::prune::masks::masks_from_scores;
    use prunelab::prune::select::Scope;
    let device = cpu().autodiff();
    let model = crate::common::model(&mlp_spec(&[8, 8]), 2, &device);
    // An adversarial first round: it removed the *largest* weights, which
    // the model still holds (weights only become zero when masks apply).
    let mags = block_on(prunelab::prune::magnitude::scores(&model)).unwrap();
    let inverted: Vec<_> = mags
        .iter()
        .map(|l| prunelab::prune::masks::LayerScores {
            scores: l.scores.iter().map(|s| -s).collect(),
            ..l.clone()
        })
        .collect();
    let first = masks_from_scores(&inverted, 0.3, Scope::Global).unwrap();
    let second = block_on(prunelab::prune::imp::next_masks(&model, &first, 0.6)).unwrap();
    assert!((second.sparsity() - 0.6).abs() < 0.01);
    for (a, b) in first.layers.iter().zip(&second.layers) {
        for (i, (&was, &is)) in a.keep.iter().zip(&b.keep).enumerate() {
            assert!(!is || was, "{} weight {i} came back", a.layer);
        }
    }
    // Without the restriction, the large removed weights would come back.
    let naive = masks_from_scores(&mags, 0.6, Scope::Global).unwrap();
    let revived = first
        .layers
        .iter()
        .zip(&naive.layers)
        .any(|(a, b)| a.keep.iter().zip(&b.keep).any(|(&was, &is)| is && !was));
    assert!(revived, "the check above can fail");
    let _ = WeightMasks::dense(&model);
}

/// An MLP with inputs 2, one hidden layer of 3 whose units' incoming weight
/// vectors are a = (5, 5), b = (4, 6), c = (0.1, 0), and an output layer of
/// weights 1, 2, 3 (from unit 0, 1, 2 to class 0) and 10, 0.5, 0 (to class 1).
fn hand_mlp() -> Model {
    let device = cpu();
    let mut model = crate::common::model(&mlp_spec(&[3]), 1, &device);
    let Net::Mlp(m) = &mut model.net else {
        unreachable!()
    };
    // burn's linear weights are [in, out]: a unit's vector is a column.
    m.hidden[0].weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![5.0f32, 4.0, 0.1, 5.0, 6.0, 0.0], [2, 3]),
        &device,
    ));
    m.out.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![1.0f32, 10.0, 2.0, 0.5, 3.0, 0.0], [3, 2]),
        &device,
    ));
    model
}

/// FPGM: `s_i = Σ_j ‖F_i − F_j‖₂`. By hand: |ab| = √2, |ac| = √49.01,
/// |bc| = √51.21. The big filter `a` sits nearest the others and goes first,
/// where `l1` would drop the small odd `c`. Fails for random scores, for
/// L1 norms, and for squared distances (which change the sums' ratios).
#[test]
fn fpgm_scores_are_distance_sums_and_drop_the_filter_nearest_the_median() {
    let (ab, ac, bc) = (2f64.sqrt(), 49.01f64.sqrt(), 51.21f64.sqrt());
    let want = [ab + ac, ab + bc, ac + bc];
    let model = hand_mlp();
    let got = block_on(prunelab::prune::fpgm::scores(&model, &layers(&model.spec))).unwrap()["fc1"]
        .clone();
    for (g, w) in got.iter().zip(want) {
        assert!((*g as f64 - w).abs() < 1e-4, "{got:?} vs {want:?}");
    }
    let lowest = (0..3).min_by(|&i, &j| got[i].total_cmp(&got[j])).unwrap();
    assert_eq!(lowest, 0, "a, the filter nearest the geometric median");
    let l1 =
        block_on(prunelab::prune::l1::scores(&model, &layers(&model.spec))).unwrap()["fc1"].clone();
    assert_eq!((0..3).min_by(|&i, &j| l1[i].total_cmp(&l1[j])).unwrap(), 2);
    let random = prunelab::prune::random::unit_scores(&model.spec.unit_groups(), 7)["fc1"].clone();
    assert!(
        random
            .iter()
            .zip(want)
            .any(|(r, w)| (*r as f64 - w).abs() > 1e-2)
    );
}

/// LAMP: within a layer, `s(u) = w_u² / Σ_{|w_v| ≥ |w_u|} w_v²`. By hand for
/// the output layer's weights (1, 10, 2, 0.5, 3, 0): sorted 0, 0.5, 1, 2, 3,
/// 10, tails of squares 114.25, 114.25, 114, 113, 109, 100. The largest
/// weight of each layer scores exactly 1. Fails for random scores and for
/// plain normalisation `w² / Σ w²` (which gives 10 the score 100/114.25).
#[test]
fn lamp_scores_divide_by_the_tail_of_larger_weights() {
    let model = hand_mlp();
    let layers = block_on(prunelab::prune::lamp::scores(&model)).unwrap();
    let out = layers.iter().find(|l| l.layer == "out").unwrap();
    let want = [
        1.0 / 114.0,
        100.0 / 100.0,
        4.0 / 113.0,
        0.25 / 114.25,
        9.0 / 109.0,
        0.0,
    ];
    for (g, w) in out.scores.iter().zip(want) {
        assert!((*g as f64 - w).abs() < 1e-6, "{:?} vs {want:?}", out.scores);
    }
    for layer in &layers {
        let top = layer.scores.iter().fold(0f32, |m, &s| m.max(s));
        assert!(
            (top - 1.0).abs() < 1e-6,
            "{}: the largest weight scores 1",
            layer.layer
        );
    }
    let plain: f64 = 114.25;
    assert!(
        (out.scores[1] as f64 - 100.0 / plain).abs() > 0.1,
        "not plain normalisation"
    );
    let random = prunelab::prune::random::weight_scores(&model, 3);
    let r = &random.iter().find(|l| l.layer == "out").unwrap().scores;
    assert!(
        r.iter()
            .zip(want)
            .any(|(r, w)| (*r as f64 - w).abs() > 1e-2)
    );
}

/// `model` with the float tensor at `path` changed by `f(values, dims)`.
fn edit(model: Model, path: &str, f: &dyn Fn(&mut Vec<f32>, &[usize])) -> Model {
    struct Edit<'a> {
        path: &'a str,
        at: Vec<String>,
        f: &'a dyn Fn(&mut Vec<f32>, &[usize]),
    }
    impl burn::module::ModuleMapper for Edit<'_> {
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
            (self.f)(&mut v, &dims);
            Param::from_mapped_value(
                id,
                Tensor::from_data(TensorData::new(v, dims), &t.device()).require_grad(),
                mapper,
            )
        }
    }
    model.map(&mut Edit {
        path,
        at: vec![],
        f,
    })
}

/// Taylor: removing unit `u` moves the loss by about `−Σ_s g_s w_s`, which is
/// `dL/dα` for the unit's weights scaled by `(1 + α)`. Central differences of
/// the loss over the one scoring batch (the whole training set) must square
/// to the scores, for every hidden unit of both layers. Fails for random
/// scores, for `|Σ g w|` unsquared and for `Σ (g w)²`.
#[test]
fn taylor_scores_are_the_squared_first_order_change_of_removing_a_unit() {
    let split = toy("moons", 64, 3);
    let device = cpu().autodiff();
    let spec = ModelSpec::named(
        "mlp",
        &ModelOptions {
            classes: 2,
            hidden: vec![5, 4],
            activation: prunelab::model::spec::Activation::Tanh,
            ..ModelOptions::default()
        },
    )
    .unwrap();
    let model = crate::common::model(&spec, 6, &device);
    let sampling = Sampling {
        batches: 1,
        batch_size: 64,
        augment: false,
        seed: 8,
    };
    let s = block_on(prunelab::prune::taylor::scores(
        &model,
        &split,
        sampling,
        &layers(&model.spec),
    ))
    .unwrap();
    let batch = prunelab::data::loader::make_batch(
        &split.train,
        &(0..64).collect::<Vec<_>>(),
        None,
        None,
        &device,
    );
    let random = prunelab::prune::random::unit_scores(&spec.unit_groups(), 2);
    let mut checked = 0;
    for (layer, path, units) in [
        ("fc1", "net.Mlp.hidden.0.weight", 5),
        ("fc2", "net.Mlp.hidden.1.weight", 4),
    ] {
        for u in 0..units {
            let loss_at = |alpha: f32| -> f64 {
                let scaled = edit(model.deep_fork(), path, &|v, dims| {
                    let out = dims[1];
                    for (k, x) in v.iter_mut().enumerate() {
                        if k % out == u {
                            *x *= 1.0 + alpha;
                        }
                    }
                });
                block_on(floats(prunelab::train::cross_entropy(
                    scaled.forward(batch.x.clone()),
                    batch.y.clone(),
                )))
                .unwrap()[0] as f64
            };
            let h = 1e-2;
            let first_order = (loss_at(h) - loss_at(-h)) / (2.0 * h as f64);
            let want = first_order * first_order;
            let got = s[layer][u] as f64;
            assert!(
                (got - want).abs() < 1e-3 * want + 1e-8,
                "{layer}[{u}]: {got} vs {want}"
            );
            assert!((random[layer][u] as f64 - want).abs() > 1e-6);
            checked += 1;
        }
    }
    assert_eq!(checked, 9);
}

/// Network slimming: the score is `|γ|` of each prunable channel's BN (by
/// hand on planted scales; random fails), and the sparsity penalty reaches
/// exactly those scales: one plain SGD step with `λ` moves each of them by
/// `−lr·λ·sign(γ)` more than the same step without it, and nothing else.
/// (A wrong parameter path would leave the difference zero.)
#[test]
fn slimming_scores_bn_scales_and_penalises_exactly_them() {
    let device = cpu().autodiff();
    let spec = ModelSpec::named("cnn", &ModelOptions::default()).unwrap();
    let planted: Vec<f32> = (0..16)
        .map(|i| {
            if i % 3 == 0 {
                -(i as f32 + 1.0)
            } else {
                0.1 * (i as f32 + 1.0)
            }
        })
        .collect();
    let model = edit(
        crate::common::model(&spec, 2, &device),
        "net.Plain.convs.0.bn.gamma",
        &|v, _| v.copy_from_slice(&planted),
    );
    let scores = block_on(prunelab::prune::criteria::bn_scale::scores(
        &model,
        &layers(&model.spec),
    ))
    .unwrap();
    let want: Vec<f32> = planted.iter().map(|g| g.abs()).collect();
    assert_eq!(scores["conv1"], want);
    assert_eq!(
        scores.len(),
        spec.unit_groups().len(),
        "one scale vector per prunable layer"
    );
    let random = prunelab::prune::random::unit_scores(&spec.unit_groups(), 1);
    assert_ne!(random["conv1"], want);

    let data = crate::common::tiny_images(16, 10, 4);
    let split = prunelab::data::Split::new(data.clone(), data, None, "tiny");
    let config = prunelab::train::TrainConfig {
        epochs: 1,
        batch_size: 16,
        lr: 0.1,
        momentum: 0.0,
        weight_decay: 0.0,
        ..prunelab::train::TrainConfig::default()
    };
    let (lambda, lr) = (0.5, 0.1);
    let step = |penalised: bool| {
        let mut t = prunelab::train::Trainer::new(model.deep_fork(), config.clone(), 3);
        if penalised {
            let paths = block_on(prunelab::prune::criteria::bn_scale::unit_scales(
                &model,
                &layers(&model.spec),
            ))
            .unwrap();
            t.optim
                .hooks
                .push(Box::new(prunelab::prune::slimming::L1Penalty {
                    lambda: paths.into_iter().map(|(_, p, _)| (p, lambda)).collect(),
                }));
        }
        let loader = t.loader(&split.train, None, false);
        block_on(t.step(&loader, &device)).unwrap();
        weights(&t.model)
    };
    let (with, without) = (step(true), step(false));
    let before = weights(&model);
    let mut moved = 0;
    for i in 0..before.len() {
        let extra = with[i] - without[i];
        if extra != 0.0 {
            let sign = before[i].signum();
            assert!(
                (extra as f64 + lr * lambda * sign as f64).abs() < 1e-5,
                "{i}: {extra}"
            );
            moved += 1;
        }
    }
    let channels: usize = spec.unit_groups().iter().map(|g| g.size).sum();
    assert_eq!(
        moved, channels,
        "every prunable channel's γ, and nothing else"
    );
}

/// Polar's penalty `λ·(t·‖γ‖₁ − ‖γ − αγ̄‖₁)` over every prunable channel's BN
/// scale, `γ̄` their mean: one plain SGD step moves each scale by
/// `−lr·λ·(t·sign(γ_k) − sign(γ_k − αγ̄) + α·mean_i sign(γ_i − αγ̄))` more
/// than the same step without it (computed here by hand from the planted
/// scales), and the scales are clamped to [0, 1]. Fails for slimming's L1
/// (no spreading term), for a per-layer mean, and without `γ̄`'s own term.
#[test]
fn polar_pulls_each_scale_by_the_regulariser_gradient_and_clamps() {
    let device = cpu().autodiff();
    let spec = ModelSpec::named("cnn", &ModelOptions::default()).unwrap();
    let widths: Vec<usize> = spec.unit_groups().iter().map(|g| g.size).collect();
    // Skewed (more small scales than large), so `mean sign(γ − γ̄)` is not 0
    // and `γ̄`'s own term shows.
    let planted =
        |k: usize, i: usize| 0.1 + 0.8 * ((0.618 * (i + 7 * k) as f64).fract().powi(2)) as f32;
    let mut model = crate::common::model(&spec, 2, &device);
    for (k, &n) in widths.iter().enumerate() {
        let values: Vec<f32> = (0..n).map(|i| planted(k, i)).collect();
        model = edit(model, &format!("net.Plain.convs.{k}.bn.gamma"), &|v, _| {
            v.copy_from_slice(&values)
        });
    }
    let all: Vec<f64> = widths
        .iter()
        .enumerate()
        .flat_map(|(k, &n)| (0..n).map(move |i| planted(k, i) as f64))
        .collect();
    let (lambda, t, alpha, lr) = (0.5, 1.2, 1.0, 0.01);
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let sign = |x: f64| {
        if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            0.0
        }
    };
    let sign_mean = all.iter().map(|g| sign(g - alpha * mean)).sum::<f64>() / all.len() as f64;
    assert!(
        sign_mean.abs() > 0.1,
        "the planted scales are skewed: {sign_mean}"
    );

    let data = crate::common::tiny_images(16, 10, 4);
    let split = prunelab::data::Split::new(data.clone(), data, None, "tiny");
    let config = prunelab::train::TrainConfig {
        epochs: 1,
        batch_size: 16,
        lr,
        momentum: 0.0,
        weight_decay: 0.0,
        ..prunelab::train::TrainConfig::default()
    };
    let paths: Vec<String> = (0..widths.len())
        .map(|k| format!("net.Plain.convs.{k}.bn.gamma"))
        .collect();
    let step = |penalised: bool| {
        let mut tr = prunelab::train::Trainer::new(model.deep_fork(), config.clone(), 3);
        if penalised {
            tr.optim
                .hooks
                .push(Box::new(prunelab::prune::polar::PolarPenalty::new(
                    paths.clone(),
                    lambda,
                    t,
                    alpha,
                )));
        }
        let loader = tr.loader(&split.train, None, false);
        block_on(tr.step(&loader, &device)).unwrap();
        tr.model
    };
    let (with, without) = (step(true), step(false));
    let scales = |m: &Model| {
        let Net::Plain(p) = &m.net else {
            unreachable!()
        };
        p.convs
            .iter()
            .flat_map(|c| block_on(floats(c.bn.gamma.val())).unwrap())
            .collect::<Vec<f32>>()
    };
    let (a, b) = (scales(&with), scales(&without));
    for (i, g) in all.iter().enumerate() {
        let pull = t * sign(*g) - sign(g - alpha * mean) + alpha * sign_mean;
        let want = -lr * lambda * pull;
        let got = (a[i] - b[i]) as f64;
        assert!((got - want).abs() < 1e-6, "scale {i}: {got} vs {want}");
    }
    // Everything else moved exactly as without the penalty.
    let (wa, wb) = (weights(&with), weights(&without));
    let differ = wa.iter().zip(&wb).filter(|(x, y)| x != y).count();
    assert_eq!(differ, all.len(), "only the scales");
    // A scale pulled below 0 is clamped there.
    let big = prunelab::train::TrainConfig {
        lr: 10.0,
        ..config.clone()
    };
    let mut tr = prunelab::train::Trainer::new(model.deep_fork(), big, 3);
    tr.optim
        .hooks
        .push(Box::new(prunelab::prune::polar::PolarPenalty::new(
            paths, lambda, t, alpha,
        )));
    let loader = tr.loader(&split.train, None, false);
    block_on(tr.step(&loader, &device)).unwrap();
    let clamped = scales(&tr.model);
    assert!(clamped.iter().all(|g| (0.0..=1.0).contains(g)));
    assert!(
        clamped.iter().any(|&g| g == 0.0),
        "the pull takes some to the bound"
    );
}
