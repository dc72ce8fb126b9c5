//! S3 — energy-aware pruning (Yeom, Shim, Hwang, "Toward Compact Deep Neural
//! Networks via Energy-Aware Pruning", arXiv 2103.10858).
//!
//! A filter's energy is the nuclear norm (sum of singular values) of its
//! feature map after BN, laid out as a `batch × (H·W)` matrix — one matrix per
//! channel and batch, not one per image (that is HRank). Scores are averaged
//! over `limit` training batches (augmented, model in eval mode):
//! `score_c = Σ_batches ‖M_c‖_* / images`.
//!
//! How many filters each layer loses (`allocation`, the alternatives of the
//! authors' `compute_comp_ratio.py`): by default **iteratively** — each
//! layer's scores L1-normalised, all filters ranked globally, and removed in
//! steps of 5% of the target measure with the survivors re-normalised after
//! every step (`compute_ratio_iterative`, their `__main__`'s choice,
//! `pr_step` 0.05). `one-shot` ranks once (`compute_ratio`): every score is
//! then about `1/C_l`, so the widest layers' filters rank lowest and a FLOPs
//! target empties the late stage first (79% of ResNet-56's parameters for
//! 40% of its FLOPs, where the paper removes 46%). `width` scales the
//! normalised scores by the layer width (`compute_ratio_nn`), i.e. divides by
//! the layer's mean score.
//!
//! Singular values come from nalgebra. By default (`svd = "full"`) its SVD
//! runs on `M` itself (in f64; it matches PyTorch's `svdvals` to 1e-7,
//! tests/reference). `svd = "gram"` takes the square roots of the
//! eigenvalues of the `B × B` Gram matrix `M Mᵀ`, which the device computes
//! (a batched matmul), leaving only a small symmetric eigenproblem for the
//! host — ~10× faster, but in f32 it cannot resolve singular values below
//! about `√(B·ε_f32)·σ_max`: on mean-dominated maps (a BN with a large β)
//! nuclear norms come out up to ~3e-3 low.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use super::Criterion;
use crate::base::error::{Error, Result};
use crate::base::host;
use crate::data::Split;
use crate::model::Model;
use crate::prune::contract::CheckOptions;
use crate::prune::contract::{
    BoxFuture, Finetune, Granularity, Knob, MethodInfo, OptionsSpec, Phase, Scores, Scoring,
};
use crate::prune::criteria::capture::{self, Sampling};
use crate::prune::pruner::select::Normalize;
use crate::prune::pruner::select::Scope;
use crate::prune::pruner::select::UnitScores;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Svd {
    /// Eigenvalues of `M Mᵀ` (computed on the device) → singular values.
    Gram,
    /// nalgebra's SVD of `M`.
    #[default]
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EnergyMeasure {
    /// Σσ, the paper's criterion.
    #[default]
    Nuclear,
    /// Normalised spectral entropy of σ² (a variant in the authors' code).
    Entropy,
}

/// Singular values of a `rows × cols` row-major matrix (nalgebra SVD, in
/// f64, on the matrix scaled to a largest entry of 1).
///
/// nalgebra's SVD can end in NaN on rare finite matrices (it then panics
/// while sorting: seen on a ResNet-20 ReLU map in the CIFAR quick run), so
/// the unordered, fallible form is used and, when it fails, the eigenvalues
/// of the smaller Gram matrix (symmetric solver, f64) stand in. Non-finite
/// input is an error naming its cause.
pub fn singular_values(rows: usize, cols: usize, values: &[f32]) -> Result<Vec<f64>> {
    if values.iter().any(|v| !v.is_finite()) {
        return Err(Error::Execution(
            "a feature map holds NaN or infinity: the model has diverged; train it again \
             with a lower learning rate"
                .into(),
        ));
    }
    let scale = values.iter().fold(0.0f64, |a, &v| a.max((v as f64).abs()));
    if scale == 0.0 {
        return Ok(vec![0.0; rows.min(cols)]);
    }
    let m = DMatrix::from_row_slice(
        rows,
        cols,
        &values.iter().map(|&v| v as f64 / scale).collect::<Vec<_>>(),
    );
    let sv = match m.clone().try_svd_unordered(false, false, f64::EPSILON, 0) {
        Some(svd) if svd.singular_values.iter().all(|s| s.is_finite()) => {
            svd.singular_values.iter().copied().collect()
        }
        _ => singular_values_by_eigen(&m),
    };
    Ok(sv.into_iter().map(|s| s * scale).collect())
}

/// The fallback of [`singular_values`]: √ of the eigenvalues of `M Mᵀ` or
/// `Mᵀ M`, whichever is smaller (exact up to f64 rounding of the squares).
pub fn singular_values_by_eigen(m: &DMatrix<f64>) -> Vec<f64> {
    let g = if m.nrows() <= m.ncols() {
        m * m.transpose()
    } else {
        m.transpose() * m
    };
    let g = (&g + g.transpose()) * 0.5;
    g.symmetric_eigenvalues()
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .collect()
}

/// Singular values of `M` from its Gram matrix `M Mᵀ` (`n × n`, row-major,
/// computed in f32). Eigenvalues within the Gram matrix's rounding noise,
/// `n · λ_max · ε_f32`, are zero: their square roots would otherwise add
/// about `√(ε_f32)·σ_max` each to a rank-deficient map's nuclear norm (a few
/// percent for a 128-image batch of a rank-1 channel).
pub fn singular_values_from_gram(n: usize, gram: &[f32]) -> Vec<f64> {
    let m = DMatrix::from_row_slice(n, n, &gram.iter().map(|&v| v as f64).collect::<Vec<_>>());
    // Symmetrise against rounding before the symmetric solver.
    let m = (&m + m.transpose()) * 0.5;
    let eigen = m.symmetric_eigenvalues();
    let max = eigen.iter().fold(0.0f64, |a, &l| a.max(l));
    let noise = n as f64 * max * f32::EPSILON as f64;
    eigen
        .iter()
        .map(|&l| if l > noise { l.sqrt() } else { 0.0 })
        .collect()
}

/// The criterion's value for one set of singular values.
pub fn energy(sigma: &[f64], kind: EnergyMeasure) -> f64 {
    match kind {
        EnergyMeasure::Nuclear => sigma.iter().sum(),
        EnergyMeasure::Entropy => {
            let power: Vec<f64> = sigma.iter().map(|s| s * s).filter(|&p| p > 1e-12).collect();
            let total: f64 = power.iter().sum();
            if power.len() < 2 || total <= 0.0 {
                return 0.0;
            }
            -power
                .iter()
                .map(|p| (p / total) * (p / total).ln())
                .sum::<f64>()
                / (power.len() as f64).ln()
        }
    }
}

/// The criterion of each channel of one batch's feature maps `[B, C, H, W]`:
/// channel `c`'s `B × (H·W)` matrix, one per batch (not per image).
pub async fn channel_energies(
    fm: burn::tensor::Tensor<4>,
    svd: Svd,
    kind: EnergyMeasure,
) -> Result<Vec<f64>> {
    let [b, c, h, w] = fm.dims();
    let per_channel = fm.reshape([b, c, h * w]).swap_dims(0, 1); // [C, B, HW]
    let mut out = Vec::with_capacity(c);
    match svd {
        Svd::Gram => {
            let gram = per_channel.clone().matmul(per_channel.swap_dims(1, 2)); // [C, B, B]
            let values = host::floats(gram).await?;
            for g in values.chunks_exact(b * b) {
                out.push(energy(&singular_values_from_gram(b, g), kind));
            }
        }
        Svd::Full => {
            let values = host::floats(per_channel).await?;
            for m in values.chunks_exact(b * h * w) {
                out.push(energy(&singular_values(b, h * w, m)?, kind));
            }
        }
    }
    Ok(out)
}

/// Energy scores of every unit group.
pub async fn scores(
    model: &Model,
    split: &Split,
    sampling: Sampling,
    svd: Svd,
    kind: EnergyMeasure,
    layers: &[String],
) -> Result<UnitScores> {
    let mut sums: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut images = 0usize;
    let mut batches = capture::batches(model, split, sampling, layers);
    while let Some((n, captured)) = batches.next_batch() {
        images += n;
        for (group, fm) in captured {
            let energies = channel_energies(fm, svd, kind).await?;
            let entry = sums
                .entry(group)
                .or_insert_with(|| vec![0.0; energies.len()]);
            for (e, v) in entry.iter_mut().zip(energies) {
                *e += v;
            }
        }
    }
    let images = images.max(1) as f64;
    Ok(sums
        .into_iter()
        .map(|(g, s)| (g, s.into_iter().map(|v| (v / images) as f32).collect()))
        .collect())
}

/// How the global ranking allots the cut to layers (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Allocation {
    /// L1-normalised per layer, ranked once.
    OneShot,
    /// L1-normalised, removed in `step`s with the survivors re-normalised.
    #[default]
    Iterative,
    /// Normalised scores × layer width (each layer divided by its mean).
    Width,
}

/// S3 (Yeom et al.).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnergyOptions {
    pub svd: Svd,
    pub criterion: EnergyMeasure,
    pub allocation: Allocation,
    /// The share of the target measure removed per step of the iterative
    /// allocation (a shared `step` in `[prune]` takes precedence).
    pub step: f32,
}

impl CheckOptions for EnergyOptions {
    fn check(&self) -> Result<()> {
        crate::prune::contract::require(
            self.step > 0.0 && self.step < 1.0,
            "energy.step",
            self.step,
            "a share of the target per step in (0, 1)",
        )
    }
}

impl Default for EnergyOptions {
    fn default() -> Self {
        EnergyOptions {
            svd: Svd::Full,
            criterion: EnergyMeasure::Nuclear,
            allocation: Allocation::Iterative,
            step: 0.05,
        }
    }
}

/// The selection S3's `allocation` asks for ([`MethodInfo::ranking`]).
fn allocate(
    options: &crate::prune::options::PruneOptions,
    select: &mut crate::prune::pruner::select::SelectOptions,
) {
    let o: EnergyOptions = options.of(INFO.name).unwrap_or_default();
    match o.allocation {
        Allocation::OneShot => {}
        Allocation::Iterative => select.step = Some(options.step.unwrap_or(o.step)),
        Allocation::Width => select.normalize = Normalize::Mean,
    }
}

pub static INFO: MethodInfo = MethodInfo {
    name: "energy",
    title: "S3: energy-aware pruning (nuclear norm)",
    source: "Yeom, Shim, Hwang, Toward Compact Deep Neural Networks via Energy-Aware Pruning (arXiv 2103.10858)",
    summary: "the nuclear norm of each channel's feature map before the ReLU (batch × positions), each layer's scores L1-normalised, removed iteratively",
    phase: Phase::AfterTraining,
    granularity: Granularity::Channels,
    needs_blocks: false,
    scope: Some((
        Scope::Global,
        "authors' code (compute_comp_ratio.py): per-layer L1 normalisation, one global ranking",
    )),
    normalize: Some((
        Normalize::L1,
        "the authors' code: each layer's scores L1-normalised before the global ranking",
    )),
    score_batches: Some((10, "authors' code: --limit 10 batches")),
    ranking: Some(allocate),
    finetune: Some(Finetune {
        share: 1.0,
        lr_factor: 0.1,
        source: "authors' code: one-shot pruning, then 200 fine-tuning epochs at lr 0.01 (a full schedule at a tenth of the rate); the paper's text is UNVERIFIED",
    }),
    options: Some(OptionsSpec::of::<EnergyOptions>()),
    knobs: &[
        Knob {
            key: "score_batch_size",
            source: "authors' code: training batches of 128",
        },
        Knob {
            key: "energy.criterion",
            source: "the paper: nuclear norm",
        },
        Knob {
            key: "energy.svd",
            source: "ours: the full SVD (exact); `gram` is ~10× faster but ~3e-3 low on mean-dominated maps",
        },
        Knob {
            key: "energy.allocation",
            source: "the authors' code: compute_ratio_iterative, the default of its __main__",
        },
        Knob {
            key: "energy.step",
            source: "the authors' later parser: pr_step 0.05 (their first code: 0.01)",
        },
    ],
};

/// The formula, as a run calls it.
fn score(s: Scoring<'_>) -> BoxFuture<'_, Result<Scores>> {
    Box::pin(async move {
        // The authors score on augmented training batches, model in eval mode.
        let sampling = Sampling::new(s.options, &INFO, true, s.seed);
        let o: EnergyOptions = s.options.of(INFO.name)?;
        Ok(Scores::Units(
            scores(s.model, s.split, sampling, o.svd, o.criterion, &s.layers()).await?,
        ))
    })
}

pub static ENERGY: Criterion = Criterion::new(&INFO, score);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eigen_fallback_agrees_and_non_finite_maps_are_named() {
        let (rows, cols) = (5, 9);
        let m: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * if i % 7 == 0 { 1e-3 } else { 1.0 })
            .collect();
        let mut svd = singular_values(rows, cols, &m).unwrap();
        let dm =
            DMatrix::from_row_slice(rows, cols, &m.iter().map(|&v| v as f64).collect::<Vec<_>>());
        let mut eig = singular_values_by_eigen(&dm);
        svd.sort_by(|a, b| b.total_cmp(a));
        eig.sort_by(|a, b| b.total_cmp(a));
        for (a, b) in svd.iter().zip(&eig) {
            assert!((a - b).abs() <= 1e-9 * svd[0], "{svd:?} vs {eig:?}");
        }
        let tall = singular_values_by_eigen(&dm.transpose());
        assert_eq!(tall.len(), rows);
        assert_eq!(singular_values(2, 2, &[0.0; 4]).unwrap(), vec![0.0, 0.0]);
        let err = singular_values(2, 2, &[1.0, f32::NAN, 0.0, 1.0]).unwrap_err();
        assert!(err.to_string().contains("diverged"), "{err}");
    }

    #[test]
    fn nalgebra_svd_recovers_known_singular_values() {
        // diag(3, 2) rotated: U·Σ·Vᵀ with U a rotation by 30°, V the identity.
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let m = [3.0 * c, -2.0 * s, 3.0 * s, 2.0 * c].map(|v| v as f32);
        let mut sv = singular_values(2, 2, &m).unwrap();
        sv.sort_by(|a, b| b.total_cmp(a));
        assert!(
            (sv[0] - 3.0).abs() < 1e-6 && (sv[1] - 2.0).abs() < 1e-6,
            "{sv:?}"
        );
        // A rank-1 2×3 matrix [1 2 2; 2 4 4] has σ = (√45, 0).
        let mut sv = singular_values(2, 3, &[1.0, 2.0, 2.0, 2.0, 4.0, 4.0]).unwrap();
        sv.sort_by(|a, b| b.total_cmp(a));
        assert!(
            (sv[0] - 45f64.sqrt()).abs() < 1e-5 && sv[1].abs() < 1e-5,
            "{sv:?}"
        );
    }

    #[test]
    fn gram_route_matches_the_full_svd() {
        let (rows, cols) = (5, 9);
        let m: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let mut gram = vec![0.0f32; rows * rows];
        for i in 0..rows {
            for j in 0..rows {
                gram[i * rows + j] = (0..cols).map(|k| m[i * cols + k] * m[j * cols + k]).sum();
            }
        }
        let full: f64 = singular_values(rows, cols, &m).unwrap().iter().sum();
        let via_gram: f64 = singular_values_from_gram(rows, &gram).iter().sum();
        assert!(
            (full - via_gram).abs() < 1e-4 * full,
            "{full} vs {via_gram}"
        );
    }

    #[test]
    fn spectral_entropy_is_one_for_a_flat_spectrum_and_zero_for_rank_one() {
        assert!((energy(&[2.0, 2.0, 2.0], EnergyMeasure::Entropy) - 1.0).abs() < 1e-12);
        assert_eq!(energy(&[5.0, 0.0], EnergyMeasure::Entropy), 0.0);
        assert_eq!(energy(&[1.0, 2.5], EnergyMeasure::Nuclear), 3.5);
    }
}
