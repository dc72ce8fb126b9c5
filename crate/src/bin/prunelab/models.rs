//! Model files at the command line: reading any format prunelab reads
//! (`.plm`, `.safetensors`, PyTorch `.pt`), writing by extension (`.plm`,
//! `.safetensors`, `.onnx`), and `prunelab export` between them.

use std::path::Path;

use burn::tensor::Device;
use prunelab::base::error::Result;
use prunelab::base::host::block_on;
use prunelab::base::memory::{MAX_MODEL_FILE, read_file};
use prunelab::interop::{self, Format};
use prunelab::io::{atomic, model_file};
use prunelab::model::masks::WeightMasks;
use prunelab::model::{Model, ModelSpec};

use crate::cli::ExportArgs;
use crate::setup::run_config;

/// Reads the model at `path`; a foreign file without prunelab's metadata is
/// read as `configured` (or as the CIFAR ResNet its keys describe).
pub fn load(path: &Path, configured: Option<&ModelSpec>, device: &Device) -> Result<Model> {
    Ok(read(path, configured, device)?.1.model)
}

/// The file's bytes and the model read from them, saying how a foreign
/// file's names were read.
fn read(
    path: &Path,
    configured: Option<&ModelSpec>,
    device: &Device,
) -> Result<(Vec<u8>, interop::Loaded)> {
    let bytes = read_file(path, MAX_MODEL_FILE)?;
    let loaded = interop::read_model(&bytes, path, configured, device)?;
    if let Some(how) = &loaded.read_as {
        eprintln!("{}: read as {how}", path.display());
    }
    Ok((bytes, loaded))
}

/// Writes `model` to `path` in the format its extension names, atomically,
/// and says what the file costs.
pub fn save(
    path: &Path,
    model: &Model,
    masks: Option<&WeightMasks>,
    notes: serde_json::Value,
) -> Result<()> {
    let format = Format::for_path(path, "save")?;
    let bytes = block_on(interop::export(model, masks, notes, format))?;
    atomic::write(path, &bytes)?;
    eprintln!(
        "model saved to {} ({})",
        path.display(),
        interop::size_line(model, masks)
    );
    Ok(())
}

/// Checks `--save`'s extension before hours of work go into a model it
/// could not write.
pub fn check_save_path(path: &Path, flag: &str) -> Result<()> {
    Format::for_path(path, flag).map(|_| ())
}

/// `prunelab export IN --to OUT`.
pub fn export(args: ExportArgs) -> Result<()> {
    check_save_path(&args.to, "to")?;
    atomic::check_writable(&args.to)?;
    let config = run_config(&args.setup)?;
    let inputs = match prunelab::model::zoo::POINT_MODELS.contains(&config.model.name.as_str()) {
        true => 2,
        false => 3,
    };
    // The configured architecture only matters for a foreign file without
    // prunelab's metadata (and one a CIFAR ResNet's keys do not describe).
    let configured = config.model_spec(args.classes, inputs).ok();
    let (bytes, mut loaded) = read(&args.file, configured.as_ref(), &Device::flex())?;
    let input = config.recorded_input(&loaded.model.spec);
    loaded.model.spec = loaded.model.spec.clone().with_input(input);
    // A weight-pruned .plm carries its masks: the export says what is sparse.
    let masks = match Format::sniff(&bytes) {
        Some(Format::Plm) => model_file::masks(&bytes, &args.file, &loaded.model)?,
        _ => None,
    };
    save(&args.to, &loaded.model, masks.as_ref(), loaded.notes)
}
