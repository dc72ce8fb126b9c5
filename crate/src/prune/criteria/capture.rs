//! Feature maps for data-driven criteria (HRank, S3): scoring batches run
//! through the model in eval mode; each yields the unit groups' outputs
//! (after BN, before the activation), `(group, [N, C, H, W])` in forward order.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::data::Split;
use crate::data::loader::Loader;
use crate::model::{Ctx, Model};

/// How many batches of which size, from the training set (with its
/// augmentation, as Yeom et al.'s code does).
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    pub batches: usize,
    pub batch_size: usize,
    pub augment: bool,
    pub seed: u64,
}

impl Sampling {
    /// The scoring batches `options` ask for (`info`'s default when unset).
    pub fn new(
        options: &crate::prune::options::PruneOptions,
        info: &crate::prune::contract::MethodInfo,
        augment: bool,
        seed: u64,
    ) -> Self {
        Sampling {
            batches: options
                .score_batches
                .or(info.score_batches.map(|(n, _)| n))
                .unwrap_or(10),
            batch_size: options.score_batch_size,
            augment,
            seed,
        }
    }

    /// A shuffled loader over the training set; `salt` keeps the streams of
    /// different criteria apart.
    pub fn loader<'a>(&self, split: &'a Split, salt: u64) -> Loader<'a> {
        Loader {
            data: &split.train,
            norm: split.norm,
            batch_size: self.batch_size,
            shuffle: true,
            augment: self.augment,
            seed: self.seed ^ salt,
        }
    }
}

pub struct Captures<'a> {
    eval: Model,
    device: Device,
    loader: Loader<'a>,
    order: Vec<usize>,
    next: usize,
    batches: usize,
    layers: Vec<String>,
}

/// The scoring batches of `sampling`, lazily.
/// The scoring batches of `sampling`, lazily, keeping the maps of `layers`.
pub fn batches<'a>(
    model: &Model,
    split: &'a Split,
    sampling: Sampling,
    layers: &[String],
) -> Captures<'a> {
    let eval = model.valid();
    let device = eval.device();
    let loader = sampling.loader(split, 0x5c0e);
    let order = loader.order(0);
    let batches = sampling.batches.min(loader.batches_per_epoch());
    Captures {
        eval,
        device,
        loader,
        order,
        next: 0,
        batches,
        layers: layers.to_vec(),
    }
}

impl Captures<'_> {
    /// The next batch's size and captured maps.
    pub fn next_batch(&mut self) -> Option<(usize, Vec<(String, Tensor<4>)>)> {
        if self.next >= self.batches {
            return None;
        }
        let batch = self.loader.batch(&self.order, 0, self.next, &self.device);
        self.next += 1;
        let mut ctx = Ctx::capturing();
        let _ = self.eval.forward_ctx(batch.x, &mut ctx);
        let mut maps = ctx.captured;
        maps.retain(|(name, _)| self.layers.contains(name));
        Some((batch.len, maps))
    }
}
