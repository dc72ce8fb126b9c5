//! `prunelab reproduce`: a seed paper's headline experiment at a budget,
//! run as a sweep (this process's shard of it), then its report.

use std::path::{Path, PathBuf};

use prunelab::base::error::{Error, Result};
use prunelab::io::atomic;
use prunelab::runs::reproduce::{self, Budget, DATA_VARIABLE, Seed, report};
use prunelab::runs::sweep;

use crate::cli::ReproduceArgs;

pub fn reproduce(args: ReproduceArgs) -> Result<()> {
    let seed: Seed = args.seed.parse()?;
    let budget: Budget = args.budget.parse()?;
    let data = args
        .data
        .clone()
        .or_else(|| std::env::var_os(DATA_VARIABLE).map(PathBuf::from))
        // Then what `prunelab data fetch cifar10` put in its default place
        // (only when there: otherwise the shipped path, as run ids expect).
        .or_else(|| {
            crate::fetch::fetched(&crate::fetch::default_dir())
                .filter(|(v, _)| *v == prunelab::data::cifar::Variant::Cifar10)
                .map(|(_, folder)| folder)
        });
    let device = args.device.as_deref().map(str::parse).transpose()?;
    let config = reproduce::plan(
        seed,
        budget,
        args.seeds,
        data.as_deref().and_then(Path::to_str),
        device,
        args.from.as_deref(),
    )?;
    check_data(config.base.data.dir.as_deref(), data.is_some())?;
    // The pretrained budget's records are committed (results/): a later run
    // on a fresh machine continues from them.
    let folder = match budget {
        Budget::Pretrained => "results",
        _ => "out",
    };
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "{folder}/reproduce-{}-{}",
            seed.name(),
            budget.name()
        ))
    });
    // The resolved experiment, for `prunelab sweep` arrays and for the record.
    let text = reproduce::sweep_toml(&config)?;
    atomic::check_writable(&out.join("sweep.toml"))?;
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    atomic::write(
        &out.join("sweep.toml"),
        format!(
            "# prunelab reproduce {} --budget {}: the sweep it runs (any shard may re-run it).\n{text}",
            seed.name(),
            budget.name()
        )
        .as_bytes(),
    )?;
    if args.plan_only {
        eprintln!(
            "wrote {}; run it with `prunelab sweep {} --out {} --shard auto` on an array, \
             then `prunelab reproduce {} --budget {} --out {} --report-only`",
            out.join("sweep.toml").display(),
            out.join("sweep.toml").display(),
            out.display(),
            seed.name(),
            budget.name(),
            out.display()
        );
        return Ok(());
    }
    if !args.report_only {
        crate::sweep::run_shard(&config, &out, &args.shard, None, args.json_events)?;
    }
    write_report(seed, budget, &out)
}

/// A clear error before any training when the CIFAR-10 files are not there.
fn check_data(dir: Option<&str>, given: bool) -> Result<()> {
    let dir = dir.unwrap_or("");
    if Path::new(dir).join("test_batch.bin").is_file() {
        return Ok(());
    }
    let how = if given {
        "that folder has no CIFAR-10 binary files (data_batch_1.bin … test_batch.bin); \
         `prunelab data fetch cifar10` downloads them"
    } else {
        "the CIFAR-10 binary folder is not at the shipped path: run `prunelab data fetch cifar10` \
         (into ./data), or pass --data DIR or set PRUNELAB_CIFAR10"
    };
    Err(Error::config("--data", dir, how))
}

fn write_report(seed: Seed, budget: Budget, out: &Path) -> Result<()> {
    let current = sweep::current(out)?;
    let missing = current.missing.len();
    let report = report::build(seed, budget, &current.records, missing);
    let md = report.markdown();
    atomic::write_json(&out.join("report.json"), &report)?;
    atomic::write(&out.join("report.md"), md.as_bytes())?;
    atomic::write(&out.join("report.svg"), report.svg().as_bytes())?;
    println!("{md}");
    eprintln!(
        "wrote report.md, report.json and report.svg in {}{}",
        out.display(),
        if missing > 0 {
            format!(
                " ({missing} runs still missing: re-run to finish them, or wait for the other shards)"
            )
        } else {
            String::new()
        }
    );
    Ok(())
}
