//! The report's verdict: one honest line on what our run of the paper's
//! method achieved at this budget, beside what the paper reports — with
//! the separation from each baseline judged against the seeds' spread.

use std::collections::BTreeMap;

use super::rows::{Ours, Stat};
use super::{Budget, Seed};
use crate::report::MethodResult;
use crate::runs::sweep::RunRecord;

pub(super) fn pct(s: f64) -> String {
    format!("{:.1}%", 100.0 * s)
}

/// The paper's method against each baseline at its target: the difference
/// of mean Δ and whether it exceeds the seeds' spread (the two standard
/// deviations added), so a table never ranks within the noise.
fn separations(main: &Ours, ours: &[Ours]) -> String {
    let parts: Vec<String> = ours
        .iter()
        .filter(|o| o.label != main.label && o.target == main.target && o.model == main.model)
        .map(|o| {
            let gap = main.delta.mean - o.delta.mean;
            let spread = main.delta.sd + o.delta.sd;
            let word = if main.seeds < 2 || o.seeds < 2 {
                "one seed: no spread to judge by"
            } else if gap.abs() > spread {
                if gap > 0.0 { "beats it" } else { "loses to it" }
            } else {
                "within the spread"
            };
            format!("vs {} {gap:+.2} pts (spread {spread:.2}: {word})", o.label)
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join(", "))
    }
}

/// S2's saving, seed by seed on the **test** rows: 1 − bytes(FlexRel) /
/// bytes(magnitude-only, the δ = 0 row of the same seed and target), with
/// both rows' test accuracies (the target was chosen on validation data).
fn s2_saving(records: &[RunRecord]) -> Option<(Stat, Stat, Stat)> {
    let mut by_seed: BTreeMap<u64, (Option<&MethodResult>, Option<&MethodResult>)> =
        BTreeMap::new();
    for r in records {
        for m in r.results.iter().skip(1) {
            let e = by_seed.entry(r.seed).or_default();
            if m.label == "flexrel" {
                e.0 = Some(m);
            } else if m.label.starts_with("magnitude-only") {
                e.1 = Some(m);
            }
        }
    }
    let pairs: Vec<(&MethodResult, &MethodResult)> = by_seed
        .values()
        .filter_map(|(f, m)| Some(((*f)?, (*m)?)))
        .collect();
    let saving: Vec<f64> = pairs
        .iter()
        .map(|(f, m)| 1.0 - f.bytes as f64 / m.bytes.max(1) as f64)
        .collect();
    let acc = |pick: &dyn Fn(&(&MethodResult, &MethodResult)) -> f32| {
        Stat::of(
            &pairs
                .iter()
                .map(|p| 100.0 * pick(p) as f64)
                .collect::<Vec<_>>(),
        )
    };
    Some((
        Stat::of(&saving)?,
        acc(&|p| p.0.test_accuracy)?,
        acc(&|p| p.1.test_accuracy)?,
    ))
}

/// S2's grid, as its first run chose it: the δs and factors swept and what
/// one factor step either side of the chosen one would ship.
fn s2_grid(main: &Ours) -> String {
    let Some(d) = main.details.first().map(|d| &d["details"]) else {
        return String::new();
    };
    let list = |v: &serde_json::Value| {
        v.as_array().map_or(String::new(), |a| {
            a.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    let chosen = d["selected"]["bytes"].as_f64().unwrap_or(f64::NAN);
    let step = |side: &str| {
        d["grid"][side]["bytes"].as_f64().map(|b| {
            format!(
                "{} {:+.1}% bytes",
                d["grid"][side]["factor"],
                100.0 * (b / chosen - 1.0)
            )
        })
    };
    let steps: Vec<String> = ["below", "above"].iter().filter_map(|s| step(s)).collect();
    format!(
        " The grid: δ ∈ {{{}}}, factors {{{}}}; one factor step from the choice ships {}.",
        list(&d["grid"]["deltas"]),
        list(&d["grid"]["factors"]),
        if steps.is_empty() {
            "–".into()
        } else {
            steps.join(" / ")
        }
    )
}

/// One honest line: what our run of the paper's method achieved at this
/// budget, beside what the paper reports at its own.
pub(super) fn verdict(
    seed: Seed,
    budget: Budget,
    dense: Option<&Ours>,
    ours: &[Ours],
    records: &[RunRecord],
) -> String {
    let Some(main) = ours.iter().find(|o| o.label == seed.method()) else {
        return format!("no {} row finished yet", seed.method());
    };
    let b = budget.name();
    let loses = |d: f64| {
        if d < 0.0 {
            format!("loses {:.2} pts", -d)
        } else {
            format!("gains {d:.2} pts")
        }
    };
    let against = separations(main, ours);
    match seed {
        Seed::S1 => format!(
            "at the {b} budget S1 {} at −{} parameters (−{} FLOPs) in one pass{against}; \
             the paper: ~50% of connections for < 1 pt",
            loses(main.delta.mean),
            pct(main.params_removed.mean),
            pct(main.flops_removed.mean)
        ),
        Seed::S2 => {
            let saved = s2_saving(records).map_or(
                "not measured (no seed has both a FlexRel and a magnitude-only row)".into(),
                |(s, f, m)| {
                    format!(
                        "{} ± {} fewer bytes than magnitude-only on the test rows (FlexRel {:.2} ± {:.2}%, \
                         magnitude-only {:.2} ± {:.2}% test accuracy)",
                        pct(s.mean),
                        pct(s.sd),
                        f.mean,
                        f.sd,
                        m.mean,
                        m.sd
                    )
                },
            );
            format!(
                "at the {b} budget FlexRel ships {} fewer bytes than the dense model ({} vs our dense) and {saved}; \
                 the paper: > 35% on VGG-16/ImageNet.{}",
                pct(main.bytes_removed.mean),
                loses(main.delta.mean),
                s2_grid(main)
            )
        }
        Seed::S3 => format!(
            "at the {b} budget S3 {} at −{} FLOPs / −{} parameters{against}; \
             the paper: 94.13% at −40.4% / −45.9% (dense not published){}",
            loses(main.delta.mean),
            pct(main.flops_removed.mean),
            pct(main.params_removed.mean),
            dense.map_or(String::new(), |d| format!(
                "; our dense model: {:.2}%",
                d.accuracy.mean
            ))
        ),
        Seed::S4 => format!(
            "at the {b} budget S4 {} at −{} FLOPs, training {}{against}; \
             the paper: accuracy ≥ dense at −45% FLOPs, 2.03× faster training",
            loses(main.delta.mean),
            pct(main.flops_removed.mean),
            main.train_speedup
                .map_or("time not measured".into(), |f| format!(
                    "{:.2}× faster than the dense model",
                    f.mean
                ))
        ),
    }
}
