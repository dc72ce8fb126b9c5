//! The compositions: what a front door (the CLI, the page) runs, each built
//! from the layers below — a training run, a comparison ([`experiment`]),
//! sweeps, `prunelab reproduce`, benchmarks and the page's lab. Nothing
//! below `runs` uses it.

pub mod training;
pub mod dense;
pub mod experiment;
pub mod sweep;
pub mod reproduce;
pub mod bench;
pub mod lab;
