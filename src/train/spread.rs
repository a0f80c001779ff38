//! A sweep spread over several remote servers: one thread per server, each fine-tuning one
//! point at a time on its server's device. A point whose server is lost goes back to the
//! queue for another server; what is measured stays measured.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::analysis::SweepPoint;
use super::backend::connect;
use super::checkpoint::CheckpointData;
use super::session::{Session, SessionError};
use crate::data::Dataset;
use crate::plan::ExperimentPlan;
use crate::prune::{Criterion, Granularity};

/// One point of a sweep: granularity, target and criterion.
pub type PointSpec = (Granularity, f64, Criterion);

/// How a point is fine-tuned, whatever the device: from the sweep's starting checkpoint,
/// with the point's own plan, for a fixed number of steps.
#[derive(Clone)]
pub struct PointRecipe {
    pub base: CheckpointData,
    pub dataset: Arc<Dataset>,
    pub budget_steps: u64,
    /// The plan of each point (the sweep's rule, shared with the one-device sweep).
    pub plan_of: Arc<dyn Fn(PointSpec) -> ExperimentPlan + Send + Sync>,
}

/// What a server's thread reports.
enum LaneReport {
    Point(SweepPoint),
    /// The server went away (or could not be reached); its point, if it had one, is back
    /// in the queue.
    Lost {
        server: String,
        reason: String,
    },
    /// A point failed for a reason another server would meet too (an invalid plan).
    Failed(String),
    /// The queue is empty: this server is done.
    Idle,
}

/// The servers' threads and what they report.
pub struct Spread {
    reports: Receiver<LaneReport>,
    cancel: Arc<AtomicBool>,
    working: usize,
    /// What happened to servers, for the worker to say.
    pub notices: Vec<String>,
}

impl Spread {
    /// Starts one thread per server in `servers` (`ws://HOST:PORT`), each taking points
    /// from `points` until none are left.
    pub fn start(
        servers: &[String],
        token: Option<String>,
        points: Vec<PointSpec>,
        recipe: PointRecipe,
    ) -> Self {
        let queue = Arc::new(Mutex::new(points));
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, reports) = channel();
        for server in servers {
            let (queue, cancel, tx) = (queue.clone(), cancel.clone(), tx.clone());
            let (server, token, recipe) = (server.clone(), token.clone(), recipe.clone());
            std::thread::Builder::new()
                .name(format!("sweep {server}"))
                .spawn(move || lane(&server, token.as_deref(), &queue, &recipe, &cancel, &tx))
                .expect("a thread starts");
        }
        Self {
            reports,
            cancel,
            working: servers.len(),
            notices: Vec::new(),
        }
    }

    /// The next finished point, waiting at most `wait`. An error when no server is left
    /// while points remain, or a point failed for a reason of its own.
    pub fn next(&mut self, wait: Duration) -> Result<Option<SweepPoint>, SessionError> {
        match self.reports.recv_timeout(wait) {
            Ok(LaneReport::Point(p)) => Ok(Some(p)),
            Ok(LaneReport::Lost { server, reason }) => {
                self.working -= 1;
                self.notices.push(format!(
                    "server {server} lost ({reason}); its point goes to another server"
                ));
                self.check_servers_left()
            }
            Ok(LaneReport::Idle) => {
                self.working -= 1;
                Ok(None)
            }
            Ok(LaneReport::Failed(reason)) => Err(SessionError::DeviceLost {
                step: 0,
                device: "a sweep point".into(),
                reason,
            }),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => self.check_servers_left(),
        }
    }

    fn check_servers_left(&self) -> Result<Option<SweepPoint>, SessionError> {
        if self.working == 0 {
            return Err(SessionError::DeviceLost {
                step: 0,
                device: "every server of the sweep".into(),
                reason: "no server is left to run the remaining points".into(),
            });
        }
        Ok(None)
    }
}

impl Drop for Spread {
    /// A cancelled or finished sweep stops its threads at their next step.
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// One server's thread: connect, then fine-tune points until the queue is empty.
fn lane(
    server: &str,
    token: Option<&str>,
    queue: &Mutex<Vec<PointSpec>>,
    recipe: &PointRecipe,
    cancel: &AtomicBool,
    tx: &Sender<LaneReport>,
) {
    let lost = |reason: String| LaneReport::Lost {
        server: server.to_string(),
        reason,
    };
    let (device, backend) = match connect(server, token) {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.send(lost(e.to_string()));
            return;
        }
    };
    loop {
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        let Some(spec) = queue.lock().ok().and_then(|mut q| q.pop()) else {
            let _ = tx.send(LaneReport::Idle);
            return;
        };
        let attempt = catch_unwind(AssertUnwindSafe(|| {
            fine_tune(spec, recipe, device.clone(), backend.clone(), cancel)
        }));
        let report = match attempt {
            Ok(Ok(Some(mut point))) => {
                point.server = Some(server.to_string());
                LaneReport::Point(point)
            }
            Ok(Ok(None)) => return,
            Ok(Err(SessionError::DeviceLost { reason, .. })) => {
                if let Ok(mut q) = queue.lock() {
                    q.push(spec);
                }
                let _ = tx.send(lost(reason));
                return;
            }
            Ok(Err(e)) => LaneReport::Failed(e.to_string()),
            Err(_) => {
                // a remote device that goes away can panic inside burn: the server is lost
                if let Ok(mut q) = queue.lock() {
                    q.push(spec);
                }
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

/// Fine-tunes one point to the end of its budget (`None` when cancelled).
fn fine_tune(
    spec: PointSpec,
    recipe: &PointRecipe,
    device: burn::tensor::Device,
    backend: super::backend::BackendInfo,
    cancel: &AtomicBool,
) -> Result<Option<SweepPoint>, SessionError> {
    let (granularity, target, criterion) = spec;
    let mut data = recipe.base.clone();
    data.plan_toml = (recipe.plan_of)(spec).to_toml();
    let mut session = Session::from_checkpoint(&data, recipe.dataset.clone(), device, backend)?;
    let stop = recipe.base.step + recipe.budget_steps;
    while session.step() < stop {
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        session.train_step()?;
    }
    let summary = session.summary();
    Ok(Some(SweepPoint {
        granularity: granularity.to_string(),
        criterion: criterion.to_string(),
        target,
        sparsity: summary.sparsity,
        accuracy: summary.final_accuracy,
        server: None,
    }))
}
