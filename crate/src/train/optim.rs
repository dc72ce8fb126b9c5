//! SGD (momentum, Nesterov, weight decay) and Adam, with PyTorch's update rules.
//!
//! Written here rather than taken from burn-optim for two reasons: the state is
//! keyed by parameter *path* (`net.blocks.3.conv1.conv.weight`), which survives
//! rebuilding a model from a checkpoint and reads back asynchronously in the
//! browser; and weight masks are applied inside the step, so a pruned weight
//! stays exactly zero through fine-tuning.
//!
//! The optimizer knows no pruning method. A method that changes the step (a
//! penalty's subgradient, a clamp, its own update rule for some parameters)
//! gives it a [`StepHook`]: network slimming's L1, Polar's polarisation and
//! S1's gate steps live in their methods' files.

use std::collections::HashMap;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::model::params;

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

/// A method's part in every optimizer step, by parameter path. Each step:
/// [`begin`](StepHook::begin) once, with the parameters the hook
/// [`watches`](StepHook::watches) (value and gradient, flat); then per
/// parameter: [`gradient`](StepHook::gradient) (penalties add their
/// subgradient), [`update`](StepHook::update) (a hook that owns this
/// parameter's step returns it, and masks, weight decay and momentum are
/// skipped), and [`after`](StepHook::after) (clamps).
pub trait StepHook: Send {
    /// Which parameters `begin` is shown.
    fn watches(&self, _path: &str) -> bool {
        false
    }
    /// Once per step, before any parameter moves.
    fn begin(&mut self, _watched: &[Watched]) {}
    /// The gradient of the parameter at `path` (value `p`), adjusted.
    fn gradient(&self, _path: &str, _p: &Tensor<1>, g: Tensor<1>) -> Tensor<1> {
        g
    }
    /// This parameter's new value, if the hook owns its step.
    fn update(&self, _path: &str, _p: &Tensor<1>, _g: &Tensor<1>, _lr: f64) -> Option<Tensor<1>> {
        None
    }
    /// The parameter after the update.
    fn after(&self, _path: &str, p: Tensor<1>) -> Tensor<1> {
        p
    }
}

/// A watched parameter at the start of a step: its path, its value and its
/// gradient (if it has one this step), flat, on the plain device.
pub struct Watched {
    pub path: String,
    pub value: Tensor<1>,
    pub grad: Option<Tensor<1>>,
}

/// Optimizer state: one flat buffer per parameter path (SGD: momentum;
/// Adam: `m` and `v`), the step count, optional weight masks and the
/// methods' step hooks.
pub struct Optimizer {
    pub settings: OptimizerSettings,
    pub steps: u64,
    pub state: HashMap<String, Tensor<1>>,
    /// Flat 0/1 masks by parameter path: masked weights are re-zeroed after every step.
    pub masks: HashMap<String, Tensor<1>>,
    /// What pruning methods add to the step (their penalties and rules).
    pub hooks: Vec<Box<dyn StepHook>>,
}

impl std::fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Optimizer")
            .field("settings", &self.settings)
            .field("steps", &self.steps)
            .field("state", &self.state.len())
            .field("masks", &self.masks.len())
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

impl Optimizer {
    pub fn new(settings: OptimizerSettings) -> Self {
        Optimizer {
            settings,
            steps: 0,
            state: HashMap::new(),
            masks: HashMap::new(),
            hooks: Vec::new(),
        }
    }

    /// One update of every parameter that has a gradient in `grads`.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        self.steps += 1;
        if !self.hooks.is_empty() {
            let mut found: Vec<Vec<Watched>> = self.hooks.iter().map(|_| Vec::new()).collect();
            params::visit(&module, Some(&grads), |path, _, value, grad| {
                for (k, hook) in self.hooks.iter().enumerate() {
                    if hook.watches(path) {
                        found[k].push(Watched {
                            path: path.to_string(),
                            value: value.clone().inner(),
                            grad: grad.clone(),
                        });
                    }
                }
            });
            for (hook, watched) in self.hooks.iter_mut().zip(found) {
                hook.begin(&watched);
            }
        }
        let mut grads = grads;
        params::map(module, Some(&mut grads), |path, _, value, grad| {
            let updated = self.update(path, value.inner(), grad?, lr);
            Some(Tensor::from_inner(updated))
        })
    }

    /// Moves state and masks to `device` (after loading a checkpoint).
    pub fn to_device(&mut self, device: &Device) {
        for t in self.state.values_mut().chain(self.masks.values_mut()) {
            *t = t.clone().to_device(device);
        }
    }

    /// The hooks' gradient terms, the update (a hook's own, or the
    /// optimizer's), then the hooks' `after`.
    fn update(&mut self, path: &str, p: Tensor<1>, g: Tensor<1>, lr: f64) -> Tensor<1> {
        let g = self
            .hooks
            .iter()
            .fold(g, |g, hook| hook.gradient(path, &p, g));
        let owned = self
            .hooks
            .iter()
            .find_map(|hook| hook.update(path, &p, &g, lr));
        let p = match owned {
            Some(p) => p,
            None => self.update_plain(path, p, g, lr),
        };
        self.hooks.iter().fold(p, |p, hook| hook.after(path, p))
    }

    fn update_plain(&mut self, path: &str, p: Tensor<1>, g: Tensor<1>, lr: f64) -> Tensor<1> {
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

#[cfg(test)]
mod tests {
    use burn::module::{Module, Param};
    use burn::tensor::{Device, Tensor, TensorData};

    use super::*;
    use crate::base::host::{block_on, floats};

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
