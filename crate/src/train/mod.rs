//! The training loop: one struct for every device and every model. It never
//! prints — each step and epoch becomes an [`Event`] — and it never reads a
//! tensor synchronously, so the same code runs in the browser.

mod advance;
pub mod checkpoint;
pub mod config;
mod eval;
pub mod optim;
mod readback;
mod replay;
pub mod schedule;
mod step;
mod trainer;

pub use advance::{Stepper, Until, advance};
pub use config::TrainConfig;
pub use eval::evaluate;
pub use readback::{QueuedFlush, ReadBacks};
pub use step::{Progress, StepStats, Trainable, correct, cross_entropy};
pub use trainer::Trainer;
