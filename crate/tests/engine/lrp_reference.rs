//! An independent f64 reference for LRP-ε weight relevance
//! (`prune::lrp::weight_relevance` with `Relevance::LrpEpsilon`).
//!
//! The reference below uses no burn autodiff and no gradient trick: it runs
//! an explicit forward pass in f64 loops (conv with its eval-mode BN folded
//! into an affine map `z = W'a + b'`, ReLU, 2×2 max-pool, residual addition
//! with option-A shortcuts, global average pooling, linear), stores every
//! activation, and then applies the LRP rules as relevance *messages*:
//!
//! - start: `R = logit` at each sample's predicted class, 0 elsewhere;
//! - every weight layer (conv+BN, linear), at its output `z`:
//!   `R_a = a ⊙ W'ᵀ(R_z / (z + ε'))`, `ε' = ε·rms(z)·sign(z)`, the rms taken
//!   over the whole `z` tensor of the batch, `sign(0) = +`;
//! - ReLU passes relevance (zero where `z ≤ 0`);
//! - max-pool gives a window's relevance to its winner;
//! - global average pooling and residual additions split relevance in
//!   proportion to their inputs; option-A zero padding takes none;
//! - a node read by two paths (a block's input) sums their relevance.
//!
//! Per weight (the definition in `prune::lrp`): conv
//! `R(w[o,c,u,v]) = Σ_{samples, out positions} R_in(patch element (c,u,v))
//! + Σ_{samples, positions} R_z[o]` (zero-padded reads contribute 0), linear
//! `R(w[k,j]) = Σ_samples R(a_k) + R(z_j)`, `[d_in, d_out]` layout.
//!
//! ε is large (0.25, 1.0): with ε → 0 on a bias-free net conservation holds
//! for almost any implementation, so it checks little. With BN shifts and
//! linear biases present and ε ≫ 0, the stabiliser's scale, sign and
//! reduction all change the result; the test also shows that the
//! tolerance separates the rule from three near-miss variants.

use burn::module::{Param, RunningState};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::tensor::{Tensor, TensorData};
use prunelab::base::device::OpenDevice;
use prunelab::base::host::{block_on, floats};
use prunelab::data::{Dataset, Features, Split};
use prunelab::model::geometry::LayerOp;
use prunelab::model::layers::ConvBn;
use prunelab::model::spec::{
    BlockSpec, ModelSpec, PlainLayer, PlainSpec, ResNetSpec, Shortcut, StageSpec,
};
use prunelab::model::{Model, Net};
use prunelab::prune::lrp::Relevance;
use prunelab::prune::lrp::weight_relevance;

/// Allowed error per layer, relative to the layer's largest |R| (reference).
///
/// The engine computes in f32 (unit round-off 6e-8). Each relevance value
/// passes through ≤ 4 weight layers of ≤ 72 products each, forward and
/// backward, and the per-weight sums add ≤ 6·64 such values, so rounding
/// alone stays around 1e-6 of the layer's scale (measured: at most 1.5e-6).
/// Every denominator is at least `ε·rms(z)` away from 0 (ε ≥ 0.25), so there
/// is no ill-conditioned division. 2e-5 leaves > 10× headroom; the near-miss
/// variants differ from the engine by 1e-2 or more (asserted: > 20·TOL).
const TOL: f64 = 2e-5;

// ---------------------------------------------------------------- tensors

/// `[N, C, H, W]`, row-major, f64.
#[derive(Clone, Debug)]
struct T4 {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    v: Vec<f64>,
}

impl T4 {
    fn zeros(n: usize, c: usize, h: usize, w: usize) -> T4 {
        T4 {
            n,
            c,
            h,
            w,
            v: vec![0.0; n * c * h * w],
        }
    }
    fn like(t: &T4) -> T4 {
        T4::zeros(t.n, t.c, t.h, t.w)
    }
    fn at(&self, n: usize, c: usize, y: usize, x: usize) -> usize {
        ((n * self.c + c) * self.h + y) * self.w + x
    }
    fn map2(&self, other: &T4, f: impl Fn(f64, f64) -> f64) -> T4 {
        assert_eq!(self.v.len(), other.v.len());
        T4 {
            v: self
                .v
                .iter()
                .zip(&other.v)
                .map(|(&a, &b)| f(a, b))
                .collect(),
            ..*self
        }
    }
}

// ------------------------------------------------------- reference layers

/// The variant of the stabiliser: the rule, and near misses that the test
/// must tell apart from it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stab {
    /// `ε·rms(z)·sign(z)`, rms over the whole batch tensor.
    Rule,
    /// `ε·rms(z)` without the sign.
    NoSign,
    /// rms per sample instead of per batch.
    PerSample,
    /// ε' = 0 (LRP-0 = gradient × input).
    Zero,
}

/// `ε'` for every element of a layer's output `z` (`per` values per sample).
fn stabiliser(z: &[f64], n: usize, eps: f64, stab: Stab) -> Vec<f64> {
    let sign = |v: f64| if v >= 0.0 { 1.0 } else { -1.0 };
    let rms = |s: &[f64]| (s.iter().map(|v| v * v).sum::<f64>() / s.len() as f64).sqrt();
    match stab {
        Stab::Rule => {
            let r = rms(z);
            z.iter().map(|&v| eps * r * sign(v)).collect()
        }
        Stab::NoSign => {
            let r = rms(z);
            z.iter().map(|_| eps * r).collect()
        }
        Stab::PerSample => {
            let per = z.len() / n;
            z.chunks(per)
                .flat_map(|s| {
                    let r = rms(s);
                    s.iter().map(move |&v| eps * r * sign(v))
                })
                .collect()
        }
        Stab::Zero => vec![0.0; z.len()],
    }
}

/// `R_z / (z + ε')`, 0 where both vanish (only possible with `Stab::Zero`).
fn ratio(r_z: &[f64], z: &[f64], n: usize, eps: f64, stab: Stab) -> Vec<f64> {
    let e = stabiliser(z, n, eps, stab);
    r_z.iter()
        .zip(z)
        .zip(&e)
        .map(|((&r, &z), &e)| if z + e == 0.0 { 0.0 } else { r / (z + e) })
        .collect()
}

/// A conv followed by eval-mode BN, folded: `z = W'*a + b'`.
struct ConvRef {
    name: String,
    o: usize,
    c: usize,
    k: usize,
    stride: usize,
    /// `[O, C, k, k]`, `W' = γ/√(var+ε_bn) · W`.
    w: Vec<f64>,
    /// `b' = β − γ·mean/√(var+ε_bn)`.
    b: Vec<f64>,
}

impl ConvRef {
    fn pad(&self) -> usize {
        self.k / 2
    }
    fn out_hw(&self, h: usize) -> usize {
        (h + 2 * self.pad() - self.k) / self.stride + 1
    }
    fn wi(&self, o: usize, c: usize, u: usize, v: usize) -> usize {
        ((o * self.c + c) * self.k + u) * self.k + v
    }
    /// The input position read by output position `i` at kernel offset `u`.
    fn src(&self, i: usize, u: usize, size: usize) -> Option<usize> {
        let p = (i * self.stride + u) as isize - self.pad() as isize;
        (p >= 0 && (p as usize) < size).then_some(p as usize)
    }

    fn forward(&self, a: &T4) -> T4 {
        assert_eq!(a.c, self.c, "{}: input channels", self.name);
        let (ho, wo) = (self.out_hw(a.h), self.out_hw(a.w));
        let mut z = T4::zeros(a.n, self.o, ho, wo);
        for n in 0..a.n {
            for o in 0..self.o {
                for i in 0..ho {
                    for j in 0..wo {
                        let mut s = self.b[o];
                        for c in 0..self.c {
                            for u in 0..self.k {
                                let Some(y) = self.src(i, u, a.h) else {
                                    continue;
                                };
                                for v in 0..self.k {
                                    let Some(x) = self.src(j, v, a.w) else {
                                        continue;
                                    };
                                    s += self.w[self.wi(o, c, u, v)] * a.v[a.at(n, c, y, x)];
                                }
                            }
                        }
                        let at = z.at(n, o, i, j);
                        z.v[at] = s;
                    }
                }
            }
        }
        z
    }

    /// The ε rule: `R_a = a ⊙ W'ᵀ(R_z / (z + ε'))`.
    fn lrp(&self, a: &T4, z: &T4, r_z: &T4, eps: f64, stab: Stab) -> T4 {
        let q = ratio(&r_z.v, &z.v, z.n, eps, stab);
        let mut back = T4::like(a);
        for n in 0..z.n {
            for o in 0..self.o {
                for i in 0..z.h {
                    for j in 0..z.w {
                        let qo = q[z.at(n, o, i, j)];
                        if qo == 0.0 {
                            continue;
                        }
                        for c in 0..self.c {
                            for u in 0..self.k {
                                let Some(y) = self.src(i, u, a.h) else {
                                    continue;
                                };
                                for v in 0..self.k {
                                    let Some(x) = self.src(j, v, a.w) else {
                                        continue;
                                    };
                                    let at = a.at(n, c, y, x);
                                    back.v[at] += self.w[self.wi(o, c, u, v)] * qo;
                                }
                            }
                        }
                    }
                }
            }
        }
        a.map2(&back, |a, g| a * g)
    }

    /// Adds `R(w[o,c,u,v])` of one batch to `acc`.
    fn per_weight(&self, r_in: &T4, r_z: &T4, acc: &mut [f64]) {
        let mut input = vec![0.0; self.c * self.k * self.k];
        for n in 0..r_z.n {
            for i in 0..r_z.h {
                for j in 0..r_z.w {
                    for c in 0..self.c {
                        for u in 0..self.k {
                            let Some(y) = self.src(i, u, r_in.h) else {
                                continue;
                            };
                            for v in 0..self.k {
                                let Some(x) = self.src(j, v, r_in.w) else {
                                    continue;
                                };
                                input[(c * self.k + u) * self.k + v] += r_in.v[r_in.at(n, c, y, x)];
                            }
                        }
                    }
                }
            }
        }
        let output: Vec<f64> = (0..self.o)
            .map(|o| {
                let mut s = 0.0;
                for n in 0..r_z.n {
                    for i in 0..r_z.h {
                        for j in 0..r_z.w {
                            s += r_z.v[r_z.at(n, o, i, j)];
                        }
                    }
                }
                s
            })
            .collect();
        for (o, out) in output.iter().enumerate() {
            for (e, inp) in input.iter().enumerate() {
                acc[o * input.len() + e] += inp + out;
            }
        }
    }
}

/// `z = a W + b`, `W` as `[d_in, d_out]`.
struct LinRef {
    name: String,
    d_in: usize,
    d_out: usize,
    w: Vec<f64>,
    b: Vec<f64>,
}

impl LinRef {
    fn forward(&self, a: &[f64], n: usize) -> Vec<f64> {
        let mut z = vec![0.0; n * self.d_out];
        for s in 0..n {
            for j in 0..self.d_out {
                let mut t = self.b[j];
                for k in 0..self.d_in {
                    t += a[s * self.d_in + k] * self.w[k * self.d_out + j];
                }
                z[s * self.d_out + j] = t;
            }
        }
        z
    }

    fn lrp(&self, a: &[f64], z: &[f64], r_z: &[f64], n: usize, eps: f64, stab: Stab) -> Vec<f64> {
        let q = ratio(r_z, z, n, eps, stab);
        let mut r = vec![0.0; n * self.d_in];
        for s in 0..n {
            for k in 0..self.d_in {
                let mut t = 0.0;
                for j in 0..self.d_out {
                    t += self.w[k * self.d_out + j] * q[s * self.d_out + j];
                }
                r[s * self.d_in + k] = a[s * self.d_in + k] * t;
            }
        }
        r
    }

    fn per_weight(&self, r_in: &[f64], r_z: &[f64], n: usize, acc: &mut [f64]) {
        for s in 0..n {
            for k in 0..self.d_in {
                for j in 0..self.d_out {
                    acc[k * self.d_out + j] += r_in[s * self.d_in + k] + r_z[s * self.d_out + j];
                }
            }
        }
    }
}

fn relu(z: &T4) -> T4 {
    T4 {
        v: z.v.iter().map(|&v| v.max(0.0)).collect(),
        ..*z
    }
}

/// Relevance at a ReLU's input: what reached its output, 0 where `z ≤ 0`.
fn relu_lrp(z: &T4, r: &T4) -> T4 {
    z.map2(r, |z, r| if z > 0.0 { r } else { 0.0 })
}

/// 2×2 max-pool, stride 2; returns the winner's input index per output.
fn max_pool(a: &T4) -> (T4, Vec<usize>) {
    let mut p = T4::zeros(a.n, a.c, a.h / 2, a.w / 2);
    let mut winner = vec![0; p.v.len()];
    for n in 0..a.n {
        for c in 0..a.c {
            for i in 0..p.h {
                for j in 0..p.w {
                    let mut best = a.at(n, c, 2 * i, 2 * j);
                    for (di, dj) in [(0, 1), (1, 0), (1, 1)] {
                        let k = a.at(n, c, 2 * i + di, 2 * j + dj);
                        if a.v[k] > a.v[best] {
                            best = k;
                        }
                    }
                    let at = p.at(n, c, i, j);
                    p.v[at] = a.v[best];
                    winner[at] = best;
                }
            }
        }
    }
    (p, winner)
}

/// Winner-take-all.
fn max_pool_lrp(a: &T4, winner: &[usize], r: &T4) -> T4 {
    let mut out = T4::like(a);
    for (at, &w) in winner.iter().enumerate() {
        out.v[w] += r.v[at];
    }
    out
}

/// Global average pool → `[N, C]`.
fn avg_pool(a: &T4) -> Vec<f64> {
    let hw = (a.h * a.w) as f64;
    a.v.chunks(a.h * a.w)
        .map(|s| s.iter().sum::<f64>() / hw)
        .collect()
}

/// Splits `r[n, c]` over the `h·w` inputs in proportion to them.
fn avg_pool_lrp(a: &T4, r: &[f64]) -> T4 {
    let mut out = T4::like(a);
    for (nc, s) in a.v.chunks(a.h * a.w).enumerate() {
        let total: f64 = s.iter().sum();
        for (e, &x) in s.iter().enumerate() {
            out.v[nc * a.h * a.w + e] = if total == 0.0 { 0.0 } else { x / total * r[nc] };
        }
    }
    out
}

/// `R_z` of the last layer: the predicted class's logit of each sample.
fn start(logits: &[f64], classes: usize) -> Vec<f64> {
    let mut r = vec![0.0; logits.len()];
    for (s, row) in logits.chunks(classes).enumerate() {
        let mut order: Vec<usize> = (0..classes).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        // The engine takes the argmax in f32: make sure it cannot pick another class.
        let scale = row.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        assert!(
            row[order[0]] - row[order[1]] > 1e-4 * scale,
            "sample {s}: the top two logits {row:?} are too close to decide in f32"
        );
        r[s * classes + order[0]] = row[order[0]];
    }
    r
}

// ------------------------------------------------------- reference models

struct BlockRef {
    conv1: ConvRef,
    conv2: ConvRef,
    stride: usize,
    zero_pad: [usize; 2],
}

enum NetRef {
    Plain {
        convs: Vec<ConvRef>,
        pool_after: Vec<bool>,
        fc: LinRef,
    },
    Resnet {
        stem: ConvRef,
        blocks: Vec<BlockRef>,
        fc: LinRef,
    },
}

/// Option A: subsample by `stride`, zero channels before and after.
fn shortcut(b: &BlockRef, x: &T4) -> T4 {
    let [before, after] = b.zero_pad;
    let (h, w) = (x.h.div_ceil(b.stride), x.w.div_ceil(b.stride));
    let mut out = T4::zeros(x.n, before + x.c + after, h, w);
    for n in 0..x.n {
        for c in 0..x.c {
            for i in 0..h {
                for j in 0..w {
                    let at = out.at(n, before + c, i, j);
                    out.v[at] = x.v[x.at(n, c, i * b.stride, j * b.stride)];
                }
            }
        }
    }
    out
}

/// Relevance of the shortcut's output back at its input; padding carries none.
fn shortcut_lrp(b: &BlockRef, x: &T4, r: &T4) -> T4 {
    let mut out = T4::like(x);
    for n in 0..x.n {
        for c in 0..x.c {
            for i in 0..r.h {
                for j in 0..r.w {
                    let at = x.at(n, c, i * b.stride, j * b.stride);
                    out.v[at] += r.v[r.at(n, b.zero_pad[0] + c, i, j)];
                }
            }
        }
    }
    out
}

/// `R(a) = a / (a + b) · R(a + b)`, and the same for `b`.
fn add_lrp(a: &T4, b: &T4, r: &T4) -> (T4, T4) {
    let (mut ra, mut rb) = (T4::like(a), T4::like(b));
    for i in 0..r.v.len() {
        let s = a.v[i] + b.v[i];
        if s != 0.0 {
            ra.v[i] = a.v[i] / s * r.v[i];
            rb.v[i] = b.v[i] / s * r.v[i];
        }
    }
    (ra, rb)
}

impl NetRef {
    fn layer_names(&self) -> Vec<String> {
        match self {
            NetRef::Plain { convs, fc, .. } => convs
                .iter()
                .map(|c| c.name.clone())
                .chain([fc.name.clone()])
                .collect(),
            NetRef::Resnet { stem, blocks, fc } => std::iter::once(stem.name.clone())
                .chain(
                    blocks
                        .iter()
                        .flat_map(|b| [b.conv1.name.clone(), b.conv2.name.clone()]),
                )
                .chain([fc.name.clone()])
                .collect(),
        }
    }

    fn sizes(&self) -> Vec<usize> {
        let conv = |c: &ConvRef| c.w.len();
        match self {
            NetRef::Plain { convs, fc, .. } => convs.iter().map(conv).chain([fc.w.len()]).collect(),
            NetRef::Resnet { stem, blocks, fc } => std::iter::once(conv(stem))
                .chain(blocks.iter().flat_map(|b| [conv(&b.conv1), conv(&b.conv2)]))
                .chain([fc.w.len()])
                .collect(),
        }
    }

    /// Adds one batch's per-weight relevance to `acc` (prunable-weight order).
    fn relevance(&self, x: &T4, eps: f64, stab: Stab, acc: &mut [Vec<f64>]) {
        let n = x.n;
        match self {
            NetRef::Plain {
                convs,
                pool_after,
                fc,
            } => {
                // Forward, keeping every layer's input, output z and pool winners.
                let mut tape = Vec::new();
                let mut a = x.clone();
                for (conv, &pool) in convs.iter().zip(pool_after) {
                    let z = conv.forward(&a);
                    let r = relu(&z);
                    let (next, winner) = if pool {
                        let (p, w) = max_pool(&r);
                        (p, Some(w))
                    } else {
                        (r.clone(), None)
                    };
                    tape.push((a, z, r, winner));
                    a = next;
                }
                let g = avg_pool(&a);
                let logits = fc.forward(&g, n);
                // Backward.
                let r_logits = start(&logits, fc.d_out);
                let r_g = fc.lrp(&g, &logits, &r_logits, n, eps, stab);
                let last = acc.len() - 1;
                fc.per_weight(&r_g, &r_logits, n, &mut acc[last]);
                let mut r = avg_pool_lrp(&a, &r_g);
                for (i, (conv, (a_in, z, relu_out, winner))) in
                    convs.iter().zip(&tape).enumerate().rev()
                {
                    let r_relu = match winner {
                        Some(w) => max_pool_lrp(relu_out, w, &r),
                        None => r,
                    };
                    let r_z = relu_lrp(z, &r_relu);
                    let r_in = conv.lrp(a_in, z, &r_z, eps, stab);
                    conv.per_weight(&r_in, &r_z, &mut acc[i]);
                    r = r_in;
                }
            }
            NetRef::Resnet { stem, blocks, fc } => {
                let z_stem = stem.forward(x);
                let mut a = relu(&z_stem);
                struct Step {
                    x: T4,
                    z1: T4,
                    h: T4,
                    z2: T4,
                    sc: T4,
                    sum: T4,
                }
                let mut tape = Vec::new();
                for b in blocks {
                    let z1 = b.conv1.forward(&a);
                    let h = relu(&z1);
                    let z2 = b.conv2.forward(&h);
                    let sc = shortcut(b, &a);
                    let sum = z2.map2(&sc, |p, q| p + q);
                    let next = relu(&sum);
                    tape.push(Step {
                        x: a,
                        z1,
                        h,
                        z2,
                        sc,
                        sum,
                    });
                    a = next;
                }
                let g = avg_pool(&a);
                let logits = fc.forward(&g, n);
                let r_logits = start(&logits, fc.d_out);
                let r_g = fc.lrp(&g, &logits, &r_logits, n, eps, stab);
                let last = acc.len() - 1;
                fc.per_weight(&r_g, &r_logits, n, &mut acc[last]);
                let mut r = avg_pool_lrp(&a, &r_g);
                for (k, (b, s)) in blocks.iter().zip(&tape).enumerate().rev() {
                    let r_sum = relu_lrp(&s.sum, &r);
                    let (r_z2, r_sc) = add_lrp(&s.z2, &s.sc, &r_sum);
                    let r_h = b.conv2.lrp(&s.h, &s.z2, &r_z2, eps, stab);
                    b.conv2.per_weight(&r_h, &r_z2, &mut acc[2 + 2 * k]);
                    let r_z1 = relu_lrp(&s.z1, &r_h);
                    let r_x1 = b.conv1.lrp(&s.x, &s.z1, &r_z1, eps, stab);
                    b.conv1.per_weight(&r_x1, &r_z1, &mut acc[1 + 2 * k]);
                    // The block's input feeds conv1 and the shortcut: their relevance adds.
                    r = r_x1.map2(&shortcut_lrp(b, &s.x, &r_sc), |p, q| p + q);
                }
                let r_z = relu_lrp(&z_stem, &r);
                let r_in = stem.lrp(x, &z_stem, &r_z, eps, stab);
                stem.per_weight(&r_in, &r_z, &mut acc[0]);
            }
        }
    }

    /// Per-weight relevance summed over `batches`.
    fn weight_relevance(&self, batches: &[T4], eps: f64, stab: Stab) -> Vec<Vec<f64>> {
        let mut acc: Vec<Vec<f64>> = self.sizes().into_iter().map(|s| vec![0.0; s]).collect();
        for x in batches {
            self.relevance(x, eps, stab, &mut acc);
        }
        acc
    }
}

// --------------------------------------------- reading the burn model out

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    block_on(floats(t))
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

fn conv_ref(name: &str, cb: &ConvBn) -> ConvRef {
    let conv: &Conv2d = &cb.conv;
    assert!(conv.bias.is_none(), "{name}: the conv is bias-free");
    assert_eq!(conv.dilation, [1, 1]);
    assert_eq!(conv.groups, 1);
    assert_eq!(conv.stride[0], conv.stride[1]);
    let [o, c, k, k2] = conv.weight.val().dims();
    assert_eq!(k, k2);
    let bn: &BatchNorm = &cb.bn;
    let gamma = host(bn.gamma.val());
    let beta = host(bn.beta.val());
    let mean = host(bn.running_mean.value());
    let var = host(bn.running_var.value());
    let w = host(conv.weight.val());
    let scale: Vec<f64> = (0..o)
        .map(|j| gamma[j] / (var[j] + bn.epsilon).sqrt())
        .collect();
    let per = c * k * k;
    ConvRef {
        name: name.into(),
        o,
        c,
        k,
        stride: conv.stride[0],
        w: w.iter()
            .enumerate()
            .map(|(i, v)| v * scale[i / per])
            .collect(),
        b: (0..o).map(|j| beta[j] - scale[j] * mean[j]).collect(),
    }
}

fn lin_ref(name: &str, l: &Linear) -> LinRef {
    let [d_in, d_out] = l.weight.val().dims();
    LinRef {
        name: name.into(),
        d_in,
        d_out,
        w: host(l.weight.val()),
        b: l.bias
            .as_ref()
            .map(|b| host(b.val()))
            .unwrap_or_else(|| vec![0.0; d_out]),
    }
}

fn reference_net(model: &Model) -> NetRef {
    match &model.net {
        Net::Plain(p) => NetRef::Plain {
            convs: p
                .convs
                .iter()
                .enumerate()
                .map(|(i, c)| conv_ref(&format!("conv{}", i + 1), c))
                .collect(),
            pool_after: p.pool_after.clone(),
            fc: lin_ref("fc", &p.fc),
        },
        Net::Resnet(r) => NetRef::Resnet {
            stem: conv_ref("stem", &r.stem),
            blocks: r
                .blocks
                .iter()
                .map(|b| {
                    assert!(b.projection.is_none(), "the reference covers option A only");
                    BlockRef {
                        conv1: conv_ref(&format!("{}.conv1", b.name), &b.conv1),
                        conv2: conv_ref(&format!("{}.conv2", b.name), &b.conv2),
                        stride: b.stride,
                        zero_pad: b.zero_pad,
                    }
                })
                .collect(),
            fc: lin_ref("fc", &r.fc),
        },
        Net::Mlp(_) => unreachable!("not covered here"),
    }
}

// ------------------------------------------------------------ fixtures

/// Gives every BN non-trivial γ (some negative), β, running mean and
/// variance, so that folding BN into the conv changes both W and b.
fn set_bn(bn: &mut BatchNorm, layer: usize) {
    let [c] = bn.gamma.val().dims();
    let device = bn.gamma.val().device();
    let f = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [c]), &device);
    let l = layer as f32;
    let gamma = (0..c)
        .map(|j| {
            let m = 0.6 + 0.5 * (1.3 * j as f32 + 0.7 * l).sin().abs();
            if (j + layer) % 4 == 3 { -m } else { m }
        })
        .collect();
    let beta = (0..c)
        .map(|j| 0.3 * (0.9 * j as f32 - 1.1 * l).sin())
        .collect();
    let mean = (0..c).map(|j| 0.25 * (2.1 * j as f32 + l).cos()).collect();
    let var = (0..c)
        .map(|j| 0.4 + 0.8 * (0.5 + 0.5 * (1.7 * j as f32 + 0.3 * l).sin()))
        .collect();
    bn.gamma = Param::from_tensor(f(gamma));
    bn.beta = Param::from_tensor(f(beta));
    bn.running_mean = RunningState::new(f(mean));
    bn.running_var = RunningState::new(f(var));
}

fn set_all_bn(model: &mut Model) {
    match &mut model.net {
        Net::Plain(p) => {
            for (i, c) in p.convs.iter_mut().enumerate() {
                set_bn(&mut c.bn, i);
            }
        }
        Net::Resnet(r) => {
            set_bn(&mut r.stem.bn, 0);
            for (k, b) in r.blocks.iter_mut().enumerate() {
                set_bn(&mut b.conv1.bn, 1 + 2 * k);
                set_bn(&mut b.conv2.bn, 2 + 2 * k);
            }
        }
        Net::Mlp(_) => unreachable!(),
    }
}

/// `n` 3×8×8 float images from a formula (used as they are: no normalisation).
fn images(n: usize, classes: usize) -> Dataset {
    let (c, h, w) = (3, 8, 8);
    let mut v = Vec::with_capacity(n * c * h * w);
    for s in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let (s, ch, y, x) = (s as f32, ch as f32, y as f32, x as f32);
                    v.push(
                        (0.9 * s + 1.3 * ch + 0.7 * y - 0.45 * x + 0.11 * y * x).sin()
                            + 0.4 * (2.1 * s * (ch + 1.0) + 0.8 * x - 0.3 * y).cos()
                            + 0.1 * (s - 2.0),
                    );
                }
            }
        }
    }
    Dataset {
        features: Features::Floats(v),
        labels: (0..n).map(|i| (i % classes) as u16).collect(),
        shape: [c, h, w],
        classes,
    }
}

/// The first `samples` training images cut into the engine's batches.
fn batches(data: &Dataset, samples: usize, batch_size: usize) -> Vec<T4> {
    let Features::Floats(f) = &data.features else {
        unreachable!()
    };
    let [c, h, w] = data.shape;
    let size = c * h * w;
    (0..samples)
        .step_by(batch_size)
        .map(|start| {
            let n = batch_size.min(samples - start);
            T4 {
                n,
                c,
                h,
                w,
                v: f[start * size..(start + n) * size]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect(),
            }
        })
        .collect()
}

/// `max_l (max_i |a_i − b_i| / max_i |b_i|)` over layers, and per layer.
fn errors(engine: &[Vec<f64>], reference: &[Vec<f64>]) -> Vec<f64> {
    engine
        .iter()
        .zip(reference)
        .map(|(e, r)| {
            assert_eq!(e.len(), r.len());
            let scale = r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(scale > 0.0, "a layer without relevance checks nothing");
            e.iter()
                .zip(r)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
                / scale
        })
        .collect()
}

struct Case {
    spec: ModelSpec,
    seed: u64,
    /// Training examples held; the engine must stop after `samples`.
    train: usize,
    /// Kept a multiple of `batch_size` whenever `train > samples`: the engine
    /// reads whole batches until it has seen at least `samples` examples, so
    /// e.g. 5 of 8 in batches of 3 sums over 6.
    samples: usize,
    batch_size: usize,
    /// Subtracted from the classifier's bias, so that some predicted logits
    /// are negative and the sign of ε' matters at `fc` too (in the plain net
    /// every conv's negative outputs are cut by its ReLU: no relevance there).
    fc_bias_shift: f32,
}

fn shift_fc_bias(model: &mut Model, shift: f32) {
    let fc = match &mut model.net {
        Net::Plain(p) => &mut p.fc,
        Net::Resnet(r) => &mut r.fc,
        Net::Mlp(m) => &mut m.out,
    };
    let bias = fc.bias.take().expect("fc has a bias").val();
    fc.bias = Some(Param::from_tensor(bias - shift));
}

fn check(case: &Case) {
    case.spec.validate().expect("the spec is valid");
    let device = OpenDevice::cpu("cpu");
    let mut model = prunelab::model::init_model(&case.spec, case.seed, &device.device);
    set_all_bn(&mut model);
    shift_fc_bias(&mut model, case.fc_bias_shift);
    let classes = case.spec.classes();
    let train = images(case.train, classes);
    let split = Split::new(train.clone(), images(2, classes), None, "ref");
    let net = reference_net(&model);

    // Names and shapes line up with the engine's prunable weights.
    let names: Vec<String> = model
        .prunable_weights()
        .into_iter()
        .map(|w| w.layer)
        .collect();
    assert_eq!(names, net.layer_names());
    let layers = case.spec.layers();
    for (name, size) in names.iter().zip(net.sizes()) {
        let op = &layers.iter().find(|l| &l.name == name).unwrap().op;
        let want = match *op {
            LayerOp::Conv {
                c_in,
                c_out,
                kernel,
                ..
            } => c_in * c_out * kernel * kernel,
            LayerOp::Linear { d_in, d_out } => d_in * d_out,
            LayerOp::BatchNorm { .. } => unreachable!(),
        };
        assert_eq!(size, want, "{name}");
    }

    let xs = batches(&train, case.samples, case.batch_size);
    for eps in [0.25f32, 1.0] {
        let engine: Vec<Vec<f64>> = weight_relevance(
            &model,
            &split,
            &device,
            case.samples,
            case.batch_size,
            Relevance::LrpEpsilon,
            eps,
        )
        .unwrap()
        .into_iter()
        .map(host)
        .collect();
        let reference = net.weight_relevance(&xs, f64::from(eps), Stab::Rule);
        let err = errors(&engine, &reference);
        eprintln!(
            "{} ε={eps}: per-layer max |engine − reference| / max |reference|:",
            case.spec.name()
        );
        for ((name, e), r) in names.iter().zip(&err).zip(&reference) {
            let scale = r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            eprintln!(
                "  {name:<20} {e:.2e}   (max |R| {scale:.3e}, {} weights)",
                r.len()
            );
        }
        for (name, e) in names.iter().zip(&err) {
            assert!(
                *e <= TOL,
                "{} ε={eps}: layer {name} differs from the f64 reference by {e:.3e} of its \
                 largest relevance (allowed {TOL:e})",
                case.spec.name()
            );
        }
        // The tolerance is sharp: near-miss rules are far outside it.
        for stab in [Stab::NoSign, Stab::PerSample, Stab::Zero] {
            let other = net.weight_relevance(&xs, f64::from(eps), stab);
            let worst = errors(&engine, &other).into_iter().fold(0.0f64, f64::max);
            eprintln!("  vs the {stab:?} variant: worst layer {worst:.2e}");
            assert!(
                worst > 20.0 * TOL,
                "{} ε={eps}: the engine is within {worst:.3e} of the {stab:?} variant too; \
                 the comparison cannot tell them apart",
                case.spec.name()
            );
        }
        // And the data it reads: all training examples, not only `samples`.
        if case.train > case.samples {
            let all = batches(&train, case.train, case.batch_size);
            let more = net.weight_relevance(&all, f64::from(eps), Stab::Rule);
            let worst = errors(&engine, &more).into_iter().fold(0.0f64, f64::max);
            assert!(
                worst > 20.0 * TOL,
                "more samples than asked change nothing?"
            );
        }
    }
}

/// conv + BN(eval) + ReLU + 2×2 max-pool (twice) + global average pool +
/// linear; 5 images in batches of 3 and 2 (the ε' rms is per batch).
#[test]
fn lrp_epsilon_matches_f64_reference_plain() {
    check(&Case {
        spec: ModelSpec::Plain(PlainSpec {
            name: "plain-ref".into(),
            in_channels: 3,
            image_size: 8,
            layers: vec![
                PlainLayer::Conv(4),
                PlainLayer::Pool,
                PlainLayer::Conv(6),
                PlainLayer::Pool,
            ],
            classes: 3,
            input: None,
        }),
        seed: 11,
        train: 5,
        samples: 5,
        batch_size: 3,
        fc_bias_shift: 1.0,
    });
}

/// Stem, an identity-shortcut block (mid width 5 ≠ stream width 4) and a
/// stride-2 option-A block (4 → 8 channels, zero-padded 2 + 2), global
/// average pool, linear; 6 of 8 images in batches of 3.
#[test]
fn lrp_epsilon_matches_f64_reference_resnet() {
    check(&Case {
        spec: ModelSpec::Resnet(ResNetSpec {
            name: "resnet-ref".into(),
            in_channels: 3,
            image_size: 8,
            stem: 4,
            stages: vec![
                StageSpec {
                    width: 4,
                    stride: 1,
                    blocks: vec![BlockSpec { index: 0, mid: 5 }],
                    shortcut_map: None,
                },
                StageSpec {
                    width: 8,
                    stride: 2,
                    blocks: vec![BlockSpec { index: 0, mid: 6 }],
                    shortcut_map: None,
                },
            ],
            shortcut: Shortcut::A,
            classes: 3,
            kernel: 3,
            input: None,
        }),
        seed: 5,
        train: 8,
        samples: 6,
        batch_size: 3,
        fc_bias_shift: 0.0,
    });
}
