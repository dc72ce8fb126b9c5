//! Test-only fault injection, so the "lose nothing" guarantees are tested by
//! making the faults happen rather than by reasoning about them. Nothing
//! here is active unless `PRUNELAB_TEST_FAULT` is set; its value is a
//! comma-separated list of
//!
//! - `abort-at-step=K` — abort the process (no cleanup, like `kill -9`) right
//!   after optimisation step K of `prunelab train`, its checkpoint included;
//! - `abort-mid-write=NAME` — abort halfway through writing the temporary
//!   file of any atomic write whose file name contains NAME;
//! - `disk-full=NAME` — fail atomic writes of such files with ENOSPC after
//!   half the bytes, as a full disk does;
//! - `oom-at-step=K` — panic after step K with the message burn's GPU runtime
//!   gives when an allocation fails (cubecl's `OutOfMemory`), to pin what
//!   the CLI makes of it on machines without a GPU to exhaust;
//! - `fail-shard=I` — `prunelab sweep` shard I fails after its first run.

use std::sync::LazyLock;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Faults {
    pub abort_at_step: Option<u64>,
    pub oom_at_step: Option<u64>,
    pub abort_mid_write: Option<String>,
    pub disk_full: Option<String>,
    pub fail_shard: Option<usize>,
}

pub const VAR: &str = "PRUNELAB_TEST_FAULT";

static FAULTS: LazyLock<Faults> = LazyLock::new(|| {
    std::env::var(VAR)
        .ok()
        .map(|v| Faults::parse(&v))
        .unwrap_or_default()
});

impl Faults {
    /// Unknown entries are ignored: a test hook must never break a real run.
    pub fn parse(spec: &str) -> Faults {
        let mut f = Faults::default();
        for part in spec.split(',') {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            match key.trim() {
                "abort-at-step" => f.abort_at_step = value.parse().ok(),
                "oom-at-step" => f.oom_at_step = value.parse().ok(),
                "abort-mid-write" => f.abort_mid_write = Some(value.into()),
                "disk-full" => f.disk_full = Some(value.into()),
                "fail-shard" => f.fail_shard = value.parse().ok(),
                _ => {}
            }
        }
        f
    }
}

pub fn active() -> &'static Faults {
    &FAULTS
}

fn matches(pattern: &Option<String>, file_name: &str) -> bool {
    pattern
        .as_deref()
        .is_some_and(|p| !p.is_empty() && file_name.contains(p))
}

/// Called by the atomic writer after the first half of a temporary file.
pub fn mid_write(file_name: &str) -> std::io::Result<()> {
    let f = active();
    if matches(&f.abort_mid_write, file_name) {
        std::process::abort();
    }
    if matches(&f.disk_full, file_name) {
        return Err(std::io::Error::from_raw_os_error(28));
    }
    Ok(())
}

/// Called by `prunelab train` after each step (and its checkpoint).
pub fn after_step(step: u64) {
    if active().abort_at_step == Some(step) {
        std::process::abort();
    }
    if active().oom_at_step == Some(step) {
        panic!("out of device memory allocating 17179869184 bytes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_fault_and_ignores_the_unknown() {
        let f = Faults::parse("abort-at-step=7, disk-full=ckpt,bogus=1,fail-shard=2");
        assert_eq!(f.abort_at_step, Some(7));
        assert_eq!(f.disk_full.as_deref(), Some("ckpt"));
        assert_eq!(f.fail_shard, Some(2));
        assert_eq!(f.abort_mid_write, None);
        assert!(!matches(&Some(String::new()), "anything"));
    }
}
