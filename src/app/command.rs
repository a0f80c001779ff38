//! One command type for everything the window can be asked to do: panels, keys, menus and
//! chosen files all produce [`AppCommand`]s, and only [`super::ExplorerApp::execute`] acts
//! on them (sending to the worker, starting file I/O). Drawing code never sends anything.

use std::path::PathBuf;

use super::files::FilePurpose;
use super::plan_edit::PlanEdit;
use crate::train::{SensitivityRequest, SweepRequest};

#[derive(Clone, Debug, PartialEq)]
pub enum AppCommand {
    /// Train the edited plan from scratch (the current run becomes an overlay).
    Start,
    /// Clear the run; its curves stay as an overlay.
    Reset,
    TogglePause,
    /// Train one batch while paused.
    Step,
    /// End the run now and evaluate it.
    Stop,
    /// Change the edited plan (checked once; a running session takes it when it can apply
    /// live).
    EditPlan(PlanEdit),
    /// Ask for a file (the picker runs on a helper thread).
    ChooseFile(FilePurpose),
    /// Opens the lesson at this place in the course, with its preset.
    OpenLesson(usize),
    CloseLesson,
    /// Switches the window and the lessons to this language.
    SetLanguage(crate::i18n::Language),
    /// Continues a run whose remote server was lost, on this machine.
    ContinueLocally,
    /// Puts the plan on the clipboard as one line.
    CopyPlan,
    /// Opens the field where a plan line is pasted.
    AskPlanString,
    /// Opens the plan a pasted line holds (or says why it cannot).
    OpenPlanString(String),
    /// Closes the path field shown where there are no file dialogs.
    CancelPathPrompt,
    /// A file was chosen for `purpose`.
    FileChosen(FilePurpose, PathBuf),
    RunSensitivity(SensitivityRequest),
    RunSweep(SweepRequest),
    CancelAnalysis,
    /// Time dense against sparse inference of the current model.
    BenchInfer,
    /// Fresh layer snapshots now (`force`) or when the last request is old enough.
    RefreshSnapshots {
        force: bool,
    },
    DismissBanner,
    /// Leave a worker that does not answer and start a new one (plan and plots stay).
    ReplaceWorker,
}
