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
