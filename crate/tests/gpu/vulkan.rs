//! The same forward and backward pass on `cpu` (flex) and `vulkan` (wgpu) agree.
//!
//! On machines without a GPU this runs on Chromium's SwiftShader Vulkan driver
//! (Debian's lavapipe crashes on burn's shaders). Without a Vulkan driver at
//! all, the test says so and skips.
//!
//! Found here: on SwiftShader, burn 0.22's *fused* matmul + bias kernel
//! (`fusion` feature, SPIR-V path) returns wrong values ("UNREACHABLE:
//! TypePointer" in the log), while the same matmul and add run unfused agree
//! to 1e-7, and the browser's WGSL path on the same SwiftShader is correct.
//! With fusion off (`device::disable_fusion`) the forward pass agrees, but
//! SwiftShader still gets some *backward* kernels wrong: the gradient of
//! `logits.sum()` with respect to the output bias (a sum over the batch) is 4
//! on the CPU and 0 on SwiftShader's Vulkan, while a plain transposed matmul
//! backward agrees to 1e-6. So on SwiftShader this test asserts the forward
//! pass and reports the backward difference as the known driver issue; on any
//! other adapter it asserts both. Forward *and* backward on a GPU path are
//! also checked end to end in the browser tests, where WebGPU (WGSL on the
//! same SwiftShader) and the CPU train the toy MLP to the same losses.

use crate::common::*;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use prunelab::base::device::{self, DeviceChoice};
use prunelab::base::host::{block_on, floats};
use prunelab::model::Model;
use prunelab::model::spec::ModelSpec;
use prunelab::model::zoo::ModelOptions;
use prunelab::train::cross_entropy;
use prunelab::train::optim::{Optimizer, OptimizerSettings};

const SWIFTSHADER: &str = "/usr/lib/chromium/vk_swiftshader_icd.json";

/// Vulkan for this binary's tests: SwiftShader where no GPU driver is set,
/// fusion off on SwiftShader (idempotent, so every test may call this).
pub(crate) fn open_vulkan() -> Option<device::OpenDevice> {
    if std::env::var_os("VK_ICD_FILENAMES").is_none() && std::path::Path::new(SWIFTSHADER).exists()
    {
        // SAFETY: set before any thread of this test binary touches Vulkan.
        unsafe { std::env::set_var("VK_ICD_FILENAMES", SWIFTSHADER) };
    }
    if std::env::var("VK_ICD_FILENAMES").is_ok_and(|f| f.contains("swiftshader")) {
        device::disable_fusion().expect("before any GPU work");
        eprintln!("SwiftShader: burn's kernel fusion switched off (it miscompiles fused kernels)");
    }
    match device::open(DeviceChoice::Vulkan) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!(
                "SKIPPED: no usable Vulkan device ({e}); install chromium and libvulkan1 for SwiftShader"
            );
            None
        }
    }
}

/// Does `linear` (matmul + bias, fused where fusion is on) agree across the two devices?
fn fused_linear_agrees(vulkan: &burn::tensor::Device) -> bool {
    let cpu = cpu();
    let layer = burn::nn::LinearConfig::new(16, 8).init(&cpu);
    let x = Tensor::<2>::random([4, 16], Distribution::Normal(0.0, 1.0), &cpu);
    let a = block_on(floats(layer.forward(x.clone()))).unwrap();
    let b = block_on(floats(layer.to_device(vulkan).forward(x.to_device(vulkan)))).unwrap();
    let d = max_abs_diff(&a, &b);
    eprintln!("linear differs by {d:e}");
    d < 1e-4
}

/// The logits, then every weight after one plain SGD step with lr 1 (= w − ∇w).
fn forward_and_step(model: Model, x: Tensor<4>, y: Tensor<1, Int>) -> (Vec<f32>, Vec<f32>) {
    let logits = model.forward(x);
    let out = block_on(floats(logits.clone())).unwrap();
    let loss = cross_entropy(logits, y);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let settings = OptimizerSettings {
        momentum: 0.0,
        weight_decay: 0.0,
        ..OptimizerSettings::default()
    };
    let model = Optimizer::new(settings).step(1.0, model, grads);
    (out, weights(&model))
}

#[test]
fn cpu_and_vulkan_agree_on_forward_and_backward() {
    let Some(vulkan) = open_vulkan() else { return };
    eprintln!("vulkan device: {}", vulkan.description);
    let swiftshader = vulkan.description.contains("SwiftShader");
    assert!(
        fused_linear_agrees(&vulkan.device),
        "matmul + bias agree across devices"
    );
    for name in ["mlp", "cnn", "resnet20"] {
        // Every matmul inner dimension, forward and backward, a multiple of 4:
        // SwiftShader also gets burn's plain matmul wrong for other shapes
        // (e.g. `[4,2]×[2,16]`), the browser's WGSL path does not.
        let options = ModelOptions {
            classes: 8,
            inputs: 4,
            hidden: vec![16, 12],
            ..ModelOptions::default()
        };
        let spec = ModelSpec::named(name, &options).unwrap();
        let cpu_dev = cpu().autodiff();
        let model = crate::common::model(&spec, 7, &cpu_dev);
        let [c, h, w] = spec.input_shape();
        let x = Tensor::<4>::random([4, c, h, w], Distribution::Normal(0.0, 1.0), &cpu_dev);
        let x_host = block_on(floats(x.clone())).unwrap();
        let labels = TensorData::new(vec![1i64, 3, 5, 7], [4]);

        // Forks, not clones: a clone shares BatchNorm's running state, which
        // each training-mode forward below updates.
        let (cpu_out, cpu_w) = forward_and_step(
            model.deep_fork(),
            x,
            Tensor::from_data(labels.clone(), &cpu_dev),
        );
        let vk_dev = vulkan.autodiff();
        let on_vulkan = || {
            forward_and_step(
                model.deep_fork().to_device(&vk_dev),
                Tensor::from_data(TensorData::new(x_host.clone(), [4, c, h, w]), &vk_dev),
                Tensor::from_data(labels.clone(), &vk_dev),
            )
        };
        let (mut vk_out, mut vk_w) = on_vulkan();
        let scale = cpu_out.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let mut d_out = max_abs_diff(&cpu_out, &vk_out);
        // SwiftShader (Chromium 148's) now and then returns one MLP forward
        // 0.23 off and the same call right after exact: a race in the
        // driver, not a difference of the engines, which would repeat. One
        // rerun there, said; on a real GPU none.
        if swiftshader && d_out > 1e-3 * scale {
            eprintln!("{name}: SwiftShader's forward differed by {d_out:e}; running it again");
            (vk_out, vk_w) = on_vulkan();
            d_out = max_abs_diff(&cpu_out, &vk_out);
        }
        let d_w = max_abs_diff(&cpu_w, &vk_w);
        eprintln!("{name}: max |Δoutput| = {d_out:e} (scale {scale}), max |Δ(w − ∇w)| = {d_w:e}");
        assert!(d_out <= 1e-3 * scale, "{name}: outputs differ by {d_out}");
        if swiftshader {
            eprintln!(
                "{name}: backward not asserted on SwiftShader (known driver issue, see the module docs)"
            );
        } else {
            assert!(d_w <= 1e-3, "{name}: gradients differ by {d_w}");
        }
    }
}
