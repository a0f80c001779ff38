//! Choosing where training runs: a real GPU through wgpu, otherwise burn's CPU backend.

use std::sync::OnceLock;

use burn::tensor::Device;

pub use crate::plan::BackendChoice;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What was chosen, for the status bar and the run summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// `wgpu` or `flex`.
    pub backend: String,
    /// The adapter's name, or `CPU (flex)`.
    pub device: String,
    /// Why `auto` chose what it chose, when it fell back.
    pub note: Option<String>,
}

#[derive(Debug, Error)]
pub enum BackendError {
    #[error("no usable wgpu adapter: {0}")]
    NoWgpu(String),
}

/// The wgpu adapter found at start-up, once per process: its device, name and whether it
/// is a software (CPU) adapter.
struct WgpuProbe {
    device: Device,
    name: String,
    software: bool,
}

fn probe_wgpu() -> &'static Result<WgpuProbe, String> {
    static PROBE: OnceLock<Result<WgpuProbe, String>> = OnceLock::new();
    PROBE.get_or_init(|| {
        let attempt = std::panic::catch_unwind(|| Device::wgpu_options().init_with_setup());
        match attempt {
            Ok(Ok((device, setup))) => {
                let info = setup.adapter.get_info();
                use burn::tensor::wgpu::wgpu::DeviceType;
                let software = matches!(info.device_type, DeviceType::Cpu | DeviceType::Other);
                Ok(WgpuProbe {
                    device,
                    name: format!("{} ({:?})", info.name, info.backend),
                    software,
                })
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the wgpu runtime panicked while looking for an adapter".into()),
        }
    })
}

fn flex(note: Option<String>) -> (Device, BackendInfo) {
    (
        Device::flex(),
        BackendInfo {
            backend: "flex".into(),
            device: "CPU (flex)".into(),
            note,
        },
    )
}

/// Picks the device for `choice`. `Auto` never trains on a software adapter: llvmpipe is
/// two orders of magnitude slower than flex on the same cores.
pub fn select(choice: BackendChoice) -> Result<(Device, BackendInfo), BackendError> {
    match choice {
        BackendChoice::Flex => Ok(flex(None)),
        BackendChoice::Wgpu => match probe_wgpu() {
            Ok(p) => Ok((
                p.device.clone(),
                BackendInfo {
                    backend: "wgpu".into(),
                    device: p.name.clone(),
                    note: p
                        .software
                        .then(|| "software adapter: expect it to be slow".to_string()),
                },
            )),
            Err(e) => Err(BackendError::NoWgpu(e.clone())),
        },
        BackendChoice::Auto => match probe_wgpu() {
            Ok(p) if !p.software => Ok((
                p.device.clone(),
                BackendInfo {
                    backend: "wgpu".into(),
                    device: p.name.clone(),
                    note: None,
                },
            )),
            Ok(p) => Ok(flex(Some(format!(
                "no GPU adapter: wgpu found only {}, a software adapter",
                p.name
            )))),
            Err(e) => Ok(flex(Some(format!("no GPU adapter: {e}")))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_never_lands_on_a_software_adapter() {
        let (_, info) = select(BackendChoice::Auto).unwrap();
        match probe_wgpu() {
            Ok(p) if !p.software => assert_eq!(info.backend, "wgpu"),
            _ => {
                assert_eq!(info.backend, "flex");
                assert!(info.note.unwrap().starts_with("no GPU adapter"));
            }
        }
    }
}
