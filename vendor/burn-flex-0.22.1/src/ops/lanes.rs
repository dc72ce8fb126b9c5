//! prunelab patch (see `docs/operations.md`, "The burn-flex patch"): loops
//! over one feature-map plane written so that the compiler vectorises them,
//! and run under the widest instruction set this CPU has.
//!
//! Why: batch normalisation summed each channel into one f64 accumulator,
//! element by element (a chain of dependent additions, converted from f32 one
//! value at a time), and the crate is compiled for baseline x86-64 (SSE2), so
//! even the loops that did vectorise ran four lanes wide: ~12% of a ResNet-20
//! training step on an AVX-512 machine. Here sums run in [`LANES`]
//! independent accumulators of the element type (f32 error over one plane of
//! at most a few thousand values is far below the tests' tolerances; planes
//! are then added in f64), and each function here is compiled for AVX-512, AVX2
//! and SSE4 and picks one at run time (macerator's `with_simd`, which
//! burn-flex already uses; on wasm32 it is simd128 code). A closure handed to
//! a dispatcher does not do: it is one function shared by every level, which
//! the compiler will not inline into them, so it stays baseline code.

use super::real::Real;

/// Independent accumulators per reduction: enough for two AVX-512 registers
/// of f32, so the additions overlap instead of waiting for each other.
const LANES: usize = 32;

/// A generic function `fn name<T: Real>(args) -> R { body }` compiled once per
/// SIMD level and dispatched at run time (plain code without `simd`).
macro_rules! vectorized_fn {
    ($(#[$meta:meta])* fn $name:ident<T: Real>($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        #[cfg(feature = "simd")]
        #[macerator::with_simd]
        $(#[$meta])*
        pub(crate) fn $name<S: macerator::Simd, T: Real>($($arg: $ty),*) $(-> $ret)? $body
        #[cfg(not(feature = "simd"))]
        $(#[$meta])*
        pub(crate) fn $name<T: Real>($($arg: $ty),*) $(-> $ret)? $body
    };
}

/// `Σ f(a_i, b_i)` over two equally long slices, in `LANES` accumulators of `T`.
#[inline(always)]
fn sum_zip<T: Real>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [T::zero(); LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += f(x[l], y[l]);
        }
    }
    let mut total = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        total += f(*x, *y).to_f64();
    }
    acc.iter().fold(total, |t, v| t + v.to_f64())
}

/// Channel `ch`'s plane in each image of `[N, C, plane]` data.
#[inline(always)]
fn planes<T>(xs: &[T], channels: usize, plane: usize, ch: usize) -> impl Iterator<Item = &[T]> {
    xs.chunks_exact(channels * plane).map(move |image| &image[ch * plane..(ch + 1) * plane])
}

// One dispatch per channel or per image, not per plane: ResNet-20's last
// stage has 8,192 planes of 64 values per layer and batch.

vectorized_fn! {
    /// `Σ x` over channel `ch` of `[N, C, plane]` data.
    fn channel_sum<T: Real>(xs: &[T], channels: usize, plane: usize, ch: usize) -> f64 {
        planes(xs, channels, plane, ch).map(|p| sum_zip(p, p, |v, _| v)).sum()
    }
}

vectorized_fn! {
    /// `Σ (x + shift)²` over channel `ch`: the squared deviations when `shift` is minus the mean.
    fn channel_sum_squares<T: Real>(xs: &[T], channels: usize, plane: usize, ch: usize, shift: T) -> f64 {
        planes(xs, channels, plane, ch).map(|p| sum_zip(p, p, |v, _| (v + shift) * (v + shift))).sum()
    }
}

vectorized_fn! {
    /// `(Σ g, Σ g·(x + shift))` over channel `ch`.
    fn channel_sum_and_dot<T: Real>(g: &[T], xs: &[T], channels: usize, plane: usize, ch: usize, shift: T) -> (f64, f64) {
        let mut sums = (0.0, 0.0);
        for (gp, xp) in planes(g, channels, plane, ch).zip(planes(xs, channels, plane, ch)) {
            sums.0 += sum_zip(gp, gp, |v, _| v);
            sums.1 += sum_zip(gp, xp, |d, v| d * (v + shift));
        }
        sums
    }
}

vectorized_fn! {
    /// One image: `out = x·a_c + b_c` on each channel's plane, `(a_c, b_c)` in `coefficients`.
    fn image_scale_shift<T: Real>(out: &mut [T], x: &[T], plane: usize, coefficients: &[(T, T)]) {
        for ((o, xp), &(a, b)) in out.chunks_exact_mut(plane).zip(x.chunks_exact(plane)).zip(coefficients) {
            for (o, &v) in o.iter_mut().zip(xp) {
                *o = v * a + b;
            }
        }
    }
}

vectorized_fn! {
    /// One image: `out = a_c·g + b_c·x + k_c` on each channel's plane.
    fn image_scale_shift2<T: Real>(out: &mut [T], g: &[T], x: &[T], plane: usize, coefficients: &[(T, T, T)]) {
        let planes = out.chunks_exact_mut(plane).zip(g.chunks_exact(plane)).zip(x.chunks_exact(plane));
        for (((o, gp), xp), &(a, b, k)) in planes.zip(coefficients) {
            for ((o, &d), &v) in o.iter_mut().zip(gp).zip(xp) {
                *o = a * d + b * v + k;
            }
        }
    }
}

vectorized_fn! {
    /// `out_i += x_i`.
    fn add_assign<T: Real>(out: &mut [T], x: &[T]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o += v;
        }
    }
}
