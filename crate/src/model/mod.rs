//! Models: an architecture ([`spec::ModelSpec`], plain data) and the burn
//! module built from it. [`Model`] keeps both together so a network always
//! knows its own geometry — pruning changes the two in step.

pub mod config;
pub mod conv;
pub mod geometry;
pub mod groups;
pub mod layers;
pub mod masks;
pub mod mlp;
pub mod params;
pub mod plain;
pub mod resnet;
pub mod spec;
pub mod weights;
pub mod zoo;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

pub use config::ModelConfig;
pub use layers::Ctx;
use mlp::Mlp;
use plain::PlainNet;
use resnet::ResNet;
pub use spec::ModelSpec;

/// A deep copy of any module: `valid()` rebuilds every `RunningState` (new
/// storage, current value) and `train()` restores each parameter's autodiff
/// and gradient state on an autodiff device. The copy is detached from any
/// graph the original takes part in.
pub fn deep_fork<M: Module>(module: &M) -> M {
    let autodiff = module.devices().iter().any(|d| d.is_autodiff());
    let copy = module.valid();
    if autodiff { copy.train() } else { copy }
}

// One per model, never in a collection: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Net {
    Mlp(Mlp),
    Plain(PlainNet),
    Resnet(ResNet),
}

#[derive(Module, Debug)]
pub struct Model {
    pub net: Net,
    #[module(skip)]
    pub spec: ModelSpec,
}

impl Model {
    /// A freshly initialised network for `spec` on `device`. Seed the device
    /// (`device.seed(..)`) first for reproducible weights.
    pub fn new(spec: &ModelSpec, device: &Device) -> Self {
        let net = match spec {
            ModelSpec::Mlp(m) => Net::Mlp(Mlp::new(m, device)),
            ModelSpec::Plain(p) => Net::Plain(PlainNet::new(p, device)),
            ModelSpec::Resnet(r) => Net::Resnet(ResNet::new(r, device)),
        };
        let model = Model {
            net,
            spec: spec.clone(),
        };
        // burn initialises parameters lazily, on first use, from whatever the
        // device's RNG holds then; draw them all now, in a fixed order, so a
        // seed alone decides the weights (and moving the model to another
        // device moves these weights, not a fresh draw).
        params::visit(&model, None, |_, _, _, _| {});
        model
    }

    /// An independent copy: weights *and* BatchNorm running statistics.
    /// `clone()` is not one — burn's `RunningState` is shared between
    /// clones, so a clone that trains rewrites the original's running mean
    /// and variance. Every place a method starts from θ₀ or the dense model
    /// forks it. (burn's own `Module::fork` moves a module to a device;
    /// it does not copy the running statistics either.)
    pub fn deep_fork(&self) -> Model {
        deep_fork(self)
    }

    /// `[N, C, H, W]` (toy points: `[N, 2, 1, 1]`) → logits `[N, classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_ctx(x, &mut Ctx::default())
    }

    /// Forward with masks, gates or capture (see [`Ctx`]).
    pub fn forward_ctx(&self, x: Tensor<4>, ctx: &mut Ctx) -> Tensor<2> {
        match &self.net {
            Net::Mlp(m) => m.forward(x, ctx),
            Net::Plain(p) => p.forward(x, ctx),
            Net::Resnet(r) => r.forward(x, ctx),
        }
    }
}

/// A freshly initialised model for `spec`, seeded. The weights are drawn on
/// the CPU and moved to `device`, so a seed gives the same network on every
/// device (a GPU's random generator would draw other numbers).
pub fn init_model(spec: &ModelSpec, seed: u64, device: &Device) -> Model {
    let cpu = if device.is_autodiff() {
        Device::flex().autodiff()
    } else {
        Device::flex()
    };
    // The CPU device's generator is global: two threads seeding and drawing
    // at once would interleave their draws. One model at a time.
    static DRAWING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let model = {
        let _one_at_a_time = DRAWING.lock().unwrap_or_else(|e| e.into_inner());
        cpu.seed(seed);
        Model::new(spec, &cpu)
    };
    if *device == cpu {
        model
    } else {
        from_cpu(model, device)
    }
}

/// Moves a CPU (flex) model to `device` through host memory. burn's own
/// `to_device` between backends reads synchronously from the destination
/// side, which the browser forbids; reading a flex tensor is a memory copy.
pub fn from_cpu(model: Model, device: &Device) -> Model {
    // `into_data` of a flex tensor is a memory copy; the new tensor is
    // made on `device` from host memory.
    params::map(model, None, |_, _, value, _| {
        Some(Tensor::from_data(value.into_data(), device))
    })
}
