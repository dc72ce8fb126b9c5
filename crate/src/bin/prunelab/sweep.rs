//! `prunelab sweep`: run one shard of a sweep, or merge a sweep's results.

use std::collections::BTreeMap;
use std::path::Path;

use prunelab::base::device;
use prunelab::base::error::{Error, Result};
use prunelab::base::events::{Event, Sink};
use prunelab::base::fault;
use prunelab::base::host::block_on;
use prunelab::io::atomic;
use prunelab::report::{plot, table};
use prunelab::runs::sweep::{self, RunRecord, Shard, SweepConfig};
use prunelab::runs::training::Resume;
use prunelab::runs::{dense, experiment};
use prunelab::train::checkpoint;

use crate::cli::SweepArgs;
use crate::progress::Progress;

pub fn sweep(args: SweepArgs) -> Result<()> {
    if let Some(dir) = &args.collect {
        return collect(dir);
    }
    let (Some(file), Some(out)) = (&args.sweep, &args.out) else {
        return Err(Error::config(
            "sweep",
            "(missing)",
            "give a sweep file and --out DIR (or --collect DIR to merge results)",
        ));
    };
    let text = crate::setup::read_config_file(file)?;
    let config = SweepConfig::from_toml(&text, &file.display().to_string())?;
    run_shard(
        &config,
        out,
        &args.shard,
        args.device.as_deref(),
        args.json_events,
    )
}

/// Runs this process's shard of `config` into `out` (`runs/<id>.json`),
/// skipping runs already published; also `prunelab reproduce`'s loop.
pub fn run_shard(
    config: &SweepConfig,
    out: &Path,
    shard: &str,
    device: Option<&str>,
    json_events: bool,
) -> Result<()> {
    atomic::check_writable(&sweep::Manifest::path(out))?;
    // The override picks where runs execute; it must not change their ids,
    // or shards started with different flags would disagree on the list.
    let device_choice = match device {
        Some(d) => d.parse()?,
        None => config.base.device,
    };
    let shard = Shard::parse(shard, &|k| std::env::var(k).ok())?;
    let runs = config.runs();
    // The whole list, so `--collect` can say which runs are still missing.
    atomic::write_json(
        &sweep::Manifest::path(out),
        &sweep::Manifest::of(config, &runs),
    )?;
    let mine = shard.select(&runs);
    let todo: Vec<_> = mine
        .iter()
        .filter(|r| !sweep::result_path(out, &r.id).exists())
        .collect();
    eprintln!(
        "shard {shard}: {} of the sweep's {} runs, {} already done",
        mine.len(),
        runs.len(),
        mine.len() - todo.len()
    );
    if todo.is_empty() {
        return Ok(());
    }
    let opened = device::open(device_choice)?;
    eprintln!("device: {}", opened.description);
    let mut splits = BTreeMap::new();
    let mut progress = Progress::new(json_events);
    let mut failed = Vec::new();
    for (k, run) in todo.iter().enumerate() {
        if k == 1 && fault::active().fail_shard == Some(shard.index) {
            return Err(Error::Execution(format!(
                "shard {shard} made to fail after its first run ({})",
                fault::VAR
            )));
        }
        eprintln!(
            "run {} — {} {} seed {}",
            run.id, run.label, run.target, run.seed
        );
        let split = match splits.entry(run.seed) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(prunelab::runs::dense::open_split(&config.base, run.seed)?)
            }
        };
        let results = match block_on(run_one(run, &opened, split, out, &mut progress)) {
            Ok(results) => results,
            Err(Error::Interrupted { step, .. }) => {
                progress.finish();
                return Err(Error::Interrupted {
                    step,
                    saved: format!(
                        "{k} of this shard's runs finished and are saved, and so is the dense \
                         training in {}/dense/; run {} continues when the shard runs again",
                        out.display(),
                        run.id
                    ),
                    resumable: true,
                });
            }
            Err(e) => {
                progress.finish();
                eprintln!("run {} failed: {e}", run.id);
                failed.push(format!("{} ({} {}): {e}", run.id, run.label, run.target));
                continue;
            }
        };
        progress.finish();
        let record = RunRecord {
            prunelab: env!("CARGO_PKG_VERSION").into(),
            sweep: config.name.clone(),
            id: run.id.clone(),
            seed: run.seed,
            shard: shard.to_string(),
            device: opened.description.clone(),
            results,
        };
        let mut bytes = serde_json::to_vec_pretty(&record).expect("plain data");
        bytes.push(b'\n');
        let path = sweep::result_path(out, &run.id);
        if !atomic::write_new(&path, &bytes)? {
            eprintln!(
                "run {}: another shard published it first; kept theirs",
                run.id
            );
        }
    }
    if !failed.is_empty() {
        return Err(Error::Execution(format!(
            "{} run(s) failed — {}; re-run this shard to retry only those",
            failed.len(),
            failed.join("; ")
        )));
    }
    Ok(())
}

/// One run of the sweep: its dense stage is shared with every run of the same
/// seed (and config) through `out/dense/<key>.model`, trained by whichever
/// run comes first — its checkpoint is saved each epoch, so a killed sweep
/// resumes mid-training — and then its method.
async fn run_one(
    run: &sweep::SweepRun,
    opened: &device::OpenDevice,
    split: &prunelab::data::Split,
    out: &Path,
    sink: &mut Progress,
) -> Result<Vec<prunelab::report::MethodResult>> {
    let base = &run.experiment.base;
    let key = dense::dense_key(base);
    let dir = out.join("dense");
    let done = dir.join(format!("{key}.model"));
    let device = opened.autodiff();
    let dense = if done.exists() {
        let bytes = std::fs::read(&done).map_err(|e| Error::io(&done, e))?;
        let dense = dense::Dense::from_bytes(&bytes, &done, base, &device)?;
        sink.emit(Event::Notice {
            text: format!(
                "dense: {} trained earlier in this sweep, read from {}",
                dense.model.spec.name(),
                done.display()
            ),
        });
        dense
    } else {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let partial = dir.join(format!("{key}.checkpoint"));
        // Gone between a look and a read is fine: a racing shard that
        // finished the same training removes its checkpoint.
        let bytes = match std::fs::read(&partial) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&partial, e)),
        };
        let resume = match &bytes {
            Some(bytes) => {
                let (pack, meta) = checkpoint::read(bytes, &partial)?;
                Some(Resume {
                    pack,
                    meta,
                    path: &partial,
                })
            }
            None => None,
        };
        let mut save = |bytes: Vec<u8>| {
            atomic::write(&partial, &bytes)?;
            Ok(format!("dense training saved to {}", partial.display()))
        };
        let dense = dense::train_dense(base, opened, split, resume, sink, &mut save).await?;
        let published = atomic::write_new(&done, &dense.to_bytes(base).await?)?;
        let _ = std::fs::remove_file(&partial);
        if published {
            dense
        } else {
            // Another shard finished the same model first: use its copy, so
            // every run of the sweep is measured against one dense model
            // (on another device the two may differ in the last bits).
            let bytes = std::fs::read(&done).map_err(|e| Error::io(&done, e))?;
            dense::Dense::from_bytes(&bytes, &done, base, &device)?
        }
    };
    experiment::compare_from(&run.experiment, &dense, opened, split, sink).await
}

/// Merges `dir/runs/*.json` into results.{json,csv}, summary.md and plot.svg.
fn collect(dir: &Path) -> Result<()> {
    // Results left by an earlier version of the sweep file are not averaged in.
    let sweep::Current {
        records,
        missing,
        stale,
    } = sweep::current(dir)?;
    if stale > 0 {
        eprintln!(
            "ignoring {stale} result(s) not in {}/sweep.json (an older sweep?)",
            dir.display()
        );
    }
    let (all, mean) = sweep::collect(&records);
    let name = records.first().map_or("sweep", |r| r.sweep.as_str());
    let title = format!(
        "{name} — {} runs, mean over seeds{}",
        records.len(),
        if missing.is_empty() {
            String::new()
        } else {
            format!(" ({} missing)", missing.len())
        }
    );
    let md = table::markdown(&title, &mean);
    atomic::write_json(&dir.join("results.json"), &all)?;
    atomic::write(&dir.join("results.csv"), table::csv(&all).as_bytes())?;
    atomic::write(&dir.join("summary.md"), md.as_bytes())?;
    atomic::write(
        &dir.join("plot.svg"),
        plot::accuracy_vs_macs(&title, &mean).as_bytes(),
    )?;
    println!("{md}");
    eprintln!(
        "merged {} runs into results.json, results.csv, summary.md and plot.svg in {}",
        records.len(),
        dir.display()
    );
    if !missing.is_empty() {
        eprintln!(
            "missing {} run(s): {} — re-run their shards",
            missing.len(),
            missing.join(", ")
        );
    }
    Ok(())
}
