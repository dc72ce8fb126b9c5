//! One error type for the engine. Every variant names the problem *and* the fix,
//! because the people reading these messages are running an experiment, not
//! debugging prunelab.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data file is missing, truncated or holds values outside its format.
    #[error("{path}: {problem} (expected {expected}, found {found}). {fix}")]
    BadDataFile {
        path: PathBuf,
        problem: String,
        expected: String,
        found: String,
        fix: String,
    },

    /// A configuration value is out of range or unknown.
    #[error("invalid {field} = {value}: {reason}")]
    Config {
        field: String,
        value: String,
        reason: String,
    },

    /// Training produced a NaN or infinite loss.
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}: training stopped. \
         Lower the learning rate (--lr), or check the data for NaN/inf values."
    )]
    NonFiniteLoss { value: f32, epoch: usize, step: u64 },

    /// The requested compute device cannot be opened.
    #[error("device `{device}` is not available: {reason}. {fix}")]
    Device {
        device: String,
        reason: String,
        fix: String,
    },

    /// A checkpoint or model file cannot be read.
    #[error("{path}: {problem}")]
    BadCheckpoint { path: PathBuf, problem: String },

    /// An I/O error with the file it concerned.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A stop was requested (a signal). `resumable`: what was saved lets the
    /// same command continue (a checkpoint, a sweep's finished runs); without
    /// it a requeue would only start over.
    #[error("interrupted at step {step}: {saved}")]
    Interrupted {
        step: u64,
        saved: String,
        resumable: bool,
    },

    /// Reading a tensor back from the device failed (device lost, out of
    /// memory), or the engine stopped for another reason the text names.
    #[error("{0}")]
    Execution(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A parser's message with each line cut to 200 characters: TOML's errors
/// quote the source line, which in a hostile file is megabytes long.
pub fn clip_lines(message: &str) -> String {
    message
        .lines()
        .map(|line| {
            let mut cut: String = line.chars().take(200).collect();
            if cut.len() < line.len() {
                cut.push_str(" …");
            }
            cut
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Error {
    pub fn config(field: &str, value: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// An engine panic as an error. Allocation failures (a batch too large
    /// for the device) and lost devices get their own advice.
    pub fn from_panic(text: &str) -> Self {
        let lower = text.to_lowercase();
        let fix = if [
            "out of memory",
            "outofmemory",
            "allocat",
            "max_buffer_size",
            "exceeds",
        ]
        .iter()
        .any(|k| lower.contains(k))
        {
            "the device ran out of memory: lower --batch-size (or train.eval_batch_size in the config), \
             or use a smaller model"
        } else if lower.contains("lost") || lower.contains("destroyed") {
            "the device was lost: resume from the last checkpoint with --resume \
             (or on --device cpu)"
        } else {
            "this is a bug in prunelab or burn; please report it with the command line"
        };
        Error::Execution(format!("the engine stopped: {text}. {fix}"))
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
