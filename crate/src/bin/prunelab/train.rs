//! `prunelab train`: a model from flags or a TOML config, trained (resumable),
//! its result written as JSON.

use prunelab::base::device;
use prunelab::base::error::{Error, Result};
use prunelab::base::host::block_on;
use prunelab::io::atomic;
use prunelab::report::human;
use prunelab::runs::training::{self, Resume};
use prunelab::train::checkpoint;

use crate::cli::TrainArgs;
use crate::progress::Progress;
use crate::setup::run_config_without_selection;

pub fn train(args: TrainArgs) -> Result<()> {
    let config = run_config_without_selection(&args.setup)?;
    // Outputs first: an unwritable path, or two flags naming one file, fails
    // now, not after the training.
    atomic::check_outputs(&[
        ("--out", args.out.as_deref()),
        ("--save", args.save.as_deref()),
        ("--checkpoint", args.checkpoint.as_deref()),
    ])?;
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
    let split = prunelab::runs::dense::open_split(&config, config.seed)?;
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
            bytes =
                prunelab::base::memory::read_file(path, prunelab::base::memory::MAX_MODEL_FILE)?;
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
