#![no_main]
//! Tensor packs (models and checkpoints) and their metadata.
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use prunelab::io::model_file;
use prunelab::io::pack::Pack;
use prunelab::train::checkpoint;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.ckpt");
    if let Ok(pack) = Pack::from_bytes(data, path) {
        for name in pack.names().map(String::from).collect::<Vec<_>>() {
            let _ = pack.get(&name);
        }
        if let Ok(meta) = checkpoint::meta(&pack, path) {
            // The checks a resume makes before it allocates anything.
            if model_file::check_fits(&meta.spec, &pack, path).is_ok() {
                let _ = checkpoint::check_contents(&pack, &meta, 6, path);
            }
        }
    }
});
