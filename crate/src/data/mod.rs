//! Data sets held in memory, and batches made from them. Images stay as bytes
//! until a batch is made (CIFAR-10 is 150 MB as bytes, 600 MB as floats);
//! augmentation and normalisation happen per batch.

pub mod augment;
pub mod cifar;
pub mod csv;
pub mod loader;
pub mod toy;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng;

/// Feature storage: raw image bytes or ready floats (toy points).
#[derive(Debug, Clone)]
pub enum Features {
    /// `[N, C, H, W]` pixels, 0..=255.
    Bytes(Vec<u8>),
    /// `[N, D]` floats used as they are.
    Floats(Vec<f32>),
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub features: Features,
    pub labels: Vec<u16>,
    /// Shape of one example: `[C, H, W]`, or `[D, 1, 1]` for points.
    pub shape: [usize; 3],
    pub classes: usize,
}

/// A training set and a test set that belong together.
#[derive(Debug, Clone)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
    /// Per-channel normalisation for image data.
    pub norm: Option<augment::Normalization>,
    /// Where it came from, for reports (`spiral`, `cifar10:/path`).
    pub source: String,
}

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

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn example_size(&self) -> usize {
        self.shape.iter().product()
    }

    /// The examples at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let size = self.example_size();
        let features = match &self.features {
            Features::Bytes(b) => Features::Bytes(
                indices
                    .iter()
                    .flat_map(|&i| b[i * size..(i + 1) * size].iter().copied())
                    .collect(),
            ),
            Features::Floats(f) => Features::Floats(
                indices
                    .iter()
                    .flat_map(|&i| f[i * size..(i + 1) * size].iter().copied())
                    .collect(),
            ),
        };
        Dataset {
            features,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            shape: self.shape,
            classes: self.classes,
        }
    }

    /// A class-balanced random subset of `n` examples: each class gets
    /// `n / classes` (the remainder goes to the lowest classes), drawn with
    /// `seed`. Asking for more than a class holds is an error.
    pub fn stratified_subset(&self, n: usize, seed: u64) -> Result<Dataset> {
        if n >= self.len() {
            return Ok(self.clone());
        }
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); self.classes];
        for (i, &y) in self.labels.iter().enumerate() {
            by_class[y as usize].push(i);
        }
        let mut rand = rng::stream(seed, "subset", 0);
        let mut chosen = Vec::with_capacity(n);
        for (class, members) in by_class.iter().enumerate() {
            let want = n / self.classes + usize::from(class < n % self.classes);
            if want > members.len() {
                return Err(Error::config(
                    "subset",
                    n,
                    format!(
                        "class {class} has only {} examples, fewer than the {want} a balanced subset needs",
                        members.len()
                    ),
                ));
            }
            let order = rng::permutation(&mut rand, members.len());
            chosen.extend(order[..want].iter().map(|&k| members[k]));
        }
        chosen.sort_unstable();
        Ok(self.select(&chosen))
    }

    /// Examples per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &y in &self.labels {
            counts[y as usize] += 1;
        }
        counts
    }
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
