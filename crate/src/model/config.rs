//! Which network a run builds: the zoo name and its options.

use serde::{Deserialize, Serialize};

use super::spec::ModelSpec;
use super::spec::{Activation, Init, Shortcut};
use super::zoo::ModelOptions;
use crate::base::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// One of [`crate::model::zoo::MODEL_NAMES`].
    pub name: String,
    /// MLP hidden widths.
    pub hidden: Vec<usize>,
    pub activation: Activation,
    /// MLP initialisation: `default` or `playground` (TensorFlow Playground's).
    pub init: Init,
    /// ResNet shortcut where the shape changes: `a` (zero-pad) or `b` (1×1 conv).
    pub shortcut: Shortcut,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            name: "mlp".into(),
            hidden: vec![16, 16],
            activation: Activation::Relu,
            init: Init::Default,
            shortcut: Shortcut::A,
        }
    }
}

impl ModelConfig {
    /// The architecture this config builds for data with `classes` classes
    /// and `inputs` input channels.
    pub fn spec(&self, classes: usize, inputs: usize) -> Result<ModelSpec> {
        ModelSpec::named(
            &self.name,
            &ModelOptions {
                classes,
                hidden: self.hidden.clone(),
                activation: self.activation,
                init: self.init,
                shortcut: self.shortcut,
                inputs,
            },
        )
    }
}
