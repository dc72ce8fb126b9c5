//! The page's `.pt` reader against burn-store's (the CLI's), on the repo's
//! fixtures and the published checkpoints: the same names, shapes and
//! values, bit for bit; and the same refusals of the hostile fixtures.

use std::path::{Path, PathBuf};

use super::read;
use crate::interop::pytorch;
use crate::interop::state_dict::StateDict;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn same(ours: &StateDict, theirs: &StateDict, file: &Path) {
    let names = |d: &StateDict| d.floats.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(ours), names(theirs), "{}", file.display());
    assert_eq!(ours.others, theirs.others, "{}", file.display());
    for (a, b) in ours.floats.iter().zip(&theirs.floats) {
        assert_eq!(a.shape, b.shape, "{}", a.name);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(
            bits(&a.values) == bits(&b.values),
            "{}: values differ",
            a.name
        );
    }
}

fn both(file: &Path) -> (StateDict, StateDict) {
    let bytes = std::fs::read(file).unwrap();
    let ours = read(&bytes).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let theirs = pytorch::read(file, bytes.len() as u64).unwrap();
    (ours, theirs)
}

#[test]
fn a_zip_checkpoint_reads_as_burn_store_reads_it() {
    let file = repo("tests/interop/fixtures/resnet20-b.pt");
    let (ours, theirs) = both(&file);
    assert!(ours.floats.len() > 50, "{} tensors", ours.floats.len());
    assert!(!ours.others.is_empty(), "BatchNorm's counters are others");
    same(&ours, &theirs, &file);
}

#[test]
fn the_published_legacy_checkpoints_read_as_burn_store_reads_them() {
    let dir = repo("../shared/data/pretrained");
    let files: Vec<PathBuf> = ["resnet20-12fca82f.th", "resnet56-4bfd9763.th"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|f| f.is_file())
        .collect();
    if files.is_empty() {
        eprintln!("skipped: no published checkpoints in {}", dir.display());
        return;
    }
    for file in files {
        let (ours, theirs) = both(&file);
        // DataParallel's `module.` prefix, nested under `state_dict`.
        assert!(
            ours.floats[0].name.starts_with("state_dict.module."),
            "{}",
            ours.floats[0].name
        );
        same(&ours, &theirs, &file);
    }
}

#[test]
fn the_hostile_fixtures_are_refused_before_they_are_unpacked() {
    let dir = repo("tests/interop/fixtures/hostile");
    for (name, says) in [
        ("deflated.pt", "compressed"),
        ("views.pt", "shared by several tensors"),
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let e = read(&bytes).unwrap_err();
        assert!(e.contains(says), "{name}: {e}");
    }
}

#[test]
fn cut_and_altered_checkpoints_are_refused_without_a_panic() {
    let bytes = std::fs::read(repo("tests/interop/fixtures/resnet20-b.pt")).unwrap();
    // Cut anywhere: never a panic, and never a tensor read past the end.
    for keep in (0..bytes.len()).step_by(bytes.len() / 97) {
        assert!(read(&bytes[..keep]).is_err(), "cut at {keep}");
    }
    // Every byte of the pickle flipped in turn: an error or a state dict,
    // never a panic.
    let at = bytes.windows(8).position(|w| w == b"data.pkl").unwrap();
    let mut altered = bytes.clone();
    for i in at..(at + 4000).min(bytes.len()) {
        altered[i] ^= 0x5a;
        let _ = read(&altered);
        altered[i] ^= 0x5a;
    }
}
