#![no_main]
//! CIFAR-10/100 binary batches: any bytes give a dataset or a clear error.
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use prunelab::data::cifar::{Variant, parse};

fuzz_target!(|data: &[u8]| {
    for variant in [Variant::Cifar10, Variant::Cifar100] {
        let _ = parse(data, Path::new("fuzz.bin"), variant);
    }
});
