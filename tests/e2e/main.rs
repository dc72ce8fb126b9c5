//! End-to-end tests: they drive the `prunelab` binary (CLI, fault injection,
//! `data fetch` against a local server, `serve`). One test binary; filter
//! with `cargo test --release -p prunelab --test e2e cli::`.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod faults;
mod fetch;
mod serve;
