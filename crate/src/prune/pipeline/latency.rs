//! Latency targets: the per-layer latency table (measured, cached on disk)
//! and the calibration rounds that correct it against the clock.

use crate::base::error::Result;
use crate::model::ModelSpec;
use crate::prune::contract::Job;
use crate::prune::pruner::plan::Plan;
use crate::prune::pruner::select::{SelectOptions, UnitScores, select_units};
use crate::prune::pruner::surgery::cut;
use crate::prune::pruner::target::Target;
use burn::module::Module;

/// Each layer's time alone for `spec` at `batch` on `device`: the table
/// `latency=` targets are predicted from. Measured once per device and
/// model, then kept in memory (a sweep's runs share it) and, natively, in the
/// on-disk cache ([`crate::io::cache`], `cache` here) for later runs.
pub async fn latency_table(
    spec: &ModelSpec,
    batch: usize,
    device: &crate::base::device::OpenDevice,
    cache: Option<&std::path::Path>,
) -> Result<crate::prune::pruner::select::LatencyTable> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static MEMORY: OnceLock<Mutex<HashMap<String, crate::prune::pruner::select::LatencyTable>>> =
        OnceLock::new();
    let key = latency_key(spec, batch, device);
    let memory = MEMORY.get_or_init(Default::default);
    if let Some(table) = memory.lock().expect("not poisoned").get(&key) {
        return Ok(table.clone());
    }
    let table = match from_disk(cache, &key) {
        Some(table) => table,
        None => {
            let times = crate::metrics::latency::per_layer(spec, batch, &device.device, 10).await?;
            let table: crate::prune::pruner::select::LatencyTable =
                times.into_iter().map(|t| (t.name, t.ms)).collect();
            to_disk(cache, &key, &table);
            table
        }
    };
    memory
        .lock()
        .expect("not poisoned")
        .insert(key, table.clone());
    Ok(table)
}

/// The table the on-disk cache holds for `key` (never, in the browser).
fn from_disk(
    cache: Option<&std::path::Path>,
    key: &str,
) -> Option<crate::prune::pruner::select::LatencyTable> {
    #[cfg(not(target_arch = "wasm32"))]
    return cache.and_then(|dir| crate::io::cache::read(dir, "latency", key));
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (cache, key);
        None
    }
}

/// Keeps `table` in the on-disk cache (nowhere, in the browser).
fn to_disk(
    cache: Option<&std::path::Path>,
    key: &str,
    table: &crate::prune::pruner::select::LatencyTable,
) {
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(dir) = cache {
        crate::io::cache::write(dir, "latency", key, table);
    }
    #[cfg(target_arch = "wasm32")]
    let _ = (cache, key, table);
}

/// What a latency table depends on: the build, the device, the batch and
/// the architecture.
pub fn latency_key(
    spec: &ModelSpec,
    batch: usize,
    device: &crate::base::device::OpenDevice,
) -> String {
    format!(
        "prunelab {} · {} · batch {batch} · {}",
        env!("CARGO_PKG_VERSION"),
        device.description,
        serde_json::to_string(spec).expect("plain data"),
    )
}

/// The cache directory the pipeline uses (none in the browser).
pub(super) fn cache_dir() -> Option<std::path::PathBuf> {
    #[cfg(not(target_arch = "wasm32"))]
    return crate::io::cache::dir();
    #[cfg(target_arch = "wasm32")]
    None
}

/// A `latency=t` target met on the clock, not only in prediction: the
/// table's prediction picks a first plan; the cut model's measured time
/// (eval mode, the training batch, median of 5 after 2 warm-ups) then
/// corrects the aim by what is still missing, up to 4 rounds or until the
/// measured reduction is within 0.02 of `t`. The time a cut cannot shrink
/// (BN, activations, pooling, the adds, per-call overhead) is what the
/// table's per-layer prediction misses; every round is in `details`.
pub(super) async fn calibrated(
    job: &Job<'_>,
    scores: &UnitScores,
    options: &SelectOptions,
    want: f64,
    details: &mut serde_json::Value,
) -> Result<Plan> {
    let spec = &job.model.spec;
    let dense = job.model.valid();
    let device = dense.device();
    let x = crate::metrics::latency::inputs(job.split, job.train.batch_size, &device);
    let dense_ms = crate::metrics::latency::forward_ms(&dense, x.clone(), 2, 5).await?;
    let table = options
        .latency
        .as_ref()
        .expect("a latency target has its table");
    let (mut aim, mut rounds, mut best) = (want, Vec::new(), None);
    for _ in 0..4 {
        let plan = match select_units(spec, scores, &Target::Latency(aim as f32), options) {
            Ok(plan) => plan,
            // The aim outgrew what the layer limits allow: keep the last plan.
            Err(_) if best.is_some() => break,
            Err(e) => return Err(e),
        };
        let cut_model = cut(&job.model, &plan)?.valid();
        let ms = crate::metrics::latency::forward_ms(&cut_model, x.clone(), 2, 5).await?;
        let measured = 1.0 - ms / dense_ms;
        rounds.push(serde_json::json!({
            "aim": aim,
            "predicted": crate::prune::pruner::select::predicted_latency_reduction(spec, &plan, table),
            "measured": measured,
        }));
        best = Some(plan);
        if measured + 0.02 >= want {
            break;
        }
        aim = (aim + (want - measured)).min(0.99);
    }
    details["latency_calibration"] = serde_json::Value::Array(rounds);
    Ok(best.expect("at least one round"))
}
