//! A run's configuration from the command line: a TOML file (read with a
//! size limit) overlaid with `--set key=value` flags, parsed once here.

use std::path::Path;

use prunelab::base::error::{Error, Result};
use prunelab::config::RunConfig;

use crate::cli::SetupArgs;

pub fn parse<T: serde::de::DeserializeOwned>(field: &str, value: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(|_| {
        Error::config(
            field,
            value,
            "see `prunelab train --help` for the accepted values",
        )
    })
}

/// The largest config, experiment or sweep file read: hand-written files
/// are kilobytes, and a bigger one is refused before it is parsed.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads a TOML file after checking it is a regular file of at most
/// [`MAX_CONFIG_BYTES`] (a FIFO would hang, `/dev/zero` would never end).
pub fn read_config_file(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() || meta.len() > MAX_CONFIG_BYTES {
        return Err(Error::config(
            "config file",
            path.display(),
            format!(
                "give a regular TOML file of at most {} KiB (this one is {})",
                MAX_CONFIG_BYTES >> 10,
                if meta.is_file() {
                    format!("{} bytes", meta.len())
                } else {
                    "not a regular file".into()
                }
            ),
        ));
    }
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// [`run_config`] for a command that selects nothing on a validation
/// split (`train`): every training example trains unless the file or
/// `--valid-fraction` holds some out. (It used to carve 10% silently: a
/// `--train-subset 4000` trained on 3,600.)
pub fn run_config_without_selection(args: &SetupArgs) -> Result<RunConfig> {
    let mut c = run_config(args)?;
    let in_file = match &args.config {
        Some(path) => read_config_file(path)?
            .parse::<toml::Table>()
            .ok()
            .and_then(|t| t.get("data")?.get("valid_fraction").cloned())
            .is_some(),
        None => false,
    };
    if args.valid_fraction.is_none() && !in_file {
        c.data.valid_fraction = 0.0;
    }
    Ok(c)
}

/// The config file (if any) with the flags laid over it.
pub fn run_config(args: &SetupArgs) -> Result<RunConfig> {
    let mut c = match &args.config {
        Some(path) => {
            let text = read_config_file(path)?;
            RunConfig::from_toml(&text, &path.display().to_string())?
        }
        None => RunConfig::default(),
    };
    if let Some(dir) = &args.data {
        c.data.dir = Some(dir.display().to_string());
        if !c.data.dataset.starts_with("cifar") {
            // The files say which: CIFAR-100's `train.bin` or CIFAR-10's batches.
            let variant = prunelab::data::cifar::Variant::detect(dir)
                .unwrap_or(prunelab::data::cifar::Variant::Cifar10);
            c.data.dataset = variant.name().into();
        }
    }
    if let Some(path) = &args.csv {
        c.data.path = Some(path.display().to_string());
        c.data.dataset = "csv".into();
    }
    if let Some(v) = &args.dataset {
        c.data.dataset = v.clone();
    }
    if let Some(v) = &args.model {
        c.model.name = v.clone();
    } else if args.config.is_none() && c.data.dataset.starts_with("cifar") {
        c.model.name = "resnet20".into();
    }
    macro_rules! set {
        ($($flag:ident => $($field:ident).+),* $(,)?) => {
            $(if let Some(v) = &args.$flag { c.$($field).+ = v.clone(); })*
        };
    }
    c.data.train_subset = args.train_subset.or(c.data.train_subset);
    if let Some(v) = args.valid_fraction {
        c.data.valid_fraction = v;
    }
    c.data.test_subset = args.test_subset.or(c.data.test_subset);
    set!(points => data.train_points, noise => data.noise, epochs => train.epochs,
         batch_size => train.batch_size, lr => train.lr, momentum => train.momentum,
         weight_decay => train.weight_decay, milestones => train.milestones,
         warmup_epochs => train.warmup_epochs,
         hidden => model.hidden, seed => seed);
    if args.no_augment {
        c.data.augment = false;
    }
    if args.nesterov {
        c.train.nesterov = true;
    }
    if let Some(v) = &args.optimizer {
        c.train.optimizer = v.parse()?;
    }
    if let Some(v) = &args.schedule {
        c.train.schedule = v.parse()?;
    }
    if let Some(v) = &args.activation {
        c.model.activation = parse("activation", v)?;
    }
    if let Some(v) = &args.init {
        c.model.init = parse("init", v)?;
    }
    if let Some(v) = &args.shortcut {
        c.model.shortcut = parse("shortcut", v)?;
    }
    if let Some(v) = &args.normalize {
        c.model.normalize = Some(prunelab::model::config::NormalizeArg::try_from(v.clone())?);
    }
    if let Some(v) = &args.device {
        c.device = v.parse()?;
    }
    c.validate()?;
    Ok(c)
}
