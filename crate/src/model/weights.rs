//! The weight tensors that weight-level pruning may zero: every conv and
//! linear weight (biases and BN parameters stay dense), named by layer
//! (`stage2.block4.conv1`, `fc`) and by module path
//! (`net.Resnet.blocks.13.conv1.conv.weight`, the key the optimizer and
//! checkpoints use for masks).

use burn::module::Param;
use burn::tensor::{Gradients, Tensor};

use super::{Model, Net};

pub enum WeightParam<'a> {
    /// `[C_out, C_in, k, k]`.
    Conv(&'a Param<Tensor<4>>),
    /// `[d_in, d_out]` (burn's layout).
    Linear(&'a Param<Tensor<2>>),
}

pub struct PrunableWeight<'a> {
    pub layer: String,
    pub path: String,
    pub param: WeightParam<'a>,
}

impl WeightParam<'_> {
    pub fn shape(&self) -> Vec<usize> {
        match self {
            WeightParam::Conv(p) => p.val().dims().to_vec(),
            WeightParam::Linear(p) => p.val().dims().to_vec(),
        }
    }

    /// The values, flattened row-major.
    pub fn flat(&self) -> Tensor<1> {
        match self {
            WeightParam::Conv(p) => p.val().flatten(0, 3),
            WeightParam::Linear(p) => p.val().flatten(0, 1),
        }
    }

    /// The gradient from a backward pass, flattened.
    pub fn grad(&self, grads: &Gradients) -> Option<Tensor<1>> {
        match self {
            WeightParam::Conv(p) => p.val().grad(grads).map(|g| g.flatten(0, 3)),
            WeightParam::Linear(p) => p.val().grad(grads).map(|g| g.flatten(0, 1)),
        }
    }

    /// `flat` (this weight's values, its gradient, or their product) as one
    /// row per output unit: a conv filter's `C_in·k·k` values, or a linear
    /// column (burn stores `[d_in, d_out]`).
    pub fn per_unit(&self, flat: Tensor<1>) -> Tensor<2> {
        let shape = self.shape();
        match self {
            WeightParam::Conv(_) => flat.reshape([shape[0], shape[1..].iter().product::<usize>()]),
            WeightParam::Linear(_) => flat.reshape([shape[0], shape[1]]).transpose(),
        }
    }

    /// `flat` as one row per *input* unit: a conv input channel's
    /// `C_out·k·k` values, or a linear row.
    pub fn per_input(&self, flat: Tensor<1>) -> Tensor<2> {
        let shape = self.shape();
        match self {
            WeightParam::Conv(_) => {
                let k: usize = shape[2..].iter().product();
                flat.reshape([shape[0], shape[1], k])
                    .swap_dims(0, 1)
                    .reshape([shape[1], shape[0] * k])
            }
            WeightParam::Linear(_) => flat.reshape([shape[0], shape[1]]),
        }
    }

    /// Rows of the CSR view: output units (conv filters; linear columns).
    pub fn rows(&self) -> usize {
        let shape = self.shape();
        match self {
            WeightParam::Conv(_) => shape[0],
            WeightParam::Linear(_) => shape[1],
        }
    }
}

impl Model {
    /// The device its parameters live on (autodiff or not, as they are).
    pub fn device(&self) -> burn::tensor::Device {
        self.prunable_weights()
            .first()
            .map(|w| w.param.flat().device())
            .expect("every model has weights")
    }

    /// Every conv and linear weight, in forward order.
    pub fn prunable_weights(&self) -> Vec<PrunableWeight<'_>> {
        let mut out = Vec::new();
        let mut push =
            |layer: String, path: String, param| out.push(PrunableWeight { layer, path, param });
        match &self.net {
            Net::Mlp(m) => {
                for (i, l) in m.hidden.iter().enumerate() {
                    push(
                        format!("fc{}", i + 1),
                        format!("net.Mlp.hidden.{i}.weight"),
                        WeightParam::Linear(&l.weight),
                    );
                }
                push(
                    "out".into(),
                    "net.Mlp.out.weight".into(),
                    WeightParam::Linear(&m.out.weight),
                );
            }
            Net::Plain(p) => {
                for (i, c) in p.convs.iter().enumerate() {
                    push(
                        format!("conv{}", i + 1),
                        format!("net.Plain.convs.{i}.conv.weight"),
                        WeightParam::Conv(&c.conv.weight),
                    );
                }
                push(
                    "fc".into(),
                    "net.Plain.fc.weight".into(),
                    WeightParam::Linear(&p.fc.weight),
                );
            }
            Net::Resnet(r) => {
                push(
                    "stem".into(),
                    "net.Resnet.stem.conv.weight".into(),
                    WeightParam::Conv(&r.stem.conv.weight),
                );
                for (k, b) in r.blocks.iter().enumerate() {
                    let base = format!("net.Resnet.blocks.{k}");
                    push(
                        format!("{}.conv1", b.name),
                        format!("{base}.conv1.conv.weight"),
                        WeightParam::Conv(&b.conv1.conv.weight),
                    );
                    push(
                        format!("{}.conv2", b.name),
                        format!("{base}.conv2.conv.weight"),
                        WeightParam::Conv(&b.conv2.conv.weight),
                    );
                    if let Some(p) = &b.projection {
                        push(
                            format!("{}.shortcut", b.name),
                            format!("{base}.projection.conv.weight"),
                            WeightParam::Conv(&p.conv.weight),
                        );
                    }
                }
                push(
                    "fc".into(),
                    "net.Resnet.fc.weight".into(),
                    WeightParam::Linear(&r.fc.weight),
                );
            }
        }
        out
    }
}
