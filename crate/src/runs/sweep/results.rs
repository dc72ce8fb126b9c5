//! A sweep's results: each run's record under `runs/<id>.json`, the
//! manifest (`sweep.json`) that lists every run, what is still missing, and
//! the merged table — written and read here, nowhere else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::{SweepConfig, SweepRun};
use crate::base::error::{Error, Result};
use crate::prune::Target;
use crate::report::MethodResult;

/// What `runs/<id>.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub prunelab: String,
    pub sweep: String,
    pub id: String,
    pub seed: u64,
    pub shard: String,
    pub device: String,
    /// The dense reference first, then the method.
    pub results: Vec<MethodResult>,
}

/// `sweep.json`: the whole list of a sweep's runs, so `--collect` can say
/// which are still missing. (Fields in alphabetical order: the file is the
/// same bytes as before it was typed.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub runs: Vec<ManifestRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestRun {
    pub id: String,
    pub label: String,
    pub method: String,
    pub seed: u64,
    pub target: Target,
}

impl Manifest {
    pub fn of(config: &SweepConfig, runs: &[SweepRun]) -> Manifest {
        Manifest {
            name: config.name.clone(),
            runs: runs
                .iter()
                .map(|r| ManifestRun {
                    id: r.id.clone(),
                    label: r.label.clone(),
                    method: r.method.clone(),
                    seed: r.seed,
                    target: r.target,
                })
                .collect(),
        }
    }

    /// Where it lives under a sweep's `out`.
    pub fn path(out: &Path) -> PathBuf {
        out.join("sweep.json")
    }

    /// The manifest under `out`, if there is a readable one.
    pub fn read(out: &Path) -> Option<Manifest> {
        let text = std::fs::read_to_string(Manifest::path(out)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Where a run's result lives under `out`.
pub fn result_path(out: &Path, id: &str) -> PathBuf {
    out.join("runs").join(format!("{id}.json"))
}

/// Reads every published result under `out/runs` (temporary files skipped).
/// A sweep's results as they stand: the records of the runs its
/// `sweep.json` lists, the listed runs with no record yet, and how many
/// records were left out as not listed (an earlier version of the file).
/// Without a `sweep.json`, every record counts.
pub struct Current {
    pub records: Vec<RunRecord>,
    pub missing: Vec<String>,
    pub stale: usize,
}

pub fn current(out: &Path) -> Result<Current> {
    let mut records = read_records(out)?;
    let expected = manifest_ids(out);
    let before = records.len();
    if !expected.is_empty() {
        records.retain(|r| expected.contains(&r.id));
    }
    let present: std::collections::BTreeSet<&String> = records.iter().map(|r| &r.id).collect();
    let missing = expected
        .iter()
        .filter(|id| !present.contains(id))
        .cloned()
        .collect();
    Ok(Current {
        stale: before - records.len(),
        records,
        missing,
    })
}

/// The run ids a sweep's `sweep.json` lists (empty when it is missing).
fn manifest_ids(out: &Path) -> std::collections::BTreeSet<String> {
    Manifest::read(out)
        .map(|m| m.runs.into_iter().map(|r| r.id).collect())
        .unwrap_or_default()
}

pub fn read_records(out: &Path) -> Result<Vec<RunRecord>> {
    let dir = out.join("runs");
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut records = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let record: RunRecord = serde_json::from_str(&text).map_err(|e| Error::BadCheckpoint {
            path: path.clone(),
            problem: format!("not a sweep result ({e}); delete it and re-run its shard"),
        })?;
        records.push(record);
    }
    records.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(records)
}

/// The merged table: one dense row per seed, then every run's method row;
/// and the same averaged over seeds (label and target), for the summary.
pub fn collect(records: &[RunRecord]) -> (Vec<MethodResult>, Vec<MethodResult>) {
    let mut dense_by_seed = BTreeMap::new();
    let mut rows = Vec::new();
    for r in records {
        if let Some(d) = r.results.first() {
            dense_by_seed.entry(r.seed).or_insert_with(|| d.clone());
        }
        rows.extend(r.results.iter().skip(1).cloned().map(|mut m| {
            m.label = format!("{} s{}", m.label, r.seed);
            m
        }));
    }
    let mut all: Vec<MethodResult> = dense_by_seed
        .iter()
        .map(|(seed, d)| {
            let mut d = d.clone();
            d.label = format!("dense s{seed}");
            d
        })
        .collect();
    all.extend(rows);

    let mut groups: BTreeMap<(String, String), Vec<&MethodResult>> = BTreeMap::new();
    for d in dense_by_seed.values() {
        groups
            .entry(("dense".into(), "-".into()))
            .or_default()
            .push(d);
    }
    for r in records {
        for m in r.results.iter().skip(1) {
            let label = m.label.clone();
            groups
                .entry((label, m.target.to_string()))
                .or_default()
                .push(m);
        }
    }
    let mean = groups
        .into_iter()
        .map(|((label, _), members)| average(&label, &members))
        .collect();
    (all, mean)
}

fn average(label: &str, members: &[&MethodResult]) -> MethodResult {
    let n = members.len() as f64;
    let avg = |f: &dyn Fn(&MethodResult) -> f64| members.iter().map(|m| f(m)).sum::<f64>() / n;
    let mut row = members[0].clone();
    row.label = if members.len() > 1 {
        let mean = avg(&|m| m.test_accuracy as f64);
        let sd = (avg(&|m| (m.test_accuracy as f64 - mean).powi(2))).sqrt();
        format!("{label} (n={}, ±{:.2} pts)", members.len(), 100.0 * sd)
    } else {
        label.to_string()
    };
    row.test_accuracy = avg(&|m| m.test_accuracy as f64) as f32;
    row.test_loss = avg(&|m| m.test_loss as f64) as f32;
    row.delta_vs_dense = avg(&|m| m.delta_vs_dense as f64) as f32;
    row.params_reduction = avg(&|m| m.params_reduction);
    row.macs_reduction = avg(&|m| m.macs_reduction);
    row.bytes_reduction = avg(&|m| m.bytes_reduction);
    row.wall_seconds = avg(&|m| m.wall_seconds);
    if members.iter().all(|m| m.speedup.is_some()) {
        row.speedup = Some(avg(&|m| m.speedup.unwrap_or(1.0)));
    }
    row.history.clear();
    row
}
