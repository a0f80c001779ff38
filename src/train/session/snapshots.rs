//! What a session shows of its layers: snapshots of weights and masks, and the masks
//! named for the masks file.

use super::{Session, SessionError};
use crate::masks_file::NamedMask;
use crate::train::report::LayerSnapshot;

impl Session {
    /// Host copy of one layer's weights and mask.
    pub fn snapshot(&self, name: &str) -> Result<LayerSnapshot, SessionError> {
        let i = self
            .layers
            .iter()
            .position(|l| l.rule.name == name)
            .ok_or_else(|| SessionError::UnknownLayer(name.to_string()))?;
        Ok(self.snapshot_at(i, &self.network().read_weights()))
    }

    /// Every prunable layer's mask, named and shaped as the masks file stores them.
    pub fn named_masks(&self) -> Vec<NamedMask> {
        self.snapshots()
            .into_iter()
            .map(|snap| NamedMask {
                dims: snap.shape.dims(),
                name: snap.name,
                mask: snap.mask,
            })
            .collect()
    }

    /// Host copies of every prunable layer.
    pub fn snapshots(&self) -> Vec<LayerSnapshot> {
        let weights = self.network().read_weights();
        (0..self.layers.len())
            .map(|i| self.snapshot_at(i, &weights))
            .collect()
    }

    fn snapshot_at(&self, i: usize, weights: &[Vec<f32>]) -> LayerSnapshot {
        let layer = &self.layers[i];
        let rule = &layer.rule;
        LayerSnapshot {
            step: self.step,
            name: rule.name.clone(),
            shape: rule.shape,
            weights: weights[i].clone(),
            mask: layer
                .mask
                .clone()
                .unwrap_or_else(|| vec![1; rule.shape.numel()]),
            grown: layer.grown.clone(),
        }
    }
}
