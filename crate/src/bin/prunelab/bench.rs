//! `prunelab bench`: training and inference throughput after warm-up, with
//! the check that a CPU batch fits in memory (`metrics::memory`).

use std::path::Path;

use prunelab::base::device::{self, DeviceChoice};
use prunelab::base::error::Result;
use prunelab::base::host::block_on;
use prunelab::io::atomic;
use prunelab::model::spec::ModelSpec;
use prunelab::model::zoo::ModelOptions;

use crate::cli::BenchArgs;
use crate::setup::parse;

pub fn bench(args: BenchArgs) -> Result<()> {
    let spec = match &args.model_file {
        // A pruned network's speed is its architecture's: the file gives
        // the (cut) architecture, the weights are drawn as for any bench.
        Some(path) => crate::models::load(path, None, &burn::tensor::Device::flex())?.spec,
        None => ModelSpec::named(
            &args.model,
            &ModelOptions {
                shortcut: parse("shortcut", &args.shortcut)?,
                ..ModelOptions::default()
            },
        )?,
    };
    let choice: DeviceChoice = args.device.parse()?;
    let opened = device::open(choice)?;
    eprintln!("device: {}", opened.description);
    prunelab::metrics::memory::check_batch(opened.kind, &spec, args.batch, "--batch")?;
    let result = block_on(prunelab::runs::bench::bench(
        &spec,
        args.batch,
        &opened,
        args.warmup,
        args.steps,
    ))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&result).expect("plain data")
    );
    if let Some(path) = &args.out {
        atomic::write_json(Path::new(path), &result)?;
    }
    Ok(())
}
