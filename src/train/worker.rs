//! The worker: a [`Session`] on its own thread, driven by [`Command`]s, reporting
//! [`Event`]s. The window and the CLI both drive training only through this.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::path::PathBuf;

use super::analysis::{SensitivityJob, SweepJob};
use super::backend::select;
use super::checkpoint::CheckpointData;
use super::event::{Command, Event};
use super::session::{Session, SessionError, StepOutcome};
use crate::data::{Dataset, DatasetSource};
use crate::masks_file::{NamedMask, save_masks};
use crate::plan::ExperimentPlan;

/// Smallest interval between two progress events.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Called after every event is sent (the window passes `request_repaint`).
pub type Waker = Box<dyn Fn() + Send>;

/// Handle to the worker thread. Dropping it shuts the thread down.
pub struct Worker {
    commands: Sender<Command>,
    events: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(waker: Option<Waker>) -> Self {
        let (cmd_tx, cmd_rx) = channel();
        let (ev_tx, ev_rx) = channel();
        let thread = std::thread::Builder::new()
            .name("training-worker".into())
            .spawn(move || {
                WorkerLoop {
                    commands: cmd_rx,
                    events: ev_tx,
                    waker,
                    session: None,
                    running: false,
                    datasets: HashMap::new(),
                    last_progress: None,
                    crash_requested: false,
                    job: None,
                }
                .run()
            })
            .expect("the OS can start a thread");
        Self {
            commands: cmd_tx,
            events: ev_rx,
            thread: Some(thread),
        }
    }

    /// Sends a command; `false` if the worker thread is gone.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    /// The next event, if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// The next event, waiting up to `timeout`. `Err(true)` when the worker is gone.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, bool> {
        self.events
            .recv_timeout(timeout)
            .map_err(|e| e == RecvTimeoutError::Disconnected)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct WorkerLoop {
    commands: Receiver<Command>,
    events: Sender<Event>,
    waker: Option<Waker>,
    session: Option<Session>,
    running: bool,
    /// Loaded datasets, kept so a restart does not read the files again.
    datasets: HashMap<String, Arc<Dataset>>,
    last_progress: Option<Instant>,
    /// Set by [`Command::Crash`]: the next step panics.
    crash_requested: bool,
    /// A sensitivity analysis or sweep under way (training waits meanwhile).
    job: Option<Job>,
}

enum Job {
    Sensitivity(Box<SensitivityJob>),
    Sweep(Box<SweepJob>),
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

impl WorkerLoop {
    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
        if let Some(w) = &self.waker {
            w();
        }
    }

    fn run(mut self) {
        loop {
            let command = if self.running || self.job.is_some() {
                match self.commands.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return,
                }
            } else {
                match self.commands.recv() {
                    Ok(c) => Some(c),
                    Err(_) => return,
                }
            };
            if let Some(command) = command {
                if matches!(command, Command::Shutdown) {
                    return;
                }
                self.handle(command);
                continue; // take every waiting command before the next step
            }
            if self.job.is_some() {
                self.job_step();
            } else if self.running {
                self.guarded_step();
            }
        }
    }

    fn step_index(&self) -> Option<u64> {
        self.session.as_ref().map(|s| s.step())
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Start(plan) => self.start(*plan),
            Command::Pause => {
                if self.running {
                    self.running = false;
                    if let Some(step) = self.step_index() {
                        self.emit(Event::Paused { step });
                    }
                }
            }
            Command::Resume => {
                if let Some(s) = &self.session
                    && !s.is_done()
                    && !self.running
                    && self.job.is_none()
                {
                    self.running = true;
                    let step = s.step();
                    self.emit(Event::Resumed { step });
                }
            }
            Command::Step => {
                if self.session.as_ref().is_some_and(|s| !s.is_done()) {
                    self.running = false;
                    self.guarded_step();
                }
            }
            Command::Stop => {
                if self
                    .session
                    .as_ref()
                    .is_some_and(|s| !s.is_done() || self.running)
                {
                    self.running = false;
                    self.finish(true);
                }
            }
            Command::UpdatePlan(plan) => {
                let Some(s) = self.session.as_mut() else {
                    return;
                };
                match s.update_plan(*plan) {
                    Ok(()) => {
                        let event = Event::PlanUpdated {
                            schedule: s.planned_schedule(),
                            total_steps: s.total_steps(),
                        };
                        self.emit(event);
                    }
                    Err(e) => self.emit(Event::Notice {
                        message: format!("plan not applied: {e}"),
                    }),
                }
            }
            Command::Snapshot { layer } => self.snapshot(layer),
            Command::SaveCheckpoint { path, history_json } => {
                let Some(s) = &self.session else {
                    return self.emit(Event::Notice {
                        message: "nothing to save: no run yet".into(),
                    });
                };
                let saved = s
                    .to_checkpoint(history_json)
                    .and_then(|c| c.write(&path).map_err(SessionError::from));
                match saved {
                    Ok(()) => self.emit(Event::CheckpointSaved { path }),
                    Err(e) => self.emit(Event::Error {
                        message: format!("checkpoint not saved: {e}"),
                        step: None,
                    }),
                }
            }
            Command::LoadCheckpoint { path } => self.load_checkpoint(path),
            Command::Export { dir } => {
                let Some(s) = &self.session else {
                    return self.emit(Event::Notice {
                        message: "nothing to export: train or load a model first".into(),
                    });
                };
                match catch_unwind(AssertUnwindSafe(|| {
                    super::exporting::export_session(s, &dir)
                })) {
                    Ok(Ok(report)) => self.emit(Event::Exported(report)),
                    Ok(Err(e)) => self.emit(Event::Error {
                        message: format!("export failed: {e}"),
                        step: None,
                    }),
                    Err(p) => self.emit(Event::Error {
                        message: format!(
                            "the worker crashed while exporting: {}",
                            panic_message(p.as_ref())
                        ),
                        step: None,
                    }),
                }
            }
            Command::BenchInfer { seconds } => {
                let Some(s) = &self.session else {
                    return self.emit(Event::Notice {
                        message: "nothing to benchmark: train or load a model first".into(),
                    });
                };
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    let params = s.network().read_params();
                    let test = &s.dataset().test;
                    crate::infer::bench::measure(s.plan().model, &params, s.masks(), test, seconds)
                }));
                match outcome {
                    Ok(Ok(r)) => self.emit(Event::InferBenched(r)),
                    Ok(Err(e)) => self.emit(Event::Notice {
                        message: e.to_string(),
                    }),
                    Err(p) => self.emit(Event::Error {
                        message: format!(
                            "the worker crashed while timing inference: {}",
                            panic_message(p.as_ref())
                        ),
                        step: None,
                    }),
                }
            }
            Command::LoadSparse { path } => {
                let built = self.build(|this| {
                    let decoded = crate::export::read_sparse(&path).map_err(|e| e.to_string())?;
                    let plan = ExperimentPlan::from_toml(
                        &decoded.header.plan,
                        &path.display().to_string(),
                    )
                    .map_err(|e| e.to_string())?;
                    let dataset = this.dataset(&plan.dataset)?;
                    let (device, backend) =
                        select(plan.training.backend).map_err(|e| e.to_string())?;
                    Session::from_sparse(&decoded, dataset, device, backend)
                        .map_err(|e| format!("{}: {e}", path.display()))
                });
                if let Some(session) = built {
                    self.announce(session, false);
                    self.emit(Event::Notice {
                        message: format!("sparse model {} loaded", path.display()),
                    });
                    self.emit(Event::Paused { step: 0 });
                }
            }
            Command::SaveMasks { path } => {
                let Some(s) = &self.session else {
                    return self.emit(Event::Notice {
                        message: "no masks yet: start a run first".into(),
                    });
                };
                let masks: Vec<NamedMask> = s
                    .snapshots()
                    .into_iter()
                    .map(|snap| NamedMask {
                        dims: snap.shape.dims(),
                        name: snap.name,
                        mask: snap.mask,
                    })
                    .collect();
                match save_masks(&path, &masks, &s.plan().to_toml()) {
                    Ok(()) => self.emit(Event::MasksSaved { path }),
                    Err(e) => self.emit(Event::Error {
                        message: format!("masks not saved: {e}"),
                        step: None,
                    }),
                }
            }
            Command::Sensitivity(request) => {
                self.start_job(|s| Ok(Job::Sensitivity(Box::new(SensitivityJob::new(s, request)))))
            }
            Command::Sweep(request) => self.start_job(|s| {
                let device = select(s.plan().training.backend)
                    .map_err(|e| e.to_string())?
                    .0;
                SweepJob::new(s, &request, device)
                    .map(|j| Job::Sweep(Box::new(j)))
                    .map_err(|e| e.to_string())
            }),
            Command::Cancel => self.finish_job(true),
            Command::Crash => {
                self.crash_requested = true;
                self.guarded_step();
            }
            Command::Shutdown => {}
        }
    }

    fn snapshot(&mut self, layer: Option<String>) {
        let Some(s) = &self.session else { return };
        let result = catch_unwind(AssertUnwindSafe(|| match &layer {
            Some(name) => s.snapshot(name).map(|snap| vec![snap]),
            None => Ok(s.snapshots()),
        }));
        match result {
            Ok(Ok(snaps)) => snaps
                .into_iter()
                .for_each(|snap| self.emit(Event::Snapshot(snap))),
            Ok(Err(e)) => self.emit(Event::Notice {
                message: e.to_string(),
            }),
            Err(p) => self.fail(format!(
                "the worker crashed while reading weights: {}",
                panic_message(p.as_ref())
            )),
        }
    }

    fn dataset(&mut self, source: &DatasetSource) -> Result<Arc<Dataset>, String> {
        let key = source.to_string();
        if let Some(d) = self.datasets.get(&key) {
            return Ok(d.clone());
        }
        let d = Arc::new(Dataset::load(source).map_err(|e| e.to_string())?);
        self.datasets.insert(key, d.clone());
        Ok(d)
    }

    fn start(&mut self, plan: ExperimentPlan) {
        let built = self.build(|this| {
            let data = this.dataset(&plan.dataset)?;
            let (device, backend) = select(plan.training.backend).map_err(|e| e.to_string())?;
            Session::new(plan, data, device, backend).map_err(|e| e.to_string())
        });
        if let Some(session) = built {
            self.announce(session, true);
        }
    }

    fn load_checkpoint(&mut self, path: PathBuf) {
        let built = self.build(|this| {
            let data = CheckpointData::read(&path).map_err(|e| e.to_string())?;
            let plan = ExperimentPlan::from_toml(&data.plan_toml, &path.display().to_string())
                .map_err(|e| e.to_string())?;
            let dataset = this.dataset(&plan.dataset)?;
            let (device, backend) = select(plan.training.backend).map_err(|e| e.to_string())?;
            let session = Session::from_checkpoint(&data, dataset, device, backend)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((session, data.history_json))
        });
        if let Some((session, history_json)) = built {
            let step = session.step();
            if !session.adam_restored() {
                self.emit(Event::Notice {
                    message: "Adam's moments could not be restored (no default device); training resumes with fresh ones".into(),
                });
            }
            self.announce(session, false);
            self.emit(Event::CheckpointLoaded {
                path,
                step,
                history_json,
            });
            self.emit(Event::Paused { step });
        }
    }

    /// Pauses training and starts an analysis job on the current session.
    fn start_job(&mut self, make: impl FnOnce(&Session) -> Result<Job, String>) {
        let Some(session) = &self.session else {
            return self.emit(Event::Notice {
                message: "nothing to analyse: train or load a model first".into(),
            });
        };
        match catch_unwind(AssertUnwindSafe(|| make(session))) {
            Ok(Ok(job)) => {
                if self.running {
                    self.running = false;
                    let step = session.step();
                    self.emit(Event::Paused { step });
                }
                self.job = Some(job);
            }
            Ok(Err(message)) => self.emit(Event::Error {
                message,
                step: None,
            }),
            Err(p) => self.emit(Event::Error {
                message: format!(
                    "the worker crashed while starting the analysis: {}",
                    panic_message(p.as_ref())
                ),
                step: None,
            }),
        }
    }

    /// One unit of the current job: an evaluation or a training step.
    fn job_step(&mut self) {
        let (Some(job), Some(session)) = (self.job.as_mut(), self.session.as_ref()) else {
            self.job = None;
            return;
        };
        let outcome = catch_unwind(AssertUnwindSafe(
            || -> Result<Option<Event>, SessionError> {
                Ok(match job {
                    Job::Sensitivity(j) => j.advance(session)?.map(|(layer, li, accuracy)| {
                        Event::SensitivityProgress {
                            dense_accuracy: j.result.dense_accuracy,
                            layer: j.result.layers[layer].name.clone(),
                            level: j.result.levels[li],
                            accuracy,
                            done: j.done(),
                            total: j.total(),
                        }
                    }),
                    Job::Sweep(j) => j.advance()?.map(|point| Event::SweepProgress {
                        point,
                        done: j.done(),
                        total: j.total(),
                        remaining_s: j.remaining_s(),
                    }),
                })
            },
        ));
        match outcome {
            Ok(Ok(event)) => {
                if let Some(e) = event {
                    self.emit(e);
                }
                let finished = match &self.job {
                    Some(Job::Sensitivity(j)) => j.is_finished(),
                    Some(Job::Sweep(j)) => j.is_finished(),
                    None => true,
                };
                if finished {
                    self.finish_job(false);
                }
            }
            Ok(Err(e)) => {
                self.finish_job(true);
                self.emit(Event::Error {
                    message: format!("analysis stopped: {e}"),
                    step: None,
                });
            }
            Err(p) => {
                self.finish_job(true);
                self.emit(Event::Error {
                    message: format!(
                        "the worker crashed during the analysis: {}",
                        panic_message(p.as_ref())
                    ),
                    step: None,
                });
            }
        }
    }

    /// Reports the job's result (complete or not) and drops it.
    fn finish_job(&mut self, cancelled: bool) {
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

    /// Drops the current session and builds a new one, turning errors and panics into events.
    fn build<T>(&mut self, make: impl FnOnce(&mut Self) -> Result<T, String>) -> Option<T> {
        self.running = false;
        self.finish_job(true);
        self.session = None;
        match catch_unwind(AssertUnwindSafe(|| make(self))) {
            Ok(Ok(s)) => Some(s),
            Ok(Err(message)) => {
                self.emit(Event::Error {
                    message,
                    step: None,
                });
                None
            }
            Err(p) => {
                self.emit(Event::Error {
                    message: format!(
                        "the worker crashed while starting: {}",
                        panic_message(p.as_ref())
                    ),
                    step: None,
                });
                None
            }
        }
    }

    /// Reports a new session and makes it current.
    fn announce(&mut self, session: Session, run: bool) {
        let data = session.dataset();
        self.emit(Event::Started {
            backend: session.backend().clone(),
            dataset: data.name.clone(),
            train_examples: data.train.len(),
            test_examples: data.test.len(),
            layers: session.layer_infos(),
            steps_per_epoch: session.steps_per_epoch(),
            total_steps: session.total_steps(),
            schedule: session.planned_schedule(),
        });
        for rule in session.rules() {
            if let (None, Some(why)) = (rule.granularity, &rule.dense_reason)
                && why != "skipped by the plan"
            {
                self.emit(Event::Notice {
                    message: format!("{}: {why}", rule.name),
                });
            }
        }
        self.session = Some(session);
        self.last_progress = None;
        self.running = run;
    }

    fn fail(&mut self, message: String) {
        let step = self.step_index();
        self.running = false;
        self.session = None;
        self.emit(Event::Error { message, step });
    }

    /// One training step, with panics and errors turned into events.
    fn guarded_step(&mut self) {
        let crash = std::mem::take(&mut self.crash_requested);
        let Some(session) = self.session.as_mut() else {
            self.running = false;
            if crash {
                self.emit(Event::Notice {
                    message: "no session to crash".into(),
                });
            }
            return;
        };
        let step = session.step();
        match catch_unwind(AssertUnwindSafe(|| {
            if crash {
                panic!("crash requested");
            }
            session.train_step()
        })) {
            Ok(Ok(outcome)) => self.after_step(outcome),
            Ok(Err(e @ SessionError::NonFiniteLoss { .. })) => self.fail(e.to_string()),
            Ok(Err(e)) => self.fail(format!("step {step}: {e}")),
            Err(p) => self.fail(format!(
                "the worker crashed at step {step}: {}",
                panic_message(p.as_ref())
            )),
        }
    }

    fn after_step(&mut self, outcome: StepOutcome) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let mut events = Vec::new();
        if let Some(b) = outcome.baseline {
            events.push(Event::Evaluation {
                step: b.step,
                epoch: b.step as f64 / session.steps_per_epoch() as f64,
                accuracy: b.accuracy,
                loss: b.loss,
                sparsity: 0.0,
                baseline: true,
            });
        }
        if let Some(p) = outcome.pruned {
            events.push(Event::Pruned {
                step: p.step,
                target: p.target,
                sparsity: p.sparsity,
                layers: p.layers,
            });
        }
        let done = session.is_done();
        let step = session.step();
        if session.evaluation_due() && !done {
            let e = session.evaluate();
            events.push(Event::Evaluation {
                step: e.step,
                epoch: session.epoch(),
                accuracy: e.accuracy,
                loss: e.loss,
                sparsity: session.mask_sparsity(),
                baseline: false,
            });
        }
        let now = Instant::now();
        if done
            || self
                .last_progress
                .is_none_or(|t| now.duration_since(t) >= PROGRESS_INTERVAL)
        {
            self.last_progress = Some(now);
            events.push(Event::Progress {
                step,
                total_steps: session.total_steps(),
                epoch: session.epoch(),
                loss: outcome.loss,
                samples_per_s: session.samples_per_s(),
                sparsity: session.mask_sparsity(),
                elapsed_s: session.summary_elapsed(),
            });
        }
        for e in events {
            self.emit(e);
        }
        if done {
            self.running = false;
            self.finish(false);
        }
    }

    fn finish(&mut self, stopped: bool) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        match catch_unwind(AssertUnwindSafe(|| {
            let before = session.last_evaluation().map(|e| e.step);
            let summary = session.summary();
            // report the closing evaluation unless it was already reported at this step
            let e = session.last_evaluation().filter(|e| before != Some(e.step));
            (summary, e, session.mask_sparsity(), session.epoch())
        })) {
            Ok((summary, e, sparsity, epoch)) => {
                if let Some(e) = e {
                    self.emit(Event::Evaluation {
                        step: e.step,
                        epoch,
                        accuracy: e.accuracy,
                        loss: e.loss,
                        sparsity,
                        baseline: false,
                    });
                }
                self.emit(Event::Finished { stopped, summary });
            }
            Err(p) => self.fail(format!(
                "the worker crashed while evaluating: {}",
                panic_message(p.as_ref())
            )),
        }
    }
}
