//! prunelab patch (see `docs/operations.md`, "The burn-flex patch"): the
//! sizes of one 2-D convolution and its patch buffer — im2col, which lays
//! out one image's patches as the rows of a matrix for `conv2d_nchw.rs`'s
//! GEMMs, and col2im, its adjoint.

use super::lanes::add_assign;
use super::real::Real;
use burn_backend::ops::ConvOptions;

/// The sizes of one 2-D convolution.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    pub(super) batch: usize,
    pub(super) c_in: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) c_out: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) stride: [usize; 2],
    pub(super) pad: [usize; 2],
    pub(super) dilation: [usize; 2],
    pub(super) groups: usize,
}

impl Geometry {
    pub(super) fn new(x: &[usize], weight: &[usize], options: &ConvOptions<2>) -> Self {
        let out = |i: usize, size: usize, k: usize| {
            let (begin, end) = options.padding[i];
            (size + begin + end - options.dilation[i] * (k - 1) - 1) / options.stride[i] + 1
        };
        Self {
            batch: x[0],
            c_in: x[1],
            h: x[2],
            w: x[3],
            c_out: weight[0],
            kh: weight[2],
            kw: weight[3],
            oh: out(0, x[2], weight[2]),
            ow: out(1, x[3], weight[3]),
            stride: options.stride,
            pad: [options.padding[0].0, options.padding[1].0],
            dilation: options.dilation,
            groups: options.groups,
        }
    }
    pub(super) fn c_in_group(&self) -> usize {
        self.c_in / self.groups
    }
    pub(super) fn c_out_group(&self) -> usize {
        self.c_out / self.groups
    }
    /// Rows of one group's im2col buffer.
    pub(super) fn col_rows(&self) -> usize {
        self.c_in_group() * self.kh * self.kw
    }
    pub(super) fn spatial(&self) -> usize {
        self.oh * self.ow
    }
    /// Stride 1, no dilation, and the output the input's size, with the
    /// kernel inside the padding (every shift at most the padding).
    pub(super) fn keeps_size(&self) -> bool {
        self.stride == [1, 1]
            && self.dilation == [1, 1]
            && self.oh == self.h
            && self.ow == self.w
            && self.pad[0] < self.kh
            && self.pad[1] < self.kw
    }
    /// For a size-keeping convolution centred on each pixel (padding
    /// `(k − 1)/2` on both sides), one group: the geometry of the
    /// convolution that computes its input gradient from its output
    /// gradient (channels swapped, everything else the same).
    pub(super) fn transposed(&self) -> Option<Geometry> {
        let centred = 2 * self.pad[0] + 1 == self.kh && 2 * self.pad[1] + 1 == self.kw;
        (self.keeps_size() && centred && self.groups == 1).then_some(Geometry {
            c_in: self.c_out,
            c_out: self.c_in,
            ..*self
        })
    }
    /// `[lo, hi)`: the output columns whose input column `ox·s + off` is inside the image.
    pub(super) fn valid_cols(&self, off: isize) -> (usize, usize) {
        let s = self.stride[1] as isize;
        let lo = if off >= 0 { 0 } else { ((-off) + s - 1) / s };
        let hi = if (self.w as isize) <= off {
            0
        } else {
            ((self.w as isize - off + s - 1) / s).min(self.ow as isize)
        };
        let lo = (lo as usize).min(self.ow);
        (lo, (hi.max(0) as usize).max(lo))
    }
    /// The input row read by output row `oy` at kernel row `i`, if inside the image.
    pub(super) fn input_row(&self, oy: usize, i: usize) -> Option<usize> {
        let y = (oy * self.stride[0] + i * self.dilation[0]) as isize - self.pad[0] as isize;
        (y >= 0 && (y as usize) < self.h).then_some(y as usize)
    }
}

/// One image's (`x`: `[c_in_group, h, w]` of group `g`) patches as
/// `col[(c, i, j), p]`.
pub(super) fn im2col<T: Real>(g: &Geometry, x: &[T], col: &mut [T]) {
    if g.keeps_size() {
        return im2col_same(g, x, col);
    }
    let (hw, sp) = (g.h * g.w, g.spatial());
    for c in 0..g.c_in_group() {
        let plane = &x[c * hw..(c + 1) * hw];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut col[((c * g.kh + i) * g.kw + j) * sp..][..sp];
                let off = (j * g.dilation[1]) as isize - g.pad[1] as isize;
                let (lo, hi) = g.valid_cols(off);
                for oy in 0..g.oh {
                    let out = &mut row[oy * g.ow..(oy + 1) * g.ow];
                    let Some(y) = g.input_row(oy, i) else {
                        out.fill(T::zero());
                        continue;
                    };
                    let src = &plane[y * g.w..(y + 1) * g.w];
                    out[..lo].fill(T::zero());
                    out[hi..].fill(T::zero());
                    if g.stride[1] == 1 {
                        let start = (lo as isize + off) as usize;
                        out[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                    } else if lo < hi {
                        let start = (lo as isize * g.stride[1] as isize + off) as usize;
                        let taken = src[start..].iter().step_by(g.stride[1]);
                        for (v, &x) in out[lo..hi].iter_mut().zip(taken) {
                            *v = x;
                        }
                    }
                }
            }
        }
    }
}

/// `im2col` for a size-keeping convolution (stride 1, no dilation, the
/// output as large as the input: a 3×3 with padding 1). Each patch row is
/// then the whole input plane shifted by `dy·w + dx` — one copy, not one per
/// output row (rows of 8 to 32 values, each a `memcpy` call, were a fifth of
/// a ResNet-20 training step) — with the rows shifted in from outside the
/// image and the columns that wrapped around set to zero.
fn im2col_same<T: Real>(g: &Geometry, x: &[T], col: &mut [T]) {
    let (h, w) = (g.h, g.w);
    let hw = h * w;
    for c in 0..g.c_in_group() {
        let plane = &x[c * hw..(c + 1) * hw];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut col[((c * g.kh + i) * g.kw + j) * hw..][..hw];
                let dy = i as isize - g.pad[0] as isize;
                let dx = j as isize - g.pad[1] as isize;
                let shift = dy * w as isize + dx;
                // Output positions whose source index lies in the plane.
                let lo = (-shift).clamp(0, hw as isize) as usize;
                let hi = (hw as isize - shift).clamp(lo as isize, hw as isize) as usize;
                row[..lo].fill(T::zero());
                row[hi..].fill(T::zero());
                let start = (lo as isize + shift) as usize;
                row[lo..hi].copy_from_slice(&plane[start..start + (hi - lo)]);
                // Columns whose source wrapped onto the neighbouring row.
                let (c0, c1) = if dx < 0 { (0, (-dx) as usize) } else { (w.saturating_sub(dx as usize), w) };
                if c0 < c1.min(w) {
                    for line in row.chunks_exact_mut(w) {
                        line[c0..c1.min(w)].fill(T::zero());
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds each patch entry back onto its pixel.
/// (`col` is scratch: the size-keeping case overwrites parts of it.)
pub(super) fn col2im<T: Real>(g: &Geometry, col: &mut [T], dx: &mut [T]) {
    if g.keeps_size() {
        return col2im_same(g, col, dx);
    }
    let (hw, sp) = (g.h * g.w, g.spatial());
    for c in 0..g.c_in_group() {
        let plane = &mut dx[c * hw..(c + 1) * hw];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &col[((c * g.kh + i) * g.kw + j) * sp..][..sp];
                let off = (j * g.dilation[1]) as isize - g.pad[1] as isize;
                let (lo, hi) = g.valid_cols(off);
                for oy in 0..g.oh {
                    let Some(y) = g.input_row(oy, i) else { continue };
                    let src = &row[oy * g.ow..(oy + 1) * g.ow];
                    let dst = &mut plane[y * g.w..(y + 1) * g.w];
                    if g.stride[1] == 1 {
                        let start = (lo as isize + off) as usize;
                        for (d, s) in dst[start..start + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                            *d += *s;
                        }
                    } else {
                        for ox in lo..hi {
                            dst[(ox as isize * g.stride[1] as isize + off) as usize] += src[ox];
                        }
                    }
                }
            }
        }
    }
}

/// `col2im` for a size-keeping convolution, the adjoint of `im2col_same`:
/// each patch row is added onto the plane shifted by `dy·w + dx` in one
/// vectorised pass, after zeroing (in the scratch buffer) the entries of the
/// columns that wrapped around, which `im2col_same` had set to zero. Row by
/// row with per-element bounds, this was 7% of a ResNet-20 training step.
fn col2im_same<T: Real>(g: &Geometry, col: &mut [T], dx: &mut [T]) {
    let (h, w) = (g.h, g.w);
    let hw = h * w;
    for c in 0..g.c_in_group() {
        let plane = &mut dx[c * hw..(c + 1) * hw];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut col[((c * g.kh + i) * g.kw + j) * hw..][..hw];
                let dy = i as isize - g.pad[0] as isize;
                let dx = j as isize - g.pad[1] as isize;
                let shift = dy * w as isize + dx;
                let lo = (-shift).clamp(0, hw as isize) as usize;
                let hi = (hw as isize - shift).clamp(lo as isize, hw as isize) as usize;
                let (c0, c1) = if dx < 0 { (0, (-dx) as usize) } else { (w.saturating_sub(dx as usize), w) };
                if c0 < c1.min(w) {
                    for line in row.chunks_exact_mut(w) {
                        line[c0..c1.min(w)].fill(T::zero());
                    }
                }
                let start = (lo as isize + shift) as usize;
                add_assign(&mut plane[start..start + (hi - lo)], &row[lo..hi]);
            }
        }
    }
}
