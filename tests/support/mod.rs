//! Helpers shared by the end-to-end tests: run the binary, check the outcome.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_prunelab"))
}

pub fn prunelab(args: &[&str]) -> Output {
    bin().args(args).output().expect("the prunelab binary runs")
}

pub fn ok(args: &[&str]) -> (String, String) {
    let out = prunelab(args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "prunelab {args:?} failed:\n{stderr}");
    (stdout, stderr)
}

pub fn fails(args: &[&str]) -> String {
    let out = prunelab(args);
    assert!(!out.status.success(), "prunelab {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The real CIFAR-10 of `../shared/data`, or `None` with a SKIPPED line.
pub fn cifar_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/cifar-10-batches-bin");
    if dir.join("data_batch_1.bin").exists() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: real CIFAR-10 not found at {} (see ../shared/data/README.md)",
            dir.display()
        );
        None
    }
}

/// A public pretrained checkpoint of `../shared/data/pretrained/` (by its
/// upstream file name), or `None` with a SKIPPED line.
pub fn pretrained(file: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/pretrained")
        .join(file);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: the pretrained checkpoint {} is absent (`prunelab data fetch` downloads it)",
            path.display()
        );
        None
    }
}
