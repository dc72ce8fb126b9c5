//! Where a run's data comes from ([`DataSource`]); `DataConfig::load` and
//! `load_given` (config.rs) read it.

use serde::{Deserialize, Serialize};

use super::{cifar, toy};

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
