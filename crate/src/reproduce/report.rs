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
    pub seeds: usize,
    /// Percent.
    pub accuracy: Stat,
    /// Points against our own dense model of the same seed.
    pub delta: Stat,
    pub params_removed: Stat,
    pub flops_removed: Stat,
    /// Bytes to ship the model, removed (the weight methods' "bandwidth").
    pub bytes_removed: Stat,
    /// Measured forward speed-up over the dense model at the training batch.
    pub speedup: Option<Stat>,
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
    pub dense: Option<Ours>,
    pub ours: Vec<Ours>,
    pub published: Vec<Published>,
    pub verdict: String,
    /// Runs of the sweep not (yet) in the results.
    pub missing: usize,
}

fn train_seconds(m: &MethodResult) -> f64 {
    m.history.iter().map(|h| h.seconds).sum()
}

fn summarise(label: &str, members: &[&MethodResult]) -> Ours {
    let stat = |f: &dyn Fn(&MethodResult) -> f64| {
        Stat::of(&members.iter().map(|m| f(m)).collect::<Vec<_>>()).unwrap_or(Stat {
            mean: f64::NAN,
            sd: 0.0,
        })
    };
    let speedups: Option<Vec<f64>> = members.iter().map(|m| m.speedup).collect();
    let energy: Option<Vec<f64>> = members.iter().map(|m| m.metered.energy_j).collect();
    Ours {
        label: label.to_string(),
        method: members[0].method.clone(),
        target: members[0].target.clone(),
        seeds: members.len(),
        accuracy: stat(&|m| 100.0 * m.test_accuracy as f64),
        delta: stat(&|m| m.delta_vs_dense as f64),
        params_removed: stat(&|m| m.params_reduction),
        flops_removed: stat(&|m| m.macs_reduction),
        bytes_removed: stat(&|m| m.bytes_reduction),
        speedup: speedups.and_then(|v| Stat::of(&v)),
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
    let mut dense: BTreeMap<u64, &MethodResult> = BTreeMap::new();
    let mut groups: BTreeMap<String, Vec<&MethodResult>> = BTreeMap::new();
    let mut order = Vec::new();
    for r in records {
        if let Some(d) = r.results.first() {
            dense.entry(r.seed).or_insert(d);
        }
        for m in r.results.iter().skip(1) {
            if !groups.contains_key(&m.label) {
                order.push(m.label.clone());
            }
            groups.entry(m.label.clone()).or_default().push(m);
        }
    }
    // The paper's method first, then its baselines as the file lists them.
    order.sort_by_key(|l| l != seed.method());
    let ours: Vec<Ours> = order.iter().map(|l| summarise(l, &groups[l])).collect();
    let dense_members: Vec<&MethodResult> = dense.values().copied().collect();
    let dense = (!dense_members.is_empty()).then(|| summarise("dense", &dense_members));
    let seeds = dense_members.len();
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
    let verdict = verdict(seed, budget, dense.as_ref(), &ours);
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

/// One honest line: what our run of the paper's method achieved at this
/// budget, beside what the paper reports at its own.
fn verdict(seed: Seed, budget: Budget, dense: Option<&Ours>, ours: &[Ours]) -> String {
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
    // The best baseline at the same target, for "better than related methods".
    let baseline = ours
        .iter()
        .filter(|o| o.label != main.label && o.target == main.target)
        .max_by(|a, b| a.delta.mean.total_cmp(&b.delta.mean));
    let against = baseline.map_or(String::new(), |o| {
        format!(
            "; the best baseline at the same target ({}) {}",
            o.label,
            loses(o.delta.mean)
        )
    });
    match seed {
        Seed::S1 => format!(
            "at the {b} budget S1 {} at −{} parameters (−{} FLOPs) in one pass{against}; \
             the paper: ~50% of connections for < 1 pt",
            loses(main.delta.mean),
            pct(main.params_removed.mean),
            pct(main.flops_removed.mean)
        ),
        Seed::S2 => {
            let saving: Vec<f64> = main
                .details
                .iter()
                .filter_map(|d| {
                    let selected = d["details"]["selected"]["delta"].as_f64()?;
                    d["details"]["best"].as_array()?.iter().find_map(|b| {
                        (b["delta"].as_f64()? == selected)
                            .then(|| b["saving_vs_magnitude"].as_f64())
                            .flatten()
                    })
                })
                .collect();
            let saved = Stat::of(&saving).map_or(
                "not measured (no δ = 0 point met the target)".into(),
                |s| format!("{} ± {}", pct(s.mean), pct(s.sd)),
            );
            format!(
                "at the {b} budget FlexRel ships {} fewer bytes than the dense model and saves {saved} \
                 against magnitude-only at the same accuracy target ({} vs our dense); the paper: > 35% on VGG-16/ImageNet",
                pct(main.bytes_removed.mean),
                loses(main.delta.mean)
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
        Seed::S4 => {
            let faster = dense
                .filter(|_| main.train_seconds.mean > 0.0)
                .map(|d| d.train_seconds.mean / main.train_seconds.mean);
            format!(
                "at the {b} budget S4 {} at −{} FLOPs, training {}{against}; \
                 the paper: accuracy ≥ dense at −45% FLOPs, 2.03× faster training",
                loses(main.delta.mean),
                pct(main.flops_removed.mean),
                faster.map_or("time not measured".into(), |f| format!("{f:.2}× faster"))
            )
        }
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
        md += "| row | source | accuracy (%) | Δ vs dense (pts) | params removed | FLOPs removed | speed-up (measured) | training (s) | energy |\n";
        md += "|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
        let p1 = |v: f64| format!("{v:.2}");
        let share = |v: f64| format!("{:.1}%", 100.0 * v);
        let times = |v: f64| format!("{v:.2}×");
        let secs = |v: f64| format!("{v:.0}");
        let mut row = |name: &str, o: &Ours, src: &str| {
            md += &format!(
                "| {name} | {src} | {} | {} | {} | {} | {} | {} | {} |\n",
                cell(Some(o.accuracy), &p1),
                if name == "dense" {
                    "–".into()
                } else {
                    cell(Some(o.delta), &p1)
                },
                cell(Some(o.params_removed), &share),
                cell(Some(o.flops_removed), &share),
                cell(o.speedup, &times),
                cell(Some(o.train_seconds), &secs),
                cell(o.energy_joules, &|j| format!("{j:.0} J")),
            );
        };
        if let Some(d) = &self.dense {
            row("dense", d, "ours");
        }
        for o in &self.ours {
            row(&format!("{} ({})", o.label, o.target), o, "ours");
        }
        for p in &self.published {
            md += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | – | – |\n",
                p.setting,
                p.source,
                opt(p.accuracy, &p1),
                opt(p.delta, &p1),
                opt(p.params_removed, &share),
                opt(p.flops_removed, &share),
                opt(p.speedup, &times),
            );
        }
        md += "\n";
        for p in self.published.iter().filter(|p| !p.note.is_empty()) {
            md += &format!("- {}: {}\n", p.source, p.note);
        }
        md += &format!(
            "- Mean ± standard deviation over seeds; Δ against our own dense model of the same seed; \
             energy where the device meters it (NVML, RAPL; docs/metrics.md), else `–`.\n\n**Verdict:** {}\n",
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
