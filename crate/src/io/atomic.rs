//! Atomic file writes: a reader sees the old file or the new one, never a
//! partial one, and a crash mid-write leaves the old file in place.

use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};

use crate::base::error::{Error, Result};
use crate::base::fault;

/// Writes `bytes` to `path` via a temporary file in the same directory,
/// `fsync`, then `rename` over the old file (and `fsync` of the directory so
/// the rename itself survives a power cut).
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    publish(path, bytes, Publish::Replace).map(|_| ())
}

/// As [`write`], but never replaces an existing `path`: returns `false` (and
/// leaves the existing file alone) when another writer got there first. Two
/// processes racing for one name therefore write it exactly once.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<bool> {
    publish(path, bytes, Publish::Once)
}

#[derive(Clone, Copy, PartialEq)]
enum Publish {
    Replace,
    Once,
}

fn publish(path: &Path, bytes: &[u8], mode: Publish) -> Result<bool> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let (tmp, mut file) = create_temporary(dir, &name).map_err(|e| Error::io(dir, e))?;
    let result = (|| -> std::io::Result<bool> {
        let half = bytes.len() / 2;
        file.write_all(&bytes[..half])?;
        fault::mid_write(&name)?;
        file.write_all(&bytes[half..])?;
        file.sync_all()?;
        drop(file);
        let published = match mode {
            Publish::Replace => fs::rename(&tmp, path).map(|_| true)?,
            // A hard link fails when the name exists: first writer wins.
            Publish::Once => match fs::hard_link(&tmp, path) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(e),
            },
        };
        if mode == Publish::Once {
            fs::remove_file(&tmp)?;
        }
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(published)
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

/// Creates a fresh temporary file beside the target, exclusively
/// (`O_EXCL`): its name carries a random 64-bit nonce, because a PID is
/// unique only inside one PID namespace (every Kubernetes pod's prunelab is
/// PID 1 on one shared volume), and a clash, however unlikely, is retried
/// with a new nonce rather than shared.
fn create_temporary(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    loop {
        // The name shortened to its first 200 bytes (at a char boundary):
        // a legal 255-byte name must still leave room for the suffix.
        let mut end = name.len().min(200);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let tmp = dir.join(format!(".{}.tmp-{:016x}", &name[..end], nonce()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// 64 random bits: std's `RandomState` keys come from the OS's random
/// source once per thread; the counter and the clock make every call differ.
pub fn nonce() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// Checks, before any work, that `path` can be written later: its folder
/// exists or can be made, `path` is not itself a folder, and a file can be
/// created beside it. An hour of training must not end in "Not a directory".
pub fn check_writable(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if path.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::other("this is a folder; give a file name"),
        ));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let (tmp, file) = create_temporary(dir, &name).map_err(|e| Error::io(path, e))?;
    drop(file);
    fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e))
}

/// Checks a command's outputs before any work: each writable
/// ([`check_writable`]) and no two naming the same file (compared by their
/// canonical folder and name), since one would silently replace the other.
/// `outputs`: each flag (`--out`) with its path, if given.
pub fn check_outputs(outputs: &[(&str, Option<&Path>)]) -> Result<()> {
    let mut seen: Vec<(&str, std::path::PathBuf)> = Vec::new();
    for (flag, path) in outputs {
        let Some(path) = path else { continue };
        check_writable(path)?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let dir = fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        let same = dir.join(path.file_name().unwrap_or_default());
        if let Some((other, _)) = seen.iter().find(|(_, p)| *p == same) {
            return Err(Error::config(
                flag,
                path.display(),
                format!(
                    "{other} names the same file, and one output would replace the other; give each its own path"
                ),
            ));
        }
        seen.push((flag, same));
    }
    Ok(())
}

/// Writes JSON (pretty, with a trailing newline) atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Execution(format!("serialising {}: {e}", path.display())))?;
    text.push('\n');
    write(path, text.as_bytes())
}
