//! What the machine can spare: the one figure every allocation check reads
//! (model files' tensors, `io::budget`; a batch's activations,
//! `metrics::memory`). On the CPU a failed allocation aborts the process
//! instead of returning an error, so sizes are checked against it first.

/// Bytes the machine can allocate now: `MemAvailable` on Linux; in a wasm32
/// page, half of the 4 GiB address space; elsewhere unknown (nothing is
/// checked against it).
pub fn available() -> Option<u64> {
    #[cfg(target_arch = "wasm32")]
    {
        Some(2 << 30)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb.saturating_mul(1024))
    }
}

/// `bytes` as people read them: 6.7 GB.
pub fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// The largest model file or checkpoint any command reads (the largest
/// model prunelab builds within its bounds is far smaller).
pub const MAX_MODEL_FILE: u64 = 4 << 30;
/// The largest CSV data file.
pub const MAX_CSV_FILE: u64 = 1 << 30;

/// Reads the file at `path` whole, after its metadata says it is a regular
/// file of at most `cap` bytes that the machine can hold: a FIFO (which would
/// hang), a device such as `/dev/zero` (which never ends) or a huge file is
/// refused before a byte is read, naming what was found.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_file(path: &std::path::Path, cap: u64) -> crate::base::error::Result<Vec<u8>> {
    use crate::base::error::Error;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let refuse = |why: String| Error::io(path, std::io::Error::other(why));
    if !meta.is_file() {
        return Err(refuse(
            "not a regular file (a folder, a FIFO or a device): give a file".into(),
        ));
    }
    let cap = available().map_or(cap, |spare| cap.min(spare / 2));
    if meta.len() > cap {
        return Err(refuse(format!(
            "{} bytes, more than the {} this reads: is it the file you meant?",
            meta.len(),
            gb(cap)
        )));
    }
    std::fs::read(path).map_err(|e| Error::io(path, e))
}
