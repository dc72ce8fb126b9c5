//! `prunelab eval`: a saved model or checkpoint on a test set.

use prunelab::base::device;
use prunelab::base::error::Result;
use prunelab::base::host::block_on;
use prunelab::io::atomic;
use prunelab::metrics::count::count;
use prunelab::train::evaluate;

use crate::cli::EvalArgs;
use crate::setup::run_config;

pub fn eval(args: EvalArgs) -> Result<()> {
    let config = run_config(&args.setup)?;
    let opened = device::open(config.device)?;
    let mut split = prunelab::runs::dense::open_split(&config, config.seed)?;
    let configured = config
        .model_spec(split.train.classes, split.train.shape[0])
        .ok();
    let mut model = crate::models::load(&args.file, configured.as_ref(), &opened.device)?;
    model
        .spec
        .check_data(split.train.classes, split.train.shape)?;
    config.fit_input(&mut model, &mut split);
    prunelab::metrics::memory::check_batch(
        opened.kind,
        &model.spec,
        config.train.eval_batch_size,
        "eval_batch_size",
    )?;
    let (loss, accuracy) = block_on(evaluate(
        &model,
        split.test(),
        split.norm,
        config.train.eval_batch_size,
        &opened.device,
    ))?;
    let counted = count(&model.spec);
    let result = serde_json::json!({
        "model": model.spec.name(),
        "file": args.file.display().to_string(),
        "device": opened.description,
        "test_accuracy": accuracy,
        "test_loss": loss,
        "test_examples": split.test_len(),
        "input_normalization": model.spec.input().map(|n| n.describe()),
        "params": counted.params,
        "macs": counted.macs,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&result).expect("plain data")
    );
    if let Some(path) = &args.out {
        atomic::write_json(path, &result)?;
    }
    Ok(())
}
