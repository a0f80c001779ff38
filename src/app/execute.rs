//! How the window acts on what it is asked: every [`AppCommand`] ends here, in
//! [`ExplorerApp::execute`], as a state change, a command to the worker or file I/O on a
//! helper thread; finished file I/O comes back through `io_done`. Every change to the plan,
//! from a panel, a menu, a lesson or a file, goes through [`ExplorerApp::edit_plan`].

use std::path::PathBuf;
use std::time::Instant;

use super::command::AppCommand;
use super::files::{self, FilePurpose, IoDone};
use super::plan_edit::PlanEdit;
use super::tables;
use super::{ExplorerApp, SNAPSHOT_INTERVAL, spawn_worker};
use crate::train::{Command, SensitivityRequest, SweepRequest};

impl ExplorerApp {
    /// Acts on one command: state changes, worker commands, file I/O.
    pub fn execute(&mut self, command: AppCommand) {
        let active = self.state.status.active;
        match command {
            AppCommand::Start => {
                if let Some(plan) = self.state.begin_run() {
                    self.send(Command::Start(Box::new(plan)));
                }
            }
            AppCommand::Reset => {
                if active {
                    self.send(Command::Stop);
                }
                self.state.reset();
            }
            AppCommand::TogglePause if active => self.send(if self.state.status.paused {
                Command::Resume
            } else {
                Command::Pause
            }),
            AppCommand::TogglePause => {}
            AppCommand::EditPlan(edit) => self.edit_plan(edit),
            AppCommand::Step => self.send(Command::Step),
            AppCommand::Stop => self.send(Command::Stop),
            AppCommand::ChooseFile(purpose) => self.choose_file(purpose),
            AppCommand::CancelPathPrompt => self.state.banner.path_prompt = None,
            AppCommand::OpenLesson(place) => self.open_lesson(place),
            AppCommand::ContinueLocally => self.continue_locally(),
            AppCommand::CloseLesson => self.state.lesson = None,
            AppCommand::SetLanguage(language) => self.set_language(language),
            AppCommand::CopyPlan => self.copy_plan(),
            AppCommand::AskPlanString => self.state.banner.plan_string_prompt = Some(String::new()),
            AppCommand::OpenPlanString(line) => self.open_plan_string(&line),
            AppCommand::FileChosen(purpose, path) => self.file_chosen(purpose, path),
            AppCommand::RunSensitivity(request) => self.run_sensitivity(request),
            AppCommand::RunSweep(request) => self.run_sweep(request),
            AppCommand::CancelAnalysis => self.send(Command::Cancel),
            AppCommand::BenchInfer => self.send(Command::BenchInfer { seconds: 0.5 }),
            AppCommand::RefreshSnapshots { force } => self.refresh_snapshots(force),
            AppCommand::DismissBanner => self.state.banner.error = None,
            AppCommand::ReplaceWorker => {
                let old = std::mem::replace(&mut self.worker, spawn_worker(&self.ctx));
                old.abandon();
                self.state
                    .worker_lost("was not answering and has been left");
            }
        }
    }

    /// Applies one edit to the plan (checked once, in the state) and hands the plan to the
    /// running session when it can apply live: its pruning at the next step.
    pub(super) fn edit_plan(&mut self, edit: PlanEdit) {
        if let Some(plan) = self.state.edit_plan(edit) {
            self.send(Command::UpdatePlan(Box::new(plan)));
        }
        // the panels drew this frame from the plan before the edit
        self.ctx.request_repaint();
    }

    /// Asks for a file: a dialog on a helper thread, or the path field where there is none.
    fn choose_file(&mut self, purpose: FilePurpose) {
        match &self.picker {
            Some(picker) => files::pick(picker, purpose, &self.io_tx),
            None => {
                self.state.banner.path_prompt =
                    Some((purpose, files::suggested_path(purpose).to_string()))
            }
        }
    }

    /// Goes on with a run whose remote server was lost, on this machine.
    fn continue_locally(&mut self) {
        // the run goes on with the local backend: the plan says so too
        self.state.continue_locally();
        self.send(Command::ContinueLocally);
    }

    /// Puts the plan on the clipboard as one line.
    fn copy_plan(&mut self) {
        let line = crate::plan_code::encode(self.state.plan.edited());
        self.ctx.copy_text(line.clone());
        self.state.notice(format!(
            "plan copied as one line of {} characters",
            line.len()
        ));
        self.state.copied_plan = Some(line);
    }

    /// Opens the plan a pasted line holds, or says in the banner why it cannot.
    fn open_plan_string(&mut self, line: &str) {
        match crate::plan_code::decode(line) {
            Ok(plan) => {
                self.edit_plan(PlanEdit::Replace(Box::new(plan)));
                self.state.banner.plan_string_prompt = None;
                self.state
                    .notice(crate::i18n::t("plan opened from its line").into());
            }
            Err(e) => self.state.banner.error = Some(e.to_string()),
        }
    }

    fn run_sensitivity(&mut self, request: SensitivityRequest) {
        let infos: Vec<_> = self
            .state
            .layers
            .iter()
            .map(|l| (l.info.clone(), l.sparsity))
            .collect();
        self.state.analysis.begin_sensitivity(&infos, &request);
        self.send(Command::Sensitivity(request));
    }

    fn run_sweep(&mut self, request: SweepRequest) {
        let name = format!("sweep {}", self.state.analysis.sweeps.len() + 1);
        self.state.analysis.begin_sweep(name);
        self.send(Command::Sweep(request));
    }

    /// Asks for fresh snapshots now (`force`), or when the last request is old enough.
    fn refresh_snapshots(&mut self, force: bool) {
        let due = self
            .last_snapshot_request
            .is_none_or(|t| t.elapsed() >= SNAPSHOT_INTERVAL);
        if force || due {
            self.send(Command::Snapshot { layer: None });
            self.last_snapshot_request = Some(Instant::now());
        }
    }

    /// Does what a file was chosen for.
    fn file_chosen(&mut self, purpose: FilePurpose, path: PathBuf) {
        let (tx, state) = (&self.io_tx, &mut self.state);
        match purpose {
            FilePurpose::OpenPlan => files::load_plan(path, tx),
            FilePurpose::SavePlan => files::save_plan(state.plan.edited().clone(), path, tx),
            FilePurpose::SaveMasks => self.send(Command::SaveMasks { path }),
            FilePurpose::SaveCheckpoint => {
                let history_json = serde_json::to_string(&state.history).unwrap_or_default();
                self.send(Command::SaveCheckpoint { path, history_json });
            }
            FilePurpose::LoadCheckpoint => {
                state.begin_load();
                self.send(Command::LoadCheckpoint { path });
            }
            FilePurpose::OpenDatasetFolder => {
                self.edit_plan(PlanEdit::Dataset(crate::data::DatasetSource::Folder(path)))
            }
            FilePurpose::OpenWeights => {
                state.notice(format!(
                    "the next run starts from the weights in {}",
                    path.display()
                ));
                self.edit_plan(PlanEdit::Weights(path));
            }
            FilePurpose::OpenOnnx => files::open_onnx(state.plan.edited().clone(), path, tx),
            FilePurpose::ExportModel => self.send(Command::Export { dir: path }),
            FilePurpose::OpenSparseModel => {
                state.begin_load();
                self.send(Command::LoadSparse { path });
            }
            FilePurpose::ExportSweepJson => {
                files::write_text(tables::sweeps_json(&state.analysis.sweeps), path, tx)
            }
            FilePurpose::ExportSensitivity => {
                if let Some(r) = &state.analysis.sensitivity {
                    files::write_text(r.to_csv(), path, tx);
                }
            }
            FilePurpose::ExportSweep => {
                files::write_text(tables::sweeps_csv(&state.analysis.sweeps), path, tx)
            }
        }
    }

    /// Takes the result of file I/O that finished on a helper thread.
    pub(super) fn io_done(&mut self, done: IoDone) {
        match done {
            IoDone::Picked(purpose, path) => self.execute(AppCommand::FileChosen(purpose, path)),
            IoDone::Written(path) => self.state.notice(format!("written to {}", path.display())),
            IoDone::PlanLoaded(path, plan) => {
                self.edit_plan(PlanEdit::Replace(plan));
                self.state
                    .notice(format!("plan loaded from {}", path.display()));
            }
            IoDone::PlanSaved(path) => self
                .state
                .notice(format!("plan saved to {}", path.display())),
            IoDone::Failed(message) => self.state.banner.error = Some(message),
        }
    }
}
