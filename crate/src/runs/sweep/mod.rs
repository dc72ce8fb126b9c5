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

mod config;
mod results;
mod shard;
#[cfg(test)]
mod tests;

pub use config::{MAX_RUNS, SweepConfig, SweepMethod, SweepRun, run_id};
pub use results::{Current, Manifest, RunRecord, collect, current, read_records, result_path};
pub use shard::Shard;
