//! `prunelab prune`: one method on a trained model (or one at initialisation),
//! its result and model written.

use prunelab::base::device;
use prunelab::base::error::{Error, Result};
use prunelab::base::host::block_on;
use prunelab::config::RunConfig;
use prunelab::io::atomic;
use prunelab::metrics::memory::check_batch;
use prunelab::model::init_model;
use prunelab::prune::{self, Phase};
use prunelab::report::human;
use prunelab::runs::{dense, experiment};

use crate::cli::PruneArgs;
use crate::progress::Progress;
use crate::setup::run_config;

/// `key=value` with a TOML value, as nested JSON: `a.b=1` → `{"a": {"b": 1}}`.
/// `key=value` with a TOML value, as nested JSON: `a.b=1` → `{"a": {"b": 1}}`.
fn setting(text: &str) -> Result<serde_json::Value> {
    let (key, value) = text.split_once('=').ok_or_else(|| {
        Error::config(
            "set",
            text,
            "write KEY=VALUE, e.g. polarization.lambda_sp=5",
        )
    })?;
    let parsed: toml::Value = toml::from_str(&format!("v = {value}"))
        .or_else(|_| toml::from_str(&format!("v = \"{value}\"")))
        .map_err(|e| Error::config("set", text, e.to_string()))?;
    let mut v = prunelab::config::toml_to_json(&parsed["v"], key.trim())?;
    for part in key.trim().rsplit('.') {
        v = serde_json::json!({ part: v });
    }
    Ok(v)
}

fn prune_config(args: &PruneArgs) -> Result<RunConfig> {
    let mut config = run_config(&args.setup)?;
    if let Some(m) = &args.method {
        config.prune.method = m.clone();
    }
    if let Some(t) = &args.target {
        // The one parse of `--target`: typed from here to the result row.
        config.prune.target = t.parse()?;
    }
    if let Some(e) = args.finetune_epochs {
        config.prune.options.finetune_epochs = Some(e);
    }
    let mut options = serde_json::to_value(&config.prune.options).expect("plain data");
    // Every method's table is known, whether or not a config file's
    // `[prune]` named it (such a file's options hold only the tables it sets).
    let mut known = serde_json::to_value(prune::PruneOptions::default()).expect("plain data");
    prunelab::prune::options::merge(&mut known, &options);
    for s in &args.set {
        let over = setting(s)?;
        prunelab::config::check_known_keys(&over, &known, "set")?;
        prunelab::prune::options::merge(&mut options, &over);
    }
    config.prune.options = serde_json::from_value(options)
        .map_err(|e| Error::config("set", args.set.join(" "), e.to_string()))?;
    prune::by_name(&config.prune.method)?;
    // `--set` changed the options after run_config's checks: check again.
    config.prune.options.check()?;
    Ok(config)
}

pub fn prune(args: PruneArgs) -> Result<()> {
    let config = prune_config(&args)?;
    atomic::check_outputs(&[
        ("--out", args.out.as_deref()),
        ("--save", args.save.as_deref()),
    ])?;
    if let Some(path) = &args.save {
        crate::models::check_save_path(path, "save")?;
    }
    let method = prune::by_name(&config.prune.method)?;
    let opened = device::open(config.device)?;
    eprintln!("device: {}", opened.description);
    let mut split = prunelab::runs::dense::open_split(&config, config.seed)?;
    let device = opened.autodiff();
    let (start, trained) = match &args.model_file {
        Some(path) => {
            let configured = config
                .model_spec(split.train.classes, split.train.shape[0])
                .ok();
            let mut model = crate::models::load(path, configured.as_ref(), &device)?;
            model
                .spec
                .check_data(split.train.classes, split.train.shape)?;
            config.fit_input(&mut model, &mut split);
            (model, true)
        }
        None if method.info().phase == Phase::AfterTraining => {
            return Err(Error::config(
                "model-file",
                "(missing)",
                format!(
                    "`{}` prunes a trained model: pass --model-file FILE from `prunelab train --save FILE`",
                    method.info().name
                ),
            ));
        }
        None => (
            init_model(&config.model_spec_for(&split)?, config.seed, &device),
            false,
        ),
    };
    let largest = [
        config.train.batch_size,
        config.train.eval_batch_size,
        config.prune.options.score_batch_size,
    ]
    .into_iter()
    .max()
    .unwrap_or(1);
    check_batch(opened.kind, &start.spec, largest, "batch-size")?;
    let mut progress = Progress::new(args.json_events);
    let dense = block_on(dense::dense_result(
        &start,
        Vec::new(),
        0.0,
        &split,
        &config,
        &opened,
    ))?;
    let reference = dense::Dense {
        model: start.deep_fork(),
        result: dense,
    };
    let dense = &reference.result;
    let on = experiment::Comparison {
        config: &config,
        dense: &reference,
        opened: &opened,
        split: &split,
    };
    let run = experiment::MethodRun::new(
        &config.prune.method,
        config.prune.target,
        config.prune.options.clone(),
        start,
    );
    let (outcome, result) = block_on(experiment::run_method(&on, run, &mut progress))?;
    progress.finish();
    for line in &result.plan {
        eprintln!("  {line}");
    }
    eprintln!(
        "{}: test accuracy {:.2}% ({} {:.2}%) · MACs {} → {} (−{:.1}%) · params {} → {} (−{:.1}%) · {} bytes · {:.1} s",
        result.method,
        100.0 * result.test_accuracy,
        if trained { "dense" } else { "at init" },
        100.0 * dense.test_accuracy,
        human(dense.macs as f64),
        human(result.macs as f64),
        100.0 * result.macs_reduction,
        human(dense.nonzero_params as f64),
        human(result.nonzero_params as f64),
        100.0 * result.params_reduction,
        human(result.bytes as f64),
        result.wall_seconds
    );
    if let Some(path) = &args.save {
        let notes = serde_json::json!({ "method": result.method, "target": result.target, "plan": outcome.plan });
        crate::models::save(path, &outcome.model, outcome.masks.as_ref(), notes)?;
    }
    if let Some(path) = &args.out {
        atomic::write_json(
            path,
            &serde_json::json!({
                "method": result.method,
                "target": result.target,
                "test_accuracy": result.test_accuracy,
                "params": result.nonzero_params,
                "macs": result.macs,
                "bytes": result.bytes,
                "wall_seconds": result.wall_seconds,
                "device": opened.description,
                "result": result,
                "dense": dense,
                "config": config,
            }),
        )?;
        eprintln!("result written to {}", path.display());
    }
    Ok(())
}
