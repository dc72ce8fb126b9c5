#![no_main]
//! `x,y,label` CSV files.
use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = prunelab::data::csv::parse(data, Path::new("fuzz.csv"));
});
