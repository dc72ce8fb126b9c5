//! What the regulariser achieved on its own ([`Learned`]), and `settle`, the
//! heuristic that moves the learned cut onto the target when asked
//! (reported apart, so the principled part is always visible).

use serde::Serialize;

use crate::metrics::count::count;
use crate::model::ModelSpec;
use crate::prune::pruner::plan::Plan;

use super::consensus::{GateState, plan_from_open};
use super::cost::Measure;
use super::gates::Gates;

/// What the regulariser achieved on its own, just before the freeze.
#[derive(Debug, Clone, Serialize)]
pub struct Learned {
    /// The step of the freeze.
    pub step: u64,
    /// Share of the dense cost the learned consensus keeps.
    pub kept_cost: f64,
    /// `1 − kept_cost`: what it removes.
    pub removed: f64,
    pub target: f64,
    /// `removed − target` (positive: removed more than asked).
    pub distance: f64,
    pub gates: usize,
    pub undecided: usize,
    /// Share of gates with a soft value outside (0.1, 0.9).
    pub decided_share: f64,
    /// Dynamic gates: mean share of samples agreeing with the consensus.
    pub agreement: Option<f32>,
}

/// What `settle` did on top.
#[derive(Debug, Clone, Serialize)]
pub struct Settled {
    pub enabled: bool,
    pub flipped_units: usize,
    pub flipped_blocks: usize,
    /// Units kept alive because their whole group closed (a layer never empties).
    pub revived_units: usize,
    /// Share of the dense cost the frozen sub-network keeps.
    pub kept_cost: f64,
}

/// The share of the dense cost a plan keeps.
pub(super) fn kept_share(spec: &ModelSpec, plan: &Plan, measure: Measure) -> f64 {
    let (dense, cut) = (count(spec), count(&plan.apply_to_spec(spec)));
    match measure {
        Measure::Macs => cut.macs as f64 / dense.macs as f64,
        Measure::Params => cut.params as f64 / dense.params as f64,
    }
}

/// The last resort: flips gates of `open_*` until the budget is met.
/// Channels first — reopened (most open first) while the network keeps less
/// than `1 − target` of the dense cost, closed (least open first, never a
/// group's last unit) while it keeps more; blocks are reopened (most open
/// first) only when the channels alone cannot reach the budget. Returns the
/// channel and block flips.
pub(super) fn settle(
    spec: &ModelSpec,
    gates: &Gates,
    measure: Measure,
    target: f32,
    state: &GateState,
    open_units: &mut [Vec<bool>],
    open_blocks: &mut [bool],
) -> (usize, usize) {
    let keep = 1.0 - target as f64;
    let share = |units: &[Vec<bool>], blocks: &[bool]| {
        kept_share(
            spec,
            &plan_from_open(gates, units, blocks, &state.units),
            measure,
        )
    };
    // Units by openness, least open first; ties by group and index.
    let mut order: Vec<(f32, usize, usize)> = state
        .units
        .iter()
        .enumerate()
        .flat_map(|(g, v)| v.iter().enumerate().map(move |(i, &x)| (x, g, i)))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut units_flipped, mut blocks_flipped) = (0, 0);
    let mut current = share(open_units, open_blocks);
    // A channel inside a closed block costs nothing either way: leave it.
    let in_open_block = |g: usize, blocks: &[bool]| gates.head_blocks[g].is_none_or(|b| blocks[b]);
    if current < keep {
        for &(_, g, i) in order.iter().rev() {
            if current >= keep {
                break;
            }
            if !open_units[g][i] && in_open_block(g, open_blocks) {
                open_units[g][i] = true;
                units_flipped += 1;
                current = share(open_units, open_blocks);
            }
        }
        while current < keep {
            let Some(b) = (0..open_blocks.len())
                .filter(|&b| !open_blocks[b])
                .max_by(|&a, &b| state.blocks[a].total_cmp(&state.blocks[b]))
            else {
                break;
            };
            open_blocks[b] = true;
            blocks_flipped += 1;
            current = share(open_units, open_blocks);
        }
    } else {
        for &(_, g, i) in order.iter() {
            if current <= keep {
                break;
            }
            if open_units[g][i]
                && in_open_block(g, open_blocks)
                && open_units[g].iter().filter(|&&o| o).count() > 1
            {
                open_units[g][i] = false;
                units_flipped += 1;
                current = share(open_units, open_blocks);
            }
        }
    }
    (units_flipped, blocks_flipped)
}
