//! `onnx-check DIR`: every `NAME.onnx` that `crate/tests/engine/interop.rs` left in
//! DIR (`target/interop`) runs in tract on the input in `NAME.json`, and its
//! logits must be prunelab's (in the same JSON) within 1e-4. Exit status 1
//! on any difference, on a missing file, or on an empty folder, so
//! `./build.sh test` fails when an export is wrong.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;
use tract_onnx::prelude::*;

const TOL: f32 = 1e-4;

/// The exports the interop test writes; every one must be there, so a test
/// that stopped writing one cannot make this check pass vacuously.
const EXPECTED: usize = 10;

fn main() -> ExitCode {
    let dir = match std::env::args_os().nth(1) {
        Some(d) => PathBuf::from(d),
        None => {
            eprintln!(
                "usage: onnx-check DIR (run `cargo test --release -p prunelab --test engine interop::` first; it writes target/interop)"
            );
            return ExitCode::from(2);
        }
    };
    match check(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onnx-check: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(dir: &Path) -> Result<(), String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| {
            format!(
                "{}: {e} (run `cargo test --release -p prunelab --test engine interop::` first)",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(String::from)
        })
        .collect();
    names.sort();
    if names.len() < EXPECTED {
        return Err(format!(
            "{} exports in {}, expected {EXPECTED}: {}",
            names.len(),
            dir.display(),
            names.join(", ")
        ));
    }
    let mut worst = 0f32;
    for name in &names {
        let diff = compare(dir, name)?;
        println!("{name}: tract vs prunelab max |diff| {diff:.2e}");
        worst = worst.max(diff);
    }
    if !(worst <= TOL) {
        return Err(format!(
            "an ONNX export differs from prunelab by {worst} (tolerance {TOL})"
        ));
    }
    println!(
        "{} ONNX exports run in tract as in prunelab (worst {worst:.2e})",
        names.len()
    );
    Ok(())
}

/// Runs `NAME.onnx` in tract on `NAME.json`'s input; the largest difference
/// from prunelab's logits.
fn compare(dir: &Path, name: &str) -> Result<f32, String> {
    let json_path = dir.join(format!("{name}.json"));
    let onnx_path = dir.join(format!("{name}.onnx"));
    let json: Value = std::fs::read_to_string(&json_path)
        .map_err(|e| format!("{}: {e}", json_path.display()))
        .and_then(|t| {
            serde_json::from_str(&t).map_err(|e| format!("{}: {e}", json_path.display()))
        })?;
    let floats = |key: &str| -> Result<Vec<f32>, String> {
        json[key]
            .as_array()
            .ok_or_else(|| format!("{}: no `{key}` array", json_path.display()))?
            .iter()
            .map(|v| {
                v.as_f64()
                    .map(|x| x as f32)
                    .ok_or_else(|| format!("{}: `{key}` holds a non-number", json_path.display()))
            })
            .collect()
    };
    let shape: Vec<usize> = json["input_shape"]
        .as_array()
        .ok_or_else(|| format!("{}: no `input_shape`", json_path.display()))?
        .iter()
        .map(|v| v.as_u64().unwrap_or(0) as usize)
        .collect();
    let (input, ours) = (floats("input")?, floats("logits")?);
    let bytes = std::fs::read(&onnx_path).map_err(|e| format!("{}: {e}", onnx_path.display()))?;
    let theirs = run(&bytes, &input, &shape)
        .map_err(|e| format!("{}: tract: {e:#}", onnx_path.display()))?;
    if theirs.len() != ours.len() {
        return Err(format!(
            "{name}: tract gave {} logits, prunelab {}",
            theirs.len(),
            ours.len()
        ));
    }
    Ok(ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, |m, d| {
            if m.is_nan() || d.is_nan() {
                f32::NAN
            } else {
                m.max(d)
            }
        }))
}

fn run(onnx: &[u8], x: &[f32], shape: &[usize]) -> TractResult<Vec<f32>> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(onnx))?
        .with_input_fact(0, f32::fact(shape).into())?
        .into_optimized()?
        .into_runnable()?;
    let input = tract_ndarray::ArrayD::from_shape_vec(shape, x.to_vec())?;
    let out = model.run(tvec!(input.into_tensor().into()))?;
    Ok(out[0]
        .to_plain_array_view::<f32>()?
        .iter()
        .copied()
        .collect())
}
