//! The commands: flags → engine calls → files.

use std::path::Path;

use prunelab::device::{self, DeviceChoice, OpenDevice};
use prunelab::error::{Error, Result};
use prunelab::host::block_on;
use prunelab::io::atomic;
use prunelab::metrics::count::{activation_floats, count};
use prunelab::model::spec::ModelSpec;
use prunelab::model::zoo::ModelOptions;
use prunelab::report::{count_table, human};
use prunelab::train::{checkpoint, evaluate};
use prunelab::training::{self, Resume};

use crate::cli::{BenchArgs, EvalArgs, InfoArgs, TrainArgs};
use crate::progress::Progress;
use crate::setup::{parse, run_config};

pub fn train(args: TrainArgs) -> Result<()> {
    let config = run_config(&args.setup)?;
    // Outputs first: an unwritable path fails now, not after the training.
    for path in [&args.out, &args.save, &args.checkpoint]
        .into_iter()
        .flatten()
    {
        atomic::check_writable(path)?;
    }
    if let Some(path) = &args.save {
        crate::models::check_save_path(path, "save")?;
    }
    if let (Some(path), false, false) = (&args.checkpoint, args.resume, args.overwrite)
        && path.exists()
    {
        return Err(Error::config(
            "checkpoint",
            path.display(),
            "it already holds a run: add --resume to continue it, or --overwrite to start over",
        ));
    }
    let opened = device::open(config.device)?;
    eprintln!("device: {}", opened.description);
    let split = config.data.load(config.seed)?;
    eprintln!(
        "data: {} ({} train, {} validation, {} test, {} classes)",
        split.source,
        split.train.len(),
        split.valid.len(),
        split.test_len(),
        split.train.classes
    );
    let bytes;
    let resume = match (&args.checkpoint, args.resume) {
        (Some(path), true) if path.exists() => {
            bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            let (pack, meta) = checkpoint::read(&bytes, path)?;
            Some(Resume { pack, meta, path })
        }
        (None, true) => {
            return Err(Error::config(
                "resume",
                "true",
                "--resume needs --checkpoint FILE",
            ));
        }
        _ => None,
    };
    let mut progress = Progress::new(args.json_events);
    let mut save = |bytes: Vec<u8>| match &args.checkpoint {
        Some(path) => {
            atomic::write(path, &bytes)?;
            Ok(format!(
                "checkpoint saved to {}; run the same command with --resume to continue",
                path.display()
            ))
        }
        None => Ok("no --checkpoint was given, so nothing was saved".into()),
    };
    let checkpointing = training::Checkpointing {
        every_steps: args.checkpoint_every,
    };
    let (model, result) = block_on(training::train(
        &config,
        &opened,
        &split,
        resume,
        checkpointing,
        &mut progress,
        &mut save,
    ))
    .map_err(|e| match e {
        Error::Interrupted { step, saved, .. } => Error::Interrupted {
            step,
            saved,
            resumable: args.checkpoint.is_some(),
        },
        e => e,
    })?;
    progress.finish();
    eprintln!(
        "test accuracy {:.2}% · {} params · {} MACs · {:.1} s",
        100.0 * result.test_accuracy,
        human(result.params as f64),
        human(result.macs as f64),
        result.wall_seconds
    );
    // The result first: a failing --save must not lose it.
    if let Some(path) = &args.out {
        atomic::write_json(path, &result)?;
        eprintln!("result written to {}", path.display());
    }
    if let Some(path) = &args.save {
        crate::models::save(
            path,
            &model,
            None,
            serde_json::to_value(&config).expect("plain data"),
        )?;
    }
    Ok(())
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let config = run_config(&args.setup)?;
    let opened = device::open(config.device)?;
    let split = config.data.load(config.seed)?;
    let configured = config
        .model_spec(split.train.classes, split.train.shape[0])
        .ok();
    let model = crate::models::load(&args.file, configured.as_ref(), &opened.device)?;
    model
        .spec
        .check_data(split.train.classes, split.train.shape)?;
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

pub fn info(args: InfoArgs) -> Result<()> {
    let point_model = prunelab::model::zoo::POINT_MODELS.contains(&args.model.as_str());
    if let (Some(hidden), false) = (&args.hidden, point_model) {
        return Err(Error::config(
            "hidden",
            format!("{hidden:?}"),
            format!(
                "{} has fixed widths; --hidden is for {}",
                args.model,
                prunelab::model::zoo::POINT_MODELS.join(" and ")
            ),
        ));
    }
    let spec = ModelSpec::named(
        &args.model,
        &ModelOptions {
            classes: args.classes,
            hidden: args.hidden.clone().unwrap_or_else(|| vec![16, 16]),
            shortcut: parse("shortcut", &args.shortcut)?,
            ..ModelOptions::default()
        },
    )?;
    let counted = count(&spec);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&counted).expect("plain data")
        );
    } else {
        print!("{}", count_table(&counted));
        print!("{}", groups_table(&spec));
    }
    Ok(())
}

/// The units that are cut together: every prunable group, its size, the
/// layers it is the output of and the layers that read it (`ignore_layers`
/// and `layer_ratios` take these names; the streams are cut with
/// `residual_stream = true`).
fn groups_table(spec: &ModelSpec) -> String {
    let list = |names: &[String]| match names {
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} +{} more", rest.len()),
        [] => "-".into(),
    };
    let mut out = format!(
        "\n{:<28} {:>6}  {:<36} read by\n",
        "group (cut together)", "units", "output of"
    );
    for g in spec.groups(true) {
        out.push_str(&format!(
            "{:<28} {:>6}  {:<36} {}\n",
            g.name,
            g.size,
            list(&g.producers),
            list(&g.consumers)
        ));
    }
    out
}

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
    let result = block_on(prunelab::bench::bench(
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
