//! Accuracy against MACs as a self-contained SVG (no scripts, no fonts to fetch).

use super::MethodResult;

const W: f64 = 640.0;
const H: f64 = 420.0;
const PAD: (f64, f64, f64, f64) = (60.0, 20.0, 30.0, 50.0); // left, right, top, bottom
pub(crate) const COLOURS: &[&str] = &[
    "#1971c2", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0ca678", "#c2255c", "#5c940d",
    "#1098ad", "#6741d9",
];

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One point per row at (MACs, accuracy); the dense run is a black diamond.
pub fn accuracy_vs_macs(title: &str, rows: &[MethodResult]) -> String {
    let max_macs = rows.iter().map(|r| r.macs).max().unwrap_or(1).max(1) as f64;
    let (lo, hi) = rows.iter().fold((1.0f64, 0.0f64), |(l, h), r| {
        (l.min(r.test_accuracy as f64), h.max(r.test_accuracy as f64))
    });
    let (lo, hi) = ((lo - 0.05).max(0.0), (hi + 0.02).min(1.0).max(lo + 0.05));
    let x = |m: f64| PAD.0 + (m / (max_macs * 1.05)) * (W - PAD.0 - PAD.1);
    let y = |a: f64| H - PAD.3 - (a - lo) / (hi - lo) * (H - PAD.2 - PAD.3);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="system-ui, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="18" font-size="14">{}</text>
<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#888"/><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#888"/>
<text x="{}" y="{}" text-anchor="middle">MACs (fraction of dense)</text>
<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">test accuracy</text>
"##,
        PAD.0,
        escape(title),
        PAD.0,
        H - PAD.3,
        W - PAD.1,
        H - PAD.3,
        PAD.0,
        PAD.2,
        PAD.0,
        H - PAD.3,
        (W + PAD.0) / 2.0,
        H - 12.0,
        H / 2.0,
        H / 2.0
    );
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        svg += &format!(
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{:.2}</text>"##,
            x(f * max_macs),
            H - PAD.3 + 16.0,
            f
        );
        let a = lo + f * (hi - lo);
        svg += &format!(
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{:.1}%</text>"##,
            PAD.0 - 6.0,
            y(a) + 4.0,
            100.0 * a
        );
        svg += "\n";
    }
    for (i, r) in rows.iter().enumerate() {
        let (px, py) = (x(r.macs as f64), y(r.test_accuracy as f64));
        let label = escape(&format!("{} ({})", r.label, r.target));
        if r.method == "dense" {
            svg += &format!(
                r##"<path d="M{px:.1} {:.1} l6 6 l-6 6 l-6 -6 z" fill="black"><title>{label}</title></path>"##,
                py - 6.0
            );
        } else {
            let c = COLOURS[i % COLOURS.len()];
            svg += &format!(
                r##"<circle cx="{px:.1}" cy="{py:.1}" r="5" fill="{c}"><title>{label}</title></circle>"##
            );
        }
        svg += &format!(
            r##"<text x="{:.1}" y="{:.1}" fill="#333">{}</text>"##,
            px + 8.0,
            py - 6.0,
            escape(&r.label)
        );
        svg += "\n";
    }
    svg += "</svg>\n";
    svg
}
