//! The comparison table as Markdown and CSV.

use super::MethodResult;
use super::human;

fn pct(v: f64) -> String {
    format!("{:.1}%", 100.0 * v)
}

/// A Markdown table, one row per method, the dense run first.
pub fn markdown(title: &str, rows: &[MethodResult]) -> String {
    let mut out = format!(
        "## {title}\n\n| method | target | test acc. | Δ vs dense | params | params ↓ | MACs | MACs ↓ | bytes | wall s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in rows {
        out += &format!(
            "| {} | {} | {:.2}% | {:+.2} | {} | {} | {} | {} | {} | {:.1} |\n",
            r.label,
            r.target,
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
bytes is the smallest of dense, bitmap and CSR per layer (docs/metrics.md).\n";
    out
}

/// The same as CSV with raw numbers.
pub fn csv(rows: &[MethodResult]) -> String {
    let mut out = String::from(
        "method,label,target,test_accuracy,delta_vs_dense,params,nonzero_params,params_reduction,macs,macs_reduction,bytes,bytes_reduction,wall_seconds,train_epochs\n",
    );
    for r in rows {
        let label = r.label.replace(['"', ','], " ");
        out += &format!(
            "{},{},{},{:.6},{:.4},{},{},{:.6},{},{:.6},{},{:.6},{:.3},{}\n",
            r.method,
            label,
            r.target,
            r.test_accuracy,
            r.delta_vs_dense,
            r.params,
            r.nonzero_params,
            r.params_reduction,
            r.macs,
            r.macs_reduction,
            r.bytes,
            r.bytes_reduction,
            r.wall_seconds,
            r.train_epochs
        );
    }
    out
}
