//! Where a run's data comes from ([`DataSource`]), and loading it.

use serde::{Deserialize, Serialize};

#[cfg(not(target_arch = "wasm32"))]
use super::csv;
use super::dataset::Split;
use super::{cifar, toy};
#[cfg(not(target_arch = "wasm32"))]
use crate::base::error::{Error, Result};

/// Where a run's data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSource {
    /// A generated 2-D problem.
    Toy(toy::ToySpec),
    /// A `x,y,label` CSV file (split into train/test by `test_fraction`).
    Csv { path: String, test_fraction: f32 },
    /// CIFAR-10/100 binary files in a directory of the official layout.
    Cifar {
        dir: String,
        #[serde(default = "default_variant")]
        variant: cifar::Variant,
    },
}

fn default_variant() -> cifar::Variant {
    cifar::Variant::Cifar10
}

impl Split {
    /// Loads `source` (native: reads files).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(source: &DataSource, seed: u64) -> Result<Split> {
        match source {
            DataSource::Toy(spec) => toy::generate(spec, seed),
            DataSource::Csv {
                path,
                test_fraction,
            } => {
                let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
                let points = csv::parse(&bytes, std::path::Path::new(path))?;
                Ok(csv::split(points, *test_fraction, seed, path))
            }
            DataSource::Cifar { dir, variant } => {
                cifar::load_dir(std::path::Path::new(dir), *variant)
            }
        }
    }
}
