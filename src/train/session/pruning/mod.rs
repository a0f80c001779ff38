//! The pruning part of a session: one [`PrunableLayer`] per prunable layer (rule, masks,
//! criterion sums), the network's unit groups and the schedule; and the cut: masks
//! recomputed from the criterion's scores (lottery-ticket rewinding included) or exchanged
//! (`dynamic.rs`), uploaded and applied to the trained network, and reported, with the
//! evaluations that follow the pruning around it.

mod dynamic;
mod layer_state;
mod reports;
mod saliency;
mod stored;

use super::evaluating::Evaluations;
use super::training::Training;
use super::{Evaluation, PruneReport, SessionError};
use crate::model::{DeviceMask, HostTensor};
use crate::plan::ExperimentPlan;
use crate::prune::{Criterion, LayerRule, StepSchedule, UnitGroup, same_kept};
pub(super) use dynamic::ExchangeDue;
use layer_state::PrunableLayer;

/// Masks per prunable layer (`None`: dense).
type Masks = Vec<Option<Vec<u8>>>;

/// What a session prunes and how: each prunable layer's state, the groups pruned
/// together, and when.
pub(super) struct Pruning {
    /// Each prunable layer's rule, masks and criterion sums, in layer order.
    layers: Vec<PrunableLayer>,
    /// The network's unit groups (channels tied by its graph, attention heads), each
    /// pruned together.
    groups: Vec<UnitGroup>,
    schedule: StepSchedule,
    /// How many steps each layer's Taylor sum covers.
    taylor_steps: u64,
    /// Every parameter at the plan's rewind moment (lottery tickets), once reached.
    rewind_to: Option<Vec<HostTensor>>,
    /// The pruning settings changed after the schedule's last pruning step: the next step
    /// prunes to them (a live change in the schedule's hold phase).
    prune_pending: bool,
}

/// One cut: a pruning step to a schedule value, or a dynamic schedule's exchange.
pub(super) enum Cut {
    Prune(f64),
    Exchange(ExchangeDue),
}

impl Pruning {
    /// Dense layers pruned by `rules`, in `groups`, on `schedule`.
    pub(super) fn new(
        rules: Vec<LayerRule>,
        groups: Vec<UnitGroup>,
        schedule: StepSchedule,
    ) -> Self {
        Self {
            layers: rules.into_iter().map(PrunableLayer::new).collect(),
            groups,
            schedule,
            taylor_steps: 0,
            rewind_to: None,
            prune_pending: false,
        }
    }

    /// Takes a changed plan's rules and schedule at `step`: a layer now dense loses its
    /// mask at once; changed pruning settings (`policy_changed`) after the schedule's last
    /// pruning step are pruned to at the next step.
    pub(super) fn update(
        &mut self,
        rules: Vec<LayerRule>,
        schedule: StepSchedule,
        policy_changed: bool,
        step: u64,
    ) {
        for (layer, rule) in self.layers.iter_mut().zip(rules) {
            if rule.granularity.is_none() {
                layer.mask = None;
                layer.device_mask = None;
            }
            layer.rule = rule;
        }
        self.prune_pending |=
            policy_changed && schedule.last_prune_step().is_some_and(|last| step > last);
        self.schedule = schedule;
    }

    pub(super) fn schedule(&self) -> &StepSchedule {
        &self.schedule
    }

    /// The network's unit groups: channel groups and attention heads.
    pub(super) fn unit_groups(&self) -> &[UnitGroup] {
        &self.groups
    }

    /// The prunable layers' rules, in layer order.
    pub(super) fn rules(&self) -> Vec<LayerRule> {
        self.layers.iter().map(|l| l.rule.clone()).collect()
    }

    /// The prunable layer `i`'s rule.
    pub(super) fn rule(&self, i: usize) -> &LayerRule {
        &self.layers[i].rule
    }

    /// The host masks of the prunable layers (`None`: dense), in layer order.
    pub(super) fn masks(&self) -> Vec<Option<Vec<u8>>> {
        self.layers.iter().map(|l| l.mask.clone()).collect()
    }

    /// The masks on the device (`None`: dense), in layer order.
    pub(super) fn device_masks(&self) -> impl Iterator<Item = Option<&DeviceMask>> {
        self.layers.iter().map(|l| l.device_mask.as_ref())
    }

    /// Fraction of pruned weights over all prunable layers, from the masks.
    pub(super) fn mask_sparsity(&self) -> f64 {
        let (mut zeros, mut total) = (0usize, 0usize);
        for layer in &self.layers {
            total += layer.rule.shape.numel();
            if let Some(m) = &layer.mask {
                zeros += m.iter().filter(|&&k| k == 0).count();
            }
        }
        if total == 0 {
            0.0
        } else {
            zeros as f64 / total as f64
        }
    }

    /// Keeps every parameter of the trained network when its step is the plan's rewind
    /// moment (lottery tickets).
    pub(super) fn keep_rewind_point(&mut self, training: &Training, plan: &ExperimentPlan) {
        if let Some(at) = plan.pruning.rewind
            && at.resolve(training.steps_per_epoch()) == training.step()
        {
            self.rewind_to = Some(training.network().read_params());
        }
    }

    /// The schedule value to prune to before training on `step`, when a pruning step is
    /// due (the schedule's, or a live change's).
    pub(super) fn take_due(&mut self, step: u64) -> Option<f64> {
        if !self.schedule.should_prune(step) && !self.prune_pending {
            return None;
        }
        self.prune_pending = false;
        Some(self.schedule.value(step))
    }

    /// Cuts `training`'s network at `step` with `cut`, with the evaluations that follow
    /// the pruning around it (pushed to `evaluated`): the recovery from the last cut before
    /// it, and what this one cost right after it, when it changed a mask.
    pub(super) fn cut(
        &mut self,
        training: &mut Training,
        evaluations: &mut Evaluations,
        plan: &ExperimentPlan,
        step: u64,
        evaluated: &mut Vec<Evaluation>,
        cut: Cut,
    ) -> Result<PruneReport, SessionError> {
        if evaluations.recovery_due(plan, step, true) {
            let sparsity = self.mask_sparsity();
            evaluated.push(evaluations.evaluate_recovery(training, plan, &self.schedule, sparsity));
        }
        let before = Evaluations::follow_cuts(plan).then(|| self.masks());
        let report = match cut {
            Cut::Prune(value) => self.prune(training, plan, value)?,
            Cut::Exchange(due) => self.exchange(training, plan, due)?,
        };
        if before.is_some_and(|b| !self.keeps_as(&b)) {
            let sparsity = self.mask_sparsity();
            evaluated.push(evaluations.evaluate_after_cut(
                training,
                plan,
                &self.schedule,
                sparsity,
                step,
            ));
        }
        Ok(report)
    }

    /// Whether the masks keep the same weights as `masks` (a cut that changed nothing).
    fn keeps_as(&self, masks: &[Option<Vec<u8>>]) -> bool {
        masks
            .iter()
            .zip(&self.layers)
            .all(|(a, b)| same_kept(a.as_deref(), b.mask.as_deref()))
    }

    /// Recomputes every mask at schedule value `value` from the current weights, uploads
    /// them and applies them.
    pub(super) fn prune(
        &mut self,
        training: &mut Training,
        plan: &ExperimentPlan,
        value: f64,
    ) -> Result<PruneReport, SessionError> {
        let weights = training.network().read_weights();
        let scores = self.criterion_scores(training, weights.clone());
        let masks = if self.layer_uses(Criterion::Synflow) {
            self.synflow_masks(training, plan, scores, value)?
        } else {
            self.masks_for(plan, &scores, value)?
        };
        for (layer, mask) in self.layers.iter_mut().zip(masks) {
            layer.mask = mask;
            layer.taylor.fill(0.0);
            layer.grown.clear();
        }
        self.taylor_steps = 0;
        if let Some(params) = &self.rewind_to {
            // a lottery ticket: the survivors start again from their early values, with
            // fresh Adam moments (the masks below zero the rest)
            training.rewind(params)?;
        }
        self.upload_masks(training);
        Ok(self.prune_report(training.step(), plan, value, &weights))
    }

    /// Uploads the host masks to the device and applies them to `training`'s weights.
    pub(super) fn upload_masks(&mut self, training: &mut Training) {
        let uploaded = self.to_device(training, self.layers.iter().map(|l| l.mask.as_ref()));
        for (layer, mask) in self.layers.iter_mut().zip(uploaded) {
            layer.device_mask = mask;
        }
        training.apply_masks(self.device_masks());
    }

    /// Host masks (one per prunable layer, `None`: dense) uploaded to `training`'s device.
    fn to_device<'a>(
        &self,
        training: &Training,
        masks: impl IntoIterator<Item = Option<&'a Vec<u8>>>,
    ) -> Vec<Option<DeviceMask>> {
        let inner = training.device().clone().inner();
        masks
            .into_iter()
            .zip(&self.layers)
            .map(|(m, l)| {
                m.as_ref()
                    .map(|m| DeviceMask::upload(m, &l.rule.shape, &inner))
            })
            .collect()
    }
}
