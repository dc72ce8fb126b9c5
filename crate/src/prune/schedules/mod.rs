//! Methods whose schedule is their own: S1's one gated pass, FlexRel's
//! choice of δ and factor, S4's layer lottery, IMP's rounds, and the
//! BN-scale methods that train a penalised pass first (slimming, Polar).

pub mod flexrel;
pub mod imp;
pub mod lottery;
pub mod polar;
pub mod s1;
pub mod slimming;
