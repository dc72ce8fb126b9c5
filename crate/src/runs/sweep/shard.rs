//! Shards: which runs of a sweep one job of an array takes, from the
//! scheduler's environment (Slurm, Kubernetes) or `--shard i/N`.

use crate::base::error::{Error, Result};

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
