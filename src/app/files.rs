//! File choices: every dialog goes through one function, [`FilePicker`], which tests replace.
//! Dialogs and file I/O run on helper threads; results come back through a channel the
//! window polls, so the UI thread never waits on a file.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Sender;

use crate::plan::ExperimentPlan;

/// What a file is being chosen for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilePurpose {
    OpenPlan,
    SavePlan,
    SaveMasks,
    SaveCheckpoint,
    LoadCheckpoint,
    OpenDatasetFolder,
    ExportSensitivity,
    ExportSweep,
    ExportModel,
    OpenSparseModel,
    ExportSweepJson,
    /// Starting weights: a PyTorch state_dict saved as safetensors.
    OpenWeights,
    /// An ONNX model: the network and its starting weights.
    OpenOnnx,
}

impl FilePurpose {
    /// What the path is for, as the path field says it.
    pub fn describe(self) -> &'static str {
        match self {
            FilePurpose::OpenPlan => "plan to open",
            FilePurpose::SavePlan => "save the plan as",
            FilePurpose::SaveMasks => "save the masks as",
            FilePurpose::SaveCheckpoint => "save the checkpoint as",
            FilePurpose::LoadCheckpoint => "checkpoint to load",
            FilePurpose::OpenDatasetFolder => "dataset folder",
            FilePurpose::ExportSensitivity => "sensitivity CSV",
            FilePurpose::ExportSweep => "sweep CSV",
            FilePurpose::ExportModel => "export folder",
            FilePurpose::OpenSparseModel => "sparse model to open",
            FilePurpose::ExportSweepJson => "sweeps JSON",
            FilePurpose::OpenWeights => "PyTorch weights to open",
            FilePurpose::OpenOnnx => "ONNX model to open",
        }
    }
}

/// Chooses a path for an action, or `None` when cancelled. Called on a helper thread.
pub type FilePicker = Arc<dyn Fn(FilePurpose) -> Option<PathBuf> + Send + Sync>;

/// What the window says when there is no dialog backend, and what to install.
pub const NO_DIALOGS: &str = "No file dialogs on this desktop: neither the XDG desktop portal with a file chooser (xdg-desktop-portal and, e.g., xdg-desktop-portal-gtk) nor zenity was found. Install one (Debian: apt install zenity) and restart for dialogs; until then each file item asks for a path here.";

/// What the dialog backends need, as found on this machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DialogSupport {
    /// `zenity` is on the PATH (rfd's fallback).
    pub zenity: bool,
    /// A D-Bus session bus is reachable.
    pub session_bus: bool,
    /// The portal service is installed with a backend that implements the file chooser.
    pub portal_file_chooser: bool,
}

impl DialogSupport {
    /// Looks at this machine: the PATH, the session bus's address, and the portal's
    /// installed service and backend files.
    pub fn detect() -> Self {
        let on_path = |program: &str| {
            std::env::var_os("PATH").is_some_and(|paths| {
                std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
            })
        };
        let session_bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
            || std::env::var_os("XDG_RUNTIME_DIR")
                .is_some_and(|d| std::path::Path::new(&d).join("bus").exists());
        let service = std::path::Path::new(
            "/usr/share/dbus-1/services/org.freedesktop.portal.Desktop.service",
        )
        .is_file();
        let chooser = std::fs::read_dir("/usr/share/xdg-desktop-portal/portals")
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                std::fs::read_to_string(entry.path())
                    .is_ok_and(|text| text.contains("org.freedesktop.impl.portal.FileChooser"))
            });
        Self {
            zenity: on_path("zenity"),
            session_bus,
            portal_file_chooser: service && chooser,
        }
    }

    /// The backend rfd will use, or `None` when a dialog would silently not open.
    pub fn backend(&self) -> Option<&'static str> {
        if self.session_bus && self.portal_file_chooser {
            Some("XDG desktop portal")
        } else if self.zenity {
            Some("zenity")
        } else {
            None
        }
    }
}

/// A file name to start the path field with when saving (opening starts empty).
pub fn suggested_path(purpose: FilePurpose) -> &'static str {
    match purpose {
        FilePurpose::SavePlan => "plan.toml",
        FilePurpose::SaveMasks => "masks.safetensors",
        FilePurpose::SaveCheckpoint => "run.ckpt",
        FilePurpose::ExportSensitivity => "sensitivity.csv",
        FilePurpose::ExportSweep => "sweep.csv",
        FilePurpose::ExportModel => "export",
        FilePurpose::ExportSweepJson => "sweeps.json",
        FilePurpose::OpenPlan
        | FilePurpose::LoadCheckpoint
        | FilePurpose::OpenDatasetFolder
        | FilePurpose::OpenSparseModel
        | FilePurpose::OpenWeights
        | FilePurpose::OpenOnnx => "",
    }
}

/// The native dialogs (rfd: the XDG portal, or zenity).
pub fn native_picker() -> FilePicker {
    Arc::new(|action| {
        let d = rfd::FileDialog::new();
        match action {
            FilePurpose::OpenPlan => d.add_filter("plan", &["toml"]).pick_file(),
            FilePurpose::SavePlan => d
                .add_filter("plan", &["toml"])
                .set_file_name("plan.toml")
                .save_file(),
            FilePurpose::SaveMasks => d
                .add_filter("safetensors", &["safetensors"])
                .set_file_name("masks.safetensors")
                .save_file(),
            FilePurpose::SaveCheckpoint => d
                .add_filter("checkpoint", &["ckpt"])
                .set_file_name("run.ckpt")
                .save_file(),
            FilePurpose::LoadCheckpoint => d.add_filter("checkpoint", &["ckpt"]).pick_file(),
            FilePurpose::OpenDatasetFolder => d.pick_folder(),
            FilePurpose::ExportSensitivity => d
                .add_filter("CSV", &["csv"])
                .set_file_name("sensitivity.csv")
                .save_file(),
            FilePurpose::ExportModel => d.pick_folder(),
            FilePurpose::OpenSparseModel => d.add_filter("sparse model", &["spx"]).pick_file(),
            FilePurpose::ExportSweepJson => d
                .add_filter("JSON", &["json"])
                .set_file_name("sweeps.json")
                .save_file(),
            FilePurpose::OpenWeights => d.add_filter("safetensors", &["safetensors"]).pick_file(),
            FilePurpose::OpenOnnx => d.add_filter("ONNX", &["onnx"]).pick_file(),
            FilePurpose::ExportSweep => d
                .add_filter("CSV", &["csv"])
                .set_file_name("sweep.csv")
                .save_file(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialogs_need_a_portal_on_a_bus_or_zenity() {
        let s = |zenity, session_bus, portal_file_chooser| DialogSupport {
            zenity,
            session_bus,
            portal_file_chooser,
        };
        assert_eq!(s(false, false, false).backend(), None);
        assert_eq!(
            s(false, true, false).backend(),
            None,
            "a bus without a portal"
        );
        assert_eq!(
            s(false, false, true).backend(),
            None,
            "a portal without a bus"
        );
        assert_eq!(s(false, true, true).backend(), Some("XDG desktop portal"));
        assert_eq!(s(true, false, false).backend(), Some("zenity"));
    }
}

/// What a helper thread reports.
#[derive(Debug)]
pub enum IoDone {
    Picked(FilePurpose, PathBuf),
    PlanLoaded(PathBuf, Box<ExperimentPlan>),
    PlanSaved(PathBuf),
    Written(PathBuf),
    Failed(String),
}

/// Runs `picker` for `action` on a helper thread.
pub fn pick(picker: &FilePicker, action: FilePurpose, done: &Sender<IoDone>) {
    let (picker, done) = (picker.clone(), done.clone());
    std::thread::spawn(move || {
        if let Some(path) = picker(action) {
            let _ = done.send(IoDone::Picked(action, path));
        }
    });
}

/// Reads a plan on a helper thread.
pub fn load_plan(path: PathBuf, done: &Sender<IoDone>) {
    let done = done.clone();
    std::thread::spawn(move || {
        let _ = done.send(match ExperimentPlan::load(&path) {
            Ok(plan) => IoDone::PlanLoaded(path, Box::new(plan)),
            Err(e) => IoDone::Failed(e.to_string()),
        });
    });
}

/// Reads an ONNX model into `plan` (its network and starting weights) on a helper thread.
pub fn open_onnx(plan: ExperimentPlan, path: PathBuf, done: &Sender<IoDone>) {
    let done = done.clone();
    std::thread::spawn(move || {
        let _ = done.send(match plan.with_onnx(&path) {
            Ok(plan) => IoDone::PlanLoaded(path, Box::new(plan)),
            Err(e) => IoDone::Failed(e.to_string()),
        });
    });
}

/// Writes a plan atomically on a helper thread.
pub fn save_plan(plan: ExperimentPlan, path: PathBuf, done: &Sender<IoDone>) {
    let done = done.clone();
    std::thread::spawn(move || {
        let _ = done.send(match plan.save(&path) {
            Ok(()) => IoDone::PlanSaved(path),
            Err(e) => IoDone::Failed(format!("{}: cannot save the plan: {e}", path.display())),
        });
    });
}

/// Writes text atomically on a helper thread.
pub fn write_text(text: String, path: PathBuf, done: &Sender<IoDone>) {
    let done = done.clone();
    std::thread::spawn(move || {
        let _ = done.send(match crate::atomic_write(&path, text.as_bytes()) {
            Ok(()) => IoDone::Written(path),
            Err(e) => IoDone::Failed(format!("{}: cannot write: {e}", path.display())),
        });
    });
}
