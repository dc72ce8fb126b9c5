//! The interactive lab behind the playground: train a little, prune with a
//! slider from cached importances, fine-tune, or run S1's gated pass step by
//! step. Backend-agnostic (the page drives it on WebGPU or the CPU; the tests
//! drive it natively); every read is asynchronous. This file is the session;
//! [`views`] is what the page draws, [`inspect`] what it looks at.
//!
//! Methods come from the registry: the slider ranks by a method's own
//! [`Method::score`] with its paper's ranking defaults, and training goes
//! through the engine's one loop ([`crate::train::advance`]) whose progress
//! events the page renders.

pub mod inspect;
mod session;
pub mod views;

pub use session::{Lab, LabReport, PruneReport, Sizes};
