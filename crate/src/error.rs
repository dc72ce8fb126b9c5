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

    /// Reading a tensor back from the device failed (device lost, out of memory).
    #[error("reading a result back from the device failed: {0}")]
    Execution(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn config(field: &str, value: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
