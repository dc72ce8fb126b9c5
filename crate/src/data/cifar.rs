//! CIFAR-10 and CIFAR-100 in the official binary layout (Krizhevsky, 2009).
//!
//! - CIFAR-10: records of 1 label byte (0..9) + 3,072 pixel bytes;
//!   `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`.
//! - CIFAR-100: records of a coarse label (0..19), a fine label (0..99) and
//!   3,072 pixel bytes; `train.bin` and `test.bin`. We train on fine labels.
//!
//! Pixels are 1,024 R, then 1,024 G, then 1,024 B bytes, each plane 32×32
//! row-major — already the `[C, H, W]` layout the models take.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::augment::Normalization;
use super::dataset::{Dataset, Features, Split};
use crate::base::error::{Error, Result};

pub const PIXELS: usize = 3 * 32 * 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    Cifar10,
    Cifar100,
}

impl Variant {
    pub fn record_size(self) -> usize {
        self.label_bytes() + PIXELS
    }

    fn label_bytes(self) -> usize {
        match self {
            Variant::Cifar10 => 1,
            Variant::Cifar100 => 2,
        }
    }

    pub fn classes(self) -> usize {
        match self {
            Variant::Cifar10 => 10,
            Variant::Cifar100 => 100,
        }
    }

    pub fn train_files(self) -> Vec<&'static str> {
        match self {
            Variant::Cifar10 => vec![
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            Variant::Cifar100 => vec!["train.bin"],
        }
    }

    pub fn test_file(self) -> &'static str {
        match self {
            Variant::Cifar10 => "test_batch.bin",
            Variant::Cifar100 => "test.bin",
        }
    }

    /// The published training-set statistics.
    pub fn normalization(self) -> Normalization {
        match self {
            Variant::Cifar10 => Normalization::CIFAR10,
            Variant::Cifar100 => Normalization::CIFAR100,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Variant::Cifar10 => "CIFAR-10",
            Variant::Cifar100 => "CIFAR-100",
        }
    }

    fn download_hint(self) -> String {
        format!(
            "Run `prunelab data fetch {}`, or use the binary version ({} from \
             https://www.cs.toronto.edu/~kriz/cifar.html), unmodified",
            self.name(),
            self.archive().file
        )
    }

    /// The name commands take (`cifar10`, `cifar100`).
    pub fn name(self) -> &'static str {
        match self {
            Variant::Cifar10 => "cifar10",
            Variant::Cifar100 => "cifar100",
        }
    }

    pub fn from_name(name: &str) -> Option<Variant> {
        [Variant::Cifar10, Variant::Cifar100]
            .into_iter()
            .find(|v| v.name() == name)
    }

    /// The official binary archive. The SHA-256 values are the ones
    /// torchvision-independent loaders pin (MLDatasets.jl, GoMLX, red-datasets)
    /// for the files on the authors' page; its MD5s (c32a1d4a…, 03b5dce0…)
    /// are what the page itself publishes.
    pub fn archive(self) -> Archive {
        match self {
            Variant::Cifar10 => Archive {
                url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                file: "cifar-10-binary.tar.gz",
                sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                folder: "cifar-10-batches-bin",
            },
            Variant::Cifar100 => Archive {
                url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                file: "cifar-100-binary.tar.gz",
                sha256: "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
                folder: "cifar-100-binary",
            },
        }
    }

    /// Which layout `dir` holds, by its file names: `train.bin` is
    /// CIFAR-100's, `data_batch_1.bin` CIFAR-10's.
    pub fn detect(dir: &Path) -> Option<Variant> {
        [Variant::Cifar10, Variant::Cifar100]
            .into_iter()
            .find(|v| dir.join(v.train_files()[0]).is_file())
    }

    /// Checks, without reading them, that every file of the layout is in
    /// `dir` and holds whole records.
    pub fn check_layout(self, dir: &Path) -> Result<()> {
        let files = self.train_files().into_iter().chain([self.test_file()]);
        for name in files {
            let path = dir.join(name);
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let record = self.record_size() as u64;
            if len == 0 || !len.is_multiple_of(record) {
                return Err(bad(
                    &path,
                    self,
                    format!("{} is missing or not whole", self.label()),
                    format!("a non-empty file of {record}-byte records"),
                    format!("{len} bytes"),
                ));
            }
        }
        Ok(())
    }
}

/// Where a data set's official archive is and what it holds.
#[derive(Debug, Clone, Copy)]
pub struct Archive {
    pub url: &'static str,
    /// Its file name.
    pub file: &'static str,
    /// Lower-case hex.
    pub sha256: &'static str,
    /// The one top-level folder it unpacks to.
    pub folder: &'static str,
}

fn bad(path: &Path, variant: Variant, problem: String, expected: String, found: String) -> Error {
    Error::BadDataFile {
        path: path.to_path_buf(),
        problem,
        expected,
        found,
        fix: format!("{}.", variant.download_hint()),
    }
}

/// Parses one binary batch file (`bytes`, read from `path`).
pub fn parse(bytes: &[u8], path: &Path, variant: Variant) -> Result<Dataset> {
    let record = variant.record_size();
    if bytes.is_empty() {
        return Err(bad(
            path,
            variant,
            "the file is empty".into(),
            format!("{} records of {record} bytes", variant.label()),
            "0 bytes".into(),
        ));
    }
    if !bytes.len().is_multiple_of(record) {
        let other = match variant {
            Variant::Cifar10 => Variant::Cifar100,
            Variant::Cifar100 => Variant::Cifar10,
        };
        let hint = if bytes.len().is_multiple_of(other.record_size()) {
            format!(
                " — the size fits {} records; is this the other data set?",
                other.label()
            )
        } else {
            String::new()
        };
        return Err(bad(
            path,
            variant,
            format!(
                "the file is truncated or not {} data{hint}",
                variant.label()
            ),
            format!(
                "a multiple of {record} bytes ({} records of {record} bytes)",
                variant.label()
            ),
            format!(
                "{} bytes: {} whole records and {} bytes left over",
                bytes.len(),
                bytes.len() / record,
                bytes.len() % record
            ),
        ));
    }
    let n = bytes.len() / record;
    let classes = variant.classes();
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * PIXELS);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[variant.label_bytes() - 1] as usize;
        if label >= classes {
            return Err(bad(
                path,
                variant,
                format!(
                    "record {i} (byte offset {}) has an out-of-range label",
                    i * record
                ),
                format!("a label in 0..{}", classes - 1),
                format!("{label}"),
            ));
        }
        labels.push(label as u16);
        pixels.extend_from_slice(&rec[variant.label_bytes()..]);
    }
    Ok(Dataset {
        features: Features::Bytes(pixels),
        labels,
        shape: [3, 32, 32],
        classes,
    })
}

/// Concatenates data sets of the same shape.
pub fn concat(parts: Vec<Dataset>) -> Dataset {
    let mut iter = parts.into_iter();
    let mut first = iter.next().expect("concat needs at least one data set");
    for part in iter {
        if let (Features::Bytes(a), Features::Bytes(b)) = (&mut first.features, part.features) {
            a.extend(b);
        }
        first.labels.extend(part.labels);
    }
    first
}

/// The most records one file may hold (CIFAR-100's train.bin has 50,000).
const MAX_RECORDS: u64 = 60_000;

fn read(path: &Path, variant: Variant) -> Result<Dataset> {
    // The metadata first: a FIFO, a device (a link to /dev/zero) or a huge
    // file is refused before a byte is read.
    if let Ok(meta) = std::fs::metadata(path) {
        let max = MAX_RECORDS * variant.record_size() as u64;
        if !meta.is_file() || meta.len() > max {
            let found = if meta.is_file() {
                format!("{} bytes", meta.len())
            } else {
                "not a regular file".into()
            };
            return Err(bad(
                path,
                variant,
                "this is not a CIFAR batch file".into(),
                format!("a regular file of at most {MAX_RECORDS} records ({max} bytes)"),
                found,
            ));
        }
    }
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            bad(
                path,
                variant,
                "the file is missing".into(),
                format!(
                    "the {} binary layout: {} and {}",
                    variant.label(),
                    variant.train_files().join(", "),
                    variant.test_file()
                ),
                "no such file".into(),
            )
        } else {
            Error::io(path, e)
        }
    })?;
    parse(&bytes, path, variant)
}

/// Loads explicit training and test files.
pub fn load_files(train: &[PathBuf], test: &[PathBuf], variant: Variant) -> Result<Split> {
    let train = concat(
        train
            .iter()
            .map(|p| read(p, variant))
            .collect::<Result<_>>()?,
    );
    let test = concat(
        test.iter()
            .map(|p| read(p, variant))
            .collect::<Result<_>>()?,
    );
    Ok(Split::new(
        train,
        test,
        Some(variant.normalization()),
        format!("{:?}", variant).to_lowercase(),
    ))
}

/// A split from files held in memory (the page's dropped files): names with
/// `test` are the test set, the others the training set.
pub fn from_files(files: &[(String, Vec<u8>)], variant: Variant) -> Result<Split> {
    let parse = |f: &(String, Vec<u8>)| parse(&f.1, Path::new(&f.0), variant);
    let is_test = |f: &&(String, Vec<u8>)| f.0.contains("test");
    let train: Vec<Dataset> = files
        .iter()
        .filter(|f| !is_test(f))
        .map(parse)
        .collect::<Result<_>>()?;
    let test: Vec<Dataset> = files
        .iter()
        .filter(is_test)
        .map(parse)
        .collect::<Result<_>>()?;
    if train.is_empty() || test.is_empty() {
        return Err(Error::config(
            "files",
            files
                .iter()
                .map(|f| f.0.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            "give at least one training batch (data_batch_N.bin / train.bin) and the test batch (a name with \"test\")",
        ));
    }
    Ok(Split::new(
        concat(train),
        concat(test),
        Some(variant.normalization()),
        "browser files",
    ))
}

/// Loads a directory in the official layout.
pub fn load_dir(dir: &Path, variant: Variant) -> Result<Split> {
    if !dir.is_dir() {
        return Err(bad(
            dir,
            variant,
            "the data directory does not exist".into(),
            format!(
                "a directory holding {} and {}",
                variant.train_files().join(", "),
                variant.test_file()
            ),
            "nothing at this path".into(),
        ));
    }
    let train: Vec<PathBuf> = variant.train_files().iter().map(|f| dir.join(f)).collect();
    let mut split = load_files(&train, &[dir.join(variant.test_file())], variant)?;
    split.source = format!("{}:{}", split.source, dir.display());
    Ok(split)
}

#[cfg(test)]
mod tests;
