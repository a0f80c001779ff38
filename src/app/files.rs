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
}

/// Chooses a path for an action, or `None` when cancelled. Called on a helper thread.
pub type FilePicker = Arc<dyn Fn(FilePurpose) -> Option<PathBuf> + Send + Sync>;

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
            FilePurpose::ExportSweep => d
                .add_filter("CSV", &["csv"])
                .set_file_name("sweep.csv")
                .save_file(),
        }
    })
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
