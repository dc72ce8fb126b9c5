//! The report as Markdown (the table, the notes, the verdict) and as an
//! SVG scatter of Δ accuracy against FLOPs removed.

use super::rows::{Ours, Report, Stat};
use crate::report::plot::{COLOURS, escape};

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
