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
