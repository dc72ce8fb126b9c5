//! prunelab: neural-network pruning you can see and reproduce.
//!
//! Data flows one way: [`config`] → [`model`] → [`prune`] → [`train`] →
//! [`report`]. The engine never prints and never touches the DOM; it emits
//! [`events`] that the CLI (`bin/`) and the page (`web`) render.

pub mod bench;
pub mod clock;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod events;
pub mod experiment;
pub mod fault;
pub mod host;
pub mod interrupt;
pub mod io;
pub mod lab;
pub mod metrics;
pub mod model;
pub mod prune;
pub mod report;
pub mod rng;
pub mod run;
pub mod sweep;
pub mod train;

#[cfg(feature = "web")]
pub mod web;

pub use error::{Error, Result};
