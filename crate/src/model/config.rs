//! Which network a run builds: the zoo name and its options.

use serde::{Deserialize, Serialize};

use super::spec::ModelSpec;
use super::spec::{Activation, Init, Shortcut};
use super::zoo::ModelOptions;
use crate::base::error::{Error, Result};
use crate::data::augment::Normalization;

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
    /// The input normalisation of a model read from a file that does not
    /// record one (a foreign checkpoint), or that a new model trains with;
    /// unset: the data set's own statistics, or the published value for a
    /// public checkpoint prunelab knows by its hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalize: Option<NormalizeArg>,
    /// A trained model to start from instead of training one: a model file,
    /// or a public checkpoint's name (`resnet56-cifar10`, found where `data
    /// fetch` puts it). A comparison's dense stage is then that model,
    /// measured, not trained; `[train]` describes only the fine-tuning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// `normalize` as configs and `--normalize` write it (`imagenet`,
/// `0.5,0.25`, …), parsed once where it is read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NormalizeArg(pub Normalization);

impl TryFrom<String> for NormalizeArg {
    type Error = Error;
    fn try_from(text: String) -> Result<NormalizeArg> {
        Normalization::parse(&text).map(NormalizeArg)
    }
}

impl From<NormalizeArg> for String {
    fn from(n: NormalizeArg) -> String {
        n.0.describe()
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            name: "mlp".into(),
            hidden: vec![16, 16],
            activation: Activation::Relu,
            init: Init::Default,
            shortcut: Shortcut::A,
            normalize: None,
            from: None,
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
