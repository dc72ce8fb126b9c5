//! A stop request from outside the engine (SIGTERM/SIGUSR1/Ctrl-C natively;
//! a Stop button could set it in the page). The training loop checks it
//! between steps: a run that owns a checkpoint writes it first, then the
//! step returns [`Error::Interrupted`](crate::Error::Interrupted), so a
//! scheduler can requeue the job and `--resume` continues where it stopped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

static FLAG: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// The shared flag, for signal handlers to set (`signal_hook::flag::register`).
pub fn flag() -> Arc<AtomicBool> {
    FLAG.clone()
}

pub fn request() {
    FLAG.store(true, Ordering::SeqCst);
}

pub fn requested() -> bool {
    FLAG.load(Ordering::SeqCst)
}

/// The exit status for an interrupted run: EX_TEMPFAIL, "try again", which
/// the shipped Slurm and Kubernetes templates treat as "requeue".
pub const EXIT_REQUEUE: u8 = 75;

/// The exit status for a run stopped with nothing saved to resume from
/// (`train` without `--checkpoint`, `compare`): 128 + SIGINT, as a shell
/// reports a stopped command, so a requeue loop does not start over forever.
pub const EXIT_STOPPED: u8 = 130;
