//! Replays the inputs in `fuzz/regressions/<target>/` through the loaders the
//! fuzz targets exercise: hand-made hostile files, and any crash the fuzzer
//! ever found. Every one must give an error (these are all invalid) — never
//! a panic, a hang or a huge allocation.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use prunelab::config::RunConfig;
use prunelab::data::cifar::{self, Variant};
use prunelab::data::csv;
use prunelab::io::model_file;
use prunelab::io::pack::Pack;
use prunelab::runs::experiment::ExperimentConfig;
use prunelab::runs::sweep::SweepConfig;
use prunelab::train::checkpoint;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no regression inputs in {}",
        dir.display()
    );
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn hostile_cifar_batches_are_errors() {
    for (path, bytes) in inputs("cifar") {
        for variant in [Variant::Cifar10, Variant::Cifar100] {
            assert!(
                cifar::parse(&bytes, &path, variant).is_err(),
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn hostile_csv_files_are_errors() {
    for (path, bytes) in inputs("csv") {
        assert!(csv::parse(&bytes, &path).is_err(), "{}", path.display());
    }
}

/// Whether every check a loader makes before using a pack refuses it: the
/// format, then for a model the architecture and values, for a checkpoint
/// its metadata and whether its parts agree (with 6 steps per epoch, as the
/// run `fuzz/regressions/forge.py` forges from).
fn refused(bytes: &[u8], path: &Path) -> bool {
    let Ok(pack) = Pack::from_bytes(bytes, path) else {
        return true;
    };
    if pack.kind == model_file::KIND {
        return model_file::from_bytes(bytes, path, &Device::flex()).is_err();
    }
    let Ok(meta) = checkpoint::meta(&pack, path) else {
        return true;
    };
    model_file::check_fits(&meta.spec, &pack, path).is_err()
        || checkpoint::check_contents(&pack, &meta, 6, path).is_err()
}

#[test]
fn hostile_checkpoints_are_errors() {
    for (path, bytes) in inputs("checkpoint") {
        assert!(refused(&bytes, &path), "{}", path.display());
    }
    // The files they were forged from pass the same checks.
    for (path, bytes) in inputs("valid") {
        assert!(!refused(&bytes, &path), "{}", path.display());
    }
}

#[test]
fn hostile_configs_are_errors() {
    for (path, bytes) in inputs("config") {
        let text = String::from_utf8_lossy(&bytes);
        let origin = path.display().to_string();
        assert!(RunConfig::from_toml(&text, &origin).is_err(), "{origin}");
        assert!(
            ExperimentConfig::from_toml(&text, &origin).is_err(),
            "{origin}"
        );
        assert!(SweepConfig::from_toml(&text, &origin).is_err(), "{origin}");
    }
}
