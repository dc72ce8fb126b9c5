//! Data sets held in memory, and batches made from them. Images stay as bytes
//! until a batch is made (CIFAR-10 is 150 MB as bytes, 600 MB as floats);
//! augmentation and normalisation happen per batch.

pub mod augment;
pub mod cifar;
pub mod config;
pub mod csv;
mod dataset;
pub mod loader;
mod source;
pub mod toy;

pub use config::DataConfig;
pub use config::Given;
pub use dataset::{Dataset, Features, Split};
pub use source::DataSource;
