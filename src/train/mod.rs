//! Training: the backend choice, the session that trains, and the worker thread that runs
//! it behind two channels.

pub mod analysis;
pub mod backend;
pub mod checkpoint;
pub mod error;
pub mod event;
pub mod exporting;
pub mod heartbeat;
pub mod report;
pub mod session;
pub mod spread;
pub mod sweep_point;
pub mod worker;

pub use analysis::{SensitivityRequest, SensitivityResult, SweepRequest, SweepResult};
pub use backend::{BackendChoice, BackendInfo, select};
pub use checkpoint::{CheckpointData, CheckpointError};
pub use error::WorkerError;
pub use event::{Command, Event};
#[cfg(any(test, feature = "test-support"))]
pub use event::{SessionFn, SessionTask};
pub use exporting::{ExportReport, export_session};
pub use heartbeat::Heartbeat;
pub use report::{EvalPhase, LayerInfo, LayerSnapshot, LayerSparsity, LayerSummary, Summary};
pub use session::{Evaluation, PruneReport, Session, SessionError, StepOutcome};
pub use sweep_point::SweepPoint;
pub use worker::{Waker, Worker};
