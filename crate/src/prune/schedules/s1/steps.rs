//! How S1's gate logits move: normalised gradient steps,
//! `z −= rate · (lr/base_lr) · (s⊙g) / rms(s⊙G)`, whatever the optimizer,
//! where `G` is the gradient of *every* gate together and `s` divides each
//! gate's gradient by what the gate costs. Each gate moves by its pull
//! relative to all the others (Adam's per-weight normalisation, or one rms
//! per tensor, would move a `[1]` block gate by its sign alone and every
//! layer at the same speed), and the steps follow the learning-rate
//! schedule. A [`StepHook`]: the optimizer knows nothing of gates.

use std::collections::HashMap;

use burn::tensor::Tensor;

use crate::train::optim::{StepHook, Watched};

/// The gate parameters' step rule (see the module's header).
#[derive(Debug)]
pub struct GateSteps {
    /// The parameters this rule owns: every path that starts with it.
    prefix: String,
    rate: f64,
    base_lr: f64,
    /// Per-element factors `s` on a gate parameter's gradient, by path
    /// (flat, on the plain device).
    preconditioner: HashMap<String, Tensor<1>>,
    /// This step's `rms(s⊙G)`.
    rms: Option<Tensor<1>>,
}

impl GateSteps {
    pub fn new(
        prefix: &str,
        rate: f64,
        base_lr: f64,
        preconditioner: HashMap<String, Tensor<1>>,
    ) -> Self {
        GateSteps {
            prefix: prefix.to_string(),
            rate,
            base_lr,
            preconditioner,
            rms: None,
        }
    }

    /// Gates that no longer move (after the freeze): the rule still owns
    /// them, so neither the optimizer nor weight decay touches them.
    pub fn frozen(prefix: &str) -> Self {
        GateSteps::new(prefix, 0.0, 1.0, HashMap::new())
    }

    fn scaled(&self, path: &str, g: Tensor<1>) -> Tensor<1> {
        match self.preconditioner.get(path) {
            Some(s) => g * s.clone(),
            None => g,
        }
    }
}

impl StepHook for GateSteps {
    fn watches(&self, path: &str) -> bool {
        self.rate != 0.0 && path.starts_with(self.prefix.as_str())
    }

    fn begin(&mut self, watched: &[Watched]) {
        let mut count = 0;
        let mut sum: Option<Tensor<1>> = None;
        for w in watched {
            let Some(g) = &w.grad else { continue };
            let g = self.scaled(&w.path, g.clone());
            count += g.dims()[0];
            let squares = g.powi_scalar(2).sum();
            sum = Some(match sum.take() {
                Some(s) => s + squares,
                None => squares,
            });
        }
        self.rms = sum.map(|s| (s / count.max(1) as f64).sqrt().clamp_min(1e-12));
    }

    fn update(&self, path: &str, p: &Tensor<1>, g: &Tensor<1>, lr: f64) -> Option<Tensor<1>> {
        if !path.starts_with(self.prefix.as_str()) {
            return None;
        }
        if self.rate == 0.0 {
            return Some(p.clone());
        }
        let rms = self.rms.clone()?;
        let [n] = g.dims();
        let g = self.scaled(path, g.clone());
        Some(p.clone() - g / rms.expand([n]) * (self.rate * lr / self.base_lr.max(1e-12)))
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor, TensorData};

    use super::*;
    use crate::base::host::{block_on, floats};
    use crate::train::optim::{Optimizer, OptimizerSettings};

    #[derive(Module, Debug)]
    struct Gates {
        a: Param<Tensor<1>>,
        b: Param<Tensor<1>>,
    }

    fn gates(device: &Device) -> Gates {
        let scalar = |v: f32| {
            Param::from_tensor(
                Tensor::from_data(TensorData::new(vec![v], [1]), device).require_grad(),
            )
        };
        Gates {
            a: scalar(0.0),
            b: scalar(0.0),
        }
    }

    /// `a` and `b` after one step of the loss `3a + 4b` under `hook`.
    fn one_step(hook: GateSteps) -> [f32; 2] {
        let device = Device::flex().autodiff();
        let m = gates(&device);
        let mut opt = Optimizer::new(OptimizerSettings::default());
        opt.hooks.push(Box::new(hook));
        let loss = m.a.val() * 3.0 + m.b.val() * 4.0;
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let m = opt.step(0.1, m, grads);
        let a = block_on(floats(m.a.val())).unwrap()[0];
        let b = block_on(floats(m.b.val())).unwrap()[0];
        [a, b]
    }

    #[test]
    fn normalised_steps_share_one_rms_over_the_whole_group() {
        // Gradients 3 and 4: one rms over both, √((9 + 16)/2); one rms per
        // tensor would move each by exactly 1 (its sign).
        let [a, b] = one_step(GateSteps::new("", 1.0, 0.1, HashMap::new()));
        let rms = (12.5f32).sqrt();
        assert!(
            (a + 3.0 / rms).abs() < 1e-5 && (b + 4.0 / rms).abs() < 1e-5,
            "{a} {b}"
        );
    }

    #[test]
    fn the_preconditioner_scales_each_gates_pull_and_frozen_gates_stay() {
        // s = (2, 1): scaled gradients 6 and 4, rms √((36 + 16)/2).
        let plain = Device::flex();
        let s = |v: f32| Tensor::<1>::from_data(TensorData::new(vec![v], [1]), &plain);
        let pre = HashMap::from([("a".to_string(), s(2.0)), ("b".to_string(), s(1.0))]);
        let [a, b] = one_step(GateSteps::new("", 1.0, 0.1, pre));
        let rms = (26.0f32).sqrt();
        assert!(
            (a + 6.0 / rms).abs() < 1e-5 && (b + 4.0 / rms).abs() < 1e-5,
            "{a} {b}"
        );
        // Frozen: the optimizer's momentum SGD and weight decay never see them.
        assert_eq!(one_step(GateSteps::frozen("")), [0.0, 0.0]);
    }
}
