//! Loading a state_dict into a prunelab model: the architecture it fits
//! (configured, from its metadata, or the CIFAR ResNet its keys describe),
//! the names mapped through one table, and a file that does not fit
//! refused with every missing, unexpected and mis-shaped key named.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use burn::tensor::Device;

use super::names::{self, Naming, Table};
use super::state_dict::{Named, StateDict, transpose};
use crate::base::error::{Error, Result};
use crate::io::pack::{self, Pack};
use crate::model::spec::{ResNetSpec, Shortcut};
use crate::model::{Model, ModelSpec};

/// A model read from a file, and how it was read.
pub struct Loaded {
    pub model: Model,
    /// The `.plm`'s notes (config, method, plan); empty for foreign files.
    pub notes: serde_json::Value,
    /// For a foreign file: how its names were read (shown to the user).
    pub read_as: Option<String>,
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

pub(super) fn bad_file(path: &Path, problem: String) -> Error {
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

/// The CIFAR ResNet a state_dict's keys and shapes describe (common CIFAR
/// or torchvision naming): stages and blocks from `layer{s}.{b}`, widths
/// (block-internal ones too, as a channel-pruned model has them) from the
/// conv weights, option B where projections exist, classes from the classifier.
pub fn guess_resnet(dict: &StateDict) -> Option<ModelSpec> {
    // The shortest name ending in `suffix`: the stem's `conv1.weight`, not
    // a block's `layer1.0.conv1.weight`, whatever prefix the file adds.
    // Every dot-separated suffix of every name is indexed once, so a file of
    // N tensors costs O(N) and not a scan per block (20,000 names: 19 s).
    let mut by_suffix: HashMap<&str, &Named> = HashMap::new();
    for t in &dict.floats {
        let dots = t.name.match_indices('.').map(|(i, _)| i + 1);
        for start in std::iter::once(0).chain(dots) {
            let entry = by_suffix.entry(&t.name[start..]).or_insert(t);
            if t.name.len() < entry.name.len() {
                *entry = t;
            }
        }
    }
    let shape = |suffix: &str| by_suffix.get(suffix).map(|t| t.shape.clone());
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
