//! A data set in memory ([`Dataset`]: images as bytes, points as floats)
//! and the three splits a run uses ([`Split`]), the test split behind a
//! counting accessor.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::augment;
use crate::base::error::{Error, Result};
use crate::base::rng;

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

/// Three sets, one use each: `train` to fit, `valid` (held out from the
/// training data) for anything a method *selects* — a pruning factor, a δ, a
/// threshold — and `test` only to report. The test set is reached through
/// [`Split::test`], which counts every read, so tests can check that no
/// method looks at it to choose.
#[derive(Debug, Clone)]
pub struct Split {
    pub train: Dataset,
    pub valid: Dataset,
    test: Dataset,
    /// Per-channel normalisation for image data.
    pub norm: Option<augment::Normalization>,
    /// Where it came from, for reports (`spiral`, `cifar10:/path`).
    pub source: String,
    test_reads: Arc<AtomicUsize>,
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
        Ok(self.select(&self.stratified_indices(n, seed)?))
    }

    /// The sorted indices of [`Dataset::stratified_subset`].
    pub fn stratified_indices(&self, n: usize, seed: u64) -> Result<Vec<usize>> {
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
        Ok(chosen)
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
    /// A training and a test set, no validation set yet ([`Split::hold_out`]).
    pub fn new(
        train: Dataset,
        test: Dataset,
        norm: Option<augment::Normalization>,
        source: impl Into<String>,
    ) -> Split {
        Split {
            valid: train.select(&[]),
            train,
            test,
            norm,
            source: source.into(),
            test_reads: Arc::default(),
        }
    }

    /// The test set, to report on. Every call counts as a read
    /// ([`Split::test_reads`]); methods never call it.
    pub fn test(&self) -> &Dataset {
        self.test_reads.fetch_add(1, Ordering::Relaxed);
        &self.test
    }

    /// How many examples the test set holds (not a read).
    pub fn test_len(&self) -> usize {
        self.test.len()
    }

    /// Reads of the test set so far (shared by clones of this split).
    pub fn test_reads(&self) -> usize {
        self.test_reads.load(Ordering::Relaxed)
    }

    /// The same split with another test set (for checks that nothing a
    /// method chooses depends on it).
    pub fn with_test(mut self, test: Dataset) -> Split {
        self.test = test;
        self.test_reads = Arc::default();
        self
    }

    /// Moves `fraction` of each class of the training set (seeded, rounded
    /// per class) into the validation set. `0` leaves it empty.
    pub fn hold_out(mut self, fraction: f32, seed: u64) -> Result<Split> {
        if !(0.0..0.9).contains(&fraction) {
            return Err(Error::config(
                "data.valid_fraction",
                fraction,
                "use a share of the training data in [0, 0.9)",
            ));
        }
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); self.train.classes];
        for (i, &y) in self.train.labels.iter().enumerate() {
            by_class[y as usize].push(i);
        }
        let mut rand = rng::stream(seed, "validation", 0);
        let mut in_valid = vec![false; self.train.len()];
        for members in &by_class {
            // Every class keeps at least one training example.
            let n = ((members.len() as f64 * fraction as f64).round() as usize)
                .min(members.len().saturating_sub(1));
            let order = rng::permutation(&mut rand, members.len());
            for &k in &order[..n] {
                in_valid[members[k]] = true;
            }
        }
        let valid: Vec<usize> = (0..self.train.len()).filter(|&i| in_valid[i]).collect();
        let rest: Vec<usize> = (0..self.train.len()).filter(|&i| !in_valid[i]).collect();
        self.valid = self.train.select(&valid);
        self.train = self.train.select(&rest);
        Ok(self)
    }
}
