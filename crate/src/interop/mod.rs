//! Models in and out of prunelab: PyTorch checkpoints (`.pt`, through burn's
//! own reader) and safetensors in, safetensors and ONNX out, beside
//! prunelab's own `.plm` (docs/interop.md).
//!
//! Import reads a file's tensors by name ([`StateDict`]), finds the
//! architecture (the file's own `prunelab.spec`, the one configured, or one
//! read off a CIFAR ResNet's keys and shapes), maps the names through
//! [`names::table`] and loads the model as a `.plm` is loaded. Anything that
//! does not fit — a missing key, an unexpected one, a shape — is reported
//! together, in the file's own names.

pub mod names;
pub mod onnx;
mod proto;
#[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
pub mod pytorch;
pub mod safetensors;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use burn::tensor::Device;

use crate::error::{Error, Result};
use crate::io::pack::{self, Pack};
use crate::model::masks::WeightMasks;
use crate::model::spec::{ResNetSpec, Shortcut};
use crate::model::{Model, ModelSpec};
use names::{Naming, Table};

/// A float tensor read from a foreign file.
#[derive(Debug, Clone)]
pub struct Named {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// What a checkpoint holds, by its own names.
#[derive(Debug, Default)]
pub struct StateDict {
    pub floats: Vec<Named>,
    /// Tensors of other types (BatchNorm's `num_batches_tracked` counters).
    pub others: Vec<String>,
    /// safetensors' `__metadata__` (prunelab writes `prunelab.spec` there).
    pub metadata: HashMap<String, String>,
}

/// The file formats prunelab reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// prunelab's own tensor pack (also carries weight masks).
    Plm,
    Safetensors,
    /// `torch.save(model.state_dict())`: read only, natively.
    Pytorch,
    /// Written only.
    Onnx,
}

impl Format {
    /// What `bytes` are, from their first bytes.
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        if bytes.starts_with(b"PRUNELAB") {
            return Some(Format::Plm);
        }
        // safetensors first: a little-endian u64 header length (whose low
        // byte may well be 0x80, a pickle's first byte), then a JSON object.
        if bytes.len() > 8 && bytes[8] == b'{' {
            let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
            if n <= (bytes.len() - 8) as u64 {
                return Some(Format::Safetensors);
            }
        }
        // torch.save: a ZIP archive (since PyTorch 1.6), or a bare pickle
        // (PROTO opcode 0x80, then protocol 2 to 5).
        if bytes.starts_with(b"PK\x03\x04")
            || (bytes.len() > 1 && bytes[0] == 0x80 && (2..=5).contains(&bytes[1]))
        {
            return Some(Format::Pytorch);
        }
        None
    }

    /// What to write to `path` (given as `flag`), from its extension.
    pub fn for_path(path: &Path, flag: &str) -> Result<Format> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext.to_ascii_lowercase().as_str() {
            "plm" => Ok(Format::Plm),
            "safetensors" => Ok(Format::Safetensors),
            "onnx" => Ok(Format::Onnx),
            _ => Err(Error::config(
                flag,
                path.display().to_string(),
                "name the file .plm (prunelab, keeps weight masks), .safetensors \
                 (PyTorch names, loads with safetensors.torch.load_file) or .onnx (ONNX Runtime)"
                    .to_string(),
            )),
        }
    }
}

/// A model read from a file, and how it was read.
pub struct Loaded {
    pub model: Model,
    /// The `.plm`'s notes (config, method, plan); empty for foreign files.
    pub notes: serde_json::Value,
    /// For a foreign file: how its names were read (shown to the user).
    pub read_as: Option<String>,
}

/// Reads a `.plm`, a safetensors or (natively) a PyTorch checkpoint.
/// `configured` is the architecture the caller set up; a foreign file
/// without prunelab's metadata is read as it, or, if it does not fit, as
/// the CIFAR ResNet its keys describe.
pub fn read_model(
    bytes: &[u8],
    path: &Path,
    configured: Option<&ModelSpec>,
    device: &Device,
) -> Result<Loaded> {
    let bad = |problem| bad_file(path, problem);
    let dict = match Format::sniff(bytes) {
        Some(Format::Plm) => {
            let (model, notes) = crate::io::model_file::from_bytes(bytes, path, device)?;
            return Ok(Loaded {
                model,
                notes,
                read_as: None,
            });
        }
        Some(Format::Safetensors) => safetensors::read(bytes).map_err(bad)?,
        #[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
        Some(Format::Pytorch) => pytorch::read(path).map_err(bad)?,
        #[cfg(not(all(not(target_arch = "wasm32"), feature = "native")))]
        Some(Format::Pytorch) => {
            return Err(bad(
                "PyTorch .pt files are read by the command-line prunelab; in the page, \
                 save the state_dict as safetensors (safetensors.torch.save_file) and drop that"
                    .into(),
            ));
        }
        Some(Format::Onnx) | None => {
            return Err(bad(
                "not a prunelab model (.plm), a safetensors file or a PyTorch checkpoint (.pt)"
                    .into(),
            ));
        }
    };
    import(&dict, path, configured, device)
}

/// Loads `dict` into a model (see [`read_model`]).
pub fn import(
    dict: &StateDict,
    path: &Path,
    configured: Option<&ModelSpec>,
    device: &Device,
) -> Result<Loaded> {
    let bad = |problem| bad_file(path, problem);
    let mut candidates = Vec::new();
    if let Some(json) = dict.metadata.get("prunelab.spec") {
        let spec: ModelSpec = serde_json::from_str(json).map_err(|e| {
            bad(format!(
                "its prunelab.spec metadata is not an architecture this prunelab reads: {e}"
            ))
        })?;
        candidates.push(spec);
    } else {
        candidates.extend(configured.cloned());
        if let Some(guess) = guess_resnet(dict).filter(|g| Some(g) != configured) {
            candidates.push(guess);
        }
    }
    let Some(first) = candidates.first() else {
        return Err(bad(
            "it does not say which architecture it holds: pass --model (and --shortcut, the data set) \
             to read it as one of prunelab's models"
                .into(),
        ));
    };
    let mut first_problem = None;
    for spec in &candidates {
        spec.validate()
            .map_err(|e| bad(format!("its architecture is not one prunelab builds: {e}")))?;
        // A file declaring a huge architecture is refused before anything
        // that size is built: it cannot hold the parameters. (Leniently: a
        // near miss is better reported key by key below.)
        let stored: u64 = dict.floats.iter().map(|t| t.values.len() as u64).sum();
        let needed = crate::metrics::count::count(spec).params;
        if needed > 4 * stored + 1_000_000 {
            first_problem.get_or_insert(format!(
                "{} needs {needed} parameters; the file holds {stored}",
                spec.name()
            ));
            continue;
        }
        let model = Model::new(spec, device);
        match map(dict, spec, &pack::shapes(&model)) {
            Ok((pack, read_as)) => {
                let model = pack::load_module(model, &pack, "model/", path)?;
                let notes = dict
                    .metadata
                    .get("prunelab.notes")
                    .and_then(|n| serde_json::from_str(n).ok())
                    .unwrap_or(serde_json::Value::Null);
                return Ok(Loaded {
                    model,
                    notes,
                    read_as: Some(read_as),
                });
            }
            Err(problem) => {
                first_problem.get_or_insert(problem);
            }
        }
    }
    Err(bad(format!(
        "it does not fit {} ({}). {}",
        first.name(),
        describe(first),
        first_problem.expect("one candidate was tried")
    )))
}

fn bad_file(path: &Path, problem: String) -> Error {
    Error::BadCheckpoint {
        path: path.to_path_buf(),
        problem,
    }
}

fn describe(spec: &ModelSpec) -> String {
    match spec {
        ModelSpec::Resnet(r) => format!(
            "option-{} shortcuts, {} classes",
            if r.shortcut == Shortcut::A { "A" } else { "B" },
            r.classes
        ),
        other => format!("{} classes", other.classes()),
    }
}

/// The `prefix` every name of `table` carries in `names` (`module.` after
/// DataParallel, `state_dict.` or `model.` in a training checkpoint).
fn common_prefix<'a>(table: &Table, names: impl Iterator<Item = &'a str> + Clone) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for key in &table.keys {
        for name in names.clone() {
            if let Some(prefix) = name.strip_suffix(key.theirs.as_str())
                && (prefix.is_empty() || prefix.ends_with('.'))
            {
                *counts.entry(prefix).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(p, n)| (n, std::cmp::Reverse(p.len())))
        .map(|(p, _)| p.to_string())
        .unwrap_or_default()
}

/// At most `n` items, then how many more.
fn listed(items: &[String], n: usize) -> String {
    let mut out = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        out.push_str(&format!(", … and {} more", items.len() - n));
    }
    out
}

/// `dict`'s tensors under prunelab's names (a `model/` pack), or every
/// reason they do not fit `spec`.
fn map(
    dict: &StateDict,
    spec: &ModelSpec,
    ours: &HashMap<String, Vec<usize>>,
) -> std::result::Result<(Pack, String), String> {
    let all = dict
        .floats
        .iter()
        .map(|t| t.name.as_str())
        .chain(dict.others.iter().map(String::as_str));
    let naming = Naming::detect(spec, all.clone());
    let table = names::table(spec, &naming);
    let prefix = common_prefix(&table, all.clone());
    let by_name: HashMap<&str, &Named> = dict.floats.iter().map(|t| (t.name.as_str(), t)).collect();
    let (mut missing, mut mismatched, mut used) = (Vec::new(), Vec::new(), HashSet::new());
    let mut pack = Pack::new(crate::io::model_file::KIND, serde_json::Value::Null);
    for key in &table.keys {
        let full = format!("{prefix}{}", key.theirs);
        let want = &ours[&key.ours];
        let Some(t) = by_name.get(full.as_str()) else {
            if dict.others.contains(&full) {
                used.insert(full.clone());
                mismatched.push(format!("{full} is not a float tensor in the file"));
            } else {
                missing.push(full);
            }
            continue;
        };
        used.insert(full.clone());
        let expected: Vec<usize> = match key.transposed {
            true => want.iter().rev().copied().collect(),
            false => want.clone(),
        };
        if t.shape != expected {
            mismatched.push(format!(
                "{full} is {:?} in the file, {:?} in prunelab",
                t.shape, expected
            ));
            continue;
        }
        let values = match key.transposed {
            true => transpose(&t.values, t.shape[0], t.shape[1]),
            false => t.values.clone(),
        };
        pack.push(format!("model/{}", key.ours), want.clone(), &values);
    }
    for bias in &table.biases {
        let full = format!("{prefix}{}", bias.theirs);
        let Some(t) = by_name.get(full.as_str()) else {
            continue;
        };
        used.insert(full.clone());
        let name = format!("model/{}", bias.running_mean);
        let Some(entry) = pack.entries.iter().find(|e| e.name == name) else {
            continue;
        };
        if entry.shape != t.shape {
            mismatched.push(format!(
                "{full} is {:?} in the file, {:?} in prunelab",
                t.shape, entry.shape
            ));
            continue;
        }
        let offset = entry.offset;
        for (i, b) in t.values.iter().enumerate() {
            pack.data[offset + i] -= b;
        }
    }
    for counter in &table.counters {
        used.insert(format!("{prefix}{}", counter.theirs));
    }
    let unexpected: Vec<String> = all
        .filter(|n| !used.contains(*n))
        .map(str::to_string)
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() || !mismatched.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!(
                "missing {} key(s): {}",
                missing.len(),
                listed(&missing, 6)
            ));
        }
        if !unexpected.is_empty() {
            parts.push(format!(
                "unexpected {} key(s): {}",
                unexpected.len(),
                listed(&unexpected, 6)
            ));
        }
        if !mismatched.is_empty() {
            parts.push(format!(
                "{} shape mismatch(es): {}",
                mismatched.len(),
                listed(&mismatched, 4)
            ));
        }
        return Err(format!(
            "{}. Pass the architecture it was saved from (--model, --shortcut, the data set's \
             classes); docs/interop.md lists the names prunelab reads",
            parts.join("; ")
        ));
    }
    if let Some((name, bad)) = pack.first_non_finite("model/") {
        return Err(format!(
            "tensor `{}` holds {bad} NaN or infinite values",
            name.trim_start_matches("model/")
        ));
    }
    let read_as = format!(
        "{} ({}), {} tensors{}{}",
        spec.name(),
        describe(spec),
        table.keys.len(),
        match prefix.as_str() {
            "" => String::new(),
            p => format!(", under `{p}`"),
        },
        match (&naming.classifier[..], spec) {
            (c, ModelSpec::Resnet(_)) => format!(", classifier `{c}`"),
            _ => String::new(),
        }
    );
    Ok((pack, read_as))
}

/// Row-major `[rows, cols]` → `[cols, rows]`.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// The CIFAR ResNet a state_dict's keys and shapes describe (common CIFAR
/// or torchvision naming): stages and blocks from `layer{s}.{b}`, widths
/// (block-internal ones too, as a channel-pruned model has them) from the
/// conv weights, option B where projections exist, classes from the classifier.
pub fn guess_resnet(dict: &StateDict) -> Option<ModelSpec> {
    // The shortest name ending in `suffix`: the stem's `conv1.weight`, not
    // a block's `layer1.0.conv1.weight`, whatever prefix the file adds.
    let shape = |suffix: &str| {
        dict.floats
            .iter()
            .filter(|t| t.name == suffix || t.name.ends_with(&format!(".{suffix}")))
            .min_by_key(|t| t.name.len())
            .map(|t| t.shape.clone())
    };
    let stem = shape("conv1.weight").filter(|s| s.len() == 4)?;
    if stem[2] != 3 {
        return None;
    }
    let classes = *shape("linear.weight")
        .or_else(|| shape("fc.weight"))?
        .first()?;
    let mut stages = Vec::new();
    for s in 1.. {
        let mut blocks = Vec::new();
        while let Some(conv1) = shape(&format!("layer{s}.{}.conv1.weight", blocks.len())) {
            blocks.push(*conv1.first()?);
        }
        if blocks.is_empty() {
            break;
        }
        let width = *shape(&format!("layer{s}.0.conv2.weight"))?.first()?;
        stages.push((width, blocks));
    }
    let n = stages.first()?.1.len();
    if stages.len() != 3 || stages.iter().any(|(_, b)| b.len() != n) {
        return None;
    }
    let projection = dict
        .floats
        .iter()
        .any(|t| t.name.contains(".shortcut.0.") || t.name.contains(".downsample.0."));
    let shortcut = if projection { Shortcut::B } else { Shortcut::A };
    let depth = 6 * n + 2;
    let mut spec = ResNetSpec::cifar(&format!("resnet{depth}"), depth, shortcut, classes);
    spec.in_channels = stem[1];
    spec.stem = stem[0];
    for (stage, (width, mids)) in spec.stages.iter_mut().zip(stages) {
        stage.width = width;
        for (block, mid) in stage.blocks.iter_mut().zip(mids) {
            block.mid = mid;
        }
    }
    let spec = ModelSpec::Resnet(spec);
    spec.validate().ok().map(|_| spec)
}

/// A model's tensors by module path, with weight masks applied (a
/// weight-pruned model exports its zeros).
pub(crate) async fn tensors(model: &Model, masks: Option<&WeightMasks>) -> Result<Pack> {
    let mut pack = Pack::new(crate::io::model_file::KIND, serde_json::Value::Null);
    match masks {
        Some(m) => pack::push_module(&mut pack, "", &m.apply(model)).await?,
        None => pack::push_module(&mut pack, "", model).await?,
    }
    Ok(pack)
}

/// Writes `model` as `format`: the bytes, and what the file costs to ship
/// (dense, and sparse for a weight-pruned model).
pub async fn export(
    model: &Model,
    masks: Option<&WeightMasks>,
    notes: serde_json::Value,
    format: Format,
) -> Result<Vec<u8>> {
    match format {
        Format::Plm => crate::io::model_file::to_bytes_with_masks(model, masks, notes).await,
        Format::Safetensors => safetensors::write(model, masks, notes).await,
        Format::Onnx => onnx::write(model, masks, notes).await,
        Format::Pytorch => Err(Error::config(
            "save",
            ".pt",
            "prunelab writes safetensors for PyTorch: \
             model.load_state_dict(safetensors.torch.load_file(PATH))"
                .to_string(),
        )),
    }
}

/// The size report every export prints: dense bytes, and for a weight-pruned
/// model its nonzeros and its sparse size (`metrics::bytes`).
pub fn size_line(model: &Model, masks: Option<&WeightMasks>) -> String {
    let size = crate::metrics::bytes::size(&model.spec, masks);
    match masks {
        Some(m) if m.kept() < m.total() => format!(
            "{} of {} parameters nonzero; stored dense (zeros included): {} bytes, sparse: {} bytes",
            size.nonzero_params, size.params, size.dense_bytes, size.bytes
        ),
        _ => format!("{} parameters, {} bytes", size.params, size.dense_bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_safetensors_header_of_128_bytes_is_not_taken_for_a_pickle() {
        // The length's low byte is 0x80, a pickle's first byte.
        let mut bytes = 128u64.to_le_bytes().to_vec();
        bytes.push(b'{');
        bytes.extend(std::iter::repeat_n(b' ', 127));
        assert_eq!(Format::sniff(&bytes), Some(Format::Safetensors));
        assert_eq!(Format::sniff(&[0x80, 0x02, b'}']), Some(Format::Pytorch));
        assert_eq!(Format::sniff(b"PK\x03\x04rest"), Some(Format::Pytorch));
        assert_eq!(Format::sniff(&[0x80, 0x00]), None);
    }

    fn named(name: &str, shape: &[usize]) -> Named {
        Named {
            name: name.into(),
            shape: shape.to_vec(),
            values: vec![0.0; shape.iter().product()],
        }
    }

    #[test]
    fn scalars_where_weights_belong_make_no_guess_and_no_panic() {
        let dict = StateDict {
            floats: vec![
                named("conv1.weight", &[16, 3, 3, 3]),
                named("layer1.0.conv1.weight", &[]),
                named("linear.weight", &[]),
            ],
            ..StateDict::default()
        };
        assert_eq!(guess_resnet(&dict), None);
    }

    #[test]
    fn the_classifier_is_found_under_any_prefix() {
        let spec = ModelSpec::named("resnet20", &Default::default()).unwrap();
        let keys = ["_orig_mod.conv1.weight", "_orig_mod.fc.weight"];
        assert_eq!(Naming::detect(&spec, keys.iter().copied()).classifier, "fc");
        let keys = ["backbone.conv_fc.weight", "backbone.linear.weight"];
        assert_eq!(
            Naming::detect(&spec, keys.iter().copied()).classifier,
            "linear"
        );
    }
}
