//! A reproduction's report: our rows (mean ± spread over seeds) beside the
//! paper's and the closest published baselines', in the same columns, with
//! the budget in the title and a verdict line that says how far apart they
//! are. Markdown for people, JSON for tools, SVG for the page.

use std::collections::BTreeMap;

use serde::Serialize;

use super::published::{self, Published};
use super::{Budget, Seed};
use crate::report::MethodResult;
use crate::report::plot::{COLOURS, escape};
use crate::sweep::RunRecord;

/// Mean and spread (sample standard deviation; 0 for one seed).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub sd: f64,
}

impl Stat {
    fn of(values: &[f64]) -> Option<Stat> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Some(Stat { mean, sd })
    }
}

/// One of our rows, over the seeds that ran it.
#[derive(Debug, Clone, Serialize)]
pub struct Ours {
    pub label: String,
    pub method: String,
    pub target: String,
    /// The architecture (a reproduction may run more than one: S4).
    pub model: String,
    /// How it ranked and what it trained after pruning (the first seed's;
    /// the same for every seed of a row).
    pub scope: String,
    pub recipe: String,
    pub seeds: usize,
    /// Percent.
    pub accuracy: Stat,
    /// Points against our own dense model of the same seed.
    pub delta: Stat,
    pub params_removed: Stat,
    pub flops_removed: Stat,
    /// Bytes to ship the model, removed (the weight methods' "bandwidth").
    pub bytes_removed: Stat,
    /// Measured forward (inference) speed-up over the dense model at the
    /// training batch, both timed in one process in alternation.
    pub speedup: Option<Stat>,
    /// Training time of the dense model over this row's, for rows that
    /// train the whole budget themselves (at initialisation: S4's claim).
    pub train_speedup: Option<Stat>,
    /// Where the cut went, per stage (S3: the kept widths; S4: the blocks
    /// removed), averaged over seeds.
    pub structure: Option<String>,
    /// Seconds of training (the dense model's own, or the method's training
    /// and fine-tuning), from the epochs' clocks.
    pub train_seconds: Stat,
    /// Not metered by this build (docs/metrics.md).
    pub energy_joules: Option<Stat>,
    /// What the method reports about itself (S2: bandwidth saved against
    /// δ = 0; S4: the winning-ticket test).
    pub details: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub seed: Seed,
    pub budget: Budget,
    pub title: String,
    pub claim: &'static str,
    /// Our dense model of each architecture the reproduction runs (the
    /// paper's first).
    pub dense: Vec<Ours>,
    pub ours: Vec<Ours>,
    pub published: Vec<Published>,
    pub verdict: String,
    /// Runs of the sweep not (yet) in the results.
    pub missing: usize,
}

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
            let key = (m.label.clone(), m.target.clone());
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

fn pct(s: f64) -> String {
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
fn verdict(
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

fn cell(s: Option<Stat>, f: &dyn Fn(f64) -> String) -> String {
    match s {
        Some(s) if s.mean.is_finite() && s.sd > 0.0 => format!("{} ± {}", f(s.mean), f(s.sd)),
        Some(s) if s.mean.is_finite() => f(s.mean),
        _ => "–".into(),
    }
}

fn opt(v: Option<f64>, f: &dyn Fn(f64) -> String) -> String {
    v.map_or("–".into(), f)
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut md = format!("### {}\n\n", self.title);
        md += &format!("The paper's claim: {}.\n\n", self.claim);
        md += "| row | model | ranking | trained after pruning | accuracy (%) | Δ vs dense (pts) | params removed | FLOPs removed | inference speed-up (measured) | training speed-up | training (s) | energy |\n";
        md += "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
        let p1 = |v: f64| format!("{v:.2}");
        let share = |v: f64| format!("{:.1}%", 100.0 * v);
        let times = |v: f64| format!("{v:.2}×");
        let secs = |v: f64| format!("{v:.0}");
        let mut row = |name: &str, o: &Ours, dense: bool| {
            md += &format!(
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                o.model,
                if dense { "–" } else { o.scope.as_str() },
                if dense { "–" } else { o.recipe.as_str() },
                cell(Some(o.accuracy), &p1),
                if dense {
                    "–".into()
                } else {
                    cell(Some(o.delta), &p1)
                },
                cell(Some(o.params_removed), &share),
                cell(Some(o.flops_removed), &share),
                if dense {
                    "–".into()
                } else {
                    cell(o.speedup, &times)
                },
                cell(o.train_speedup, &times),
                cell(Some(o.train_seconds), &secs),
                cell(o.energy_joules, &|j| format!("{j:.0} J")),
            );
        };
        for d in &self.dense {
            row(&d.label, d, true);
        }
        for o in &self.ours {
            row(&format!("{} ({})", o.label, o.target), o, false);
        }
        for p in &self.published {
            md += &format!(
                "| {} | {} | – | – | {} | {} | {} | {} | {} | {} | – | – |\n",
                p.setting,
                p.source,
                opt(p.accuracy, &p1),
                opt(p.delta, &p1),
                opt(p.params_removed, &share),
                opt(p.flops_removed, &share),
                opt(p.speedup, &times),
                opt(p.train_speedup, &times),
            );
        }
        md += "\n";
        for o in self.ours.iter().filter(|o| o.structure.is_some()) {
            md += &format!(
                "- {} ({}): {}\n",
                o.label,
                o.target,
                o.structure.as_deref().unwrap_or_default()
            );
        }
        for p in self.published.iter().filter(|p| !p.note.is_empty()) {
            md += &format!("- {}: {}\n", p.source, p.note);
        }
        md += &format!(
            "- Mean ± standard deviation over seeds; Δ against our own dense model of the same seed and \
             architecture; inference speed-up: the dense and the pruned model timed in one process, in turn \
             (median of the per-round ratios); training speed-up: the dense model's training time over the \
             row's, for rows that train the whole budget; energy where the device meters it (NVML, RAPL; \
             docs/metrics.md), else `–`.\n\n**Verdict:** {}\n",
            self.verdict
        );
        md
    }

    /// Δ accuracy against FLOPs removed: ours as filled circles (with the
    /// seeds' spread), the published rows as open squares.
    pub fn svg(&self) -> String {
        const W: f64 = 640.0;
        const H: f64 = 400.0;
        let (l, r, t, b) = (60.0, 20.0, 34.0, 50.0);
        let points: Vec<(String, f64, f64, f64, bool)> = self
            .ours
            .iter()
            .map(|o| {
                (
                    o.label.clone(),
                    o.flops_removed.mean,
                    o.delta.mean,
                    o.delta.sd,
                    true,
                )
            })
            .chain(self.published.iter().filter_map(|p| {
                Some((p.source.to_string(), p.flops_removed?, p.delta?, 0.0, false))
            }))
            .filter(|p| p.1.is_finite() && p.2.is_finite())
            .collect();
        let (lo, hi) = points.iter().fold((-1.0f64, 1.0f64), |(lo, hi), p| {
            (lo.min(p.2 - p.3 - 0.5), hi.max(p.2 + p.3 + 0.5))
        });
        let x = |f: f64| l + f * (W - l - r);
        let y = |d: f64| H - b - (d - lo) / (hi - lo) * (H - t - b);
        let mut svg = format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="system-ui, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{l}" y="20" font-size="14">{}</text>
<line x1="{l}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#888" stroke-dasharray="4 3"/>
<text x="{:.1}" y="{:.1}" text-anchor="middle">FLOPs removed</text>
<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">Δ accuracy vs dense (pts)</text>
"##,
            escape(&self.title.replace('`', "")),
            y(0.0),
            W - r,
            y(0.0),
            (W + l) / 2.0,
            H - 12.0,
            H / 2.0,
            H / 2.0,
        );
        for i in 0..=5 {
            let f = i as f64 / 5.0;
            svg += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{:.0}%</text>\n",
                x(f),
                H - b + 16.0,
                100.0 * f
            );
            let d = lo + f * (hi - lo);
            svg += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{d:+.1}</text>\n",
                l - 6.0,
                y(d) + 4.0
            );
        }
        for (i, (label, f, d, sd, ours)) in points.iter().enumerate() {
            let (px, py) = (x(*f), y(*d));
            let c = COLOURS[i % COLOURS.len()];
            let name = escape(label);
            if *ours {
                if *sd > 0.0 {
                    svg += &format!(
                        "<line x1=\"{px:.1}\" y1=\"{:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"{c}\"/>",
                        y(d - sd),
                        y(d + sd)
                    );
                }
                svg += &format!(
                    "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"5\" fill=\"{c}\"><title>{name}</title></circle>"
                );
            } else {
                svg += &format!(
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"><title>{name} (published)</title></rect>",
                    px - 5.0,
                    py - 5.0
                );
            }
            svg += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\">{name}</text>\n",
                px + 8.0,
                py - 6.0
            );
        }
        svg += "</svg>\n";
        svg
    }
}
