//! The pruning part's masks as files store them: a checkpoint's by layer name with their
//! dimensions, a sparse model's by parameter name.

use super::Pruning;
use crate::model::stack::weight_key;

impl Pruning {
    /// Every pruned layer's mask with its name and dimensions, as a checkpoint holds them.
    pub(in crate::train::session) fn checkpoint_masks(&self) -> Vec<(String, Vec<usize>, Vec<u8>)> {
        self.layers
            .iter()
            .filter_map(|l| {
                let r = &l.rule;
                l.mask
                    .as_ref()
                    .map(|m| (r.name.clone(), r.shape.dims(), m.clone()))
            })
            .collect()
    }

    /// Takes a checkpoint's masks (see [`Pruning::checkpoint_masks`]); `Err`: why one does
    /// not fit. Upload them afterwards.
    pub(in crate::train::session) fn restore_checkpoint_masks(
        &mut self,
        masks: &[(String, Vec<usize>, Vec<u8>)],
    ) -> Result<(), String> {
        for (name, dims, mask) in masks {
            let layer = self
                .layers
                .iter_mut()
                .find(|l| &l.rule.name == name)
                .ok_or_else(|| format!("mask for unknown layer {name}"))?;
            let shape = layer.rule.shape;
            if *dims != shape.dims() || mask.len() != shape.numel() {
                return Err(format!("mask {name} has shape {dims:?}"));
            }
            layer.mask = Some(mask.clone());
        }
        Ok(())
    }

    /// Takes a sparse model's masks, by parameter name; a layer with none is dense. Upload
    /// them afterwards.
    pub(in crate::train::session) fn restore_named_masks(&mut self, masks: &[(String, Vec<u8>)]) {
        for layer in &mut self.layers {
            let name = weight_key(&layer.rule.name);
            layer.mask = masks
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, m)| m.clone());
        }
    }
}
