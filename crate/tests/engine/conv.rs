//! The CPU backend's 2-D convolution — burn-flex with prunelab's patch
//! (`vendor/burn-flex-0.22.1`, docs/operations.md) — forward and both gradients,
//! against a direct float64 loop. `reference.rs` checks ResNet-20 against
//! PyTorch (3×3, stride 1 and 2, padding 1); this covers what it does not
//! reach: larger strides, dilation, asymmetric padding, groups, 1×1,
//! non-square kernels and images, a bias, a batch of one.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

#[derive(Debug, Clone, Copy)]
struct Case {
    n: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    k: [usize; 2],
    stride: [usize; 2],
    pad: [(usize, usize); 2],
    dilation: [usize; 2],
    groups: usize,
}

impl Case {
    fn out(&self) -> [usize; 2] {
        let o = |i: usize, size: usize| {
            (size + self.pad[i].0 + self.pad[i].1 - self.dilation[i] * (self.k[i] - 1) - 1)
                / self.stride[i]
                + 1
        };
        [o(0, self.h), o(1, self.w)]
    }
    fn x_len(&self) -> usize {
        self.n * self.c_in * self.h * self.w
    }
    fn w_len(&self) -> usize {
        self.c_out * (self.c_in / self.groups) * self.k[0] * self.k[1]
    }
    fn y_len(&self) -> usize {
        let [oh, ow] = self.out();
        self.n * self.c_out * oh * ow
    }
}

fn values(len: usize, seed: f64) -> Vec<f64> {
    (0..len)
        .map(|i| (seed + 0.37 * i as f64 + 0.00061 * (i * i) as f64).sin())
        .collect()
}

/// `(y, dx, dw, db)` for the loss `Σ y · dy`, by the definition.
#[allow(clippy::type_complexity)]
fn direct(
    c: &Case,
    x: &[f64],
    w: &[f64],
    b: &[f64],
    dy: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let [oh, ow] = c.out();
    let (cig, cog) = (c.c_in / c.groups, c.c_out / c.groups);
    let mut y = vec![0.0; c.y_len()];
    let (mut dx, mut dw, mut db) = (
        vec![0.0; c.x_len()],
        vec![0.0; c.w_len()],
        vec![0.0; c.c_out],
    );
    for n in 0..c.n {
        for co in 0..c.c_out {
            let g = co / cog;
            for oy in 0..oh {
                for ox in 0..ow {
                    let yi = ((n * c.c_out + co) * oh + oy) * ow + ox;
                    let mut acc = b[co];
                    db[co] += dy[yi];
                    for ci in 0..cig {
                        for i in 0..c.k[0] {
                            for j in 0..c.k[1] {
                                let iy = (oy * c.stride[0] + i * c.dilation[0]) as isize
                                    - c.pad[0].0 as isize;
                                let ix = (ox * c.stride[1] + j * c.dilation[1]) as isize
                                    - c.pad[1].0 as isize;
                                if iy < 0 || ix < 0 || iy as usize >= c.h || ix as usize >= c.w {
                                    continue;
                                }
                                let xi = ((n * c.c_in + g * cig + ci) * c.h + iy as usize) * c.w
                                    + ix as usize;
                                let wi = ((co * cig + ci) * c.k[0] + i) * c.k[1] + j;
                                acc += x[xi] * w[wi];
                                dx[xi] += w[wi] * dy[yi];
                                dw[wi] += x[xi] * dy[yi];
                            }
                        }
                    }
                    y[yi] = acc;
                }
            }
        }
    }
    (y, dx, dw, db)
}

fn tensor<const D: usize>(v: &[f64], shape: [usize; D], device: &Device) -> Tensor<D> {
    let v: Vec<f32> = v.iter().map(|&a| a as f32).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .try_to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

fn close(what: &str, c: &Case, ours: &[f64], want: &[f64]) {
    assert_eq!(ours.len(), want.len(), "{what} length, {c:?}");
    let scale = want.iter().fold(1e-6_f64, |m, v| m.max(v.abs()));
    let worst = ours
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= 1e-5 * scale,
        "{what}: off by {worst:e} (scale {scale:e}) in {c:?}"
    );
}

fn check(c: Case) {
    let device = Device::flex().autodiff();
    let [oh, ow] = c.out();
    let (x, w) = (values(c.x_len(), 1.0), values(c.w_len(), 2.0));
    let (b, dy) = (values(c.c_out, 3.0), values(c.y_len(), 4.0));
    let xt = tensor(&x, [c.n, c.c_in, c.h, c.w], &device).require_grad();
    let wt = tensor(&w, [c.c_out, c.c_in / c.groups, c.k[0], c.k[1]], &device).require_grad();
    let bt = tensor(&b, [c.c_out], &device).require_grad();
    let options = ConvOptions::new_with_padding(c.stride, c.pad, c.dilation, c.groups);
    let y = conv2d(xt.clone(), wt.clone(), Some(bt.clone()), options);
    let loss = (y.clone() * tensor(&dy, [c.n, c.c_out, oh, ow], &device)).sum();
    let grads = loss.backward();
    let (want_y, want_dx, want_dw, want_db) = direct(&c, &x, &w, &b, &dy);
    close("forward", &c, &read(y), &want_y);
    close(
        "input gradient",
        &c,
        &read(xt.grad(&grads).unwrap()),
        &want_dx,
    );
    close(
        "weight gradient",
        &c,
        &read(wt.grad(&grads).unwrap()),
        &want_dw,
    );
    close(
        "bias gradient",
        &c,
        &read(bt.grad(&grads).unwrap()),
        &want_db,
    );
}

const BASE: Case = Case {
    n: 3,
    c_in: 4,
    h: 9,
    w: 7,
    c_out: 6,
    k: [3, 3],
    stride: [1, 1],
    pad: [(1, 1), (1, 1)],
    dilation: [1, 1],
    groups: 1,
};

#[test]
fn three_by_three_same_padding() {
    check(BASE);
}

/// A size-keeping convolution whose shifts reach two pixels: two columns
/// wrap around on each side, which `im2col` and `col2im` mask per column.
#[test]
fn five_by_five_same_padding() {
    check(Case {
        k: [5, 5],
        pad: [(2, 2), (2, 2)],
        ..BASE
    });
}

/// Size-keeping with padding smaller than the kernel's half in one direction.
#[test]
fn same_size_with_uneven_kernel() {
    check(Case {
        k: [3, 2],
        pad: [(1, 1), (1, 0)],
        ..BASE
    });
}

#[test]
fn strides_two_and_three_without_padding() {
    check(Case {
        stride: [2, 3],
        pad: [(0, 0), (0, 0)],
        ..BASE
    });
}

#[test]
fn dilation_and_non_square_kernel() {
    check(Case {
        k: [2, 3],
        dilation: [2, 1],
        pad: [(2, 2), (0, 0)],
        ..BASE
    });
}

#[test]
fn asymmetric_padding_with_stride() {
    check(Case {
        pad: [(0, 2), (1, 0)],
        stride: [2, 2],
        ..BASE
    });
}

#[test]
fn groups_of_two() {
    check(Case { groups: 2, ..BASE });
}

#[test]
fn pointwise_and_batch_of_one() {
    check(Case {
        k: [1, 1],
        pad: [(0, 0), (0, 0)],
        n: 1,
        ..BASE
    });
}

#[test]
fn more_batch_items_than_threads_and_odd_image() {
    check(Case {
        n: 7,
        h: 5,
        w: 11,
        c_in: 3,
        c_out: 5,
        ..BASE
    });
}

/// A kernel larger than the padded image in one direction, stride past the edge.
#[test]
fn wide_stride_past_the_edge() {
    check(Case {
        h: 4,
        w: 4,
        k: [3, 3],
        stride: [4, 4],
        pad: [(2, 2), (2, 2)],
        ..BASE
    });
}
