//! The same forward and backward pass on `cpu` (flex) and `vulkan` (wgpu) agree.
//!
//! On machines without a GPU this runs on Chromium's SwiftShader Vulkan driver
//! (Debian's lavapipe crashes on burn's shaders). Without a Vulkan driver at
//! all, the test says so and skips.

mod common;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use common::*;
use prunelab::device::{self, DeviceChoice};
use prunelab::host::{block_on, floats};
use prunelab::model::Model;
use prunelab::model::spec::{ModelOptions, ModelSpec};
use prunelab::train::cross_entropy;
use prunelab::train::optim::{Optimizer, OptimizerSettings};

const SWIFTSHADER: &str = "/usr/lib/chromium/vk_swiftshader_icd.json";

fn open_vulkan() -> Option<device::OpenDevice> {
    if std::env::var_os("VK_ICD_FILENAMES").is_none() && std::path::Path::new(SWIFTSHADER).exists()
    {
        // SAFETY: set before any thread of this test binary touches Vulkan.
        unsafe { std::env::set_var("VK_ICD_FILENAMES", SWIFTSHADER) };
    }
    match device::open(DeviceChoice::Vulkan) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!(
                "SKIPPED: no usable Vulkan device ({e}); install chromium for its SwiftShader driver"
            );
            None
        }
    }
}

/// Logits, then all weights after one plain SGD step with lr 1 (= w − ∇w).
fn forward_and_step(model: Model, x: Tensor<4>, y: Tensor<1, Int>) -> (Vec<f32>, Vec<f32>) {
    let logits = model.forward(x);
    let out = block_on(floats(logits.clone())).unwrap();
    let grads = GradientsParams::from_grads(cross_entropy(logits, y).backward(), &model);
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
    for name in ["mlp", "cnn"] {
        let spec = ModelSpec::named(name, &ModelOptions::default()).unwrap();
        let cpu_dev = cpu().autodiff();
        let model = common::model(&spec, 7, &cpu_dev);
        let [c, h, w] = spec.input_shape();
        let x = Tensor::<4>::random([4, c, h, w], Distribution::Normal(0.0, 1.0), &cpu_dev);
        let x_host = block_on(floats(x.clone())).unwrap();
        let labels = TensorData::new(vec![1i64, 3, 5, 7], [4]);

        let (cpu_out, cpu_w) = forward_and_step(
            model.clone(),
            x,
            Tensor::from_data(labels.clone(), &cpu_dev),
        );
        let vk_dev = vulkan.autodiff();
        let (vk_out, vk_w) = forward_and_step(
            model.to_device(&vk_dev),
            Tensor::from_data(TensorData::new(x_host, [4, c, h, w]), &vk_dev),
            Tensor::from_data(labels, &vk_dev),
        );
        let scale = cpu_out.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let d_out = max_abs_diff(&cpu_out, &vk_out);
        let d_w = max_abs_diff(&cpu_w, &vk_w);
        eprintln!("{name}: max |Δlogits| = {d_out:e} (scale {scale}), max |Δ(w − ∇w)| = {d_w:e}");
        assert!(d_out <= 1e-3 * scale, "{name}: logits differ by {d_out}");
        assert!(d_w <= 1e-3, "{name}: gradients differ by {d_w}");
    }
}
