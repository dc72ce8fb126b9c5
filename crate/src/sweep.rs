//! Sweeps: methods × targets × seeds expanded into independent runs, split
//! into shards for the schedulers people already have (Slurm job arrays,
//! Kubernetes Indexed Jobs), and merged back into one table. prunelab
//! schedules nothing itself.
//!
//! A run is identified by the hash of its whole config, so the list is the
//! same on every machine; runs are sorted by id and shard `i` of `N` takes
//! every `N`-th one from `i` (disjoint, and together the whole list). Each
//! run's result is published once under `runs/<id>.json` (first writer wins),
//! and a shard skips runs whose result exists: re-running an array redoes only
//! what is missing. File names come from ids alone, so nothing in a sweep file
//! can steer a write outside `--out`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::experiment::{ExperimentConfig, MethodEntry};
use crate::io::pack::fnv1a;
use crate::report::MethodResult;

/// The most runs one sweep file may expand to.
pub const MAX_RUNS: usize = 10_000;

/// A sweep file: a base run config (model, data, training, shared `[prune]`
/// options), the seeds, and `[[methods]]` with a list of targets each.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepConfig {
    #[serde(default = "default_name")]
    pub name: String,
    /// Seeds to repeat every run with (default: the base `seed`).
    #[serde(default)]
    pub seeds: Vec<u64>,
    #[serde(flatten)]
    pub base: RunConfig,
    pub methods: Vec<SweepMethod>,
}

fn default_name() -> String {
    "sweep".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepMethod {
    pub method: String,
    pub targets: Vec<String>,
    #[serde(default)]
    pub label: Option<String>,
    /// Another architecture than the base `[model]` for this entry's runs
    /// (S4's ResNet-32 rows beside its ResNet-56 ones): each model has its
    /// own dense reference, shared by its runs of one seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default)]
    pub options: serde_json::Value,
}

/// One run of a sweep: a one-method experiment with its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRun {
    pub id: String,
    pub seed: u64,
    pub method: String,
    pub target: String,
    pub label: String,
    pub experiment: ExperimentConfig,
}

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

impl SweepConfig {
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let config: SweepConfig = toml::from_str(text).map_err(|e| {
            Error::config(
                "sweep file",
                origin,
                crate::error::clip_lines(&e.to_string()),
            )
        })?;
        RunConfig::check_keys_beside(text, origin, &["name", "seeds", "methods"])?;
        if config.methods.is_empty() {
            return Err(Error::config(
                "methods",
                origin,
                "add at least one [[methods]] entry with `targets = [...]`",
            ));
        }
        if let Some(m) = config.methods.iter().find(|m| m.targets.is_empty()) {
            return Err(Error::config(
                &format!("methods.{}.targets", m.method),
                "[]",
                "list at least one target, e.g. targets = [\"macs=0.5\"]",
            ));
        }
        let count = config.seeds.len().max(1)
            * config
                .methods
                .iter()
                .map(|m| m.targets.len())
                .sum::<usize>();
        if count > MAX_RUNS {
            return Err(Error::config(
                "sweep",
                count,
                format!("more than {MAX_RUNS} runs; split the sweep into several files"),
            ));
        }
        // Every run is checked now, not hours later on some cluster node. The
        // runs differ only in seed, method and perhaps model, so the data (a
        // CSV is read) is checked once and each model's spec once.
        let runs = config.runs();
        if let Some(first) = runs.first() {
            first.experiment.validate(origin)?;
            let mut specs: BTreeMap<String, crate::model::ModelSpec> = BTreeMap::new();
            for run in &runs[1..] {
                run.experiment.base.validate()?;
                let name = run.experiment.base.model.name.clone();
                let spec = match specs.get(&name) {
                    Some(spec) => spec.clone(),
                    None => {
                        let spec = run.experiment.checked_spec()?;
                        specs.insert(name, spec.clone());
                        spec
                    }
                };
                run.experiment.validate_methods(&spec)?;
            }
        }
        Ok(config)
    }

    /// Every run, sorted by id.
    pub fn runs(&self) -> Vec<SweepRun> {
        let seeds = if self.seeds.is_empty() {
            vec![self.base.seed]
        } else {
            self.seeds.clone()
        };
        let mut runs = Vec::new();
        for &seed in &seeds {
            for m in &self.methods {
                for target in &m.targets {
                    let label = m.label.clone().unwrap_or_else(|| m.method.clone());
                    let mut base = self.base.clone();
                    base.seed = seed;
                    if let Some(model) = &m.model {
                        base.model.name = model.clone();
                    }
                    let experiment = ExperimentConfig {
                        name: self.name.clone(),
                        base,
                        methods: vec![MethodEntry {
                            method: m.method.clone(),
                            target: target.clone(),
                            label: Some(label.clone()),
                            options: m.options.clone(),
                        }],
                    };
                    runs.push(SweepRun {
                        id: run_id(&experiment),
                        seed,
                        method: m.method.clone(),
                        target: target.clone(),
                        label,
                        experiment,
                    });
                }
            }
        }
        runs.sort_by(|a, b| a.id.cmp(&b.id));
        runs.dedup_by(|a, b| a.id == b.id);
        runs
    }
}

/// The hash of a run's whole config (keys sorted, so the order of a TOML
/// file's lines does not matter), in hex.
pub fn run_id(experiment: &ExperimentConfig) -> String {
    let canonical = serde_json::to_value(experiment).expect("plain data");
    format!("{:016x}", fnv1a(canonical.to_string().as_bytes()))
}

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// `i/N`, or `auto` (read from the environment via `env`).
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard> {
        if text == "auto" {
            return Shard::from_env(env);
        }
        let bad = || {
            Error::config(
                "--shard",
                text,
                "write i/N with 0 <= i < N (e.g. 0/4), or `auto` under Slurm or Kubernetes",
            )
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let shard = Shard {
            index: i.trim().parse().map_err(|_| bad())?,
            count: n.trim().parse().map_err(|_| bad())?,
        };
        if shard.count == 0 || shard.index >= shard.count {
            return Err(bad());
        }
        Ok(shard)
    }

    /// Slurm job arrays (`SLURM_ARRAY_TASK_ID` counted from
    /// `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`), Kubernetes
    /// Indexed Jobs (`JOB_COMPLETION_INDEX` of `PRUNELAB_SHARDS`, which the
    /// shipped Job sets to its `completions`), or `PRUNELAB_SHARD=i/N`.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Shard> {
        let number = |name: &str| -> Result<Option<usize>> {
            match env(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| Error::config(name, &v, "expected a non-negative integer")),
            }
        };
        if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let count = number("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                Error::config(
                    "SLURM_ARRAY_TASK_COUNT",
                    "(unset)",
                    "run the sweep as a Slurm job array (sbatch --array=0-N)",
                )
            })?;
            let index = id.checked_sub(min).filter(|&i| i < count).ok_or_else(|| {
                Error::config(
                    "SLURM_ARRAY_TASK_ID",
                    id,
                    format!(
                        "outside {min}..{}: use a contiguous array, --array=0-{}",
                        min + count,
                        count.saturating_sub(1)
                    ),
                )
            })?;
            return Ok(Shard { index, count });
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = number("PRUNELAB_SHARDS")?.ok_or_else(|| {
                Error::config(
                    "PRUNELAB_SHARDS",
                    "(unset)",
                    "set it to the Indexed Job's `completions` (deploy/k8s/sweep-job.yaml does)",
                )
            })?;
            if index >= count {
                return Err(Error::config(
                    "JOB_COMPLETION_INDEX",
                    index,
                    format!("must be below PRUNELAB_SHARDS = {count}"),
                ));
            }
            return Ok(Shard { index, count });
        }
        if let Some(text) = env("PRUNELAB_SHARD") {
            return Shard::parse(&text, &|_| None);
        }
        Err(Error::config(
            "--shard",
            "auto",
            "found no SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or PRUNELAB_SHARD; give --shard i/N",
        ))
    }

    /// This shard's runs: every `count`-th from `index`.
    pub fn select<T: Clone>(&self, sorted: &[T]) -> Vec<T> {
        sorted
            .iter()
            .skip(self.index)
            .step_by(self.count)
            .cloned()
            .collect()
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
    std::fs::read_to_string(out.join("sweep.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v["runs"].as_array().map(|runs| {
                runs.iter()
                    .filter_map(|r| r["id"].as_str().map(String::from))
                    .collect()
            })
        })
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
            groups.entry((label, m.target.clone())).or_default().push(m);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_list() {
        let items: Vec<usize> = (0..23).collect();
        for count in 1..=7 {
            let mut seen = Vec::new();
            for index in 0..count {
                seen.extend(Shard { index, count }.select(&items));
            }
            seen.sort();
            assert_eq!(seen, items, "{count} shards");
        }
        // More shards than runs: the extra shards are empty, not errors.
        assert!(Shard { index: 5, count: 6 }.select(&[1, 2]).is_empty());
    }

    #[test]
    fn explicit_shards_parse_and_bad_ones_say_how() {
        assert_eq!(
            Shard::parse("2/4", &|_| None).unwrap(),
            Shard { index: 2, count: 4 }
        );
        for bad in ["4/4", "1/0", "x", "1-4", "-1/3"] {
            let e = Shard::parse(bad, &|_| None).unwrap_err().to_string();
            assert!(e.contains("i/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn slurm_arrays_count_from_their_minimum() {
        let s = Shard::parse(
            "auto",
            &env(&[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ]),
        )
        .unwrap();
        assert_eq!(s, Shard { index: 2, count: 4 });
        let s = Shard::from_env(&env(&[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]))
        .unwrap();
        assert_eq!(s, Shard { index: 0, count: 2 });
        // A sparse array (--array=0,5) cannot be mapped onto shards.
        let e = Shard::from_env(&env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("--array=0-1"), "{e}");
    }

    #[test]
    fn kubernetes_indexed_jobs_need_the_shard_count() {
        let s = Shard::from_env(&env(&[
            ("JOB_COMPLETION_INDEX", "1"),
            ("PRUNELAB_SHARDS", "3"),
        ]))
        .unwrap();
        assert_eq!(s, Shard { index: 1, count: 3 });
        let e = Shard::from_env(&env(&[("JOB_COMPLETION_INDEX", "1")])).unwrap_err();
        assert!(e.to_string().contains("PRUNELAB_SHARDS"), "{e}");
        let e = Shard::from_env(&env(&[
            ("JOB_COMPLETION_INDEX", "3"),
            ("PRUNELAB_SHARDS", "3"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("below"), "{e}");
        assert!(Shard::from_env(&env(&[])).is_err());
        assert_eq!(
            Shard::from_env(&env(&[("PRUNELAB_SHARD", "1/2")])).unwrap(),
            Shard { index: 1, count: 2 }
        );
    }

    const SWEEP: &str = r#"
        name = "t"
        seeds = [1, 2]
        [model]
        name = "mlp"
        [data]
        dataset = "xor"
        [[methods]]
        method = "l1"
        targets = ["macs=0.3", "macs=0.5"]
        [[methods]]
        method = "magnitude"
        targets = ["sparsity=0.5"]
    "#;

    #[test]
    fn a_sweep_expands_to_sorted_unique_ids_that_ignore_line_order() {
        let config = SweepConfig::from_toml(SWEEP, "t").unwrap();
        let runs = config.runs();
        assert_eq!(runs.len(), 2 * 3);
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ids, sorted);
        // The same sweep written in another order has the same ids.
        let reordered = SWEEP.replace(
            "[model]\n        name = \"mlp\"\n        [data]\n        dataset = \"xor\"",
            "[data]\n        dataset = \"xor\"\n        [model]\n        name = \"mlp\"",
        );
        assert_ne!(reordered, SWEEP);
        let again = SweepConfig::from_toml(&reordered, "t").unwrap().runs();
        assert_eq!(
            again.iter().map(|r| &r.id).collect::<Vec<_>>(),
            runs.iter().map(|r| &r.id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn bad_sweeps_are_refused_up_front() {
        let e = SweepConfig::from_toml(&SWEEP.replace("\"l1\"", "\"l2\""), "t").unwrap_err();
        assert!(e.to_string().contains("l2"), "{e}");
        let e = SweepConfig::from_toml(&SWEEP.replace("\"sparsity=0.5\"", ""), "t").unwrap_err();
        assert!(e.to_string().contains("targets"), "{e}");
        let e = SweepConfig::from_toml(&SWEEP.replace("macs=0.3", "macs=3"), "t").unwrap_err();
        assert!(e.to_string().contains("macs"), "{e}");
        let e = SweepConfig::from_toml(&SWEEP.replace("[data]", "[dta]"), "t").unwrap_err();
        assert!(e.to_string().contains("dta"), "{e}");
    }
}
