//! Energy per phase of a run, where the machine can say: the GPU's own
//! energy counter through NVML (`nvml-wrapper`, which loads the driver's
//! `libnvidia-ml.so` at run time — a machine without it is "not metered" and
//! the run goes on), or, for the CPU, the kernel's RAPL counters
//! (`/sys/class/powercap/intel-rapl:N/energy_uj`, package domains). Nothing
//! is estimated: without a counter the report says "not metered" and why.
//!
//! The meter is process-wide: a run opens it for its device ([`follow`]) and
//! the engine charges each phase's joules ([`mark`], [`charge`]) — train,
//! prune, fine-tune, eval — without being handed it.
//! CO₂ is joules × the grid's intensity ([`set_grid`]; default
//! [`DEFAULT_GRID_G_PER_KWH`]).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// World average life-cycle emissions of electricity generation in 2023,
/// gCO₂e/kWh: Ember, Global Electricity Review 2024 (481 g). Set your own
/// grid's with `--grid-g-per-kwh` (e.g. France ~56, India ~713 in 2023).
pub const DEFAULT_GRID_G_PER_KWH: f64 = 481.0;

/// What a result records about energy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyReport {
    /// What measured it (`nvml: NVIDIA H200 (GPU 0)`, `rapl: 2 package
    /// domains`) or `not metered: <why>`.
    pub meter: String,
    /// Joules over the whole run; `None` when not metered.
    pub energy_j: Option<f64>,
    /// `energy_j` × `grid_g_per_kwh` / 3.6e6.
    pub co2_g: Option<f64>,
    pub grid_g_per_kwh: f64,
    /// Joules per phase (`train`, `prune`, `finetune`, `eval`).
    #[serde(default)]
    pub phases: BTreeMap<String, f64>,
}

/// The energy fields of a result (flattened into it): what one run or row
/// took, `None` when not metered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metered {
    /// Joules (`energy_joules` in results before the meter existed).
    #[serde(default, alias = "energy_joules")]
    pub energy_j: Option<f64>,
    /// `energy_j` at the grid intensity (`--grid-g-per-kwh`).
    #[serde(default)]
    pub co2_g: Option<f64>,
    /// The meter, the grid intensity and the joules per phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<EnergyReport>,
}

impl Metered {
    /// What was used since `mark`; with the meter's report when `report`.
    pub fn since(mark: Option<f64>, report: bool) -> Metered {
        let joules = since(mark);
        Metered {
            energy_j: joules,
            co2_g: co2_at_grid(joules),
            energy: report.then(self::report),
        }
    }
}

/// A cumulative energy counter, in joules.
enum Counter {
    #[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
    Nvml(Box<nvml::Gpu>),
    #[cfg(target_os = "linux")]
    Rapl(Vec<rapl::Domain>),
    None(String),
}

impl Counter {
    fn joules(&mut self) -> Option<f64> {
        match self {
            #[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
            Counter::Nvml(gpu) => gpu.joules(),
            #[cfg(target_os = "linux")]
            Counter::Rapl(domains) => {
                let mut total = 0.0;
                for d in domains {
                    total += d.joules()?;
                }
                Some(total)
            }
            Counter::None(_) => None,
        }
    }

    fn name(&self) -> String {
        match self {
            #[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
            Counter::Nvml(gpu) => format!("nvml: {}", gpu.name),
            #[cfg(target_os = "linux")]
            Counter::Rapl(domains) => format!("rapl: {} package domain(s)", domains.len()),
            Counter::None(why) => format!("not metered: {why}"),
        }
    }
}

struct Meter {
    counter: Counter,
    /// What was opened (`None`: only the grid was set).
    gpu: Option<bool>,
    /// The counter when the meter opened.
    start: Option<f64>,
    phases: BTreeMap<String, f64>,
    grid: f64,
}

static METER: Mutex<Option<Meter>> = Mutex::new(None);

fn with<T>(f: impl FnOnce(&mut Meter) -> T) -> Option<T> {
    let mut guard = METER.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_mut().map(f)
}

/// Opens the process's meter: NVML's first GPU when `gpu`, else RAPL. A
/// counter that is not there leaves a "not metered" meter. Opening the same
/// kind again keeps the running meter (a sweep opens its device per run).
pub fn open(gpu: bool) {
    let mut guard = METER.lock().unwrap_or_else(|e| e.into_inner());
    if guard.as_ref().is_some_and(|m| m.gpu == Some(gpu)) {
        return;
    }
    let grid = guard.as_ref().map_or(DEFAULT_GRID_G_PER_KWH, |m| m.grid);
    let mut counter = if gpu { gpu_counter() } else { cpu_counter() };
    let start = counter.joules();
    *guard = Some(Meter {
        counter,
        gpu: Some(gpu),
        start,
        phases: BTreeMap::new(),
        grid,
    });
}

#[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
fn gpu_counter() -> Counter {
    match nvml::Gpu::open() {
        Ok(gpu) => Counter::Nvml(Box::new(gpu)),
        Err(why) => Counter::None(why),
    }
}

#[cfg(not(all(not(target_arch = "wasm32"), feature = "native")))]
fn gpu_counter() -> Counter {
    Counter::None("this build has no NVML".into())
}

#[cfg(target_os = "linux")]
fn cpu_counter() -> Counter {
    match rapl::domains() {
        Ok(domains) => Counter::Rapl(domains),
        Err(why) => Counter::None(why),
    }
}

#[cfg(not(target_os = "linux"))]
fn cpu_counter() -> Counter {
    Counter::None("RAPL is read on Linux only".into())
}

/// Opens the meter for `device` (NVML for a GPU, RAPL for the CPU), unless
/// it is open already: what the engine's runs call before they charge.
pub fn follow(device: &crate::base::device::OpenDevice) {
    open(device.kind != crate::base::device::DeviceChoice::Cpu);
}

/// Sets the grid's carbon intensity (gCO₂e/kWh) used for `co2_g`.
pub fn set_grid(g_per_kwh: f64) {
    let mut guard = METER.lock().unwrap_or_else(|e| e.into_inner());
    match guard.as_mut() {
        Some(m) => m.grid = g_per_kwh,
        None => {
            *guard = Some(Meter {
                counter: Counter::None("no meter was opened".into()),
                gpu: None,
                start: None,
                phases: BTreeMap::new(),
                grid: g_per_kwh,
            })
        }
    }
}

/// The counter now, to charge a phase with later (`None`: not metered).
pub fn mark() -> Option<f64> {
    with(|m| m.counter.joules()).flatten()
}

/// Charges the joules since `mark` to `phase`.
pub fn charge(phase: &str, mark: Option<f64>) {
    with(|m| {
        if let (Some(then), Some(now)) = (mark, m.counter.joules()) {
            *m.phases.entry(phase.to_string()).or_default() += (now - then).max(0.0);
        }
    });
}

/// Adds `joules` to `phase` (a share worked out by the caller).
pub fn add(phase: &str, joules: f64) {
    with(|m| *m.phases.entry(phase.to_string()).or_default() += joules.max(0.0));
}

/// CO₂e for `joules` at the meter's grid intensity.
pub fn co2_at_grid(joules: Option<f64>) -> Option<f64> {
    let grid = with(|m| m.grid).unwrap_or(DEFAULT_GRID_G_PER_KWH);
    joules.map(|j| co2_g(j, grid))
}

/// Joules since `mark` (for one result row), if metered.
pub fn since(mark: Option<f64>) -> Option<f64> {
    let now = mark?;
    with(|m| m.counter.joules().map(|j| (j - now).max(0.0))).flatten()
}

/// What the run used so far.
pub fn report() -> EnergyReport {
    with(|m| {
        let energy = match (m.start, m.counter.joules()) {
            (Some(a), Some(b)) => Some((b - a).max(0.0)),
            _ => None,
        };
        EnergyReport {
            meter: m.counter.name(),
            energy_j: energy,
            co2_g: energy.map(|j| co2_g(j, m.grid)),
            grid_g_per_kwh: m.grid,
            phases: m.phases.clone(),
        }
    })
    .unwrap_or_else(|| EnergyReport {
        meter: "not metered: no meter was opened".into(),
        energy_j: None,
        co2_g: None,
        grid_g_per_kwh: DEFAULT_GRID_G_PER_KWH,
        phases: BTreeMap::new(),
    })
}

/// Grams of CO₂e for `joules` at `g_per_kwh` (1 kWh = 3.6 MJ).
pub fn co2_g(joules: f64, g_per_kwh: f64) -> f64 {
    joules / 3.6e6 * g_per_kwh
}

#[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
mod nvml {
    use nvml_wrapper::Nvml;

    /// The first GPU's cumulative energy counter (Volta and newer), in mJ
    /// since the driver loaded.
    pub struct Gpu {
        nvml: Nvml,
        pub name: String,
    }

    impl Gpu {
        pub fn open() -> Result<Gpu, String> {
            let nvml = Nvml::init().map_err(|e| format!("NVML is not available ({e})"))?;
            let device = nvml
                .device_by_index(0)
                .map_err(|e| format!("NVML sees no GPU ({e})"))?;
            device
                .total_energy_consumption()
                .map_err(|e| format!("the GPU has no energy counter ({e})"))?;
            let name = device.name().unwrap_or_else(|_| "GPU".into());
            Ok(Gpu {
                name: format!("{name} (GPU 0)"),
                nvml,
            })
        }

        pub fn joules(&self) -> Option<f64> {
            let device = self.nvml.device_by_index(0).ok()?;
            device
                .total_energy_consumption()
                .ok()
                .map(|mj| mj as f64 / 1e3)
        }
    }
}

#[cfg(target_os = "linux")]
mod rapl {
    use std::path::{Path, PathBuf};

    const ROOT: &str = "/sys/class/powercap";

    /// One package domain: its counter (µJ) wraps at `max_energy_range_uj`.
    pub struct Domain {
        path: PathBuf,
        range: f64,
        last: Option<u64>,
        wrapped: f64,
    }

    impl Domain {
        pub fn joules(&mut self) -> Option<f64> {
            let now: u64 = std::fs::read_to_string(self.path.join("energy_uj"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            if let Some(last) = self.last
                && now < last
            {
                self.wrapped += self.range;
            }
            self.last = Some(now);
            Some((self.wrapped + now as f64) / 1e6)
        }
    }

    /// The top-level package domains (`intel-rapl:0`, `intel-rapl:1`, …;
    /// their `:N:M` subdomains are inside them, so are not added).
    pub fn domains() -> Result<Vec<Domain>, String> {
        let entries = std::fs::read_dir(ROOT)
            .map_err(|_| format!("{ROOT} is absent (no RAPL on this machine or kernel)"))?;
        let mut out = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("intel-rapl:") && name.matches(':').count() == 1 {
                let path = Path::new(ROOT).join(&name);
                // `psys` (the whole platform, packages included) is a
                // top-level domain too on client machines: packages only.
                let kind = std::fs::read_to_string(path.join("name")).unwrap_or_default();
                if !kind.starts_with("package") {
                    continue;
                }
                let range = std::fs::read_to_string(path.join("max_energy_range_uj"))
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .unwrap_or(f64::MAX);
                let mut d = Domain {
                    path,
                    range,
                    last: None,
                    wrapped: 0.0,
                };
                if d.joules().is_none() {
                    return Err(format!(
                        "{name}/energy_uj is not readable (root only since Linux 5.10)"
                    ));
                }
                out.push(d);
            }
        }
        if out.is_empty() {
            return Err(format!("{ROOT} has no intel-rapl package domain"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joules_become_grams_at_the_grid_intensity() {
        // 1 kWh at 481 g/kWh is 481 g.
        assert!((co2_g(3.6e6, DEFAULT_GRID_G_PER_KWH) - 481.0).abs() < 1e-9);
        assert_eq!(co2_g(0.0, 481.0), 0.0);
    }

    #[test]
    fn a_machine_without_a_counter_says_not_metered() {
        // This machine may or may not have RAPL; either way the report is
        // well-formed and never invents a number.
        open(false);
        let m = mark();
        charge("train", m);
        let r = report();
        match r.energy_j {
            Some(j) => {
                assert!(r.meter.starts_with("rapl"), "{}", r.meter);
                assert!(j >= 0.0 && r.co2_g.is_some());
            }
            None => {
                assert!(r.meter.starts_with("not metered: "), "{}", r.meter);
                assert!(r.co2_g.is_none() && r.phases.is_empty());
            }
        }
    }
}
