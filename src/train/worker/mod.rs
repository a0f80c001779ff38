//! The worker: a [`Session`](super::Session) on its own thread, driven by [`Command`]s,
//! reporting [`Event`]s. The window and the CLI both drive training only through this.
//!
//! Every command and every training step runs under one guard ([`run`]): an error or a
//! panic anywhere becomes an [`Event::Error`] and the thread goes on. The handle also tells
//! whether the thread is still there ([`Worker::is_alive`]) and how long it has been silent
//! ([`Worker::silent_for`]), so a front end can notice a worker that died or hangs.

mod run;

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use super::event::{Command, Event};
use super::heartbeat::Heartbeat;

/// Called after every event is sent (the window passes `request_repaint`).
pub type Waker = Box<dyn Fn() + Send>;

/// Handle to the worker thread. Dropping it shuts the thread down.
pub struct Worker {
    commands: Sender<Command>,
    events: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
    heartbeat: Heartbeat,
}

impl Worker {
    pub fn spawn(waker: Option<Waker>) -> Self {
        let (cmd_tx, cmd_rx) = channel();
        let (ev_tx, ev_rx) = channel();
        let heartbeat = Heartbeat::new();
        heartbeat.beat();
        let beats = heartbeat.clone();
        let thread = std::thread::Builder::new()
            .name("training-worker".into())
            .spawn(move || run::WorkerLoop::new(cmd_rx, ev_tx, waker, beats).run())
            .expect("the OS can start a thread");
        Self {
            commands: cmd_tx,
            events: ev_rx,
            thread: Some(thread),
            heartbeat,
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

    /// Whether the worker thread is still running.
    pub fn is_alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// How long since the worker last showed it was working or waiting for commands (it
    /// checks in at least every [`run::IDLE_BEAT`] when idle, and at every step and
    /// evaluation batch when busy).
    pub fn silent_for(&self) -> Duration {
        self.heartbeat.silent_for()
    }

    /// Lets a worker that does not answer go: it is asked to stop, and not waited for.
    pub fn abandon(mut self) {
        let _ = self.commands.send(Command::Shutdown);
        self.thread.take();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ExperimentPlan;
    use crate::prune::{At, Schedule};
    use crate::train::BackendChoice;
    use crate::train::error::WorkerError;
    use crate::train::event::SessionTask;

    fn quick_plan(epochs: u32) -> ExperimentPlan {
        let mut plan = ExperimentPlan::preset("quick-demo").unwrap();
        plan.training.backend = BackendChoice::Flex;
        plan.training.epochs = epochs;
        plan.pruning.schedule = Schedule::Constant {
            target: 0.5,
            begin: At::Step(10),
            end: None,
            frequency: 10,
        };
        plan
    }

    /// Events until one meets `stop` (returned last), failing after `secs`.
    fn until(worker: &Worker, secs: u64, stop: impl Fn(&Event) -> bool) -> Vec<Event> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let e = worker
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("timed out after {} events", seen.len()));
            let hit = stop(&e);
            seen.push(e);
            if hit {
                return seen;
            }
        }
    }

    #[test]
    fn a_crash_in_the_worker_becomes_an_error_and_the_worker_starts_again() {
        let worker = Worker::spawn(None);
        worker.send(Command::Start(Box::new(quick_plan(3))));
        until(&worker, 60, |e| matches!(e, Event::Started { .. }));
        // code that panics on the worker thread, as a bug in a command would
        worker.send(Command::WithSession(SessionTask(Box::new(|_| {
            panic!("crash requested by the test")
        }))));
        let seen = until(&worker, 60, |e| matches!(e, Event::Error { .. }));
        let Some(Event::Error {
            error, run_ended, ..
        }) = seen.last()
        else {
            unreachable!()
        };
        assert!(
            matches!(error.as_ref(), WorkerError::Panic { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains("crashed") && message.contains("crash requested"),
            "{message}"
        );
        assert!(*run_ended);
        assert!(worker.is_alive());
        worker.send(Command::Start(Box::new(quick_plan(1))));
        let seen = until(&worker, 120, |e| matches!(e, Event::Finished { .. }));
        let steps = seen.iter().find_map(|e| match e {
            Event::Finished { summary, .. } => Some(summary.steps),
            _ => None,
        });
        assert_eq!(steps, Some(63));
    }
}
