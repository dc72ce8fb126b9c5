//! Whether a batch's activations fit: on the CPU a failed allocation aborts
//! the process (a GPU's out-of-memory is a panic the CLI turns into advice),
//! so a batch whose activations cannot fit in the memory available now is
//! refused before it is made — by every command that runs a model and by
//! the lab (issue 33, M1: a 1.3 MB model within every bound asked 6.7 GB).

use crate::base::device::DeviceChoice;
use crate::base::error::{Error, Result};
use crate::base::memory;
use crate::metrics::count::activation_floats;
use crate::model::ModelSpec;

/// Refuses `batch` examples of `spec` on a device of `kind` when their
/// activations — the forward outputs, their gradients and one copy each —
/// exceed the memory available; `flag` is the setting to lower.
pub fn check_batch(kind: DeviceChoice, spec: &ModelSpec, batch: usize, flag: &str) -> Result<()> {
    if !matches!(kind, DeviceChoice::Cpu) {
        return Ok(());
    }
    let Some(available) = memory::available() else {
        return Ok(());
    };
    let need = activation_floats(spec)
        .saturating_mul(batch as u64)
        .saturating_mul(3 * 4);
    if need <= available {
        return Ok(());
    }
    Err(Error::config(
        flag,
        batch,
        format!(
            "{} needs about {} for its activations at this batch size on the CPU, \
             and {} are available; lower {flag} (or use a smaller model)",
            spec.name(),
            memory::gb(need),
            memory::gb(available)
        ),
    ))
}
