//! The analyses the worker runs between training steps: a sensitivity analysis or a sweep,
//! one measurement per turn of the loop, so commands (a cancel) are heard in between.

use super::{Job, WorkerLoop};
use crate::train::error::WorkerError;
use crate::train::event::Event;
use crate::train::session::Session;

impl WorkerLoop {
    /// Pauses training and starts an analysis job on the current session.
    pub(super) fn start_job(
        &mut self,
        make: impl FnOnce(&Session) -> Result<Job, WorkerError>,
    ) -> Result<(), WorkerError> {
        let Some(session) = self.current("analyse") else {
            return Ok(());
        };
        let job = make(session)?;
        let step = session.step();
        if self.running {
            self.running = false;
            self.emit(Event::Paused { step });
        }
        self.job = Some(job);
        Ok(())
    }

    /// One unit of the current job: an evaluation or a training step.
    pub(super) fn job_step(&mut self) -> Result<(), WorkerError> {
        let (Some(job), Some(session)) = (self.job.as_mut(), self.session.as_ref()) else {
            self.job = None;
            return Ok(());
        };
        let notices;
        let (event, finished) = match job {
            Job::Sensitivity(j) => {
                notices = j.take_notices();
                let event =
                    j.advance(session)?
                        .map(|(layer, li, accuracy)| Event::SensitivityProgress {
                            dense_accuracy: j.result.dense_accuracy,
                            layer: j.result.layers[layer].name.clone(),
                            level: j.result.levels[li],
                            accuracy,
                            done: j.done(),
                            total: j.total(),
                        });
                (event, j.is_finished())
            }
            Job::Sweep(j) => {
                notices = j.take_notices();
                let event = j.advance()?.map(|point| Event::SweepProgress {
                    point,
                    done: j.done(),
                    total: j.total(),
                    remaining_s: j.remaining_s(),
                });
                (event, j.is_finished())
            }
        };
        for message in notices {
            self.emit(Event::Notice { message });
        }
        if let Some(e) = event {
            self.emit(e);
        }
        if finished {
            self.finish_job(false);
        }
        Ok(())
    }

    /// Reports the job's result (complete or not) and drops it.
    pub(super) fn finish_job(&mut self, cancelled: bool) {
        match self.job.take() {
            Some(Job::Sensitivity(j)) => self.emit(Event::SensitivityFinished {
                result: j.result,
                cancelled,
            }),
            Some(Job::Sweep(j)) => self.emit(Event::SweepFinished {
                result: j.result,
                cancelled,
            }),
            None => {}
        }
    }
}
