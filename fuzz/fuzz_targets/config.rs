#![no_main]
//! Run configs, experiment files and sweep files (TOML).
use libfuzzer_sys::fuzz_target;
use prunelab::config::RunConfig;
use prunelab::runs::experiment::ExperimentConfig;
use prunelab::runs::sweep::SweepConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = RunConfig::from_toml(text, "fuzz.toml");
    let _ = ExperimentConfig::from_toml(text, "fuzz.toml");
    if let Ok(sweep) = SweepConfig::from_toml(text, "fuzz.toml") {
        let _ = sweep.runs();
    }
});
