//! Exporting a pruned model: stripped dense weights for PyTorch, and a compact sparse file
//! (f32 or int8) whose size shows what pruning saves, beside the information-theoretic
//! floor for the same masks.

pub mod compact;
pub mod inspect;
pub mod spx;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use safetensors::{Dtype, tensor::TensorView};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use compact::{Compact, CompactError, Width, compact};
pub use inspect::{Inspection, ParameterReport, inspect_file};
pub use spx::{Decoded, FormatError, ValueFormat};

use crate::model::HostTensor;
use crate::model::stack::weight_key;
use crate::prune::{Granularity, LayerRule};

#[derive(Debug, Error)]
pub enum ExportError {
    /// The file's contents are damaged (the message already includes the format error, so
    /// it is not also reported as a cause).
    #[error("{path}: {error}")]
    File { path: String, error: FormatError },
    #[error("{path}: cannot read: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{path}: cannot write: {cause}")]
    Write { path: String, cause: std::io::Error },
    #[error("{0}")]
    Format(#[from] FormatError),
    #[error("{path}: {reason}")]
    Mismatch { path: String, reason: String },
}

/// What a model weighs in each form, in bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizeReport {
    /// Every parameter as f32.
    pub dense_f32_bytes: u64,
    /// The same, gzip-compressed (what tfmot reports for a pruned model).
    pub dense_gzip_bytes: u64,
    pub sparse_f32_bytes: u64,
    pub sparse_int8_bytes: u64,
    /// Fewest bytes any encoding of these masks and f32 values can take.
    pub floor_f32_bytes: u64,
    pub floor_int8_bytes: u64,
    /// Fraction of zero weights over the prunable layers.
    pub sparsity: f64,
}

impl SizeReport {
    /// Every form with its size, in the order reports show them.
    pub fn rows(&self) -> [(&'static str, u64); 6] {
        [
            ("dense f32", self.dense_f32_bytes),
            ("dense gzip", self.dense_gzip_bytes),
            ("sparse f32", self.sparse_f32_bytes),
            ("floor f32", self.floor_f32_bytes),
            ("sparse int8", self.sparse_int8_bytes),
            ("floor int8", self.floor_int8_bytes),
        ]
    }
}

/// A model ready to export: every parameter (PyTorch names and layout), and the rules and
/// masks of its prunable layers (`masks[i]` belongs to `rules[i]`, whose weight is
/// `{name}.weight` in `params`).
pub struct ExportInputs<'a> {
    pub model: &'a str,
    pub plan_toml: &'a str,
    pub rules: &'a [LayerRule],
    pub masks: &'a [Option<Vec<u8>>],
    pub params: &'a [HostTensor],
}

impl ExportInputs<'_> {
    fn weight(&self, rule: &LayerRule) -> Option<&HostTensor> {
        let name = weight_key(&rule.name);
        self.params.iter().find(|t| t.name == name)
    }

    /// The compact sparse file's bytes.
    pub fn sparse_file(&self, values: ValueFormat) -> Result<Vec<u8>, FormatError> {
        let mut sparse = Vec::new();
        let mut sparse_names = Vec::new();
        for (rule, mask) in self.rules.iter().zip(self.masks) {
            let (Some(mask), Some(weight)) = (mask, self.weight(rule)) else {
                continue;
            };
            sparse_names.push(weight.name.clone());
            sparse.push(spx::SparseWeight {
                name: &weight.name,
                shape: rule.shape,
                values: &weight.values,
                mask,
                nm: match rule.granularity {
                    Some(Granularity::NOfM { n, m }) => Some((n, m)),
                    _ => None,
                },
            });
        }
        let dense: Vec<HostTensor> = self
            .params
            .iter()
            .filter(|t| !sparse_names.contains(&t.name))
            .cloned()
            .collect();
        spx::encode(self.model, self.plan_toml, values, &sparse, &dense)
    }

    /// Sizes of every form, and the floor.
    pub fn size_report(&self) -> Result<SizeReport, FormatError> {
        let total: usize = self.params.iter().map(|t| t.values.len()).sum();
        let mut raw = Vec::with_capacity(total * 4);
        for t in self.params {
            t.values.iter().for_each(|v| raw.extend(v.to_le_bytes()));
        }
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&raw)
            .map_err(|e| FormatError::Compression(e.to_string()))?;
        let gz = gz
            .finish()
            .map_err(|e| FormatError::Compression(e.to_string()))?;
        let (mut floor_mask_bits, mut floor_f32_bits, mut floor_int8_bits) =
            (0.0f64, 0.0f64, 0.0f64);
        let (mut zeros, mut prunable) = (0usize, 0usize);
        let mut covered = Vec::new();
        for (rule, mask) in self.rules.iter().zip(self.masks) {
            let Some(weight) = self.weight(rule) else {
                continue;
            };
            prunable += weight.values.len();
            zeros += weight.values.iter().filter(|v| **v == 0.0).count();
            let Some(mask) = mask else { continue };
            covered.push(weight.name.clone());
            let n = mask.len();
            let k = mask.iter().filter(|&&m| m == 1).count();
            floor_mask_bits += match rule.granularity {
                Some(Granularity::NOfM { n: keep, m }) => {
                    (n / m) as f64 * log2_binomial(m as u64, keep as u64)
                }
                _ => log2_binomial(n as u64, k as u64),
            };
            floor_f32_bits += 32.0 * k as f64;
            floor_int8_bits += 8.0 * k as f64 + 32.0 * rule.shape.out as f64;
        }
        let dense_rest: usize = self
            .params
            .iter()
            .filter(|t| !covered.contains(&t.name))
            .map(|t| t.values.len())
            .sum();
        let rest_bits = 32.0 * dense_rest as f64;
        Ok(SizeReport {
            dense_f32_bytes: (total * 4) as u64,
            dense_gzip_bytes: gz.len() as u64,
            sparse_f32_bytes: self.sparse_file(ValueFormat::F32)?.len() as u64,
            sparse_int8_bytes: self.sparse_file(ValueFormat::Int8)?.len() as u64,
            floor_f32_bytes: ((floor_mask_bits + floor_f32_bits + rest_bits) / 8.0).ceil() as u64,
            floor_int8_bytes: ((floor_mask_bits + floor_int8_bits + rest_bits) / 8.0).ceil() as u64,
            sparsity: if prunable == 0 {
                0.0
            } else {
                zeros as f64 / prunable as f64
            },
        })
    }

    /// Dense f32 weights in PyTorch names and layout, with each pruned weight's mask as
    /// `{layer}.weight_mask` (uint8, as `torch.nn.utils.prune` names it), the plan in the
    /// metadata. Written atomically.
    pub fn write_stripped(&self, path: &Path) -> Result<(), ExportError> {
        let bytes: Vec<(String, Vec<u8>, Vec<usize>, Dtype)> = self
            .params
            .iter()
            .map(|t| {
                let mut b = Vec::with_capacity(t.values.len() * 4);
                t.values.iter().for_each(|v| b.extend(v.to_le_bytes()));
                (t.name.clone(), b, t.dims.clone(), Dtype::F32)
            })
            .chain(self.rules.iter().zip(self.masks).filter_map(|(r, m)| {
                m.as_ref().map(|m| {
                    (
                        format!("{}_mask", weight_key(&r.name)),
                        m.clone(),
                        r.shape.dims(),
                        Dtype::U8,
                    )
                })
            }))
            .collect();
        let views: Vec<(String, TensorView)> = bytes
            .iter()
            .map(|(n, b, d, t)| {
                TensorView::new(*t, d.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| ExportError::Mismatch {
                        path: path.display().to_string(),
                        reason: format!("{n}: {e}"),
                    })
            })
            .collect::<Result<_, _>>()?;
        let metadata = HashMap::from([("plan".to_string(), self.plan_toml.to_string())]);
        let out =
            safetensors::serialize(views, Some(metadata)).map_err(|e| ExportError::Mismatch {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        crate::atomic_write(path, &out).map_err(|cause| ExportError::Write {
            path: path.display().to_string(),
            cause,
        })
    }
}

/// `log2(n choose k)`, by a sum of logarithms (exact enough for a size floor).
pub fn log2_binomial(n: u64, k: u64) -> f64 {
    let k = k.min(n - k);
    (1..=k)
        .map(|i| ((n - k + i) as f64).log2() - (i as f64).log2())
        .sum()
}

/// Writes a sparse file atomically.
pub fn write_sparse(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    crate::atomic_write(path, bytes).map_err(|cause| ExportError::Write {
        path: path.display().to_string(),
        cause,
    })
}

/// Reads and checks a sparse file; errors name the file.
pub fn read_sparse(path: &Path) -> Result<Decoded, ExportError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|cause| ExportError::Read {
        path: p.clone(),
        cause,
    })?;
    spx::decode(&bytes).map_err(|error| ExportError::File { path: p, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_floor_matches_small_cases() {
        assert!((log2_binomial(4, 2) - 6f64.log2()).abs() < 1e-12);
        assert!((log2_binomial(10, 0)).abs() < 1e-12);
        assert!((log2_binomial(10, 10)).abs() < 1e-12);
        // H(0.2) * n bits, approximately, for large n
        let n = 100_000u64;
        let h = -(0.2f64 * 0.2f64.log2() + 0.8 * 0.8f64.log2());
        assert!((log2_binomial(n, n / 5) / n as f64 - h).abs() < 1e-3);
    }
}
