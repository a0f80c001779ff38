//! Checkpoints: a session saved to one file so it can be resumed later.
//!
//! The file is safetensors: `model` and `optimizer` are burnpack byte blobs (uint8), each
//! mask is a uint8 tensor `mask.NAME` in PyTorch layout, and the metadata holds the plan
//! (TOML), the step, the dense accuracy, the front end's history (JSON, opaque here) and a
//! CRC-32 of all of it: safetensors has no checksum of its own, and a damaged weight or
//! optimizer blob must be an error, not garbage weights or a panic inside burn's decoder.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use thiserror::Error;

/// Format tag written into every checkpoint.
pub const CHECKPOINT_FORMAT: &str = "sparsity-explorer checkpoint v3";

/// Earlier formats: v1 had no checksum, v2 held the models as fixed structs (v3 holds any
/// network as a stack of layers).
const OLDER_FORMATS: [&str; 2] = [
    "sparsity-explorer checkpoint v1",
    "sparsity-explorer checkpoint v2",
];

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("{path}: cannot read: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{path}: cannot write: {cause}")]
    Write { path: String, cause: std::io::Error },
    #[error("{path}: not a sparsity-explorer checkpoint: {reason}")]
    Format { path: String, reason: String },
    #[error("cannot serialize the {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}

/// Everything a checkpoint holds, on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointData {
    pub plan_toml: String,
    pub step: u64,
    pub dense_accuracy: Option<f64>,
    /// Whatever the front end wants back (its plots), as JSON text.
    pub history_json: String,
    pub model: Vec<u8>,
    pub optimizer: Vec<u8>,
    /// `(layer name, PyTorch-layout dims, mask)`; layers without a mask are absent.
    pub masks: Vec<(String, Vec<usize>, Vec<u8>)>,
}

impl CheckpointData {
    /// CRC-32 of every field, masks in name order (the order they are read back in).
    fn checksum(&self) -> u32 {
        let mut crc = crc32fast::Hasher::new();
        let mut field = |bytes: &[u8]| {
            crc.update(&(bytes.len() as u64).to_le_bytes());
            crc.update(bytes);
        };
        field(self.plan_toml.as_bytes());
        field(&self.step.to_le_bytes());
        field(
            &self
                .dense_accuracy
                .map_or(u64::MAX, f64::to_bits)
                .to_le_bytes(),
        );
        field(self.history_json.as_bytes());
        field(&self.model);
        field(&self.optimizer);
        let mut masks: Vec<_> = self.masks.iter().collect();
        masks.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, dims, mask) in masks {
            field(name.as_bytes());
            for d in dims {
                field(&(*d as u64).to_le_bytes());
            }
            field(mask);
        }
        crc.finalize()
    }

    pub fn write(&self, path: &Path) -> Result<(), CheckpointError> {
        let mut views = vec![
            (
                "model".to_string(),
                TensorView::new(Dtype::U8, vec![self.model.len()], &self.model),
            ),
            (
                "optimizer".to_string(),
                TensorView::new(Dtype::U8, vec![self.optimizer.len()], &self.optimizer),
            ),
        ];
        for (name, dims, mask) in &self.masks {
            views.push((
                format!("mask.{name}"),
                TensorView::new(Dtype::U8, dims.clone(), mask),
            ));
        }
        let views: Vec<(String, TensorView)> = views
            .into_iter()
            .map(|(n, v)| {
                v.map(|v| (n.clone(), v))
                    .map_err(|e| CheckpointError::Encode {
                        what: "checkpoint tensors",
                        reason: format!("{n}: {e}"),
                    })
            })
            .collect::<Result<_, _>>()?;
        let metadata = HashMap::from([
            ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
            ("plan".to_string(), self.plan_toml.clone()),
            ("step".to_string(), self.step.to_string()),
            (
                "dense_accuracy".to_string(),
                self.dense_accuracy
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
            ),
            ("history".to_string(), self.history_json.clone()),
            ("checksum".to_string(), self.checksum().to_string()),
        ]);
        let bytes =
            safetensors::serialize(views, Some(metadata)).map_err(|e| CheckpointError::Encode {
                what: "checkpoint",
                reason: e.to_string(),
            })?;
        crate::atomic_write(path, &bytes).map_err(|cause| CheckpointError::Write {
            path: path.display().to_string(),
            cause,
        })
    }

    pub fn read(path: &Path) -> Result<Self, CheckpointError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|cause| CheckpointError::Read {
            path: p.clone(),
            cause,
        })?;
        Self::from_bytes(&bytes, &p)
    }

    /// Parses a checkpoint's bytes; `origin` names the source in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self, CheckpointError> {
        let bad = |reason: String| CheckpointError::Format {
            path: origin.to_string(),
            reason,
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let meta = header
            .metadata()
            .clone()
            .ok_or_else(|| bad("no metadata".into()))?;
        if let Some(old) = meta
            .get("format")
            .filter(|f| OLDER_FORMATS.contains(&f.as_str()))
        {
            return Err(bad(format!(
                "written by an older version ({old}); this one reads {CHECKPOINT_FORMAT}"
            )));
        }
        if meta.get("format").map(String::as_str) != Some(CHECKPOINT_FORMAT) {
            return Err(bad(format!(
                "format is {:?}, expected {CHECKPOINT_FORMAT:?}",
                meta.get("format")
            )));
        }
        let field = |k: &str| {
            meta.get(k)
                .cloned()
                .ok_or_else(|| bad(format!("no {k} in the metadata")))
        };
        let step = field("step")?
            .parse()
            .map_err(|_| bad("the step is not a number".into()))?;
        let dense = field("dense_accuracy")?;
        let dense_accuracy = if dense.is_empty() {
            None
        } else {
            Some(
                dense
                    .parse()
                    .map_err(|_| bad("the dense accuracy is not a number".into()))?,
            )
        };
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let blob = |name: &str| {
            tensors
                .tensor(name)
                .map(|t| t.data().to_vec())
                .map_err(|_| bad(format!("no {name} tensor")))
        };
        let mut masks = Vec::new();
        for (name, view) in tensors.tensors() {
            if let Some(layer) = name.strip_prefix("mask.") {
                masks.push((
                    layer.to_string(),
                    view.shape().to_vec(),
                    view.data().to_vec(),
                ));
            }
        }
        masks.sort_by(|a, b| a.0.cmp(&b.0));
        let checksum: u32 = field("checksum")?
            .parse()
            .map_err(|_| bad("the checksum is not a number".into()))?;
        let data = Self {
            plan_toml: field("plan")?,
            step,
            dense_accuracy,
            history_json: field("history")?,
            model: blob("model")?,
            optimizer: blob("optimizer")?,
            masks,
        };
        if data.checksum() != checksum {
            return Err(bad("checksum mismatch: the file is corrupted".into()));
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = std::env::temp_dir().join(format!("se-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.ckpt");
        let data = CheckpointData {
            plan_toml: "model = \"mlp\"".into(),
            step: 42,
            dense_accuracy: Some(0.93),
            history_json: "{}".into(),
            model: vec![1, 2, 3],
            optimizer: vec![4, 5],
            masks: vec![("fc1".into(), vec![2, 2], vec![1, 0, 0, 1])],
        };
        data.write(&path).unwrap();
        assert_eq!(CheckpointData::read(&path).unwrap(), data);
        let bytes = std::fs::read(&path).unwrap();
        // any damaged byte of the data is caught by the checksum
        for back in 1..=6 {
            let mut damaged = bytes.clone();
            let at = damaged.len() - back;
            damaged[at] ^= 0x10;
            let e = CheckpointData::from_bytes(&damaged, "run.ckpt")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("run.ckpt") && e.contains("checksum mismatch"),
                "{e}"
            );
        }
        // a file of the first format (no checksum) is refused with a reason
        let tag = CHECKPOINT_FORMAT.as_bytes();
        let at = bytes.windows(tag.len()).position(|w| w == tag).unwrap();
        let mut old = bytes.clone();
        old[at..at + tag.len()].copy_from_slice(OLDER_FORMATS[1].as_bytes());
        let e = CheckpointData::from_bytes(&old, "old.ckpt")
            .unwrap_err()
            .to_string();
        assert!(e.contains("older version"), "{e}");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(
            CheckpointData::read(&path),
            Err(CheckpointError::Format { .. })
        ));
        crate::masks_file::save_masks(&path, &[], "").unwrap();
        let e = CheckpointData::read(&path).unwrap_err().to_string();
        assert!(e.contains("not a sparsity-explorer checkpoint"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
