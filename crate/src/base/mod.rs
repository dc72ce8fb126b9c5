//! The foundations every layer above uses and none of them defines: errors,
//! the memory the machine can spare, time, seeded randomness, reading tensors back to the host, fault
//! injection, interrupts, the events the engine emits, and the devices it
//! runs on. Nothing here knows a model, a data set or a pruning method.

pub mod error;
pub mod memory;
pub mod clock;
pub mod rng;
pub mod host;
pub mod fault;
pub mod interrupt;
pub mod events;
pub mod device;
