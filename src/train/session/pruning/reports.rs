//! What the pruning part reports of its layers: the masks after a cut, the layers when a
//! run starts, their snapshots, and their sparsity at the end.

use super::Pruning;
use crate::plan::ExperimentPlan;
use crate::prune::{LayerRule, cut_threshold, sparsity};
use crate::train::report::{
    LayerInfo, LayerSnapshot, LayerSparsity, LayerSummary, PruneReport, group_roles,
};

impl Pruning {
    /// What the masks are now at `step`, at schedule value `value`, cut from `weights`
    /// (each layer's as they were at the cut, PyTorch layout).
    pub(in crate::train::session) fn prune_report(
        &self,
        step: u64,
        plan: &ExperimentPlan,
        value: f64,
        weights: &[Vec<f32>],
    ) -> PruneReport {
        let final_target = plan.pruning.schedule.final_target();
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
            step,
            target: value,
            sparsity: self.mask_sparsity(),
            layers,
        }
    }

    /// The prunable layers as a run starts: shapes, granularities and groups.
    pub(in crate::train::session) fn layer_infos(&self) -> Vec<LayerInfo> {
        let roles = group_roles(&self.groups, self.layers.len());
        self.layers
            .iter()
            .zip(roles)
            .map(|(layer, groups)| {
                let r = &layer.rule;
                LayerInfo {
                    name: r.name.clone(),
                    shape: r.shape,
                    params: r.shape.numel(),
                    granularity: granularity_name(r),
                    dense_reason: r.dense_reason.clone(),
                    groups,
                }
            })
            .collect()
    }

    /// The index of the prunable layer named `name`.
    pub(in crate::train::session) fn position(&self, name: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.rule.name == name)
    }

    /// Host copy at `step` of layer `i`'s weights (out of `weights`, every layer's) and
    /// mask.
    pub(in crate::train::session) fn snapshot_at(
        &self,
        i: usize,
        weights: &[Vec<f32>],
        step: u64,
    ) -> LayerSnapshot {
        let layer = &self.layers[i];
        let rule = &layer.rule;
        LayerSnapshot {
            step,
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

    /// Host copies at `step` of every prunable layer, their weights out of `weights`.
    pub(in crate::train::session) fn snapshots(
        &self,
        weights: &[Vec<f32>],
        step: u64,
    ) -> Vec<LayerSnapshot> {
        (0..self.layers.len())
            .map(|i| self.snapshot_at(i, weights, step))
            .collect()
    }

    /// Every layer's sparsity in `weights` at the end of a run planned to `final_target`,
    /// and the sparsity of all of them together.
    pub(in crate::train::session) fn summarize(
        &self,
        weights: &[Vec<f32>],
        final_target: f64,
    ) -> (Vec<LayerSummary>, f64) {
        let (mut zeros, mut total) = (0usize, 0usize);
        let layers = self
            .layers
            .iter()
            .map(|l| &l.rule)
            .zip(weights)
            .map(|(r, w)| {
                let z = w.iter().filter(|&&v| v == 0.0).count();
                zeros += z;
                total += w.len();
                LayerSummary {
                    name: r.name.clone(),
                    shape: r.shape.dims(),
                    granularity: granularity_name(r),
                    criterion: r.criterion.to_string(),
                    target: r.target(final_target, final_target),
                    sparsity: z as f64 / w.len().max(1) as f64,
                }
            })
            .collect();
        (layers, zeros as f64 / total.max(1) as f64)
    }
}

/// A rule's granularity in its text form, or `dense`.
fn granularity_name(rule: &LayerRule) -> String {
    rule.granularity
        .map(|g| g.to_string())
        .unwrap_or_else(|| "dense".into())
}
