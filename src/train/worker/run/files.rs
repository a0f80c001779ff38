//! What the worker reads and writes for the window and the command line: checkpoints,
//! masks, exports and timed inference of the current session, and sessions loaded back
//! from a checkpoint or a sparse model.

use std::path::PathBuf;

use super::WorkerLoop;
use crate::masks_file::save_masks;
use crate::plan::ExperimentPlan;
use crate::train::backend::select_for;
use crate::train::checkpoint::CheckpointData;
use crate::train::error::WorkerError;
use crate::train::event::Event;
use crate::train::session::Session;

impl WorkerLoop {
    pub(super) fn save_checkpoint(
        &mut self,
        path: PathBuf,
        history_json: String,
    ) -> Result<(), WorkerError> {
        let Some(s) = self.current("save") else {
            return Ok(());
        };
        s.to_checkpoint(history_json)?.write(&path)?;
        self.emit(Event::CheckpointSaved { path });
        Ok(())
    }

    pub(super) fn save_masks(&mut self, path: PathBuf) -> Result<(), WorkerError> {
        let Some(s) = self.current("save masks from") else {
            return Ok(());
        };
        save_masks(&path, &s.named_masks(), &s.plan().to_toml())?;
        self.emit(Event::MasksSaved { path });
        Ok(())
    }

    pub(super) fn export(&mut self, dir: PathBuf) -> Result<(), WorkerError> {
        let Some(s) = self.current("export") else {
            return Ok(());
        };
        let report = crate::train::exporting::export_session(s, &dir)?;
        self.emit(Event::Exported(report));
        Ok(())
    }

    pub(super) fn bench_infer(&mut self, seconds: f64) -> Result<(), WorkerError> {
        let Some(s) = self.current("time") else {
            return Ok(());
        };
        let params = s.network().read_params();
        let test = &s.dataset().test;
        let stack = s.plan().stack()?;
        match crate::infer::bench::measure(&stack, &params, &s.masks(), test, seconds) {
            Ok(r) => self.emit(Event::InferBenched(r)),
            // a model the CPU kernels do not cover: say so, the run is unaffected
            Err(e) => self.notice(e.to_string()),
        }
        Ok(())
    }

    pub(super) fn load_checkpoint(&mut self, path: PathBuf) -> Result<(), WorkerError> {
        self.clear();
        let data = CheckpointData::read(&path)?;
        let plan = ExperimentPlan::from_toml(&data.plan_toml, &path.display().to_string())?;
        let dataset = self.dataset(&plan)?;
        let (device, backend) = select_for(&plan.training)?;
        let session = Session::from_checkpoint(&data, dataset, device, backend)
            .map_err(|e| WorkerError::from(e).in_file(&path))?;
        let step = session.step();
        if !session.adam_restored() {
            self.notice(
                "Adam's moments could not be restored (no default device); training resumes with fresh ones",
            );
        }
        self.announce(session, false);
        self.emit(Event::CheckpointLoaded {
            path,
            step,
            history_json: data.history_json,
        });
        self.emit(Event::Paused { step });
        Ok(())
    }

    pub(super) fn load_sparse(&mut self, path: PathBuf) -> Result<(), WorkerError> {
        self.clear();
        let decoded = crate::export::read_sparse(&path)?;
        let plan = ExperimentPlan::from_toml(&decoded.header.plan, &path.display().to_string())?;
        let dataset = self.dataset(&plan)?;
        let (device, backend) = select_for(&plan.training)?;
        let session = Session::from_sparse(&decoded, dataset, device, backend)
            .map_err(|e| WorkerError::from(e).in_file(&path))?;
        self.announce(session, false);
        self.notice(format!("sparse model {} loaded", path.display()));
        self.emit(Event::Paused { step: 0 });
        Ok(())
    }
}
