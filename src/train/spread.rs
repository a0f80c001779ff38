//! Analyses spread over several remote servers: one thread per server, each taking tasks
//! (a sweep's points, a sensitivity analysis's cells) from one queue and running them on its
//! server's device. A task whose server is lost goes back to the queue for another server;
//! what is measured stays measured.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burn::tensor::Device;

use super::backend::{BackendInfo, connect};
use super::session::SessionError;

/// What one server does with each task, made once on its thread for its device: a task's
/// result, or `None` when the analysis was cancelled.
pub type TaskRunner<T, R> = Box<dyn FnMut(T, &AtomicBool) -> Result<Option<R>, SessionError>>;

/// Makes a server's [`TaskRunner`] from its device.
pub type Prepare<T, R> = Arc<
    dyn Fn(Device, BackendInfo, String) -> Result<TaskRunner<T, R>, SessionError> + Send + Sync,
>;

/// What a server's thread reports.
enum LaneReport<R> {
    Done(R),
    /// The server went away (or could not be reached); its task, if it had one, is back
    /// in the queue.
    Lost {
        server: String,
        reason: String,
    },
    /// A task failed for a reason another server would meet too (an invalid plan).
    Failed(String),
    /// The queue is empty: this server is done.
    Idle,
}

/// The servers' threads and what they report.
pub struct Spread<R> {
    reports: Receiver<LaneReport<R>>,
    cancel: Arc<AtomicBool>,
    working: usize,
    /// The last server lost, and why.
    last_lost: Option<String>,
    /// What happened to servers, for the worker to say.
    pub notices: Vec<String>,
}

impl<R: Send + 'static> Spread<R> {
    /// Starts one thread per server in `servers` (`ws://HOST:PORT`), each taking tasks
    /// until none are left.
    pub fn start<T: Clone + Send + 'static>(
        servers: &[String],
        token: Option<String>,
        tasks: Vec<T>,
        prepare: Prepare<T, R>,
    ) -> Self {
        let queue = Arc::new(Mutex::new(tasks));
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, reports) = channel();
        for server in servers {
            let (queue, cancel, tx) = (queue.clone(), cancel.clone(), tx.clone());
            let (server, token, prepare) = (server.clone(), token.clone(), prepare.clone());
            std::thread::Builder::new()
                .name(format!("analysis on {server}"))
                .spawn(move || lane(&server, token.as_deref(), &queue, &prepare, &cancel, &tx))
                .expect("a thread starts");
        }
        Self {
            reports,
            cancel,
            working: servers.len(),
            last_lost: None,
            notices: Vec::new(),
        }
    }

    /// The next finished task's result, waiting at most `wait`. An error when no server is
    /// left while tasks remain, or a task failed for a reason of its own.
    pub fn next(&mut self, wait: Duration) -> Result<Option<R>, SessionError> {
        match self.reports.recv_timeout(wait) {
            Ok(LaneReport::Done(r)) => Ok(Some(r)),
            Ok(LaneReport::Lost { server, reason }) => {
                self.working -= 1;
                self.notices.push(format!(
                    "server {server} lost ({reason}); its work goes to another server"
                ));
                self.last_lost = Some(format!("{server}: {reason}"));
                self.check_servers_left()
            }
            Ok(LaneReport::Idle) => {
                self.working -= 1;
                Ok(None)
            }
            Ok(LaneReport::Failed(reason)) => Err(SessionError::Spread(reason)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => self.check_servers_left(),
        }
    }

    fn check_servers_left(&self) -> Result<Option<R>, SessionError> {
        if self.working == 0 {
            return Err(SessionError::Spread(format!(
                "no server is left to run the rest of the analysis (the last one lost: {})",
                self.last_lost.as_deref().unwrap_or("none answered")
            )));
        }
        Ok(None)
    }
}

impl<R> Drop for Spread<R> {
    /// A cancelled or finished analysis stops its threads at their next step.
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// One server's thread: connect, prepare, then run tasks until the queue is empty.
fn lane<T: Clone, R>(
    server: &str,
    token: Option<&str>,
    queue: &Mutex<Vec<T>>,
    prepare: &Prepare<T, R>,
    cancel: &AtomicBool,
    tx: &Sender<LaneReport<R>>,
) {
    let lost = |reason: String| LaneReport::Lost {
        server: server.to_string(),
        reason,
    };
    let prepared =
        connect(server, token)
            .map_err(|e| e.to_string())
            .and_then(|(device, backend)| {
                catch_unwind(AssertUnwindSafe(|| {
                    prepare(device, backend, server.to_string())
                }))
                .map_err(|_| "the device stopped answering".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            });
    let mut run = match prepared {
        Ok(run) => run,
        Err(reason) => {
            let _ = tx.send(lost(reason));
            return;
        }
    };
    let requeue = |task: T| {
        if let Ok(mut q) = queue.lock() {
            q.push(task);
        }
    };
    loop {
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        let Some(task) = queue.lock().ok().and_then(|mut q| q.pop()) else {
            let _ = tx.send(LaneReport::Idle);
            return;
        };
        let report = match catch_unwind(AssertUnwindSafe(|| run(task.clone(), cancel))) {
            Ok(Ok(Some(r))) => LaneReport::Done(r),
            Ok(Ok(None)) => return,
            Ok(Err(SessionError::DeviceLost { reason, .. })) => {
                requeue(task);
                let _ = tx.send(lost(reason));
                return;
            }
            Ok(Err(e)) => LaneReport::Failed(e.to_string()),
            // a remote device that goes away can panic inside burn: the server is lost
            Err(_) => {
                requeue(task);
                let _ = tx.send(lost("the device stopped answering".into()));
                return;
            }
        };
        let failed = matches!(report, LaneReport::Failed(_));
        if tx.send(report).is_err() || failed {
            return;
        }
    }
}
