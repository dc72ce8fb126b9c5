//! Choosing the compute device at run time. One engine, several devices:
//! `cpu` (burn's pure-Rust `flex`, also used in wasm), `vulkan` (wgpu; native
//! GPUs, or a CPU-only machine through Chromium's SwiftShader driver) and
//! `webgpu` (the browser). A device that cannot be opened is an [`Error::Device`]
//! that says how to get it, never a panic.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// The best device available: a Vulkan GPU natively, WebGPU in a browser, else the CPU.
    #[default]
    Auto,
    Cpu,
    Vulkan,
    Webgpu,
}

impl FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" | "flex" => Ok(Self::Cpu),
            "vulkan" | "gpu" => Ok(Self::Vulkan),
            "webgpu" => Ok(Self::Webgpu),
            _ => Err(Error::config(
                "device",
                s,
                "choose one of auto, cpu, vulkan, webgpu",
            )),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Vulkan => "vulkan",
            Self::Webgpu => "webgpu",
        };
        f.write_str(name)
    }
}

/// An opened device and what it turned out to be.
#[derive(Debug, Clone)]
pub struct OpenDevice {
    pub device: Device,
    /// `cpu`, `vulkan` or `webgpu`: what runs the kernels.
    pub kind: DeviceChoice,
    /// A line a person can read: the adapter, or why `auto` fell back.
    pub description: String,
}

impl OpenDevice {
    pub fn cpu(description: impl Into<String>) -> Self {
        OpenDevice {
            device: Device::flex(),
            kind: DeviceChoice::Cpu,
            description: description.into(),
        }
    }

    /// The device with gradients recorded, for training.
    pub fn autodiff(&self) -> Device {
        self.device.clone().autodiff()
    }
}

#[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
mod native {
    use std::sync::Mutex;

    use burn::tensor::{DeviceKind, wgpu::WgpuBackend};

    use super::*;

    const VULKAN_FIX: &str = "On an NVIDIA machine install the driver's Vulkan ICD (libvulkan1 and \
        the nvidia ICD json); on a CPU-only machine use \
        VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (Debian's lavapipe crashes on \
        burn's shaders), or run with --device cpu";

    /// wgpu runtimes can be initialised once per process; later opens reuse them.
    static OPENED: Mutex<Vec<(DeviceKind, std::result::Result<Device, String>)>> =
        Mutex::new(Vec::new());

    fn vulkan(kind: DeviceKind) -> std::result::Result<Device, String> {
        let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, result)) = opened.iter().find(|(k, _)| *k == kind) {
            return result.clone();
        }
        let result = Device::wgpu_options()
            .graphics_api(WgpuBackend::Vulkan)
            .device_kind(kind.clone())
            .init()
            .map_err(|e| e.to_string());
        opened.push((kind, result.clone()));
        result
    }

    fn adapter_name(device: &Device) -> String {
        device
            .identity()
            .map(|id| id.name)
            .unwrap_or_else(|| "unknown adapter".into())
    }

    /// Opens `choice` on this machine.
    pub fn open(choice: DeviceChoice) -> Result<OpenDevice> {
        #[cfg(feature = "native")]
        if choice != DeviceChoice::Cpu
            && std::env::var("PRUNELAB_FUSION").is_ok_and(|v| v == "0" || v == "off")
        {
            super::disable_fusion()?;
        }
        match choice {
            DeviceChoice::Cpu => Ok(OpenDevice::cpu("cpu (burn flex)")),
            DeviceChoice::Webgpu => Err(Error::Device {
                device: "webgpu".into(),
                reason: "WebGPU is the browser's device".into(),
                fix: "use --device vulkan for a native GPU, or open the playground page".into(),
            }),
            DeviceChoice::Vulkan => {
                let device = vulkan(DeviceKind::DefaultDevice).map_err(|reason| Error::Device {
                    device: "vulkan".into(),
                    reason,
                    fix: VULKAN_FIX.into(),
                })?;
                let name = adapter_name(&device);
                if name.to_ascii_lowercase().contains("llvmpipe") {
                    return Err(Error::Device {
                        device: "vulkan".into(),
                        reason: format!("the only Vulkan adapter is {name} (Mesa lavapipe)"),
                        fix: VULKAN_FIX.into(),
                    });
                }
                Ok(OpenDevice {
                    device,
                    kind: DeviceChoice::Vulkan,
                    description: format!("vulkan ({name})"),
                })
            }
            DeviceChoice::Auto => {
                // Only real GPUs win over the CPU backend: a software Vulkan
                // adapter is slower than flex, and lavapipe crashes.
                for kind in [DeviceKind::DiscreteGpu(0), DeviceKind::IntegratedGpu(0)] {
                    if let Ok(device) = vulkan(kind) {
                        let name = adapter_name(&device);
                        return Ok(OpenDevice {
                            device,
                            kind: DeviceChoice::Vulkan,
                            description: format!("vulkan ({name}), picked by --device auto"),
                        });
                    }
                }
                Ok(OpenDevice::cpu(
                    "cpu (burn flex), picked by --device auto: no Vulkan GPU was found",
                ))
            }
        }
    }
}

#[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
pub use native::open;

/// Builds without the `native` feature (the fuzz targets) have only the CPU.
#[cfg(all(not(target_arch = "wasm32"), not(feature = "native")))]
pub fn open(choice: DeviceChoice) -> Result<OpenDevice> {
    match choice {
        DeviceChoice::Cpu | DeviceChoice::Auto => Ok(OpenDevice::cpu("cpu (burn flex)")),
        other => Err(Error::Device {
            device: other.to_string(),
            reason: "this build has no GPU support".into(),
            fix: "build with the `native` feature (the default), or use --device cpu".into(),
        }),
    }
}

/// Switches burn's kernel fusion off for this process (call before the first
/// GPU tensor operation). A workaround for drivers that miscompile fused
/// kernels — SwiftShader's Vulkan does (docs/devices.md) — at the cost of
/// speed on real GPUs. `PRUNELAB_FUSION=0` does the same from outside.
#[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
pub fn disable_fusion() -> Result<()> {
    // Idempotent: a second call (another test of the same binary, or
    // `PRUNELAB_FUSION=0` plus an explicit call) must not fail because the
    // first one's GPU work has started the fusion service since.
    static DISABLED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut disabled = DISABLED.lock().unwrap_or_else(|e| e.into_inner());
    if *disabled {
        return Ok(());
    }
    for name in burn_cubecl::fusion::BUILTIN_NAMES {
        burn_cubecl::fusion::remove(name).map_err(|e| Error::Device {
            device: "vulkan".into(),
            reason: format!("fusion cannot be switched off now: {e:?}"),
            fix: "switch it off before the first GPU operation (PRUNELAB_FUSION=0)".into(),
        })?;
    }
    *disabled = true;
    Ok(())
}

/// Opens `choice` in a browser: WebGPU when an adapter exists, else the CPU.
/// `auto` falls back with a description that says so; `webgpu` fails instead.
#[cfg(target_arch = "wasm32")]
pub async fn open_async(choice: DeviceChoice) -> Result<OpenDevice> {
    // The page's CPU modules (`web-bindings` alone, and `web-threads`) are
    // built without WebGPU, so that the page starts on a small module
    // (static/web/worker.js fetches the WebGPU one only when it is needed).
    const CPU: &str = if cfg!(feature = "web-threads") {
        "cpu (burn flex in WebAssembly, multi-threaded)"
    } else {
        "cpu (burn flex in WebAssembly)"
    };
    match choice {
        DeviceChoice::Cpu => Ok(OpenDevice::cpu(CPU)),
        DeviceChoice::Vulkan => Err(Error::Device {
            device: "vulkan".into(),
            reason: "the browser has no Vulkan".into(),
            fix: "use webgpu or cpu in the page".into(),
        }),
        #[cfg(not(feature = "web"))]
        DeviceChoice::Auto => Ok(OpenDevice::cpu(format!(
            "{CPU}: WebGPU is unavailable (this module is built without WebGPU)"
        ))),
        #[cfg(not(feature = "web"))]
        DeviceChoice::Webgpu => Err(Error::Device {
            device: "webgpu".into(),
            reason: "this is one of the page's CPU modules, built without WebGPU".into(),
            fix: "choose auto or cpu, or load the page's WebGPU module (pkg-gpu)".into(),
        }),
        #[cfg(feature = "web")]
        DeviceChoice::Webgpu | DeviceChoice::Auto => {
            match Device::wgpu_options().init_async().await {
                Ok(device) => Ok(OpenDevice {
                    device,
                    kind: DeviceChoice::Webgpu,
                    description: "webgpu".into(),
                }),
                Err(e) if choice == DeviceChoice::Auto => Ok(OpenDevice::cpu(format!(
                    "cpu (burn flex in WebAssembly): WebGPU is unavailable ({e})"
                ))),
                Err(e) => Err(Error::Device {
                    device: "webgpu".into(),
                    reason: e.to_string(),
                    fix: "use a browser with WebGPU enabled, or choose the CPU".into(),
                }),
            }
        }
    }
}
