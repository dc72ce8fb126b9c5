//! Which data a run uses: the data set, its subsets, the validation hold-out.

use serde::{Deserialize, Serialize};

use super::cifar::{self, Variant};
use super::csv;
use super::dataset::Split;
use super::source::DataSource;
use super::toy::{self, ToySpec};
use crate::base::error::{Error, Result};

/// The most points a generated (toy) data set may have: 10 million 2-D
/// points are 80 MB.
pub const MAX_POINTS: usize = 10_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataConfig {
    /// A toy problem (`spiral`, `circles`, `xor`, `gaussians`, `moons`),
    /// `cifar10`, `cifar100` or `csv`.
    pub dataset: String,
    /// CIFAR directory in the official binary layout.
    pub dir: Option<String>,
    /// CSV file of `x,y,label` rows.
    pub path: Option<String>,
    pub train_points: usize,
    pub test_points: usize,
    pub noise: f32,
    pub classes: usize,
    /// Share of a CSV file held out for testing.
    pub test_fraction: f32,
    /// Class-balanced subset of the training set.
    pub train_subset: Option<usize>,
    /// Class-balanced subset of the test set.
    pub test_subset: Option<usize>,
    /// Share of each class of the training data held out as the validation
    /// set: what methods select on (FlexRel's factor and δ). The test set is
    /// only reported on.
    pub valid_fraction: f32,
    /// Pad-4 random crop and horizontal flip on training images.
    pub augment: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        let toy = ToySpec::default();
        DataConfig {
            dataset: toy.name,
            dir: None,
            path: None,
            train_points: toy.train,
            test_points: toy.test,
            noise: toy.noise,
            classes: toy.classes,
            test_fraction: 0.3,
            train_subset: None,
            test_subset: None,
            valid_fraction: 0.1,
            augment: true,
        }
    }
}

impl DataConfig {
    pub fn is_toy(&self) -> bool {
        toy::names().contains(&self.dataset.as_str())
    }

    /// Upper bounds on generated data and no empty subsets: a size that
    /// would not fit in memory is an error, not an abort.
    pub fn check_sizes(&self) -> Result<()> {
        for (field, n) in [
            ("data.train_points", self.train_points),
            ("data.test_points", self.test_points),
        ] {
            if n > MAX_POINTS {
                return Err(Error::config(
                    field,
                    n,
                    format!(
                        "use at most {MAX_POINTS} points (the bound prunelab checks before allocating)"
                    ),
                ));
            }
        }
        for (field, n) in [
            ("data.train_subset", self.train_subset),
            ("data.test_subset", self.test_subset),
        ] {
            if n == Some(0) {
                return Err(Error::config(
                    field,
                    0,
                    "use at least 1 example, or leave it out for the whole set",
                ));
            }
        }
        // A share of the data each; together they must leave some to train on.
        for (field, f) in [
            ("data.test_fraction", self.test_fraction),
            ("data.valid_fraction", self.valid_fraction),
        ] {
            if !(0.0..1.0).contains(&f) {
                return Err(Error::config(
                    field,
                    f,
                    "use a share from 0 up to (not including) 1",
                ));
            }
        }
        if self.test_fraction + self.valid_fraction >= 0.9 {
            return Err(Error::config(
                "data.test_fraction + data.valid_fraction",
                self.test_fraction + self.valid_fraction,
                "keep their sum under 0.9, so that at least a tenth of the data trains",
            ));
        }
        Ok(())
    }

    /// Which CIFAR the data set names (CIFAR-10 unless it says `cifar100`).
    fn cifar_variant(&self) -> Variant {
        if self.dataset == "cifar100" {
            Variant::Cifar100
        } else {
            Variant::Cifar10
        }
    }

    /// Where the data comes from.
    pub fn source(&self) -> Result<DataSource> {
        let need = |field: &Option<String>, name: &str, what: &str| {
            field.clone().ok_or_else(|| {
                Error::config(
                    name,
                    "(missing)",
                    format!("dataset `{}` needs {what}", self.dataset),
                )
            })
        };
        Ok(match self.dataset.as_str() {
            "cifar10" | "cifar100" => DataSource::Cifar {
                dir: need(&self.dir, "data.dir", "a directory (--data DIR)")?,
                variant: self.cifar_variant(),
            },
            "csv" => DataSource::Csv {
                path: need(&self.path, "data.path", "a CSV file (--csv FILE)")?,
                test_fraction: self.test_fraction,
            },
            name if self.is_toy() => DataSource::Toy(ToySpec {
                name: name.into(),
                train: self.train_points,
                test: self.test_points,
                noise: self.noise,
                classes: self.classes,
            }),
            other => {
                return Err(Error::config(
                    "dataset",
                    other,
                    format!(
                        "choose one of {}, cifar10, cifar100, csv",
                        toy::names().join(", ")
                    ),
                ));
            }
        })
    }

    /// The class count and example shape the data will have, known without
    /// generating or reading it (a CSV file's labels are read: they are its
    /// classes). What a model for this data looks like, for checks made
    /// before anything trains.
    pub fn classes_and_shape(&self) -> Result<(usize, [usize; 3])> {
        Ok(match self.source()? {
            DataSource::Toy(spec) => (spec.classes, [2, 1, 1]),
            DataSource::Cifar { variant, .. } => (variant.classes(), [3, 32, 32]),
            #[cfg(not(target_arch = "wasm32"))]
            DataSource::Csv { path, .. } => {
                let bytes = crate::base::memory::read_file(
                    std::path::Path::new(&path),
                    crate::base::memory::MAX_CSV_FILE,
                )?;
                let points = super::csv::parse(&bytes, std::path::Path::new(&path))?;
                (points.classes, points.shape)
            }
            #[cfg(target_arch = "wasm32")]
            DataSource::Csv { .. } => (2, [2, 1, 1]),
        })
    }

    /// The subsets, then the validation hold-out (from the training subset).
    pub fn apply_subsets(&self, mut split: Split, seed: u64) -> Result<Split> {
        if let Some(n) = self.train_subset {
            split.train = split.train.stratified_subset(n, seed)?;
        }
        if let Some(n) = self.test_subset {
            let test = split.test().stratified_subset(n, seed ^ 0x7e57)?;
            split = split.with_test(test);
        }
        split.hold_out(self.valid_fraction, seed)
    }
}

/// Data its caller already holds as bytes — the page reads no paths — or
/// none, for a problem that is generated.
pub enum Given<'a> {
    Nothing,
    /// An `x,y,label` file's text, named for messages.
    Csv {
        name: &'a str,
        bytes: &'a [u8],
    },
    /// CIFAR binary batches, `(file name, bytes)`: the training batches and
    /// the one whose name has "test".
    Cifar(&'a [(String, Vec<u8>)]),
}

impl DataConfig {
    /// The one route from a data config to a split, for the CLI and the page
    /// alike: generated, parsed or read, then subset and held out
    /// ([`DataConfig::apply_subsets`]) the same way.
    pub fn load_given(&self, given: Given<'_>, seed: u64) -> Result<Split> {
        let split = match given {
            Given::Csv { name, bytes } => {
                let points = csv::parse(bytes, std::path::Path::new(name))?;
                csv::split(points, self.test_fraction, seed, name)
            }
            Given::Cifar(files) => cifar::from_files(files, self.cifar_variant())?,
            Given::Nothing => match self.source()? {
                DataSource::Toy(spec) => toy::generate(&spec, seed)?,
                _ => {
                    return Err(Error::config(
                        "dataset",
                        &self.dataset,
                        "its data comes from files: give them (a CSV's text, CIFAR's batches)",
                    ));
                }
            },
        };
        self.apply_subsets(split, seed)
    }

    /// Loads the data from where the config points (native: reads files).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(&self, seed: u64) -> Result<Split> {
        match self.source()? {
            DataSource::Toy(_) => self.load_given(Given::Nothing, seed),
            DataSource::Csv { path, .. } => {
                let bytes = crate::base::memory::read_file(
                    std::path::Path::new(&path),
                    crate::base::memory::MAX_CSV_FILE,
                )?;
                self.load_given(
                    Given::Csv {
                        name: &path,
                        bytes: &bytes,
                    },
                    seed,
                )
            }
            // Read by name from the directory, with errors that name the
            // missing file; then the same subsets and hold-out.
            DataSource::Cifar { dir, variant } => {
                self.apply_subsets(cifar::load_dir(std::path::Path::new(&dir), variant)?, seed)
            }
        }
    }
}
