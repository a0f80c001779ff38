//! What can go wrong in the worker, typed to the edge: the window and the CLI turn it into
//! text, nothing before them.

use thiserror::Error;

use super::backend::BackendError;
use super::checkpoint::CheckpointError;
use super::session::SessionError;
use crate::data::DataError;
use crate::export::ExportError;
use crate::infer::InferError;
use crate::masks_file::MasksFileError;
use crate::plan::PlanFileError;

#[derive(Debug, Error)]
pub enum WorkerError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Plan(#[from] PlanFileError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Masks(#[from] MasksFileError),
    #[error(transparent)]
    Inference(#[from] InferError),
    /// A panic anywhere in the worker, caught by its guard.
    #[error("the worker crashed while {during}: {message}")]
    Panic { during: String, message: String },
    /// A file was read but does not fit (a model file for another model, say).
    #[error("{path}: {source}")]
    InFile {
        path: String,
        #[source]
        source: Box<WorkerError>,
    },
}

impl WorkerError {
    /// The same error, naming the file it came from.
    pub fn in_file(self, path: &std::path::Path) -> Self {
        WorkerError::InFile {
            path: path.display().to_string(),
            source: Box::new(self),
        }
    }
}
