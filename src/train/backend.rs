//! Choosing where training runs: a real GPU through wgpu, otherwise burn's CPU backend.

use std::sync::OnceLock;

use burn::tensor::Device;

pub use crate::plan::BackendChoice;
use crate::plan::Training;
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

/// The name [`BackendInfo::backend`] gives a device served by another machine.
const REMOTE: &str = "remote";

impl BackendInfo {
    /// Whether the device is another machine's, reached through burn's remote backend:
    /// every read waits for the network, and the server can go away.
    pub fn is_remote(&self) -> bool {
        self.backend == REMOTE
    }
}

#[derive(Debug, Error)]
pub enum BackendError {
    #[error("no usable wgpu adapter: {0}")]
    NoWgpu(String),
    #[error(
        "backend remote needs a server: --remote ws://HOST:PORT (remote = \"ws://HOST:PORT\" under [training] in a plan)"
    )]
    NoServer,
    #[error(
        "cannot reach the server at {url}: {reason} (is `sparsity-explorer serve` running there?)"
    )]
    Unreachable { url: String, reason: String },
    #[error("the server at {url} refused the token (give the one it was started with: --token T)")]
    Unauthorized { url: String },
    #[error("the server at {url}: {reason}")]
    Remote { url: String, reason: String },
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
            device: crate::kernels::FLEX_DEVICE.into(),
            note,
        },
    )
}

/// The servers a plan names for the remote backend, in order.
pub fn servers(training: &Training) -> Vec<String> {
    parse_servers(training.remote.as_deref().unwrap_or_default())
}

/// The servers an analysis (sensitivity or sweep) is spread over; none when it runs where
/// the session trains. A list the request names is used as given, even of one server (the
/// model goes to it as a checkpoint). Otherwise a remote plan naming several servers
/// spreads over them; with one server the session already trains there.
pub fn spread_servers(requested: &[String], training: &Training) -> Vec<String> {
    if !requested.is_empty() {
        return requested.to_vec();
    }
    let planned = servers(training);
    if training.backend == BackendChoice::Remote && planned.len() > 1 {
        planned
    } else {
        Vec::new()
    }
}

/// A comma-separated list of servers (`ws://a:3000, ws://b:3000`), in order, blanks left
/// out: the one reading of `remote` in a plan, `--remote` and the window's fields.
pub fn parse_servers(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Picks the device a plan's training settings ask for: a local one ([`select`]), or the
/// first server's device for `remote`.
pub fn select_for(training: &Training) -> Result<(Device, BackendInfo), BackendError> {
    match training.backend {
        BackendChoice::Remote => {
            let url = servers(training)
                .into_iter()
                .next()
                .ok_or(BackendError::NoServer)?;
            connect(&url, training.token.as_deref())
        }
        local => select(local),
    }
}

/// Connects device 0 of the server at `url` (`ws://HOST:PORT`) through burn's remote
/// backend, with `token` for its authorizer. Autodiff stays here; the server runs the
/// operations.
pub fn connect(url: &str, token: Option<&str>) -> Result<(Device, BackendInfo), BackendError> {
    use burn::tensor::remote::{ConnectError, RemoteHost};
    let host = RemoteHost::websocket(url);
    let host = match token {
        Some(t) => host.with_credential(t),
        None => host,
    };
    let url_owned = || url.to_string();
    let device = Device::remote_options(&host).init().map_err(|e| match e {
        ConnectError::Unauthorized => BackendError::Unauthorized { url: url_owned() },
        ConnectError::Unreachable { reason } => BackendError::Unreachable {
            url: url_owned(),
            reason,
        },
        other => BackendError::Remote {
            url: url_owned(),
            reason: other.to_string(),
        },
    })?;
    let served = crate::kernels::describe(&device).map_err(|reason| BackendError::Remote {
        url: url_owned(),
        reason: format!(
            "it does not say what it serves ({reason}); is it `sparsity-explorer serve` of this version?"
        ),
    })?;
    Ok((
        device,
        BackendInfo {
            backend: REMOTE.into(),
            device: format!("{} on {url}", served.device),
            note: (!served.kernels).then(|| {
                format!(
                    "{} server: burn's own operations, not the CPU kernels",
                    served.backend
                )
            }),
        },
    ))
}

/// Picks the device for `choice`. `Auto` never trains on a software adapter: llvmpipe is
/// two orders of magnitude slower than flex on the same cores. `Remote` needs a server:
/// [`select_for`].
pub fn select(choice: BackendChoice) -> Result<(Device, BackendInfo), BackendError> {
    match choice {
        BackendChoice::Remote => Err(BackendError::NoServer),
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
    fn an_analysis_spreads_over_the_servers_asked_for_or_the_remote_plans_several() {
        let list = |s: &str| parse_servers(s);
        let training = |backend, remote: &str| Training {
            backend,
            remote: Some(remote.to_string()),
            ..Training::default()
        };
        let (remote, flex) = (BackendChoice::Remote, BackendChoice::Flex);
        let (one, two) = ("ws://a:1", "ws://a:1,ws://b:2");
        // asked for: as given, whatever the plan trains on
        for plan in [
            training(remote, one),
            training(remote, two),
            training(flex, ""),
        ] {
            assert_eq!(spread_servers(&list("ws://c:3"), &plan), list("ws://c:3"));
            assert_eq!(spread_servers(&list(two), &plan), list(two));
        }
        // not asked for: a remote plan's servers when it has several
        assert_eq!(spread_servers(&[], &training(remote, two)), list(two));
        assert!(spread_servers(&[], &training(remote, one)).is_empty());
        // a local plan's leftover server list means nothing
        assert!(spread_servers(&[], &training(flex, two)).is_empty());
    }

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
