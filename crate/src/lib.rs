//! prunelab: neural-network pruning you can see and reproduce.
//!
//! Data flows one way, and the modules are listed in that order — each uses
//! only those above it (`crate/tests/engine/architecture.rs` checks): the
//! foundations ([`base`]); the [`data`] and the [`model`] (with what
//! measures and stores it); the [`train`]ing loop; [`prune`] (criteria,
//! selection, surgery, the methods, which train through `train`); the run
//! file's top level ([`config`]); [`report`]s; and the compositions
//! ([`runs`]) — a training run, a comparison, sweeps, reproductions,
//! benchmarks and the page's lab. The engine never prints and never touches
//! the DOM; it emits [`base::events`] that the CLI (`bin/`) and the page
//! (`web`) render.

// Foundations.
pub mod base;

// What is trained and measured.
pub mod data;
pub mod model;
pub mod metrics;
pub mod io;
pub mod interop;

// Training, then pruning (methods train and fine-tune).
pub mod train;
pub mod prune;

// The run file, and what comes out.
pub mod config;
pub mod report;

// Compositions: a training run, a comparison, sweeps, reproductions,
// benchmarks, the lab.
pub mod runs;

#[cfg(feature = "web-bindings")]
pub mod web;

pub use base::error::{Error, Result};
