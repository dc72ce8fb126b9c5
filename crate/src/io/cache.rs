//! A small on-disk cache for measurements worth keeping between runs (the
//! per-layer latency tables `latency=` targets are predicted from): one JSON
//! file per key under `$PRUNELAB_CACHE`, else `$XDG_CACHE_HOME/prunelab`,
//! else `~/.cache/prunelab`. Delete the directory to measure again.

use std::path::{Path, PathBuf};

/// The cache directory, if the environment names one.
pub fn dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("PRUNELAB_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("prunelab")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("prunelab")))
}

/// `kind-<16 hex digits>.json`: FNV-1a of `key`, stable across runs and builds.
pub fn path(dir: &Path, kind: &str, key: &str) -> PathBuf {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    dir.join(format!("{kind}-{h:016x}.json"))
}

/// The value stored for `key`, if a readable entry holds exactly this key.
pub fn read<T: serde::de::DeserializeOwned>(dir: &Path, kind: &str, key: &str) -> Option<T> {
    let text = std::fs::read_to_string(path(dir, kind, key)).ok()?;
    let entry: serde_json::Value = serde_json::from_str(&text).ok()?;
    if entry.get("key")?.as_str()? != key {
        return None;
    }
    serde_json::from_value(entry.get("value")?.clone()).ok()
}

/// Stores `value` for `key`; a cache that cannot be written is no error
/// (the measurement is simply taken again next time).
pub fn write<T: serde::Serialize>(dir: &Path, kind: &str, key: &str, value: &T) {
    let entry = serde_json::json!({ "key": key, "value": value });
    if std::fs::create_dir_all(dir).is_ok() {
        let _ = super::atomic::write_json(&path(dir, kind, key), &entry);
    }
}
