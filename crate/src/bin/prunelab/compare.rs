//! `prunelab compare` (and its old name `run`): several methods on one model,
//! seed and budget, from an experiment TOML; `prunelab methods` lists them.

use prunelab::base::device;
use prunelab::base::error::{Error, Result};
use prunelab::base::host::block_on;
use prunelab::io::atomic;
use prunelab::prune;
use prunelab::report::{plot, table};
use prunelab::runs::experiment::{self, ExperimentConfig};

use crate::cli::CompareArgs;
use crate::progress::Progress;

/// `key=value` with a TOML value, as nested JSON: `a.b=1` → `{"a": {"b": 1}}`.
pub fn compare(args: CompareArgs) -> Result<()> {
    let text = crate::setup::read_config_file(&args.experiment)?;
    let mut config = ExperimentConfig::from_toml(&text, &args.experiment.display().to_string())?;
    if let Some(d) = &args.device {
        config.base.device = d.parse()?;
    }
    atomic::check_writable(&args.out.join("results.json"))?;
    let opened = device::open(config.base.device)?;
    eprintln!("device: {}", opened.description);
    let split = prunelab::runs::dense::open_split(&config.base, config.base.seed)?;
    let mut progress = Progress::new(args.json_events);
    let results = block_on(experiment::compare(&config, &opened, &split, &mut progress))?;
    progress.finish();
    let title = format!(
        "{} — {} on {} (seed {}, {})",
        config.name, config.base.model.name, split.source, config.base.seed, opened.description
    );
    let md = table::markdown(&title, &results);
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    atomic::write_json(&args.out.join("results.json"), &results)?;
    atomic::write(&args.out.join("results.md"), md.as_bytes())?;
    atomic::write(
        &args.out.join("results.csv"),
        table::csv(&results).as_bytes(),
    )?;
    atomic::write(
        &args.out.join("plot.svg"),
        plot::accuracy_vs_macs(&title, &results).as_bytes(),
    )?;
    println!("{md}");
    eprintln!(
        "wrote results.json, results.md, results.csv and plot.svg to {}",
        args.out.display()
    );
    Ok(())
}

pub fn methods() -> Result<()> {
    for m in prune::METHODS.iter().map(|m| m.info()) {
        let word = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
        println!(
            "{:<13} {:<16} {:<10} {}\n{:<13} {}",
            m.name,
            word(serde_json::to_value(m.phase).unwrap()),
            word(serde_json::to_value(m.granularity).unwrap()),
            m.title,
            "",
            m.source
        );
        for d in prune::defaults(m) {
            println!("{:<13}   {} = {}  ({})", "", d.key, d.value, d.source);
        }
        println!();
    }
    Ok(())
}
