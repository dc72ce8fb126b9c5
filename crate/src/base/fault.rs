//! Test-only fault injection, so the "lose nothing" guarantees are tested by
//! making the faults happen rather than by reasoning about them. The hook
//! reads `PRUNELAB_TEST_FAULT`, a comma-separated list of
//!
//! - `until=T` — **required**: the hook is armed only while the Unix time is
//!   before `T`, and `T` may lie at most [`MAX_ARMED_SECONDS`] ahead;
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
//!
//! Why `until`: the hook ships in release binaries (the tests exercise the
//! binary people run), so a variable copied from a test script into a job
//! file, or left exported in a shell, must not abort a real run. A test
//! arms it for the next few minutes; a stray copy is ignored (with a
//! warning, see [`notice`]) within the hour at most, and one without `until`
//! never fires.

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

/// How far ahead `until=` may point: a test arms the hook for minutes.
pub const MAX_ARMED_SECONDS: i64 = 3600;

/// What the hook made of the environment.
#[derive(Debug, Clone, PartialEq)]
enum Hook {
    Off,
    Armed(Faults, i64),
    Ignored(String),
}

static HOOK: LazyLock<Hook> = LazyLock::new(|| match std::env::var(VAR) {
    Err(_) => Hook::Off,
    Ok(spec) => match arm(&spec, crate::base::clock::unix_seconds()) {
        Ok((faults, until)) => Hook::Armed(faults, until),
        Err(why) => Hook::Ignored(why),
    },
});

/// Parses `spec` and arms it if its `until=` is in the next
/// [`MAX_ARMED_SECONDS`] after `now`; otherwise says why not.
fn arm(spec: &str, now: i64) -> Result<(Faults, i64), String> {
    let mut until = None;
    let faults = Faults::parse(spec);
    for part in spec.split(',') {
        if let Some(("until", value)) = part.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
            until = value.parse::<i64>().ok();
        }
    }
    match until {
        None => Err("it has no `until=UNIX_SECONDS`".into()),
        Some(t) if t <= now => Err(format!("its `until={t}` has passed")),
        Some(t) if t > now + MAX_ARMED_SECONDS => Err(format!(
            "its `until={t}` lies more than {MAX_ARMED_SECONDS} s ahead"
        )),
        Some(t) => Ok((faults, t)),
    }
}

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

/// The faults to inject: none unless the hook is armed.
pub fn active() -> &'static Faults {
    static NONE: Faults = Faults {
        abort_at_step: None,
        oom_at_step: None,
        abort_mid_write: None,
        disk_full: None,
        fail_shard: None,
    };
    match &*HOOK {
        Hook::Armed(faults, _) => faults,
        _ => &NONE,
    }
}

/// A line for the front door to print when the variable is set at all:
/// either that faults will be injected, or why the variable is ignored.
pub fn notice() -> Option<String> {
    match &*HOOK {
        Hook::Off => None,
        Hook::Armed(f, until) => Some(format!(
            "warning: {VAR} is armed until {until}: this run will be made to fail ({f:?})"
        )),
        Hook::Ignored(why) => Some(format!(
            "warning: {VAR} is set but ignored because {why}; it is a test hook \
             (crate/src/base/fault.rs), unset it"
        )),
    }
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
    fn only_a_spec_with_a_near_until_is_armed() {
        let now = 1_800_000_000;
        let spec = |tail: &str| format!("abort-at-step=3{tail}");
        let (f, until) = arm(&spec(&format!(",until={}", now + 60)), now).unwrap();
        assert_eq!((f.abort_at_step, until), (Some(3), now + 60));
        for stray in [
            spec(""),
            spec(&format!(",until={now}")),
            spec(&format!(",until={}", now - 1)),
            spec(&format!(",until={}", now + MAX_ARMED_SECONDS + 1)),
            spec(",until=soon"),
        ] {
            assert!(arm(&stray, now).is_err(), "{stray}");
        }
    }

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
