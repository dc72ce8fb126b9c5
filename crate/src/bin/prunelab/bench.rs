//! `prunelab bench`: training and inference throughput after warm-up, with a
//! check that a CPU batch fits in memory.

use std::path::Path;

use prunelab::base::device::{self, DeviceChoice, OpenDevice};
use prunelab::base::error::{Error, Result};
use prunelab::base::host::block_on;
use prunelab::io::atomic;
use prunelab::metrics::count::activation_floats;
use prunelab::model::spec::ModelSpec;
use prunelab::model::zoo::ModelOptions;

use crate::cli::BenchArgs;
use crate::setup::parse;

/// On the CPU a failed allocation aborts the process (a GPU's out-of-memory
/// is a panic the CLI turns into advice), so a batch whose activations
/// cannot fit in the memory available now is refused before it is made.
/// The estimate is the forward outputs, their gradients and one copy each.
pub fn check_cpu_batch(
    opened: &OpenDevice,
    spec: &ModelSpec,
    batch: usize,
    flag: &str,
) -> Result<()> {
    if opened.kind != DeviceChoice::Cpu {
        return Ok(());
    }
    let Some(available) = available_memory() else {
        return Ok(());
    };
    let need = activation_floats(spec)
        .saturating_mul(batch as u64)
        .saturating_mul(3 * 4);
    if need <= available {
        return Ok(());
    }
    let gb = |b: u64| b as f64 / 1e9;
    Err(Error::config(
        flag,
        batch,
        format!(
            "{} needs about {:.1} GB for its activations at this batch size on the CPU, \
             and {:.1} GB are available; lower {flag}",
            spec.name(),
            gb(need),
            gb(available)
        ),
    ))
}

/// `MemAvailable` from /proc/meminfo (Linux); elsewhere nothing is checked.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

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
    check_cpu_batch(&opened, &spec, args.batch, "--batch")?;
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
