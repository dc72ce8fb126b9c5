//! Seeded randomness. Nothing in prunelab draws from a global or OS source:
//! every stream comes from the run's seed and a purpose tag, so any epoch,
//! batch or pruning decision can be reproduced (and resumed) on its own.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub type Rand = ChaCha8Rng;

/// A stream for `(seed, purpose, index)`, e.g. `(42, "shuffle", epoch)`.
pub fn stream(seed: u64, purpose: &str, index: u64) -> Rand {
    // FNV-1a over the tag keeps streams for different purposes independent.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in purpose.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ h.rotate_left(17));
    rng.set_stream(index);
    rng
}

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut Rand) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// A uniform draw in `[lo, hi)`.
pub fn uniform(rng: &mut Rand, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

/// `0..n` in a seeded random order (Fisher–Yates).
pub fn permutation(rng: &mut Rand, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    order
}
