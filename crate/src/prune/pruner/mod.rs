//! How much, and where: from scores and a [`target::Target`] to a
//! [`plan::Plan`] (units, blocks) or [`masks`] (weights), and the surgery
//! that builds the smaller network — the same for every criterion, so
//! methods differ only in what they measure.

pub mod apply;
pub mod masks;
pub mod plan;
pub mod protect;
pub mod select;
pub mod share;
pub mod surgery;
pub mod target;
