//! The `gemm` convolution path (`model::conv`: im2col + matmul) computes
//! what burn's own convolution computes — forward, input gradient and weight
//! gradient — for every convolution shape in the zoo (3×3 stride 1 and 2, 1×1
//! projections, every width and map size), on the CPU and on Vulkan
//! (SwiftShader on machines without a GPU, as in `vulkan.rs`).
//!
//! The rule: `|gemm − burn| ≤ 1e-4 · max|burn|` per tensor. The backward pass
//! is driven by `loss = Σ out ⊙ r` with a random `r`, so every output
//! position's gradient differs.

use std::collections::BTreeSet;

use crate::common::*;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use prunelab::base::host::{block_on, floats};
use prunelab::model::conv::conv2d_gemm;
use prunelab::model::geometry::LayerOp;
use prunelab::model::spec::{ModelSpec, Shortcut};
use prunelab::model::zoo::ModelOptions;

const TOL: f32 = 1e-4;

/// Every distinct conv in the zoo: (c_in, c_out, kernel, stride, input size).
fn zoo_convs() -> BTreeSet<(usize, usize, usize, usize, usize)> {
    let mut out = BTreeSet::new();
    for name in [
        "cnn",
        "vgg16",
        "resnet20",
        "resnet56",
        "resnet110",
        "resmlp",
    ] {
        for shortcut in [Shortcut::A, Shortcut::B] {
            let options = ModelOptions {
                shortcut,
                hidden: vec![16; 3],
                ..ModelOptions::default()
            };
            let spec = ModelSpec::named(name, &options).unwrap();
            for layer in spec.layers() {
                if let LayerOp::Conv {
                    c_in,
                    c_out,
                    kernel,
                    stride,
                } = layer.op
                {
                    out.insert((c_in, c_out, kernel, stride, layer.out_hw * stride));
                }
            }
        }
    }
    out
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    block_on(floats(t)).unwrap()
}

/// `U(−scale, scale)` values from a generator of this test's own (the CPU
/// device's is global: tests running beside this one draw from it too).
fn uniform(shape: [usize; 4], seed: u64, part: u64, scale: f32) -> Tensor<4> {
    use rand::Rng;
    let mut rng = prunelab::base::rng::stream(seed, "conv-gemm", part);
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| scale * (2.0 * rng.random::<f32>() - 1.0))
        .collect();
    Tensor::<4>::from_data(burn::tensor::TensorData::new(values, shape), &cpu())
}

/// The forward output and both gradients of one conv on `device`, by
/// `gemm` or burn's kernel, for inputs drawn from `seed` on the CPU.
fn pass(
    device: &Device,
    shape: (usize, usize, usize, usize, usize),
    seed: u64,
    gemm: bool,
) -> [Vec<f32>; 3] {
    let (c_in, c_out, k, stride, hw) = shape;
    let pad = k / 2;
    let ho = (hw + 2 * pad - k) / stride + 1;
    let x0 = uniform([2, c_in, hw, hw], seed, 0, 1.0);
    let w0 = uniform([c_out, c_in, k, k], seed, 1, 0.3);
    let r0 = uniform([2, c_out, ho, ho], seed, 2, 1.0);
    let ad = device.clone().autodiff();
    let x = Tensor::<4>::from_data(x0.to_data(), &ad).require_grad();
    let w = Tensor::<4>::from_data(w0.to_data(), &ad).require_grad();
    let r = Tensor::<4>::from_data(r0.to_data(), &ad);
    let out = if gemm {
        conv2d_gemm(x.clone(), w.clone(), None, [stride; 2], [pad; 4])
    } else {
        let options = ConvOptions::new([stride; 2], [pad; 2], [1, 1], 1);
        burn::tensor::module::conv2d(x.clone(), w.clone(), None, options)
    };
    let grads = (out.clone() * r).sum().backward();
    [
        values(out.without_autodiff()),
        values(x.grad(&grads).unwrap()),
        values(w.grad(&grads).unwrap()),
    ]
}

/// `|a − b| / max|b|` per tensor (forward, input grad, weight grad).
fn relative(a: &[Vec<f32>; 3], b: &[Vec<f32>; 3]) -> [f32; 3] {
    std::array::from_fn(|i| {
        let scale = b[i].iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
        max_abs_diff(&a[i], &b[i]) / scale
    })
}

/// Whether burn's own matmul is right on `device` (against the CPU, 1e-4
/// relative) for each of the three products the gemm path runs on `shape`:
/// the forward `F·C`, the input gradient `Fᵀ·G` and the weight gradient
/// `G·Cᵀ` (dimensions padded to multiples of 4, as the path pads them).
/// SwiftShader's Vulkan gets some of these wrong — which kernel autotune
/// picks decides which — and no path built on burn's matmul can be right
/// where burn's matmul is not.
fn driver_matmuls_ok(device: &Device, shape: (usize, usize, usize, usize, usize)) -> [bool; 3] {
    let (c_in, c_out, k, stride, hw) = shape;
    let ho = (hw + 2 * (k / 2) - k) / stride + 1;
    let (r, i, c) = (
        c_out.next_multiple_of(4),
        (c_in * k * k).next_multiple_of(4),
        (2 * ho * ho).next_multiple_of(4),
    );
    let cpu = cpu();
    cpu.seed(7);
    let f = Tensor::<2>::random([r, i], Distribution::Normal(0.0, 1.0), &cpu);
    let cols = Tensor::<2>::random([i, c], Distribution::Normal(0.0, 1.0), &cpu);
    let g = Tensor::<2>::random([r, c], Distribution::Normal(0.0, 1.0), &cpu);
    let on = |t: &Tensor<2>| Tensor::<2>::from_data(t.to_data(), device);
    let ok = |got: Tensor<2>, want: Tensor<2>| {
        let (got, want) = (values(got), values(want));
        max_abs_diff(&got, &want) <= TOL * want.iter().fold(0f32, |m, v| m.max(v.abs()))
    };
    [
        ok(on(&f).matmul(on(&cols)), f.clone().matmul(cols.clone())),
        ok(
            on(&f).transpose().matmul(on(&g)),
            f.transpose().matmul(g.clone()),
        ),
        ok(
            on(&g).matmul(on(&cols).transpose()),
            g.matmul(cols.transpose()),
        ),
    ]
}

/// `gemm` against burn's kernel on `device`, forward and both gradients,
/// every zoo conv shape. Off the CPU, a product burn's own matmul gets wrong
/// on this driver ([`driver_matmuls_ok`]) is not compared, and the lines
/// say how many were not; where burn's *convolution* disagrees with the
/// CPU, `gemm` is held to the CPU instead.
fn check_all(device: &Device, label: &str) {
    let on_cpu = *device == cpu();
    // Off the CPU (SwiftShader renders in software: the full maps took 7
    // minutes), each shape's map is capped at 8×8 — the same channels,
    // kernel, stride and border handling; the CPU runs the full sizes.
    let shapes: BTreeSet<_> = zoo_convs()
        .into_iter()
        .map(|(c_in, c_out, k, stride, hw)| {
            (c_in, c_out, k, stride, if on_cpu { hw } else { hw.min(8) })
        })
        .collect();
    assert!(
        shapes.len() >= 15,
        "the zoo has {} conv shapes",
        shapes.len()
    );
    assert!(
        shapes.iter().any(|s| s.2 == 1),
        "1×1 projections are covered"
    );
    assert!(
        shapes.iter().any(|s| s.2 == 3 && s.3 == 2),
        "strided 3×3 convs are covered"
    );
    let names = ["forward", "input grad", "weight grad"];
    let mut worst = [0f32; 3];
    let mut compared = [0usize; 3];
    let mut driver_wrong: Vec<String> = Vec::new();
    for (n, &shape) in shapes.iter().enumerate() {
        let fine = if on_cpu {
            [true; 3]
        } else {
            driver_matmuls_ok(device, shape)
        };
        for (j, ok) in fine.iter().enumerate() {
            if !ok {
                driver_wrong.push(format!("{shape:?} {}", names[j]));
            }
        }
        let gemm = pass(device, shape, n as u64, true);
        let burn = pass(device, shape, n as u64, false);
        let mut errors = relative(&gemm, &burn);
        if !on_cpu && errors.iter().any(|e| *e > TOL) {
            let reference = pass(&cpu(), shape, n as u64, false);
            if relative(&burn, &reference).iter().any(|e| *e > TOL) {
                driver_wrong.push(format!("{shape:?} burn's convolution"));
                errors = relative(&gemm, &reference);
            }
        }
        for j in 0..3 {
            if !fine[j] {
                continue;
            }
            compared[j] += 1;
            worst[j] = worst[j].max(errors[j]);
            assert!(
                errors[j] <= TOL,
                "{label} conv {shape:?} (c_in, c_out, k, stride, hw): gemm vs burn {} relative error {:.1e}",
                names[j],
                errors[j]
            );
        }
    }
    println!(
        "{label}: {} conv shapes; compared forward {}, input grad {}, weight grad {}; worst relative \
         error {:.1e}, {:.1e}, {:.1e}",
        shapes.len(),
        compared[0],
        compared[1],
        compared[2],
        worst[0],
        worst[1],
        worst[2]
    );
    if !driver_wrong.is_empty() {
        println!(
            "{label}: burn's own kernels are wrong on this driver for {} product(s), not compared: {}",
            driver_wrong.len(),
            driver_wrong.join("; ")
        );
    }
    // A driver that got everything wrong would make this test vacuous.
    assert!(
        compared.iter().all(|&c| 2 * c >= shapes.len()) || on_cpu,
        "{label}: too few products computed right by the driver to compare ({compared:?} of {})",
        shapes.len()
    );
}

#[test]
fn gemm_convolution_matches_burn_on_the_cpu() {
    check_all(&cpu(), "cpu");
}

#[test]
fn gemm_convolution_matches_burn_on_vulkan() {
    // SwiftShader where no GPU is, fusion off there (vulkan.rs says why).
    let Some(vulkan) = crate::vulkan::open_vulkan() else {
        return;
    };
    check_all(&vulkan.device, &vulkan.description);
}
