//! Pruning a session: masks recomputed from the criterion's scores (lottery-ticket
//! rewinding included), uploaded and applied, and reported.

use burn::optim::ModuleOptimizer;

use super::{PruneReport, Session, SessionError, granularity_name};
use crate::kernels::FusedAdam;
use crate::model::DeviceMask;
use crate::prune::{Criterion, cut_threshold, sparsity};
use crate::train::report::LayerSparsity;

impl Session {
    /// Recomputes every mask at schedule value `value` from the current weights, uploads
    /// them and applies them.
    pub fn prune(&mut self, value: f64) -> Result<PruneReport, SessionError> {
        let weights = self.network().read_weights();
        let scores = self.criterion_scores(weights.clone());
        let masks = if self.layer_uses(Criterion::Synflow) {
            self.synflow_masks(scores, value)?
        } else {
            self.masks_for(&scores, value)?
        };
        for (layer, mask) in self.layers.iter_mut().zip(masks) {
            layer.mask = mask;
            layer.taylor.fill(0.0);
            layer.grown.clear();
        }
        self.taylor_steps = 0;
        if let Some(params) = &self.rewind_to
            && let Some(model) = self.model.as_mut()
        {
            // a lottery ticket: the survivors start again from their early values, with
            // fresh Adam moments (the masks below zero the rest)
            model.write_params(params)?;
            self.optim = ModuleOptimizer::from(FusedAdam::default());
        }
        self.upload_masks();
        Ok(self.prune_report(value, &weights))
    }

    /// What the masks are now, at schedule value `value`, cut from `weights` (each layer's
    /// as they were at the cut, PyTorch layout).
    pub(super) fn prune_report(&self, value: f64, weights: &[Vec<f32>]) -> PruneReport {
        let final_target = self.schedule_final();
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let (r, m) = (&layer.rule, &layer.mask);
                LayerSparsity {
                    name: r.name.clone(),
                    granularity: granularity_name(r),
                    criterion: r.criterion.to_string(),
                    target: r.target(value, final_target),
                    sparsity: m.as_deref().map(sparsity).unwrap_or(0.0),
                    grown: layer.grown.len(),
                    threshold: match (m, weights.get(i)) {
                        (Some(m), Some(w)) if r.cut_by_magnitude() => {
                            cut_threshold(w, m, &layer.grown)
                        }
                        _ => None,
                    },
                }
            })
            .collect();
        PruneReport {
            step: self.step,
            target: value,
            sparsity: self.mask_sparsity(),
            layers,
        }
    }

    /// Uploads the host masks to the device and applies them to the weights.
    pub(super) fn upload_masks(&mut self) {
        let uploaded = self.to_device(self.layers.iter().map(|l| l.mask.as_ref()));
        for (layer, mask) in self.layers.iter_mut().zip(uploaded) {
            layer.device_mask = mask;
        }
        if let Some(model) = self.model.as_mut() {
            model.apply_masks(self.layers.iter().map(|l| l.device_mask.as_ref()));
        }
    }

    /// Host masks (one per prunable layer, `None`: dense) uploaded to the session's device.
    pub(super) fn to_device<'a>(
        &self,
        masks: impl IntoIterator<Item = Option<&'a Vec<u8>>>,
    ) -> Vec<Option<DeviceMask>> {
        let inner = self.device.clone().inner();
        masks
            .into_iter()
            .zip(&self.layers)
            .map(|(m, l)| {
                m.as_ref()
                    .map(|m| DeviceMask::upload(m, &l.rule.shape, &inner))
            })
            .collect()
    }

    pub(super) fn schedule_final(&self) -> f64 {
        self.plan.pruning.schedule.final_target()
    }
}
