//! Atomic file writes: a reader sees the old file or the new one, never a
//! partial one, and a crash mid-write leaves the old file in place.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` via a temporary file in the same directory,
/// `fsync`, then `rename` over the old file (and `fsync` of the directory so
/// the rename itself survives a power cut).
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        let hint = if e.raw_os_error() == Some(28) {
            " — the disk is full; free space and retry (the previous file is untouched)"
        } else {
            ""
        };
        Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(e.kind(), format!("{e}{hint}")),
        }
    })
}

/// Writes JSON (pretty, with a trailing newline) atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Execution(format!("serialising {}: {e}", path.display())))?;
    text.push('\n');
    write(path, text.as_bytes())
}
