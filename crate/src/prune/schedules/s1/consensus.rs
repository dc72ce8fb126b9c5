//! Reading the gates: where they stand (per unit and block, soft value and
//! open or closed, dynamic gates by the samples' consensus) and the cut plan
//! the open gates make.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::base::error::Result;
use crate::base::host;
use crate::data::Split;
use crate::data::loader::Loader;
use crate::prune::pruner::plan::Plan;

use super::gates::{GateKind, GatedModel, Gates};

/// Where the gates stand: per unit and block, how open (the soft value, or
/// its mean over samples) and whether open (static: `z > 0`; dynamic: for
/// most samples).
#[derive(Debug, Clone)]
pub struct GateState {
    pub units: Vec<Vec<f32>>,
    pub blocks: Vec<f32>,
    pub open_units: Vec<Vec<bool>>,
    pub open_blocks: Vec<bool>,
    /// Dynamic gates: the mean share of samples that agree with the majority.
    pub agreement: Option<f32>,
}

impl GateState {
    fn all_soft(&self) -> impl Iterator<Item = &f32> {
        self.units.iter().flatten().chain(&self.blocks)
    }

    pub fn undecided(&self) -> usize {
        self.all_soft()
            .filter(|&&g| (0.1..0.9).contains(&g))
            .count()
    }

    pub fn gates(&self) -> usize {
        self.all_soft().count()
    }

    pub fn open(&self) -> usize {
        self.open_units
            .iter()
            .flatten()
            .chain(&self.open_blocks)
            .filter(|&&o| o)
            .count()
    }
}

/// The gate state of `gated` — static gates directly; dynamic gates averaged
/// over `samples` training examples (in order, no augmentation, BN in eval mode).
pub async fn gate_state(
    gated: &GatedModel,
    split: &Split,
    samples: usize,
    batch: usize,
) -> Result<GateState> {
    if gated.gates.kind() == GateKind::Static {
        let v = gated.gates.values();
        let (units, blocks) = read(&v.mean_soft(), &v.mean_soft_blocks()).await?;
        let (hard_u, hard_b) = v.mean_hard();
        let (open_u, open_b) = read(&hard_u, &hard_b).await?;
        return Ok(GateState {
            units,
            blocks,
            open_units: open_u
                .iter()
                .map(|g| g.iter().map(|&v| v > 0.5).collect())
                .collect(),
            open_blocks: open_b.iter().map(|&v| v > 0.5).collect(),
            agreement: None,
        });
    }
    let eval = gated.valid();
    let device = eval.model.device();
    let loader = Loader::sequential(&split.train, split.norm, batch.max(1));
    let order = loader.order(0);
    let batches = samples
        .div_ceil(batch.max(1))
        .clamp(1, loader.batches_per_epoch().max(1));
    // Sums over samples, kept on the device until one read at the end.
    let mut soft: Option<Vec<Tensor<1>>> = None;
    let mut hard: Option<Vec<Tensor<1>>> = None;
    let mut seen = 0usize;
    for index in 0..batches {
        let b = loader.batch(&order, 0, index, &device);
        seen += b.len;
        let (_, v) = eval.forward(b.x);
        let sum = |units: &[Tensor<2>], blocks: &[Tensor<1>]| -> Vec<Tensor<1>> {
            units
                .iter()
                .map(|u| {
                    let [_, c] = u.dims();
                    u.clone().sum_dim(0).reshape([c])
                })
                .chain(blocks.iter().map(|b| b.clone().sum()))
                .collect()
        };
        let s = sum(&v.soft_units, &v.soft_blocks);
        let h = sum(&v.hard_units, &v.hard_blocks);
        let add = |acc: Option<Vec<Tensor<1>>>, new: Vec<Tensor<1>>| {
            Some(match acc {
                None => new,
                Some(a) => a.into_iter().zip(new).map(|(x, y)| x + y).collect(),
            })
        };
        soft = add(soft, s);
        hard = add(hard, h);
    }
    let n_units = gated.gates.unit_names.len();
    let mut soft_all = Vec::new();
    for t in soft.expect("at least one batch") {
        soft_all.push(host::floats(t).await?);
    }
    let mut hard_all = Vec::new();
    for t in hard.expect("at least one batch") {
        hard_all.push(host::floats(t).await?);
    }
    let n = seen.max(1) as f32;
    let scale = |v: Vec<Vec<f32>>| -> Vec<Vec<f32>> {
        v.into_iter()
            .map(|g| g.into_iter().map(|x| x / n).collect())
            .collect()
    };
    let (soft_all, hard_all) = (scale(soft_all), scale(hard_all));
    let agreement = {
        let shares: Vec<f32> = hard_all.iter().flatten().map(|&p| p.max(1.0 - p)).collect();
        shares.iter().sum::<f32>() / shares.len().max(1) as f32
    };
    Ok(GateState {
        units: soft_all[..n_units].to_vec(),
        blocks: soft_all[n_units..].iter().map(|b| b[0]).collect(),
        open_units: hard_all[..n_units]
            .iter()
            .map(|g| g.iter().map(|&p| p > 0.5).collect())
            .collect(),
        open_blocks: hard_all[n_units..].iter().map(|b| b[0] > 0.5).collect(),
        agreement: Some(agreement),
    })
}

async fn read(units: &[Tensor<1>], blocks: &[Tensor<1>]) -> Result<(Vec<Vec<f32>>, Vec<f32>)> {
    let mut u = Vec::new();
    for t in units {
        u.push(host::floats(t.clone()).await?);
    }
    let mut b = Vec::new();
    for t in blocks {
        b.push(host::scalar(t.clone()).await?);
    }
    Ok((u, b))
}

/// The plan open gates describe: closed units and blocks go. A group whose
/// gates all closed keeps its most open unit (`soft` orders them).
pub fn plan_from_open(
    gates: &Gates,
    open_units: &[Vec<bool>],
    open_blocks: &[bool],
    soft: &[Vec<f32>],
) -> Plan {
    let mut plan = Plan::default();
    for ((name, open), g) in gates.unit_names.iter().zip(open_units).zip(soft) {
        let mut kept: Vec<usize> = (0..open.len()).filter(|&i| open[i]).collect();
        if kept.is_empty() {
            let best = (0..g.len())
                .max_by(|&a, &b| g[a].total_cmp(&g[b]))
                .unwrap_or(0);
            kept.push(best);
        }
        plan.keep.insert(name.clone(), kept);
    }
    plan.remove_blocks = gates
        .block_names
        .iter()
        .zip(open_blocks)
        .filter(|(_, open)| !**open)
        .map(|(n, _)| n.clone())
        .collect();
    plan
}

/// The plan of gate values (open above ½), as the tests and the page use it.
pub fn plan_from_gates(gates: &Gates, units: &[Vec<f32>], blocks: &[f32]) -> Plan {
    let open_u: Vec<Vec<bool>> = units
        .iter()
        .map(|g| g.iter().map(|&v| v > 0.5).collect())
        .collect();
    let open_b: Vec<bool> = blocks.iter().map(|&v| v > 0.5).collect();
    plan_from_open(gates, &open_u, &open_b, units)
}
