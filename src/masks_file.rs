//! Masks as safetensors: one uint8 tensor per prunable layer (1 kept, 0 pruned), named by
//! layer, in PyTorch layout, with the plan (TOML) in the metadata under `plan`.
//!
//! ```python
//! from safetensors.torch import load_file
//! masks = load_file("masks.safetensors")   # {"fc1": uint8 [300, 784], ...}
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use thiserror::Error;

/// One layer's mask with its PyTorch-layout dimensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedMask {
    pub name: String,
    pub dims: Vec<usize>,
    pub mask: Vec<u8>,
}

#[derive(Debug, Error)]
pub enum MasksFileError {
    #[error("{path}: cannot write: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: cannot read: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: not a valid safetensors file: {message}")]
    Format { path: PathBuf, message: String },
    #[error("mask {name}: {len} values do not fill its shape {dims:?}")]
    Shape {
        name: String,
        dims: Vec<usize>,
        len: usize,
    },
    #[error("{path}: tensor {name} is {dtype}, expected U8")]
    Dtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },
}

/// Writes masks atomically.
pub fn save_masks(path: &Path, masks: &[NamedMask], plan_toml: &str) -> Result<(), MasksFileError> {
    let mut views = Vec::with_capacity(masks.len());
    for m in masks {
        let view = TensorView::new(Dtype::U8, m.dims.clone(), &m.mask).map_err(|_| {
            MasksFileError::Shape {
                name: m.name.clone(),
                dims: m.dims.clone(),
                len: m.mask.len(),
            }
        })?;
        views.push((m.name.clone(), view));
    }
    let metadata = HashMap::from([
        ("plan".to_string(), plan_toml.to_string()),
        (
            "format".to_string(),
            "sparsity-explorer masks: 1 kept, 0 pruned".to_string(),
        ),
    ]);
    let bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|e| MasksFileError::Format {
            path: path.into(),
            message: e.to_string(),
        })?;
    crate::atomic_write(path, &bytes).map_err(|cause| MasksFileError::Write {
        path: path.into(),
        cause,
    })
}

/// Parses a masks file's bytes, sorted by name, with the plan text if the file has one;
/// `path` names the source in errors.
pub fn parse_masks(
    bytes: &[u8],
    path: &Path,
) -> Result<(Vec<NamedMask>, Option<String>), MasksFileError> {
    let format = |e: safetensors::SafeTensorError| MasksFileError::Format {
        path: path.into(),
        message: e.to_string(),
    };
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(format)?;
    let plan = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get("plan").cloned());
    let tensors = SafeTensors::deserialize(bytes).map_err(format)?;
    let mut out = Vec::new();
    for (name, view) in tensors.tensors() {
        if view.dtype() != Dtype::U8 {
            return Err(MasksFileError::Dtype {
                path: path.into(),
                name,
                dtype: format!("{:?}", view.dtype()),
            });
        }
        out.push(NamedMask {
            name,
            dims: view.shape().to_vec(),
            mask: view.data().to_vec(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((out, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_names_shapes_values_and_plan() {
        let dir = std::env::temp_dir().join(format!("se-masks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        let masks = vec![
            NamedMask {
                name: "conv1".into(),
                dims: vec![2, 1, 1, 2],
                mask: vec![1, 0, 0, 1],
            },
            NamedMask {
                name: "fc1".into(),
                dims: vec![1, 3],
                mask: vec![0, 1, 1],
            },
        ];
        save_masks(&path, &masks, "model = \"mlp\"").unwrap();
        let (back, plan) = parse_masks(&std::fs::read(&path).unwrap(), &path).unwrap();
        assert_eq!(back, masks);
        assert_eq!(plan.as_deref(), Some("model = \"mlp\""));
        std::fs::write(&path, b"not safetensors").unwrap();
        assert!(matches!(
            parse_masks(&std::fs::read(&path).unwrap(), &path),
            Err(MasksFileError::Format { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_mask_that_does_not_fill_its_shape_is_refused() {
        let bad = NamedMask {
            name: "fc1".into(),
            dims: vec![2, 2],
            mask: vec![1, 0, 1],
        };
        let path = std::env::temp_dir().join("se-never-written.safetensors");
        assert!(matches!(
            save_masks(&path, &[bad], ""),
            Err(MasksFileError::Shape { .. })
        ));
        assert!(!path.exists());
    }
}
