//! The worker thread's loop: takes commands, trains, runs analysis jobs, and reports.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

use super::Waker;
use crate::data::Dataset;
use crate::plan::{CheckedPlan, ExperimentPlan};
use crate::train::analysis::{SensitivityJob, SweepJob};
use crate::train::backend::{select_for, spread_servers};
use crate::train::checkpoint::CheckpointData;
use crate::train::error::WorkerError;
use crate::train::event::{Command, Event};
use crate::train::heartbeat::Heartbeat;
use crate::train::session::{EvalPhase, Session, SessionError, StepOutcome};

mod files;
mod jobs;

/// Smallest interval between two progress events.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// How often a remote run's state is copied to this machine.
const HOST_COPY_EVERY: Duration = Duration::from_secs(3);
/// Longest wait for a command before the idle worker checks in again.
pub(super) const IDLE_BEAT: Duration = Duration::from_millis(200);

/// A sensitivity analysis or sweep under way (training waits meanwhile); its turns are
/// in `run/jobs.rs`.
pub(super) enum Job {
    Sensitivity(Box<SensitivityJob>),
    Sweep(Box<SweepJob>),
}

/// What a failure leaves behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// The session is intact (a read, a save, an analysis on copies): report and go on.
    KeepsRun,
    /// The session may be half-changed (a step, a plan update, a load): drop it.
    EndsRun,
}

pub(super) struct WorkerLoop {
    commands: Receiver<Command>,
    events: Sender<Event>,
    waker: Option<Waker>,
    heartbeat: Heartbeat,
    session: Option<Session>,
    running: bool,
    /// Loaded datasets, kept so a restart does not read the files again.
    datasets: HashMap<String, Arc<Dataset>>,
    last_progress: Option<Instant>,
    job: Option<Job>,
    /// A remote run's weights, masks and Adam state on this machine, renewed every
    /// [`HOST_COPY_EVERY`]: what a lost server leaves to continue from.
    host_copy: Option<(CheckpointData, Instant)>,
    /// The speed cap: the time between two steps, and when the next one may start.
    step_interval: Option<Duration>,
    next_step_at: Option<Instant>,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

impl WorkerLoop {
    pub(super) fn new(
        commands: Receiver<Command>,
        events: Sender<Event>,
        waker: Option<Waker>,
        heartbeat: Heartbeat,
    ) -> Self {
        Self {
            commands,
            events,
            waker,
            heartbeat,
            session: None,
            running: false,
            datasets: HashMap::new(),
            last_progress: None,
            job: None,
            host_copy: None,
            step_interval: None,
            next_step_at: None,
        }
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
        if let Some(w) = &self.waker {
            w();
        }
    }

    fn notice(&self, message: impl Into<String>) {
        self.emit(Event::Notice {
            message: message.into(),
        });
    }

    pub(super) fn run(mut self) {
        loop {
            self.heartbeat.beat();
            let busy = self.running || self.job.is_some();
            // under a speed cap, wait for commands until the next step is due
            let wait = match (self.running && self.job.is_none(), self.next_step_at) {
                (true, Some(at)) => at.checked_duration_since(Instant::now()),
                _ => None,
            };
            let command = if let Some(wait) = wait {
                match self.commands.recv_timeout(wait.min(IDLE_BEAT)) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else if busy {
                match self.commands.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return,
                }
            } else {
                match self.commands.recv_timeout(IDLE_BEAT) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            };
            match command {
                Some(Command::Shutdown) => return,
                // take every waiting command before the next step
                Some(command) => self.handle(command),
                None if self.job.is_some() => {
                    self.guard("running the analysis", Failure::KeepsRun, Self::job_step)
                }
                None => {
                    self.train_one();
                    self.next_step_at = self.step_interval.map(|d| Instant::now() + d);
                }
            }
        }
    }

    /// The one guard: runs `work`, turning its error or panic into an [`Event::Error`].
    /// After an [`Failure::EndsRun`] failure the session is dropped; either way a running
    /// analysis is cancelled (its partial result reported) and training pauses.
    fn guard(
        &mut self,
        during: &str,
        failure: Failure,
        work: impl FnOnce(&mut Self) -> Result<(), WorkerError>,
    ) {
        let step = self.session.as_ref().map(Session::step);
        let error = match catch_unwind(AssertUnwindSafe(|| work(self))) {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(payload) => WorkerError::Panic {
                during: during.to_string(),
                message: panic_message(payload.as_ref()),
            },
        };
        self.running = false;
        self.finish_job(true);
        let remote = self
            .session
            .as_ref()
            .is_some_and(|s| s.backend().is_remote());
        // a remote session whose device stopped answering (burn panics on a failed read,
        // whatever was reading: a step, a snapshot, a save) cannot go on
        let device_lost = remote
            && matches!(
                error,
                WorkerError::Panic { .. } | WorkerError::Session(SessionError::DeviceLost { .. })
            );
        let run_ended = failure == Failure::EndsRun || device_lost;
        if run_ended {
            self.session = None;
        }
        self.emit(Event::Error {
            error: Arc::new(error),
            step,
            run_ended,
        });
        if run_ended
            && remote
            && let Some((copy, _)) = &self.host_copy
        {
            self.emit(Event::RemoteLost { step: copy.step });
        }
    }

    /// Keeps a host copy of a remote run, every [`HOST_COPY_EVERY`].
    fn keep_host_copy(&mut self) {
        let Some(session) = self.session.as_ref() else {
            return;
        };
        if !session.backend().is_remote()
            || self
                .host_copy
                .as_ref()
                .is_some_and(|(_, at)| at.elapsed() < HOST_COPY_EVERY)
        {
            return;
        }
        if let Ok(copy) = session.to_checkpoint("{}".into()) {
            self.host_copy = Some((copy, Instant::now()));
        }
    }

    /// Goes on with the run a lost server ended, from its host copy, on flex.
    fn continue_locally(&mut self) -> Result<(), WorkerError> {
        let Some((mut copy, _)) = self.host_copy.take() else {
            self.notice("no copy of a remote run to continue from");
            return Ok(());
        };
        let mut plan = ExperimentPlan::from_toml(&copy.plan_toml, "the remote run's plan")?;
        plan.training.backend = crate::train::BackendChoice::Flex;
        plan.training.remote = None;
        copy.plan_toml = plan.to_toml();
        let dataset = self.dataset(&plan)?;
        let (device, backend) = select_for(&plan.training)?;
        let session = Session::from_checkpoint(&copy, dataset, device, backend)?;
        self.notice(format!(
            "continuing on this machine (flex) from step {}",
            copy.step
        ));
        self.announce(session, true);
        Ok(())
    }

    fn handle(&mut self, command: Command) {
        use Failure::{EndsRun, KeepsRun};
        match command {
            Command::Start(plan) => self.guard("starting", EndsRun, |w| w.start(*plan, true)),
            Command::Prepare(plan) => self.guard("starting", EndsRun, |w| w.start(*plan, false)),
            Command::Pause => self.pause(),
            Command::Resume => self.resume(),
            Command::Step => {
                if self.session.as_ref().is_some_and(|s| !s.is_done()) {
                    self.running = false;
                    self.train_one();
                }
            }
            Command::ContinueLocally => {
                self.guard("continuing locally", EndsRun, Self::continue_locally)
            }
            Command::SetSpeed { steps_per_s } => self.set_pace(steps_per_s),
            Command::Stop => {
                if self
                    .session
                    .as_ref()
                    .is_some_and(|s| !s.is_done() || self.running)
                {
                    self.running = false;
                    self.guard("evaluating", KeepsRun, |w| w.finish(true));
                }
            }
            Command::UpdatePlan(plan) => {
                self.guard("applying the plan", EndsRun, |w| w.update_plan(*plan))
            }
            Command::Snapshot { layer } => {
                self.guard("reading weights", KeepsRun, |w| w.snapshot(layer))
            }
            Command::SaveCheckpoint { path, history_json } => {
                self.guard("saving a checkpoint", KeepsRun, |w| {
                    w.save_checkpoint(path, history_json)
                })
            }
            Command::LoadCheckpoint { path } => {
                self.guard("loading a checkpoint", EndsRun, |w| w.load_checkpoint(path))
            }
            Command::Export { dir } => self.guard("exporting", KeepsRun, |w| w.export(dir)),
            Command::BenchInfer { seconds } => {
                self.guard("timing inference", KeepsRun, |w| w.bench_infer(seconds))
            }
            Command::LoadSparse { path } => {
                self.guard("loading a sparse model", EndsRun, |w| w.load_sparse(path))
            }
            Command::SaveMasks { path } => {
                self.guard("saving masks", KeepsRun, |w| w.save_masks(path))
            }
            Command::Sensitivity(request) => self.guard("starting the analysis", KeepsRun, |w| {
                w.start_job(|s| {
                    let training = &s.plan().training;
                    let servers = spread_servers(&request.servers, training);
                    let token = training.token.clone();
                    let mut job = SensitivityJob::new(s, request);
                    if !servers.is_empty() {
                        job = job.spread_over(s, &servers, token)?;
                    }
                    Ok(Job::Sensitivity(Box::new(job)))
                })
            }),
            Command::Sweep(request) => self.guard("starting the sweep", KeepsRun, |w| {
                w.start_job(|s| {
                    let training = &s.plan().training;
                    let device = select_for(training)?.0;
                    let mut job = SweepJob::new(s, &request, device)?;
                    let servers = spread_servers(&request.servers, training);
                    if !servers.is_empty() {
                        job = job.spread_over(&servers, training.token.clone());
                    }
                    Ok(Job::Sweep(Box::new(job)))
                })
            }),
            Command::Cancel => self.finish_job(true),
            #[cfg(any(test, feature = "test-support"))]
            Command::WithSession(task) => self.guard("running a session task", EndsRun, |w| {
                (task.0)(w.session.as_mut());
                Ok(())
            }),
            Command::Shutdown => {}
        }
    }

    fn pause(&mut self) {
        if self.running {
            self.running = false;
            if let Some(s) = &self.session {
                self.emit(Event::Paused { step: s.step() });
            }
        }
    }

    fn resume(&mut self) {
        if let Some(s) = &self.session
            && !s.is_done()
            && !self.running
            && self.job.is_none()
        {
            self.running = true;
            self.emit(Event::Resumed { step: s.step() });
        }
    }

    /// The current session, or a notice saying there is nothing to `what` yet.
    fn current(&self, what: &str) -> Option<&Session> {
        if self.session.is_none() {
            self.notice(format!("nothing to {what}: train or load a model first"));
        }
        self.session.as_ref()
    }

    /// The plan's dataset, shaped for its network (image folders are resized to it).
    fn dataset(&mut self, plan: &ExperimentPlan) -> Result<Arc<Dataset>, WorkerError> {
        let (source, input) = (&plan.dataset, plan.stack()?.input);
        let key = format!("{source} as {input:?}");
        if let Some(d) = self.datasets.get(&key) {
            return Ok(d.clone());
        }
        let d = Arc::new(Dataset::load_for(source, input)?);
        self.datasets.insert(key, d.clone());
        Ok(d)
    }

    /// Drops the current run (cancelling any analysis) before a new one is built.
    fn clear(&mut self) {
        self.running = false;
        self.finish_job(true);
        self.session = None;
        self.host_copy = None;
    }

    /// A new session of `plan`, from the plan's starting weights when it names some;
    /// training at once when `run`, otherwise paused at step 0.
    /// Caps training at `steps_per_s` (`None`: full speed).
    fn set_pace(&mut self, steps_per_s: Option<f64>) {
        self.step_interval = steps_per_s
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| Duration::from_secs_f64(1.0 / s));
        self.next_step_at = None;
    }

    fn start(&mut self, plan: ExperimentPlan, run: bool) -> Result<(), WorkerError> {
        self.clear();
        self.set_pace(plan.training.pace);
        let data = self.dataset(&plan)?;
        let (device, backend) = select_for(&plan.training)?;
        let weights = plan.starting_weights().map(std::path::Path::to_path_buf);
        let mut session = Session::new(plan, data, device, backend)?;
        if let Some(path) = &weights {
            session.load_weights(path)?;
        }
        self.announce(session, run);
        if !run {
            self.emit(Event::Paused { step: 0 });
        }
        Ok(())
    }

    fn update_plan(&mut self, plan: CheckedPlan) -> Result<(), WorkerError> {
        let Some(s) = self.session.as_mut() else {
            return Ok(());
        };
        let pace = plan.plan().training.pace;
        if s.plan().training.pace != pace {
            self.set_pace(pace);
        }
        let Some(s) = self.session.as_mut() else {
            return Ok(());
        };
        match s.update_plan(plan) {
            Ok(()) => {
                let event = Event::PlanUpdated {
                    schedule: s.planned_schedule(),
                    total_steps: s.total_steps(),
                };
                self.emit(event);
            }
            // the session keeps its last plan: a notice, not a failure
            Err(e) => self.notice(format!("plan not applied: {e}")),
        }
        Ok(())
    }

    fn snapshot(&mut self, layer: Option<String>) -> Result<(), WorkerError> {
        let Some(s) = &self.session else {
            return Ok(());
        };
        let snaps = match &layer {
            Some(name) => vec![s.snapshot(name)?],
            None => s.snapshots(),
        };
        snaps
            .into_iter()
            .for_each(|snap| self.emit(Event::Snapshot(snap)));
        Ok(())
    }

    /// Reports a new session and makes it current.
    fn announce(&mut self, mut session: Session, run: bool) {
        session.set_heartbeat(self.heartbeat.clone());
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
                self.notice(format!("{}: {why}", rule.name));
            }
        }
        self.session = Some(session);
        self.last_progress = None;
        self.running = run;
    }

    /// One training step (and what follows it), under the guard.
    fn train_one(&mut self) {
        let Some(session) = &self.session else {
            self.running = false;
            return;
        };
        let during = format!("training step {}", session.step());
        self.guard(&during, Failure::EndsRun, |w| {
            let outcome = match w.session.as_mut() {
                Some(s) => s.train_step()?,
                None => return Ok(()),
            };
            w.after_step(outcome)
        });
    }

    fn after_step(&mut self, outcome: StepOutcome) -> Result<(), WorkerError> {
        self.keep_host_copy();
        let Some(session) = self.session.as_mut() else {
            return Ok(());
        };
        let spe = session.steps_per_epoch();
        // what was measured before the cut, the cut, then what was measured after it
        let (after, before): (Vec<_>, Vec<_>) = outcome
            .evaluations
            .iter()
            .partition(|e| e.phase == EvalPhase::AfterCut);
        let mut events: Vec<Event> = before.iter().map(|e| Event::evaluation(e, spe)).collect();
        if let Some(p) = outcome.pruned {
            events.push(Event::Pruned {
                step: p.step,
                target: p.target,
                sparsity: p.sparsity,
                layers: p.layers,
            });
        }
        events.extend(after.iter().map(|e| Event::evaluation(e, spe)));
        let done = session.is_done();
        let step = session.step();
        if session.evaluation_due() && !done {
            let e = session.evaluate(EvalPhase::Scheduled);
            events.push(Event::evaluation(&e, spe));
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
            self.finish(false)?;
        }
        Ok(())
    }

    /// Ends the run: the closing evaluation (unless one was just reported) and the summary.
    fn finish(&mut self, stopped: bool) -> Result<(), WorkerError> {
        let Some(session) = self.session.as_mut() else {
            return Ok(());
        };
        let before = session.last_evaluation().map(|e| (e.step, e.phase));
        let summary = session.summary();
        let closing = session
            .last_evaluation()
            .filter(|e| before != Some((e.step, e.phase)));
        let spe = session.steps_per_epoch();
        if let Some(e) = closing {
            self.emit(Event::evaluation(&e, spe));
        }
        self.emit(Event::Finished { stopped, summary });
        Ok(())
    }
}
