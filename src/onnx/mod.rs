//! ONNX in and out. [`import`] turns an ONNX graph (parsed by burn's `onnx-ir`) into a
//! network of the plan's layers and its weights, named as the plan names them; [`write`]
//! turns a network and its weights back into an ONNX model for any runtime. See
//! `docs/onnx.md`.

mod check;
mod gelu;
mod import;
mod write;

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::model::{HostTensor, StackConfig, StackError};

pub use import::{import_bytes, supported_ops};
pub use write::{ExportError, OPSET, to_onnx};

/// An ONNX model as the explorer's network: the layers (with the input they take) and
/// every parameter, keyed by the layers' names as a `state_dict` would be.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxModel {
    pub stack: StackConfig,
    pub params: Vec<HostTensor>,
}

/// An ONNX file the explorer cannot take, naming what is wrong.
#[derive(Debug, Error)]
pub enum OnnxError {
    #[error("{path}: cannot read: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: not a readable ONNX model: {message}")]
    Format { path: PathBuf, message: String },
    #[error(
        "{path}: node {node:?} ({op}) is not supported; the explorer takes {}",
        supported_ops()
    )]
    Unsupported {
        path: PathBuf,
        node: String,
        op: String,
    },
    #[error("{path}: node {node:?} ({op}): {reason}")]
    Node {
        path: PathBuf,
        node: String,
        op: String,
        reason: String,
    },
    #[error("{path}: tensor {tensor:?}: {reason}")]
    Tensor {
        path: PathBuf,
        tensor: String,
        reason: String,
    },
    #[error(
        "{path}: the model's input is {found}; the explorer takes one float image input \
         [batch, channels, height, width] with fixed channels, height and width"
    )]
    Input { path: PathBuf, found: String },
    #[error("{path}: {source}")]
    Network {
        path: PathBuf,
        #[source]
        source: StackError,
    },
}

/// Reads the ONNX model at `path` as a network and its weights. External data files are
/// looked for beside it.
pub fn import(path: &Path) -> Result<OnnxModel, OnnxError> {
    let bytes = std::fs::read(path).map_err(|cause| OnnxError::Read {
        path: path.into(),
        cause,
    })?;
    import_bytes(&bytes, path)
}

/// Whether `path` names an ONNX model (by its extension), as `--weights` and a plan's
/// starting weights may.
pub fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}
