//! Small hostile model files cannot make prunelab allocate more than they
//! hold (issue 33, H1): every reader sizes the tensors from the file's real
//! bytes before reading any. The files are the probe's (`../shared/notes/
//! reliability-probe-2.md`), scaled down; the `.pt` ones are committed
//! fixtures made by the hand-run `tests/interop/make_hostile.py`.

use std::path::{Path, PathBuf};

use crate::common::*;
use prunelab::base::host::block_on;
use prunelab::interop;
use prunelab::io::{model_file, pack};

fn hostile(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/interop/fixtures/hostile")
        .join(name)
}

fn refused(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    interop::read_model(&bytes, path, None, &cpu())
        .err()
        .unwrap_or_else(|| panic!("{} was read", path.display()))
        .to_string()
}

/// A `.plm` listing one block of values under many names (H1a): its
/// "stored" count was what the size check trusted.
#[test]
fn a_model_file_whose_tensors_share_values_is_refused() {
    let m = model(&mlp_spec(&[8]), 1, &cpu());
    let bytes = block_on(model_file::to_bytes(&m, serde_json::Value::Null)).unwrap();
    let header_len = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
    let mut header: serde_json::Value =
        serde_json::from_slice(&bytes[20..20 + header_len]).unwrap();
    let data = &bytes[20 + header_len..bytes.len() - 8];
    let first = header["tensors"][0].clone();
    for i in 0..3 {
        let mut copy = first.clone();
        copy["name"] = format!("model/pad{i}").into();
        header["tensors"].as_array_mut().unwrap().push(copy);
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut forged = bytes[..12].to_vec();
    forged.extend_from_slice(&(header.len() as u64).to_le_bytes());
    forged.extend_from_slice(&header);
    forged.extend_from_slice(data);
    let sum = pack::fnv1a(&forged);
    forged.extend_from_slice(&sum.to_le_bytes());
    let e = interop::read_model(&forged, Path::new("ov.plm"), None, &cpu())
        .err()
        .expect("the forged file is refused")
        .to_string();
    assert!(
        e.contains("share stored values") && e.contains("ov.plm"),
        "{e}"
    );
}

/// PyTorch files whose tensors claim more than the file holds (H1b): one
/// deflated storage of 64 MiB in 66 KB, and 300 names for one 1 MiB
/// storage. Both are refused from their shapes, before a storage is read.
#[test]
fn pytorch_files_claiming_more_than_they_hold_are_refused_before_reading() {
    for (name, claimed) in [("deflated.pt", "67108864"), ("views.pt", "314572800")] {
        let path = hostile(name);
        let e = refused(&path);
        assert!(
            e.contains(claimed) && e.contains("shared by several tensors") && e.contains(name),
            "{name}: {e}"
        );
    }
}
