#![no_main]
//! Tensor packs (models and checkpoints) and their metadata.
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use prunelab::io::pack::Pack;
use prunelab::train::checkpoint;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.ckpt");
    if let Ok(pack) = Pack::from_bytes(data, path) {
        for name in pack.names().map(String::from).collect::<Vec<_>>() {
            let _ = pack.get(&name);
        }
        if let Ok(meta) = checkpoint::meta(&pack, path) {
            let _ = meta.spec.validate();
        }
    }
});
