//! A reproduction's report: our rows (mean ± spread over seeds) beside the
//! paper's and the closest published baselines', in the same columns, with
//! the budget in the title and a verdict line that says how far apart they
//! are. Markdown for people, JSON for tools, SVG for the page.

use std::collections::BTreeMap;

use super::published;
use super::verdict::verdict;
use super::{Budget, Seed};
use crate::report::MethodResult;
use crate::runs::sweep::RunRecord;

pub use super::rows::{Ours, Report, Stat};

fn train_seconds(m: &MethodResult) -> f64 {
    m.history.iter().map(|h| h.seconds).sum()
}

/// The architecture a row ran on: its dense reference's spec.
fn model_of(dense: &MethodResult) -> String {
    dense
        .details
        .get("spec")
        .and_then(|s| serde_json::from_value::<crate::model::ModelSpec>(s.clone()).ok())
        .map_or_else(|| "?".into(), |s| s.name().to_string())
}

/// `stage3.block4.conv1 64→20` lines → mean kept width per stage and kind
/// (`stage3 conv1 64→20.4`), and removed blocks per stage
/// (`stage3: 5.0 blocks`), over `members`.
fn structure(members: &[&MethodResult]) -> Option<String> {
    let mut widths: BTreeMap<String, (usize, f64, usize)> = BTreeMap::new();
    let mut blocks: BTreeMap<String, f64> = BTreeMap::new();
    for m in members {
        for line in &m.plan {
            if let Some((layer, change)) = line.split_once(' ')
                && let Some((from, to)) = change.split_once('→')
                && let (Ok(from), Ok(to)) = (from.parse::<usize>(), to.parse::<usize>())
            {
                let mut parts = layer.split('.');
                let stage = parts.next().unwrap_or_default();
                let kind = layer.rsplit('.').next().unwrap_or_default();
                let e = widths
                    .entry(format!("{stage} {kind}"))
                    .or_insert((from, 0.0, 0));
                e.1 += to as f64;
                e.2 += 1;
            }
        }
        if let Some(removed) = m.details.get("removed").and_then(|r| r.as_array()) {
            for b in removed.iter().filter_map(|b| b.as_str()) {
                let stage = b.split('.').next().unwrap_or_default();
                *blocks.entry(stage.to_string()).or_default() += 1.0 / members.len() as f64;
            }
        }
    }
    let mut parts: Vec<String> = widths
        .iter()
        .map(|(k, (from, sum, n))| format!("{k} {from}→{:.1}", sum / *n as f64))
        .collect();
    parts.extend(
        blocks
            .iter()
            .map(|(s, n)| format!("{s}: {n:.1} blocks removed")),
    );
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// One row over its seeds; `dense_secs[i]` is the training time of the
/// dense model `members[i]` is measured against.
fn summarise(label: &str, members: &[&MethodResult], dense_secs: &[Option<f64>]) -> Ours {
    let stat = |f: &dyn Fn(&MethodResult) -> f64| {
        Stat::of(&members.iter().map(|m| f(m)).collect::<Vec<_>>()).unwrap_or(Stat {
            mean: f64::NAN,
            sd: 0.0,
        })
    };
    let speedups: Option<Vec<f64>> = members.iter().map(|m| m.speedup).collect();
    let energy: Option<Vec<f64>> = members.iter().map(|m| m.metered.energy_j).collect();
    // Only rows that train the whole budget compare their training time.
    let train_speedups: Option<Vec<f64>> = members
        .iter()
        .zip(dense_secs)
        .map(|(m, d)| {
            let own = train_seconds(m);
            (m.phase == "at-init" && own > 0.0)
                .then(|| d.map(|d| d / own))
                .flatten()
        })
        .collect();
    Ours {
        label: label.to_string(),
        method: members[0].method.clone(),
        target: members[0].target.clone(),
        model: String::new(),
        scope: members[0].scope.clone(),
        recipe: members[0].recipe.clone(),
        seeds: members.len(),
        accuracy: stat(&|m| 100.0 * m.test_accuracy as f64),
        delta: stat(&|m| m.delta_vs_dense as f64),
        params_removed: stat(&|m| m.params_reduction),
        flops_removed: stat(&|m| m.macs_reduction),
        bytes_removed: stat(&|m| m.bytes_reduction),
        speedup: speedups.and_then(|v| Stat::of(&v)),
        train_speedup: train_speedups.and_then(|v| Stat::of(&v)),
        structure: structure(members),
        train_seconds: stat(&train_seconds),
        energy_joules: energy.and_then(|v| Stat::of(&v)),
        details: members
            .iter()
            .map(|m| match &m.verdict {
                Some(v) => serde_json::json!({ "details": m.details, "verdict": v }),
                None => serde_json::json!({ "details": m.details }),
            })
            .collect(),
    }
}

/// The report of `records` (a reproduction's `runs/*.json`).
pub fn build(seed: Seed, budget: Budget, records: &[RunRecord], missing: usize) -> Report {
    // One dense model per (architecture, seed); rows by label.
    let mut dense: BTreeMap<(String, u64), &MethodResult> = BTreeMap::new();
    // Rows by (label, target): a label may run several targets (S4's p = 1…5).
    let mut groups: BTreeMap<(String, String), Vec<(&MethodResult, String, u64)>> = BTreeMap::new();
    let mut order = Vec::new();
    let mut models = Vec::new();
    for r in records {
        let Some(d) = r.results.first() else { continue };
        let model = model_of(d);
        if !models.contains(&model) {
            models.push(model.clone());
        }
        dense.entry((model.clone(), r.seed)).or_insert(d);
        for m in r.results.iter().skip(1) {
            let key = (m.label.clone(), m.target.to_string());
            if !groups.contains_key(&key) {
                order.push(key.clone());
            }
            groups
                .entry(key)
                .or_default()
                .push((m, model.clone(), r.seed));
        }
    }
    // The paper's method first, then its baselines as the file lists them.
    order.sort_by_key(|(l, _)| l != seed.method());
    let dense_train = |model: &str, seed: u64| {
        dense
            .get(&(model.to_string(), seed))
            .map(|d| train_seconds(d))
            .filter(|&t| t > 0.0)
    };
    let ours: Vec<Ours> = order
        .iter()
        .map(|key| {
            let rows = &groups[key];
            let members: Vec<&MethodResult> = rows.iter().map(|(m, _, _)| *m).collect();
            let dense_secs: Vec<Option<f64>> = rows
                .iter()
                .map(|(_, model, s)| dense_train(model, *s))
                .collect();
            let mut o = summarise(&key.0, &members, &dense_secs);
            o.model = rows[0].1.clone();
            o
        })
        .collect();
    // The main architecture (the paper's method's) first.
    if let Some(main) = ours.iter().find(|o| o.label == seed.method()) {
        models.sort_by_key(|m| *m != main.model);
    }
    let dense: Vec<Ours> = models
        .iter()
        .map(|model| {
            let members: Vec<&MethodResult> = dense
                .iter()
                .filter(|((m, _), _)| m == model)
                .map(|(_, d)| *d)
                .collect();
            let mut o = summarise(&format!("dense {model}"), &members, &[]);
            o.model = model.clone();
            o
        })
        .collect();
    let seeds = dense.first().map_or(0, |d| d.seeds);
    let title = format!(
        "{} reproduced at the `{}` budget — {} seed{}{}",
        seed.name().to_uppercase(),
        budget.name(),
        seeds,
        if seeds == 1 { "" } else { "s" },
        if missing > 0 {
            format!(" ({missing} runs missing)")
        } else {
            String::new()
        }
    );
    let verdict = verdict(seed, budget, dense.first(), &ours, records);
    Report {
        seed,
        budget,
        title,
        claim: published::claim(seed),
        dense,
        ours,
        published: published::rows(seed),
        verdict,
        missing,
    }
}
