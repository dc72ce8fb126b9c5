//! The comparison table as Markdown and CSV.

use super::MethodResult;
use super::human;

fn pct(v: f64) -> String {
    format!("{:.1}%", 100.0 * v)
}

/// A Markdown table, one row per method, the dense run first.
pub fn markdown(title: &str, rows: &[MethodResult]) -> String {
    let mut out = format!(
        "## {title}\n\n| method | target | ranking | trained after pruning | test acc. | Δ vs dense | params | params ↓ | MACs | MACs ↓ | bytes | latency ms (1 / batch) | speed-up [IQR] (MACs predict) | wall s |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in rows {
        let latency = r.latency.map_or("-".into(), |l| {
            format!("{:.2} / {:.1}", l.batch1_ms, l.batch_ms)
        });
        let spread = r
            .paired
            .map_or(String::new(), |p| format!(" [{:.2}–{:.2}]", p.lo, p.hi));
        let speedup = r.speedup.map_or("-".into(), |s| {
            format!(
                "{s:.2}×{spread} ({:.2}×)",
                1.0 / (1.0 - r.macs_reduction).max(1e-9)
            )
        });
        out += &format!(
            "| {} | {} | {} | {} | {:.2}% | {:+.2} | {} | {} | {} | {} | {} | {latency} | {speedup} | {:.1} |\n",
            r.label,
            r.target,
            r.scope,
            r.recipe,
            100.0 * r.test_accuracy,
            r.delta_vs_dense,
            human(r.nonzero_params as f64),
            pct(r.params_reduction),
            human(r.macs as f64),
            pct(r.macs_reduction),
            human(r.bytes as f64),
            r.wall_seconds
        );
    }
    out += "\nparams counts non-zero parameters; MACs are dense multiply-accumulates of the (cut) network; \
bytes is the smallest of dense, bitmap and CSR per layer; latency is the median forward pass on the run's \
device at batch 1 and at the training batch, and speed-up the dense row's over this row's at the training batch, \
timed in the same process as this row's model, one pass each in turn (median ratio, interquartile range in brackets), \
beside what the MACs predict (docs/metrics.md). Every row fine-tunes with the same recipe unless its \"trained after pruning\" \
cell says otherwise (docs/methods.md, \"One recipe per comparison\").\n";
    out
}

/// The same as CSV with raw numbers.
pub fn csv(rows: &[MethodResult]) -> String {
    let mut out = String::from(
        "method,label,target,scope,recipe,test_accuracy,delta_vs_dense,params,nonzero_params,params_reduction,macs,macs_reduction,bytes,bytes_reduction,latency_batch1_ms,latency_batch_ms,speedup,wall_seconds,train_epochs\n",
    );
    for r in rows {
        let label = r.label.replace(['"', ','], " ");
        out += &format!(
            "{},{},{},{},{},{:.6},{:.4},{},{},{:.6},{},{:.6},{},{:.6},{},{},{},{:.3},{}\n",
            r.method,
            label,
            r.target,
            r.scope.replace(',', ";"),
            r.recipe.replace(',', ";"),
            r.test_accuracy,
            r.delta_vs_dense,
            r.params,
            r.nonzero_params,
            r.params_reduction,
            r.macs,
            r.macs_reduction,
            r.bytes,
            r.bytes_reduction,
            r.latency
                .map_or(String::new(), |l| format!("{:.4}", l.batch1_ms)),
            r.latency
                .map_or(String::new(), |l| format!("{:.4}", l.batch_ms)),
            r.speedup.map_or(String::new(), |s| format!("{s:.4}")),
            r.wall_seconds,
            r.train_epochs
        );
    }
    out
}
