//! `prunelab`: the native front door. Parses flags, calls the engine, renders
//! its events. Everything a second front door would also need lives in the
//! library.

mod cli;
mod bench;
mod compare;
mod eval;
mod info;
mod prune;
mod train;
mod setup;
mod fetch;
mod models;
mod progress;
mod connections;
mod error_heads;
mod serve;
mod site;
mod reproduce;
mod sweep;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, DataArgs, DataCommand};
use prunelab::Error;
use prunelab::base::interrupt;

/// Training and inference free and re-allocate the same megabyte-sized
/// tensors every step. glibc's defaults hand such blocks back to the kernel
/// (anything over its adaptive mmap threshold, and the heap's top beyond
/// 128 KiB), so each step faulted them in again, zeroed: ~5% of a ResNet-20
/// step on the CPU in `perf`, 4–14% of its throughput (docs/benchmarks.md).
/// Keep up to 32 MiB blocks on the heap and up to 512 MiB of it unreturned.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only tunes the allocator; called before any threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() -> ExitCode {
    keep_freed_memory();
    // The Vulkan loader complains on stderr when a shell has no runtime
    // directory (CI, containers); give it a private one before any probing.
    // Private (0700, as XDG asks), freshly made (never one that already
    // exists under a guessable name), and removed on the way out.
    let mut runtime_dir = None;
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!(
            "prunelab-runtime-{:016x}",
            prunelab::io::atomic::nonce()
        ));
        if std::fs::DirBuilder::new().mode(0o700).create(&dir).is_ok() {
            // SAFETY: first statement of main, before any thread exists.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
            runtime_dir = Some(dir);
        }
    }
    let code = run(runtime_dir.clone());
    if let Some(dir) = runtime_dir {
        // Only if empty: whatever a driver left there is not ours to delete.
        let _ = std::fs::remove_dir(dir);
    }
    code
}

fn run(runtime_dir: Option<std::path::PathBuf>) -> ExitCode {
    // Not `Cli::parse()`: it exits the process (for --help too) before the
    // runtime directory is removed.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    if let Some(line) = prunelab::base::fault::notice() {
        eprintln!("{line}");
    }
    if let Some(g) = cli.grid_g_per_kwh {
        if !(g.is_finite() && g >= 0.0) {
            eprintln!("error: invalid grid-g-per-kwh = {g}: give grams of CO₂e per kWh, e.g. 481");
            return ExitCode::from(2);
        }
        prunelab::metrics::energy::set_grid(g);
    }
    match cli.conv.parse() {
        Ok(path) => prunelab::model::conv::set_path(path),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let json_events = match &cli.command {
        Command::Train(a) => a.json_events,
        Command::Prune(a) => a.json_events,
        Command::Compare(a) => a.json_events,
        Command::Sweep(a) => a.json_events,
        Command::Reproduce(a) => a.json_events,
        _ => false,
    };
    let result = catch_device_panics(|| match cli.command {
        Command::Train(args) => {
            stop_on_signals();
            train::train(args)
        }
        Command::Eval(args) => {
            exit_on_signals(runtime_dir);
            eval::eval(args)
        }
        Command::Info(args) => info::info(args),
        Command::Prune(args) => {
            exit_on_signals(runtime_dir);
            prune::prune(args)
        }
        Command::Compare(args) => {
            stop_on_signals();
            compare::compare(args)
        }
        Command::Sweep(args) => {
            stop_on_signals();
            sweep::sweep(args)
        }
        Command::Reproduce(args) => {
            stop_on_signals();
            reproduce::reproduce(args)
        }
        Command::Methods => compare::methods(),
        Command::Bench(args) => {
            exit_on_signals(runtime_dir);
            bench::bench(args)
        }
        Command::Serve(args) => serve::serve(args),
        Command::Data(DataArgs {
            command: DataCommand::Fetch(args),
        }) => fetch::fetch(args),
        Command::Export(args) => {
            exit_on_signals(runtime_dir);
            models::export(args)
        }
    });
    if let (true, Err(e)) = (json_events, &result) {
        // A log reader sees how the run ended, not just that stdout stopped.
        let resumable = matches!(
            e,
            Error::Interrupted {
                resumable: true,
                ..
            }
        );
        let event = serde_json::json!({
            "type": if matches!(e, Error::Interrupted { .. }) { "stopped" } else { "error" },
            "message": e.to_string(),
            "resumable": resumable,
        });
        println!("{event}");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(
            e @ Error::Interrupted {
                resumable: true, ..
            },
        ) => {
            eprintln!("stopped: {e}");
            ExitCode::from(interrupt::EXIT_REQUEUE)
        }
        // Not 75: a scheduler that requeues would only start over, forever.
        Err(e @ Error::Interrupted { .. }) => {
            eprintln!(
                "stopped: {e}; exit {} (not {}: nothing to resume)",
                interrupt::EXIT_STOPPED,
                interrupt::EXIT_REQUEUE
            );
            ExitCode::from(interrupt::EXIT_STOPPED)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// For the long-running commands (train, run, sweep): SIGTERM and SIGUSR1
/// (what Slurm and Kubernetes send before a kill) and Ctrl-C ask the engine to stop at the next step, after a checkpoint; a
/// second Ctrl-C stops at once.
fn stop_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let flag = interrupt::flag();
    let _ = signal_hook::flag::register_conditional_shutdown(SIGINT, 130, flag.clone());
    for signal in [SIGINT, SIGTERM, SIGUSR1] {
        let _ = signal_hook::flag::register(signal, flag.clone());
    }
}

/// For commands with no step to stop at (`prune`, `eval`, `export`,
/// `bench`): a signal still ends them at once, but here rather than by the
/// default action. The status is then the documented 130 (stopped, nothing
/// saved) instead of 128 + the signal, and the private runtime directory is
/// removed (each default SIGTERM death left one behind in the temporary
/// folder). Outputs go to a temporary name that is renamed once complete,
/// so nothing half-written is left, as before.
fn exit_on_signals(runtime_dir: Option<std::path::PathBuf>) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            if let Some(dir) = &runtime_dir {
                let _ = std::fs::remove_dir(dir);
            }
            eprintln!("stopped by signal {signal}; nothing was saved");
            std::process::exit(interrupt::EXIT_STOPPED.into());
        }
    });
}

/// burn's GPU runtimes panic where they cannot allocate or lose the device;
/// turn such panics into an error that says what happened and what to do,
/// instead of a backtrace.
fn catch_device_panics(run: impl FnOnce() -> prunelab::Result<()>) -> prunelab::Result<()> {
    let message = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = message.clone();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default();
        *seen.lock().unwrap_or_else(|e| e.into_inner()) = format!("{text}{at}");
    }));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(result) => result,
        Err(_) => {
            let text = message.lock().unwrap_or_else(|e| e.into_inner()).clone();
            Err(Error::from_panic(&text))
        }
    }
}
