//! SGD (momentum, Nesterov, weight decay) and Adam, with PyTorch's update rules.
//!
//! Written here rather than taken from burn-optim for two reasons: the state is
//! keyed by parameter *path* (`net.blocks.3.conv1.conv.weight`), which survives
//! rebuilding a model from a checkpoint and reads back asynchronously in the
//! browser; and weight masks are applied inside the step, so a pruned weight
//! stays exactly zero through fine-tuning.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    #[default]
    Sgd,
    Adam,
}

impl std::str::FromStr for OptimizerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sgd" => Ok(Self::Sgd),
            "adam" => Ok(Self::Adam),
            _ => Err(Error::config("optimizer", s, "choose sgd or adam")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerSettings {
    pub kind: OptimizerKind,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
}

impl Default for OptimizerSettings {
    fn default() -> Self {
        OptimizerSettings {
            kind: OptimizerKind::Sgd,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }
}

/// Optimizer state: one flat buffer per parameter path (SGD: momentum;
/// Adam: `m` and `v`), the step count, and optional weight masks.
#[derive(Debug, Clone)]
pub struct Optimizer {
    pub settings: OptimizerSettings,
    pub steps: u64,
    pub state: HashMap<String, Tensor<1>>,
    /// Flat 0/1 masks by parameter path: masked weights are re-zeroed after every step.
    pub masks: HashMap<String, Tensor<1>>,
    /// Parameters whose path starts with a prefix here take normalised
    /// gradient steps, `p −= rate · (lr/base_lr) · g / rms(G)`, whatever the
    /// optimizer: `(prefix, rate, base_lr)`, where `G` is the gradient of
    /// *every* parameter under the prefix together. S1's gate logits use it:
    /// each gate moves by its pull relative to all the others (Adam's
    /// per-weight normalisation, or one rms per tensor, would move a `[1]`
    /// block gate by its sign alone and every layer at the same speed), and
    /// the steps follow the learning-rate schedule.
    pub normalized_steps: Vec<(String, f64, f64)>,
    /// Per-element factors on a normalised parameter's gradient, by path
    /// (flat, on the plain device): the step is `rate · (s⊙g) / rms(s⊙G)`.
    /// S1 divides each gate's gradient by what the gate costs.
    pub preconditioner: HashMap<String, Tensor<1>>,
    /// This step's `rms(G)` per prefix (set at the start of each step).
    group_rms: HashMap<String, Tensor<1>>,
    /// An L1 penalty `λ·Σ|p|` on the parameters at these paths, as its
    /// subgradient `λ·sign(p)` added to their gradient (network slimming's
    /// sparsity on BN scales, as its authors' code adds it).
    pub l1: HashMap<String, f64>,
    /// Zhuang et al.'s polarization penalty on a set of scales, if any.
    pub polar: Option<Polar>,
    /// This step's `(γ̄, mean sign(γ − αγ̄))` over the polarized scales.
    polar_stats: Option<(Tensor<1>, Tensor<1>)>,
}

/// `λ·(t·Σ|γ| − Σ|γ − α·γ̄|)` over the scales at `paths`, `γ̄` their mean
/// over all of them (Zhuang et al., NeurIPS 2020, Eq. 2), with the scales
/// clamped to `[0, 1]` after every step as the authors' code does. Its
/// gradient for `γ_k` is `λ·(t·sign(γ_k) − sign(γ_k − αγ̄) + α·mean_i
/// sign(γ_i − αγ̄))`, the last term being `γ̄`'s own dependence on `γ_k`.
#[derive(Debug, Clone, PartialEq)]
pub struct Polar {
    pub paths: Vec<String>,
    pub lambda: f64,
    pub t: f64,
    pub alpha: f64,
}

impl Optimizer {
    pub fn new(settings: OptimizerSettings) -> Self {
        Optimizer {
            settings,
            steps: 0,
            state: HashMap::new(),
            masks: HashMap::new(),
            normalized_steps: Vec::new(),
            preconditioner: HashMap::new(),
            group_rms: HashMap::new(),
            l1: HashMap::new(),
            polar: None,
            polar_stats: None,
        }
    }

    /// One update of every parameter that has a gradient in `grads`.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        self.steps += 1;
        self.group_rms.clear();
        self.polar_stats = self.polar.as_ref().and_then(|r| {
            let mut scales = Scales {
                paths: &r.paths,
                path: Vec::new(),
                found: Vec::new(),
            };
            module.visit(&mut scales);
            if scales.found.is_empty() {
                return None;
            }
            let all = Tensor::cat(scales.found, 0);
            let mean = all.clone().mean();
            let [n] = all.dims();
            let sign_mean = (all - mean.clone().expand([n]) * r.alpha).sign().mean();
            Some((mean, sign_mean))
        });
        for (prefix, _, _) in &self.normalized_steps {
            let mut sums = GroupSquares {
                prefix,
                preconditioner: &self.preconditioner,
                grads: &grads,
                path: Vec::new(),
                sum: None,
                count: 0,
            };
            module.visit(&mut sums);
            if let Some(sum) = sums.sum {
                let rms = (sum / sums.count.max(1) as f64).sqrt().clamp_min(1e-12);
                self.group_rms.insert(prefix.clone(), rms);
            }
        }
        let mut mapper = StepMapper {
            optimizer: self,
            grads,
            lr,
            path: Vec::new(),
        };
        module.map(&mut mapper)
    }

    /// Moves state and masks to `device` (after loading a checkpoint).
    pub fn to_device(&mut self, device: &Device) {
        for t in self.state.values_mut().chain(self.masks.values_mut()) {
            *t = t.clone().to_device(device);
        }
    }

    /// The penalties on top of the loss's gradient, the update, then the
    /// polarized scales' clamp.
    fn update(&mut self, path: &str, p: Tensor<1>, g: Tensor<1>, lr: f64) -> Tensor<1> {
        let g = match self.l1.get(path) {
            Some(&lambda) => g + p.clone().sign() * lambda,
            None => g,
        };
        let polar = match (&self.polar, &self.polar_stats) {
            (Some(r), Some((mean, sign_mean))) if r.paths.iter().any(|q| q == path) => {
                Some((r.clone(), mean.clone(), sign_mean.clone()))
            }
            _ => None,
        };
        let Some((r, mean, sign_mean)) = polar else {
            return self.update_plain(path, p, g, lr);
        };
        let [n] = p.dims();
        let centre = mean.expand([n]) * r.alpha;
        let pull =
            p.clone().sign() * r.t - (p.clone() - centre).sign() + sign_mean.expand([n]) * r.alpha;
        self.update_plain(path, p, g + pull * r.lambda, lr)
            .clamp(0.0, 1.0)
    }

    fn update_plain(&mut self, path: &str, p: Tensor<1>, g: Tensor<1>, lr: f64) -> Tensor<1> {
        if let Some((prefix, rate, base)) = self
            .normalized_steps
            .iter()
            .find(|(prefix, _, _)| path.starts_with(prefix.as_str()))
        {
            let rms = self.group_rms[prefix].clone();
            let [n] = g.dims();
            let g = match self.preconditioner.get(path) {
                Some(s) => g * s.clone(),
                None => g,
            };
            return p - g / rms.expand([n]) * (*rate * lr / base.max(1e-12));
        }
        let s = self.settings.clone();
        let mask = self.masks.get(path).cloned();
        let g = match &mask {
            Some(m) => g * m.clone(),
            None => g,
        };
        let g = if s.weight_decay > 0.0 {
            g + p.clone() * s.weight_decay
        } else {
            g
        };
        let p = match s.kind {
            OptimizerKind::Sgd => {
                let direction = if s.momentum > 0.0 {
                    let key = format!("{path}#momentum");
                    let buf = match self.state.remove(&key) {
                        Some(buf) => buf * s.momentum + g.clone(),
                        None => g.clone(),
                    };
                    self.state.insert(key, buf.clone());
                    if s.nesterov {
                        g + buf * s.momentum
                    } else {
                        buf
                    }
                } else {
                    g
                };
                p - direction * lr
            }
            OptimizerKind::Adam => {
                let (mk, vk) = (format!("{path}#m"), format!("{path}#v"));
                let m = match self.state.remove(&mk) {
                    Some(m) => m * s.beta1 + g.clone() * (1.0 - s.beta1),
                    None => g.clone() * (1.0 - s.beta1),
                };
                let v = match self.state.remove(&vk) {
                    Some(v) => v * s.beta2 + g.clone().powi_scalar(2) * (1.0 - s.beta2),
                    None => g.powi_scalar(2) * (1.0 - s.beta2),
                };
                self.state.insert(mk, m.clone());
                self.state.insert(vk, v.clone());
                let t = self.steps as i32;
                let m_hat = m / (1.0 - s.beta1.powi(t));
                let v_hat = v / (1.0 - s.beta2.powi(t));
                p - m_hat / (v_hat.sqrt() + s.epsilon) * lr
            }
        };
        match mask {
            Some(m) => p * m,
            None => p,
        }
    }
}

/// The values of the parameters at `paths`, flat, on the plain device.
struct Scales<'a> {
    paths: &'a [String],
    path: Vec<String>,
    found: Vec<Tensor<1>>,
}

impl burn::module::ModuleVisitor for Scales<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let at = self.path.join(".");
        if self.paths.contains(&at) {
            self.found.push(param.val().inner().flatten(0, D - 1));
        }
    }
}

/// Σg² and the element count over every parameter under `prefix` that has a gradient.
struct GroupSquares<'a> {
    prefix: &'a str,
    preconditioner: &'a HashMap<String, Tensor<1>>,
    grads: &'a GradientsParams,
    path: Vec<String>,
    sum: Option<Tensor<1>>,
    count: usize,
}

impl burn::module::ModuleVisitor for GroupSquares<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !self.path.join(".").starts_with(self.prefix) {
            return;
        }
        let Some(g) = self.grads.get::<D>(param.id) else {
            return;
        };
        let g: Tensor<1> = g.flatten(0, D - 1);
        let g = match self.preconditioner.get(&self.path.join(".")) {
            Some(s) => g * s.clone(),
            None => g,
        };
        self.count += g.dims()[0];
        let squares = g.powi_scalar(2).sum();
        self.sum = Some(match self.sum.take() {
            Some(s) => s + squares,
            None => squares,
        });
    }
}

struct StepMapper<'a> {
    optimizer: &'a mut Optimizer,
    grads: GradientsParams,
    lr: f64,
    path: Vec<String>,
}

impl ModuleMapper for StepMapper<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let path = self.path.join(".");
        let require_grad = tensor.is_require_grad();
        let shape = tensor.dims();
        let flat = tensor.inner().flatten::<1>(0, D - 1);
        let grad = grad.flatten::<1>(0, D - 1);
        let updated = self
            .optimizer
            .update(&path, flat, grad, self.lr)
            .reshape(shape);
        let mut updated = Tensor::from_inner(updated);
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, Param};
    use burn::tensor::{Device, Tensor, TensorData};

    use super::*;
    use crate::host::{block_on, floats};

    #[derive(Module, Debug)]
    struct Two {
        w: Param<Tensor<1>>,
    }

    /// Runs `steps` updates of `w` under the loss `Σ c·w` (gradient `c`).
    fn run(
        settings: OptimizerSettings,
        w0: [f32; 2],
        c: [f32; 2],
        steps: usize,
        mask: Option<[f32; 2]>,
    ) -> Vec<f32> {
        let device = Device::flex().autodiff();
        let mut m = Two {
            w: Param::from_tensor(
                Tensor::from_data(TensorData::new(w0.to_vec(), [2]), &device).require_grad(),
            ),
        };
        let mut opt = Optimizer::new(settings);
        if let Some(mask) = mask {
            let plain = Device::flex();
            opt.masks.insert(
                "w".into(),
                Tensor::from_data(TensorData::new(mask.to_vec(), [2]), &plain),
            );
        }
        let c = Tensor::<1>::from_data(TensorData::new(c.to_vec(), [2]), &device);
        for _ in 0..steps {
            let loss = (m.w.val() * c.clone()).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            m = opt.step(0.1, m, grads);
        }
        block_on(floats(m.w.val())).unwrap()
    }

    fn close(a: &[f32], b: &[f32]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    fn sgd(momentum: f64, nesterov: bool, weight_decay: f64) -> OptimizerSettings {
        OptimizerSettings {
            kind: OptimizerKind::Sgd,
            momentum,
            nesterov,
            weight_decay,
            ..OptimizerSettings::default()
        }
    }

    #[test]
    fn sgd_with_momentum_follows_pytorch() {
        // buf₁ = g = 2 → w = 1 − 0.2; buf₂ = 0.9·2 + 2 = 3.8 → w = 0.8 − 0.38.
        close(
            &run(sgd(0.9, false, 0.0), [1.0, 0.0], [2.0, -1.0], 2, None),
            &[0.42, 0.29],
        );
        // Plain SGD.
        close(
            &run(sgd(0.0, false, 0.0), [1.0, 0.0], [2.0, -1.0], 2, None),
            &[0.6, 0.2],
        );
    }

    #[test]
    fn nesterov_looks_ahead() {
        // Step 1: buf = 2, direction = 2 + 0.9·2 = 3.8.
        close(
            &run(sgd(0.9, true, 0.0), [1.0, 0.0], [2.0, 0.0], 1, None),
            &[0.62, 0.0],
        );
    }

    #[test]
    fn weight_decay_is_added_to_the_gradient() {
        // g = 2 + 0.5·1 = 2.5 → w = 1 − 0.25.
        close(
            &run(sgd(0.0, false, 0.5), [1.0, 0.0], [2.0, 0.0], 1, None),
            &[0.75, 0.0],
        );
    }

    #[test]
    fn adam_steps_by_the_learning_rate_under_a_constant_gradient() {
        let adam = OptimizerSettings {
            kind: OptimizerKind::Adam,
            weight_decay: 0.0,
            ..OptimizerSettings::default()
        };
        // Bias-corrected m̂/√v̂ = sign(g) for a constant gradient: each step moves lr.
        close(&run(adam, [1.0, 1.0], [2.0, -3.0], 3, None), &[0.7, 1.3]);
    }

    #[derive(Module, Debug)]
    struct Gates {
        a: Param<Tensor<1>>,
        b: Param<Tensor<1>>,
    }

    #[test]
    fn normalised_steps_share_one_rms_over_the_whole_group() {
        let device = Device::flex().autodiff();
        let scalar = |v: f32| {
            Param::from_tensor(
                Tensor::from_data(TensorData::new(vec![v], [1]), &device).require_grad(),
            )
        };
        let m = Gates {
            a: scalar(0.0),
            b: scalar(0.0),
        };
        let mut opt = Optimizer::new(OptimizerSettings::default());
        opt.normalized_steps.push(("".into(), 1.0, 0.1));
        // Gradients 3 and 4: one rms over both, √((9 + 16)/2); one rms per
        // tensor would move each by exactly 1 (its sign).
        let loss = m.a.val() * 3.0 + m.b.val() * 4.0;
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let m = opt.step(0.1, m, grads);
        let rms = (12.5f32).sqrt();
        let a = block_on(floats(m.a.val())).unwrap()[0];
        let b = block_on(floats(m.b.val())).unwrap()[0];
        close(&[a, b], &[-3.0 / rms, -4.0 / rms]);
    }

    #[test]
    fn masked_weights_stay_zero() {
        let w = run(
            sgd(0.9, false, 5e-4),
            [1.0, 1.0],
            [2.0, 2.0],
            3,
            Some([1.0, 0.0]),
        );
        assert_eq!(w[1], 0.0);
        assert!(w[0] < 1.0);
    }
}
