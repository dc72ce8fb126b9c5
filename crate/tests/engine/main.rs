//! The engine's integration tests, one test binary (one link of the whole
//! burn graph instead of eighteen: minutes off a cold `./build.sh test`).
//! Each module is what used to be its own file-level test crate; filter
//! with `cargo test --release -p prunelab --test engine <module>::`.

#[path = "../common/mod.rs"]
mod common;

mod architecture;
mod conv;
mod criteria;
mod criteria_known;
mod fuzz_regressions;
mod hostile;
mod init;
mod interop;
mod lab;
mod lrp_reference;
mod methods;
mod models;
mod pretrained_start;
mod reference;
mod registry;
mod reproduce;
mod surgery;
mod torch_pruning;
mod training;
